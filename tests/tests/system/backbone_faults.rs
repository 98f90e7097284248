//! The event backbone under faults, with real processes: 10,000 events written by concurrent
//! transactions while the relay process is SIGKILLed and restarted at random moments and NATS is
//! stopped for 10 s — afterwards every event took effect exactly once, in per-aggregate order.

use platform::events::{self, outbox, streams};
use rand::Rng;
use std::time::Duration;
use system_tests::{PrivateNats, ServiceProcess, ServiceSpec, TestDatabase, probe};

const WRITERS: usize = 8;
const AGGREGATES_PER_WRITER: usize = 25;
const VERSIONS: u64 = 50;
const EVENTS: i64 = (WRITERS * AGGREGATES_PER_WRITER) as i64 * VERSIONS as i64;

async fn write_events(pool: sqlx::PgPool, writer: usize) {
    for version in 1..=VERSIONS {
        for aggregate in 0..AGGREGATES_PER_WRITER {
            let aggregate_id = format!("w{writer}-a{aggregate}");
            let metadata = events::metadata("probe", "thing", &aggregate_id, version, "");
            let mut tx = pool.begin().await.unwrap();
            outbox::append(
                &mut tx,
                &streams::subject("probe", "thing", "changed"),
                &metadata,
                &metadata,
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
    }
}

fn probe_process(mode: &str, database: &TestDatabase, nats: &PrivateNats) -> ServiceSpec {
    ServiceSpec::new(format!("event-probe-{mode}"))
        .arg(mode)
        .env("DATABASE_URL", database.url())
        .env("NATS_URL", nats.url())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_survive_relay_kills_and_a_nats_outage_exactly_once_in_order() {
    let mut nats = PrivateNats::start().await.unwrap();
    let producer = TestDatabase::create("faults_producer").await;
    let consumer = TestDatabase::create("faults_consumer").await;
    probe::migrate(producer.pool()).await.unwrap();
    probe::migrate(consumer.pool()).await.unwrap();
    let binary = tokio::task::spawn_blocking(|| ServiceProcess::binary_path("event-probe"))
        .await
        .unwrap()
        .unwrap();
    let mut relay = ServiceProcess::spawn_binary(&binary, probe_process("relay", &producer, &nats))
        .await
        .unwrap();
    let _consumer =
        ServiceProcess::spawn_binary(&binary, probe_process("consume", &consumer, &nats))
            .await
            .unwrap();

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| tokio::spawn(write_events(producer.pool().clone(), writer)))
        .collect();

    let mut kills = 0;
    for round in 0..4 {
        let pause = rand::rng().random_range(300..1_500);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        relay.kill9().await.unwrap();
        kills += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
        relay.restart().await.unwrap();
        if round == 1 {
            nats.stop().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
            nats.start_again().await.unwrap();
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(kills >= 3);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let (applied,): (i64,) = sqlx::query_as("SELECT count(DISTINCT event_id) FROM effects")
            .fetch_one(consumer.pool())
            .await
            .unwrap();
        if applied == EVENTS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {applied} of {EVENTS} events took effect"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM effects")
            .fetch_one(consumer.pool())
            .await
            .unwrap();
    assert_eq!(
        (rows, distinct),
        (EVENTS, EVENTS),
        "an event took effect twice"
    );
    let (out_of_order,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (
            SELECT aggregate_version < lag(aggregate_version) OVER (PARTITION BY aggregate_id ORDER BY seq) AS backwards
              FROM effects) steps
          WHERE backwards",
    )
    .fetch_one(consumer.pool())
    .await
    .unwrap();
    assert_eq!(out_of_order, 0, "per-aggregate order was broken");
    let (pending,): (i64,) = sqlx::query_as("SELECT count(*) FROM outbox")
        .fetch_one(producer.pool())
        .await
        .unwrap();
    assert_eq!(pending, 0, "the outbox is not drained");
    let (dead,): (i64,) = sqlx::query_as("SELECT count(*) FROM dead_letters")
        .fetch_one(consumer.pool())
        .await
        .unwrap();
    assert_eq!(dead, 0);
}
