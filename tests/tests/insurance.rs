//! System tests of the insurance service: the real binary over real gRPC, its own PostgreSQL
//! database, and a private NATS whose `APPOINTMENTS` stream the tests fill with real protobuf
//! events (`Nats-Msg-Id` = event id) as the appointments service would. Integrators are played
//! by test clients of IntegratorService.

use async_nats::jetstream::{self, stream};
use clinicnet_proto::{
    appointments::v1 as appt,
    common::v1::{self as common, AntidepressantClass, AntidepressantTrial, Modality, PersonName},
    events::v1 as ev,
    insurance::v1::{
        acknowledge_claim_request, decide_prior_authorization_request::Decision as Decide,
        get_superbill_request::Key, insurance_service_client::InsuranceServiceClient,
        integrator_service_client::IntegratorServiceClient, prior_authorization, work_item::Item,
        *,
    },
    ops::v1::{GetEventBacklogRequest, event_ops_service_client::EventOpsServiceClient},
};
use futures::StreamExt;
use platform::auth::{Role, claims, mint_hs256};
use prost::Message;
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::{future::Future, time::Duration};
use system_tests::{PrivateNats, ServiceProcess, ServiceSpec, TestDatabase};
use tonic::{Code, Request, Status, transport::Channel};
use uuid::Uuid;

const SECRET: &str = "insurance-system-test-secret";
const CLINIC: &str = "clinic-coral-gables";
const CLINIC_NPI: &str = "1245319599";
const RENDERING_NPI: &str = "1679576722";
const DIAGNOSES: [&str; 2] = ["F33.2", "F41.1"];
const WAIT: Duration = Duration::from_secs(60);

/// One test's world: a private NATS with the APPOINTMENTS stream, the insurance binary with its
/// own database, and tokens for each role.
struct Env {
    _nats: PrivateNats,
    jetstream: jetstream::Context,
    service: ServiceProcess,
    database: TestDatabase,
    channel: Channel,
    ops: String,
}

impl Env {
    async fn start(duplicate_window: Duration, extra: &[(&str, &str)]) -> Env {
        let nats = PrivateNats::start().await.expect("private nats");
        let client = async_nats::connect(nats.url()).await.expect("connect nats");
        let jetstream = jetstream::new(client);
        jetstream
            .create_stream(stream::Config {
                name: "APPOINTMENTS".into(),
                subjects: vec!["clinicnet.appointments.>".into()],
                storage: stream::StorageType::File,
                duplicate_window,
                ..Default::default()
            })
            .await
            .expect("APPOINTMENTS stream");
        let database = TestDatabase::create("insurance").await;
        let mut spec = ServiceSpec::new("insurance")
            .env("DATABASE_URL", database.url())
            .env("NATS_URL", nats.url())
            .env("JWT_HS256_SECRET", SECRET);
        for (key, value) in extra {
            spec = spec.env(*key, *value);
        }
        let mut service = ServiceProcess::spawn(spec).await.expect("spawn insurance");
        service.wait_serving(WAIT).await.expect("insurance SERVING");
        let channel = service.channel().await.expect("channel");
        Env {
            _nats: nats,
            jetstream,
            service,
            database,
            channel,
            ops: token(Role::Ops, None),
        }
    }

    fn insurance(&self) -> InsuranceServiceClient<Channel> {
        InsuranceServiceClient::new(self.channel.clone())
    }

    fn integrator(&self) -> IntegratorServiceClient<Channel> {
        IntegratorServiceClient::new(self.channel.clone())
    }

    /// Publishes an appointments event as the appointments service's relay would.
    async fn publish(&self, subject: &str, event_id: &str, payload: Vec<u8>) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event_id);
        self.jetstream
            .publish_with_headers(subject.to_owned(), headers, payload.into())
            .await
            .expect("publish")
            .await
            .expect("publish ack");
    }

    /// Waits until the insurance consumer has applied every event published so far.
    async fn wait_consumed(&self) {
        let ops = EventOpsServiceClient::new(self.channel.clone());
        eventually("the appointments consumer to catch up", || {
            let mut ops = ops.clone();
            let token = self.ops.clone();
            async move {
                let backlog = ops
                    .get_event_backlog(req(GetEventBacklogRequest {}, &token))
                    .await
                    .ok()?
                    .into_inner();
                let lag = backlog
                    .consumers
                    .iter()
                    .find(|c| c.consumer == "insurance-appointments")?;
                (lag.pending_messages == 0 && lag.ack_pending == 0).then_some(())
            }
        })
        .await;
    }

    async fn stop(mut self) {
        self.service.sigterm().expect("sigterm");
        let status = self.service.wait_exit(WAIT).await.expect("exit");
        assert!(status.success(), "insurance exited with {status}");
        self.database.drop_db().await;
    }
}

fn token(role: Role, payer_id: Option<&str>) -> String {
    let clinics = if role == Role::PartnerClinic {
        vec![CLINIC.to_owned()]
    } else {
        vec![]
    };
    mint_hs256(
        SECRET,
        &claims(
            "insurance-test",
            role,
            clinics,
            payer_id.map(str::to_owned),
            3_600,
        ),
    )
    .expect("token")
}

fn req<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    request
}

fn rid() -> String {
    Uuid::now_v7().to_string()
}

async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

fn date(d: time::Date) -> common::Date {
    common::Date {
        year: d.year(),
        month: i32::from(u8::from(d.month())),
        day: i32::from(d.day()),
    }
}

fn usd(cents: i64) -> common::Money {
    common::Money {
        currency_code: "USD".into(),
        amount_cents: cents,
    }
}

fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: 0,
    }
}

fn metadata(aggregate_type: &str, aggregate_id: &str, version: u64) -> ev::EventMetadata {
    ev::EventMetadata {
        event_id: Uuid::now_v7().to_string(),
        occurred_at: Some(timestamp(time::OffsetDateTime::now_utc())),
        aggregate_type: aggregate_type.into(),
        aggregate_id: aggregate_id.into(),
        aggregate_version: version,
        producer: "appointments".into(),
        ..Default::default()
    }
}

// ---- ops data: payers, plans, fee schedules ----

/// Fee schedule of the insurers' plans, in cents per unit.
const PLAN_FEES: [(&str, i64); 9] = [
    ("G2082", 90_651),
    ("G2083", 135_600),
    ("J0013", 1_500),
    ("96365", 45_000),
    ("96366", 20_000),
    ("J3490", 10_000),
    ("90837", 18_000),
    ("90834", 14_000),
    ("90832", 9_000),
];

/// Cash prices of the self-pay price list.
const CASH_FEES: [(&str, i64); 8] = [
    ("G2082", 80_000),
    ("G2083", 120_000),
    ("J0013", 1_000),
    ("96365", 40_000),
    ("96366", 15_000),
    ("J3490", 5_000),
    ("90837", 15_000),
    ("90834", 12_000),
];

struct PlanSpec<'a> {
    payer_id: &'a str,
    plan_id: &'a str,
    fees: &'a [(&'a str, i64)],
    requires_authorization: &'a [&'a str],
    iv_ketamine_covered: bool,
    clinic_bills_drug: bool,
}

async fn upsert_plan(env: &Env, spec: PlanSpec<'_>) {
    let mut insurance = env.insurance();
    let payer = insurance
        .get_payer(req(
            GetPayerRequest {
                payer_id: spec.payer_id.into(),
            },
            &env.ops,
        ))
        .await;
    if payer.is_err() {
        insurance
            .upsert_payer(req(
                UpsertPayerRequest {
                    request_id: rid(),
                    payer: Some(Payer {
                        payer_id: spec.payer_id.into(),
                        display_name: format!("Payer {}", spec.payer_id),
                        ..Default::default()
                    }),
                    expected_version: 0,
                },
                &env.ops,
            ))
            .await
            .expect("upsert payer");
    }
    let fee_schedule = spec
        .fees
        .iter()
        .map(|(code, cents)| FeeScheduleEntry {
            procedure_code: (*code).into(),
            unit_charge: Some(usd(*cents)),
            effective_from: Some(common::Date {
                year: 2025,
                month: 1,
                day: 1,
            }),
            effective_until: None,
        })
        .collect();
    insurance
        .upsert_plan(req(
            UpsertPlanRequest {
                request_id: rid(),
                plan: Some(Plan {
                    plan_id: spec.plan_id.into(),
                    payer_id: spec.payer_id.into(),
                    display_name: format!("Plan {}", spec.plan_id),
                    fee_schedule,
                    codes_requiring_authorization: spec
                        .requires_authorization
                        .iter()
                        .map(|c| (*c).to_owned())
                        .collect(),
                    authorization_validity_days: 180,
                    authorization_criteria: Some(PriorAuthorizationCriteria {
                        min_failed_trials: 2,
                        min_distinct_classes: 2,
                        min_trial_weeks: 6,
                        min_baseline_phq9: 16,
                        min_age_years: 18,
                        reauthorization_min_reduction_percent: 50,
                    }),
                    iv_ketamine_covered: spec.iv_ketamine_covered,
                    timely_filing_days: 90,
                    clinic_bills_drug: spec.clinic_bills_drug,
                    ..Default::default()
                }),
                expected_version: 0,
            },
            &env.ops,
        ))
        .await
        .expect("upsert plan");
}

async fn self_pay_prices(env: &Env) {
    upsert_plan(
        env,
        PlanSpec {
            payer_id: "self-pay",
            plan_id: "self-pay-cash",
            fees: &CASH_FEES,
            requires_authorization: &[],
            iv_ketamine_covered: false,
            clinic_bills_drug: true,
        },
    )
    .await;
}

// ---- appointments events ----

fn patient_name(patient_id: &str) -> PersonName {
    PersonName {
        given_name: "Mariela".into(),
        middle_name: String::new(),
        family_name: format!("Quintanilla-{}", &patient_id[patient_id.len() - 6..]),
    }
}

async fn register_patient(env: &Env, patient_id: &str) {
    let patient = appt::Patient {
        patient_id: patient_id.into(),
        name: Some(patient_name(patient_id)),
        birth_date: Some(common::Date {
            year: 1980,
            month: 5,
            day: 1,
        }),
        registered_clinic_id: CLINIC.into(),
        version: 1,
        ..Default::default()
    };
    let meta = metadata("patient", patient_id, 1);
    let id = meta.event_id.clone();
    let event = ev::PatientRegistered {
        metadata: Some(meta),
        patient: Some(patient),
    };
    env.publish(
        "clinicnet.appointments.patient.registered",
        &id,
        event.encode_to_vec(),
    )
    .await;
}

async fn record_intake(env: &Env, patient_id: &str) {
    let trial = |drug_class: AntidepressantClass, weeks: i32| AntidepressantTrial {
        drug_class: drug_class as i32,
        duration_weeks: weeks,
        adequate_dose: true,
        current_episode: true,
    };
    let intake = appt::Intake {
        intake_id: rid(),
        patient_id: patient_id.into(),
        clinic_id: CLINIC.into(),
        diagnosis_codes: vec!["F33.2".into()],
        failed_trials: vec![
            trial(AntidepressantClass::Ssri, 8),
            trial(AntidepressantClass::Snri, 10),
        ],
        baseline_phq9: Some(appt::Phq9 {
            total_score: 22,
            ..Default::default()
        }),
        trd_attested: true,
        ..Default::default()
    };
    let meta = metadata("intake", patient_id, 1);
    let id = meta.event_id.clone();
    let event = ev::IntakeRecorded {
        metadata: Some(meta),
        intake: Some(intake),
    };
    env.publish(
        "clinicnet.appointments.intake.recorded",
        &id,
        event.encode_to_vec(),
    )
    .await;
}

/// Registers a patient (with intake) and gives them a primary coverage under `plan_id`.
async fn insured_patient(env: &Env, payer_id: &str, plan_id: &str) -> (String, Coverage) {
    let patient_id = format!("patient-{}", Uuid::new_v4().simple());
    register_patient(env, &patient_id).await;
    record_intake(env, &patient_id).await;
    let coverage = Coverage {
        patient_id: patient_id.clone(),
        payer_id: payer_id.into(),
        plan_id: plan_id.into(),
        member_id: format!("MBR{}", &Uuid::new_v4().simple().to_string()[..10]).to_uppercase(),
        group_number: "GRP-77".into(),
        relationship: SubscriberRelationship::Self_ as i32,
        effective_from: Some(common::Date {
            year: 2025,
            month: 1,
            day: 1,
        }),
        priority: CoveragePriority::Primary as i32,
        ..Default::default()
    };
    let partner = token(Role::PartnerClinic, None);
    let added = eventually("the patient to be known to insurance", || {
        let mut insurance = env.insurance();
        let coverage = coverage.clone();
        let partner = partner.clone();
        async move {
            match insurance
                .add_coverage(req(
                    AddCoverageRequest {
                        request_id: rid(),
                        coverage: Some(coverage),
                    },
                    &partner,
                ))
                .await
            {
                Ok(response) => response.into_inner().coverage,
                Err(status) if status.code() == Code::NotFound => None,
                Err(status) => panic!("add coverage: {status:?}"),
            }
        }
    })
    .await;
    (patient_id, added)
}

struct VisitSpec {
    modality: Modality,
    dose_mg: i32,
    minutes: i32,
}

fn appointment(
    appointment_id: &str,
    patient_id: &str,
    modality: Modality,
    start: time::OffsetDateTime,
) -> appt::Appointment {
    appt::Appointment {
        appointment_id: appointment_id.into(),
        clinic_id: CLINIC.into(),
        chair_id: "chair-1".into(),
        provider_id: "provider-1".into(),
        patient_id: patient_id.into(),
        modality: modality as i32,
        status: appt::AppointmentStatus::Booked as i32,
        start_time: Some(timestamp(start)),
        end_time: Some(timestamp(start + time::Duration::hours(3))),
        clinic_time_zone: "America/New_York".into(),
        planned_dose_mg: 56,
        version: 1,
        ..Default::default()
    }
}

/// Publishes the fulfilled-visit event; returns the event id and its encoding.
fn fulfilled_event(patient_id: &str, appointment_id: &str, visit: &VisitSpec) -> (String, Vec<u8>) {
    let mut appointment = appointment(
        appointment_id,
        patient_id,
        visit.modality,
        time::OffsetDateTime::now_utc(),
    );
    appointment.status = appt::AppointmentStatus::Fulfilled as i32;
    appointment.version = 3;
    appointment.completion = Some(appt::Completion {
        modality: visit.modality as i32,
        dose_mg: visit.dose_mg,
        esketamine_devices: visit.dose_mg / 28,
        treatment_minutes: visit.minutes,
        monitoring_minutes: 120,
        rems_monitoring_form_filed: visit.modality == Modality::EsketamineNasalSpray,
        ..Default::default()
    });
    let meta = metadata("appointment", appointment_id, 3);
    let id = meta.event_id.clone();
    let event = ev::AppointmentFulfilled {
        metadata: Some(meta),
        appointment: Some(appointment),
        service_date: Some(date(today())),
        clinic_npi: CLINIC_NPI.into(),
        rendering_provider_npi: RENDERING_NPI.into(),
        diagnosis_codes: DIAGNOSES.iter().map(|d| (*d).to_owned()).collect(),
    };
    (id, event.encode_to_vec())
}

async fn fulfill(env: &Env, patient_id: &str, visit: VisitSpec) -> String {
    let appointment_id = format!("appt-{}", Uuid::new_v4().simple());
    let (id, payload) = fulfilled_event(patient_id, &appointment_id, &visit);
    env.publish("clinicnet.appointments.appointment.fulfilled", &id, payload)
        .await;
    appointment_id
}

async fn book_esketamine(env: &Env, patient_id: &str) -> String {
    let appointment_id = format!("appt-{}", Uuid::new_v4().simple());
    let start = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    let meta = metadata("appointment", &appointment_id, 1);
    let id = meta.event_id.clone();
    let event = ev::AppointmentBooked {
        metadata: Some(meta),
        appointment: Some(appointment(
            &appointment_id,
            patient_id,
            Modality::EsketamineNasalSpray,
            start,
        )),
    };
    env.publish(
        "clinicnet.appointments.appointment.booked",
        &id,
        event.encode_to_vec(),
    )
    .await;
    appointment_id
}

async fn claim_of(env: &Env, appointment_id: &str) -> Claim {
    eventually("the visit's claim", || {
        let mut insurance = env.insurance();
        let token = env.ops.clone();
        async move {
            let claims = insurance
                .list_claims(req(
                    ListClaimsRequest {
                        appointment_id: appointment_id.into(),
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .expect("list claims")
                .into_inner()
                .claims;
            claims.into_iter().next()
        }
    })
    .await
}

async fn superbill_of(env: &Env, appointment_id: &str) -> GetSuperbillResponse {
    eventually("the visit's superbill", || {
        let mut insurance = env.insurance();
        let token = env.ops.clone();
        async move {
            insurance
                .get_superbill(req(
                    GetSuperbillRequest {
                        key: Some(Key::AppointmentId(appointment_id.into())),
                    },
                    &token,
                ))
                .await
                .ok()
                .map(|r| r.into_inner())
        }
    })
    .await
}

async fn submit(env: &Env, claim_id: &str, despite_issues: bool) -> Result<Claim, Status> {
    env.insurance()
        .submit_claim(req(
            SubmitClaimRequest {
                request_id: rid(),
                claim_id: claim_id.into(),
                submit_despite_issues: despite_issues,
            },
            &env.ops,
        ))
        .await
        .map(|r| r.into_inner().claim.expect("claim"))
}

// ---- the integrator side ----

async fn work_stream(
    client: &mut IntegratorServiceClient<Channel>,
    token: &str,
    payer_id: &str,
    cursor: &str,
) -> Result<tonic::Streaming<StreamWorkResponse>, Status> {
    client
        .stream_work(req(
            StreamWorkRequest {
                payer_id: payer_id.into(),
                cursor: cursor.into(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner())
}

async fn next_item(stream: &mut tonic::Streaming<StreamWorkResponse>) -> WorkItem {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a work item in time")
        .expect("stream healthy")
        .expect("stream open")
        .item
        .expect("item")
}

/// One line's payment: the paid amount and its adjustments (group, CARC, amount).
type PaidLine<'a> = (i64, Vec<(AdjustmentGroup, &'a str, i64)>);

/// A claim payment for `claim`: per line, the paid amount and adjustments.
fn payment(claim: &Claim, lines: &[PaidLine<'_>]) -> ClaimPayment {
    let lines: Vec<LinePayment> = claim
        .lines
        .iter()
        .zip(lines)
        .map(|(line, (paid, adjustments))| LinePayment {
            line_number: line.line_number,
            procedure_code: line.procedure_code.clone(),
            charge: line.charge.clone(),
            paid_amount: Some(usd(*paid)),
            adjustments: adjustments
                .iter()
                .map(|(group, code, amount)| Adjustment {
                    group: *group as i32,
                    reason_code: (*code).into(),
                    amount: Some(usd(*amount)),
                    remark_code: String::new(),
                })
                .collect(),
        })
        .collect();
    ClaimPayment {
        claim_id: claim.claim_id.clone(),
        payer_claim_control_number: format!("ICN-{}", &claim.claim_id[..8]),
        charge: claim.total_charge.clone(),
        paid_amount: Some(usd(lines
            .iter()
            .filter_map(|l| l.paid_amount.as_ref())
            .map(|m| m.amount_cents)
            .sum())),
        lines,
    }
}

fn remittance(
    remittance_id: &str,
    payer_id: &str,
    claim_payments: Vec<ClaimPayment>,
) -> PostRemittancesRequest {
    let total: i64 = claim_payments
        .iter()
        .filter_map(|c| c.paid_amount.as_ref())
        .map(|m| m.amount_cents)
        .sum();
    PostRemittancesRequest {
        request_id: rid(),
        remittance: Some(Remittance {
            remittance_id: remittance_id.into(),
            payer_id: payer_id.into(),
            payment_date: Some(date(today())),
            total_paid: Some(usd(total)),
            claim_payments,
        }),
    }
}

/// Posts `remittances` on one PostRemittances stream; the results, or the status that ended it.
async fn post(
    env: &Env,
    token: &str,
    remittances: Vec<PostRemittancesRequest>,
) -> (Vec<PostRemittancesResponse>, Option<Status>) {
    let mut responses = env
        .integrator()
        .post_remittances(req(futures::stream::iter(remittances), token))
        .await
        .expect("open PostRemittances")
        .into_inner();
    let mut results = Vec::new();
    loop {
        match responses.message().await {
            Ok(Some(response)) => results.push(response),
            Ok(None) => return (results, None),
            Err(status) => return (results, Some(status)),
        }
    }
}

async fn get_claim(env: &Env, claim_id: &str) -> Claim {
    env.insurance()
        .get_claim(req(
            GetClaimRequest {
                claim_id: claim_id.into(),
            },
            &env.ops,
        ))
        .await
        .expect("get claim")
        .into_inner()
        .claim
        .expect("claim")
}

/// Claim lines as (number, code, modifiers, units, charge cents, place of service, pointers).
type Line = (i32, String, Vec<String>, i32, i64, String, Vec<i32>);

fn lines_of(lines: &[ServiceLine]) -> Vec<Line> {
    lines
        .iter()
        .map(|l| {
            (
                l.line_number,
                l.procedure_code.clone(),
                l.modifiers.clone(),
                l.units,
                l.charge.as_ref().map_or(-1, |m| m.amount_cents),
                l.place_of_service.clone(),
                l.diagnosis_pointers.clone(),
            )
        })
        .collect()
}

fn line(number: i32, code: &str, modifiers: &[&str], units: i32, charge: i64, pos: &str) -> Line {
    (
        number,
        code.into(),
        modifiers.iter().map(|m| (*m).to_owned()).collect(),
        units,
        charge,
        pos.into(),
        vec![1, 2],
    )
}

// ---- tests ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fulfilled_visits_are_coded_for_every_modality_and_dose_edge() {
    let env = Env::start(Duration::from_secs(120), &[]).await;
    self_pay_prices(&env).await;
    // Acme covers IV ketamine and is billed the esketamine drug by the clinic; Beacon covers
    // neither (the pharmacy benefit pays the drug).
    upsert_plan(
        &env,
        PlanSpec {
            payer_id: "acme-health",
            plan_id: "acme-gold",
            fees: &PLAN_FEES,
            requires_authorization: &[],
            iv_ketamine_covered: true,
            clinic_bills_drug: true,
        },
    )
    .await;
    upsert_plan(
        &env,
        PlanSpec {
            payer_id: "beacon-care",
            plan_id: "beacon-basic",
            fees: &PLAN_FEES,
            requires_authorization: &[],
            iv_ketamine_covered: false,
            clinic_bills_drug: false,
        },
    )
    .await;
    let (acme, acme_coverage) = insured_patient(&env, "acme-health", "acme-gold").await;
    let (beacon, _) = insured_patient(&env, "beacon-care", "beacon-basic").await;

    let esketamine = |dose_mg| VisitSpec {
        modality: Modality::EsketamineNasalSpray,
        dose_mg,
        minutes: 0,
    };
    let iv = |minutes| VisitSpec {
        modality: Modality::IvKetamine,
        dose_mg: 35,
        minutes,
    };
    let therapy = |modality, minutes| VisitSpec {
        modality,
        dose_mg: 0,
        minutes,
    };
    let claims: Vec<(&str, String, Vec<Line>)> = vec![
        (
            "esketamine 56 mg, drug billed",
            fulfill(&env, &acme, esketamine(56)).await,
            vec![
                line(1, "G2082", &[], 1, 90_651, "11"),
                line(2, "J0013", &[], 56, 84_000, "11"),
            ],
        ),
        (
            "esketamine 84 mg, drug billed",
            fulfill(&env, &acme, esketamine(84)).await,
            vec![
                line(1, "G2083", &[], 1, 135_600, "11"),
                line(2, "J0013", &[], 84, 126_000, "11"),
            ],
        ),
        (
            "esketamine 84 mg, pharmacy drug",
            fulfill(&env, &beacon, esketamine(84)).await,
            vec![line(1, "G2083", &[], 1, 135_600, "11")],
        ),
        (
            "IV 40 min, covered",
            fulfill(&env, &acme, iv(40)).await,
            vec![
                line(1, "96365", &[], 1, 45_000, "11"),
                line(2, "J3490", &[], 1, 10_000, "11"),
            ],
        ),
        (
            "IV 61 min, covered: no additional hour yet",
            fulfill(&env, &acme, iv(61)).await,
            vec![
                line(1, "96365", &[], 1, 45_000, "11"),
                line(2, "J3490", &[], 1, 10_000, "11"),
            ],
        ),
        (
            "IV 91 min, covered: one additional hour",
            fulfill(&env, &acme, iv(91)).await,
            vec![
                line(1, "96365", &[], 1, 45_000, "11"),
                line(2, "96366", &[], 1, 20_000, "11"),
                line(3, "J3490", &[], 1, 10_000, "11"),
            ],
        ),
        (
            "integration therapy 60 min",
            fulfill(&env, &acme, therapy(Modality::IntegrationTherapy, 60)).await,
            vec![line(1, "90837", &[], 1, 18_000, "11")],
        ),
        (
            "telehealth psychotherapy 45 min",
            fulfill(&env, &acme, therapy(Modality::Telehealth, 45)).await,
            vec![line(1, "90834", &["95"], 1, 14_000, "02")],
        ),
    ];
    for (case, appointment_id, expected) in &claims {
        let claim = claim_of(&env, appointment_id).await;
        assert_eq!(lines_of(&claim.lines), *expected, "{case}");
        let total: i64 = expected.iter().map(|l| l.4).sum();
        assert_eq!(claim.total_charge, Some(usd(total)), "{case}");
        assert_eq!(claim.status, ClaimStatus::Draft as i32, "{case}");
        assert_eq!(claim.frequency, ClaimFrequency::Original as i32, "{case}");
        assert_eq!(claim.billing_provider_npi, CLINIC_NPI, "{case}");
        assert_eq!(claim.rendering_provider_npi, RENDERING_NPI, "{case}");
        assert_eq!(claim.diagnosis_codes, DIAGNOSES.to_vec(), "{case}");
        assert_eq!(claim.service_date, Some(date(today())), "{case}");
        assert!(claim.issues.is_empty(), "{case}: {:?}", claim.issues);
    }
    assert_eq!(
        claim_of(&env, &claims[0].1).await.coverage_id,
        acme_coverage.coverage_id
    );

    // IV ketamine for a plan that does not cover it: a self-pay superbill at cash prices.
    let uncovered = fulfill(&env, &beacon, iv(40)).await;
    let superbill = superbill_of(&env, &uncovered)
        .await
        .superbill
        .expect("superbill");
    assert_eq!(
        lines_of(&superbill.lines),
        vec![
            line(1, "96365", &[], 1, 40_000, "11"),
            line(2, "J3490", &[], 1, 5_000, "11")
        ]
    );
    assert_eq!(superbill.total_charge, Some(usd(45_000)));
    let none = env
        .insurance()
        .list_claims(req(
            ListClaimsRequest {
                appointment_id: uncovered.clone(),
                ..Default::default()
            },
            &env.ops,
        ))
        .await
        .expect("list")
        .into_inner();
    assert!(none.claims.is_empty(), "a self-pay visit gets no claim");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_fulfilled_visit_event_delivered_twice_creates_one_claim() {
    // A short duplicate window lets the second copy through JetStream, so the consumer sees it.
    let env = Env::start(Duration::from_millis(500), &[]).await;
    upsert_plan(
        &env,
        PlanSpec {
            payer_id: "acme-health",
            plan_id: "acme-gold",
            fees: &PLAN_FEES,
            requires_authorization: &[],
            iv_ketamine_covered: true,
            clinic_bills_drug: true,
        },
    )
    .await;
    let (patient, _) = insured_patient(&env, "acme-health", "acme-gold").await;
    let appointment_id = format!("appt-{}", Uuid::new_v4().simple());
    let visit = VisitSpec {
        modality: Modality::IntegrationTherapy,
        dose_mg: 0,
        minutes: 60,
    };
    let (event_id, payload) = fulfilled_event(&patient, &appointment_id, &visit);
    env.publish(
        "clinicnet.appointments.appointment.fulfilled",
        &event_id,
        payload.clone(),
    )
    .await;
    let first = claim_of(&env, &appointment_id).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The same event again (same id), and the same visit re-announced under a new event id.
    env.publish(
        "clinicnet.appointments.appointment.fulfilled",
        &event_id,
        payload,
    )
    .await;
    let (other_id, again) = fulfilled_event(&patient, &appointment_id, &visit);
    env.publish(
        "clinicnet.appointments.appointment.fulfilled",
        &other_id,
        again,
    )
    .await;
    env.wait_consumed().await;
    let mut stream = env
        .jetstream
        .get_stream("APPOINTMENTS")
        .await
        .expect("stream");
    let stored = stream.info().await.expect("info").state.messages;
    assert!(
        stored >= 5,
        "all three copies reached the stream ({stored} messages)"
    );
    let claims = env
        .insurance()
        .list_claims(req(
            ListClaimsRequest {
                appointment_id: appointment_id.clone(),
                ..Default::default()
            },
            &env.ops,
        ))
        .await
        .expect("list")
        .into_inner()
        .claims;
    assert_eq!(claims.len(), 1, "one claim per visit");
    assert_eq!(claims[0].claim_id, first.claim_id);
    assert_eq!(claims[0].version, 1);
    env.stop().await;
}

fn pa_of(item: WorkItem) -> PriorAuthorization {
    match item.item {
        Some(Item::PriorAuthorizationRequest(request)) => request.prior_authorization.expect("pa"),
        other => panic!("expected a prior authorization request, got {other:?}"),
    }
}

fn approval(number: &str, from: time::Date, until: time::Date) -> Decide {
    Decide::Approval(PriorAuthorizationApproval {
        authorization_number: number.into(),
        valid_from: Some(date(from)),
        valid_until: Some(date(until)),
        units_approved: 23,
    })
}

async fn decide(
    env: &Env,
    token: &str,
    id: &str,
    decision: Decide,
) -> Result<PriorAuthorization, Status> {
    env.integrator()
        .decide_prior_authorization(req(
            DecidePriorAuthorizationRequest {
                request_id: rid(),
                prior_authorization_id: id.into(),
                decision: Some(decision),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().prior_authorization.expect("pa"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prior_authorizations_are_requested_on_booking_and_approved_denied_pended_or_expire() {
    let env = Env::start(Duration::from_secs(120), &[]).await;
    upsert_plan(
        &env,
        PlanSpec {
            payer_id: "acme-health",
            plan_id: "acme-gold",
            fees: &PLAN_FEES,
            requires_authorization: &["G2082", "G2083"],
            iv_ketamine_covered: true,
            clinic_bills_drug: true,
        },
    )
    .await;
    let integrator = token(Role::Integrator, Some("acme-health"));
    let mut client = env.integrator();
    let mut work = work_stream(&mut client, &integrator, "acme-health", "")
        .await
        .expect("stream");

    let mut patients = Vec::new();
    for _ in 0..4 {
        patients.push(insured_patient(&env, "acme-health", "acme-gold").await);
    }
    let mut requests = Vec::new();
    for (patient, _) in &patients {
        let appointment = book_esketamine(&env, patient).await;
        let pa = pa_of(next_item(&mut work).await);
        assert_eq!(pa.patient_id, *patient);
        assert_eq!(pa.appointment_id, appointment);
        assert_eq!(pa.status, PriorAuthorizationStatus::Requested as i32);
        let codes: Vec<&str> = pa
            .services
            .iter()
            .map(|s| s.procedure_code.as_str())
            .collect();
        assert_eq!(codes, vec!["G2082", "G2083"]);
        let facts = pa
            .clinical_facts
            .clone()
            .expect("clinical facts from the intake");
        assert_eq!(facts.diagnosis_codes, vec!["F33.2".to_string()]);
        assert_eq!(facts.baseline_phq9, 22);
        assert_eq!(facts.failed_trials.len(), 2);
        assert!(facts.patient_age_years >= 45);
        requests.push(pa);
    }
    let (today, year) = (today(), time::Duration::days(365));

    // Approve.
    let approved = decide(
        &env,
        &integrator,
        &requests[0].prior_authorization_id,
        approval(
            "PA-1001",
            today - time::Duration::days(1),
            today + time::Duration::days(179),
        ),
    )
    .await
    .expect("approve");
    assert_eq!(approved.status, PriorAuthorizationStatus::Approved as i32);
    // Deny.
    let denied = decide(
        &env,
        &integrator,
        &requests[1].prior_authorization_id,
        Decide::Denial(PriorAuthorizationDenial {
            reason_code: "TRD".into(),
            reason: "fewer than two failed antidepressant classes".into(),
        }),
    )
    .await
    .expect("deny");
    assert_eq!(denied.status, PriorAuthorizationStatus::Denied as i32);
    assert!(matches!(
        denied.decision,
        Some(prior_authorization::Decision::Denial(_))
    ));
    // Pend, then approve; a decided request cannot be decided again.
    let pended = decide(
        &env,
        &integrator,
        &requests[2].prior_authorization_id,
        Decide::Pend(PriorAuthorizationPend {
            reason: "send the PHQ-9 form".into(),
        }),
    )
    .await
    .expect("pend");
    assert_eq!(pended.status, PriorAuthorizationStatus::Pended as i32);
    let after_pend = decide(
        &env,
        &integrator,
        &requests[2].prior_authorization_id,
        approval("PA-1003", today, today + time::Duration::days(30)),
    )
    .await
    .expect("approve after pend");
    assert_eq!(after_pend.status, PriorAuthorizationStatus::Approved as i32);
    let again = decide(
        &env,
        &integrator,
        &requests[2].prior_authorization_id,
        Decide::Pend(PriorAuthorizationPend {
            reason: "again".into(),
        }),
    )
    .await
    .expect_err("decided twice");
    assert_eq!(again.code(), Code::FailedPrecondition);
    // Another payer's integrator may not decide it.
    let stranger = token(Role::Integrator, Some("beacon-care"));
    let foreign = decide(
        &env,
        &stranger,
        &requests[3].prior_authorization_id,
        approval("X", today, today),
    )
    .await
    .expect_err("foreign payer");
    assert_eq!(foreign.code(), Code::PermissionDenied);
    // Expiry: an approval whose validity ended yesterday reads EXPIRED.
    let expired = decide(
        &env,
        &integrator,
        &requests[3].prior_authorization_id,
        approval("PA-OLD", today - year, today - time::Duration::days(1)),
    )
    .await
    .expect("approve in the past");
    assert_eq!(expired.status, PriorAuthorizationStatus::Expired as i32);
    let read = env
        .insurance()
        .get_prior_authorization(req(
            GetPriorAuthorizationRequest {
                prior_authorization_id: requests[3].prior_authorization_id.clone(),
            },
            &env.ops,
        ))
        .await
        .expect("get")
        .into_inner()
        .prior_authorization
        .expect("pa");
    assert_eq!(read.status, PriorAuthorizationStatus::Expired as i32);

    // A new booking with a valid approval asks for nothing; one after expiry asks again.
    let (covered, _) = &patients[0];
    let (lapsed, _) = &patients[3];
    book_esketamine(&env, covered).await;
    book_esketamine(&env, lapsed).await;
    let renewal = pa_of(next_item(&mut work).await);
    assert_eq!(
        renewal.patient_id, *lapsed,
        "only the lapsed patient needs a new request"
    );
    let listed = env
        .insurance()
        .list_prior_authorizations(req(
            ListPriorAuthorizationsRequest {
                patient_id: covered.clone(),
                clinic_id: CLINIC.into(),
                ..Default::default()
            },
            &token(Role::PartnerClinic, None),
        ))
        .await
        .expect("list")
        .into_inner()
        .prior_authorizations;
    assert_eq!(listed.len(), 1);

    // The decision events tell the clinic and notifications.
    let decided = eventually("the last decision's event", || async {
        let stream = env.jetstream.get_stream("INSURANCE").await.ok()?;
        let last = stream
            .get_last_raw_message_by_subject("clinicnet.insurance.prior_authorization.decided")
            .await
            .ok()?;
        let event = ev::PriorAuthorizationDecided::decode(last.payload.as_ref()).expect("decode");
        match event.prior_authorization?.decision? {
            prior_authorization::Decision::Approval(a) if a.authorization_number == "PA-OLD" => {
                Some(a)
            }
            _ => None,
        }
    })
    .await;
    assert_eq!(
        decided.valid_until,
        Some(date(today - time::Duration::days(1)))
    );

    // A visit covered by the approval is claimed with its number and no issue.
    let visit = fulfill(
        &env,
        covered,
        VisitSpec {
            modality: Modality::EsketamineNasalSpray,
            dose_mg: 84,
            minutes: 0,
        },
    )
    .await;
    let claim = claim_of(&env, &visit).await;
    assert_eq!(claim.authorization_number, "PA-1001");
    assert!(claim.issues.is_empty(), "{:?}", claim.issues);

    // A visit needing an authorization without one is flagged before submission, blocked, and
    // if submitted anyway the payer's denial with CARC 197 is recorded.
    let visit = fulfill(
        &env,
        lapsed,
        VisitSpec {
            modality: Modality::EsketamineNasalSpray,
            dose_mg: 56,
            minutes: 0,
        },
    )
    .await;
    let claim = claim_of(&env, &visit).await;
    assert_eq!(claim.authorization_number, "");
    assert_eq!(
        claim
            .issues
            .iter()
            .map(|i| (i.kind, i.line_number))
            .collect::<Vec<_>>(),
        vec![(ClaimIssueKind::AuthorizationMissing as i32, 1)]
    );
    let blocked = submit(&env, &claim.claim_id, false)
        .await
        .expect_err("blocked by the missing authorization");
    assert_eq!(blocked.code(), Code::FailedPrecondition);
    assert!(
        blocked.message().contains("AUTHORIZATION_MISSING"),
        "{}",
        blocked.message()
    );
    let submitted = submit(&env, &claim.claim_id, true)
        .await
        .expect("submitted despite issues");
    assert_eq!(submitted.status, ClaimStatus::Submitted as i32);
    let item = next_item(&mut work).await;
    let Some(Item::Claim(claim_item)) = item.item else {
        panic!("expected the claim")
    };
    assert_eq!(claim_item.claim.expect("claim").claim_id, claim.claim_id);
    let denial = payment(
        &submitted,
        &[
            (0, vec![(AdjustmentGroup::Co, "197", 90_651)]),
            (0, vec![(AdjustmentGroup::Co, "197", 84_000)]),
        ],
    );
    let (results, error) = post(
        &env,
        &integrator,
        vec![remittance("EFT-197", "acme-health", vec![denial])],
    )
    .await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(results[0].outcome, RemittanceOutcome::Posted as i32);
    let denied_claim = get_claim(&env, &claim.claim_id).await;
    assert_eq!(denied_claim.status, ClaimStatus::Denied as i32);
    assert_eq!(denied_claim.denial_reason_codes, vec!["197".to_string()]);
    let report = env
        .insurance()
        .get_denial_report(req(
            GetDenialReportRequest {
                period: Some(common::TimeInterval {
                    start_time: Some(timestamp(
                        time::OffsetDateTime::now_utc() - time::Duration::hours(1),
                    )),
                    end_time: Some(timestamp(
                        time::OffsetDateTime::now_utc() + time::Duration::hours(1),
                    )),
                }),
                ..Default::default()
            },
            &env.ops,
        ))
        .await
        .expect("denial report")
        .into_inner();
    assert_eq!(report.rows.len(), 1);
    assert_eq!(report.rows[0].denied_claims, 1);
    assert_eq!(report.rows[0].by_reason[0].reason_code, "197");

    // Member ids and names never reach the logs.
    let logs = env.service.logs();
    for (patient, coverage) in &patients {
        assert!(!logs.contains(&coverage.member_id), "member id in logs");
        assert!(
            !logs.contains(&patient_name(patient).family_name),
            "patient name in logs"
        );
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_work_stream_resumes_after_disconnects_without_missing_or_repeating_any_of_1000_claims()
{
    const CLAIMS: usize = 1_000;
    let env = Env::start(Duration::from_secs(120), &[]).await;
    upsert_plan(
        &env,
        PlanSpec {
            payer_id: "acme-health",
            plan_id: "acme-gold",
            fees: &PLAN_FEES,
            requires_authorization: &[],
            iv_ketamine_covered: true,
            clinic_bills_drug: true,
        },
    )
    .await;
    upsert_plan(
        &env,
        PlanSpec {
            payer_id: "beacon-care",
            plan_id: "beacon-basic",
            fees: &PLAN_FEES,
            requires_authorization: &[],
            iv_ketamine_covered: false,
            clinic_bills_drug: false,
        },
    )
    .await;
    let (acme_patient, _) = insured_patient(&env, "acme-health", "acme-gold").await;
    let (beacon_patient, _) = insured_patient(&env, "beacon-care", "beacon-basic").await;
    let therapy = || VisitSpec {
        modality: Modality::Psychotherapy,
        dose_mg: 0,
        minutes: 60,
    };
    let mut visits = Vec::with_capacity(CLAIMS);
    for _ in 0..CLAIMS {
        visits.push(fulfill(&env, &acme_patient, therapy()).await);
    }
    let beacon_visit = fulfill(&env, &beacon_patient, therapy()).await;
    env.wait_consumed().await;
    let beacon_claim = claim_of(&env, &beacon_visit).await;
    submit(&env, &beacon_claim.claim_id, false)
        .await
        .expect("submit beacon claim");

    // Claims ids in visit order, then submitted one by one while the integrator reads.
    let mut claim_ids = Vec::with_capacity(CLAIMS);
    let mut page_token = String::new();
    loop {
        let page = env
            .insurance()
            .list_claims(req(
                ListClaimsRequest {
                    payer_id: "acme-health".into(),
                    page_size: 500,
                    page_token,
                    ..Default::default()
                },
                &env.ops,
            ))
            .await
            .expect("list claims")
            .into_inner();
        claim_ids.extend(page.claims.into_iter().map(|c| c.claim_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(claim_ids.len(), CLAIMS);
    // Submitted eight at a time while the integrator reads: the stream's order is the order in
    // which submissions commit.
    let submitter = {
        let insurance = env.insurance();
        let ids = claim_ids.clone();
        let ops = env.ops.clone();
        tokio::spawn(async move {
            futures::stream::iter(ids)
                .map(|claim_id| {
                    let mut insurance = insurance.clone();
                    let request = req(
                        SubmitClaimRequest {
                            request_id: rid(),
                            claim_id,
                            submit_despite_issues: false,
                        },
                        &ops,
                    );
                    async move { insurance.submit_claim(request).await.expect("submit") }
                })
                .buffer_unordered(8)
                .collect::<Vec<_>>()
                .await
        })
    };

    let seed: u64 = rand::rng().random();
    eprintln!("reconnect seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let integrator = token(Role::Integrator, Some("acme-health"));
    let mut client = env.integrator();
    let mut seen: Vec<String> = Vec::with_capacity(CLAIMS);
    let mut cursor = String::new();
    let mut reconnects = 0;
    while seen.len() < CLAIMS {
        if rng.random_bool(0.3) {
            // A new connection, as after a network failure.
            client =
                IntegratorServiceClient::new(env.service.channel().await.expect("new channel"));
        }
        let mut stream = work_stream(&mut client, &integrator, "acme-health", &cursor)
            .await
            .expect("open stream");
        let take = rng.random_range(1..=120);
        for _ in 0..take {
            let item = next_item(&mut stream).await;
            let Some(Item::Claim(claim)) = item.item else {
                panic!("only claims were offered")
            };
            let claim = claim.claim.expect("claim");
            assert_eq!(claim.payer_id, "acme-health");
            assert_eq!(claim.status, ClaimStatus::Submitted as i32);
            seen.push(claim.claim_id);
            cursor = item.cursor;
            if seen.len() == CLAIMS {
                break;
            }
        }
        drop(stream);
        reconnects += 1;
    }
    submitter.await.expect("submitter");
    assert!(reconnects > 5, "the reader reconnected {reconnects} times");
    let mut once = seen.clone();
    once.sort();
    once.dedup();
    let mut submitted = claim_ids.clone();
    submitted.sort();
    assert_eq!(once, submitted, "every claim seen, none twice");
    // In order: exactly the sequence an uninterrupted reader sees from the start.
    let mut reference = work_stream(&mut client, &integrator, "acme-health", "")
        .await
        .expect("reference stream");
    let mut uninterrupted = Vec::with_capacity(CLAIMS);
    while uninterrupted.len() < CLAIMS {
        let Some(Item::Claim(claim)) = next_item(&mut reference).await.item else {
            panic!("only claims were offered")
        };
        uninterrupted.push(claim.claim.expect("claim").claim_id);
    }
    drop(reference);
    assert_eq!(
        seen, uninterrupted,
        "the reconnecting reader saw the stream's order"
    );

    // Nothing more: a stream resumed from the last cursor waits for new work.
    let mut stream = work_stream(&mut client, &integrator, "acme-health", &cursor)
        .await
        .expect("resume");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), stream.message())
            .await
            .is_err(),
        "no item repeated after the last"
    );

    // Payer isolation: another payer's integrator is refused, and sees only its own work.
    let beacon = token(Role::Integrator, Some("beacon-care"));
    let refused = work_stream(&mut client, &beacon, "acme-health", "")
        .await
        .expect_err("foreign payer");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let stolen_cursor = work_stream(&mut client, &beacon, "beacon-care", &cursor)
        .await
        .expect_err("foreign cursor");
    assert_eq!(stolen_cursor.code(), Code::InvalidArgument);
    let malformed = work_stream(&mut client, &integrator, "acme-health", "not-a-cursor")
        .await
        .expect_err("malformed");
    assert_eq!(malformed.code(), Code::InvalidArgument);
    let mut own = work_stream(&mut client, &beacon, "beacon-care", "")
        .await
        .expect("own stream");
    let Some(Item::Claim(first)) = next_item(&mut own).await.item else {
        panic!("a claim")
    };
    assert_eq!(first.claim.expect("claim").claim_id, beacon_claim.claim_id);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), own.message())
            .await
            .is_err(),
        "beacon sees none of acme's work"
    );
    let foreign_claim = env
        .integrator()
        .acknowledge_claim(req(
            AcknowledgeClaimRequest {
                request_id: rid(),
                claim_id: claim_ids[0].clone(),
                result: Some(acknowledge_claim_request::Result::Accepted(
                    ClaimAcceptance {
                        payer_claim_control_number: "X1".into(),
                    },
                )),
            },
            &beacon,
        ))
        .await
        .expect_err("another payer's claim");
    assert_eq!(foreign_claim.code(), Code::PermissionDenied);
    env.stop().await;
}

async fn acknowledge(env: &Env, token: &str, claim_id: &str) -> Result<Claim, Status> {
    env.integrator()
        .acknowledge_claim(req(
            AcknowledgeClaimRequest {
                request_id: rid(),
                claim_id: claim_id.into(),
                result: Some(acknowledge_claim_request::Result::Accepted(
                    ClaimAcceptance {
                        payer_claim_control_number: format!("ICN-{}", &claim_id[..8]),
                    },
                )),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().claim.expect("claim"))
}

fn statuses(response: &PostRemittancesResponse) -> Vec<i32> {
    response.claims.iter().map(|c| c.status).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remittances_post_balanced_payments_and_reject_the_rest_without_effect() {
    let env = Env::start(Duration::from_secs(120), &[]).await;
    upsert_plan(
        &env,
        PlanSpec {
            payer_id: "acme-health",
            plan_id: "acme-gold",
            fees: &PLAN_FEES,
            requires_authorization: &[],
            iv_ketamine_covered: true,
            clinic_bills_drug: true,
        },
    )
    .await;
    let (patient, _) = insured_patient(&env, "acme-health", "acme-gold").await;
    let integrator = token(Role::Integrator, Some("acme-health"));
    let esketamine = || VisitSpec {
        modality: Modality::EsketamineNasalSpray,
        dose_mg: 84,
        minutes: 0,
    };
    let mut claims = Vec::new();
    for _ in 0..5 {
        let visit = fulfill(&env, &patient, esketamine()).await;
        let draft = claim_of(&env, &visit).await;
        claims.push(submit(&env, &draft.claim_id, false).await.expect("submit"));
    }
    // Lines: G2083 $1,356.00 and J0013 84 mg × $15 = $1,260.00.
    let [a, b, c, d, open] = <[Claim; 5]>::try_from(claims).expect("five claims");
    let a = acknowledge(&env, &integrator, &a.claim_id)
        .await
        .expect("accept");
    assert_eq!(a.status, ClaimStatus::Accepted as i32);
    let twice = acknowledge(&env, &integrator, &a.claim_id)
        .await
        .expect_err("acknowledged twice");
    assert_eq!(twice.code(), Code::FailedPrecondition);

    // Balanced: contractual write-off and coinsurance → PAID; the patient owes the PR part.
    let paid_in_full = payment(
        &a,
        &[
            (
                100_000,
                vec![
                    (AdjustmentGroup::Co, "45", 25_600),
                    (AdjustmentGroup::Pr, "2", 10_000),
                ],
            ),
            (126_000, vec![]),
        ],
    );
    // Unbalanced line (charge ≠ paid + adjustments) for b; c is fine but shares the remittance.
    let unbalanced = payment(
        &b,
        &[
            (100_000, vec![(AdjustmentGroup::Co, "45", 4_000)]),
            (126_000, vec![]),
        ],
    );
    let innocent = payment(&c, &[(135_600, vec![]), (126_000, vec![])]);
    let (results, error) = post(
        &env,
        &integrator,
        vec![
            remittance("EFT-1", "acme-health", vec![paid_in_full.clone()]),
            remittance("EFT-2", "acme-health", vec![unbalanced, innocent]),
        ],
    )
    .await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(results[0].outcome, RemittanceOutcome::Posted as i32);
    assert_eq!(results[1].outcome, RemittanceOutcome::Rejected as i32);
    assert_eq!(
        statuses(&results[1]),
        vec![
            ClaimPostingStatus::Unbalanced as i32,
            ClaimPostingStatus::NotPosted as i32
        ]
    );
    assert_eq!(
        results[1].claims[0].message,
        "line 1: 135600 != 100000 + 4000"
    );
    let a = get_claim(&env, &a.claim_id).await;
    assert_eq!(a.status, ClaimStatus::Paid as i32);
    assert_eq!(a.paid_amount, Some(usd(226_000)));
    assert_eq!(a.patient_responsibility, Some(usd(10_000)));
    assert_eq!(a.lines[0].adjustments.len(), 2);
    for untouched in [&b, &c] {
        let now = get_claim(&env, &untouched.claim_id).await;
        assert_eq!(now.status, ClaimStatus::Submitted as i32, "nothing posted");
        assert_eq!(now.version, untouched.version);
    }

    // Partial payment (the drug line denied as non-covered) and a denial (not medically necessary).
    let partial = payment(
        &b,
        &[
            (135_600, vec![]),
            (0, vec![(AdjustmentGroup::Co, "96", 126_000)]),
        ],
    );
    let denial = payment(
        &c,
        &[
            (0, vec![(AdjustmentGroup::Co, "50", 135_600)]),
            (0, vec![(AdjustmentGroup::Co, "50", 126_000)]),
        ],
    );
    // A remittance naming a claim that does not exist is rejected whole.
    let mut ghost = payment(&d, &[(135_600, vec![]), (126_000, vec![])]);
    ghost.claim_id = Uuid::now_v7().to_string();
    let (results, error) = post(
        &env,
        &integrator,
        vec![
            remittance("EFT-3", "acme-health", vec![partial, denial]),
            remittance("EFT-1", "acme-health", vec![paid_in_full]),
            remittance(
                "EFT-4",
                "acme-health",
                vec![ghost, payment(&d, &[(135_600, vec![]), (126_000, vec![])])],
            ),
        ],
    )
    .await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(results[0].outcome, RemittanceOutcome::Posted as i32);
    assert_eq!(
        results[1].outcome,
        RemittanceOutcome::Duplicate as i32,
        "a re-sent remittance changes nothing"
    );
    assert_eq!(results[2].outcome, RemittanceOutcome::Rejected as i32);
    assert_eq!(
        statuses(&results[2]),
        vec![
            ClaimPostingStatus::UnknownClaim as i32,
            ClaimPostingStatus::NotPosted as i32
        ]
    );
    assert_eq!(
        get_claim(&env, &a.claim_id).await.version,
        a.version,
        "duplicate had no effect"
    );
    let b = get_claim(&env, &b.claim_id).await;
    assert_eq!(b.status, ClaimStatus::PartiallyPaid as i32);
    assert_eq!(b.denial_reason_codes, vec!["96".to_string()]);
    let c = get_claim(&env, &c.claim_id).await;
    assert_eq!(c.status, ClaimStatus::Denied as i32);
    assert_eq!(c.denial_reason_codes, vec!["50".to_string()]);
    assert_eq!(
        get_claim(&env, &d.claim_id).await.status,
        ClaimStatus::Submitted as i32
    );

    // Malformed or foreign remittances end the stream.
    let mut euro = remittance(
        "EFT-5",
        "acme-health",
        vec![payment(&d, &[(135_600, vec![]), (126_000, vec![])])],
    );
    if let Some(r) = euro.remittance.as_mut() {
        r.total_paid = Some(common::Money {
            currency_code: "EUR".into(),
            amount_cents: 261_600,
        });
    }
    let (_, error) = post(&env, &integrator, vec![euro]).await;
    assert_eq!(error.expect("ended").code(), Code::InvalidArgument);
    let (_, error) = post(
        &env,
        &integrator,
        vec![remittance("EFT-6", "beacon-care", vec![])],
    )
    .await;
    assert_eq!(
        error.expect("ended").code(),
        Code::InvalidArgument,
        "no claim payments"
    );
    let foreign = remittance(
        "EFT-6",
        "beacon-care",
        vec![payment(&d, &[(135_600, vec![]), (126_000, vec![])])],
    );
    let (_, error) = post(&env, &integrator, vec![foreign]).await;
    assert_eq!(error.expect("ended").code(), Code::PermissionDenied);

    // The lifecycle refuses illegal moves.
    let ops = &env.ops;
    let appeal = |claim_id: String| {
        let mut insurance = env.insurance();
        async move {
            insurance
                .appeal_claim(req(
                    AppealClaimRequest {
                        request_id: rid(),
                        claim_id,
                        reason: "medically necessary: see notes".into(),
                        authorization_number: String::new(),
                    },
                    ops,
                ))
                .await
        }
    };
    assert_eq!(
        appeal(a.claim_id.clone()).await.expect_err("paid").code(),
        Code::FailedPrecondition
    );
    let appealed = appeal(c.claim_id.clone())
        .await
        .expect("appeal a denial")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(appealed.status, ClaimStatus::Appealed as i32);
    let void = |claim_id: String| {
        let mut insurance = env.insurance();
        async move {
            insurance
                .void_claim(req(
                    VoidClaimRequest {
                        request_id: rid(),
                        claim_id,
                        reason: "billed in error".into(),
                    },
                    ops,
                ))
                .await
        }
    };
    assert_eq!(
        void(d.claim_id.clone())
            .await
            .expect("void")
            .into_inner()
            .claim
            .expect("claim")
            .status,
        ClaimStatus::Voided as i32
    );
    assert_eq!(
        void(d.claim_id.clone())
            .await
            .expect_err("voided twice")
            .code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        submit(&env, &d.claim_id, true)
            .await
            .expect_err("submit a void")
            .code(),
        Code::FailedPrecondition
    );

    // Reports: the open claims by age, denials by CARC, days to payment.
    let aging = env
        .insurance()
        .get_ar_aging_report(req(GetArAgingReportRequest::default(), ops))
        .await
        .expect("aging")
        .into_inner();
    assert_eq!(aging.rows.len(), 1);
    let row = &aging.rows[0];
    assert_eq!(
        (row.clinic_id.as_str(), row.payer_id.as_str()),
        (CLINIC, "acme-health")
    );
    // Open: `open` (submitted), b (partially paid) and c (appealed), all 0–30 days old.
    assert_eq!(row.buckets[0].claim_count, 3);
    assert_eq!(
        row.buckets
            .iter()
            .skip(1)
            .map(|b| b.claim_count)
            .sum::<i32>(),
        0
    );
    assert_eq!(
        row.total_outstanding,
        Some(usd(261_600)),
        "only the unpaid submitted claim is outstanding"
    );
    let _ = &open;
    let period = common::TimeInterval {
        start_time: Some(timestamp(
            time::OffsetDateTime::now_utc() - time::Duration::days(1),
        )),
        end_time: Some(timestamp(
            time::OffsetDateTime::now_utc() + time::Duration::days(1),
        )),
    };
    let denials = env
        .insurance()
        .get_denial_report(req(
            GetDenialReportRequest {
                period: Some(period),
                ..Default::default()
            },
            ops,
        ))
        .await
        .expect("denials")
        .into_inner();
    let row = &denials.rows[0];
    assert_eq!((row.adjudicated_claims, row.denied_claims), (3, 1));
    assert!((row.denial_rate - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(
        row.by_reason
            .iter()
            .map(|r| (r.reason_code.as_str(), r.claim_count))
            .collect::<Vec<_>>(),
        vec![("50", 1)]
    );
    let backwards = common::TimeInterval {
        start_time: period.end_time,
        end_time: period.start_time,
    };
    let refused = env
        .insurance()
        .get_denial_report(req(
            GetDenialReportRequest {
                period: Some(backwards),
                ..Default::default()
            },
            ops,
        ))
        .await
        .expect_err("backwards");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let days = env
        .insurance()
        .get_days_to_payment_report(req(
            GetDaysToPaymentReportRequest {
                period: Some(period),
                ..Default::default()
            },
            ops,
        ))
        .await
        .expect("days")
        .into_inner();
    assert_eq!(
        days.rows[0].paid_claims, 2,
        "the paid and the partially paid claim"
    );
    assert_eq!(
        days.rows[0].average_days_to_payment, 0.0,
        "submitted and paid today"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_superbill_pdf_opens_and_names_codes_charges_diagnosis_and_npi() {
    let env = Env::start(Duration::from_secs(120), &[]).await;
    self_pay_prices(&env).await;
    let patient_id = format!("patient-{}", Uuid::new_v4().simple());
    register_patient(&env, &patient_id).await;
    // Uninsured: a 100-minute infusion (one additional hour) on a superbill at cash prices.
    let visit = fulfill(
        &env,
        &patient_id,
        VisitSpec {
            modality: Modality::IvKetamine,
            dose_mg: 35,
            minutes: 100,
        },
    )
    .await;
    let response = superbill_of(&env, &visit).await;
    let superbill = response.superbill.expect("superbill");
    assert_eq!(
        lines_of(&superbill.lines),
        vec![
            line(1, "96365", &[], 1, 40_000, "11"),
            line(2, "96366", &[], 1, 15_000, "11"),
            line(3, "J3490", &[], 1, 5_000, "11")
        ]
    );
    let document = lopdf::Document::load_mem(&response.pdf).expect("the PDF opens");
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    assert_eq!(pages, vec![1]);
    let text = document.extract_text(&pages).expect("text");
    for expected in [
        "96365",
        "96366",
        "J3490",
        "$400.00",
        "$150.00",
        "$50.00",
        "$600.00",
        "F33.2",
        "F41.1",
        CLINIC_NPI,
        RENDERING_NPI,
        "Mariela",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from the superbill:\n{text}"
        );
    }
    let partner = token(Role::PartnerClinic, None);
    let by_id = env
        .insurance()
        .get_superbill(req(
            GetSuperbillRequest {
                key: Some(Key::SuperbillId(superbill.superbill_id.clone())),
            },
            &partner,
        ))
        .await
        .expect("by id")
        .into_inner();
    assert_eq!(by_id.superbill, Some(superbill));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eligibility_answers_are_cached_and_an_unanswered_request_becomes_unknown() {
    let env = Env::start(
        Duration::from_secs(120),
        &[
            ("ELIGIBILITY_TIMEOUT_SECONDS", "2"),
            ("ELIGIBILITY_CACHE_SECONDS", "3600"),
        ],
    )
    .await;
    upsert_plan(
        &env,
        PlanSpec {
            payer_id: "acme-health",
            plan_id: "acme-gold",
            fees: &PLAN_FEES,
            requires_authorization: &[],
            iv_ketamine_covered: true,
            clinic_bills_drug: true,
        },
    )
    .await;
    let (patient, coverage) = insured_patient(&env, "acme-health", "acme-gold").await;
    let integrator = token(Role::Integrator, Some("acme-health"));
    let mut client = env.integrator();
    let mut work = work_stream(&mut client, &integrator, "acme-health", "")
        .await
        .expect("stream");
    let check = |bypass_cache: bool| {
        let mut insurance = env.insurance();
        let ops = env.ops.clone();
        let coverage_id = coverage.coverage_id.clone();
        async move {
            insurance
                .check_eligibility(req(
                    CheckEligibilityRequest {
                        request_id: rid(),
                        coverage_id,
                        service_date: Some(date(today())),
                        procedure_codes: vec!["G2082".into()],
                        bypass_cache,
                    },
                    &ops,
                ))
                .await
                .expect("check")
                .into_inner()
                .check
                .expect("check")
        }
    };
    let pending = check(false).await;
    assert_eq!(pending.status, EligibilityStatus::Pending as i32);
    let Some(Item::EligibilityRequest(request)) = next_item(&mut work).await.item else {
        panic!("an eligibility request")
    };
    assert_eq!(
        request.check.expect("check").trace_number,
        pending.trace_number
    );
    let member = request.member.expect("member");
    assert_eq!(member.member_id, coverage.member_id);
    assert_eq!(member.patient_name, Some(patient_name(&patient)));
    let answer = |trace_number: String, token: String| {
        let mut integrator = env.integrator();
        async move {
            integrator
                .answer_eligibility(req(
                    AnswerEligibilityRequest {
                        request_id: rid(),
                        trace_number,
                        answer: Some(EligibilityAnswer {
                            active: true,
                            copay: Some(usd(2_500)),
                            coinsurance_basis_points: 2_000,
                            deductible_remaining: Some(usd(50_000)),
                            prior_authorization_required: true,
                            answer_time: None,
                        }),
                    },
                    &token,
                ))
                .await
        }
    };
    let foreign = answer(
        pending.trace_number.clone(),
        token(Role::Integrator, Some("beacon-care")),
    )
    .await
    .expect_err("another payer");
    assert_eq!(foreign.code(), Code::PermissionDenied);
    let answered = answer(pending.trace_number.clone(), integrator.clone())
        .await
        .expect("answer")
        .into_inner()
        .check
        .expect("check");
    assert_eq!(answered.status, EligibilityStatus::Answered as i32);
    let again = answer(pending.trace_number.clone(), integrator.clone())
        .await
        .expect_err("answered twice");
    assert_eq!(again.code(), Code::FailedPrecondition);

    // A fresh answer is served from the cache, without asking the payer.
    let cached = check(false).await;
    assert_eq!(cached.status, EligibilityStatus::Answered as i32);
    assert!(cached.from_cache);
    assert_eq!(
        cached.answer.as_ref().map(|a| a.copay.clone()),
        Some(Some(usd(2_500)))
    );

    // Bypassing the cache asks again; nobody answers, so the check becomes UNKNOWN.
    let asked = check(true).await;
    assert_eq!(asked.status, EligibilityStatus::Pending as i32);
    assert_ne!(asked.trace_number, pending.trace_number);
    let Some(Item::EligibilityRequest(_)) = next_item(&mut work).await.item else {
        panic!("a second request")
    };
    let unknown = eventually("the check to time out", || {
        let mut insurance = env.insurance();
        let ops = env.ops.clone();
        let check_id = asked.check_id.clone();
        async move {
            let check = insurance
                .get_eligibility_check(req(GetEligibilityCheckRequest { check_id }, &ops))
                .await
                .expect("get")
                .into_inner()
                .check?;
            (check.status != EligibilityStatus::Pending as i32).then_some(check)
        }
    })
    .await;
    assert_eq!(
        unknown.status,
        EligibilityStatus::Unknown as i32,
        "never a guess"
    );
    assert!(unknown.answer.is_none());
    // A late answer is still recorded.
    let late = answer(asked.trace_number.clone(), integrator.clone())
        .await
        .expect("late answer")
        .into_inner()
        .check
        .expect("check");
    assert_eq!(late.status, EligibilityStatus::Answered as i32);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_scopes_and_field_errors_are_enforced() {
    let env = Env::start(Duration::from_secs(120), &[]).await;
    upsert_plan(
        &env,
        PlanSpec {
            payer_id: "acme-health",
            plan_id: "acme-gold",
            fees: &PLAN_FEES,
            requires_authorization: &[],
            iv_ketamine_covered: true,
            clinic_bills_drug: true,
        },
    )
    .await;
    let (patient, coverage) = insured_patient(&env, "acme-health", "acme-gold").await;
    let partner = token(Role::PartnerClinic, None);
    let integrator = token(Role::Integrator, Some("acme-health"));
    let stranger = token(Role::Integrator, Some("beacon-care"));
    let mut insurance = env.insurance();

    // Ops data is ops-only; an integrator reads only its own payer.
    let payer = Payer {
        payer_id: "beacon-care".into(),
        display_name: "Beacon".into(),
        ..Default::default()
    };
    let denied = insurance
        .upsert_payer(req(
            UpsertPayerRequest {
                request_id: rid(),
                payer: Some(payer.clone()),
                expected_version: 0,
            },
            &partner,
        ))
        .await
        .expect_err("partner");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        insurance
            .get_payer(req(
                GetPayerRequest {
                    payer_id: "acme-health".into()
                },
                &integrator
            ))
            .await
            .is_ok()
    );
    let foreign = insurance
        .get_payer(req(
            GetPayerRequest {
                payer_id: "acme-health".into(),
            },
            &stranger,
        ))
        .await
        .expect_err("foreign payer");
    assert_eq!(foreign.code(), Code::PermissionDenied);
    let stale = insurance
        .upsert_payer(req(
            UpsertPayerRequest {
                request_id: rid(),
                payer: Some(Payer {
                    payer_id: "acme-health".into(),
                    display_name: "Acme".into(),
                    ..Default::default()
                }),
                expected_version: 0,
            },
            &env.ops,
        ))
        .await
        .expect_err("exists");
    assert_eq!(stale.code(), Code::Aborted);

    // Field errors name their fields; overlapping fee schedule dates are refused.
    let entry = |from: i32| FeeScheduleEntry {
        procedure_code: "G2082".into(),
        unit_charge: Some(usd(100)),
        effective_from: Some(common::Date {
            year: from,
            month: 1,
            day: 1,
        }),
        effective_until: None,
    };
    let bad_plan = Plan {
        plan_id: "Acme Gold".into(),
        payer_id: "acme-health".into(),
        display_name: "x".into(),
        fee_schedule: vec![entry(2025), entry(2026)],
        codes_requiring_authorization: vec!["g2082".into()],
        authorization_validity_days: 180,
        timely_filing_days: 90,
        ..Default::default()
    };
    let invalid = insurance
        .upsert_plan(req(
            UpsertPlanRequest {
                request_id: rid(),
                plan: Some(bad_plan),
                expected_version: 0,
            },
            &env.ops,
        ))
        .await
        .expect_err("invalid plan");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let fields = platform::error::violated_fields(&invalid);
    for field in [
        "plan.plan_id",
        "plan.fee_schedule[1].effective_from",
        "plan.codes_requiring_authorization[0]",
    ] {
        assert!(
            fields.iter().any(|f| f == field),
            "{field} not in {fields:?}"
        );
    }

    // Coverage: one active primary per patient and period; partners only for their patients.
    let clash = insurance
        .add_coverage(req(
            AddCoverageRequest {
                request_id: rid(),
                coverage: Some(Coverage {
                    coverage_id: String::new(),
                    ..coverage.clone()
                }),
            },
            &env.ops,
        ))
        .await
        .expect_err("second primary");
    assert_eq!(clash.code(), Code::AlreadyExists);
    let other_clinic = mint_hs256(
        SECRET,
        &claims(
            "other",
            Role::PartnerClinic,
            vec!["clinic-elsewhere".into()],
            None,
            600,
        ),
    )
    .expect("token");
    let listed = insurance
        .list_coverages(req(
            ListCoveragesRequest {
                patient_id: patient.clone(),
                ..Default::default()
            },
            &other_clinic,
        ))
        .await
        .expect_err("other clinic");
    assert_eq!(listed.code(), Code::PermissionDenied);
    let mine = insurance
        .list_coverages(req(
            ListCoveragesRequest {
                patient_id: patient.clone(),
                ..Default::default()
            },
            &partner,
        ))
        .await
        .expect("own patient")
        .into_inner();
    assert_eq!(mine.coverages.len(), 1);

    // Claims: integrators use their own API; partners must name one of their clinics.
    let by_integrator = insurance
        .list_claims(req(ListClaimsRequest::default(), &integrator))
        .await
        .expect_err("integrator");
    assert_eq!(by_integrator.code(), Code::PermissionDenied);
    let unscoped = insurance
        .list_claims(req(ListClaimsRequest::default(), &partner))
        .await
        .expect_err("no clinic");
    assert_eq!(
        platform::error::violated_fields(&unscoped),
        vec!["clinic_id"]
    );
    let elsewhere = insurance
        .list_claims(req(
            ListClaimsRequest {
                clinic_id: "clinic-elsewhere".into(),
                ..Default::default()
            },
            &partner,
        ))
        .await
        .expect_err("foreign clinic");
    assert_eq!(elsewhere.code(), Code::PermissionDenied);
    let missing = insurance
        .get_claim(req(
            GetClaimRequest {
                claim_id: Uuid::now_v7().to_string(),
            },
            &env.ops,
        ))
        .await
        .expect_err("unknown");
    assert_eq!(missing.code(), Code::NotFound);
    let malformed = insurance
        .submit_claim(req(
            SubmitClaimRequest {
                request_id: rid(),
                claim_id: "nope".into(),
                submit_despite_issues: false,
            },
            &env.ops,
        ))
        .await
        .expect_err("bad id");
    assert_eq!(
        platform::error::violated_fields(&malformed),
        vec!["claim_id"]
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_edit_drafts_in_place_and_replace_claims_the_payer_has() {
    let env = Env::start(Duration::from_secs(120), &[]).await;
    upsert_plan(
        &env,
        PlanSpec {
            payer_id: "acme-health",
            plan_id: "acme-gold",
            fees: &PLAN_FEES,
            requires_authorization: &[],
            iv_ketamine_covered: true,
            clinic_bills_drug: true,
        },
    )
    .await;
    let (patient, _) = insured_patient(&env, "acme-health", "acme-gold").await;
    let integrator = token(Role::Integrator, Some("acme-health"));
    let therapy = |minutes| VisitSpec {
        modality: Modality::Psychotherapy,
        dose_mg: 0,
        minutes,
    };
    let correct = |claim_id: String, lines: Vec<ServiceLine>| {
        let mut insurance = env.insurance();
        let ops = env.ops.clone();
        async move {
            insurance
                .correct_claim(req(
                    CorrectClaimRequest {
                        request_id: rid(),
                        claim_id,
                        diagnosis_codes: vec!["F33.1".into()],
                        lines,
                        authorization_number: String::new(),
                        reason: "session length".into(),
                    },
                    &ops,
                ))
                .await
        }
    };
    // A draft is edited in place and re-priced from the fee schedule.
    let draft = claim_of(&env, &fulfill(&env, &patient, therapy(60)).await).await;
    let mut shorter = draft.lines[0].clone();
    shorter.procedure_code = "90834".into();
    shorter.charge = Some(usd(1));
    shorter.diagnosis_pointers = vec![1];
    let edited = correct(draft.claim_id.clone(), vec![shorter.clone()])
        .await
        .expect("edit")
        .into_inner();
    assert!(edited.replaced_claim.is_none());
    let edited = edited.claim.expect("claim");
    assert_eq!(edited.claim_id, draft.claim_id);
    assert_eq!(edited.status, ClaimStatus::Draft as i32);
    assert_eq!(edited.diagnosis_codes, vec!["F33.1".to_string()]);
    assert_eq!(
        edited.lines[0].charge,
        Some(usd(14_000)),
        "charges come from the fee schedule"
    );
    assert_eq!(edited.total_charge, Some(usd(14_000)));
    let mut bad = shorter.clone();
    bad.diagnosis_pointers = vec![2];
    let invalid = correct(draft.claim_id.clone(), vec![bad])
        .await
        .expect_err("pointer beyond the diagnoses");
    assert_eq!(
        platform::error::violated_fields(&invalid),
        vec!["lines[0].diagnosis_pointers"]
    );

    // A submitted claim cannot be corrected; once paid it is replaced.
    let submitted = submit(&env, &draft.claim_id, false).await.expect("submit");
    assert_eq!(
        correct(draft.claim_id.clone(), vec![])
            .await
            .expect_err("with the payer")
            .code(),
        Code::FailedPrecondition
    );
    let (results, _) = post(
        &env,
        &integrator,
        vec![remittance(
            "EFT-C1",
            "acme-health",
            vec![payment(&submitted, &[(14_000, vec![])])],
        )],
    )
    .await;
    assert_eq!(results[0].outcome, RemittanceOutcome::Posted as i32);
    let mut longer = shorter;
    longer.procedure_code = "90837".into();
    let replaced = correct(draft.claim_id.clone(), vec![longer])
        .await
        .expect("replace")
        .into_inner();
    let replacement = replaced.claim.expect("replacement");
    let original = replaced.replaced_claim.expect("original");
    assert_ne!(replacement.claim_id, original.claim_id);
    assert_eq!(replacement.frequency, ClaimFrequency::Replacement as i32);
    assert_eq!(replacement.status, ClaimStatus::Draft as i32);
    assert_eq!(replacement.replaces_claim_id, original.claim_id);
    assert_eq!(replacement.total_charge, Some(usd(18_000)));
    assert!(replacement.paid_amount.is_none());
    assert_eq!(original.status, ClaimStatus::Replaced as i32);
    assert_eq!(original.replaced_by_claim_id, replacement.claim_id);
    assert_eq!(
        get_claim(&env, &original.claim_id).await.status,
        ClaimStatus::Replaced as i32
    );
    assert_eq!(
        correct(original.claim_id.clone(), vec![])
            .await
            .expect_err("replaced")
            .code(),
        Code::FailedPrecondition
    );
    env.stop().await;
}
