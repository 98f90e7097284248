//! The appointments service end to end: the real `appointments` binary over gRPC on a fresh
//! PostgreSQL database and a private NATS JetStream. The directory read model is fed with
//! well-formed directory events published on the `DIRECTORY` stream (so each test controls the
//! clinic's policy, REMS certification and status exactly); one test feeds it from the real
//! `directory` binary instead.
//!
//! Covered: no double booking with 200 concurrent clients on two replicas, availability sync
//! (replace, replay, stale, booked slots kept, 100,000 slots streamed, failures leave the previous
//! availability intact), every lifecycle transition, a reschedule racing a cancel, hold expiry,
//! each clinical gate by name, course booking all or nothing, the integration window edges,
//! outcomes against a hand-worked fixture, DST rendering, patients with audit and events.

use async_nats::jetstream::{self, consumer};
use clinicnet_proto::appointments::v1::{
    self as pb, PreconditionRule as Rule, appointments_service_client::AppointmentsServiceClient,
    patients_service_client::PatientsServiceClient,
};
use clinicnet_proto::common::v1::{self as common, Modality};
use clinicnet_proto::directory::v1 as dir;
use clinicnet_proto::events::v1 as ev;
use futures::StreamExt as _;
use platform::auth::{Role, claims, mint_hs256};
use platform::error::violated_fields;
use prost::Message as _;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration as StdDuration;
use system_tests::{PrivateNats, ServiceProcess, ServiceSpec, TestDatabase};
use time::{Duration, OffsetDateTime};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;
use uuid::Uuid;

const SECRET: &str = "appointments-system-test-secret";
const IV: i32 = Modality::IvKetamine as i32;
const ESKETAMINE: i32 = Modality::EsketamineNasalSpray as i32;
const INTEGRATION: i32 = Modality::IntegrationTherapy as i32;
const PSYCHOTHERAPY: i32 = Modality::Psychotherapy as i32;
const ALL_MODALITIES: [i32; 5] = [
    IV,
    ESKETAMINE,
    Modality::OralKetamineLozenge as i32,
    INTEGRATION,
    PSYCHOTHERAPY,
];

type Apps = AppointmentsServiceClient<Channel>;
type Patients = PatientsServiceClient<Channel>;

// ---------------------------------------------------------------------------------------------
// Harness: a private NATS with the DIRECTORY stream, the service on its own database, tokens.
// ---------------------------------------------------------------------------------------------

fn token(role: Role, clinics: &[&str], payer: Option<&str>) -> String {
    let clinic_ids = clinics.iter().map(|c| (*c).to_owned()).collect();
    mint_hs256(
        SECRET,
        &claims(
            "appointments-system-test",
            role,
            clinic_ids,
            payer.map(str::to_owned),
            3600,
        ),
    )
    .expect("token")
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    request
}

fn ops<T>(message: T) -> Request<T> {
    with_token(message, &token(Role::Ops, &[], None))
}

fn partner<T>(message: T, clinic: &str) -> Request<T> {
    with_token(message, &token(Role::PartnerClinic, &[clinic], None))
}

fn integrator<T>(message: T) -> Request<T> {
    with_token(message, &token(Role::Integrator, &[], Some("payer-a")))
}

fn rid() -> String {
    Uuid::new_v4().to_string()
}

/// The rule a FAILED_PRECONDITION names.
fn rule_of(status: &Status) -> String {
    status
        .get_details_precondition_failure()
        .and_then(|f| f.violations.first().map(|v| v.r#type.clone()))
        .unwrap_or_default()
}

#[track_caller]
fn assert_rule<T: std::fmt::Debug>(result: Result<T, Status>, rule: Rule, case: &str) {
    match result {
        Err(status) => {
            assert_eq!(
                status.code(),
                Code::FailedPrecondition,
                "{case}: {status:?}"
            );
            assert_eq!(rule_of(&status), rule.as_str_name(), "{case}: {status:?}");
        }
        Ok(value) => panic!("{case}: expected {}, got {value:?}", rule.as_str_name()),
    }
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str, case: &str) {
    match result {
        Err(status) => {
            assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
            assert!(
                violated_fields(&status).iter().any(|f| f == field),
                "{case}: {:?} lacks {field}",
                violated_fields(&status)
            );
        }
        Ok(value) => panic!("{case}: expected INVALID_ARGUMENT on {field}, got {value:?}"),
    }
}

/// A private NATS server with the directory's stream, as the directory declares it.
struct Net {
    nats: PrivateNats,
    js: jetstream::Context,
}

impl Net {
    async fn start() -> Net {
        let nats = PrivateNats::start().await.expect("nats");
        let client = async_nats::connect(nats.url()).await.expect("connect nats");
        let js = jetstream::new(client);
        platform::events::streams::ensure_stream(&js, "directory", 1)
            .await
            .expect("DIRECTORY stream");
        Net { nats, js }
    }

    /// Publishes a directory event the way the directory's relay does.
    async fn publish<M: prost::Message>(&self, subject: &str, event_id: &str, event: &M) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event_id);
        self.js
            .publish_with_headers(subject.to_owned(), headers, event.encode_to_vec().into())
            .await
            .expect("publish")
            .await
            .expect("publish ack");
    }

    /// A clinic event (`registered`, `updated`, `suspended`, `reactivated`).
    async fn clinic(&self, event: &str, clinic: &dir::Clinic, providers: &[dir::Provider]) {
        let metadata = metadata("clinic", &clinic.clinic_id, clinic.version);
        let id = metadata.event_id.clone();
        let subject = format!("clinicnet.directory.clinic.{event}");
        let (clinic, providers) = (Some(clinic.clone()), providers.to_vec());
        match event {
            "registered" => {
                self.publish(
                    &subject,
                    &id,
                    &ev::ClinicRegistered {
                        metadata: Some(metadata),
                        clinic,
                        providers,
                    },
                )
                .await
            }
            "updated" => {
                self.publish(
                    &subject,
                    &id,
                    &ev::ClinicUpdated {
                        metadata: Some(metadata),
                        clinic,
                        providers,
                    },
                )
                .await
            }
            "suspended" => {
                self.publish(
                    &subject,
                    &id,
                    &ev::ClinicSuspended {
                        metadata: Some(metadata),
                        clinic,
                        providers,
                    },
                )
                .await
            }
            other => panic!("no clinic event {other}"),
        }
    }

    /// Every event the appointments service published so far on a subject, as raw payloads.
    async fn published(&self, subject: &str) -> Vec<Vec<u8>> {
        let stream = self
            .js
            .get_stream("APPOINTMENTS")
            .await
            .expect("APPOINTMENTS stream");
        let mut consumer = stream
            .create_consumer(consumer::pull::Config {
                filter_subject: subject.to_owned(),
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let pending = consumer.info().await.expect("info").num_pending;
        let mut payloads = Vec::new();
        if pending == 0 {
            return payloads;
        }
        let mut messages = consumer
            .fetch()
            .max_messages(pending as usize)
            .messages()
            .await
            .expect("fetch");
        while let Some(message) = messages.next().await {
            payloads.push(message.expect("message").payload.to_vec());
        }
        payloads
    }

    /// Waits (up to 15 s) until at least `n` events were published on `subject`.
    async fn wait_published(&self, subject: &str, n: usize) -> Vec<Vec<u8>> {
        for _ in 0..150 {
            let found = self.published(subject).await;
            if found.len() >= n {
                return found;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        panic!("fewer than {n} events on {subject}");
    }
}

fn metadata(aggregate_type: &str, aggregate_id: &str, version: u64) -> ev::EventMetadata {
    ev::EventMetadata {
        event_id: Uuid::now_v7().to_string(),
        occurred_at: Some(ts(OffsetDateTime::now_utc())),
        aggregate_type: aggregate_type.into(),
        aggregate_id: aggregate_id.into(),
        aggregate_version: version,
        producer: "directory".into(),
        request_id: rid(),
        causation_event_id: String::new(),
    }
}

/// The appointments service: one database, one or more replicas.
struct Service {
    db: TestDatabase,
    procs: Vec<ServiceProcess>,
    channels: Vec<Channel>,
}

impl Service {
    async fn start(net: &Net, replicas: usize, extra: &[(&str, &str)]) -> Service {
        let db = TestDatabase::create("appointments").await;
        let mut procs = Vec::new();
        for _ in 0..replicas {
            let mut spec = ServiceSpec::new("appointments")
                .env("DATABASE_URL", db.url())
                .env("NATS_URL", net.nats.url())
                .env("JWT_HS256_SECRET", SECRET);
            for (key, value) in extra {
                spec = spec.env(*key, *value);
            }
            procs.push(
                ServiceProcess::spawn(spec)
                    .await
                    .expect("spawn appointments"),
            );
        }
        let mut channels = Vec::new();
        for process in &mut procs {
            process
                .wait_serving(StdDuration::from_secs(90))
                .await
                .expect("appointments SERVING");
            channels.push(process.channel().await.expect("channel"));
        }
        Service {
            db,
            procs,
            channels,
        }
    }

    fn apps(&self) -> Apps {
        AppointmentsServiceClient::new(self.channels[0].clone())
    }

    fn patients(&self) -> Patients {
        PatientsServiceClient::new(self.channels[0].clone())
    }

    /// Waits until the read model holds the clinic at `version` (or newer).
    async fn wait_clinic(&self, clinic_id: &str, version: u64) {
        for _ in 0..300 {
            let stored: Option<i64> =
                sqlx::query_scalar("SELECT version FROM clinics WHERE clinic_id = $1")
                    .bind(clinic_id)
                    .fetch_optional(self.db.pool())
                    .await
                    .expect("read model");
            if stored.is_some_and(|v| v >= version as i64) {
                return;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        panic!("clinic {clinic_id} v{version} never reached the read model");
    }

    async fn stop(self) {
        drop(self.procs);
        self.db.drop_db().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures.
// ---------------------------------------------------------------------------------------------

fn ts(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    }
}

fn instant(t: &Option<prost_types::Timestamp>) -> OffsetDateTime {
    let t = t.as_ref().expect("a timestamp");
    OffsetDateTime::from_unix_timestamp(t.seconds).expect("instant")
        + Duration::nanoseconds(i64::from(t.nanos))
}

fn interval(start: OffsetDateTime, end: OffsetDateTime) -> common::TimeInterval {
    common::TimeInterval {
        start_time: Some(ts(start)),
        end_time: Some(ts(end)),
    }
}

/// A whole hour at least two days ahead.
fn base() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_minute(0)
        .unwrap()
        .replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap()
        + Duration::days(2)
}

fn today_ny() -> common::Date {
    let zone = jiff::tz::TimeZone::get("America/New_York").unwrap();
    let d = jiff::Timestamp::now().to_zoned_datetime(zone).date();
    common::Date {
        year: i32::from(d.year()),
        month: i32::from(d.month()),
        day: i32::from(d.day()),
    }
}

fn ny_date_plus(days: i64) -> common::Date {
    let d = today_ny();
    let date = time::Date::from_calendar_date(
        d.year,
        time::Month::try_from(d.month as u8).unwrap(),
        d.day as u8,
    )
    .unwrap()
        + Duration::days(days);
    common::Date {
        year: date.year(),
        month: i32::from(u8::from(date.month())),
        day: i32::from(date.day()),
    }
}

/// The instant of `hour:00` New York time on `date`.
fn ny_at(date: &common::Date, hour: i8) -> OffsetDateTime {
    let zone = jiff::tz::TimeZone::get("America/New_York").unwrap();
    let local = jiff::civil::DateTime::new(
        date.year as i16,
        date.month as i8,
        date.day as i8,
        hour,
        0,
        0,
        0,
    )
    .unwrap();
    let zoned = zone.to_zoned_datetime(local).unwrap();
    OffsetDateTime::from_unix_timestamp(zoned.timestamp().as_second()).unwrap()
}

fn range(from: i32, to: i32) -> dir::LocalTimeRange {
    dir::LocalTimeRange {
        start: Some(common::TimeOfDay {
            hours: from,
            minutes: 0,
        }),
        end: Some(common::TimeOfDay {
            hours: to,
            minutes: 0,
        }),
    }
}

fn every_day(from: i32, to: i32) -> dir::WeeklyHours {
    dir::WeeklyHours {
        days: (1..=7)
            .map(|d| dir::DayHours {
                day_of_week: d,
                intervals: vec![range(from, to)],
            })
            .collect(),
    }
}

/// A clinic of the network with its providers, as the directory announces it.
#[derive(Clone)]
struct Fixture {
    clinic: dir::Clinic,
    providers: Vec<dir::Provider>,
}

impl Fixture {
    fn id(&self) -> &str {
        &self.clinic.clinic_id
    }

    fn chair(&self, n: usize) -> String {
        self.clinic.chairs[n].chair_id.clone()
    }

    fn provider(&self, n: usize) -> String {
        self.providers[n].provider_id.clone()
    }
}

/// A bilingual Miami clinic offering every modality with `chairs` chairs and as many providers
/// (provider n works chair n), open every day 08:00–20:00, REMS current for a year, no buffers, no
/// minimum notice, a 365-day horizon; then `edit`.
fn fixture(chairs: usize, edit: impl FnOnce(&mut dir::Clinic)) -> Fixture {
    let clinic_id = format!("clinic-{}", Uuid::new_v4().simple());
    let expires = ny_date_plus(365);
    let mut clinic = dir::Clinic {
        clinic_id: clinic_id.clone(),
        display_name: "Ketamine Health Centers".into(),
        status: dir::ClinicStatus::Active as i32,
        npi: "1245319599".into(),
        time_zone: "America/New_York".into(),
        languages: vec!["en".into(), "es".into()],
        weekly_hours: Some(every_day(8, 20)),
        locations: vec![dir::Location {
            location_id: "main".into(),
            display_name: "Coral Gables".into(),
            coordinates: Some(common::GeoPoint {
                latitude: 25.7215,
                longitude: -80.2684,
            }),
            ..Default::default()
        }],
        chairs: (0..chairs)
            .map(|n| dir::Chair {
                chair_id: format!("{clinic_id}-chair-{n}"),
                location_id: "main".into(),
                display_name: format!("Chair {n}"),
                modalities: ALL_MODALITIES.to_vec(),
                capacity: 1,
                retired: false,
            })
            .collect(),
        modalities: ALL_MODALITIES.to_vec(),
        rems_certification: Some(dir::RemsCertification {
            certification_id: "REMS-1".into(),
            expires_on: Some(expires),
        }),
        scheduling_policy: Some(dir::SchedulingPolicy {
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            minimum_notice_minutes: 0,
            booking_horizon_days: 365,
            iv_infusion_minutes: 40,
            iv_recovery_minutes: 45,
            esketamine_monitoring_minutes: 120,
            therapy_session_minutes: 60,
            late_cancellation_hours: 24,
        }),
        version: 1,
        ..Default::default()
    };
    edit(&mut clinic);
    let providers = (0..chairs)
        .map(|n| dir::Provider {
            provider_id: format!("{clinic_id}-provider-{n}"),
            npi: "1679576722".into(),
            languages: if n == 0 {
                vec!["en".into(), "es".into()]
            } else {
                vec!["en".into()]
            },
            clinic_ids: vec![clinic_id.clone()],
            modalities: ALL_MODALITIES.to_vec(),
            status: dir::ProviderStatus::Active as i32,
            version: 1,
            ..Default::default()
        })
        .collect();
    Fixture { clinic, providers }
}

/// Announces the fixture and waits until the service knows it.
async fn announce(net: &Net, service: &Service, fixture: &Fixture) {
    net.clinic("registered", &fixture.clinic, &fixture.providers)
        .await;
    service
        .wait_clinic(fixture.id(), fixture.clinic.version)
        .await;
}

fn slot(
    chair: &str,
    provider: &str,
    modality: i32,
    start: OffsetDateTime,
    minutes: i64,
) -> pb::AvailabilitySlot {
    pb::AvailabilitySlot {
        external_id: String::new(),
        chair_id: chair.into(),
        provider_id: provider.into(),
        modality,
        start_time: Some(ts(start)),
        end_time: Some(ts(start + Duration::minutes(minutes))),
    }
}

async fn sync(
    apps: &mut Apps,
    clinic: &str,
    version: u64,
    window: (OffsetDateTime, OffsetDateTime),
    slots: Vec<pb::AvailabilitySlot>,
) -> Result<pb::SyncOutcome, Status> {
    apps.sync_availability(ops(pb::SyncAvailabilityRequest {
        request_id: rid(),
        clinic_id: clinic.into(),
        window: Some(interval(window.0, window.1)),
        slots,
        sync_version: version,
    }))
    .await
    .map(|r| r.into_inner().outcome.expect("outcome"))
}

/// Every slot of the clinic starting in the window (all statuses but entered-in-error).
async fn slots_of(
    apps: &mut Apps,
    clinic: &str,
    window: (OffsetDateTime, OffsetDateTime),
) -> Vec<pb::Slot> {
    apps.list_slots(ops(pb::ListSlotsRequest {
        page_size: 5000,
        clinic_id: clinic.into(),
        window: Some(interval(window.0, window.1)),
        ..Default::default()
    }))
    .await
    .expect("list slots")
    .into_inner()
    .slots
}

async fn slot_status(
    apps: &mut Apps,
    clinic: &str,
    slot_id: &str,
    window: (OffsetDateTime, OffsetDateTime),
) -> pb::SlotStatus {
    let all = slots_of(apps, clinic, window).await;
    all.iter()
        .find(|s| s.slot_id == slot_id)
        .map_or(pb::SlotStatus::EnteredInError, |s| s.status())
}

/// Syncs `slots` as the clinic's next version and returns their ids in start order.
async fn offer(
    apps: &mut Apps,
    clinic: &str,
    version: u64,
    slots: Vec<pb::AvailabilitySlot>,
) -> Vec<String> {
    let starts: Vec<OffsetDateTime> = slots.iter().map(|s| instant(&s.start_time)).collect();
    let ends: Vec<OffsetDateTime> = slots.iter().map(|s| instant(&s.end_time)).collect();
    let from = *starts.iter().min().expect("slots");
    let to = *ends.iter().max().expect("slots");
    let wanted: Vec<(String, OffsetDateTime)> = slots
        .iter()
        .map(|s| (s.chair_id.clone(), instant(&s.start_time)))
        .collect();
    sync(apps, clinic, version, (from, to), slots)
        .await
        .expect("sync");
    let listed = slots_of(apps, clinic, (from, to)).await;
    wanted
        .iter()
        .map(|(chair, start)| {
            listed
                .iter()
                .find(|s| {
                    &s.chair_id == chair
                        && instant(&s.start_time) == *start
                        && s.status() == pb::SlotStatus::Free
                })
                .map(|s| s.slot_id.clone())
                .expect("the synced slot")
        })
        .collect()
}

fn person() -> common::PersonName {
    common::PersonName {
        given_name: "María".into(),
        middle_name: String::new(),
        family_name: "Zubizarreta-Quintero".into(),
    }
}

async fn register(patients: &mut Patients, clinic: &str, born: (i32, i32, i32)) -> String {
    patients
        .register_patient(ops(pb::RegisterPatientRequest {
            request_id: rid(),
            patient: Some(pb::Patient {
                name: Some(person()),
                birth_date: Some(common::Date {
                    year: born.0,
                    month: born.1,
                    day: born.2,
                }),
                preferred_locale: common::Locale::EsUs as i32,
                registered_clinic_id: clinic.into(),
                ..Default::default()
            }),
        }))
        .await
        .expect("register patient")
        .into_inner()
        .patient
        .expect("patient")
        .patient_id
}

fn trial(weeks: i32) -> common::AntidepressantTrial {
    common::AntidepressantTrial {
        drug_class: common::AntidepressantClass::Ssri as i32,
        duration_weeks: weeks,
        adequate_dose: true,
        current_episode: true,
    }
}

async fn record_intake(
    patients: &mut Patients,
    patient: &str,
    clinic: &str,
    trials: usize,
    baseline: i32,
) {
    patients
        .record_intake(ops(pb::RecordIntakeRequest {
            request_id: rid(),
            intake: Some(pb::Intake {
                patient_id: patient.into(),
                clinic_id: clinic.into(),
                diagnosis_codes: vec!["F33.2".into()],
                failed_trials: (0..trials).map(|_| trial(8)).collect(),
                baseline_phq9: Some(pb::Phq9 {
                    item_scores: vec![],
                    total_score: baseline,
                    administer_time: None,
                }),
                trd_attested: true,
                ..Default::default()
            }),
        }))
        .await
        .expect("record intake");
}

/// A patient with an intake showing treatment-resistant depression.
async fn eligible_patient(patients: &mut Patients, clinic: &str) -> String {
    let id = register(patients, clinic, (1980, 5, 1)).await;
    record_intake(patients, &id, clinic, 2, 20).await;
    id
}

fn book_request(slot_id: &str, patient: &str, dose: i32) -> pb::BookAppointmentRequest {
    pb::BookAppointmentRequest {
        request_id: rid(),
        target: Some(pb::book_appointment_request::Target::SlotId(slot_id.into())),
        patient_id: patient.into(),
        planned_dose_mg: dose,
        ..Default::default()
    }
}

async fn book(
    apps: &mut Apps,
    slot_id: &str,
    patient: &str,
    dose: i32,
) -> Result<pb::Appointment, Status> {
    apps.book_appointment(ops(book_request(slot_id, patient, dose)))
        .await
        .map(|r| r.into_inner().appointment.expect("appointment"))
}

async fn check_in(apps: &mut Apps, id: &str) -> Result<pb::Appointment, Status> {
    apps.check_in_appointment(ops(pb::CheckInAppointmentRequest {
        request_id: rid(),
        appointment_id: id.into(),
    }))
    .await
    .map(|r| r.into_inner().appointment.expect("appointment"))
}

async fn cancel(apps: &mut Apps, id: &str) -> Result<pb::CancelAppointmentResponse, Status> {
    apps.cancel_appointment(ops(pb::CancelAppointmentRequest {
        request_id: rid(),
        appointment_id: id.into(),
        reason: pb::CancellationReason::PatientRequest as i32,
        note: String::new(),
    }))
    .await
    .map(|r| r.into_inner())
}

async fn no_show(apps: &mut Apps, id: &str) -> Result<pb::Appointment, Status> {
    apps.mark_no_show(ops(pb::MarkNoShowRequest {
        request_id: rid(),
        appointment_id: id.into(),
    }))
    .await
    .map(|r| r.into_inner().appointment.expect("appointment"))
}

async fn reschedule(apps: &mut Apps, id: &str, slot_id: &str) -> Result<pb::Appointment, Status> {
    apps.reschedule_appointment(ops(pb::RescheduleAppointmentRequest {
        request_id: rid(),
        appointment_id: id.into(),
        target: Some(pb::reschedule_appointment_request::Target::SlotId(
            slot_id.into(),
        )),
    }))
    .await
    .map(|r| r.into_inner().appointment.expect("appointment"))
}

/// Nine PHQ-9 answers summing to `total`, item 9 set to `item9`.
fn phq9(total: i32, item9: i32) -> pb::Phq9 {
    let mut items = vec![0; 9];
    items[8] = item9;
    let mut left = total - item9;
    for item in items.iter_mut().take(8) {
        let take = left.min(3);
        *item = take;
        left -= take;
    }
    assert_eq!(left, 0, "a PHQ-9 total of {total} with item 9 = {item9}");
    pb::Phq9 {
        item_scores: items,
        total_score: total,
        administer_time: None,
    }
}

fn iv_completion(total: i32, item9: i32, at: OffsetDateTime) -> pb::Completion {
    pb::Completion {
        modality: IV,
        dose_mg: 35,
        treatment_minutes: 40,
        monitoring_minutes: 45,
        phq9: Some(phq9(total, item9)),
        complete_time: Some(ts(at)),
        ..Default::default()
    }
}

async fn complete(
    apps: &mut Apps,
    id: &str,
    completion: pb::Completion,
) -> Result<pb::CompleteAppointmentResponse, Status> {
    apps.complete_appointment(ops(pb::CompleteAppointmentRequest {
        request_id: rid(),
        appointment_id: id.into(),
        completion: Some(completion),
    }))
    .await
    .map(|r| r.into_inner())
}

// ---------------------------------------------------------------------------------------------
// No double booking.
// ---------------------------------------------------------------------------------------------

/// 200 clients (ten per slot) book 20 slots at once through two replicas on one database: exactly
/// one booking per slot, every loser gets FAILED_PRECONDITION naming SLOT_UNAVAILABLE, and
/// PostgreSQL holds no two active visits of one chair or provider that overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_on_two_replicas_book_twenty_slots_exactly_once() {
    let net = Net::start().await;
    let service = Service::start(&net, 2, &[]).await;
    let f = fixture(5, |_| {});
    announce(&net, &service, &f).await;
    let (mut apps, mut patients) = (service.apps(), service.patients());
    let start = base();
    // Five chairs, each with four back-to-back three-hour IV slots and its own provider.
    let mut wanted = Vec::new();
    for chair in 0..5 {
        for k in 0..4 {
            wanted.push(slot(
                &f.chair(chair),
                &f.provider(chair),
                IV,
                start + Duration::hours(3 * k),
                180,
            ));
        }
    }
    let slot_ids = offer(&mut apps, f.id(), 1, wanted).await;
    assert_eq!(slot_ids.len(), 20);
    let mut patient_ids = Vec::new();
    for _ in 0..10 {
        patient_ids.push(eligible_patient(&mut patients, f.id()).await);
    }

    let barrier = Arc::new(tokio::sync::Barrier::new(200));
    let mut clients = Vec::new();
    for i in 0..200 {
        let mut client = AppointmentsServiceClient::new(service.channels[i % 2].clone());
        let request = ops(book_request(&slot_ids[i % 20], &patient_ids[i / 20], 35));
        let barrier = barrier.clone();
        clients.push(tokio::spawn(async move {
            barrier.wait().await;
            client
                .book_appointment(request)
                .await
                .map(|r| r.into_inner().appointment.expect("appointment"))
        }));
    }
    let mut booked_slots = HashSet::new();
    let mut losers = 0;
    for client in clients {
        match client.await.expect("client task") {
            Ok(appointment) => {
                assert_eq!(appointment.status(), pb::AppointmentStatus::Booked);
                assert!(
                    booked_slots.insert(appointment.slot_id.clone()),
                    "slot {} booked twice",
                    appointment.slot_id
                );
            }
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert_eq!(
                    rule_of(&status),
                    Rule::SlotUnavailable.as_str_name(),
                    "{status:?}"
                );
                losers += 1;
            }
        }
    }
    assert_eq!(booked_slots.len(), 20, "one booking per slot");
    assert_eq!(losers, 180);

    let pool = service.db.pool();
    let active: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM appointments WHERE status IN ('booked', 'checked-in')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(active, 20);
    let overlapping: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM appointments a JOIN appointments b ON a.appointment_id < b.appointment_id
          WHERE a.status IN ('booked', 'checked-in') AND b.status IN ('booked', 'checked-in')
            AND (a.chair_id = b.chair_id OR a.provider_id = b.provider_id)
            AND tstzrange(a.start_time, a.end_time) && tstzrange(b.start_time, b.end_time)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(overlapping, 0, "overlapping active visits");
    let reserved: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM appointments a JOIN reservations r ON r.reservation_id = a.appointment_id
          WHERE r.active AND r.chair_id = a.chair_id AND r.provider_id = a.provider_id
            AND r.occupied @> tstzrange(a.start_time, a.end_time)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(reserved, 20, "every visit holds its chair and provider");
    service.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Availability sync.
// ---------------------------------------------------------------------------------------------

/// Replace, replay, stale version, a window that would remove a booked slot or overlap it, and
/// syncs that fail (a bad slot, a short stream) leaving the previous availability as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_replaces_replays_refuses_stale_versions_and_never_moves_a_booking() {
    let net = Net::start().await;
    let service = Service::start(&net, 1, &[]).await;
    let f = fixture(3, |_| {});
    announce(&net, &service, &f).await;
    let (mut apps, mut patients) = (service.apps(), service.patients());
    let t = base();
    let window = (t, t + Duration::days(1));
    let (c0, c1, c2) = (f.chair(0), f.chair(1), f.chair(2));
    let a = slot(&c0, "", IV, t, 180);
    let b = slot(&c0, "", IV, t + Duration::hours(3), 180);
    let c = slot(&c1, "", IV, t, 180);

    let first = sync(
        &mut apps,
        f.id(),
        1,
        window,
        vec![a.clone(), b.clone(), c.clone()],
    )
    .await
    .unwrap();
    assert_eq!(
        (
            first.slots_added,
            first.slots_removed,
            first.slots_unchanged,
            first.replayed
        ),
        (3, 0, 0, false)
    );
    let replay = sync(&mut apps, f.id(), 1, window, vec![]).await.unwrap();
    assert!(replay.replayed, "the same sync_version is a no-op");
    assert_eq!(
        (replay.slots_added, replay.slots_removed),
        (3, 0),
        "with the original outcome"
    );
    assert_eq!(slots_of(&mut apps, f.id(), window).await.len(), 3);

    let d = slot(&c1, "", IV, t + Duration::hours(3), 180);
    let second = sync(&mut apps, f.id(), 2, window, vec![a.clone(), d.clone()])
        .await
        .unwrap();
    assert_eq!(
        (
            second.slots_added,
            second.slots_removed,
            second.slots_unchanged
        ),
        (1, 2, 1)
    );
    let listed = slots_of(&mut apps, f.id(), window).await;
    assert_eq!(listed.len(), 2);
    let slot_a = listed
        .iter()
        .find(|s| s.chair_id == c0)
        .unwrap()
        .slot_id
        .clone();

    let patient = eligible_patient(&mut patients, f.id()).await;
    let booked = book(&mut apps, &slot_a, &patient, 35).await.unwrap();
    // v3 drops the booked slot and sends one overlapping the booking on its chair.
    let e = slot(&c0, "", IV, t + Duration::hours(1), 180);
    let g = slot(&c2, "", IV, t, 180);
    let third = sync(&mut apps, f.id(), 3, window, vec![e, g])
        .await
        .unwrap();
    assert_eq!(
        (
            third.slots_added,
            third.slots_removed,
            third.slots_unchanged
        ),
        (1, 1, 0)
    );
    let kinds: Vec<(pb::SyncConflictKind, String)> = third
        .conflicts
        .iter()
        .map(|c| (c.kind(), c.slot_id.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (pb::SyncConflictKind::BookedSlotKept, slot_a.clone()),
            (pb::SyncConflictKind::OverlapsBooking, slot_a.clone())
        ]
    );
    assert_eq!(third.conflicts[0].appointment_id, booked.appointment_id);
    assert_eq!(
        slot_status(&mut apps, f.id(), &slot_a, window).await,
        pb::SlotStatus::Busy,
        "a booked slot is never removed"
    );
    let got = apps
        .get_appointment(ops(pb::GetAppointmentRequest {
            appointment_id: booked.appointment_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap();
    assert_eq!(
        (got.slot_id, got.start_time),
        (slot_a.clone(), booked.start_time),
        "nor moved"
    );

    assert_rule(
        sync(&mut apps, f.id(), 2, window, vec![]).await,
        Rule::StaleSyncVersion,
        "an older version",
    );

    // A sync with a bad slot changes nothing.
    let before = slots_of(&mut apps, f.id(), window).await;
    let outside = slot(&c2, "", IV, t + Duration::hours(23), 180);
    let result = sync(
        &mut apps,
        f.id(),
        4,
        window,
        vec![slot(&c1, "", IV, t, 180), outside],
    )
    .await;
    assert_invalid(result, "slots[1].start_time", "a slot outside the window");
    let unknown = sync(
        &mut apps,
        f.id(),
        4,
        window,
        vec![slot("no-such-chair", "", IV, t, 180)],
    )
    .await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);
    // A stream that announces more slots than it carries changes nothing either.
    let header = pb::StreamSyncAvailabilityRequest {
        request_id: rid(),
        part: Some(pb::stream_sync_availability_request::Part::Header(
            pb::SyncAvailabilityHeader {
                clinic_id: f.id().into(),
                window: Some(interval(window.0, window.1)),
                sync_version: 4,
                expected_slot_count: 3,
            },
        )),
    };
    let chunk = pb::StreamSyncAvailabilityRequest {
        request_id: String::new(),
        part: Some(pb::stream_sync_availability_request::Part::Chunk(
            pb::SyncAvailabilityChunk {
                slots: vec![
                    slot(&c1, "", IV, t, 180),
                    slot(&c2, "", IV, t + Duration::hours(4), 180),
                ],
            },
        )),
    };
    let short = apps
        .stream_sync_availability(ops(futures::stream::iter(vec![header, chunk])))
        .await;
    assert_invalid(
        short,
        "header.expected_slot_count",
        "fewer slots than announced",
    );
    let after = slots_of(&mut apps, f.id(), window).await;
    let ids = |slots: &[pb::Slot]| {
        slots
            .iter()
            .map(|s| (s.slot_id.clone(), s.status))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&after),
        ids(&before),
        "failed syncs leave the previous availability intact"
    );

    // Scope.
    let denied = apps
        .sync_availability(partner(
            pb::SyncAvailabilityRequest {
                request_id: rid(),
                clinic_id: f.id().into(),
                window: Some(interval(window.0, window.1)),
                slots: vec![],
                sync_version: 9,
            },
            "another-clinic",
        ))
        .await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
    let denied = apps
        .list_slots(integrator(pb::ListSlotsRequest {
            clinic_id: f.id().into(),
            ..Default::default()
        }))
        .await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
    service.stop().await;
}

fn stream_header(
    clinic: &str,
    window: (OffsetDateTime, OffsetDateTime),
    version: u64,
    count: i64,
) -> pb::StreamSyncAvailabilityRequest {
    pb::StreamSyncAvailabilityRequest {
        request_id: rid(),
        part: Some(pb::stream_sync_availability_request::Part::Header(
            pb::SyncAvailabilityHeader {
                clinic_id: clinic.into(),
                window: Some(interval(window.0, window.1)),
                sync_version: version,
                expected_slot_count: count,
            },
        )),
    }
}

/// 100,000 slots in one streamed sync, committed at once; a second large sync cancelled half-way
/// leaves the first one's availability intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_sync_of_100000_slots_commits_all_or_nothing() {
    let net = Net::start().await;
    let service = Service::start(&net, 1, &[]).await;
    let f = fixture(50, |_| {});
    announce(&net, &service, &f).await;
    let mut apps = service.apps();
    let t = base();
    let window = (t, t + Duration::days(90));
    // 50 chairs × 2,000 one-hour psychotherapy slots back to back.
    let chunks: Vec<pb::StreamSyncAvailabilityRequest> = (0..20)
        .map(|c| pb::StreamSyncAvailabilityRequest {
            request_id: String::new(),
            part: Some(pb::stream_sync_availability_request::Part::Chunk(
                pb::SyncAvailabilityChunk {
                    slots: (0..5000)
                        .map(|i| {
                            let n = c * 5000 + i;
                            let mut s = slot(
                                &f.chair(n % 50),
                                "",
                                PSYCHOTHERAPY,
                                t + Duration::hours((n / 50) as i64),
                                60,
                            );
                            s.external_id = format!("ext-{n}");
                            s
                        })
                        .collect(),
                },
            )),
        })
        .collect();
    let mut messages = vec![stream_header(f.id(), window, 1, 100_000)];
    messages.extend(chunks.iter().cloned());
    let outcome = apps
        .stream_sync_availability(ops(futures::stream::iter(messages)))
        .await
        .expect("streamed sync")
        .into_inner()
        .outcome
        .unwrap();
    assert_eq!(
        (
            outcome.slots_added,
            outcome.slots_removed,
            outcome.sync_version
        ),
        (100_000, 0, 1)
    );
    let free = || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM slots WHERE status = 'free' AND sync_version = 1",
        )
        .fetch_one(service.db.pool())
        .await
        .unwrap();
        n
    };
    assert_eq!(free().await, 100_000);

    // Version 2 of the same size, cancelled after half of its chunks.
    let (sender, receiver) = futures::channel::mpsc::unbounded();
    sender
        .unbounded_send(stream_header(f.id(), window, 2, 100_000))
        .unwrap();
    for chunk in chunks.iter().take(10) {
        sender.unbounded_send(chunk.clone()).unwrap();
    }
    let mut client = apps.clone();
    let call = tokio::spawn(async move { client.stream_sync_availability(ops(receiver)).await });
    // Let the service stage the chunks sent, then walk away from the call.
    for _ in 0..100 {
        let staging: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'",
        )
        .fetch_one(service.db.pool())
        .await
        .unwrap();
        if staging > 0 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    call.abort();
    drop(sender);
    // Version 2 as a small unary sync keeping one slot: it waits for the abandoned stream's
    // transaction to end and finds version 1 still the last applied.
    assert_eq!(free().await, 100_000, "the cancelled sync changed nothing");
    let kept = slot(&f.chair(0), "", PSYCHOTHERAPY, t, 60);
    let second = sync(&mut apps, f.id(), 2, window, vec![kept])
        .await
        .expect("version 2");
    assert!(
        !second.replayed,
        "the cancelled stream never applied version 2"
    );
    assert_eq!(
        (
            second.slots_unchanged,
            second.slots_removed,
            second.slots_added
        ),
        (1, 99_999, 0)
    );
    service.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Lifecycle.
// ---------------------------------------------------------------------------------------------

/// Every transition, legal and illegal; rescheduling keeps the id; late cancellation is flagged;
/// a no-show only after the start; holds block, release and expire (at query time and by the
/// sweep); retries of a mutating call return the first answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lifecycle_transition_legal_and_illegal_and_holds_that_expire() {
    let net = Net::start().await;
    let service = Service::start(
        &net,
        1,
        &[
            ("HOLD_TTL_SECONDS", "2"),
            ("HOLD_MIN_TTL_SECONDS", "1"),
            ("HOLD_SWEEP_INTERVAL_SECONDS", "1"),
        ],
    )
    .await;
    let f = fixture(4, |_| {});
    announce(&net, &service, &f).await;
    let (mut apps, mut patients) = (service.apps(), service.patients());
    let patient = eligible_patient(&mut patients, f.id()).await;
    let t = base();
    let window = (
        OffsetDateTime::now_utc() - Duration::hours(1),
        t + Duration::days(2),
    );

    // A no-show only once the start has passed: a visit starting in a few seconds.
    let soon = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + Duration::seconds(8);
    let early = offer(
        &mut apps,
        f.id(),
        1,
        vec![slot(&f.chair(2), "", IV, soon, 180)],
    )
    .await;
    let missed = book(&mut apps, &early[0], &patient, 35).await.unwrap();
    assert_rule(
        no_show(&mut apps, &missed.appointment_id).await,
        Rule::IllegalTransition,
        "no-show before the start",
    );
    let wait = soon - OffsetDateTime::now_utc() + Duration::milliseconds(300);
    tokio::time::sleep(StdDuration::from_millis(
        wait.whole_milliseconds().max(0) as u64
    ))
    .await;
    let missed = no_show(&mut apps, &missed.appointment_id).await.unwrap();
    assert_eq!(
        (missed.status(), missed.version),
        (pb::AppointmentStatus::Noshow, 2)
    );
    assert!(missed.no_show_time.is_some());
    assert_rule(
        check_in(&mut apps, &missed.appointment_id).await,
        Rule::IllegalTransition,
        "check in a no-show",
    );
    assert_rule(
        no_show(&mut apps, &missed.appointment_id).await,
        Rule::IllegalTransition,
        "no-show twice",
    );
    assert_rule(
        cancel(&mut apps, &missed.appointment_id).await,
        Rule::IllegalTransition,
        "cancel a no-show",
    );

    let in_two_hours =
        OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + Duration::hours(2);
    let ids = offer(
        &mut apps,
        f.id(),
        2,
        vec![
            slot(&f.chair(0), "", IV, t, 180), // 0: book, check in, complete
            slot(&f.chair(1), "", IV, t, 180), // 1: book, reschedule
            slot(&f.chair(0), "", IV, t + Duration::hours(3), 180), // 2: rescheduled to, cancelled
            slot(&f.chair(3), "", IV, in_two_hours, 180), // 3: late cancellation
            slot(&f.chair(1), "", IV, t + Duration::hours(6), 180), // 4: holds
            slot(&f.chair(2), "", IV, t + Duration::hours(6), 180), // 5: the sweep
        ],
    )
    .await;

    // Booked → checked-in → fulfilled, with the illegal moves around it.
    let request = book_request(&ids[0], &patient, 35);
    let first = apps
        .book_appointment(ops(request.clone()))
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap();
    let retry = apps
        .book_appointment(ops(request))
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap();
    assert_eq!(
        retry.appointment_id, first.appointment_id,
        "a retry returns the first answer"
    );
    assert_eq!(
        (first.status(), first.version),
        (pb::AppointmentStatus::Booked, 1)
    );
    let id = first.appointment_id.clone();
    let now = OffsetDateTime::now_utc;
    assert_rule(
        complete(&mut apps, &id, iv_completion(12, 0, now())).await,
        Rule::IllegalTransition,
        "complete a booked visit",
    );
    let checked = check_in(&mut apps, &id).await.unwrap();
    assert_eq!(
        (checked.status(), checked.version),
        (pb::AppointmentStatus::CheckedIn, 2)
    );
    assert!(checked.check_in_time.is_some());
    assert_rule(
        check_in(&mut apps, &id).await,
        Rule::IllegalTransition,
        "check in twice",
    );
    assert_rule(
        reschedule(&mut apps, &id, &ids[2]).await,
        Rule::IllegalTransition,
        "reschedule a checked-in visit",
    );
    assert_rule(
        no_show(&mut apps, &id).await,
        Rule::IllegalTransition,
        "no-show of a checked-in visit",
    );
    let done = complete(&mut apps, &id, iv_completion(12, 0, now()))
        .await
        .unwrap();
    let fulfilled = done.appointment.unwrap();
    assert_eq!(
        (fulfilled.status(), fulfilled.version),
        (pb::AppointmentStatus::Fulfilled, 3)
    );
    assert_eq!(fulfilled.completion.unwrap().phq9.unwrap().total_score, 12);
    assert!(done.integration_window.is_some() && !done.safety_follow_up_required);
    assert_rule(
        cancel(&mut apps, &id).await,
        Rule::IllegalTransition,
        "cancel a fulfilled visit",
    );
    assert_rule(
        complete(&mut apps, &id, iv_completion(12, 0, now())).await,
        Rule::IllegalTransition,
        "complete twice",
    );
    assert_rule(
        check_in(&mut apps, &id).await,
        Rule::IllegalTransition,
        "check in a fulfilled visit",
    );
    assert_rule(
        no_show(&mut apps, &id).await,
        Rule::IllegalTransition,
        "no-show of a fulfilled visit",
    );

    // Rescheduling keeps the id and frees the old slot; cancelling frees the new one.
    let moved_from = book(&mut apps, &ids[1], &patient, 35).await.unwrap();
    let moved = reschedule(&mut apps, &moved_from.appointment_id, &ids[2])
        .await
        .unwrap();
    assert_eq!(moved.appointment_id, moved_from.appointment_id);
    assert_eq!(
        (
            moved.slot_id.as_str(),
            moved.reschedule_count,
            moved.version
        ),
        (ids[2].as_str(), 1, 2)
    );
    assert_eq!(instant(&moved.start_time), t + Duration::hours(3));
    assert_eq!(
        slot_status(&mut apps, f.id(), &ids[1], window).await,
        pb::SlotStatus::Free
    );
    assert_eq!(
        slot_status(&mut apps, f.id(), &ids[2], window).await,
        pb::SlotStatus::Busy
    );
    let cancelled = cancel(&mut apps, &moved.appointment_id).await.unwrap();
    assert!(!cancelled.late_cancellation, "more than 24 hours ahead");
    assert_eq!(
        cancelled.appointment.unwrap().status(),
        pb::AppointmentStatus::Cancelled
    );
    assert_eq!(
        slot_status(&mut apps, f.id(), &ids[2], window).await,
        pb::SlotStatus::Free
    );
    assert_rule(
        cancel(&mut apps, &moved.appointment_id).await,
        Rule::IllegalTransition,
        "cancel twice",
    );
    assert_rule(
        check_in(&mut apps, &moved.appointment_id).await,
        Rule::IllegalTransition,
        "check in a cancelled visit",
    );
    assert_rule(
        reschedule(&mut apps, &moved.appointment_id, &ids[1]).await,
        Rule::IllegalTransition,
        "reschedule a cancelled visit",
    );

    // Cancelled inside 24 hours: late. A checked-in visit can be cancelled too.
    let late = book(&mut apps, &ids[3], &patient, 35).await.unwrap();
    check_in(&mut apps, &late.appointment_id).await.unwrap();
    let late = cancel(&mut apps, &late.appointment_id).await.unwrap();
    assert!(late.late_cancellation && late.appointment.unwrap().cancellation.unwrap().late);

    // Holds: they block others, can be released, and expire by themselves.
    let holder = apps.clone();
    let hold = |slot: String, ttl: Option<i64>| {
        let mut apps = holder.clone();
        async move {
            apps.hold_slot(ops(pb::HoldSlotRequest {
                request_id: rid(),
                slot_id: slot,
                patient_id: String::new(),
                ttl: ttl.map(|s| prost_types::Duration {
                    seconds: s,
                    nanos: 0,
                }),
            }))
            .await
            .map(|r| r.into_inner().hold.unwrap())
        }
    };
    let release = |hold_id: String| {
        let mut apps = holder.clone();
        async move {
            apps.release_hold(ops(pb::ReleaseHoldRequest {
                request_id: rid(),
                hold_id,
            }))
            .await
            .map(|r| r.into_inner().hold.unwrap())
        }
    };
    let book_from = |hold_id: String| {
        let mut apps = holder.clone();
        let patient = patient.clone();
        async move {
            apps.book_appointment(ops(pb::BookAppointmentRequest {
                request_id: rid(),
                target: Some(pb::book_appointment_request::Target::HoldId(hold_id)),
                patient_id: patient,
                planned_dose_mg: 35,
                ..Default::default()
            }))
            .await
            .map(|r| r.into_inner().appointment.unwrap())
        }
    };
    let held = hold(ids[4].clone(), Some(60)).await.unwrap();
    assert_eq!(held.status(), pb::HoldStatus::Active);
    assert_eq!(
        slot_status(&mut apps, f.id(), &ids[4], window).await,
        pb::SlotStatus::BusyTentative
    );
    assert_rule(
        hold(ids[4].clone(), Some(60)).await,
        Rule::SlotUnavailable,
        "hold a held slot",
    );
    assert_rule(
        book(&mut apps, &ids[4], &patient, 35).await,
        Rule::SlotUnavailable,
        "book a held slot directly",
    );
    assert_eq!(
        release(held.hold_id.clone()).await.unwrap().status(),
        pb::HoldStatus::Released
    );
    assert_rule(
        release(held.hold_id.clone()).await,
        Rule::IllegalTransition,
        "release twice",
    );
    assert_rule(
        book_from(held.hold_id.clone()).await,
        Rule::HoldExpired,
        "book from a released hold",
    );
    let short = hold(ids[4].clone(), None).await.unwrap();
    let lapse = instant(&short.expire_time) - instant(&short.create_time);
    assert_eq!(lapse.whole_seconds(), 2, "the configured hold length");
    tokio::time::sleep(StdDuration::from_millis(2500)).await;
    assert_rule(
        book_from(short.hold_id.clone()).await,
        Rule::HoldExpired,
        "book from an expired hold",
    );
    let again = hold(ids[4].clone(), Some(60))
        .await
        .expect("an expired hold frees the slot");
    let from_hold = book_from(again.hold_id.clone()).await.unwrap();
    assert_eq!(from_hold.slot_id, ids[4]);
    assert_rule(
        book_from(again.hold_id.clone()).await,
        Rule::SlotUnavailable,
        "a consumed hold",
    );
    assert_eq!(
        slot_status(&mut apps, f.id(), &ids[4], window).await,
        pb::SlotStatus::Busy
    );

    // The sweep marks a lapsed hold expired even when nobody touches its slot.
    let swept = hold(ids[5].clone(), None).await.unwrap();
    let mut status = String::new();
    for _ in 0..100 {
        status = sqlx::query_scalar("SELECT status FROM holds WHERE hold_id = $1::uuid")
            .bind(&swept.hold_id)
            .fetch_one(service.db.pool())
            .await
            .unwrap();
        if status == "expired" {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert_eq!(status, "expired");
    assert_eq!(
        slot_status(&mut apps, f.id(), &ids[5], window).await,
        pb::SlotStatus::Free
    );
    service.stop().await;
}

/// A reschedule and a cancel of the same visit at once: whichever wins, the visit ends cancelled,
/// the other call either applied first or was refused as an illegal transition, and neither slot
/// stays taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reschedule_racing_a_cancel_leaves_one_consistent_outcome() {
    let net = Net::start().await;
    let service = Service::start(&net, 1, &[]).await;
    let f = fixture(2, |_| {});
    announce(&net, &service, &f).await;
    let (mut apps, mut patients) = (service.apps(), service.patients());
    let patient = eligible_patient(&mut patients, f.id()).await;
    let t = base();
    let rounds = 8;
    let mut wanted = Vec::new();
    for round in 0..rounds {
        wanted.push(slot(
            &f.chair(0),
            "",
            IV,
            t + Duration::hours(3 * round),
            180,
        ));
        wanted.push(slot(
            &f.chair(1),
            "",
            IV,
            t + Duration::hours(3 * round),
            180,
        ));
    }
    let ids = offer(&mut apps, f.id(), 1, wanted).await;
    let window = (t, t + Duration::hours(3 * rounds));
    let mut outcomes = BTreeMap::new();
    for round in 0..rounds as usize {
        let (from, to) = (&ids[2 * round], &ids[2 * round + 1]);
        let visit = book(&mut apps, from, &patient, 35).await.unwrap();
        let (mut a, mut b) = (apps.clone(), apps.clone());
        let (moved, cancelled) = tokio::join!(
            reschedule(&mut a, &visit.appointment_id, to),
            cancel(&mut b, &visit.appointment_id)
        );
        let cancelled = cancelled.expect("a booked visit can always be cancelled");
        let final_state = cancelled.appointment.unwrap();
        assert_eq!(final_state.status(), pb::AppointmentStatus::Cancelled);
        match moved {
            Ok(moved) => {
                assert_eq!(final_state.slot_id, *to, "the cancel saw the move");
                assert_eq!(moved.version + 1, final_state.version);
                *outcomes.entry("reschedule first").or_insert(0) += 1;
            }
            Err(status) => {
                assert_eq!(
                    rule_of(&status),
                    Rule::IllegalTransition.as_str_name(),
                    "{status:?}"
                );
                assert_eq!(final_state.slot_id, *from);
                *outcomes.entry("cancel first").or_insert(0) += 1;
            }
        }
        assert_eq!(
            slot_status(&mut apps, f.id(), from, window).await,
            pb::SlotStatus::Free
        );
        assert_eq!(
            slot_status(&mut apps, f.id(), to, window).await,
            pb::SlotStatus::Free
        );
    }
    let active: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations WHERE active")
        .fetch_one(service.db.pool())
        .await
        .unwrap();
    assert_eq!(active, 0, "no reservation outlives its visit: {outcomes:?}");
    service.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Clinical gates and courses.
// ---------------------------------------------------------------------------------------------

/// Each booking and clinical gate refuses with its own named rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_clinical_gate_refuses_by_name() {
    let net = Net::start().await;
    let service = Service::start(&net, 1, &[]).await;
    let (mut apps, mut patients) = (service.apps(), service.patients());
    let main = fixture(3, |c| {
        let p = c.scheduling_policy.as_mut().unwrap();
        p.minimum_notice_minutes = 60;
        p.booking_horizon_days = 30;
    });
    let lapsed = fixture(1, |c| {
        c.rems_certification.as_mut().unwrap().expires_on = Some(ny_date_plus(-1));
    });
    let short = fixture(1, |c| {
        c.scheduling_policy
            .as_mut()
            .unwrap()
            .esketamine_monitoring_minutes = 90
    });
    let iv_only = fixture(1, |c| c.modalities = vec![IV]);
    let suspended = fixture(1, |_| {});
    for f in [&main, &lapsed, &short, &iv_only, &suspended] {
        announce(&net, &service, f).await;
    }
    let ok = eligible_patient(&mut patients, main.id()).await;
    let none = register(&mut patients, main.id(), (1980, 1, 1)).await;
    let one_trial = register(&mut patients, main.id(), (1980, 1, 1)).await;
    record_intake(&mut patients, &one_trial, main.id(), 1, 20).await;
    let senior = register(&mut patients, main.id(), (1950, 1, 1)).await;
    record_intake(&mut patients, &senior, main.id(), 3, 20).await;

    let t = base();
    let m = offer(
        &mut apps,
        main.id(),
        1,
        vec![
            slot(&main.chair(0), "", ESKETAMINE, t, 180), // 0
            slot(&main.chair(1), "", ESKETAMINE, t, 120), // 1: too short
            slot(
                &main.chair(2),
                "",
                IV,
                OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + Duration::minutes(30),
                180,
            ), // 2: notice
            slot(&main.chair(0), "", IV, t + Duration::days(40), 180), // 3: horizon
            slot(&main.chair(1), "", IV, t + Duration::hours(3), 180), // 4
        ],
    )
    .await;
    let l = offer(
        &mut apps,
        lapsed.id(),
        1,
        vec![slot(&lapsed.chair(0), "", ESKETAMINE, t, 180)],
    )
    .await;
    let s = offer(
        &mut apps,
        short.id(),
        1,
        vec![slot(&short.chair(0), "", ESKETAMINE, t, 180)],
    )
    .await;
    let i = offer(
        &mut apps,
        iv_only.id(),
        1,
        vec![slot(&iv_only.chair(0), "", ESKETAMINE, t, 180)],
    )
    .await;
    let x = offer(
        &mut apps,
        suspended.id(),
        1,
        vec![slot(&suspended.chair(0), "", IV, t, 180)],
    )
    .await;
    let mut off = suspended.clinic.clone();
    off.status = dir::ClinicStatus::Suspended as i32;
    off.version = 2;
    net.clinic("suspended", &off, &suspended.providers).await;
    service.wait_clinic(suspended.id(), 2).await;

    assert_rule(
        book(&mut apps, &x[0], &ok, 35).await,
        Rule::ClinicSuspended,
        "suspended clinic",
    );
    assert_rule(
        book(&mut apps, &l[0], &ok, 56).await,
        Rule::RemsCertificationNotCurrent,
        "lapsed REMS",
    );
    assert_rule(
        book(&mut apps, &s[0], &ok, 56).await,
        Rule::MonitoringTooShort,
        "90 minutes of monitoring",
    );
    assert_rule(
        book(&mut apps, &i[0], &ok, 56).await,
        Rule::ModalityNotSupported,
        "clinic without esketamine",
    );
    assert_rule(
        book(&mut apps, &m[1], &ok, 56).await,
        Rule::VisitDoesNotFit,
        "two hours for dose and monitoring",
    );
    assert_rule(
        book(&mut apps, &m[2], &ok, 35).await,
        Rule::MinimumNotice,
        "thirty minutes ahead",
    );
    assert_rule(
        book(&mut apps, &m[3], &ok, 35).await,
        Rule::BookingHorizon,
        "forty days ahead",
    );
    assert_rule(
        book(&mut apps, &m[0], &none, 56).await,
        Rule::IntakeMissing,
        "no intake",
    );
    assert_rule(
        book(&mut apps, &m[0], &one_trial, 56).await,
        Rule::TrdCriteriaNotMet,
        "one failed trial",
    );
    assert_rule(
        book(&mut apps, &m[0], &senior, 56).await,
        Rule::DoseNotAllowed,
        "56 mg to start at 76",
    );
    assert_invalid(
        book(&mut apps, &m[0], &ok, 50).await,
        "planned_dose_mg",
        "50 mg of esketamine",
    );
    let senior_visit = book(&mut apps, &m[0], &senior, 28)
        .await
        .expect("28 mg to start");
    assert_eq!(senior_visit.planned_dose_mg, 28);
    assert_rule(
        apps.sync_availability(ops(pb::SyncAvailabilityRequest {
            request_id: rid(),
            clinic_id: suspended.id().into(),
            window: Some(interval(t, t + Duration::days(1))),
            slots: vec![],
            sync_version: 2,
        }))
        .await,
        Rule::ClinicSuspended,
        "sync at a suspended clinic",
    );

    // Completion of esketamine under two hours of monitoring.
    check_in(&mut apps, &senior_visit.appointment_id)
        .await
        .unwrap();
    let pressure = |s, d| {
        Some(pb::BloodPressure {
            systolic_mmhg: s,
            diastolic_mmhg: d,
            measure_time: None,
        })
    };
    let mut esketamine = pb::Completion {
        modality: ESKETAMINE,
        dose_mg: 28,
        esketamine_devices: 1,
        treatment_minutes: 10,
        monitoring_minutes: 100,
        blood_pressure_before: pressure(128, 82),
        blood_pressure_after: pressure(138, 88),
        phq9: Some(phq9(14, 0)),
        rems_monitoring_form_filed: true,
        ..Default::default()
    };
    assert_rule(
        complete(&mut apps, &senior_visit.appointment_id, esketamine.clone()).await,
        Rule::MonitoringTooShort,
        "100 minutes",
    );
    esketamine.esketamine_devices = 2;
    esketamine.monitoring_minutes = 120;
    assert_invalid(
        complete(&mut apps, &senior_visit.appointment_id, esketamine.clone()).await,
        "completion.esketamine_devices",
        "two devices for 28 mg",
    );

    // A course plan's frequency: esketamine sessions at least two days apart in weeks 1-4.
    let course = apps
        .create_course(ops(pb::CreateCourseRequest {
            request_id: rid(),
            patient_id: ok.clone(),
            clinic_id: main.id().into(),
            plan_code: "esketamine-adult".into(),
            start_date: Some(today_ny()),
            preferences: None,
        }))
        .await
        .unwrap()
        .into_inner()
        .course
        .unwrap();
    let day2 = ny_date_plus(2);
    let day3 = ny_date_plus(3);
    let c = offer(
        &mut apps,
        main.id(),
        2,
        vec![
            slot(&main.chair(2), "", ESKETAMINE, ny_at(&day2, 14), 180),
            slot(&main.chair(2), "", ESKETAMINE, ny_at(&day3, 14), 180),
        ],
    )
    .await;
    let in_course = |slot: &str, session: i32| {
        let mut request = book_request(slot, &ok, 56);
        request.course_id = course.course_id.clone();
        request.course_session_number = session;
        request
    };
    apps.book_appointment(ops(in_course(&c[0], 1)))
        .await
        .expect("session 1 on day 2");
    assert_rule(
        apps.book_appointment(ops(in_course(&c[1], 2))).await,
        Rule::CourseFrequencyLimit,
        "session 2 the next day",
    );
    for missing in [&none, &one_trial] {
        let refused = apps
            .create_course(ops(pb::CreateCourseRequest {
                request_id: rid(),
                patient_id: missing.clone(),
                clinic_id: main.id().into(),
                plan_code: "iv-induction-6".into(),
                start_date: Some(today_ny()),
                preferences: None,
            }))
            .await;
        let rule = if missing == &none {
            Rule::IntakeMissing
        } else {
            Rule::TrdCriteriaNotMet
        };
        assert_rule(refused, rule, "a course needs an eligible intake");
    }
    let refused = apps
        .create_course(ops(pb::CreateCourseRequest {
            request_id: rid(),
            patient_id: ok.clone(),
            clinic_id: lapsed.id().into(),
            plan_code: "esketamine-adult".into(),
            start_date: Some(today_ny()),
            preferences: None,
        }))
        .await;
    assert_rule(
        refused,
        Rule::RemsCertificationNotCurrent,
        "an esketamine course at a lapsed clinic",
    );
    service.stop().await;
}

/// A course's sessions are booked together or not at all: one taken slot refuses the whole
/// series, naming the session; then the service picks every session's slot from the clinic's
/// generated availability within the plan's windows and limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn course_booking_is_all_or_nothing() {
    let net = Net::start().await;
    let service = Service::start(&net, 1, &[]).await;
    let f = fixture(2, |c| c.weekly_hours = Some(every_day(9, 13)));
    announce(&net, &service, &f).await;
    let (mut apps, mut patients) = (service.apps(), service.patients());
    let patient = eligible_patient(&mut patients, f.id()).await;
    let other = eligible_patient(&mut patients, f.id()).await;
    let start = ny_date_plus(1);
    let course = apps
        .create_course(ops(pb::CreateCourseRequest {
            request_id: rid(),
            patient_id: patient.clone(),
            clinic_id: f.id().into(),
            plan_code: "iv-induction-6".into(),
            start_date: Some(start),
            preferences: Some(pb::CoursePreferences {
                provider_id: String::new(),
                preferred_start: Some(common::TimeOfDay {
                    hours: 11,
                    minutes: 0,
                }),
                days: vec![],
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .course
        .unwrap();
    assert_eq!(
        (course.status(), course.sessions.len()),
        (pb::CourseStatus::Proposed, 6)
    );
    let window = (ny_at(&start, 0), ny_at(&ny_date_plus(25), 0));
    let generated = apps
        .generate_availability(ops(pb::GenerateAvailabilityRequest {
            request_id: rid(),
            clinic_id: f.id().into(),
            window: Some(interval(window.0, window.1)),
            sync_version: 1,
            chair_ids: vec![f.chair(0)],
            modalities: vec![IV],
        }))
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    // 09:00–13:00 holds two 85-minute IV visits a day on the one chair, for 24 days.
    assert_eq!(generated.slots_added, 48);
    let slots = slots_of(&mut apps, f.id(), window).await;
    let first_of = |date: &common::Date| {
        slots
            .iter()
            .find(|s| instant(&s.start_time) == ny_at(date, 9))
            .map(|s| s.slot_id.clone())
            .expect("a 09:00 slot")
    };
    let choices: Vec<pb::SessionSlotChoice> = course
        .sessions
        .iter()
        .map(|s| pb::SessionSlotChoice {
            session_number: s.session_number,
            slot_id: first_of(s.earliest_date.as_ref().unwrap()),
        })
        .collect();
    // Somebody else takes session 4's slot first.
    book(&mut apps, &choices[3].slot_id, &other, 35)
        .await
        .unwrap();
    let refused = apps
        .book_course(ops(pb::BookCourseRequest {
            request_id: rid(),
            course_id: course.course_id.clone(),
            choices: choices.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let violations = refused
        .get_details_precondition_failure()
        .unwrap()
        .violations;
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].r#type, Rule::SlotUnavailable.as_str_name());
    assert_eq!(violations[0].subject, "session 4");
    assert!(
        violations[0].description.starts_with("session 4:"),
        "{violations:?}"
    );
    let listed = apps
        .list_appointments(ops(pb::ListAppointmentsRequest {
            course_id: course.course_id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .appointments;
    assert!(
        listed.is_empty(),
        "nothing of the course was booked: {listed:?}"
    );
    for choice in choices.iter().filter(|c| c.session_number != 4) {
        assert_eq!(
            slot_status(&mut apps, f.id(), &choice.slot_id, window).await,
            pb::SlotStatus::Free
        );
    }

    let booked = apps
        .book_course(ops(pb::BookCourseRequest {
            request_id: rid(),
            course_id: course.course_id.clone(),
            choices: vec![],
        }))
        .await
        .expect("the service picks the slots")
        .into_inner();
    let course = booked.course.unwrap();
    assert_eq!(course.status(), pb::CourseStatus::Booked);
    assert_eq!(booked.appointments.len(), 6);
    let zone = jiff::tz::TimeZone::get("America/New_York").unwrap();
    let mut dates = Vec::new();
    for (session, visit) in course.sessions.iter().zip(&booked.appointments) {
        assert_eq!(session.appointment_id, visit.appointment_id);
        assert_eq!(visit.course_session_number, session.session_number);
        let local = jiff::Timestamp::from_second(instant(&visit.start_time).unix_timestamp())
            .unwrap()
            .to_zoned_datetime(zone.clone());
        let on = common::Date {
            year: i32::from(local.year()),
            month: i32::from(local.month()),
            day: i32::from(local.day()),
        };
        let key = |d: &common::Date| (d.year, d.month, d.day);
        assert!(
            key(&on) >= key(session.earliest_date.as_ref().unwrap())
                && key(&on) <= key(session.latest_date.as_ref().unwrap())
        );
        assert_eq!(
            (local.hour(), local.minute()),
            (10, 25),
            "the slot nearest the preferred 11:00"
        );
        dates.push(local.date());
    }
    for pair in dates.windows(2) {
        assert!(
            pair[0].until(pair[1]).unwrap().get_days() >= 2,
            "at least two days apart: {dates:?}"
        );
    }
    assert_rule(
        apps.book_course(ops(pb::BookCourseRequest {
            request_id: rid(),
            course_id: course.course_id.clone(),
            choices: vec![],
        }))
        .await,
        Rule::IllegalTransition,
        "a booked course",
    );
    service.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Integration window, safety follow-up, events.
// ---------------------------------------------------------------------------------------------

/// A fulfilled IV session opens [end + 24 h, end + 72 h): sessions starting on the edges inside
/// are booked, just outside are refused; PHQ-9 item 9 above 0 raises the safety follow-up; the
/// events carry the visit and its version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_integration_window_runs_from_24_to_72_hours_and_item_9_raises_a_follow_up() {
    let net = Net::start().await;
    let service = Service::start(&net, 1, &[]).await;
    let f = fixture(3, |_| {});
    announce(&net, &service, &f).await;
    let (mut apps, mut patients) = (service.apps(), service.patients());
    let patient = eligible_patient(&mut patients, f.id()).await;
    let t = base();
    let ids = offer(
        &mut apps,
        f.id(),
        1,
        vec![slot(&f.chair(0), "", IV, t, 180)],
    )
    .await;
    let visit = book(&mut apps, &ids[0], &patient, 35).await.unwrap();
    check_in(&mut apps, &visit.appointment_id).await.unwrap();
    let ended = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - Duration::minutes(1);
    let done = complete(
        &mut apps,
        &visit.appointment_id,
        iv_completion(16, 1, ended),
    )
    .await
    .unwrap();
    assert!(done.safety_follow_up_required);
    let window = done.integration_window.unwrap().window.unwrap();
    assert_eq!(instant(&window.start_time), ended + Duration::hours(24));
    assert_eq!(instant(&window.end_time), ended + Duration::hours(72));

    let edges = [
        ended + Duration::hours(24) - Duration::minutes(1),
        ended + Duration::hours(24),
        ended + Duration::hours(72) - Duration::minutes(1),
        ended + Duration::hours(72),
    ];
    let therapy: Vec<pb::AvailabilitySlot> = edges
        .iter()
        .enumerate()
        .map(|(n, at)| slot(&f.chair(1 + n % 2), "", INTEGRATION, *at, 60))
        .collect();
    let mut with_iv = therapy.clone();
    with_iv.push(slot(&f.chair(0), "", IV, t + Duration::days(4), 180));
    let s = offer(&mut apps, f.id(), 2, with_iv).await;
    let booker = apps.clone();
    let integrate = |slot: String| {
        let mut apps = booker.clone();
        let source = visit.appointment_id.clone();
        async move {
            apps.book_integration_session(ops(pb::BookIntegrationSessionRequest {
                request_id: rid(),
                source_appointment_id: source,
                target: Some(pb::book_integration_session_request::Target::SlotId(slot)),
            }))
            .await
            .map(|r| r.into_inner().appointment.unwrap())
        }
    };
    assert_rule(
        integrate(s[0].clone()).await,
        Rule::OutsideIntegrationWindow,
        "a minute before 24 h",
    );
    let opening = integrate(s[1].clone()).await.expect("at 24 h");
    assert_eq!(
        opening.integration_source_appointment_id,
        visit.appointment_id
    );
    assert_eq!(opening.patient_id, patient);
    integrate(s[2].clone()).await.expect("a minute before 72 h");
    assert_rule(
        integrate(s[3].clone()).await,
        Rule::OutsideIntegrationWindow,
        "at 72 h",
    );
    assert_rule(
        integrate(s[4].clone()).await,
        Rule::ModalityNotSupported,
        "an IV slot",
    );

    let opened = net
        .wait_published(
            "clinicnet.appointments.appointment.integration_window_opened",
            1,
        )
        .await;
    let opened = ev::IntegrationWindowOpened::decode(opened[0].as_slice()).unwrap();
    assert_eq!(
        instant(&opened.window.unwrap().window.unwrap().start_time),
        ended + Duration::hours(24)
    );
    assert_eq!(opened.clinic_time_zone, "America/New_York");
    let safety = net
        .wait_published(
            "clinicnet.appointments.appointment.safety_follow_up_required",
            1,
        )
        .await;
    let safety = ev::SafetyFollowUpRequired::decode(safety[0].as_slice()).unwrap();
    assert_eq!((safety.phq9_item9_score, safety.phq9_total_score), (1, 16));
    assert_eq!(
        (safety.patient_id.as_str(), safety.clinic_id.as_str()),
        (patient.as_str(), f.id())
    );
    let fulfilled = net
        .wait_published("clinicnet.appointments.appointment.fulfilled", 1)
        .await;
    let fulfilled = ev::AppointmentFulfilled::decode(fulfilled[0].as_slice()).unwrap();
    let appointment = fulfilled.appointment.unwrap();
    assert_eq!(
        fulfilled.metadata.unwrap().aggregate_version,
        appointment.version
    );
    assert_eq!(
        (appointment.version, fulfilled.diagnosis_codes),
        (3, vec!["F33.2".to_owned()])
    );
    assert_eq!(
        (
            fulfilled.clinic_npi.as_str(),
            fulfilled.rendering_provider_npi.as_str()
        ),
        ("1245319599", "1679576722")
    );
    let booked = net
        .wait_published("clinicnet.appointments.appointment.booked", 3)
        .await;
    for payload in booked {
        let event = ev::AppointmentBooked::decode(payload.as_slice()).unwrap();
        assert_eq!(event.metadata.unwrap().aggregate_version, 1);
        assert_eq!(
            event.appointment.unwrap().status(),
            pb::AppointmentStatus::Booked
        );
    }
    service.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Outcomes.
// ---------------------------------------------------------------------------------------------

/// Outcomes on a fixture worked out by hand:
///
/// | patient | baseline | PHQ-9 at sessions | latest | responded (≤ ½ baseline) | remitted (< 5) | change |
/// |---------|----------|-------------------|--------|--------------------------|----------------|--------|
/// | A       | 20       | 18, 14, 9         | 9      | yes (9 ≤ 10)             | no             | −11    |
/// | B       | 16       | 12, 8, 4          | 4      | yes                      | yes            | −12    |
/// | C       | 24       | 22, 20, 19        | 19     | no                       | no             | −5     |
/// | D       | 15       | 10, 9, 8, 7       | 7      | yes (7 ≤ 7.5)            | no             | −8     |
/// | E       | 18       | 6, 3              | —      | two sessions: not counted |               |        |
///
/// Counted 4, responders 3, remitters 1: response 0.75, remission 0.25, median change of
/// (−12, −11, −8, −5) = (−11 − 8) / 2 = −9.5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_match_the_hand_worked_fixture() {
    let net = Net::start().await;
    let service = Service::start(&net, 1, &[]).await;
    let f = fixture(4, |_| {});
    announce(&net, &service, &f).await;
    let (mut apps, mut patients) = (service.apps(), service.patients());
    let table: [(i32, &[i32]); 5] = [
        (20, &[18, 14, 9]),
        (16, &[12, 8, 4]),
        (24, &[22, 20, 19]),
        (15, &[10, 9, 8, 7]),
        (18, &[6, 3]),
    ];
    let visits: usize = table.iter().map(|(_, s)| s.len()).sum();
    let t = base();
    let ids = offer(
        &mut apps,
        f.id(),
        1,
        (0..visits)
            .map(|k| {
                slot(
                    &f.chair(k % 4),
                    "",
                    IV,
                    t + Duration::hours(3 * (k / 4) as i64),
                    180,
                )
            })
            .collect(),
    )
    .await;
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let mut k = 0;
    for (baseline, scores) in table {
        let patient = register(&mut patients, f.id(), (1975, 3, 3)).await;
        record_intake(&mut patients, &patient, f.id(), 2, baseline).await;
        for (n, score) in scores.iter().enumerate() {
            let visit = book(&mut apps, &ids[k], &patient, 35).await.unwrap();
            check_in(&mut apps, &visit.appointment_id).await.unwrap();
            let at = now - Duration::minutes(30) + Duration::minutes(n as i64);
            complete(
                &mut apps,
                &visit.appointment_id,
                iv_completion(*score, 0, at),
            )
            .await
            .unwrap();
            k += 1;
        }
    }
    let period = interval(now - Duration::days(1), now + Duration::days(1));
    let outcomes = apps
        .get_outcomes(partner(
            pb::GetOutcomesRequest {
                clinic_id: f.id().into(),
                modality: 0,
                period: Some(period),
                min_sessions: 0,
            },
            f.id(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            outcomes.patients_counted,
            outcomes.responders,
            outcomes.remitters
        ),
        (4, 3, 1)
    );
    assert_eq!(
        (
            outcomes.response_rate,
            outcomes.remission_rate,
            outcomes.median_phq9_change
        ),
        (0.75, 0.25, -9.5)
    );
    let two = apps
        .get_outcomes(ops(pb::GetOutcomesRequest {
            clinic_id: String::new(),
            modality: IV,
            period: Some(period),
            min_sessions: 2,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (two.patients_counted, two.remitters),
        (5, 2),
        "E counts with two sessions"
    );
    let esketamine = apps
        .get_outcomes(ops(pb::GetOutcomesRequest {
            clinic_id: String::new(),
            modality: ESKETAMINE,
            period: Some(period),
            min_sessions: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (esketamine.patients_counted, esketamine.response_rate),
        (0, 0.0)
    );
    let earlier = interval(now - Duration::days(3), now - Duration::days(2));
    let none = apps
        .get_outcomes(ops(pb::GetOutcomesRequest {
            clinic_id: f.id().into(),
            modality: 0,
            period: Some(earlier),
            min_sessions: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.patients_counted, 0);
    let denied = apps
        .get_outcomes(partner(
            pb::GetOutcomesRequest {
                clinic_id: f.id().into(),
                modality: 0,
                period: Some(period),
                min_sessions: 0,
            },
            "elsewhere",
        ))
        .await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
    let network = apps
        .get_outcomes(partner(
            pb::GetOutcomesRequest {
                clinic_id: String::new(),
                modality: 0,
                period: Some(period),
                min_sessions: 0,
            },
            f.id(),
        ))
        .await;
    assert_invalid(network, "clinic_id", "a partner asks for the whole network");
    service.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Time zones.
// ---------------------------------------------------------------------------------------------

/// Around the next US daylight-saving change: a visit that spans it is rendered with the offset
/// in force at its start and at its end, and availability generated from 09:00–13:00 local hours
/// starts at 09:00 local on both sides of the change (23 or 25 hours apart in UTC).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_across_the_daylight_saving_change_renders_in_new_york_time() {
    let net = Net::start().await;
    let service = Service::start(&net, 1, &[]).await;
    let f = fixture(2, |c| c.weekly_hours = Some(every_day(9, 13)));
    announce(&net, &service, &f).await;
    let mut apps = service.apps();
    let zone = jiff::tz::TimeZone::get("America/New_York").unwrap();
    let change = zone
        .following(
            jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_hours(48))
                .unwrap(),
        )
        .next()
        .expect("a DST change ahead")
        .timestamp();
    let change = OffsetDateTime::from_unix_timestamp(change.as_second()).unwrap();
    let offset_at = |t: OffsetDateTime| {
        let zoned = jiff::Timestamp::from_second(t.unix_timestamp())
            .unwrap()
            .to_zoned_datetime(zone.clone());
        zoned.offset().seconds()
    };
    let (before, after) = (
        offset_at(change - Duration::hours(1)),
        offset_at(change + Duration::hours(1)),
    );
    assert_ne!(before, after);
    let render_offset = |seconds: i32| {
        format!(
            "{}{:02}:00",
            if seconds < 0 { '-' } else { '+' },
            seconds.abs() / 3600
        )
    };

    // An esketamine visit (15 min dosing + 120 min monitoring) starting 30 minutes before the change.
    let start = change - Duration::minutes(30);
    let ids = offer(
        &mut apps,
        f.id(),
        1,
        vec![slot(&f.chair(0), "", ESKETAMINE, start, 180)],
    )
    .await;
    let offers = apps
        .find_slots(ops(pb::FindSlotsRequest {
            modality: ESKETAMINE,
            place: Some(pb::find_slots_request::Place::ClinicId(f.id().into())),
            range: Some(interval(
                start - Duration::hours(1),
                start + Duration::hours(1),
            )),
            render_in_clinic_time_zone: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .offers;
    assert_eq!(offers.len(), 1);
    let found = &offers[0];
    assert_eq!(found.slot.as_ref().unwrap().slot_id, ids[0]);
    assert_eq!(
        instant(&found.visit_end_time) - instant(&found.visit_start_time),
        Duration::minutes(135)
    );
    let wall = |s: &str| s[11..16].to_owned();
    let local_start_minutes =
        offset_at(start) / 60 + (start.hour() as i32 * 60 + start.minute() as i32);
    let expected_start = format!(
        "{:02}:{:02}",
        local_start_minutes.rem_euclid(1440) / 60,
        local_start_minutes.rem_euclid(60)
    );
    assert_eq!(wall(&found.local_start), expected_start);
    assert!(
        found.local_start.ends_with(&render_offset(before)),
        "{}",
        found.local_start
    );
    assert!(
        found.local_end.ends_with(&render_offset(after)),
        "{}",
        found.local_end
    );
    assert_eq!(found.clinic_time_zone, "America/New_York");

    // Generated availability: 09:00 local on the day before and the day after the change.
    let window = (
        change - Duration::days(1) - Duration::hours(12),
        change + Duration::days(1) + Duration::hours(12),
    );
    apps.generate_availability(ops(pb::GenerateAvailabilityRequest {
        request_id: rid(),
        clinic_id: f.id().into(),
        window: Some(interval(window.0, window.1)),
        sync_version: 2,
        chair_ids: vec![f.chair(1)],
        modalities: vec![PSYCHOTHERAPY],
    }))
    .await
    .unwrap();
    let generated = apps
        .find_slots(ops(pb::FindSlotsRequest {
            modality: PSYCHOTHERAPY,
            place: Some(pb::find_slots_request::Place::ClinicId(f.id().into())),
            range: Some(interval(window.0, window.1)),
            render_in_clinic_time_zone: true,
            page_size: 200,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .offers;
    let nine: Vec<&pb::SlotOffer> = generated
        .iter()
        .filter(|o| wall(&o.local_start) == "09:00")
        .collect();
    assert!(nine.len() >= 2, "{generated:?}");
    assert!(
        generated
            .iter()
            .all(|o| ("09:00".to_owned()..="12:00".to_owned()).contains(&wall(&o.local_start)))
    );
    let (first, last) = (nine.first().unwrap(), nine.last().unwrap());
    assert!(
        first.local_start.ends_with(&render_offset(before))
            && last.local_start.ends_with(&render_offset(after))
    );
    let days = (instant(&last.visit_start_time) - instant(&first.visit_start_time)).whole_hours();
    assert_eq!(
        days % 24,
        if before < after { 23 } else { 1 },
        "a 23- or 25-hour day in UTC"
    );
    service.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Patients.
// ---------------------------------------------------------------------------------------------

/// Patients: validation by field, scope, optimistic concurrency, every access audited, events
/// carrying contacts and consent for notifications, and no PHI in the service's logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patients_are_validated_scoped_audited_and_announced() {
    let net = Net::start().await;
    let service = Service::start(&net, 1, &[]).await;
    let f = fixture(1, |_| {});
    let g = fixture(1, |_| {});
    announce(&net, &service, &f).await;
    announce(&net, &service, &g).await;
    let mut patients = service.patients();
    let contacts = pb::PatientContacts {
        email: "maria.zq@example.com".into(),
        email_consent: true,
        mobile_phone: "+13055550123".into(),
        sms_consent: false,
        consent_update_time: None,
    };
    let patient = pb::Patient {
        name: Some(person()),
        birth_date: Some(common::Date {
            year: 1984,
            month: 2,
            day: 29,
        }),
        preferred_locale: common::Locale::EsUs as i32,
        contacts: Some(contacts.clone()),
        registered_clinic_id: f.id().into(),
        ..Default::default()
    };
    let registrar = patients.clone();
    let register_as = |p: pb::Patient, who: Request<()>| {
        let mut patients = registrar.clone();
        async move {
            let mut request = Request::new(pb::RegisterPatientRequest {
                request_id: rid(),
                patient: Some(p),
            });
            *request.metadata_mut() = who.metadata().clone();
            patients
                .register_patient(request)
                .await
                .map(|r| r.into_inner().patient.unwrap())
        }
    };
    let mut bad = patient.clone();
    bad.contacts.as_mut().unwrap().email.clear();
    assert_invalid(
        register_as(bad, ops(())).await,
        "patient.contacts.email_consent",
        "consent without an email",
    );
    let mut bad = patient.clone();
    bad.contacts.as_mut().unwrap().mobile_phone = "305-555-0123".into();
    assert_invalid(
        register_as(bad, ops(())).await,
        "patient.contacts.mobile_phone",
        "not E.164",
    );
    let mut bad = patient.clone();
    bad.birth_date = Some(common::Date {
        year: 2100,
        month: 1,
        day: 1,
    });
    assert_invalid(
        register_as(bad, ops(())).await,
        "patient.birth_date",
        "born in the future",
    );
    assert_eq!(
        register_as(patient.clone(), partner((), g.id()))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        register_as(patient.clone(), integrator(()))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let registered = register_as(patient.clone(), partner((), f.id()))
        .await
        .unwrap();
    assert_eq!(registered.version, 1);
    let id = registered.patient_id.clone();

    let reader = patients.clone();
    let get = |who: Request<()>| {
        let mut patients = reader.clone();
        let id = id.clone();
        async move {
            let mut request = Request::new(pb::GetPatientRequest { patient_id: id });
            *request.metadata_mut() = who.metadata().clone();
            patients
                .get_patient(request)
                .await
                .map(|r| r.into_inner().patient.unwrap())
        }
    };
    assert_eq!(
        get(partner((), f.id())).await.unwrap().contacts,
        registered.contacts
    );
    assert_eq!(
        get(partner((), g.id())).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    let mut changed = registered.clone();
    changed.contacts.as_mut().unwrap().sms_consent = true;
    let updated = patients
        .update_patient(ops(pb::UpdatePatientRequest {
            request_id: rid(),
            patient: Some(changed.clone()),
            expected_version: 1,
        }))
        .await
        .unwrap()
        .into_inner()
        .patient
        .unwrap();
    assert_eq!(updated.version, 2);
    assert!(updated.contacts.as_ref().unwrap().sms_consent);
    assert!(
        instant(&updated.contacts.as_ref().unwrap().consent_update_time)
            >= instant(&registered.contacts.as_ref().unwrap().consent_update_time)
    );
    let stale = patients
        .update_patient(ops(pb::UpdatePatientRequest {
            request_id: rid(),
            patient: Some(changed),
            expected_version: 1,
        }))
        .await;
    assert_eq!(stale.unwrap_err().code(), Code::Aborted);
    let listed = patients
        .list_patients(partner(
            pb::ListPatientsRequest {
                clinic_id: f.id().into(),
                ..Default::default()
            },
            f.id(),
        ))
        .await
        .unwrap()
        .into_inner()
        .patients;
    assert_eq!(
        listed
            .iter()
            .map(|p| p.patient_id.clone())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&id)
    );

    let mut intake = pb::Intake {
        patient_id: id.clone(),
        clinic_id: f.id().into(),
        diagnosis_codes: vec!["F33".into(), "depression".into()],
        failed_trials: vec![trial(8), trial(10)],
        baseline_phq9: Some(pb::Phq9 {
            item_scores: vec![],
            total_score: 21,
            administer_time: None,
        }),
        trd_attested: true,
        ..Default::default()
    };
    let refused = patients
        .record_intake(ops(pb::RecordIntakeRequest {
            request_id: rid(),
            intake: Some(intake.clone()),
        }))
        .await;
    assert_invalid(
        refused,
        "intake.diagnosis_codes[1]",
        "not an ICD-10-CM code",
    );
    intake.diagnosis_codes = vec!["F33.2".into()];
    patients
        .record_intake(ops(pb::RecordIntakeRequest {
            request_id: rid(),
            intake: Some(intake),
        }))
        .await
        .unwrap();
    let in_force = patients
        .get_intake(ops(pb::GetIntakeRequest {
            patient_id: id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .intake
        .unwrap();
    assert_eq!(
        (
            in_force.diagnosis_codes,
            in_force.baseline_phq9.unwrap().total_score
        ),
        (vec!["F33.2".to_owned()], 21)
    );

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE patient_id = $1 ORDER BY 1")
            .bind(&id)
            .fetch_all(service.db.pool())
            .await
            .unwrap();
    let actions: HashSet<&str> = actions.iter().map(String::as_str).collect();
    for expected in [
        "patient.register",
        "patient.read",
        "patient.update",
        "patient.list",
        "intake.record",
        "intake.read",
    ] {
        assert!(
            actions.contains(expected),
            "{expected} not audited: {actions:?}"
        );
    }

    let registered_events = net
        .wait_published("clinicnet.appointments.patient.registered", 1)
        .await;
    let event = ev::PatientRegistered::decode(registered_events[0].as_slice()).unwrap();
    assert_eq!(event.metadata.unwrap().aggregate_version, 1);
    let carried = event.patient.unwrap().contacts.unwrap();
    assert_eq!(
        (
            carried.email.as_str(),
            carried.email_consent,
            carried.sms_consent
        ),
        ("maria.zq@example.com", true, false)
    );
    let updated_events = net
        .wait_published("clinicnet.appointments.patient.updated", 1)
        .await;
    let event = ev::PatientUpdated::decode(updated_events[0].as_slice()).unwrap();
    assert_eq!(event.metadata.unwrap().aggregate_version, 2);
    assert!(event.patient.unwrap().contacts.unwrap().sms_consent);

    let logs: String = service.procs.iter().map(ServiceProcess::logs).collect();
    for phi in [
        "Zubizarreta",
        "maria.zq@example.com",
        "+13055550123",
        "1984-02-29",
        "F33.2",
    ] {
        assert!(!logs.contains(phi), "the log shows {phi}");
    }
    service.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The real directory.
// ---------------------------------------------------------------------------------------------

/// The read model fed by the real `directory` binary: a clinic and a provider created through its
/// API reach the appointments service over the DIRECTORY stream; a visit booked there carries the
/// directory's NPIs in its fulfilled event; a suspension through the directory stops bookings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_directory_feeds_the_read_model() {
    use clinicnet_proto::directory::v1::directory_service_client::DirectoryServiceClient;
    use system_tests::fixtures;
    let net = Net::start().await;
    let directory_db = TestDatabase::create("directory").await;
    let mut directory = ServiceProcess::spawn(
        ServiceSpec::new("directory")
            .env("DATABASE_URL", directory_db.url())
            .env("NATS_URL", net.nats.url())
            .env("JWT_HS256_SECRET", SECRET),
    )
    .await
    .expect("spawn directory");
    directory
        .wait_serving(StdDuration::from_secs(90))
        .await
        .expect("directory SERVING");
    let service = Service::start(&net, 1, &[]).await;
    let mut registry = DirectoryServiceClient::new(directory.channel().await.expect("channel"));
    let clinic = registry
        .create_clinic(ops(dir::CreateClinicRequest {
            request_id: rid(),
            clinic: Some(fixtures::clinic_with("Ketamine Expert Clinic", |c| {
                c.weekly_hours = Some(every_day(8, 20))
            })),
        }))
        .await
        .expect("create clinic")
        .into_inner()
        .clinic
        .unwrap();
    let provider = registry
        .create_provider(ops(dir::CreateProviderRequest {
            request_id: rid(),
            provider: Some(fixtures::provider(&[&clinic.clinic_id])),
        }))
        .await
        .expect("create provider")
        .into_inner()
        .provider
        .unwrap();
    service.wait_clinic(&clinic.clinic_id, clinic.version).await;
    for _ in 0..300 {
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM providers WHERE provider_id = $1)")
                .bind(&provider.provider_id)
                .fetch_one(service.db.pool())
                .await
                .unwrap();
        if known {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }

    let (mut apps, mut patients) = (service.apps(), service.patients());
    let patient = eligible_patient(&mut patients, &clinic.clinic_id).await;
    let chair = clinic.chairs[0].chair_id.clone();
    let t = base();
    let ids = offer(
        &mut apps,
        &clinic.clinic_id,
        1,
        vec![
            slot(&chair, &provider.provider_id, IV, t, 180),
            slot(&chair, "", IV, t + Duration::hours(3), 180),
        ],
    )
    .await;
    let visit = book(&mut apps, &ids[0], &patient, 35)
        .await
        .expect("book at a directory clinic");
    assert_eq!(visit.provider_id, provider.provider_id);
    // The 10-minute buffer before the visit comes from the directory's scheduling policy.
    assert_eq!(instant(&visit.start_time), t + Duration::minutes(10));
    check_in(&mut apps, &visit.appointment_id).await.unwrap();
    complete(
        &mut apps,
        &visit.appointment_id,
        iv_completion(9, 0, OffsetDateTime::now_utc()),
    )
    .await
    .unwrap();
    let fulfilled = net
        .wait_published("clinicnet.appointments.appointment.fulfilled", 1)
        .await;
    let fulfilled = ev::AppointmentFulfilled::decode(fulfilled[0].as_slice()).unwrap();
    assert_eq!(
        (fulfilled.clinic_npi, fulfilled.rendering_provider_npi),
        (clinic.npi.clone(), provider.npi.clone())
    );

    let suspended = registry
        .suspend_clinic(ops(dir::SuspendClinicRequest {
            request_id: rid(),
            clinic_id: clinic.clinic_id.clone(),
            expected_version: clinic.version,
            reason: "licence review".into(),
        }))
        .await
        .expect("suspend")
        .into_inner()
        .clinic
        .unwrap();
    service
        .wait_clinic(&clinic.clinic_id, suspended.version)
        .await;
    assert_rule(
        book(&mut apps, &ids[1], &patient, 35).await,
        Rule::ClinicSuspended,
        "after the directory suspended it",
    );
    drop(directory);
    directory_db.drop_db().await;
    service.stop().await;
}
