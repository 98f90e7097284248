//! Clinic calls: create, get, list, update, suspend and reactivate.

use super::{Directory, exists_or, id, stale, stored_id};
use crate::{
    events::{self, ClinicChange},
    store, validate,
};
use clinicnet_proto::directory::v1::{self as pb, ClinicStatus};
use jiff::Timestamp;
use platform::paging::Page;
use platform::{
    ApiError,
    auth::{Caller, Role},
    idempotency::{self, Start},
};
use sqlx::PgConnection;
use uuid::Uuid;

/// Longest suspension reason.
const MAX_REASON_LEN: usize = 500;

pub(super) async fn create(
    directory: &Directory,
    caller: &Caller,
    request: pb::CreateClinicRequest,
) -> Result<pb::CreateClinicResponse, ApiError> {
    caller.require_role(&[Role::Ops])?;
    let start = idempotency::start(
        &directory.pool,
        caller,
        "CreateClinic",
        &request.request_id,
        &request,
    );
    let mut tx = match start.await? {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let (clinic, chairs) = validate::clinic::for_create(request.clinic.as_ref(), Timestamp::now())?;
    let id = Uuid::now_v7();
    store::clinics::insert(tx.conn(), id, &clinic)
        .await
        .map_err(|e| exists_or(e, || format!("a clinic with NPI {}", clinic.profile.npi)))?;
    for chair in &chairs {
        store::clinics::insert_chair(tx.conn(), id, chair)
            .await
            .map_err(|e| exists_or(e, || format!("chair {}", chair.chair_id)))?;
    }
    let clinic = read_back(tx.conn(), id).await?;
    events::clinic_changed(
        tx.conn(),
        ClinicChange::Registered,
        &clinic,
        &request.request_id,
    )
    .await?;
    let response = pb::CreateClinicResponse {
        clinic: Some(clinic),
    };
    tx.commit(&response).await?;
    tracing::info!(clinic_id = %id, "clinic registered");
    Ok(response)
}

pub(super) async fn get(
    directory: &Directory,
    request: pb::GetClinicRequest,
) -> Result<pb::GetClinicResponse, ApiError> {
    let id = id("clinic_id", &request.clinic_id)?;
    let mut conn = directory.pool.acquire().await?;
    let clinic = store::clinics::get(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("clinic {id}")))?;
    Ok(pb::GetClinicResponse {
        clinic: Some(clinic),
    })
}

pub(super) async fn list(
    directory: &Directory,
    request: pb::ListClinicsRequest,
) -> Result<pb::ListClinicsResponse, ApiError> {
    let status = validate::query::status(request.status)?;
    let filters = pb::ListClinicsRequest {
        status: request.status,
        ..Default::default()
    };
    let page: Page<Uuid> = Page::parse(&filters, request.page_size, &request.page_token, 50, 500)?;
    let mut conn = directory.pool.acquire().await?;
    let rows = store::clinics::list(&mut conn, status, page.after, page.fetch_limit()).await?;
    let (clinics, next_page_token) = page.finish(rows, |clinic| stored_id(&clinic.clinic_id));
    Ok(pb::ListClinicsResponse {
        clinics,
        next_page_token,
    })
}

pub(super) async fn update(
    directory: &Directory,
    caller: &Caller,
    request: pb::UpdateClinicRequest,
) -> Result<pb::UpdateClinicResponse, ApiError> {
    caller.require_role(&[Role::Ops, Role::PartnerClinic])?;
    caller.require_clinic(request.clinic.as_ref().map_or("", |c| &c.clinic_id))?;
    let start = idempotency::start(
        &directory.pool,
        caller,
        "UpdateClinic",
        &request.request_id,
        &request,
    );
    let mut tx = match start.await? {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let (id, clinic) = validate::clinic::for_update(request.clinic.as_ref(), Timestamp::now())?;
    let expected = request.expected_version;
    let current = lock_at(tx.conn(), id, expected).await?;
    validate::chair::chairs_fit(&clinic.profile, &current.chairs)?;
    let updated = store::clinics::update_profile(tx.conn(), id, expected, &clinic)
        .await
        .map_err(|e| {
            exists_or(e, || {
                format!("another clinic with NPI {}", clinic.profile.npi)
            })
        })?;
    if !updated {
        return Err(stale("clinic", id, expected));
    }
    let clinic = read_back(tx.conn(), id).await?;
    events::clinic_changed(
        tx.conn(),
        ClinicChange::Updated,
        &clinic,
        &request.request_id,
    )
    .await?;
    let response = pb::UpdateClinicResponse {
        clinic: Some(clinic),
    };
    tx.commit(&response).await?;
    tracing::info!(clinic_id = %id, "clinic updated");
    Ok(response)
}

pub(super) async fn suspend(
    directory: &Directory,
    caller: &Caller,
    request: pb::SuspendClinicRequest,
) -> Result<pb::SuspendClinicResponse, ApiError> {
    caller.require_role(&[Role::Ops])?;
    let start = idempotency::start(
        &directory.pool,
        caller,
        "SuspendClinic",
        &request.request_id,
        &request,
    );
    let mut tx = match start.await? {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let id = id("clinic_id", &request.clinic_id)?;
    let reason = request.reason.trim();
    if reason.is_empty() || request.reason.chars().count() > MAX_REASON_LEN {
        return Err(ApiError::invalid(
            "reason",
            "required, at most 500 characters",
        ));
    }
    let expected = request.expected_version;
    let current = lock_at(tx.conn(), id, expected).await?;
    if current.status == ClinicStatus::Suspended as i32 {
        return Err(ApiError::precondition(
            "clinic_already_suspended",
            "the clinic is suspended already",
        ));
    }
    let clinic = change_status(
        tx.conn(),
        (id, expected),
        (ClinicStatus::Suspended, reason),
        ClinicChange::Suspended,
        &request.request_id,
    )
    .await?;
    let response = pb::SuspendClinicResponse {
        clinic: Some(clinic),
    };
    tx.commit(&response).await?;
    tracing::info!(clinic_id = %id, "clinic suspended");
    Ok(response)
}

pub(super) async fn reactivate(
    directory: &Directory,
    caller: &Caller,
    request: pb::ReactivateClinicRequest,
) -> Result<pb::ReactivateClinicResponse, ApiError> {
    caller.require_role(&[Role::Ops])?;
    let start = idempotency::start(
        &directory.pool,
        caller,
        "ReactivateClinic",
        &request.request_id,
        &request,
    );
    let mut tx = match start.await? {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let id = id("clinic_id", &request.clinic_id)?;
    let expected = request.expected_version;
    let current = lock_at(tx.conn(), id, expected).await?;
    if current.status != ClinicStatus::Suspended as i32 {
        return Err(ApiError::precondition(
            "clinic_not_suspended",
            "the clinic is active",
        ));
    }
    if validate::clinic::esketamine_without_current_rems(&current, Timestamp::now()) {
        return Err(ApiError::precondition(
            "rems_certification_not_current",
            "the clinic offers esketamine nasal spray without a current REMS certification; update it first",
        ));
    }
    let clinic = change_status(
        tx.conn(),
        (id, expected),
        (ClinicStatus::Active, ""),
        ClinicChange::Reactivated,
        &request.request_id,
    )
    .await?;
    let response = pb::ReactivateClinicResponse {
        clinic: Some(clinic),
    };
    tx.commit(&response).await?;
    tracing::info!(clinic_id = %id, "clinic reactivated");
    Ok(response)
}

/// Sets the status (and suspension reason) of the clinic `at` (id, expected version), records
/// the change's event and returns the clinic as stored; ABORTED when the version moved on.
async fn change_status(
    conn: &mut PgConnection,
    at: (Uuid, u64),
    status: (ClinicStatus, &str),
    change: ClinicChange,
    request_id: &str,
) -> Result<pb::Clinic, ApiError> {
    let (id, expected) = at;
    if !store::clinics::set_status(conn, id, expected, status.0, status.1).await? {
        return Err(stale("clinic", id, expected));
    }
    let clinic = read_back(conn, id).await?;
    events::clinic_changed(conn, change, &clinic, request_id).await?;
    Ok(clinic)
}

/// The clinic, locked for the transaction, when it is at version `expected`: NOT_FOUND when
/// there is no such clinic, ABORTED when it has another version.
pub(super) async fn lock_at(
    conn: &mut PgConnection,
    id: Uuid,
    expected: u64,
) -> Result<pb::Clinic, ApiError> {
    let clinic = store::clinics::lock(conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("clinic {id}")))?;
    if clinic.version == expected {
        Ok(clinic)
    } else {
        Err(stale("clinic", id, expected))
    }
}

/// The clinic as this transaction wrote it.
pub(super) async fn read_back(conn: &mut PgConnection, id: Uuid) -> Result<pb::Clinic, ApiError> {
    store::clinics::get(conn, id).await?.ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
            "clinic {id} vanished inside its own transaction"
        ))
    })
}
