//! The consumer of appointments' events (`insurance-appointments` on `APPOINTMENTS`): patients
//! and intakes feed the read models; a booked or moved esketamine visit may need a prior
//! authorization request; a fulfilled visit is billed (claim or superbill). Other subjects are
//! ignored.

use crate::{
    authorizations::{self, Booking, RequestError},
    billing::{self, Visit},
    domain::{coding, service_date},
    events::Cause,
    store,
};
use anyhow::Context;
use clinicnet_proto::{
    appointments::v1::Appointment,
    common::v1::Modality,
    events::v1::{
        AppointmentBooked, AppointmentFulfilled, AppointmentRescheduled, IntakeRecorded,
        PatientRegistered, PatientUpdated,
    },
};
use futures::future::BoxFuture;
use platform::events::consumer::{ConsumerSpec, Handler, IncomingEvent};
use prost::Message;
use sqlx::PgConnection;

/// The consumer's durable name, stream and filter.
pub fn spec() -> ConsumerSpec {
    ConsumerSpec::new(
        "insurance-appointments",
        "APPOINTMENTS",
        "clinicnet.appointments.>",
    )
}

/// Applies appointments' events to the insurance database.
#[derive(Debug, Default, Clone, Copy)]
pub struct AppointmentsHandler;

impl Handler for AppointmentsHandler {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a IncomingEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(apply(conn, event))
    }
}

async fn apply(conn: &mut PgConnection, event: &IncomingEvent) -> anyhow::Result<()> {
    let cause = Cause {
        request_id: "",
        causation_event_id: Some(event.event_id),
    };
    let payload = event.payload.as_ref();
    match event.subject.as_str() {
        "clinicnet.appointments.patient.registered" => {
            let e = PatientRegistered::decode(payload)?;
            store::patients::upsert(conn, &e.patient.context("no patient")?).await?;
        }
        "clinicnet.appointments.patient.updated" => {
            let e = PatientUpdated::decode(payload)?;
            store::patients::upsert(conn, &e.patient.context("no patient")?).await?;
        }
        "clinicnet.appointments.intake.recorded" => {
            let e = IntakeRecorded::decode(payload)?;
            let version = e.metadata.map_or(0, |m| m.aggregate_version);
            store::patients::upsert_intake(conn, &e.intake.context("no intake")?, version).await?;
        }
        "clinicnet.appointments.appointment.booked" => {
            let e = AppointmentBooked::decode(payload)?;
            on_booking(conn, &e.appointment.context("no appointment")?, cause).await?;
        }
        "clinicnet.appointments.appointment.rescheduled" => {
            let e = AppointmentRescheduled::decode(payload)?;
            on_booking(conn, &e.appointment.context("no appointment")?, cause).await?;
        }
        "clinicnet.appointments.appointment.fulfilled" => {
            let e = AppointmentFulfilled::decode(payload)?;
            on_fulfilled(conn, e, cause).await?;
        }
        _ => {}
    }
    Ok(())
}

async fn on_booking(
    conn: &mut PgConnection,
    appointment: &Appointment,
    cause: Cause<'_>,
) -> anyhow::Result<()> {
    let start = appointment
        .start_time
        .as_ref()
        .context("appointment without a start time")?;
    let date = service_date::local_date(start.seconds, &appointment.clinic_time_zone)
        .context("appointment start or clinic time zone unusable")?;
    let booking = Booking {
        appointment_id: &appointment.appointment_id,
        clinic_id: &appointment.clinic_id,
        patient_id: &appointment.patient_id,
        modality: Modality::try_from(appointment.modality).unwrap_or(Modality::Unspecified),
        date,
        planned_dose_mg: appointment.planned_dose_mg,
        course_id: &appointment.course_id,
    };
    match authorizations::on_booking(conn, &booking, cause).await {
        Ok(Some(pa)) => {
            tracing::info!(prior_authorization_id = %pa.prior_authorization_id, appointment_id = %appointment.appointment_id, "prior authorization requested for a booking");
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(RequestError::NoIntake) => {
            tracing::warn!(patient_id = %appointment.patient_id, appointment_id = %appointment.appointment_id, "esketamine booking needs a prior authorization but the patient has no intake on file");
            Ok(())
        }
        Err(RequestError::Database(error)) => Err(error.into()),
    }
}

async fn on_fulfilled(
    conn: &mut PgConnection,
    event: AppointmentFulfilled,
    cause: Cause<'_>,
) -> anyhow::Result<()> {
    let appointment = event.appointment.context("no appointment")?;
    let completion = appointment
        .completion
        .as_ref()
        .context("fulfilled visit without its completion")?;
    let modality = match Modality::try_from(completion.modality) {
        Ok(Modality::Unspecified) | Err(_) => {
            Modality::try_from(appointment.modality).unwrap_or(Modality::Unspecified)
        }
        Ok(modality) => modality,
    };
    let service = match coding::service_of(
        modality,
        completion.dose_mg,
        completion.treatment_minutes,
    ) {
        Ok(service) => service,
        Err(reason) => {
            tracing::warn!(appointment_id = %appointment.appointment_id, reason = %reason, "fulfilled visit not billable");
            return Ok(());
        }
    };
    let service_date = event
        .service_date
        .as_ref()
        .and_then(crate::convert::date)
        .context("fulfilled visit without a valid service date")?;
    anyhow::ensure!(
        !event.diagnosis_codes.is_empty(),
        "fulfilled visit {} without diagnosis codes",
        appointment.appointment_id
    );
    let visit = Visit {
        appointment_id: appointment.appointment_id.clone(),
        clinic_id: appointment.clinic_id.clone(),
        patient_id: appointment.patient_id.clone(),
        service_date,
        clinic_npi: event.clinic_npi,
        rendering_npi: event.rendering_provider_npi,
        diagnosis_codes: event.diagnosis_codes,
        service,
    };
    billing::bill_visit(conn, &visit, cause).await
}
