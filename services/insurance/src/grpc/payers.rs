//! Payers and plans, managed by ops as data: create/replace with optimistic versions, read, list.

use super::{Insurance, access, validate};
use crate::{convert, store};
use clinicnet_proto::insurance::v1::*;
use platform::{
    ApiError,
    auth::{Caller, Role},
    db,
    error::Violations,
    idempotency::{self, Start},
    paging::Page,
};
use std::collections::HashMap;
use tonic::Request;

fn check_payer(payer: Option<&Payer>) -> Result<&Payer, ApiError> {
    let mut v = Violations::new();
    let Some(payer) = payer else {
        v.add("payer", "required");
        v.finish()?;
        return Err(ApiError::invalid("payer", "required"));
    };
    validate::slug(&mut v, "payer.payer_id", &payer.payer_id);
    validate::text(&mut v, "payer.display_name", &payer.display_name, 200);
    validate::optional_text(&mut v, "payer.edi_payer_id", &payer.edi_payer_id, 80);
    v.finish()?;
    Ok(payer)
}

/// UpsertPayer.
pub async fn upsert_payer(
    svc: &Insurance,
    request: Request<UpsertPayerRequest>,
) -> Result<UpsertPayerResponse, ApiError> {
    let caller = Caller::of(&request)?;
    caller.require_role(&[Role::Ops])?;
    let req = request.into_inner();
    let given = check_payer(req.payer.as_ref())?;
    let mut tx =
        match idempotency::start(&svc.pool, &caller, "UpsertPayer", &req.request_id, &req).await? {
            Start::Replay(response) => return Ok(response),
            Start::Fresh(tx) => tx,
        };
    let now = convert::timestamp(convert::now());
    let mut payer = Payer {
        payer_id: given.payer_id.clone(),
        display_name: given.display_name.clone(),
        edi_payer_id: given.edi_payer_id.clone(),
        version: req.expected_version + 1,
        create_time: Some(now),
        update_time: Some(now),
    };
    if req.expected_version == 0 {
        if !store::payers::insert(tx.conn(), &payer).await? {
            return Err(ApiError::Aborted(format!(
                "payer {} exists; pass its version",
                payer.payer_id
            )));
        }
    } else {
        let current = store::payers::get(tx.conn(), &payer.payer_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("payer {}", payer.payer_id)))?;
        payer.create_time = current.create_time;
        if !store::payers::update(tx.conn(), &payer, req.expected_version).await? {
            return Err(ApiError::Aborted(format!(
                "payer {} changed since version {}",
                payer.payer_id, req.expected_version
            )));
        }
    }
    let response = UpsertPayerResponse { payer: Some(payer) };
    tx.commit(&response).await?;
    Ok(response)
}

/// GetPayer.
pub async fn get_payer(
    svc: &Insurance,
    request: Request<GetPayerRequest>,
) -> Result<GetPayerResponse, ApiError> {
    let caller = Caller::of(&request)?;
    let req = request.into_inner();
    if caller.role == Role::Integrator {
        caller.require_payer(&req.payer_id)?;
    }
    let mut conn = svc.pool.acquire().await?;
    let payer = store::payers::get(&mut conn, &req.payer_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("payer {}", req.payer_id)))?;
    Ok(GetPayerResponse { payer: Some(payer) })
}

/// ListPayers.
pub async fn list_payers(
    svc: &Insurance,
    request: Request<ListPayersRequest>,
) -> Result<ListPayersResponse, ApiError> {
    let caller = Caller::of(&request)?;
    access::staff(&caller)?;
    let req = request.into_inner();
    let page: Page<String> = Page::parse(
        &ListPayersRequest::default(),
        req.page_size,
        &req.page_token,
        50,
        500,
    )?;
    let mut conn = svc.pool.acquire().await?;
    let after = page.after.as_deref().unwrap_or_default();
    let rows = store::payers::list(&mut conn, after, page.fetch_limit()).await?;
    let (payers, next_page_token) = page.finish(rows, |p| p.payer_id.clone());
    Ok(ListPayersResponse {
        payers,
        next_page_token,
    })
}

fn check_plan(plan: Option<&Plan>) -> Result<&Plan, ApiError> {
    let mut v = Violations::new();
    let Some(plan) = plan else {
        return Err(ApiError::invalid("plan", "required"));
    };
    validate::slug(&mut v, "plan.plan_id", &plan.plan_id);
    validate::slug(&mut v, "plan.payer_id", &plan.payer_id);
    validate::text(&mut v, "plan.display_name", &plan.display_name, 200);
    let mut ranges: HashMap<&str, Vec<(time::Date, time::Date)>> = HashMap::new();
    for (i, entry) in plan.fee_schedule.iter().enumerate() {
        let field = |name: &str| format!("plan.fee_schedule[{i}].{name}");
        validate::procedure_code(&mut v, &field("procedure_code"), &entry.procedure_code);
        validate::money(
            &mut v,
            &field("unit_charge"),
            entry.unit_charge.as_ref(),
            false,
        );
        let from = validate::date(
            &mut v,
            &field("effective_from"),
            entry.effective_from.as_ref(),
            false,
        );
        let until = validate::date(
            &mut v,
            &field("effective_until"),
            entry.effective_until.as_ref(),
            true,
        );
        if let Some(from) = from {
            let until = until.unwrap_or(time::Date::MAX);
            if until < from {
                v.add(field("effective_until"), "before effective_from");
                continue;
            }
            let same_code = ranges.entry(entry.procedure_code.as_str()).or_default();
            if same_code.iter().any(|(f, u)| from <= *u && *f <= until) {
                v.add(
                    field("effective_from"),
                    "overlaps another entry of the same code",
                );
            }
            same_code.push((from, until));
        }
    }
    for (i, code) in plan.codes_requiring_authorization.iter().enumerate() {
        validate::procedure_code(
            &mut v,
            &format!("plan.codes_requiring_authorization[{i}]"),
            code,
        );
    }
    v.check(
        !(1..=3650).contains(&plan.authorization_validity_days),
        "plan.authorization_validity_days",
        "1-3650",
    );
    v.check(
        !(1..=3650).contains(&plan.timely_filing_days),
        "plan.timely_filing_days",
        "1-3650",
    );
    if let Some(c) = &plan.authorization_criteria {
        for (name, value, max) in [
            ("min_failed_trials", c.min_failed_trials, 20),
            ("min_distinct_classes", c.min_distinct_classes, 7),
            ("min_trial_weeks", c.min_trial_weeks, 520),
            ("min_baseline_phq9", c.min_baseline_phq9, 27),
            ("min_age_years", c.min_age_years, 120),
            (
                "reauthorization_min_reduction_percent",
                c.reauthorization_min_reduction_percent,
                100,
            ),
        ] {
            v.check(
                !(0..=max).contains(&value),
                &format!("plan.authorization_criteria.{name}"),
                &format!("0-{max}"),
            );
        }
    }
    v.finish()?;
    Ok(plan)
}

/// UpsertPlan.
pub async fn upsert_plan(
    svc: &Insurance,
    request: Request<UpsertPlanRequest>,
) -> Result<UpsertPlanResponse, ApiError> {
    let caller = Caller::of(&request)?;
    caller.require_role(&[Role::Ops])?;
    let req = request.into_inner();
    let given = check_plan(req.plan.as_ref())?;
    let mut tx =
        match idempotency::start(&svc.pool, &caller, "UpsertPlan", &req.request_id, &req).await? {
            Start::Replay(response) => return Ok(response),
            Start::Fresh(tx) => tx,
        };
    if store::payers::get(tx.conn(), &given.payer_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!("payer {}", given.payer_id)));
    }
    let now = convert::timestamp(convert::now());
    let mut plan = Plan {
        version: req.expected_version + 1,
        create_time: Some(now),
        update_time: Some(now),
        ..given.clone()
    };
    let written = if req.expected_version == 0 {
        store::plans::insert(tx.conn(), &plan).await
    } else {
        let current = store::plans::get(tx.conn(), &plan.plan_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("plan {}", plan.plan_id)))?;
        if current.payer_id != plan.payer_id {
            return Err(ApiError::invalid(
                "plan.payer_id",
                "a plan cannot move to another payer; create a new plan",
            ));
        }
        plan.create_time = current.create_time;
        store::plans::update(tx.conn(), &plan, req.expected_version).await
    };
    match written {
        Ok(true) => {}
        Ok(false) => {
            return Err(ApiError::Aborted(format!(
                "plan {} exists with another version",
                plan.plan_id
            )));
        }
        Err(e) if db::is_exclusion_violation(&e) => {
            return Err(ApiError::invalid(
                "plan.fee_schedule",
                "overlapping dates for one code",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let response = UpsertPlanResponse { plan: Some(plan) };
    tx.commit(&response).await?;
    Ok(response)
}

/// GetPlan.
pub async fn get_plan(
    svc: &Insurance,
    request: Request<GetPlanRequest>,
) -> Result<GetPlanResponse, ApiError> {
    let caller = Caller::of(&request)?;
    let req = request.into_inner();
    let mut conn = svc.pool.acquire().await?;
    let plan = store::plans::get(&mut conn, &req.plan_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("plan {}", req.plan_id)))?;
    if caller.role == Role::Integrator {
        caller.require_payer(&plan.payer_id)?;
    }
    Ok(GetPlanResponse { plan: Some(plan) })
}

/// ListPlans.
pub async fn list_plans(
    svc: &Insurance,
    request: Request<ListPlansRequest>,
) -> Result<ListPlansResponse, ApiError> {
    let caller = Caller::of(&request)?;
    let req = request.into_inner();
    let filters = ListPlansRequest {
        page_size: 0,
        page_token: String::new(),
        ..req.clone()
    };
    let page: Page<String> = Page::parse(&filters, req.page_size, &req.page_token, 50, 500)?;
    let payer = match (caller.role, req.payer_id.as_str()) {
        (Role::Integrator, "") => caller.payer_id.clone(),
        (Role::Integrator, named) => {
            caller.require_payer(named)?;
            Some(named.to_owned())
        }
        (_, "") => None,
        (_, named) => Some(named.to_owned()),
    };
    let mut conn = svc.pool.acquire().await?;
    let after = page.after.as_deref().unwrap_or_default();
    let rows = store::plans::list(&mut conn, payer.as_deref(), after, page.fetch_limit()).await?;
    let (plans, next_page_token) = page.finish(rows, |p| p.plan_id.clone());
    Ok(ListPlansResponse {
        plans,
        next_page_token,
    })
}
