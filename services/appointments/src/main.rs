//! The appointments service binary: wiring only. Availability, booking without double booking,
//! treatment courses and outcomes, and the patients they are for.

mod config;
mod domain;
mod events;
mod grpc;
mod store;
mod sweeper;

use clap::Parser;
use clinicnet_proto::appointments::v1::{
    appointments_service_server::AppointmentsServiceServer,
    patients_service_server::PatientsServiceServer,
};
use events::{directory, publish::PRODUCER};
use platform::{
    config::ServiceConfig, events::consumer::ConsumerSpec, runtime::Runtime, server::GrpcServer,
};
use std::sync::Arc;

/// The port the service listens on unless LISTEN_ADDR says otherwise.
const DEFAULT_PORT: u16 = 50052;

/// clinicnet appointments: availability, booking without double booking, treatment courses and outcomes.
#[derive(Debug, Parser)]
#[command(name = "appointments", version, about)]
struct Cli {
    #[command(flatten)]
    service: ServiceConfig,
    #[command(flatten)]
    appointments: config::Settings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: Cli = platform::config::parse_args(DEFAULT_PORT);
    let _telemetry = platform::telemetry::init(PRODUCER, &cli.service.telemetry)?;
    let mut runtime = Runtime::start(PRODUCER, cli.service, sqlx::migrate!()).await?;
    runtime.consume(
        ConsumerSpec::new(directory::CONSUMER, directory::STREAM, directory::FILTER),
        Arc::new(directory::DirectoryReadModel),
    );
    let settings = Arc::new(cli.appointments);
    tokio::spawn(sweeper::run(
        runtime.pool.clone(),
        settings.sweep_interval(),
        runtime.shutdown(),
    ));
    let state = grpc::State {
        pool: runtime.pool.clone(),
        settings,
        shutdown: runtime.shutdown(),
    };
    let max = runtime.config.grpc.max_message_bytes;
    let appointments = AppointmentsServiceServer::new(grpc::AppointmentsApi(state.clone()))
        .max_decoding_message_size(max);
    let patients =
        PatientsServiceServer::new(grpc::PatientsApi(state)).max_decoding_message_size(max);
    let server = GrpcServer::new(&runtime.config.grpc)
        .add_service(runtime.authenticated(appointments))
        .add_service(runtime.authenticated(patients));
    runtime.serve(server).await
}
