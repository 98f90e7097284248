//! The chassis every binary shares: health and reflection, graceful shutdown with a call in
//! flight, token checks, field-level INVALID_ARGUMENT, and no PHI in logs even at TRACE level.

use crate::common::{SECRET, SERVICES, authorized, domain_apis, start, token};
use clinicnet_proto::ops::v1::{
    GetEventBacklogRequest, RedriveDeadLetterRequest,
    event_ops_service_client::EventOpsServiceClient,
};
use platform::auth::{Role, claims, mint_hs256};
use std::time::Duration;
use system_tests::service::ServingStatus;
use tonic::Code;
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

const OPS_SERVICE: &str = "clinicnet.ops.v1.EventOpsService";

async fn reflected_services(channel: tonic::transport::Channel) -> Vec<String> {
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter(vec![request]))
        .await
        .expect("reflection call")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("reflection answer")
        .expect("one answer");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_binary_serves_health_and_reflection_of_its_own_services() {
    for name in SERVICES {
        let running = start(name, &[]).await;
        assert_eq!(
            running.process.health_status("").await.unwrap(),
            ServingStatus::Serving,
            "{name}"
        );
        assert_eq!(
            running.process.health_status(OPS_SERVICE).await.unwrap(),
            ServingStatus::Serving,
            "{name}"
        );
        let listed = reflected_services(running.process.channel().await.unwrap()).await;
        assert!(
            listed.iter().any(|s| s == "grpc.health.v1.Health"),
            "{name}: {listed:?}"
        );
        assert!(
            listed.iter().any(|s| s == OPS_SERVICE),
            "{name}: {listed:?}"
        );
        for api in domain_apis(name) {
            assert!(
                listed.iter().any(|s| s == api),
                "{name} does not list {api}: {listed:?}"
            );
            assert_eq!(
                running.process.health_status(api).await.unwrap(),
                ServingStatus::Serving,
                "{name}: {api}"
            );
        }
        for other in SERVICES.iter().filter(|other| **other != name) {
            assert!(
                !listed
                    .iter()
                    .any(|s| s.starts_with(&format!("clinicnet.{other}."))),
                "{name} lists {other}'s API: {listed:?}"
            );
        }
        running.database.drop_db().await;
    }
}

/// SIGTERM while a call waits on a database lock: health turns NOT_SERVING while the call is
/// still running, the call then completes OK, and the process exits 0 within the drain time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_in_flight_call_finish_after_health_turns_not_serving() {
    for name in SERVICES {
        let mut running = start(name, &[("SHUTDOWN_DRAIN_SECONDS", "10")]).await;
        let mut locker = running.database.pool().begin().await.unwrap();
        sqlx::query("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *locker)
            .await
            .unwrap();
        let mut client = EventOpsServiceClient::new(running.process.channel().await.unwrap());
        let ops = token(Role::Ops, &[], None);
        let call = tokio::spawn(async move {
            client
                .get_event_backlog(authorized(GetEventBacklogRequest {}, &ops))
                .await
        });
        // The call (and the relay) now wait for the lock.
        let mut waiting = 0i64;
        for _ in 0..100 {
            (waiting,) = sqlx::query_as(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(running.database.pool())
            .await
            .unwrap();
            if waiting >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(waiting >= 2, "{name}: the call never reached the database");

        running.process.sigterm().unwrap();
        let mut saw_not_serving = false;
        for _ in 0..40 {
            if let Ok(ServingStatus::NotServing) = running.process.health_status("").await {
                saw_not_serving = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(saw_not_serving, "{name}: health never reported NOT_SERVING");
        assert!(
            !call.is_finished(),
            "{name}: the call ended before the lock was released"
        );

        locker.rollback().await.unwrap();
        let answer = call.await.unwrap();
        assert!(answer.is_ok(), "{name}: in-flight call failed: {answer:?}");
        let status = running
            .process
            .wait_exit(Duration::from_secs(10))
            .await
            .unwrap();
        assert!(status.success(), "{name}: exit status {status:?}");
        running.database.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_and_each_failure_gets_its_code() {
    let running = start("directory", &[]).await;
    let client = EventOpsServiceClient::new(running.process.channel().await.unwrap());
    let call = |token: Option<String>| {
        let mut client = client.clone();
        async move {
            let request = match token {
                Some(token) => authorized(GetEventBacklogRequest {}, &token),
                None => tonic::Request::new(GetEventBacklogRequest {}),
            };
            client
                .get_event_backlog(request)
                .await
                .map(|_| ())
                .map_err(|s| s.code())
        }
    };
    let expired = mint_hs256(SECRET, &claims("ops", Role::Ops, vec![], None, -600)).unwrap();
    let forged = mint_hs256(
        "not-the-secret",
        &claims("ops", Role::Ops, vec![], None, 600),
    )
    .unwrap();
    let cases = [
        ("no token", None, Err(Code::Unauthenticated)),
        ("expired token", Some(expired), Err(Code::Unauthenticated)),
        (
            "token signed with the wrong key",
            Some(forged),
            Err(Code::Unauthenticated),
        ),
        (
            "garbage token",
            Some("not.a.jwt".to_owned()),
            Err(Code::Unauthenticated),
        ),
        (
            "partner role on an ops-only call",
            Some(token(Role::PartnerClinic, &["clinic-a"], None)),
            Err(Code::PermissionDenied),
        ),
        (
            "integrator role on an ops-only call",
            Some(token(Role::Integrator, &[], Some("payer-a"))),
            Err(Code::PermissionDenied),
        ),
        ("ops role", Some(token(Role::Ops, &[], None)), Ok(())),
    ];
    for (case, token, expected) in cases {
        assert_eq!(call(token).await, expected, "{case}");
    }
    running.database.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_arguments_name_the_offending_field() {
    let running = start("directory", &[]).await;
    let mut client = EventOpsServiceClient::new(running.process.channel().await.unwrap());
    let ops = token(Role::Ops, &[], None);
    let cases = [
        ("r-1", "not-a-uuid", "event_id"),
        ("", "0190c3a4-0000-7000-8000-000000000001", "request_id"),
        (
            &*"x".repeat(200),
            "0190c3a4-0000-7000-8000-000000000001",
            "request_id",
        ),
    ];
    for (request_id, event_id, field) in cases {
        let status = client
            .redrive_dead_letter(authorized(
                RedriveDeadLetterRequest {
                    request_id: request_id.to_owned(),
                    event_id: event_id.to_owned(),
                    consumer: String::new(),
                },
                &ops,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert_eq!(
            platform::error::violated_fields(&status),
            vec![field.to_owned()]
        );
    }
    running.database.drop_db().await;
}

/// Patient-identifying values sent in a request body and in metadata never reach the log, even
/// with every module logging at TRACE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_phi_reaches_the_logs_at_trace_level() {
    let phi = [
        "Maria Gonzalez",
        "+13055550123",
        "maria.gonzalez@example.com",
        "1961-04-02",
    ];
    let mut running = start("directory", &[("RUST_LOG", "trace")]).await;
    let mut client = EventOpsServiceClient::new(running.process.channel().await.unwrap());
    let ops = token(Role::Ops, &[], None);
    let requests = [
        RedriveDeadLetterRequest {
            request_id: format!("{} {}", phi[0], phi[3]),
            event_id: phi[2].to_owned(),
            consumer: phi[1].to_owned(),
        },
        RedriveDeadLetterRequest {
            request_id: phi[0].to_owned(),
            event_id: "0190c3a4-0000-7000-8000-000000000001".to_owned(),
            consumer: format!("{} {}", phi[1], phi[2]),
        },
    ];
    for message in requests {
        let mut request = authorized(message, &ops);
        request
            .metadata_mut()
            .insert("x-patient-name", phi[0].parse().unwrap());
        let status = client.redrive_dead_letter(request).await.unwrap_err();
        assert!(
            matches!(status.code(), Code::InvalidArgument | Code::NotFound),
            "{status:?}"
        );
        for value in phi {
            assert!(
                !status.message().contains(value),
                "status echoes {value}: {status:?}"
            );
        }
    }
    running.process.sigterm().unwrap();
    running
        .process
        .wait_exit(Duration::from_secs(15))
        .await
        .unwrap();
    let logs = running.process.logs();
    assert!(logs.contains("rpc finished"), "request logging was not on");
    assert!(
        logs.contains("\"level\":\"TRACE\"") || logs.contains("\"level\":\"DEBUG\""),
        "verbose logging was not on"
    );
    for value in phi {
        assert!(!logs.contains(value), "the log contains {value}");
    }
    running.database.drop_db().await;
}
