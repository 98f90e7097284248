//! The event backbone in one process against real PostgreSQL and a private nats-server: what the
//! installed server must support, the outbox's atomicity, idempotent redelivery, dead letters and
//! re-drive, and replay into a fresh database.

use clinicnet_proto::events::v1::EventMetadata;
use futures::future::BoxFuture;
use platform::{
    events::{
        self, MSG_ID_HEADER,
        connection::{self, Connection},
        consumer::{Consumer, ConsumerSpec, Handler, IncomingEvent},
        outbox,
        relay::{Relay, RelayConfig},
        streams,
    },
    shutdown::{self, Shutdown, ShutdownTrigger},
};
use sqlx::{PgConnection, PgPool};
use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use system_tests::{
    PrivateNats, TestDatabase,
    probe::{self, ApplyEffects},
};
use uuid::Uuid;

const SERVICE: &str = "probe";

struct Backbone {
    _nats: PrivateNats,
    producer: TestDatabase,
    connection: Connection,
    jetstream: async_nats::jetstream::Context,
    trigger: ShutdownTrigger,
    shutdown: Shutdown,
}

impl Backbone {
    async fn start() -> Backbone {
        let nats = PrivateNats::start().await.unwrap();
        let producer = TestDatabase::create("producer").await;
        probe::migrate(producer.pool()).await.unwrap();
        let (trigger, shutdown) = shutdown::channel();
        let connection = connection::connect("backbone-test", &nats.url(), &shutdown)
            .await
            .unwrap();
        let jetstream = async_nats::jetstream::new(connection.client.clone());
        streams::ensure_stream(&jetstream, SERVICE, 1)
            .await
            .unwrap();
        Backbone {
            _nats: nats,
            producer,
            connection,
            jetstream,
            trigger,
            shutdown,
        }
    }

    /// Writes one event of `aggregate` at `version` in its own committed transaction.
    async fn write(&self, aggregate: &str, version: u64) -> EventMetadata {
        let mut tx = self.producer.pool().begin().await.unwrap();
        let metadata = events::metadata(SERVICE, "thing", aggregate, version, "");
        outbox::append(
            &mut tx,
            &streams::subject(SERVICE, "thing", "changed"),
            &metadata,
            &metadata,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        metadata
    }

    /// Publishes every pending outbox row.
    async fn publish_all(&self) -> usize {
        Relay::new(
            self.producer.pool().clone(),
            self.jetstream.clone(),
            RelayConfig::default(),
        )
        .drain()
        .await
        .unwrap()
    }

    async fn stream_messages(&self) -> u64 {
        let mut stream = self
            .jetstream
            .get_stream(streams::stream_name(SERVICE))
            .await
            .unwrap();
        stream.info().await.unwrap().state.messages
    }

    fn consumer(&self, name: &str, pool: &PgPool, handler: Arc<dyn Handler>) -> Consumer {
        let mut spec = ConsumerSpec::new(name, &streams::stream_name(SERVICE), "clinicnet.probe.>");
        spec.max_attempts = 3;
        spec.backoff = vec![Duration::from_millis(100)];
        Consumer::new(spec, handler, pool.clone(), &self.connection)
    }
}

async fn consumer_database() -> TestDatabase {
    let database = TestDatabase::create("consumer").await;
    probe::migrate(database.pool()).await.unwrap();
    database
}

async fn effect_ids(pool: &PgPool) -> Vec<Uuid> {
    sqlx::query_as::<_, (Uuid,)>("SELECT event_id FROM effects ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(id,)| id)
        .collect()
}

async fn wait_until<F: AsyncFn() -> bool>(what: &str, timeout: Duration, condition: F) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_installed_nats_server_supports_what_the_backbone_uses() {
    let backbone = Backbone::start().await;
    let version = backbone.connection.client.server_info().version;
    println!("nats-server {version}");
    // Declaring the stream again is a no-op.
    let again = streams::ensure_stream(&backbone.jetstream, SERVICE, 1)
        .await
        .unwrap();
    assert_eq!(again.config.duplicate_window, streams::DUPLICATE_WINDOW);
    assert_eq!(again.config.subjects, vec!["clinicnet.probe.>".to_owned()]);
    // De-duplication by Nats-Msg-Id.
    let metadata = events::metadata(SERVICE, "thing", "dedup", 1, "");
    for expect_duplicate in [false, true] {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(MSG_ID_HEADER, metadata.event_id.as_str());
        let ack = backbone
            .jetstream
            .publish_with_headers(
                "clinicnet.probe.thing.changed",
                headers,
                prost::Message::encode_to_vec(&metadata).into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(ack.duplicate, expect_duplicate);
    }
    assert_eq!(backbone.stream_messages().await, 1);
    // A durable pull consumer with double acks applies it.
    let database = consumer_database().await;
    let consumer = backbone.consumer("probe-features", database.pool(), Arc::new(ApplyEffects));
    let running = tokio::spawn(consumer.clone().run(backbone.shutdown.clone()));
    wait_until(
        "the event is applied",
        Duration::from_secs(20),
        async || effect_ids(database.pool()).await.len() == 1,
    )
    .await;
    backbone.trigger.trigger();
    running.await.unwrap();
    database.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_transaction_publishes_nothing() {
    let backbone = Backbone::start().await;
    let mut tx = backbone.producer.pool().begin().await.unwrap();
    let rolled_back = events::metadata(SERVICE, "thing", "a", 1, "");
    outbox::append(
        &mut tx,
        "clinicnet.probe.thing.changed",
        &rolled_back,
        &rolled_back,
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let committed = backbone.write("a", 1).await;
    assert_eq!(backbone.publish_all().await, 1);
    assert_eq!(backbone.stream_messages().await, 1);
    let stream = backbone.jetstream.get_stream("PROBE").await.unwrap();
    let message = stream.get_raw_message(1).await.unwrap();
    let published = message.headers.get(MSG_ID_HEADER).unwrap().to_string();
    assert_eq!(published, committed.event_id);
}

/// Fails nothing, but holds the first delivery past the ack wait so the server redelivers it.
struct SlowFirstDelivery {
    first: AtomicBool,
}

impl Handler for SlowFirstDelivery {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a IncomingEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            if self.first.swap(false, Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(2_500)).await;
            }
            ApplyEffects.handle(conn, event).await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_redelivered_after_the_ack_wait_has_one_effect() {
    let backbone = Backbone::start().await;
    let database = consumer_database().await;
    let written = backbone.write("a", 1).await;
    backbone.publish_all().await;
    let mut consumer = backbone.consumer(
        "probe-redelivery",
        database.pool(),
        Arc::new(SlowFirstDelivery {
            first: AtomicBool::new(true),
        }),
    );
    consumer.spec.ack_wait = Duration::from_secs(1);
    let stats = consumer.stats.clone();
    let running = tokio::spawn(consumer.run(backbone.shutdown.clone()));
    wait_until(
        "the redelivery is recognised",
        Duration::from_secs(30),
        async || stats.duplicates.load(Ordering::Relaxed) >= 1,
    )
    .await;
    assert_eq!(
        effect_ids(database.pool()).await,
        vec![Uuid::parse_str(&written.event_id).unwrap()]
    );
    backbone.trigger.trigger();
    running.await.unwrap();
    database.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_dead_lettered_and_a_redrive_after_the_fix_applies_it_once() {
    let backbone = Backbone::start().await;
    let database = consumer_database().await;
    let before = backbone.write("a", 1).await;
    let poison = backbone.write("poison-1", 1).await;
    let after = backbone.write("b", 1).await;
    backbone.publish_all().await;
    let consumer = backbone.consumer("probe-poison", database.pool(), Arc::new(ApplyEffects));
    let running = tokio::spawn(consumer.clone().run(backbone.shutdown.clone()));
    wait_until(
        "the poison event is dead-lettered",
        Duration::from_secs(30),
        async || consumer.stats.dead_lettered.load(Ordering::Relaxed) == 1,
    )
    .await;
    wait_until(
        "the events around it are applied",
        Duration::from_secs(30),
        async || effect_ids(database.pool()).await.len() == 2,
    )
    .await;
    let applied: BTreeSet<_> = effect_ids(database.pool()).await.into_iter().collect();
    let expected: BTreeSet<_> = [&before, &after]
        .iter()
        .map(|m| Uuid::parse_str(&m.event_id).unwrap())
        .collect();
    assert_eq!(applied, expected);
    let poison_id = Uuid::parse_str(&poison.event_id).unwrap();
    let (attempts, error): (i32, String) =
        sqlx::query_as("SELECT attempts, last_error FROM dead_letters WHERE event_id = $1")
            .bind(poison_id)
            .fetch_one(database.pool())
            .await
            .unwrap();
    assert_eq!(attempts, 3);
    assert!(error.contains("poison event"), "{error}");

    assert!(
        consumer.redrive(poison_id).await.is_err(),
        "re-drive before the fix must fail"
    );
    sqlx::query("INSERT INTO poison_fixed VALUES ('poison-1')")
        .execute(database.pool())
        .await
        .unwrap();
    assert_eq!(consumer.redrive(poison_id).await.unwrap(), Some(true));
    assert_eq!(consumer.redrive(poison_id).await.unwrap(), Some(false));
    let applied = effect_ids(database.pool()).await;
    assert_eq!(applied.iter().filter(|id| **id == poison_id).count(), 1);
    backbone.trigger.trigger();
    running.await.unwrap();
    database.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_on_an_empty_database_replays_the_stream_into_the_same_read_model() {
    let backbone = Backbone::start().await;
    for version in 1..=10 {
        backbone.write("a", version).await;
        backbone.write("b", version).await;
    }
    backbone.publish_all().await;
    let first = consumer_database().await;
    let consumer = backbone.consumer("probe-replay", first.pool(), Arc::new(ApplyEffects));
    let (stop_first, first_shutdown) = shutdown::channel();
    let running = tokio::spawn(consumer.run(first_shutdown));
    wait_until(
        "the first database has every event",
        Duration::from_secs(30),
        async || effect_ids(first.pool()).await.len() == 20,
    )
    .await;
    stop_first.trigger();
    running.await.unwrap();

    let fresh = consumer_database().await;
    let consumer = backbone.consumer("probe-replay", fresh.pool(), Arc::new(ApplyEffects));
    let running = tokio::spawn(consumer.run(backbone.shutdown.clone()));
    wait_until(
        "the fresh database has every event",
        Duration::from_secs(30),
        async || effect_ids(fresh.pool()).await.len() == 20,
    )
    .await;
    assert_eq!(
        effect_ids(fresh.pool()).await,
        effect_ids(first.pool()).await
    );
    backbone.trigger.trigger();
    running.await.unwrap();
    first.drop_db().await;
    fresh.drop_db().await;
}

/// A backlog of 3,000 events of 400 aggregates is drained by a relay with three workers (their
/// batches contend for the same aggregates): every event is published once and takes effect in
/// order per aggregate, the published rows sit in the sent log, and the relay has vacuumed the
/// outbox on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_relay_workers_drain_a_backlog_in_order_per_aggregate_and_vacuum_the_outbox() {
    const EVENTS: u64 = 3_000;
    const AGGREGATES: u64 = 400;
    let backbone = Backbone::start().await;
    let producer = backbone.producer.pool();
    let subject = streams::subject(SERVICE, "thing", "changed");
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(500) {
        let mut tx = producer.begin().await.unwrap();
        for i in chunk {
            let aggregate = format!("agg-{}", i % AGGREGATES);
            let metadata = events::metadata(SERVICE, "thing", &aggregate, i / AGGREGATES + 1, "");
            outbox::append(&mut tx, &subject, &metadata, &metadata)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let config = RelayConfig {
        batch_size: 200,
        workers: 3,
        vacuum_every: 1_000,
        ..RelayConfig::default()
    };
    let relay = Relay::new(producer.clone(), backbone.jetstream.clone(), config);
    let relaying = tokio::spawn(relay.run(backbone.shutdown.clone()));
    let consumer_db = consumer_database().await;
    let consumer = backbone.consumer("probe-backlog", consumer_db.pool(), Arc::new(ApplyEffects));
    let consuming = tokio::spawn(consumer.run(backbone.shutdown.clone()));

    let count = async |pool: &PgPool, sql: &str| -> i64 {
        sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
    };
    wait_until("the outbox is empty", Duration::from_secs(60), async || {
        count(producer, "SELECT count(*) FROM outbox").await == 0
    })
    .await;
    wait_until(
        "every event took effect",
        Duration::from_secs(60),
        async || count(consumer_db.pool(), "SELECT count(*) FROM effects").await == EVENTS as i64,
    )
    .await;
    assert_eq!(backbone.stream_messages().await, EVENTS);
    assert_eq!(
        count(producer, "SELECT count(DISTINCT event_id) FROM outbox_sent").await,
        EVENTS as i64
    );
    assert_eq!(
        count(
            consumer_db.pool(),
            "SELECT count(DISTINCT event_id) FROM effects"
        )
        .await,
        EVENTS as i64
    );
    let out_of_order = count(
        consumer_db.pool(),
        "SELECT count(*) FROM (
            SELECT aggregate_version < lag(aggregate_version)
                       OVER (PARTITION BY aggregate_id ORDER BY seq) AS backwards
              FROM effects) steps
          WHERE backwards",
    )
    .await;
    assert_eq!(out_of_order, 0, "per-aggregate order was broken");
    let vacuums = count(
        producer,
        "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'outbox'",
    )
    .await;
    assert!(vacuums >= 1, "the relay never vacuumed the outbox");

    backbone.trigger.trigger();
    relaying.await.unwrap();
    consuming.await.unwrap();
    backbone.producer.drop_db().await;
    consumer_db.drop_db().await;
}
