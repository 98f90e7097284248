//! Payers: insert, optimistic update, read and list.

use super::{decode, version};
use clinicnet_proto::insurance::v1::Payer;
use prost::Message;
use sqlx::PgConnection;

/// Inserts a new payer; false when one with the id exists.
pub async fn insert(conn: &mut PgConnection, payer: &Payer) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO payers (payer_id, version, body) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(&payer.payer_id)
    .bind(version(payer.version))
    .bind(payer.encode_to_vec())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Replaces a payer whose stored version is `expected`; false when it is not.
pub async fn update(
    conn: &mut PgConnection,
    payer: &Payer,
    expected: u64,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE payers SET version = $2, body = $3, updated_at = now() WHERE payer_id = $1 AND version = $4",
    )
    .bind(&payer.payer_id)
    .bind(version(payer.version))
    .bind(payer.encode_to_vec())
    .bind(version(expected))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// One payer.
pub async fn get(conn: &mut PgConnection, payer_id: &str) -> Result<Option<Payer>, sqlx::Error> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT body FROM payers WHERE payer_id = $1")
        .bind(payer_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|(body,)| decode(&body)).transpose()
}

/// Up to `limit` payers after `after` (by id).
pub async fn list(
    conn: &mut PgConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<Payer>, sqlx::Error> {
    let rows: Vec<(Vec<u8>,)> =
        sqlx::query_as("SELECT body FROM payers WHERE payer_id > $1 ORDER BY payer_id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter().map(|(body,)| decode(body)).collect()
}
