//! Waking a worker as soon as another transaction commits work for it, on any replica: the writer
//! runs `SELECT pg_notify('<channel>', '')` in its transaction (PostgreSQL delivers it on commit)
//! and the worker waits on a [`Wakeup`] listening on that channel. Notifications are lost while a
//! listener reconnects, so a worker still polls: [`Wakeup::wait`] also returns at its timeout, and
//! right after a reconnect.

use futures::FutureExt;
use sqlx::{PgPool, postgres::PgListener};
use std::time::Duration;

/// Pause between attempts to re-create a listener that cannot connect.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// A LISTEN on one channel, on a connection of its own taken from the pool, re-created when that
/// connection breaks.
pub struct Wakeup {
    pool: PgPool,
    channel: String,
    listener: Option<PgListener>,
}

impl Wakeup {
    /// Listens on `channel` of `pool`'s database; if that fails, the next wait tries again.
    pub async fn listen(pool: &PgPool, channel: &str) -> Wakeup {
        let mut wakeup = Wakeup {
            pool: pool.clone(),
            channel: channel.to_owned(),
            listener: None,
        };
        if let Err(error) = wakeup.connect().await {
            tracing::warn!(channel, error = %error, "cannot listen yet; retrying");
        }
        wakeup
    }

    /// Waits at most `timeout` for a notification; true when woken (see [`Wakeup::notified`]),
    /// false when the timeout passed.
    pub async fn wait(&mut self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.notified()).await.is_ok()
    }

    /// Returns when a notification arrives, or when the listener has been re-created (whatever
    /// was notified meanwhile is lost). Notifications already received are consumed too, so a
    /// burst wakes once. Cancel-safe.
    pub async fn notified(&mut self) {
        loop {
            let Some(listener) = self.listener.as_mut() else {
                match self.connect().await {
                    Ok(()) => return,
                    Err(error) => {
                        tracing::warn!(channel = %self.channel, error = %error, "cannot listen; retrying");
                        tokio::time::sleep(RECONNECT_DELAY).await;
                        continue;
                    }
                }
            };
            let received = listener.try_recv().await;
            match received {
                Ok(Some(_)) => {
                    self.drain();
                    return;
                }
                // The connection broke: reconnect, then report the wake-up.
                Ok(None) => self.listener = None,
                Err(error) => {
                    tracing::warn!(channel = %self.channel, error = %error, "listener failed; reconnecting");
                    self.listener = None;
                }
            }
        }
    }

    /// Consumes the notifications that have already arrived.
    fn drain(&mut self) {
        while let Some(listener) = self.listener.as_mut() {
            let received = listener.try_recv().now_or_never();
            match received {
                Some(Ok(Some(_))) => {}
                // Re-created (and reported as a wake-up) by the next wait.
                Some(Ok(None) | Err(_)) => self.listener = None,
                None => return,
            }
        }
    }

    async fn connect(&mut self) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        // A lost connection comes back through `connect`, so that the reconnect is reported.
        listener.eager_reconnect(false);
        listener.listen(&self.channel).await?;
        self.listener = Some(listener);
        Ok(())
    }
}
