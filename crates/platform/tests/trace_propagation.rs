//! Trace context crosses a real gRPC hop: the client's span is the parent of the server's span,
//! observed with an in-process span exporter.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{InMemorySpanExporter, SdkTracerProvider},
};
use platform::{config::GrpcConfig, server::GrpcServer, shutdown, trace_context::TracePropagation};
use std::time::Duration;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

fn test_config() -> GrpcConfig {
    GrpcConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        request_timeout_ms: 5_000,
        max_message_bytes: 1 << 20,
        concurrency_limit: 16,
        shutdown_drain_seconds: 2,
        tls_cert_file: None,
        tls_key_file: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_span_is_the_parent_of_the_server_span() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let subscriber = tracing_subscriber::registry().with(
        tracing_opentelemetry::layer().with_tracer(provider.tracer("trace-propagation-test")),
    );
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let (trigger, shutdown) = shutdown::channel();
    let (address, serving) = GrpcServer::new(&test_config())
        .bind(shutdown)
        .await
        .unwrap();
    let serving = tokio::spawn(serving);

    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::with_interceptor(channel, TracePropagation);
    let client_span = tracing::info_span!("client.check");
    async {
        client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap();
    }
    .instrument(client_span.clone())
    .await;
    drop(client_span);

    let server_name = "grpc.health.v1.Health/Check";
    let mut spans = Vec::new();
    for _ in 0..50 {
        provider.force_flush().unwrap();
        spans = exporter.get_finished_spans().unwrap();
        if spans.iter().any(|s| s.name == server_name)
            && spans.iter().any(|s| s.name == "client.check")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = spans
        .iter()
        .find(|s| s.name == "client.check")
        .expect("client span exported");
    let server = spans
        .iter()
        .find(|s| s.name == server_name)
        .expect("server span exported");
    assert_eq!(
        server.span_context.trace_id(),
        client.span_context.trace_id()
    );
    assert_eq!(server.parent_span_id, client.span_context.span_id());
    assert_eq!(server.span_kind, opentelemetry::trace::SpanKind::Server);
    let attribute = |key: &str| {
        server
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attribute("rpc.system.name").as_deref(), Some("grpc"));
    assert_eq!(attribute("rpc.method").as_deref(), Some(server_name));
    assert_eq!(attribute("rpc.response.status_code").as_deref(), Some("OK"));

    trigger.trigger();
    serving.await.unwrap().unwrap();
}
