//! The appointments service binary: wiring only. Availability, booking without double booking, treatment courses and outcomes.

use clap::Parser;
use platform::{config::ServiceConfig, runtime::Runtime, server::GrpcServer};

/// The port the service listens on unless LISTEN_ADDR says otherwise.
const DEFAULT_PORT: u16 = 50052;

/// clinicnet appointments: Availability, booking without double booking, treatment courses and outcomes.
#[derive(Debug, Parser)]
#[command(name = "appointments", version, about)]
struct Cli {
    #[command(flatten)]
    service: ServiceConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: Cli = platform::config::parse_args(DEFAULT_PORT);
    let _telemetry = platform::telemetry::init("appointments", &cli.service.telemetry)?;
    let runtime = Runtime::start("appointments", cli.service, sqlx::migrate!()).await?;
    let server = GrpcServer::new(&runtime.config.grpc);
    runtime.serve(server).await
}
