//! TLS: with TLS_CERT_FILE and TLS_KEY_FILE a service serves gRPC over rustls, and a client that
//! trusts the certificate reaches health and the API.

use crate::common::SECRET;
use std::time::Duration;
use system_tests::{PrivateNats, ServiceProcess, ServiceSpec, TestDatabase};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_serves_tls_when_given_a_certificate() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("server.crt");
    let key_path = dir.path().join("server.key");
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();

    let database = TestDatabase::create("tls").await;
    let nats = PrivateNats::start().await.unwrap();
    let process = ServiceProcess::spawn(
        ServiceSpec::new("directory")
            .env("DATABASE_URL", database.url())
            .env("NATS_URL", nats.url())
            .env("JWT_HS256_SECRET", SECRET)
            .env("TLS_CERT_FILE", cert_path.to_string_lossy())
            .env("TLS_KEY_FILE", key_path.to_string_lossy()),
    )
    .await
    .unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(certified.cert.pem()))
        .domain_name("localhost");
    let endpoint = Channel::from_shared(format!("https://{}", process.addr()))
        .unwrap()
        .tls_config(tls)
        .unwrap();
    let mut status = None;
    for _ in 0..120 {
        if let Ok(channel) = endpoint.connect().await {
            let answer = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await;
            if let Ok(answer) = answer {
                status = Some(answer.into_inner().status);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        status,
        Some(ServingStatus::Serving as i32),
        "{}",
        process.logs()
    );

    // A plaintext client is not served.
    let plaintext = Channel::from_shared(format!("http://{}", process.addr()))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await;
        assert!(answer.is_err(), "plaintext call answered over a TLS port");
    }
    drop(process);
    database.drop_db().await;
}
