//! The directory service binary: wiring only. Clinics, locations, chairs, providers, modalities, REMS certification, accepted payers, and search.

mod domain;
mod events;
mod grpc;
mod paging;
mod store;
mod validate;

use clap::Parser;
use clinicnet_proto::directory::v1::directory_service_server::DirectoryServiceServer;
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
    let _telemetry = platform::telemetry::init(events::PRODUCER, &cli.service.telemetry)?;
    let runtime = Runtime::start(events::PRODUCER, cli.service, sqlx::migrate!()).await?;
    let directory = DirectoryServiceServer::new(grpc::Directory::new(runtime.pool.clone()))
        .max_decoding_message_size(runtime.config.grpc.max_message_bytes);
    let server =
        GrpcServer::new(&runtime.config.grpc).add_service(runtime.authenticated(directory));
    runtime.serve(server).await
}
