//! The transactional outbox: a service writes its state change and its events in one database
//! transaction through [`append`]; the relay publishes them after commit. A rolled-back
//! transaction leaves no row, so it publishes nothing.

use clinicnet_proto::events::v1::EventMetadata;
use sqlx::PgConnection;
use uuid::Uuid;

/// The channel the relay listens on; notified (on commit) by every append.
pub const NOTIFY_CHANNEL: &str = "clinicnet_outbox";

/// Records `event` (whose `metadata` names its id and aggregate) for publishing on `subject`,
/// inside the caller's transaction, with the current trace context.
pub async fn append<M: prost::Message>(
    conn: &mut PgConnection,
    subject: &str,
    metadata: &EventMetadata,
    event: &M,
) -> Result<(), sqlx::Error> {
    let event_id = Uuid::parse_str(&metadata.event_id)
        .map_err(|e| sqlx::Error::Protocol(format!("event id is not a UUID: {e}")))?;
    let carrier = serde_json::to_value(crate::trace_context::current_carrier())
        .unwrap_or(serde_json::Value::Array(vec![]));
    sqlx::query(
        "INSERT INTO outbox (event_id, subject, aggregate_id, aggregate_version, payload, trace_carrier)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event_id)
    .bind(subject)
    .bind(&metadata.aggregate_id)
    .bind(i64::try_from(metadata.aggregate_version).unwrap_or(i64::MAX))
    .bind(event.encode_to_vec())
    .bind(carrier)
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
