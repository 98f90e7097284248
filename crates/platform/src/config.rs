//! Configuration every service shares: flags with environment fallbacks, all listed by `--help`.
//! Secrets are wrapped in [`Secret`] so they never reach logs or `--help` output.

use clap::{Args, ValueEnum};
use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

/// A configuration value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Everything a clinicnet service binary is configured with, besides its own domain settings.
#[derive(Debug, Clone, Args)]
pub struct ServiceConfig {
    /// gRPC server settings.
    #[command(flatten)]
    pub grpc: GrpcConfig,
    /// PostgreSQL settings.
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// NATS JetStream settings.
    #[command(flatten)]
    pub nats: NatsConfig,
    /// Bearer-token validation settings.
    #[command(flatten)]
    pub auth: AuthConfig,
    /// Logging and tracing settings.
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

/// gRPC server settings.
#[derive(Debug, Clone, Args)]
pub struct GrpcConfig {
    /// Address the gRPC server listens on (API, health, reflection, event operations).
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:50051")]
    pub listen_addr: SocketAddr,
    /// Deadline applied to every request that does not carry a shorter one, in milliseconds.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// Largest accepted request message, in bytes.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// Requests served concurrently on one connection.
    #[arg(long, env = "CONCURRENCY_LIMIT", default_value_t = 256)]
    pub concurrency_limit: usize,
    /// Time in-flight calls get to finish after SIGTERM/SIGINT, in seconds.
    #[arg(long, env = "SHUTDOWN_DRAIN_SECONDS", default_value_t = 20)]
    pub shutdown_drain_seconds: u64,
    /// PEM certificate chain; with TLS_KEY_FILE turns on TLS.
    #[arg(long, env = "TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key matching TLS_CERT_FILE.
    #[arg(long, env = "TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
}

impl GrpcConfig {
    /// The per-request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    /// How long shutdown waits for in-flight calls.
    pub fn drain_time(&self) -> Duration {
        Duration::from_secs(self.shutdown_drain_seconds)
    }
}

/// PostgreSQL settings.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// The service's own database, e.g. postgres://user:password@host:5432/directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Secret,
    /// Connections in the pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,
    /// statement_timeout set on every connection, in milliseconds.
    #[arg(long, env = "DATABASE_STATEMENT_TIMEOUT_MS", default_value_t = 5_000)]
    pub database_statement_timeout_ms: u64,
}

/// NATS JetStream settings.
#[derive(Debug, Clone, Args)]
pub struct NatsConfig {
    /// NATS server URL(s), comma separated.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Replicas of the streams this service declares (1 in development, 3 in production).
    #[arg(long, env = "NATS_STREAM_REPLICAS", default_value_t = 1)]
    pub nats_stream_replicas: usize,
}

/// Bearer-token validation settings. At least one key source must be given.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// HS256 shared secret accepted for tokens (development only).
    #[arg(long, env = "JWT_HS256_SECRET", hide_env_values = true)]
    pub jwt_hs256_secret: Option<Secret>,
    /// PEM file of the RS256 public key that signs production tokens.
    #[arg(long, env = "JWT_RS256_PUBLIC_KEY_FILE")]
    pub jwt_rs256_public_key_file: Option<PathBuf>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// JSON when standard output is not a terminal, pretty otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// Logging and tracing settings.
#[derive(Debug, Clone, Args)]
pub struct TelemetryConfig {
    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    /// Log filter in tracing's EnvFilter syntax.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
    /// OTLP/gRPC collector endpoint; traces are exported only when set.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// Parses a service's command line, giving `--listen-addr` the service's own default port.
pub fn parse_args<C: clap::Parser>(default_port: u16) -> C {
    let command = C::command().mut_arg("listen_addr", |arg| {
        arg.default_value(format!("0.0.0.0:{default_port}"))
    });
    let matches = command.get_matches();
    C::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        service: ServiceConfig,
    }

    #[test]
    fn secrets_are_never_printed_by_debug() {
        let cli = Cli::try_parse_from([
            "svc",
            "--database-url",
            "postgres://u:hunter2@db/x",
            "--jwt-hs256-secret",
            "topsecret",
        ])
        .unwrap();
        let printed = format!("{cli:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("topsecret"), "{printed}");
        assert_eq!(
            cli.service.database.database_url.expose(),
            "postgres://u:hunter2@db/x"
        );
    }

    #[test]
    fn help_lists_every_environment_variable() {
        let help = Cli::command().render_long_help().to_string();
        for var in [
            "LISTEN_ADDR",
            "REQUEST_TIMEOUT_MS",
            "MAX_MESSAGE_BYTES",
            "CONCURRENCY_LIMIT",
            "SHUTDOWN_DRAIN_SECONDS",
            "TLS_CERT_FILE",
            "TLS_KEY_FILE",
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
        ] {
            assert!(help.contains(var), "--help does not list {var}");
        }
    }

    #[test]
    fn tls_needs_both_files() {
        let err = Cli::try_parse_from([
            "svc",
            "--database-url",
            "postgres://x",
            "--tls-cert-file",
            "/tmp/cert.pem",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }
}
