//! The read models fed by events: clinics (names, time zones, contacts, IV texts) from the
//! directory, patients' contacts and consent and visits from appointments. Each row keeps its
//! aggregate version; an older event never overwrites a newer one.

use sqlx::PgConnection;
use time::OffsetDateTime;

/// A clinic as notifications knows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClinicRow {
    /// Id.
    pub clinic_id: String,
    /// Version.
    pub version: i64,
    /// Public name.
    pub display_name: String,
    /// First location's name.
    pub location_name: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Front desk phone.
    pub front_desk_phone: String,
    /// Front desk email.
    pub front_desk_email: String,
    /// On-call phone.
    pub on_call_phone: String,
    /// On-call email.
    pub on_call_email: String,
    /// IV texts by locale directory.
    pub iv_instructions: sqlx::types::Json<std::collections::HashMap<String, String>>,
}

/// Stores `clinic` unless a newer version is there.
pub async fn upsert_clinic(conn: &mut PgConnection, clinic: &ClinicRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO clinics AS t (clinic_id, version, display_name, location_name, time_zone,
             front_desk_phone, front_desk_email, on_call_phone, on_call_email, iv_instructions)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (clinic_id) DO UPDATE SET version = EXCLUDED.version,
             display_name = EXCLUDED.display_name, location_name = EXCLUDED.location_name,
             time_zone = EXCLUDED.time_zone, front_desk_phone = EXCLUDED.front_desk_phone,
             front_desk_email = EXCLUDED.front_desk_email, on_call_phone = EXCLUDED.on_call_phone,
             on_call_email = EXCLUDED.on_call_email, iv_instructions = EXCLUDED.iv_instructions,
             updated_at = now()
         WHERE t.version < EXCLUDED.version",
    )
    .bind(&clinic.clinic_id)
    .bind(clinic.version)
    .bind(&clinic.display_name)
    .bind(&clinic.location_name)
    .bind(&clinic.time_zone)
    .bind(&clinic.front_desk_phone)
    .bind(&clinic.front_desk_email)
    .bind(&clinic.on_call_phone)
    .bind(&clinic.on_call_email)
    .bind(&clinic.iv_instructions)
    .execute(conn)
    .await?;
    Ok(())
}

/// The clinic, if known.
pub async fn clinic(
    conn: &mut PgConnection,
    clinic_id: &str,
) -> Result<Option<ClinicRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM clinics WHERE clinic_id = $1")
        .bind(clinic_id)
        .fetch_optional(conn)
        .await
}

/// A patient's contacts and consent (PHI).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PatientRow {
    /// Id.
    pub patient_id: String,
    /// Version.
    pub version: i64,
    /// Clinic where registered.
    pub registered_clinic_id: String,
    /// Locale number.
    pub locale: i16,
    /// Email.
    pub email: String,
    /// Email consent.
    pub email_consent: bool,
    /// Mobile phone.
    pub phone: String,
    /// SMS consent.
    pub sms_consent: bool,
}

/// Stores `patient` unless a newer version is there.
pub async fn upsert_patient(conn: &mut PgConnection, p: &PatientRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO patients AS t (patient_id, version, registered_clinic_id, locale, email,
             email_consent, phone, sms_consent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (patient_id) DO UPDATE SET version = EXCLUDED.version,
             registered_clinic_id = EXCLUDED.registered_clinic_id, locale = EXCLUDED.locale,
             email = EXCLUDED.email, email_consent = EXCLUDED.email_consent,
             phone = EXCLUDED.phone, sms_consent = EXCLUDED.sms_consent, updated_at = now()
         WHERE t.version < EXCLUDED.version",
    )
    .bind(&p.patient_id)
    .bind(p.version)
    .bind(&p.registered_clinic_id)
    .bind(p.locale)
    .bind(&p.email)
    .bind(p.email_consent)
    .bind(&p.phone)
    .bind(p.sms_consent)
    .execute(conn)
    .await?;
    Ok(())
}

/// The patient, if known.
pub async fn patient(
    conn: &mut PgConnection,
    patient_id: &str,
) -> Result<Option<PatientRow>, sqlx::Error> {
    sqlx::query_as("SELECT patient_id, version, registered_clinic_id, locale, email, email_consent, phone, sms_consent FROM patients WHERE patient_id = $1")
        .bind(patient_id)
        .fetch_optional(conn)
        .await
}

/// The locale of the patient with this mobile number, if one is known.
pub async fn locale_of_phone(
    conn: &mut PgConnection,
    phone: &str,
) -> Result<Option<i16>, sqlx::Error> {
    let row: Option<(i16,)> = sqlx::query_as(
        "SELECT locale FROM patients WHERE phone = $1 ORDER BY updated_at DESC LIMIT 1",
    )
    .bind(phone)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(l,)| l))
}

/// A visit as its latest event says.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppointmentRow {
    /// Id.
    pub appointment_id: String,
    /// Version.
    pub version: i64,
    /// Clinic.
    pub clinic_id: String,
    /// Patient.
    pub patient_id: String,
    /// Start.
    pub start_time: OffsetDateTime,
    /// Whether it will not take place.
    pub cancelled: bool,
}

/// Records a visit's new state; false when the stored version is as new or newer (a stale event).
pub async fn advance_appointment(
    conn: &mut PgConnection,
    a: &AppointmentRow,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO appointments AS t (appointment_id, version, clinic_id, patient_id, start_time, cancelled)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (appointment_id) DO UPDATE SET version = EXCLUDED.version,
             clinic_id = EXCLUDED.clinic_id, patient_id = EXCLUDED.patient_id,
             start_time = EXCLUDED.start_time, cancelled = EXCLUDED.cancelled, updated_at = now()
         WHERE t.version < EXCLUDED.version",
    )
    .bind(&a.appointment_id)
    .bind(a.version)
    .bind(&a.clinic_id)
    .bind(&a.patient_id)
    .bind(a.start_time)
    .bind(a.cancelled)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The visit, share-locked so a concurrent cancellation waits for (or is seen by) the caller.
pub async fn appointment_for_share(
    conn: &mut PgConnection,
    appointment_id: &str,
) -> Result<Option<AppointmentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT appointment_id, version, clinic_id, patient_id, start_time, cancelled
         FROM appointments WHERE appointment_id = $1 FOR SHARE",
    )
    .bind(appointment_id)
    .fetch_optional(conn)
    .await
}
