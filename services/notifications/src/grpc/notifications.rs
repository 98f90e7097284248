//! Listing and reading notifications: a recipient's or a visit's, newest first, paged by id.
//! Partners see only their clinics' notifications; reading a patient's is audited.

use super::id;
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
    paging::Page,
};
use sqlx::PgPool;
use uuid::Uuid;

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
    let filters = pb::ListNotificationsRequest {
        page_size: 0,
        page_token: String::new(),
        ..request.clone()
    };
    let page: Page<Uuid> = Page::parse(&filters, request.page_size, &request.page_token, 50, 500)?;
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
        before: page.after,
        limit: page.fetch_limit(),
    };
    let rows = notes::list(&mut tx, &query).await?;
    if let Some(("patient", patient_id)) = recipient {
        audit::record(&mut tx, caller, "ListNotifications", patient_id).await?;
    }
    tx.commit().await?;
    let (rows, next_page_token) = page.finish(rows, |r| r.notification_id);
    Ok(pb::ListNotificationsResponse {
        next_page_token,
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
