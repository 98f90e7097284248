//! The real service binaries as child processes: built once per test process, started on free
//! ports with the runtime contract's environment, health-checked over `grpc.health.v1`,
//! signalled, restarted on the same port, and their logs printed when a test fails.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::logtail::{read_lossy, tail};
use crate::{ports, reaper};

pub use tonic_health::pb::health_check_response::ServingStatus;

/// Lines of a service's log printed when a test panics while the service is alive.
const LOG_LINES_ON_FAILURE: usize = 200;

/// Configuration variables of the runtime contract. They are removed from the environment the
/// child inherits, so only what the harness and the [`ServiceSpec`] set reaches a service.
const CONTRACT_VARIABLES: &[&str] = &[
    "LISTEN_ADDR",
    "DATABASE_URL",
    "DATABASE_MAX_CONNECTIONS",
    "DATABASE_STATEMENT_TIMEOUT_MS",
    "NATS_URL",
    "NATS_STREAM_REPLICAS",
    "JWT_HS256_SECRET",
    "JWT_RS256_PUBLIC_KEY_FILE",
    "LOG_FORMAT",
    "RUST_LOG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "REQUEST_TIMEOUT_MS",
    "MAX_MESSAGE_BYTES",
    "CONCURRENCY_LIMIT",
    "SHUTDOWN_DRAIN_SECONDS",
    "TLS_CERT_FILE",
    "TLS_KEY_FILE",
    "SMTP_URL",
    "SMS_API_BASE_URL",
    "SMS_API_TOKEN",
];

/// What to run: a workspace binary, its arguments and the environment to give it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The binary (= cargo package) name, e.g. `directory`.
    pub name: String,
    /// Environment for the process (`DATABASE_URL`, `NATS_URL`, `JWT_HS256_SECRET`, …), applied
    /// after the harness's defaults, so it can override `RUST_LOG` or `LOG_FORMAT` too.
    pub env: Vec<(String, String)>,
    /// Command-line arguments (the services need none; helper binaries may).
    pub args: Vec<String>,
}

impl ServiceSpec {
    /// A spec for the binary `name` with no arguments and no extra environment.
    pub fn new(name: impl Into<String>) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            ..ServiceSpec::default()
        }
    }

    /// Adds one environment variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> ServiceSpec {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Adds one command-line argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> ServiceSpec {
        self.args.push(arg.into());
        self
    }
}

/// A running (or exited) service binary. Killed when dropped; when dropped during a panic its
/// last log lines go to stderr and its log file is kept.
#[derive(Debug)]
pub struct ServiceProcess {
    spec: ServiceSpec,
    binary: PathBuf,
    port: u16,
    child: Option<tokio::process::Child>,
    pid: u32,
    runs: u32,
    log_dir: Option<TempDir>,
    log_path: PathBuf,
    /// Kept between health checks, so a draining server that no longer accepts connections can
    /// still be seen answering NOT_SERVING on the one it has.
    health_channel: Mutex<Option<Channel>>,
}

impl ServiceProcess {
    /// Path of the workspace binary `name` in the workspace's target directory. The first call
    /// builds every workspace binary (`$CARGO build --workspace --bins`, the same command as
    /// `make build`, so it is usually a no-op); if that build fails — another package mid-edit —
    /// only the package of `name` is built. Honours `CARGO_TARGET_DIR`; blocks while cargo runs.
    pub fn binary_path(name: &str) -> anyhow::Result<PathBuf> {
        static WORKSPACE: OnceLock<Result<HashMap<String, PathBuf>, String>> = OnceLock::new();
        static SINGLE: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
        let workspace = WORKSPACE.get_or_init(|| {
            build_binaries(&["--workspace", "--bins"]).map_err(|error| format!("{error:#}"))
        });
        let path = match workspace {
            Ok(binaries) => binaries.get(name).cloned(),
            Err(error) => {
                eprintln!("building the whole workspace failed ({error}); building only {name}");
                let mut single = SINGLE.lock().unwrap_or_else(PoisonError::into_inner);
                let built = single.get_or_insert_with(HashMap::new);
                if !built.contains_key(name) {
                    built.extend(build_binaries(&["--bin", name])?);
                }
                built.get(name).cloned()
            }
        };
        match path {
            Some(path) if path.is_file() => Ok(path),
            Some(path) => bail!("binary {} vanished after the build", path.display()),
            None => {
                bail!("the workspace has no binary {name:?}; is its package a workspace member?")
            }
        }
    }

    /// Builds the binaries if needed and starts `spec.name` on a free port with `LISTEN_ADDR`,
    /// `LOG_FORMAT=json`, `RUST_LOG=info` and then `spec.env`; stdout and stderr go to one log
    /// file. Does not wait for it to serve: see [`ServiceProcess::wait_serving`].
    pub async fn spawn(spec: ServiceSpec) -> anyhow::Result<ServiceProcess> {
        let name = spec.name.clone();
        let binary =
            tokio::task::spawn_blocking(move || ServiceProcess::binary_path(&name)).await??;
        ServiceProcess::spawn_binary(binary, spec).await
    }

    /// Like [`ServiceProcess::spawn`] for an executable that is already built (`spec.name` then
    /// only names the process in logs and messages).
    pub async fn spawn_binary(
        binary: impl Into<PathBuf>,
        spec: ServiceSpec,
    ) -> anyhow::Result<ServiceProcess> {
        let binary = binary.into();
        let log_dir = tempfile::Builder::new()
            .prefix(&format!("clinicnet-{}-", spec.name))
            .tempdir()
            .context("create a log directory")?;
        let log_path = log_dir.path().join(format!("{}.log", spec.name));
        let mut process = ServiceProcess {
            spec,
            binary,
            port: ports::free_port(),
            child: None,
            pid: 0,
            runs: 0,
            log_dir: Some(log_dir),
            log_path,
            health_channel: Mutex::new(None),
        };
        process.start()?;
        Ok(process)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        self.runs += 1;
        *self
            .health_channel
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = None;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("open {}", self.log_path.display()))?;
        // A JSON line too, so tests that parse the log line by line can skip it like any other.
        writeln!(
            log,
            r#"{{"harness":"starting","service":"{}","run":{},"listen_addr":"{}"}}"#,
            self.spec.name,
            self.runs,
            self.addr()
        )?;
        let mut command = tokio::process::Command::new(&self.binary);
        command.args(&self.spec.args);
        for variable in CONTRACT_VARIABLES {
            command.env_remove(variable);
        }
        command
            .env("LISTEN_ADDR", self.addr().to_string())
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .envs(
                self.spec
                    .env
                    .iter()
                    .map(|(key, value)| (key.as_str(), value.as_str())),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("start {}", self.binary.display()))?;
        self.pid = child.id().context("pid of a just-spawned child")?;
        reaper::kill_with_parent(self.pid);
        self.child = Some(child);
        Ok(())
    }

    /// The service's name (its binary).
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The spec it was started with.
    pub fn spec(&self) -> &ServiceSpec {
        &self.spec
    }

    /// `127.0.0.1:<port>`, the same across restarts.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:<port>`, for tonic clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Process id of the current (or last) run.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Path of the log file (stdout and stderr of every run, appended).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the service has written so far, across restarts.
    pub fn logs(&self) -> String {
        read_lossy(&self.log_path)
    }

    /// A connected gRPC channel to the service (5 s connect timeout).
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        Endpoint::from_shared(self.endpoint())?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("connect to {} at {}", self.spec.name, self.endpoint()))
    }

    /// One `grpc.health.v1.Health/Check` for `service` (`""` is the whole server), over a
    /// connection kept between calls (2 s deadline).
    pub async fn health_status(&self, service: &str) -> anyhow::Result<ServingStatus> {
        let cached = self
            .health_channel
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let channel = match cached {
            Some(channel) => channel,
            None => {
                let channel = Endpoint::from_shared(self.endpoint())?
                    .connect_timeout(Duration::from_secs(1))
                    .timeout(Duration::from_secs(2))
                    .connect()
                    .await
                    .with_context(|| {
                        format!("connect to {} at {}", self.spec.name, self.endpoint())
                    })?;
                *self
                    .health_channel
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(channel.clone());
                channel
            }
        };
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        match HealthClient::new(channel).check(request).await {
            Ok(response) => Ok(response.into_inner().status()),
            Err(status) => {
                if status.code() != tonic::Code::NotFound {
                    // Reconnect next time.
                    *self
                        .health_channel
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = None;
                }
                Err(status)
                    .with_context(|| format!("health check of {service:?} on {}", self.spec.name))
            }
        }
    }

    /// Polls health (service `""`) until SERVING. Fails with the log tail when `timeout` passes or
    /// the process exits first.
    pub async fn wait_serving(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.health_status("").await {
                Ok(ServingStatus::Serving) => return Ok(()),
                Ok(status) => format!("health is {status:?}"),
                Err(error) => format!("{error:#}"),
            };
            if let Some(status) = self.try_exit_status()? {
                bail!(
                    "{} exited with {status} before it was SERVING\n{}",
                    self.spec.name,
                    self.failure_tail()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} not SERVING within {timeout:?} ({last})\n{}",
                    self.spec.name,
                    self.failure_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the current run is still alive.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_exit_status(), Ok(None))
    }

    /// Sends SIGTERM (graceful shutdown) and returns at once.
    pub fn sigterm(&mut self) -> anyhow::Result<()> {
        self.signal(Signal::SIGTERM)
    }

    /// Sends SIGKILL and waits until the process is gone.
    pub async fn kill9(&mut self) -> anyhow::Result<()> {
        let child = self
            .child
            .as_mut()
            .context("the service was never started")?;
        if child.try_wait()?.is_none() {
            child.start_kill().context("SIGKILL")?;
        }
        child.wait().await.context("wait for the killed service")?;
        Ok(())
    }

    /// Waits for the current run to exit and returns its exit status; fails after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let child = self
            .child
            .as_mut()
            .context("the service was never started")?;
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => bail!(
                "{} still running {timeout:?} later\n{}",
                self.spec.name,
                self.failure_tail()
            ),
        }
    }

    /// Starts the service again on the same port with the same spec (killing the current run with
    /// SIGKILL first if it is still alive). Does not wait for SERVING.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            self.kill9().await?;
        }
        self.start()
    }

    fn signal(&mut self, signal: Signal) -> anyhow::Result<()> {
        if self.try_exit_status()?.is_some() {
            bail!("{} has already exited", self.spec.name);
        }
        let pid = i32::try_from(self.pid).context("pid out of range")?;
        kill(Pid::from_raw(pid), signal)
            .with_context(|| format!("send {signal} to {}", self.spec.name))
    }

    fn try_exit_status(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => Ok(child.try_wait()?),
            None => bail!("the service was never started"),
        }
    }

    fn failure_tail(&self) -> String {
        format!(
            "----- last log lines of {} -----\n{}",
            self.spec.name,
            tail(&self.logs(), 60)
        )
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if std::thread::panicking() {
            let name = &self.spec.name;
            eprintln!(
                "----- last {LOG_LINES_ON_FAILURE} log lines of {name} (pid {}) -----",
                self.pid
            );
            for line in tail(&self.logs(), LOG_LINES_ON_FAILURE).lines() {
                eprintln!("[{name}] {line}");
            }
            if let Some(dir) = self.log_dir.take() {
                let _ = dir.keep();
                eprintln!(
                    "----- full log of {name} kept at {} -----",
                    self.log_path.display()
                );
            }
        }
    }
}

/// Runs `$CARGO build --bins` for the whole workspace and maps binary names to executables.
/// Set to `release` to run optimised service binaries (benchmarks do).
pub const PROFILE_ENV: &str = "CLINICNET_SERVICE_PROFILE";

fn build_binaries(selection: &[&str]) -> anyhow::Result<HashMap<String, PathBuf>> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the tests package lives inside the workspace")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let release = std::env::var(PROFILE_ENV).is_ok_and(|profile| profile == "release");
    let output = std::process::Command::new(&cargo)
        .arg("build")
        .args(release.then_some("--release"))
        .args(selection)
        .args([
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(workspace.join("Cargo.toml"))
        // A relative CARGO_TARGET_DIR means the same as for a cargo run from the workspace root.
        .current_dir(workspace)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("run cargo build")?;
    if !output.status.success() {
        bail!(
            "cargo build {} failed with {} (its errors are above)",
            selection.join(" "),
            output.status
        );
    }
    Ok(parse_executables(&String::from_utf8_lossy(&output.stdout)))
}

/// Binary name → executable, from cargo's JSON messages.
fn parse_executables(messages: &str) -> HashMap<String, PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| {
            message["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"))
        })
        .filter_map(|message| {
            let name = message["target"]["name"].as_str()?.to_owned();
            let executable = PathBuf::from(message["executable"].as_str()?);
            Some((name, executable))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_come_from_bin_artifacts_only() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"platform"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"directory"},"executable":"/t/debug/directory","fresh":true}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\nnot json\n"
        );
        let found = parse_executables(messages);
        assert_eq!(found.len(), 1);
        assert_eq!(found["directory"], PathBuf::from("/t/debug/directory"));
    }

    #[test]
    fn spec_collects_arguments_and_environment_in_order() {
        let spec = ServiceSpec::new("directory")
            .arg("--help")
            .env("DATABASE_URL", "postgres://x")
            .env("RUST_LOG", "debug");
        assert_eq!(spec.name, "directory");
        assert_eq!(spec.args, vec!["--help".to_owned()]);
        assert_eq!(
            spec.env,
            vec![
                ("DATABASE_URL".to_owned(), "postgres://x".to_owned()),
                ("RUST_LOG".to_owned(), "debug".to_owned())
            ]
        );
    }
}
