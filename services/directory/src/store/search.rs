//! SearchClinics as one statement built from the filters that are set. Only active clinics.
//!
//! A distance search walks the locations nearest first through the GiST index on their points
//! (migration 1002), bounded to the cube around the search circle, keeps a location only when it
//! is its clinic's nearest and within the radius (great-circle distance), and stops once it has a
//! page; the page is ordered by distance, then id. The planner would otherwise prefer a bitmap
//! scan of the whole circle followed by a sort (the cube operators have no selectivity
//! estimates), so that statement runs with bitmap scans switched off for its transaction.
//! Without a point, the order is by id. "Open on a date" applies the clinic's dated override for
//! that date when it has one, its weekly hours otherwise.

use super::clinics::{COLUMNS, ClinicRow, assemble};
use crate::{
    domain::geo::{CUBE_MARGIN_KM, EARTH_RADIUS_KM},
    paging::DistanceKey,
    validate::query::{Near, SearchFilters},
};
use clinicnet_proto::{common::v1::Modality, directory::v1 as pb};
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder};

/// Starts the transaction of a distance search (one round trip): bitmap scans off, so the planner
/// follows the index's nearest-first order.
const NEAREST_FIRST_TRANSACTION: &str = "BEGIN; SET LOCAL enable_bitmapscan = off";

/// A clinic found, with its nearest location for a distance search.
#[derive(Debug, Clone)]
pub struct Found {
    /// The clinic.
    pub clinic: pb::Clinic,
    /// Its nearest location within the radius.
    pub nearest: Option<Nearest>,
}

/// A clinic's nearest location to the search point.
#[derive(Debug, Clone)]
pub struct Nearest {
    /// The location's id.
    pub location_id: String,
    /// Straight-line distance through the Earth to it, in kilometres: the search's sort key.
    pub chord_km: f64,
}

impl Nearest {
    /// Great-circle distance to the location, in kilometres.
    pub fn distance_km(&self) -> f64 {
        2.0 * EARTH_RADIUS_KM * (self.chord_km / (2.0 * EARTH_RADIUS_KM)).min(1.0).asin()
    }
}

#[derive(sqlx::FromRow)]
struct FoundRow {
    #[sqlx(flatten)]
    clinic: ClinicRow,
    location_id: Option<String>,
    chord_km: Option<f64>,
}

/// Up to `limit` active clinics matching `filters`, after `after` in the search order.
pub async fn search(
    conn: &mut PgConnection,
    filters: &SearchFilters,
    after: Option<DistanceKey>,
    limit: i64,
) -> Result<Vec<Found>, sqlx::Error> {
    let rows: Vec<FoundRow> = match &filters.near {
        Some(near) => {
            let mut tx = conn.begin_with(NEAREST_FIRST_TRANSACTION).await?;
            let rows = nearest_first(filters, near, after, limit)?
                .build_query_as()
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            rows
        }
        None => {
            by_id(filters, after, limit)?
                .build_query_as()
                .fetch_all(&mut *conn)
                .await?
        }
    };
    let mut nearest = Vec::with_capacity(rows.len());
    let mut clinics = Vec::with_capacity(rows.len());
    for row in rows {
        nearest.push(
            row.location_id
                .zip(row.chord_km)
                .map(|(location_id, chord_km)| Nearest {
                    location_id,
                    chord_km,
                }),
        );
        clinics.push(row.clinic);
    }
    let clinics = assemble(clinics)?;
    Ok(clinics
        .into_iter()
        .zip(nearest)
        .map(|(clinic, nearest)| Found { clinic, nearest })
        .collect())
}

/// Matching clinics in id order.
fn by_id(
    filters: &SearchFilters,
    after: Option<DistanceKey>,
    limit: i64,
) -> Result<QueryBuilder<'static, Postgres>, sqlx::Error> {
    let mut query = QueryBuilder::new(format!(
        "SELECT {COLUMNS}, NULL::text AS location_id, NULL::float8 AS chord_km
           FROM clinics c WHERE c.status = 'active'"
    ));
    push_clinic_filters(&mut query, filters)?;
    if let Some(key) = after {
        query.push(" AND c.id > ").push_bind(key.id);
    }
    query.push(" ORDER BY c.id LIMIT ").push_bind(limit);
    Ok(query)
}

/// Matching clinics by the distance of their nearest location within the radius, then id.
///
/// The inner scan follows the index order (distance alone) and keeps every row tied with the
/// last one, so re-ordering by (distance, id) outside it is exact.
fn nearest_first(
    filters: &SearchFilters,
    near: &Near,
    after: Option<DistanceKey>,
    limit: i64,
) -> Result<QueryBuilder<'static, Postgres>, sqlx::Error> {
    let mut query = QueryBuilder::new(format!(
        "SELECT * FROM (
           SELECT {COLUMNS}, l.location_id, l.position <-> q.point AS chord_km
             FROM (SELECT earth_point("
    ));
    query
        .push_bind(near.latitude)
        .push(", ")
        .push_bind(near.longitude)
        .push(
            ") AS point) q
             JOIN clinic_locations l ON cube_enlarge(q.point, ",
        )
        .push_bind(near.radius_km + CUBE_MARGIN_KM)
        .push(
            ", 3) @> l.position
             JOIN clinics c ON c.id = l.clinic_id
            WHERE c.status = 'active'
              AND 2 * ",
        )
        .push_bind(EARTH_RADIUS_KM)
        .push(" * asin(least(1, (l.position <-> q.point) / (2 * ")
        .push_bind(EARTH_RADIUS_KM)
        .push("))) <= ")
        .push_bind(near.radius_km)
        .push(
            " AND NOT EXISTS (
                  SELECT 1 FROM clinic_locations other
                   WHERE other.clinic_id = l.clinic_id
                     AND (other.position <-> q.point, other.location_id)
                         < (l.position <-> q.point, l.location_id))",
        );
    push_clinic_filters(&mut query, filters)?;
    if let Some(key) = after {
        query
            .push(" AND (l.position <-> q.point, c.id) > (")
            .push_bind(key.chord_km)
            .push(", ")
            .push_bind(key.id)
            .push(")");
    }
    query
        .push(" ORDER BY l.position <-> q.point FETCH FIRST ")
        .push_bind(limit)
        .push(" ROWS WITH TIES) found ORDER BY chord_km, id LIMIT ")
        .push_bind(limit);
    Ok(query)
}

/// `AND …` for every filter on the clinic `c` that is set.
fn push_clinic_filters(
    query: &mut QueryBuilder<'static, Postgres>,
    filters: &SearchFilters,
) -> Result<(), sqlx::Error> {
    if let Some(modality) = filters.modality {
        query
            .push(" AND c.modalities @> ARRAY[")
            .push_bind(modality)
            .push("]::integer[]");
        if modality == Modality::EsketamineNasalSpray as i32 {
            query.push(" AND c.rems_valid_until > now()");
        }
    }
    if let Some(language) = &filters.language {
        query
            .push(" AND c.languages @> ARRAY[")
            .push_bind(language.clone())
            .push("]::text[]");
    }
    if let Some(payer_id) = &filters.payer_id {
        query
            .push(" AND c.payer_ids @> ARRAY[")
            .push_bind(payer_id.clone())
            .push("]::text[]");
    }
    if let Some((date, weekday)) = filters.open_on {
        query
            .push(
                " AND COALESCE((SELECT o.open FROM clinic_date_overrides o
                                 WHERE o.clinic_id = c.id AND o.day = ",
            )
            .push_bind(super::db_date(date)?)
            .push("), ")
            .push_bind(weekday)
            .push(" = ANY(c.open_weekdays))");
    }
    match filters.rems_certified {
        Some(true) => {
            query.push(" AND c.rems_valid_until > now()");
        }
        Some(false) => {
            query.push(" AND (c.rems_valid_until IS NULL OR c.rems_valid_until <= now())");
        }
        None => {}
    }
    Ok(())
}
