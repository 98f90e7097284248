//! One trace across the bus: the span that wrote an event is the parent of its publish span, and
//! the publish span is the parent of the consumer's processing span — observed with an in-process
//! span exporter, through a real outbox, a real nats-server and a real consumer.

use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{InMemorySpanExporter, SdkTracerProvider, SpanData},
};
use platform::{
    events::{
        self, connection,
        consumer::{Consumer, ConsumerSpec},
        outbox,
        relay::{Relay, RelayConfig},
        streams,
    },
    shutdown,
};
use std::{sync::Arc, time::Duration};
use system_tests::{PrivateNats, TestDatabase, probe};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publish_span_is_the_parent_of_the_consumer_span() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("backbone-tracing"))),
    )
    .unwrap();

    let nats = PrivateNats::start().await.unwrap();
    let producer = TestDatabase::create("trace_producer").await;
    let consumer_db = TestDatabase::create("trace_consumer").await;
    probe::migrate(producer.pool()).await.unwrap();
    probe::migrate(consumer_db.pool()).await.unwrap();
    let (trigger, stop) = shutdown::channel();
    let connection = connection::connect("tracing-test", &nats.url(), &stop)
        .await
        .unwrap();
    let jetstream = async_nats::jetstream::new(connection.client.clone());
    streams::ensure_stream(&jetstream, "probe", 1)
        .await
        .unwrap();

    let metadata = events::metadata("probe", "thing", "a", 1, "");
    async {
        let mut tx = producer.pool().begin().await.unwrap();
        outbox::append(
            &mut tx,
            "clinicnet.probe.thing.changed",
            &metadata,
            &metadata,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    .instrument(tracing::info_span!("book.request"))
    .await;
    let relay = Relay::new(producer.pool().clone(), jetstream, RelayConfig::default());
    assert_eq!(relay.publish_batch().await.unwrap(), 1);
    let spec = ConsumerSpec::new("probe-tracing", "PROBE", "clinicnet.probe.>");
    let consumer = Consumer::new(
        spec,
        Arc::new(probe::ApplyEffects),
        consumer_db.pool().clone(),
        &connection,
    );
    let stats = consumer.stats.clone();
    let running = tokio::spawn(consumer.run(stop.clone()));
    for _ in 0..200 {
        if stats.applied.load(std::sync::atomic::Ordering::Relaxed) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trigger.trigger();
    running.await.unwrap();
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let find = |name: &str| {
        spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
            panic!(
                "no span {name} among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
    };
    let request = find("book.request");
    let publish = find("publish clinicnet.probe.thing.changed");
    let process = find("process clinicnet.probe.thing.changed");
    assert_eq!(publish.parent_span_id, request.span_context.span_id());
    assert_eq!(process.parent_span_id, publish.span_context.span_id());
    assert_eq!(
        process.span_context.trace_id(),
        request.span_context.trace_id()
    );
    assert_eq!(publish.span_kind, SpanKind::Producer);
    assert_eq!(process.span_kind, SpanKind::Consumer);
    assert_eq!(
        attribute(publish, "messaging.system").as_deref(),
        Some("nats")
    );
    assert_eq!(
        attribute(process, "messaging.consumer.group.name").as_deref(),
        Some("probe-tracing")
    );
    assert_eq!(
        attribute(process, "messaging.message.id"),
        Some(metadata.event_id.clone())
    );
    producer.drop_db().await;
    consumer_db.drop_db().await;
}
