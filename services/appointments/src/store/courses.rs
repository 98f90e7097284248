//! Course plans (configured data) and treatment courses with their planned sessions.

use crate::domain::course::{Phase, PlannedSession};
use sqlx::{PgConnection, types::Json};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// A configured plan.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlanRow {
    /// Code.
    pub plan_code: String,
    /// Name shown to staff.
    pub display_name: String,
    /// Modality of every session.
    pub modality: i16,
    /// Phases in order.
    pub phases: Json<Vec<Phase>>,
}

/// Configured plans ordered by code, after `after`, optionally of one modality.
pub async fn plans(
    conn: &mut PgConnection,
    modality: Option<i16>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<PlanRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT plan_code, display_name, modality, phases FROM course_plans
          WHERE ($1::smallint IS NULL OR modality = $1) AND ($2::text IS NULL OR plan_code > $2)
          ORDER BY plan_code LIMIT $3",
    )
    .bind(modality)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// One configured plan.
pub async fn plan(
    conn: &mut PgConnection,
    plan_code: &str,
) -> Result<Option<PlanRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT plan_code, display_name, modality, phases FROM course_plans WHERE plan_code = $1",
    )
    .bind(plan_code)
    .fetch_optional(conn)
    .await
}

/// A stored course.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CourseRow {
    /// Id.
    pub course_id: Uuid,
    /// Patient.
    pub patient_id: Uuid,
    /// Clinic.
    pub clinic_id: String,
    /// Encoded `CoursePlan` as configured at creation.
    pub plan: Vec<u8>,
    /// proposed, booked or completed.
    pub status: String,
    /// First local date.
    pub start_date: Date,
    /// Encoded `CoursePreferences`.
    pub preferences: Vec<u8>,
    /// Version.
    pub version: i64,
    /// Created at.
    pub create_time: OffsetDateTime,
    /// Last changed at.
    pub update_time: OffsetDateTime,
}

/// A stored session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    /// Number.
    pub session_number: i32,
    /// Phase index.
    pub phase_index: i32,
    /// Phase name.
    pub phase_name: String,
    /// First date.
    pub earliest_date: Date,
    /// Last date.
    pub latest_date: Date,
    /// Planned dose.
    pub planned_dose_mg: i32,
    /// Visit booked for it.
    pub appointment_id: Option<Uuid>,
}

impl SessionRow {
    /// The session as the domain plans it.
    pub fn planned(&self) -> PlannedSession {
        PlannedSession {
            number: self.session_number,
            phase_index: usize::try_from(self.phase_index).unwrap_or(0),
            earliest: self.earliest_date,
            latest: self.latest_date,
            planned_dose_mg: self.planned_dose_mg,
        }
    }
}

const COURSE_COLUMNS: &str = "course_id, patient_id, clinic_id, plan, status, start_date, preferences, version, create_time, update_time";

/// A new course.
#[derive(Debug, Clone)]
pub struct NewCourse<'a> {
    /// Id.
    pub course_id: Uuid,
    /// Patient.
    pub patient_id: Uuid,
    /// Clinic.
    pub clinic_id: &'a str,
    /// Encoded plan.
    pub plan: Vec<u8>,
    /// Start date.
    pub start_date: Date,
    /// Encoded preferences.
    pub preferences: Vec<u8>,
}

/// Creates a proposed course and its sessions.
pub async fn insert(
    conn: &mut PgConnection,
    course: &NewCourse<'_>,
    phases: &[Phase],
    sessions: &[PlannedSession],
) -> Result<CourseRow, sqlx::Error> {
    let row: CourseRow = sqlx::query_as(&format!(
        "INSERT INTO courses (course_id, patient_id, clinic_id, plan, status, start_date, preferences, version)
         VALUES ($1, $2, $3, $4, 'proposed', $5, $6, 1) RETURNING {COURSE_COLUMNS}"
    ))
    .bind(course.course_id)
    .bind(course.patient_id)
    .bind(course.clinic_id)
    .bind(&course.plan)
    .bind(course.start_date)
    .bind(&course.preferences)
    .fetch_one(&mut *conn)
    .await?;
    let name = |s: &PlannedSession| {
        phases
            .get(s.phase_index)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    };
    sqlx::query(
        "INSERT INTO course_sessions (course_id, session_number, phase_index, phase_name, earliest_date, latest_date, planned_dose_mg)
         SELECT $1, n, p, pn, e, l, d FROM UNNEST($2::int[], $3::int[], $4::text[], $5::date[], $6::date[], $7::int[])
             AS u(n, p, pn, e, l, d)",
    )
    .bind(course.course_id)
    .bind(sessions.iter().map(|s| s.number).collect::<Vec<_>>())
    .bind(sessions.iter().map(|s| i32::try_from(s.phase_index).unwrap_or(i32::MAX)).collect::<Vec<_>>())
    .bind(sessions.iter().map(name).collect::<Vec<_>>())
    .bind(sessions.iter().map(|s| s.earliest).collect::<Vec<_>>())
    .bind(sessions.iter().map(|s| s.latest).collect::<Vec<_>>())
    .bind(sessions.iter().map(|s| s.planned_dose_mg).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(row)
}

/// One course, optionally locked to the end of the transaction.
pub async fn get(
    conn: &mut PgConnection,
    course_id: Uuid,
    lock: bool,
) -> Result<Option<CourseRow>, sqlx::Error> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(&format!(
        "SELECT {COURSE_COLUMNS} FROM courses WHERE course_id = $1{lock}"
    ))
    .bind(course_id)
    .fetch_optional(conn)
    .await
}

/// A course's sessions in order.
pub async fn sessions(
    conn: &mut PgConnection,
    course_id: Uuid,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT session_number, phase_index, phase_name, earliest_date, latest_date, planned_dose_mg, appointment_id
           FROM course_sessions WHERE course_id = $1 ORDER BY session_number",
    )
    .bind(course_id)
    .fetch_all(conn)
    .await
}

/// Records the visit booked for a session.
pub async fn assign(
    conn: &mut PgConnection,
    course_id: Uuid,
    session: i32,
    appointment_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE course_sessions SET appointment_id = $3 WHERE course_id = $1 AND session_number = $2")
        .bind(course_id)
        .bind(session)
        .bind(appointment_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Moves a course to `status` (version + 1).
pub async fn set_status(
    conn: &mut PgConnection,
    course_id: Uuid,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE courses SET status = $2, version = version + 1, update_time = now() WHERE course_id = $1")
        .bind(course_id)
        .bind(status)
        .execute(conn)
        .await?;
    Ok(())
}

/// Completes a booked course once none of its visits is still booked or checked in.
pub async fn complete_if_done(conn: &mut PgConnection, course_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE courses SET status = 'completed', version = version + 1, update_time = now()
          WHERE course_id = $1 AND status = 'booked'
            AND NOT EXISTS (SELECT 1 FROM appointments
                             WHERE course_id = $1 AND status IN ('booked', 'checked-in'))",
    )
    .bind(course_id)
    .execute(conn)
    .await?;
    Ok(())
}
