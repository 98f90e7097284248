//! SearchClinics as one statement built from the filters that are set. Only active clinics. A
//! distance search starts from the locations inside the bounding box (a range over the position
//! index), keeps each clinic's nearest location within the radius (haversine), and orders by that
//! distance, then id; otherwise the order is by id. "Open on a date" applies the clinic's dated
//! override for that date when it has one, its weekly hours otherwise.

use super::clinics::{COLUMNS, ClinicRow, assemble};
use crate::{
    domain::geo::{EARTH_RADIUS_KM, Longitudes},
    paging::DistanceKey,
    validate::query::{Near, SearchFilters},
};
use clinicnet_proto::{common::v1::Modality, directory::v1 as pb};
use sqlx::{PgConnection, Postgres, QueryBuilder};

/// A clinic found, with its nearest location and the distance to it for a distance search.
#[derive(Debug, Clone)]
pub struct Found {
    /// The clinic.
    pub clinic: pb::Clinic,
    /// Id of the nearest location and its distance in kilometres.
    pub nearest: Option<(String, f64)>,
}

#[derive(sqlx::FromRow)]
struct FoundRow {
    #[sqlx(flatten)]
    clinic: ClinicRow,
    location_id: Option<String>,
    distance_km: Option<f64>,
}

/// Up to `limit` active clinics matching `filters`, after `after` in the search order.
pub async fn search(
    conn: &mut PgConnection,
    filters: &SearchFilters,
    after: Option<DistanceKey>,
    limit: i64,
) -> Result<Vec<Found>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS}, "));
    match &filters.near {
        Some(near) => nearest_locations(&mut query, near),
        None => {
            query.push("NULL::text AS location_id, NULL::float8 AS distance_km FROM clinics c");
        }
    }
    query.push(" WHERE c.status = 'active'");
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
            .push_bind(language)
            .push("]::text[]");
    }
    if let Some(payer_id) = &filters.payer_id {
        query
            .push(" AND c.payer_ids @> ARRAY[")
            .push_bind(payer_id)
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
    match (&filters.near, after) {
        (Some(_), Some(key)) => {
            query
                .push(" AND (n.distance_km, c.id) > (")
                .push_bind(key.distance_km)
                .push(", ")
                .push_bind(key.id)
                .push(")");
        }
        (None, Some(key)) => {
            query.push(" AND c.id > ").push_bind(key.id);
        }
        (_, None) => {}
    }
    query.push(match filters.near {
        Some(_) => " ORDER BY n.distance_km, c.id LIMIT ",
        None => " ORDER BY c.id LIMIT ",
    });
    query.push_bind(limit);

    let rows: Vec<FoundRow> = query.build_query_as().fetch_all(&mut *conn).await?;
    let mut nearest = Vec::with_capacity(rows.len());
    let mut clinics = Vec::with_capacity(rows.len());
    for row in rows {
        nearest.push(row.location_id.zip(row.distance_km));
        clinics.push(row.clinic);
    }
    let clinics = assemble(conn, clinics).await?;
    Ok(clinics
        .into_iter()
        .zip(nearest)
        .map(|(clinic, nearest)| Found { clinic, nearest })
        .collect())
}

/// `… FROM (each clinic's nearest location within the radius) n JOIN clinics c`.
fn nearest_locations(query: &mut QueryBuilder<'_, Postgres>, near: &Near) {
    query
        .push(
            "n.location_id, n.distance_km
               FROM (SELECT DISTINCT ON (d.clinic_id) d.clinic_id, d.location_id, d.distance_km
                       FROM (SELECT l.clinic_id, l.location_id, 2 * ",
        )
        .push_bind(EARTH_RADIUS_KM)
        .push(" * asin(least(1, sqrt(power(sin(radians(l.latitude - ")
        .push_bind(near.latitude)
        .push(") / 2), 2) + cos(radians(")
        .push_bind(near.latitude)
        .push(")) * cos(radians(l.latitude)) * power(sin(radians(l.longitude - ")
        .push_bind(near.longitude)
        .push(") / 2), 2)))) AS distance_km FROM clinic_locations l WHERE l.latitude BETWEEN ")
        .push_bind(near.area.south)
        .push(" AND ")
        .push_bind(near.area.north);
    match near.area.longitudes {
        Longitudes::All => {}
        Longitudes::Between { west, east } => {
            query
                .push(" AND l.longitude BETWEEN ")
                .push_bind(west)
                .push(" AND ")
                .push_bind(east);
        }
        Longitudes::Across { west, east } => {
            query
                .push(" AND (l.longitude >= ")
                .push_bind(west)
                .push(" OR l.longitude <= ")
                .push_bind(east)
                .push(")");
        }
    }
    query
        .push(") d WHERE d.distance_km <= ")
        .push_bind(near.radius_km)
        .push(
            " ORDER BY d.clinic_id, d.distance_km, d.location_id) n
               JOIN clinics c ON c.id = n.clinic_id",
        );
}
