//! What the service consumes: the directory's clinics (names, time zones, contacts, IV texts),
//! the appointments service's patients (contacts, language, consent) and visits, and the
//! insurance service's decisions — each trigger becoming notifications in the transaction that
//! records the event in the inbox. Visit events older than the visit's stored version are
//! ignored. A move or a cancellation retires the visit's queued reminders before the visit's
//! new state is written (the scheduler locks reminders first, then the visit, in the same order).

use crate::{
    domain::{
        facts::Facts,
        kind,
        plan::{self, Draft, Recipient},
        templates::catalog::TemplateId,
    },
    publish,
    store::{
        self,
        notifications::{self as notes, NewNotification},
        read_models::{self, AppointmentRow, ClinicRow, PatientRow},
        webhooks,
    },
};
use anyhow::Context;
use clinicnet_proto::{
    appointments::v1::{Appointment, AppointmentStatus},
    common::v1::Locale,
    directory::v1::Clinic,
    events::v1 as ev,
    insurance::v1::{PriorAuthorizationStatus, prior_authorization::Decision},
    notifications::v1::{Channel, NotificationKind as Kind, SuppressionReason},
};
use futures::future::BoxFuture;
use jiff::{SignedDuration, Timestamp};
use platform::events::consumer::{ConsumerSpec, Handler, IncomingEvent};
use prost::Message;
use sqlx::PgConnection;

/// The three consumers, one per producing stream.
pub fn consumers(leads: Vec<SignedDuration>) -> Vec<(ConsumerSpec, std::sync::Arc<dyn Handler>)> {
    vec![
        (
            ConsumerSpec::new(
                "notifications-directory",
                "DIRECTORY",
                "clinicnet.directory.>",
            ),
            std::sync::Arc::new(DirectoryEvents),
        ),
        (
            ConsumerSpec::new(
                "notifications-appointments",
                "APPOINTMENTS",
                "clinicnet.appointments.>",
            ),
            std::sync::Arc::new(AppointmentEvents { leads }),
        ),
        (
            ConsumerSpec::new(
                "notifications-insurance",
                "INSURANCE",
                "clinicnet.insurance.>",
            ),
            std::sync::Arc::new(InsuranceEvents),
        ),
    ]
}

fn seconds(at: &Option<prost_types::Timestamp>) -> Option<i64> {
    at.as_ref().map(|t| t.seconds)
}

fn to_timestamp(at: &Option<prost_types::Timestamp>) -> anyhow::Result<Timestamp> {
    let at = at.as_ref().context("timestamp missing")?;
    Ok(Timestamp::new(at.seconds, at.nanos)?)
}

/// Creates the drafted notifications (webhook drafts: one per subscribed endpoint).
async fn create(
    conn: &mut PgConnection,
    event_id: &str,
    appointment_id: &str,
    drafts: Vec<Draft>,
) -> anyhow::Result<()> {
    for draft in drafts {
        let endpoints = if draft.channel == Channel::Webhook {
            webhooks::subscribers(conn, &draft.clinic_id, draft.kind as i16)
                .await?
                .into_iter()
                .map(Some)
                .collect()
        } else {
            vec![None]
        };
        let (recipient_kind, recipient_id) = match &draft.recipient {
            Recipient::Patient(id) => ("patient", id.clone()),
            Recipient::Clinic(id) => ("clinic", id.clone()),
        };
        for endpoint in endpoints {
            let new = NewNotification {
                source_key: event_id.to_owned(),
                source_event_id: event_id.to_owned(),
                recipient_kind,
                recipient_id: recipient_id.clone(),
                channel: draft.channel as i16,
                kind: draft.kind as i16,
                category: kind::category(draft.kind) as i16,
                template: draft
                    .template
                    .map(|t| t.name().to_owned())
                    .unwrap_or_default(),
                critical: draft.critical(),
                reminder_lead_seconds: draft.reminder_lead.map(|l| l.as_secs()).unwrap_or(0),
                webhook_endpoint_id: endpoint,
                clinic_id: draft.clinic_id.clone(),
                appointment_id: appointment_id.to_owned(),
                address: String::new(),
                facts: draft.facts.clone(),
                locale: Locale::Unspecified as i16,
                scheduled_at: store::to_db(draft.scheduled_at),
            };
            notes::create(conn, &new).await?;
        }
    }
    Ok(())
}

struct DirectoryEvents;

fn clinic_row(clinic: &Clinic) -> ClinicRow {
    let contact = clinic.contact.clone().unwrap_or_default();
    let on_call = contact.on_call.clone().unwrap_or_default();
    let iv_instructions = clinic
        .iv_preparation_instructions
        .iter()
        .map(|t| {
            let dir = if t.locale == Locale::EsUs as i32 {
                "es_US"
            } else {
                "en_US"
            };
            (dir.to_owned(), t.text.clone())
        })
        .collect();
    ClinicRow {
        clinic_id: clinic.clinic_id.clone(),
        version: i64::try_from(clinic.version).unwrap_or(i64::MAX),
        display_name: clinic.display_name.clone(),
        location_name: clinic
            .locations
            .first()
            .map(|l| l.display_name.clone())
            .unwrap_or_default(),
        time_zone: clinic.time_zone.clone(),
        front_desk_phone: contact.phone,
        front_desk_email: contact.email,
        on_call_phone: on_call.phone,
        on_call_email: on_call.email,
        iv_instructions: sqlx::types::Json(iv_instructions),
    }
}

impl Handler for DirectoryEvents {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a IncomingEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let payload = &event.payload[..];
            let clinic = match event.subject.rsplit('.').next().unwrap_or_default() {
                "registered" => ev::ClinicRegistered::decode(payload)?.clinic,
                "updated" => ev::ClinicUpdated::decode(payload)?.clinic,
                "suspended" => ev::ClinicSuspended::decode(payload)?.clinic,
                "reactivated" => ev::ClinicReactivated::decode(payload)?.clinic,
                "chair_changed" => ev::ChairChanged::decode(payload)?.clinic,
                _ => return Ok(()),
            };
            let clinic = clinic.context("event without its clinic")?;
            read_models::upsert_clinic(conn, &clinic_row(&clinic)).await?;
            Ok(())
        })
    }
}

struct AppointmentEvents {
    leads: Vec<SignedDuration>,
}

/// What happened to a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Booked,
    Rescheduled,
    Cancelled,
    NoShow,
    Other,
}

fn patient_row(patient: &clinicnet_proto::appointments::v1::Patient) -> PatientRow {
    let contacts = patient.contacts.clone().unwrap_or_default();
    PatientRow {
        patient_id: patient.patient_id.clone(),
        version: i64::try_from(patient.version).unwrap_or(i64::MAX),
        registered_clinic_id: patient.registered_clinic_id.clone(),
        locale: i16::try_from(patient.preferred_locale).unwrap_or(0),
        email: contacts.email,
        email_consent: contacts.email_consent,
        phone: contacts.mobile_phone,
        sms_consent: contacts.sms_consent,
    }
}

impl AppointmentEvents {
    async fn visit(
        &self,
        conn: &mut PgConnection,
        event_id: &str,
        appointment: &Appointment,
        previous_start: Option<i64>,
        change: Change,
    ) -> anyhow::Result<()> {
        let version = i64::try_from(appointment.version).unwrap_or(i64::MAX);
        let stored: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM appointments WHERE appointment_id = $1")
                .bind(&appointment.appointment_id)
                .fetch_optional(&mut *conn)
                .await?;
        if stored.is_some_and(|(v,)| v >= version) {
            tracing::info!(appointment_id = %appointment.appointment_id, "stale visit event ignored");
            return Ok(());
        }
        let start = to_timestamp(&appointment.start_time)?;
        let retire = match change {
            Change::Rescheduled => Some(SuppressionReason::Superseded),
            Change::Cancelled => Some(SuppressionReason::AppointmentCancelled),
            _ => None,
        };
        if let Some(reason) = retire {
            for id in notes::queued_reminders(conn, &appointment.appointment_id).await? {
                if let Some(row) = notes::suppress(conn, id, reason as i16).await? {
                    publish::state_changed(conn, &row).await?;
                }
            }
        }
        let status = AppointmentStatus::try_from(appointment.status).unwrap_or_default();
        let row = AppointmentRow {
            appointment_id: appointment.appointment_id.clone(),
            version,
            clinic_id: appointment.clinic_id.clone(),
            patient_id: appointment.patient_id.clone(),
            start_time: store::to_db(start),
            cancelled: matches!(
                status,
                AppointmentStatus::Cancelled
                    | AppointmentStatus::Noshow
                    | AppointmentStatus::EnteredInError
            ),
        };
        if !read_models::advance_appointment(conn, &row).await? {
            anyhow::bail!("a newer event of the visit was applied concurrently; retrying");
        }
        let facts = Facts {
            start: Some(start.as_second()),
            previous_start,
            modality: appointment.modality,
            time_zone: appointment.clinic_time_zone.clone(),
            patient_id: appointment.patient_id.clone(),
            appointment_id: appointment.appointment_id.clone(),
            event_type: match change {
                Change::Booked => "appointment.booked",
                Change::Rescheduled => "appointment.rescheduled",
                Change::Cancelled => "appointment.cancelled",
                Change::NoShow => "appointment.no_show",
                Change::Other => "",
            }
            .to_owned(),
            ..Facts::default()
        };
        let now = Timestamp::now();
        let (patient, clinic) = (&appointment.patient_id, &appointment.clinic_id);
        let mut drafts = match change {
            Change::Booked => plan::to_patient(
                patient,
                clinic,
                Kind::AppointmentConfirmation,
                TemplateId::AppointmentConfirmation,
                &facts,
                now,
                true,
            ),
            Change::Rescheduled => plan::to_patient(
                patient,
                clinic,
                Kind::AppointmentRescheduled,
                TemplateId::AppointmentRescheduled,
                &facts,
                now,
                true,
            ),
            Change::Cancelled => plan::to_patient(
                patient,
                clinic,
                Kind::AppointmentCancelled,
                TemplateId::AppointmentCancelled,
                &facts,
                now,
                true,
            ),
            Change::NoShow => plan::to_patient(
                patient,
                clinic,
                Kind::AppointmentNoShow,
                TemplateId::AppointmentNoShow,
                &facts,
                now,
                true,
            ),
            Change::Other => Vec::new(),
        };
        if matches!(change, Change::Booked | Change::Rescheduled) {
            drafts.extend(plan::reminders(
                patient,
                clinic,
                start,
                &self.leads,
                &facts,
                now,
            ));
        }
        create(conn, event_id, &appointment.appointment_id, drafts).await
    }
}

impl Handler for AppointmentEvents {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a IncomingEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let payload = &event.payload[..];
            let id = event.event_id.to_string();
            let (aggregate, name) = {
                let mut parts = event.subject.rsplit('.');
                let name = parts.next().unwrap_or_default();
                (parts.next().unwrap_or_default(), name)
            };
            match (aggregate, name) {
                ("patient", "registered") => {
                    let patient = ev::PatientRegistered::decode(payload)?
                        .patient
                        .context("no patient")?;
                    read_models::upsert_patient(conn, &patient_row(&patient)).await?;
                }
                ("patient", "updated") => {
                    let patient = ev::PatientUpdated::decode(payload)?
                        .patient
                        .context("no patient")?;
                    read_models::upsert_patient(conn, &patient_row(&patient)).await?;
                }
                ("appointment", "booked") => {
                    let a = ev::AppointmentBooked::decode(payload)?
                        .appointment
                        .context("no appointment")?;
                    self.visit(conn, &id, &a, None, Change::Booked).await?;
                }
                ("appointment", "rescheduled") => {
                    let e = ev::AppointmentRescheduled::decode(payload)?;
                    let a = e.appointment.context("no appointment")?;
                    self.visit(
                        conn,
                        &id,
                        &a,
                        seconds(&e.previous_start_time),
                        Change::Rescheduled,
                    )
                    .await?;
                }
                ("appointment", "cancelled") => {
                    let a = ev::AppointmentCancelled::decode(payload)?
                        .appointment
                        .context("no appointment")?;
                    self.visit(conn, &id, &a, None, Change::Cancelled).await?;
                }
                ("appointment", "no_show") => {
                    let a = ev::AppointmentNoShow::decode(payload)?
                        .appointment
                        .context("no appointment")?;
                    self.visit(conn, &id, &a, None, Change::NoShow).await?;
                }
                ("appointment", "checked_in") => {
                    let a = ev::AppointmentCheckedIn::decode(payload)?
                        .appointment
                        .context("no appointment")?;
                    self.visit(conn, &id, &a, None, Change::Other).await?;
                }
                ("appointment", "fulfilled") => {
                    let a = ev::AppointmentFulfilled::decode(payload)?
                        .appointment
                        .context("no appointment")?;
                    self.visit(conn, &id, &a, None, Change::Other).await?;
                }
                ("appointment", "integration_window_opened") => {
                    let e = ev::IntegrationWindowOpened::decode(payload)?;
                    let window = e.window.context("no window")?;
                    let interval = window.window.context("no window interval")?;
                    let facts = Facts {
                        window_start: seconds(&interval.start_time),
                        window_end: seconds(&interval.end_time),
                        time_zone: e.clinic_time_zone.clone(),
                        patient_id: e.patient_id.clone(),
                        appointment_id: window.source_appointment_id.clone(),
                        event_type: "appointment.integration_window_opened".into(),
                        ..Facts::default()
                    };
                    let drafts = plan::to_patient(
                        &e.patient_id,
                        &e.clinic_id,
                        Kind::IntegrationSessionOffer,
                        TemplateId::IntegrationSessionOffer,
                        &facts,
                        Timestamp::now(),
                        false,
                    );
                    create(conn, &id, &window.source_appointment_id, drafts).await?;
                }
                ("appointment", "safety_follow_up_required") => {
                    let e = ev::SafetyFollowUpRequired::decode(payload)?;
                    let facts = Facts {
                        detect_time: seconds(&e.detect_time),
                        patient_id: e.patient_id.clone(),
                        appointment_id: e.appointment_id.clone(),
                        event_type: "appointment.safety_follow_up_required".into(),
                        ..Facts::default()
                    };
                    let now = Timestamp::now();
                    let mut drafts = plan::to_clinic(
                        &e.clinic_id,
                        &[Channel::Email, Channel::Sms],
                        Kind::SafetyFollowUp,
                        TemplateId::SafetyFollowUp,
                        &facts,
                        now,
                    );
                    drafts.push(plan::to_webhooks(
                        &e.clinic_id,
                        Kind::SafetyFollowUp,
                        &facts,
                        now,
                    ));
                    create(conn, &id, &e.appointment_id, drafts).await?;
                }
                _ => {}
            }
            Ok(())
        })
    }
}

struct InsuranceEvents;

impl Handler for InsuranceEvents {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a IncomingEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let payload = &event.payload[..];
            let id = event.event_id.to_string();
            let now = Timestamp::now();
            match event.subject.as_str() {
                "clinicnet.insurance.prior_authorization.decided" => {
                    let pa = ev::PriorAuthorizationDecided::decode(payload)?
                        .prior_authorization
                        .context("no prior authorization")?;
                    let decision =
                        match PriorAuthorizationStatus::try_from(pa.status).unwrap_or_default() {
                            PriorAuthorizationStatus::Approved => "approved",
                            PriorAuthorizationStatus::Denied => "denied",
                            PriorAuthorizationStatus::Pended => "pended",
                            _ => return Ok(()),
                        };
                    let authorization_number = match &pa.decision {
                        Some(Decision::Approval(approval)) => approval.authorization_number.clone(),
                        _ => String::new(),
                    };
                    let facts = Facts {
                        patient_id: pa.patient_id.clone(),
                        appointment_id: pa.appointment_id.clone(),
                        decision: decision.into(),
                        prior_authorization_id: pa.prior_authorization_id.clone(),
                        authorization_number,
                        event_type: "prior_authorization.decided".into(),
                        ..Facts::default()
                    };
                    let mut drafts = plan::to_patient(
                        &pa.patient_id,
                        &pa.clinic_id,
                        Kind::PriorAuthorizationDecided,
                        TemplateId::PriorAuthorizationDecided,
                        &facts,
                        now,
                        true,
                    );
                    drafts.extend(plan::to_clinic(
                        &pa.clinic_id,
                        &[Channel::Email],
                        Kind::PriorAuthorizationDecided,
                        TemplateId::PriorAuthorizationDecidedClinic,
                        &facts,
                        now,
                    ));
                    create(conn, &id, &pa.appointment_id, drafts).await?;
                }
                "clinicnet.insurance.claim.adjudicated" => {
                    let claim = ev::ClaimAdjudicated::decode(payload)?
                        .claim
                        .context("no claim")?;
                    let owed = claim.patient_responsibility.clone().unwrap_or_default();
                    if owed.amount_cents <= 0 {
                        return Ok(());
                    }
                    let date = claim.service_date.unwrap_or_default();
                    let facts = Facts {
                        patient_id: claim.patient_id.clone(),
                        appointment_id: claim.appointment_id.clone(),
                        amount_cents: Some(owed.amount_cents),
                        currency: owed.currency_code,
                        service_date: format!("{:04}-{:02}-{:02}", date.year, date.month, date.day),
                        event_type: "claim.adjudicated".into(),
                        ..Facts::default()
                    };
                    let drafts = plan::to_patient(
                        &claim.patient_id,
                        &claim.clinic_id,
                        Kind::PatientResponsibility,
                        TemplateId::PatientResponsibility,
                        &facts,
                        now,
                        false,
                    );
                    create(conn, &id, &claim.appointment_id, drafts).await?;
                }
                "clinicnet.insurance.superbill.issued" => {
                    let bill = ev::SuperbillIssued::decode(payload)?
                        .superbill
                        .context("no superbill")?;
                    let date = bill.service_date.unwrap_or_default();
                    let facts = Facts {
                        patient_id: bill.patient_id.clone(),
                        appointment_id: bill.appointment_id.clone(),
                        service_date: format!("{:04}-{:02}-{:02}", date.year, date.month, date.day),
                        event_type: "superbill.issued".into(),
                        ..Facts::default()
                    };
                    let drafts = plan::to_patient(
                        &bill.patient_id,
                        &bill.clinic_id,
                        Kind::SuperbillIssued,
                        TemplateId::SuperbillIssued,
                        &facts,
                        now,
                        false,
                    );
                    create(conn, &id, &bill.appointment_id, drafts).await?;
                }
                _ => {}
            }
            Ok(())
        })
    }
}
