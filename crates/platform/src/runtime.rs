//! A service's runtime: connects its database (and migrates it) and NATS, declares its stream,
//! runs its outbox relay and consumers, and serves gRPC until SIGTERM/SIGINT — the wiring every
//! `main.rs` shares.

use crate::{
    auth::{AuthInterceptor, Authenticator},
    config::ServiceConfig,
    db,
    events::{
        connection::{self, Connection},
        consumer::{Consumer, ConsumerSpec, Handler},
        relay::{Relay, RelayConfig},
        streams,
    },
    maintenance,
    ops::EventOps,
    server::GrpcServer,
    shutdown::{self, Shutdown},
};
use async_nats::jetstream;
use clinicnet_proto::ops::v1::event_ops_service_server::EventOpsServiceServer;
use sqlx::{PgPool, migrate::Migrator};
use std::sync::Arc;
use tokio::task::JoinSet;
use tonic::service::interceptor::InterceptedService;

/// Everything a running service shares with its handlers.
pub struct Runtime {
    /// The service's name, e.g. `appointments`.
    pub name: &'static str,
    /// Its configuration.
    pub config: ServiceConfig,
    /// Its database.
    pub pool: PgPool,
    /// Its JetStream context.
    pub jetstream: jetstream::Context,
    /// The NATS connection and its lost-connection counter.
    pub nats: Connection,
    /// Token validation.
    pub auth: Authenticator,
    shutdown: Shutdown,
    consumers: Vec<Consumer>,
    tasks: JoinSet<()>,
}

impl Runtime {
    /// Connects and migrates the database, connects NATS (waiting for it), declares the
    /// service's stream and starts its outbox relay.
    pub async fn start(
        name: &'static str,
        config: ServiceConfig,
        migrations: Migrator,
    ) -> anyhow::Result<Self> {
        let shutdown = shutdown::on_signals()?;
        let auth = Authenticator::from_config(&config.auth)?;
        let pool = db::connect(&config.database).await?;
        db::migrate(&pool, migrations).await?;
        tracing::info!("database migrated");
        let connection = connection::connect(name, &config.nats.nats_url, &shutdown).await?;
        let jetstream = jetstream::new(connection.client.clone());
        streams::ensure_stream(&jetstream, name, config.nats.nats_stream_replicas).await?;
        let mut tasks = JoinSet::new();
        let relay = Relay::new(pool.clone(), jetstream.clone(), RelayConfig::default());
        tasks.spawn(relay.run(shutdown.clone()));
        tasks.spawn(maintenance::run(
            pool.clone(),
            maintenance::Retention::default(),
            shutdown.clone(),
        ));
        Ok(Self {
            name,
            config,
            pool,
            jetstream,
            nats: connection,
            auth,
            shutdown,
            consumers: Vec::new(),
            tasks,
        })
    }

    /// Starts an idempotent consumer.
    pub fn consume(&mut self, spec: ConsumerSpec, handler: Arc<dyn Handler>) {
        let consumer = Consumer::new(spec, handler, self.pool.clone(), &self.nats);
        self.consumers.push(consumer.clone());
        self.tasks.spawn(consumer.run(self.shutdown.clone()));
    }

    /// Wraps a domain service so every call is authenticated.
    pub fn authenticated<S>(&self, service: S) -> InterceptedService<S, AuthInterceptor> {
        InterceptedService::new(service, self.auth.interceptor())
    }

    /// The shutdown handle, for long-running streams that must end when the service stops.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Serves `server` (plus the event operations API) until shutdown, then waits for the
    /// relay and consumers to stop.
    pub async fn serve(mut self, server: GrpcServer) -> anyhow::Result<()> {
        let ops = EventOps::new(self.name, self.pool.clone(), self.consumers.clone());
        let ops = EventOpsServiceServer::new(ops)
            .max_decoding_message_size(self.config.grpc.max_message_bytes);
        let server = server.add_service(self.authenticated(ops));
        let (address, serving) = server.bind(self.shutdown.clone()).await?;
        tracing::info!(service = self.name, %address, "listening");
        let result = serving.await;
        let drain = self.config.grpc.drain_time();
        if tokio::time::timeout(drain, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tracing::warn!("background tasks still running after the drain time");
        }
        self.pool.close().await;
        result
    }
}
