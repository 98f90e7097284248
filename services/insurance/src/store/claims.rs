//! Claims: insert (one original per visit), save after a change, read (optionally locked), list.

use super::{decode, uuid, version};
use crate::convert;
use clinicnet_proto::insurance::v1::Claim;
use prost::Message;
use sqlx::PgConnection;

struct Columns {
    service_date: Option<time::Date>,
    total: i64,
    paid: i64,
    adjusted: i64,
    submitted_at: Option<time::OffsetDateTime>,
    created_at: Option<time::OffsetDateTime>,
}

fn columns(claim: &Claim) -> Columns {
    Columns {
        service_date: claim.service_date.as_ref().and_then(convert::date),
        total: claim.total_charge.as_ref().map_or(0, |m| m.amount_cents),
        paid: claim.paid_amount.as_ref().map_or(0, |m| m.amount_cents),
        adjusted: claim
            .lines
            .iter()
            .flat_map(|l| &l.adjustments)
            .filter_map(|a| a.amount.as_ref())
            .map(|m| m.amount_cents)
            .sum(),
        submitted_at: claim.submit_time.as_ref().and_then(convert::instant),
        created_at: claim.create_time.as_ref().and_then(convert::instant),
    }
}

/// Inserts a claim; false when the visit already has its original claim.
pub async fn insert(conn: &mut PgConnection, claim: &Claim) -> Result<bool, sqlx::Error> {
    let c = columns(claim);
    let inserted = sqlx::query(
        "INSERT INTO claims (claim_id, status, frequency, clinic_id, payer_id, patient_id, appointment_id,
            service_date, total_charge_cents, paid_cents, adjusted_cents, submitted_at, created_at, version, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT DO NOTHING",
    )
    .bind(uuid(&claim.claim_id))
    .bind(i16::try_from(claim.status).unwrap_or(0))
    .bind(i16::try_from(claim.frequency).unwrap_or(0))
    .bind(&claim.clinic_id)
    .bind(&claim.payer_id)
    .bind(&claim.patient_id)
    .bind(&claim.appointment_id)
    .bind(c.service_date)
    .bind(c.total)
    .bind(c.paid)
    .bind(c.adjusted)
    .bind(c.submitted_at)
    .bind(c.created_at)
    .bind(version(claim.version))
    .bind(claim.encode_to_vec())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Saves a changed claim.
pub async fn save(conn: &mut PgConnection, claim: &Claim) -> Result<(), sqlx::Error> {
    let c = columns(claim);
    sqlx::query(
        "UPDATE claims SET status = $2, service_date = $3, total_charge_cents = $4, paid_cents = $5,
            adjusted_cents = $6, submitted_at = $7, version = $8, body = $9
         WHERE claim_id = $1",
    )
    .bind(uuid(&claim.claim_id))
    .bind(i16::try_from(claim.status).unwrap_or(0))
    .bind(c.service_date)
    .bind(c.total)
    .bind(c.paid)
    .bind(c.adjusted)
    .bind(c.submitted_at)
    .bind(version(claim.version))
    .bind(claim.encode_to_vec())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One claim; `lock` takes it FOR UPDATE.
pub async fn get(
    conn: &mut PgConnection,
    claim_id: &str,
    lock: bool,
) -> Result<Option<Claim>, sqlx::Error> {
    let Some(id) = uuid(claim_id) else {
        return Ok(None);
    };
    let sql = if lock {
        "SELECT body FROM claims WHERE claim_id = $1 FOR UPDATE"
    } else {
        "SELECT body FROM claims WHERE claim_id = $1"
    };
    let row: Option<(Vec<u8>,)> = sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|(body,)| decode(&body)).transpose()
}

/// Filters of a listing.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    /// Clinic.
    pub clinic_id: Option<&'a str>,
    /// Payer.
    pub payer_id: Option<&'a str>,
    /// Patient.
    pub patient_id: Option<&'a str>,
    /// Visit.
    pub appointment_id: Option<&'a str>,
    /// Statuses; empty means all.
    pub statuses: Vec<i16>,
    /// First service date.
    pub from: Option<time::Date>,
    /// Last service date.
    pub to: Option<time::Date>,
}

/// Up to `limit` claims, newest first, after the (created_at, id) position `after`.
pub async fn list(
    conn: &mut PgConnection,
    filter: &Filter<'_>,
    after: Option<(time::OffsetDateTime, uuid::Uuid)>,
    limit: i64,
) -> Result<Vec<Claim>, sqlx::Error> {
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
        "SELECT body FROM claims
         WHERE ($1::text IS NULL OR clinic_id = $1) AND ($2::text IS NULL OR payer_id = $2)
           AND ($3::text IS NULL OR patient_id = $3) AND ($4::text IS NULL OR appointment_id = $4)
           AND (cardinality($5::smallint[]) = 0 OR status = ANY($5))
           AND ($6::date IS NULL OR service_date >= $6) AND ($7::date IS NULL OR service_date <= $7)
           AND ($8::timestamptz IS NULL OR (created_at, claim_id) < ($8, $9))
         ORDER BY created_at DESC, claim_id DESC LIMIT $10",
    )
    .bind(filter.clinic_id)
    .bind(filter.payer_id)
    .bind(filter.patient_id)
    .bind(filter.appointment_id)
    .bind(&filter.statuses)
    .bind(filter.from)
    .bind(filter.to)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|(body,)| decode(body)).collect()
}
