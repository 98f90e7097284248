//! The notifications service's own settings, next to the shared `ServiceConfig`: the SMTP server,
//! the SMS provider, webhook trust roots, quiet hours, caps, reminder lead times and the delivery
//! scheduler. Every one is a flag with an environment fallback, listed by `--help`.

use crate::domain::{policy::Limits, retry::RetryPolicy};
use clap::{Args, ValueEnum};
use jiff::{SignedDuration, civil::Time};
use platform::config::Secret;
use std::{path::PathBuf, time::Duration};

/// How the SMTP connection is secured when SMTP_URL is `smtp://`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartTls {
    /// Plain SMTP (local relays and test sinks only).
    Off,
    /// STARTTLS when the server offers it.
    Opportunistic,
    /// STARTTLS or fail.
    Required,
}

/// Settings of the notifications service.
#[derive(Debug, Clone, Args)]
pub struct NotificationsConfig {
    /// SMTP server: smtp://[user:pass@]host:port (STARTTLS per SMTP_STARTTLS) or smtps://host:port
    /// (implicit TLS).
    #[arg(
        long,
        env = "SMTP_URL",
        default_value = "smtp://127.0.0.1:25",
        hide_env_values = true
    )]
    pub smtp_url: Secret,
    /// STARTTLS on smtp:// URLs.
    #[arg(long, env = "SMTP_STARTTLS", value_enum, default_value_t = StartTls::Required)]
    pub smtp_starttls: StartTls,
    /// Sender of every email (RFC 5322 mailbox).
    #[arg(
        long,
        env = "SMTP_FROM",
        default_value = "clinicnet <notifications@clinicnet.example>"
    )]
    pub smtp_from: String,
    /// Base URL of the SMS provider's API; messages are POSTed to <base>/Messages.json.
    #[arg(
        long,
        env = "SMS_API_BASE_URL",
        default_value = "http://127.0.0.1:8087"
    )]
    pub sms_api_base_url: String,
    /// Bearer token of the SMS provider's API.
    #[arg(long, env = "SMS_API_TOKEN", hide_env_values = true)]
    pub sms_api_token: Option<Secret>,
    /// Our sending number, E.164.
    #[arg(long, env = "SMS_FROM_NUMBER", default_value = "+13055550000")]
    pub sms_from_number: String,
    /// Extra PEM root certificates trusted for webhook endpoints (private PKI).
    #[arg(long, env = "WEBHOOK_CA_FILE")]
    pub webhook_ca_file: Option<PathBuf>,
    /// Start of the SMS quiet hours, clinic local time (HH:MM).
    #[arg(long, env = "QUIET_HOURS_START", default_value = "21:00")]
    pub quiet_hours_start: Time,
    /// End of the SMS quiet hours, clinic local time (HH:MM).
    #[arg(long, env = "QUIET_HOURS_END", default_value = "08:00")]
    pub quiet_hours_end: Time,
    /// Non-critical SMS per recipient per rolling 24 hours (TCPA healthcare exemption: 1).
    #[arg(long, env = "SMS_DAILY_CAP", default_value_t = 1)]
    pub sms_daily_cap: u32,
    /// Non-critical SMS per recipient per rolling 7 days (TCPA healthcare exemption: 3).
    #[arg(long, env = "SMS_WEEKLY_CAP", default_value_t = 3)]
    pub sms_weekly_cap: u32,
    /// Reminder lead times before a visit, comma separated (e.g. "24h,2h").
    #[arg(long, env = "REMINDER_LEADS", default_value = "24h,2h", value_parser = parse_leads)]
    pub reminder_leads: Leads,
    /// The longest the delivery scheduler waits between looks for due notifications (it is also
    /// woken when a due notification is created), in milliseconds.
    #[arg(long, env = "DELIVERY_TICK_MS", default_value_t = 1_000)]
    pub delivery_tick_ms: u64,
    /// Due notifications claimed per scheduler round.
    #[arg(long, env = "DELIVERY_BATCH_SIZE", default_value_t = 100)]
    pub delivery_batch_size: i64,
    /// Messages in flight to providers at once (and pooled SMTP connections).
    #[arg(long, env = "DELIVERY_CONCURRENCY", default_value_t = 32)]
    pub delivery_concurrency: usize,
    /// Delivery attempts before a notification fails for good.
    #[arg(long, env = "DELIVERY_MAX_ATTEMPTS", default_value_t = 8)]
    pub delivery_max_attempts: u32,
    /// Delay after the first transient failure, in milliseconds (doubles per attempt, jittered).
    #[arg(long, env = "RETRY_BASE_MS", default_value_t = 2_000)]
    pub retry_base_ms: u64,
    /// Longest delay between attempts, in milliseconds.
    #[arg(long, env = "RETRY_MAX_MS", default_value_t = 600_000)]
    pub retry_max_ms: u64,
    /// Deadline of one call to a provider, in milliseconds. A send in flight longer than twice
    /// this (a crashed replica) is taken over and retried with the same idempotency key.
    #[arg(long, env = "PROVIDER_TIMEOUT_MS", default_value_t = 10_000)]
    pub provider_timeout_ms: u64,
}

/// Reminder lead times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leads(pub Vec<SignedDuration>);

fn parse_leads(text: &str) -> Result<Leads, String> {
    let mut leads = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (number, unit) = part.split_at(part.len().saturating_sub(1));
        let value: i64 = number
            .parse()
            .map_err(|_| format!("{part:?}: expected a number and a unit (h, m or s)"))?;
        let seconds = match unit {
            "h" => value * 3600,
            "m" => value * 60,
            "s" => value,
            _ => return Err(format!("{part:?}: unit must be h, m or s")),
        };
        if seconds <= 0 {
            return Err(format!("{part:?}: must be positive"));
        }
        leads.push(SignedDuration::from_secs(seconds));
    }
    Ok(Leads(leads))
}

impl NotificationsConfig {
    /// Quiet hours and caps.
    pub fn limits(&self) -> Limits {
        Limits {
            quiet_start: self.quiet_hours_start,
            quiet_end: self.quiet_hours_end,
            daily_cap: self.sms_daily_cap,
            weekly_cap: self.sms_weekly_cap,
        }
    }

    /// Retry policy.
    pub fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.delivery_max_attempts.max(1),
            base: Duration::from_millis(self.retry_base_ms),
            max: Duration::from_millis(self.retry_max_ms.max(self.retry_base_ms)),
        }
    }

    /// Deadline of one provider call.
    pub fn provider_timeout(&self) -> Duration {
        Duration::from_millis(self.provider_timeout_ms)
    }

    /// How long a claimed send may stay in flight before another worker takes it over.
    pub fn send_lease(&self) -> Duration {
        self.provider_timeout() * 2 + Duration::from_secs(5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};
    use platform::config::ServiceConfig;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        service: ServiceConfig,
        #[command(flatten)]
        notifications: NotificationsConfig,
    }

    #[test]
    fn help_lists_every_variable() {
        let help = Cli::command().render_long_help().to_string();
        for var in [
            "SMTP_URL",
            "SMTP_STARTTLS",
            "SMTP_FROM",
            "SMS_API_BASE_URL",
            "SMS_API_TOKEN",
            "SMS_FROM_NUMBER",
            "WEBHOOK_CA_FILE",
            "QUIET_HOURS_START",
            "QUIET_HOURS_END",
            "SMS_DAILY_CAP",
            "SMS_WEEKLY_CAP",
            "REMINDER_LEADS",
            "DELIVERY_TICK_MS",
            "DELIVERY_BATCH_SIZE",
            "DELIVERY_CONCURRENCY",
            "DELIVERY_MAX_ATTEMPTS",
            "RETRY_BASE_MS",
            "RETRY_MAX_MS",
            "PROVIDER_TIMEOUT_MS",
            "DATABASE_URL",
        ] {
            assert!(help.contains(var), "--help does not list {var}");
        }
    }

    #[test]
    fn secrets_stay_hidden_and_values_parse() {
        let cli = Cli::try_parse_from([
            "notifications",
            "--database-url",
            "postgres://x",
            "--sms-api-token",
            "tok-hunter2",
            "--smtp-url",
            "smtp://user:pw-hunter3@mail:587",
            "--reminder-leads",
            "24h, 90m,30s",
            "--quiet-hours-start",
            "22:30",
        ])
        .unwrap();
        let printed = format!("{cli:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("hunter3"),
            "{printed}"
        );
        assert_eq!(
            cli.notifications.reminder_leads.0,
            vec![
                SignedDuration::from_hours(24),
                SignedDuration::from_mins(90),
                SignedDuration::from_secs(30)
            ]
        );
        assert_eq!(
            cli.notifications.quiet_hours_start,
            jiff::civil::time(22, 30, 0, 0)
        );
        assert!(
            Cli::try_parse_from(["n", "--database-url", "x", "--reminder-leads", "2d"]).is_err()
        );
    }
}
