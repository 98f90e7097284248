//! Connections to the four services: lazy channels per endpoint, the bearer token and the W3C
//! trace context on every call, and typed clients for each gRPC service.

use crate::config::Service;
use crate::exit;
use clinicnet_proto::appointments::v1::appointments_service_client::AppointmentsServiceClient;
use clinicnet_proto::appointments::v1::patients_service_client::PatientsServiceClient;
use clinicnet_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use clinicnet_proto::insurance::v1::insurance_service_client::InsuranceServiceClient;
use clinicnet_proto::insurance::v1::integrator_service_client::IntegratorServiceClient;
use clinicnet_proto::notifications::v1::notifications_service_client::NotificationsServiceClient;
use clinicnet_proto::ops::v1::event_ops_service_client::EventOpsServiceClient;
use platform::trace_context::TracePropagation;
use std::collections::BTreeMap;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::{Interceptor, interceptor::InterceptedService};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

/// Largest response accepted (a page of 5,000 slots is well below).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Adds `authorization: Bearer …` and the current trace context to every call.
#[derive(Debug, Clone)]
pub struct Auth {
    header: Option<MetadataValue<Ascii>>,
}

impl Interceptor for Auth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let mut request = TracePropagation.call(request)?;
        if let Some(header) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        Ok(request)
    }
}

/// The channel type every typed client wraps.
pub type Authed = InterceptedService<Channel, Auth>;

/// Endpoints and credentials of one clinicctl run.
#[derive(Debug, Clone)]
pub struct Connection {
    urls: BTreeMap<Service, String>,
    auth: Auth,
    timeout: Duration,
    has_token: bool,
}

impl Connection {
    /// A connection to `urls` sending `token`; each call times out after `timeout`.
    pub fn new(
        urls: BTreeMap<Service, String>,
        token: Option<String>,
        timeout: Duration,
    ) -> anyhow::Result<Connection> {
        let header = match &token {
            Some(token) => Some(
                format!("Bearer {token}")
                    .parse::<MetadataValue<Ascii>>()
                    .map_err(|_| exit::usage("the token is not valid ASCII"))?,
            ),
            None => None,
        };
        Ok(Connection {
            urls,
            auth: Auth { header },
            timeout,
            has_token: token.is_some(),
        })
    }

    /// The endpoint URL of `service`.
    pub fn url(&self, service: Service) -> &str {
        self.urls
            .get(&service)
            .map(String::as_str)
            .unwrap_or(service.default_url())
    }

    /// A lazily connecting channel to `service` (nothing is dialled until the first call).
    pub fn channel(&self, service: Service) -> anyhow::Result<Channel> {
        let url = self.url(service);
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| exit::usage(format!("bad {} endpoint {url:?}: {e}", service.name())))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(self.timeout)
            .tcp_nodelay(true);
        let endpoint = if url.starts_with("https://") {
            endpoint
                .tls_config(tonic::transport::ClientTlsConfig::new().with_enabled_roots())
                .map_err(|e| exit::usage(format!("TLS for {url}: {e}")))?
        } else {
            endpoint
        };
        Ok(endpoint.connect_lazy())
    }

    /// A channel without the per-call timeout, for long-lived streams.
    pub fn streaming_channel(&self, service: Service) -> anyhow::Result<Channel> {
        let url = self.url(service);
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| exit::usage(format!("bad {} endpoint {url:?}: {e}", service.name())))?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .tcp_nodelay(true);
        let endpoint = if url.starts_with("https://") {
            endpoint
                .tls_config(tonic::transport::ClientTlsConfig::new().with_enabled_roots())
                .map_err(|e| exit::usage(format!("TLS for {url}: {e}")))?
        } else {
            endpoint
        };
        Ok(endpoint.connect_lazy())
    }

    fn authed(&self, service: Service) -> anyhow::Result<Authed> {
        self.require_token()?;
        Ok(InterceptedService::new(
            self.channel(service)?,
            self.auth.clone(),
        ))
    }

    /// Permission error (exit 4) when no token is configured.
    pub fn require_token(&self) -> anyhow::Result<()> {
        if self.has_token {
            Ok(())
        } else {
            Err(exit::permission(
                "no token: pass --token, set CLINICNET_TOKEN or put token in the config file \
                 (a development token: clinicctl token mint --role ops)",
            ))
        }
    }

    /// DirectoryService.
    pub fn directory(&self) -> anyhow::Result<DirectoryServiceClient<Authed>> {
        Ok(
            DirectoryServiceClient::new(self.authed(Service::Directory)?)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
    }

    /// AppointmentsService.
    pub fn appointments(&self) -> anyhow::Result<AppointmentsServiceClient<Authed>> {
        Ok(
            AppointmentsServiceClient::new(self.authed(Service::Appointments)?)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
    }

    /// AppointmentsService without the per-call timeout (large streamed syncs).
    pub fn appointments_streaming(&self) -> anyhow::Result<AppointmentsServiceClient<Authed>> {
        self.require_token()?;
        let channel = self.streaming_channel(Service::Appointments)?;
        Ok(
            AppointmentsServiceClient::new(InterceptedService::new(channel, self.auth.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
    }

    /// PatientsService (served by appointments).
    pub fn patients(&self) -> anyhow::Result<PatientsServiceClient<Authed>> {
        Ok(
            PatientsServiceClient::new(self.authed(Service::Appointments)?)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
    }

    /// InsuranceService.
    pub fn insurance(&self) -> anyhow::Result<InsuranceServiceClient<Authed>> {
        Ok(
            InsuranceServiceClient::new(self.authed(Service::Insurance)?)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
    }

    /// IntegratorService (served by insurance) without the per-call timeout: its work stream
    /// does not end by itself.
    pub fn integrator(&self) -> anyhow::Result<IntegratorServiceClient<Authed>> {
        self.require_token()?;
        let channel = self.streaming_channel(Service::Insurance)?;
        Ok(
            IntegratorServiceClient::new(InterceptedService::new(channel, self.auth.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
    }

    /// NotificationsService.
    pub fn notifications(&self) -> anyhow::Result<NotificationsServiceClient<Authed>> {
        Ok(
            NotificationsServiceClient::new(self.authed(Service::Notifications)?)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
    }

    /// EventOpsService of `service`.
    pub fn event_ops(&self, service: Service) -> anyhow::Result<EventOpsServiceClient<Authed>> {
        Ok(EventOpsServiceClient::new(self.authed(service)?))
    }
}

/// A fresh idempotency key.
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
