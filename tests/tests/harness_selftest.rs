//! The harness checks itself against real infrastructure: a private nats-server that keeps its
//! JetStream data across a restart, and throwaway databases that really go away.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use futures::StreamExt as _;
use sqlx::Connection as _;
use system_tests::service::ServingStatus;
use system_tests::{PrivateNats, ServiceProcess, ServiceSpec, TestDatabase, infra};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_nats_restarts_on_the_same_store_and_keeps_stream_messages() -> anyhow::Result<()> {
    let mut nats = PrivateNats::start().await?;

    // Core publish/subscribe works.
    let client = async_nats::connect(nats.url()).await?;
    let mut subscriber = client.subscribe("harness.selftest.ping").await?;
    client
        .publish("harness.selftest.ping", "hello".into())
        .await?;
    client.flush().await?;
    let message = tokio::time::timeout(Duration::from_secs(5), subscriber.next())
        .await?
        .expect("a message on the subscription");
    assert_eq!(message.payload.as_ref(), b"hello");

    // A file-backed stream with three acknowledged messages.
    let js = jetstream::new(client.clone());
    js.create_stream(stream::Config {
        name: "HARNESS".to_owned(),
        subjects: vec!["harness.selftest.events.>".to_owned()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    for n in 1..=3 {
        js.publish(
            format!("harness.selftest.events.{n}"),
            format!("event {n}").into(),
        )
        .await?
        .await?;
    }
    drop(subscriber);
    drop(client);

    // Graceful stop, then the same port and store.
    let port = nats.port();
    nats.stop().await?;
    assert!(!nats.is_running());
    assert!(
        async_nats::connect(nats.url()).await.is_err(),
        "the server is down"
    );
    nats.start_again().await?;
    assert_eq!(nats.port(), port);

    let js = jetstream::new(async_nats::connect(nats.url()).await?);
    let mut stream = js.get_stream("HARNESS").await?;
    let info = stream.info().await?;
    assert_eq!(
        info.state.messages, 3,
        "stream state after restart: {:?}",
        info.state
    );

    // A crash (SIGKILL) loses nothing the server acknowledged either.
    nats.kill().await?;
    nats.start_again().await?;
    let js = jetstream::new(async_nats::connect(nats.url()).await?);
    let info = js.get_stream("HARNESS").await?.info().await?.clone();
    assert_eq!(
        info.state.messages, 3,
        "stream state after SIGKILL: {:?}",
        info.state
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_database_is_created_usable_and_dropped() -> anyhow::Result<()> {
    let db = TestDatabase::create("harness selftest").await;
    let name = db.name().to_owned();
    assert!(name.starts_with("harness_selftest_"), "{name}");
    assert!(db.url().ends_with(&format!("/{name}")), "{}", db.url());

    sqlx::query("CREATE TABLE visit (id uuid PRIMARY KEY, during tstzrange NOT NULL)")
        .execute(db.pool())
        .await?;
    sqlx::query("INSERT INTO visit VALUES ($1, tstzrange(now(), now() + interval '2 hours'))")
        .bind(uuid::Uuid::now_v7())
        .execute(db.pool())
        .await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM visit")
        .fetch_one(db.pool())
        .await?;
    assert_eq!(count, 1);

    // A session that is still open (like a service that was not stopped) does not block the drop.
    let mut straggler = sqlx::PgConnection::connect(db.url()).await?;
    sqlx::query("SELECT 1").execute(&mut straggler).await?;

    db.drop_db().await;
    assert!(
        !database_exists(&name).await?,
        "{name} still exists after drop_db"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_database_dropped_without_drop_db_goes_away_too() -> anyhow::Result<()> {
    let db = TestDatabase::create("harness_implicit").await;
    let name = db.name().to_owned();
    assert!(database_exists(&name).await?);
    drop(db);
    assert!(
        !database_exists(&name).await?,
        "{name} still exists after Drop"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_nats_has_jetstream() -> anyhow::Result<()> {
    let client = async_nats::connect(infra::nats_url()).await?;
    let js = jetstream::new(client);
    // Fails with "JetStream not enabled" on a server started without -js. (The account-info API
    // of async-nats 0.51 does not parse nats-server 2.9's reply, so a stream is the probe.)
    let name = format!("HARNESS_{}", uuid::Uuid::new_v4().simple());
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![format!("harness.selftest.{name}")],
        storage: stream::StorageType::Memory,
        ..Default::default()
    })
    .await?;
    js.delete_stream(&name).await?;
    Ok(())
}

async fn database_exists(name: &str) -> anyhow::Result<bool> {
    let mut admin = sqlx::PgConnection::connect(&infra::postgres_admin_url()).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT exists(SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut admin)
            .await?;
    Ok(exists)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_postgres_cluster_serves_with_btree_gist() -> anyhow::Result<()> {
    let url = tokio::task::spawn_blocking(infra::private_postgres_admin_url).await?;
    assert!(
        !url.contains(":5432/"),
        "a private cluster has its own port: {url}"
    );
    let mut admin = sqlx::PgConnection::connect(&url).await?;
    let superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut admin)
            .await?;
    assert!(superuser);
    sqlx::query("CREATE EXTENSION IF NOT EXISTS btree_gist")
        .execute(&mut admin)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_shared_nats_serves() -> anyhow::Result<()> {
    let url = tokio::task::spawn_blocking(infra::private_nats_url).await?;
    assert_ne!(url, "nats://127.0.0.1:4222");
    let client = async_nats::connect(url).await?;
    client.flush().await?;
    Ok(())
}

/// The contract-shaped stand-in built from this package.
fn fake_service(env: &[(&str, &str)]) -> ServiceSpec {
    env.iter()
        .fold(ServiceSpec::new("fake"), |spec, (key, value)| {
            spec.env(*key, *value)
        })
}

const FAKE: &str = env!("CARGO_BIN_EXE_harness-fake-service");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_process_serves_drains_on_sigterm_and_restarts_after_kill9() -> anyhow::Result<()> {
    let mut fake =
        ServiceProcess::spawn_binary(FAKE, fake_service(&[("FAKE_DRAIN_MS", "1500")])).await?;
    assert_eq!(fake.endpoint(), format!("http://{}", fake.addr()));
    fake.wait_serving(Duration::from_secs(20)).await?;
    assert_eq!(fake.health_status("").await?, ServingStatus::Serving);
    let channel = fake.channel().await?;
    drop(channel);

    // SIGTERM: NOT_SERVING while draining, then a clean exit.
    let first_pid = fake.pid();
    fake.sigterm()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match fake.health_status("").await {
            Ok(ServingStatus::Serving) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Ok(status) => {
                assert_eq!(status, ServingStatus::NotServing);
                break;
            }
            Err(error) => panic!("health should answer NOT_SERVING while draining: {error:#}"),
        }
    }
    let status = fake.wait_exit(Duration::from_secs(10)).await?;
    assert!(status.success(), "{status}");
    assert!(
        fake.sigterm().is_err(),
        "signalling an exited service is an error"
    );

    // Restart on the same port, then a crash and another restart.
    let addr = fake.addr();
    fake.restart().await?;
    assert_ne!(fake.pid(), first_pid);
    assert_eq!(fake.addr(), addr);
    fake.wait_serving(Duration::from_secs(20)).await?;
    fake.kill9().await?;
    let status = fake.wait_exit(Duration::from_secs(1)).await?;
    assert!(!status.success(), "{status}");
    fake.restart().await?;
    fake.wait_serving(Duration::from_secs(20)).await?;

    // One log file across the three runs, with the harness's start lines and the service's output.
    let logs = fake.logs();
    assert_eq!(logs.matches(r#""harness":"starting""#).count(), 3, "{logs}");
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(logs.contains(r#""message":"stopped""#), "{logs}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_environment_has_contract_defaults_and_spec_overrides() -> anyhow::Result<()> {
    // The stand-in refuses to start, so wait_serving must fail fast and show its log.
    let mut broken =
        ServiceProcess::spawn_binary(FAKE, fake_service(&[("FAKE_EXIT_AT_START", "3")])).await?;
    let error = broken
        .wait_serving(Duration::from_secs(20))
        .await
        .expect_err("it exits");
    let message = format!("{error:#}");
    assert!(message.contains("exited"), "{message}");
    assert!(
        message.contains("fake service refuses to start"),
        "{message}"
    );
    assert_eq!(
        broken.wait_exit(Duration::from_secs(1)).await?.code(),
        Some(3)
    );

    // A service that never becomes SERVING times out with a clear error.
    let mut slow =
        ServiceProcess::spawn_binary(FAKE, fake_service(&[("FAKE_STARTUP_MS", "60000")])).await?;
    let error = slow
        .wait_serving(Duration::from_millis(1500))
        .await
        .expect_err("never serving");
    assert!(
        format!("{error:#}").contains("not SERVING within"),
        "{error:#}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_test_keeps_the_service_log() -> anyhow::Result<()> {
    let fake = ServiceProcess::spawn_binary(FAKE, fake_service(&[])).await?;
    let log_path = fake.log_path().to_owned();
    let pid = fake.pid();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _service = fake;
        panic!("a failing assertion in a test");
    }));
    assert!(outcome.is_err());
    assert!(log_path.is_file(), "the log is kept after a failure");
    // The process was killed by the drop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists() || is_zombie(pid));
    std::fs::remove_dir_all(log_path.parent().expect("log dir"))?;
    Ok(())
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| stat.contains(") Z "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_binaries_are_built_and_found() -> anyhow::Result<()> {
    let path = tokio::task::spawn_blocking(|| ServiceProcess::binary_path("harness-fake-service"))
        .await??;
    assert!(path.is_file(), "{}", path.display());
    assert!(ServiceProcess::binary_path("no-such-binary").is_err());
    Ok(())
}
