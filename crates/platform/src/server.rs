//! The gRPC server every service runs: its API plus `grpc.health.v1`, server reflection and the
//! event operations API on one port; per-request deadline, message-size and concurrency limits;
//! optional TLS; and a graceful stop — health turns NOT_SERVING first, then in-flight calls get
//! the drain time to finish.

use crate::{config::GrpcConfig, observe::ObserveLayer, shutdown::Shutdown};
use std::{convert::Infallible, net::SocketAddr, time::Duration};
use tokio::net::TcpListener;
use tonic::{
    body::Body,
    server::NamedService,
    service::RoutesBuilder,
    transport::{Identity, Server, ServerTlsConfig, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::Service;

/// How long health reports NOT_SERVING while the server still accepts calls, so load balancers
/// and probes stop sending traffic before connections close.
const ANNOUNCE_STOP: Duration = Duration::from_millis(1000);

/// A gRPC server being assembled.
pub struct GrpcServer {
    config: GrpcConfig,
    routes: RoutesBuilder,
    names: Vec<&'static str>,
}

impl GrpcServer {
    /// A server with the given limits and no services yet.
    pub fn new(config: &GrpcConfig) -> Self {
        Self {
            config: config.clone(),
            routes: RoutesBuilder::default(),
            names: Vec::new(),
        }
    }

    /// Adds a service; its health status follows the server's.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Binds the listener. Returns the bound address and the future that serves until
    /// `shutdown`, then drains.
    pub async fn bind(
        self,
        shutdown: Shutdown,
    ) -> anyhow::Result<(SocketAddr, impl Future<Output = anyhow::Result<()>>)> {
        let listener = TcpListener::bind(self.config.listen_addr).await?;
        let address = listener.local_addr()?;
        Ok((address, self.serve(listener, shutdown)))
    }

    async fn serve(mut self, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
        let (reporter, health) = tonic_health::server::health_reporter();
        let reflection = || {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(clinicnet_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name("grpc.health.v1.Health");
            for name in &self.names {
                builder = builder.with_service_name(*name);
            }
            builder
        };
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let mut builder = Server::builder()
            .timeout(self.config.request_timeout())
            .concurrency_limit_per_connection(self.config.concurrency_limit);
        if let (Some(cert), Some(key)) = (&self.config.tls_cert_file, &self.config.tls_key_file) {
            let identity = Identity::from_pem(std::fs::read(cert)?, std::fs::read(key)?);
            builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
        }
        self.routes
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);
        let router = builder.layer(ObserveLayer).add_routes(self.routes.routes());

        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        // Small responses must not wait for the peer's delayed ACK (Nagle): no delay on every
        // accepted connection.
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let serving = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        }));
        set_status(&reporter, &self.names, ServingStatus::Serving).await;
        tracing::info!(address = %self.config.listen_addr, "serving");

        shutdown.wait().await;
        set_status(&reporter, &self.names, ServingStatus::NotServing).await;
        tracing::info!("health NOT_SERVING; draining in-flight calls");
        tokio::time::sleep(ANNOUNCE_STOP.min(self.config.drain_time())).await;
        let _ = stop_tx.send(());
        let drain = self.config.drain_time().saturating_sub(ANNOUNCE_STOP);
        match tokio::time::timeout(drain, serving).await {
            Ok(joined) => joined??,
            Err(_) => tracing::warn!(
                drain_seconds = drain.as_secs(),
                "calls still running after the drain time; stopping anyway"
            ),
        }
        tracing::info!("stopped");
        Ok(())
    }
}

async fn set_status(reporter: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in names {
        reporter.set_service_status(*name, status).await;
    }
}
