//! The directory service binary: wiring only. Clinics, locations, chairs, providers, modalities, REMS certification, accepted payers, and search.

use clap::Parser;
use platform::{config::ServiceConfig, runtime::Runtime, server::GrpcServer};

/// The port the service listens on unless LISTEN_ADDR says otherwise.
const DEFAULT_PORT: u16 = 50051;

/// clinicnet directory: Clinics, locations, chairs, providers, modalities, REMS certification, accepted payers, and search.
#[derive(Debug, Parser)]
#[command(name = "directory", version, about)]
struct Cli {
    #[command(flatten)]
    service: ServiceConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: Cli = platform::config::parse_args(DEFAULT_PORT);
    let _telemetry = platform::telemetry::init("directory", &cli.service.telemetry)?;
    let runtime = Runtime::start("directory", cli.service, sqlx::migrate!()).await?;
    let server = GrpcServer::new(&runtime.config.grpc);
    runtime.serve(server).await
}
