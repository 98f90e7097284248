//! The NATS connection of a service: connects (waiting for the server), and counts the times the
//! connection was lost so consumers can stop pulling and let lost deliveries come back first.

use crate::shutdown::Shutdown;
use async_nats::{Client, ConnectOptions, Event};
use std::time::Duration;
use tokio::sync::watch;

/// A connected client and a counter of lost connections.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The client.
    pub client: Client,
    /// Incremented each time the connection to the server is lost.
    pub disconnects: watch::Receiver<u64>,
}

/// Connects to `url` as `name`, retrying until the server answers or shutdown begins.
pub async fn connect(name: &str, url: &str, shutdown: &Shutdown) -> anyhow::Result<Connection> {
    let (sender, disconnects) = watch::channel(0u64);
    let sender = std::sync::Arc::new(sender);
    let mut delay = Duration::from_millis(200);
    loop {
        let events = sender.clone();
        let attempt = ConnectOptions::new()
            .name(name)
            .connection_timeout(Duration::from_secs(5))
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    match event {
                        Event::Disconnected => {
                            events.send_modify(|count| *count += 1);
                            tracing::warn!("NATS connection lost");
                        }
                        Event::Connected => tracing::info!("NATS connected"),
                        other => tracing::debug!(event = %other, "NATS event"),
                    }
                }
            })
            .connect(url)
            .await;
        match attempt {
            Ok(client) => {
                return Ok(Connection {
                    client,
                    disconnects,
                });
            }
            Err(error) => tracing::warn!(error = %error, "NATS not reachable yet"),
        }
        tokio::select! {
            _ = shutdown.wait() => anyhow::bail!("shutdown while waiting for NATS"),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
