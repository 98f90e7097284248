//! Plans and their fee schedules: insert, optimistic update (the schedule replaced with the
//! plan), read, list, and unit charges on a service date.

use super::{decode, version};
use crate::convert;
use clinicnet_proto::insurance::v1::Plan;
use prost::Message;
use sqlx::PgConnection;
use std::collections::HashMap;

/// The payer id of the plans that hold cash prices for self-pay superbills.
pub const SELF_PAY_PAYER: &str = "self-pay";

/// Inserts a new plan with its fee schedule; false when one with the id exists.
pub async fn insert(conn: &mut PgConnection, plan: &Plan) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO plans (plan_id, payer_id, version, body) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(&plan.plan_id)
    .bind(&plan.payer_id)
    .bind(version(plan.version))
    .bind(plan.encode_to_vec())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        write_fee_schedule(conn, plan).await?;
    }
    Ok(inserted == 1)
}

/// Replaces a plan whose stored version is `expected`; false when it is not.
pub async fn update(
    conn: &mut PgConnection,
    plan: &Plan,
    expected: u64,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE plans SET payer_id = $2, version = $3, body = $4, updated_at = now()
         WHERE plan_id = $1 AND version = $5",
    )
    .bind(&plan.plan_id)
    .bind(&plan.payer_id)
    .bind(version(plan.version))
    .bind(plan.encode_to_vec())
    .bind(version(expected))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 1 {
        sqlx::query("DELETE FROM fee_schedule_entries WHERE plan_id = $1")
            .bind(&plan.plan_id)
            .execute(&mut *conn)
            .await?;
        write_fee_schedule(conn, plan).await?;
    }
    Ok(updated == 1)
}

async fn write_fee_schedule(conn: &mut PgConnection, plan: &Plan) -> Result<(), sqlx::Error> {
    for entry in &plan.fee_schedule {
        let from = entry.effective_from.as_ref().and_then(convert::date);
        let until = entry.effective_until.as_ref().and_then(convert::date);
        sqlx::query(
            "INSERT INTO fee_schedule_entries (plan_id, procedure_code, unit_charge_cents, effective)
             VALUES ($1, $2, $3, daterange($4, $5, '[]'))",
        )
        .bind(&plan.plan_id)
        .bind(&entry.procedure_code)
        .bind(entry.unit_charge.as_ref().map_or(0, |m| m.amount_cents))
        .bind(from)
        .bind(until)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The payer id of a plan (for existence and scope checks), if it exists.
pub async fn payer_of(
    conn: &mut PgConnection,
    plan_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT payer_id FROM plans WHERE plan_id = $1")
        .bind(plan_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|(payer,)| payer))
}

/// One plan.
pub async fn get(conn: &mut PgConnection, plan_id: &str) -> Result<Option<Plan>, sqlx::Error> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT body FROM plans WHERE plan_id = $1")
        .bind(plan_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|(body,)| decode(&body)).transpose()
}

/// Up to `limit` plans after `after` (by id), of `payer_id` when given.
pub async fn list(
    conn: &mut PgConnection,
    payer_id: Option<&str>,
    after: &str,
    limit: i64,
) -> Result<Vec<Plan>, sqlx::Error> {
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
        "SELECT body FROM plans WHERE plan_id > $1 AND ($2::text IS NULL OR payer_id = $2)
         ORDER BY plan_id LIMIT $3",
    )
    .bind(after)
    .bind(payer_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|(body,)| decode(body)).collect()
}

/// The plan holding cash prices for superbills: the first plan of the payer `self-pay`.
pub async fn self_pay(conn: &mut PgConnection) -> Result<Option<Plan>, sqlx::Error> {
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT body FROM plans WHERE payer_id = $1 ORDER BY plan_id LIMIT 1")
            .bind(SELF_PAY_PAYER)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|(body,)| decode(&body)).transpose()
}

/// Unit charges in cents of the plan's codes on `service_date`.
pub async fn unit_charges(
    conn: &mut PgConnection,
    plan_id: &str,
    service_date: time::Date,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT procedure_code, unit_charge_cents FROM fee_schedule_entries
         WHERE plan_id = $1 AND effective @> $2::date",
    )
    .bind(plan_id)
    .bind(service_date)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().collect())
}
