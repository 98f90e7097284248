//! Notifications: `AppointmentBooked` events published onto APPOINTMENTS for the real
//! `notifications` binary (its shipped delivery settings), timed until the confirmation email is
//! accepted by a local SMTP sink — at a fixed event rate for latency, and from a backlog for
//! sustained throughput — next to lettre sending the same number of messages straight to the
//! sink with the service's delivery concurrency.

use crate::{
    measure::{Latencies, Throughput, offered_load},
    report::{Line, Plot, Row, ScenarioReport},
    scenarios::{
        Scale, Service, publish_events,
        smtp_sink::{Accepted, SmtpSink},
        wait_until,
    },
};
use async_nats::jetstream;
use clinicnet_proto::{
    appointments::v1::{Appointment, AppointmentStatus, Patient, PatientContacts},
    common::v1::{Locale, Modality, PersonName},
    directory::v1::{Clinic, ClinicContact, Location},
    events::v1::{AppointmentBooked, ClinicRegistered, PatientRegistered},
};
use futures::{StreamExt as _, TryStreamExt as _};
use lettre::{
    AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor, transport::smtp::PoolConfig,
};
use prost::Message as _;
use sqlx::PgPool;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use system_tests::PrivateNats;
use uuid::Uuid;

const CLINIC: &str = "bench-notify-clinic";
const PATIENTS: usize = 100;
/// The service's default DELIVERY_CONCURRENCY, used by the lettre baseline too.
const CONCURRENCY: usize = 32;

/// A clinic as the directory announces it (the name, zone and contacts the templates use).
fn clinic_registered(clinic_id: &str) -> (String, String, Vec<u8>) {
    let metadata = platform::events::metadata("directory", "clinic", clinic_id, 1, "");
    let event_id = metadata.event_id.clone();
    let event = ClinicRegistered {
        metadata: Some(metadata),
        clinic: Some(Clinic {
            clinic_id: clinic_id.into(),
            display_name: "Bench clinic".into(),
            time_zone: "America/New_York".into(),
            contact: Some(ClinicContact {
                phone: "+13055550100".into(),
                email: "frontdesk@clinic.example".into(),
                on_call: None,
            }),
            locations: vec![Location {
                display_name: "Coral Gables".into(),
                ..Default::default()
            }],
            version: 1,
            ..Default::default()
        }),
        providers: Vec::new(),
    };
    (
        "clinicnet.directory.clinic.registered".into(),
        event_id,
        event.encode_to_vec(),
    )
}

fn patient_registered(i: usize) -> (String, String, Vec<u8>) {
    let patient_id = format!("bench-notify-patient-{i}");
    let metadata = platform::events::metadata("appointments", "patient", &patient_id, 1, "");
    let event_id = metadata.event_id.clone();
    let event = PatientRegistered {
        metadata: Some(metadata),
        patient: Some(Patient {
            patient_id,
            name: Some(PersonName {
                given_name: "Bench".into(),
                middle_name: String::new(),
                family_name: "Patient".into(),
            }),
            preferred_locale: Locale::EnUs as i32,
            contacts: Some(PatientContacts {
                email: format!("patient{i}@bench.example"),
                email_consent: true,
                ..Default::default()
            }),
            registered_clinic_id: CLINIC.into(),
            version: 1,
            ..Default::default()
        }),
    };
    (
        "clinicnet.appointments.patient.registered".into(),
        event_id,
        event.encode_to_vec(),
    )
}

/// The k-th booking: a psychotherapy visit three days ahead (its reminders fall due later).
fn booked(k: usize) -> (String, String, Vec<u8>) {
    let appointment_id = format!("bench-notify-visit-{k}-{}", Uuid::new_v4().simple());
    let metadata =
        platform::events::metadata("appointments", "appointment", &appointment_id, 1, "");
    let event_id = metadata.event_id.clone();
    let start = time::OffsetDateTime::now_utc()
        .replace_time(time::Time::from_hms(15, 0, 0).expect("a time"))
        + time::Duration::days(3);
    let event = AppointmentBooked {
        metadata: Some(metadata),
        appointment: Some(Appointment {
            appointment_id,
            clinic_id: CLINIC.into(),
            chair_id: "chair-1".into(),
            provider_id: "provider-1".into(),
            patient_id: format!("bench-notify-patient-{}", k % PATIENTS),
            modality: Modality::Psychotherapy as i32,
            status: AppointmentStatus::Booked as i32,
            start_time: Some(crate::scenarios::appointments::timestamp(start)),
            end_time: Some(crate::scenarios::appointments::timestamp(
                start + time::Duration::hours(1),
            )),
            clinic_time_zone: "America/New_York".into(),
            version: 1,
            ..Default::default()
        }),
    };
    (
        "clinicnet.appointments.appointment.booked".into(),
        event_id,
        event.encode_to_vec(),
    )
}

/// Appointment id of each email notification, by notification id.
async fn email_visits(pool: &PgPool) -> anyhow::Result<HashMap<Uuid, String>> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT notification_id, appointment_id FROM notifications WHERE channel = 1 AND reminder_lead_seconds = 0",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The visit each accepted email was about, with its acceptance.
pub async fn accepted_by_visit(
    sink: &SmtpSink,
    pool: &PgPool,
) -> anyhow::Result<HashMap<String, Accepted>> {
    let visits = email_visits(pool).await?;
    Ok(sink
        .accepted()
        .into_iter()
        .filter_map(|a| {
            let id = Uuid::parse_str(a.message_id.split('@').next()?).ok()?;
            Some((visits.get(&id)?.clone(), a))
        })
        .collect())
}

/// Publishes `count` bookings at `rate` a second; returns each visit's publish-ack instant.
async fn publish_at_rate(
    js: &jetstream::Context,
    rate: u64,
    count: usize,
) -> anyhow::Result<HashMap<String, Instant>> {
    let sent = Arc::new(Mutex::new(HashMap::new()));
    offered_load(rate, count, |k| {
        let (js, sent) = (js.clone(), sent.clone());
        async move {
            let (subject, event_id, payload) = booked(k);
            let visit = AppointmentBooked::decode(payload.as_slice())?
                .appointment
                .map(|a| a.appointment_id)
                .unwrap_or_default();
            publish_events(&js, [(subject, event_id, payload)]).await?;
            sent.lock().expect("sent").insert(visit, Instant::now());
            Ok(())
        }
    })
    .await?;
    let sent = std::mem::take(&mut *sent.lock().expect("sent"));
    Ok(sent)
}

/// Sends `count` messages straight to the sink with lettre (pooled, `CONCURRENCY` at once);
/// returns the send latencies and messages per second.
async fn lettre_baseline(sink: &SmtpSink, count: usize) -> anyhow::Result<(Latencies, f64)> {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&sink.url())?
        .pool_config(PoolConfig::new().max_size(u32::try_from(CONCURRENCY)?))
        .build();
    let start = Instant::now();
    let latencies = futures::stream::iter(0..count)
        .map(|k| {
            let transport = transport.clone();
            async move {
                let message = Message::builder()
                    .from("clinicnet <notifications@clinicnet.example>".parse()?)
                    .to(format!("patient{}@bench.example", k % PATIENTS).parse()?)
                    .subject("Your visit at Bench clinic is confirmed")
                    .message_id(Some(format!("<{}@clinicnet.example>", Uuid::now_v7())))
                    .body("Your visit at Bench clinic, Coral Gables, is confirmed. ".repeat(8))?;
                let sent = Instant::now();
                transport.send(message).await?;
                anyhow::Ok(sent.elapsed())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_fold(Latencies::default(), |mut all, latency| async move {
            all.record(latency);
            Ok(all)
        })
        .await?;
    Ok((latencies, count as f64 / start.elapsed().as_secs_f64()))
}

/// Runs the scenario.
pub async fn run(scale: Scale) -> anyhow::Result<ScenarioReport> {
    let nats = Arc::new(PrivateNats::start().await?);
    let js = jetstream::new(async_nats::connect(nats.url()).await?);
    for producer in ["directory", "appointments", "insurance"] {
        platform::events::streams::ensure_stream(&js, producer, 1).await?;
    }
    let sink = SmtpSink::start().await?;
    let service = Service::start_with(
        "notifications",
        nats.clone(),
        &[("SMTP_URL", sink.url()), ("SMTP_STARTTLS", "off".into())],
    )
    .await?;
    let pool = service.database.pool().clone();
    publish_events(&js, [clinic_registered(CLINIC)]).await?;
    publish_events(&js, (0..PATIENTS).map(patient_registered)).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM patients")
        .fetch_one(&pool)
        .await?
        < i64::try_from(PATIENTS)?
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "patients never reached notifications"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Latency at a fixed event rate.
    let rate = scale.notification_rate;
    let paced = usize::try_from(rate * scale.rate_seconds)?;
    let sent = publish_at_rate(&js, rate, paced).await?;
    wait_until(|| sink.count() >= paced).await;
    let accepted = accepted_by_visit(&sink, &pool).await?;
    let mut latencies = Latencies::default();
    for (visit, accepted) in &accepted {
        if let Some(sent) = sent.get(visit) {
            latencies.record(accepted.at.saturating_duration_since(*sent));
        }
    }

    // Sustained throughput from a backlog.
    sink.clear();
    let backlog = scale.notifications;
    let start = Instant::now();
    publish_events(&js, (paced..paced + backlog).map(booked)).await?;
    wait_until(|| sink.count() >= backlog).await;
    let delivered = sink.accepted();
    let mut series = Throughput::starting_at(start, Duration::from_millis(500));
    for accepted in &delivered {
        series.record(accepted.at);
    }
    let last = delivered.iter().map(|a| a.at).max().unwrap_or(start);
    let throughput = delivered.len() as f64 / (last - start).as_secs_f64().max(0.001);
    service.stop().await;

    sink.clear();
    let (lettre_latencies, lettre_rate) = lettre_baseline(&sink, backlog).await?;
    let row = |metric: String, quantile: f64| Row {
        metric,
        value: latencies.millis_at(quantile),
        baseline: Some(lettre_latencies.millis_at(quantile)),
        unit: "ms",
        goal: "–".into(),
        met: None,
    };
    Ok(ScenarioReport {
        name: "Notifications".into(),
        description: format!(
            "AppointmentBooked events (psychotherapy, patients with email consent and no phone) published onto APPOINTMENTS for the notifications service with its shipped delivery settings (woken on commit of a due notification, 1 s fallback poll, batches of 100, 32 sends at once): event publish ack → confirmation email accepted by a local SMTP sink at {rate} events/s for {} s ({} of {paced} emails timed), then a backlog of {backlog} bookings published at once ({} emails accepted). Baseline: lettre (pooled SMTP transport, {CONCURRENCY} sends at once) sending {backlog} messages straight to the same sink; its latency is one send.",
            scale.rate_seconds,
            latencies.count(),
            delivered.len()
        ),
        rows: vec![
            row(format!("event → SMTP accepted p50 at {rate}/s"), 0.5),
            row(format!("event → SMTP accepted p99 at {rate}/s"), 0.99),
            Row {
                metric: format!("notifications/s from a {backlog}-event backlog"),
                value: throughput,
                baseline: Some(lettre_rate),
                unit: "/s",
                goal: "–".into(),
                met: None,
            },
        ],
        plots: vec![
            Plot {
                file: "notifications-latency".into(),
                title: format!("Event → SMTP accepted at {rate} events/s"),
                x_label: "percentile",
                y_label: "ms",
                lines: vec![
                    Line {
                        label: "notifications service".into(),
                        points: latencies.distribution(),
                    },
                    Line {
                        label: "lettre send".into(),
                        points: lettre_latencies.distribution(),
                    },
                ],
            },
            Plot {
                file: "notifications-throughput".into(),
                title: format!("Emails accepted per second from a {backlog}-event backlog"),
                x_label: "seconds",
                y_label: "emails/s",
                lines: vec![Line {
                    label: "notifications service".into(),
                    points: series.series(),
                }],
            },
        ],
    })
}
