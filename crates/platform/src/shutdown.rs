//! Shutdown fanned out to every task: SIGTERM or SIGINT flips one watch channel that the gRPC
//! server, the outbox relay and the consumers all wait on.

use tokio::sync::watch;

/// A cloneable handle that says whether shutdown has begun and lets a task wait for it.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// The side that starts shutdown.
#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

impl ShutdownTrigger {
    /// Begins shutdown; every [`Shutdown`] handle wakes.
    pub fn trigger(&self) {
        let _ = self.sender.send(true);
    }
}

/// A trigger and its first handle.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, Shutdown { receiver })
}

impl Shutdown {
    /// Whether shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Resolves once shutdown has begun (immediately if it already has).
    pub async fn wait(&self) {
        let mut receiver = self.receiver.clone();
        let _ = receiver.wait_for(|stopping| *stopping).await;
    }
}

/// A [`Shutdown`] that begins on SIGTERM or SIGINT.
pub fn on_signals() -> anyhow::Result<Shutdown> {
    use tokio::signal::unix::{SignalKind, signal};
    let (trigger, shutdown) = channel();
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutdown requested");
        trigger.trigger();
    });
    Ok(shutdown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_handle_wakes_on_trigger() {
        let (trigger, shutdown) = channel();
        let other = shutdown.clone();
        assert!(!other.is_triggered());
        let waiter = tokio::spawn(async move { other.wait().await });
        trigger.trigger();
        waiter.await.unwrap();
        assert!(shutdown.is_triggered());
        shutdown.wait().await;
    }
}
