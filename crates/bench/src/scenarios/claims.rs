//! Insurance claims: the real `insurance` binary started on a backlog of fulfilled-visit events
//! (psychotherapy for insured patients) timed until every visit has its claim, next to a plain
//! pull consumer of the same events inserting equivalent claim rows; then the payer's integrator
//! reading submitted claims from its StreamWork stream and acknowledging each, next to the same
//! work rows read and the same claims marked accepted with plain SQL.

use crate::{
    report::{Line, Plot, Row, ScenarioReport},
    scenarios::{
        Scale, Service, bench_patient,
        insurance::{self, Insurance, Integrator, SESSION_CENTS, usd},
        publish_events, token,
    },
};
use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
};
use clinicnet_proto::{
    appointments::v1::{Appointment, AppointmentStatus, Completion, Patient},
    common::v1::{Date, Modality},
    events::v1::{AppointmentFulfilled, PatientRegistered},
    insurance::v1::{
        AcknowledgeClaimRequest, Claim, ClaimAcceptance, ClaimStatus, ServiceLine,
        StreamWorkRequest, SubmitClaimRequest, WorkItem, acknowledge_claim_request, work_item,
    },
};
use futures::{StreamExt as _, TryStreamExt as _};
use platform::auth::Role;
use prost::Message as _;
use sqlx::PgPool;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use system_tests::PrivateNats;
use uuid::Uuid;

const PATIENTS: usize = 100;
const CLINIC: &str = "bench-clinic";
/// Longest the service gets to turn the backlog into claims.
const BACKLOG_LIMIT: Duration = Duration::from_secs(150);
/// Acknowledgements (or baseline updates) in flight at once.
const ACK_CONCURRENCY: usize = 16;

fn patient_id(i: usize) -> String {
    format!("bench-patient-{i}")
}

fn registered(i: usize) -> (String, String, Vec<u8>) {
    let metadata = platform::events::metadata("appointments", "patient", &patient_id(i), 1, "");
    let event_id = metadata.event_id.clone();
    let event = PatientRegistered {
        metadata: Some(metadata),
        patient: Some(Patient {
            patient_id: patient_id(i),
            version: 1,
            ..bench_patient(CLINIC)
        }),
    };
    (
        "clinicnet.appointments.patient.registered".into(),
        event_id,
        event.encode_to_vec(),
    )
}

fn today() -> Date {
    let today = time::OffsetDateTime::now_utc().date();
    Date {
        year: today.year(),
        month: i32::from(u8::from(today.month())),
        day: i32::from(today.day()),
    }
}

/// The k-th fulfilled 60-minute psychotherapy visit, as the appointments service publishes it.
fn fulfilled(k: usize) -> (String, String, Vec<u8>) {
    let appointment_id = format!("bench-visit-{k}");
    let metadata =
        platform::events::metadata("appointments", "appointment", &appointment_id, 3, "");
    let event_id = metadata.event_id.clone();
    let start = crate::scenarios::appointments::timestamp(time::OffsetDateTime::now_utc());
    let event = AppointmentFulfilled {
        metadata: Some(metadata),
        appointment: Some(Appointment {
            appointment_id,
            clinic_id: CLINIC.into(),
            chair_id: "chair-1".into(),
            provider_id: "provider-1".into(),
            patient_id: patient_id(k % PATIENTS),
            modality: Modality::Psychotherapy as i32,
            status: AppointmentStatus::Fulfilled as i32,
            start_time: Some(start),
            end_time: Some(start),
            clinic_time_zone: "America/New_York".into(),
            version: 3,
            completion: Some(Completion {
                modality: Modality::Psychotherapy as i32,
                treatment_minutes: 60,
                ..Default::default()
            }),
            ..Default::default()
        }),
        service_date: Some(today()),
        clinic_npi: "1245319599".into(),
        rendering_provider_npi: "1679576722".into(),
        diagnosis_codes: vec!["F33.2".into()],
    };
    (
        "clinicnet.appointments.appointment.fulfilled".into(),
        event_id,
        event.encode_to_vec(),
    )
}

/// The draft claim the service would build for `event`, reduced to what a plain insert needs.
fn equivalent_claim(event: &AppointmentFulfilled) -> Claim {
    let appointment = event.appointment.clone().unwrap_or_default();
    let now = crate::scenarios::appointments::timestamp(time::OffsetDateTime::now_utc());
    Claim {
        claim_id: Uuid::now_v7().to_string(),
        status: ClaimStatus::Draft as i32,
        clinic_id: appointment.clinic_id,
        patient_id: appointment.patient_id,
        payer_id: insurance::PAYER.into(),
        appointment_id: appointment.appointment_id,
        diagnosis_codes: event.diagnosis_codes.clone(),
        lines: vec![ServiceLine {
            line_number: 1,
            procedure_code: "90837".into(),
            units: 1,
            charge: Some(usd(SESSION_CENTS)),
            place_of_service: "11".into(),
            diagnosis_pointers: vec![1],
            service_date: event.service_date,
            ..Default::default()
        }],
        total_charge: Some(usd(SESSION_CENTS)),
        service_date: event.service_date,
        version: 1,
        create_time: Some(now),
        update_time: Some(now),
        ..Default::default()
    }
}

const RAW_INSERT: &str =
    "INSERT INTO bench_claims (claim_id, status, frequency, clinic_id, payer_id, patient_id,
    appointment_id, service_date, total_charge_cents, created_at, version, body)
 VALUES ($1, 1, 1, $2, $3, $4, $5, current_date, $6, now(), 1, $7) ON CONFLICT DO NOTHING";

/// The baseline: a durable pull consumer of the fulfilled visits inserting one claim row per
/// event, 64 events a transaction, acks after the commit. Returns claims per second.
async fn raw_claims(js: &jetstream::Context, pool: &PgPool, count: usize) -> anyhow::Result<f64> {
    sqlx::query("CREATE TABLE bench_claims (LIKE claims INCLUDING ALL)")
        .execute(pool)
        .await?;
    let consumer = js
        .get_stream("APPOINTMENTS")
        .await?
        .create_consumer(pull::Config {
            durable_name: Some("bench-raw-claims".into()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            filter_subject: "clinicnet.appointments.appointment.fulfilled".into(),
            max_ack_pending: 1_000,
            ..Default::default()
        })
        .await?;
    let start = Instant::now();
    let mut batches = consumer.messages().await?.ready_chunks(64);
    let mut inserted = 0;
    while inserted < count {
        let Some(batch) = batches.next().await else {
            anyhow::bail!("the raw consumer's stream ended");
        };
        let messages = batch.into_iter().collect::<Result<Vec<_>, _>>()?;
        let mut tx = pool.begin().await?;
        for message in &messages {
            let claim = equivalent_claim(&AppointmentFulfilled::decode(message.payload.as_ref())?);
            sqlx::query(RAW_INSERT)
                .bind(Uuid::parse_str(&claim.claim_id)?)
                .bind(&claim.clinic_id)
                .bind(&claim.payer_id)
                .bind(&claim.patient_id)
                .bind(&claim.appointment_id)
                .bind(SESSION_CENTS)
                .bind(claim.encode_to_vec())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        futures::future::try_join_all(messages.iter().map(|m| m.double_ack()))
            .await
            .map_err(|e| anyhow::anyhow!("ack: {e}"))?;
        inserted += messages.len();
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

async fn claim_count(pool: &PgPool) -> anyhow::Result<usize> {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM claims")
        .fetch_one(pool)
        .await?;
    Ok(usize::try_from(count)?)
}

/// Restarts the stopped service on its backlog and samples the claim count until `count`
/// claims exist (or the time limit). Returns claims per second, how many, and the series.
async fn service_claims(
    service: &mut Service,
    count: usize,
) -> anyhow::Result<(f64, usize, Vec<(f64, f64)>)> {
    let start = Instant::now();
    service.process.restart().await?;
    let pool = service.database.pool().clone();
    let mut series = Vec::new();
    let (mut last, mut last_at) = (0, start);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = Instant::now();
        let created = claim_count(&pool).await?;
        series.push((
            (now - start).as_secs_f64(),
            (created - last) as f64 / (now - last_at).as_secs_f64(),
        ));
        (last, last_at) = (created, now);
        if created >= count || now - start > BACKLOG_LIMIT {
            return Ok((
                created as f64 / (now - start).as_secs_f64(),
                created,
                series,
            ));
        }
    }
}

/// Submits the claims (`ACK_CONCURRENCY` at once), as the billing staff would.
pub async fn submit_all(insurance: &Insurance, claim_ids: &[Uuid]) -> anyhow::Result<()> {
    futures::stream::iter(claim_ids)
        .map(|id| {
            let mut insurance = insurance.clone();
            async move {
                insurance
                    .submit_claim(SubmitClaimRequest {
                        request_id: Uuid::now_v7().to_string(),
                        claim_id: id.to_string(),
                        submit_despite_issues: true,
                    })
                    .await
            }
        })
        .buffer_unordered(ACK_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Reads `count` claims from the payer's work stream and acknowledges each as accepted
/// (`ACK_CONCURRENCY` acknowledgements in flight); returns the claims as delivered.
pub async fn stream_and_acknowledge(
    integrator: &Integrator,
    count: usize,
) -> anyhow::Result<Vec<Claim>> {
    let items = integrator
        .clone()
        .stream_work(StreamWorkRequest {
            payer_id: insurance::PAYER.into(),
            cursor: String::new(),
        })
        .await?
        .into_inner();
    items
        .take(count)
        .map(|item| {
            let mut integrator = integrator.clone();
            async move {
                let Some(work_item::Item::Claim(item)) = item?.item.and_then(|i| i.item) else {
                    anyhow::bail!("a work item that is not a claim");
                };
                let claim = item.claim.unwrap_or_default();
                integrator
                    .acknowledge_claim(AcknowledgeClaimRequest {
                        request_id: Uuid::now_v7().to_string(),
                        result: Some(acknowledge_claim_request::Result::Accepted(
                            ClaimAcceptance {
                                payer_claim_control_number: format!("ICN-{}", &claim.claim_id[..8]),
                            },
                        )),
                        claim_id: claim.claim_id.clone(),
                    })
                    .await?;
                anyhow::Ok(claim)
            }
        })
        .buffer_unordered(ACK_CONCURRENCY)
        .try_collect()
        .await
}

/// The baseline: the same work rows read in order 200 at a time and decoded, and for each the
/// baseline's claim of the same visit marked accepted (`ACK_CONCURRENCY` updates in flight).
async fn raw_stream_and_mark(pool: &PgPool, count: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut last = 0_i64;
    let mut marked = 0;
    while marked < count {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT seq, body FROM work_items WHERE payer_id = $1 AND seq > $2 ORDER BY seq LIMIT 200",
        )
        .bind(insurance::PAYER)
        .bind(last)
        .fetch_all(pool)
        .await?;
        anyhow::ensure!(!rows.is_empty(), "fewer work items than claims submitted");
        last = rows.last().map_or(last, |r| r.0);
        let visits = rows
            .iter()
            .map(|(_, body)| match WorkItem::decode(body.as_slice())?.item {
                Some(work_item::Item::Claim(item)) => {
                    Ok(item.claim.map(|c| c.appointment_id).unwrap_or_default())
                }
                _ => anyhow::bail!("a work item that is not a claim"),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        marked += visits.len();
        futures::stream::iter(visits)
            .map(|visit| {
                sqlx::query(
                    "UPDATE bench_claims SET status = 3, submitted_at = now(), version = version + 1 WHERE appointment_id = $1 AND frequency = 1",
                )
                .bind(visit)
                .execute(pool)
            })
            .buffer_unordered(ACK_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// Runs the scenario.
pub async fn run(scale: Scale) -> anyhow::Result<ScenarioReport> {
    let backlog = scale.claims_backlog;
    let nats = Arc::new(PrivateNats::start().await?);
    let js = jetstream::new(async_nats::connect(nats.url()).await?);
    platform::events::streams::ensure_stream(&js, "appointments", 1).await?;
    let mut service = Service::start_with("insurance", nats.clone(), &[]).await?;
    let mut ops = insurance::ops(service.channel().await?, token(Role::Ops, None));
    insurance::payer_and_plan(&mut ops).await?;
    publish_events(&js, (0..PATIENTS).map(registered)).await?;
    let patients: Vec<String> = (0..PATIENTS).map(patient_id).collect();
    insurance::cover(&ops, &patients).await?;

    // The service is down while the backlog piles up, as after an outage.
    service.process.sigterm()?;
    service.process.wait_exit(Duration::from_secs(60)).await?;
    let started = Instant::now();
    publish_events(&js, (0..backlog).map(fulfilled)).await?;
    eprintln!(
        "bench: {backlog} fulfilled visits published in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let pool = service.database.pool().clone();
    let raw_rate = raw_claims(&js, &pool, backlog).await?;
    let (rate, created, series) = service_claims(&mut service, backlog).await?;
    service
        .process
        .wait_serving(Duration::from_secs(60))
        .await?;

    // The integrator's side: some of the claims submitted, then streamed and acknowledged.
    let submitted = scale.integrator_claims.min(created);
    let claim_ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT claim_id FROM claims ORDER BY created_at, claim_id LIMIT $1")
            .bind(i64::try_from(submitted)?)
            .fetch_all(&pool)
            .await?;
    let ops = insurance::ops(service.channel().await?, token(Role::Ops, None));
    submit_all(&ops, &claim_ids).await?;
    let integrator = insurance::integrator(
        service.channel().await?,
        token(Role::Integrator, Some(insurance::PAYER)),
    );
    let start = Instant::now();
    stream_and_acknowledge(&integrator, submitted).await?;
    let stream_rate = submitted as f64 / start.elapsed().as_secs_f64();
    let raw_stream_rate = raw_stream_and_mark(&pool, submitted).await?;
    let accepted: i64 = sqlx::query_scalar("SELECT count(*) FROM claims WHERE status = 3")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(
        usize::try_from(accepted)? == submitted,
        "{accepted} claims accepted, not {submitted}"
    );
    service.stop().await;

    Ok(ScenarioReport {
        name: "Insurance claims".into(),
        description: format!(
            "{backlog} fulfilled-visit events (60-minute psychotherapy, {PATIENTS} insured patients) published to APPOINTMENTS while the insurance service was stopped, then the service restarted and timed until every visit had its claim (consumer batches, inbox, coverage and plan lookup, coding, fee schedule, claim assessment, claim row and ClaimCreated in the outbox): {created} claims. Baseline: a plain durable pull consumer of the same events inserting an equivalent claim row per event, 64 per transaction, on the same database. Then {submitted} claims submitted and read by the payer's integrator over StreamWork, each acknowledged as accepted with AcknowledgeClaim ({ACK_CONCURRENCY} in flight), next to the same work rows read 200 at a time with plain SQL and the baseline's claims of the same visits marked accepted by UPDATE ({ACK_CONCURRENCY} in flight)."
        ),
        rows: vec![
            Row {
                metric: format!("claims created from a {backlog}-event backlog"),
                value: rate,
                baseline: Some(raw_rate),
                unit: "claims/s",
                goal: "–".into(),
                met: None,
            },
            Row {
                metric: "integrator stream, delivered and acknowledged".into(),
                value: stream_rate,
                baseline: Some(raw_stream_rate),
                unit: "claims/s",
                goal: "–".into(),
                met: None,
            },
        ],
        plots: vec![Plot {
            file: "claims-backlog".into(),
            title: format!("Claims created per second from a {backlog}-event backlog"),
            x_label: "seconds since restart",
            y_label: "claims/s",
            lines: vec![Line {
                label: "insurance service".into(),
                points: series,
            }],
        }],
    })
}
