//! The PostgreSQL and NATS servers this test process uses: given by environment, found on the
//! standard local ports, or started privately once per process (and stopped when it exits).
//!
//! Resolution order, each memoized for the whole process (an environment value of `private`
//! forces the private instance even when the standard port answers):
//! - PostgreSQL: `$CLINICNET_TEST_PG_URL`; else `127.0.0.1:5432` with trust auth if it accepts
//!   connections; else a private cluster (`initdb` from `/usr/lib/postgresql/<ver>/bin`, run as the
//!   `postgres` OS user when we are root, trust auth, data and socket in a temporary directory).
//! - NATS: `$CLINICNET_TEST_NATS_URL`; else `127.0.0.1:4222` if it accepts connections; else a
//!   private `nats-server -js` ([`crate::nats::PrivateNats`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};

use crate::nats::PrivateNats;
use crate::ports;
use crate::postgres::PrivatePostgres;
use crate::reaper::{self, shell_quote};

/// Environment variable naming the PostgreSQL admin URL to use instead of discovering one.
pub const PG_URL_ENV: &str = "CLINICNET_TEST_PG_URL";
/// Environment variable naming the NATS URL to use instead of discovering one.
pub const NATS_URL_ENV: &str = "CLINICNET_TEST_NATS_URL";
/// The value of [`PG_URL_ENV`] or [`NATS_URL_ENV`] that asks for a private instance.
pub const PRIVATE: &str = "private";

/// Admin URL (a superuser, database `postgres`) of the PostgreSQL server the tests use.
///
/// Blocks the first time while a private cluster is initialised (a few seconds); panics with the
/// reason if no server can be had.
pub fn postgres_admin_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match non_empty_env(PG_URL_ENV) {
        Some(url) if url == PRIVATE => private_postgres_admin_url(),
        Some(url) => url,
        None if ports::is_listening(SocketAddr::from(([127, 0, 0, 1], 5432))) => {
            "postgres://postgres@127.0.0.1:5432/postgres".to_owned()
        }
        None => private_postgres_admin_url(),
    })
    .clone()
}

/// Admin URL of this process's private PostgreSQL cluster, started on first use whatever else
/// runs on the machine, and stopped (its directory removed) when the process exits.
pub fn private_postgres_admin_url() -> String {
    static INSTANCE: OnceLock<PrivatePostgres> = OnceLock::new();
    // Statics are never dropped: the cluster's own clean-up runs once this process has exited.
    INSTANCE
        .get_or_init(|| {
            PrivatePostgres::start_blocking().unwrap_or_else(|error| {
                panic!("could not start a private PostgreSQL cluster: {error:#}")
            })
        })
        .admin_url()
}

/// URL of the NATS server (JetStream enabled) the tests share.
///
/// Blocks the first time while a private server starts; panics with the reason if none can be had.
pub fn nats_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match non_empty_env(NATS_URL_ENV) {
        Some(url) if url == PRIVATE => private_nats_url(),
        Some(url) => url,
        None if ports::is_listening(SocketAddr::from(([127, 0, 0, 1], 4222))) => {
            "nats://127.0.0.1:4222".to_owned()
        }
        None => private_nats_url(),
    })
    .clone()
}

/// URL of this process's private `nats-server -js`, started on first use and killed (its store
/// removed) when the process exits. Tests that stop or restart NATS want their own
/// [`PrivateNats`] instead.
pub fn private_nats_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    static INSTANCE: OnceLock<PrivateNats> = OnceLock::new();
    URL.get_or_init(|| {
        let nats = PrivateNats::start_blocking()
            .unwrap_or_else(|error| panic!("could not start a private nats-server: {error:#}"));
        let url = nats.url();
        // Statics are never dropped: remove its directory once this process has exited.
        reaper::after_exit(&format!(
            "rm -rf {}",
            shell_quote(&nats.root_dir().display().to_string())
        ));
        let _ = INSTANCE.set(nats);
        url
    })
    .clone()
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// The newest `/usr/lib/postgresql/<major>/bin` that has `initdb`, or `$CLINICNET_TEST_PG_BIN_DIR`.
pub(crate) fn postgres_bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = non_empty_env("CLINICNET_TEST_PG_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .with_context(|| {
            format!(
                "read {} (is PostgreSQL installed? run scripts/ensure-infra.sh)",
                root.display()
            )
        })?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .with_context(|| format!("no {}/<version>/bin/initdb found", root.display()))
}

pub(crate) fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `program` run as the `postgres` OS user when we are root (initdb and postgres refuse root).
pub(crate) fn as_postgres_user(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

pub(crate) fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("run {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed with {}:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
