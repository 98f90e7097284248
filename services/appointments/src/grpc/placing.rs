//! Placing a visit, shared by every booking RPC: the target (a hold or a slot), every gate, the
//! course plan's frequency, then the reservation PostgreSQL refuses to overlap — a clash on the
//! chair is SLOT_UNAVAILABLE, a clash on an assigned provider tries the clinic's next provider.

use super::{State, convert, validate};
use crate::{
    domain::{
        clinic::ClinicView,
        course,
        gates::{self, BookingFacts},
        refusal::refuse,
        visit::{self, Placement},
    },
    events::publish::{self, VisitEvent},
    store::{
        self,
        appointments::{AppointmentRow, NewAppointment},
        availability::SlotRow,
        courses::CourseRow,
        holds::HoldRow,
        patients::PatientRow,
        reservations::{self, Clash, Occupancy},
    },
};
use clinicnet_proto::{
    appointments::v1::{CoursePlan, PreconditionRule as Rule},
    common::v1::Modality,
};
use platform::{ApiError, audit, auth::Caller, error::Violations};
use prost::Message;
use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;

/// What a booking names: an active hold, or a free slot.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    /// A hold to consume.
    Hold(Uuid),
    /// A slot to book directly.
    Slot(Uuid),
}

pub(super) fn target(
    v: &mut Violations,
    hold_id: Option<&str>,
    slot_id: Option<&str>,
) -> Option<Target> {
    match (hold_id, slot_id) {
        (Some(hold), None) => validate::id(v, "hold_id", hold).map(Target::Hold),
        (None, Some(slot)) => validate::id(v, "slot_id", slot).map(Target::Slot),
        _ => {
            v.add("target", "required: a hold_id or a slot_id");
            None
        }
    }
}

/// The slot a target names (and the hold, locked), checking the hold can still be used.
pub(super) async fn resolve(
    conn: &mut PgConnection,
    target: Target,
) -> Result<(SlotRow, Option<HoldRow>), ApiError> {
    let (slot_id, hold) = match target {
        Target::Slot(slot_id) => (slot_id, None),
        Target::Hold(hold_id) => {
            let hold = store::holds::lock(conn, hold_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("hold {hold_id}")))?;
            match hold.status.as_str() {
                "active" if !hold.lapsed => {}
                "consumed" => Err(refuse(
                    Rule::SlotUnavailable,
                    "the hold was already used for a booking",
                ))?,
                _ => Err(refuse(
                    Rule::HoldExpired,
                    "the hold expired or was released; hold the slot again",
                ))?,
            }
            (hold.slot_id, Some(hold))
        }
    };
    let slot = store::availability::slot(conn, slot_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("slot {slot_id}")))?;
    Ok((slot, hold))
}

/// The course session a visit belongs to.
#[derive(Debug, Clone)]
pub(super) struct CourseSession {
    /// The course.
    pub course: CourseRow,
    /// Its plan's phases and sessions.
    pub plan: CoursePlan,
    /// The session number.
    pub number: i32,
}

/// What is being placed.
#[derive(Debug)]
pub(super) struct Visit<'a> {
    /// The visit's id (a new one, or the moved visit's).
    pub appointment_id: Uuid,
    /// The patient.
    pub patient: &'a PatientRow,
    /// Planned dose, mg.
    pub planned_dose_mg: i32,
    /// The course session, when in a course.
    pub course: Option<&'a CourseSession>,
    /// The visit being moved, when rescheduling.
    pub moving: Option<&'a AppointmentRow>,
    /// For an integration session, the visit whose window it is in.
    pub integration_source: Option<Uuid>,
}

/// Where a visit was placed.
#[derive(Debug)]
pub(super) struct Placed {
    /// The slot's clinic.
    pub clinic: ClinicView,
    /// The slot.
    pub slot: SlotRow,
    /// Chair and provider occupied.
    pub provider_id: String,
    /// Visit and occupied times.
    pub placement: Placement,
}

/// The esketamine dose rule on the wire: 28, 56 or 84 mg.
pub(super) fn check_dose_argument(modality: Modality, dose: i32) -> Result<(), ApiError> {
    match modality {
        Modality::EsketamineNasalSpray if ![28, 56, 84].contains(&dose) => Err(ApiError::invalid(
            "planned_dose_mg",
            "esketamine is dosed at 28, 56 or 84 mg",
        )),
        Modality::IvKetamine | Modality::OralKetamineLozenge if dose <= 0 => Err(
            ApiError::invalid("planned_dose_mg", "required for ketamine"),
        ),
        _ if dose < 0 => Err(ApiError::invalid("planned_dose_mg", "must not be negative")),
        _ => Ok(()),
    }
}

/// Runs every gate for placing `visit` in `slot` (consuming `hold`), then reserves its chair and
/// provider.
pub(super) async fn place(
    conn: &mut PgConnection,
    state: &State,
    caller: &Caller,
    slot: SlotRow,
    hold: Option<&HoldRow>,
    visit: &Visit<'_>,
) -> Result<Placed, ApiError> {
    caller.require_clinic(&slot.clinic_id)?;
    let clinic = store::directory::clinic(conn, &slot.clinic_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("clinic {}", slot.clinic_id)))?;
    let held_here = hold.is_some_and(|h| h.slot_id == slot.slot_id);
    let usable = slot.status == "free" || (held_here && slot.status == "busy-tentative");
    if !usable {
        return Err(refuse(
            Rule::SlotUnavailable,
            "the slot is booked, held by another hold or no longer offered",
        )
        .into());
    }
    if let Some(patient) = hold.and_then(|h| h.patient_id)
        && patient != visit.patient.patient_id
    {
        return Err(refuse(
            Rule::SlotUnavailable,
            "the slot is held for another patient",
        )
        .into());
    }
    let modality = Modality::try_from(i32::from(slot.modality)).unwrap_or(Modality::Unspecified);
    let chair = match &slot.chair_id {
        Some(chair_id) => Some(
            store::directory::chair(conn, chair_id)
                .await?
                .filter(|c| !c.retired)
                .ok_or_else(|| refuse(Rule::SlotUnavailable, "the slot's chair was retired"))?,
        ),
        None => None,
    };
    let chair_modalities = chair.as_ref().map(|c| store::modalities(&c.modalities));
    let slot_provider = match &slot.provider_id {
        Some(provider_id) => store::directory::provider(conn, provider_id).await?,
        None => None,
    };
    let provider_modalities = slot_provider.as_ref().map(|p| {
        if p.active {
            store::modalities(&p.modalities)
        } else {
            Vec::new()
        }
    });
    let intake = if visit::is_ketamine(modality) {
        store::patients::intake_in_force(conn, visit.patient.patient_id).await?
    } else {
        None
    };
    let first_esketamine = modality == Modality::EsketamineNasalSpray
        && !store::appointments::had_esketamine(
            conn,
            visit.patient.patient_id,
            Modality::EsketamineNasalSpray as i16,
            visit.moving.map(|m| m.appointment_id),
        )
        .await?;
    let course_dose = visit.course.and_then(|c| {
        course::plan_sessions(&convert::phases(&c.plan), c.course.start_date)
            .into_iter()
            .find(|s| s.number == c.number)
            .map(|s| s.planned_dose_mg)
    });
    let (start, end) = slot.times();
    let facts = BookingFacts {
        clinic: &clinic,
        modality,
        chair_modalities: chair_modalities.as_deref(),
        provider_modalities: provider_modalities.as_deref(),
        slot_start: start,
        slot_end: end,
        now: OffsetDateTime::now_utc(),
        birth_date: visit.patient.birth_date,
        intake: intake.as_ref(),
        planned_dose_mg: visit.planned_dose_mg,
        first_esketamine_session: first_esketamine,
        course_dose_mg: course_dose,
    };
    let placement = gates::check_booking(
        &facts,
        &state.settings.durations(),
        &state.settings.clinical_rules(),
    )?;
    if let Some(session) = visit.course {
        check_course_frequency(
            conn,
            &clinic,
            session,
            visit.moving.map(|m| m.appointment_id),
            placement,
        )
        .await?;
    }
    if let Some(hold) = hold {
        store::holds::finish(conn, hold.hold_id, "consumed").await?;
    }
    let candidates = match &slot.provider_id {
        Some(provider_id) => vec![provider_id.clone()],
        None => assignable_providers(conn, &clinic, modality, slot.slot_id).await?,
    };
    let provider_id = reserve(
        conn,
        &slot,
        placement,
        &candidates,
        visit.appointment_id,
        visit.moving.is_some(),
    )
    .await?;
    Ok(Placed {
        clinic,
        slot,
        provider_id,
        placement,
    })
}

async fn check_course_frequency(
    conn: &mut PgConnection,
    clinic: &ClinicView,
    session: &CourseSession,
    except: Option<Uuid>,
    placement: Placement,
) -> Result<(), ApiError> {
    let phases = convert::phases(&session.plan);
    let sessions = course::plan_sessions(&phases, session.course.start_date);
    let mut booked: Vec<(i32, time::Date)> =
        store::appointments::course_visits(conn, session.course.course_id, except)
            .await?
            .into_iter()
            .map(|(n, start)| (n, clinic.zone.local_date(start)))
            .collect();
    booked.push((
        session.number,
        clinic.zone.local_date(placement.visit_start),
    ));
    match course::check_schedule(&phases, &sessions, &booked)
        .into_iter()
        .find(|(n, _)| *n == session.number)
    {
        Some((_, refusal)) => Err(refusal.into()),
        None => Ok(()),
    }
}

/// Active providers of the clinic offering the modality, rotated by the slot so assignments
/// spread across them.
async fn assignable_providers(
    conn: &mut PgConnection,
    clinic: &ClinicView,
    modality: Modality,
    slot_id: Uuid,
) -> Result<Vec<String>, ApiError> {
    let mut ids: Vec<String> = store::directory::providers_of(conn, clinic.id())
        .await?
        .into_iter()
        .filter(|p| p.serves(clinic.id(), modality as i32))
        .map(|p| p.provider_id)
        .collect();
    if ids.is_empty() {
        return Err(refuse(
            Rule::ModalityNotSupported,
            "no active provider of the clinic offers the modality",
        )
        .into());
    }
    let turn = usize::try_from(slot_id.as_u128() % ids.len() as u128).unwrap_or(0);
    ids.rotate_left(turn);
    Ok(ids)
}

/// Reserves the slot's chair and the first free provider among `candidates` (a new reservation,
/// or the moved one when rescheduling). Returns the provider.
async fn reserve(
    conn: &mut PgConnection,
    slot: &SlotRow,
    placement: Placement,
    candidates: &[String],
    reservation_id: Uuid,
    moving: bool,
) -> Result<String, ApiError> {
    let taken = || {
        ApiError::from(refuse(
            Rule::SlotUnavailable,
            "the chair or provider is already taken at that time",
        ))
    };
    for (i, provider_id) in candidates.iter().enumerate() {
        let occupancy = Occupancy {
            slot_id: slot.slot_id,
            clinic_id: &slot.clinic_id,
            chair_id: slot.chair_id.as_deref(),
            provider_id: Some(provider_id),
            start: placement.occupied_start,
            end: placement.occupied_end,
        };
        reservations::make_way(conn, &occupancy).await?;
        let last = i + 1 == candidates.len();
        let result = if last {
            write_reservation(conn, &occupancy, reservation_id, moving).await
        } else {
            let mut attempt = conn.begin().await?;
            let result = write_reservation(&mut attempt, &occupancy, reservation_id, moving).await;
            if result.is_ok() {
                attempt.commit().await?;
            }
            result
        };
        match result {
            Ok(()) => return Ok(provider_id.clone()),
            Err(error) => match reservations::clash_of(&error) {
                Some(Clash::Provider) if !last => continue,
                Some(_) => return Err(taken()),
                None => return Err(error.into()),
            },
        }
    }
    Err(taken())
}

async fn write_reservation(
    conn: &mut PgConnection,
    occupancy: &Occupancy<'_>,
    reservation_id: Uuid,
    moving: bool,
) -> Result<(), sqlx::Error> {
    if moving {
        reservations::move_to(conn, reservation_id, occupancy).await
    } else {
        reservations::insert(conn, reservation_id, occupancy, None)
            .await
            .map(|_| ())
    }
}

/// Inserts a placed visit under the reservation `place` made.
async fn insert_visit(
    conn: &mut PgConnection,
    placed: &Placed,
    visit: &Visit<'_>,
) -> Result<AppointmentRow, ApiError> {
    let row = store::appointments::insert(
        conn,
        &NewAppointment {
            appointment_id: visit.appointment_id,
            clinic_id: &placed.slot.clinic_id,
            chair_id: placed.slot.chair_id.as_deref(),
            provider_id: &placed.provider_id,
            patient_id: visit.patient.patient_id,
            modality: placed.slot.modality,
            start_time: placed.placement.visit_start,
            end_time: placed.placement.visit_end,
            clinic_time_zone: placed.clinic.zone.name(),
            planned_dose_mg: visit.planned_dose_mg,
            course: visit.course.map(|c| (c.course.course_id, c.number)),
            slot_id: placed.slot.slot_id,
            integration_source: visit.integration_source,
        },
    )
    .await?;
    if let Some(session) = visit.course {
        store::courses::assign(
            conn,
            session.course.course_id,
            session.number,
            row.appointment_id,
        )
        .await?;
    }
    Ok(row)
}

/// Places and records a new visit, with its event and audit entry.
pub(super) async fn book_visit(
    conn: &mut PgConnection,
    state: &State,
    caller: &Caller,
    slot: SlotRow,
    hold: Option<&HoldRow>,
    visit: &Visit<'_>,
    request_id: &str,
) -> Result<AppointmentRow, ApiError> {
    let placed = place(conn, state, caller, slot, hold, visit).await?;
    let row = insert_visit(conn, &placed, visit).await?;
    audit::record(
        conn,
        caller,
        "appointment.book",
        &row.patient_id.to_string(),
    )
    .await?;
    publish::visit(
        conn,
        VisitEvent::Booked,
        &convert::appointment(&row),
        request_id,
    )
    .await?;
    Ok(row)
}

/// The course session a booking names, checked against the patient and the slot's clinic.
pub(super) async fn course_session(
    conn: &mut PgConnection,
    course_id: Uuid,
    number: i32,
    patient_id: Uuid,
) -> Result<CourseSession, ApiError> {
    let course = store::courses::get(conn, course_id, true)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("course {course_id}")))?;
    if course.patient_id != patient_id {
        return Err(ApiError::invalid(
            "course_id",
            "the course is another patient's",
        ));
    }
    let plan = CoursePlan::decode(course.plan.as_slice()).map_err(ApiError::internal)?;
    let sessions = store::courses::sessions(conn, course_id).await?;
    let Some(session) = sessions.iter().find(|s| s.session_number == number) else {
        return Err(ApiError::invalid(
            "course_session_number",
            "the course has no such session",
        ));
    };
    if let Some(existing) = session.appointment_id {
        let current = store::appointments::get(conn, existing).await?;
        if current.is_some_and(|a| a.status != "cancelled" && a.status != "noshow") {
            return Err(refuse(
                Rule::IllegalTransition,
                format!("session {number} is already booked"),
            )
            .into());
        }
    }
    Ok(CourseSession {
        course,
        plan,
        number,
    })
}
