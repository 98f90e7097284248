//! Appointments: insert, each lifecycle change (the status and what it records, version + 1), and
//! the reads the booking rules and listings need.

use sqlx::{PgConnection, postgres::types::PgRange};
use time::OffsetDateTime;
use uuid::Uuid;

/// A stored visit.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppointmentRow {
    /// Id.
    pub appointment_id: Uuid,
    /// Clinic.
    pub clinic_id: String,
    /// Chair, unless telehealth.
    pub chair_id: Option<String>,
    /// Provider.
    pub provider_id: String,
    /// Patient.
    pub patient_id: Uuid,
    /// Modality.
    pub modality: i16,
    /// FHIR status code.
    pub status: String,
    /// Visit start.
    pub start_time: OffsetDateTime,
    /// Visit end (monitoring included, buffers excluded).
    pub end_time: OffsetDateTime,
    /// Clinic's time zone.
    pub clinic_time_zone: String,
    /// Planned dose, mg.
    pub planned_dose_mg: i32,
    /// Course.
    pub course_id: Option<Uuid>,
    /// Session number in the course (0 when none).
    pub course_session_number: i32,
    /// Slot booked.
    pub slot_id: Uuid,
    /// Source visit of an integration session.
    pub integration_source_appointment_id: Option<Uuid>,
    /// `clinicnet.appointments.v1.CancellationReason`.
    pub cancel_reason: Option<i16>,
    /// Staff note.
    pub cancel_note: Option<String>,
    /// Late cancellation.
    pub cancel_late: Option<bool>,
    /// When cancelled.
    pub cancel_time: Option<OffsetDateTime>,
    /// When checked in.
    pub check_in_time: Option<OffsetDateTime>,
    /// Encoded `Completion`.
    pub completion: Option<Vec<u8>>,
    /// Integration window opened by this visit.
    pub integration_window: Option<PgRange<OffsetDateTime>>,
    /// When marked a no-show.
    pub no_show_time: Option<OffsetDateTime>,
    /// Reschedules so far.
    pub reschedule_count: i32,
    /// Version.
    pub version: i64,
    /// Booked at.
    pub create_time: OffsetDateTime,
    /// Last changed at.
    pub update_time: OffsetDateTime,
}

const COLUMNS: &str = "appointment_id, clinic_id, chair_id, provider_id, patient_id, modality, status, start_time,
    end_time, clinic_time_zone, planned_dose_mg, course_id, course_session_number, slot_id,
    integration_source_appointment_id, cancel_reason, cancel_note, cancel_late, cancel_time, check_in_time,
    completion, integration_window, no_show_time, reschedule_count, version, create_time, update_time";

/// A visit to book.
#[derive(Debug, Clone)]
pub struct NewAppointment<'a> {
    /// Id (its reservation's too).
    pub appointment_id: Uuid,
    /// Clinic.
    pub clinic_id: &'a str,
    /// Chair.
    pub chair_id: Option<&'a str>,
    /// Provider.
    pub provider_id: &'a str,
    /// Patient.
    pub patient_id: Uuid,
    /// Modality.
    pub modality: i16,
    /// Start.
    pub start_time: OffsetDateTime,
    /// End.
    pub end_time: OffsetDateTime,
    /// Clinic time zone.
    pub clinic_time_zone: &'a str,
    /// Planned dose.
    pub planned_dose_mg: i32,
    /// Course and session.
    pub course: Option<(Uuid, i32)>,
    /// Slot.
    pub slot_id: Uuid,
    /// Integration source.
    pub integration_source: Option<Uuid>,
}

/// Inserts a booked visit at version 1.
pub async fn insert(
    conn: &mut PgConnection,
    a: &NewAppointment<'_>,
) -> Result<AppointmentRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO appointments (appointment_id, clinic_id, chair_id, provider_id, patient_id, modality, status,
             start_time, end_time, clinic_time_zone, planned_dose_mg, course_id, course_session_number, slot_id,
             integration_source_appointment_id, version)
         VALUES ($1, $2, $3, $4, $5, $6, 'booked', $7, $8, $9, $10, $11, $12, $13, $14, 1)
         RETURNING {COLUMNS}"
    ))
    .bind(a.appointment_id)
    .bind(a.clinic_id)
    .bind(a.chair_id)
    .bind(a.provider_id)
    .bind(a.patient_id)
    .bind(a.modality)
    .bind(a.start_time)
    .bind(a.end_time)
    .bind(a.clinic_time_zone)
    .bind(a.planned_dose_mg)
    .bind(a.course.map(|c| c.0))
    .bind(a.course.map_or(0, |c| c.1))
    .bind(a.slot_id)
    .bind(a.integration_source)
    .fetch_one(conn)
    .await
}

/// One visit.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<AppointmentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM appointments WHERE appointment_id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// One visit, locked to the end of the transaction (lifecycle changes serialize on it).
pub async fn lock(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<AppointmentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM appointments WHERE appointment_id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A lifecycle change to write.
#[derive(Debug, Clone)]
pub enum Change<'a> {
    /// Moved to another slot.
    Rescheduled {
        /// New slot.
        slot_id: Uuid,
        /// New clinic.
        clinic_id: &'a str,
        /// New chair.
        chair_id: Option<&'a str>,
        /// New provider.
        provider_id: &'a str,
        /// New start.
        start: OffsetDateTime,
        /// New end.
        end: OffsetDateTime,
        /// Time zone of the new clinic.
        time_zone: &'a str,
    },
    /// Cancelled.
    Cancelled {
        /// Reason code.
        reason: i16,
        /// Note.
        note: &'a str,
        /// Late.
        late: bool,
    },
    /// Checked in.
    CheckedIn,
    /// Fulfilled.
    Fulfilled {
        /// Encoded completion.
        completion: Vec<u8>,
        /// When it ended.
        complete_time: OffsetDateTime,
        /// PHQ-9 total, when recorded.
        phq9_total: Option<i16>,
        /// Integration window opened.
        window: Option<(OffsetDateTime, OffsetDateTime)>,
    },
    /// No-show.
    NoShow,
}

/// Writes a change; the visit's version goes up by one.
pub async fn change(
    conn: &mut PgConnection,
    id: Uuid,
    change: &Change<'_>,
) -> Result<AppointmentRow, sqlx::Error> {
    let set = match change {
        Change::Rescheduled { .. } => {
            "slot_id = $2, clinic_id = $3, chair_id = $4, provider_id = $5, start_time = $6, end_time = $7,
             clinic_time_zone = $8, reschedule_count = reschedule_count + 1"
        }
        Change::Cancelled { .. } => {
            "status = 'cancelled', cancel_reason = $2, cancel_note = $3, cancel_late = $4, cancel_time = now()"
        }
        Change::CheckedIn => "status = 'checked-in', check_in_time = now()",
        Change::Fulfilled { .. } => {
            "status = 'fulfilled', completion = $2, complete_time = $3, phq9_total = $4, integration_window = $5"
        }
        Change::NoShow => "status = 'noshow', no_show_time = now()",
    };
    let sql = format!(
        "UPDATE appointments SET {set}, version = version + 1, update_time = now()
          WHERE appointment_id = $1 RETURNING {COLUMNS}"
    );
    let query = sqlx::query_as(&sql).bind(id);
    let query = match change {
        Change::Rescheduled {
            slot_id,
            clinic_id,
            chair_id,
            provider_id,
            start,
            end,
            time_zone,
        } => query
            .bind(*slot_id)
            .bind(*clinic_id)
            .bind(*chair_id)
            .bind(*provider_id)
            .bind(*start)
            .bind(*end)
            .bind(*time_zone),
        Change::Cancelled { reason, note, late } => query.bind(*reason).bind(*note).bind(*late),
        Change::CheckedIn | Change::NoShow => query,
        Change::Fulfilled {
            completion,
            complete_time,
            phq9_total,
            window,
        } => query
            .bind(completion.as_slice())
            .bind(*complete_time)
            .bind(*phq9_total)
            .bind(window.map(|(start, end)| super::range(start, end))),
    };
    query.fetch_one(conn).await
}

/// Filters of a listing.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this clinic.
    pub clinic_id: Option<String>,
    /// Only this patient.
    pub patient_id: Option<Uuid>,
    /// Only this course.
    pub course_id: Option<Uuid>,
    /// Only these status codes (empty: all).
    pub statuses: Vec<String>,
    /// Only visits starting in this window.
    pub starting_within: Option<(OffsetDateTime, OffsetDateTime)>,
}

/// A page of visits ordered by start then id, after the key `after`.
pub async fn list(
    conn: &mut PgConnection,
    filter: &Filter,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<AppointmentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM appointments
          WHERE ($1::text IS NULL OR clinic_id = $1)
            AND ($2::uuid IS NULL OR patient_id = $2)
            AND ($3::uuid IS NULL OR course_id = $3)
            AND (cardinality($4::text[]) = 0 OR status = ANY($4))
            AND ($5::timestamptz IS NULL OR (start_time >= $5 AND start_time < $6))
            AND ($7::timestamptz IS NULL OR (start_time, appointment_id) > ($7, $8))
          ORDER BY start_time, appointment_id LIMIT $9"
    ))
    .bind(&filter.clinic_id)
    .bind(filter.patient_id)
    .bind(filter.course_id)
    .bind(&filter.statuses)
    .bind(filter.starting_within.map(|w| w.0))
    .bind(filter.starting_within.map(|w| w.1))
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Whether the patient has any esketamine visit that was not cancelled, other than `except`.
pub async fn had_esketamine(
    conn: &mut PgConnection,
    patient_id: Uuid,
    esketamine: i16,
    except: Option<Uuid>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM appointments WHERE patient_id = $1 AND modality = $2
                          AND status NOT IN ('cancelled', 'noshow') AND ($3::uuid IS NULL OR appointment_id <> $3))",
    )
    .bind(patient_id)
    .bind(esketamine)
    .bind(except)
    .fetch_one(conn)
    .await
}

/// (session number, visit start) of a course's visits that were not cancelled, except `except`.
pub async fn course_visits(
    conn: &mut PgConnection,
    course_id: Uuid,
    except: Option<Uuid>,
) -> Result<Vec<(i32, OffsetDateTime)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT course_session_number, start_time FROM appointments
          WHERE course_id = $1 AND status <> 'cancelled' AND ($2::uuid IS NULL OR appointment_id <> $2)",
    )
    .bind(course_id)
    .bind(except)
    .fetch_all(conn)
    .await
}
