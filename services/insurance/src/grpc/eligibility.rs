//! Eligibility (270/271): clinics ask, the payer's integrator answers by trace number; fresh
//! answers are served from the cache, and a request unanswered by its deadline reads UNKNOWN.

use super::{Insurance, access, validate};
use crate::{
    convert,
    domain::eligibility,
    events::{self, Cause, Event},
    store, work,
};
use clinicnet_proto::insurance::v1::*;
use platform::{
    ApiError, audit,
    auth::Caller,
    error::Violations,
    idempotency::{self, Start},
};
use tonic::Request;

/// The check as clients see it: a pending check past its deadline is UNKNOWN.
pub fn shown(mut check: EligibilityCheck) -> EligibilityCheck {
    if let Some(deadline) = check.deadline.as_ref().and_then(convert::instant) {
        let stored =
            EligibilityStatus::try_from(check.status).unwrap_or(EligibilityStatus::Pending);
        check.status = eligibility::effective_status(stored, deadline, convert::now()) as i32;
    }
    check
}

/// CheckEligibility.
pub async fn check(
    svc: &Insurance,
    request: Request<CheckEligibilityRequest>,
) -> Result<CheckEligibilityResponse, ApiError> {
    let caller = Caller::of(&request)?;
    access::staff(&caller)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    validate::id(&mut v, "coverage_id", &req.coverage_id);
    let service_date = validate::date(&mut v, "service_date", req.service_date.as_ref(), false);
    v.check(
        req.procedure_codes.len() > 10,
        "procedure_codes",
        "at most 10",
    );
    for (i, code) in req.procedure_codes.iter().enumerate() {
        validate::procedure_code(&mut v, &format!("procedure_codes[{i}]"), code);
    }
    v.finish()?;
    let Some(service_date) = service_date else {
        return Err(ApiError::invalid("service_date", "required"));
    };
    let mut tx = match idempotency::start(
        &svc.pool,
        &caller,
        "CheckEligibility",
        &req.request_id,
        &req,
    )
    .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let coverage = store::coverages::get(tx.conn(), &req.coverage_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("coverage {}", req.coverage_id)))?;
    access::patient(tx.conn(), &caller, &coverage.patient_id).await?;
    if coverage.status == CoverageStatus::Removed as i32 {
        return Err(ApiError::precondition(
            "coverage_removed",
            "the coverage was removed",
        ));
    }
    let now = convert::now();
    let mut codes = req.procedure_codes.clone();
    codes.sort();
    codes.dedup();
    let cached = if req.bypass_cache {
        None
    } else {
        store::eligibility::cached(
            tx.conn(),
            &coverage.coverage_id,
            service_date,
            &codes,
            now - svc.settings.eligibility_cache_ttl,
        )
        .await?
    };
    let mut check = EligibilityCheck {
        check_id: uuid::Uuid::now_v7().to_string(),
        coverage_id: coverage.coverage_id.clone(),
        patient_id: coverage.patient_id.clone(),
        payer_id: coverage.payer_id.clone(),
        procedure_codes: codes,
        service_date: Some(convert::to_date(service_date)),
        request_time: Some(convert::timestamp(now)),
        ..Default::default()
    };
    match cached {
        Some(source) => {
            check.trace_number = source.trace_number;
            check.status = EligibilityStatus::Answered as i32;
            check.answer = source.answer;
            check.from_cache = true;
            check.deadline = check.request_time;
            store::eligibility::insert(tx.conn(), &check).await?;
        }
        None => {
            check.trace_number = uuid::Uuid::now_v7().simple().to_string().to_uppercase();
            check.status = EligibilityStatus::Pending as i32;
            check.deadline = Some(convert::timestamp(now + svc.settings.eligibility_timeout));
            store::eligibility::insert(tx.conn(), &check).await?;
            work::offer_eligibility(tx.conn(), &check, &coverage).await?;
        }
    }
    audit::record(
        tx.conn(),
        &caller,
        "insurance.eligibility.check",
        &check.patient_id,
    )
    .await?;
    let response = CheckEligibilityResponse { check: Some(check) };
    tx.commit(&response).await?;
    Ok(response)
}

/// GetEligibilityCheck.
pub async fn get(
    svc: &Insurance,
    request: Request<GetEligibilityCheckRequest>,
) -> Result<GetEligibilityCheckResponse, ApiError> {
    let caller = Caller::of(&request)?;
    access::staff(&caller)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    validate::id(&mut v, "check_id", &req.check_id);
    v.finish()?;
    let mut tx = svc.pool.begin().await?;
    let check = store::eligibility::get(&mut tx, &req.check_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("eligibility check {}", req.check_id)))?;
    access::patient(&mut tx, &caller, &check.patient_id).await?;
    audit::record(
        &mut tx,
        &caller,
        "insurance.eligibility.get",
        &check.patient_id,
    )
    .await?;
    tx.commit().await?;
    Ok(GetEligibilityCheckResponse {
        check: Some(shown(check)),
    })
}

/// AnswerEligibility (integrator).
pub async fn answer(
    svc: &Insurance,
    request: Request<AnswerEligibilityRequest>,
) -> Result<AnswerEligibilityResponse, ApiError> {
    let caller = Caller::of(&request)?;
    super::integrator_role(&caller)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    validate::text(&mut v, "trace_number", &req.trace_number, 50);
    match &req.answer {
        None => v.add("answer", "required"),
        Some(a) => {
            validate::money(&mut v, "answer.copay", a.copay.as_ref(), false);
            validate::money(
                &mut v,
                "answer.deductible_remaining",
                a.deductible_remaining.as_ref(),
                false,
            );
            v.check(
                !(0..=10_000).contains(&a.coinsurance_basis_points),
                "answer.coinsurance_basis_points",
                "0-10000",
            );
        }
    }
    v.finish()?;
    let mut tx = match idempotency::start(
        &svc.pool,
        &caller,
        "AnswerEligibility",
        &req.request_id,
        &req,
    )
    .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let mut check = store::eligibility::by_trace_for_update(tx.conn(), &req.trace_number)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("eligibility request {}", req.trace_number)))?;
    caller.require_payer(&check.payer_id)?;
    if check.answer.is_some() {
        return Err(ApiError::precondition(
            "eligibility_answered",
            "this request was already answered",
        ));
    }
    let mut answer = req.answer.clone().unwrap_or_default();
    if answer.answer_time.is_none() {
        answer.answer_time = Some(convert::timestamp(convert::now()));
    }
    check.answer = Some(answer);
    check.status = EligibilityStatus::Answered as i32;
    store::eligibility::save_answer(tx.conn(), &check).await?;
    events::publish(
        tx.conn(),
        Event::EligibilityAnswered(&check),
        Cause {
            request_id: &req.request_id,
            causation_event_id: None,
        },
    )
    .await?;
    audit::record(
        tx.conn(),
        &caller,
        "insurance.eligibility.answer",
        &check.patient_id,
    )
    .await?;
    let response = AnswerEligibilityResponse { check: Some(check) };
    tx.commit(&response).await?;
    Ok(response)
}
