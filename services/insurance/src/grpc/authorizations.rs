//! Prior authorizations (278): requested by hand or on booking, decided by the payer's
//! integrator (approve, deny, pend), read and listed by clinics; an approval past its last valid
//! day reads EXPIRED.

use super::{Insurance, access, time_key, validate};
use crate::{
    authorizations::{self, NewRequest, RequestError},
    convert,
    domain::authorization,
    events::{self, Cause, Event},
    store,
};
use clinicnet_proto::insurance::v1::{
    decide_prior_authorization_request::Decision as Decide, prior_authorization::Decision, *,
};
use platform::{
    ApiError, audit,
    auth::Caller,
    error::Violations,
    idempotency::{self, Start},
    paging::Page,
};
use tonic::Request;

/// The authorization as clients see it: an approval past its last valid day is EXPIRED.
pub fn shown(mut pa: PriorAuthorization) -> PriorAuthorization {
    let until = match &pa.decision {
        Some(Decision::Approval(a)) => a.valid_until.as_ref().and_then(convert::date),
        _ => None,
    };
    let stored = PriorAuthorizationStatus::try_from(pa.status)
        .unwrap_or(PriorAuthorizationStatus::Requested);
    pa.status = authorization::effective_status(stored, until, convert::today()) as i32;
    pa
}

/// RequestPriorAuthorization.
pub async fn request(
    svc: &Insurance,
    request: Request<RequestPriorAuthorizationRequest>,
) -> Result<RequestPriorAuthorizationResponse, ApiError> {
    let caller = Caller::of(&request)?;
    access::staff(&caller)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    validate::reference(&mut v, "patient_id", &req.patient_id);
    validate::id(&mut v, "coverage_id", &req.coverage_id);
    validate::reference(&mut v, "clinic_id", &req.clinic_id);
    validate::optional_text(&mut v, "appointment_id", &req.appointment_id, 128);
    validate::optional_text(&mut v, "course_id", &req.course_id, 128);
    validate::optional_npi(&mut v, "provider_npi", &req.provider_npi);
    v.check(req.services.is_empty(), "services", "at least one service");
    for (i, s) in req.services.iter().enumerate() {
        validate::procedure_code(
            &mut v,
            &format!("services[{i}].procedure_code"),
            &s.procedure_code,
        );
        v.check(
            !(1..=10_000).contains(&s.units),
            &format!("services[{i}].units"),
            "1-10000",
        );
    }
    v.finish()?;
    caller.require_clinic(&req.clinic_id)?;
    let mut tx = match idempotency::start(
        &svc.pool,
        &caller,
        "RequestPriorAuthorization",
        &req.request_id,
        &req,
    )
    .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    if store::patients::get(tx.conn(), &req.patient_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!("patient {}", req.patient_id)));
    }
    let coverage = store::coverages::get(tx.conn(), &req.coverage_id)
        .await?
        .filter(|c| c.patient_id == req.patient_id)
        .ok_or_else(|| {
            ApiError::NotFound(format!("coverage {} of the patient", req.coverage_id))
        })?;
    if coverage.status == CoverageStatus::Removed as i32 {
        return Err(ApiError::precondition(
            "coverage_removed",
            "the coverage was removed",
        ));
    }
    let approvals =
        store::authorizations::approvals(tx.conn(), &req.patient_id, &coverage.payer_id).await?;
    let today = convert::today();
    if req
        .services
        .iter()
        .all(|s| authorization::covering(&approvals, &s.procedure_code, today).is_some())
    {
        return Err(ApiError::precondition(
            "authorization_exists",
            "a valid authorization already covers these codes",
        ));
    }
    let new = NewRequest {
        coverage: &coverage,
        clinic_id: &req.clinic_id,
        appointment_id: &req.appointment_id,
        course_id: &req.course_id,
        provider_npi: &req.provider_npi,
        services: req.services.clone(),
    };
    let cause = Cause {
        request_id: &req.request_id,
        causation_event_id: None,
    };
    let pa = match authorizations::request(tx.conn(), new, cause).await {
        Ok(pa) => pa,
        Err(RequestError::NoIntake) => {
            return Err(ApiError::precondition(
                "no_intake",
                "the patient has no intake on file",
            ));
        }
        Err(RequestError::Database(e)) => return Err(e.into()),
    };
    audit::record(
        tx.conn(),
        &caller,
        "insurance.prior_authorization.request",
        &pa.patient_id,
    )
    .await?;
    let response = RequestPriorAuthorizationResponse {
        prior_authorization: Some(pa),
    };
    tx.commit(&response).await?;
    Ok(response)
}

/// GetPriorAuthorization.
pub async fn get(
    svc: &Insurance,
    request: Request<GetPriorAuthorizationRequest>,
) -> Result<GetPriorAuthorizationResponse, ApiError> {
    let caller = Caller::of(&request)?;
    access::staff(&caller)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    validate::id(
        &mut v,
        "prior_authorization_id",
        &req.prior_authorization_id,
    );
    v.finish()?;
    let mut tx = svc.pool.begin().await?;
    let pa = store::authorizations::get(&mut tx, &req.prior_authorization_id, false)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "prior authorization {}",
                req.prior_authorization_id
            ))
        })?;
    caller.require_clinic(&pa.clinic_id)?;
    audit::record(
        &mut tx,
        &caller,
        "insurance.prior_authorization.get",
        &pa.patient_id,
    )
    .await?;
    tx.commit().await?;
    Ok(GetPriorAuthorizationResponse {
        prior_authorization: Some(shown(pa)),
    })
}

/// ListPriorAuthorizations.
pub async fn list(
    svc: &Insurance,
    request: Request<ListPriorAuthorizationsRequest>,
) -> Result<ListPriorAuthorizationsResponse, ApiError> {
    let caller = Caller::of(&request)?;
    let req = request.into_inner();
    let clinic = access::clinic_filter(&caller, &req.clinic_id)?;
    let mut v = Violations::new();
    let wanted = PriorAuthorizationStatus::try_from(req.status).ok();
    v.check(wanted.is_none(), "status", "unknown value");
    v.finish()?;
    let filters = ListPriorAuthorizationsRequest {
        page_size: 0,
        page_token: String::new(),
        ..req.clone()
    };
    let page: Page<(time::OffsetDateTime, uuid::Uuid)> =
        Page::parse(&filters, req.page_size, &req.page_token, 50, 500)?;
    let stored = match wanted {
        Some(PriorAuthorizationStatus::Unspecified) | None => None,
        Some(PriorAuthorizationStatus::Expired) => Some(PriorAuthorizationStatus::Approved as i16),
        Some(status) => Some(status as i16),
    };
    let filter = store::authorizations::Filter {
        patient_id: (!req.patient_id.is_empty()).then_some(req.patient_id.as_str()),
        clinic_id: clinic,
        payer_id: (!req.payer_id.is_empty()).then_some(req.payer_id.as_str()),
        status: stored,
    };
    let mut tx = svc.pool.begin().await?;
    let rows =
        store::authorizations::list(&mut tx, &filter, page.after, page.fetch_limit()).await?;
    let (rows, next_page_token) = page.finish(rows, |pa| {
        time_key(pa.request_time.as_ref(), &pa.prior_authorization_id)
    });
    let mut prior_authorizations = Vec::with_capacity(rows.len());
    for pa in rows.into_iter().map(shown) {
        if wanted
            .is_none_or(|w| w == PriorAuthorizationStatus::Unspecified || w as i32 == pa.status)
        {
            audit::record(
                &mut tx,
                &caller,
                "insurance.prior_authorization.list",
                &pa.patient_id,
            )
            .await?;
            prior_authorizations.push(pa);
        }
    }
    tx.commit().await?;
    Ok(ListPriorAuthorizationsResponse {
        prior_authorizations,
        next_page_token,
    })
}

fn check_decision(v: &mut Violations, decision: Option<&Decide>) {
    match decision {
        None => v.add("decision", "required: approval, denial or pend"),
        Some(Decide::Approval(a)) => {
            validate::text(
                v,
                "approval.authorization_number",
                &a.authorization_number,
                50,
            );
            let from = validate::date(v, "approval.valid_from", a.valid_from.as_ref(), false);
            let until = validate::date(v, "approval.valid_until", a.valid_until.as_ref(), true);
            if let (Some(from), Some(until)) = (from, until) {
                v.check(until < from, "approval.valid_until", "before valid_from");
            }
            v.check(
                !(0..=10_000).contains(&a.units_approved),
                "approval.units_approved",
                "0-10000",
            );
        }
        Some(Decide::Denial(d)) => {
            validate::optional_text(v, "denial.reason_code", &d.reason_code, 20);
            validate::optional_text(v, "denial.reason", &d.reason, 1_000);
        }
        Some(Decide::Pend(p)) => validate::optional_text(v, "pend.reason", &p.reason, 1_000),
    }
}

/// DecidePriorAuthorization (integrator).
pub async fn decide(
    svc: &Insurance,
    request: Request<DecidePriorAuthorizationRequest>,
) -> Result<DecidePriorAuthorizationResponse, ApiError> {
    let caller = Caller::of(&request)?;
    super::integrator_role(&caller)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    validate::id(
        &mut v,
        "prior_authorization_id",
        &req.prior_authorization_id,
    );
    check_decision(&mut v, req.decision.as_ref());
    v.finish()?;
    let mut tx = match idempotency::start(
        &svc.pool,
        &caller,
        "DecidePriorAuthorization",
        &req.request_id,
        &req,
    )
    .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let mut pa = store::authorizations::get(tx.conn(), &req.prior_authorization_id, true)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "prior authorization {}",
                req.prior_authorization_id
            ))
        })?;
    caller.require_payer(&pa.payer_id)?;
    let undecided = [
        PriorAuthorizationStatus::Requested as i32,
        PriorAuthorizationStatus::Pended as i32,
    ];
    if !undecided.contains(&pa.status) {
        return Err(ApiError::precondition(
            "prior_authorization_decided",
            "only a requested or pended authorization can be decided",
        ));
    }
    let (status, decision) = match req.decision.clone() {
        Some(Decide::Approval(mut a)) => {
            if a.valid_until.is_none() {
                let validity = match store::coverages::get(tx.conn(), &pa.coverage_id).await? {
                    Some(c) => store::plans::get(tx.conn(), &c.plan_id)
                        .await?
                        .map_or(1, |p| p.authorization_validity_days),
                    None => 1,
                };
                let from = a
                    .valid_from
                    .as_ref()
                    .and_then(convert::date)
                    .unwrap_or_else(convert::today);
                a.valid_until = Some(convert::to_date(authorization::default_valid_until(
                    from, validity,
                )));
            }
            (PriorAuthorizationStatus::Approved, Decision::Approval(a))
        }
        Some(Decide::Denial(d)) => (PriorAuthorizationStatus::Denied, Decision::Denial(d)),
        Some(Decide::Pend(p)) => (PriorAuthorizationStatus::Pended, Decision::Pend(p)),
        None => return Err(ApiError::invalid("decision", "required")),
    };
    pa.status = status as i32;
    pa.decision = Some(decision);
    pa.decision_time = Some(convert::timestamp(convert::now()));
    pa.version += 1;
    store::authorizations::save(tx.conn(), &pa).await?;
    events::publish(
        tx.conn(),
        Event::PriorAuthorizationDecided(&pa),
        Cause {
            request_id: &req.request_id,
            causation_event_id: None,
        },
    )
    .await?;
    audit::record(
        tx.conn(),
        &caller,
        "insurance.prior_authorization.decide",
        &pa.patient_id,
    )
    .await?;
    tracing::info!(prior_authorization_id = %pa.prior_authorization_id, status = ?status, "prior authorization decided");
    let response = DecidePriorAuthorizationResponse {
        prior_authorization: Some(shown(pa)),
    };
    tx.commit(&response).await?;
    Ok(response)
}
