//! The append-only audit record of every read or change of patient data: who, in which role,
//! did what to which patient, when, under which trace. The table refuses UPDATE, DELETE and
//! TRUNCATE, even from its owner.

use crate::auth::Caller;
use sqlx::PgConnection;

/// Appends one audit entry; call it in the same transaction as the access it records.
pub async fn record(
    conn: &mut PgConnection,
    caller: &Caller,
    action: &str,
    patient_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (subject, role, action, patient_id, trace_id) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&caller.subject)
    .bind(caller.role.to_string())
    .bind(action)
    .bind(patient_id)
    .bind(crate::trace_context::current_trace_id())
    .execute(conn)
    .await?;
    Ok(())
}
