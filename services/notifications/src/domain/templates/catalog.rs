//! The catalogue of templates: which exist, on which channels, and the typed variables each may
//! use. Start-up checks the files under `templates/` against it for every locale.

use clinicnet_proto::{common::v1::Locale, notifications::v1::Channel};

/// The type of a template variable, which decides how its value is formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarType {
    /// Plain text (names, ids, phone numbers, instructions).
    Text,
    /// An instant, shown in the clinic's time zone and the recipient's language.
    Instant,
    /// A calendar date.
    Date,
    /// An amount of money.
    Money,
    /// A payer's decision.
    Decision,
}

/// One template: what a message says for one trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateId {
    /// A visit was booked.
    AppointmentConfirmation,
    /// A visit was moved.
    AppointmentRescheduled,
    /// A visit was cancelled.
    AppointmentCancelled,
    /// A reminder before a visit.
    AppointmentReminder,
    /// A visit was missed.
    AppointmentNoShow,
    /// An offer to book an integration session.
    IntegrationSessionOffer,
    /// Critical: a patient needs clinical follow-up (to the clinic's on-call contact).
    SafetyFollowUp,
    /// A prior authorization was decided (to the patient).
    PriorAuthorizationDecided,
    /// A prior authorization was decided (to the clinic's front desk).
    PriorAuthorizationDecidedClinic,
    /// The patient owes an amount after adjudication.
    PatientResponsibility,
    /// A superbill is ready.
    SuperbillIssued,
    /// Reply to a STOP keyword.
    SmsKeywordStop,
    /// Reply to a START keyword.
    SmsKeywordStart,
    /// Reply to a HELP keyword.
    SmsKeywordHelp,
    /// A test message.
    TestMessage,
}

use TemplateId::*;
use VarType::*;

const EMAIL_AND_SMS: &[Channel] = &[Channel::Email, Channel::Sms];
const EMAIL: &[Channel] = &[Channel::Email];
const SMS: &[Channel] = &[Channel::Sms];

/// The locales every template must exist in.
pub const LOCALES: [Locale; 2] = [Locale::EnUs, Locale::EsUs];

impl TemplateId {
    /// Every template.
    pub const ALL: [TemplateId; 15] = [
        AppointmentConfirmation,
        AppointmentRescheduled,
        AppointmentCancelled,
        AppointmentReminder,
        AppointmentNoShow,
        IntegrationSessionOffer,
        SafetyFollowUp,
        PriorAuthorizationDecided,
        PriorAuthorizationDecidedClinic,
        PatientResponsibility,
        SuperbillIssued,
        SmsKeywordStop,
        SmsKeywordStart,
        SmsKeywordHelp,
        TestMessage,
    ];

    /// The file name stem, e.g. `appointment_reminder`.
    pub fn name(self) -> &'static str {
        match self {
            AppointmentConfirmation => "appointment_confirmation",
            AppointmentRescheduled => "appointment_rescheduled",
            AppointmentCancelled => "appointment_cancelled",
            AppointmentReminder => "appointment_reminder",
            AppointmentNoShow => "appointment_no_show",
            IntegrationSessionOffer => "integration_session_offer",
            SafetyFollowUp => "safety_follow_up",
            PriorAuthorizationDecided => "prior_authorization_decided",
            PriorAuthorizationDecidedClinic => "prior_authorization_decided_clinic",
            PatientResponsibility => "patient_responsibility",
            SuperbillIssued => "superbill_issued",
            SmsKeywordStop => "sms_keyword_stop",
            SmsKeywordStart => "sms_keyword_start",
            SmsKeywordHelp => "sms_keyword_help",
            TestMessage => "test_message",
        }
    }

    /// The template named `name`.
    pub fn parse(name: &str) -> Option<TemplateId> {
        Self::ALL.into_iter().find(|id| id.name() == name)
    }

    /// The channels it has a text for.
    pub fn channels(self) -> &'static [Channel] {
        match self {
            PriorAuthorizationDecidedClinic => EMAIL,
            SmsKeywordStop | SmsKeywordStart | SmsKeywordHelp => SMS,
            _ => EMAIL_AND_SMS,
        }
    }

    /// The variables its texts may use, with their types.
    pub fn variables(self) -> &'static [(&'static str, VarType)] {
        match self {
            AppointmentConfirmation | AppointmentReminder => &[
                ("clinic_name", Text),
                ("clinic_phone", Text),
                ("start", Instant),
                ("instructions", Text),
            ],
            AppointmentRescheduled => &[
                ("clinic_name", Text),
                ("clinic_phone", Text),
                ("start", Instant),
                ("previous_start", Instant),
                ("instructions", Text),
            ],
            AppointmentCancelled | AppointmentNoShow => &[
                ("clinic_name", Text),
                ("clinic_phone", Text),
                ("start", Instant),
            ],
            IntegrationSessionOffer => &[
                ("clinic_name", Text),
                ("clinic_phone", Text),
                ("window_start", Instant),
                ("window_end", Instant),
            ],
            SafetyFollowUp => &[
                ("clinic_name", Text),
                ("patient_id", Text),
                ("appointment_id", Text),
                ("detect_time", Instant),
            ],
            PriorAuthorizationDecided => &[
                ("clinic_name", Text),
                ("clinic_phone", Text),
                ("decision", Decision),
            ],
            PriorAuthorizationDecidedClinic => &[
                ("clinic_name", Text),
                ("decision", Decision),
                ("patient_id", Text),
                ("prior_authorization_id", Text),
                ("authorization_number", Text),
            ],
            PatientResponsibility => &[
                ("clinic_name", Text),
                ("clinic_phone", Text),
                ("amount", Money),
                ("service_date", Date),
            ],
            SuperbillIssued => &[
                ("clinic_name", Text),
                ("clinic_phone", Text),
                ("service_date", Date),
            ],
            SmsKeywordStop | SmsKeywordStart | SmsKeywordHelp => &[],
            TestMessage => &[("clinic_name", Text)],
        }
    }

    /// The declared type of `variable`, if the template declares it.
    pub fn variable_type(self, variable: &str) -> Option<VarType> {
        self.variables()
            .iter()
            .find(|(name, _)| *name == variable)
            .map(|(_, ty)| *ty)
    }
}

/// The directory name of a locale, e.g. `en_US`.
pub fn locale_dir(locale: Locale) -> &'static str {
    match locale {
        Locale::EsUs => "es_US",
        _ => "en_US",
    }
}

/// The file suffix of a channel, e.g. `sms`.
pub fn channel_suffix(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Sms => "sms",
        Channel::Webhook => "webhook",
        Channel::Unspecified => "unspecified",
    }
}
