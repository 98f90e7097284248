//! A stand-in service for the harness's own tests: follows the runtime contract's process shape
//! (LISTEN_ADDR, `grpc.health.v1`, SIGTERM → NOT_SERVING → drain → exit 0) with no domain at all.
//!
//! Knobs: `FAKE_STARTUP_MS` (NOT_SERVING before this, default 200), `FAKE_DRAIN_MS` (time between
//! SIGTERM and exit, default 300), `FAKE_EXIT_AT_START` (exit at once with this code).

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tonic_health::ServingStatus;

fn millis(name: &str, default: u64) -> Duration {
    Duration::from_millis(
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default),
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    if let Some(code) = std::env::var("FAKE_EXIT_AT_START")
        .ok()
        .and_then(|value| value.parse().ok())
    {
        eprintln!("fake service refuses to start (FAKE_EXIT_AT_START={code})");
        std::process::exit(code);
    }
    let addr: std::net::SocketAddr = std::env::var("LISTEN_ADDR")?.parse()?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;

    let startup = millis("FAKE_STARTUP_MS", 200);
    let ready = reporter.clone();
    tokio::spawn(async move {
        tokio::time::sleep(startup).await;
        ready.set_service_status("", ServingStatus::Serving).await;
        println!(r#"{{"level":"INFO","message":"serving","listen_addr":"{addr}"}}"#);
    });

    let drain = millis("FAKE_DRAIN_MS", 300);
    let mut terminate = signal(SignalKind::terminate())?;
    let shutdown = async move {
        terminate.recv().await;
        reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
        println!(r#"{{"level":"INFO","message":"shutting down"}}"#);
        tokio::time::sleep(drain).await;
    };
    tonic::transport::Server::builder()
        .add_service(health)
        .serve_with_shutdown(addr, shutdown)
        .await?;
    println!(r#"{{"level":"INFO","message":"stopped"}}"#);
    Ok(())
}
