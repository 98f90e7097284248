//! Idempotent mutating calls against real PostgreSQL: retries racing the original produce one
//! effect and the same answer; a request id reused for another request is refused.

use clinicnet_proto::events::v1::EventMetadata;
use platform::{
    ApiError,
    auth::{Caller, Role},
    idempotency::{self, Start},
};
use std::time::Duration;
use system_tests::{TestDatabase, probe};

fn caller() -> Caller {
    Caller {
        subject: "front-desk".into(),
        role: Role::PartnerClinic,
        clinic_ids: vec!["clinic-a".into()],
        payer_id: None,
    }
}

/// One idempotent "call": records an effect and answers with a fresh id.
async fn call(pool: sqlx::PgPool, request: EventMetadata) -> Result<EventMetadata, ApiError> {
    match idempotency::start(&pool, &caller(), "Test", "request-1", &request).await? {
        Start::Replay(answer) => Ok(answer),
        Start::Fresh(mut tx) => {
            let answer = platform::events::metadata("test", "thing", "a-1", 1, "request-1");
            sqlx::query("INSERT INTO effects (event_id, aggregate_id, aggregate_version) VALUES ($1::uuid, 'a-1', 1)")
                .bind(&answer.event_id)
                .execute(tx.conn())
                .await?;
            // Widen the window in which retries race the first call.
            tokio::time::sleep(Duration::from_millis(100)).await;
            tx.commit(&answer).await?;
            Ok(answer)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_retries_produce_one_effect_and_twenty_identical_answers() {
    let database = TestDatabase::create("idempotency").await;
    probe::migrate(database.pool()).await.unwrap();
    let request = EventMetadata {
        aggregate_id: "a-1".into(),
        ..Default::default()
    };
    let calls: Vec<_> = (0..20)
        .map(|_| tokio::spawn(call(database.pool().clone(), request.clone())))
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap().unwrap());
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "answers differ");
    let (effects,): (i64,) = sqlx::query_as("SELECT count(*) FROM effects")
        .fetch_one(database.pool())
        .await
        .unwrap();
    assert_eq!(effects, 1);

    let other_request = EventMetadata {
        aggregate_id: "a-2".into(),
        ..Default::default()
    };
    let Err(ApiError::InvalidArgument(violations)) =
        call(database.pool().clone(), other_request).await
    else {
        panic!("a reused request id was accepted for a different request");
    };
    assert_eq!(violations[0].field, "request_id");
    database.drop_db().await;
}
