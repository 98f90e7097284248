//! A private `nats-server -js` owned by one test: its own port and store directory, and it can be
//! stopped, killed and started again on the same port and store (JetStream data survives).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::{logtail::tail, ports, reaper};

/// How long a fresh or restarted server gets to accept TCP connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd server gets to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A `nats-server` with JetStream, private to the test that started it. Killed when dropped.
#[derive(Debug)]
pub struct PrivateNats {
    port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl PrivateNats {
    /// Starts `nats-server -js -a 127.0.0.1 -p <free port> -sd <temp store dir>` and waits until it
    /// accepts connections. The binary is `$CLINICNET_TEST_NATS_SERVER_BIN`, else `nats-server` on
    /// `PATH`, else `/usr/sbin/nats-server`.
    pub async fn start() -> anyhow::Result<PrivateNats> {
        let mut nats = PrivateNats::prepare()?;
        nats.spawn()?;
        nats.wait_ready().await?;
        Ok(nats)
    }

    /// Blocking variant of [`PrivateNats::start`], for the process-wide instance.
    pub(crate) fn start_blocking() -> anyhow::Result<PrivateNats> {
        let mut nats = PrivateNats::prepare()?;
        nats.spawn()?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while !ports::is_listening(nats.socket_addr()) {
            nats.check_alive()?;
            if Instant::now() >= deadline {
                bail!(
                    "nats-server did not accept connections within {READY_TIMEOUT:?}\n{}",
                    nats.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(nats)
    }

    fn prepare() -> anyhow::Result<PrivateNats> {
        let dir = tempfile::Builder::new()
            .prefix("clinicnet-nats-")
            .tempdir()
            .context("create a temporary directory for nats-server")?;
        std::fs::create_dir_all(dir.path().join("store"))
            .context("create the JetStream store directory")?;
        Ok(PrivateNats {
            port: ports::free_port(),
            dir,
            child: None,
        })
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The TCP port the server listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory (`-sd`), kept across restarts.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The temporary directory holding the store and the log.
    pub(crate) fn root_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Path of the server's log file (all runs appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// Everything the server has logged so far, across restarts.
    pub fn logs(&self) -> String {
        crate::logtail::read_lossy(&self.log_path())
    }

    /// The running server's process id, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Graceful stop: SIGTERM, then waits for the exit (SIGKILL after 15 s).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            bail!("nats-server is not running")
        };
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if child.try_wait().context("wait for nats-server")?.is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("nats-server did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed it");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Crash: SIGKILL, and waits until the process is gone.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            bail!("nats-server is not running")
        };
        child.kill().context("SIGKILL nats-server")?;
        tokio::task::spawn_blocking(move || child.wait())
            .await?
            .context("wait for nats-server")?;
        Ok(())
    }

    /// Starts the server again on the same port with the same store directory, after
    /// [`PrivateNats::stop`] or [`PrivateNats::kill`], and waits until it accepts connections.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            bail!("nats-server is still running; stop or kill it first");
        }
        self.child = None;
        self.spawn()?;
        self.wait_ready().await
    }

    fn binary() -> PathBuf {
        if let Some(bin) = std::env::var_os("CLINICNET_TEST_NATS_SERVER_BIN") {
            return PathBuf::from(bin);
        }
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file());
        on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("open the nats-server log file")?;
        let binary = PrivateNats::binary();
        let child = Command::new(&binary)
            .arg("-js")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-sd")
            .arg(self.store_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("start {} (is nats-server installed?)", binary.display()))?;
        reaper::kill_with_parent(child.id());
        self.child = Some(child);
        Ok(())
    }

    fn socket_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            self.child = None;
            bail!(
                "nats-server exited with {status} while starting\n{}",
                self.log_tail()
            );
        }
        Ok(())
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if tokio::net::TcpStream::connect(self.socket_addr())
                .await
                .is_ok()
            {
                return Ok(());
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                bail!(
                    "nats-server did not accept connections within {READY_TIMEOUT:?}\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_tail(&self) -> String {
        tail(&self.logs(), 40)
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
