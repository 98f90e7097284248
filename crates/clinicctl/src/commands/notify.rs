//! `clinicctl notify`: notifications and their delivery, preferences, webhook endpoints, test
//! messages and inbound SMS keywords (NotificationsService).

use crate::args::enum_value;
use crate::context::{Ctx, Page};
use crate::exit;
use crate::output::{Column, from_json_file};
use clap::{Args, Subcommand};
use clinicnet_proto::notifications::v1 as pb;
use std::path::PathBuf;

const NOTIFICATION_COLUMNS: &[Column] = &[
    ("NOTIFICATION", "notification_id"),
    ("KIND", "kind"),
    ("CHANNEL", "channel"),
    ("STATUS", "status"),
    ("SUPPRESSED", "suppression_reason"),
    ("LOCALE", "locale"),
    ("SCHEDULED", "scheduled_time"),
    ("SENT", "sent_time"),
];

const ENDPOINT_COLUMNS: &[Column] = &[
    ("ENDPOINT", "endpoint_id"),
    ("URL", "url"),
    ("KINDS", "kinds"),
    ("REMOVED", "removed"),
    ("SECRET ISSUED", "secret_issue_time"),
];

/// Whose notifications or preferences.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct RecipientArgs {
    /// A patient.
    #[arg(long)]
    pub patient: Option<String>,
    /// A clinic.
    #[arg(long)]
    pub clinic: Option<String>,
}

impl RecipientArgs {
    fn recipient(&self) -> pb::Recipient {
        let target = match (&self.patient, &self.clinic) {
            (Some(p), _) => Some(pb::recipient::Target::PatientId(p.clone())),
            (None, Some(c)) => Some(pb::recipient::Target::ClinicId(c.clone())),
            _ => None,
        };
        pb::Recipient { target }
    }
}

/// Notifications.
#[derive(Debug, Subcommand)]
pub enum NotifyCmd {
    /// List a visit's or a recipient's notifications with their delivery status.
    #[command(
        after_help = "Example:\n  clinicctl notify list --appointment $APPOINTMENT\n  clinicctl notify list --patient $PATIENT --status sent"
    )]
    List {
        /// A visit's notifications.
        #[arg(long, conflicts_with_all = ["patient", "clinic"])]
        appointment: Option<String>,
        /// A patient's.
        #[arg(long, conflicts_with = "clinic")]
        patient: Option<String>,
        /// A clinic's.
        #[arg(long)]
        clinic: Option<String>,
        /// Statuses (queued, sent, delivered, failed, suppressed; repeat).
        #[arg(long = "status", value_parser = |s: &str| enum_value("clinicnet.notifications.v1.NotificationStatus", s))]
        statuses: Vec<i32>,
        /// Only this channel: email, sms or webhook.
        #[arg(long, value_parser = |s: &str| enum_value("clinicnet.notifications.v1.Channel", s))]
        channel: Option<i32>,
        #[command(flatten)]
        page: Page,
    },
    /// Show one notification.
    #[command(after_help = "Example:\n  clinicctl notify get $NOTIFICATION")]
    Get {
        /// Notification id.
        notification_id: String,
    },
    /// Show a recipient's preferences.
    #[command(after_help = "Example:\n  clinicctl notify preferences --patient $PATIENT")]
    Preferences {
        #[command(flatten)]
        recipient: RecipientArgs,
    },
    /// Replace a recipient's preferences from a JSON file (a Preferences; version is expected).
    #[command(
        after_help = "Example:\n  clinicctl notify preferences --patient $PATIENT -o json | jq .preferences > prefs.json\n  clinicctl notify set-preferences --file prefs.json"
    )]
    SetPreferences {
        /// JSON file with clinicnet.notifications.v1.Preferences.
        #[arg(long)]
        file: PathBuf,
    },
    /// Register a clinic's webhook endpoint; prints its signing secret once.
    #[command(
        after_help = "Example:\n  clinicctl notify webhook-add --clinic $CLINIC --url https://ehr.example.org/clinicnet --kind appointment-confirmation"
    )]
    WebhookAdd {
        /// Clinic id.
        #[arg(long)]
        clinic: String,
        /// https URL.
        #[arg(long)]
        url: String,
        /// Kinds to deliver (repeat; none: all).
        #[arg(long = "kind", value_parser = |s: &str| enum_value("clinicnet.notifications.v1.NotificationKind", s))]
        kinds: Vec<i32>,
        /// Note for staff.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Issue a new signing secret (the old one signs too during the grace period).
    #[command(
        after_help = "Example:\n  clinicctl notify webhook-rotate $ENDPOINT --grace-hours 24"
    )]
    WebhookRotate {
        /// Endpoint id.
        endpoint_id: String,
        /// Hours the previous secret keeps signing (0-168; default 24).
        #[arg(long)]
        grace_hours: Option<i64>,
    },
    /// Remove a webhook endpoint.
    #[command(after_help = "Example:\n  clinicctl notify webhook-remove $ENDPOINT")]
    WebhookRemove {
        /// Endpoint id.
        endpoint_id: String,
    },
    /// List a clinic's webhook endpoints.
    #[command(after_help = "Example:\n  clinicctl notify webhooks --clinic $CLINIC")]
    Webhooks {
        /// Clinic id.
        #[arg(long)]
        clinic: String,
        /// Include removed endpoints.
        #[arg(long)]
        include_removed: bool,
        #[command(flatten)]
        page: Page,
    },
    /// Send a test message through a channel.
    #[command(
        after_help = "Example:\n  clinicctl notify test --channel email --clinic $CLINIC\n  clinicctl notify test --channel webhook --endpoint $ENDPOINT"
    )]
    Test {
        /// email, sms or webhook.
        #[arg(long, value_parser = |s: &str| enum_value("clinicnet.notifications.v1.Channel", s))]
        channel: i32,
        /// A webhook endpoint.
        #[arg(long, conflicts_with_all = ["clinic", "address"])]
        endpoint: Option<String>,
        /// A clinic's front desk.
        #[arg(long, conflicts_with = "address")]
        clinic: Option<String>,
        /// An email address or E.164 number (ops only).
        #[arg(long)]
        address: Option<String>,
        /// en-us or es-us.
        #[arg(long, default_value = "en-us", value_parser = |s: &str| enum_value("clinicnet.common.v1.Locale", s))]
        locale: i32,
    },
    /// Handle an inbound SMS as the SMS gateway forwards it (STOP, START, HELP…).
    #[command(
        after_help = "Example:\n  clinicctl notify inbound-sms --from +13055550123 --to +13055550000 --body STOP"
    )]
    InboundSms {
        /// Sender, E.164.
        #[arg(long)]
        from: String,
        /// Our number, E.164.
        #[arg(long)]
        to: String,
        /// Message text.
        #[arg(long)]
        body: String,
    },
}

/// Runs a notify command.
pub async fn run(ctx: &Ctx, cmd: NotifyCmd) -> anyhow::Result<()> {
    let mut client = ctx.conn.notifications()?;
    const P: &str = "clinicnet.notifications.v1.";
    match cmd {
        NotifyCmd::List {
            appointment,
            patient,
            clinic,
            statuses,
            channel,
            page,
        } => {
            use pb::list_notifications_request::Filter;
            let filter = match (appointment, patient, clinic) {
                (Some(a), _, _) => Filter::AppointmentId(a),
                (None, Some(p), _) => Filter::Recipient(pb::Recipient {
                    target: Some(pb::recipient::Target::PatientId(p)),
                }),
                (None, None, Some(c)) => Filter::Recipient(pb::Recipient {
                    target: Some(pb::recipient::Target::ClinicId(c)),
                }),
                _ => return Err(exit::usage("give --appointment, --patient or --clinic")),
            };
            let response = client
                .list_notifications(pb::ListNotificationsRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                    filter: Some(filter),
                    statuses,
                    channel: channel.unwrap_or(0),
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                &format!("{P}ListNotificationsResponse"),
                "notifications",
                NOTIFICATION_COLUMNS,
            )
        }
        NotifyCmd::Get { notification_id } => {
            let response = client
                .get_notification(pb::GetNotificationRequest { notification_id })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                &format!("{P}GetNotificationResponse"),
                "notification",
            )
        }
        NotifyCmd::Preferences { recipient } => {
            let response = client
                .get_preferences(pb::GetPreferencesRequest {
                    recipient: Some(recipient.recipient()),
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                &format!("{P}GetPreferencesResponse"),
                "preferences",
            )
        }
        NotifyCmd::SetPreferences { file } => {
            let preferences: pb::Preferences = from_json_file(&file, &format!("{P}Preferences"))?;
            let expected_version = preferences.version;
            let response = client
                .set_preferences(pb::SetPreferencesRequest {
                    request_id: ctx.request_id(),
                    preferences: Some(preferences),
                    expected_version,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                &format!("{P}SetPreferencesResponse"),
                "preferences",
            )
        }
        NotifyCmd::WebhookAdd {
            clinic,
            url,
            kinds,
            description,
        } => {
            let response = client
                .register_webhook_endpoint(pb::RegisterWebhookEndpointRequest {
                    request_id: ctx.request_id(),
                    clinic_id: clinic,
                    url,
                    kinds,
                    description,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                &format!("{P}RegisterWebhookEndpointResponse"),
                "",
            )
        }
        NotifyCmd::WebhookRotate {
            endpoint_id,
            grace_hours,
        } => {
            let response = client
                .rotate_webhook_secret(pb::RotateWebhookSecretRequest {
                    request_id: ctx.request_id(),
                    endpoint_id,
                    grace_period: grace_hours.map(|h| prost_types::Duration {
                        seconds: h * 3600,
                        nanos: 0,
                    }),
                })
                .await?
                .into_inner();
            ctx.out
                .object(&response, &format!("{P}RotateWebhookSecretResponse"), "")
        }
        NotifyCmd::WebhookRemove { endpoint_id } => {
            let response = client
                .remove_webhook_endpoint(pb::RemoveWebhookEndpointRequest {
                    request_id: ctx.request_id(),
                    endpoint_id,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                &format!("{P}RemoveWebhookEndpointResponse"),
                "endpoint",
            )
        }
        NotifyCmd::Webhooks {
            clinic,
            include_removed,
            page,
        } => {
            let response = client
                .list_webhook_endpoints(pb::ListWebhookEndpointsRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                    clinic_id: clinic,
                    include_removed,
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                &format!("{P}ListWebhookEndpointsResponse"),
                "endpoints",
                ENDPOINT_COLUMNS,
            )
        }
        NotifyCmd::Test {
            channel,
            endpoint,
            clinic,
            address,
            locale,
        } => {
            use pb::send_test_message_request::Target;
            let target = match (endpoint, clinic, address) {
                (Some(e), _, _) => Target::WebhookEndpointId(e),
                (None, Some(c), _) => Target::ClinicId(c),
                (None, None, Some(a)) => Target::Address(a),
                _ => return Err(exit::usage("give --endpoint, --clinic or --address")),
            };
            let response = client
                .send_test_message(pb::SendTestMessageRequest {
                    request_id: ctx.request_id(),
                    channel,
                    locale,
                    target: Some(target),
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                &format!("{P}SendTestMessageResponse"),
                "notification",
            )
        }
        NotifyCmd::InboundSms { from, to, body } => {
            let response = client
                .receive_inbound_sms(pb::ReceiveInboundSmsRequest {
                    request_id: ctx.request_id(),
                    from_phone: from,
                    to_phone: to,
                    body,
                    receive_time: Some(crate::commands::availability::now()),
                })
                .await?
                .into_inner();
            ctx.out
                .object(&response, &format!("{P}ReceiveInboundSmsResponse"), "")
        }
    }
}
