//! Booking: BookAppointment, RescheduleAppointment (same id, new slot) and
//! BookIntegrationSession (inside the 24–72 hour window of a fulfilled ketamine session).

use super::{
    State, caller, convert, idempotent,
    placing::{
        CourseSession, Visit, book_visit, check_dose_argument, course_session, place, resolve,
        target,
    },
    validate,
};
use crate::{
    domain::{integration, refusal::refuse, visit},
    events::publish,
    store::{self, appointments::Change},
};
use clinicnet_proto::{
    appointments::v1::{
        BookAppointmentRequest, BookAppointmentResponse, BookIntegrationSessionRequest,
        BookIntegrationSessionResponse, CoursePlan, PreconditionRule as Rule,
        RescheduleAppointmentRequest, RescheduleAppointmentResponse, book_appointment_request,
        book_integration_session_request, reschedule_appointment_request,
    },
    common::v1::Modality,
};
use platform::{ApiError, audit, error::Violations};
use prost::Message;
use sqlx::PgConnection;
use tonic::Request;
use uuid::Uuid;

/// BookAppointment.
pub async fn book(
    state: &State,
    request: Request<BookAppointmentRequest>,
) -> Result<BookAppointmentResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let target = match &req.target {
        Some(book_appointment_request::Target::HoldId(h)) => target(&mut v, Some(h), None),
        Some(book_appointment_request::Target::SlotId(s)) => target(&mut v, None, Some(s)),
        None => target(&mut v, None, None),
    };
    let patient_id = validate::id(&mut v, "patient_id", &req.patient_id);
    let course_id = validate::optional_id(&mut v, "course_id", &req.course_id);
    if course_id.is_some() != (req.course_session_number != 0) || req.course_session_number < 0 {
        v.add(
            "course_session_number",
            "required with course_id, and only with it",
        );
    }
    v.finish()?;
    let (Some(target), Some(patient_id)) = (target, patient_id) else {
        return Err(ApiError::invalid("target", "required"));
    };
    idempotent(
        &state.pool,
        &caller,
        "BookAppointment",
        &req.request_id,
        &req,
        async |conn: &mut PgConnection| {
            let (slot, hold) = resolve(conn, target).await?;
            let patient = store::patients::get(conn, patient_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("patient {patient_id}")))?;
            check_dose_argument(
                Modality::try_from(i32::from(slot.modality)).unwrap_or(Modality::Unspecified),
                req.planned_dose_mg,
            )?;
            let session = match course_id {
                Some(course_id) => Some(
                    course_session(conn, course_id, req.course_session_number, patient_id).await?,
                ),
                None => None,
            };
            if let Some(s) = &session
                && s.course.clinic_id != slot.clinic_id
            {
                return Err(ApiError::invalid(
                    "course_id",
                    "the course is at another clinic",
                ));
            }
            let visit = Visit {
                appointment_id: Uuid::now_v7(),
                patient: &patient,
                planned_dose_mg: req.planned_dose_mg,
                course: session.as_ref(),
                moving: None,
                integration_source: None,
            };
            let row = book_visit(
                conn,
                state,
                &caller,
                slot,
                hold.as_ref(),
                &visit,
                &req.request_id,
            )
            .await?;
            Ok(BookAppointmentResponse {
                appointment: Some(convert::appointment(&row)),
            })
        },
    )
    .await
}

/// RescheduleAppointment.
pub async fn reschedule(
    state: &State,
    request: Request<RescheduleAppointmentRequest>,
) -> Result<RescheduleAppointmentResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let appointment_id = validate::id(&mut v, "appointment_id", &req.appointment_id);
    let target = match &req.target {
        Some(reschedule_appointment_request::Target::HoldId(h)) => target(&mut v, Some(h), None),
        Some(reschedule_appointment_request::Target::SlotId(s)) => target(&mut v, None, Some(s)),
        None => target(&mut v, None, None),
    };
    v.finish()?;
    let (Some(appointment_id), Some(target)) = (appointment_id, target) else {
        return Err(ApiError::invalid("appointment_id", "required"));
    };
    idempotent(
        &state.pool,
        &caller,
        "RescheduleAppointment",
        &req.request_id,
        &req,
        async |conn: &mut PgConnection| {
            let before = store::appointments::lock(conn, appointment_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("appointment {appointment_id}")))?;
            caller.require_clinic(&before.clinic_id)?;
            let status =
                crate::domain::lifecycle::Status::from_code(&before.status).ok_or_else(|| {
                    ApiError::internal(anyhow::anyhow!("unknown status {}", before.status))
                })?;
            crate::domain::lifecycle::transition(
                status,
                crate::domain::lifecycle::Action::Reschedule,
            )?;
            let (slot, hold) = resolve(conn, target).await?;
            if i32::from(slot.modality) != i32::from(before.modality) {
                return Err(refuse(
                    Rule::ModalityNotSupported,
                    "the new slot is for another modality",
                )
                .into());
            }
            let patient = store::patients::get(conn, before.patient_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("patient {}", before.patient_id)))?;
            let session = match before.course_id {
                Some(course_id) => {
                    let course = store::courses::get(conn, course_id, true)
                        .await?
                        .ok_or_else(|| ApiError::NotFound(format!("course {course_id}")))?;
                    let plan =
                        CoursePlan::decode(course.plan.as_slice()).map_err(ApiError::internal)?;
                    Some(CourseSession {
                        course,
                        plan,
                        number: before.course_session_number,
                    })
                }
                None => None,
            };
            let visit = Visit {
                appointment_id,
                patient: &patient,
                planned_dose_mg: before.planned_dose_mg,
                course: session.as_ref(),
                moving: Some(&before),
                integration_source: None,
            };
            let placed = place(conn, state, &caller, slot, hold.as_ref(), &visit).await?;
            let row = store::appointments::change(
                conn,
                appointment_id,
                &Change::Rescheduled {
                    slot_id: placed.slot.slot_id,
                    clinic_id: &placed.slot.clinic_id,
                    chair_id: placed.slot.chair_id.as_deref(),
                    provider_id: &placed.provider_id,
                    start: placed.placement.visit_start,
                    end: placed.placement.visit_end,
                    time_zone: placed.clinic.zone.name(),
                },
            )
            .await?;
            audit::record(
                conn,
                &caller,
                "appointment.reschedule",
                &row.patient_id.to_string(),
            )
            .await?;
            let appointment = convert::appointment(&row);
            publish::rescheduled(
                conn,
                &appointment,
                &convert::appointment(&before),
                &req.request_id,
            )
            .await?;
            Ok(RescheduleAppointmentResponse {
                appointment: Some(appointment),
            })
        },
    )
    .await
}

/// BookIntegrationSession.
pub async fn book_integration(
    state: &State,
    request: Request<BookIntegrationSessionRequest>,
) -> Result<BookIntegrationSessionResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let source_id = validate::id(&mut v, "source_appointment_id", &req.source_appointment_id);
    let target = match &req.target {
        Some(book_integration_session_request::Target::HoldId(h)) => target(&mut v, Some(h), None),
        Some(book_integration_session_request::Target::SlotId(s)) => target(&mut v, None, Some(s)),
        None => target(&mut v, None, None),
    };
    v.finish()?;
    let (Some(source_id), Some(target)) = (source_id, target) else {
        return Err(ApiError::invalid("source_appointment_id", "required"));
    };
    idempotent(
        &state.pool,
        &caller,
        "BookIntegrationSession",
        &req.request_id,
        &req,
        async |conn: &mut PgConnection| {
            let source = store::appointments::get(conn, source_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("appointment {source_id}")))?;
            caller.require_clinic(&source.clinic_id)?;
            let window = source
                .integration_window
                .as_ref()
                .map(store::bounds)
                .filter(|_| source.status == "fulfilled")
                .ok_or_else(|| {
                    refuse(
                        Rule::OutsideIntegrationWindow,
                        "the source visit is not a fulfilled ketamine or esketamine session",
                    )
                })?;
            let (slot, hold) = resolve(conn, target).await?;
            let modality =
                Modality::try_from(i32::from(slot.modality)).unwrap_or(Modality::Unspecified);
            if !visit::is_integration_session(modality) {
                return Err(refuse(
                    Rule::ModalityNotSupported,
                    "an integration session needs an integration, psychotherapy or telehealth slot",
                )
                .into());
            }
            let clinic = store::directory::clinic(conn, &slot.clinic_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("clinic {}", slot.clinic_id)))?;
            let shape = visit::shape(modality, &clinic.policy, &state.settings.durations())?;
            integration::check_inside(window, shape.place(slot.times().0).visit_start)?;
            let patient = store::patients::get(conn, source.patient_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("patient {}", source.patient_id)))?;
            let visit = Visit {
                appointment_id: Uuid::now_v7(),
                patient: &patient,
                planned_dose_mg: 0,
                course: None,
                moving: None,
                integration_source: Some(source_id),
            };
            let row = book_visit(
                conn,
                state,
                &caller,
                slot,
                hold.as_ref(),
                &visit,
                &req.request_id,
            )
            .await?;
            Ok(BookIntegrationSessionResponse {
                appointment: Some(convert::appointment(&row)),
            })
        },
    )
    .await
}
