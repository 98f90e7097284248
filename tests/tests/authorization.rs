//! The authorization matrix of the whole network: every RPC of every service in the compiled
//! contracts × every kind of caller → allowed, unauthenticated, denied or hidden, from one table.
//! A method without a table entry (or an entry without a method) fails the test. Each request
//! names resources of "this clinic" and "this payer" created through the public API beforehand.

use clinicnet_proto::{
    appointments::v1::{
        self as appt, appointments_service_client::AppointmentsServiceClient,
        patients_service_client::PatientsServiceClient,
    },
    common::v1::{self as common, Modality},
    directory::v1::{self as dir, directory_service_client::DirectoryServiceClient},
    insurance::v1::{self as ins, insurance_service_client::InsuranceServiceClient},
    notifications::v1::{self as notif, notifications_service_client::NotificationsServiceClient},
    ops::v1 as ops,
};
use platform::auth::Role;
use prost::Message;
use std::time::Duration;
use system_tests::{
    fixtures,
    network::{Network, NetworkOptions, SERVICES, authorized, eventually},
    raw::{self, Method},
};
use tonic::Code;

const THIS_PAYER: &str = "payer-this";
const OTHER_PAYER: &str = "payer-other";
const THIS_PLAN: &str = "plan-this";
/// The cash price list superbills are priced with.
const SELF_PAY: &str = "self-pay";
const THERAPY: i32 = Modality::Psychotherapy as i32;
const WAIT: Duration = Duration::from_secs(60);

/// What a caller gets from a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Anything but UNAUTHENTICATED, PERMISSION_DENIED and NOT_FOUND.
    Allowed,
    /// UNAUTHENTICATED.
    Unauthenticated,
    /// PERMISSION_DENIED.
    Denied,
    /// NOT_FOUND: the resource is not the caller's to know about, or does not exist.
    Hidden,
}

use Outcome::{Allowed as A, Denied as D, Hidden as H, Unauthenticated as U};

/// The callers, in the order of a row's columns.
const CALLERS: [&str; 6] = [
    "no token",
    "partner of this clinic",
    "partner of another clinic",
    "integrator of this payer",
    "integrator of another payer",
    "ops",
];

const OPS_ONLY: [Outcome; 6] = [U, D, D, D, D, A];
const ANYONE: [Outcome; 6] = [U, A, A, A, A, A];
const THIS_CLINIC: [Outcome; 6] = [U, A, D, D, D, A];
const THIS_PAYER_ONLY: [Outcome; 6] = [U, D, D, A, D, A];
const ANY_PARTNER: [Outcome; 6] = [U, A, A, D, D, A];
const ANY_PARTNER_OR_THIS_PAYER: [Outcome; 6] = [U, A, A, A, D, A];
/// Only ops reaches the lookup (of a dead letter that does not exist).
const OPS_LOOKUP: [Outcome; 6] = [U, D, D, D, D, H];
const THIS_CLINIC_HIDDEN: [Outcome; 6] = [U, A, H, D, D, A];

/// Every method's expected outcome per caller. EventOpsService is served by every service.
const TABLE: &[(&str, [Outcome; 6])] = &[
    (
        "/clinicnet.directory.v1.DirectoryService/CreateClinic",
        OPS_ONLY,
    ),
    ("/clinicnet.directory.v1.DirectoryService/GetClinic", ANYONE),
    (
        "/clinicnet.directory.v1.DirectoryService/ListClinics",
        ANYONE,
    ),
    (
        "/clinicnet.directory.v1.DirectoryService/UpdateClinic",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.directory.v1.DirectoryService/SuspendClinic",
        OPS_ONLY,
    ),
    (
        "/clinicnet.directory.v1.DirectoryService/ReactivateClinic",
        OPS_ONLY,
    ),
    (
        "/clinicnet.directory.v1.DirectoryService/UpsertChair",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.directory.v1.DirectoryService/RemoveChair",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.directory.v1.DirectoryService/CreateProvider",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.directory.v1.DirectoryService/GetProvider",
        ANYONE,
    ),
    (
        "/clinicnet.directory.v1.DirectoryService/ListProviders",
        ANYONE,
    ),
    (
        "/clinicnet.directory.v1.DirectoryService/UpdateProvider",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.directory.v1.DirectoryService/RemoveProvider",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.directory.v1.DirectoryService/SearchClinics",
        ANYONE,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/SyncAvailability",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/StreamSyncAvailability",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/GenerateAvailability",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/ListSlots",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/FindSlots",
        ANY_PARTNER,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/HoldSlot",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/ReleaseHold",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/BookAppointment",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/RescheduleAppointment",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/CancelAppointment",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/CheckInAppointment",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/CompleteAppointment",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/MarkNoShow",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/GetAppointment",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/ListAppointments",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/ListCoursePlans",
        ANY_PARTNER,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/CreateCourse",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/BookCourse",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/GetCourse",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/BookIntegrationSession",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.AppointmentsService/GetOutcomes",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.PatientsService/RegisterPatient",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.PatientsService/UpdatePatient",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.PatientsService/GetPatient",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.PatientsService/ListPatients",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.PatientsService/RecordIntake",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.appointments.v1.PatientsService/GetIntake",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/UpsertPayer",
        OPS_ONLY,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/GetPayer",
        ANY_PARTNER_OR_THIS_PAYER,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/ListPayers",
        ANY_PARTNER,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/UpsertPlan",
        OPS_ONLY,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/GetPlan",
        ANY_PARTNER_OR_THIS_PAYER,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/ListPlans",
        ANY_PARTNER_OR_THIS_PAYER,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/AddCoverage",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/UpdateCoverage",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/RemoveCoverage",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/ListCoverages",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/CheckEligibility",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/GetEligibilityCheck",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/RequestPriorAuthorization",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/GetPriorAuthorization",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/ListPriorAuthorizations",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/GetClaim",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/ListClaims",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/SubmitClaim",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/CorrectClaim",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/AppealClaim",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/VoidClaim",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/GetSuperbill",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/GetArAgingReport",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/GetDenialReport",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.InsuranceService/GetDaysToPaymentReport",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.insurance.v1.IntegratorService/StreamWork",
        THIS_PAYER_ONLY,
    ),
    (
        "/clinicnet.insurance.v1.IntegratorService/AnswerEligibility",
        THIS_PAYER_ONLY,
    ),
    (
        "/clinicnet.insurance.v1.IntegratorService/DecidePriorAuthorization",
        THIS_PAYER_ONLY,
    ),
    (
        "/clinicnet.insurance.v1.IntegratorService/AcknowledgeClaim",
        THIS_PAYER_ONLY,
    ),
    (
        "/clinicnet.insurance.v1.IntegratorService/PostRemittances",
        THIS_PAYER_ONLY,
    ),
    (
        "/clinicnet.notifications.v1.NotificationsService/ListNotifications",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.notifications.v1.NotificationsService/GetNotification",
        THIS_CLINIC_HIDDEN,
    ),
    (
        "/clinicnet.notifications.v1.NotificationsService/GetPreferences",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.notifications.v1.NotificationsService/SetPreferences",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.notifications.v1.NotificationsService/RegisterWebhookEndpoint",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.notifications.v1.NotificationsService/RotateWebhookSecret",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.notifications.v1.NotificationsService/RemoveWebhookEndpoint",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.notifications.v1.NotificationsService/ListWebhookEndpoints",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.notifications.v1.NotificationsService/SendTestMessage",
        THIS_CLINIC,
    ),
    (
        "/clinicnet.notifications.v1.NotificationsService/ReceiveInboundSms",
        OPS_ONLY,
    ),
    (
        "/clinicnet.ops.v1.EventOpsService/GetEventBacklog",
        OPS_ONLY,
    ),
    (
        "/clinicnet.ops.v1.EventOpsService/ListDeadLetters",
        OPS_ONLY,
    ),
    (
        "/clinicnet.ops.v1.EventOpsService/RedriveDeadLetter",
        OPS_LOOKUP,
    ),
];

/// The services a method is served by.
fn hosts(path: &str) -> Vec<&'static str> {
    let package = path.split('.').nth(1).expect("a package");
    match package {
        "ops" => SERVICES.to_vec(),
        _ => vec![
            SERVICES
                .into_iter()
                .find(|s| *s == package)
                .expect("a service"),
        ],
    }
}

/// Resources of "this clinic" and "this payer", created by ops.
struct Scene {
    this: dir::Clinic,
    other_clinic: String,
    provider: dir::Provider,
    slots: Vec<String>,
    patient: appt::Patient,
    coverage: ins::Coverage,
    claimed: String,
    superbilled: String,
    booked: String,
    hold: String,
    course: String,
    claim: ins::Claim,
    check: ins::EligibilityCheck,
    authorization: ins::PriorAuthorization,
    endpoint: String,
    notification: String,
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn usd(amount_cents: i64) -> common::Money {
    common::Money {
        currency_code: "USD".into(),
        amount_cents,
    }
}

fn timestamp(t: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: 0,
    }
}

fn today_plus(days: i64) -> common::Date {
    fixtures::date(fixtures::days_from_today(days))
}

fn ids(rows: Vec<(String,)>) -> Vec<String> {
    rows.into_iter().map(|(id,)| id).collect()
}

async fn directory_setup(network: &Network, ops: &str) -> (dir::Clinic, String, dir::Provider) {
    let mut directory = DirectoryServiceClient::new(network.channel("directory").await);
    let mut create = async |clinic: dir::Clinic| {
        let request = dir::CreateClinicRequest {
            request_id: request_id(),
            clinic: Some(clinic),
        };
        let response = directory.create_clinic(authorized(request, ops)).await;
        response
            .expect("a clinic")
            .into_inner()
            .clinic
            .expect("the clinic")
    };
    let this = create(fixtures::clinic_with("This clinic", |c| {
        c.modalities.push(THERAPY);
        c.chairs.push(dir::Chair {
            location_id: "main".into(),
            display_name: "Therapy room".into(),
            modalities: vec![THERAPY],
            capacity: 1,
            ..Default::default()
        });
    }))
    .await;
    let other = create(fixtures::clinic("Another clinic")).await;
    let mut provider = fixtures::provider(&[&this.clinic_id]);
    provider.modalities.push(THERAPY);
    let request = dir::CreateProviderRequest {
        request_id: request_id(),
        provider: Some(provider),
    };
    let provider = directory.create_provider(authorized(request, ops)).await;
    let provider = provider
        .expect("a provider")
        .into_inner()
        .provider
        .expect("the provider");
    let pool = network.database("appointments").pool();
    eventually(
        "appointments to know the clinics and the provider",
        WAIT,
        || async {
            let known: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM clinics) + (SELECT count(*) FROM providers)",
            )
            .fetch_one(pool)
            .await
            .ok()?;
            (known == 3).then_some(())
        },
    )
    .await;
    (this, other.clinic_id, provider)
}

async fn insurance_setup(network: &Network, ops: &str) {
    let mut insurance = InsuranceServiceClient::new(network.channel("insurance").await);
    for payer_id in [THIS_PAYER, OTHER_PAYER, SELF_PAY] {
        let request = ins::UpsertPayerRequest {
            request_id: request_id(),
            payer: Some(ins::Payer {
                payer_id: payer_id.into(),
                display_name: format!("Health plan {payer_id}"),
                ..Default::default()
            }),
            expected_version: 0,
        };
        insurance
            .upsert_payer(authorized(request, ops))
            .await
            .expect("a payer");
    }
    let fee = |code: &str, cents: i64| ins::FeeScheduleEntry {
        procedure_code: code.into(),
        unit_charge: Some(usd(cents)),
        effective_from: Some(common::Date {
            year: 2025,
            month: 1,
            day: 1,
        }),
        effective_until: None,
    };
    let request = ins::UpsertPlanRequest {
        request_id: request_id(),
        plan: Some(ins::Plan {
            plan_id: THIS_PLAN.into(),
            payer_id: THIS_PAYER.into(),
            display_name: "This PPO".into(),
            fee_schedule: vec![fee("90837", 18_000), fee("G2082", 90_000)],
            authorization_validity_days: 180,
            timely_filing_days: 90,
            ..Default::default()
        }),
        expected_version: 0,
    };
    insurance
        .upsert_plan(authorized(request, ops))
        .await
        .expect("a plan");
    let request = ins::UpsertPlanRequest {
        request_id: request_id(),
        plan: Some(ins::Plan {
            plan_id: "self-pay-cash".into(),
            payer_id: SELF_PAY.into(),
            display_name: "Cash prices".into(),
            fee_schedule: vec![fee("90837", 15_000)],
            authorization_validity_days: 180,
            timely_filing_days: 365,
            ..Default::default()
        }),
        expected_version: 0,
    };
    insurance
        .upsert_plan(authorized(request, ops))
        .await
        .expect("the cash prices");
}

/// Syncs six 90-minute therapy slots two days ahead on this clinic's therapy room.
async fn offer_slots(
    network: &Network,
    ops: &str,
    clinic: &dir::Clinic,
    provider: &str,
) -> Vec<String> {
    let room = clinic
        .chairs
        .iter()
        .find(|c| c.modalities.contains(&THERAPY))
        .expect("the room");
    let now = jiff::Timestamp::now().as_second();
    let first = now + 48 * 3600 - now % 3600;
    let at = |k: i64| jiff::Timestamp::from_second(first + k * 90 * 60).expect("a time");
    let request = appt::SyncAvailabilityRequest {
        request_id: request_id(),
        clinic_id: clinic.clinic_id.clone(),
        window: Some(common::TimeInterval {
            start_time: Some(timestamp(at(0))),
            end_time: Some(timestamp(at(6))),
        }),
        slots: (0..6)
            .map(|k| appt::AvailabilitySlot {
                chair_id: room.chair_id.clone(),
                provider_id: provider.into(),
                modality: THERAPY,
                start_time: Some(timestamp(at(k))),
                end_time: Some(timestamp(at(k + 1))),
                ..Default::default()
            })
            .collect(),
        sync_version: 1,
    };
    let mut appointments = AppointmentsServiceClient::new(network.channel("appointments").await);
    appointments
        .sync_availability(authorized(request, ops))
        .await
        .expect("slots");
    let rows = sqlx::query_as("SELECT slot_id::text FROM slots ORDER BY lower(during)")
        .fetch_all(network.database("appointments").pool())
        .await
        .expect("the slots");
    ids(rows)
}

async fn register_patient(
    network: &Network,
    ops: &str,
    clinic_id: &str,
    insured: bool,
) -> (appt::Patient, Option<ins::Coverage>) {
    let mut patients = PatientsServiceClient::new(network.channel("appointments").await);
    let request = appt::RegisterPatientRequest {
        request_id: request_id(),
        patient: Some(appt::Patient {
            name: Some(common::PersonName {
                given_name: "Lucía".into(),
                middle_name: String::new(),
                family_name: "Matrix".into(),
            }),
            birth_date: Some(common::Date {
                year: 1981,
                month: 3,
                day: 14,
            }),
            preferred_locale: common::Locale::EsUs as i32,
            registered_clinic_id: clinic_id.into(),
            ..Default::default()
        }),
    };
    let patient = patients.register_patient(authorized(request, ops)).await;
    let patient = patient
        .expect("a patient")
        .into_inner()
        .patient
        .expect("the patient");
    let trial = |class: common::AntidepressantClass| common::AntidepressantTrial {
        drug_class: class as i32,
        duration_weeks: 8,
        adequate_dose: true,
        current_episode: true,
    };
    let request = appt::RecordIntakeRequest {
        request_id: request_id(),
        intake: Some(appt::Intake {
            patient_id: patient.patient_id.clone(),
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
    patients
        .record_intake(authorized(request, ops))
        .await
        .expect("an intake");
    if !insured {
        return (patient, None);
    }
    let request = ins::AddCoverageRequest {
        request_id: request_id(),
        coverage: Some(ins::Coverage {
            patient_id: patient.patient_id.clone(),
            payer_id: THIS_PAYER.into(),
            plan_id: THIS_PLAN.into(),
            member_id: "MTX123456".into(),
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
    let insurance = InsuranceServiceClient::new(network.channel("insurance").await);
    let coverage = eventually("insurance to know the patient", WAIT, || {
        let (mut insurance, request) = (insurance.clone(), request.clone());
        async move {
            match insurance.add_coverage(authorized(request, ops)).await {
                Ok(response) => response.into_inner().coverage,
                Err(status) if status.code() == Code::NotFound => None,
                Err(status) => panic!("a coverage: {status:?}"),
            }
        }
    })
    .await;
    (patient, Some(coverage))
}

async fn book(
    network: &Network,
    ops: &str,
    slot_id: &str,
    patient_id: &str,
    complete: bool,
) -> String {
    let mut appointments = AppointmentsServiceClient::new(network.channel("appointments").await);
    let request = appt::BookAppointmentRequest {
        request_id: request_id(),
        target: Some(appt::book_appointment_request::Target::SlotId(
            slot_id.into(),
        )),
        patient_id: patient_id.into(),
        ..Default::default()
    };
    let booked = appointments
        .book_appointment(authorized(request, ops))
        .await;
    let booked = booked
        .expect("a booking")
        .into_inner()
        .appointment
        .expect("the appointment");
    if complete {
        let request = appt::CheckInAppointmentRequest {
            request_id: request_id(),
            appointment_id: booked.appointment_id.clone(),
        };
        appointments
            .check_in_appointment(authorized(request, ops))
            .await
            .expect("a check-in");
        let request = appt::CompleteAppointmentRequest {
            request_id: request_id(),
            appointment_id: booked.appointment_id.clone(),
            completion: Some(appt::Completion {
                modality: THERAPY,
                treatment_minutes: 53,
                ..Default::default()
            }),
        };
        appointments
            .complete_appointment(authorized(request, ops))
            .await
            .expect("a completion");
    }
    booked.appointment_id
}

async fn scene(network: &Network) -> Scene {
    let ops = &network.ops_token();
    let (this, other_clinic, provider) = directory_setup(network, ops).await;
    insurance_setup(network, ops).await;
    let slots = offer_slots(network, ops, &this, &provider.provider_id).await;
    let (patient, coverage) = register_patient(network, ops, &this.clinic_id, true).await;
    let (uninsured, _) = register_patient(network, ops, &this.clinic_id, false).await;
    let claimed = book(network, ops, &slots[0], &patient.patient_id, true).await;
    let superbilled = book(network, ops, &slots[1], &uninsured.patient_id, true).await;
    let booked = book(network, ops, &slots[2], &patient.patient_id, false).await;
    let coverage = coverage.expect("the coverage");

    let mut appointments = AppointmentsServiceClient::new(network.channel("appointments").await);
    let request = appt::HoldSlotRequest {
        request_id: request_id(),
        slot_id: slots[3].clone(),
        patient_id: patient.patient_id.clone(),
        ttl: None,
    };
    let hold = appointments.hold_slot(authorized(request, ops)).await;
    let hold = hold
        .expect("a hold")
        .into_inner()
        .hold
        .expect("the hold")
        .hold_id;
    let request = appt::CreateCourseRequest {
        request_id: request_id(),
        patient_id: patient.patient_id.clone(),
        clinic_id: this.clinic_id.clone(),
        plan_code: "esketamine-adult".into(),
        start_date: Some(today_plus(3)),
        preferences: None,
    };
    let course = appointments.create_course(authorized(request, ops)).await;
    let course = course
        .expect("a course")
        .into_inner()
        .course
        .expect("the course")
        .course_id;

    let mut insurance = InsuranceServiceClient::new(network.channel("insurance").await);
    let request = ins::CheckEligibilityRequest {
        request_id: request_id(),
        coverage_id: coverage.coverage_id.clone(),
        service_date: Some(today_plus(2)),
        procedure_codes: vec!["90837".into()],
        bypass_cache: false,
    };
    let check = insurance.check_eligibility(authorized(request, ops)).await;
    let check = check
        .expect("a check")
        .into_inner()
        .check
        .expect("the check");
    let request = ins::RequestPriorAuthorizationRequest {
        request_id: request_id(),
        patient_id: patient.patient_id.clone(),
        coverage_id: coverage.coverage_id.clone(),
        clinic_id: this.clinic_id.clone(),
        provider_npi: provider.npi.clone(),
        services: vec![ins::RequestedService {
            procedure_code: "G2082".into(),
            units: 8,
        }],
        ..Default::default()
    };
    let authorization = insurance
        .request_prior_authorization(authorized(request, ops))
        .await;
    let authorization = authorization
        .expect("a prior authorization")
        .into_inner()
        .prior_authorization
        .expect("the prior authorization");
    let claim = eventually("the claim of the fulfilled visit", WAIT, || {
        let mut insurance = insurance.clone();
        let request = ins::ListClaimsRequest {
            appointment_id: claimed.clone(),
            ..Default::default()
        };
        async move {
            let listed = insurance.list_claims(authorized(request, ops)).await.ok()?;
            listed.into_inner().claims.into_iter().next()
        }
    })
    .await;

    eventually("the superbill of the self-pay visit", WAIT, || {
        let mut insurance = insurance.clone();
        let request = ins::GetSuperbillRequest {
            key: Some(ins::get_superbill_request::Key::AppointmentId(
                superbilled.clone(),
            )),
        };
        async move { insurance.get_superbill(authorized(request, ops)).await.ok() }
    })
    .await;
    let notifications = NotificationsServiceClient::new(network.channel("notifications").await);
    let request = notif::RegisterWebhookEndpointRequest {
        request_id: request_id(),
        clinic_id: this.clinic_id.clone(),
        url: "https://hooks.clinic.example/clinicnet".into(),
        kinds: vec![notif::NotificationKind::AppointmentConfirmation as i32],
        description: "front desk".into(),
    };
    let endpoint = notifications
        .clone()
        .register_webhook_endpoint(authorized(request, ops))
        .await;
    let endpoint = endpoint
        .expect("an endpoint")
        .into_inner()
        .endpoint
        .expect("the endpoint");
    let notification = eventually("a notification of the booking", WAIT, || {
        let mut notifications = notifications.clone();
        let request = notif::ListNotificationsRequest {
            filter: Some(notif::list_notifications_request::Filter::AppointmentId(
                booked.clone(),
            )),
            ..Default::default()
        };
        async move {
            let listed = notifications
                .list_notifications(authorized(request, ops))
                .await
                .ok()?;
            listed.into_inner().notifications.into_iter().next()
        }
    })
    .await;
    Scene {
        this,
        other_clinic,
        provider,
        slots,
        patient,
        coverage,
        claimed,
        superbilled,
        booked,
        hold,
        course,
        claim,
        check,
        authorization,
        endpoint: endpoint.endpoint_id,
        notification: notification.notification_id,
    }
}

/// The request a method is called with: valid, naming this clinic's and this payer's resources.
fn request(method: &str, s: &Scene) -> Vec<u8> {
    let this = s.this.clinic_id.clone();
    let name = method.rsplit('/').next().expect("a method name");
    let window = || common::TimeInterval {
        start_time: Some(prost_types::Timestamp {
            seconds: jiff::Timestamp::now().as_second(),
            nanos: 0,
        }),
        end_time: Some(prost_types::Timestamp {
            seconds: jiff::Timestamp::now().as_second() + 7 * 86_400,
            nanos: 0,
        }),
    };
    let past = || common::TimeInterval {
        start_time: Some(prost_types::Timestamp {
            seconds: jiff::Timestamp::now().as_second() - 30 * 86_400,
            nanos: 0,
        }),
        end_time: Some(prost_types::Timestamp {
            seconds: jiff::Timestamp::now().as_second(),
            nanos: 0,
        }),
    };
    let mut renamed = s.this.clone();
    renamed.display_name = "This clinic, renamed".into();
    let mut provider = s.provider.clone();
    provider.credentials.push("DABPN".into());
    let appointment = s.booked.clone();
    let claim = s.claim.claim_id.clone();
    match name {
        "CreateClinic" => dir::CreateClinicRequest {
            request_id: request_id(),
            clinic: Some(fixtures::clinic("New clinic")),
        }
        .encode_to_vec(),
        "GetClinic" => dir::GetClinicRequest { clinic_id: this }.encode_to_vec(),
        "ListClinics" => dir::ListClinicsRequest::default().encode_to_vec(),
        "UpdateClinic" => dir::UpdateClinicRequest {
            request_id: request_id(),
            clinic: Some(renamed),
            ..Default::default()
        }
        .encode_to_vec(),
        "SuspendClinic" => dir::SuspendClinicRequest {
            request_id: request_id(),
            clinic_id: this,
            reason: "audit".into(),
            expected_version: s.this.version,
        }
        .encode_to_vec(),
        "ReactivateClinic" => dir::ReactivateClinicRequest {
            request_id: request_id(),
            clinic_id: this,
            expected_version: s.this.version,
        }
        .encode_to_vec(),
        "UpsertChair" => dir::UpsertChairRequest {
            request_id: request_id(),
            clinic_id: this,
            expected_version: s.this.version,
            chair: Some(dir::Chair {
                location_id: "main".into(),
                display_name: "Spravato room".into(),
                modalities: vec![Modality::EsketamineNasalSpray as i32],
                capacity: 2,
                ..Default::default()
            }),
        }
        .encode_to_vec(),
        "RemoveChair" => dir::RemoveChairRequest {
            request_id: request_id(),
            clinic_id: this,
            chair_id: s.this.chairs[0].chair_id.clone(),
            expected_version: s.this.version,
        }
        .encode_to_vec(),
        "CreateProvider" => dir::CreateProviderRequest {
            request_id: request_id(),
            provider: Some(fixtures::provider(&[&this])),
        }
        .encode_to_vec(),
        "GetProvider" => dir::GetProviderRequest {
            provider_id: s.provider.provider_id.clone(),
        }
        .encode_to_vec(),
        "ListProviders" => dir::ListProvidersRequest {
            clinic_id: this,
            ..Default::default()
        }
        .encode_to_vec(),
        "UpdateProvider" => dir::UpdateProviderRequest {
            request_id: request_id(),
            provider: Some(provider),
            expected_version: s.provider.version,
        }
        .encode_to_vec(),
        "RemoveProvider" => dir::RemoveProviderRequest {
            request_id: request_id(),
            provider_id: s.provider.provider_id.clone(),
            expected_version: s.provider.version,
        }
        .encode_to_vec(),
        "SearchClinics" => dir::SearchClinicsRequest::default().encode_to_vec(),
        "SyncAvailability" => appt::SyncAvailabilityRequest {
            request_id: request_id(),
            clinic_id: this,
            window: Some(window()),
            slots: Vec::new(),
            sync_version: 2,
        }
        .encode_to_vec(),
        "StreamSyncAvailability" => appt::StreamSyncAvailabilityRequest {
            request_id: request_id(),
            part: Some(appt::stream_sync_availability_request::Part::Header(
                appt::SyncAvailabilityHeader {
                    clinic_id: this,
                    window: Some(window()),
                    sync_version: 3,
                    ..Default::default()
                },
            )),
        }
        .encode_to_vec(),
        "GenerateAvailability" => appt::GenerateAvailabilityRequest {
            request_id: request_id(),
            clinic_id: this,
            window: Some(window()),
            sync_version: 4,
            ..Default::default()
        }
        .encode_to_vec(),
        "ListSlots" => appt::ListSlotsRequest {
            clinic_id: this,
            window: Some(window()),
            ..Default::default()
        }
        .encode_to_vec(),
        "FindSlots" => appt::FindSlotsRequest {
            modality: THERAPY,
            place: Some(appt::find_slots_request::Place::ClinicId(this)),
            range: Some(window()),
            ..Default::default()
        }
        .encode_to_vec(),
        "HoldSlot" => appt::HoldSlotRequest {
            request_id: request_id(),
            slot_id: s.slots[4].clone(),
            patient_id: s.patient.patient_id.clone(),
            ttl: None,
        }
        .encode_to_vec(),
        "ReleaseHold" => appt::ReleaseHoldRequest {
            request_id: request_id(),
            hold_id: s.hold.clone(),
        }
        .encode_to_vec(),
        "BookAppointment" => appt::BookAppointmentRequest {
            request_id: request_id(),
            target: Some(appt::book_appointment_request::Target::SlotId(
                s.slots[5].clone(),
            )),
            patient_id: s.patient.patient_id.clone(),
            ..Default::default()
        }
        .encode_to_vec(),
        "RescheduleAppointment" => appt::RescheduleAppointmentRequest {
            request_id: request_id(),
            appointment_id: appointment,
            target: Some(appt::reschedule_appointment_request::Target::SlotId(
                s.slots[4].clone(),
            )),
        }
        .encode_to_vec(),
        "CancelAppointment" => appt::CancelAppointmentRequest {
            request_id: request_id(),
            appointment_id: appointment,
            reason: appt::CancellationReason::PatientRequest as i32,
            note: String::new(),
        }
        .encode_to_vec(),
        "CheckInAppointment" => appt::CheckInAppointmentRequest {
            request_id: request_id(),
            appointment_id: appointment,
        }
        .encode_to_vec(),
        "CompleteAppointment" => appt::CompleteAppointmentRequest {
            request_id: request_id(),
            appointment_id: appointment,
            completion: Some(appt::Completion {
                modality: THERAPY,
                treatment_minutes: 53,
                ..Default::default()
            }),
        }
        .encode_to_vec(),
        "MarkNoShow" => appt::MarkNoShowRequest {
            request_id: request_id(),
            appointment_id: appointment,
        }
        .encode_to_vec(),
        "GetAppointment" => appt::GetAppointmentRequest {
            appointment_id: appointment,
        }
        .encode_to_vec(),
        "ListAppointments" => appt::ListAppointmentsRequest {
            clinic_id: this,
            ..Default::default()
        }
        .encode_to_vec(),
        "ListCoursePlans" => appt::ListCoursePlansRequest::default().encode_to_vec(),
        "CreateCourse" => appt::CreateCourseRequest {
            request_id: request_id(),
            patient_id: s.patient.patient_id.clone(),
            clinic_id: this,
            plan_code: "esketamine-adult".into(),
            start_date: Some(today_plus(4)),
            preferences: None,
        }
        .encode_to_vec(),
        "BookCourse" => appt::BookCourseRequest {
            request_id: request_id(),
            course_id: s.course.clone(),
            choices: Vec::new(),
        }
        .encode_to_vec(),
        "GetCourse" => appt::GetCourseRequest {
            course_id: s.course.clone(),
        }
        .encode_to_vec(),
        "BookIntegrationSession" => appt::BookIntegrationSessionRequest {
            request_id: request_id(),
            source_appointment_id: s.claimed.clone(),
            target: Some(appt::book_integration_session_request::Target::SlotId(
                s.slots[5].clone(),
            )),
        }
        .encode_to_vec(),
        "GetOutcomes" => appt::GetOutcomesRequest {
            clinic_id: this,
            period: Some(past()),
            ..Default::default()
        }
        .encode_to_vec(),
        "RegisterPatient" => appt::RegisterPatientRequest {
            request_id: request_id(),
            patient: Some(appt::Patient {
                registered_clinic_id: this,
                ..s.patient.clone()
            }),
        }
        .encode_to_vec(),
        "UpdatePatient" => appt::UpdatePatientRequest {
            request_id: request_id(),
            expected_version: s.patient.version,
            patient: Some(s.patient.clone()),
        }
        .encode_to_vec(),
        "GetPatient" => appt::GetPatientRequest {
            patient_id: s.patient.patient_id.clone(),
        }
        .encode_to_vec(),
        "ListPatients" => appt::ListPatientsRequest {
            clinic_id: this,
            ..Default::default()
        }
        .encode_to_vec(),
        "RecordIntake" => appt::RecordIntakeRequest {
            request_id: request_id(),
            intake: Some(appt::Intake {
                patient_id: s.patient.patient_id.clone(),
                clinic_id: this,
                diagnosis_codes: vec!["F33.1".into()],
                baseline_phq9: Some(appt::Phq9 {
                    total_score: 18,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
        .encode_to_vec(),
        "GetIntake" => appt::GetIntakeRequest {
            patient_id: s.patient.patient_id.clone(),
        }
        .encode_to_vec(),
        "UpsertPayer" => ins::UpsertPayerRequest {
            request_id: request_id(),
            payer: Some(ins::Payer {
                payer_id: "payer-new".into(),
                display_name: "New payer".into(),
                ..Default::default()
            }),
            expected_version: 0,
        }
        .encode_to_vec(),
        "GetPayer" => ins::GetPayerRequest {
            payer_id: THIS_PAYER.into(),
        }
        .encode_to_vec(),
        "ListPayers" => ins::ListPayersRequest::default().encode_to_vec(),
        "UpsertPlan" => ins::UpsertPlanRequest {
            request_id: request_id(),
            plan: Some(ins::Plan {
                plan_id: "plan-new".into(),
                payer_id: THIS_PAYER.into(),
                display_name: "New plan".into(),
                ..Default::default()
            }),
            expected_version: 0,
        }
        .encode_to_vec(),
        "GetPlan" => ins::GetPlanRequest {
            plan_id: THIS_PLAN.into(),
        }
        .encode_to_vec(),
        "ListPlans" => ins::ListPlansRequest {
            payer_id: THIS_PAYER.into(),
            ..Default::default()
        }
        .encode_to_vec(),
        "AddCoverage" => ins::AddCoverageRequest {
            request_id: request_id(),
            coverage: Some(ins::Coverage {
                coverage_id: String::new(),
                member_id: "MTX999999".into(),
                priority: ins::CoveragePriority::Secondary as i32,
                ..s.coverage.clone()
            }),
        }
        .encode_to_vec(),
        "UpdateCoverage" => ins::UpdateCoverageRequest {
            request_id: request_id(),
            expected_version: s.coverage.version,
            coverage: Some(ins::Coverage {
                group_number: "GRP-10".into(),
                ..s.coverage.clone()
            }),
        }
        .encode_to_vec(),
        "RemoveCoverage" => ins::RemoveCoverageRequest {
            request_id: request_id(),
            coverage_id: s.coverage.coverage_id.clone(),
        }
        .encode_to_vec(),
        "ListCoverages" => ins::ListCoveragesRequest {
            patient_id: s.patient.patient_id.clone(),
            ..Default::default()
        }
        .encode_to_vec(),
        "CheckEligibility" => ins::CheckEligibilityRequest {
            request_id: request_id(),
            coverage_id: s.coverage.coverage_id.clone(),
            service_date: Some(today_plus(2)),
            procedure_codes: vec!["90837".into()],
            bypass_cache: true,
        }
        .encode_to_vec(),
        "GetEligibilityCheck" => ins::GetEligibilityCheckRequest {
            check_id: s.check.check_id.clone(),
        }
        .encode_to_vec(),
        "RequestPriorAuthorization" => ins::RequestPriorAuthorizationRequest {
            request_id: request_id(),
            patient_id: s.patient.patient_id.clone(),
            coverage_id: s.coverage.coverage_id.clone(),
            clinic_id: this,
            provider_npi: s.provider.npi.clone(),
            services: vec![ins::RequestedService {
                procedure_code: "G2083".into(),
                units: 4,
            }],
            ..Default::default()
        }
        .encode_to_vec(),
        "GetPriorAuthorization" => ins::GetPriorAuthorizationRequest {
            prior_authorization_id: s.authorization.prior_authorization_id.clone(),
        }
        .encode_to_vec(),
        "ListPriorAuthorizations" => ins::ListPriorAuthorizationsRequest {
            clinic_id: this,
            ..Default::default()
        }
        .encode_to_vec(),
        "GetClaim" => ins::GetClaimRequest { claim_id: claim }.encode_to_vec(),
        "ListClaims" => ins::ListClaimsRequest {
            clinic_id: this,
            ..Default::default()
        }
        .encode_to_vec(),
        "SubmitClaim" => ins::SubmitClaimRequest {
            request_id: request_id(),
            claim_id: claim,
            submit_despite_issues: true,
        }
        .encode_to_vec(),
        "CorrectClaim" => ins::CorrectClaimRequest {
            request_id: request_id(),
            claim_id: claim,
            diagnosis_codes: vec!["F33.1".into()],
            reason: "diagnosis corrected".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        "AppealClaim" => ins::AppealClaimRequest {
            request_id: request_id(),
            claim_id: claim,
            reason: "medically necessary".into(),
            authorization_number: String::new(),
        }
        .encode_to_vec(),
        "VoidClaim" => ins::VoidClaimRequest {
            request_id: request_id(),
            claim_id: claim,
            reason: "entered in error".into(),
        }
        .encode_to_vec(),
        "GetSuperbill" => ins::GetSuperbillRequest {
            key: Some(ins::get_superbill_request::Key::AppointmentId(
                s.superbilled.clone(),
            )),
        }
        .encode_to_vec(),
        "GetArAgingReport" => ins::GetArAgingReportRequest {
            clinic_id: this,
            ..Default::default()
        }
        .encode_to_vec(),
        "GetDenialReport" => ins::GetDenialReportRequest {
            clinic_id: this,
            period: Some(past()),
            ..Default::default()
        }
        .encode_to_vec(),
        "GetDaysToPaymentReport" => ins::GetDaysToPaymentReportRequest {
            clinic_id: this,
            period: Some(past()),
            ..Default::default()
        }
        .encode_to_vec(),
        "StreamWork" => ins::StreamWorkRequest {
            payer_id: THIS_PAYER.into(),
            cursor: String::new(),
        }
        .encode_to_vec(),
        "AnswerEligibility" => ins::AnswerEligibilityRequest {
            request_id: request_id(),
            trace_number: s.check.trace_number.clone(),
            answer: Some(ins::EligibilityAnswer {
                active: true,
                copay: Some(usd(3_000)),
                deductible_remaining: Some(usd(0)),
                ..Default::default()
            }),
        }
        .encode_to_vec(),
        "DecidePriorAuthorization" => ins::DecidePriorAuthorizationRequest {
            request_id: request_id(),
            prior_authorization_id: s.authorization.prior_authorization_id.clone(),
            decision: Some(ins::decide_prior_authorization_request::Decision::Pend(
                ins::PriorAuthorizationPend {
                    reason: "records requested".into(),
                },
            )),
        }
        .encode_to_vec(),
        "AcknowledgeClaim" => ins::AcknowledgeClaimRequest {
            request_id: request_id(),
            claim_id: claim,
            result: Some(ins::acknowledge_claim_request::Result::Accepted(
                ins::ClaimAcceptance {
                    payer_claim_control_number: "PCN-1".into(),
                },
            )),
        }
        .encode_to_vec(),
        "PostRemittances" => ins::PostRemittancesRequest {
            request_id: request_id(),
            remittance: Some(ins::Remittance {
                remittance_id: format!("ERA-{}", &request_id()[..8]),
                payer_id: THIS_PAYER.into(),
                payment_date: Some(today_plus(0)),
                total_paid: Some(usd(0)),
                claim_payments: vec![ins::ClaimPayment {
                    claim_id: claim,
                    charge: s.claim.total_charge.clone(),
                    paid_amount: Some(usd(0)),
                    ..Default::default()
                }],
            }),
        }
        .encode_to_vec(),
        "ListNotifications" => notif::ListNotificationsRequest {
            filter: Some(notif::list_notifications_request::Filter::Recipient(
                notif::Recipient {
                    target: Some(notif::recipient::Target::ClinicId(this)),
                },
            )),
            ..Default::default()
        }
        .encode_to_vec(),
        "GetNotification" => notif::GetNotificationRequest {
            notification_id: s.notification.clone(),
        }
        .encode_to_vec(),
        "GetPreferences" => notif::GetPreferencesRequest {
            recipient: Some(patient_recipient(s)),
        }
        .encode_to_vec(),
        "SetPreferences" => notif::SetPreferencesRequest {
            request_id: request_id(),
            preferences: Some(notif::Preferences {
                recipient: Some(patient_recipient(s)),
                ..Default::default()
            }),
            expected_version: 0,
        }
        .encode_to_vec(),
        "RegisterWebhookEndpoint" => notif::RegisterWebhookEndpointRequest {
            request_id: request_id(),
            clinic_id: this,
            url: "https://hooks.clinic.example/other".into(),
            kinds: vec![notif::NotificationKind::AppointmentConfirmation as i32],
            description: String::new(),
        }
        .encode_to_vec(),
        "RotateWebhookSecret" => notif::RotateWebhookSecretRequest {
            request_id: request_id(),
            endpoint_id: s.endpoint.clone(),
            grace_period: None,
        }
        .encode_to_vec(),
        "RemoveWebhookEndpoint" => notif::RemoveWebhookEndpointRequest {
            request_id: request_id(),
            endpoint_id: s.endpoint.clone(),
        }
        .encode_to_vec(),
        "ListWebhookEndpoints" => notif::ListWebhookEndpointsRequest {
            clinic_id: this,
            ..Default::default()
        }
        .encode_to_vec(),
        "SendTestMessage" => notif::SendTestMessageRequest {
            request_id: request_id(),
            channel: notif::Channel::Webhook as i32,
            locale: common::Locale::EnUs as i32,
            target: Some(notif::send_test_message_request::Target::WebhookEndpointId(
                s.endpoint.clone(),
            )),
        }
        .encode_to_vec(),
        "ReceiveInboundSms" => notif::ReceiveInboundSmsRequest {
            request_id: request_id(),
            from_phone: "+13055550123".into(),
            to_phone: "+13055550100".into(),
            body: "STOP".into(),
            receive_time: None,
        }
        .encode_to_vec(),
        "GetEventBacklog" => ops::GetEventBacklogRequest::default().encode_to_vec(),
        "ListDeadLetters" => ops::ListDeadLettersRequest::default().encode_to_vec(),
        "RedriveDeadLetter" => ops::RedriveDeadLetterRequest {
            request_id: request_id(),
            event_id: uuid::Uuid::new_v4().to_string(),
            consumer: "notifications-appointments".into(),
        }
        .encode_to_vec(),
        other => panic!("no request for {other}"),
    }
}

fn patient_recipient(s: &Scene) -> notif::Recipient {
    notif::Recipient {
        target: Some(notif::recipient::Target::PatientId(
            s.patient.patient_id.clone(),
        )),
    }
}

fn outcome_of(result: &Result<Option<Vec<u8>>, tonic::Status>) -> Outcome {
    match result.as_ref().map_err(|s| s.code()) {
        Err(Code::Unauthenticated) => U,
        Err(Code::PermissionDenied) => D,
        Err(Code::NotFound) => H,
        _ => A,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_every_kind_of_caller_as_the_table_says() {
    let network = Network::start(NetworkOptions::default())
        .await
        .expect("the network");
    let scene = scene(&network).await;
    let methods = raw::methods();
    let described: Vec<&str> = methods.iter().map(|m| m.path.as_str()).collect();
    let tabled: Vec<&str> = TABLE.iter().map(|(path, _)| *path).collect();
    let untabled: Vec<&&str> = described.iter().filter(|p| !tabled.contains(p)).collect();
    let stale: Vec<&&str> = tabled.iter().filter(|p| !described.contains(p)).collect();
    assert!(
        untabled.is_empty(),
        "methods without a table entry: {untabled:?}"
    );
    assert!(
        stale.is_empty(),
        "table entries without a method: {stale:?}"
    );

    let other = scene.other_clinic.as_str();
    let tokens: [Option<String>; 6] = [
        None,
        Some(network.token(Role::PartnerClinic, &[&scene.this.clinic_id], None)),
        Some(network.token(Role::PartnerClinic, &[other], None)),
        Some(network.token(Role::Integrator, &[], Some(THIS_PAYER))),
        Some(network.token(Role::Integrator, &[], Some(OTHER_PAYER))),
        Some(network.ops_token()),
    ];
    // Refusals change nothing, so every refused cell runs before any allowed one changes state.
    let cells: Vec<(&Method, &str, usize, Outcome)> = methods
        .iter()
        .flat_map(|m| {
            let row = TABLE.iter().find(|(p, _)| *p == m.path).expect("a row").1;
            hosts(&m.path)
                .into_iter()
                .flat_map(move |host| (0..CALLERS.len()).map(move |c| (m, host, c, row[c])))
        })
        .collect();
    let (refused, allowed): (Vec<_>, Vec<_>) = cells.iter().partition(|cell| cell.3 != A);
    let mut channels = std::collections::HashMap::new();
    for name in SERVICES {
        channels.insert(name, network.channel(name).await);
    }
    let mut mismatches = Vec::new();
    for (method, host, caller, expected) in refused.iter().chain(allowed.iter()) {
        let body = request(&method.path, &scene);
        let result = raw::call(
            channels[host].clone(),
            method,
            body,
            tokens[*caller].as_deref(),
        )
        .await;
        let got = outcome_of(&result);
        if *expected != got {
            mismatches.push(format!(
                "{} on {host} by {}: expected {expected:?}, got {:?}",
                method.path,
                CALLERS[*caller],
                result.err().map(|s| (s.code(), s.message().to_owned()))
            ));
        }
    }
    println!("authorization matrix: {} cells", cells.len());
    network.stop().await;
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
