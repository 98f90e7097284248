//! From a notification's facts and what is known of its clinic to the variables of its template,
//! and the JSON body of a webhook (ids and times only, never names or clinical data).

use super::{
    facts::Facts,
    format::Decision,
    instructions,
    sensitive::discreet_clinic_name,
    templates::{Value, Values, catalog::TemplateId},
};
use clinicnet_proto::common::v1::{Locale, Modality};
use jiff::{Timestamp, civil::Date, tz::TimeZone};
use std::collections::HashMap;

/// What a message shows of a clinic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClinicInfo {
    /// The clinic's public name.
    pub name: String,
    /// Its first location's name (shown when the clinic's name is not discreet).
    pub location_name: String,
    /// Front desk phone.
    pub phone: String,
    /// IANA time zone.
    pub time_zone: String,
    /// IV preparation texts by locale directory name (`en_US`, `es_US`).
    pub iv_instructions: HashMap<String, String>,
}

/// Why a message could not be composed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    /// A fact the template needs is missing from the event.
    #[error("event lacks {0}")]
    MissingFact(&'static str),
    /// The time zone is not in the tz database.
    #[error("unknown time zone")]
    BadTimeZone,
}

fn instant(seconds: Option<i64>, what: &'static str) -> Result<Value, ComposeError> {
    seconds
        .and_then(|s| Timestamp::from_second(s).ok())
        .map(Value::Instant)
        .ok_or(ComposeError::MissingFact(what))
}

/// The clinic's time zone (the directory's, else the one the event named), defaulting to UTC
/// only when neither is known.
pub fn zone(clinic: &ClinicInfo, facts: &Facts) -> Result<TimeZone, ComposeError> {
    let name = [clinic.time_zone.as_str(), facts.time_zone.as_str()]
        .into_iter()
        .find(|z| !z.is_empty());
    match name {
        Some(name) => TimeZone::get(name).map_err(|_| ComposeError::BadTimeZone),
        None => Ok(TimeZone::UTC),
    }
}

/// The values for template `id`.
pub fn values(
    id: TemplateId,
    facts: &Facts,
    clinic: &ClinicInfo,
    locale: Locale,
) -> Result<Values, ComposeError> {
    let mut values = Values::new();
    for (name, _) in id.variables() {
        let value = match *name {
            "clinic_name" => Value::Text(discreet_clinic_name(
                &clinic.name,
                &clinic.location_name,
                locale,
            )),
            "clinic_phone" => Value::Text(clinic.phone.clone()),
            "start" => instant(facts.start, "start")?,
            "previous_start" => instant(facts.previous_start, "previous_start")?,
            "window_start" => instant(facts.window_start, "window_start")?,
            "window_end" => instant(facts.window_end, "window_end")?,
            "detect_time" => instant(facts.detect_time, "detect_time")?,
            "instructions" => {
                let modality = Modality::try_from(facts.modality).unwrap_or(Modality::Unspecified);
                let dir = if locale == Locale::EsUs {
                    "es_US"
                } else {
                    "en_US"
                };
                let iv = clinic.iv_instructions.get(dir).map(String::as_str);
                Value::Text(instructions::for_visit(modality, locale, iv))
            }
            "patient_id" => Value::Text(facts.patient_id.clone()),
            "appointment_id" => Value::Text(facts.appointment_id.clone()),
            "prior_authorization_id" => Value::Text(facts.prior_authorization_id.clone()),
            "authorization_number" => Value::Text(if facts.authorization_number.is_empty() {
                "-".to_owned()
            } else {
                facts.authorization_number.clone()
            }),
            "decision" => Value::Decision(match facts.decision.as_str() {
                "approved" => Decision::Approved,
                "denied" => Decision::Denied,
                "pended" => Decision::Pended,
                _ => return Err(ComposeError::MissingFact("decision")),
            }),
            "amount" => Value::Money(
                facts
                    .amount_cents
                    .ok_or(ComposeError::MissingFact("amount"))?,
                facts.currency.clone(),
            ),
            "service_date" => Value::Date(
                facts
                    .service_date
                    .parse::<Date>()
                    .map_err(|_| ComposeError::MissingFact("service_date"))?,
            ),
            _ => return Err(ComposeError::MissingFact("an undeclared variable")),
        };
        values.insert(name, value);
    }
    Ok(values)
}

/// The JSON body of a webhook (Standard Webhooks payload shape: type, timestamp, data).
pub fn webhook_body(
    notification_id: &str,
    kind: &str,
    clinic_id: &str,
    facts: &Facts,
    now: Timestamp,
) -> String {
    let at = |seconds: Option<i64>| {
        seconds
            .and_then(|s| Timestamp::from_second(s).ok())
            .map(|t| t.to_string())
    };
    let mut data = serde_json::json!({
        "notification_id": notification_id,
        "kind": kind,
        "clinic_id": clinic_id,
    });
    let fields = [
        ("appointment_id", Some(facts.appointment_id.clone())),
        ("patient_id", Some(facts.patient_id.clone())),
        ("start_time", at(facts.start)),
        ("previous_start_time", at(facts.previous_start)),
        ("detect_time", at(facts.detect_time)),
        (
            "prior_authorization_id",
            Some(facts.prior_authorization_id.clone()),
        ),
        ("decision", Some(facts.decision.clone())),
    ];
    for (key, value) in fields {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            data[key] = serde_json::Value::String(value);
        }
    }
    serde_json::json!({
        "type": facts.event_type,
        "timestamp": now.to_string(),
        "data": data,
    })
    .to_string()
}
