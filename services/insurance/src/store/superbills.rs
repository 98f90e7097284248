//! Superbills: insert (one per visit) and read by id or by visit.

use super::{decode, uuid};
use clinicnet_proto::insurance::v1::Superbill;
use prost::Message;
use sqlx::PgConnection;

/// Inserts a superbill; false when the visit already has one.
pub async fn insert(conn: &mut PgConnection, superbill: &Superbill) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO superbills (superbill_id, appointment_id, patient_id, clinic_id, body)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(uuid(&superbill.superbill_id))
    .bind(&superbill.appointment_id)
    .bind(&superbill.patient_id)
    .bind(&superbill.clinic_id)
    .bind(superbill.encode_to_vec())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// A superbill by its id.
pub async fn by_id(conn: &mut PgConnection, id: &str) -> Result<Option<Superbill>, sqlx::Error> {
    let Some(id) = uuid(id) else {
        return Ok(None);
    };
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT body FROM superbills WHERE superbill_id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|(body,)| decode(&body)).transpose()
}

/// The superbill of a visit.
pub async fn by_appointment(
    conn: &mut PgConnection,
    appointment_id: &str,
) -> Result<Option<Superbill>, sqlx::Error> {
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT body FROM superbills WHERE appointment_id = $1")
            .bind(appointment_id)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|(body,)| decode(&body)).transpose()
}
