//! `clinicctl events`: the event backbone of each service (EventOpsService, on every service's
//! port): outbox and consumer lag, dead letters, and re-driving a dead letter. Ops only.

use crate::config::Service;
use crate::context::{Ctx, Page};
use crate::output::{Column, Table, duration_text, print_json, to_json};
use clap::{Subcommand, ValueEnum};
use clinicnet_proto::ops::v1 as pb;

const DEAD_LETTER_COLUMNS: &[Column] = &[
    ("EVENT", "event_id"),
    ("SUBJECT", "subject"),
    ("CONSUMER", "consumer"),
    ("ATTEMPTS", "attempts"),
    ("LAST FAILURE", "last_failure_time"),
    ("STATUS", "status"),
    ("LAST ERROR", "last_error"),
];

/// A service, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceArg {
    /// The directory.
    Directory,
    /// Appointments.
    Appointments,
    /// Insurance.
    Insurance,
    /// Notifications.
    Notifications,
}

impl From<ServiceArg> for Service {
    fn from(s: ServiceArg) -> Service {
        match s {
            ServiceArg::Directory => Service::Directory,
            ServiceArg::Appointments => Service::Appointments,
            ServiceArg::Insurance => Service::Insurance,
            ServiceArg::Notifications => Service::Notifications,
        }
    }
}

/// The event backbone.
#[derive(Debug, Subcommand)]
pub enum EventsCmd {
    /// Outbox backlog, consumer lag and dead letters of each service (default: all four).
    #[command(
        after_help = "Example:\n  clinicctl events lag\n  clinicctl events lag --service notifications -o json"
    )]
    Lag {
        /// Only this service.
        #[arg(long, value_enum)]
        service: Option<ServiceArg>,
    },
    /// List a service's dead letters, newest failure first (payloads are never shown).
    #[command(
        after_help = "Example:\n  clinicctl events dead-letters --service notifications\n  clinicctl events dead-letters --service insurance --status redriven"
    )]
    DeadLetters {
        /// The service.
        #[arg(long, value_enum)]
        service: ServiceArg,
        /// Only this consumer.
        #[arg(long)]
        consumer: Option<String>,
        /// parked (default) or redriven.
        #[arg(long, value_parser = |s: &str| crate::args::enum_value("clinicnet.ops.v1.DeadLetterStatus", s))]
        status: Option<i32>,
        #[command(flatten)]
        page: Page,
    },
    /// Apply a dead-lettered event again through its consumer, once.
    #[command(
        after_help = "Example:\n  clinicctl events redrive --service notifications $EVENT_ID"
    )]
    Redrive {
        /// The service.
        #[arg(long, value_enum)]
        service: ServiceArg,
        /// Event id.
        event_id: String,
        /// Consumer (only when several dead-lettered the event).
        #[arg(long)]
        consumer: Option<String>,
    },
}

/// Runs an events command.
pub async fn run(ctx: &Ctx, cmd: EventsCmd) -> anyhow::Result<()> {
    match cmd {
        EventsCmd::Lag { service } => {
            let services: Vec<Service> = match service {
                Some(s) => vec![s.into()],
                None => Service::ALL.to_vec(),
            };
            let mut backlogs = Vec::new();
            for service in services {
                let backlog = ctx
                    .conn
                    .event_ops(service)?
                    .get_event_backlog(pb::GetEventBacklogRequest {})
                    .await
                    .map_err(|s| {
                        anyhow::Error::new(s).context(format!("{} events lag", service.name()))
                    })?
                    .into_inner();
                backlogs.push(backlog);
            }
            if ctx.out.json() {
                let all: Vec<serde_json::Value> = backlogs
                    .iter()
                    .map(|b| to_json(b, "clinicnet.ops.v1.GetEventBacklogResponse"))
                    .collect::<anyhow::Result<_>>()?;
                return print_json(&all);
            }
            let mut services = Table::new(vec![
                "SERVICE",
                "OUTBOX PENDING",
                "OLDEST PENDING",
                "DEAD LETTERS",
            ]);
            let mut consumers = Table::new(vec![
                "SERVICE",
                "CONSUMER",
                "STREAM",
                "PENDING",
                "ACK PENDING",
                "REDELIVERED",
            ]);
            for b in &backlogs {
                services.row(vec![
                    b.service.clone(),
                    b.outbox_pending.to_string(),
                    duration_text(
                        b.oldest_pending_age
                            .as_ref()
                            .map(|d| d.seconds)
                            .unwrap_or(0),
                    ),
                    b.dead_letters.to_string(),
                ]);
                for c in &b.consumers {
                    consumers.row(vec![
                        b.service.clone(),
                        c.consumer.clone(),
                        c.stream.clone(),
                        c.pending_messages.to_string(),
                        c.ack_pending.to_string(),
                        c.redelivered.to_string(),
                    ]);
                }
            }
            print!("{}\n{}", services.render(), consumers.render());
            Ok(())
        }
        EventsCmd::DeadLetters {
            service,
            consumer,
            status,
            page,
        } => {
            let response = ctx
                .conn
                .event_ops(service.into())?
                .list_dead_letters(pb::ListDeadLettersRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                    consumer: consumer.unwrap_or_default(),
                    status: status.unwrap_or(0),
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                "clinicnet.ops.v1.ListDeadLettersResponse",
                "dead_letters",
                DEAD_LETTER_COLUMNS,
            )
        }
        EventsCmd::Redrive {
            service,
            event_id,
            consumer,
        } => {
            let response = ctx
                .conn
                .event_ops(service.into())?
                .redrive_dead_letter(pb::RedriveDeadLetterRequest {
                    request_id: ctx.request_id(),
                    event_id,
                    consumer: consumer.unwrap_or_default(),
                })
                .await?
                .into_inner();
            ctx.out
                .object(&response, "clinicnet.ops.v1.RedriveDeadLetterResponse", "")
        }
    }
}
