//! Reading and replacing a recipient's preferences (optimistic version check). The SMS opt-out
//! of a number is shown on the SMS entry but changed only by the STOP/START keywords.

use crate::{
    convert,
    domain::preferences as rules,
    store::{preferences as store, read_models},
};
use clinicnet_proto::notifications::v1::{
    self as pb, Channel, ChannelPreference, Preferences, Recipient, recipient::Target,
};
use platform::{
    ApiError, audit,
    auth::Caller,
    error::Violations,
    idempotency::{self, Start},
};
use sqlx::{PgConnection, PgPool};

/// The recipient's kind and id, once it is known to exist and the caller may act on it; and the
/// phone numbers whose opt-out applies.
async fn resolve(
    conn: &mut PgConnection,
    caller: &Caller,
    recipient: Option<&Recipient>,
) -> Result<(&'static str, String, Vec<String>), ApiError> {
    match recipient.and_then(|r| r.target.as_ref()) {
        Some(Target::PatientId(id)) if !id.is_empty() => {
            let patient = read_models::patient(conn, id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("patient {id}")))?;
            caller.require_clinic(&patient.registered_clinic_id)?;
            Ok(("patient", id.clone(), vec![patient.phone]))
        }
        Some(Target::ClinicId(id)) if !id.is_empty() => {
            caller.require_clinic(id)?;
            let clinic = read_models::clinic(conn, id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("clinic {id}")))?;
            Ok((
                "clinic",
                id.clone(),
                vec![clinic.front_desk_phone, clinic.on_call_phone],
            ))
        }
        _ => Err(ApiError::invalid(
            "recipient.target",
            "a patient_id or clinic_id is required",
        )),
    }
}

/// The preferences as shown: stored channels, with the SMS opt-out flag.
async fn shown(
    conn: &mut PgConnection,
    kind: &str,
    id: &str,
    phones: &[String],
    stored: Option<store::Stored>,
) -> Result<Preferences, ApiError> {
    let mut opted_out = false;
    for phone in phones {
        opted_out |= store::sms_opted_out(conn, phone).await?;
    }
    let (mut preferences, version, updated_at) = match stored {
        Some(s) => (
            s.preferences,
            s.version,
            Some(convert::timestamp(s.updated_at)),
        ),
        None => (Preferences::default(), 0, None),
    };
    for entry in &mut preferences.channels {
        entry.sms_opted_out = false;
    }
    if opted_out {
        match preferences
            .channels
            .iter_mut()
            .find(|c| c.channel == Channel::Sms as i32)
        {
            Some(entry) => entry.sms_opted_out = true,
            None => preferences.channels.push(ChannelPreference {
                channel: Channel::Sms as i32,
                enabled: true,
                categories: Vec::new(),
                sms_opted_out: true,
            }),
        }
    }
    preferences.recipient = convert::recipient(kind, id);
    preferences.version = u64::try_from(version).unwrap_or(0);
    preferences.update_time = updated_at;
    Ok(preferences)
}

/// GetPreferences.
pub async fn get(
    pool: &PgPool,
    caller: &Caller,
    request: pb::GetPreferencesRequest,
) -> Result<pb::GetPreferencesResponse, ApiError> {
    let mut tx = pool.begin().await?;
    let (kind, id, phones) = resolve(&mut tx, caller, request.recipient.as_ref()).await?;
    let stored = store::get(&mut tx, kind, &id).await?;
    let preferences = shown(&mut tx, kind, &id, &phones, stored).await?;
    if kind == "patient" {
        audit::record(&mut tx, caller, "GetPreferences", &id).await?;
    }
    tx.commit().await?;
    Ok(pb::GetPreferencesResponse {
        preferences: Some(preferences),
    })
}

/// SetPreferences.
pub async fn set(
    pool: &PgPool,
    caller: &Caller,
    request: pb::SetPreferencesRequest,
) -> Result<pb::SetPreferencesResponse, ApiError> {
    let mut v = Violations::new();
    let preferences = request.preferences.clone().unwrap_or_default();
    if request.preferences.is_none() {
        v.add("preferences", "required");
    }
    rules::validate(&preferences.channels, &mut v);
    if preferences
        .recipient
        .as_ref()
        .and_then(|r| r.target.as_ref())
        .is_none()
    {
        v.add(
            "preferences.recipient",
            "a patient_id or clinic_id is required",
        );
    }
    v.finish()?;
    let expected = i64::try_from(request.expected_version)
        .map_err(|_| ApiError::invalid("expected_version", "out of range"))?;
    let mut tx = match idempotency::start(
        pool,
        caller,
        "SetPreferences",
        &request.request_id,
        &request,
    )
    .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let (kind, id, phones) = resolve(tx.conn(), caller, preferences.recipient.as_ref()).await?;
    let channels = Preferences {
        channels: preferences
            .channels
            .iter()
            .map(|c| ChannelPreference {
                sms_opted_out: false,
                ..c.clone()
            })
            .collect(),
        ..Preferences::default()
    };
    let stored = store::set(tx.conn(), kind, &id, &channels, expected)
        .await?
        .ok_or_else(|| {
            ApiError::Aborted(format!(
                "preferences are no longer at version {expected}; read them again and retry"
            ))
        })?;
    let shown = shown(tx.conn(), kind, &id, &phones, Some(stored)).await?;
    if kind == "patient" {
        audit::record(tx.conn(), caller, "SetPreferences", &id).await?;
    }
    let response = pb::SetPreferencesResponse {
        preferences: Some(shown),
    };
    tx.commit(&response).await?;
    Ok(response)
}
