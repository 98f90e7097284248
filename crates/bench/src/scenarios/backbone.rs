//! The event backbone: outbox throughput (commit → publish ack) and commit → consumer-effect
//! latency at 1,000 events/s, next to plain JetStream publish → pull consume of the same payloads
//! without any database.

use crate::{
    measure::{Latencies, Throughput},
    report::{Line, Plot, Row, ScenarioReport},
    scenarios::Scale,
};
use async_nats::jetstream::{self, consumer::pull};
use clinicnet_proto::events::v1::EventMetadata;
use futures::{StreamExt, future::BoxFuture};
use platform::{
    events::{
        self, MSG_ID_HEADER,
        connection::{self, Connection},
        consumer::{Consumer, ConsumerSpec, Handler, IncomingEvent},
        outbox,
        relay::{Relay, RelayConfig},
        streams,
    },
    shutdown,
};
use sqlx::{PgConnection, PgPool};
use std::{
    collections::HashMap,
    future::IntoFuture,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use system_tests::{PrivateNats, TestDatabase, probe};

const RATE: u64 = 1_000;
const SUBJECT: &str = "clinicnet.bench.thing.changed";
/// Aggregates the events belong to: like appointments, each changes several times, and one
/// batch of pending events rarely holds two changes of the same one.
const AGGREGATES: usize = 5_000;

fn event(aggregate: usize, version: u64) -> EventMetadata {
    events::metadata(
        "bench",
        "thing",
        &format!("a{}", aggregate % AGGREGATES),
        version,
        "",
    )
}

/// Send instants by event id, and what the consumer side observed.
#[derive(Default)]
struct Clock {
    sent: Mutex<HashMap<String, Instant>>,
    latencies: Mutex<Latencies>,
    throughput: Mutex<Option<Throughput>>,
}

impl Clock {
    fn sent(&self, id: String) {
        self.sent.lock().expect("clock").insert(id, Instant::now());
    }
    fn received(&self, id: &str) {
        let now = Instant::now();
        if let Some(sent) = self.sent.lock().expect("clock").remove(id) {
            self.latencies.lock().expect("clock").record(now - sent);
            if let Some(throughput) = self.throughput.lock().expect("clock").as_mut() {
                throughput.record(now);
            }
        }
    }
    fn pending(&self) -> usize {
        self.sent.lock().expect("clock").len()
    }
}

/// A consumer effect that records when each event arrived.
struct Timed(Arc<Clock>);

impl Handler for Timed {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a IncomingEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            probe::ApplyEffects.handle(conn, event).await?;
            self.0.received(&event.event_id.to_string());
            Ok(())
        })
    }
}

/// Publishes with at most this many acks outstanding (the client bounds in-flight acks itself).
const PUBLISH_WINDOW: usize = 256;

async fn raw_publish_throughput(
    jetstream: &jetstream::Context,
    count: usize,
) -> anyhow::Result<f64> {
    let payloads: Vec<EventMetadata> = (0..count).map(|i| event(i, 1)).collect();
    let start = Instant::now();
    let mut acks = futures::stream::FuturesUnordered::new();
    for payload in &payloads {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(MSG_ID_HEADER, payload.event_id.as_str());
        let ack = jetstream
            .publish_with_headers(
                SUBJECT,
                headers,
                prost::Message::encode_to_vec(payload).into(),
            )
            .await?;
        acks.push(ack.into_future());
        if acks.len() >= PUBLISH_WINDOW
            && let Some(ack) = acks.next().await
        {
            ack?;
        }
    }
    while let Some(ack) = acks.next().await {
        ack?;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

async fn outbox_throughput(
    pool: &PgPool,
    jetstream: &jetstream::Context,
    count: usize,
) -> anyhow::Result<f64> {
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        let mut tx = pool.begin().await?;
        for i in chunk {
            let payload = event(*i, 1);
            outbox::append(&mut tx, SUBJECT, &payload, &payload).await?;
        }
        tx.commit().await?;
    }
    let relay = Relay::new(pool.clone(), jetstream.clone(), RelayConfig::default());
    let start = Instant::now();
    let published = relay.drain().await?;
    anyhow::ensure!(
        published == count,
        "{published} of {count} events published"
    );
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// Calls `send(i)` RATE times a second for `seconds`, each in its own task.
async fn at_fixed_rate<F, Fut>(seconds: u64, send: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for i in 0..(seconds * RATE) as usize {
        ticker.tick().await;
        tasks.push(tokio::spawn(send(i)));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

async fn drain(clock: &Clock) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while clock.pending() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn raw_latency(jetstream: &jetstream::Context, seconds: u64) -> anyhow::Result<Arc<Clock>> {
    let clock = Arc::new(Clock::default());
    *clock.throughput.lock().expect("clock") =
        Some(Throughput::starting_now(Duration::from_millis(250)));
    let stream = jetstream.get_stream("BENCH").await?;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("bench-raw".into()),
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::New,
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let receiver_clock = clock.clone();
    let receiver = tokio::spawn(async move {
        let mut messages = consumer.messages().await?;
        while let Some(message) = messages.next().await {
            let message = message?;
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get(MSG_ID_HEADER))
                .map(|v| v.to_string());
            message
                .double_ack()
                .await
                .map_err(|e| anyhow::anyhow!("ack: {e}"))?;
            if let Some(id) = id {
                receiver_clock.received(&id);
            }
        }
        anyhow::Ok(())
    });
    let sender_clock = clock.clone();
    let js = jetstream.clone();
    at_fixed_rate(seconds, move |i| {
        let js = js.clone();
        let clock = sender_clock.clone();
        async move {
            let payload = event(i, 2);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(MSG_ID_HEADER, payload.event_id.as_str());
            clock.sent(payload.event_id.clone());
            js.publish_with_headers(
                SUBJECT,
                headers,
                prost::Message::encode_to_vec(&payload).into(),
            )
            .await?
            .into_future()
            .await?;
            Ok(())
        }
    })
    .await?;
    drain(&clock).await;
    receiver.abort();
    Ok(clock)
}

async fn outbox_latency(
    producer: &PgPool,
    consumer_pool: &PgPool,
    connection: &Connection,
    seconds: u64,
) -> anyhow::Result<Arc<Clock>> {
    let clock = Arc::new(Clock::default());
    *clock.throughput.lock().expect("clock") =
        Some(Throughput::starting_now(Duration::from_millis(250)));
    let (trigger, stop) = shutdown::channel();
    let jetstream = jetstream::new(connection.client.clone());
    let relay = tokio::spawn(
        Relay::new(producer.clone(), jetstream, RelayConfig::default()).run(stop.clone()),
    );
    let spec = ConsumerSpec::new("bench-outbox", "BENCH", "clinicnet.bench.>");
    let consumer = Consumer::new(
        spec,
        Arc::new(Timed(clock.clone())),
        consumer_pool.clone(),
        connection,
    );
    // Start from the end of what earlier runs left in the stream.
    let consumer_task = tokio::spawn(consumer.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pool = producer.clone();
    let sender_clock = clock.clone();
    at_fixed_rate(seconds, move |i| {
        let pool = pool.clone();
        let clock = sender_clock.clone();
        async move {
            let payload = event(i, 3);
            let mut tx = pool.begin().await?;
            outbox::append(&mut tx, SUBJECT, &payload, &payload).await?;
            tx.commit().await?;
            clock.sent(payload.event_id.clone());
            Ok(())
        }
    })
    .await?;
    drain(&clock).await;
    trigger.trigger();
    relay.await?;
    consumer_task.await?;
    Ok(clock)
}

/// Runs the scenario.
pub async fn run(scale: Scale) -> anyhow::Result<ScenarioReport> {
    let nats = PrivateNats::start().await?;
    let producer = TestDatabase::try_create("bench_producer").await?;
    let consumer_db = TestDatabase::try_create("bench_consumer").await?;
    probe::migrate(producer.pool()).await?;
    probe::migrate(consumer_db.pool()).await?;
    let (_trigger, stop) = shutdown::channel();
    let connection = connection::connect("bench", &nats.url(), &stop).await?;
    let jetstream = jetstream::new(connection.client.clone());
    streams::ensure_stream(&jetstream, "bench", 1).await?;

    let raw_throughput = raw_publish_throughput(&jetstream, scale.throughput_events).await?;
    let outbox_throughput =
        outbox_throughput(producer.pool(), &jetstream, scale.throughput_events).await?;
    let raw = raw_latency(&jetstream, scale.rate_seconds).await?;
    // The consumer of the outbox run must not see the throughput runs' events first.
    let stream = jetstream.get_stream("BENCH").await?;
    stream.purge().await?;
    let outbox = outbox_latency(
        producer.pool(),
        consumer_db.pool(),
        &connection,
        scale.rate_seconds,
    )
    .await?;

    let raw_latencies = raw.latencies.lock().expect("clock").clone();
    let outbox_latencies = outbox.latencies.lock().expect("clock").clone();
    let p99 = outbox_latencies.millis_at(0.99);
    let report = ScenarioReport {
        name: "Event backbone".into(),
        description: format!(
            "Outbox relay throughput (commit → publish ack) over {} events, and commit → consumer effect at {RATE} events/s for {} s, next to plain JetStream publish → pull consume of the same payloads. {} of {} events measured at the fixed rate.",
            scale.throughput_events,
            scale.rate_seconds,
            outbox_latencies.count(),
            scale.rate_seconds * RATE
        ),
        rows: vec![
            Row {
                metric: "outbox throughput".into(),
                value: outbox_throughput,
                baseline: Some(raw_throughput),
                unit: "events/s",
                goal: "≥ 0.5× raw".into(),
                met: Some(outbox_throughput >= 0.5 * raw_throughput),
            },
            Row {
                metric: format!("p50 latency at {RATE}/s"),
                value: outbox_latencies.millis_at(0.5),
                baseline: Some(raw_latencies.millis_at(0.5)),
                unit: "ms",
                goal: "–".into(),
                met: None,
            },
            Row {
                metric: format!("p99 latency at {RATE}/s"),
                value: p99,
                baseline: Some(raw_latencies.millis_at(0.99)),
                unit: "ms",
                goal: "< 25 ms".into(),
                met: Some(p99 < 25.0),
            },
        ],
        plots: vec![
            Plot {
                file: "backbone-latency".into(),
                title: format!("commit → effect latency at {RATE} events/s"),
                x_label: "percentile",
                y_label: "ms",
                lines: vec![
                    Line {
                        label: "outbox → consumer".into(),
                        points: outbox_latencies.distribution(),
                    },
                    Line {
                        label: "raw JetStream".into(),
                        points: raw_latencies.distribution(),
                    },
                ],
            },
            Plot {
                file: "backbone-throughput".into(),
                title: format!("events applied per second at {RATE} events/s offered"),
                x_label: "seconds",
                y_label: "events/s",
                lines: vec![
                    Line {
                        label: "outbox → consumer".into(),
                        points: outbox
                            .throughput
                            .lock()
                            .expect("clock")
                            .as_ref()
                            .map(Throughput::series)
                            .unwrap_or_default(),
                    },
                    Line {
                        label: "raw JetStream".into(),
                        points: raw
                            .throughput
                            .lock()
                            .expect("clock")
                            .as_ref()
                            .map(Throughput::series)
                            .unwrap_or_default(),
                    },
                ],
            },
        ],
    };
    producer.drop_db().await;
    consumer_db.drop_db().await;
    Ok(report)
}
