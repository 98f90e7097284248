//! The insurance service binary: wiring only. Coverage, eligibility, prior authorization, claims, remittances and superbills.

mod authorizations;
mod billing;
mod convert;
mod domain;
mod events;
mod grpc;
mod pdf;
mod settings;
mod store;
mod work;

use clap::Parser;
use clinicnet_proto::insurance::v1::{
    insurance_service_server::InsuranceServiceServer,
    integrator_service_server::IntegratorServiceServer,
};
use platform::{config::ServiceConfig, runtime::Runtime, server::GrpcServer};
use std::sync::Arc;

/// The port the service listens on unless LISTEN_ADDR says otherwise.
const DEFAULT_PORT: u16 = 50053;

/// clinicnet insurance: Coverage, eligibility, prior authorization, claims, remittances and superbills.
#[derive(Debug, Parser)]
#[command(name = "insurance", version, about)]
struct Cli {
    #[command(flatten)]
    service: ServiceConfig,
    #[command(flatten)]
    settings: settings::Settings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: Cli = platform::config::parse_args(DEFAULT_PORT);
    let _telemetry = platform::telemetry::init("insurance", &cli.service.telemetry)?;
    let mut runtime = Runtime::start("insurance", cli.service, sqlx::migrate!()).await?;
    runtime.consume(
        events::appointments::spec(),
        Arc::new(events::appointments::AppointmentsHandler),
    );
    let state = grpc::Insurance {
        pool: runtime.pool.clone(),
        settings: Arc::new(cli.settings),
    };
    let signal = work::WorkSignal::start(runtime.pool.clone(), runtime.shutdown());
    let integrator = grpc::IntegratorApi::new(state.clone(), signal, runtime.shutdown());
    let max = runtime.config.grpc.max_message_bytes;
    let server = GrpcServer::new(&runtime.config.grpc)
        .add_service(
            runtime
                .authenticated(InsuranceServiceServer::new(state).max_decoding_message_size(max)),
        )
        .add_service(runtime.authenticated(
            IntegratorServiceServer::new(integrator).max_decoding_message_size(max),
        ));
    runtime.serve(server).await
}
