//! A private PostgreSQL cluster owned by one test (or by the process, see
//! [`crate::infra::private_postgres_admin_url`]): `initdb` into a temporary directory, its own port,
//! trust auth; it can be restarted on the same port and data, and is stopped (its directory
//! removed) when dropped or, failing that, once the process has exited.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::infra::{as_postgres_user, postgres_bin_dir, run, running_as_root};
use crate::reaper::{self, shell_quote};
use crate::{logtail, ports};

/// A running PostgreSQL cluster of this test process. Stopped and removed when dropped.
#[derive(Debug)]
pub struct PrivatePostgres {
    cluster: Cluster,
}

/// Where a cluster lives and how to control it.
#[derive(Debug, Clone)]
struct Cluster {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl PrivatePostgres {
    /// Initialises and starts a cluster (`initdb` from [`postgres_bin_dir`], run as the `postgres`
    /// OS user when we are root) listening on 127.0.0.1 on a free port.
    pub async fn start() -> anyhow::Result<PrivatePostgres> {
        tokio::task::spawn_blocking(PrivatePostgres::start_blocking).await?
    }

    /// Blocking variant of [`PrivatePostgres::start`], for the process-wide instance.
    pub(crate) fn start_blocking() -> anyhow::Result<PrivatePostgres> {
        let bin = postgres_bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("clinicnet-pg-")
            .tempdir()
            .context("create a temporary directory for PostgreSQL")?
            .keep();
        if running_as_root() {
            let user = nix::unistd::User::from_name("postgres")
                .context("look up the postgres OS user")?
                .context("no `postgres` OS user (install the postgresql package)")?;
            std::os::unix::fs::chown(&dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .with_context(|| format!("chown {} to postgres", dir.display()))?;
        }
        let cluster = Cluster {
            port: ports::free_port(),
            dir,
            bin,
        };
        // Whatever happens to this process, the server is stopped and its directory removed.
        reaper::after_exit(&cluster.stop_and_remove_script());

        let mut initdb = as_postgres_user(&cluster.bin.join("initdb"));
        initdb.arg("-D").arg(cluster.data_dir()).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]);
        run(initdb, "initdb")?;
        cluster.pg_ctl("start")?;
        Ok(PrivatePostgres { cluster })
    }

    /// Admin URL (superuser `postgres`, database `postgres`).
    pub fn admin_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.cluster.port
        )
    }

    /// Everything the server has logged so far, across restarts.
    pub fn logs(&self) -> String {
        self.cluster.logs()
    }

    /// Crash and recover: stops the server in `immediate` mode (connections cut, no checkpoint)
    /// and starts it again on the same port and data directory, waiting until it accepts
    /// connections.
    pub async fn restart(&self) -> anyhow::Result<()> {
        let cluster = self.cluster.clone();
        tokio::task::spawn_blocking(move || cluster.pg_ctl("restart")).await?
    }
}

impl Cluster {
    fn logs(&self) -> String {
        logtail::read_lossy(&self.log_path())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// `pg_ctl start` or `pg_ctl restart` with this cluster's options, waiting up to 60 s.
    ///
    /// No fsync (the machine does not crash under a test), but each commit is written before it
    /// is acknowledged, so an immediate stop loses no acknowledged transaction.
    fn pg_ctl(&self, action: &str) -> anyhow::Result<()> {
        let options = format!(
            "-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c max_connections=400 \
             -c fsync=off -c synchronous_commit=on -c full_page_writes=off",
            port = self.port,
            socket_dir = self.dir.display()
        );
        let mut command = as_postgres_user(&self.bin.join("pg_ctl"));
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-m", "immediate", "-w", "-t", "60", "-o", &options, action]);
        run(command, &format!("pg_ctl {action}")).with_context(|| logtail::tail(&self.logs(), 40))
    }

    fn stop_and_remove_script(&self) -> String {
        format!(
            "{runas}{pg_ctl} -D {data} stop -m immediate >/dev/null 2>&1; rm -rf {dir}",
            runas = if running_as_root() {
                "runuser -u postgres -- "
            } else {
                ""
            },
            pg_ctl = quoted(&self.bin.join("pg_ctl")),
            data = quoted(&self.data_dir()),
            dir = quoted(&self.dir),
        )
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(self.cluster.stop_and_remove_script())
            .status();
    }
}

fn quoted(path: &Path) -> String {
    shell_quote(&path.display().to_string())
}
