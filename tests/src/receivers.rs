//! The outside world notifications delivers to, run locally: an SMTP server (aiosmtpd, one process
//! per sink), a Twilio-style SMS provider over HTTP, and an HTTPS webhook receiver with a
//! self-signed certificate the service is told to trust.

use axum::{
    Form, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};
use uuid::Uuid;

use crate::ports::{free_port, is_listening};

/// The bearer token the SMS provider accepts (`SMS_API_TOKEN` of the service).
pub const SMS_API_TOKEN: &str = "sms-token";
/// A destination number the SMS provider rejects permanently (Twilio's "invalid To").
pub const SMS_INVALID_NUMBER: &str = "+15005550001";

// ---------------------------------------------------------------------------------------------
// The SMTP server: aiosmtpd in a venv, one process per sink.

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/notifications")
}

fn smtp_sink_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let script = fixtures().join("ensure-smtp-sink.sh");
            let output = std::process::Command::new("bash")
                .arg(&script)
                .stderr(Stdio::inherit())
                .output()
                .expect("run ensure-smtp-sink.sh");
            assert!(output.status.success(), "ensure-smtp-sink.sh failed");
            PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
        })
        .clone()
}

/// One message the SMTP server accepted.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Mail {
    /// Its `Message-ID` header.
    pub message_id: String,
    /// The envelope recipients.
    pub to: Vec<String>,
    /// The decoded subject.
    pub subject: String,
    /// The decoded text body.
    pub body: String,
}

/// An SMTP server on a port of its own, writing what it accepts to a spool directory.
pub struct SmtpSink {
    port: u16,
    spool: tempfile::TempDir,
    child: Option<tokio::process::Child>,
}

impl SmtpSink {
    /// A sink on a reserved port, not yet running (connections are refused).
    pub fn reserve() -> SmtpSink {
        SmtpSink {
            port: free_port(),
            spool: tempfile::tempdir().expect("spool"),
            child: None,
        }
    }

    /// A running sink.
    pub async fn started() -> SmtpSink {
        let mut sink = SmtpSink::reserve();
        sink.start().await;
        sink
    }

    /// Starts the server on the reserved port and waits until it listens.
    pub async fn start(&mut self) {
        let mut child = tokio::process::Command::new(smtp_sink_python())
            .arg(fixtures().join("smtp_sink.py"))
            .args(["--port", &self.port.to_string(), "--spool"])
            .arg(self.spool.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the SMTP sink");
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_listening(addr) {
            assert!(
                child.try_wait().expect("sink").is_none(),
                "SMTP sink exited"
            );
            assert!(Instant::now() < deadline, "SMTP sink did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child = Some(child);
    }

    /// `smtp://127.0.0.1:<port>` (the service's `SMTP_URL`, with `SMTP_STARTTLS=off`).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// How the sink answers from now on: `accept`, `tempfail` (4xx) or `reject` (5xx).
    pub fn set_mode(&self, mode: &str) {
        std::fs::write(self.spool.path().join("mode"), mode).expect("mode");
    }

    /// Every message accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        std::fs::read_to_string(self.spool.path().join("messages.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The messages accepted for `to`.
    pub fn mails_to(&self, to: &str) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The SMS provider: a Twilio-style API that honours Idempotency-Key and can answer 503.

/// One SMS the provider accepted.
#[derive(Debug, Clone)]
pub struct Sms {
    /// The request's `Idempotency-Key`.
    pub key: String,
    /// The destination number.
    pub to: String,
    /// The text.
    pub body: String,
}

#[derive(Default)]
struct SmsState {
    down: bool,
    sids: HashMap<String, String>,
    delivered: Vec<Sms>,
}

/// A local SMS provider (`POST <base_url>/Messages.json`, form-encoded `To` and `Body`).
#[derive(Clone)]
pub struct SmsProvider {
    base_url: String,
    state: Arc<Mutex<SmsState>>,
}

async fn sms_messages(
    State(state): State<Arc<Mutex<SmsState>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> (StatusCode, String) {
    let mut state = state.lock().expect("sms state");
    let expected = format!("Bearer {SMS_API_TOKEN}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (StatusCode::UNAUTHORIZED, "{}".into());
    }
    if state.down {
        return (StatusCode::SERVICE_UNAVAILABLE, "{}".into());
    }
    let to = form.get("To").cloned().unwrap_or_default();
    if to == SMS_INVALID_NUMBER {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"code":21211,"message":"invalid To"}"#.into(),
        );
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if let Some(sid) = state.sids.get(&key) {
        return (StatusCode::OK, format!(r#"{{"sid":"{sid}"}}"#));
    }
    let sid = format!("SM{}", Uuid::new_v4().simple());
    state.sids.insert(key.clone(), sid.clone());
    state.delivered.push(Sms {
        key,
        to,
        body: form.get("Body").cloned().unwrap_or_default(),
    });
    (StatusCode::CREATED, format!(r#"{{"sid":"{sid}"}}"#))
}

impl SmsProvider {
    /// Starts the provider on a free port.
    pub async fn start() -> SmsProvider {
        let state = Arc::new(Mutex::new(SmsState::default()));
        let app = Router::new()
            .route("/v1/Messages.json", post(sms_messages))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        SmsProvider {
            base_url: format!("http://{addr}/v1"),
            state,
        }
    }

    /// The service's `SMS_API_BASE_URL`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Makes the provider answer 503 (`true`) or accept again (`false`).
    pub fn set_down(&self, down: bool) {
        self.state.lock().expect("sms").down = down;
    }

    /// The messages accepted for `to`.
    pub fn delivered_to(&self, to: &str) -> Vec<Sms> {
        let state = self.state.lock().expect("sms");
        state
            .delivered
            .iter()
            .filter(|s| s.to == to)
            .cloned()
            .collect()
    }

    /// Every message accepted so far.
    pub fn delivered(&self) -> Vec<Sms> {
        self.state.lock().expect("sms").delivered.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// The webhook receiver: HTTPS with a self-signed certificate the service is told to trust.

/// One webhook request received.
#[derive(Debug, Clone)]
pub struct Hook {
    /// Its headers (the Standard Webhooks `webhook-id`, `webhook-timestamp`, `webhook-signature`).
    pub headers: HeaderMap,
    /// Its body, as sent.
    pub body: Vec<u8>,
}

/// An HTTPS endpoint at `<url>` answering 204 to every POST.
pub struct WebhookReceiver {
    url: String,
    ca_file: tempfile::NamedTempFile,
    received: Arc<Mutex<Vec<Hook>>>,
}

async fn hook(
    State(received): State<Arc<Mutex<Vec<Hook>>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    received.lock().expect("hooks").push(Hook {
        headers,
        body: body.to_vec(),
    });
    StatusCode::NO_CONTENT
}

impl WebhookReceiver {
    /// Starts the receiver on a free port with a fresh self-signed certificate.
    pub async fn start() -> WebhookReceiver {
        use hyper_util::{
            rt::{TokioExecutor, TokioIo},
            server::conn::auto,
            service::TowerToHyperService,
        };
        use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};
        let certified =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
        let ca_file = tempfile::NamedTempFile::new().expect("ca file");
        std::fs::write(ca_file.path(), certified.cert.pem()).expect("write ca");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("tls versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![certified.cert.der().clone()],
                PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into()),
            )
            .expect("tls config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/hooks", post(hook))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                            .await;
                    }
                });
            }
        });
        WebhookReceiver {
            url: format!("https://{addr}/hooks"),
            ca_file,
            received,
        }
    }

    /// The URL to register as a webhook endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The PEM file of the receiver's certificate (the service's `WEBHOOK_CA_FILE`).
    pub fn ca_path(&self) -> &Path {
        self.ca_file.path()
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Hook> {
        self.received.lock().expect("hooks").clone()
    }
}
