//! Booking workloads on a whole [`Network`] for the fault and load tests: clinics with chairs and
//! therapists registered through the directory, psychotherapy availability synced into
//! appointments, patients (insured ones with an intake and a coverage), calls retried with the
//! same request id while the infrastructure fails, and the invariants every run must end with.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clinicnet_proto::appointments::v1::{
    self as appt, appointments_service_client::AppointmentsServiceClient,
    patients_service_client::PatientsServiceClient,
};
use clinicnet_proto::common::v1::{self as common, Modality};
use clinicnet_proto::directory::v1::{
    self as dir, directory_service_client::DirectoryServiceClient,
};
use clinicnet_proto::insurance::v1::{
    self as ins, insurance_service_client::InsuranceServiceClient,
};
use futures::StreamExt as _;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

use crate::fixtures;
use crate::network::{Network, SERVICES};

/// The modality every workload books: a chair and a therapist for an hour, billed to the plan.
const PSYCHOTHERAPY: i32 = Modality::Psychotherapy as i32;
/// The payer and plan of insured patients.
const PAYER: &str = "workload-payer";
const PLAN: &str = "workload-ppo";
/// Each slot: the 60-minute session with the clinic's 10 + 15 minutes of buffers, and a margin.
const SLOT_MINUTES: i64 = 90;
/// The deadline of every call; a call cut off by it is retried.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a call is retried while the infrastructure fails.
const RETRY_FOR: Duration = Duration::from_secs(150);
/// Calls in flight while setting a workload up.
const SETUP_CONCURRENCY: usize = 8;

static RETRIES: AtomicU64 = AtomicU64::new(0);

/// Whether a failure says nothing about the request itself: the service, its database or the
/// connection failed, so the same request (same request id) may be sent again.
fn is_transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Internal
            | Code::Aborted
            | Code::ResourceExhausted
    )
}

/// Sends `message` with the bearer `token` through `call` on a clone of `client` until the
/// answer is not [`is_transient`] (or [`RETRY_FOR`] has passed). The message carries its request
/// id, so a call that took effect before its answer was lost is answered from the first effect.
pub async fn retrying<C, M, T, F, Fut>(
    client: &C,
    message: &M,
    token: &str,
    call: F,
) -> Result<T, Status>
where
    C: Clone,
    M: Clone,
    F: Fn(C, Request<M>) -> Fut,
    Fut: Future<Output = Result<Response<T>, Status>>,
{
    let deadline = Instant::now() + RETRY_FOR;
    loop {
        match call(client.clone(), authorized(message.clone(), token)).await {
            Ok(response) => return Ok(response.into_inner()),
            Err(status) if is_transient(&status) && Instant::now() < deadline => {
                RETRIES.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => return Err(status),
        }
    }
}

/// How many calls [`retrying`] has sent again in this process.
pub fn retries() -> u64 {
    RETRIES.load(Ordering::Relaxed)
}

/// `message` with the bearer `token` and the call deadline.
fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("an ASCII token"),
    );
    request.set_timeout(CALL_TIMEOUT);
    request
}

/// A fresh request id.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A clinic of the workload: its chairs, each worked by a therapist of its own.
#[derive(Debug, Clone)]
pub struct Clinic {
    /// The directory's id.
    pub clinic_id: String,
    /// `(chair_id, provider_id)` pairs.
    pub stations: Vec<(String, String)>,
}

/// Registers a psychotherapy clinic with `chairs` chairs and a therapist per chair through the
/// directory, and waits until appointments has them from the directory's events.
pub async fn register_clinic(network: &Network, name: &str, chairs: usize) -> Clinic {
    let ops = network.ops_token();
    let directory = DirectoryServiceClient::new(network.channel("directory").await);
    let clinic = fixtures::clinic_with(name, |c| {
        c.modalities.push(PSYCHOTHERAPY);
        c.chairs = (0..chairs)
            .map(|n| dir::Chair {
                location_id: "main".into(),
                display_name: format!("Therapy room {n}"),
                modalities: vec![PSYCHOTHERAPY],
                capacity: 1,
                ..Default::default()
            })
            .collect();
    });
    let request = dir::CreateClinicRequest {
        request_id: request_id(),
        clinic: Some(clinic),
    };
    let created = retrying(&directory, &request, &ops, |mut c, r| async move {
        c.create_clinic(r).await
    })
    .await
    .expect("create the clinic")
    .clinic
    .expect("the created clinic");
    let mut stations = Vec::new();
    for chair in &created.chairs {
        let mut provider = fixtures::provider(&[&created.clinic_id]);
        provider.modalities = vec![PSYCHOTHERAPY];
        let request = dir::CreateProviderRequest {
            request_id: request_id(),
            provider: Some(provider),
        };
        let provider = retrying(&directory, &request, &ops, |mut c, r| async move {
            c.create_provider(r).await
        })
        .await
        .expect("create a therapist")
        .provider
        .expect("the created therapist");
        stations.push((chair.chair_id.clone(), provider.provider_id));
    }
    let pool = network.database("appointments").pool();
    eventually(
        "appointments to know the clinic and its therapists",
        || async {
            let known: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM chairs WHERE clinic_id = $1)
                  + (SELECT count(*) FROM providers WHERE $1 = ANY (clinic_ids))",
            )
            .bind(&created.clinic_id)
            .fetch_one(pool)
            .await
            .ok()?;
            (known == 2 * chairs as i64).then_some(())
        },
    )
    .await;
    Clinic {
        clinic_id: created.clinic_id,
        stations,
    }
}

/// Syncs `per_chair` back-to-back [`SLOT_MINUTES`] psychotherapy slots on every chair of the
/// clinic, starting two days from now (past any minimum notice), and returns their ids in start
/// order.
pub async fn offer_slots(network: &Network, clinic: &Clinic, per_chair: usize) -> Vec<String> {
    let first = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(48))
        .expect("a time");
    let first = jiff::Timestamp::from_second(first.as_second() - first.as_second() % 3600)
        .expect("a whole hour");
    let at = |k: usize| {
        first
            .checked_add(jiff::SignedDuration::from_mins(SLOT_MINUTES * k as i64))
            .expect("a time")
    };
    let slots = clinic
        .stations
        .iter()
        .flat_map(|(chair, provider)| {
            (0..per_chair).map(move |k| appt::AvailabilitySlot {
                chair_id: chair.clone(),
                provider_id: provider.clone(),
                modality: PSYCHOTHERAPY,
                start_time: Some(timestamp(at(k))),
                end_time: Some(timestamp(at(k + 1))),
                ..Default::default()
            })
        })
        .collect();
    let request = appt::SyncAvailabilityRequest {
        request_id: request_id(),
        clinic_id: clinic.clinic_id.clone(),
        window: Some(common::TimeInterval {
            start_time: Some(timestamp(first)),
            end_time: Some(timestamp(at(per_chair))),
        }),
        slots,
        sync_version: 1,
    };
    let ops = network.ops_token();
    let apps = AppointmentsServiceClient::new(network.channel("appointments").await);
    retrying(&apps, &request, &ops, |mut c, r| async move {
        c.sync_availability(r).await
    })
    .await
    .expect("sync availability");
    let slot_ids: Vec<String> = sqlx::query_scalar(
        "SELECT slot_id::text FROM slots
          WHERE clinic_id = $1 AND status = 'free' ORDER BY lower(during), chair_id",
    )
    .bind(&clinic.clinic_id)
    .fetch_all(network.database("appointments").pool())
    .await
    .expect("the synced slots");
    assert_eq!(
        slot_ids.len(),
        clinic.stations.len() * per_chair,
        "synced slots"
    );
    slot_ids
}

/// Creates the payer and the plan insured patients are covered by (psychotherapy priced).
pub async fn create_plan(network: &Network) {
    let ops = network.ops_token();
    let insurance = InsuranceServiceClient::new(network.channel("insurance").await);
    let payer = ins::UpsertPayerRequest {
        request_id: request_id(),
        payer: Some(ins::Payer {
            payer_id: PAYER.into(),
            display_name: "Workload Health".into(),
            ..Default::default()
        }),
        expected_version: 0,
    };
    retrying(&insurance, &payer, &ops, |mut c, r| async move {
        c.upsert_payer(r).await
    })
    .await
    .expect("create the payer");
    let fee = |code: &str, cents: i64| ins::FeeScheduleEntry {
        procedure_code: code.into(),
        unit_charge: Some(common::Money {
            currency_code: "USD".into(),
            amount_cents: cents,
        }),
        effective_from: Some(common::Date {
            year: 2025,
            month: 1,
            day: 1,
        }),
        effective_until: None,
    };
    let plan = ins::UpsertPlanRequest {
        request_id: request_id(),
        plan: Some(ins::Plan {
            plan_id: PLAN.into(),
            payer_id: PAYER.into(),
            display_name: "Workload PPO".into(),
            fee_schedule: vec![
                fee("90837", 18_000),
                fee("90834", 14_000),
                fee("90832", 9_000),
            ],
            authorization_validity_days: 180,
            authorization_criteria: Some(ins::PriorAuthorizationCriteria {
                min_failed_trials: 2,
                min_distinct_classes: 2,
                min_trial_weeks: 6,
                min_baseline_phq9: 16,
                min_age_years: 18,
                reauthorization_min_reduction_percent: 50,
            }),
            timely_filing_days: 90,
            ..Default::default()
        }),
        expected_version: 0,
    };
    retrying(&insurance, &plan, &ops, |mut c, r| async move {
        c.upsert_plan(r).await
    })
    .await
    .expect("create the plan");
}

/// What a workload's patients are like.
#[derive(Debug, Clone, Copy)]
pub struct PatientKind {
    /// An email address with consent (confirmations are mailed), or no contact at all
    /// (confirmations are recorded and suppressed).
    pub email: bool,
    /// An intake (its diagnosis goes on claims) and a primary coverage under [`PAYER`]'s plan.
    pub insured: bool,
}

/// Registers `count` patients at `clinic_id` (a few at a time) and returns their ids.
pub async fn register_patients(
    network: &Network,
    clinic_id: &str,
    count: usize,
    kind: PatientKind,
) -> Vec<String> {
    let patients = PatientsServiceClient::new(network.channel("appointments").await);
    let insurance = InsuranceServiceClient::new(network.channel("insurance").await);
    let ops = network.ops_token();
    futures::stream::iter(0..count)
        .map(|n| {
            let (patients, insurance, ops) = (&patients, &insurance, &ops);
            async move {
                let id = register_patient(patients, ops, clinic_id, n, kind.email).await;
                if kind.insured {
                    record_intake(patients, ops, clinic_id, &id).await;
                    add_coverage(insurance, ops, &id).await;
                }
                id
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await
}

async fn register_patient(
    patients: &PatientsServiceClient<Channel>,
    ops: &str,
    clinic_id: &str,
    n: usize,
    email: bool,
) -> String {
    let request = appt::RegisterPatientRequest {
        request_id: request_id(),
        patient: Some(appt::Patient {
            name: Some(common::PersonName {
                given_name: "Lucía".into(),
                middle_name: String::new(),
                family_name: format!("Workload-{n}"),
            }),
            birth_date: Some(common::Date {
                year: 1981,
                month: 3,
                day: 14,
            }),
            preferred_locale: common::Locale::EsUs as i32,
            contacts: email.then(|| appt::PatientContacts {
                email: format!("patient-{n}-{}@patients.example", &request_id()[..8]),
                email_consent: true,
                ..Default::default()
            }),
            registered_clinic_id: clinic_id.into(),
            ..Default::default()
        }),
    };
    retrying(patients, &request, ops, |mut c, r| async move {
        c.register_patient(r).await
    })
    .await
    .expect("register a patient")
    .patient
    .expect("the patient")
    .patient_id
}

async fn record_intake(
    patients: &PatientsServiceClient<Channel>,
    ops: &str,
    clinic_id: &str,
    patient_id: &str,
) {
    let trial = |drug_class: common::AntidepressantClass| common::AntidepressantTrial {
        drug_class: drug_class as i32,
        duration_weeks: 8,
        adequate_dose: true,
        current_episode: true,
    };
    let request = appt::RecordIntakeRequest {
        request_id: request_id(),
        intake: Some(appt::Intake {
            patient_id: patient_id.into(),
            clinic_id: clinic_id.into(),
            diagnosis_codes: vec!["F33.2".into()],
            failed_trials: vec![
                trial(common::AntidepressantClass::Ssri),
                trial(common::AntidepressantClass::Snri),
            ],
            baseline_phq9: Some(appt::Phq9 {
                total_score: 21,
                ..Default::default()
            }),
            trd_attested: true,
            ..Default::default()
        }),
    };
    retrying(patients, &request, ops, |mut c, r| async move {
        c.record_intake(r).await
    })
    .await
    .expect("record an intake");
}

/// Adds the patient's coverage once insurance knows the patient from appointments' events.
async fn add_coverage(insurance: &InsuranceServiceClient<Channel>, ops: &str, patient_id: &str) {
    let request = ins::AddCoverageRequest {
        request_id: request_id(),
        coverage: Some(ins::Coverage {
            patient_id: patient_id.into(),
            payer_id: PAYER.into(),
            plan_id: PLAN.into(),
            member_id: format!("WL{}", &request_id()[..8]).to_uppercase(),
            group_number: "GRP-9".into(),
            relationship: ins::SubscriberRelationship::Self_ as i32,
            effective_from: Some(common::Date {
                year: 2025,
                month: 1,
                day: 1,
            }),
            priority: ins::CoveragePriority::Primary as i32,
            ..Default::default()
        }),
    };
    eventually("insurance to know the patient", || async {
        match retrying(insurance, &request, ops, |mut c, r| async move {
            c.add_coverage(r).await
        })
        .await
        {
            Ok(_) => Some(()),
            Err(status) if status.code() == Code::NotFound => None,
            Err(status) => panic!("add a coverage: {status:?}"),
        }
    })
    .await;
}

/// A fulfilled psychotherapy session of 53 minutes (CPT 90837).
pub fn session_completion() -> appt::Completion {
    appt::Completion {
        modality: PSYCHOTHERAPY,
        treatment_minutes: 53,
        ..Default::default()
    }
}

/// Polls `probe` until it yields a value; panics after two minutes naming `what`.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A dead letter: which service's consumer gave up on which event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeadLetter {
    /// The consumer's durable name.
    pub consumer: String,
    /// The event id.
    pub event_id: String,
}

/// What the invariants found once they held.
#[derive(Debug, Clone, Default)]
pub struct Settled {
    /// Appointments in the appointments database, whatever their status.
    pub appointments: usize,
    /// Fulfilled visits.
    pub fulfilled: usize,
    /// Email confirmations sent (status `sent` or `delivered`).
    pub confirmations_sent: usize,
}

/// Waits (at most `timeout`) until the invariants hold, and panics with the ones that do not:
/// every appointment has exactly one email and one SMS confirmation in notifications (sent when
/// `mailed`), every fulfilled visit exactly one claim in insurance (and nothing else is billed),
/// no two active visits of a chair or a therapist overlap, every service's outbox is drained,
/// and the dead letters are exactly `expected_dead_letters`.
pub async fn wait_settled(
    network: &Network,
    mailed: bool,
    expected_dead_letters: &[DeadLetter],
    timeout: Duration,
) -> Settled {
    let deadline = Instant::now() + timeout;
    loop {
        match check(network, mailed, expected_dead_letters).await {
            Ok(settled) => return settled,
            Err(broken) if Instant::now() >= deadline => {
                panic!("invariants still broken after {timeout:?}:\n{broken}")
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

async fn check(
    network: &Network,
    mailed: bool,
    expected_dead_letters: &[DeadLetter],
) -> Result<Settled, String> {
    let mut broken = Vec::new();
    let appointments_db = network.database("appointments").pool();
    let all: Vec<(String, String)> =
        sqlx::query_as("SELECT appointment_id::text, status FROM appointments")
            .fetch_all(appointments_db)
            .await
            .map_err(|e| format!("appointments: {e}"))?;
    let fulfilled: BTreeSet<&str> = all
        .iter()
        .filter(|(_, status)| status == "fulfilled")
        .map(|(id, _)| id.as_str())
        .collect();

    let overlapping: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM appointments a JOIN appointments b ON a.appointment_id < b.appointment_id
          WHERE a.status IN ('booked', 'checked-in') AND b.status IN ('booked', 'checked-in')
            AND (a.chair_id = b.chair_id OR a.provider_id = b.provider_id)
            AND tstzrange(a.start_time, a.end_time) && tstzrange(b.start_time, b.end_time)",
    )
    .fetch_one(appointments_db)
    .await
    .map_err(|e| format!("overlaps: {e}"))?;
    if overlapping != 0 {
        broken.push(format!("{overlapping} pairs of overlapping active visits"));
    }

    let confirmations: Vec<(String, i16, i64, i64)> = sqlx::query_as(
        "SELECT appointment_id, channel, count(*),
                count(*) FILTER (WHERE status IN ('sent', 'delivered'))
           FROM notifications WHERE kind = 1 AND channel IN (1, 2)
          GROUP BY appointment_id, channel",
    )
    .fetch_all(network.database("notifications").pool())
    .await
    .map_err(|e| format!("notifications: {e}"))?;
    let mut per_visit: HashMap<&str, Vec<(i16, i64, i64)>> = HashMap::new();
    for (id, channel, count, sent) in &confirmations {
        per_visit
            .entry(id.as_str())
            .or_default()
            .push((*channel, *count, *sent));
    }
    let mut confirmations_sent = 0;
    for (id, _) in &all {
        let mut rows = per_visit.remove(id.as_str()).unwrap_or_default();
        rows.sort();
        let counts: Vec<(i16, i64)> = rows.iter().map(|(ch, n, _)| (*ch, *n)).collect();
        if counts != [(1, 1), (2, 1)] {
            broken.push(format!(
                "appointment {id}: confirmations (channel, count) {counts:?}, want one email and one SMS"
            ));
            continue;
        }
        let email_sent = rows[0].2;
        confirmations_sent += email_sent as usize;
        if mailed && email_sent != 1 {
            broken.push(format!("appointment {id}: email confirmation not sent yet"));
        }
    }
    if !per_visit.is_empty() {
        broken.push(format!(
            "{} confirmations of unknown appointments",
            per_visit.len()
        ));
    }

    let claims: Vec<(String, i64)> =
        sqlx::query_as("SELECT appointment_id, count(*) FROM claims GROUP BY appointment_id")
            .fetch_all(network.database("insurance").pool())
            .await
            .map_err(|e| format!("claims: {e}"))?;
    let superbills: i64 = sqlx::query_scalar("SELECT count(*) FROM superbills")
        .fetch_one(network.database("insurance").pool())
        .await
        .map_err(|e| format!("superbills: {e}"))?;
    let claimed: BTreeSet<&str> = claims.iter().map(|(id, _)| id.as_str()).collect();
    let twice: Vec<&(String, i64)> = claims.iter().filter(|(_, n)| *n != 1).collect();
    if claimed != fulfilled || !twice.is_empty() || superbills != 0 {
        broken.push(format!(
            "{} fulfilled visits, {} claimed ({} of them not fulfilled, {} more than once: {twice:?}), {superbills} superbills",
            fulfilled.len(),
            claimed.len(),
            claimed.difference(&fulfilled).count(),
            twice.len()
        ));
    }

    let mut dead_letters = Vec::new();
    for service in SERVICES {
        let pool = network.database(service).pool();
        let unsent: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(pool)
            .await
            .map_err(|e| format!("{service} outbox: {e}"))?;
        if unsent != 0 {
            broken.push(format!("{service}: {unsent} outbox rows unsent"));
        }
        let letters: Vec<(String, String)> =
            sqlx::query_as("SELECT consumer, event_id::text FROM dead_letters")
                .fetch_all(pool)
                .await
                .map_err(|e| format!("{service} dead letters: {e}"))?;
        dead_letters.extend(
            letters
                .into_iter()
                .map(|(consumer, event_id)| DeadLetter { consumer, event_id }),
        );
    }
    dead_letters.sort();
    let mut expected = expected_dead_letters.to_vec();
    expected.sort();
    if dead_letters != expected {
        broken.push(format!(
            "dead letters {dead_letters:?}, expected {expected:?}"
        ));
    }

    if broken.is_empty() {
        Ok(Settled {
            appointments: all.len(),
            fulfilled: fulfilled.len(),
            confirmations_sent,
        })
    } else {
        Err(broken.join("\n"))
    }
}

fn timestamp(at: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.as_second(),
        nanos: at.subsec_nanosecond(),
    }
}
