//! End-to-end event latency through the whole network (run by [`super::network_day`] on its
//! network, before the day): bookings through gRPC at a fixed offered
//! rate, each timed from its commit (BookAppointment answered) until notifications' confirmation
//! email is accepted by the SMTP sink; one booking in ten is checked in and completed at once and
//! timed from the completion's commit until insurance has created its claim. Next to raw
//! JetStream publish → pull consume at the same rates on the same NATS server.

use crate::{
    measure::{Latencies, offered_load},
    report::{Line, Plot, Row, ScenarioReport},
    scenarios::{
        Scale,
        appointments::SLOTS_PER_DAY,
        network::{Net, NetClinic},
        notify::accepted_by_visit,
        wait_until,
    },
};
use async_nats::jetstream::{self, consumer::pull};
use clinicnet_proto::appointments::v1::{
    BookAppointmentRequest, CheckInAppointmentRequest, CompleteAppointmentRequest, Completion,
    book_appointment_request::Target,
};
use futures::StreamExt as _;
use std::{
    collections::HashMap,
    future::IntoFuture as _,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use time::OffsetDateTime;
use uuid::Uuid;

/// One booking in this many is fulfilled at once (and billed).
const FULFILLED_EVERY: usize = 10;
/// Patients booking (at least as many as chairs, so no patient is booked twice at one time).
const PATIENTS: usize = 200;

/// What one run at a rate observed: per visit, the times the appointments service recorded for
/// its booking and its completion (their transactions' times).
#[derive(Default)]
struct Timings {
    booked: HashMap<String, OffsetDateTime>,
    completed: HashMap<String, OffsetDateTime>,
}

fn recorded(at: Option<prost_types::Timestamp>) -> anyhow::Result<OffsetDateTime> {
    let at = at.ok_or_else(|| anyhow::anyhow!("an appointment without its times"))?;
    Ok(OffsetDateTime::from_unix_timestamp(at.seconds)?
        + time::Duration::nanoseconds(i64::from(at.nanos)))
}

/// `to - from`, or zero when the clocks' rounding puts `to` first.
fn between(from: OffsetDateTime, to: OffsetDateTime) -> Duration {
    (to - from).try_into().unwrap_or(Duration::ZERO)
}

async fn book_one(
    net_apps: crate::scenarios::appointments::Apps,
    slot: Uuid,
    patient: String,
    fulfil: bool,
    timings: Arc<Mutex<Timings>>,
) -> anyhow::Result<()> {
    let mut apps = net_apps;
    let appointment = apps
        .book_appointment(BookAppointmentRequest {
            request_id: Uuid::now_v7().to_string(),
            target: Some(Target::SlotId(slot.to_string())),
            patient_id: patient,
            ..Default::default()
        })
        .await?
        .into_inner()
        .appointment
        .ok_or_else(|| anyhow::anyhow!("a booking without its appointment"))?;
    let id = appointment.appointment_id;
    let booked = recorded(appointment.create_time)?;
    timings
        .lock()
        .expect("timings")
        .booked
        .insert(id.clone(), booked);
    if fulfil {
        apps.check_in_appointment(CheckInAppointmentRequest {
            request_id: Uuid::now_v7().to_string(),
            appointment_id: id.clone(),
        })
        .await?;
        let completed = apps
            .complete_appointment(CompleteAppointmentRequest {
                request_id: Uuid::now_v7().to_string(),
                appointment_id: id.clone(),
                completion: Some(Completion {
                    treatment_minutes: 60,
                    ..Default::default()
                }),
            })
            .await?
            .into_inner()
            .appointment
            .ok_or_else(|| anyhow::anyhow!("a completion without its appointment"))?;
        let completed = recorded(completed.update_time)?;
        timings
            .lock()
            .expect("timings")
            .completed
            .insert(id, completed);
    }
    Ok(())
}

/// Books the slots at `rate` a second and waits for their emails and claims. Returns the
/// email and claim latencies and the booking rate achieved.
async fn run_at(
    net: &Net,
    rate: u64,
    slots: &[Uuid],
    patients: &[String],
) -> anyhow::Result<(Latencies, Latencies, f64)> {
    net.sink.clear();
    let timings = Arc::new(Mutex::new(Timings::default()));
    let start = Instant::now();
    offered_load(rate, slots.len(), |i| {
        book_one(
            net.apps.clone(),
            slots[i],
            patients[i % patients.len()].clone(),
            i % FULFILLED_EVERY == 0,
            timings.clone(),
        )
    })
    .await?;
    let achieved = slots.len() as f64 / start.elapsed().as_secs_f64();
    let timings = std::mem::take(&mut *timings.lock().expect("timings"));
    wait_until(|| net.sink.count() >= timings.booked.len()).await;
    let mut emails = Latencies::default();
    for (visit, accepted) in accepted_by_visit(&net.sink, net.pool("notifications")).await? {
        if let Some(booked) = timings.booked.get(&visit) {
            emails.record(between(*booked, OffsetDateTime::from(accepted.wall)));
        }
    }
    let visits: Vec<String> = timings.completed.keys().cloned().collect();
    let mut created: Vec<(String, OffsetDateTime)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while created.len() < visits.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        created = sqlx::query_as(
            "SELECT appointment_id, created_at FROM claims WHERE appointment_id = ANY($1)",
        )
        .bind(&visits)
        .fetch_all(net.pool("insurance"))
        .await?;
    }
    let mut claims = Latencies::default();
    for (visit, at) in created {
        if let Some(completed) = timings.completed.get(&visit) {
            claims.record(between(*completed, at));
        }
    }
    Ok((emails, claims, achieved))
}

/// Raw JetStream: `rate` publishes a second for `count` messages, each timed until a durable
/// pull consumer on the same server has received and acknowledged it.
async fn raw_at(js: &jetstream::Context, rate: u64, count: usize) -> anyhow::Result<Latencies> {
    let consumer = js
        .get_stream("BENCH")
        .await?
        .create_consumer(pull::Config {
            durable_name: Some(format!("bench-raw-{rate}")),
            deliver_policy: jetstream::consumer::DeliverPolicy::New,
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Latencies>> = Arc::default();
    let receiver = {
        let (sent, latencies) = (sent.clone(), latencies.clone());
        tokio::spawn(async move {
            let mut messages = consumer.messages().await?;
            while let Some(message) = messages.next().await {
                let message = message?;
                message
                    .double_ack()
                    .await
                    .map_err(|e| anyhow::anyhow!("ack: {e}"))?;
                let key = String::from_utf8_lossy(&message.payload).into_owned();
                if let Some(at) = sent.lock().expect("sent").remove(&key) {
                    latencies.lock().expect("latencies").record(at.elapsed());
                }
            }
            anyhow::Ok(())
        })
    };
    offered_load(rate, count, |i| {
        let (js, sent) = (js.clone(), sent.clone());
        async move {
            let key = format!("{rate}-{i}");
            sent.lock()
                .expect("sent")
                .insert(key.clone(), Instant::now());
            js.publish("clinicnet.bench.visit.booked", key.into())
                .await?
                .into_future()
                .await?;
            Ok(())
        }
    })
    .await?;
    wait_until(|| sent.lock().expect("sent").is_empty()).await;
    receiver.abort();
    let latencies = latencies.lock().expect("latencies").clone();
    Ok(latencies)
}

/// Runs the scenario on `net` (its own clinic and patients).
pub async fn run(net: &mut Net, scale: Scale) -> anyhow::Result<ScenarioReport> {
    let counts = scale
        .booking_rates
        .map(|rate| usize::try_from(rate * scale.booking_seconds).unwrap_or(usize::MAX));
    let total: usize = counts.iter().sum();
    let chairs = total.div_ceil(SLOTS_PER_DAY * 30).clamp(2, 60);
    let clinic: NetClinic = net.clinic("Bench latency clinic", chairs).await?;
    net.open_slots(&clinic, total.div_ceil(chairs * SLOTS_PER_DAY))
        .await?;
    let patients = net
        .patients(&clinic.id, PATIENTS.min(total).max(chairs))
        .await?;
    let slots = net.free_slots(std::slice::from_ref(&clinic.id)).await?;
    anyhow::ensure!(
        slots.len() >= total,
        "{} slots for {total} bookings",
        slots.len()
    );

    let mut rows = Vec::new();
    let mut lines = Vec::new();
    let js = jetstream::new(async_nats::connect(net.network.nats().url()).await?);
    platform::events::streams::ensure_stream(&js, "bench", 1).await?;
    let mut offset = 0;
    for (rate, count) in scale.booking_rates.into_iter().zip(counts) {
        let (emails, claims, achieved) =
            run_at(net, rate, &slots[offset..offset + count], &patients).await?;
        offset += count;
        let raw = raw_at(&js, rate, count).await?;
        let p99 = emails.millis_at(0.99);
        for (metric, latencies, quantile) in [
            ("booking → email accepted p50", &emails, 0.5),
            ("booking → email accepted p99", &emails, 0.99),
            ("completion → claim created p50", &claims, 0.5),
            ("completion → claim created p99", &claims, 0.99),
        ] {
            let goal = rate == 500 && metric == "booking → email accepted p99";
            rows.push(Row {
                metric: format!(
                    "{metric} at {rate}/s offered ({achieved:.0}/s achieved, {} timed)",
                    latencies.count()
                ),
                value: latencies.millis_at(quantile),
                baseline: Some(raw.millis_at(quantile)),
                unit: "ms",
                goal: if goal { "< 50 ms".into() } else { "–".into() },
                met: goal.then_some(p99 < 50.0),
            });
        }
        lines.push(Line {
            label: format!("booking → email at {rate}/s"),
            points: emails.distribution(),
        });
        lines.push(Line {
            label: format!("completion → claim at {rate}/s"),
            points: claims.distribution(),
        });
        lines.push(Line {
            label: format!("raw JetStream at {rate}/s"),
            points: raw.distribution(),
        });
    }
    Ok(ScenarioReport {
        name: "End-to-end event latency".into(),
        description: format!(
            "The four services on one NATS server, notifications at its shipped delivery settings (1 s scheduler tick) sending to a local SMTP sink. BookAppointment at a fixed offered rate for {} s per rate ({chairs} psychotherapy chairs, {} patients with email consent, intake and coverage); each booking timed from the time the appointments service recorded in its transaction to the confirmation email accepted by the sink (appointments outbox → relay → NATS → notifications consumer → delivery scheduler → SMTP); one in {FULFILLED_EVERY} checked in and completed at once and timed from the completion's recorded time to the claim's creation time in insurance (relay → NATS → insurance consumer → coding, pricing, claim; both service clocks on this machine). Baseline: plain JetStream publish → durable pull consume with double ack at the same rate on the same server.",
            scale.booking_seconds,
            patients.len()
        ),
        rows,
        plots: vec![Plot {
            file: "event-latency".into(),
            title: "Commit → effect latency across services".into(),
            x_label: "percentile",
            y_label: "ms",
            lines,
        }],
    })
}
