//! The events the appointments service publishes, appended to the outbox in the transaction of the
//! change they describe, each with its aggregate's version.

use clinicnet_proto::{
    appointments::v1::{Appointment, Intake, IntegrationWindow, Patient, SyncOutcome},
    common::v1::Date,
    events::v1::{
        AppointmentBooked, AppointmentCancelled, AppointmentCheckedIn, AppointmentFulfilled,
        AppointmentNoShow, AppointmentRescheduled, AvailabilitySynced, EventMetadata,
        IntakeRecorded, IntegrationWindowOpened, PatientRegistered, PatientUpdated,
        SafetyFollowUpRequired,
    },
};
use platform::events::{self, outbox, streams};
use sqlx::PgConnection;

/// The producer name, also the service's.
pub const PRODUCER: &str = "appointments";

async fn append<M: prost::Message>(
    conn: &mut PgConnection,
    aggregate: &str,
    event: &str,
    aggregate_id: &str,
    version: u64,
    request_id: &str,
    build: impl FnOnce(EventMetadata) -> M,
) -> Result<(), sqlx::Error> {
    let metadata = events::metadata(PRODUCER, aggregate, aggregate_id, version, request_id);
    let subject = streams::subject(PRODUCER, aggregate, event);
    let message = build(metadata.clone());
    outbox::append(conn, &subject, &metadata, &message).await
}

/// A clinic's availability was replaced.
pub async fn availability_synced(
    conn: &mut PgConnection,
    outcome: &SyncOutcome,
    request_id: &str,
) -> Result<(), sqlx::Error> {
    append(
        conn,
        "availability",
        "synced",
        &outcome.clinic_id,
        outcome.sync_version,
        request_id,
        |metadata| AvailabilitySynced {
            metadata: Some(metadata),
            outcome: Some(outcome.clone()),
        },
    )
    .await
}

/// What happened to a visit, for the lifecycle events that carry only the visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitEvent {
    /// Booked.
    Booked,
    /// Cancelled.
    Cancelled,
    /// Checked in.
    CheckedIn,
    /// No-show.
    NoShow,
}

/// A visit was booked, cancelled, checked in or missed.
pub async fn visit(
    conn: &mut PgConnection,
    kind: VisitEvent,
    a: &Appointment,
    request_id: &str,
) -> Result<(), sqlx::Error> {
    let appointment = Some(a.clone());
    let (name, id) = (a.appointment_id.as_str(), a.version);
    match kind {
        VisitEvent::Booked => {
            append(
                conn,
                "appointment",
                "booked",
                name,
                id,
                request_id,
                |metadata| AppointmentBooked {
                    metadata: Some(metadata),
                    appointment,
                },
            )
            .await
        }
        VisitEvent::Cancelled => {
            append(
                conn,
                "appointment",
                "cancelled",
                name,
                id,
                request_id,
                |metadata| AppointmentCancelled {
                    metadata: Some(metadata),
                    appointment,
                },
            )
            .await
        }
        VisitEvent::CheckedIn => {
            append(
                conn,
                "appointment",
                "checked_in",
                name,
                id,
                request_id,
                |metadata| AppointmentCheckedIn {
                    metadata: Some(metadata),
                    appointment,
                },
            )
            .await
        }
        VisitEvent::NoShow => {
            append(
                conn,
                "appointment",
                "no_show",
                name,
                id,
                request_id,
                |metadata| AppointmentNoShow {
                    metadata: Some(metadata),
                    appointment,
                },
            )
            .await
        }
    }
}

/// A visit was moved; `before` is the visit as it was.
pub async fn rescheduled(
    conn: &mut PgConnection,
    a: &Appointment,
    before: &Appointment,
    request_id: &str,
) -> Result<(), sqlx::Error> {
    append(
        conn,
        "appointment",
        "rescheduled",
        &a.appointment_id,
        a.version,
        request_id,
        |metadata| AppointmentRescheduled {
            metadata: Some(metadata),
            appointment: Some(a.clone()),
            previous_start_time: before.start_time,
            previous_end_time: before.end_time,
            previous_chair_id: before.chair_id.clone(),
            previous_provider_id: before.provider_id.clone(),
        },
    )
    .await
}

/// What billing needs beside the visit.
#[derive(Debug, Clone)]
pub struct Billing {
    /// Local date of service.
    pub service_date: Date,
    /// The clinic's type 2 NPI.
    pub clinic_npi: String,
    /// The rendering provider's type 1 NPI.
    pub rendering_provider_npi: String,
    /// Diagnoses of the intake in force.
    pub diagnosis_codes: Vec<String>,
}

/// A visit took place.
pub async fn fulfilled(
    conn: &mut PgConnection,
    a: &Appointment,
    billing: Billing,
    request_id: &str,
) -> Result<(), sqlx::Error> {
    append(
        conn,
        "appointment",
        "fulfilled",
        &a.appointment_id,
        a.version,
        request_id,
        |metadata| AppointmentFulfilled {
            metadata: Some(metadata),
            appointment: Some(a.clone()),
            service_date: Some(billing.service_date),
            clinic_npi: billing.clinic_npi,
            rendering_provider_npi: billing.rendering_provider_npi,
            diagnosis_codes: billing.diagnosis_codes,
        },
    )
    .await
}

/// A fulfilled ketamine session opened its integration window.
pub async fn integration_window_opened(
    conn: &mut PgConnection,
    a: &Appointment,
    window: &IntegrationWindow,
    request_id: &str,
) -> Result<(), sqlx::Error> {
    append(
        conn,
        "appointment",
        "integration_window_opened",
        &a.appointment_id,
        a.version,
        request_id,
        |metadata| IntegrationWindowOpened {
            metadata: Some(metadata),
            patient_id: a.patient_id.clone(),
            clinic_id: a.clinic_id.clone(),
            clinic_time_zone: a.clinic_time_zone.clone(),
            window: Some(window.clone()),
        },
    )
    .await
}

/// PHQ-9 item 9 above 0: a clinician must follow up.
pub async fn safety_follow_up(
    conn: &mut PgConnection,
    a: &Appointment,
    item9: i32,
    total: i32,
    request_id: &str,
) -> Result<(), sqlx::Error> {
    append(
        conn,
        "appointment",
        "safety_follow_up_required",
        &a.appointment_id,
        a.version,
        request_id,
        |metadata| SafetyFollowUpRequired {
            metadata: Some(metadata),
            appointment_id: a.appointment_id.clone(),
            patient_id: a.patient_id.clone(),
            clinic_id: a.clinic_id.clone(),
            provider_id: a.provider_id.clone(),
            phq9_item9_score: item9,
            phq9_total_score: total,
            detect_time: a.update_time,
        },
    )
    .await
}

/// A patient was registered (`registered`) or updated.
pub async fn patient(
    conn: &mut PgConnection,
    p: &Patient,
    registered: bool,
    request_id: &str,
) -> Result<(), sqlx::Error> {
    let patient = Some(p.clone());
    if registered {
        append(
            conn,
            "patient",
            "registered",
            &p.patient_id,
            p.version,
            request_id,
            |metadata| PatientRegistered {
                metadata: Some(metadata),
                patient,
            },
        )
        .await
    } else {
        append(
            conn,
            "patient",
            "updated",
            &p.patient_id,
            p.version,
            request_id,
            |metadata| PatientUpdated {
                metadata: Some(metadata),
                patient,
            },
        )
        .await
    }
}

/// An intake was recorded; `version` counts the patient's intakes.
pub async fn intake_recorded(
    conn: &mut PgConnection,
    intake: &Intake,
    version: u64,
    request_id: &str,
) -> Result<(), sqlx::Error> {
    append(
        conn,
        "intake",
        "recorded",
        &intake.patient_id,
        version,
        request_id,
        |metadata| IntakeRecorded {
            metadata: Some(metadata),
            intake: Some(intake.clone()),
        },
    )
    .await
}
