//! The facts of a triggering event a notification keeps to render itself later (reminders are
//! rendered days after their event): instants as Unix seconds, ids, amounts, the decision. Stored
//! as JSON with the notification; never logged.

use serde::{Deserialize, Serialize};

/// What a message may need to know about its event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Facts {
    /// Visit start (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    /// Visit start before a move.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_start: Option<i64>,
    /// Modality (`clinicnet.common.v1.Modality` number).
    pub modality: i32,
    /// IANA time zone the event named for the clinic (used until the directory's is known).
    pub time_zone: String,
    /// Integration window start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_start: Option<i64>,
    /// Integration window end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_end: Option<i64>,
    /// When a safety answer was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detect_time: Option<i64>,
    /// The patient concerned (clinic-facing messages).
    pub patient_id: String,
    /// The visit concerned.
    pub appointment_id: String,
    /// `approved`, `denied` or `pended`.
    pub decision: String,
    /// Prior authorization id.
    pub prior_authorization_id: String,
    /// Payer's authorization number.
    pub authorization_number: String,
    /// Amount owed, minor units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<i64>,
    /// Currency of the amount.
    pub currency: String,
    /// Date of service, `YYYY-MM-DD`.
    pub service_date: String,
    /// For webhooks: the event type, e.g. `appointment.booked`.
    pub event_type: String,
}
