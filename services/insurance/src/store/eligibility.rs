//! Eligibility checks: requests sent to the payer, answers, the cache of fresh answers, and the
//! latest check of a coverage on a service date.

use super::{decode, uuid};
use crate::convert;
use clinicnet_proto::insurance::v1::{EligibilityCheck, EligibilityStatus};
use prost::Message;
use sqlx::PgConnection;
use time::OffsetDateTime;

/// Inserts a check.
pub async fn insert(conn: &mut PgConnection, check: &EligibilityCheck) -> Result<(), sqlx::Error> {
    let requested = check.request_time.as_ref().and_then(convert::instant);
    let deadline = check.deadline.as_ref().and_then(convert::instant);
    let answered = check
        .answer
        .as_ref()
        .and_then(|a| a.answer_time.as_ref())
        .and_then(convert::instant);
    sqlx::query(
        "INSERT INTO eligibility_checks (check_id, trace_number, coverage_id, payer_id, service_date,
            procedure_codes, status, from_cache, requested_at, deadline, answered_at, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(uuid(&check.check_id))
    .bind(&check.trace_number)
    .bind(uuid(&check.coverage_id))
    .bind(&check.payer_id)
    .bind(check.service_date.as_ref().and_then(convert::date))
    .bind(&check.procedure_codes)
    .bind(stored_status(check))
    .bind(check.from_cache)
    .bind(requested)
    .bind(deadline)
    .bind(answered)
    .bind(check.encode_to_vec())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn stored_status(check: &EligibilityCheck) -> i16 {
    if check.answer.is_some() {
        EligibilityStatus::Answered as i16
    } else {
        EligibilityStatus::Pending as i16
    }
}

/// One check as stored (PENDING even past its deadline).
pub async fn get(
    conn: &mut PgConnection,
    check_id: &str,
) -> Result<Option<EligibilityCheck>, sqlx::Error> {
    let Some(id) = uuid(check_id) else {
        return Ok(None);
    };
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT body FROM eligibility_checks WHERE check_id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|(body,)| decode(&body)).transpose()
}

/// The request sent with `trace_number`, locked for answering.
pub async fn by_trace_for_update(
    conn: &mut PgConnection,
    trace_number: &str,
) -> Result<Option<EligibilityCheck>, sqlx::Error> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as(
        "SELECT body FROM eligibility_checks WHERE trace_number = $1 AND NOT from_cache FOR UPDATE",
    )
    .bind(trace_number)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|(body,)| decode(&body)).transpose()
}

/// Records the answer of a check (its body carries the answer).
pub async fn save_answer(
    conn: &mut PgConnection,
    check: &EligibilityCheck,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE eligibility_checks SET status = $2, answered_at = $3, body = $4 WHERE check_id = $1",
    )
    .bind(uuid(&check.check_id))
    .bind(stored_status(check))
    .bind(
        check
            .answer
            .as_ref()
            .and_then(|a| a.answer_time.as_ref())
            .and_then(convert::instant),
    )
    .bind(check.encode_to_vec())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The latest answer for the coverage and date, answered after `answered_after`, that asked at
/// least about `codes`.
pub async fn cached(
    conn: &mut PgConnection,
    coverage_id: &str,
    service_date: time::Date,
    codes: &[String],
    answered_after: OffsetDateTime,
) -> Result<Option<EligibilityCheck>, sqlx::Error> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as(
        "SELECT body FROM eligibility_checks
         WHERE coverage_id = $1 AND service_date = $2 AND status = $3 AND NOT from_cache
           AND answered_at > $4 AND procedure_codes @> $5
         ORDER BY answered_at DESC LIMIT 1",
    )
    .bind(uuid(coverage_id))
    .bind(service_date)
    .bind(EligibilityStatus::Answered as i16)
    .bind(answered_after)
    .bind(codes)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|(body,)| decode(&body)).transpose()
}

/// The latest check of the coverage for `service_date`, if any.
pub async fn latest(
    conn: &mut PgConnection,
    coverage_id: &str,
    service_date: time::Date,
) -> Result<Option<EligibilityCheck>, sqlx::Error> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as(
        "SELECT body FROM eligibility_checks WHERE coverage_id = $1 AND service_date = $2
         ORDER BY requested_at DESC LIMIT 1",
    )
    .bind(uuid(coverage_id))
    .bind(service_date)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|(body,)| decode(&body)).transpose()
}
