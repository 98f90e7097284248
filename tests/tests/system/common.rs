//! Helpers the system tests share: tokens, authenticated requests, starting a service with its
//! own database.

use platform::auth::{Role, claims, mint_hs256};
use std::time::Duration;
use system_tests::{PrivateNats, ServiceProcess, ServiceSpec, TestDatabase};

/// The development secret the services under test accept.
pub const SECRET: &str = "system-test-secret";

/// The four service binaries.
pub const SERVICES: [&str; 4] = ["directory", "appointments", "insurance", "notifications"];

/// The domain APIs each binary serves besides health, reflection and event operations.
pub fn domain_apis(service: &str) -> &'static [&'static str] {
    match service {
        "directory" => &["clinicnet.directory.v1.DirectoryService"],
        "appointments" => &[
            "clinicnet.appointments.v1.AppointmentsService",
            "clinicnet.appointments.v1.PatientsService",
        ],
        "insurance" => &[
            "clinicnet.insurance.v1.InsuranceService",
            "clinicnet.insurance.v1.IntegratorService",
        ],
        "notifications" => &["clinicnet.notifications.v1.NotificationsService"],
        _ => &[],
    }
}

/// A bearer token for `role`.
pub fn token(role: Role, clinic_ids: &[&str], payer_id: Option<&str>) -> String {
    mint_hs256(
        SECRET,
        &claims(
            "system-test",
            role,
            clinic_ids.iter().map(|c| c.to_string()).collect(),
            payer_id.map(str::to_owned),
            600,
        ),
    )
    .expect("token")
}

/// `message` with `authorization: Bearer <token>`.
pub fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header value"),
    );
    request
}

/// A started, SERVING service with its own fresh database and its own NATS server (durable
/// consumer names are fixed per service, so services sharing one server would share consumers).
pub struct Running {
    /// The process.
    pub process: ServiceProcess,
    /// Its database.
    pub database: TestDatabase,
    _nats: PrivateNats,
}

/// Starts `name` with its own database and NATS server, plus `extra` environment.
pub async fn start(name: &str, extra: &[(&str, &str)]) -> Running {
    let database = TestDatabase::create(name).await;
    let nats = PrivateNats::start().await.expect("a private nats-server");
    let mut spec = ServiceSpec::new(name)
        .env("DATABASE_URL", database.url())
        .env("NATS_URL", nats.url())
        .env("JWT_HS256_SECRET", SECRET);
    for (key, value) in extra {
        spec = spec.env(*key, *value);
    }
    let mut process = ServiceProcess::spawn(spec).await.expect("spawn");
    process
        .wait_serving(Duration::from_secs(60))
        .await
        .expect("service becomes SERVING");
    Running {
        process,
        database,
        _nats: nats,
    }
}
