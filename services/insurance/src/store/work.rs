//! The integrators' work table: items appended per payer under a gap-free sequence, read back in
//! order after a cursor. The payer's counter row is locked from allocation to commit, so items of
//! one payer become visible in sequence order and a reader never passes over a later-committing
//! earlier item.

use super::decode;
use clinicnet_proto::insurance::v1::WorkItem;
use prost::Message;
use sqlx::PgConnection;
use time::OffsetDateTime;

/// The channel notified (on commit) when work is appended.
pub const NOTIFY_CHANNEL: &str = "insurance_work";

/// Appends `item` (without its cursor) to the payer's work; returns its sequence number.
pub async fn append(
    conn: &mut PgConnection,
    payer_id: &str,
    patient_id: &str,
    item: &WorkItem,
) -> Result<i64, sqlx::Error> {
    let (seq,): (i64,) = sqlx::query_as(
        "INSERT INTO work_counters AS c (payer_id, last_seq) VALUES ($1, 1)
         ON CONFLICT (payer_id) DO UPDATE SET last_seq = c.last_seq + 1 RETURNING last_seq",
    )
    .bind(payer_id)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO work_items (payer_id, seq, patient_id, body) VALUES ($1, $2, $3, $4)")
        .bind(payer_id)
        .bind(seq)
        .bind(patient_id)
        .bind(item.encode_to_vec())
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NOTIFY_CHANNEL)
        .bind(payer_id)
        .execute(&mut *conn)
        .await?;
    Ok(seq)
}

/// A stored work item.
#[derive(Debug)]
pub struct Stored {
    /// Sequence number.
    pub seq: i64,
    /// The patient it concerns.
    pub patient_id: String,
    /// When appended.
    pub enqueued_at: OffsetDateTime,
    /// The item without cursor and time.
    pub item: WorkItem,
}

/// Up to `limit` of the payer's items after `after_seq`, in order.
pub async fn after(
    conn: &mut PgConnection,
    payer_id: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<Stored>, sqlx::Error> {
    let rows: Vec<(i64, String, OffsetDateTime, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, patient_id, enqueued_at, body FROM work_items
         WHERE payer_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(payer_id)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(seq, patient_id, enqueued_at, body)| {
            Ok(Stored {
                seq,
                patient_id,
                enqueued_at,
                item: decode(&body)?,
            })
        })
        .collect()
}

/// The payer's last sequence number handed out (0 when none).
pub async fn last_seq(conn: &mut PgConnection, payer_id: &str) -> Result<i64, sqlx::Error> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT last_seq FROM work_counters WHERE payer_id = $1")
            .bind(payer_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map_or(0, |(seq,)| seq))
}
