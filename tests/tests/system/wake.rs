//! The platform's wake-up on committed work (`platform::wake`) against a real PostgreSQL: only a
//! committed notification wakes, a burst wakes less often than it notifies, and a listener whose
//! connection is killed reconnects, reports the reconnect and hears the channel again.

use platform::wake::Wakeup;
use sqlx::PgPool;
use std::time::Duration;
use system_tests::TestDatabase;

const CHANNEL: &str = "wake_test";
/// Long enough for any notification on a busy machine: a wait that must be woken.
const WOKEN: Duration = Duration::from_secs(30);
/// A wait that must not be woken (nothing was notified).
const QUIET: Duration = Duration::from_millis(300);

/// Notifies the channel in a transaction of its own, committed.
async fn notify(pool: &PgPool) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_committed_notification_wakes() {
    let database = TestDatabase::create("wake_commit").await;
    let pool = database.pool().clone();
    let mut wakeup = Wakeup::listen(&pool, CHANNEL).await;
    assert!(!wakeup.wait(QUIET).await, "woken with nothing notified");

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert!(!wakeup.wait(QUIET).await, "woken before the commit");
    tx.rollback().await.unwrap();
    assert!(
        !wakeup.wait(QUIET).await,
        "woken by a rolled-back transaction"
    );

    sqlx::query("SELECT pg_notify('another_channel', '')")
        .execute(&pool)
        .await
        .unwrap();
    assert!(!wakeup.wait(QUIET).await, "woken by another channel");

    notify(&pool).await;
    assert!(
        wakeup.wait(WOKEN).await,
        "a committed notification did not wake"
    );
    drop(wakeup);
    database.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_notifications_wakes_fewer_times_than_it_notifies() {
    const BURST: usize = 20;
    let database = TestDatabase::create("wake_burst").await;
    let pool = database.pool().clone();
    let mut wakeup = Wakeup::listen(&pool, CHANNEL).await;
    for _ in 0..BURST {
        notify(&pool).await;
    }
    assert!(wakeup.wait(WOKEN).await, "the burst did not wake");
    let mut wakes = 1;
    while wakeup.wait(QUIET).await {
        wakes += 1;
    }
    assert!(
        wakes < BURST,
        "{wakes} wake-ups for {BURST} notifications: queued notifications are not consumed together"
    );
    drop(wakeup);
    database.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_reconnects_reports_it_and_hears_again() {
    let database = TestDatabase::create("wake_reconnect").await;
    let pool = database.pool().clone();
    let mut wakeup = Wakeup::listen(&pool, CHANNEL).await;
    let kill_listener = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                          WHERE datname = current_database() AND pid <> pg_backend_pid()
                            AND query LIKE 'LISTEN%'";
    let (killed,): (i64,) = sqlx::query_as(kill_listener)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(killed, 1, "the listener's connection was not found");

    assert!(
        wakeup.wait(WOKEN).await,
        "the reconnect was not reported as a wake-up"
    );
    assert!(!wakeup.wait(QUIET).await, "woken with nothing notified");
    notify(&pool).await;
    assert!(
        wakeup.wait(WOKEN).await,
        "the reconnected listener did not hear the channel"
    );
    drop(wakeup);
    database.drop_db().await;
}
