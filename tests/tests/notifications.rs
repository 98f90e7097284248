//! System tests of the notifications service: the real binary over real gRPC, its own PostgreSQL
//! database and NATS server, trigger events published as protobuf onto the producers' streams,
//! email to a real SMTP server (aiosmtpd), SMS to a local Twilio-style HTTP provider, and
//! webhooks to a local HTTPS receiver checked with an independent Standard Webhooks
//! implementation.
//!
//! Clinics live in `Etc/GMT±N` zones chosen so that the local time is what a test needs (midday,
//! or the middle of the quiet hours) whatever the hour the tests run at.

use async_nats::{HeaderMap as NatsHeaders, jetstream};
use clinicnet_proto::{
    appointments::v1::{Appointment, AppointmentStatus, Patient, PatientContacts},
    common::v1::{Locale, Modality, PersonName},
    directory::v1::{Clinic, ClinicContact, Location, OnCallContact},
    events::v1::{
        AppointmentBooked, AppointmentCancelled, AppointmentRescheduled, ClinicRegistered,
        EventMetadata, PatientRegistered, SafetyFollowUpRequired,
    },
    notifications::v1::{
        self as pb, Channel, NotificationKind, NotificationStatus, SuppressionReason,
        notifications_service_client::NotificationsServiceClient, recipient::Target,
    },
};
use platform::auth::{Role, claims, mint_hs256};
use prost::Message;
use std::{collections::HashMap, time::Duration};
use system_tests::{
    PrivateNats, ServiceProcess, ServiceSpec, TestDatabase,
    network::{authorized, eventually},
    receivers::{Hook, SMS_API_TOKEN, SMS_INVALID_NUMBER, SmsProvider, SmtpSink, WebhookReceiver},
};
use tonic::transport::Channel as GrpcChannel;
use uuid::Uuid;

const SECRET: &str = "notifications-test-secret";

// ---------------------------------------------------------------------------------------------
// Tokens and waiting

fn token(role: Role, clinics: &[&str]) -> String {
    mint_hs256(
        SECRET,
        &claims(
            "notifications-test",
            role,
            clinics.iter().map(|c| c.to_string()).collect(),
            (role == Role::Integrator).then(|| "payer-1".to_owned()),
            3600,
        ),
    )
    .expect("token")
}

// ---------------------------------------------------------------------------------------------
// Time zones: a fixed-offset zone whose local hour is `hour` right now.

fn zone_with_local_hour(hour: i64) -> String {
    let utc_hour = (jiff::Timestamp::now().as_second() / 3600).rem_euclid(24);
    let offset = (hour - utc_hour + 12).rem_euclid(24) - 12;
    if offset == 0 {
        "Etc/UTC".to_owned()
    } else {
        // POSIX-style names: Etc/GMT-3 is three hours *ahead* of UTC.
        format!("Etc/GMT{:+}", -offset)
    }
}

fn ts(at: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.as_second(),
        nanos: 0,
    }
}

fn now_plus(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + seconds).expect("instant")
}

// ---------------------------------------------------------------------------------------------
// The service with its NATS, database, SMTP server and SMS provider.

struct Env {
    nats: PrivateNats,
    jetstream: jetstream::Context,
    database: TestDatabase,
    service: ServiceProcess,
    smtp: SmtpSink,
    sms: SmsProvider,
    client: NotificationsServiceClient<GrpcChannel>,
    ops: String,
}

impl Env {
    /// Starts everything; the SMTP server only when `smtp_up`.
    async fn start(smtp_up: bool, extra: &[(&str, &str)]) -> Env {
        let nats = PrivateNats::start().await.expect("nats");
        let client = async_nats::connect(nats.url()).await.expect("connect nats");
        let jetstream = jetstream::new(client);
        for producer in ["directory", "appointments", "insurance"] {
            platform::events::streams::ensure_stream(&jetstream, producer, 1)
                .await
                .expect("stream");
        }
        let mut smtp = SmtpSink::reserve();
        if smtp_up {
            smtp.start().await;
        }
        let sms = SmsProvider::start().await;
        let database = TestDatabase::create("notifications").await;
        let mut spec = ServiceSpec::new("notifications")
            .env("DATABASE_URL", database.url())
            .env("NATS_URL", nats.url())
            .env("JWT_HS256_SECRET", SECRET)
            .env("SMTP_URL", smtp.url())
            .env("SMTP_STARTTLS", "off")
            .env("SMS_API_BASE_URL", sms.base_url())
            .env("SMS_API_TOKEN", SMS_API_TOKEN)
            .env("DELIVERY_TICK_MS", "100")
            .env("SMS_DAILY_CAP", "50")
            .env("SMS_WEEKLY_CAP", "100");
        for (key, value) in extra {
            spec = spec.env(*key, *value);
        }
        let mut service = ServiceProcess::spawn(spec).await.expect("spawn");
        service
            .wait_serving(Duration::from_secs(90))
            .await
            .expect("notifications SERVING");
        let client = NotificationsServiceClient::new(service.channel().await.expect("channel"));
        Env {
            nats,
            jetstream,
            database,
            service,
            smtp,
            sms,
            client,
            ops: token(Role::Ops, &[]),
        }
    }

    /// Publishes `event` on `subject` with `Nats-Msg-Id` = its event id.
    async fn publish<M: Message>(&self, subject: &str, meta: &EventMetadata, event: &M) {
        let mut headers = NatsHeaders::new();
        headers.insert("Nats-Msg-Id", meta.event_id.as_str());
        self.jetstream
            .publish_with_headers(subject.to_owned(), headers, event.encode_to_vec().into())
            .await
            .expect("publish")
            .await
            .expect("publish ack");
    }

    async fn clinic(&self, clinic: &ClinicFixture) {
        let meta = meta("directory", "clinic", &clinic.id, 1);
        let event = ClinicRegistered {
            metadata: Some(meta.clone()),
            clinic: Some(Clinic {
                clinic_id: clinic.id.clone(),
                display_name: "Ketamine Health Centers".into(),
                time_zone: clinic.zone.clone(),
                contact: Some(ClinicContact {
                    phone: "+13055550100".into(),
                    email: clinic.front_desk_email.clone(),
                    on_call: Some(OnCallContact {
                        display_name: "Clinical on-call".into(),
                        phone: clinic.on_call_phone.clone(),
                        email: clinic.on_call_email.clone(),
                    }),
                }),
                locations: vec![Location {
                    display_name: "Coral Gables".into(),
                    ..Location::default()
                }],
                version: 1,
                ..Clinic::default()
            }),
            providers: Vec::new(),
        };
        self.publish("clinicnet.directory.clinic.registered", &meta, &event)
            .await;
    }

    async fn patient(&self, patient: &PatientFixture) {
        let meta = meta("appointments", "patient", &patient.id, 1);
        let event = PatientRegistered {
            metadata: Some(meta.clone()),
            patient: Some(Patient {
                patient_id: patient.id.clone(),
                name: Some(PersonName {
                    given_name: "Ana".into(),
                    family_name: "García Márquez".into(),
                    ..PersonName::default()
                }),
                preferred_locale: patient.locale as i32,
                contacts: Some(PatientContacts {
                    email: patient.email.clone(),
                    email_consent: true,
                    mobile_phone: patient.phone.clone(),
                    sms_consent: true,
                    consent_update_time: None,
                }),
                registered_clinic_id: patient.clinic_id.clone(),
                version: 1,
                ..Patient::default()
            }),
        };
        self.publish("clinicnet.appointments.patient.registered", &meta, &event)
            .await;
    }

    async fn booked(&self, visit: &Appointment) {
        let meta = meta(
            "appointments",
            "appointment",
            &visit.appointment_id,
            visit.version,
        );
        let event = AppointmentBooked {
            metadata: Some(meta.clone()),
            appointment: Some(visit.clone()),
        };
        self.publish("clinicnet.appointments.appointment.booked", &meta, &event)
            .await;
    }

    async fn notifications_of(&self, appointment_id: &str) -> Vec<pb::Notification> {
        let request = pb::ListNotificationsRequest {
            page_size: 500,
            filter: Some(pb::list_notifications_request::Filter::AppointmentId(
                appointment_id.to_owned(),
            )),
            ..Default::default()
        };
        self.client
            .clone()
            .list_notifications(authorized(request, &self.ops))
            .await
            .expect("list")
            .into_inner()
            .notifications
    }

    /// Waits until `appointment_id` has a notification of `kind` on `channel` (and reminder
    /// `lead`, if given) satisfying `done`, and returns it.
    async fn wait_for(
        &self,
        appointment_id: &str,
        kind: NotificationKind,
        channel: Channel,
        lead_seconds: Option<i64>,
        done: impl Fn(&pb::Notification) -> bool,
    ) -> pb::Notification {
        eventually(
            &format!("{kind:?} by {channel:?} for {appointment_id}"),
            Duration::from_secs(60),
            || async {
                self.notifications_of(appointment_id)
                    .await
                    .into_iter()
                    .find(|n| {
                        n.kind == kind as i32
                            && n.channel == channel as i32
                            && lead_seconds
                                .is_none_or(|l| n.reminder_lead.map(|d| d.seconds) == Some(l))
                            && done(n)
                    })
            },
        )
        .await
    }

    async fn inbound(&self, from: &str, body: &str) -> pb::ReceiveInboundSmsResponse {
        let request = pb::ReceiveInboundSmsRequest {
            request_id: format!("SM-in-{}", Uuid::new_v4()),
            from_phone: from.into(),
            to_phone: "+13055550000".into(),
            body: body.into(),
            receive_time: None,
        };
        self.client
            .clone()
            .receive_inbound_sms(authorized(request, &self.ops))
            .await
            .expect("inbound sms")
            .into_inner()
    }
}

fn meta(producer: &str, aggregate: &str, id: &str, version: u64) -> EventMetadata {
    platform::events::metadata(producer, aggregate, id, version, "")
}

fn status(n: &pb::Notification) -> NotificationStatus {
    NotificationStatus::try_from(n.status).unwrap_or_default()
}

fn is(wanted: NotificationStatus) -> impl Fn(&pb::Notification) -> bool {
    move |n| status(n) == wanted
}

struct ClinicFixture {
    id: String,
    zone: String,
    front_desk_email: String,
    on_call_email: String,
    on_call_phone: String,
}

impl ClinicFixture {
    fn at_local_hour(hour: i64) -> ClinicFixture {
        let id = Uuid::now_v7().to_string();
        ClinicFixture {
            front_desk_email: format!("desk-{id}@clinic.test"),
            on_call_email: format!("oncall-{id}@clinic.test"),
            on_call_phone: "+13055550199".into(),
            zone: zone_with_local_hour(hour),
            id,
        }
    }
}

struct PatientFixture {
    id: String,
    clinic_id: String,
    locale: Locale,
    email: String,
    phone: String,
}

impl PatientFixture {
    fn new(clinic: &ClinicFixture, locale: Locale, phone: &str) -> PatientFixture {
        let id = Uuid::now_v7().to_string();
        PatientFixture {
            email: format!("patient-{id}@mail.test"),
            id,
            clinic_id: clinic.id.clone(),
            locale,
            phone: phone.to_owned(),
        }
    }
}

/// A random US mobile number in the 555 range.
fn phone() -> String {
    format!("+1305555{:04}", rand::random::<u16>() % 10_000)
}

fn visit(
    clinic: &ClinicFixture,
    patient: &PatientFixture,
    start: jiff::Timestamp,
    version: u64,
) -> Appointment {
    Appointment {
        appointment_id: Uuid::now_v7().to_string(),
        clinic_id: clinic.id.clone(),
        chair_id: "chair-1".into(),
        provider_id: "provider-1".into(),
        patient_id: patient.id.clone(),
        modality: Modality::EsketamineNasalSpray as i32,
        status: AppointmentStatus::Booked as i32,
        start_time: Some(ts(start)),
        end_time: Some(ts(jiff::Timestamp::from_second(
            start.as_second() + 3 * 3600,
        )
        .expect("end"))),
        clinic_time_zone: clinic.zone.clone(),
        planned_dose_mg: 56,
        version,
        ..Appointment::default()
    }
}

/// The wall-clock rendering the templates use for `at` in `zone` (English).
fn english_time(at: jiff::Timestamp, zone: &str) -> String {
    let local = at.in_tz(zone).expect("zone");
    let hour12 = match local.hour() % 12 {
        0 => 12,
        h => h,
    };
    let meridiem = if local.hour() < 12 { "AM" } else { "PM" };
    format!("{hour12}:{:02} {meridiem}", local.minute())
}

// ---------------------------------------------------------------------------------------------
// The tests

/// Booked → rescheduled → cancelled: a confirmation, the move (old reminders superseded, new
/// ones scheduled for the new time, the first of them delivered), a cancellation notice, and the
/// remaining reminder cancelled — exactly that at the SMTP server and the SMS provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booked_rescheduled_cancelled_sends_exactly_confirmation_move_reminder_and_cancellation() {
    let env = Env::start(true, &[("REMINDER_LEADS", "24h,2h,1h")]).await;
    let clinic = ClinicFixture::at_local_hour(12);
    let patient = PatientFixture::new(&clinic, Locale::EnUs, &phone());
    env.clinic(&clinic).await;
    env.patient(&patient).await;

    // Booked three days ahead: confirmation now, three reminders (24 h, 2 h, 1 h) queued.
    let first_start = now_plus(3 * 24 * 3600);
    let mut appointment = visit(&clinic, &patient, first_start, 1);
    let id = appointment.appointment_id.clone();
    env.booked(&appointment).await;
    for channel in [Channel::Email, Channel::Sms] {
        env.wait_for(
            &id,
            NotificationKind::AppointmentConfirmation,
            channel,
            None,
            is(NotificationStatus::Sent),
        )
        .await;
    }
    let reminders: Vec<_> = env
        .notifications_of(&id)
        .await
        .into_iter()
        .filter(|n| n.kind == NotificationKind::AppointmentReminder as i32)
        .collect();
    assert_eq!(reminders.len(), 6, "{reminders:#?}");
    assert!(
        reminders
            .iter()
            .all(|n| status(n) == NotificationStatus::Queued)
    );
    let first_reminder_ids: Vec<String> = reminders
        .iter()
        .map(|n| n.notification_id.clone())
        .collect();

    // Moved to 2 h + 8 s from now: the old reminders are superseded, the 24 h one is not
    // re-created (its moment passed), the 2 h one is due in 8 s, the 1 h one stays queued.
    let new_start = now_plus(2 * 3600 + 8);
    appointment.start_time = Some(ts(new_start));
    appointment.version = 2;
    appointment.reschedule_count = 1;
    let meta2 = meta("appointments", "appointment", &id, 2);
    env.publish(
        "clinicnet.appointments.appointment.rescheduled",
        &meta2,
        &AppointmentRescheduled {
            metadata: Some(meta2.clone()),
            appointment: Some(appointment.clone()),
            previous_start_time: Some(ts(first_start)),
            previous_end_time: None,
            previous_chair_id: "chair-1".into(),
            previous_provider_id: "provider-1".into(),
        },
    )
    .await;
    for channel in [Channel::Email, Channel::Sms] {
        env.wait_for(
            &id,
            NotificationKind::AppointmentRescheduled,
            channel,
            None,
            is(NotificationStatus::Sent),
        )
        .await;
        env.wait_for(
            &id,
            NotificationKind::AppointmentReminder,
            channel,
            Some(2 * 3600),
            is(NotificationStatus::Sent),
        )
        .await;
    }
    let all = env.notifications_of(&id).await;
    for old in &first_reminder_ids {
        let n = all
            .iter()
            .find(|n| &n.notification_id == old)
            .expect("old reminder");
        assert_eq!(status(n), NotificationStatus::Suppressed);
        assert_eq!(n.suppression_reason, SuppressionReason::Superseded as i32);
    }
    assert!(
        !all.iter()
            .any(|n| n.reminder_lead.map(|d| d.seconds) == Some(24 * 3600)
                && n.source_event_id == meta2.event_id),
        "no 24 h reminder for a visit 2 h away"
    );
    let one_hour: Vec<_> = all
        .iter()
        .filter(|n| {
            n.reminder_lead.map(|d| d.seconds) == Some(3600) && n.source_event_id == meta2.event_id
        })
        .collect();
    assert_eq!(one_hour.len(), 2);
    for n in &one_hour {
        assert_eq!(status(n), NotificationStatus::Queued);
        assert_eq!(
            n.scheduled_time.map(|t| t.seconds),
            Some(new_start.as_second() - 3600)
        );
    }

    // Cancelled: a cancellation notice, and the 1 h reminders are cancelled.
    appointment.status = AppointmentStatus::Cancelled as i32;
    appointment.version = 3;
    let meta3 = meta("appointments", "appointment", &id, 3);
    env.publish(
        "clinicnet.appointments.appointment.cancelled",
        &meta3,
        &AppointmentCancelled {
            metadata: Some(meta3.clone()),
            appointment: Some(appointment.clone()),
        },
    )
    .await;
    for channel in [Channel::Email, Channel::Sms] {
        env.wait_for(
            &id,
            NotificationKind::AppointmentCancelled,
            channel,
            None,
            is(NotificationStatus::Sent),
        )
        .await;
        let reminder = env
            .wait_for(
                &id,
                NotificationKind::AppointmentReminder,
                channel,
                Some(3600),
                |n| status(n) == NotificationStatus::Suppressed,
            )
            .await;
        assert_eq!(
            reminder.suppression_reason,
            SuppressionReason::AppointmentCancelled as i32
        );
    }

    // Exactly these messages arrived, in this order, on each channel.
    let mails = env.smtp.mails_to(&patient.email);
    let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(subjects.len(), 4, "{subjects:#?}");
    assert!(
        subjects[0].starts_with("Your visit at Coral Gables on"),
        "{subjects:?}"
    );
    assert!(
        subjects[1].starts_with("Your visit at Coral Gables moved to"),
        "{subjects:?}"
    );
    assert!(
        subjects[2].starts_with("Reminder: your visit at Coral Gables"),
        "{subjects:?}"
    );
    assert!(subjects[3].contains("is cancelled"), "{subjects:?}");
    let new_time = english_time(new_start, &clinic.zone);
    assert!(
        subjects[2].contains(&new_time),
        "{} lacks {new_time}",
        subjects[2]
    );
    assert!(
        mails[2].body.contains("at least 2 hours"),
        "esketamine instructions: {}",
        mails[2].body
    );
    let texts: Vec<String> = env
        .sms
        .delivered_to(&patient.phone)
        .into_iter()
        .map(|s| s.body)
        .collect();
    assert_eq!(texts.len(), 4, "{texts:#?}");
    assert!(texts[0].contains("your visit is booked"));
    assert!(texts[1].contains("your visit moved"));
    assert!(texts[2].contains("reminder of your visit") && texts[2].contains(&new_time));
    assert!(texts[3].contains("is cancelled"));
    for text in texts.iter().chain(
        subjects
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .iter(),
    ) {
        assert!(!text.to_lowercase().contains("ketamine"), "{text}");
    }
    env.database.drop_db().await;
    drop(env.nats);
}

/// A Spanish-speaking patient texts ALTO: the reply comes in Spanish, a booking then sends the
/// email but no SMS; COMENZAR restores SMS for the next booking. Preferences show the opt-out,
/// and SetPreferences cannot switch critical alerts off or win with a stale version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_suppresses_sms_but_not_email_and_start_restores_it() {
    let env = Env::start(true, &[("REMINDER_LEADS", "1h")]).await;
    let clinic = ClinicFixture::at_local_hour(12);
    let patient = PatientFixture::new(&clinic, Locale::EsUs, &phone());
    env.clinic(&clinic).await;
    env.patient(&patient).await;

    let stop = env.inbound(&patient.phone, "  Alto ").await;
    assert_eq!(stop.keyword, pb::InboundSmsKeyword::Stop as i32);
    assert!(stop.sms_opted_out);
    assert_eq!(
        stop.reply.as_ref().map(|r| r.kind),
        Some(NotificationKind::SmsKeywordReply as i32)
    );
    eventually(
        "the opt-out confirmation",
        Duration::from_secs(30),
        || async {
            env.sms
                .delivered_to(&patient.phone)
                .into_iter()
                .find(|s| s.body.contains("COMENZAR"))
        },
    )
    .await;
    let recipient = pb::Recipient {
        target: Some(Target::PatientId(patient.id.clone())),
    };
    let preferences = env
        .client
        .clone()
        .get_preferences(authorized(
            pb::GetPreferencesRequest {
                recipient: Some(recipient.clone()),
            },
            &env.ops,
        ))
        .await
        .expect("preferences")
        .into_inner()
        .preferences
        .expect("preferences");
    assert!(
        preferences
            .channels
            .iter()
            .any(|c| c.channel == Channel::Sms as i32 && c.sms_opted_out)
    );

    let start = now_plus(5 * 24 * 3600);
    let first = visit(&clinic, &patient, start, 1);
    env.booked(&first).await;
    let email = env
        .wait_for(
            &first.appointment_id,
            NotificationKind::AppointmentConfirmation,
            Channel::Email,
            None,
            is(NotificationStatus::Sent),
        )
        .await;
    assert_eq!(email.locale, Locale::EsUs as i32);
    let sms = env
        .wait_for(
            &first.appointment_id,
            NotificationKind::AppointmentConfirmation,
            Channel::Sms,
            None,
            |n| status(n) != NotificationStatus::Queued,
        )
        .await;
    assert_eq!(status(&sms), NotificationStatus::Suppressed);
    assert_eq!(
        sms.suppression_reason,
        SuppressionReason::SmsOptedOut as i32
    );
    let mail = &env.smtp.mails_to(&patient.email)[0];
    assert!(
        mail.subject.starts_with("Su cita en Coral Gables el "),
        "{}",
        mail.subject
    );
    let local = start.in_tz(&clinic.zone).expect("zone");
    let hour12 = match local.hour() % 12 {
        0 => 12,
        h => h,
    };
    let article = if hour12 == 1 { "la" } else { "las" };
    let expected = format!("a {article} {hour12}:{:02}", local.minute());
    assert!(
        mail.subject.contains(&expected),
        "{} lacks {expected}",
        mail.subject
    );

    let help = env.inbound(&patient.phone, "AYUDA").await;
    assert_eq!(help.keyword, pb::InboundSmsKeyword::Help as i32);
    assert!(help.sms_opted_out, "HELP does not lift the opt-out");
    eventually("the help reply", Duration::from_secs(30), || async {
        (env.sms.delivered_to(&patient.phone).len() == 2).then_some(())
    })
    .await;
    let start_again = env.inbound(&patient.phone, "comenzar").await;
    assert_eq!(start_again.keyword, pb::InboundSmsKeyword::Start as i32);
    assert!(!start_again.sms_opted_out);

    let second = visit(&clinic, &patient, now_plus(6 * 24 * 3600), 1);
    env.booked(&second).await;
    env.wait_for(
        &second.appointment_id,
        NotificationKind::AppointmentConfirmation,
        Channel::Sms,
        None,
        is(NotificationStatus::Sent),
    )
    .await;
    // The START reply and the second confirmation are sent independently: wait for both, in
    // whichever order they arrive.
    eventually(
        "the start reply and the second confirmation",
        Duration::from_secs(30),
        || async { (env.sms.delivered_to(&patient.phone).len() >= 4).then_some(()) },
    )
    .await;
    let texts: Vec<String> = env
        .sms
        .delivered_to(&patient.phone)
        .into_iter()
        .map(|s| s.body)
        .collect();
    assert_eq!(
        texts.len(),
        4,
        "stop reply, help reply, start reply, second confirmation: {texts:#?}"
    );
    assert!(texts[1].contains("ayuda"), "{}", texts[1]);
    let later = &texts[2..];
    assert!(
        later.iter().any(|t| t.contains("suscrito otra vez")),
        "{later:#?}"
    );
    assert!(
        later.iter().any(|t| t.contains("su cita está reservada")),
        "{later:#?}"
    );

    // Preferences: critical alerts cannot be switched off; a stale version is ABORTED.
    let critical_off = pb::SetPreferencesRequest {
        request_id: Uuid::new_v4().to_string(),
        preferences: Some(pb::Preferences {
            recipient: Some(recipient.clone()),
            channels: vec![pb::ChannelPreference {
                channel: Channel::Sms as i32,
                enabled: true,
                categories: vec![pb::CategoryPreference {
                    category: pb::NotificationCategory::CriticalAlerts as i32,
                    enabled: false,
                }],
                sms_opted_out: false,
            }],
            ..Default::default()
        }),
        expected_version: 0,
    };
    let error = env
        .client
        .clone()
        .set_preferences(authorized(critical_off, &env.ops))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        platform::error::violated_fields(&error),
        vec!["preferences.channels[0].categories[0].category"]
    );
    let no_email = |version| pb::SetPreferencesRequest {
        request_id: Uuid::new_v4().to_string(),
        preferences: Some(pb::Preferences {
            recipient: Some(recipient.clone()),
            channels: vec![pb::ChannelPreference {
                channel: Channel::Email as i32,
                enabled: false,
                ..Default::default()
            }],
            ..Default::default()
        }),
        expected_version: version,
    };
    let stored = env
        .client
        .clone()
        .set_preferences(authorized(no_email(0), &env.ops))
        .await
        .expect("set")
        .into_inner();
    assert_eq!(stored.preferences.map(|p| p.version), Some(1));
    let stale = env
        .client
        .clone()
        .set_preferences(authorized(no_email(0), &env.ops))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Aborted);
    let integrator = token(Role::Integrator, &[]);
    let denied = env
        .client
        .clone()
        .get_preferences(authorized(
            pb::GetPreferencesRequest {
                recipient: Some(recipient),
            },
            &integrator,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    env.database.drop_db().await;
}

/// The SMTP server is down (connection refused, then 451) and the SMS provider answers 503: the
/// messages are retried with backoff and, once the providers are back, delivered exactly once.
/// A rejected mailbox (SMTP 550) and an invalid number (HTTP 400) fail for good, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_outages_are_retried_until_delivered_once_and_permanent_failures_are_recorded() {
    let mut env = Env::start(
        false,
        &[
            ("REMINDER_LEADS", "1h"),
            ("RETRY_BASE_MS", "300"),
            ("RETRY_MAX_MS", "1200"),
            ("DELIVERY_MAX_ATTEMPTS", "40"),
            ("PROVIDER_TIMEOUT_MS", "2000"),
        ],
    )
    .await;
    env.sms.set_down(true);
    let clinic = ClinicFixture::at_local_hour(12);
    let good = PatientFixture::new(&clinic, Locale::EnUs, &phone());
    let mut bad = PatientFixture::new(&clinic, Locale::EnUs, SMS_INVALID_NUMBER);
    bad.email = format!("reject-{}@mail.test", bad.id);
    env.clinic(&clinic).await;
    env.patient(&good).await;
    env.patient(&bad).await;
    let good_visit = visit(&clinic, &good, now_plus(4 * 24 * 3600), 1);
    let bad_visit = visit(&clinic, &bad, now_plus(4 * 24 * 3600), 1);
    env.booked(&good_visit).await;
    env.booked(&bad_visit).await;
    let kind = NotificationKind::AppointmentConfirmation;

    // Retried at least once and queued for the next attempt: a send in flight is also QUEUED,
    // but only a row between attempts has a next attempt time.
    let retrying = |error: &'static str| {
        move |n: &pb::Notification| {
            n.attempts >= 2
                && n.last_error == error
                && status(n) == NotificationStatus::Queued
                && n.next_attempt_time.is_some()
        }
    };
    let email = env
        .wait_for(
            &good_visit.appointment_id,
            kind,
            Channel::Email,
            None,
            retrying("smtp connection error"),
        )
        .await;
    assert!(email.next_attempt_time.unwrap().seconds >= email.create_time.unwrap().seconds);
    env.wait_for(
        &good_visit.appointment_id,
        kind,
        Channel::Sms,
        None,
        retrying("sms http 503"),
    )
    .await;

    // The SMTP server comes up but answers 451 at first; the rejected mailbox fails for good.
    env.smtp.set_mode("tempfail");
    env.smtp.start().await;
    env.wait_for(
        &good_visit.appointment_id,
        kind,
        Channel::Email,
        None,
        |n| n.last_error == "smtp 451",
    )
    .await;
    let rejected = env
        .wait_for(
            &bad_visit.appointment_id,
            kind,
            Channel::Email,
            None,
            is(NotificationStatus::Failed),
        )
        .await;
    assert!(rejected.permanent_failure);
    assert_eq!(rejected.last_error, "smtp 550");

    // Both providers recover.
    env.smtp.set_mode("accept");
    env.sms.set_down(false);
    let email = env
        .wait_for(
            &good_visit.appointment_id,
            kind,
            Channel::Email,
            None,
            is(NotificationStatus::Sent),
        )
        .await;
    let sms = env
        .wait_for(
            &good_visit.appointment_id,
            kind,
            Channel::Sms,
            None,
            is(NotificationStatus::Sent),
        )
        .await;
    assert!(
        email.attempts >= 3 && sms.attempts >= 2,
        "{email:?} {sms:?}"
    );
    assert!(email.sent_time.is_some());
    let invalid = env
        .wait_for(
            &bad_visit.appointment_id,
            kind,
            Channel::Sms,
            None,
            is(NotificationStatus::Failed),
        )
        .await;
    assert!(invalid.permanent_failure);
    assert_eq!(invalid.last_error, "sms http 400");

    let mails = env.smtp.mails_to(&good.email);
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(mails[0].message_id, email.provider_message_id);
    assert_eq!(env.sms.delivered_to(&good.phone).len(), 1);
    assert!(env.smtp.mails_to(&bad.email).is_empty());
    assert!(env.sms.delivered_to(&bad.phone).is_empty());
    env.database.drop_db().await;
}

/// SIGKILL while 500 notifications (250 emails, 250 SMS) are being sent, then a restart: every
/// notification ends sent. SMS: each delivered exactly once (the provider honours the
/// notification id as idempotency key). Email: each Message-ID arrives, and only sends in flight
/// at the kill (recorded as `sending`) may arrive a second time, with the same Message-ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_sending_500_notifications_then_restart_delivers_each_once() {
    const PATIENTS: usize = 250;
    let mut env = Env::start(
        true,
        &[
            ("REMINDER_LEADS", "1h"),
            ("PROVIDER_TIMEOUT_MS", "2000"),
            ("DELIVERY_CONCURRENCY", "8"),
        ],
    )
    .await;
    let clinic = ClinicFixture::at_local_hour(12);
    env.clinic(&clinic).await;
    let patients: Vec<PatientFixture> = (0..PATIENTS)
        .map(|i| PatientFixture::new(&clinic, Locale::EnUs, &format!("+1786555{i:04}")))
        .collect();
    for patient in &patients {
        env.patient(patient).await;
    }
    for patient in &patients {
        env.booked(&visit(&clinic, patient, now_plus(3 * 24 * 3600), 1))
            .await;
    }
    let received = || env.smtp.mails().len() + env.sms.delivered().len();
    eventually(
        "a fifth of the messages delivered",
        Duration::from_secs(90),
        || async { (received() >= 100).then_some(()) },
    )
    .await;
    env.service.kill9().await.expect("kill -9");
    let at_kill = received();
    let in_doubt: Vec<(i16,)> =
        sqlx::query_as("SELECT channel FROM notifications WHERE status = 'sending'")
            .fetch_all(env.database.pool())
            .await
            .expect("in doubt");
    let emails_in_doubt = in_doubt
        .iter()
        .filter(|(c,)| *c == Channel::Email as i16)
        .count();
    assert!(
        at_kill < 2 * PATIENTS,
        "killed too late to test anything ({at_kill} delivered)"
    );

    env.service.restart().await.expect("restart");
    env.service
        .wait_serving(Duration::from_secs(60))
        .await
        .expect("serving again");
    let confirmations = NotificationKind::AppointmentConfirmation as i16;
    let sent: Vec<(Uuid, i16, String)> = eventually("all 500 sent", Duration::from_secs(120), || async {
        let rows: Vec<(Uuid, i16, String, String)> = sqlx::query_as(
            "SELECT notification_id, channel, status, provider_message_id FROM notifications WHERE kind = $1",
        )
        .bind(confirmations)
        .fetch_all(env.database.pool())
        .await
        .expect("rows");
        (rows.len() == 2 * PATIENTS && rows.iter().all(|r| r.2 == "sent"))
            .then(|| rows.into_iter().map(|r| (r.0, r.1, r.3)).collect())
    })
    .await;

    // SMS: every notification delivered exactly once, keyed by its id.
    let delivered = env.sms.delivered();
    assert_eq!(delivered.len(), PATIENTS, "SMS deliveries");
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for sms in &delivered {
        *per_key.entry(sms.key.clone()).or_default() += 1;
    }
    for (id, channel, _) in sent.iter().filter(|r| r.1 == Channel::Sms as i16) {
        assert_eq!(
            per_key.get(&id.to_string()),
            Some(&1),
            "SMS {id} ({channel})"
        );
    }
    // Email: every Message-ID present; duplicates only for sends in doubt at the kill.
    let mails = env.smtp.mails();
    let mut per_message_id: HashMap<String, usize> = HashMap::new();
    for mail in &mails {
        *per_message_id.entry(mail.message_id.clone()).or_default() += 1;
    }
    for (id, _, message_id) in sent.iter().filter(|r| r.1 == Channel::Email as i16) {
        assert!(message_id.contains(&id.to_string()));
        assert!(
            per_message_id.contains_key(message_id),
            "email {id} never arrived"
        );
    }
    assert_eq!(per_message_id.len(), PATIENTS);
    let duplicates = mails.len() - per_message_id.len();
    assert!(
        duplicates <= emails_in_doubt,
        "{duplicates} duplicate emails but only {emails_in_doubt} were in doubt at the kill"
    );
    env.database.drop_db().await;
}

fn verifies(secret: &str, hook: &Hook) -> bool {
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        if let Some(value) = hook.headers.get(name) {
            headers.insert(name, value.clone());
        }
    }
    standardwebhooks::Webhook::new(secret)
        .expect("secret")
        .verify(&hook.body, &headers)
        .is_ok()
}

/// Webhooks are signed per Standard Webhooks and verified with the independent `standardwebhooks`
/// crate: with the first secret; during a rotation's grace period with both the previous and the
/// new secret; after a rotation without grace only with the newest. A removed endpoint gets
/// nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_signatures_verify_with_standard_webhooks_during_secret_rotation() {
    let receiver = WebhookReceiver::start().await;
    let ca = receiver.ca_path().display().to_string();
    let env = Env::start(true, &[("REMINDER_LEADS", "1h"), ("WEBHOOK_CA_FILE", &ca)]).await;
    let clinic = ClinicFixture::at_local_hour(12);
    let patient = PatientFixture::new(&clinic, Locale::EnUs, &phone());
    env.clinic(&clinic).await;
    env.patient(&patient).await;
    let partner = token(Role::PartnerClinic, &[&clinic.id]);
    let mut client = env.client.clone();

    // Registration: https only, partners only for their clinic, the clinic must be known.
    let register = |url: &str, clinic_id: &str| pb::RegisterWebhookEndpointRequest {
        request_id: Uuid::new_v4().to_string(),
        clinic_id: clinic_id.to_owned(),
        url: url.to_owned(),
        kinds: Vec::new(),
        description: "front desk system".into(),
    };
    let insecure = client
        .register_webhook_endpoint(authorized(
            register("http://127.0.0.1/hooks", &clinic.id),
            &partner,
        ))
        .await
        .unwrap_err();
    assert_eq!(platform::error::violated_fields(&insecure), vec!["url"]);
    let elsewhere = client
        .register_webhook_endpoint(authorized(
            register(receiver.url(), "another-clinic"),
            &partner,
        ))
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), tonic::Code::PermissionDenied);
    let registered = eventually(
        "the clinic in the directory read model",
        Duration::from_secs(30),
        || {
            let mut client = client.clone();
            let request = register(receiver.url(), &clinic.id);
            let partner = partner.clone();
            async move {
                client
                    .register_webhook_endpoint(authorized(request, &partner))
                    .await
                    .ok()
            }
        },
    )
    .await
    .into_inner();
    let endpoint_id = registered.endpoint.expect("endpoint").endpoint_id;
    let first_secret = registered.secret;
    assert!(first_secret.starts_with("whsec_"));
    let again = client
        .register_webhook_endpoint(authorized(register(receiver.url(), &clinic.id), &partner))
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::AlreadyExists);

    let send_test = |endpoint_id: String| pb::SendTestMessageRequest {
        request_id: Uuid::new_v4().to_string(),
        channel: Channel::Webhook as i32,
        locale: Locale::EnUs as i32,
        target: Some(pb::send_test_message_request::Target::WebhookEndpointId(
            endpoint_id,
        )),
    };
    let wait_hooks = |count: usize| {
        let received = &receiver;
        async move {
            eventually(
                &format!("{count} webhooks"),
                Duration::from_secs(30),
                || async {
                    let hooks = received.received();
                    (hooks.len() >= count).then_some(hooks)
                },
            )
            .await
        }
    };

    // 1. Signed with the first secret.
    let test = client
        .send_test_message(authorized(send_test(endpoint_id.clone()), &partner))
        .await
        .expect("test")
        .into_inner();
    let hooks = wait_hooks(1).await;
    let first = &hooks[0];
    assert_eq!(
        first
            .headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok()),
        test.notification.map(|n| n.notification_id).as_deref()
    );
    assert!(verifies(&first_secret, first));
    assert!(
        !verifies(&platform_free_secret(), first),
        "a wrong secret must not verify"
    );

    // 2. Rotation with a grace period: a booking's webhook carries both signatures.
    let rotate = |grace: i64| pb::RotateWebhookSecretRequest {
        request_id: Uuid::new_v4().to_string(),
        endpoint_id: endpoint_id.clone(),
        grace_period: Some(prost_types::Duration {
            seconds: grace,
            nanos: 0,
        }),
    };
    let rotated = client
        .rotate_webhook_secret(authorized(rotate(3600), &partner))
        .await
        .expect("rotate")
        .into_inner();
    let second_secret = rotated.secret;
    assert!(
        rotated
            .endpoint
            .expect("endpoint")
            .previous_secret_expire_time
            .is_some()
    );
    let booking = visit(&clinic, &patient, now_plus(3 * 24 * 3600), 1);
    env.booked(&booking).await;
    let hooks = wait_hooks(2).await;
    let during = &hooks[1];
    let body: serde_json::Value = serde_json::from_slice(&during.body).expect("json body");
    assert_eq!(body["type"], "appointment.booked");
    assert_eq!(
        body["data"]["appointment_id"],
        booking.appointment_id.as_str()
    );
    assert!(
        body.to_string().find("García").is_none(),
        "no names in webhooks"
    );
    assert!(
        verifies(&first_secret, during),
        "previous secret during the grace period"
    );
    assert!(
        verifies(&second_secret, during),
        "new secret during the grace period"
    );

    // 3. Rotation without grace: only the newest secret signs.
    let third_secret = client
        .rotate_webhook_secret(authorized(rotate(0), &partner))
        .await
        .expect("rotate")
        .into_inner()
        .secret;
    client
        .send_test_message(authorized(send_test(endpoint_id.clone()), &partner))
        .await
        .expect("test");
    let hooks = wait_hooks(3).await;
    let after = &hooks[2];
    assert!(verifies(&third_secret, after));
    assert!(!verifies(&second_secret, after));
    assert!(!verifies(&first_secret, after));
    let too_long = client
        .rotate_webhook_secret(authorized(rotate(8 * 24 * 3600), &partner))
        .await
        .unwrap_err();
    assert_eq!(
        platform::error::violated_fields(&too_long),
        vec!["grace_period"]
    );

    // Listing shows no secret; removal stops delivery.
    let listed = client
        .list_webhook_endpoints(authorized(
            pb::ListWebhookEndpointsRequest {
                clinic_id: clinic.id.clone(),
                ..Default::default()
            },
            &partner,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.endpoints.len(), 1);
    client
        .remove_webhook_endpoint(authorized(
            pb::RemoveWebhookEndpointRequest {
                request_id: Uuid::new_v4().to_string(),
                endpoint_id: endpoint_id.clone(),
            },
            &partner,
        ))
        .await
        .expect("remove");
    let removed = client
        .send_test_message(authorized(send_test(endpoint_id.clone()), &partner))
        .await
        .unwrap_err();
    assert_eq!(removed.code(), tonic::Code::FailedPrecondition);
    env.database.drop_db().await;
}

/// A secret nobody issued.
fn platform_free_secret() -> String {
    format!("whsec_{}", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=")
}

/// At 02:xx clinic time an SMS confirmation waits for 08:00 local while the email goes at once;
/// a critical safety alert reaches the on-call phone and email at once, even with the clinic's
/// SMS switched off in its preferences.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_hold_sms_until_morning_but_critical_alerts_go_at_once() {
    let env = Env::start(true, &[("REMINDER_LEADS", "1h")]).await;
    let clinic = ClinicFixture::at_local_hour(2);
    let patient = PatientFixture::new(&clinic, Locale::EnUs, &phone());
    env.clinic(&clinic).await;
    env.patient(&patient).await;
    let booking = visit(&clinic, &patient, now_plus(2 * 24 * 3600), 1);
    env.booked(&booking).await;
    let kind = NotificationKind::AppointmentConfirmation;
    env.wait_for(
        &booking.appointment_id,
        kind,
        Channel::Email,
        None,
        is(NotificationStatus::Sent),
    )
    .await;
    let now_local = jiff::Timestamp::now().in_tz(&clinic.zone).expect("zone");
    let eight = now_local
        .date()
        .at(8, 0, 0, 0)
        .in_tz(&clinic.zone)
        .expect("08:00")
        .timestamp();
    let held = env
        .wait_for(&booking.appointment_id, kind, Channel::Sms, None, |n| {
            n.scheduled_time.map(|t| t.seconds) == Some(eight.as_second())
        })
        .await;
    assert_eq!(status(&held), NotificationStatus::Queued);

    // The clinic switches SMS off; a safety follow-up still reaches its on-call contact.
    let clinic_recipient = pb::Recipient {
        target: Some(Target::ClinicId(clinic.id.clone())),
    };
    env.client
        .clone()
        .set_preferences(authorized(
            pb::SetPreferencesRequest {
                request_id: Uuid::new_v4().to_string(),
                preferences: Some(pb::Preferences {
                    recipient: Some(clinic_recipient),
                    channels: vec![pb::ChannelPreference {
                        channel: Channel::Sms as i32,
                        enabled: false,
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                expected_version: 0,
            },
            &env.ops,
        ))
        .await
        .expect("clinic preferences");
    let meta = meta("appointments", "appointment", &booking.appointment_id, 2);
    env.publish(
        "clinicnet.appointments.appointment.safety_follow_up_required",
        &meta,
        &SafetyFollowUpRequired {
            metadata: Some(meta.clone()),
            appointment_id: booking.appointment_id.clone(),
            patient_id: patient.id.clone(),
            clinic_id: clinic.id.clone(),
            provider_id: "provider-1".into(),
            phq9_item9_score: 2,
            phq9_total_score: 21,
            detect_time: Some(ts(jiff::Timestamp::now())),
        },
    )
    .await;
    let kind = NotificationKind::SafetyFollowUp;
    for channel in [Channel::Sms, Channel::Email] {
        let alert = env
            .wait_for(
                &booking.appointment_id,
                kind,
                channel,
                None,
                is(NotificationStatus::Sent),
            )
            .await;
        assert!(alert.critical);
    }
    let alert_sms = env.sms.delivered_to(&clinic.on_call_phone);
    assert_eq!(alert_sms.len(), 1);
    assert!(
        alert_sms[0].body.starts_with("URGENT Coral Gables"),
        "{}",
        alert_sms[0].body
    );
    assert!(
        !alert_sms[0].body.contains("21") || !alert_sms[0].body.contains("PHQ"),
        "no scores"
    );
    assert_eq!(env.smtp.mails_to(&clinic.on_call_email).len(), 1);
    assert!(
        env.sms.delivered_to(&patient.phone).is_empty(),
        "the patient's SMS waits for 08:00"
    );
    let still = env.notifications_of(&booking.appointment_id).await;
    assert!(
        still
            .iter()
            .any(|n| n.notification_id == held.notification_id
                && status(n) == NotificationStatus::Queued)
    );
    env.database.drop_db().await;
}
