//! `clinicctl traces`: a local OTLP/gRPC receiver (the collector's TraceService) for ops on a
//! laptop. Spans are grouped by trace; a trace with no new span for `--idle-ms` is finished and
//! printed as a waterfall (service, span, duration, status — never attribute values, which can
//! carry PHI), and written to `--dir/<trace id>.txt` when asked. A late span re-prints its trace.
//! OTLP metrics are accepted and dropped.

pub mod waterfall;

use clap::Args;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use waterfall::{SpanRecord, SpanStatus};

/// Traces kept in memory (oldest dropped first).
const MAX_TRACES: usize = 2_000;

/// Arguments of `traces`.
#[derive(Debug, Args)]
pub struct TracesArgs {
    /// Address to receive OTLP/gRPC on (point OTEL_EXPORTER_OTLP_ENDPOINT at it).
    #[arg(long, default_value = "127.0.0.1:4317")]
    pub listen: String,
    /// A trace is finished when no span of it arrived for this long.
    #[arg(long, default_value_t = 2_000)]
    pub idle_ms: u64,
    /// Hide traces with fewer spans than this (background polls, health checks).
    #[arg(long, default_value_t = 2)]
    pub min_spans: usize,
    /// Only traces with a span of this service.
    #[arg(long)]
    pub service: Option<String>,
    /// Also write each trace to DIR/<trace id>.txt.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Default)]
struct Trace {
    spans: Vec<SpanRecord>,
    last: Option<Instant>,
    pending: bool,
    printed: bool,
}

#[derive(Debug, Default)]
struct Store {
    traces: HashMap<String, Trace>,
    order: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct Receiver {
    store: Arc<Mutex<Store>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The records of an export request: ids, names, times, status and the resource's
/// `service.name` — attributes are not read.
fn records(request: ExportTraceServiceRequest) -> Vec<SpanRecord> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| match &v.value {
                Some(AnyValue::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "unknown".to_owned());
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                let status = match span.status.as_ref().map(|s| s.code) {
                    Some(c) if c == StatusCode::Error as i32 => SpanStatus::Error,
                    Some(c) if c == StatusCode::Ok as i32 => SpanStatus::Ok,
                    _ => SpanStatus::Unset,
                };
                out.push(SpanRecord {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    service: service.clone(),
                    name: span.name,
                    start_ns: span.start_time_unix_nano,
                    end_ns: span.end_time_unix_nano,
                    status,
                });
            }
        }
    }
    out
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let now = Instant::now();
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        for record in records(request.into_inner()) {
            let id = record.trace_id.clone();
            if !store.traces.contains_key(&id) {
                store.order.push(id.clone());
                if store.order.len() > MAX_TRACES {
                    let oldest = store.order.remove(0);
                    store.traces.remove(&oldest);
                }
            }
            let trace = store.traces.entry(id).or_default();
            trace.spans.push(record);
            trace.last = Some(now);
            trace.pending = true;
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// Accepts the services' OTLP metrics and drops them: this viewer shows traces only, and a
/// service pointed at it should not log export errors every period.
#[derive(Debug, Clone, Copy, Default)]
struct MetricsSink;

#[tonic::async_trait]
impl MetricsService for MetricsSink {
    async fn export(
        &self,
        _request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    /// The traces idle for `idle`, marked as printed.
    fn finished(&self, idle: Duration) -> Vec<(Vec<SpanRecord>, bool)> {
        let now = Instant::now();
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        for id in store.order.clone() {
            if let Some(trace) = store.traces.get_mut(&id)
                && trace.pending
                && trace.last.is_some_and(|l| now.duration_since(l) >= idle)
            {
                trace.pending = false;
                out.push((trace.spans.clone(), trace.printed));
                trace.printed = true;
            }
        }
        out
    }
}

/// Runs the receiver until interrupted.
pub async fn run(args: TracesArgs) -> anyhow::Result<()> {
    let address: std::net::SocketAddr = args
        .listen
        .parse()
        .map_err(|e| crate::exit::usage(format!("--listen {}: {e}", args.listen)))?;
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir)?;
    }
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind(address).await?;
    println!(
        "receiving OTLP/gRPC traces on {} — set OTEL_EXPORTER_OTLP_ENDPOINT=http://{}",
        listener.local_addr()?,
        listener.local_addr()?
    );
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(receiver.clone()))
        .add_service(MetricsServiceServer::new(MetricsSink))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        );
    let idle = Duration::from_millis(args.idle_ms);
    let printer = async {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            for (spans, again) in receiver.finished(idle) {
                if spans.len() < args.min_spans {
                    continue;
                }
                if let Some(service) = &args.service
                    && !spans.iter().any(|s| &s.service == service)
                {
                    continue;
                }
                let text = waterfall::render(&spans);
                println!("{}{text}", if again { "(updated) " } else { "" });
                if let Some(dir) = &args.dir
                    && let Some(first) = spans.first()
                {
                    let path = dir.join(format!("{}.txt", first.trace_id));
                    if let Err(e) = std::fs::write(&path, &text) {
                        eprintln!("cannot write {}: {e}", path.display());
                    }
                }
            }
        }
    };
    tokio::select! {
        result = server => result?,
        _ = printer => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue as Any, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

    #[test]
    fn only_names_times_status_and_service_are_kept() {
        let attribute = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(Any {
                value: Some(AnyValue::StringValue(v.into())),
            }),
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![attribute("service.name", "appointments")],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![0xab; 16],
                        span_id: vec![1; 8],
                        name: "PatientsService/RegisterPatient".into(),
                        start_time_unix_nano: 10,
                        end_time_unix_nano: 2_000_010,
                        attributes: vec![attribute("patient.email", "maria@example.com")],
                        status: Some(Status {
                            code: StatusCode::Error as i32,
                            message: "maria@example.com invalid".into(),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let records = records(request);
        let text = waterfall::render(&records);
        assert_eq!(records[0].service, "appointments");
        assert_eq!(records[0].status, SpanStatus::Error);
        assert!(
            text.contains("PatientsService/RegisterPatient") && text.contains("2.0ms"),
            "{text}"
        );
        assert!(!text.contains("maria"), "{text}");
    }

    #[tokio::test]
    async fn a_trace_is_finished_after_its_idle_time_and_reprinted_when_a_span_arrives_late() {
        let receiver = Receiver::default();
        let span = |id: u8| ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![7; 16],
                        span_id: vec![id; 8],
                        name: format!("s{id}"),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        receiver.export(tonic::Request::new(span(1))).await.unwrap();
        assert!(receiver.finished(Duration::from_secs(60)).is_empty());
        let done = receiver.finished(Duration::ZERO);
        assert_eq!(done.len(), 1);
        assert!(!done[0].1);
        assert!(receiver.finished(Duration::ZERO).is_empty());
        receiver.export(tonic::Request::new(span(2))).await.unwrap();
        let again = receiver.finished(Duration::ZERO);
        assert_eq!(again[0].0.len(), 2);
        assert!(again[0].1);
    }
}
