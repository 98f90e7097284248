//! Whole patient journeys across the four real services, on one network with its SMTP server, SMS
//! provider, webhook receiver and OTLP trace receiver: an insured esketamine course (intake, prior
//! authorization, induction sessions, completions with PHQ-9, claims G2082/G2083, remittance,
//! patient-responsibility notice), a self-pay IV ketamine course ending in a superbill, and the one
//! trace a booking leaves across appointments, the bus, notifications and insurance.

use std::time::Duration;

use clinicnet_proto::{
    appointments::v1::{
        self as apt, appointments_service_client::AppointmentsServiceClient,
        patients_service_client::PatientsServiceClient,
    },
    common::v1::{self as common, AntidepressantClass, AntidepressantTrial, Locale, Modality},
    directory::v1::{self as dir, directory_service_client::DirectoryServiceClient},
    insurance::v1::{
        self as ins, decide_prior_authorization_request::Decision,
        insurance_service_client::InsuranceServiceClient,
        integrator_service_client::IntegratorServiceClient, work_item::Item,
    },
    notifications::v1::{
        self as ntf, Channel, NotificationKind, NotificationStatus,
        notifications_service_client::NotificationsServiceClient,
    },
};
use jiff::{civil::Date, tz::TimeZone};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use platform::auth::Role;
use system_tests::{
    fixtures,
    network::{Network, NetworkOptions, SERVICES, authorized, eventually},
    otlp::ReceivedSpan,
};
use tonic::{Code, Status, transport::Channel as GrpcChannel};
use uuid::Uuid;

const PAYER: &str = "suncoast-health";
const PLAN: &str = "suncoast-ppo";
const ZONE: &str = "America/New_York";
/// How long any asynchronous step (an event crossing the bus, a delivery) may take.
const WAIT: Duration = Duration::from_secs(60);
/// The plan's fee schedule, cents per unit.
const PLAN_FEES: [(&str, i64); 3] = [("G2082", 90_651), ("G2083", 135_600), ("J0013", 1_500)];
/// The self-pay cash prices, cents per unit.
const CASH_FEES: [(&str, i64); 3] = [("96365", 40_000), ("96366", 15_000), ("J3490", 5_000)];

fn rid() -> String {
    Uuid::new_v4().to_string()
}

fn ts(at: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.as_second(),
        nanos: 0,
    }
}

fn usd(cents: i64) -> common::Money {
    common::Money {
        currency_code: "USD".into(),
        amount_cents: cents,
    }
}

fn to_date(d: &common::Date) -> Date {
    Date::new(d.year as i16, d.month as i8, d.day as i8).expect("a date")
}

/// 14:00 New York time on `date`.
fn afternoon(date: Date) -> jiff::Timestamp {
    let zone = TimeZone::get(ZONE).expect("zone");
    zone.to_zoned_datetime(date.to_datetime(jiff::civil::time(14, 0, 0, 0)))
        .expect("a local time")
        .timestamp()
}

/// Whether `status` is a failed precondition or an unknown entity: what a service answers while
/// the event that tells it about the entity is still on the bus.
fn not_known_yet(status: &Status) -> bool {
    matches!(status.code(), Code::NotFound | Code::FailedPrecondition)
}

/// A network with everything notifications delivers to, SMS quiet hours off and caps high enough
/// for a whole journey.
async fn start_network(otlp: bool) -> Network {
    let env = [
        ("QUIET_HOURS_START", "00:00"),
        ("QUIET_HOURS_END", "00:00"),
        ("SMS_DAILY_CAP", "50"),
        ("SMS_WEEKLY_CAP", "100"),
    ]
    .into_iter()
    .map(|(k, v)| ("notifications".to_owned(), k.to_owned(), v.to_owned()))
    .collect();
    Network::start(NetworkOptions {
        smtp: true,
        sms_and_webhooks: true,
        otlp,
        env,
        ..NetworkOptions::default()
    })
    .await
    .expect("a clinicnet network")
}

/// The clients of one network and the tokens of its actors.
struct World {
    network: Network,
    directory: DirectoryServiceClient<GrpcChannel>,
    appointments: AppointmentsServiceClient<GrpcChannel>,
    patients: PatientsServiceClient<GrpcChannel>,
    insurance: InsuranceServiceClient<GrpcChannel>,
    integrator_client: IntegratorServiceClient<GrpcChannel>,
    notifications: NotificationsServiceClient<GrpcChannel>,
    ops: String,
    integrator: String,
}

/// A clinic as the directory holds it, with its esketamine chair and its provider.
struct Clinic {
    clinic: dir::Clinic,
    esketamine_chair: String,
    iv_chair: String,
    provider: dir::Provider,
    partner: String,
}

/// A registered patient's id and contacts.
struct Patient {
    id: String,
    email: String,
    phone: String,
}

impl World {
    async fn start(otlp: bool) -> World {
        let network = start_network(otlp).await;
        let ops = network.ops_token();
        let integrator = network.token(Role::Integrator, &[], Some(PAYER));
        World {
            directory: DirectoryServiceClient::new(network.channel("directory").await),
            appointments: AppointmentsServiceClient::new(network.channel("appointments").await),
            patients: PatientsServiceClient::new(network.channel("appointments").await),
            insurance: InsuranceServiceClient::new(network.channel("insurance").await),
            integrator_client: IntegratorServiceClient::new(network.channel("insurance").await),
            notifications: NotificationsServiceClient::new(network.channel("notifications").await),
            network,
            ops,
            integrator,
        }
    }

    /// The payer, its plan (esketamine codes need authorization) and the self-pay price list.
    async fn payer_and_prices(&mut self) {
        self.insurance
            .upsert_payer(authorized(
                ins::UpsertPayerRequest {
                    request_id: rid(),
                    payer: Some(ins::Payer {
                        payer_id: PAYER.into(),
                        display_name: "Suncoast Health".into(),
                        ..Default::default()
                    }),
                    expected_version: 0,
                },
                &self.ops,
            ))
            .await
            .expect("upsert payer");
        self.insurance
            .upsert_payer(authorized(
                ins::UpsertPayerRequest {
                    request_id: rid(),
                    payer: Some(ins::Payer {
                        payer_id: "self-pay".into(),
                        display_name: "Self-pay".into(),
                        ..Default::default()
                    }),
                    expected_version: 0,
                },
                &self.ops,
            ))
            .await
            .expect("upsert self-pay");
        let plan = |payer: &str, plan: &str, fees: &[(&str, i64)], authorized: &[&str]| ins::Plan {
            plan_id: plan.into(),
            payer_id: payer.into(),
            display_name: format!("Plan {plan}"),
            fee_schedule: fees
                .iter()
                .map(|(code, cents)| ins::FeeScheduleEntry {
                    procedure_code: (*code).into(),
                    unit_charge: Some(usd(*cents)),
                    effective_from: Some(common::Date {
                        year: 2025,
                        month: 1,
                        day: 1,
                    }),
                    effective_until: None,
                })
                .collect(),
            codes_requiring_authorization: authorized.iter().map(|c| (*c).to_owned()).collect(),
            authorization_validity_days: 180,
            authorization_criteria: Some(ins::PriorAuthorizationCriteria {
                min_failed_trials: 2,
                min_distinct_classes: 2,
                min_trial_weeks: 6,
                min_baseline_phq9: 16,
                min_age_years: 18,
                reauthorization_min_reduction_percent: 50,
            }),
            iv_ketamine_covered: false,
            timely_filing_days: 90,
            clinic_bills_drug: true,
            ..Default::default()
        };
        for plan in [
            plan(PAYER, PLAN, &PLAN_FEES, &["G2082", "G2083"]),
            plan("self-pay", "self-pay-cash", &CASH_FEES, &[]),
        ] {
            self.insurance
                .upsert_plan(authorized(
                    ins::UpsertPlanRequest {
                        request_id: rid(),
                        plan: Some(plan),
                        expected_version: 0,
                    },
                    &self.ops,
                ))
                .await
                .expect("upsert plan");
        }
    }

    /// A REMS-certified clinic in network with the payer, open every day 08:00–20:00, with an
    /// esketamine room besides its IV chair, and its psychiatrist.
    async fn clinic(&mut self) -> Clinic {
        let clinic = fixtures::clinic_with("Coral Gables Wellness", |c| {
            c.in_network_payer_ids = vec![PAYER.into()];
            c.weekly_hours = Some(dir::WeeklyHours {
                days: (1..=7)
                    .map(|day| dir::DayHours {
                        day_of_week: day,
                        intervals: vec![fixtures::range((8, 0), (20, 0))],
                    })
                    .collect(),
            });
            c.chairs.push(dir::Chair {
                location_id: "main".into(),
                display_name: "Spravato room".into(),
                modalities: vec![Modality::EsketamineNasalSpray as i32],
                capacity: 1,
                ..Default::default()
            });
        });
        let clinic = self
            .directory
            .create_clinic(authorized(
                dir::CreateClinicRequest {
                    request_id: rid(),
                    clinic: Some(clinic),
                },
                &self.ops,
            ))
            .await
            .expect("create clinic")
            .into_inner()
            .clinic
            .expect("clinic");
        let provider = self
            .directory
            .create_provider(authorized(
                dir::CreateProviderRequest {
                    request_id: rid(),
                    provider: Some(fixtures::provider(&[&clinic.clinic_id])),
                },
                &self.ops,
            ))
            .await
            .expect("create provider")
            .into_inner()
            .provider
            .expect("provider");
        let chair = |modality: Modality| {
            clinic
                .chairs
                .iter()
                .find(|c| c.modalities == [modality as i32])
                .map(|c| c.chair_id.clone())
                .expect("a chair for the modality")
        };
        Clinic {
            esketamine_chair: chair(Modality::EsketamineNasalSpray),
            iv_chair: chair(Modality::IvKetamine),
            partner: self
                .network
                .token(Role::PartnerClinic, &[&clinic.clinic_id], None),
            clinic,
            provider,
        }
    }

    /// Registers a patient at the clinic (once appointments knows it) and records an intake with
    /// treatment-resistant depression and a baseline PHQ-9 of 19.
    async fn patient(&mut self, clinic: &Clinic, name: (&str, &str)) -> Patient {
        let suffix = &Uuid::new_v4().simple().to_string()[..8];
        let email = format!("{}.{suffix}@example.com", name.0.to_lowercase());
        let phone = format!("+1305{:07}", Uuid::new_v4().as_u128() % 10_000_000);
        let patient = apt::Patient {
            name: Some(common::PersonName {
                given_name: name.0.into(),
                middle_name: String::new(),
                family_name: name.1.into(),
            }),
            birth_date: Some(common::Date {
                year: 1984,
                month: 5,
                day: 17,
            }),
            preferred_locale: Locale::EnUs as i32,
            contacts: Some(apt::PatientContacts {
                email: email.clone(),
                email_consent: true,
                mobile_phone: phone.clone(),
                sms_consent: true,
                consent_update_time: Some(ts(jiff::Timestamp::now())),
            }),
            registered_clinic_id: clinic.clinic.clinic_id.clone(),
            ..Default::default()
        };
        let request_id = rid();
        let id = eventually("appointments to know the clinic", WAIT, || {
            let mut patients = self.patients.clone();
            let request = apt::RegisterPatientRequest {
                request_id: request_id.clone(),
                patient: Some(patient.clone()),
            };
            let partner = clinic.partner.clone();
            async move {
                match patients
                    .register_patient(authorized(request, &partner))
                    .await
                {
                    Ok(r) => r.into_inner().patient.map(|p| p.patient_id),
                    Err(s) if s.code() == Code::NotFound => None,
                    Err(s) => panic!("register patient: {s:?}"),
                }
            }
        })
        .await;
        let trial = |class: AntidepressantClass, weeks| AntidepressantTrial {
            drug_class: class as i32,
            duration_weeks: weeks,
            adequate_dose: true,
            current_episode: true,
        };
        self.patients
            .record_intake(authorized(
                apt::RecordIntakeRequest {
                    request_id: rid(),
                    intake: Some(apt::Intake {
                        patient_id: id.clone(),
                        clinic_id: clinic.clinic.clinic_id.clone(),
                        diagnosis_codes: vec!["F33.2".into()],
                        failed_trials: vec![
                            trial(AntidepressantClass::Ssri, 8),
                            trial(AntidepressantClass::Snri, 10),
                        ],
                        baseline_phq9: Some(phq9(&[3, 2, 2, 2, 2, 2, 2, 2, 2])),
                        trd_attested: true,
                        attesting_provider_id: clinic.provider.provider_id.clone(),
                        ..Default::default()
                    }),
                },
                &clinic.partner,
            ))
            .await
            .expect("record intake");
        Patient { id, email, phone }
    }

    /// Adds the patient's primary coverage under the plan, once insurance knows the patient.
    async fn coverage(&mut self, clinic: &Clinic, patient: &Patient) -> ins::Coverage {
        let coverage = ins::Coverage {
            patient_id: patient.id.clone(),
            payer_id: PAYER.into(),
            plan_id: PLAN.into(),
            member_id: format!("SCH{}", &Uuid::new_v4().simple().to_string()[..10]).to_uppercase(),
            relationship: ins::SubscriberRelationship::Self_ as i32,
            effective_from: Some(common::Date {
                year: 2025,
                month: 1,
                day: 1,
            }),
            priority: ins::CoveragePriority::Primary as i32,
            ..Default::default()
        };
        let request_id = rid();
        eventually("insurance to know the patient", WAIT, || {
            let mut insurance = self.insurance.clone();
            let request = ins::AddCoverageRequest {
                request_id: request_id.clone(),
                coverage: Some(coverage.clone()),
            };
            let partner = clinic.partner.clone();
            async move {
                match insurance.add_coverage(authorized(request, &partner)).await {
                    Ok(r) => r.into_inner().coverage,
                    Err(s) if s.code() == Code::NotFound => None,
                    Err(s) => panic!("add coverage: {s:?}"),
                }
            }
        })
        .await
    }

    /// Offers one free slot of `modality` in `chair` at each of `starts` (one sync) and returns
    /// their ids in order.
    async fn offer(
        &mut self,
        clinic: &Clinic,
        chair: &str,
        modality: Modality,
        starts: &[jiff::Timestamp],
        sync_version: u64,
    ) -> Vec<String> {
        let hours = jiff::SignedDuration::from_hours(3);
        let slots: Vec<apt::AvailabilitySlot> = starts
            .iter()
            .map(|start| apt::AvailabilitySlot {
                chair_id: chair.into(),
                provider_id: clinic.provider.provider_id.clone(),
                modality: modality as i32,
                start_time: Some(ts(*start)),
                end_time: Some(ts(*start + hours)),
                ..Default::default()
            })
            .collect();
        let window = common::TimeInterval {
            start_time: Some(ts(*starts.iter().min().expect("starts"))),
            end_time: Some(ts(*starts.iter().max().expect("starts") + hours)),
        };
        let request = apt::SyncAvailabilityRequest {
            request_id: rid(),
            clinic_id: clinic.clinic.clinic_id.clone(),
            window: Some(window),
            slots,
            sync_version,
        };
        eventually("appointments to know the chair and provider", WAIT, || {
            let mut appointments = self.appointments.clone();
            let request = request.clone();
            let partner = clinic.partner.clone();
            async move {
                match appointments
                    .sync_availability(authorized(request, &partner))
                    .await
                {
                    Ok(r) => Some(r),
                    Err(s) if s.code() == Code::NotFound => None,
                    Err(s) => panic!("sync availability: {s:?}"),
                }
            }
        })
        .await;
        let listed = self
            .appointments
            .list_slots(authorized(
                apt::ListSlotsRequest {
                    page_size: 100,
                    clinic_id: clinic.clinic.clinic_id.clone(),
                    window: Some(window),
                    ..Default::default()
                },
                &clinic.partner,
            ))
            .await
            .expect("list slots")
            .into_inner()
            .slots;
        starts
            .iter()
            .map(|start| {
                listed
                    .iter()
                    .find(|s| s.chair_id == chair && s.start_time == Some(ts(*start)))
                    .map(|s| s.slot_id.clone())
                    .expect("the offered slot")
            })
            .collect()
    }

    /// Creates a course of `plan_code` starting tomorrow and books its first `sessions` sessions,
    /// each at 14:00 on the first day its window and the plan's spacing allow, at the plan's dose
    /// or, where the plan leaves it to the clinician (IV ketamine is dosed by weight), `dose_mg`.
    async fn course(
        &mut self,
        clinic: &Clinic,
        patient: &Patient,
        plan_code: &str,
        sessions: usize,
        dose_mg: i32,
    ) -> (apt::Course, Vec<apt::Appointment>) {
        let tomorrow = fixtures::today_in(ZONE).tomorrow().expect("a date");
        let course = self
            .appointments
            .create_course(authorized(
                apt::CreateCourseRequest {
                    request_id: rid(),
                    patient_id: patient.id.clone(),
                    clinic_id: clinic.clinic.clinic_id.clone(),
                    plan_code: plan_code.into(),
                    start_date: Some(fixtures::date(tomorrow)),
                    preferences: None,
                },
                &clinic.partner,
            ))
            .await
            .expect("create course")
            .into_inner()
            .course
            .expect("course");
        let mut dates: Vec<Date> = Vec::new();
        for session in &course.sessions[..sessions] {
            let earliest = to_date(session.earliest_date.as_ref().expect("earliest date"));
            let spaced = dates
                .last()
                .map(|d| d.checked_add(jiff::Span::new().days(2)).expect("a date"));
            let date = spaced.map_or(earliest.max(tomorrow), |s| s.max(earliest));
            assert!(
                date <= to_date(session.latest_date.as_ref().expect("latest date")),
                "session {} cannot be placed",
                session.session_number
            );
            dates.push(date);
        }
        let (chair, modality) = if course.plan.as_ref().map(|p| p.modality)
            == Some(Modality::EsketamineNasalSpray as i32)
        {
            (
                clinic.esketamine_chair.clone(),
                Modality::EsketamineNasalSpray,
            )
        } else {
            (clinic.iv_chair.clone(), Modality::IvKetamine)
        };
        let starts: Vec<jiff::Timestamp> = dates.into_iter().map(afternoon).collect();
        let slots = self.offer(clinic, &chair, modality, &starts, 1).await;
        let mut booked = Vec::new();
        for (session, slot) in course.sessions.iter().zip(slots) {
            let appointment = self
                .appointments
                .book_appointment(authorized(
                    apt::BookAppointmentRequest {
                        request_id: rid(),
                        target: Some(apt::book_appointment_request::Target::SlotId(slot)),
                        patient_id: patient.id.clone(),
                        planned_dose_mg: match session.planned_dose_mg {
                            0 => dose_mg,
                            planned => planned,
                        },
                        course_id: course.course_id.clone(),
                        course_session_number: session.session_number,
                    },
                    &clinic.partner,
                ))
                .await
                .unwrap_or_else(|s| panic!("book session {}: {s:?}", session.session_number))
                .into_inner()
                .appointment
                .expect("appointment");
            assert_eq!(appointment.status, apt::AppointmentStatus::Booked as i32);
            booked.push(appointment);
        }
        (course, booked)
    }

    /// Checks the visit in and completes it; returns the fulfilled visit.
    async fn fulfil(
        &mut self,
        clinic: &Clinic,
        appointment_id: &str,
        completion: apt::Completion,
    ) -> apt::Appointment {
        self.appointments
            .check_in_appointment(authorized(
                apt::CheckInAppointmentRequest {
                    request_id: rid(),
                    appointment_id: appointment_id.into(),
                },
                &clinic.partner,
            ))
            .await
            .expect("check in");
        self.appointments
            .complete_appointment(authorized(
                apt::CompleteAppointmentRequest {
                    request_id: rid(),
                    appointment_id: appointment_id.into(),
                    completion: Some(apt::Completion {
                        rendering_provider_id: clinic.provider.provider_id.clone(),
                        ..completion
                    }),
                },
                &clinic.partner,
            ))
            .await
            .expect("complete");
        self.appointments
            .get_appointment(authorized(
                apt::GetAppointmentRequest {
                    appointment_id: appointment_id.into(),
                },
                &clinic.partner,
            ))
            .await
            .expect("get appointment")
            .into_inner()
            .appointment
            .expect("appointment")
    }

    /// The visit's claim, once insurance has built it from the fulfilled-visit event.
    async fn claim_of(&self, appointment_id: &str) -> ins::Claim {
        eventually("the visit's claim", WAIT, || {
            let mut insurance = self.insurance.clone();
            let request = ins::ListClaimsRequest {
                appointment_id: appointment_id.into(),
                ..Default::default()
            };
            let ops = self.ops.clone();
            async move {
                let claims = insurance
                    .list_claims(authorized(request, &ops))
                    .await
                    .expect("list claims")
                    .into_inner()
                    .claims;
                claims.into_iter().next()
            }
        })
        .await
    }

    /// The notifications about `appointment_id` of `kind`, once each is sent or delivered on
    /// every channel in `channels`.
    async fn delivered(
        &self,
        appointment_id: &str,
        kind: NotificationKind,
        channels: &[Channel],
    ) -> Vec<ntf::Notification> {
        let what = format!("{kind:?} for {appointment_id} on {channels:?}");
        eventually(&what, WAIT, || {
            let mut notifications = self.notifications.clone();
            let request = ntf::ListNotificationsRequest {
                page_size: 100,
                filter: Some(ntf::list_notifications_request::Filter::AppointmentId(
                    appointment_id.into(),
                )),
                ..Default::default()
            };
            let ops = self.ops.clone();
            async move {
                let done: Vec<ntf::Notification> = notifications
                    .list_notifications(authorized(request, &ops))
                    .await
                    .expect("list notifications")
                    .into_inner()
                    .notifications
                    .into_iter()
                    .filter(|n| {
                        n.kind == kind as i32
                            && [NotificationStatus::Sent, NotificationStatus::Delivered]
                                .map(|s| s as i32)
                                .contains(&n.status)
                    })
                    .collect();
                channels
                    .iter()
                    .all(|c| done.iter().any(|n| n.channel == *c as i32))
                    .then_some(done)
            }
        })
        .await
    }

    /// Checks that each of `notes` reached the outside world: an email to the patient with its
    /// Message-ID, an SMS to the patient keyed by its id, a webhook with its id — none naming
    /// the drug or the diagnosis.
    fn assert_received(&self, patient: &Patient, notes: &[ntf::Notification]) {
        for note in notes {
            let channel = Channel::try_from(note.channel).expect("a channel");
            let text = match channel {
                Channel::Email => {
                    let mails = self.network.smtp().expect("smtp").mails_to(&patient.email);
                    let mail = mails
                        .iter()
                        .find(|m| m.message_id == note.provider_message_id)
                        .unwrap_or_else(|| panic!("no email for {note:?} among {mails:?}"));
                    format!("{} {}", mail.subject, mail.body)
                }
                Channel::Sms => {
                    let sms = self
                        .network
                        .sms()
                        .expect("sms")
                        .delivered_to(&patient.phone);
                    let message = sms
                        .iter()
                        .find(|s| s.key == note.notification_id)
                        .unwrap_or_else(|| panic!("no SMS for {note:?} among {sms:?}"));
                    message.body.clone()
                }
                Channel::Webhook => {
                    let hooks = self.network.webhooks().expect("webhooks").received();
                    let hook = hooks
                        .iter()
                        .find(|h| {
                            h.headers.get("webhook-id").and_then(|v| v.to_str().ok())
                                == Some(note.notification_id.as_str())
                        })
                        .unwrap_or_else(|| panic!("no webhook for {note:?}"));
                    String::from_utf8_lossy(&hook.body).into_owned()
                }
                other => panic!("unexpected channel {other:?}"),
            };
            let lower = text.to_lowercase();
            for secret in ["esketamine", "spravato", "f33.2", "depress"] {
                assert!(
                    !lower.contains(secret),
                    "{channel:?} names {secret:?}: {text}"
                );
            }
        }
    }

    /// Registers the receiver as the clinic's webhook endpoint (once notifications knows the
    /// clinic).
    async fn webhook_endpoint(&self, clinic: &Clinic) {
        let url = self.network.webhooks().expect("webhooks").url().to_owned();
        let request_id = rid();
        eventually("notifications to know the clinic", WAIT, || {
            let mut notifications = self.notifications.clone();
            let request = ntf::RegisterWebhookEndpointRequest {
                request_id: request_id.clone(),
                clinic_id: clinic.clinic.clinic_id.clone(),
                url: url.clone(),
                kinds: Vec::new(),
                description: "front desk system".into(),
            };
            let partner = clinic.partner.clone();
            async move {
                notifications
                    .register_webhook_endpoint(authorized(request, &partner))
                    .await
                    .ok()
            }
        })
        .await;
    }
}

/// A PHQ-9 with these nine answers.
fn phq9(items: &[i32; 9]) -> apt::Phq9 {
    apt::Phq9 {
        item_scores: items.to_vec(),
        total_score: items.iter().sum(),
        administer_time: Some(ts(jiff::Timestamp::now())),
    }
}

fn blood_pressure(systolic: i32, diastolic: i32) -> Option<apt::BloodPressure> {
    Some(apt::BloodPressure {
        systolic_mmhg: systolic,
        diastolic_mmhg: diastolic,
        measure_time: Some(ts(jiff::Timestamp::now())),
    })
}

/// An esketamine session: `dose_mg` by 28 mg devices, 15 minutes dosing, 125 minutes observed.
fn esketamine_completion(dose_mg: i32, answers: &[i32; 9]) -> apt::Completion {
    apt::Completion {
        modality: Modality::EsketamineNasalSpray as i32,
        dose_mg,
        esketamine_devices: dose_mg / 28,
        treatment_minutes: 15,
        monitoring_minutes: 125,
        blood_pressure_before: blood_pressure(128, 82),
        blood_pressure_after: blood_pressure(136, 86),
        phq9: Some(phq9(answers)),
        rems_monitoring_form_filed: true,
        complete_time: Some(ts(jiff::Timestamp::now())),
        ..Default::default()
    }
}

/// Claim or superbill lines as (code, units).
fn codes(lines: &[ins::ServiceLine]) -> Vec<(String, i32)> {
    lines
        .iter()
        .map(|l| (l.procedure_code.clone(), l.units))
        .collect()
}

/// The payment of `claim`: the first line less 20 % coinsurance (patient responsibility), the
/// others in full. Returns it with the coinsurance.
fn payment(claim: &ins::Claim) -> (ins::ClaimPayment, i64) {
    let mut coinsurance = 0;
    let lines: Vec<ins::LinePayment> = claim
        .lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let charge = line.charge.as_ref().map_or(0, |m| m.amount_cents);
            let owed = if i == 0 { charge / 5 } else { 0 };
            coinsurance += owed;
            ins::LinePayment {
                line_number: line.line_number,
                procedure_code: line.procedure_code.clone(),
                charge: line.charge.clone(),
                paid_amount: Some(usd(charge - owed)),
                adjustments: (owed > 0)
                    .then(|| ins::Adjustment {
                        group: ins::AdjustmentGroup::Pr as i32,
                        reason_code: "2".into(),
                        amount: Some(usd(owed)),
                        remark_code: String::new(),
                    })
                    .into_iter()
                    .collect(),
            }
        })
        .collect();
    let paid = lines
        .iter()
        .filter_map(|l| l.paid_amount.as_ref())
        .map(|m| m.amount_cents)
        .sum();
    let payment = ins::ClaimPayment {
        claim_id: claim.claim_id.clone(),
        payer_claim_control_number: format!("ICN-{}", &claim.claim_id[..8]),
        charge: claim.total_charge.clone(),
        paid_amount: Some(usd(paid)),
        lines,
    };
    (payment, coinsurance)
}

async fn next_work_item(stream: &mut tonic::Streaming<ins::StreamWorkResponse>) -> Item {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a work item in time")
        .expect("the work stream is healthy")
        .expect("the work stream is open")
        .item
        .and_then(|i| i.item)
        .expect("an item")
}

/// Insured esketamine: the directory's certified, in-network clinic; intake with TRD and a
/// baseline PHQ-9; coverage and a prior authorization decided by the payer's integrator; two
/// induction sessions of the course booked, fulfilled at 56 and 84 mg with PHQ-9; claims G2082 and
/// G2083 (with the drug, J0013) built by insurance from the fulfilled-visit events, submitted,
/// acknowledged and paid by a remittance posted over the integrator's stream; the patient told of
/// what they owe — every step asserted at the service's API and at the SMTP server, the SMS
/// provider and the webhook receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insured_esketamine_course_from_intake_to_the_patient_responsibility_notice() {
    let mut world = World::start(false).await;
    world.payer_and_prices().await;
    let clinic = world.clinic().await;

    // Directory: certified and in network with the payer.
    let listed = world
        .directory
        .get_clinic(authorized(
            dir::GetClinicRequest {
                clinic_id: clinic.clinic.clinic_id.clone(),
            },
            &clinic.partner,
        ))
        .await
        .expect("get clinic")
        .into_inner()
        .clinic
        .expect("clinic");
    assert_eq!(listed.in_network_payer_ids, vec![PAYER.to_owned()]);
    assert!(listed.rems_certification.is_some());
    world.webhook_endpoint(&clinic).await;

    // Intake, coverage, prior authorization.
    let patient = world.patient(&clinic, ("Marisol", "Quintero-Vidal")).await;
    let intake = world
        .patients
        .get_intake(authorized(
            apt::GetIntakeRequest {
                patient_id: patient.id.clone(),
            },
            &clinic.partner,
        ))
        .await
        .expect("get intake")
        .into_inner()
        .intake
        .expect("intake");
    assert!(intake.trd_attested);
    assert_eq!(intake.baseline_phq9.map(|p| p.total_score), Some(19));
    let coverage = world.coverage(&clinic, &patient).await;
    let mut work = world
        .integrator_client
        .stream_work(authorized(
            ins::StreamWorkRequest {
                payer_id: PAYER.into(),
                cursor: String::new(),
            },
            &world.integrator,
        ))
        .await
        .expect("the integrator's work stream")
        .into_inner();
    let request_id = rid();
    let requested = eventually("insurance to know the intake", WAIT, || {
        let mut insurance = world.insurance.clone();
        let request = ins::RequestPriorAuthorizationRequest {
            request_id: request_id.clone(),
            patient_id: patient.id.clone(),
            coverage_id: coverage.coverage_id.clone(),
            clinic_id: clinic.clinic.clinic_id.clone(),
            appointment_id: String::new(),
            course_id: String::new(),
            provider_npi: clinic.provider.npi.clone(),
            services: ["G2082", "G2083"]
                .map(|code| ins::RequestedService {
                    procedure_code: code.into(),
                    units: 8,
                })
                .to_vec(),
        };
        let partner = clinic.partner.clone();
        async move {
            match insurance
                .request_prior_authorization(authorized(request, &partner))
                .await
            {
                Ok(r) => r.into_inner().prior_authorization,
                Err(s) if not_known_yet(&s) => None,
                Err(s) => panic!("request prior authorization: {s:?}"),
            }
        }
    })
    .await;
    let Item::PriorAuthorizationRequest(item) = next_work_item(&mut work).await else {
        panic!("the integrator's first work item is not the prior authorization request");
    };
    let pa = item.prior_authorization.expect("prior authorization");
    assert_eq!(pa.prior_authorization_id, requested.prior_authorization_id);
    let facts = pa.clinical_facts.expect("clinical facts from the intake");
    assert_eq!(facts.diagnosis_codes, vec!["F33.2".to_owned()]);
    assert_eq!(facts.baseline_phq9, 19);
    assert_eq!(facts.failed_trials.len(), 2);
    let today = fixtures::today_in(ZONE);
    let decided = world
        .integrator_client
        .decide_prior_authorization(authorized(
            ins::DecidePriorAuthorizationRequest {
                request_id: rid(),
                prior_authorization_id: pa.prior_authorization_id.clone(),
                decision: Some(Decision::Approval(ins::PriorAuthorizationApproval {
                    authorization_number: "PA-778899".into(),
                    valid_from: Some(fixtures::date(today)),
                    valid_until: Some(fixtures::date(
                        today
                            .checked_add(jiff::Span::new().days(179))
                            .expect("date"),
                    )),
                    units_approved: 16,
                })),
            },
            &world.integrator,
        ))
        .await
        .expect("approve")
        .into_inner()
        .prior_authorization
        .expect("prior authorization");
    assert_eq!(
        decided.status,
        ins::PriorAuthorizationStatus::Approved as i32
    );

    // Two induction sessions of the course, booked: confirmations by email, SMS and webhook.
    let (course, visits) = world
        .course(&clinic, &patient, "esketamine-adult", 2, 56)
        .await;
    let read = world
        .appointments
        .get_course(authorized(
            apt::GetCourseRequest {
                course_id: course.course_id.clone(),
            },
            &clinic.partner,
        ))
        .await
        .expect("get course")
        .into_inner()
        .course
        .expect("course");
    let booked: Vec<&str> = read
        .sessions
        .iter()
        .map(|s| s.appointment_id.as_str())
        .filter(|id| !id.is_empty())
        .collect();
    assert_eq!(
        booked,
        visits
            .iter()
            .map(|v| v.appointment_id.as_str())
            .collect::<Vec<_>>()
    );
    for visit in &visits {
        let confirmations = world
            .delivered(
                &visit.appointment_id,
                NotificationKind::AppointmentConfirmation,
                &[Channel::Email, Channel::Sms, Channel::Webhook],
            )
            .await;
        world.assert_received(&patient, &confirmations);
    }
    let hooks = world.network.webhooks().expect("webhooks").received();
    for visit in &visits {
        assert!(
            hooks.iter().any(|h| {
                let body: serde_json::Value = serde_json::from_slice(&h.body).expect("json");
                body["type"] == "appointment.booked"
                    && body["data"]["appointment_id"] == visit.appointment_id.as_str()
            }),
            "no appointment.booked webhook for {}",
            visit.appointment_id
        );
    }

    // The sessions: 56 mg then 84 mg, PHQ-9 falling from the baseline of 19.
    let doses = [
        (56, [2, 2, 1, 1, 1, 1, 1, 1, 0]),
        (84, [1, 1, 1, 1, 1, 0, 0, 0, 0]),
    ];
    let mut claims = Vec::new();
    for (visit, (dose, answers)) in visits.iter().zip(doses) {
        let fulfilled = world
            .fulfil(
                &clinic,
                &visit.appointment_id,
                esketamine_completion(dose, &answers),
            )
            .await;
        assert_eq!(fulfilled.status, apt::AppointmentStatus::Fulfilled as i32);
        let completion = fulfilled.completion.expect("completion");
        assert_eq!(completion.dose_mg, dose);
        assert_eq!(
            completion.phq9.map(|p| p.total_score),
            Some(answers.iter().sum())
        );
        claims.push(world.claim_of(&visit.appointment_id).await);
    }

    // The claims: G2082 for 56 mg, G2083 for 84 mg, with the drug, under the authorization.
    for (claim, (code, mg)) in claims.iter().zip([("G2082", 56), ("G2083", 84)]) {
        assert_eq!(
            codes(&claim.lines),
            vec![(code.to_owned(), 1), ("J0013".to_owned(), mg)]
        );
        assert_eq!(claim.status, ins::ClaimStatus::Draft as i32, "{claim:?}");
        assert_eq!(claim.payer_id, PAYER);
        assert_eq!(claim.billing_provider_npi, clinic.clinic.npi);
        assert_eq!(claim.rendering_provider_npi, clinic.provider.npi);
        assert_eq!(claim.authorization_number, "PA-778899");
        assert_eq!(claim.diagnosis_codes, vec!["F33.2".to_owned()]);
        world
            .insurance
            .submit_claim(authorized(
                ins::SubmitClaimRequest {
                    request_id: rid(),
                    claim_id: claim.claim_id.clone(),
                    submit_despite_issues: false,
                },
                &clinic.partner,
            ))
            .await
            .expect("submit claim");
    }

    // The integrator receives each claim, accepts it, and posts one remittance for both.
    let mut accepted = Vec::new();
    while accepted.len() < claims.len() {
        if let Item::Claim(item) = next_work_item(&mut work).await {
            let claim = item.claim.expect("claim");
            let acknowledged = world
                .integrator_client
                .acknowledge_claim(authorized(
                    ins::AcknowledgeClaimRequest {
                        request_id: rid(),
                        claim_id: claim.claim_id.clone(),
                        result: Some(ins::acknowledge_claim_request::Result::Accepted(
                            ins::ClaimAcceptance {
                                payer_claim_control_number: format!("ICN-{}", &claim.claim_id[..8]),
                            },
                        )),
                    },
                    &world.integrator,
                ))
                .await
                .expect("acknowledge")
                .into_inner()
                .claim
                .expect("claim");
            accepted.push(acknowledged);
        }
    }
    let (payments, owed): (Vec<_>, Vec<i64>) = claims.iter().map(payment).unzip();
    let total: i64 = payments
        .iter()
        .filter_map(|p| p.paid_amount.as_ref())
        .map(|m| m.amount_cents)
        .sum();
    let remittance = ins::PostRemittancesRequest {
        request_id: rid(),
        remittance: Some(ins::Remittance {
            remittance_id: format!("EFT-{}", &rid()[..8]),
            payer_id: PAYER.into(),
            payment_date: Some(fixtures::date(today)),
            total_paid: Some(usd(total)),
            claim_payments: payments,
        }),
    };
    let mut results = world
        .integrator_client
        .post_remittances(authorized(
            futures::stream::iter([remittance]),
            &world.integrator,
        ))
        .await
        .expect("open PostRemittances")
        .into_inner();
    let result = results
        .message()
        .await
        .expect("a remittance result")
        .expect("one result");
    assert_eq!(
        result.outcome,
        ins::RemittanceOutcome::Posted as i32,
        "{result:?}"
    );
    for (claim, owed) in claims.iter().zip(owed) {
        let paid = world
            .insurance
            .get_claim(authorized(
                ins::GetClaimRequest {
                    claim_id: claim.claim_id.clone(),
                },
                &world.ops,
            ))
            .await
            .expect("get claim")
            .into_inner()
            .claim
            .expect("claim");
        assert_eq!(paid.status, ins::ClaimStatus::Paid as i32);
        assert_eq!(paid.patient_responsibility, Some(usd(owed)));
        assert_eq!(
            paid.paid_amount.map(|m| m.amount_cents),
            claim.total_charge.as_ref().map(|m| m.amount_cents - owed)
        );

        // The patient is told what they owe, by email and SMS.
        let notices = world
            .delivered(
                &claim.appointment_id,
                NotificationKind::PatientResponsibility,
                &[Channel::Email, Channel::Sms],
            )
            .await;
        world.assert_received(&patient, &notices);
    }
    world.network.stop().await;
}

/// Self-pay IV ketamine: a patient with no coverage books the first infusion of an induction
/// series, is fulfilled after a 100-minute infusion, and insurance issues a superbill at the cash
/// prices (96365, 96366, J3490) whose PDF opens and names the codes, the charges, the diagnosis
/// and both NPIs; the patient is told by email and SMS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_pay_iv_course_ends_in_a_superbill() {
    let mut world = World::start(false).await;
    world.payer_and_prices().await;
    let clinic = world.clinic().await;
    let patient = world.patient(&clinic, ("Rafael", "Ortega-Luna")).await;
    let (_, visits) = world
        .course(&clinic, &patient, "iv-induction-6", 1, 35)
        .await;
    let visit = &visits[0];
    let confirmations = world
        .delivered(
            &visit.appointment_id,
            NotificationKind::AppointmentConfirmation,
            &[Channel::Email, Channel::Sms],
        )
        .await;
    world.assert_received(&patient, &confirmations);
    let fulfilled = world
        .fulfil(
            &clinic,
            &visit.appointment_id,
            apt::Completion {
                modality: Modality::IvKetamine as i32,
                dose_mg: 35,
                treatment_minutes: 100,
                monitoring_minutes: 45,
                blood_pressure_before: blood_pressure(124, 80),
                blood_pressure_after: blood_pressure(132, 84),
                phq9: Some(phq9(&[2, 2, 2, 1, 1, 1, 1, 1, 0])),
                complete_time: Some(ts(jiff::Timestamp::now())),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(fulfilled.status, apt::AppointmentStatus::Fulfilled as i32);

    let response = eventually("the visit's superbill", WAIT, || {
        let mut insurance = world.insurance.clone();
        let request = ins::GetSuperbillRequest {
            key: Some(ins::get_superbill_request::Key::AppointmentId(
                visit.appointment_id.clone(),
            )),
        };
        let partner = clinic.partner.clone();
        async move {
            insurance
                .get_superbill(authorized(request, &partner))
                .await
                .ok()
                .map(|r| r.into_inner())
        }
    })
    .await;
    let superbill = response.superbill.expect("superbill");
    assert_eq!(
        codes(&superbill.lines),
        vec![
            ("96365".to_owned(), 1),
            ("96366".to_owned(), 1),
            ("J3490".to_owned(), 1)
        ]
    );
    let claims = world
        .insurance
        .list_claims(authorized(
            ins::ListClaimsRequest {
                appointment_id: visit.appointment_id.clone(),
                ..Default::default()
            },
            &world.ops,
        ))
        .await
        .expect("list claims")
        .into_inner()
        .claims;
    assert!(claims.is_empty(), "a self-pay visit is not claimed");
    let document = lopdf::Document::load_mem(&response.pdf).expect("the PDF opens");
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
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
        clinic.clinic.npi.as_str(),
        clinic.provider.npi.as_str(),
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from the superbill:\n{text}"
        );
    }
    let notices = world
        .delivered(
            &visit.appointment_id,
            NotificationKind::SuperbillIssued,
            &[Channel::Email, Channel::Sms],
        )
        .await;
    world.assert_received(&patient, &notices);
    world.network.stop().await;
}

/// The spans of a trace as "service: name" lines, for failure messages.
fn outline(spans: &[ReceivedSpan]) -> String {
    spans
        .iter()
        .map(|s| {
            format!(
                "{}: {} ({}) parent {}",
                s.service, s.name, s.span_id, s.parent_span_id
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One booking made under the test's own trace context is one trace: the appointments server
/// span is the child of the caller's span, the outbox publish span descends from it, and the
/// consumer spans in notifications and insurance are children of the publish span — each span
/// named by its service, and no attribute of any span carrying the patient's name, contacts, date
/// of birth or diagnosis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_booking_is_one_trace_across_the_services_without_phi() {
    let mut world = World::start(true).await;
    world.payer_and_prices().await;
    let clinic = world.clinic().await;
    let patient = world
        .patient(&clinic, ("Yolanda", "Bermúdez-Saavedra"))
        .await;
    world.coverage(&clinic, &patient).await;
    let tomorrow = fixtures::today_in(ZONE).tomorrow().expect("a date");
    let slot = world
        .offer(
            &clinic,
            &clinic.esketamine_chair.clone(),
            Modality::EsketamineNasalSpray,
            &[afternoon(tomorrow)],
            1,
        )
        .await
        .remove(0);
    let trace_id = format!("{:032x}", Uuid::new_v4().as_u128());
    let caller_span = format!("{:016x}", Uuid::new_v4().as_u128() as u64);
    let mut request = authorized(
        apt::BookAppointmentRequest {
            request_id: rid(),
            target: Some(apt::book_appointment_request::Target::SlotId(slot)),
            patient_id: patient.id.clone(),
            planned_dose_mg: 56,
            ..Default::default()
        },
        &clinic.partner,
    );
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{caller_span}-01")
            .parse()
            .expect("header"),
    );
    let visit = world
        .appointments
        .book_appointment(request)
        .await
        .expect("book")
        .into_inner()
        .appointment
        .expect("appointment");

    let booked = "clinicnet.appointments.appointment.booked";
    let consumer = |spans: &[ReceivedSpan], service: &str| {
        spans
            .iter()
            .find(|s| s.service == service && s.name == format!("process {booked}"))
            .cloned()
    };
    let server_name = "clinicnet.appointments.v1.AppointmentsService/BookAppointment";
    let publish_name = format!("publish {booked}");
    let receiver = world.network.traces().expect("traces");
    let spans = receiver
        .wait_until(WAIT, |all| {
            let trace: Vec<ReceivedSpan> = all
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .cloned()
                .collect();
            [server_name, publish_name.as_str()]
                .iter()
                .all(|name| trace.iter().any(|s| s.name == *name))
                && consumer(&trace, "notifications").is_some()
                && consumer(&trace, "insurance").is_some()
        })
        .await
        .expect("the booking's trace");
    let trace: Vec<ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == trace_id)
        .cloned()
        .collect();
    let shown = outline(&trace);
    let server = trace
        .iter()
        .find(|s| s.name == server_name)
        .unwrap_or_else(|| panic!("no server span:\n{shown}"));
    assert_eq!(server.service, "appointments");
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.parent_span_id, caller_span, "{shown}");
    let publish = trace
        .iter()
        .find(|s| s.name == publish_name)
        .unwrap_or_else(|| panic!("no publish span:\n{shown}"));
    assert_eq!(publish.service, "appointments");
    assert_eq!(publish.kind, SpanKind::Producer);
    assert!(
        publish.attribute("messaging.message.id").is_some(),
        "{publish:?}"
    );
    // The publish span descends from the server span (through the spans in between).
    let mut ancestor = publish.parent_span_id.clone();
    while ancestor != server.span_id {
        ancestor = trace
            .iter()
            .find(|s| s.span_id == ancestor)
            .map(|s| s.parent_span_id.clone())
            .unwrap_or_else(|| {
                panic!("the publish span does not descend from the server span:\n{shown}")
            });
    }
    for service in ["notifications", "insurance"] {
        let process = consumer(&trace, service).expect("consumer span");
        assert_eq!(process.kind, SpanKind::Consumer, "{process:?}");
        assert_eq!(process.parent_span_id, publish.span_id, "{shown}");
        assert_eq!(
            process.attribute("messaging.message.id"),
            publish.attribute("messaging.message.id")
        );
    }
    assert!(
        trace.iter().all(|s| SERVICES.contains(&s.service.as_str())),
        "a span without its service's name:\n{shown}"
    );
    assert!(!visit.appointment_id.is_empty());

    // No PHI anywhere: not in this trace, not in any span received during the whole test.
    let phi = [
        "Yolanda",
        "Bermúdez",
        patient.email.as_str(),
        patient.phone.as_str(),
        "1984-05-17",
        "F33.2",
        "recurrent, severe",
    ];
    for span in receiver.spans() {
        for (key, value) in span
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([("status", span.status_message.as_str())])
        {
            for secret in phi {
                assert!(
                    !value.contains(secret),
                    "{}: {} carries {secret:?} in {key}",
                    span.service,
                    span.name
                );
            }
        }
    }
    world.network.stop().await;
}
