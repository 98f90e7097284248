//! The gRPC APIs: InsuranceService for clinics and ops, IntegratorService for the payers'
//! integrators. Each RPC decodes, validates, checks the caller's scope, applies the rules and
//! stores; the modules are by noun.

mod access;
mod authorizations;
mod claims;
mod coverage;
mod eligibility;
mod payers;
mod remittances;
mod reports;
mod superbills;
mod validate;
mod work_stream;

use crate::{settings::Settings, work::WorkSignal};
use clinicnet_proto::insurance::v1::{
    insurance_service_server::InsuranceService, integrator_service_server::IntegratorService, *,
};
use platform::{
    ApiError,
    auth::{Caller, Role},
    shutdown::Shutdown,
};
use sqlx::PgPool;
use std::sync::Arc;
use time::OffsetDateTime;
use tonic::{Request, Response, Status, Streaming};

/// The page key of a newest-first item: its time (epoch when unset) and its id.
fn time_key(time: Option<&prost_types::Timestamp>, id: &str) -> (OffsetDateTime, uuid::Uuid) {
    (
        time.and_then(crate::convert::instant)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        uuid::Uuid::parse_str(id).unwrap_or_default(),
    )
}

/// What every RPC works with.
#[derive(Debug, Clone)]
pub struct Insurance {
    /// The service's database.
    pub pool: PgPool,
    /// Domain settings.
    pub settings: Arc<Settings>,
}

/// The integrators' API: the shared state, the work signal and the shutdown that ends streams.
#[derive(Debug, Clone)]
pub struct IntegratorApi {
    state: Insurance,
    signal: WorkSignal,
    shutdown: Shutdown,
}

impl IntegratorApi {
    /// The API over `state`.
    pub fn new(state: Insurance, signal: WorkSignal, shutdown: Shutdown) -> Self {
        Self {
            state,
            signal,
            shutdown,
        }
    }
}

/// Integrators, and ops for support.
fn integrator_role(caller: &Caller) -> Result<(), ApiError> {
    caller.require_role(&[Role::Integrator, Role::Ops])
}

fn reply<T>(result: Result<T, ApiError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl InsuranceService for Insurance {
    async fn upsert_payer(
        &self,
        r: Request<UpsertPayerRequest>,
    ) -> Result<Response<UpsertPayerResponse>, Status> {
        reply(payers::upsert_payer(self, r).await)
    }
    async fn get_payer(
        &self,
        r: Request<GetPayerRequest>,
    ) -> Result<Response<GetPayerResponse>, Status> {
        reply(payers::get_payer(self, r).await)
    }
    async fn list_payers(
        &self,
        r: Request<ListPayersRequest>,
    ) -> Result<Response<ListPayersResponse>, Status> {
        reply(payers::list_payers(self, r).await)
    }
    async fn upsert_plan(
        &self,
        r: Request<UpsertPlanRequest>,
    ) -> Result<Response<UpsertPlanResponse>, Status> {
        reply(payers::upsert_plan(self, r).await)
    }
    async fn get_plan(
        &self,
        r: Request<GetPlanRequest>,
    ) -> Result<Response<GetPlanResponse>, Status> {
        reply(payers::get_plan(self, r).await)
    }
    async fn list_plans(
        &self,
        r: Request<ListPlansRequest>,
    ) -> Result<Response<ListPlansResponse>, Status> {
        reply(payers::list_plans(self, r).await)
    }
    async fn add_coverage(
        &self,
        r: Request<AddCoverageRequest>,
    ) -> Result<Response<AddCoverageResponse>, Status> {
        reply(coverage::add(self, r).await)
    }
    async fn update_coverage(
        &self,
        r: Request<UpdateCoverageRequest>,
    ) -> Result<Response<UpdateCoverageResponse>, Status> {
        reply(coverage::update(self, r).await)
    }
    async fn remove_coverage(
        &self,
        r: Request<RemoveCoverageRequest>,
    ) -> Result<Response<RemoveCoverageResponse>, Status> {
        reply(coverage::remove(self, r).await)
    }
    async fn list_coverages(
        &self,
        r: Request<ListCoveragesRequest>,
    ) -> Result<Response<ListCoveragesResponse>, Status> {
        reply(coverage::list(self, r).await)
    }
    async fn check_eligibility(
        &self,
        r: Request<CheckEligibilityRequest>,
    ) -> Result<Response<CheckEligibilityResponse>, Status> {
        reply(eligibility::check(self, r).await)
    }
    async fn get_eligibility_check(
        &self,
        r: Request<GetEligibilityCheckRequest>,
    ) -> Result<Response<GetEligibilityCheckResponse>, Status> {
        reply(eligibility::get(self, r).await)
    }
    async fn request_prior_authorization(
        &self,
        r: Request<RequestPriorAuthorizationRequest>,
    ) -> Result<Response<RequestPriorAuthorizationResponse>, Status> {
        reply(authorizations::request(self, r).await)
    }
    async fn get_prior_authorization(
        &self,
        r: Request<GetPriorAuthorizationRequest>,
    ) -> Result<Response<GetPriorAuthorizationResponse>, Status> {
        reply(authorizations::get(self, r).await)
    }
    async fn list_prior_authorizations(
        &self,
        r: Request<ListPriorAuthorizationsRequest>,
    ) -> Result<Response<ListPriorAuthorizationsResponse>, Status> {
        reply(authorizations::list(self, r).await)
    }
    async fn get_claim(
        &self,
        r: Request<GetClaimRequest>,
    ) -> Result<Response<GetClaimResponse>, Status> {
        reply(claims::get(self, r).await)
    }
    async fn list_claims(
        &self,
        r: Request<ListClaimsRequest>,
    ) -> Result<Response<ListClaimsResponse>, Status> {
        reply(claims::list(self, r).await)
    }
    async fn submit_claim(
        &self,
        r: Request<SubmitClaimRequest>,
    ) -> Result<Response<SubmitClaimResponse>, Status> {
        reply(claims::submit(self, r).await)
    }
    async fn correct_claim(
        &self,
        r: Request<CorrectClaimRequest>,
    ) -> Result<Response<CorrectClaimResponse>, Status> {
        reply(claims::correct(self, r).await)
    }
    async fn appeal_claim(
        &self,
        r: Request<AppealClaimRequest>,
    ) -> Result<Response<AppealClaimResponse>, Status> {
        reply(claims::appeal(self, r).await)
    }
    async fn void_claim(
        &self,
        r: Request<VoidClaimRequest>,
    ) -> Result<Response<VoidClaimResponse>, Status> {
        reply(claims::void(self, r).await)
    }
    async fn get_superbill(
        &self,
        r: Request<GetSuperbillRequest>,
    ) -> Result<Response<GetSuperbillResponse>, Status> {
        reply(superbills::get(self, r).await)
    }
    async fn get_ar_aging_report(
        &self,
        r: Request<GetArAgingReportRequest>,
    ) -> Result<Response<GetArAgingReportResponse>, Status> {
        reply(reports::ar_aging(self, r).await)
    }
    async fn get_denial_report(
        &self,
        r: Request<GetDenialReportRequest>,
    ) -> Result<Response<GetDenialReportResponse>, Status> {
        reply(reports::denials(self, r).await)
    }
    async fn get_days_to_payment_report(
        &self,
        r: Request<GetDaysToPaymentReportRequest>,
    ) -> Result<Response<GetDaysToPaymentReportResponse>, Status> {
        reply(reports::days_to_payment(self, r).await)
    }
}

#[tonic::async_trait]
impl IntegratorService for IntegratorApi {
    type StreamWorkStream = work_stream::WorkStream;
    type PostRemittancesStream = remittances::Responses;

    async fn stream_work(
        &self,
        r: Request<StreamWorkRequest>,
    ) -> Result<Response<Self::StreamWorkStream>, Status> {
        reply(work_stream::open(self, r).await)
    }
    async fn answer_eligibility(
        &self,
        r: Request<AnswerEligibilityRequest>,
    ) -> Result<Response<AnswerEligibilityResponse>, Status> {
        reply(eligibility::answer(&self.state, r).await)
    }
    async fn decide_prior_authorization(
        &self,
        r: Request<DecidePriorAuthorizationRequest>,
    ) -> Result<Response<DecidePriorAuthorizationResponse>, Status> {
        reply(authorizations::decide(&self.state, r).await)
    }
    async fn acknowledge_claim(
        &self,
        r: Request<AcknowledgeClaimRequest>,
    ) -> Result<Response<AcknowledgeClaimResponse>, Status> {
        reply(claims::acknowledge(&self.state, r).await)
    }
    async fn post_remittances(
        &self,
        r: Request<Streaming<PostRemittancesRequest>>,
    ) -> Result<Response<Self::PostRemittancesStream>, Status> {
        let caller = Caller::of(&r).map_err(Status::from)?;
        integrator_role(&caller).map_err(Status::from)?;
        Ok(Response::new(remittances::post(
            self.state.clone(),
            caller,
            r.into_inner(),
        )))
    }
}
