//! Rows to contract messages: notifications (ids and states only — never addresses or text) and
//! webhook endpoints (never secrets).

use crate::store::{notifications::NotificationRow, webhooks::EndpointRow};
use clinicnet_proto::notifications::v1::{
    Notification, NotificationStatus, Recipient, WebhookEndpoint, recipient::Target,
};
use time::OffsetDateTime;

/// A database instant as a protobuf timestamp.
pub fn timestamp(at: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.unix_timestamp(),
        nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
    }
}

/// The status stored for `status`.
pub fn status_text(status: NotificationStatus) -> Option<&'static str> {
    Some(match status {
        NotificationStatus::Queued => "queued",
        NotificationStatus::Sent => "sent",
        NotificationStatus::Delivered => "delivered",
        NotificationStatus::Failed => "failed",
        NotificationStatus::Suppressed => "suppressed",
        NotificationStatus::Unspecified => return None,
    })
}

fn status(text: &str) -> NotificationStatus {
    match text {
        // A send in flight is still waiting to be accepted.
        "queued" | "sending" => NotificationStatus::Queued,
        "sent" => NotificationStatus::Sent,
        "delivered" => NotificationStatus::Delivered,
        "failed" => NotificationStatus::Failed,
        "suppressed" => NotificationStatus::Suppressed,
        _ => NotificationStatus::Unspecified,
    }
}

/// The recipient of a row.
pub fn recipient(kind: &str, id: &str) -> Option<Recipient> {
    let target = match kind {
        "patient" => Target::PatientId(id.to_owned()),
        "clinic" => Target::ClinicId(id.to_owned()),
        _ => return None,
    };
    Some(Recipient {
        target: Some(target),
    })
}

/// A notification as the contract shows it.
pub fn notification(row: &NotificationRow) -> Notification {
    let status = status(&row.status);
    let pending = matches!(row.status.as_str(), "queued" | "sending");
    Notification {
        notification_id: row.notification_id.to_string(),
        recipient: recipient(&row.recipient_kind, &row.recipient_id),
        channel: i32::from(row.channel),
        kind: i32::from(row.kind),
        category: i32::from(row.category),
        locale: i32::from(row.locale),
        critical: row.critical,
        status: status as i32,
        suppression_reason: i32::from(row.suppression_reason),
        attempts: row.attempts,
        last_error: row.last_error.clone(),
        permanent_failure: row.permanent_failure,
        source_event_id: row.source_event_id.clone(),
        appointment_id: row.appointment_id.clone(),
        clinic_id: row.clinic_id.clone(),
        webhook_endpoint_id: row
            .webhook_endpoint_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        reminder_lead: (row.reminder_lead_seconds > 0).then_some(prost_types::Duration {
            seconds: row.reminder_lead_seconds,
            nanos: 0,
        }),
        provider_message_id: row.provider_message_id.clone(),
        create_time: Some(timestamp(row.created_at)),
        scheduled_time: Some(timestamp(row.scheduled_at)),
        next_attempt_time: row.next_attempt_at.filter(|_| pending).map(timestamp),
        sent_time: row.sent_at.map(timestamp),
        delivered_time: row.delivered_at.map(timestamp),
        final_time: row.final_at.map(timestamp),
    }
}

/// An endpoint as the contract shows it.
pub fn endpoint(row: &EndpointRow) -> WebhookEndpoint {
    WebhookEndpoint {
        endpoint_id: row.endpoint_id.to_string(),
        clinic_id: row.clinic_id.clone(),
        url: row.url.clone(),
        kinds: row.kinds.iter().map(|k| i32::from(*k)).collect(),
        description: row.description.clone(),
        removed: row.removed_at.is_some(),
        create_time: Some(timestamp(row.created_at)),
        secret_issue_time: row.secret_issued_at.map(timestamp),
        previous_secret_expire_time: row.previous_expires_at.map(timestamp),
    }
}
