//! Provider calls: create, get, list, update and deactivate. A partner may act on a provider only
//! when every clinic it serves — before and after the change — is in the partner's scope.

use super::{Directory, exists_or, id, require_clinics, stale, stored_id};
use crate::{domain::time_zone, events, store, validate};
use clinicnet_proto::{directory::v1 as pb, events::v1::ProviderChangeKind};
use jiff::{Timestamp, tz::TimeZone};
use platform::paging::Page;
use platform::{
    ApiError,
    auth::{Caller, Role},
    idempotency::{self, Start},
};
use sqlx::PgConnection;
use uuid::Uuid;

pub(super) async fn create(
    directory: &Directory,
    caller: &Caller,
    request: pb::CreateProviderRequest,
) -> Result<pb::CreateProviderResponse, ApiError> {
    caller.require_role(&[Role::Ops, Role::PartnerClinic])?;
    require_clinics(caller, request.provider.iter().flat_map(|p| &p.clinic_ids))?;
    let start = idempotency::start(
        &directory.pool,
        caller,
        "CreateProvider",
        &request.request_id,
        &request,
    );
    let mut tx = match start.await? {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let provider = validate::provider::for_create(request.provider.as_ref())?;
    let zones = clinic_zones(tx.conn(), &provider.clinic_ids).await?;
    validate::provider::licences_current(&provider.profile, &zones, Timestamp::now())?;
    let id = Uuid::now_v7();
    store::providers::insert(tx.conn(), id, &provider)
        .await
        .map_err(|e| {
            exists_or(e, || {
                format!("a provider with NPI {}", provider.profile.npi)
            })
        })?;
    let provider = read_back(tx.conn(), id).await?;
    events::provider_changed(
        tx.conn(),
        ProviderChangeKind::Created,
        &provider,
        &request.request_id,
    )
    .await?;
    let response = pb::CreateProviderResponse {
        provider: Some(provider),
    };
    tx.commit(&response).await?;
    tracing::info!(provider_id = %id, "provider registered");
    Ok(response)
}

pub(super) async fn get(
    directory: &Directory,
    request: pb::GetProviderRequest,
) -> Result<pb::GetProviderResponse, ApiError> {
    let id = id("provider_id", &request.provider_id)?;
    let mut conn = directory.pool.acquire().await?;
    let provider = store::providers::get(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("provider {id}")))?;
    Ok(pb::GetProviderResponse {
        provider: Some(provider),
    })
}

pub(super) async fn list(
    directory: &Directory,
    request: pb::ListProvidersRequest,
) -> Result<pb::ListProvidersResponse, ApiError> {
    let clinic_id = if request.clinic_id.is_empty() {
        None
    } else {
        Some(id("clinic_id", &request.clinic_id)?)
    };
    let filters = pb::ListProvidersRequest {
        clinic_id: request.clinic_id.clone(),
        ..Default::default()
    };
    let page: Page<Uuid> = Page::parse(&filters, request.page_size, &request.page_token, 50, 500)?;
    let mut conn = directory.pool.acquire().await?;
    let rows = store::providers::list(&mut conn, clinic_id, page.after, page.fetch_limit()).await?;
    let (providers, next_page_token) =
        page.finish(rows, |provider| stored_id(&provider.provider_id));
    Ok(pb::ListProvidersResponse {
        providers,
        next_page_token,
    })
}

pub(super) async fn update(
    directory: &Directory,
    caller: &Caller,
    request: pb::UpdateProviderRequest,
) -> Result<pb::UpdateProviderResponse, ApiError> {
    caller.require_role(&[Role::Ops, Role::PartnerClinic])?;
    require_clinics(caller, request.provider.iter().flat_map(|p| &p.clinic_ids))?;
    let start = idempotency::start(
        &directory.pool,
        caller,
        "UpdateProvider",
        &request.request_id,
        &request,
    );
    let mut tx = match start.await? {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let (id, provider) = validate::provider::for_update(request.provider.as_ref())?;
    let expected = request.expected_version;
    lock_at(tx.conn(), caller, id, expected).await?;
    let zones = clinic_zones(tx.conn(), &provider.clinic_ids).await?;
    validate::provider::licences_current(&provider.profile, &zones, Timestamp::now())?;
    let updated = store::providers::update(tx.conn(), id, expected, &provider)
        .await
        .map_err(|e| {
            exists_or(e, || {
                format!("another provider with NPI {}", provider.profile.npi)
            })
        })?;
    if !updated {
        return Err(stale("provider", id, expected));
    }
    let provider = read_back(tx.conn(), id).await?;
    events::provider_changed(
        tx.conn(),
        ProviderChangeKind::Updated,
        &provider,
        &request.request_id,
    )
    .await?;
    let response = pb::UpdateProviderResponse {
        provider: Some(provider),
    };
    tx.commit(&response).await?;
    tracing::info!(provider_id = %id, "provider updated");
    Ok(response)
}

pub(super) async fn remove(
    directory: &Directory,
    caller: &Caller,
    request: pb::RemoveProviderRequest,
) -> Result<pb::RemoveProviderResponse, ApiError> {
    caller.require_role(&[Role::Ops, Role::PartnerClinic])?;
    let start = idempotency::start(
        &directory.pool,
        caller,
        "RemoveProvider",
        &request.request_id,
        &request,
    );
    let mut tx = match start.await? {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let id = id("provider_id", &request.provider_id)?;
    let expected = request.expected_version;
    let current = lock_at(tx.conn(), caller, id, expected).await?;
    if current.status == pb::ProviderStatus::Inactive as i32 {
        return Err(ApiError::precondition(
            "provider_already_inactive",
            "the provider is inactive already",
        ));
    }
    if !store::providers::deactivate(tx.conn(), id, expected).await? {
        return Err(stale("provider", id, expected));
    }
    let provider = read_back(tx.conn(), id).await?;
    events::provider_changed(
        tx.conn(),
        ProviderChangeKind::Deactivated,
        &provider,
        &request.request_id,
    )
    .await?;
    let response = pb::RemoveProviderResponse {
        provider: Some(provider),
    };
    tx.commit(&response).await?;
    tracing::info!(provider_id = %id, "provider deactivated");
    Ok(response)
}

/// The provider, locked for the transaction, when the caller may change it (every clinic it
/// serves now is in scope) and it is at version `expected`.
async fn lock_at(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    expected: u64,
) -> Result<pb::Provider, ApiError> {
    let provider = store::providers::lock(conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("provider {id}")))?;
    require_clinics(caller, &provider.clinic_ids)?;
    if provider.version == expected {
        Ok(provider)
    } else {
        Err(stale("provider", id, expected))
    }
}

/// The time zones of the clinics a provider serves; NOT_FOUND names a clinic that does not exist.
async fn clinic_zones(
    conn: &mut PgConnection,
    clinic_ids: &[Uuid],
) -> Result<Vec<TimeZone>, ApiError> {
    let found = store::providers::clinic_time_zones(conn, clinic_ids).await?;
    if let Some(missing) = clinic_ids
        .iter()
        .find(|id| !found.iter().any(|(f, _)| f == *id))
    {
        return Err(ApiError::NotFound(format!("clinic {missing}")));
    }
    Ok(found
        .iter()
        .filter_map(|(_, zone)| time_zone::parse(zone).ok())
        .collect())
}

async fn read_back(conn: &mut PgConnection, id: Uuid) -> Result<pb::Provider, ApiError> {
    store::providers::get(conn, id).await?.ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
            "provider {id} vanished inside its own transaction"
        ))
    })
}
