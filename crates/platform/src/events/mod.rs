//! The event backbone: every service publishes through the transactional [`outbox`] and its
//! [`relay`], and consumes through idempotent [`consumer`]s, on the JetStream [`streams`] declared
//! at start-up. Nothing else in the project talks to JetStream.

pub mod connection;
pub mod consumer;
pub mod outbox;
pub mod relay;
pub mod streams;

use clinicnet_proto::events::v1::EventMetadata;
use uuid::Uuid;

/// Header carrying the event id; JetStream de-duplicates on it inside the duplicate window.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// Metadata for a new event of `aggregate_type`/`aggregate_id` at `aggregate_version`, with a
/// fresh UUIDv7 event id and the current time.
pub fn metadata(
    producer: &str,
    aggregate_type: &str,
    aggregate_id: &str,
    aggregate_version: u64,
    request_id: &str,
) -> EventMetadata {
    let now = time::OffsetDateTime::now_utc();
    EventMetadata {
        event_id: Uuid::now_v7().to_string(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: now.unix_timestamp(),
            nanos: i32::try_from(now.nanosecond()).unwrap_or(0),
        }),
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        aggregate_version,
        producer: producer.to_owned(),
        request_id: request_id.to_owned(),
        causation_event_id: String::new(),
    }
}
