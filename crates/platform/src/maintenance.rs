//! Housekeeping of the platform's own tables, hourly: sent outbox rows, inbox rows and idempotency
//! keys past their retention. Retentions are far longer than any redelivery or retry can come
//! late: JetStream redelivers within minutes and de-duplicates for ten, clients retry within hours.

use crate::shutdown::Shutdown;
use sqlx::PgPool;
use std::time::Duration;

/// How long each kind of row is kept.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Outbox rows after they were published.
    pub sent_outbox: Duration,
    /// Inbox rows (consumed event ids).
    pub inbox: Duration,
    /// Idempotency keys and their recorded answers.
    pub idempotency_keys: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        Self {
            sent_outbox: Duration::from_secs(DAY),
            inbox: Duration::from_secs(30 * DAY),
            idempotency_keys: Duration::from_secs(7 * DAY),
        }
    }
}

/// Deletes rows past their retention; returns how many.
pub async fn prune(pool: &PgPool, retention: &Retention) -> Result<u64, sqlx::Error> {
    let statements = [
        (
            "DELETE FROM outbox_sent WHERE published_at < now() - make_interval(secs => $1)",
            retention.sent_outbox,
        ),
        (
            "DELETE FROM inbox WHERE processed_at < now() - make_interval(secs => $1)",
            retention.inbox,
        ),
        (
            "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
            retention.idempotency_keys,
        ),
    ];
    let mut deleted = 0;
    for (statement, keep) in statements {
        deleted += sqlx::query(statement)
            .bind(keep.as_secs_f64())
            .execute(pool)
            .await?
            .rows_affected();
    }
    Ok(deleted)
}

/// Prunes every hour until shutdown.
pub async fn run(pool: PgPool, retention: Retention, shutdown: Shutdown) {
    let mut ticker = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = ticker.tick() => match prune(&pool, &retention).await {
                Ok(deleted) => tracing::debug!(deleted, "pruned platform tables"),
                Err(error) => tracing::warn!(error = %error, "pruning platform tables failed"),
            },
        }
    }
}
