//! Providers: the row with its profile, and which clinics each serves. Changes are
//! version-guarded like clinics'.

use super::{api_version, db_version, decode, timestamp};
use crate::validate::provider::ValidProvider;
use clinicnet_proto::directory::v1 as pb;
use prost::Message;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

const COLUMNS: &str = "p.id, p.version, p.status, p.profile, p.created_at, p.updated_at";

#[derive(sqlx::FromRow)]
struct ProviderRow {
    id: Uuid,
    version: i64,
    status: String,
    profile: Vec<u8>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl ProviderRow {
    fn into_provider(self) -> Result<pb::Provider, sqlx::Error> {
        let profile: pb::Provider = decode(&self.profile)?;
        let status = if self.status == "inactive" {
            pb::ProviderStatus::Inactive
        } else {
            pb::ProviderStatus::Active
        };
        Ok(pb::Provider {
            provider_id: self.id.to_string(),
            status: status as i32,
            version: api_version(self.version),
            create_time: Some(timestamp(self.created_at)),
            update_time: Some(timestamp(self.updated_at)),
            ..profile
        })
    }
}

/// The time zone of each of `ids` that names a clinic.
pub async fn clinic_time_zones(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, time_zone FROM clinics WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(conn)
        .await
}

/// Registers a provider at version 1, active.
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    provider: &ValidProvider,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO providers (id, version, status, npi, profile) VALUES ($1, 1, 'active', $2, $3)",
    )
    .bind(id)
    .bind(&provider.profile.npi)
    .bind(provider.profile.encode_to_vec())
    .execute(&mut *conn)
    .await?;
    link_clinics(conn, id, &provider.clinic_ids).await
}

/// Replaces a provider when the version is `expected`; false when it is not.
pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    expected: u64,
    provider: &ValidProvider,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE providers SET version = version + 1, updated_at = now(), npi = $3, profile = $4
          WHERE id = $1 AND version = $2",
    )
    .bind(id)
    .bind(db_version(expected))
    .bind(&provider.profile.npi)
    .bind(provider.profile.encode_to_vec())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM provider_clinics WHERE provider_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    link_clinics(conn, id, &provider.clinic_ids).await?;
    Ok(true)
}

/// Deactivates a provider when the version is `expected`.
pub async fn deactivate(
    conn: &mut PgConnection,
    id: Uuid,
    expected: u64,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE providers SET version = version + 1, updated_at = now(), status = 'inactive'
          WHERE id = $1 AND version = $2",
    )
    .bind(id)
    .bind(db_version(expected))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// The provider, locked for the rest of the transaction.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<pb::Provider>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM providers p WHERE p.id = $1 FOR NO KEY UPDATE");
    let row: Option<ProviderRow> = sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?;
    row.map(ProviderRow::into_provider).transpose()
}

/// The provider.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<pb::Provider>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM providers p WHERE p.id = $1");
    let row: Option<ProviderRow> = sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?;
    row.map(ProviderRow::into_provider).transpose()
}

/// Up to `limit` providers after `after` in id order, all or those serving one clinic.
pub async fn list(
    conn: &mut PgConnection,
    clinic_id: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::Provider>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM providers p
          WHERE ($1::uuid IS NULL
                 OR EXISTS (SELECT 1 FROM provider_clinics pc
                             WHERE pc.provider_id = p.id AND pc.clinic_id = $1))
            AND ($2::uuid IS NULL OR p.id > $2)
          ORDER BY p.id LIMIT $3"
    );
    let rows: Vec<ProviderRow> = sqlx::query_as(&sql)
        .bind(clinic_id)
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(ProviderRow::into_provider).collect()
}

/// Every provider serving the clinic, active or not, in id order.
pub async fn serving(
    conn: &mut PgConnection,
    clinic_id: Uuid,
) -> Result<Vec<pb::Provider>, sqlx::Error> {
    list(conn, Some(clinic_id), None, i64::MAX).await
}

async fn link_clinics(
    conn: &mut PgConnection,
    id: Uuid,
    clinic_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO provider_clinics (provider_id, clinic_id) SELECT $1, * FROM UNNEST($2::uuid[])",
    )
    .bind(id)
    .bind(clinic_ids)
    .execute(conn)
    .await?;
    Ok(())
}
