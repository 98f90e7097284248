//! Every RPC the server answers is counted in `rpc.server.call.duration`, by method and status.

use opentelemetry_sdk::metrics::{
    InMemoryMetricExporter, PeriodicReader, SdkMeterProvider,
    data::{AggregatedMetrics, MetricData},
};
use platform::{config::GrpcConfig, server::GrpcServer, shutdown};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpcs_are_recorded_by_method_and_status() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    opentelemetry::global::set_meter_provider(provider.clone());

    let config = GrpcConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        request_timeout_ms: 5_000,
        max_message_bytes: 1 << 20,
        concurrency_limit: 16,
        shutdown_drain_seconds: 2,
        tls_cert_file: None,
        tls_key_file: None,
    };
    let (trigger, stop) = shutdown::channel();
    let (address, serving) = GrpcServer::new(&config).bind(stop).await.unwrap();
    let serving = tokio::spawn(serving);
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    let unknown = client
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    trigger.trigger();
    serving.await.unwrap().unwrap();
    provider.force_flush().unwrap();

    let mut calls = Vec::new();
    for resource in exporter.get_finished_metrics().unwrap() {
        for scope in resource.scope_metrics() {
            for metric in scope
                .metrics()
                .filter(|m| m.name() == "rpc.server.call.duration")
            {
                if let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = metric.data() {
                    for point in histogram.data_points() {
                        let attribute = |key: &str| {
                            point
                                .attributes()
                                .find(|kv| kv.key.as_str() == key)
                                .map(|kv| kv.value.to_string())
                                .unwrap_or_default()
                        };
                        calls.push((
                            attribute("rpc.method"),
                            attribute("rpc.response.status_code"),
                            point.count(),
                        ));
                    }
                }
            }
        }
    }
    calls.sort();
    assert_eq!(
        calls,
        vec![
            (
                "grpc.health.v1.Health/Check".to_owned(),
                "NOT_FOUND".to_owned(),
                1
            ),
            ("grpc.health.v1.Health/Check".to_owned(), "OK".to_owned(), 1),
        ]
    );
}
