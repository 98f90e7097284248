//! Chair calls: add or replace a chair, retire a chair. Chairs are part of the clinic aggregate:
//! every change bumps the clinic's version.

use super::{
    Directory,
    clinics::{lock_at, read_back},
    exists_or, id, stale,
};
use crate::{
    events::{self, ClinicChange},
    store, validate,
};
use clinicnet_proto::{directory::v1 as pb, events::v1::ChairChangeKind};
use platform::{
    ApiError,
    auth::{Caller, Role},
    idempotency::{self, Start},
};

pub(super) async fn upsert(
    directory: &Directory,
    caller: &Caller,
    request: pb::UpsertChairRequest,
) -> Result<pb::UpsertChairResponse, ApiError> {
    caller.require_role(&[Role::Ops, Role::PartnerClinic])?;
    caller.require_clinic(&request.clinic_id)?;
    let start = idempotency::start(
        &directory.pool,
        caller,
        "UpsertChair",
        &request.request_id,
        &request,
    );
    let mut tx = match start.await? {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let clinic_id = id("clinic_id", &request.clinic_id)?;
    let expected = request.expected_version;
    let current = lock_at(tx.conn(), clinic_id, expected).await?;
    let adds = request
        .chair
        .as_ref()
        .is_some_and(|c| c.chair_id.is_empty());
    let chair = validate::chair::for_upsert(request.chair.as_ref(), &current.modalities)?;
    if !current
        .locations
        .iter()
        .any(|l| l.location_id == chair.location_id)
    {
        return Err(ApiError::NotFound(format!(
            "location {} of clinic {clinic_id}",
            chair.location_id
        )));
    }
    if !adds && !current.chairs.iter().any(|c| c.chair_id == chair.chair_id) {
        return Err(ApiError::NotFound(format!(
            "chair {} of clinic {clinic_id}",
            chair.chair_id
        )));
    }
    if !store::clinics::bump_version(tx.conn(), clinic_id, expected).await? {
        return Err(stale("clinic", clinic_id, expected));
    }
    let kind = if adds {
        store::clinics::insert_chair(tx.conn(), clinic_id, &chair)
            .await
            .map_err(|e| exists_or(e, || format!("chair {}", chair.chair_id)))?;
        ChairChangeKind::Added
    } else {
        store::clinics::update_chair(tx.conn(), clinic_id, &chair).await?;
        ChairChangeKind::Updated
    };
    let (clinic, chair) = read_back_chair(tx.conn(), clinic_id, &chair.chair_id).await?;
    events::clinic_changed(
        tx.conn(),
        ClinicChange::Chair(kind, chair.clone()),
        &clinic,
        &request.request_id,
    )
    .await?;
    let response = pb::UpsertChairResponse {
        chair: Some(chair),
        clinic_version: clinic.version,
    };
    tx.commit(&response).await?;
    tracing::info!(%clinic_id, chair_id = %response.chair.as_ref().map_or("", |c| &c.chair_id), "chair saved");
    Ok(response)
}

pub(super) async fn remove(
    directory: &Directory,
    caller: &Caller,
    request: pb::RemoveChairRequest,
) -> Result<pb::RemoveChairResponse, ApiError> {
    caller.require_role(&[Role::Ops, Role::PartnerClinic])?;
    caller.require_clinic(&request.clinic_id)?;
    let start = idempotency::start(
        &directory.pool,
        caller,
        "RemoveChair",
        &request.request_id,
        &request,
    );
    let mut tx = match start.await? {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let clinic_id = id("clinic_id", &request.clinic_id)?;
    let expected = request.expected_version;
    let current = lock_at(tx.conn(), clinic_id, expected).await?;
    let chair = current
        .chairs
        .iter()
        .find(|c| c.chair_id == request.chair_id)
        .ok_or_else(|| {
            ApiError::NotFound(format!("chair {} of clinic {clinic_id}", request.chair_id))
        })?;
    if chair.retired {
        return Err(ApiError::precondition(
            "chair_already_retired",
            "the chair is retired already",
        ));
    }
    if !store::clinics::bump_version(tx.conn(), clinic_id, expected).await? {
        return Err(stale("clinic", clinic_id, expected));
    }
    store::clinics::retire_chair(tx.conn(), clinic_id, &chair.chair_id).await?;
    let (clinic, chair) = read_back_chair(tx.conn(), clinic_id, &chair.chair_id).await?;
    let change = ClinicChange::Chair(ChairChangeKind::Retired, chair.clone());
    events::clinic_changed(tx.conn(), change, &clinic, &request.request_id).await?;
    let response = pb::RemoveChairResponse {
        chair: Some(chair),
        clinic_version: clinic.version,
    };
    tx.commit(&response).await?;
    tracing::info!(%clinic_id, chair_id = %request.chair_id, "chair retired");
    Ok(response)
}

/// The clinic and one of its chairs as this transaction wrote them.
async fn read_back_chair(
    conn: &mut sqlx::PgConnection,
    clinic_id: uuid::Uuid,
    chair_id: &str,
) -> Result<(pb::Clinic, pb::Chair), ApiError> {
    let clinic = read_back(conn, clinic_id).await?;
    let chair = clinic
        .chairs
        .iter()
        .find(|c| c.chair_id == chair_id)
        .cloned()
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "chair {chair_id} vanished inside its own transaction"
            ))
        })?;
    Ok((clinic, chair))
}
