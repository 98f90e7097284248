//! The notifications service binary: wiring only. Bilingual confirmations, reminders and alerts by email, SMS and signed webhooks.

mod config;
mod convert;
mod delivery;
mod domain;
mod events;
mod grpc;
mod publish;
mod store;

use clap::Parser;
use clinicnet_proto::notifications::v1::notifications_service_server::NotificationsServiceServer;
use platform::{config::ServiceConfig, runtime::Runtime, server::GrpcServer};
use std::sync::Arc;

/// The port the service listens on unless LISTEN_ADDR says otherwise.
const DEFAULT_PORT: u16 = 50054;

/// clinicnet notifications: Bilingual confirmations, reminders and alerts by email, SMS and signed webhooks.
#[derive(Debug, Parser)]
#[command(name = "notifications", version, about)]
struct Cli {
    #[command(flatten)]
    service: ServiceConfig,
    #[command(flatten)]
    notifications: config::NotificationsConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: Cli = platform::config::parse_args(DEFAULT_PORT);
    let _telemetry = platform::telemetry::init(publish::PRODUCER, &cli.service.telemetry)?;
    // Broken templates fail start-up, before anything is connected.
    let templates = Arc::new(domain::templates::TemplateSet::embedded()?);
    let mut runtime = Runtime::start(publish::PRODUCER, cli.service, sqlx::migrate!()).await?;
    for (spec, handler) in events::consumers(cli.notifications.reminder_leads.0.clone()) {
        runtime.consume(spec, handler);
    }
    let scheduler = delivery::Scheduler::new(runtime.pool.clone(), templates, &cli.notifications)?;
    tokio::spawn(scheduler.run(runtime.shutdown()));
    let api = NotificationsServiceServer::new(grpc::Notifications::new(runtime.pool.clone()))
        .max_decoding_message_size(runtime.config.grpc.max_message_bytes);
    let server = GrpcServer::new(&runtime.config.grpc).add_service(runtime.authenticated(api));
    runtime.serve(server).await
}
