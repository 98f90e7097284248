//! A real process around the platform's event backbone, for the backbone's fault tests: in
//! `relay` mode it publishes a database's outbox; in `consume` mode it applies events to the
//! probe's `effects` table through an idempotent consumer.

use clap::{Parser, ValueEnum};
use platform::{
    events::{
        connection,
        consumer::{Consumer, ConsumerSpec},
        relay::{Relay, RelayConfig},
        streams,
    },
    shutdown,
};
use std::{sync::Arc, time::Duration};
use system_tests::probe::{self, ApplyEffects};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Relay,
    Consume,
}

/// Runs one side of the event backbone against a database and a NATS server.
#[derive(Debug, Parser)]
struct Cli {
    #[arg(value_enum)]
    mode: Mode,
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "NATS_URL")]
    nats_url: String,
    /// The producing service whose stream is used.
    #[arg(long, default_value = "probe")]
    service: String,
    /// Durable consumer name (consume mode).
    #[arg(long, default_value = "probe-effects")]
    consumer: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .json()
        .init();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&cli.database_url)
        .await?;
    probe::migrate(&pool).await?;
    let shutdown = shutdown::on_signals()?;
    let connection = connection::connect("event-probe", &cli.nats_url, &shutdown).await?;
    match cli.mode {
        Mode::Relay => {
            let jetstream = async_nats::jetstream::new(connection.client.clone());
            streams::ensure_stream(&jetstream, &cli.service, 1).await?;
            let config = RelayConfig {
                poll_interval: Duration::from_millis(200),
                ..RelayConfig::default()
            };
            Relay::new(pool, jetstream, config).run(shutdown).await;
        }
        Mode::Consume => {
            let spec = ConsumerSpec::new(
                &cli.consumer,
                &streams::stream_name(&cli.service),
                &format!("clinicnet.{}.>", cli.service),
            );
            Consumer::new(spec, Arc::new(ApplyEffects), pool, &connection)
                .run(shutdown)
                .await;
        }
    }
    Ok(())
}
