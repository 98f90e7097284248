//! The end-to-end scenarios on one network of the four real services: their idle footprint, the
//! event latency runs ([`event_latency`]), then a compressed "network day" replayed as fast as
//! the services allow —
//! every clinic's day booked, some visits moved to the next day or cancelled, the rest checked
//! in and completed, their claims submitted, taken by the payer's integrator and paid by
//! remittance, and every email delivered — and the services' footprint: resident memory idle
//! and during the day, CPU seconds per 1,000 bookings.

use crate::{
    report::{Row, ScenarioReport},
    scenarios::{
        Scale,
        appointments::{Apps, SLOTS_PER_DAY},
        claims::{stream_and_acknowledge, submit_all},
        event_latency,
        insurance::{PAYER, usd},
        network::{Net, wait_for},
        wait_until,
    },
};
use clinicnet_proto::{
    appointments::v1::{
        BookAppointmentRequest, CancelAppointmentRequest, CancellationReason,
        CheckInAppointmentRequest, CompleteAppointmentRequest, Completion,
        RescheduleAppointmentRequest, book_appointment_request, reschedule_appointment_request,
    },
    common::v1::Date,
    insurance::v1::{Claim, ClaimPayment, LinePayment, PostRemittancesRequest, Remittance},
};
use futures::{StreamExt as _, TryStreamExt as _};
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use uuid::Uuid;

/// Chairs (and providers) per clinic.
const CHAIRS: usize = 4;
/// Clinic staff working at once across the network.
const STAFF: usize = 32;
/// Claims per remittance.
const CLAIMS_PER_REMITTANCE: usize = 100;
/// Kernel clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// What happens to a booked visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Cancelled,
    Rescheduled,
    Fulfilled,
}

/// 5 % cancelled, 10 % moved to the next day, the rest seen.
fn fate(i: usize) -> Fate {
    match i % 20 {
        0 => Fate::Cancelled,
        1 | 2 => Fate::Rescheduled,
        _ => Fate::Fulfilled,
    }
}

fn request_id() -> String {
    Uuid::now_v7().to_string()
}

/// One visit of the day: booked, then cancelled, moved to `later`, or seen.
async fn visit(
    mut apps: Apps,
    slot: Uuid,
    later: Uuid,
    patient: String,
    fate: Fate,
) -> anyhow::Result<()> {
    let appointment_id = apps
        .book_appointment(BookAppointmentRequest {
            request_id: request_id(),
            target: Some(book_appointment_request::Target::SlotId(slot.to_string())),
            patient_id: patient,
            ..Default::default()
        })
        .await?
        .into_inner()
        .appointment
        .map(|a| a.appointment_id)
        .unwrap_or_default();
    match fate {
        Fate::Cancelled => {
            apps.cancel_appointment(CancelAppointmentRequest {
                request_id: request_id(),
                appointment_id,
                reason: CancellationReason::PatientRequest as i32,
                note: String::new(),
            })
            .await?;
        }
        Fate::Rescheduled => {
            apps.reschedule_appointment(RescheduleAppointmentRequest {
                request_id: request_id(),
                appointment_id,
                target: Some(reschedule_appointment_request::Target::SlotId(
                    later.to_string(),
                )),
            })
            .await?;
        }
        Fate::Fulfilled => {
            apps.check_in_appointment(CheckInAppointmentRequest {
                request_id: request_id(),
                appointment_id: appointment_id.clone(),
            })
            .await?;
            apps.complete_appointment(CompleteAppointmentRequest {
                request_id: request_id(),
                appointment_id,
                completion: Some(Completion {
                    treatment_minutes: 60,
                    ..Default::default()
                }),
            })
            .await?;
        }
    }
    Ok(())
}

/// Remittances paying every claim in full, `CLAIMS_PER_REMITTANCE` claims each.
fn remittances(claims: &[Claim]) -> Vec<PostRemittancesRequest> {
    let today = time::OffsetDateTime::now_utc().date();
    claims
        .chunks(CLAIMS_PER_REMITTANCE)
        .map(|chunk| {
            let payments: Vec<ClaimPayment> = chunk
                .iter()
                .map(|claim| ClaimPayment {
                    claim_id: claim.claim_id.clone(),
                    payer_claim_control_number: format!("ICN-{}", &claim.claim_id[..8]),
                    charge: claim.total_charge.clone(),
                    paid_amount: claim.total_charge.clone(),
                    lines: claim
                        .lines
                        .iter()
                        .map(|line| LinePayment {
                            line_number: line.line_number,
                            procedure_code: line.procedure_code.clone(),
                            charge: line.charge.clone(),
                            paid_amount: line.charge.clone(),
                            adjustments: Vec::new(),
                        })
                        .collect(),
                })
                .collect();
            let total = payments
                .iter()
                .filter_map(|p| p.paid_amount.as_ref())
                .map(|m| m.amount_cents)
                .sum();
            PostRemittancesRequest {
                request_id: request_id(),
                remittance: Some(Remittance {
                    remittance_id: format!("ERA-{}", Uuid::new_v4().simple()),
                    payer_id: PAYER.into(),
                    payment_date: Some(Date {
                        year: today.year(),
                        month: i32::from(u8::from(today.month())),
                        day: i32::from(today.day()),
                    }),
                    total_paid: Some(usd(total)),
                    claim_payments: payments,
                }),
            }
        })
        .collect()
}

/// Resident memory of `pid` in MB (VmRSS).
fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb * 1024.0 / 1e6)
}

/// CPU seconds (user + system) `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime = fields.get(11)?.parse::<f64>().ok()?;
            let stime = fields.get(12)?.parse::<f64>().ok()?;
            Some((utime + stime) / TICKS_PER_SECOND)
        })
        .unwrap_or(0.0)
}

/// Samples the peak resident memory of each process until `stop` is set.
fn sample_peaks(
    pids: Vec<(&'static str, u32)>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<HashMap<&'static str, f64>> {
    tokio::spawn(async move {
        let mut peaks = HashMap::new();
        while !stop.load(Ordering::Relaxed) {
            for (name, pid) in &pids {
                let peak = peaks.entry(*name).or_insert(0.0_f64);
                *peak = peak.max(rss_mb(*pid));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        peaks
    })
}

/// Runs the end-to-end scenarios on one network: the services' idle footprint, the event
/// latency runs, then the day and the footprint during it. Returns the three reports.
pub async fn run(scale: Scale) -> anyhow::Result<Vec<ScenarioReport>> {
    let mut net = Net::start().await?;
    let pids = net.pids();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle: Vec<(&str, f64)> = pids.iter().map(|(n, p)| (*n, rss_mb(*p))).collect();
    let event_latency = event_latency::run(&mut net, scale).await?;

    // The network as the day finds it: clinics with two days of slots, registered patients.
    let setup = Instant::now();
    let clinics: Vec<_> = futures::stream::iter(0..scale.day_clinics)
        .map(|c| {
            let net = &net;
            async move {
                let clinic = net.clinic(&format!("Bench clinic {c}"), CHAIRS).await?;
                net.open_slots(&clinic, 2).await?;
                anyhow::Ok(clinic)
            }
        })
        .buffer_unordered(8)
        .try_collect()
        .await?;
    let per_clinic = scale.day_patients.div_ceil(scale.day_clinics);
    let mut patients = Vec::with_capacity(scale.day_patients);
    for clinic in &clinics {
        patients.extend(net.patients(&clinic.id, per_clinic).await?);
    }
    let ids: Vec<String> = clinics.iter().map(|c| c.id.clone()).collect();
    let slots = net.free_slots(&ids).await?;
    let day = scale.day_clinics * CHAIRS * SLOTS_PER_DAY;
    anyhow::ensure!(
        slots.len() >= 2 * day,
        "{} slots for a {day}-visit day",
        slots.len()
    );
    eprintln!(
        "bench: {} clinics, {} patients, {} slots set up in {:.1} s",
        clinics.len(),
        patients.len(),
        slots.len(),
        setup.elapsed().as_secs_f64()
    );

    // The day: each visit by whichever of the staff is free, as fast as the services answer.
    let cpu_before: f64 = pids.iter().map(|(_, p)| cpu_seconds(*p)).sum();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_peaks(pids.clone(), stop.clone());
    net.sink.clear();
    let start = Instant::now();
    futures::stream::iter(0..day)
        .map(|i| {
            visit(
                net.apps.clone(),
                slots[i],
                slots[day + i],
                patients[i % patients.len()].clone(),
                fate(i),
            )
        })
        .buffer_unordered(STAFF)
        .try_collect::<Vec<()>>()
        .await?;
    let visits_done = start.elapsed();
    let seen = (0..day).filter(|i| fate(*i) == Fate::Fulfilled).count();
    let insurance_db = net.pool("insurance").clone();
    wait_for("every visit seen to have its claim", async || {
        let (claims,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM claims WHERE clinic_id = ANY($1)")
                .bind(&ids)
                .fetch_one(&insurance_db)
                .await?;
        Ok(usize::try_from(claims)? >= seen)
    })
    .await?;
    let claim_ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT claim_id FROM claims WHERE clinic_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&insurance_db)
            .await?;
    submit_all(&net.insurance, &claim_ids).await?;
    let claims = stream_and_acknowledge(&net.integrator, claim_ids.len()).await?;
    let posted = net
        .integrator
        .clone()
        .post_remittances(futures::stream::iter(remittances(&claims)))
        .await?
        .into_inner()
        .try_collect::<Vec<_>>()
        .await?;
    let emails = day + (0..day).filter(|i| fate(*i) != Fate::Fulfilled).count();
    wait_until(|| net.sink.count() >= emails).await;
    let wall = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let peaks = sampler.await?;
    let cpu: f64 = pids.iter().map(|(_, p)| cpu_seconds(*p)).sum::<f64>() - cpu_before;
    let (paid,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM claims WHERE status = 5 AND clinic_id = ANY($1)")
            .bind(&ids)
            .fetch_one(&insurance_db)
            .await?;
    let delivered = net.sink.count();
    net.network.stop().await;

    let cancelled = (0..day).filter(|i| fate(*i) == Fate::Cancelled).count();
    let moved = (0..day).filter(|i| fate(*i) == Fate::Rescheduled).count();
    let operations = day + cancelled + moved + 2 * seen + 2 * claim_ids.len() + posted.len();
    let figure = |metric: &str, value: f64, unit: &'static str| Row {
        metric: metric.into(),
        value,
        baseline: None,
        unit,
        goal: "–".into(),
        met: None,
    };
    let network_day = ScenarioReport {
        name: "Network day".into(),
        description: format!(
            "{} clinics ({CHAIRS} psychotherapy chairs each), {} registered patients with intake and coverage. The day: all {day} one-hour slots booked by {STAFF} staff working at once; {cancelled} visits cancelled, {moved} moved to the next day, {seen} checked in and completed; then each claim submitted, taken from the payer's work stream and acknowledged, and paid in full by {} remittances of up to {CLAIMS_PER_REMITTANCE} claims; until the last of {emails} emails (confirmations, moves, cancellations) reached the SMTP sink. {operations} gRPC calls; {paid} claims paid; {delivered} emails delivered. No raw baseline: the other scenarios compare the parts.",
            clinics.len(),
            patients.len(),
            posted.len()
        ),
        rows: vec![
            figure("wall time of the day", wall.as_secs_f64(), "s"),
            figure(
                "visits (book → cancel / move / check in + complete)",
                day as f64 / visits_done.as_secs_f64(),
                "visits/s",
            ),
            figure(
                "gRPC calls of the day",
                operations as f64 / wall.as_secs_f64(),
                "calls/s",
            ),
            figure(
                "claims paid per second of the day",
                paid as f64 / wall.as_secs_f64(),
                "claims/s",
            ),
        ],
        plots: vec![],
    };
    let mut rows: Vec<Row> = idle
        .iter()
        .map(|(name, mb)| Row {
            metric: format!("{name} resident memory, idle"),
            value: *mb,
            baseline: None,
            unit: "MB",
            goal: "< 30 MB".into(),
            met: Some(*mb < 30.0),
        })
        .collect();
    rows.extend(pids.iter().map(|(name, _)| {
        figure(
            &format!("{name} resident memory, peak during the day"),
            peaks.get(name).copied().unwrap_or(0.0),
            "MB",
        )
    }));
    rows.push(figure(
        "CPU seconds per 1,000 bookings (all four services, the whole day)",
        cpu / day as f64 * 1000.0,
        "s",
    ));
    let footprint = ScenarioReport {
        name: "Footprint".into(),
        description: format!(
            "Resident memory (VmRSS) of each service two seconds after it started serving, and its peak sampled every 200 ms during the network day; the four services' user + system CPU time over the day ({cpu:.1} s for {day} bookings and everything that followed them)."
        ),
        rows,
        plots: vec![],
    };
    Ok(vec![event_latency, network_day, footprint])
}
