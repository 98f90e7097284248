//! Claims (837P) through their lifecycle: read and list; submit (after re-assessing issues),
//! correct (in place or by replacement), appeal and void for clinics; acknowledge (277CA) for the
//! payer's integrator.

use super::{Insurance, access, time_key, validate};
use crate::{
    billing, convert,
    domain::{
        issues,
        lifecycle::{self, Action, Correction, IllegalTransition},
    },
    events::{self, Cause, Event},
    store, work,
};
use clinicnet_proto::insurance::v1::{acknowledge_claim_request::Result as Ack, *};
use platform::{
    ApiError, audit,
    auth::Caller,
    error::Violations,
    idempotency::{self, IdempotentTx, Start},
    paging::Page,
};
use sqlx::PgConnection;
use tonic::Request;

fn illegal(error: IllegalTransition) -> ApiError {
    ApiError::precondition(error.rule(), error.to_string())
}

fn status_of(claim: &Claim) -> ClaimStatus {
    ClaimStatus::try_from(claim.status).unwrap_or(ClaimStatus::Unspecified)
}

/// Moves `claim` by `action`, bumping its version and update time.
fn transition(claim: &mut Claim, action: Action) -> Result<(), ApiError> {
    let next = lifecycle::next(status_of(claim), action).map_err(illegal)?;
    claim.status = next as i32;
    touch(claim);
    Ok(())
}

fn touch(claim: &mut Claim) {
    claim.version += 1;
    claim.update_time = Some(convert::timestamp(convert::now()));
}

async fn locked(conn: &mut PgConnection, claim_id: &str) -> Result<Claim, ApiError> {
    store::claims::get(conn, claim_id, true)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("claim {claim_id}")))
}

async fn plan_of(conn: &mut PgConnection, claim: &Claim) -> Result<Plan, ApiError> {
    store::plans::get(conn, &claim.plan_id)
        .await?
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "claim {} names a missing plan",
                claim.claim_id
            ))
        })
}

fn cause(request_id: &str) -> Cause<'_> {
    Cause {
        request_id,
        causation_event_id: None,
    }
}

async fn start<Q: prost::Message, R: prost::Message + Default>(
    svc: &Insurance,
    caller: &Caller,
    method: &str,
    request_id: &str,
    req: &Q,
) -> Result<Result<IdempotentTx, R>, ApiError> {
    Ok(
        match idempotency::start(&svc.pool, caller, method, request_id, req).await? {
            Start::Replay(response) => Err(response),
            Start::Fresh(tx) => Ok(tx),
        },
    )
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn claim_id(req_claim_id: &str) -> Result<(), ApiError> {
    let mut v = Violations::new();
    validate::id(&mut v, "claim_id", req_claim_id);
    v.finish()
}

/// GetClaim.
pub async fn get(
    svc: &Insurance,
    request: Request<GetClaimRequest>,
) -> Result<GetClaimResponse, ApiError> {
    let caller = Caller::of(&request)?;
    access::staff(&caller)?;
    let req = request.into_inner();
    claim_id(&req.claim_id)?;
    let mut tx = svc.pool.begin().await?;
    let claim = store::claims::get(&mut tx, &req.claim_id, false)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("claim {}", req.claim_id)))?;
    caller.require_clinic(&claim.clinic_id)?;
    audit::record(&mut tx, &caller, "insurance.claim.get", &claim.patient_id).await?;
    tx.commit().await?;
    Ok(GetClaimResponse { claim: Some(claim) })
}

/// ListClaims.
pub async fn list(
    svc: &Insurance,
    request: Request<ListClaimsRequest>,
) -> Result<ListClaimsResponse, ApiError> {
    let caller = Caller::of(&request)?;
    let req = request.into_inner();
    let clinic = access::clinic_filter(&caller, &req.clinic_id)?;
    let mut v = Violations::new();
    let mut statuses = Vec::new();
    for (i, s) in req.statuses.iter().enumerate() {
        if let Some(status) =
            validate::known_enum::<ClaimStatus>(&mut v, &format!("statuses[{i}]"), *s)
        {
            statuses.push(status as i16);
        }
    }
    let from = validate::date(
        &mut v,
        "service_date_from",
        req.service_date_from.as_ref(),
        true,
    );
    let to = validate::date(
        &mut v,
        "service_date_to",
        req.service_date_to.as_ref(),
        true,
    );
    if let (Some(from), Some(to)) = (from, to) {
        v.check(to < from, "service_date_to", "before service_date_from");
    }
    v.finish()?;
    let filters = ListClaimsRequest {
        page_size: 0,
        page_token: String::new(),
        ..req.clone()
    };
    let page: Page<(time::OffsetDateTime, uuid::Uuid)> =
        Page::parse(&filters, req.page_size, &req.page_token, 50, 500)?;
    let filter = store::claims::Filter {
        clinic_id: clinic,
        payer_id: non_empty(&req.payer_id),
        patient_id: non_empty(&req.patient_id),
        appointment_id: non_empty(&req.appointment_id),
        statuses,
        from,
        to,
    };
    let mut tx = svc.pool.begin().await?;
    let rows = store::claims::list(&mut tx, &filter, page.after, page.fetch_limit()).await?;
    let (claims, next_page_token) =
        page.finish(rows, |c| time_key(c.create_time.as_ref(), &c.claim_id));
    for claim in &claims {
        audit::record(&mut tx, &caller, "insurance.claim.list", &claim.patient_id).await?;
    }
    tx.commit().await?;
    Ok(ListClaimsResponse {
        claims,
        next_page_token,
    })
}

/// SubmitClaim.
pub async fn submit(
    svc: &Insurance,
    request: Request<SubmitClaimRequest>,
) -> Result<SubmitClaimResponse, ApiError> {
    let caller = Caller::of(&request)?;
    access::staff(&caller)?;
    let req = request.into_inner();
    claim_id(&req.claim_id)?;
    let mut tx = match start(svc, &caller, "SubmitClaim", &req.request_id, &req).await? {
        Err(replay) => return Ok(replay),
        Ok(tx) => tx,
    };
    let mut claim = locked(tx.conn(), &req.claim_id).await?;
    caller.require_clinic(&claim.clinic_id)?;
    lifecycle::next(status_of(&claim), Action::Submit).map_err(illegal)?;
    let plan = plan_of(tx.conn(), &claim).await?;
    let today = convert::today();
    billing::assess(tx.conn(), &mut claim, &plan, today).await?;
    let service_date = claim
        .service_date
        .as_ref()
        .and_then(convert::date)
        .unwrap_or(today);
    if issues::filing_limit_passed(service_date, plan.timely_filing_days, today) {
        return Err(ApiError::precondition(
            "timely_filing_passed",
            "the payer's timely filing limit has passed",
        ));
    }
    let blocking: Vec<String> = claim
        .issues
        .iter()
        .filter(|i| ClaimIssueKind::try_from(i.kind).is_ok_and(issues::blocks_submission))
        .map(|i| {
            ClaimIssueKind::try_from(i.kind)
                .map_or("unknown", |k| k.as_str_name())
                .to_string()
        })
        .collect();
    if !blocking.is_empty() && !req.submit_despite_issues {
        return Err(ApiError::precondition(
            "claim_has_issues",
            format!("resolve {} or submit despite issues", blocking.join(", ")),
        ));
    }
    transition(&mut claim, Action::Submit)?;
    claim.submit_time = claim.update_time;
    store::claims::save(tx.conn(), &claim).await?;
    work::offer_claim(tx.conn(), &claim).await?;
    events::publish(
        tx.conn(),
        Event::ClaimSubmitted(&claim),
        cause(&req.request_id),
    )
    .await?;
    audit::record(
        tx.conn(),
        &caller,
        "insurance.claim.submit",
        &claim.patient_id,
    )
    .await?;
    let response = SubmitClaimResponse { claim: Some(claim) };
    tx.commit(&response).await?;
    Ok(response)
}

fn check_correction(v: &mut Violations, req: &CorrectClaimRequest, diagnoses: usize) {
    v.check(
        req.diagnosis_codes.len() > 12,
        "diagnosis_codes",
        "at most 12",
    );
    for (i, code) in req.diagnosis_codes.iter().enumerate() {
        validate::diagnosis_code(v, &format!("diagnosis_codes[{i}]"), code);
    }
    for (i, line) in req.lines.iter().enumerate() {
        let field = |name: &str| format!("lines[{i}].{name}");
        v.check(
            line.line_number != i32::try_from(i + 1).unwrap_or(0),
            &field("line_number"),
            "lines are numbered 1, 2, 3 … in order",
        );
        validate::procedure_code(v, &field("procedure_code"), &line.procedure_code);
        v.check(
            !(1..=10_000).contains(&line.units),
            &field("units"),
            "1-10000",
        );
        v.check(line.modifiers.len() > 4, &field("modifiers"), "at most 4");
        for (j, m) in line.modifiers.iter().enumerate() {
            let ok = m.len() == 2
                && m.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            v.check(
                !ok,
                &field(&format!("modifiers[{j}]")),
                "two characters of A-Z and 0-9",
            );
        }
        let pos_ok = line.place_of_service.len() == 2
            && line.place_of_service.bytes().all(|b| b.is_ascii_digit());
        v.check(
            !pos_ok,
            &field("place_of_service"),
            "a two-digit CMS place of service code",
        );
        v.check(
            !(1..=4).contains(&line.diagnosis_pointers.len()),
            &field("diagnosis_pointers"),
            "1-4 pointers",
        );
        let max = i32::try_from(diagnoses).unwrap_or(0);
        v.check(
            line.diagnosis_pointers
                .iter()
                .any(|p| !(1..=max).contains(p)),
            &field("diagnosis_pointers"),
            "each pointer names one of the claim's diagnosis codes (1-based)",
        );
        validate::date(v, &field("service_date"), line.service_date.as_ref(), true);
    }
    validate::optional_text(v, "authorization_number", &req.authorization_number, 50);
    validate::optional_text(v, "reason", &req.reason, 500);
}

/// CorrectClaim.
pub async fn correct(
    svc: &Insurance,
    request: Request<CorrectClaimRequest>,
) -> Result<CorrectClaimResponse, ApiError> {
    let caller = Caller::of(&request)?;
    access::staff(&caller)?;
    let req = request.into_inner();
    claim_id(&req.claim_id)?;
    let mut tx = match start(svc, &caller, "CorrectClaim", &req.request_id, &req).await? {
        Err(replay) => return Ok(replay),
        Ok(tx) => tx,
    };
    let mut claim = locked(tx.conn(), &req.claim_id).await?;
    caller.require_clinic(&claim.clinic_id)?;
    let mode = lifecycle::correction(status_of(&claim)).map_err(illegal)?;
    let diagnoses = if req.diagnosis_codes.is_empty() {
        claim.diagnosis_codes.clone()
    } else {
        req.diagnosis_codes.clone()
    };
    let mut v = Violations::new();
    check_correction(&mut v, &req, diagnoses.len());
    v.finish()?;
    let mut lines = if req.lines.is_empty() {
        claim.lines.clone()
    } else {
        req.lines.clone()
    };
    for line in &mut lines {
        line.paid_amount = None;
        line.adjustments.clear();
        if line.service_date.is_none() {
            line.service_date = claim.service_date;
        }
    }
    let service_date = claim
        .service_date
        .as_ref()
        .and_then(convert::date)
        .unwrap_or_else(convert::today);
    billing::reprice(tx.conn(), &claim.plan_id, service_date, &mut lines).await?;
    let plan = plan_of(tx.conn(), &claim).await?;
    let apply = |target: &mut Claim| {
        target.diagnosis_codes = diagnoses.clone();
        target.total_charge = Some(convert::usd(billing::total_charge(&lines)));
        target.lines = lines.clone();
        if !req.authorization_number.is_empty() {
            target.authorization_number = req.authorization_number.clone();
        }
    };
    let response = match mode {
        Correction::InPlace => {
            apply(&mut claim);
            claim.status = ClaimStatus::Draft as i32;
            claim.rejection_reason.clear();
            touch(&mut claim);
            billing::assess(tx.conn(), &mut claim, &plan, convert::today()).await?;
            store::claims::save(tx.conn(), &claim).await?;
            CorrectClaimResponse {
                claim: Some(claim),
                replaced_claim: None,
            }
        }
        Correction::Replace => {
            let now = convert::timestamp(convert::now());
            let mut replacement = Claim {
                claim_id: uuid::Uuid::now_v7().to_string(),
                status: ClaimStatus::Draft as i32,
                frequency: ClaimFrequency::Replacement as i32,
                replaces_claim_id: claim.claim_id.clone(),
                version: 1,
                create_time: Some(now),
                update_time: Some(now),
                ..claim.clone()
            };
            replacement.paid_amount = None;
            replacement.patient_responsibility = None;
            replacement.denial_reason_codes.clear();
            replacement.submit_time = None;
            replacement.adjudication_time = None;
            replacement.appeal_reason.clear();
            replacement.rejection_reason.clear();
            apply(&mut replacement);
            billing::assess(tx.conn(), &mut replacement, &plan, convert::today()).await?;
            store::claims::insert(tx.conn(), &replacement).await?;
            claim.status = ClaimStatus::Replaced as i32;
            claim.replaced_by_claim_id = replacement.claim_id.clone();
            touch(&mut claim);
            store::claims::save(tx.conn(), &claim).await?;
            events::publish(
                tx.conn(),
                Event::ClaimCreated(&replacement),
                cause(&req.request_id),
            )
            .await?;
            CorrectClaimResponse {
                claim: Some(replacement),
                replaced_claim: Some(claim),
            }
        }
    };
    let patient = response
        .claim
        .as_ref()
        .map(|c| c.patient_id.clone())
        .unwrap_or_default();
    audit::record(tx.conn(), &caller, "insurance.claim.correct", &patient).await?;
    tx.commit(&response).await?;
    Ok(response)
}

/// AppealClaim.
pub async fn appeal(
    svc: &Insurance,
    request: Request<AppealClaimRequest>,
) -> Result<AppealClaimResponse, ApiError> {
    let caller = Caller::of(&request)?;
    access::staff(&caller)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    validate::id(&mut v, "claim_id", &req.claim_id);
    validate::text(&mut v, "reason", &req.reason, 2_000);
    validate::optional_text(
        &mut v,
        "authorization_number",
        &req.authorization_number,
        50,
    );
    v.finish()?;
    let mut tx = match start(svc, &caller, "AppealClaim", &req.request_id, &req).await? {
        Err(replay) => return Ok(replay),
        Ok(tx) => tx,
    };
    let mut claim = locked(tx.conn(), &req.claim_id).await?;
    caller.require_clinic(&claim.clinic_id)?;
    transition(&mut claim, Action::Appeal)?;
    claim.appeal_reason = req.reason.clone();
    if !req.authorization_number.is_empty() {
        claim.authorization_number = req.authorization_number.clone();
    }
    store::claims::save(tx.conn(), &claim).await?;
    work::offer_claim(tx.conn(), &claim).await?;
    audit::record(
        tx.conn(),
        &caller,
        "insurance.claim.appeal",
        &claim.patient_id,
    )
    .await?;
    let response = AppealClaimResponse { claim: Some(claim) };
    tx.commit(&response).await?;
    Ok(response)
}

/// VoidClaim.
pub async fn void(
    svc: &Insurance,
    request: Request<VoidClaimRequest>,
) -> Result<VoidClaimResponse, ApiError> {
    let caller = Caller::of(&request)?;
    access::staff(&caller)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    validate::id(&mut v, "claim_id", &req.claim_id);
    validate::text(&mut v, "reason", &req.reason, 500);
    v.finish()?;
    let mut tx = match start(svc, &caller, "VoidClaim", &req.request_id, &req).await? {
        Err(replay) => return Ok(replay),
        Ok(tx) => tx,
    };
    let mut claim = locked(tx.conn(), &req.claim_id).await?;
    caller.require_clinic(&claim.clinic_id)?;
    let to_payer = lifecycle::void_goes_to_payer(status_of(&claim));
    transition(&mut claim, Action::Void)?;
    claim.void_reason = req.reason.clone();
    store::claims::save(tx.conn(), &claim).await?;
    if to_payer {
        let void = Claim {
            frequency: ClaimFrequency::Void as i32,
            ..claim.clone()
        };
        work::offer_claim(tx.conn(), &void).await?;
    }
    events::publish(
        tx.conn(),
        Event::ClaimVoided(&claim),
        cause(&req.request_id),
    )
    .await?;
    audit::record(
        tx.conn(),
        &caller,
        "insurance.claim.void",
        &claim.patient_id,
    )
    .await?;
    let response = VoidClaimResponse { claim: Some(claim) };
    tx.commit(&response).await?;
    Ok(response)
}

/// AcknowledgeClaim (integrator).
pub async fn acknowledge(
    svc: &Insurance,
    request: Request<AcknowledgeClaimRequest>,
) -> Result<AcknowledgeClaimResponse, ApiError> {
    let caller = Caller::of(&request)?;
    super::integrator_role(&caller)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    validate::id(&mut v, "claim_id", &req.claim_id);
    match &req.result {
        None => v.add("result", "required: accepted or rejected"),
        Some(Ack::Accepted(a)) => validate::text(
            &mut v,
            "accepted.payer_claim_control_number",
            &a.payer_claim_control_number,
            50,
        ),
        Some(Ack::Rejected(r)) => {
            validate::optional_text(&mut v, "rejected.reason_code", &r.reason_code, 20);
            validate::text(&mut v, "rejected.reason", &r.reason, 1_000);
        }
    }
    v.finish()?;
    let mut tx = match start(svc, &caller, "AcknowledgeClaim", &req.request_id, &req).await? {
        Err(replay) => return Ok(replay),
        Ok(tx) => tx,
    };
    let mut claim = locked(tx.conn(), &req.claim_id).await?;
    caller.require_payer(&claim.payer_id)?;
    match &req.result {
        Some(Ack::Accepted(a)) => {
            transition(&mut claim, Action::Accept)?;
            claim.payer_claim_control_number = a.payer_claim_control_number.clone();
        }
        Some(Ack::Rejected(r)) => {
            transition(&mut claim, Action::Reject)?;
            claim.rejection_reason = if r.reason_code.is_empty() {
                r.reason.clone()
            } else {
                format!("{}: {}", r.reason_code, r.reason)
            };
        }
        None => return Err(ApiError::invalid("result", "required")),
    }
    store::claims::save(tx.conn(), &claim).await?;
    audit::record(
        tx.conn(),
        &caller,
        "insurance.claim.acknowledge",
        &claim.patient_id,
    )
    .await?;
    let response = AcknowledgeClaimResponse { claim: Some(claim) };
    tx.commit(&response).await?;
    Ok(response)
}
