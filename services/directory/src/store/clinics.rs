//! Clinics: the row with its profile and search columns, its locations and dated overrides
//! (rewritten with every profile), and its chairs. Every change of the aggregate goes through a
//! version-guarded UPDATE: zero rows means a concurrent change won.

use super::{api_version, db_date, db_instant, db_version, decode, timestamp};
use crate::validate::clinic::ValidClinic;
use clinicnet_proto::directory::v1 as pb;
use prost::Message;
use sqlx::{PgConnection, Postgres, postgres::PgArguments, query::Query, types::Json};
use time::OffsetDateTime;
use uuid::Uuid;

/// The clinic columns every read selects, from `clinics c`, with its chairs in their order (one
/// statement reads the whole aggregate).
pub(super) const COLUMNS: &str =
    "c.id, c.version, c.status, c.suspension_reason, c.profile, c.created_at, c.updated_at,
     (SELECT coalesce(json_agg(json_build_object(
                'id', ch.id, 'location_id', ch.location_id, 'display_name', ch.display_name,
                'modalities', ch.modalities, 'capacity', ch.capacity, 'retired', ch.retired)
              ORDER BY ch.ordinal), '[]'::json)
        FROM chairs ch WHERE ch.clinic_id = c.id) AS chairs";

/// One clinic row as selected by [`COLUMNS`].
#[derive(Debug, sqlx::FromRow)]
pub(super) struct ClinicRow {
    id: Uuid,
    version: i64,
    status: String,
    suspension_reason: String,
    profile: Vec<u8>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    chairs: Json<Vec<ChairRow>>,
}

/// The stored name of a status.
fn status_name(status: pb::ClinicStatus) -> &'static str {
    match status {
        pb::ClinicStatus::Suspended => "suspended",
        pb::ClinicStatus::Active | pb::ClinicStatus::Unspecified => "active",
    }
}

/// Registers a clinic at version 1, active, with its search rows (not its chairs).
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    clinic: &ValidClinic,
) -> Result<(), sqlx::Error> {
    let columns = ProfileColumns::of(clinic)?;
    columns
        .bind(
            sqlx::query(
                "INSERT INTO clinics (id, version, status, npi, time_zone, languages, modalities,
                                  payer_ids, open_weekdays, rems_valid_until, profile)
             VALUES ($1, $2, 'active', $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(id)
            .bind(1_i64),
        )
        .execute(&mut *conn)
        .await?;
    write_search_rows(conn, id, clinic).await
}

/// Replaces the profile when the version is `expected`; false when it is not (or no such clinic).
pub async fn update_profile(
    conn: &mut PgConnection,
    id: Uuid,
    expected: u64,
    clinic: &ValidClinic,
) -> Result<bool, sqlx::Error> {
    let columns = ProfileColumns::of(clinic)?;
    let updated = columns
        .bind(
            sqlx::query(
                "UPDATE clinics
                SET version = version + 1, updated_at = now(), npi = $3, time_zone = $4,
                    languages = $5, modalities = $6, payer_ids = $7, open_weekdays = $8,
                    rems_valid_until = $9, profile = $10
              WHERE id = $1 AND version = $2",
            )
            .bind(id)
            .bind(db_version(expected)),
        )
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM clinic_locations WHERE clinic_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM clinic_date_overrides WHERE clinic_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    write_search_rows(conn, id, clinic).await?;
    Ok(true)
}

/// Sets the status (and the suspension reason) when the version is `expected`.
pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    expected: u64,
    status: pb::ClinicStatus,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE clinics
            SET version = version + 1, updated_at = now(), status = $3, suspension_reason = $4
          WHERE id = $1 AND version = $2",
    )
    .bind(id)
    .bind(db_version(expected))
    .bind(status_name(status))
    .bind(reason)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Counts a change of a part of the clinic (a chair) when the version is `expected`.
pub async fn bump_version(
    conn: &mut PgConnection,
    id: Uuid,
    expected: u64,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE clinics SET version = version + 1, updated_at = now()
          WHERE id = $1 AND version = $2",
    )
    .bind(id)
    .bind(db_version(expected))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Adds a chair to a clinic.
pub async fn insert_chair(
    conn: &mut PgConnection,
    clinic_id: Uuid,
    chair: &pb::Chair,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chairs (id, clinic_id, location_id, display_name, modalities, capacity)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&chair.chair_id)
    .bind(clinic_id)
    .bind(&chair.location_id)
    .bind(&chair.display_name)
    .bind(&chair.modalities)
    .bind(chair.capacity)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces a chair of a clinic (its retired flag stays).
pub async fn update_chair(
    conn: &mut PgConnection,
    clinic_id: Uuid,
    chair: &pb::Chair,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE chairs SET location_id = $3, display_name = $4, modalities = $5, capacity = $6
          WHERE id = $1 AND clinic_id = $2",
    )
    .bind(&chair.chair_id)
    .bind(clinic_id)
    .bind(&chair.location_id)
    .bind(&chair.display_name)
    .bind(&chair.modalities)
    .bind(chair.capacity)
    .execute(conn)
    .await?;
    Ok(())
}

/// Retires a chair of a clinic.
pub async fn retire_chair(
    conn: &mut PgConnection,
    clinic_id: Uuid,
    chair_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE chairs SET retired = true WHERE id = $1 AND clinic_id = $2")
        .bind(chair_id)
        .bind(clinic_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The clinic, locked for the rest of the transaction.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<pb::Clinic>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM clinics c WHERE c.id = $1 FOR NO KEY UPDATE");
    one(conn, &sql, id).await
}

/// The clinic.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<pb::Clinic>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM clinics c WHERE c.id = $1");
    one(conn, &sql, id).await
}

/// Up to `limit` clinics after `after` in id order, of one status or all.
pub async fn list(
    conn: &mut PgConnection,
    status: Option<pb::ClinicStatus>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::Clinic>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM clinics c
          WHERE ($1::text IS NULL OR c.status = $1) AND ($2::uuid IS NULL OR c.id > $2)
          ORDER BY c.id LIMIT $3"
    );
    let rows: Vec<ClinicRow> = sqlx::query_as(&sql)
        .bind(status.map(status_name))
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    assemble(rows)
}

async fn one(
    conn: &mut PgConnection,
    sql: &str,
    id: Uuid,
) -> Result<Option<pb::Clinic>, sqlx::Error> {
    let row: Option<ClinicRow> = sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(assemble(row.into_iter().collect())?.pop())
}

/// The clinics of `rows`, in their order, each with its chairs.
pub(super) fn assemble(rows: Vec<ClinicRow>) -> Result<Vec<pb::Clinic>, sqlx::Error> {
    rows.into_iter()
        .map(|row| {
            let profile: pb::Clinic = decode(&row.profile)?;
            let status = if row.status == "suspended" {
                pb::ClinicStatus::Suspended
            } else {
                pb::ClinicStatus::Active
            };
            Ok(pb::Clinic {
                clinic_id: row.id.to_string(),
                status: status as i32,
                chairs: row.chairs.0.into_iter().map(pb::Chair::from).collect(),
                version: api_version(row.version),
                suspension_reason: row.suspension_reason,
                create_time: Some(timestamp(row.created_at)),
                update_time: Some(timestamp(row.updated_at)),
                ..profile
            })
        })
        .collect()
}

/// A chair as [`COLUMNS`] aggregates it.
#[derive(Debug, serde::Deserialize)]
pub(super) struct ChairRow {
    id: String,
    location_id: String,
    display_name: String,
    modalities: Vec<i32>,
    capacity: i32,
    retired: bool,
}

impl From<ChairRow> for pb::Chair {
    fn from(row: ChairRow) -> Self {
        pb::Chair {
            chair_id: row.id,
            location_id: row.location_id,
            display_name: row.display_name,
            modalities: row.modalities,
            capacity: row.capacity,
            retired: row.retired,
        }
    }
}

/// The values of a profile stored in the clinic's columns ($3 to $10 of insert and update).
struct ProfileColumns {
    npi: String,
    time_zone: String,
    languages: Vec<String>,
    modalities: Vec<i32>,
    payer_ids: Vec<String>,
    open_weekdays: Vec<i16>,
    rems_valid_until: Option<OffsetDateTime>,
    profile: Vec<u8>,
}

impl ProfileColumns {
    fn of(clinic: &ValidClinic) -> Result<ProfileColumns, sqlx::Error> {
        let profile = &clinic.profile;
        Ok(ProfileColumns {
            npi: profile.npi.clone(),
            time_zone: profile.time_zone.clone(),
            languages: profile.languages.clone(),
            modalities: profile.modalities.clone(),
            payer_ids: profile.in_network_payer_ids.clone(),
            open_weekdays: clinic.facts.open_weekdays.clone(),
            rems_valid_until: clinic.facts.rems_valid_until.map(db_instant).transpose()?,
            profile: profile.encode_to_vec(),
        })
    }

    fn bind<'q>(
        &'q self,
        query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments> {
        query
            .bind(&self.npi)
            .bind(&self.time_zone)
            .bind(&self.languages)
            .bind(&self.modalities)
            .bind(&self.payer_ids)
            .bind(&self.open_weekdays)
            .bind(self.rems_valid_until)
            .bind(&self.profile)
    }
}

/// Writes the locations and dated overrides search reads.
async fn write_search_rows(
    conn: &mut PgConnection,
    id: Uuid,
    clinic: &ValidClinic,
) -> Result<(), sqlx::Error> {
    let locations = &clinic.profile.locations;
    let location_ids: Vec<&str> = locations.iter().map(|l| l.location_id.as_str()).collect();
    let point = |l: &pb::Location| {
        l.coordinates
            .map(|c| (c.latitude, c.longitude))
            .unwrap_or_default()
    };
    let latitudes: Vec<f64> = locations.iter().map(|l| point(l).0).collect();
    let longitudes: Vec<f64> = locations.iter().map(|l| point(l).1).collect();
    sqlx::query(
        "INSERT INTO clinic_locations (clinic_id, location_id, latitude, longitude)
         SELECT $1, * FROM UNNEST($2::text[], $3::float8[], $4::float8[])",
    )
    .bind(id)
    .bind(location_ids)
    .bind(latitudes)
    .bind(longitudes)
    .execute(&mut *conn)
    .await?;
    let overrides = &clinic.facts.open_overrides;
    let days = overrides
        .iter()
        .map(|(day, _)| db_date(*day))
        .collect::<Result<Vec<_>, _>>()?;
    let open: Vec<bool> = overrides.iter().map(|(_, open)| *open).collect();
    sqlx::query(
        "INSERT INTO clinic_date_overrides (clinic_id, day, open)
         SELECT $1, * FROM UNNEST($2::date[], $3::bool[])",
    )
    .bind(id)
    .bind(days)
    .bind(open)
    .execute(conn)
    .await?;
    Ok(())
}
