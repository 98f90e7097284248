//! The benchmark scenarios, each measured next to its raw baseline in the same run.

pub mod appointments;
pub mod backbone;
pub mod booking;
pub mod claims;
pub mod event_latency;
pub mod insurance;
pub mod network;
pub mod network_day;
pub mod notify;
pub mod search;
pub mod smtp_sink;
pub mod sync;

use clinicnet_proto::{
    appointments::v1::Patient,
    common::v1::{Date, Locale, PersonName},
};
use platform::auth::{BearerToken, Role, claims, mint_hs256};
use std::{future::IntoFuture as _, sync::Arc, time::Duration};
use system_tests::{PrivateNats, ServiceProcess, ServiceSpec, TestDatabase};

/// The token secret of the services a benchmark starts.
const SECRET: &str = "clinicnet-bench-secret";

/// One real service binary with its own database and NATS server.
pub struct Service {
    /// Its database (for the raw baselines).
    pub database: TestDatabase,
    /// The process.
    pub process: ServiceProcess,
    _nats: Arc<PrivateNats>,
}

impl Service {
    /// Starts `name` and waits until it serves.
    pub async fn start(name: &str) -> anyhow::Result<Service> {
        Self::start_on(name, PrivateNats::start().await?).await
    }

    /// Starts `name` on a NATS server the caller prepared (streams it consumes already declared).
    pub async fn start_on(name: &str, nats: PrivateNats) -> anyhow::Result<Service> {
        Self::start_with(name, Arc::new(nats), &[]).await
    }

    /// Starts `name` on a NATS server shared with other services, with `env` on top of the
    /// database, NATS and token settings.
    pub async fn start_with(
        name: &str,
        nats: Arc<PrivateNats>,
        env: &[(&str, String)],
    ) -> anyhow::Result<Service> {
        let database = TestDatabase::try_create(&format!("bench_{name}")).await?;
        let mut spec = ServiceSpec::new(name)
            .env("DATABASE_URL", database.url())
            .env("NATS_URL", nats.url())
            .env("JWT_HS256_SECRET", SECRET)
            .env("RUST_LOG", "warn");
        for (key, value) in env {
            spec = spec.env(*key, value);
        }
        let mut process = ServiceProcess::spawn(spec).await?;
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
        token(role, None)
    }

    /// Stops the process and drops its database.
    pub async fn stop(self) {
        drop(self.process);
        self.database.drop_db().await;
    }
}

/// Publishes `(subject, event id, protobuf payload)` events as a service's relay would
/// (`Nats-Msg-Id` = event id), with at most 256 publish acks outstanding.
pub async fn publish_events(
    jetstream: &async_nats::jetstream::Context,
    events: impl IntoIterator<Item = (String, String, Vec<u8>)>,
) -> anyhow::Result<()> {
    let mut acks = futures::stream::FuturesUnordered::new();
    for (subject, event_id, payload) in events {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(platform::events::MSG_ID_HEADER, event_id.as_str());
        let ack = jetstream
            .publish_with_headers(subject, headers, payload.into())
            .await?;
        acks.push(ack.into_future());
        if acks.len() >= 256
            && let Some(ack) = futures::StreamExt::next(&mut acks).await
        {
            ack?;
        }
    }
    while let Some(ack) = futures::StreamExt::next(&mut acks).await {
        ack?;
    }
    Ok(())
}

/// Waits until `done()` holds or two minutes have passed (what was not done by then shows in
/// the counts a scenario reports).
pub async fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !done() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A token for `role` (integrators: of `payer_id`) that every benchmarked service accepts.
pub fn token(role: Role, payer_id: Option<&str>) -> BearerToken {
    let token = mint_hs256(
        SECRET,
        &claims("bench", role, vec![], payer_id.map(str::to_owned), 3600),
    )
    .expect("a token");
    BearerToken::new(&token).expect("a header value")
}

/// The synthetic patient the benchmarks register (no real person's data) at `clinic_id`.
pub fn bench_patient(clinic_id: &str) -> Patient {
    Patient {
        name: Some(PersonName {
            given_name: "Bench".into(),
            middle_name: String::new(),
            family_name: "Patient".into(),
        }),
        birth_date: Some(Date {
            year: 1980,
            month: 5,
            day: 17,
        }),
        preferred_locale: Locale::EnUs as i32,
        registered_clinic_id: clinic_id.to_owned(),
        ..Default::default()
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
    /// Fulfilled-visit events in the insurance backlog.
    pub claims_backlog: usize,
    /// Claims read and acknowledged over the integrator stream.
    pub integrator_claims: usize,
    /// Notifications in the notifications backlog.
    pub notifications: usize,
    /// Events per second of the notifications latency run (for `rate_seconds`).
    pub notification_rate: u64,
    /// Offered booking rates of the end-to-end event latency runs.
    pub booking_rates: [u64; 2],
    /// Seconds of each end-to-end event latency run.
    pub booking_seconds: u64,
    /// Clinics in the network day.
    pub day_clinics: usize,
    /// Registered patients in the network day.
    pub day_patients: usize,
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
                claims_backlog: 100,
                integrator_claims: 50,
                notifications: 40,
                notification_rate: 20,
                booking_rates: [10, 20],
                booking_seconds: 1,
                day_clinics: 2,
                day_patients: 100,
            }
        } else {
            Self {
                throughput_events: 100_000,
                rate_seconds: 10,
                clinics: 5_000,
                searches: 2_000,
                booking_clients: 64,
                bookings_per_client: 60,
                sync_slots: 100_000,
                claims_backlog: 100_000,
                integrator_claims: 5_000,
                notifications: 2_000,
                notification_rate: 100,
                booking_rates: [500, 1_000],
                booking_seconds: 5,
                day_clinics: 50,
                day_patients: 10_000,
            }
        }
    }
}
