//! The insurance service binary: wiring only. Coverage, eligibility, prior authorization, claims, remittances and superbills.

use clap::Parser;
use platform::{config::ServiceConfig, runtime::Runtime, server::GrpcServer};

/// The port the service listens on unless LISTEN_ADDR says otherwise.
const DEFAULT_PORT: u16 = 50053;

/// clinicnet insurance: Coverage, eligibility, prior authorization, claims, remittances and superbills.
#[derive(Debug, Parser)]
#[command(name = "insurance", version, about)]
struct Cli {
    #[command(flatten)]
    service: ServiceConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: Cli = platform::config::parse_args(DEFAULT_PORT);
    let _telemetry = platform::telemetry::init("insurance", &cli.service.telemetry)?;
    let runtime = Runtime::start("insurance", cli.service, sqlx::migrate!()).await?;
    let server = GrpcServer::new(&runtime.config.grpc);
    runtime.serve(server).await
}
