//! clinicctl's own trace: each command is one span (`clinicctl <group>`), exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and its calls carry the trace context, so a command and
//! everything the services do for it form one trace. `TRACEPARENT` (W3C form) in
//! the environment makes the command a child of that trace, so a script running several
//! commands can group them in one trace.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Keeps the exporter alive; flushes the command's spans when dropped.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.force_flush();
            let _ = provider.shutdown();
        }
    }
}

/// Installs the propagator, and the exporter when an endpoint is configured. Logs (warnings
/// only, unless RUST_LOG says otherwise) go to standard error.
pub fn init() -> Telemetry {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    let filter = platform::telemetry::env_filter(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty());
    // Without an endpoint spans are not exported, but calls still carry a trace context, so the
    // services' spans of one command share its trace id.
    let provider = platform::telemetry::tracer_provider("clinicctl", endpoint.as_deref())
        .or_else(|_| platform::telemetry::tracer_provider("clinicctl", None))
        .ok();
    match &provider {
        Some(provider) => {
            // The command's span is recorded whatever RUST_LOG says about logs.
            let otel = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("clinicctl"))
                .with_filter(
                    tracing_subscriber::filter::Targets::new()
                        .with_target("clinicctl", tracing::Level::INFO),
                );
            let _ = tracing_subscriber::registry()
                .with(otel)
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_writer(std::io::stderr)
                        .with_filter(filter),
                )
                .try_init();
        }
        None => {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
                .try_init();
        }
    }
    Telemetry { provider }
}

/// The span of one command, child of `TRACEPARENT` when set.
pub fn command_span(name: &str) -> tracing::Span {
    let span = tracing::info_span!("clinicctl", otel.name = %name, otel.kind = "client");
    if let Ok(traceparent) = std::env::var("TRACEPARENT") {
        let mut carrier = std::collections::HashMap::new();
        carrier.insert("traceparent".to_owned(), traceparent);
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
        let _ = span.set_parent(parent);
    }
    span
}
