//! Holds: short-lived claims on a slot while a booking is completed. The hold's reservation keeps
//! the chair and provider; the hold row keeps its lifecycle (active, consumed, released, expired).

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// A stored hold.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HoldRow {
    /// Id (also its reservation's).
    pub hold_id: Uuid,
    /// The held slot.
    pub slot_id: Uuid,
    /// The patient it is for.
    pub patient_id: Option<Uuid>,
    /// active, consumed, released or expired.
    pub status: String,
    /// When it lapses.
    pub expire_time: OffsetDateTime,
    /// When it was taken.
    pub create_time: OffsetDateTime,
    /// Whether it has lapsed by database time.
    pub lapsed: bool,
}

const COLUMNS: &str = "hold_id, slot_id, patient_id, status, expire_time, create_time, expire_time <= now() AS lapsed";

/// Records an active hold (its reservation exists already).
pub async fn insert(
    conn: &mut PgConnection,
    hold_id: Uuid,
    slot_id: Uuid,
    patient_id: Option<Uuid>,
    expire_time: OffsetDateTime,
) -> Result<HoldRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO holds (hold_id, slot_id, patient_id, status, expire_time) VALUES ($1, $2, $3, 'active', $4)
         RETURNING {COLUMNS}"
    ))
    .bind(hold_id)
    .bind(slot_id)
    .bind(patient_id)
    .bind(expire_time)
    .fetch_one(conn)
    .await
}

/// One hold, locked for the rest of the transaction.
pub async fn lock(conn: &mut PgConnection, hold_id: Uuid) -> Result<Option<HoldRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM holds WHERE hold_id = $1 FOR UPDATE"
    ))
    .bind(hold_id)
    .fetch_optional(conn)
    .await
}

/// Moves a hold to `status` and frees its reservation.
pub async fn finish(
    conn: &mut PgConnection,
    hold_id: Uuid,
    status: &str,
) -> Result<HoldRow, sqlx::Error> {
    super::reservations::release(conn, hold_id).await?;
    sqlx::query_as(&format!(
        "UPDATE holds SET status = $2 WHERE hold_id = $1 RETURNING {COLUMNS}"
    ))
    .bind(hold_id)
    .bind(status)
    .fetch_one(conn)
    .await
}
