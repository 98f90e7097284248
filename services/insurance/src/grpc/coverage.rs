//! Patients' coverages: add, replace, remove (kept for the claims that used it), list.

use super::{Insurance, access, validate};
use crate::{convert, store};
use clinicnet_proto::insurance::v1::*;
use platform::{
    ApiError, audit,
    auth::Caller,
    db,
    error::Violations,
    idempotency::{self, Start},
    paging::Page,
};
use sqlx::PgConnection;
use tonic::Request;

fn check(coverage: Option<&Coverage>, needs_id: bool) -> Result<&Coverage, ApiError> {
    let Some(c) = coverage else {
        return Err(ApiError::invalid("coverage", "required"));
    };
    let mut v = Violations::new();
    if needs_id {
        validate::id(&mut v, "coverage.coverage_id", &c.coverage_id);
    }
    validate::reference(&mut v, "coverage.patient_id", &c.patient_id);
    validate::slug(&mut v, "coverage.payer_id", &c.payer_id);
    validate::slug(&mut v, "coverage.plan_id", &c.plan_id);
    validate::text(&mut v, "coverage.member_id", &c.member_id, 80);
    validate::optional_text(&mut v, "coverage.group_number", &c.group_number, 80);
    let relationship = validate::known_enum::<SubscriberRelationship>(
        &mut v,
        "coverage.relationship",
        c.relationship,
    );
    if relationship.is_some_and(|r| r != SubscriberRelationship::Self_) {
        match &c.subscriber_name {
            Some(name) => {
                validate::text(
                    &mut v,
                    "coverage.subscriber_name.given_name",
                    &name.given_name,
                    100,
                );
                validate::text(
                    &mut v,
                    "coverage.subscriber_name.family_name",
                    &name.family_name,
                    100,
                );
            }
            None => v.add(
                "coverage.subscriber_name",
                "required when the patient is not the subscriber",
            ),
        }
        validate::date(
            &mut v,
            "coverage.subscriber_birth_date",
            c.subscriber_birth_date.as_ref(),
            true,
        );
    }
    let from = validate::date(
        &mut v,
        "coverage.effective_from",
        c.effective_from.as_ref(),
        false,
    );
    let until = validate::date(
        &mut v,
        "coverage.effective_until",
        c.effective_until.as_ref(),
        true,
    );
    if let (Some(from), Some(until)) = (from, until) {
        v.check(
            until < from,
            "coverage.effective_until",
            "before effective_from",
        );
    }
    validate::known_enum::<CoveragePriority>(&mut v, "coverage.priority", c.priority);
    v.finish()?;
    Ok(c)
}

async fn check_plan(conn: &mut PgConnection, c: &Coverage) -> Result<(), ApiError> {
    match store::plans::payer_of(conn, &c.plan_id).await? {
        None => Err(ApiError::NotFound(format!("plan {}", c.plan_id))),
        Some(payer) if payer != c.payer_id => Err(ApiError::invalid(
            "coverage.plan_id",
            format!("plan {} belongs to payer {payer}", c.plan_id),
        )),
        Some(_) => Ok(()),
    }
}

fn priority_clash(error: sqlx::Error) -> ApiError {
    if db::is_exclusion_violation(&error) {
        ApiError::AlreadyExists(
            "an active coverage of the patient with this priority over these dates".into(),
        )
    } else {
        error.into()
    }
}

/// AddCoverage.
pub async fn add(
    svc: &Insurance,
    request: Request<AddCoverageRequest>,
) -> Result<AddCoverageResponse, ApiError> {
    let caller = Caller::of(&request)?;
    access::staff(&caller)?;
    let req = request.into_inner();
    let given = check(req.coverage.as_ref(), false)?;
    let mut tx =
        match idempotency::start(&svc.pool, &caller, "AddCoverage", &req.request_id, &req).await? {
            Start::Replay(response) => return Ok(response),
            Start::Fresh(tx) => tx,
        };
    access::patient(tx.conn(), &caller, &given.patient_id).await?;
    check_plan(tx.conn(), given).await?;
    let now = convert::timestamp(convert::now());
    let coverage = Coverage {
        coverage_id: uuid::Uuid::now_v7().to_string(),
        status: CoverageStatus::Active as i32,
        version: 1,
        create_time: Some(now),
        update_time: Some(now),
        ..given.clone()
    };
    store::coverages::insert(tx.conn(), &coverage)
        .await
        .map_err(priority_clash)?;
    audit::record(
        tx.conn(),
        &caller,
        "insurance.coverage.add",
        &coverage.patient_id,
    )
    .await?;
    let response = AddCoverageResponse {
        coverage: Some(coverage),
    };
    tx.commit(&response).await?;
    Ok(response)
}

/// UpdateCoverage.
pub async fn update(
    svc: &Insurance,
    request: Request<UpdateCoverageRequest>,
) -> Result<UpdateCoverageResponse, ApiError> {
    let caller = Caller::of(&request)?;
    access::staff(&caller)?;
    let req = request.into_inner();
    let given = check(req.coverage.as_ref(), true)?;
    let mut tx =
        match idempotency::start(&svc.pool, &caller, "UpdateCoverage", &req.request_id, &req)
            .await?
        {
            Start::Replay(response) => return Ok(response),
            Start::Fresh(tx) => tx,
        };
    let current = store::coverages::get(tx.conn(), &given.coverage_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("coverage {}", given.coverage_id)))?;
    access::patient(tx.conn(), &caller, &current.patient_id).await?;
    if given.patient_id != current.patient_id {
        return Err(ApiError::invalid(
            "coverage.patient_id",
            "a coverage cannot move to another patient",
        ));
    }
    if current.version != req.expected_version {
        return Err(ApiError::Aborted(format!(
            "coverage is at version {}",
            current.version
        )));
    }
    check_plan(tx.conn(), given).await?;
    let coverage = Coverage {
        status: current.status,
        version: current.version + 1,
        create_time: current.create_time,
        update_time: Some(convert::timestamp(convert::now())),
        ..given.clone()
    };
    if !store::coverages::update(tx.conn(), &coverage, current.version)
        .await
        .map_err(priority_clash)?
    {
        return Err(ApiError::Aborted("coverage changed concurrently".into()));
    }
    audit::record(
        tx.conn(),
        &caller,
        "insurance.coverage.update",
        &coverage.patient_id,
    )
    .await?;
    let response = UpdateCoverageResponse {
        coverage: Some(coverage),
    };
    tx.commit(&response).await?;
    Ok(response)
}

/// RemoveCoverage.
pub async fn remove(
    svc: &Insurance,
    request: Request<RemoveCoverageRequest>,
) -> Result<RemoveCoverageResponse, ApiError> {
    let caller = Caller::of(&request)?;
    access::staff(&caller)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    validate::id(&mut v, "coverage_id", &req.coverage_id);
    v.finish()?;
    let mut tx =
        match idempotency::start(&svc.pool, &caller, "RemoveCoverage", &req.request_id, &req)
            .await?
        {
            Start::Replay(response) => return Ok(response),
            Start::Fresh(tx) => tx,
        };
    let mut coverage = store::coverages::get(tx.conn(), &req.coverage_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("coverage {}", req.coverage_id)))?;
    access::patient(tx.conn(), &caller, &coverage.patient_id).await?;
    if coverage.status == CoverageStatus::Removed as i32 {
        return Err(ApiError::precondition(
            "coverage_removed",
            "the coverage is already removed",
        ));
    }
    let expected = coverage.version;
    coverage.status = CoverageStatus::Removed as i32;
    coverage.version += 1;
    coverage.update_time = Some(convert::timestamp(convert::now()));
    if !store::coverages::update(tx.conn(), &coverage, expected).await? {
        return Err(ApiError::Aborted("coverage changed concurrently".into()));
    }
    audit::record(
        tx.conn(),
        &caller,
        "insurance.coverage.remove",
        &coverage.patient_id,
    )
    .await?;
    let response = RemoveCoverageResponse {
        coverage: Some(coverage),
    };
    tx.commit(&response).await?;
    Ok(response)
}

/// ListCoverages.
pub async fn list(
    svc: &Insurance,
    request: Request<ListCoveragesRequest>,
) -> Result<ListCoveragesResponse, ApiError> {
    let caller = Caller::of(&request)?;
    access::staff(&caller)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    validate::reference(&mut v, "patient_id", &req.patient_id);
    v.finish()?;
    let filters = ListCoveragesRequest {
        page_size: 0,
        page_token: String::new(),
        ..req.clone()
    };
    // Coverages are few per patient and mix sort directions: the key is the offset.
    let page: Page<i64> = Page::parse(&filters, req.page_size, &req.page_token, 20, 100)?;
    let offset = page.after.unwrap_or(0);
    let mut tx = svc.pool.begin().await?;
    access::patient(&mut tx, &caller, &req.patient_id).await?;
    let rows = store::coverages::list(
        &mut tx,
        &req.patient_id,
        req.include_removed,
        offset,
        page.fetch_limit(),
    )
    .await?;
    let (coverages, next_page_token) = page.finish(rows, |_| {
        offset.saturating_add(i64::try_from(page.size).unwrap_or(i64::MAX))
    });
    audit::record(&mut tx, &caller, "insurance.coverage.list", &req.patient_id).await?;
    tx.commit().await?;
    Ok(ListCoveragesResponse {
        coverages,
        next_page_token,
    })
}
