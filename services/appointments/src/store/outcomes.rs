//! The scores outcomes are computed from: per patient, the baseline of the intake in force and the
//! PHQ-9 totals of their fulfilled sessions in a period.

use crate::domain::outcomes::PatientScores;
use sqlx::PgConnection;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// Scores of patients with a baseline, from fulfilled sessions of `modalities` completed in the
/// period, optionally at one clinic.
pub async fn scores(
    conn: &mut PgConnection,
    clinic_id: Option<&str>,
    modalities: &[i16],
    period: (OffsetDateTime, OffsetDateTime),
) -> Result<Vec<PatientScores>, sqlx::Error> {
    let rows: Vec<(Uuid, i16, OffsetDateTime, i16)> = sqlx::query_as(
        "SELECT a.patient_id, b.baseline_phq9, a.complete_time, a.phq9_total
           FROM appointments a
           JOIN LATERAL (SELECT baseline_phq9 FROM intakes i WHERE i.patient_id = a.patient_id
                          ORDER BY record_time DESC, intake_id DESC LIMIT 1) b ON true
          WHERE a.status = 'fulfilled' AND a.phq9_total IS NOT NULL
            AND a.complete_time >= $1 AND a.complete_time < $2
            AND a.modality = ANY($3) AND ($4::text IS NULL OR a.clinic_id = $4)",
    )
    .bind(period.0)
    .bind(period.1)
    .bind(modalities)
    .bind(clinic_id)
    .fetch_all(conn)
    .await?;
    let mut patients: BTreeMap<Uuid, PatientScores> = BTreeMap::new();
    for (patient_id, baseline, when, total) in rows {
        patients
            .entry(patient_id)
            .or_insert_with(|| PatientScores {
                baseline: i32::from(baseline),
                sessions: Vec::new(),
            })
            .sessions
            .push((when, i32::from(total)));
    }
    Ok(patients.into_values().collect())
}
