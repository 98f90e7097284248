//! The gRPC API: decode → validate → domain → store → encode. One module per group of RPCs; this
//! one wires them into the two generated service traits and holds what they share.

mod availability;
mod booking;
mod convert;
mod courses;
mod find;
mod holds;
mod lifecycle;
mod outcomes;
mod patients;
mod placing;
mod validate;

use crate::config::Settings;
use clinicnet_proto::appointments::v1::{
    self as api, appointments_service_server::AppointmentsService,
    patients_service_server::PatientsService,
};
use platform::{
    ApiError,
    auth::{Caller, Role},
    idempotency::{self, Start},
    shutdown::Shutdown,
};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct State {
    /// The service's database.
    pub pool: PgPool,
    /// The service's settings.
    pub settings: Arc<Settings>,
    /// Ends long-running streams when the service stops.
    pub shutdown: Shutdown,
}

/// `clinicnet.appointments.v1.AppointmentsService`.
#[derive(Debug, Clone)]
pub struct AppointmentsApi(pub State);

/// `clinicnet.appointments.v1.PatientsService`.
#[derive(Debug, Clone)]
pub struct PatientsApi(pub State);

/// The caller, who must be ops or a partner clinic (integrators may not use this API).
fn caller<T>(request: &Request<T>) -> Result<Caller, ApiError> {
    let caller = Caller::of(request)?;
    caller.require_role(&[Role::Ops, Role::PartnerClinic])?;
    Ok(caller)
}

/// Runs `work` as the first call with this request id, in the transaction that records its
/// answer, or returns the answer of the first call.
async fn idempotent<Q: prost::Message, R: prost::Message + Default>(
    pool: &PgPool,
    caller: &Caller,
    method: &str,
    request_id: &str,
    request: &Q,
    work: impl AsyncFnOnce(&mut PgConnection) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    match idempotency::start(pool, caller, method, request_id, request).await? {
        Start::Replay(response) => Ok(response),
        Start::Fresh(mut tx) => {
            let response = work(tx.conn()).await?;
            tx.commit(&response).await?;
            Ok(response)
        }
    }
}

fn reply<R>(result: Result<R, ApiError>) -> Result<Response<R>, Status> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl AppointmentsService for AppointmentsApi {
    async fn sync_availability(
        &self,
        request: Request<api::SyncAvailabilityRequest>,
    ) -> Result<Response<api::SyncAvailabilityResponse>, Status> {
        reply(availability::sync(&self.0, request).await)
    }

    async fn stream_sync_availability(
        &self,
        request: Request<Streaming<api::StreamSyncAvailabilityRequest>>,
    ) -> Result<Response<api::StreamSyncAvailabilityResponse>, Status> {
        reply(availability::stream_sync(&self.0, request).await)
    }

    async fn generate_availability(
        &self,
        request: Request<api::GenerateAvailabilityRequest>,
    ) -> Result<Response<api::GenerateAvailabilityResponse>, Status> {
        reply(availability::generate(&self.0, request).await)
    }

    async fn list_slots(
        &self,
        request: Request<api::ListSlotsRequest>,
    ) -> Result<Response<api::ListSlotsResponse>, Status> {
        reply(availability::list_slots(&self.0, request).await)
    }

    async fn find_slots(
        &self,
        request: Request<api::FindSlotsRequest>,
    ) -> Result<Response<api::FindSlotsResponse>, Status> {
        reply(find::find_slots(&self.0, request).await)
    }

    async fn hold_slot(
        &self,
        request: Request<api::HoldSlotRequest>,
    ) -> Result<Response<api::HoldSlotResponse>, Status> {
        reply(holds::hold_slot(&self.0, request).await)
    }

    async fn release_hold(
        &self,
        request: Request<api::ReleaseHoldRequest>,
    ) -> Result<Response<api::ReleaseHoldResponse>, Status> {
        reply(holds::release_hold(&self.0, request).await)
    }

    async fn book_appointment(
        &self,
        request: Request<api::BookAppointmentRequest>,
    ) -> Result<Response<api::BookAppointmentResponse>, Status> {
        reply(booking::book(&self.0, request).await)
    }

    async fn reschedule_appointment(
        &self,
        request: Request<api::RescheduleAppointmentRequest>,
    ) -> Result<Response<api::RescheduleAppointmentResponse>, Status> {
        reply(booking::reschedule(&self.0, request).await)
    }

    async fn cancel_appointment(
        &self,
        request: Request<api::CancelAppointmentRequest>,
    ) -> Result<Response<api::CancelAppointmentResponse>, Status> {
        reply(lifecycle::cancel(&self.0, request).await)
    }

    async fn check_in_appointment(
        &self,
        request: Request<api::CheckInAppointmentRequest>,
    ) -> Result<Response<api::CheckInAppointmentResponse>, Status> {
        reply(lifecycle::check_in(&self.0, request).await)
    }

    async fn complete_appointment(
        &self,
        request: Request<api::CompleteAppointmentRequest>,
    ) -> Result<Response<api::CompleteAppointmentResponse>, Status> {
        reply(lifecycle::complete(&self.0, request).await)
    }

    async fn mark_no_show(
        &self,
        request: Request<api::MarkNoShowRequest>,
    ) -> Result<Response<api::MarkNoShowResponse>, Status> {
        reply(lifecycle::no_show(&self.0, request).await)
    }

    async fn get_appointment(
        &self,
        request: Request<api::GetAppointmentRequest>,
    ) -> Result<Response<api::GetAppointmentResponse>, Status> {
        reply(lifecycle::get(&self.0, request).await)
    }

    async fn list_appointments(
        &self,
        request: Request<api::ListAppointmentsRequest>,
    ) -> Result<Response<api::ListAppointmentsResponse>, Status> {
        reply(lifecycle::list(&self.0, request).await)
    }

    async fn list_course_plans(
        &self,
        request: Request<api::ListCoursePlansRequest>,
    ) -> Result<Response<api::ListCoursePlansResponse>, Status> {
        reply(courses::list_plans(&self.0, request).await)
    }

    async fn create_course(
        &self,
        request: Request<api::CreateCourseRequest>,
    ) -> Result<Response<api::CreateCourseResponse>, Status> {
        reply(courses::create(&self.0, request).await)
    }

    async fn book_course(
        &self,
        request: Request<api::BookCourseRequest>,
    ) -> Result<Response<api::BookCourseResponse>, Status> {
        courses::book(&self.0, request).await.map(Response::new)
    }

    async fn get_course(
        &self,
        request: Request<api::GetCourseRequest>,
    ) -> Result<Response<api::GetCourseResponse>, Status> {
        reply(courses::get(&self.0, request).await)
    }

    async fn book_integration_session(
        &self,
        request: Request<api::BookIntegrationSessionRequest>,
    ) -> Result<Response<api::BookIntegrationSessionResponse>, Status> {
        reply(booking::book_integration(&self.0, request).await)
    }

    async fn get_outcomes(
        &self,
        request: Request<api::GetOutcomesRequest>,
    ) -> Result<Response<api::GetOutcomesResponse>, Status> {
        reply(outcomes::get(&self.0, request).await)
    }
}

#[tonic::async_trait]
impl PatientsService for PatientsApi {
    async fn register_patient(
        &self,
        request: Request<api::RegisterPatientRequest>,
    ) -> Result<Response<api::RegisterPatientResponse>, Status> {
        reply(patients::register(&self.0, request).await)
    }

    async fn update_patient(
        &self,
        request: Request<api::UpdatePatientRequest>,
    ) -> Result<Response<api::UpdatePatientResponse>, Status> {
        reply(patients::update(&self.0, request).await)
    }

    async fn get_patient(
        &self,
        request: Request<api::GetPatientRequest>,
    ) -> Result<Response<api::GetPatientResponse>, Status> {
        reply(patients::get(&self.0, request).await)
    }

    async fn list_patients(
        &self,
        request: Request<api::ListPatientsRequest>,
    ) -> Result<Response<api::ListPatientsResponse>, Status> {
        reply(patients::list(&self.0, request).await)
    }

    async fn record_intake(
        &self,
        request: Request<api::RecordIntakeRequest>,
    ) -> Result<Response<api::RecordIntakeResponse>, Status> {
        reply(patients::record_intake(&self.0, request).await)
    }

    async fn get_intake(
        &self,
        request: Request<api::GetIntakeRequest>,
    ) -> Result<Response<api::GetIntakeResponse>, Status> {
        reply(patients::get_intake(&self.0, request).await)
    }
}
