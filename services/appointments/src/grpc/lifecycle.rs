//! The visit lifecycle after booking: CancelAppointment, CheckInAppointment, CompleteAppointment
//! (with what billing and outcomes need, the integration window and the safety follow-up) and
//! MarkNoShow; and reading visits: GetAppointment, ListAppointments.

use super::{State, caller, convert, idempotent, patients::check_phq9, validate};
use crate::{
    domain::{
        integration,
        lifecycle::{self, Action, Status},
        refusal::refuse,
        visit::{self, REMS_MINIMUM_MONITORING_MINUTES},
        zone::ClinicZone,
    },
    events::publish::{self, Billing, VisitEvent},
    store::{
        self,
        appointments::{AppointmentRow, Change, Filter},
    },
};
use clinicnet_proto::{
    appointments::v1::{
        AppointmentStatus, BloodPressure, CancelAppointmentRequest, CancelAppointmentResponse,
        CancellationReason, CheckInAppointmentRequest, CheckInAppointmentResponse,
        CompleteAppointmentRequest, CompleteAppointmentResponse, Completion, GetAppointmentRequest,
        GetAppointmentResponse, ListAppointmentsRequest, ListAppointmentsResponse,
        MarkNoShowRequest, MarkNoShowResponse, PreconditionRule as Rule,
    },
    common::v1::Modality,
};
use platform::{
    ApiError, audit,
    auth::{Caller, Role},
    error::Violations,
    paging::Page,
};
use prost::Message;
use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};
use tonic::Request;
use uuid::Uuid;

/// The visit, locked, after checking the caller's scope and that `action` is legal from its
/// status; returns it with the status it moves to.
async fn begin_transition(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    action: Action,
) -> Result<AppointmentRow, ApiError> {
    let row = store::appointments::lock(conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("appointment {id}")))?;
    caller.require_clinic(&row.clinic_id)?;
    let status = Status::from_code(&row.status)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("unknown status {}", row.status)))?;
    lifecycle::transition(status, action)?;
    Ok(row)
}

fn appointment_id(v: &mut Violations, value: &str) -> Result<Uuid, ApiError> {
    validate::id(v, "appointment_id", value)
        .ok_or_else(|| ApiError::invalid("appointment_id", "required"))
}

async fn after_terminal(conn: &mut PgConnection, row: &AppointmentRow) -> Result<(), ApiError> {
    store::reservations::release(conn, row.appointment_id).await?;
    if let Some(course_id) = row.course_id {
        store::courses::complete_if_done(conn, course_id).await?;
    }
    Ok(())
}

/// CancelAppointment.
pub async fn cancel(
    state: &State,
    request: Request<CancelAppointmentRequest>,
) -> Result<CancelAppointmentResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let id = validate::id(&mut v, "appointment_id", &req.appointment_id);
    if CancellationReason::try_from(req.reason)
        .map_or(true, |r| r == CancellationReason::Unspecified)
    {
        v.add("reason", "required");
    }
    if req.note.chars().count() > 500 {
        v.add("note", "at most 500 characters");
    }
    v.finish()?;
    let id = id.ok_or_else(|| ApiError::invalid("appointment_id", "required"))?;
    idempotent(
        &state.pool,
        &caller,
        "CancelAppointment",
        &req.request_id,
        &req,
        async |conn: &mut PgConnection| {
            let before = begin_transition(conn, &caller, id, Action::Cancel).await?;
            let period = store::directory::clinic(conn, &before.clinic_id)
                .await?
                .map_or(Duration::hours(24), |c| c.policy.late_cancellation);
            let late = lifecycle::is_late_cancellation(
                OffsetDateTime::now_utc(),
                before.start_time,
                period,
            );
            let reason = i16::try_from(req.reason).unwrap_or(0);
            let row = store::appointments::change(
                conn,
                id,
                &Change::Cancelled {
                    reason,
                    note: &req.note,
                    late,
                },
            )
            .await?;
            after_terminal(conn, &row).await?;
            audit::record(
                conn,
                &caller,
                "appointment.cancel",
                &row.patient_id.to_string(),
            )
            .await?;
            let appointment = convert::appointment(&row);
            publish::visit(conn, VisitEvent::Cancelled, &appointment, &req.request_id).await?;
            Ok(CancelAppointmentResponse {
                appointment: Some(appointment),
                late_cancellation: late,
            })
        },
    )
    .await
}

/// CheckInAppointment.
pub async fn check_in(
    state: &State,
    request: Request<CheckInAppointmentRequest>,
) -> Result<CheckInAppointmentResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let id = validate::id(&mut v, "appointment_id", &req.appointment_id);
    v.finish()?;
    let id = id.ok_or_else(|| ApiError::invalid("appointment_id", "required"))?;
    idempotent(
        &state.pool,
        &caller,
        "CheckInAppointment",
        &req.request_id,
        &req,
        async |conn: &mut PgConnection| {
            begin_transition(conn, &caller, id, Action::CheckIn).await?;
            let row = store::appointments::change(conn, id, &Change::CheckedIn).await?;
            audit::record(
                conn,
                &caller,
                "appointment.check_in",
                &row.patient_id.to_string(),
            )
            .await?;
            let appointment = convert::appointment(&row);
            publish::visit(conn, VisitEvent::CheckedIn, &appointment, &req.request_id).await?;
            Ok(CheckInAppointmentResponse {
                appointment: Some(appointment),
            })
        },
    )
    .await
}

/// MarkNoShow.
pub async fn no_show(
    state: &State,
    request: Request<MarkNoShowRequest>,
) -> Result<MarkNoShowResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let id = appointment_id(&mut v, &req.appointment_id);
    v.finish()?;
    let id = id?;
    idempotent(
        &state.pool,
        &caller,
        "MarkNoShow",
        &req.request_id,
        &req,
        async |conn: &mut PgConnection| {
            let before = begin_transition(conn, &caller, id, Action::MarkNoShow).await?;
            lifecycle::check_no_show(OffsetDateTime::now_utc(), before.start_time)?;
            let row = store::appointments::change(conn, id, &Change::NoShow).await?;
            after_terminal(conn, &row).await?;
            audit::record(
                conn,
                &caller,
                "appointment.no_show",
                &row.patient_id.to_string(),
            )
            .await?;
            let appointment = convert::appointment(&row);
            publish::visit(conn, VisitEvent::NoShow, &appointment, &req.request_id).await?;
            Ok(MarkNoShowResponse {
                appointment: Some(appointment),
            })
        },
    )
    .await
}

fn check_pressure(v: &mut Violations, field: &str, bp: Option<&BloodPressure>) {
    let Some(bp) = bp else {
        v.add(field, "required for esketamine");
        return;
    };
    if !(50..=300).contains(&bp.systolic_mmhg) {
        v.add(format!("{field}.systolic_mmhg"), "between 50 and 300");
    }
    if !(20..=200).contains(&bp.diastolic_mmhg) || bp.diastolic_mmhg >= bp.systolic_mmhg {
        v.add(
            format!("{field}.diastolic_mmhg"),
            "between 20 and 200 and below systolic",
        );
    }
}

/// Checks a completion of a `modality` visit, fills its defaults, and returns it with its end time.
fn completion(
    req: Option<&Completion>,
    row: &AppointmentRow,
    now: OffsetDateTime,
) -> Result<(Completion, OffsetDateTime), ApiError> {
    let mut v = Violations::new();
    let Some(completion) = req else {
        return Err(ApiError::invalid("completion", "required"));
    };
    let mut c = completion.clone();
    if c.modality == 0 {
        c.modality = i32::from(row.modality);
    }
    if c.rendering_provider_id.is_empty() {
        c.rendering_provider_id = row.provider_id.clone();
    }
    let modality = Modality::try_from(c.modality).unwrap_or(Modality::Unspecified);
    if modality == Modality::Unspecified {
        v.add("completion.modality", "unknown modality");
    }
    if !(0..=1440).contains(&c.treatment_minutes) {
        v.add("completion.treatment_minutes", "between 0 and 1440");
    }
    if !(0..=1440).contains(&c.monitoring_minutes) {
        v.add("completion.monitoring_minutes", "between 0 and 1440");
    }
    if modality == Modality::EsketamineNasalSpray {
        if c.dose_mg <= 0 || c.dose_mg % 28 != 0 || c.dose_mg > 84 {
            v.add(
                "completion.dose_mg",
                "esketamine is given in 28 mg devices: 28, 56 or 84 mg",
            );
        } else if c.esketamine_devices != c.dose_mg / 28 {
            v.add("completion.esketamine_devices", "must be dose_mg / 28");
        }
        check_pressure(
            &mut v,
            "completion.blood_pressure_before",
            c.blood_pressure_before.as_ref(),
        );
        check_pressure(
            &mut v,
            "completion.blood_pressure_after",
            c.blood_pressure_after.as_ref(),
        );
    } else {
        if c.dose_mg < 0 {
            v.add("completion.dose_mg", "must not be negative");
        }
        if c.esketamine_devices != 0 {
            v.add("completion.esketamine_devices", "only for esketamine");
        }
    }
    match &c.phq9 {
        Some(phq9) => check_phq9(&mut v, "completion.phq9", phq9, true),
        None if visit::is_ketamine(modality) => v.add(
            "completion.phq9",
            "required for ketamine and esketamine visits",
        ),
        None => {}
    }
    let complete_time = match &c.complete_time {
        Some(t) => match convert::instant(t) {
            Some(t) if t <= now + Duration::minutes(5) => Some(t),
            Some(_) => {
                v.add("completion.complete_time", "must not be in the future");
                None
            }
            None => {
                v.add("completion.complete_time", "not a valid timestamp");
                None
            }
        },
        None => Some(now),
    };
    v.finish()?;
    let complete_time = complete_time.unwrap_or(now);
    c.complete_time = Some(convert::timestamp(complete_time));
    if modality == Modality::EsketamineNasalSpray
        && i64::from(c.monitoring_minutes) < REMS_MINIMUM_MONITORING_MINUTES
    {
        return Err(refuse(
            Rule::MonitoringTooShort,
            format!("esketamine needs at least {REMS_MINIMUM_MONITORING_MINUTES} minutes of monitoring after the dose"),
        )
        .into());
    }
    Ok((c, complete_time))
}

/// CompleteAppointment.
pub async fn complete(
    state: &State,
    request: Request<CompleteAppointmentRequest>,
) -> Result<CompleteAppointmentResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let id = appointment_id(&mut v, &req.appointment_id);
    if req.completion.is_none() {
        v.add("completion", "required");
    }
    v.finish()?;
    let id = id?;
    idempotent(
        &state.pool,
        &caller,
        "CompleteAppointment",
        &req.request_id,
        &req,
        async |conn: &mut PgConnection| {
            let before = begin_transition(conn, &caller, id, Action::Complete).await?;
            let now = OffsetDateTime::now_utc();
            let (completion, complete_time) = completion(req.completion.as_ref(), &before, now)?;
            let rendering = store::directory::provider(conn, &completion.rendering_provider_id)
                .await?
                .ok_or_else(|| {
                    ApiError::NotFound(format!("provider {}", completion.rendering_provider_id))
                })?;
            let clinic = store::directory::clinic(conn, &before.clinic_id).await?;
            let modality = Modality::try_from(completion.modality).unwrap_or(Modality::Unspecified);
            let window = visit::is_ketamine(modality).then(|| integration::window(complete_time));
            let phq9 = completion.phq9.clone();
            let row = store::appointments::change(
                conn,
                id,
                &Change::Fulfilled {
                    completion: completion.encode_to_vec(),
                    complete_time,
                    phq9_total: phq9
                        .as_ref()
                        .and_then(|p| i16::try_from(p.total_score).ok()),
                    window,
                },
            )
            .await?;
            let buffer = clinic
                .as_ref()
                .map_or(Duration::ZERO, |c| c.policy.buffer_after);
            store::reservations::end_early(conn, id, complete_time.max(now) + buffer).await?;
            if let Some(course_id) = row.course_id {
                store::courses::complete_if_done(conn, course_id).await?;
            }
            audit::record(
                conn,
                &caller,
                "appointment.complete",
                &row.patient_id.to_string(),
            )
            .await?;
            let appointment = convert::appointment(&row);
            let zone = ClinicZone::parse(&row.clinic_time_zone);
            let service_date = zone.map_or(row.start_time.date(), |z| z.local_date(row.start_time));
            let diagnosis_codes = store::patients::intake_in_force(conn, row.patient_id)
                .await?
                .map(|i| i.diagnosis_codes)
                .unwrap_or_default();
            let billing = Billing {
                service_date: convert::date(service_date),
                clinic_npi: clinic.map(|c| c.clinic.npi).unwrap_or_default(),
                rendering_provider_npi: rendering.npi,
                diagnosis_codes,
            };
            publish::fulfilled(conn, &appointment, billing, &req.request_id).await?;
            let integration_window = convert::integration_window(&row);
            if let Some(window) = &integration_window {
                publish::integration_window_opened(conn, &appointment, window, &req.request_id)
                    .await?;
            }
            let item9 = phq9
                .as_ref()
                .and_then(|p| p.item_scores.get(8).copied())
                .unwrap_or(0);
            let safety = item9 > 0;
            if safety {
                let total = phq9.as_ref().map_or(0, |p| p.total_score);
                publish::safety_follow_up(conn, &appointment, item9, total, &req.request_id)
                    .await?;
            }
            Ok(CompleteAppointmentResponse {
                appointment: Some(appointment),
                safety_follow_up_required: safety,
                integration_window,
            })
        },
    )
    .await
}

/// GetAppointment.
pub async fn get(
    state: &State,
    request: Request<GetAppointmentRequest>,
) -> Result<GetAppointmentResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let id = appointment_id(&mut v, &req.appointment_id);
    v.finish()?;
    let id = id?;
    let mut tx = state.pool.begin().await?;
    let row = store::appointments::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("appointment {id}")))?;
    caller.require_clinic(&row.clinic_id)?;
    audit::record(
        &mut tx,
        &caller,
        "appointment.read",
        &row.patient_id.to_string(),
    )
    .await?;
    tx.commit().await?;
    Ok(GetAppointmentResponse {
        appointment: Some(convert::appointment(&row)),
    })
}

/// ListAppointments.
pub async fn list(
    state: &State,
    request: Request<ListAppointmentsRequest>,
) -> Result<ListAppointmentsResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let patient_id = validate::optional_id(&mut v, "patient_id", &req.patient_id);
    let course_id = validate::optional_id(&mut v, "course_id", &req.course_id);
    let starting_within = req
        .starting_within
        .as_ref()
        .and_then(|w| validate::interval(&mut v, "starting_within", Some(w), None));
    if caller.role == Role::PartnerClinic && req.clinic_id.is_empty() {
        v.add("clinic_id", "required for partner clinics");
    }
    let mut statuses = Vec::new();
    for (i, s) in req.statuses.iter().enumerate() {
        match AppointmentStatus::try_from(*s) {
            Ok(AppointmentStatus::Unspecified) | Err(_) => {
                v.add(format!("statuses[{i}]"), "unknown status")
            }
            Ok(status) => statuses.push(
                Status::from_proto(status)
                    .map_or(status.as_str_name(), |s| s.code())
                    .to_owned(),
            ),
        }
    }
    v.finish()?;
    let filters = ListAppointmentsRequest {
        page_size: 0,
        page_token: String::new(),
        ..req.clone()
    };
    let page: Page<(OffsetDateTime, Uuid)> =
        Page::parse(&filters, req.page_size, &req.page_token, 50, 500)?;
    if !req.clinic_id.is_empty() {
        caller.require_clinic(&req.clinic_id)?;
    }
    let filter = Filter {
        clinic_id: (!req.clinic_id.is_empty()).then(|| req.clinic_id.clone()),
        patient_id,
        course_id,
        statuses,
        starting_within,
    };
    let mut tx = state.pool.begin().await?;
    let rows = store::appointments::list(&mut tx, &filter, page.after, page.fetch_limit()).await?;
    let (rows, next) = page.finish(rows, |r| (r.start_time, r.appointment_id));
    for row in &rows {
        audit::record(
            &mut tx,
            &caller,
            "appointment.list",
            &row.patient_id.to_string(),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(ListAppointmentsResponse {
        appointments: rows.iter().map(convert::appointment).collect(),
        next_page_token: next,
    })
}
