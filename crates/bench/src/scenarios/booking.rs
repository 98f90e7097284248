//! Booking: concurrent clients booking psychotherapy slots through gRPC `BookAppointment` on the
//! real appointments binary (10 % of them contending for the same slots), next to the same
//! inserts (reservation, appointment, outbox row) issued straight to PostgreSQL by as many
//! concurrent clients; then the service alone paced at half the peak rate it reached.

use crate::{
    measure::{Latencies, Throughput},
    report::{Line, Plot, Row, ScenarioReport},
    scenarios::{
        Scale, Service,
        appointments::{self, Apps, Clinic, PSYCHOTHERAPY},
        bench_patient,
    },
};
use clinicnet_proto::appointments::v1::{
    BookAppointmentRequest, RegisterPatientRequest, book_appointment_request::Target,
    patients_service_client::PatientsServiceClient,
};
use futures::future::try_join_all;
use platform::auth::Role;
use sqlx::{PgPool, postgres::PgPoolOptions};
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};
use time::OffsetDateTime;
use uuid::Uuid;

/// A free slot as the database holds it.
#[derive(Debug, Clone)]
struct Slot {
    id: Uuid,
    chair: String,
    provider: String,
    start: OffsetDateTime,
    end: OffsetDateTime,
}

/// What one client's run produced.
#[derive(Default)]
struct Outcome {
    latencies: Latencies,
    booked: Vec<Instant>,
    refused: u64,
}

impl Outcome {
    fn merge(
        outcomes: Vec<Outcome>,
        bucket: Duration,
        start: Instant,
    ) -> (Latencies, Throughput, u64, u64) {
        let mut latencies = Latencies::default();
        let mut throughput = Throughput::starting_at(start, bucket);
        let (mut booked, mut refused) = (0, 0);
        for outcome in outcomes {
            latencies.merge(&outcome.latencies);
            for at in &outcome.booked {
                throughput.record(*at);
            }
            booked += outcome.booked.len() as u64;
            refused += outcome.refused;
        }
        (latencies, throughput, booked, refused)
    }
}

/// The slots client c books: contenders (the first 10 %) all go after chair `side`'s slots in the
/// same order; every other client has a chair of its own.
fn plan(
    slots: &HashMap<String, Vec<Slot>>,
    clinic: &Clinic,
    side: usize,
    contenders: usize,
    c: usize,
    range: std::ops::Range<usize>,
) -> Vec<Slot> {
    let chair = if c < contenders {
        side
    } else {
        side + 1 + c - contenders
    };
    slots
        .get(&clinic.chair(chair))
        .map(|all| all[range].to_vec())
        .unwrap_or_default()
}

/// When a paced client sends: every `interval`, starting at `offset` after the run begins.
#[derive(Debug, Clone, Copy)]
struct Pace {
    interval: Duration,
    offset: Duration,
}

async fn book_over_grpc(
    mut apps: Apps,
    patient: String,
    slots: Vec<Slot>,
    pace: Option<Pace>,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    let begin = Instant::now();
    for (k, slot) in slots.into_iter().enumerate() {
        if let Some(pace) = pace {
            let due = begin + pace.offset + pace.interval * u32::try_from(k)?;
            tokio::time::sleep_until(due.into()).await;
        }
        let start = Instant::now();
        let result = apps
            .book_appointment(BookAppointmentRequest {
                request_id: Uuid::new_v4().to_string(),
                target: Some(Target::SlotId(slot.id.to_string())),
                patient_id: patient.clone(),
                ..Default::default()
            })
            .await;
        let done = Instant::now();
        outcome.latencies.record(done - start);
        match result {
            Ok(_) => outcome.booked.push(done),
            // Lost the slot, or collided with a contender's transaction (ABORTED: retryable).
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::FailedPrecondition | tonic::Code::Aborted
                ) =>
            {
                outcome.refused += 1
            }
            Err(status) => return Err(status.into()),
        }
    }
    Ok(outcome)
}

const RAW_RESERVATION: &str = "INSERT INTO reservations (reservation_id, kind, slot_id, clinic_id, chair_id, provider_id, occupied, active, expires_at)
 VALUES ($1, 'appointment', $2, $3, $4, $5, tstzrange($6, $7, '[)'), true, NULL)";
const RAW_APPOINTMENT: &str = "INSERT INTO appointments (appointment_id, clinic_id, chair_id, provider_id, patient_id, modality, status,
     start_time, end_time, clinic_time_zone, planned_dose_mg, slot_id, version)
 VALUES ($1, $2, $3, $4, $5, $6, 'booked', $7, $8, 'America/New_York', 0, $9, 1)";
/// The event row goes straight to the sent log, so the service's relay leaves it alone.
const RAW_OUTBOX: &str = "INSERT INTO outbox_sent (id, event_id, subject, aggregate_id,
     aggregate_version, payload, trace_carrier, created_at, published_at, attempts)
 VALUES (0, $1, 'clinicnet.appointments.appointment.booked', $2, 1, $3, '[]', now(), now(), 0)";

async fn raw_booking(
    pool: &PgPool,
    clinic: &Clinic,
    patient: Uuid,
    slot: &Slot,
) -> Result<(), sqlx::Error> {
    let id = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    sqlx::query(RAW_RESERVATION)
        .bind(id)
        .bind(slot.id)
        .bind(&clinic.id)
        .bind(&slot.chair)
        .bind(&slot.provider)
        .bind(slot.start)
        .bind(slot.end)
        .execute(&mut *tx)
        .await?;
    sqlx::query(RAW_APPOINTMENT)
        .bind(id)
        .bind(&clinic.id)
        .bind(&slot.chair)
        .bind(&slot.provider)
        .bind(patient)
        .bind(PSYCHOTHERAPY as i16)
        .bind(slot.start)
        .bind(slot.end)
        .bind(slot.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(RAW_OUTBOX)
        .bind(Uuid::now_v7())
        .bind(id.to_string())
        .bind(vec![0x5a_u8; 400])
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

fn deadlocked(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01")
}

async fn book_raw(
    pool: PgPool,
    clinic: &Clinic,
    patient: Uuid,
    slots: Vec<Slot>,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    for slot in slots {
        let start = Instant::now();
        let result = raw_booking(&pool, clinic, patient, &slot).await;
        let done = Instant::now();
        outcome.latencies.record(done - start);
        match result {
            Ok(()) => outcome.booked.push(done),
            // Two contenders inserting overlapping reservations can deadlock on the exclusion
            // constraints' checks: PostgreSQL aborts one, which lost the slot like any refusal.
            Err(error) if platform::db::is_exclusion_violation(&error) || deadlocked(&error) => {
                outcome.refused += 1
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(outcome)
}

async fn register_patients(
    service: &Service,
    clinic: &Clinic,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let patients =
        PatientsServiceClient::with_interceptor(service.channel().await?, service.token(Role::Ops));
    try_join_all((0..n).map(|_| {
        let mut patients = patients.clone();
        async move {
            let patient = patients
                .register_patient(RegisterPatientRequest {
                    request_id: Uuid::new_v4().to_string(),
                    patient: Some(bench_patient(&clinic.id)),
                })
                .await?
                .into_inner()
                .patient
                .ok_or_else(|| anyhow::anyhow!("a registration without a patient"))?;
            anyhow::Ok(patient.patient_id)
        }
    }))
    .await
}

async fn free_slots(pool: &PgPool) -> anyhow::Result<HashMap<String, Vec<Slot>>> {
    let rows: Vec<(Uuid, String, String, OffsetDateTime, OffsetDateTime)> = sqlx::query_as(
        "SELECT slot_id, chair_id, provider_id, lower(during), upper(during) FROM slots
          WHERE status = 'free' ORDER BY chair_id, lower(during)",
    )
    .fetch_all(pool)
    .await?;
    let mut by_chair: HashMap<String, Vec<Slot>> = HashMap::new();
    for (id, chair, provider, start, end) in rows {
        by_chair.entry(chair.clone()).or_default().push(Slot {
            id,
            chair,
            provider,
            start,
            end,
        });
    }
    Ok(by_chair)
}

/// Runs the scenario.
pub async fn run(scale: Scale) -> anyhow::Result<ScenarioReport> {
    let clients = scale.booking_clients;
    let per_client = scale.bookings_per_client;
    let contenders = clients.div_ceil(10).max(2);
    // Chairs per side: one shared by the contenders, one for each other client.
    let side = 1 + clients - contenders;
    let (service, clinic) = appointments::start(2 * side).await?;
    let mut apps = appointments::apps(&service).await?;
    // Each chair: per_client slots for the peak run, per_client more for the paced run.
    let per_chair = 2 * per_client;
    let slots = (0..2 * side)
        .flat_map(|n| (0..per_chair).map(move |k| (n, k)))
        .map(|(n, k)| appointments::slot(&clinic, n, k))
        .collect();
    appointments::stream_sync(
        &mut apps,
        &clinic,
        appointments::window(per_chair),
        slots,
        1,
    )
    .await?;
    let slots = free_slots(service.database.pool()).await?;
    let patients = register_patients(&service, &clinic, clients).await?;
    let bucket = Duration::from_millis(250);

    // Peak through gRPC: the first `side` chairs.
    let start = Instant::now();
    let outcomes = try_join_all((0..clients).map(|c| {
        book_over_grpc(
            apps.clone(),
            patients[c].clone(),
            plan(&slots, &clinic, 0, contenders, c, 0..per_client),
            None,
        )
    }))
    .await?;
    let grpc_seconds = start.elapsed().as_secs_f64();
    let (grpc, grpc_series, grpc_booked, grpc_refused) = Outcome::merge(outcomes, bucket, start);
    let peak = grpc_booked as f64 / grpc_seconds;

    // The same inserts straight to PostgreSQL: the other `side` chairs, as many connections.
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(clients)?)
        .connect(service.database.url())
        .await?;
    let patient_ids = patients
        .iter()
        .map(|p| Uuid::parse_str(p))
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    let outcomes = try_join_all((0..clients).map(|c| {
        book_raw(
            pool.clone(),
            &clinic,
            patient_ids[c],
            plan(&slots, &clinic, side, contenders, c, 0..per_client),
        )
    }))
    .await?;
    let raw_seconds = start.elapsed().as_secs_f64();
    let (raw, raw_series, raw_booked, raw_refused) = Outcome::merge(outcomes, bucket, start);
    pool.close().await;
    let raw_rate = raw_booked as f64 / raw_seconds;

    // Half the peak rate through gRPC, spread evenly over the clients and over time: client c
    // sends every `interval`, c/clients of an interval after client 0, so requests arrive at a
    // steady rate rather than in bursts of every client at once.
    // The baseline's 64 database backends exit after its pool closes; the paced run starts
    // once they are gone, so it measures the service rather than their teardown.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let attempts_per_second = (clients * per_client) as f64 / grpc_seconds;
    let interval = Duration::from_secs_f64(2.0 * clients as f64 / attempts_per_second.max(1.0));
    let start = Instant::now();
    let outcomes = try_join_all((0..clients).map(|c| {
        let pace = Pace {
            interval,
            offset: interval.mul_f64(c as f64 / clients as f64),
        };
        book_over_grpc(
            apps.clone(),
            patients[c].clone(),
            plan(&slots, &clinic, 0, contenders, c, per_client..per_chair),
            Some(pace),
        )
    }))
    .await?;
    let (half, half_series, half_booked, _) = Outcome::merge(outcomes, bucket, start);
    let half_rate = half_booked as f64 / start.elapsed().as_secs_f64();
    service.stop().await;

    let half_p99 = half.millis_at(0.99);
    let latency_row = |metric: &str, quantile: f64| Row {
        metric: format!("booking {metric} at peak"),
        value: grpc.millis_at(quantile),
        baseline: Some(raw.millis_at(quantile)),
        unit: "ms",
        goal: "–".into(),
        met: None,
    };
    let half_row = |metric: &str, quantile: f64| Row {
        metric: format!("booking {metric} at half peak"),
        value: half.millis_at(quantile),
        baseline: None,
        unit: "ms",
        goal: "–".into(),
        met: None,
    };
    Ok(ScenarioReport {
        name: "Booking".into(),
        description: format!(
            "{clients} concurrent clients each booking {per_client} one-hour psychotherapy slots back to back through gRPC BookAppointment (token check, validation, clinical gates, reservation under exclusion constraints, appointment, idempotency and outbox rows); {contenders} of them (10 %, at least 2) contend for the same slots (one wins each, the others get FAILED_PRECONDITION), the others book their own chair. Baseline: the same concurrency issuing only the INSERTs of a reservation, an appointment and an outbox row in one transaction straight to PostgreSQL on the same database (losers hit the exclusion constraint). gRPC: {grpc_booked} booked, {grpc_refused} refused in {grpc_seconds:.1} s; raw: {raw_booked} booked, {raw_refused} refused in {raw_seconds:.1} s. Then the service alone paced at half its peak attempt rate ({half_booked} bookings at {half_rate:.0}/s). Latencies include refused attempts."
        ),
        rows: vec![
            Row {
                metric: "bookings/s at peak".into(),
                value: peak,
                baseline: Some(raw_rate),
                unit: "/s",
                goal: "≥ 0.5× raw".into(),
                met: Some(peak >= 0.5 * raw_rate),
            },
            latency_row("p50", 0.5),
            latency_row("p99", 0.99),
            latency_row("p99.9", 0.999),
            half_row("p50", 0.5),
            half_row("p95", 0.95),
            Row {
                metric: "booking p99 at half peak".into(),
                value: half_p99,
                baseline: None,
                unit: "ms",
                goal: "< 25 ms".into(),
                met: Some(half_p99 < 25.0),
            },
        ],
        plots: vec![
            Plot {
                file: "booking-latency".into(),
                title: format!("BookAppointment latency, {clients} clients"),
                x_label: "percentile",
                y_label: "ms",
                lines: vec![
                    Line {
                        label: "gRPC at peak".into(),
                        points: grpc.distribution(),
                    },
                    Line {
                        label: "gRPC at half peak".into(),
                        points: half.distribution(),
                    },
                    Line {
                        label: "raw SQL".into(),
                        points: raw.distribution(),
                    },
                ],
            },
            Plot {
                file: "booking-throughput".into(),
                title: format!("Bookings per second, {clients} clients"),
                x_label: "seconds",
                y_label: "bookings/s",
                lines: vec![
                    Line {
                        label: "gRPC at peak".into(),
                        points: grpc_series.series(),
                    },
                    Line {
                        label: "gRPC at half peak".into(),
                        points: half_series.series(),
                    },
                    Line {
                        label: "raw SQL".into(),
                        points: raw_series.series(),
                    },
                ],
            },
        ],
    })
}
