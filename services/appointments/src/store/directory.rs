//! The directory read model: clinics (the directory's complete record, decoded on use), chairs and
//! providers. Written only by the directory consumer, newest aggregate version wins.

use crate::domain::clinic::ClinicView;
use clinicnet_proto::directory::v1::{Chair, Clinic, ClinicStatus, Provider, ProviderStatus};
use prost::Message;
use sqlx::PgConnection;

/// A chair of the read model.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChairRow {
    /// Id.
    pub chair_id: String,
    /// Modalities it supports.
    pub modalities: Vec<i16>,
    /// Whether it was retired.
    pub retired: bool,
}

/// A provider of the read model.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProviderRow {
    /// Id.
    pub provider_id: String,
    /// Whether the provider can be scheduled.
    pub active: bool,
    /// Type 1 NPI.
    pub npi: String,
    /// BCP 47 primary languages.
    pub languages: Vec<String>,
    /// Modalities offered.
    pub modalities: Vec<i16>,
    /// Clinics served.
    pub clinic_ids: Vec<String>,
}

impl ProviderRow {
    /// Whether the provider may be scheduled at `clinic_id` for `modality`.
    pub fn serves(&self, clinic_id: &str, modality: i32) -> bool {
        self.active
            && self.clinic_ids.iter().any(|c| c == clinic_id)
            && self.modalities.iter().any(|m| i32::from(*m) == modality)
    }
}

fn decode(profile: &[u8]) -> Result<Option<ClinicView>, sqlx::Error> {
    let clinic = Clinic::decode(profile).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(ClinicView::new(clinic))
}

/// One clinic; None when unknown (or its time zone is not a known one).
pub async fn clinic(
    conn: &mut PgConnection,
    clinic_id: &str,
) -> Result<Option<ClinicView>, sqlx::Error> {
    let profile: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT profile FROM clinics WHERE clinic_id = $1")
            .bind(clinic_id)
            .fetch_optional(conn)
            .await?;
    match profile {
        Some(profile) => decode(&profile),
        None => Ok(None),
    }
}

/// Every clinic that is not suspended.
pub async fn active_clinics(conn: &mut PgConnection) -> Result<Vec<ClinicView>, sqlx::Error> {
    let profiles: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT profile FROM clinics WHERE NOT suspended ORDER BY clinic_id")
            .fetch_all(conn)
            .await?;
    let mut clinics = Vec::with_capacity(profiles.len());
    for profile in profiles {
        clinics.extend(decode(&profile)?);
    }
    Ok(clinics)
}

/// A clinic's chairs, retired ones included.
pub async fn chairs_of(
    conn: &mut PgConnection,
    clinic_id: &str,
) -> Result<Vec<ChairRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT chair_id, modalities, retired FROM chairs WHERE clinic_id = $1 ORDER BY chair_id",
    )
    .bind(clinic_id)
    .fetch_all(conn)
    .await
}

/// One chair.
pub async fn chair(
    conn: &mut PgConnection,
    chair_id: &str,
) -> Result<Option<ChairRow>, sqlx::Error> {
    sqlx::query_as("SELECT chair_id, modalities, retired FROM chairs WHERE chair_id = $1")
        .bind(chair_id)
        .fetch_optional(conn)
        .await
}

const PROVIDER_COLUMNS: &str = "provider_id, active, npi, languages, modalities, clinic_ids";

/// One provider.
pub async fn provider(
    conn: &mut PgConnection,
    provider_id: &str,
) -> Result<Option<ProviderRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PROVIDER_COLUMNS} FROM providers WHERE provider_id = $1"
    ))
    .bind(provider_id)
    .fetch_optional(conn)
    .await
}

/// The providers serving a clinic, active or not.
pub async fn providers_of(
    conn: &mut PgConnection,
    clinic_id: &str,
) -> Result<Vec<ProviderRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PROVIDER_COLUMNS} FROM providers WHERE clinic_ids @> ARRAY[$1] ORDER BY provider_id"
    ))
    .bind(clinic_id)
    .fetch_all(conn)
    .await
}

fn modalities(values: &[i32]) -> Vec<i16> {
    values
        .iter()
        .filter_map(|m| i16::try_from(*m).ok())
        .collect()
}

/// Applies a clinic from an event, chairs included, unless a newer version is stored. Chairs
/// that are retired stop offering their free slots. Returns whether it was applied.
pub async fn apply_clinic(conn: &mut PgConnection, clinic: &Clinic) -> Result<bool, sqlx::Error> {
    let version = i64::try_from(clinic.version).unwrap_or(i64::MAX);
    let applied = sqlx::query(
        "INSERT INTO clinics (clinic_id, version, suspended, time_zone, profile) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (clinic_id) DO UPDATE
            SET version = EXCLUDED.version, suspended = EXCLUDED.suspended,
                time_zone = EXCLUDED.time_zone, profile = EXCLUDED.profile
          WHERE clinics.version < EXCLUDED.version",
    )
    .bind(&clinic.clinic_id)
    .bind(version)
    .bind(clinic.status == ClinicStatus::Suspended as i32)
    .bind(&clinic.time_zone)
    .bind(clinic.encode_to_vec())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if !applied {
        return Ok(false);
    }
    for chair in &clinic.chairs {
        apply_chair(conn, &clinic.clinic_id, version, chair).await?;
    }
    let retired: Vec<&str> = clinic
        .chairs
        .iter()
        .filter(|c| c.retired)
        .map(|c| c.chair_id.as_str())
        .collect();
    if !retired.is_empty() {
        sqlx::query("UPDATE slots SET status = 'busy-unavailable' WHERE chair_id = ANY($1) AND status = 'free'")
            .bind(&retired)
            .execute(&mut *conn)
            .await?;
    }
    Ok(true)
}

async fn apply_chair(
    conn: &mut PgConnection,
    clinic_id: &str,
    version: i64,
    chair: &Chair,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chairs (chair_id, clinic_id, modalities, retired, clinic_version) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (chair_id) DO UPDATE
            SET clinic_id = EXCLUDED.clinic_id, modalities = EXCLUDED.modalities,
                retired = EXCLUDED.retired, clinic_version = EXCLUDED.clinic_version
          WHERE chairs.clinic_version < EXCLUDED.clinic_version",
    )
    .bind(&chair.chair_id)
    .bind(clinic_id)
    .bind(modalities(&chair.modalities))
    .bind(chair.retired)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies a provider unless a newer version is stored.
pub async fn apply_provider(
    conn: &mut PgConnection,
    provider: &Provider,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO providers (provider_id, version, active, npi, languages, modalities, clinic_ids)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (provider_id) DO UPDATE
            SET version = EXCLUDED.version, active = EXCLUDED.active, npi = EXCLUDED.npi,
                languages = EXCLUDED.languages, modalities = EXCLUDED.modalities, clinic_ids = EXCLUDED.clinic_ids
          WHERE providers.version < EXCLUDED.version",
    )
    .bind(&provider.provider_id)
    .bind(i64::try_from(provider.version).unwrap_or(i64::MAX))
    .bind(provider.status == ProviderStatus::Active as i32)
    .bind(&provider.npi)
    .bind(&provider.languages)
    .bind(modalities(&provider.modalities))
    .bind(&provider.clinic_ids)
    .execute(conn)
    .await?;
    Ok(())
}
