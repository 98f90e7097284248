//! The outbox relay: publishes committed outbox rows to JetStream with `Nats-Msg-Id` = event id,
//! waits for each publish ack before marking a row sent (sent rows are pruned by `maintenance`).
//!
//! Order per aggregate holds with any number of relays: a batch is claimed with
//! `FOR UPDATE SKIP LOCKED` plus a transaction-scoped advisory lock per aggregate, so one
//! aggregate's pending rows are only ever in one relay's hands; inside a batch, rows are published
//! in waves — at most one row per aggregate in flight — and an aggregate whose publish failed
//! publishes nothing more until the next round. Woken by LISTEN/NOTIFY, and polls as well because
//! notifications are lost while the listener reconnects.

use crate::{
    events::{MSG_ID_HEADER, outbox::NOTIFY_CHANNEL},
    shutdown::Shutdown,
    trace_context,
    wake::Wakeup,
};
use async_nats::jetstream;
use sqlx::PgPool;
use std::{collections::VecDeque, future::IntoFuture, time::Duration};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

/// Relay tuning.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows claimed per transaction.
    pub batch_size: i64,
    /// Poll interval when no notification arrives.
    pub poll_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
        }
    }
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    id: i64,
    event_id: Uuid,
    subject: String,
    aggregate_id: String,
    payload: Vec<u8>,
    #[sqlx(rename = "trace_carrier")]
    carrier: sqlx::types::Json<Vec<(String, String)>>,
}

/// Publishes the outbox of one database to JetStream until shutdown.
#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    jetstream: jetstream::Context,
    config: RelayConfig,
}

impl Relay {
    /// A relay over `pool`'s outbox.
    pub fn new(pool: PgPool, jetstream: jetstream::Context, config: RelayConfig) -> Self {
        Self {
            pool,
            jetstream,
            config,
        }
    }

    /// Runs until `shutdown`: publish whatever is pending, then wait for a notification or the
    /// poll interval.
    pub async fn run(self, shutdown: Shutdown) {
        let mut wakeup = Wakeup::listen(&self.pool, NOTIFY_CHANNEL).await;
        let mut failures = 0u32;
        while !shutdown.is_triggered() {
            match self.publish_batch().await {
                Ok(published) if published as i64 >= self.config.batch_size => {
                    failures = 0;
                    continue;
                }
                Ok(_) => failures = 0,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = format!("{error:#}"), "outbox relay round failed");
                }
            }
            let wait = if failures > 0 {
                Duration::from_millis(100 * 2u64.pow(failures.min(6)))
            } else {
                self.config.poll_interval
            };
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = wakeup.wait(wait) => {}
            }
        }
        tracing::info!("outbox relay stopped");
    }

    /// Claims and publishes one batch; returns how many rows were published.
    pub async fn publish_batch(&self) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<PendingRow> = sqlx::query_as(
            "SELECT id, event_id, subject, aggregate_id, payload, trace_carrier
               FROM outbox
              WHERE published_at IS NULL
                AND pg_try_advisory_xact_lock(hashtextextended(aggregate_id, 7301))
              ORDER BY id
              LIMIT $1
                FOR UPDATE SKIP LOCKED",
        )
        .bind(self.config.batch_size)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }

        let (published, failed) = self.publish_in_waves(rows).await;
        if !published.is_empty() {
            sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
                .bind(&published)
                .execute(&mut *tx)
                .await?;
        }
        for (id, error) in &failed {
            sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
                .bind(id)
                .bind(error)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if let Some((_, error)) = failed.first() {
            anyhow::bail!("{} outbox rows not published: {error}", failed.len());
        }
        Ok(published.len())
    }

    /// Publishes rows so that each aggregate has at most one publish in flight; returns the ids
    /// published and the ids that failed (with the error). After a failure, an aggregate's later
    /// rows are left pending.
    async fn publish_in_waves(&self, rows: Vec<PendingRow>) -> (Vec<i64>, Vec<(i64, String)>) {
        let mut queues: Vec<VecDeque<PendingRow>> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for row in rows {
            let slot = *index.entry(row.aggregate_id.clone()).or_insert_with(|| {
                queues.push(VecDeque::new());
                queues.len() - 1
            });
            queues[slot].push_back(row);
        }
        let mut published = Vec::new();
        let mut failed = Vec::new();
        loop {
            let wave: Vec<(usize, PendingRow)> = queues
                .iter_mut()
                .enumerate()
                .filter_map(|(slot, queue)| queue.pop_front().map(|row| (slot, row)))
                .collect();
            if wave.is_empty() {
                break;
            }
            let mut acks = Vec::with_capacity(wave.len());
            for (slot, row) in wave {
                let outcome = self.send(&row).await;
                acks.push((slot, row.id, outcome));
            }
            for (slot, id, outcome) in acks {
                let result = match outcome {
                    Ok((ack, span)) => ack
                        .into_future()
                        .instrument(span)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Err(error) => Err(error),
                };
                match result {
                    Ok(()) => published.push(id),
                    Err(error) => {
                        failed.push((id, error));
                        queues[slot].clear();
                    }
                }
            }
        }
        (published, failed)
    }

    /// Sends one row; the returned future resolves with the publish ack.
    async fn send(
        &self,
        row: &PendingRow,
    ) -> Result<(jetstream::context::PublishAckFuture, tracing::Span), String> {
        let span = tracing::info_span!(
            "publish",
            otel.name = format!("publish {}", row.subject),
            otel.kind = "producer",
            messaging.system = "nats",
            messaging.operation.type = "send",
            messaging.destination.name = %row.subject,
            messaging.message.id = %row.event_id,
        );
        let _ = span.set_parent(trace_context::context_from_carrier(&row.carrier.0));
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(MSG_ID_HEADER, row.event_id.to_string().as_str());
        trace_context::inject_into_nats(&span.context(), &mut headers);
        self.jetstream
            .publish_with_headers(row.subject.clone(), headers, row.payload.clone().into())
            .instrument(span.clone())
            .await
            .map(|ack| (ack, span))
            .map_err(|e| e.to_string())
    }
}
