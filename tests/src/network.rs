//! A whole clinicnet network for system tests: a private NATS server, the four services on fresh
//! databases of their own, and on request the outside world notifications talks to (SMTP sink,
//! SMS provider, webhook receiver) and an OTLP trace receiver every service exports to.
//!
//! Durable consumer names are fixed, so every network has its own NATS server.

use std::time::Duration;

use platform::auth::{Role, claims, mint_hs256};
use tonic::transport::Channel;

use crate::{
    PrivateNats, ServiceProcess, ServiceSpec, TestDatabase,
    otlp::TraceReceiver,
    receivers::{SMS_API_TOKEN, SmsProvider, SmtpSink, WebhookReceiver},
};

/// The services, in start order.
pub const SERVICES: [&str; 4] = ["directory", "appointments", "insurance", "notifications"];

/// How long a service gets to report SERVING.
const SERVING_TIMEOUT: Duration = Duration::from_secs(90);
/// The services' span batch export delay (the SDK's default is 5 s).
const BATCH_EXPORT_DELAY_MS: &str = "200";

/// What to start besides the services.
#[derive(Default)]
pub struct NetworkOptions {
    /// Admin URL of the PostgreSQL server to create the four databases on (None: the shared one,
    /// `infra::postgres_admin_url()`); a fault test passes its own restartable cluster here.
    pub postgres_admin_url: Option<String>,
    /// Start an SMTP sink and point notifications at it.
    pub smtp: bool,
    /// Start the fake SMS provider HTTP endpoint and the webhook receiver and point notifications
    /// at them.
    pub sms_and_webhooks: bool,
    /// Start an OTLP/gRPC trace receiver and make every service export to it.
    pub otlp: bool,
    /// Extra environment: (service name or "*", key, value), applied last.
    pub env: Vec<(String, String, String)>,
}

struct Service {
    process: ServiceProcess,
    database: TestDatabase,
}

/// A running network; [`Network::stop`] kills the services and drops their databases.
pub struct Network {
    nats: PrivateNats,
    services: Vec<Service>,
    secret: String,
    smtp: Option<SmtpSink>,
    sms: Option<SmsProvider>,
    webhooks: Option<WebhookReceiver>,
    traces: Option<TraceReceiver>,
}

impl Network {
    /// Starts NATS, the receivers asked for, then each service, waiting until it serves.
    pub async fn start(options: NetworkOptions) -> anyhow::Result<Network> {
        let nats = PrivateNats::start().await?;
        let smtp = match options.smtp {
            true => Some(SmtpSink::started().await),
            false => None,
        };
        let (sms, webhooks) = match options.sms_and_webhooks {
            true => (
                Some(SmsProvider::start().await),
                Some(WebhookReceiver::start().await),
            ),
            false => (None, None),
        };
        let traces = match options.otlp {
            true => Some(TraceReceiver::start().await?),
            false => None,
        };
        let mut network = Network {
            nats,
            services: Vec::new(),
            secret: format!("network-secret-{}", uuid::Uuid::new_v4().simple()),
            smtp,
            sms,
            webhooks,
            traces,
        };
        for name in SERVICES {
            let database = match &options.postgres_admin_url {
                Some(admin) => TestDatabase::try_create_on(admin, name).await?,
                None => TestDatabase::try_create(name).await?,
            };
            let spec = network.spec(name, &database, &options.env);
            let mut process = ServiceProcess::spawn(spec).await?;
            process.wait_serving(SERVING_TIMEOUT).await?;
            network.services.push(Service { process, database });
        }
        Ok(network)
    }

    fn spec(
        &self,
        name: &str,
        database: &TestDatabase,
        extra: &[(String, String, String)],
    ) -> ServiceSpec {
        let mut spec = ServiceSpec::new(name)
            .env("DATABASE_URL", database.url())
            .env("NATS_URL", self.nats.url())
            .env("JWT_HS256_SECRET", &self.secret);
        if let Some(traces) = &self.traces {
            spec = spec
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", traces.endpoint())
                .env("OTEL_BSP_SCHEDULE_DELAY", BATCH_EXPORT_DELAY_MS);
        }
        if name == "notifications" {
            spec = spec.env("DELIVERY_TICK_MS", "100");
            if let Some(smtp) = &self.smtp {
                spec = spec.env("SMTP_URL", smtp.url()).env("SMTP_STARTTLS", "off");
            }
            if let Some(sms) = &self.sms {
                spec = spec
                    .env("SMS_API_BASE_URL", sms.base_url())
                    .env("SMS_API_TOKEN", SMS_API_TOKEN);
            }
            if let Some(webhooks) = &self.webhooks {
                spec = spec.env("WEBHOOK_CA_FILE", webhooks.ca_path().display().to_string());
            }
        }
        for (target, key, value) in extra {
            if target == "*" || target == name {
                spec = spec.env(key, value);
            }
        }
        spec
    }

    fn entry(&self, name: &str) -> &Service {
        self.services
            .iter()
            .find(|s| s.process.name() == name)
            .unwrap_or_else(|| panic!("no service {name} in the network"))
    }

    /// The network's NATS server (to stop, kill or start again).
    pub fn nats(&mut self) -> &mut PrivateNats {
        &mut self.nats
    }

    /// The service `name`'s process (to kill, restart, wait for).
    pub fn service(&mut self, name: &str) -> &mut ServiceProcess {
        self.services
            .iter_mut()
            .find(|s| s.process.name() == name)
            .map(|s| &mut s.process)
            .unwrap_or_else(|| panic!("no service {name} in the network"))
    }

    /// The service `name`'s database.
    pub fn database(&self, name: &str) -> &TestDatabase {
        &self.entry(name).database
    }

    /// `http://127.0.0.1:<port>` of the service `name`.
    pub fn endpoint(&self, name: &str) -> String {
        self.entry(name).process.endpoint()
    }

    /// A connected gRPC channel to the service `name`.
    pub async fn channel(&self, name: &str) -> Channel {
        self.entry(name)
            .process
            .channel()
            .await
            .unwrap_or_else(|e| panic!("a channel to {name}: {e:#}"))
    }

    /// The HS256 secret every service verifies tokens with.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// A one-hour token for `role`, scoped to `clinic_ids` and `payer`.
    pub fn token(&self, role: Role, clinic_ids: &[&str], payer: Option<&str>) -> String {
        mint_hs256(
            &self.secret,
            &claims(
                "network-system-test",
                role,
                clinic_ids.iter().map(|c| c.to_string()).collect(),
                payer.map(str::to_owned),
                3600,
            ),
        )
        .expect("a token")
    }

    /// An ops token.
    pub fn ops_token(&self) -> String {
        self.token(Role::Ops, &[], None)
    }

    /// The SMTP sink, when started.
    pub fn smtp(&self) -> Option<&SmtpSink> {
        self.smtp.as_ref()
    }

    /// The SMS provider, when started.
    pub fn sms(&self) -> Option<&SmsProvider> {
        self.sms.as_ref()
    }

    /// The webhook receiver, when started.
    pub fn webhooks(&self) -> Option<&WebhookReceiver> {
        self.webhooks.as_ref()
    }

    /// The OTLP trace receiver, when started.
    pub fn traces(&self) -> Option<&TraceReceiver> {
        self.traces.as_ref()
    }

    /// Kills the services and drops their databases.
    pub async fn stop(mut self) {
        for mut service in self.services.drain(..) {
            let _ = service.process.kill9().await;
            service.database.drop_db().await;
        }
    }
}

/// `message` with `authorization: Bearer <token>`.
pub fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    request
}

/// Polls `check` every 100 ms until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
