//! W3C trace context across process boundaries: extracted from incoming gRPC metadata, injected
//! into outgoing gRPC calls and NATS message headers. Span attribute names follow the
//! OpenTelemetry semantic conventions pinned by `opentelemetry-semantic-conventions`.

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector},
    trace::TraceContextExt,
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

struct NatsHeaderInjector<'a>(&'a mut async_nats::HeaderMap);

impl Injector for NatsHeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct NatsHeaderExtractor<'a>(&'a async_nats::HeaderMap);

impl Extractor for NatsHeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_ref()).collect()
    }
}

fn propagate<R>(f: impl FnOnce(&dyn opentelemetry::propagation::TextMapPropagator) -> R) -> R {
    let mut f = Some(f);
    opentelemetry::global::get_text_map_propagator(|p| (f.take().expect("called once"))(p))
}

/// The parent context an incoming HTTP/2 (gRPC) request carries.
pub fn extract_from_http(headers: &http::HeaderMap) -> Context {
    propagate(|p| p.extract(&HeaderExtractor(headers)))
}

/// Writes the current span's context into outgoing gRPC metadata.
pub fn inject_into_metadata(metadata: &mut tonic::metadata::MetadataMap) {
    let context = Span::current().context();
    propagate(|p| p.inject_context(&context, &mut MetadataInjector(metadata)));
}

/// Writes `context` into NATS message headers (`traceparent`, `tracestate`).
pub fn inject_into_nats(context: &Context, headers: &mut async_nats::HeaderMap) {
    propagate(|p| p.inject_context(context, &mut NatsHeaderInjector(headers)));
}

/// The context a NATS message carries in its headers.
pub fn extract_from_nats(headers: &async_nats::HeaderMap) -> Context {
    propagate(|p| p.extract(&NatsHeaderExtractor(headers)))
}

/// The current span's context as W3C `traceparent`/`tracestate` pairs, to store with an outbox row.
pub fn current_carrier() -> Vec<(String, String)> {
    let context = Span::current().context();
    let mut carrier = std::collections::HashMap::new();
    propagate(|p| p.inject_context(&context, &mut carrier));
    let mut pairs: Vec<_> = carrier.into_iter().collect();
    pairs.sort();
    pairs
}

/// The context stored as pairs by [`current_carrier`].
pub fn context_from_carrier(pairs: &[(String, String)]) -> Context {
    let carrier: std::collections::HashMap<String, String> = pairs.iter().cloned().collect();
    propagate(|p| p.extract(&carrier))
}

/// The current trace id as hex, or `-` when there is no trace.
pub fn current_trace_id() -> String {
    let context = Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    if span_context.is_valid() {
        span_context.trace_id().to_string()
    } else {
        "-".to_owned()
    }
}

/// Client interceptor that sends the current trace context with every call.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracePropagation;

impl tonic::service::Interceptor for TracePropagation {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        inject_into_metadata(request.metadata_mut());
        Ok(request)
    }
}

/// The server span of one gRPC request, named `package.Service/Method`, child of the caller's span.
pub fn grpc_server_span<B>(request: &http::Request<B>) -> Span {
    let method = request.uri().path().trim_start_matches('/');
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = %method,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system.name = "grpc",
        rpc.method = %method,
        rpc.response.status_code = tracing::field::Empty,
        enduser.role = tracing::field::Empty,
    );
    let _ = span.set_parent(extract_from_http(request.headers()));
    span
}

/// The gRPC status code's name (`OK`, `NOT_FOUND`, …) from its number in `grpc-status`.
pub fn grpc_status_name(code: &str) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    code.parse::<usize>()
        .ok()
        .and_then(|n| NAMES.get(n).copied())
        .unwrap_or("UNKNOWN")
}

/// Whether a server span with this status is an error (per the RPC semantic conventions).
pub fn is_server_error(status_name: &str) -> bool {
    matches!(
        status_name,
        "UNKNOWN"
            | "DEADLINE_EXCEEDED"
            | "UNIMPLEMENTED"
            | "INTERNAL"
            | "UNAVAILABLE"
            | "DATA_LOSS"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_semantic_conventions::attribute as semconv;

    #[test]
    fn status_codes_are_named_and_classified() {
        assert_eq!(grpc_status_name("0"), "OK");
        assert_eq!(grpc_status_name("9"), "FAILED_PRECONDITION");
        assert_eq!(grpc_status_name("16"), "UNAUTHENTICATED");
        assert_eq!(grpc_status_name("x"), "UNKNOWN");
        assert!(is_server_error("INTERNAL"));
        assert!(!is_server_error("NOT_FOUND"));
    }

    /// The literal attribute names used in span macros are the pinned conventions' names.
    #[test]
    fn span_attribute_names_follow_the_pinned_semantic_conventions() {
        assert_eq!(
            opentelemetry_semantic_conventions::SCHEMA_URL,
            "https://opentelemetry.io/schemas/1.42.0"
        );
        assert_eq!(semconv::RPC_SYSTEM_NAME, "rpc.system.name");
        assert_eq!(semconv::RPC_METHOD, "rpc.method");
        assert_eq!(
            semconv::RPC_RESPONSE_STATUS_CODE,
            "rpc.response.status_code"
        );
        assert_eq!(semconv::MESSAGING_SYSTEM, "messaging.system");
        assert_eq!(
            semconv::MESSAGING_DESTINATION_NAME,
            "messaging.destination.name"
        );
        assert_eq!(
            semconv::MESSAGING_OPERATION_TYPE,
            "messaging.operation.type"
        );
        assert_eq!(semconv::MESSAGING_MESSAGE_ID, "messaging.message.id");
        assert_eq!(
            semconv::MESSAGING_CONSUMER_GROUP_NAME,
            "messaging.consumer.group.name"
        );
        assert_eq!(semconv::DB_SYSTEM_NAME, "db.system.name");
    }
}
