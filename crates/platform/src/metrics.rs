//! RED metrics, named by the pinned OpenTelemetry semantic conventions: every RPC's duration by
//! method and status (`rpc.server.call.duration`, which also counts calls and errors), every
//! consumed event's processing duration by consumer and outcome (`messaging.process.duration`),
//! and dead letters (`clinicnet.consumer.dead_letters`). Exported over OTLP with the traces.

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram},
};
use std::{sync::OnceLock, time::Duration};

/// The instruments every service records into.
#[derive(Debug)]
pub struct Metrics {
    rpc_duration: Histogram<f64>,
    process_duration: Histogram<f64>,
    dead_letters: Counter<u64>,
}

/// The process's instruments, created from the global meter provider on first use (after
/// telemetry is initialised).
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let meter = opentelemetry::global::meter("clinicnet");
        Metrics {
            rpc_duration: meter
                .f64_histogram("rpc.server.call.duration")
                .with_unit("s")
                .with_description("Duration of RPCs served, by method and status")
                .build(),
            process_duration: meter
                .f64_histogram("messaging.process.duration")
                .with_unit("s")
                .with_description(
                    "Duration of processing one consumed event, by consumer and outcome",
                )
                .build(),
            dead_letters: meter
                .u64_counter("clinicnet.consumer.dead_letters")
                .with_unit("{event}")
                .with_description("Events moved to the dead-letter table, by consumer")
                .build(),
        }
    })
}

impl Metrics {
    /// One RPC served.
    pub fn rpc(&self, method: &str, status: &'static str, duration: Duration) {
        self.rpc_duration.record(
            duration.as_secs_f64(),
            &[
                KeyValue::new("rpc.system.name", "grpc"),
                KeyValue::new("rpc.method", method.to_owned()),
                KeyValue::new("rpc.response.status_code", status),
            ],
        );
    }

    /// One event processed by `consumer` with `outcome` (`applied`, `duplicate`, `failed`).
    pub fn processed(&self, consumer: &str, outcome: &'static str, duration: Duration) {
        self.process_duration.record(
            duration.as_secs_f64(),
            &[
                KeyValue::new("messaging.system", "nats"),
                KeyValue::new("messaging.consumer.group.name", consumer.to_owned()),
                KeyValue::new("clinicnet.outcome", outcome),
            ],
        );
    }

    /// One event dead-lettered by `consumer`.
    pub fn dead_lettered(&self, consumer: &str) {
        self.dead_letters.add(
            1,
            &[KeyValue::new(
                "messaging.consumer.group.name",
                consumer.to_owned(),
            )],
        );
    }
}
