//! The benchmark scenarios, each measured next to its raw baseline in the same run.

pub mod appointments;
pub mod backbone;
pub mod booking;
pub mod search;
pub mod sync;

use platform::auth::{BearerToken, Role, claims, mint_hs256};
use std::time::Duration;
use system_tests::{PrivateNats, ServiceProcess, ServiceSpec, TestDatabase};

/// The token secret of the services a benchmark starts.
const SECRET: &str = "clinicnet-bench-secret";

/// One real service binary with its own database and NATS server.
pub struct Service {
    /// Its database (for the raw baselines).
    pub database: TestDatabase,
    /// The process.
    pub process: ServiceProcess,
    _nats: PrivateNats,
}

impl Service {
    /// Starts `name` and waits until it serves.
    pub async fn start(name: &str) -> anyhow::Result<Service> {
        Self::start_on(name, PrivateNats::start().await?).await
    }

    /// Starts `name` on a NATS server the caller prepared (streams it consumes already declared).
    pub async fn start_on(name: &str, nats: PrivateNats) -> anyhow::Result<Service> {
        let database = TestDatabase::try_create(&format!("bench_{name}")).await?;
        let mut process = ServiceProcess::spawn(
            ServiceSpec::new(name)
                .env("DATABASE_URL", database.url())
                .env("NATS_URL", nats.url())
                .env("JWT_HS256_SECRET", SECRET)
                .env("RUST_LOG", "warn"),
        )
        .await?;
        process.wait_serving(Duration::from_secs(120)).await?;
        Ok(Service {
            database,
            process,
            _nats: nats,
        })
    }

    /// A channel to it.
    pub async fn channel(&self) -> anyhow::Result<tonic::transport::Channel> {
        self.process.channel().await
    }

    /// An interceptor carrying a token for `role`.
    pub fn token(&self, role: Role) -> BearerToken {
        let token =
            mint_hs256(SECRET, &claims("bench", role, vec![], None, 3600)).expect("a token");
        BearerToken::new(&token).expect("a header value")
    }

    /// Stops the process and drops its database.
    pub async fn stop(self) {
        drop(self.process);
        self.database.drop_db().await;
    }
}

/// Sizes of a run: full, or `--quick` (a smoke run that keeps the code working).
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Events for throughput runs.
    pub throughput_events: usize,
    /// Seconds of each fixed-rate latency run.
    pub rate_seconds: u64,
    /// Clinics in the directory.
    pub clinics: usize,
    /// Searches measured.
    pub searches: usize,
    /// Concurrent booking clients.
    pub booking_clients: usize,
    /// Bookings each booking client attempts.
    pub bookings_per_client: usize,
    /// Slots in the streamed availability sync.
    pub sync_slots: usize,
}

impl Scale {
    /// The scale for a full or a quick run.
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                throughput_events: 2_000,
                rate_seconds: 1,
                clinics: 200,
                searches: 100,
                booking_clients: 8,
                bookings_per_client: 20,
                sync_slots: 5_000,
            }
        } else {
            Self {
                throughput_events: 20_000,
                rate_seconds: 10,
                clinics: 5_000,
                searches: 2_000,
                booking_clients: 64,
                bookings_per_client: 60,
                sync_slots: 100_000,
            }
        }
    }
}
