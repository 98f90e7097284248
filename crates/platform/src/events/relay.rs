//! The outbox relay: publishes committed outbox rows to JetStream with `Nats-Msg-Id` = event id,
//! waits for each publish ack before moving a row to the sent log (`outbox_sent`, pruned by
//! `maintenance`), so the outbox holds only what is pending.
//!
//! Order per aggregate holds with any number of relays: a batch is claimed with
//! `FOR UPDATE SKIP LOCKED` plus a transaction-scoped advisory lock per aggregate, so one
//! aggregate's pending rows are only ever in one relay's hands; inside a batch, rows are published
//! in waves — at most one row per aggregate in flight — and an aggregate whose publish failed
//! publishes nothing more until the next round. Woken by LISTEN/NOTIFY, and polls as well because
//! notifications are lost while the listener reconnects.
//!
//! While a backlog lasts, one relay runs several workers, each claiming its own batches, so one
//! batch's publish acks overlap the next batch's claim and mark-sent writes. The claim walks the primary key in order
//! (the plan is pinned: a bitmap scan and sort would try the advisory lock of every pending row),
//! and its transaction commits without waiting for its WAL flush: a move lost in a database crash
//! only republishes rows with their original `Nats-Msg-Id`, which the stream's duplicate window
//! and the consumers' inbox absorb.
//!
//! Every moved row leaves a dead tuple the next claim's index walk must step over; the relay
//! vacuums its outbox after every [`RelayConfig::vacuum_every`] moved rows, so claims stay as
//! cheap after a million events as after the first, however far behind autovacuum is.

use crate::{
    events::{MSG_ID_HEADER, outbox::NOTIFY_CHANNEL},
    shutdown::Shutdown,
    trace_context,
    wake::Wakeup,
};
use async_nats::jetstream;
use sqlx::PgPool;
use std::{
    collections::VecDeque,
    future::IntoFuture,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::sync::Notify;
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
    /// Workers claiming and publishing batches side by side.
    pub workers: usize,
    /// Rows moved to the sent log between two vacuums of the outbox.
    pub vacuum_every: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
            workers: 2,
            vacuum_every: 10_000,
        }
    }
}

/// Opens a claim: the ordered primary-key walk, and a commit that does not wait for the flush.
const CLAIM_TRANSACTION: &str = "BEGIN; SET LOCAL enable_bitmapscan = off; \
     SET LOCAL enable_sort = off; SET LOCAL synchronous_commit = off";

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
    moved_since_vacuum: Arc<AtomicU64>,
}

impl Relay {
    /// A relay over `pool`'s outbox.
    pub fn new(pool: PgPool, jetstream: jetstream::Context, config: RelayConfig) -> Self {
        Self {
            pool,
            jetstream,
            config,
            moved_since_vacuum: Arc::default(),
        }
    }

    /// Runs the configured number of workers until `shutdown`: a lead that listens and polls,
    /// and helpers it calls in while a backlog lasts (one wake-up costs one claim, not one per
    /// worker).
    pub async fn run(self, shutdown: Shutdown) {
        let backlog = Notify::new();
        let helpers = (1..self.config.workers.max(1)).map(|_| self.help(&shutdown, &backlog));
        futures::future::join(
            self.lead(&shutdown, &backlog),
            futures::future::join_all(helpers),
        )
        .await;
        tracing::info!("outbox relay stopped");
    }

    /// Publishes whatever is pending, calling the helpers in while batches come back full; then
    /// waits for a notification or the poll interval (longer after failures).
    async fn lead(&self, shutdown: &Shutdown, backlog: &Notify) {
        let mut wakeup = Wakeup::listen(&self.pool, NOTIFY_CHANNEL).await;
        let mut failures = 0u32;
        while !shutdown.is_triggered() {
            match self.publish_batch().await {
                Ok(published) if self.is_full(published) => {
                    failures = 0;
                    backlog.notify_waiters();
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
    }

    /// Publishes batches beside the lead from its call until a batch comes back short.
    async fn help(&self, shutdown: &Shutdown, backlog: &Notify) {
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = backlog.notified() => {}
            }
            while !shutdown.is_triggered() {
                match self.publish_batch().await {
                    Ok(published) if self.is_full(published) => {}
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(error = format!("{error:#}"), "outbox relay round failed");
                        break;
                    }
                }
            }
        }
    }

    /// Publishes everything pending with every worker side by side, as [`Relay::run`] does
    /// during a backlog; returns how many rows were published. A worker stops at its first empty
    /// claim, so the last one stops only when nothing is left.
    pub async fn drain(&self) -> anyhow::Result<usize> {
        let worker = || async {
            let mut total = 0;
            loop {
                match self.publish_batch().await? {
                    0 => return anyhow::Ok(total),
                    published => total += published,
                }
            }
        };
        let totals =
            futures::future::try_join_all((0..self.config.workers.max(1)).map(|_| worker()))
                .await?;
        Ok(totals.into_iter().sum())
    }

    fn is_full(&self, published: usize) -> bool {
        i64::try_from(published).unwrap_or(i64::MAX) >= self.config.batch_size
    }

    /// Claims and publishes one batch; returns how many rows were published.
    pub async fn publish_batch(&self) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin_with(CLAIM_TRANSACTION).await?;
        let rows: Vec<PendingRow> = sqlx::query_as(
            "SELECT id, event_id, subject, aggregate_id, payload, trace_carrier
               FROM outbox
              WHERE pg_try_advisory_xact_lock(hashtextextended(aggregate_id, 7301))
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
            sqlx::query(
                "WITH sent AS (DELETE FROM outbox WHERE id = ANY($1) RETURNING *)
                 INSERT INTO outbox_sent (id, event_id, subject, aggregate_id, aggregate_version,
                     payload, trace_carrier, created_at, published_at, attempts)
                 SELECT id, event_id, subject, aggregate_id, aggregate_version, payload,
                     trace_carrier, created_at, now(), attempts
                   FROM sent",
            )
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
        self.vacuum_when_due(published.len()).await;
        if let Some((_, error)) = failed.first() {
            anyhow::bail!("{} outbox rows not published: {error}", failed.len());
        }
        Ok(published.len())
    }

    /// Counts `moved` rows and vacuums the outbox once `vacuum_every` have been moved (skipped
    /// when another relay is vacuuming it). Without truncation: truncating takes an exclusive
    /// lock that would hold up every transaction appending an event.
    async fn vacuum_when_due(&self, moved: usize) {
        let moved = u64::try_from(moved).unwrap_or(u64::MAX);
        let total = self.moved_since_vacuum.fetch_add(moved, Ordering::Relaxed) + moved;
        if total < self.config.vacuum_every {
            return;
        }
        self.moved_since_vacuum.store(0, Ordering::Relaxed);
        if let Err(error) = sqlx::raw_sql("VACUUM (SKIP_LOCKED, TRUNCATE false) outbox")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %error, "outbox vacuum failed");
        }
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
