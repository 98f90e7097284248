//! Free loopback ports and small TCP readiness probes.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Ports this process has already handed out, so two callers never get the same one.
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel chose it for a bind to port 0).
///
/// Never returns the same port twice within one test process.
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("local address of a bound socket")
            .port();
        drop(listener);
        let mut ports = handed_out()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if ports.insert(port) {
            return port;
        }
    }
}

/// Whether something accepts TCP connections on `addr` right now (500 ms connect timeout).
pub fn is_listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Blocks until `addr` accepts TCP connections, or fails after `timeout`.
pub fn wait_listening_blocking(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if is_listening(addr) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!("nothing accepted TCP connections on {addr} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let a = free_port();
        let b = free_port();
        assert_ne!(a, b);
        TcpListener::bind(("127.0.0.1", a)).expect("port a is free");
        TcpListener::bind(("127.0.0.1", b)).expect("port b is free");
    }

    #[test]
    fn listening_probe_sees_a_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(is_listening(addr));
        wait_listening_blocking(addr, Duration::from_secs(1)).unwrap();
    }
}
