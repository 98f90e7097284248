//! The notifications service binary: wiring only. Bilingual confirmations, reminders and alerts by email, SMS and signed webhooks.

use clap::Parser;
use platform::{config::ServiceConfig, runtime::Runtime, server::GrpcServer};

/// The port the service listens on unless LISTEN_ADDR says otherwise.
const DEFAULT_PORT: u16 = 50054;

/// clinicnet notifications: Bilingual confirmations, reminders and alerts by email, SMS and signed webhooks.
#[derive(Debug, Parser)]
#[command(name = "notifications", version, about)]
struct Cli {
    #[command(flatten)]
    service: ServiceConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: Cli = platform::config::parse_args(DEFAULT_PORT);
    let _telemetry = platform::telemetry::init("notifications", &cli.service.telemetry)?;
    let runtime = Runtime::start("notifications", cli.service, sqlx::migrate!()).await?;
    let server = GrpcServer::new(&runtime.config.grpc);
    runtime.serve(server).await
}
