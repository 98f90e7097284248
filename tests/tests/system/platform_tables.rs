//! The platform's tables in a real database: the audit record is append-only even for its owner,
//! and housekeeping deletes only rows past their retention.

use platform::{
    audit,
    auth::{Caller, Role},
    maintenance::{self, Retention},
};
use std::time::Duration;
use system_tests::{TestDatabase, probe};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_record_refuses_update_delete_and_truncate_even_from_its_owner() {
    let database = TestDatabase::create("audit").await;
    probe::migrate(database.pool()).await.unwrap();
    let caller = Caller {
        subject: "front-desk".into(),
        role: Role::PartnerClinic,
        clinic_ids: vec!["clinic-a".into()],
        payer_id: None,
    };
    let mut conn = database.pool().acquire().await.unwrap();
    audit::record(&mut conn, &caller, "patient.read", "patient-1")
        .await
        .unwrap();
    for statement in [
        "UPDATE audit_log SET patient_id = 'patient-2'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let error = sqlx::query(statement)
            .execute(&mut *conn)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("append-only")
                || error.to_string().contains("permission denied"),
            "{statement}: {error}"
        );
    }
    let (entries, action, role): (i64, String, String) =
        sqlx::query_as("SELECT count(*) OVER (), action, role FROM audit_log")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(
        (entries, action.as_str(), role.as_str()),
        (1, "patient.read", "partner_clinic")
    );
    drop(conn);
    database.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_deletes_only_rows_past_their_retention() {
    let database = TestDatabase::create("retention").await;
    probe::migrate(database.pool()).await.unwrap();
    let pool = database.pool();
    for (age, id) in [
        ("2 days", "0190c3a4-0000-7000-8000-000000000001"),
        ("1 minute", "0190c3a4-0000-7000-8000-000000000002"),
    ] {
        sqlx::query(&format!(
            "INSERT INTO outbox_sent (id, event_id, subject, aggregate_id, aggregate_version, payload,
                 trace_carrier, created_at, published_at, attempts)
             VALUES (1, '{id}', 's', 'a', 1, '', '[]', now() - interval '{age}',
                 now() - interval '{age}', 0)"
        ))
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(&format!(
            "INSERT INTO inbox (consumer, event_id, subject, processed_at) VALUES ('c', '{id}', 's', now() - interval '{age}')"
        ))
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query("INSERT INTO outbox (event_id, subject, aggregate_id, aggregate_version, payload) VALUES ('0190c3a4-0000-7000-8000-000000000003', 's', 'a', 2, '')")
        .execute(pool)
        .await
        .unwrap();
    let retention = Retention {
        sent_outbox: Duration::from_secs(24 * 3600),
        inbox: Duration::from_secs(24 * 3600),
        idempotency_keys: Duration::from_secs(24 * 3600),
    };
    assert_eq!(maintenance::prune(pool, &retention).await.unwrap(), 2);
    let (sent, unsent): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM outbox_sent), (SELECT count(*) FROM outbox)")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!((sent, unsent), (1, 1), "an unsent row must never be pruned");
    let (inbox,): (i64,) = sqlx::query_as("SELECT count(*) FROM inbox")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(inbox, 1);
    database.drop_db().await;
}
