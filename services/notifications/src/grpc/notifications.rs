//! Listing and reading notifications: a recipient's or a visit's, newest first, paged by id.
//! Partners see only their clinics' notifications; reading a patient's is audited.

use super::{id, page_size};
use crate::{
    convert,
    store::notifications::{self as notes, ListQuery},
};
use clinicnet_proto::notifications::v1::{
    self as pb, NotificationStatus, list_notifications_request::Filter, recipient::Target,
};
use platform::{
    ApiError, audit,
    auth::{Caller, Role},
    error::Violations,
};
use sqlx::PgPool;

/// The clinics a caller may see (`None`: all).
fn visible_clinics(caller: &Caller) -> Option<Vec<String>> {
    (caller.role != Role::Ops).then(|| caller.clinic_ids.clone())
}

/// ListNotifications.
pub async fn list(
    pool: &PgPool,
    caller: &Caller,
    request: pb::ListNotificationsRequest,
) -> Result<pb::ListNotificationsResponse, ApiError> {
    let mut v = Violations::new();
    let limit = page_size(request.page_size, 50, 500).unwrap_or_else(|e| {
        v.add("page_size", e.to_string());
        50
    });
    let before = match request.page_token.as_str() {
        "" => None,
        token => match id("page_token", token) {
            Ok(id) => Some(id),
            Err(_) => {
                v.add("page_token", "not a token from a previous response");
                None
            }
        },
    };
    let mut statuses = Vec::new();
    for (i, status) in request.statuses.iter().enumerate() {
        match NotificationStatus::try_from(*status)
            .ok()
            .and_then(convert::status_text)
        {
            Some(text) => {
                statuses.push(text.to_owned());
                if text == "queued" {
                    statuses.push("sending".to_owned());
                }
            }
            None => v.add(format!("statuses[{i}]"), "a known status is required"),
        }
    }
    let (recipient, appointment_id) = match &request.filter {
        Some(Filter::Recipient(recipient)) => match &recipient.target {
            Some(Target::PatientId(p)) if !p.is_empty() => (Some(("patient", p.as_str())), None),
            Some(Target::ClinicId(c)) if !c.is_empty() => (Some(("clinic", c.as_str())), None),
            _ => {
                v.add("recipient.target", "a patient_id or clinic_id is required");
                (None, None)
            }
        },
        Some(Filter::AppointmentId(a)) if !a.is_empty() => (None, Some(a.as_str())),
        _ => {
            v.add("filter", "a recipient or an appointment_id is required");
            (None, None)
        }
    };
    v.finish()?;
    if let Some(("clinic", clinic_id)) = recipient {
        caller.require_clinic(clinic_id)?;
    }
    let mut tx = pool.begin().await?;
    let query = ListQuery {
        recipient,
        appointment_id,
        statuses,
        channel: i16::try_from(request.channel).unwrap_or(0),
        clinics: visible_clinics(caller),
        before,
        limit: limit + 1,
    };
    let mut rows = notes::list(&mut tx, &query).await?;
    if let Some(("patient", patient_id)) = recipient {
        audit::record(&mut tx, caller, "ListNotifications", patient_id).await?;
    }
    tx.commit().await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(pb::ListNotificationsResponse {
        next_page_token: if more {
            rows.last()
                .map(|r| r.notification_id.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        },
        notifications: rows.iter().map(convert::notification).collect(),
    })
}

/// GetNotification.
pub async fn get(
    pool: &PgPool,
    caller: &Caller,
    request: pb::GetNotificationRequest,
) -> Result<pb::GetNotificationResponse, ApiError> {
    let notification_id = id("notification_id", &request.notification_id)?;
    let mut tx = pool.begin().await?;
    let row = notes::get(&mut tx, notification_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("notification {notification_id}")))?;
    if caller.role != Role::Ops && caller.require_clinic(&row.clinic_id).is_err() {
        return Err(ApiError::NotFound(format!(
            "notification {notification_id}"
        )));
    }
    if row.recipient_kind == "patient" {
        audit::record(&mut tx, caller, "GetNotification", &row.recipient_id).await?;
    }
    tx.commit().await?;
    Ok(pb::GetNotificationResponse {
        notification: Some(convert::notification(&row)),
    })
}
