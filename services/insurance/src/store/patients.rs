//! The read models fed by appointments' events: patients (member details on work items, the
//! clinic that scopes a partner's access) and their intake in force (clinical facts). Older
//! versions arriving late are ignored.

use super::{decode, version};
use clinicnet_proto::appointments::v1::{Intake, Patient};
use prost::Message;
use sqlx::PgConnection;

/// Stores `patient` unless a newer version is held.
pub async fn upsert(conn: &mut PgConnection, patient: &Patient) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO patients AS p (patient_id, registered_clinic_id, version, body) VALUES ($1, $2, $3, $4)
         ON CONFLICT (patient_id) DO UPDATE
            SET registered_clinic_id = EXCLUDED.registered_clinic_id, version = EXCLUDED.version, body = EXCLUDED.body
            WHERE p.version < EXCLUDED.version",
    )
    .bind(&patient.patient_id)
    .bind(&patient.registered_clinic_id)
    .bind(version(patient.version))
    .bind(patient.encode_to_vec())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One patient.
pub async fn get(
    conn: &mut PgConnection,
    patient_id: &str,
) -> Result<Option<Patient>, sqlx::Error> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT body FROM patients WHERE patient_id = $1")
        .bind(patient_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|(body,)| decode(&body)).transpose()
}

/// Stores `intake` as the patient's intake in force unless a newer one (by event version) is held.
pub async fn upsert_intake(
    conn: &mut PgConnection,
    intake: &Intake,
    event_version: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO intakes AS i (patient_id, version, body) VALUES ($1, $2, $3)
         ON CONFLICT (patient_id) DO UPDATE SET version = EXCLUDED.version, body = EXCLUDED.body
            WHERE i.version < EXCLUDED.version",
    )
    .bind(&intake.patient_id)
    .bind(version(event_version))
    .bind(intake.encode_to_vec())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The patient's intake in force.
pub async fn intake(
    conn: &mut PgConnection,
    patient_id: &str,
) -> Result<Option<Intake>, sqlx::Error> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT body FROM intakes WHERE patient_id = $1")
        .bind(patient_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|(body,)| decode(&body)).transpose()
}
