//! The NotificationsService gRPC API: authenticated by the runtime's interceptor, then
//! authorized (integrators never; partners only their clinics and those clinics' patients),
//! validated with field violations, and applied with its idempotency record in one transaction.
//! Handlers live by noun in [`notifications`], [`preferences`], [`webhooks`] and [`messages`].

mod messages;
mod notifications;
mod preferences;
mod webhooks;

use clinicnet_proto::notifications::v1::{
    self as pb, notifications_service_server::NotificationsService,
};
use platform::{
    ApiError,
    auth::{Caller, Role},
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The service over its database.
#[derive(Debug, Clone)]
pub struct Notifications {
    pool: PgPool,
}

impl Notifications {
    /// The service over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// The caller (ops or a partner clinic) and the message of a request.
fn open<T>(request: Request<T>) -> Result<(Caller, T), Status> {
    let caller = Caller::of(&request)?;
    caller.require_role(&[Role::Ops, Role::PartnerClinic])?;
    Ok((caller, request.into_inner()))
}

fn answer<R>(result: Result<R, ApiError>) -> Result<Response<R>, Status> {
    result.map(Response::new).map_err(Status::from)
}

/// An id this service issued, named by `field`.
fn id(field: &str, value: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(value)
        .ok()
        .filter(|id| id.to_string() == value)
        .ok_or_else(|| ApiError::invalid(field, "must be an id returned by this service"))
}

/// Whether `value` is an E.164 phone number.
fn is_e164(value: &str) -> bool {
    let digits = value.strip_prefix('+').unwrap_or("");
    (2..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
}

#[tonic::async_trait]
impl NotificationsService for Notifications {
    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(notifications::list(&self.pool, &caller, request).await)
    }

    async fn get_notification(
        &self,
        request: Request<pb::GetNotificationRequest>,
    ) -> Result<Response<pb::GetNotificationResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(notifications::get(&self.pool, &caller, request).await)
    }

    async fn get_preferences(
        &self,
        request: Request<pb::GetPreferencesRequest>,
    ) -> Result<Response<pb::GetPreferencesResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(preferences::get(&self.pool, &caller, request).await)
    }

    async fn set_preferences(
        &self,
        request: Request<pb::SetPreferencesRequest>,
    ) -> Result<Response<pb::SetPreferencesResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(preferences::set(&self.pool, &caller, request).await)
    }

    async fn register_webhook_endpoint(
        &self,
        request: Request<pb::RegisterWebhookEndpointRequest>,
    ) -> Result<Response<pb::RegisterWebhookEndpointResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(webhooks::register(&self.pool, &caller, request).await)
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotateWebhookSecretResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(webhooks::rotate(&self.pool, &caller, request).await)
    }

    async fn remove_webhook_endpoint(
        &self,
        request: Request<pb::RemoveWebhookEndpointRequest>,
    ) -> Result<Response<pb::RemoveWebhookEndpointResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(webhooks::remove(&self.pool, &caller, request).await)
    }

    async fn list_webhook_endpoints(
        &self,
        request: Request<pb::ListWebhookEndpointsRequest>,
    ) -> Result<Response<pb::ListWebhookEndpointsResponse>, Status> {
        let (caller, request) = open(request)?;
        answer(webhooks::list(&self.pool, &caller, request).await)
    }

    async fn send_test_message(
        &self,
        request: Request<pb::SendTestMessageRequest>,
    ) -> Result<Response<pb::SendTestMessageResponse>, Status> {
        let (caller, request) = open(request)?;
        messages::send_test(&self.pool, &caller, request)
            .await
            .map(Response::new)
    }

    async fn receive_inbound_sms(
        &self,
        request: Request<pb::ReceiveInboundSmsRequest>,
    ) -> Result<Response<pb::ReceiveInboundSmsResponse>, Status> {
        let (caller, request) = open(request)?;
        caller.require_role(&[Role::Ops])?;
        answer(messages::inbound_sms(&self.pool, &caller, request).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers() {
        assert!(is_e164("+13055550123"));
        assert!(!is_e164("13055550123"));
        assert!(!is_e164("+0305"));
        assert!(!is_e164("+1305555012345678"));
        assert!(!is_e164("+1 305"));
    }
}
