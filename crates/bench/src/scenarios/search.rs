//! Directory search: `SearchClinics` with combined filters (modality, language, in-network payer,
//! open on a date, within 25 km of downtown Miami) over the network's clinics, through gRPC to the
//! real directory binary, next to the same search run directly in SQL on its database.

use crate::{
    measure::Latencies,
    report::{Line, Plot, Row, ScenarioReport},
    scenarios::{Scale, Service},
};
use clinicnet_proto::{
    common::v1::{GeoPoint, Modality},
    directory::v1::{
        CreateClinicRequest, SearchClinicsRequest, directory_service_client::DirectoryServiceClient,
    },
};
use futures::{StreamExt, stream};
use platform::auth::Role;
use std::time::Instant;
use system_tests::fixtures;
use uuid::Uuid;

const MIAMI: (f64, f64) = (25.7617, -80.1918);
const PAYERS: [&str; 5] = ["florida-blue", "aetna", "cigna", "united", "humana"];
const LANGUAGES: [&str; 3] = ["en", "es", "pt"];
const RADIUS_KM: f64 = 25.0;
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// The i-th clinic: spread over ~60 km around Miami, with varied languages, payers and hours.
fn clinic(i: usize) -> clinicnet_proto::directory::v1::Clinic {
    let mut clinic = fixtures::clinic(&format!("Bench clinic {i}"));
    let angle = i as f64 * 2.399_963;
    let distance = (i % 60) as f64 / 111.0;
    let location = &mut clinic.locations[0];
    location.coordinates = Some(GeoPoint {
        latitude: MIAMI.0 + distance * angle.sin(),
        longitude: MIAMI.1 + distance * angle.cos(),
    });
    clinic.languages = match i % 3 {
        0 => vec!["en".into()],
        1 => vec!["en".into(), "es".into()],
        _ => vec!["es".into(), "pt".into()],
    };
    clinic.in_network_payer_ids = vec![
        PAYERS[i % PAYERS.len()].into(),
        PAYERS[(i / 5) % PAYERS.len()].into(),
    ];
    clinic.in_network_payer_ids.dedup();
    clinic.weekly_hours = Some(fixtures::hours_on(if i.is_multiple_of(4) {
        &[1, 3, 5]
    } else {
        &[1, 2, 3, 4, 5, 6]
    }));
    clinic
}

fn next_weekday() -> jiff::civil::Date {
    let mut day = fixtures::days_from_today(1);
    while day.weekday() != jiff::civil::Weekday::Wednesday {
        day = day.tomorrow().expect("a date");
    }
    day
}

fn request(query: usize, open_on: jiff::civil::Date) -> SearchClinicsRequest {
    SearchClinicsRequest {
        page_size: 20,
        page_token: String::new(),
        modality: Modality::IvKetamine as i32,
        language: LANGUAGES[query % 2].into(),
        payer_id: PAYERS[query % PAYERS.len()].into(),
        open_on: Some(fixtures::date(open_on)),
        rems_certified: None,
        near: Some(GeoPoint {
            latitude: MIAMI.0,
            longitude: MIAMI.1,
        }),
        radius_km: RADIUS_KM,
    }
}

/// The same first page the directory computes, as the same statement in the same kind of
/// transaction (bitmap scans off, so the nearest-first index order is used).
const RAW_SEARCH: &str = "
SELECT * FROM (
  SELECT c.id, c.version, c.status, c.suspension_reason, c.profile, c.created_at, c.updated_at,
         (SELECT coalesce(json_agg(json_build_object(
                    'id', ch.id, 'location_id', ch.location_id, 'display_name', ch.display_name,
                    'modalities', ch.modalities, 'capacity', ch.capacity, 'retired', ch.retired)
                  ORDER BY ch.ordinal), '[]'::json)
            FROM chairs ch WHERE ch.clinic_id = c.id) AS chairs,
         l.location_id, l.position <-> q.point AS chord_km
    FROM (SELECT earth_point($1, $2) AS point) q
    JOIN clinic_locations l ON cube_enlarge(q.point, $3, 3) @> l.position
    JOIN clinics c ON c.id = l.clinic_id
   WHERE c.status = 'active'
     AND 2 * $4 * asin(least(1, (l.position <-> q.point) / (2 * $4))) <= $5
     AND NOT EXISTS (SELECT 1 FROM clinic_locations other
                      WHERE other.clinic_id = l.clinic_id
                        AND (other.position <-> q.point, other.location_id)
                            < (l.position <-> q.point, l.location_id))
     AND c.modalities @> ARRAY[$6]::integer[]
     AND c.languages @> ARRAY[$7]::text[]
     AND c.payer_ids @> ARRAY[$8]::text[]
     AND COALESCE((SELECT o.open FROM clinic_date_overrides o WHERE o.clinic_id = c.id AND o.day = $9), $10 = ANY(c.open_weekdays))
   ORDER BY l.position <-> q.point
   FETCH FIRST 21 ROWS WITH TIES) found
 ORDER BY chord_km, id
 LIMIT 21";

async fn raw_search(
    pool: &sqlx::PgPool,
    query: usize,
    open_on: jiff::civil::Date,
) -> anyhow::Result<usize> {
    let day = time::Date::from_calendar_date(
        i32::from(open_on.year()),
        time::Month::try_from(u8::try_from(open_on.month())?)?,
        u8::try_from(open_on.day())?,
    )?;
    let mut tx = pool
        .begin_with("BEGIN; SET LOCAL enable_bitmapscan = off")
        .await?;
    let rows = sqlx::query(RAW_SEARCH)
        .bind(MIAMI.0)
        .bind(MIAMI.1)
        .bind(RADIUS_KM + 0.001)
        .bind(EARTH_RADIUS_KM)
        .bind(RADIUS_KM)
        .bind(Modality::IvKetamine as i32)
        .bind(LANGUAGES[query % 2])
        .bind(PAYERS[query % PAYERS.len()])
        .bind(day)
        .bind(i16::from(open_on.weekday().to_monday_one_offset()))
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows.len())
}

/// Runs the scenario.
pub async fn run(scale: Scale) -> anyhow::Result<ScenarioReport> {
    let service = Service::start("directory").await?;
    let client = DirectoryServiceClient::with_interceptor(
        service.channel().await?,
        service.token(Role::Ops),
    );
    let started = Instant::now();
    let created = stream::iter(0..scale.clinics)
        .map(|i| {
            let mut client = client.clone();
            async move {
                client
                    .create_clinic(CreateClinicRequest {
                        request_id: Uuid::new_v4().to_string(),
                        clinic: Some(clinic(i)),
                    })
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    created.into_iter().collect::<Result<Vec<()>, _>>()?;
    eprintln!(
        "bench: {} clinics created in {:.1} s",
        scale.clinics,
        started.elapsed().as_secs_f64()
    );

    let open_on = next_weekday();
    let mut grpc = Latencies::default();
    let mut sql = Latencies::default();
    let mut grpc_client = client.clone();
    let mut found = 0;
    for query in 0..scale.searches {
        let start = Instant::now();
        found += grpc_client
            .search_clinics(request(query, open_on))
            .await?
            .into_inner()
            .results
            .len();
        grpc.record(start.elapsed());
        let start = Instant::now();
        raw_search(service.database.pool(), query, open_on).await?;
        sql.record(start.elapsed());
    }
    let p99 = grpc.millis_at(0.99);
    let report = ScenarioReport {
        name: "Directory search".into(),
        description: format!(
            "SearchClinics (IV ketamine, a language, a payer, open next Wednesday, within {RADIUS_KM} km of downtown Miami; 20 per page) over {} clinics, {} searches one after another through gRPC (token check, validation, the statement with each clinic's chairs, decoding the stored profiles, encoding), next to the same statement issued directly to PostgreSQL. {:.1} clinics found per search on average.",
            scale.clinics,
            scale.searches,
            found as f64 / scale.searches.max(1) as f64
        ),
        rows: vec![
            Row {
                metric: "search p50".into(),
                value: grpc.millis_at(0.5),
                baseline: Some(sql.millis_at(0.5)),
                unit: "ms",
                goal: "–".into(),
                met: None,
            },
            Row {
                metric: "search p99".into(),
                value: p99,
                baseline: Some(sql.millis_at(0.99)),
                unit: "ms",
                goal: "< 5 ms and ≤ 2× raw".into(),
                met: Some(p99 < 5.0 && p99 <= 2.0 * sql.millis_at(0.99)),
            },
        ],
        plots: vec![Plot {
            file: "search-latency".into(),
            title: format!("SearchClinics latency, {} clinics", scale.clinics),
            x_label: "percentile",
            y_label: "ms",
            lines: vec![
                Line {
                    label: "gRPC SearchClinics".into(),
                    points: grpc.distribution(),
                },
                Line {
                    label: "raw SQL".into(),
                    points: sql.distribution(),
                },
            ],
        }],
    };
    service.stop().await;
    Ok(report)
}
