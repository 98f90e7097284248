//! One subscriber for every binary: JSON or pretty logs, OpenTelemetry spans (exported over
//! OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set) and the W3C trace-context propagator.
//!
//! Transport crates are capped at `info` whatever the filter says: at debug and trace they print
//! raw frames and headers, which can carry patient data.
//!
//! Log lines are written to stdout by a thread of their own: a request never waits for a slow
//! stdout (a busy disk, a log collector behind), and no line is dropped; buffered lines are
//! flushed when the process ends.

use crate::config::{LogFormat, TelemetryConfig};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    Resource, metrics::SdkMeterProvider, propagation::TraceContextPropagator,
    trace::SdkTracerProvider,
};
use std::io::IsTerminal;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

/// Transport and driver crates whose verbose output may contain message bytes or bound values.
const CAPPED_TARGETS: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "async_nats",
    "rustls",
    "sqlx",
    "lettre",
    "reqwest",
];

/// Keeps the tracer and meter providers and the log writer alive; flushes pending spans,
/// metrics and log lines when dropped.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    meters: Option<SdkMeterProvider>,
    _log_writer: WorkerGuard,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        let _ = self.provider.force_flush();
        let _ = self.provider.shutdown();
        if let Some(meters) = &self.meters {
            let _ = meters.shutdown();
        }
    }
}

/// The log filter with transport crates capped.
pub fn env_filter(filter: &str) -> anyhow::Result<EnvFilter> {
    let mut env_filter = EnvFilter::try_new(filter)?;
    for target in CAPPED_TARGETS {
        if !filter.contains(&format!("{target}=")) {
            env_filter = env_filter.add_directive(format!("{target}=info").parse()?);
        }
    }
    Ok(env_filter)
}

fn resource(service: &str) -> Resource {
    Resource::builder()
        .with_service_name(service.to_owned())
        .build()
}

/// A tracer provider for `service`; exports over OTLP/gRPC when an endpoint is given.
pub fn tracer_provider(
    service: &str,
    otlp_endpoint: Option<&str>,
) -> anyhow::Result<SdkTracerProvider> {
    let mut builder = SdkTracerProvider::builder().with_resource(resource(service));
    if let Some(endpoint) = otlp_endpoint {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// A meter provider exporting `service`'s metrics over OTLP/gRPC every 30 s.
pub fn meter_provider(service: &str, otlp_endpoint: &str) -> anyhow::Result<SdkMeterProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint(otlp_endpoint)
        .build()?;
    Ok(SdkMeterProvider::builder()
        .with_periodic_exporter(exporter)
        .with_resource(resource(service))
        .build())
}

/// Installs the global subscriber, propagator and (with an OTLP endpoint) meter provider.
pub fn init(service: &'static str, config: &TelemetryConfig) -> anyhow::Result<Telemetry> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = tracer_provider(service, config.otlp_endpoint.as_deref())?;
    opentelemetry::global::set_tracer_provider(provider.clone());
    let meters = match config.otlp_endpoint.as_deref() {
        Some(endpoint) => {
            let meters = meter_provider(service, endpoint)?;
            opentelemetry::global::set_meter_provider(meters.clone());
            Some(meters)
        }
        None => None,
    };
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer(service));
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let (writer, log_writer) = NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stdout());
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().with_writer(writer).boxed()
    };
    tracing_subscriber::registry()
        .with(env_filter(&config.log_filter)?)
        .with(otel)
        .with(logs)
        .try_init()?;
    Ok(Telemetry {
        provider,
        meters,
        _log_writer: log_writer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_crates_are_capped_unless_named() {
        let filter = env_filter("trace").unwrap().to_string();
        assert!(filter.contains("h2=info"), "{filter}");
        let filter = env_filter("trace,h2=warn").unwrap().to_string();
        assert!(
            filter.contains("h2=warn") && !filter.contains("h2=info"),
            "{filter}"
        );
    }
}
