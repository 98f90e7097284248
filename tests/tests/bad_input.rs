//! Invalid requests across the four APIs, from one table: out-of-range values, empty and over-long
//! strings, invalid codes, times backwards, unknown ids, unknown enum values, messages over the
//! servers' size limit and malformed protobuf bytes sent raw. Each gets its documented status
//! code (naming the offending field where there is one), and no table of any service's database
//! gains or loses a row.

use clinicnet_proto::{
    appointments::v1 as appt,
    common::v1::{self as common, Modality},
    directory::v1 as dir,
    insurance::v1 as ins,
    notifications::v1 as notif,
};
use prost::Message;
use std::{collections::BTreeMap, time::Duration};
use system_tests::{
    fixtures,
    network::{Network, NetworkOptions, SERVICES, authorized, eventually},
    raw,
};
use tonic::Code;

/// One invalid request and what it must get.
struct Case {
    what: &'static str,
    method: &'static str,
    body: Vec<u8>,
    code: Code,
    /// A field the error names.
    field: Option<&'static str>,
}

fn invalid(
    what: &'static str,
    method: &'static str,
    body: impl Message,
    field: &'static str,
) -> Case {
    Case {
        what,
        method,
        body: body.encode_to_vec(),
        code: Code::InvalidArgument,
        field: Some(field),
    }
}

fn unknown(what: &'static str, method: &'static str, body: impl Message) -> Case {
    Case {
        what,
        method,
        body: body.encode_to_vec(),
        code: Code::NotFound,
        field: None,
    }
}

fn raw_bytes(what: &'static str, method: &'static str, body: Vec<u8>, code: Code) -> Case {
    Case {
        what,
        method,
        body,
        code,
        field: None,
    }
}

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn some_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// Starting at `from`, ending an hour earlier.
fn backwards(from: i64) -> Option<common::TimeInterval> {
    Some(common::TimeInterval {
        start_time: ts(from),
        end_time: ts(from - 3600),
    })
}

fn day(year: i32, month: i32, day: i32) -> Option<common::Date> {
    Some(common::Date { year, month, day })
}

fn usd(amount_cents: i64) -> Option<common::Money> {
    Some(common::Money {
        currency_code: "USD".into(),
        amount_cents,
    })
}

/// The path of a method of one of the contracts' services.
macro_rules! rpc {
    (DIR, $method:literal) => {
        concat!("/clinicnet.directory.v1.DirectoryService/", $method)
    };
    (APPT, $method:literal) => {
        concat!("/clinicnet.appointments.v1.AppointmentsService/", $method)
    };
    (PAT, $method:literal) => {
        concat!("/clinicnet.appointments.v1.PatientsService/", $method)
    };
    (INS, $method:literal) => {
        concat!("/clinicnet.insurance.v1.InsuranceService/", $method)
    };
    (INT, $method:literal) => {
        concat!("/clinicnet.insurance.v1.IntegratorService/", $method)
    };
    (NOTIF, $method:literal) => {
        concat!("/clinicnet.notifications.v1.NotificationsService/", $method)
    };
}

fn directory_cases(clinic: &dir::Clinic) -> Vec<Case> {
    let create = |edit: fn(&mut dir::Clinic)| {
        let mut c = fixtures::clinic("Bad input clinic");
        edit(&mut c);
        dir::CreateClinicRequest {
            request_id: rid(),
            clinic: Some(c),
        }
    };
    let provider = |edit: fn(&mut dir::Provider)| {
        let mut p = fixtures::provider(&[]);
        edit(&mut p);
        dir::CreateProviderRequest {
            request_id: rid(),
            provider: Some(p),
        }
    };
    let create_clinic = rpc!(DIR, "CreateClinic");
    vec![
        invalid(
            "clinic missing",
            create_clinic,
            dir::CreateClinicRequest {
                request_id: rid(),
                clinic: None,
            },
            "clinic",
        ),
        invalid(
            "empty clinic name",
            create_clinic,
            create(|c| c.display_name.clear()),
            "display_name",
        ),
        invalid(
            "clinic name of 10,000 characters",
            create_clinic,
            create(|c| c.display_name = "x".repeat(10_000)),
            "display_name",
        ),
        invalid(
            "NPI with a wrong check digit",
            create_clinic,
            create(|c| c.npi = "1234567890".into()),
            "npi",
        ),
        invalid(
            "unknown time zone",
            create_clinic,
            create(|c| c.time_zone = "Mars/Olympus".into()),
            "time_zone",
        ),
        invalid(
            "latitude out of range",
            create_clinic,
            create(|c| c.locations[0].coordinates.as_mut().unwrap().latitude = 123.0),
            "latitude",
        ),
        invalid(
            "opening hours backwards",
            create_clinic,
            create(|c| {
                c.weekly_hours = Some(dir::WeeklyHours {
                    days: vec![dir::DayHours {
                        day_of_week: 1,
                        intervals: vec![fixtures::range((17, 0), (9, 0))],
                    }],
                })
            }),
            "weekly_hours",
        ),
        invalid(
            "unknown modality number",
            create_clinic,
            create(|c| c.modalities.push(99)),
            "modalities",
        ),
        invalid(
            "chair of capacity 0",
            rpc!(DIR, "UpsertChair"),
            dir::UpsertChairRequest {
                request_id: rid(),
                clinic_id: clinic.clinic_id.clone(),
                expected_version: clinic.version,
                chair: Some(dir::Chair {
                    location_id: "main".into(),
                    display_name: "Room".into(),
                    modalities: vec![Modality::IvKetamine as i32],
                    capacity: 0,
                    ..Default::default()
                }),
            },
            "capacity",
        ),
        invalid(
            "clinic id not an id",
            rpc!(DIR, "GetClinic"),
            dir::GetClinicRequest {
                clinic_id: "clinic-1".into(),
            },
            "clinic_id",
        ),
        invalid(
            "empty clinic id",
            rpc!(DIR, "GetClinic"),
            dir::GetClinicRequest {
                clinic_id: String::new(),
            },
            "clinic_id",
        ),
        unknown(
            "unknown clinic",
            rpc!(DIR, "GetClinic"),
            dir::GetClinicRequest {
                clinic_id: some_id(),
            },
        ),
        unknown(
            "unknown chair",
            rpc!(DIR, "RemoveChair"),
            dir::RemoveChairRequest {
                request_id: rid(),
                clinic_id: clinic.clinic_id.clone(),
                chair_id: "chair-nowhere".into(),
                expected_version: clinic.version,
            },
        ),
        unknown(
            "unknown provider",
            rpc!(DIR, "GetProvider"),
            dir::GetProviderRequest {
                provider_id: some_id(),
            },
        ),
        invalid(
            "provider NPI too short",
            rpc!(DIR, "CreateProvider"),
            provider(|p| p.npi = "123".into()),
            "npi",
        ),
        invalid(
            "provider language not a code",
            rpc!(DIR, "CreateProvider"),
            provider(|p| p.languages = vec!["klingon-language".into()]),
            "languages",
        ),
        invalid(
            "negative page size",
            rpc!(DIR, "ListClinics"),
            dir::ListClinicsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        invalid(
            "forged page token",
            rpc!(DIR, "ListClinics"),
            dir::ListClinicsRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
            "page_token",
        ),
    ]
}

fn appointments_cases(clinic: &dir::Clinic) -> Vec<Case> {
    let clinic_id = clinic.clinic_id.as_str();
    let now = jiff::Timestamp::now().as_second();
    let patient = |edit: fn(&mut appt::Patient)| {
        let mut p = appt::Patient {
            name: Some(common::PersonName {
                given_name: "Ana".into(),
                middle_name: String::new(),
                family_name: "Invalid".into(),
            }),
            birth_date: day(1980, 5, 1),
            registered_clinic_id: String::new(),
            ..Default::default()
        };
        edit(&mut p);
        appt::RegisterPatientRequest {
            request_id: rid(),
            patient: Some(p),
        }
    };
    let with_clinic = |clinic_id: &str, mut request: appt::RegisterPatientRequest| {
        request
            .patient
            .as_mut()
            .expect("a patient")
            .registered_clinic_id = clinic_id.into();
        request
    };
    let intake = |edit: fn(&mut appt::Intake)| {
        let mut i = appt::Intake {
            patient_id: some_id(),
            clinic_id: "clinic-nowhere".into(),
            diagnosis_codes: vec!["F33.2".into()],
            baseline_phq9: Some(appt::Phq9 {
                total_score: 20,
                ..Default::default()
            }),
            ..Default::default()
        };
        edit(&mut i);
        appt::RecordIntakeRequest {
            request_id: rid(),
            intake: Some(i),
        }
    };
    let sync = |window, slots| appt::SyncAvailabilityRequest {
        request_id: rid(),
        clinic_id: clinic_id.into(),
        window,
        slots,
        sync_version: 1,
    };
    let week = Some(common::TimeInterval {
        start_time: ts(now + 86_400),
        end_time: ts(now + 8 * 86_400),
    });
    let slot_backwards = appt::AvailabilitySlot {
        chair_id: clinic.chairs[0].chair_id.clone(),
        modality: Modality::IvKetamine as i32,
        start_time: ts(now + 2 * 86_400),
        end_time: ts(now + 2 * 86_400 - 600),
        ..Default::default()
    };
    let sync_path = rpc!(APPT, "SyncAvailability");
    let register = rpc!(PAT, "RegisterPatient");
    vec![
        invalid(
            "sync window backwards",
            sync_path,
            sync(backwards(now + 86_400), vec![]),
            "window",
        ),
        invalid(
            "slot ending before it starts",
            sync_path,
            sync(week, vec![slot_backwards]),
            "slots[0]",
        ),
        unknown(
            "sync for an unknown clinic",
            sync_path,
            appt::SyncAvailabilityRequest {
                clinic_id: "clinic-nowhere".into(),
                ..sync(week, vec![])
            },
        ),
        invalid(
            "negative page size of slots",
            rpc!(APPT, "ListSlots"),
            appt::ListSlotsRequest {
                page_size: -5,
                clinic_id: clinic_id.into(),
                window: week,
                ..Default::default()
            },
            "page_size",
        ),
        invalid(
            "finding slots of no modality",
            rpc!(APPT, "FindSlots"),
            appt::FindSlotsRequest {
                place: Some(appt::find_slots_request::Place::ClinicId(clinic_id.into())),
                range: week,
                ..Default::default()
            },
            "modality",
        ),
        invalid(
            "finding slots near latitude 200",
            rpc!(APPT, "FindSlots"),
            appt::FindSlotsRequest {
                modality: Modality::IvKetamine as i32,
                place: Some(appt::find_slots_request::Place::Near(appt::NearPoint {
                    point: Some(common::GeoPoint {
                        latitude: 200.0,
                        longitude: 0.0,
                    }),
                    radius_km: 10.0,
                })),
                range: week,
                ..Default::default()
            },
            "near",
        ),
        invalid(
            "slot id not an id",
            rpc!(APPT, "HoldSlot"),
            appt::HoldSlotRequest {
                request_id: rid(),
                slot_id: "slot-1".into(),
                patient_id: some_id(),
                ttl: None,
            },
            "slot_id",
        ),
        invalid(
            "negative hold time",
            rpc!(APPT, "HoldSlot"),
            appt::HoldSlotRequest {
                request_id: rid(),
                slot_id: some_id(),
                patient_id: some_id(),
                ttl: Some(prost_types::Duration {
                    seconds: -60,
                    nanos: 0,
                }),
            },
            "ttl",
        ),
        unknown(
            "holding an unknown slot",
            rpc!(APPT, "HoldSlot"),
            appt::HoldSlotRequest {
                request_id: rid(),
                slot_id: some_id(),
                patient_id: some_id(),
                ttl: None,
            },
        ),
        invalid(
            "booking without a slot or hold",
            rpc!(APPT, "BookAppointment"),
            appt::BookAppointmentRequest {
                request_id: rid(),
                patient_id: some_id(),
                ..Default::default()
            },
            "target",
        ),
        invalid(
            "hold id not an id",
            rpc!(APPT, "BookAppointment"),
            appt::BookAppointmentRequest {
                request_id: rid(),
                target: Some(appt::book_appointment_request::Target::HoldId(
                    "hold-1".into(),
                )),
                patient_id: some_id(),
                ..Default::default()
            },
            "hold_id",
        ),
        unknown(
            "cancelling an unknown visit",
            rpc!(APPT, "CancelAppointment"),
            appt::CancelAppointmentRequest {
                request_id: rid(),
                appointment_id: some_id(),
                reason: appt::CancellationReason::PatientRequest as i32,
                note: String::new(),
            },
        ),
        invalid(
            "cancellation note of 100,000 characters",
            rpc!(APPT, "CancelAppointment"),
            appt::CancelAppointmentRequest {
                request_id: rid(),
                appointment_id: some_id(),
                reason: appt::CancellationReason::PatientRequest as i32,
                note: "n".repeat(100_000),
            },
            "note",
        ),
        invalid(
            "unknown cancellation reason",
            rpc!(APPT, "CancelAppointment"),
            appt::CancelAppointmentRequest {
                request_id: rid(),
                appointment_id: some_id(),
                reason: 99,
                note: String::new(),
            },
            "reason",
        ),
        unknown(
            "completing an unknown visit",
            rpc!(APPT, "CompleteAppointment"),
            appt::CompleteAppointmentRequest {
                request_id: rid(),
                appointment_id: some_id(),
                completion: Some(appt::Completion {
                    modality: Modality::Psychotherapy as i32,
                    treatment_minutes: 53,
                    ..Default::default()
                }),
            },
        ),
        invalid(
            "empty appointment id",
            rpc!(APPT, "GetAppointment"),
            appt::GetAppointmentRequest {
                appointment_id: String::new(),
            },
            "appointment_id",
        ),
        invalid(
            "visits starting within a backwards interval",
            rpc!(APPT, "ListAppointments"),
            appt::ListAppointmentsRequest {
                clinic_id: clinic_id.into(),
                starting_within: backwards(now),
                ..Default::default()
            },
            "starting_within",
        ),
        invalid(
            "outcomes over a backwards period",
            rpc!(APPT, "GetOutcomes"),
            appt::GetOutcomesRequest {
                clinic_id: clinic_id.into(),
                period: backwards(now),
                ..Default::default()
            },
            "period",
        ),
        unknown(
            "course of an unknown plan",
            rpc!(APPT, "CreateCourse"),
            appt::CreateCourseRequest {
                request_id: rid(),
                patient_id: some_id(),
                clinic_id: clinic_id.into(),
                plan_code: "no-such-plan".into(),
                start_date: Some(fixtures::date(fixtures::days_from_today(3))),
                preferences: None,
            },
        ),
        invalid(
            "course starting in month 13",
            rpc!(APPT, "CreateCourse"),
            appt::CreateCourseRequest {
                request_id: rid(),
                patient_id: some_id(),
                clinic_id: clinic_id.into(),
                plan_code: "esketamine-adult".into(),
                start_date: day(2027, 13, 1),
                preferences: None,
            },
            "start_date",
        ),
        invalid(
            "patient born on February 30",
            register,
            with_clinic(clinic_id, patient(|p| p.birth_date = day(1990, 2, 30))),
            "birth_date",
        ),
        invalid(
            "patient born next year",
            register,
            with_clinic(clinic_id, patient(|p| p.birth_date = day(2100, 1, 1))),
            "birth_date",
        ),
        invalid(
            "patient without a name",
            register,
            with_clinic(clinic_id, patient(|p| p.name = None)),
            "name",
        ),
        invalid(
            "patient email not an address",
            register,
            with_clinic(
                clinic_id,
                patient(|p| {
                    p.contacts = Some(appt::PatientContacts {
                        email: "not-an-email".into(),
                        email_consent: true,
                        ..Default::default()
                    })
                }),
            ),
            "email",
        ),
        invalid(
            "patient phone of two digits",
            register,
            with_clinic(
                clinic_id,
                patient(|p| {
                    p.contacts = Some(appt::PatientContacts {
                        mobile_phone: "12".into(),
                        sms_consent: true,
                        ..Default::default()
                    })
                }),
            ),
            "mobile_phone",
        ),
        unknown(
            "patient of an unknown clinic",
            register,
            with_clinic("clinic-nowhere", patient(|_| {})),
        ),
        invalid(
            "PHQ-9 total of 28",
            rpc!(PAT, "RecordIntake"),
            intake(|i| {
                i.baseline_phq9 = Some(appt::Phq9 {
                    total_score: 28,
                    ..Default::default()
                })
            }),
            "phq9",
        ),
        invalid(
            "diagnosis not an ICD-10 code",
            rpc!(PAT, "RecordIntake"),
            intake(|i| i.diagnosis_codes = vec!["XYZ".into()]),
            "diagnosis_codes",
        ),
    ]
}

fn insurance_cases() -> Vec<Case> {
    let plan = |edit: fn(&mut ins::Plan)| {
        let mut p = ins::Plan {
            plan_id: "plan-bad".into(),
            payer_id: "payer-bad".into(),
            display_name: "Bad plan".into(),
            authorization_validity_days: 180,
            timely_filing_days: 90,
            ..Default::default()
        };
        edit(&mut p);
        ins::UpsertPlanRequest {
            request_id: rid(),
            plan: Some(p),
            expected_version: 0,
        }
    };
    let fee = |code: &str, currency: &str| ins::FeeScheduleEntry {
        procedure_code: code.into(),
        unit_charge: Some(common::Money {
            currency_code: currency.into(),
            amount_cents: 10_000,
        }),
        effective_from: day(2025, 1, 1),
        effective_until: None,
    };
    let remittance = |edit: fn(&mut ins::Remittance)| {
        let mut r = ins::Remittance {
            remittance_id: "ERA-1".into(),
            payer_id: "payer-bad".into(),
            payment_date: day(2026, 3, 2),
            total_paid: usd(0),
            claim_payments: vec![ins::ClaimPayment {
                claim_id: some_id(),
                charge: usd(100),
                paid_amount: usd(0),
                ..Default::default()
            }],
        };
        edit(&mut r);
        ins::PostRemittancesRequest {
            request_id: rid(),
            remittance: Some(r),
        }
    };
    let coverage = ins::Coverage {
        patient_id: some_id(),
        payer_id: "payer-bad".into(),
        plan_id: "plan-bad".into(),
        member_id: "M1".into(),
        relationship: ins::SubscriberRelationship::Self_ as i32,
        effective_from: day(2026, 1, 1),
        priority: ins::CoveragePriority::Primary as i32,
        ..Default::default()
    };
    let upsert_plan = rpc!(INS, "UpsertPlan");
    let post = rpc!(INT, "PostRemittances");
    vec![
        invalid(
            "payer id with spaces and capitals",
            rpc!(INS, "UpsertPayer"),
            ins::UpsertPayerRequest {
                request_id: rid(),
                payer: Some(ins::Payer {
                    payer_id: "Bad Payer!".into(),
                    display_name: "Bad".into(),
                    ..Default::default()
                }),
                expected_version: 0,
            },
            "payer_id",
        ),
        invalid(
            "timely filing of 0 days",
            upsert_plan,
            plan(|p| p.timely_filing_days = 0),
            "timely_filing_days",
        ),
        invalid(
            "fee in euros",
            upsert_plan,
            {
                let mut request = plan(|_| {});
                request.plan.as_mut().expect("a plan").fee_schedule = vec![fee("90837", "EUR")];
                request
            },
            "currency_code",
        ),
        invalid(
            "fee for a code that is no code",
            upsert_plan,
            {
                let mut request = plan(|_| {});
                request.plan.as_mut().expect("a plan").fee_schedule =
                    vec![fee("not a code", "USD")];
                request
            },
            "procedure_code",
        ),
        unknown(
            "coverage of an unknown patient",
            rpc!(INS, "AddCoverage"),
            ins::AddCoverageRequest {
                request_id: rid(),
                coverage: Some(coverage.clone()),
            },
        ),
        invalid(
            "coverage ending before it starts",
            rpc!(INS, "AddCoverage"),
            ins::AddCoverageRequest {
                request_id: rid(),
                coverage: Some(ins::Coverage {
                    effective_until: day(2025, 6, 1),
                    ..coverage
                }),
            },
            "effective_until",
        ),
        invalid(
            "eligibility for eleven codes",
            rpc!(INS, "CheckEligibility"),
            ins::CheckEligibilityRequest {
                request_id: rid(),
                coverage_id: some_id(),
                service_date: day(2026, 3, 2),
                procedure_codes: vec!["90837".into(); 11],
                bypass_cache: false,
            },
            "procedure_codes",
        ),
        unknown(
            "eligibility of an unknown coverage",
            rpc!(INS, "CheckEligibility"),
            ins::CheckEligibilityRequest {
                request_id: rid(),
                coverage_id: some_id(),
                service_date: day(2026, 3, 2),
                procedure_codes: vec!["90837".into()],
                bypass_cache: false,
            },
        ),
        invalid(
            "claim id not an id",
            rpc!(INS, "GetClaim"),
            ins::GetClaimRequest {
                claim_id: "claim-1".into(),
            },
            "claim_id",
        ),
        unknown(
            "unknown claim",
            rpc!(INS, "GetClaim"),
            ins::GetClaimRequest {
                claim_id: some_id(),
            },
        ),
        invalid(
            "claims served from after to",
            rpc!(INS, "ListClaims"),
            ins::ListClaimsRequest {
                service_date_from: day(2026, 3, 2),
                service_date_to: day(2026, 3, 1),
                ..Default::default()
            },
            "service_date",
        ),
        invalid(
            "denials over a backwards period",
            rpc!(INS, "GetDenialReport"),
            ins::GetDenialReportRequest {
                period: backwards(jiff::Timestamp::now().as_second()),
                ..Default::default()
            },
            "period",
        ),
        invalid(
            "prior authorization for 0 units",
            rpc!(INS, "RequestPriorAuthorization"),
            ins::RequestPriorAuthorizationRequest {
                request_id: rid(),
                patient_id: some_id(),
                coverage_id: some_id(),
                clinic_id: "clinic-x".into(),
                provider_npi: fixtures::npi(),
                services: vec![ins::RequestedService {
                    procedure_code: "G2082".into(),
                    units: 0,
                }],
                ..Default::default()
            },
            "units",
        ),
        invalid(
            "remittance without claim payments",
            post,
            remittance(|r| r.claim_payments.clear()),
            "claim_payments",
        ),
        invalid(
            "remittance paying a negative total",
            post,
            remittance(|r| r.total_paid = usd(-100)),
            "total_paid",
        ),
        unknown(
            "eligibility answer to an unknown trace",
            rpc!(INT, "AnswerEligibility"),
            ins::AnswerEligibilityRequest {
                request_id: rid(),
                trace_number: "TRN-NOWHERE".into(),
                answer: Some(ins::EligibilityAnswer {
                    active: true,
                    copay: usd(0),
                    deductible_remaining: usd(0),
                    ..Default::default()
                }),
            },
        ),
        invalid(
            "decision without a decision",
            rpc!(INT, "DecidePriorAuthorization"),
            ins::DecidePriorAuthorizationRequest {
                request_id: rid(),
                prior_authorization_id: some_id(),
                decision: None,
            },
            "decision",
        ),
    ]
}

fn notifications_cases(clinic_id: &str) -> Vec<Case> {
    let endpoint = |url: String, kinds: Vec<i32>| notif::RegisterWebhookEndpointRequest {
        request_id: rid(),
        clinic_id: clinic_id.into(),
        url,
        kinds,
        description: String::new(),
    };
    let confirmation = || vec![notif::NotificationKind::AppointmentConfirmation as i32];
    let register = rpc!(NOTIF, "RegisterWebhookEndpoint");
    vec![
        invalid(
            "webhook over plain http",
            register,
            endpoint("http://hooks.clinic.example/x".into(), confirmation()),
            "url",
        ),
        invalid(
            "webhook URL of 3,000 characters",
            register,
            endpoint(
                format!("https://hooks.clinic.example/{}", "x".repeat(3_000)),
                confirmation(),
            ),
            "url",
        ),
        invalid(
            "unknown notification kind",
            register,
            endpoint("https://hooks.clinic.example/x".into(), vec![99]),
            "kinds[0]",
        ),
        invalid(
            "test message on no channel",
            rpc!(NOTIF, "SendTestMessage"),
            notif::SendTestMessageRequest {
                request_id: rid(),
                channel: 0,
                locale: common::Locale::EnUs as i32,
                target: Some(notif::send_test_message_request::Target::ClinicId(
                    clinic_id.into(),
                )),
            },
            "channel",
        ),
        unknown(
            "unknown notification",
            rpc!(NOTIF, "GetNotification"),
            notif::GetNotificationRequest {
                notification_id: some_id(),
            },
        ),
        invalid(
            "preferences of nobody",
            rpc!(NOTIF, "SetPreferences"),
            notif::SetPreferencesRequest {
                request_id: rid(),
                preferences: Some(notif::Preferences::default()),
                expected_version: 0,
            },
            "recipient",
        ),
        invalid(
            "negative grace period",
            rpc!(NOTIF, "RotateWebhookSecret"),
            notif::RotateWebhookSecretRequest {
                request_id: rid(),
                endpoint_id: some_id(),
                grace_period: Some(prost_types::Duration {
                    seconds: -1,
                    nanos: 0,
                }),
            },
            "grace_period",
        ),
        invalid(
            "inbound SMS from no number",
            rpc!(NOTIF, "ReceiveInboundSms"),
            notif::ReceiveInboundSmsRequest {
                request_id: rid(),
                from_phone: "abc".into(),
                to_phone: "+13055550100".into(),
                body: "STOP".into(),
                receive_time: None,
            },
            "from_phone",
        ),
    ]
}

/// Bytes no protobuf decoder accepts, and messages over the 4 MiB default limit, on every service.
fn wire_cases() -> Vec<Case> {
    let methods = [
        rpc!(DIR, "GetClinic"),
        rpc!(PAT, "GetPatient"),
        rpc!(INS, "GetClaim"),
        rpc!(NOTIF, "GetNotification"),
    ];
    let mut cases = Vec::new();
    for method in methods {
        // Field 1 announced as a 127-byte string, then only three bytes.
        cases.push(raw_bytes(
            "a truncated string",
            method,
            vec![0x0a, 0x7f, 0x61, 0x62, 0x63],
            Code::Internal,
        ));
        // Field 1 with wire type 7, which does not exist.
        cases.push(raw_bytes(
            "an invalid wire type",
            method,
            vec![0x0f, 0x01],
            Code::Internal,
        ));
        cases.push(raw_bytes(
            "a 5 MiB message",
            method,
            vec![0x0a; 5 * 1024 * 1024],
            Code::OutOfRange,
        ));
    }
    cases
}

/// Rows in every table of every service's public schema.
async fn row_counts(network: &Network) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for service in SERVICES {
        let pool = network.database(service).pool();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
              WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .expect("the tables");
        for table in tables {
            let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{table}\""))
                .fetch_one(pool)
                .await
                .expect("a count");
            counts.insert(format!("{service}.{table}"), count);
        }
    }
    counts
}

/// A clinic the invalid requests can name, known to appointments.
async fn clinic(network: &Network) -> dir::Clinic {
    let ops = network.ops_token();
    let mut directory = dir::directory_service_client::DirectoryServiceClient::new(
        network.channel("directory").await,
    );
    let request = dir::CreateClinicRequest {
        request_id: rid(),
        clinic: Some(fixtures::clinic("Valid clinic")),
    };
    let created = directory.create_clinic(authorized(request, &ops)).await;
    let clinic = created
        .expect("a clinic")
        .into_inner()
        .clinic
        .expect("the clinic");
    let pool = network.database("appointments").pool();
    eventually(
        "appointments to know the clinic",
        Duration::from_secs(60),
        || async {
            let known: i64 = sqlx::query_scalar("SELECT count(*) FROM clinics")
                .fetch_one(pool)
                .await
                .ok()?;
            (known == 1).then_some(())
        },
    )
    .await;
    clinic
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_get_their_status_and_change_no_row() {
    let network = Network::start(NetworkOptions::default())
        .await
        .expect("the network");
    let clinic = clinic(&network).await;
    let cases: Vec<Case> = [
        directory_cases(&clinic),
        appointments_cases(&clinic),
        insurance_cases(),
        notifications_cases(&clinic.clinic_id),
        wire_cases(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let methods = raw::methods();
    let ops = network.ops_token();
    let before = row_counts(&network).await;
    let mut wrong = Vec::new();
    for case in &cases {
        let method = methods
            .iter()
            .find(|m| m.path == case.method)
            .expect("a method");
        let service = case.method.split('.').nth(1).expect("a package");
        let result = raw::call(
            network.channel(service).await,
            method,
            case.body.clone(),
            Some(&ops),
        )
        .await;
        let status = match result {
            Ok(_) => {
                wrong.push(format!("{} ({}): accepted", case.what, case.method));
                continue;
            }
            Err(status) => status,
        };
        let names_field = case.field.is_none_or(|f| status.message().contains(f));
        if status.code() != case.code || !names_field {
            wrong.push(format!(
                "{} ({}): expected {:?} naming {:?}, got {:?} {:?}",
                case.what,
                case.method,
                case.code,
                case.field,
                status.code(),
                status.message()
            ));
        }
    }
    let after = row_counts(&network).await;
    let changed: Vec<String> = after
        .iter()
        .filter(|(table, count)| before.get(*table) != Some(count))
        .map(|(table, count)| format!("{table}: {:?} → {count}", before.get(table)))
        .collect();
    println!(
        "bad input: {} invalid requests over {} tables",
        cases.len(),
        before.len()
    );
    network.stop().await;
    assert!(cases.len() >= 60, "at least 60 cases");
    assert!(
        wrong.is_empty(),
        "{} wrong answers:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(
        changed.is_empty(),
        "row counts changed:\n{}",
        changed.join("\n")
    );
}
