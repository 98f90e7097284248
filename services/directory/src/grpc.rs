//! The DirectoryService gRPC API. Every call is authenticated by the runtime's interceptor, then
//! authorized, decoded and validated here; a change is applied to the store together with its
//! event and its idempotency record in one transaction, and answered with the state read back.
//! Handlers live by noun in [`clinics`], [`chairs`], [`providers`] and [`search`].

mod chairs;
mod clinics;
mod providers;
mod search;

use clinicnet_proto::directory::v1::{self as pb, directory_service_server::DirectoryService};
use platform::{ApiError, auth::Caller, db::is_unique_violation};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The directory service over its database.
#[derive(Debug, Clone)]
pub struct Directory {
    pool: PgPool,
}

impl Directory {
    /// The service over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// The authenticated caller and the decoded message of a request.
fn open<T>(request: Request<T>) -> Result<(Caller, T), Status> {
    let caller = Caller::of(&request)?;
    Ok((caller, request.into_inner()))
}

fn answer<R>(result: Result<R, ApiError>) -> Result<Response<R>, Status> {
    result.map(Response::new).map_err(Status::from)
}

/// An id this service issued, named by `field` of the request.
fn id(field: &str, value: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(value)
        .ok()
        .filter(|id| id.to_string() == value)
        .ok_or_else(|| ApiError::invalid(field, "must be an id returned by this service"))
}

/// The paging key of something this service stored (its ids are always UUIDs).
fn stored_id(value: &str) -> Uuid {
    Uuid::parse_str(value).unwrap_or_default()
}

/// The answer to a version-guarded change that found another version.
fn stale(what: &str, id: Uuid, expected: u64) -> ApiError {
    ApiError::Aborted(format!(
        "{what} {id} is no longer at version {expected}; read it again and retry"
    ))
}

/// ALREADY_EXISTS for a unique violation, the error itself otherwise.
fn exists_or(error: sqlx::Error, what: impl FnOnce() -> String) -> ApiError {
    if is_unique_violation(&error) {
        ApiError::AlreadyExists(what())
    } else {
        error.into()
    }
}

/// A partner may act only when every clinic named is in its scope; ops always.
fn require_clinics<'a>(
    caller: &Caller,
    clinic_ids: impl IntoIterator<Item = &'a String>,
) -> Result<(), ApiError> {
    clinic_ids
        .into_iter()
        .try_for_each(|clinic_id| caller.require_clinic(clinic_id))
}

#[tonic::async_trait]
impl DirectoryService for Directory {
    async fn create_clinic(
        &self,
        request: Request<pb::CreateClinicRequest>,
    ) -> Result<Response<pb::CreateClinicResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(clinics::create(self, &caller, request).await)
    }

    async fn get_clinic(
        &self,
        request: Request<pb::GetClinicRequest>,
    ) -> Result<Response<pb::GetClinicResponse>, Status> {
        let (_, request) = open(request)?;
        answer(clinics::get(self, request).await)
    }

    async fn list_clinics(
        &self,
        request: Request<pb::ListClinicsRequest>,
    ) -> Result<Response<pb::ListClinicsResponse>, Status> {
        let (_, request) = open(request)?;
        answer(clinics::list(self, request).await)
    }

    async fn update_clinic(
        &self,
        request: Request<pb::UpdateClinicRequest>,
    ) -> Result<Response<pb::UpdateClinicResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(clinics::update(self, &caller, request).await)
    }

    async fn suspend_clinic(
        &self,
        request: Request<pb::SuspendClinicRequest>,
    ) -> Result<Response<pb::SuspendClinicResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(clinics::suspend(self, &caller, request).await)
    }

    async fn reactivate_clinic(
        &self,
        request: Request<pb::ReactivateClinicRequest>,
    ) -> Result<Response<pb::ReactivateClinicResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(clinics::reactivate(self, &caller, request).await)
    }

    async fn upsert_chair(
        &self,
        request: Request<pb::UpsertChairRequest>,
    ) -> Result<Response<pb::UpsertChairResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(chairs::upsert(self, &caller, request).await)
    }

    async fn remove_chair(
        &self,
        request: Request<pb::RemoveChairRequest>,
    ) -> Result<Response<pb::RemoveChairResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(chairs::remove(self, &caller, request).await)
    }

    async fn create_provider(
        &self,
        request: Request<pb::CreateProviderRequest>,
    ) -> Result<Response<pb::CreateProviderResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(providers::create(self, &caller, request).await)
    }

    async fn get_provider(
        &self,
        request: Request<pb::GetProviderRequest>,
    ) -> Result<Response<pb::GetProviderResponse>, Status> {
        let (_, request) = open(request)?;
        answer(providers::get(self, request).await)
    }

    async fn list_providers(
        &self,
        request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        let (_, request) = open(request)?;
        answer(providers::list(self, request).await)
    }

    async fn update_provider(
        &self,
        request: Request<pb::UpdateProviderRequest>,
    ) -> Result<Response<pb::UpdateProviderResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(providers::update(self, &caller, request).await)
    }

    async fn remove_provider(
        &self,
        request: Request<pb::RemoveProviderRequest>,
    ) -> Result<Response<pb::RemoveProviderResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(providers::remove(self, &caller, request).await)
    }

    async fn search_clinics(
        &self,
        request: Request<pb::SearchClinicsRequest>,
    ) -> Result<Response<pb::SearchClinicsResponse>, Status> {
        let (_, request) = open(request)?;
        answer(search::search(self, request).await)
    }
}
