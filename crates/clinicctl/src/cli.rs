//! The command line: global options (endpoints, token, output, config file) and the command
//! groups, by who uses them.

use crate::client::Connection;
use crate::commands::{
    appointment, availability, claim, clinic, course, coverage, events, notify, patient, payer,
    provider, token,
};
use crate::config::{self, Service};
use crate::context::Ctx;
use crate::exit::{self, EXIT_CODES_HELP};
use crate::output::{Format, Printer};
use crate::{integrator, mailsink, seed, telemetry, traces};
use clap::{Args, CommandFactory as _, Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tracing::Instrument as _;

const ABOUT: &str =
    "The clinicnet command-line client for partner clinics, insurance integrators and ops.";

const AFTER_HELP: &str = "\
Who uses what:
  partner clinics  clinic, provider, availability, patient, appointment, course, outcomes,
                   coverage, eligibility, pa, claim, notify
  integrators      integrator (serve, work), eligibility answer, pa decide, claim ack, remit
  ops              everything, plus events, payer, plan, token, traces, seed, journey

Endpoints: --directory-url etc., else CLINICNET_<SERVICE>_URL, else [endpoints] in the config
file, else the local `make run` ports 50051-50054. Token: --token, else CLINICNET_TOKEN, else
token/token_file in the config file (default ~/.config/clinicctl/config.toml).

Example:
  export CLINICNET_TOKEN=$(JWT_HS256_SECRET=clinicnet-development-secret clinicctl token mint --role ops)
  clinicctl clinic list
  clinicctl clinic list -o json | jq -r '.clinics[].clinic_id'";

/// clinicctl — drive clinicnet like a partner clinic, an integrator or ops would.
#[derive(Debug, Parser)]
#[command(name = "clinicctl", version, about = ABOUT, after_help = AFTER_HELP, after_long_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
struct Global {
    /// Output: aligned table, or JSON (the response message in proto3 JSON) for scripts.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Bearer token (see `clinicctl token mint`).
    #[arg(long, global = true, env = "CLINICNET_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Config file (TOML: token, token_file, time_zone, [endpoints]).
    #[arg(long, global = true, env = "CLINICCTL_CONFIG")]
    config: Option<PathBuf>,
    /// Directory endpoint.
    #[arg(long, global = true, env = "CLINICNET_DIRECTORY_URL")]
    directory_url: Option<String>,
    /// Appointments endpoint.
    #[arg(long, global = true, env = "CLINICNET_APPOINTMENTS_URL")]
    appointments_url: Option<String>,
    /// Insurance endpoint.
    #[arg(long, global = true, env = "CLINICNET_INSURANCE_URL")]
    insurance_url: Option<String>,
    /// Notifications endpoint.
    #[arg(long, global = true, env = "CLINICNET_NOTIFICATIONS_URL")]
    notifications_url: Option<String>,
    /// Time zone local times are read in and tables show times in (default: this machine's).
    #[arg(long, global = true, env = "CLINICCTL_TIME_ZONE")]
    time_zone: Option<String>,
    /// Idempotency key of the command's change: repeat a command with the same key and the
    /// server returns the first answer instead of acting twice (default: a fresh UUID).
    #[arg(long, global = true)]
    request_id: Option<String>,
    /// Seconds before a call is abandoned (DEADLINE_EXCEEDED).
    #[arg(long, global = true, default_value_t = 30)]
    timeout_seconds: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Clinics, their chairs, and clinic search.
    #[command(
        subcommand,
        after_help = "Example:\n  clinicctl clinic list\n  clinicctl clinic search --modality esketamine --language es"
    )]
    Clinic(clinic::ClinicCmd),
    /// Providers.
    #[command(
        subcommand,
        after_help = "Example:\n  clinicctl provider list --clinic $CLINIC"
    )]
    Provider(provider::ProviderCmd),
    /// Availability: import (CSV, iCalendar, FHIR), generate, list and find slots, holds.
    #[command(
        subcommand,
        after_help = "Example:\n  clinicctl availability import --clinic $CLINIC practice-calendar.ics\n  clinicctl availability find --modality esketamine --clinic $CLINIC"
    )]
    Availability(availability::AvailabilityCmd),
    /// Patients and intake.
    #[command(
        subcommand,
        after_help = "Example:\n  clinicctl patient list --clinic $CLINIC"
    )]
    Patient(patient::PatientCmd),
    /// Visits: book, move, cancel, check in, complete, no-show.
    #[command(
        subcommand,
        after_help = "Example:\n  clinicctl appointment list --clinic $CLINIC --status booked"
    )]
    Appointment(appointment::AppointmentCmd),
    /// Treatment courses.
    #[command(subcommand, after_help = "Example:\n  clinicctl course plans")]
    Course(course::CourseCmd),
    /// Treatment outcomes from PHQ-9 scores.
    #[command(
        subcommand,
        after_help = "Example:\n  clinicctl outcomes show --clinic $CLINIC --days 90"
    )]
    Outcomes(course::OutcomesCmd),
    /// Payers (ops).
    #[command(subcommand, after_help = "Example:\n  clinicctl payer list")]
    Payer(payer::PayerCmd),
    /// Plans with fee schedules and authorization rules (ops).
    #[command(
        subcommand,
        after_help = "Example:\n  clinicctl plan list --payer suncoast-health"
    )]
    Plan(payer::PlanCmd),
    /// Patients' insurance coverage.
    #[command(
        subcommand,
        after_help = "Example:\n  clinicctl coverage list --patient $PATIENT"
    )]
    Coverage(coverage::CoverageCmd),
    /// Eligibility checks (270/271).
    #[command(
        subcommand,
        after_help = "Example:\n  clinicctl eligibility check --coverage $COVERAGE --date 2026-12-01 --code G2082"
    )]
    Eligibility(coverage::EligibilityCmd),
    /// Prior authorizations (278).
    #[command(
        subcommand,
        after_help = "Example:\n  clinicctl pa list --clinic $CLINIC --status requested"
    )]
    Pa(claim::PaCmd),
    /// Claims (837P), superbills and billing reports.
    #[command(
        subcommand,
        after_help = "Example:\n  clinicctl claim list --clinic $CLINIC --status denied"
    )]
    Claim(claim::ClaimCmd),
    /// Remittances (835), posted by integrators.
    #[command(
        subcommand,
        after_help = "Example:\n  clinicctl remit post --file remittance.json"
    )]
    Remit(claim::RemitCmd),
    /// Notifications, preferences, webhook endpoints.
    #[command(
        subcommand,
        after_help = "Example:\n  clinicctl notify list --appointment $APPOINTMENT"
    )]
    Notify(notify::NotifyCmd),
    /// The event backbone of every service: lag, dead letters, re-drive (ops).
    #[command(subcommand, after_help = "Example:\n  clinicctl events lag")]
    Events(events::EventsCmd),
    /// Development tokens signed with JWT_HS256_SECRET.
    #[command(
        subcommand,
        after_help = "Example:\n  export CLINICNET_TOKEN=$(JWT_HS256_SECRET=clinicnet-development-secret clinicctl token mint --role ops)"
    )]
    Token(token::TokenCmd),
    /// An insurance integrator's work stream, by hand or answered by rules.
    #[command(
        subcommand,
        after_help = "Example:\n  clinicctl integrator serve --payer suncoast-health --rules rules.toml"
    )]
    Integrator(integrator::IntegratorCmd),
    /// A local OTLP/gRPC receiver printing each finished trace as a waterfall.
    #[command(
        after_help = "Example:\n  clinicctl traces --listen 127.0.0.1:4317 &\n  OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 target/debug/appointments"
    )]
    Traces(traces::TracesArgs),
    /// A local SMTP sink that stores every message it receives (development).
    #[command(
        after_help = "Example:\n  clinicctl mail-sink --listen 127.0.0.1:2525 --dir .run/mail"
    )]
    MailSink(mailsink::MailSinkArgs),
    /// Load demo data (the Miami network) through the public API.
    #[command(subcommand, after_help = "Example:\n  clinicctl seed miami")]
    Seed(seed::SeedCmd),
    /// Play the demo patient journey against a seeded network.
    #[command(
        after_help = "Example:\n  clinicctl seed miami && clinicctl journey --mail-dir .run/mail"
    )]
    Journey(seed::journey::JourneyArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  clinicctl completions bash > /etc/bash_completion.d/clinicctl\n  clinicctl completions zsh > \"${fpath[1]}/_clinicctl\""
    )]
    Completions {
        /// Shell to complete for.
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// `group command` for the span name.
    fn name(&self) -> String {
        let group = match self {
            Command::Clinic(_) => "clinic",
            Command::Provider(_) => "provider",
            Command::Availability(_) => "availability",
            Command::Patient(_) => "patient",
            Command::Appointment(_) => "appointment",
            Command::Course(_) => "course",
            Command::Outcomes(_) => "outcomes",
            Command::Payer(_) => "payer",
            Command::Plan(_) => "plan",
            Command::Coverage(_) => "coverage",
            Command::Eligibility(_) => "eligibility",
            Command::Pa(_) => "pa",
            Command::Claim(_) => "claim",
            Command::Remit(_) => "remit",
            Command::Notify(_) => "notify",
            Command::Events(_) => "events",
            Command::Token(_) => "token",
            Command::Integrator(_) => "integrator",
            Command::Traces(_) => "traces",
            Command::MailSink(_) => "mail-sink",
            Command::Seed(_) => "seed",
            Command::Journey(_) => "journey",
            Command::Completions { .. } => "completions",
        };
        format!("clinicctl {group}")
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli { global, command } = cli;
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "clinicctl",
                &mut std::io::stdout(),
            );
            return Ok(());
        }
        Command::Token(cmd) => return token::run(cmd, global.output),
        Command::Traces(args) => return traces::run(args).await,
        Command::MailSink(args) => return mailsink::run(args).await,
        _ => {}
    }
    let file = config::load(global.config.as_deref())?;
    let zone_name = global.time_zone.clone().or_else(|| file.time_zone.clone());
    let zone = match zone_name {
        Some(name) => crate::args::parse_zone(&name).map_err(exit::usage)?,
        None => jiff::tz::TimeZone::system(),
    };
    let mut urls = BTreeMap::new();
    for (service, flag) in [
        (Service::Directory, &global.directory_url),
        (Service::Appointments, &global.appointments_url),
        (Service::Insurance, &global.insurance_url),
        (Service::Notifications, &global.notifications_url),
    ] {
        let url = flag
            .clone()
            .or_else(|| file.endpoints.get(service).cloned())
            .unwrap_or_else(|| service.default_url().to_owned());
        urls.insert(service, url);
    }
    let token = config::resolve_token(global.token.as_deref(), &file)?;
    let conn = Connection::new(
        urls,
        token,
        Duration::from_secs(global.timeout_seconds.max(1)),
    )?;
    let ctx = Ctx::new(
        conn,
        Printer::new(global.output, zone.clone()),
        zone,
        global.request_id,
    );
    let _telemetry = telemetry::init();
    let span = telemetry::command_span(&command.name());
    dispatch(&ctx, command).instrument(span).await
}

async fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Clinic(cmd) => clinic::run(ctx, cmd).await,
        Command::Provider(cmd) => provider::run(ctx, cmd).await,
        Command::Availability(cmd) => availability::run(ctx, cmd).await,
        Command::Patient(cmd) => patient::run(ctx, cmd).await,
        Command::Appointment(cmd) => appointment::run(ctx, cmd).await,
        Command::Course(cmd) => course::run(ctx, cmd).await,
        Command::Outcomes(cmd) => course::run_outcomes(ctx, cmd).await,
        Command::Payer(cmd) => payer::run_payer(ctx, cmd).await,
        Command::Plan(cmd) => payer::run_plan(ctx, cmd).await,
        Command::Coverage(cmd) => coverage::run(ctx, cmd).await,
        Command::Eligibility(cmd) => coverage::run_eligibility(ctx, cmd).await,
        Command::Pa(cmd) => claim::run_pa(ctx, cmd).await,
        Command::Claim(cmd) => claim::run(ctx, cmd).await,
        Command::Remit(cmd) => claim::run_remit(ctx, cmd).await,
        Command::Notify(cmd) => notify::run(ctx, cmd).await,
        Command::Events(cmd) => events::run(ctx, cmd).await,
        Command::Integrator(cmd) => integrator::run(ctx, cmd).await,
        Command::Seed(cmd) => seed::run(ctx, cmd).await,
        Command::Journey(args) => seed::journey::run(ctx, args).await,
        Command::Token(_)
        | Command::Traces(_)
        | Command::MailSink(_)
        | Command::Completions { .. } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command, groups and leaves, documents an example in its help.
    #[test]
    fn every_command_has_an_example() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            let subcommands: Vec<_> = command
                .get_subcommands()
                .filter(|c| c.get_name() != "help")
                .collect();
            let help = command
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            if !help.contains("Example") {
                missing.push(path.clone());
            }
            for sub in subcommands {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(
            missing.is_empty(),
            "commands without an example: {missing:#?}"
        );
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exit_codes_are_documented_in_help() {
        let help = Cli::command().render_long_help().to_string();
        for needle in ["Exit codes", "not found", "permission", "usage", "server"] {
            assert!(help.contains(needle), "{needle} missing from --help");
        }
    }
}
