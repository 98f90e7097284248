//! Patients and their intakes. PHI lives here and nowhere else in the service's tables; callers
//! write the audit record in the same transaction as every read or change.

use clinicnet_proto::appointments::v1::Intake;
use prost::Message;
use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// A stored patient.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PatientRow {
    /// Id.
    pub patient_id: Uuid,
    /// Given name.
    pub given_name: String,
    /// Middle name.
    pub middle_name: String,
    /// Family name.
    pub family_name: String,
    /// Date of birth.
    pub birth_date: Date,
    /// `clinicnet.common.v1.Locale`.
    pub locale: i16,
    /// Email.
    pub email: String,
    /// Email consent.
    pub email_consent: bool,
    /// Mobile phone, E.164.
    pub mobile_phone: String,
    /// SMS consent.
    pub sms_consent: bool,
    /// When consent last changed.
    pub consent_update_time: Option<OffsetDateTime>,
    /// Clinic of registration.
    pub registered_clinic_id: String,
    /// Version.
    pub version: i64,
    /// Registered at.
    pub create_time: OffsetDateTime,
    /// Last changed at.
    pub update_time: OffsetDateTime,
}

/// A patient's details as written.
#[derive(Debug, Clone)]
pub struct PatientDetails {
    /// Given name.
    pub given_name: String,
    /// Middle name.
    pub middle_name: String,
    /// Family name.
    pub family_name: String,
    /// Date of birth.
    pub birth_date: Date,
    /// Locale.
    pub locale: i16,
    /// Email.
    pub email: String,
    /// Email consent.
    pub email_consent: bool,
    /// Mobile phone.
    pub mobile_phone: String,
    /// SMS consent.
    pub sms_consent: bool,
}

const COLUMNS: &str = "patient_id, given_name, middle_name, family_name, birth_date, locale, email, email_consent,
    mobile_phone, sms_consent, consent_update_time, registered_clinic_id, version, create_time, update_time";

/// Registers a patient at version 1.
pub async fn insert(
    conn: &mut PgConnection,
    patient_id: Uuid,
    clinic_id: &str,
    d: &PatientDetails,
) -> Result<PatientRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO patients (patient_id, given_name, middle_name, family_name, birth_date, locale, email,
             email_consent, mobile_phone, sms_consent, consent_update_time, registered_clinic_id, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now(), $11, 1)
         RETURNING {COLUMNS}"
    ))
    .bind(patient_id)
    .bind(&d.given_name)
    .bind(&d.middle_name)
    .bind(&d.family_name)
    .bind(d.birth_date)
    .bind(d.locale)
    .bind(&d.email)
    .bind(d.email_consent)
    .bind(&d.mobile_phone)
    .bind(d.sms_consent)
    .bind(clinic_id)
    .fetch_one(conn)
    .await
}

/// Replaces a patient's details when `expected_version` is current; None when it is not (or the
/// patient is unknown). The consent time moves only when a consent changes.
pub async fn update(
    conn: &mut PgConnection,
    patient_id: Uuid,
    expected_version: i64,
    d: &PatientDetails,
) -> Result<Option<PatientRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE patients SET given_name = $3, middle_name = $4, family_name = $5, birth_date = $6, locale = $7,
             email = $8, mobile_phone = $10,
             consent_update_time = CASE WHEN email_consent <> $9 OR sms_consent <> $11 THEN now() ELSE consent_update_time END,
             email_consent = $9, sms_consent = $11,
             version = version + 1, update_time = now()
         WHERE patient_id = $1 AND version = $2
         RETURNING {COLUMNS}"
    ))
    .bind(patient_id)
    .bind(expected_version)
    .bind(&d.given_name)
    .bind(&d.middle_name)
    .bind(&d.family_name)
    .bind(d.birth_date)
    .bind(d.locale)
    .bind(&d.email)
    .bind(d.email_consent)
    .bind(&d.mobile_phone)
    .bind(d.sms_consent)
    .fetch_optional(conn)
    .await
}

/// One patient.
pub async fn get(
    conn: &mut PgConnection,
    patient_id: Uuid,
) -> Result<Option<PatientRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM patients WHERE patient_id = $1"
    ))
    .bind(patient_id)
    .fetch_optional(conn)
    .await
}

/// Patients registered at a clinic or with a visit there, ordered by id, after `after`.
pub async fn list_by_clinic(
    conn: &mut PgConnection,
    clinic_id: &str,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<PatientRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM patients p
          WHERE (p.registered_clinic_id = $1
                 OR EXISTS (SELECT 1 FROM appointments a WHERE a.patient_id = p.patient_id AND a.clinic_id = $1))
            AND ($2::uuid IS NULL OR p.patient_id > $2)
          ORDER BY p.patient_id LIMIT $3"
    ))
    .bind(clinic_id)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Whether the patient is registered at, or has a visit at, one of `clinic_ids`.
pub async fn seen_at(
    conn: &mut PgConnection,
    patient_id: Uuid,
    clinic_ids: &[String],
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM patients WHERE patient_id = $1 AND registered_clinic_id = ANY($2))
             OR EXISTS (SELECT 1 FROM appointments WHERE patient_id = $1 AND clinic_id = ANY($2))",
    )
    .bind(patient_id)
    .bind(clinic_ids)
    .fetch_one(conn)
    .await
}

/// Records an intake with its id and record time; it is in force from now on. Returns it as stored.
pub async fn insert_intake(
    conn: &mut PgConnection,
    intake: &Intake,
    intake_id: Uuid,
    patient_id: Uuid,
) -> Result<Intake, sqlx::Error> {
    let record_time = OffsetDateTime::now_utc();
    let mut stored = intake.clone();
    stored.intake_id = intake_id.to_string();
    stored.record_time = Some(prost_types::Timestamp {
        seconds: record_time.unix_timestamp(),
        nanos: i32::try_from(record_time.nanosecond()).unwrap_or(0),
    });
    let baseline = stored.baseline_phq9.as_ref().map_or(0, |p| p.total_score);
    sqlx::query(
        "INSERT INTO intakes (intake_id, patient_id, clinic_id, record_time, baseline_phq9, intake)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(intake_id)
    .bind(patient_id)
    .bind(&stored.clinic_id)
    .bind(record_time)
    .bind(i16::try_from(baseline).unwrap_or(0))
    .bind(stored.encode_to_vec())
    .execute(conn)
    .await?;
    Ok(stored)
}

/// The intake in force: the latest recorded.
pub async fn intake_in_force(
    conn: &mut PgConnection,
    patient_id: Uuid,
) -> Result<Option<Intake>, sqlx::Error> {
    let stored: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT intake FROM intakes WHERE patient_id = $1 ORDER BY record_time DESC, intake_id DESC LIMIT 1",
    )
    .bind(patient_id)
    .fetch_optional(conn)
    .await?;
    stored
        .map(|bytes| Intake::decode(bytes.as_slice()).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .transpose()
}

/// How many intakes the patient has on file (the intake aggregate's version).
pub async fn intake_count(conn: &mut PgConnection, patient_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM intakes WHERE patient_id = $1")
        .bind(patient_id)
        .fetch_one(conn)
        .await
}
