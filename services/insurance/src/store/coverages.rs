//! Coverages: insert and replace (the database refuses two active coverages of a patient with
//! the same priority over overlapping dates), read, list, and the primary coverage on a date.

use super::{decode, uuid, version};
use crate::convert;
use clinicnet_proto::insurance::v1::{Coverage, CoverageStatus};
use prost::Message;
use sqlx::PgConnection;

fn dates(coverage: &Coverage) -> (Option<time::Date>, Option<time::Date>) {
    (
        coverage.effective_from.as_ref().and_then(convert::date),
        coverage.effective_until.as_ref().and_then(convert::date),
    )
}

/// Inserts a coverage (its id must be a UUID).
pub async fn insert(conn: &mut PgConnection, coverage: &Coverage) -> Result<(), sqlx::Error> {
    let (from, until) = dates(coverage);
    sqlx::query(
        "INSERT INTO coverages (coverage_id, patient_id, payer_id, plan_id, priority, status, effective, version, body)
         VALUES ($1, $2, $3, $4, $5, $6, daterange($7, $8, '[]'), $9, $10)",
    )
    .bind(uuid(&coverage.coverage_id))
    .bind(&coverage.patient_id)
    .bind(&coverage.payer_id)
    .bind(&coverage.plan_id)
    .bind(i16::try_from(coverage.priority).unwrap_or(0))
    .bind(i16::try_from(coverage.status).unwrap_or(0))
    .bind(from)
    .bind(until)
    .bind(version(coverage.version))
    .bind(coverage.encode_to_vec())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Replaces a coverage whose stored version is `expected`; false when it is not.
pub async fn update(
    conn: &mut PgConnection,
    coverage: &Coverage,
    expected: u64,
) -> Result<bool, sqlx::Error> {
    let (from, until) = dates(coverage);
    let updated = sqlx::query(
        "UPDATE coverages SET payer_id = $2, plan_id = $3, priority = $4, status = $5,
            effective = daterange($6, $7, '[]'), version = $8, body = $9
         WHERE coverage_id = $1 AND version = $10",
    )
    .bind(uuid(&coverage.coverage_id))
    .bind(&coverage.payer_id)
    .bind(&coverage.plan_id)
    .bind(i16::try_from(coverage.priority).unwrap_or(0))
    .bind(i16::try_from(coverage.status).unwrap_or(0))
    .bind(from)
    .bind(until)
    .bind(version(coverage.version))
    .bind(coverage.encode_to_vec())
    .bind(version(expected))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// One coverage.
pub async fn get(
    conn: &mut PgConnection,
    coverage_id: &str,
) -> Result<Option<Coverage>, sqlx::Error> {
    let Some(id) = uuid(coverage_id) else {
        return Ok(None);
    };
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT body FROM coverages WHERE coverage_id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|(body,)| decode(&body)).transpose()
}

/// Up to `limit` of the patient's coverages, primary first, after position `offset`.
pub async fn list(
    conn: &mut PgConnection,
    patient_id: &str,
    include_removed: bool,
    offset: i64,
    limit: i64,
) -> Result<Vec<Coverage>, sqlx::Error> {
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
        "SELECT body FROM coverages WHERE patient_id = $1 AND ($2 OR status = $3)
         ORDER BY priority, lower(effective) DESC, coverage_id OFFSET $4 LIMIT $5",
    )
    .bind(patient_id)
    .bind(include_removed)
    .bind(CoverageStatus::Active as i16)
    .bind(offset)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|(body,)| decode(body)).collect()
}

/// The patient's active coverage that pays first on `date`.
pub async fn primary_on(
    conn: &mut PgConnection,
    patient_id: &str,
    date: time::Date,
) -> Result<Option<Coverage>, sqlx::Error> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as(
        "SELECT body FROM coverages WHERE patient_id = $1 AND status = $2 AND effective @> $3::date
         ORDER BY priority LIMIT 1",
    )
    .bind(patient_id)
    .bind(CoverageStatus::Active as i16)
    .bind(date)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|(body,)| decode(&body)).transpose()
}
