//! Idempotent JetStream consumers: a durable pull consumer named `<service>-<purpose>` with
//! explicit acks. For each message the handler's database effect and an inbox row keyed by the
//! event id commit in one transaction; the ack (a double ack, confirmed by the server) follows
//! the commit, so a redelivered event finds its inbox row and is acked without effect.
//!
//! A failing event is retried with backoff; after the configured attempts it goes to the
//! `dead_letters` table (with a log line and a counter) and the consumer moves on. Database
//! outages do not count against an event: nothing can be recorded then, so it is retried later.
//! A consumer whose database has no checkpoint row (a fresh database) re-creates its durable
//! consumer from the start of the stream, rebuilding its read model by replay.

use crate::{
    events::{MSG_ID_HEADER, connection::Connection},
    metrics,
    shutdown::Shutdown,
    trace_context,
};
use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
};
use futures::{StreamExt, future::BoxFuture};
use sqlx::{PgConnection, PgPool};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::sync::watch;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

/// One event handed to a handler.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    /// The event id (the message's `Nats-Msg-Id`).
    pub event_id: Uuid,
    /// The subject it was published on.
    pub subject: String,
    /// The protobuf payload.
    pub payload: bytes::Bytes,
}

/// What a consumer does with each event, inside the transaction that also records it in the inbox.
pub trait Handler: Send + Sync + 'static {
    /// Applies `event`; an error rolls the transaction back and the event is retried.
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a IncomingEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// A consumer's identity and retry policy.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Durable name, `<consumer service>-<purpose>`.
    pub name: String,
    /// The stream it reads.
    pub stream: String,
    /// The subjects it receives, e.g. `clinicnet.directory.>`.
    pub filter_subject: String,
    /// Deliveries before an event is dead-lettered.
    pub max_attempts: u32,
    /// Delay before redelivery, by attempt (the last one repeats).
    pub backoff: Vec<Duration>,
    /// How long the server waits for an ack before redelivering.
    pub ack_wait: Duration,
}

impl ConsumerSpec {
    /// A spec with the default policy: 5 attempts, backoff 0.5 s doubling to 8 s, 10 s ack wait.
    pub fn new(name: &str, stream: &str, filter_subject: &str) -> Self {
        Self {
            name: name.to_owned(),
            stream: stream.to_owned(),
            filter_subject: filter_subject.to_owned(),
            max_attempts: 5,
            backoff: [500, 1_000, 2_000, 4_000, 8_000]
                .into_iter()
                .map(Duration::from_millis)
                .collect(),
            ack_wait: Duration::from_secs(10),
        }
    }

    fn delay_after(&self, attempt: u64) -> Duration {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.backoff
            .get(index)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }
}

/// Counters of one consumer, read by the operations API.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Events applied.
    pub applied: AtomicU64,
    /// Redeliveries recognised by the inbox and acked without effect.
    pub duplicates: AtomicU64,
    /// Events moved to the dead-letter table.
    pub dead_lettered: AtomicU64,
}

/// A running consumer: spec, handler and counters.
#[derive(Clone)]
pub struct Consumer {
    /// Identity and policy.
    pub spec: ConsumerSpec,
    /// What it does.
    pub handler: Arc<dyn Handler>,
    /// Counters.
    pub stats: Arc<ConsumerStats>,
    pool: PgPool,
    jetstream: jetstream::Context,
    disconnects: watch::Receiver<u64>,
}

enum Outcome {
    Applied,
    Duplicate,
}

/// Messages applied in one transaction at most.
const MAX_BATCH: usize = 64;

/// A delivered message, decoded, with its processing span.
struct Received {
    message: jetstream::Message,
    event: IncomingEvent,
    delivered: u64,
    sequence: u64,
    carrier: Vec<(String, String)>,
    span: tracing::Span,
}

impl Received {
    /// Decodes a delivery; a message without a valid event id is terminated and skipped.
    fn from_message(message: jetstream::Message, consumer: &str) -> Option<Received> {
        let headers = message.headers.clone().unwrap_or_default();
        let span = tracing::info_span!(
            "process",
            otel.name = format!("process {}", message.subject),
            otel.kind = "consumer",
            messaging.system = "nats",
            messaging.operation.type = "process",
            messaging.destination.name = %message.subject,
            messaging.consumer.group.name = %consumer,
            messaging.message.id = tracing::field::Empty,
        );
        let _ = span.set_parent(trace_context::extract_from_nats(&headers));
        let (delivered, sequence) = match message.info() {
            Ok(info) => (info.delivered.max(1) as u64, info.stream_sequence),
            Err(_) => (1, 0),
        };
        let Some(event_id) = headers
            .get(MSG_ID_HEADER)
            .and_then(|v| Uuid::parse_str(v.as_str()).ok())
        else {
            tracing::error!(parent: &span, consumer, subject = %message.subject, sequence, "message without a valid event id; terminated");
            tokio::spawn(async move {
                let _ = message.ack_with(AckKind::Term).await;
            });
            return None;
        };
        span.record("messaging.message.id", tracing::field::display(event_id));
        let carrier = ["traceparent", "tracestate"]
            .into_iter()
            .filter_map(|k| headers.get(k).map(|v| (k.to_owned(), v.to_string())))
            .collect();
        let event = IncomingEvent {
            event_id,
            subject: message.subject.to_string(),
            payload: message.payload.clone(),
        };
        Some(Received {
            message,
            event,
            delivered,
            sequence,
            carrier,
            span,
        })
    }

    /// Acknowledges, waiting for the server's confirmation (a lost ack means a redelivery,
    /// which the inbox recognises).
    async fn ack(&self) {
        if let Err(error) = self.message.double_ack().await {
            tracing::warn!(parent: &self.span, event_id = %self.event.event_id, error = %error, "ack not confirmed; the redelivery will be recognised by the inbox");
        }
    }

    /// Asks for redelivery after `delay`.
    async fn nak(&self, delay: Duration) {
        let _ = self.message.ack_with(AckKind::Nak(Some(delay))).await;
    }
}

impl Consumer {
    /// A consumer of `spec` applying `handler` to `pool`.
    pub fn new(
        spec: ConsumerSpec,
        handler: Arc<dyn Handler>,
        pool: PgPool,
        connection: &Connection,
    ) -> Self {
        Self {
            spec,
            handler,
            stats: Arc::default(),
            pool,
            jetstream: jetstream::new(connection.client.clone()),
            disconnects: connection.disconnects.clone(),
        }
    }

    /// Consumes until `shutdown`, re-creating the pull stream whenever it fails (server restart,
    /// reconnect, missed heartbeats).
    pub async fn run(self, shutdown: Shutdown) {
        let mut failures = 0u32;
        while !shutdown.is_triggered() {
            let result = tokio::select! {
                _ = shutdown.wait() => break,
                result = self.consume_until_error() => result,
            };
            if let Err(error) = result {
                failures = failures.saturating_add(1);
                tracing::warn!(consumer = %self.spec.name, error = format!("{error:#}"), "consumer interrupted; reconnecting");
            }
            let wait = Duration::from_millis(200 * 2u64.pow(failures.min(5)));
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!(consumer = %self.spec.name, "consumer stopped");
    }

    async fn consume_until_error(&self) -> anyhow::Result<()> {
        let mut consumer = self.durable_consumer().await?;
        // Deliveries lost in transit (a crash, a reconnect) come back only after the ack wait,
        // and then ahead of new messages: pulling before that would apply later events first.
        if consumer.info().await?.num_ack_pending > 0 {
            tracing::info!(consumer = %self.spec.name, "unacknowledged deliveries outstanding; waiting for their redelivery");
            tokio::time::sleep(self.spec.ack_wait + Duration::from_secs(1)).await;
        }
        let mut disconnects = self.disconnects.clone();
        disconnects.mark_unchanged();
        let mut batches = consumer
            .stream()
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await?
            .ready_chunks(MAX_BATCH);
        loop {
            tokio::select! {
                biased;
                _ = disconnects.changed() => anyhow::bail!("NATS connection lost"),
                next = batches.next() => match next {
                    Some(batch) => {
                        let mut messages = Vec::with_capacity(batch.len());
                        let mut broken = None;
                        for message in batch {
                            match message {
                                Ok(message) => messages.push(message),
                                Err(error) => {
                                    broken = Some(error);
                                    break;
                                }
                            }
                        }
                        self.process_batch(messages).await?;
                        if let Some(error) = broken {
                            return Err(anyhow::anyhow!(error));
                        }
                    }
                    None => anyhow::bail!("message stream ended"),
                },
            }
        }
    }

    /// The durable consumer, created if missing; re-created from the stream's start when this
    /// database has never consumed (replay into a fresh read model).
    async fn durable_consumer(&self) -> anyhow::Result<PullConsumer> {
        let stream = self.jetstream.get_stream(&self.spec.stream).await?;
        let fresh = sqlx::query(
            "INSERT INTO consumer_checkpoints (consumer) VALUES ($1) ON CONFLICT DO NOTHING",
        )
        .bind(&self.spec.name)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if fresh {
            match stream.delete_consumer(&self.spec.name).await {
                Ok(_) => {
                    tracing::info!(consumer = %self.spec.name, "fresh database: replaying the stream from the start")
                }
                Err(error) => {
                    tracing::debug!(consumer = %self.spec.name, error = %error, "no durable consumer to reset")
                }
            }
        }
        let config = pull::Config {
            durable_name: Some(self.spec.name.clone()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.spec.ack_wait,
            filter_subject: self.spec.filter_subject.clone(),
            max_ack_pending: 1_000,
            ..Default::default()
        };
        Ok(stream
            .get_or_create_consumer(&self.spec.name, config)
            .await?)
    }

    /// Applies a batch of messages in one transaction — each event under its own savepoint, so
    /// one failing event does not undo the others — then acks what took effect and retries or
    /// dead-letters what failed.
    ///
    /// When the database itself fails, the batch is handed back and the error returned: the pull
    /// stream must be dropped, or the messages behind the batch (later events of the same
    /// aggregates) would be applied before the batch's redelivery.
    async fn process_batch(&self, messages: Vec<jetstream::Message>) -> anyhow::Result<()> {
        let mut received = Vec::with_capacity(messages.len());
        for message in messages {
            match Received::from_message(message, &self.spec.name) {
                Some(event) => received.push(event),
                None => continue,
            }
        }
        if received.is_empty() {
            return Ok(());
        }
        let outcomes = match self.apply_all(&received).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                for event in &received {
                    event.nak(self.spec.delay_after(event.delivered)).await;
                }
                return Err(error.context("database unavailable; the batch will be redelivered"));
            }
        };
        let mut acks = Vec::new();
        let metrics = metrics::get();
        for (event, (outcome, took)) in received.iter().zip(outcomes) {
            match outcome {
                Ok(Outcome::Applied) => {
                    self.stats.applied.fetch_add(1, Ordering::Relaxed);
                    metrics.processed(&self.spec.name, "applied", took);
                    acks.push(event.ack());
                }
                Ok(Outcome::Duplicate) => {
                    self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    metrics.processed(&self.spec.name, "duplicate", took);
                    acks.push(event.ack());
                }
                Err(error) => {
                    metrics.processed(&self.spec.name, "failed", took);
                    self.failed(event, error).await;
                }
            }
        }
        futures::future::join_all(acks).await;
        Ok(())
    }

    /// One transaction for the batch; the outer error means the database itself failed.
    async fn apply_all(
        &self,
        received: &[Received],
    ) -> anyhow::Result<Vec<(anyhow::Result<Outcome>, Duration)>> {
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(received.len());
        for event in received {
            sqlx::query("SAVEPOINT event").execute(&mut *tx).await?;
            let started = std::time::Instant::now();
            let outcome = self
                .apply_in(&mut tx, &event.event)
                .instrument(event.span.clone())
                .await;
            let release = match &outcome {
                Err(error) if is_database_outage(error) => return outcome.map(|_| Vec::new()),
                Err(_) => "ROLLBACK TO SAVEPOINT event",
                Ok(_) => "RELEASE SAVEPOINT event",
            };
            sqlx::query(release).execute(&mut *tx).await?;
            outcomes.push((outcome, started.elapsed()));
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Records the event in the inbox and applies it, unless the inbox already has it.
    async fn apply_in(
        &self,
        conn: &mut PgConnection,
        event: &IncomingEvent,
    ) -> anyhow::Result<Outcome> {
        let fresh = sqlx::query(
            "INSERT INTO inbox (consumer, event_id, subject) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(&self.spec.name)
        .bind(event.event_id)
        .bind(&event.subject)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        if !fresh {
            return Ok(Outcome::Duplicate);
        }
        self.handler.handle(conn, event).await?;
        Ok(Outcome::Applied)
    }

    /// A failed event: retried with backoff, or dead-lettered after the configured attempts.
    async fn failed(&self, event: &Received, error: anyhow::Error) {
        let _entered = event.span.enter();
        let event_id = event.event.event_id;
        if event.delivered < u64::from(self.spec.max_attempts) {
            tracing::warn!(consumer = %self.spec.name, %event_id, attempt = event.delivered, error = format!("{error:#}"), "event failed; will retry");
            event.nak(self.spec.delay_after(event.delivered)).await;
            return;
        }
        match self.dead_letter(event, &error).await {
            Ok(()) => {
                self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                metrics::get().dead_lettered(&self.spec.name);
                tracing::error!(consumer = %self.spec.name, %event_id, subject = %event.event.subject, attempts = event.delivered, error = format!("{error:#}"), "event dead-lettered");
                event.ack().await;
            }
            Err(record_error) => {
                tracing::warn!(consumer = %self.spec.name, %event_id, error = %record_error, "could not record dead letter; retrying later");
                event.nak(self.spec.delay_after(event.delivered)).await;
            }
        }
    }

    async fn apply(&self, event: &IncomingEvent) -> anyhow::Result<Outcome> {
        let mut tx = self.pool.begin().await?;
        let outcome = self.apply_in(&mut tx, event).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn dead_letter(
        &self,
        event: &Received,
        error: &anyhow::Error,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO dead_letters (consumer, event_id, subject, stream_sequence, payload, trace_carrier, attempts, last_error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (consumer, event_id) DO UPDATE
                SET attempts = dead_letters.attempts + EXCLUDED.attempts, last_error = EXCLUDED.last_error,
                    last_failed_at = now(), redriven_at = NULL",
        )
        .bind(&self.spec.name)
        .bind(event.event.event_id)
        .bind(&event.event.subject)
        .bind(i64::try_from(event.sequence).unwrap_or(i64::MAX))
        .bind(event.event.payload.as_ref())
        .bind(sqlx::types::Json(&event.carrier))
        .bind(i32::try_from(event.delivered).unwrap_or(i32::MAX))
        .bind(format!("{error:#}"))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Applies a dead-lettered event again (after a fix) through the same inbox, so it takes
    /// effect at most once; marks it re-driven. Returns false when the inbox already had it.
    pub async fn redrive(&self, event_id: Uuid) -> anyhow::Result<Option<bool>> {
        let row: Option<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT subject, payload FROM dead_letters WHERE consumer = $1 AND event_id = $2",
        )
        .bind(&self.spec.name)
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((subject, payload)) = row else {
            return Ok(None);
        };
        let event = IncomingEvent {
            event_id,
            subject,
            payload: payload.into(),
        };
        let applied = matches!(self.apply(&event).await?, Outcome::Applied);
        sqlx::query(
            "UPDATE dead_letters SET redriven_at = now() WHERE consumer = $1 AND event_id = $2",
        )
        .bind(&self.spec.name)
        .bind(event_id)
        .execute(&self.pool)
        .await?;
        Ok(Some(applied))
    }

    /// Messages the server still has to deliver to this consumer, those awaiting an ack, and
    /// redeliveries. A stream nobody has published to yet, or a consumer not created yet, has
    /// nothing pending.
    pub async fn lag(&self) -> anyhow::Result<(u64, u64, u64)> {
        use async_nats::jetstream::{
            ErrorCode,
            stream::{ConsumerError, ConsumerErrorKind},
        };
        let found: Result<PullConsumer, ConsumerError> = self
            .jetstream
            .get_consumer_from_stream(&self.spec.name, &self.spec.stream)
            .await;
        let mut consumer = match found {
            Ok(consumer) => consumer,
            Err(error) => match error.kind() {
                ConsumerErrorKind::JetStream(cause)
                    if [ErrorCode::STREAM_NOT_FOUND, ErrorCode::CONSUMER_NOT_FOUND]
                        .contains(&cause.error_code()) =>
                {
                    return Ok((0, 0, 0));
                }
                _ => return Err(error.into()),
            },
        };
        let info = consumer.info().await?;
        Ok((
            info.num_pending,
            u64::try_from(info.num_ack_pending).unwrap_or(0),
            u64::try_from(info.num_redelivered).unwrap_or(0),
        ))
    }
}

fn is_database_outage(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| match cause.downcast_ref::<sqlx::Error>() {
            Some(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed,
            ) => true,
            // Connection exceptions, and a server shutting down, crashed or still starting up.
            Some(sqlx::Error::Database(error)) => error.code().is_some_and(|code| {
                code.starts_with("08") || ["57P01", "57P02", "57P03"].contains(&code.as_ref())
            }),
            _ => false,
        })
}
