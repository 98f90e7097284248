//! Treatment courses: ListCoursePlans (configured data), CreateCourse (sessions planned from the
//! plan, gated on the clinic and the intake), BookCourse (every session or none: one violation per
//! session that cannot be booked) and GetCourse.

use super::{
    State, caller, convert, idempotent, patients,
    placing::{self, CourseSession, Visit},
    validate,
};
use crate::{
    domain::{
        course::{self, Candidate, Preferences},
        gates,
        refusal::refuse,
        visit as visits,
    },
    store,
    store::availability::Search,
};
use clinicnet_proto::{
    appointments::v1::{
        BookCourseRequest, BookCourseResponse, CoursePreferences, CreateCourseRequest,
        CreateCourseResponse, GetCourseRequest, GetCourseResponse, ListCoursePlansRequest,
        ListCoursePlansResponse, PreconditionRule as Rule,
    },
    common::v1::{DayOfWeek, Modality},
};
use platform::{
    ApiError, audit,
    error::Violations,
    idempotency::{self, Start},
    paging::Page,
};
use prost::Message;
use sqlx::{Connection, PgConnection};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;
use tonic::{Code, Request, Status};
use tonic_types::{ErrorDetails, StatusExt};
use uuid::Uuid;

/// Most free slots considered when the service picks a course's slots.
const MAX_CANDIDATES: i64 = 5_000;

/// ListCoursePlans.
pub async fn list_plans(
    state: &State,
    request: Request<ListCoursePlansRequest>,
) -> Result<ListCoursePlansResponse, ApiError> {
    let _caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let modality = match Modality::try_from(req.modality) {
        Ok(Modality::Unspecified) => None,
        Ok(m) => Some(m as i16),
        Err(_) => {
            v.add("modality", "unknown modality");
            None
        }
    };
    v.finish()?;
    let filters = ListCoursePlansRequest {
        modality: req.modality,
        ..Default::default()
    };
    let page: Page<String> = Page::parse(&filters, req.page_size, &req.page_token, 50, 500)?;
    let mut conn = state.pool.acquire().await?;
    let rows = store::courses::plans(
        &mut conn,
        modality,
        page.after.as_deref(),
        page.fetch_limit(),
    )
    .await?;
    let (rows, next) = page.finish(rows, |r| r.plan_code.clone());
    Ok(ListCoursePlansResponse {
        plans: rows.iter().map(convert::plan).collect(),
        next_page_token: next,
    })
}

fn check_preferences(v: &mut Violations, preferences: Option<&CoursePreferences>) {
    let Some(p) = preferences else { return };
    if p.provider_id.len() > 200 {
        v.add("preferences.provider_id", "at most 200 characters");
    }
    if let Some(t) = &p.preferred_start
        && (!(0..24).contains(&t.hours) || !(0..60).contains(&t.minutes))
    {
        v.add(
            "preferences.preferred_start",
            "a time of day from 00:00 to 23:59",
        );
    }
    for (i, d) in p.days.iter().enumerate() {
        if DayOfWeek::try_from(*d).map_or(true, |d| d == DayOfWeek::Unspecified) {
            v.add(format!("preferences.days[{i}]"), "unknown day");
        }
    }
}

/// CreateCourse.
pub async fn create(
    state: &State,
    request: Request<CreateCourseRequest>,
) -> Result<CreateCourseResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let patient_id = validate::id(&mut v, "patient_id", &req.patient_id);
    validate::text_id(&mut v, "clinic_id", &req.clinic_id);
    validate::text_id(&mut v, "plan_code", &req.plan_code);
    let start_date = match req.start_date.as_ref().map(convert::calendar_date) {
        None => {
            v.add("start_date", "required");
            None
        }
        Some(None) => {
            v.add("start_date", "not a calendar date");
            None
        }
        Some(Some(d)) => Some(d),
    };
    check_preferences(&mut v, req.preferences.as_ref());
    v.finish()?;
    let (Some(patient_id), Some(start_date)) = (patient_id, start_date) else {
        return Err(ApiError::invalid("patient_id", "required"));
    };
    caller.require_clinic(&req.clinic_id)?;
    idempotent(
        &state.pool,
        &caller,
        "CreateCourse",
        &req.request_id,
        &req,
        async |conn: &mut PgConnection| {
            let plan = store::courses::plan(conn, &req.plan_code)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("plan {}", req.plan_code)))?;
            patients::require_access(conn, &caller, patient_id).await?;
            let clinic = store::directory::clinic(conn, &req.clinic_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("clinic {}", req.clinic_id)))?;
            if start_date < clinic.zone.local_date(OffsetDateTime::now_utc()) {
                return Err(ApiError::invalid("start_date", "today or later"));
            }
            let modality =
                Modality::try_from(i32::from(plan.modality)).unwrap_or(Modality::Unspecified);
            gates::check_clinic_offers(&clinic, modality, start_date)?;
            let intake = store::patients::intake_in_force(conn, patient_id).await?;
            gates::check_eligibility(modality, intake.as_ref(), &state.settings.clinical_rules())?;
            let sessions = course::plan_sessions(&plan.phases, start_date);
            let row = store::courses::insert(
                conn,
                &store::courses::NewCourse {
                    course_id: Uuid::now_v7(),
                    patient_id,
                    clinic_id: &req.clinic_id,
                    plan: convert::plan(&plan).encode_to_vec(),
                    start_date,
                    preferences: req.preferences.clone().unwrap_or_default().encode_to_vec(),
                },
                &plan.phases,
                &sessions,
            )
            .await?;
            audit::record(conn, &caller, "course.create", &req.patient_id).await?;
            let sessions = store::courses::sessions(conn, row.course_id).await?;
            Ok(CreateCourseResponse {
                course: Some(convert::course(&row, &sessions)),
            })
        },
    )
    .await
}

/// GetCourse.
pub async fn get(
    state: &State,
    request: Request<GetCourseRequest>,
) -> Result<GetCourseResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let course_id = validate::id(&mut v, "course_id", &req.course_id);
    v.finish()?;
    let course_id = course_id.ok_or_else(|| ApiError::invalid("course_id", "required"))?;
    let mut tx = state.pool.begin().await?;
    let row = store::courses::get(&mut tx, course_id, false)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("course {course_id}")))?;
    caller.require_clinic(&row.clinic_id)?;
    let sessions = store::courses::sessions(&mut tx, course_id).await?;
    audit::record(&mut tx, &caller, "course.read", &row.patient_id.to_string()).await?;
    tx.commit().await?;
    Ok(GetCourseResponse {
        course: Some(convert::course(&row, &sessions)),
    })
}

/// FAILED_PRECONDITION with one violation per session that cannot be booked: its `type` names the
/// rule (as every FAILED_PRECONDITION does), its subject the session.
fn refused_sessions(refusals: &[(i32, &'static str, String)]) -> Status {
    let mut details = ErrorDetails::new();
    for (session, rule, message) in refusals {
        details.add_precondition_failure_violation(
            *rule,
            format!("session {session}"),
            format!("session {session}: {message}"),
        );
    }
    let sessions: Vec<String> = refusals.iter().map(|(n, _, _)| n.to_string()).collect();
    Status::with_error_details(
        Code::FailedPrecondition,
        format!(
            "{}: sessions {} cannot be booked; nothing was booked",
            refusals[0].1,
            sessions.join(", ")
        ),
        details,
    )
}

/// BookCourse.
pub async fn book(
    state: &State,
    request: Request<BookCourseRequest>,
) -> Result<BookCourseResponse, Status> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let course_id = validate::id(&mut v, "course_id", &req.course_id);
    let mut choices: BTreeMap<i32, Uuid> = BTreeMap::new();
    for (i, choice) in req.choices.iter().enumerate() {
        let slot = validate::id(&mut v, &format!("choices[{i}].slot_id"), &choice.slot_id);
        if choice.session_number <= 0 || choices.contains_key(&choice.session_number) {
            v.add(
                format!("choices[{i}].session_number"),
                "a session of the course, once",
            );
        }
        if let Some(slot) = slot {
            choices.insert(choice.session_number, slot);
        }
    }
    v.finish()?;
    let course_id = course_id.ok_or_else(|| ApiError::invalid("course_id", "required"))?;
    let mut tx = match idempotency::start(&state.pool, &caller, "BookCourse", &req.request_id, &req)
        .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let conn = tx.conn();
    let course = store::courses::get(conn, course_id, true)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("course {course_id}")))?;
    caller.require_clinic(&course.clinic_id)?;
    if course.status != "proposed" {
        return Err(ApiError::from(refuse(
            Rule::IllegalTransition,
            "only a proposed course can be booked",
        ))
        .into());
    }
    let plan = clinicnet_proto::appointments::v1::CoursePlan::decode(course.plan.as_slice())
        .map_err(ApiError::internal)?;
    let sessions = store::courses::sessions(conn, course_id)
        .await
        .map_err(ApiError::from)?;
    let patient = store::patients::get(conn, course.patient_id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("patient {}", course.patient_id)))?;
    let chosen: Vec<(i32, Uuid)> = if choices.is_empty() {
        match pick(conn, state, &course, &plan, &sessions).await? {
            Ok(picked) => picked,
            Err(refusals) => {
                let refusals: Vec<_> = refusals
                    .into_iter()
                    .map(|(n, r)| (n, r.rule_name(), r.message))
                    .collect();
                return Err(refused_sessions(&refusals));
            }
        }
    } else {
        let wanted: BTreeSet<i32> = sessions.iter().map(|s| s.session_number).collect();
        if choices.keys().copied().collect::<BTreeSet<_>>() != wanted {
            return Err(ApiError::invalid(
                "choices",
                "exactly one slot for every session of the course",
            )
            .into());
        }
        choices.into_iter().collect()
    };
    let mut booked = Vec::new();
    let mut refusals = Vec::new();
    for (number, slot_id) in chosen {
        let dose = sessions
            .iter()
            .find(|s| s.session_number == number)
            .map_or(0, |s| s.planned_dose_mg);
        let slot = store::availability::slot(conn, slot_id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound(format!("slot {slot_id}")))?;
        let session = CourseSession {
            course: course.clone(),
            plan: plan.clone(),
            number,
        };
        let visit = Visit {
            appointment_id: Uuid::now_v7(),
            patient: &patient,
            planned_dose_mg: dose,
            course: Some(&session),
            moving: None,
            integration_source: None,
        };
        let mut attempt = conn.begin().await.map_err(ApiError::from)?;
        match placing::book_visit(
            &mut attempt,
            state,
            &caller,
            slot,
            None,
            &visit,
            &req.request_id,
        )
        .await
        {
            Ok(row) => {
                attempt.commit().await.map_err(ApiError::from)?;
                booked.push(row);
            }
            Err(ApiError::FailedPrecondition { rule, message }) => {
                refusals.push((number, rule, message))
            }
            Err(other) => return Err(other.into()),
        }
    }
    if !refusals.is_empty() {
        return Err(refused_sessions(&refusals));
    }
    store::courses::set_status(conn, course_id, "booked")
        .await
        .map_err(ApiError::from)?;
    let row = store::courses::get(conn, course_id, false)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("course {course_id}")))?;
    let sessions = store::courses::sessions(conn, course_id)
        .await
        .map_err(ApiError::from)?;
    let response = BookCourseResponse {
        course: Some(convert::course(&row, &sessions)),
        appointments: booked.iter().map(convert::appointment).collect(),
    };
    tx.commit(&response).await?;
    Ok(response)
}

/// Picks a free slot per session from the course's preferences.
async fn pick(
    conn: &mut PgConnection,
    state: &State,
    course: &store::courses::CourseRow,
    plan: &clinicnet_proto::appointments::v1::CoursePlan,
    sessions: &[store::courses::SessionRow],
) -> Result<Result<Vec<(i32, Uuid)>, Vec<(i32, crate::domain::refusal::Refusal)>>, ApiError> {
    let clinic = store::directory::clinic(conn, &course.clinic_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("clinic {}", course.clinic_id)))?;
    let modality = Modality::try_from(plan.modality).unwrap_or(Modality::Unspecified);
    let shape = visits::shape(modality, &clinic.policy, &state.settings.durations())?;
    let planned: Vec<course::PlannedSession> = sessions.iter().map(|s| s.planned()).collect();
    let (Some(first), Some(last)) = (planned.first(), planned.last()) else {
        return Ok(Ok(Vec::new()));
    };
    let from = clinic
        .zone
        .instant(first.earliest, 0, 0)
        .unwrap_or(OffsetDateTime::now_utc())
        - shape.before;
    let to = clinic
        .zone
        .instant(last.latest, 24, 0)
        .unwrap_or(OffsetDateTime::now_utc());
    let preferences = CoursePreferences::decode(course.preferences.as_slice()).unwrap_or_default();
    let provider =
        (!preferences.provider_id.is_empty()).then_some(preferences.provider_id.as_str());
    let search = Search {
        clinic_id: clinic.id(),
        modality: modality as i16,
        from,
        to,
        min_length: shape.occupied(),
        provider_id: provider,
        after: None,
        limit: MAX_CANDIDATES,
    };
    let slots = store::availability::bookable(conn, search).await?;
    let candidates: Vec<Candidate> = slots
        .iter()
        .map(|slot| {
            let placement = shape.place(slot.times().0);
            let local = clinic.zone.local(placement.visit_start);
            Candidate {
                slot_id: slot.slot_id,
                local_date: local.date(),
                local_minutes: i32::from(local.hour()) * 60 + i32::from(local.minute()),
                occupied_start: placement.occupied_start,
                occupied_end: placement.occupied_end,
                chair_id: slot.chair_id.clone(),
                provider_id: slot.provider_id.clone(),
            }
        })
        .filter(|c| {
            c.occupied_start + shape.before
                >= OffsetDateTime::now_utc() + clinic.policy.minimum_notice
        })
        .collect();
    let wanted = Preferences {
        provider_id: provider.map(str::to_owned),
        preferred_minutes: preferences
            .preferred_start
            .map(|t| t.hours * 60 + t.minutes),
        days: preferences
            .days
            .iter()
            .filter_map(|d| u8::try_from(*d).ok())
            .collect(),
    };
    Ok(course::pick_slots(
        &convert::phases(plan),
        &planned,
        &candidates,
        &wanted,
    ))
}
