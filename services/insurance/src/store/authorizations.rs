//! Prior authorizations: insert, read (locked for a decision), save a decision, list, the
//! approvals of a patient with a payer, and the requests still awaiting a decision.

use super::{decode, uuid, version};
use crate::{convert, domain::authorization::Approval};
use clinicnet_proto::insurance::v1::{
    PriorAuthorization, PriorAuthorizationStatus, prior_authorization::Decision,
};
use prost::Message;
use sqlx::PgConnection;

fn columns(
    pa: &PriorAuthorization,
) -> (i16, Option<String>, Option<time::Date>, Option<time::Date>) {
    let stored = match PriorAuthorizationStatus::try_from(pa.status) {
        Ok(PriorAuthorizationStatus::Expired) => PriorAuthorizationStatus::Approved as i16,
        _ => i16::try_from(pa.status).unwrap_or(0),
    };
    match &pa.decision {
        Some(Decision::Approval(a)) => (
            stored,
            Some(a.authorization_number.clone()),
            a.valid_from.as_ref().and_then(convert::date),
            a.valid_until.as_ref().and_then(convert::date),
        ),
        _ => (stored, None, None, None),
    }
}

/// Inserts a request.
pub async fn insert(conn: &mut PgConnection, pa: &PriorAuthorization) -> Result<(), sqlx::Error> {
    let codes: Vec<String> = pa
        .services
        .iter()
        .map(|s| s.procedure_code.clone())
        .collect();
    sqlx::query(
        "INSERT INTO prior_authorizations (prior_authorization_id, patient_id, coverage_id, payer_id,
            clinic_id, status, procedure_codes, requested_at, version, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(uuid(&pa.prior_authorization_id))
    .bind(&pa.patient_id)
    .bind(uuid(&pa.coverage_id))
    .bind(&pa.payer_id)
    .bind(&pa.clinic_id)
    .bind(columns(pa).0)
    .bind(codes)
    .bind(pa.request_time.as_ref().and_then(convert::instant))
    .bind(version(pa.version))
    .bind(pa.encode_to_vec())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Saves a decision.
pub async fn save(conn: &mut PgConnection, pa: &PriorAuthorization) -> Result<(), sqlx::Error> {
    let (status, number, from, until) = columns(pa);
    sqlx::query(
        "UPDATE prior_authorizations SET status = $2, authorization_number = $3,
            valid = CASE WHEN $4::date IS NULL THEN NULL ELSE daterange($4, $5, '[]') END,
            version = $6, body = $7
         WHERE prior_authorization_id = $1",
    )
    .bind(uuid(&pa.prior_authorization_id))
    .bind(status)
    .bind(number)
    .bind(from)
    .bind(until)
    .bind(version(pa.version))
    .bind(pa.encode_to_vec())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One prior authorization as stored; `lock` takes it FOR UPDATE.
pub async fn get(
    conn: &mut PgConnection,
    id: &str,
    lock: bool,
) -> Result<Option<PriorAuthorization>, sqlx::Error> {
    let Some(id) = uuid(id) else {
        return Ok(None);
    };
    let sql = if lock {
        "SELECT body FROM prior_authorizations WHERE prior_authorization_id = $1 FOR UPDATE"
    } else {
        "SELECT body FROM prior_authorizations WHERE prior_authorization_id = $1"
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
    /// Patient.
    pub patient_id: Option<&'a str>,
    /// Clinic.
    pub clinic_id: Option<&'a str>,
    /// Payer.
    pub payer_id: Option<&'a str>,
    /// Stored status (EXPIRED is filtered by the caller from APPROVED).
    pub status: Option<i16>,
}

/// Up to `limit` requests, newest first, after the (requested_at, id) position `after`.
pub async fn list(
    conn: &mut PgConnection,
    filter: &Filter<'_>,
    after: Option<(time::OffsetDateTime, uuid::Uuid)>,
    limit: i64,
) -> Result<Vec<PriorAuthorization>, sqlx::Error> {
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
        "SELECT body FROM prior_authorizations
         WHERE ($1::text IS NULL OR patient_id = $1) AND ($2::text IS NULL OR clinic_id = $2)
           AND ($3::text IS NULL OR payer_id = $3) AND ($4::smallint IS NULL OR status = $4)
           AND ($5::timestamptz IS NULL OR (requested_at, prior_authorization_id) < ($5, $6))
         ORDER BY requested_at DESC, prior_authorization_id DESC LIMIT $7",
    )
    .bind(filter.patient_id)
    .bind(filter.clinic_id)
    .bind(filter.payer_id)
    .bind(filter.status)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|(body,)| decode(body)).collect()
}

/// The patient's approvals with the payer.
pub async fn approvals(
    conn: &mut PgConnection,
    patient_id: &str,
    payer_id: &str,
) -> Result<Vec<Approval>, sqlx::Error> {
    let rows: Vec<(String, time::Date, time::Date, Vec<String>)> = sqlx::query_as(
        "SELECT authorization_number, lower(valid), upper(valid) - 1, procedure_codes
         FROM prior_authorizations WHERE patient_id = $1 AND payer_id = $2 AND status = $3",
    )
    .bind(patient_id)
    .bind(payer_id)
    .bind(PriorAuthorizationStatus::Approved as i16)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(number, valid_from, valid_until, codes)| Approval {
            number,
            valid_from,
            valid_until,
            codes,
        })
        .collect())
}

/// How many of the patient's requests with the payer await a decision (requested or pended).
pub async fn undecided(
    conn: &mut PgConnection,
    patient_id: &str,
    payer_id: &str,
) -> Result<usize, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM prior_authorizations WHERE patient_id = $1 AND payer_id = $2 AND status IN ($3, $4)",
    )
    .bind(patient_id)
    .bind(payer_id)
    .bind(PriorAuthorizationStatus::Requested as i16)
    .bind(PriorAuthorizationStatus::Pended as i16)
    .fetch_one(&mut *conn)
    .await?;
    Ok(usize::try_from(count).unwrap_or(usize::MAX))
}
