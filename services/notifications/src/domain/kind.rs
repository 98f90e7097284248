//! What each kind of notification is: its category, whether it is critical, its name in
//! webhooks.

use clinicnet_proto::notifications::v1::{NotificationCategory, NotificationKind};

/// The category a kind belongs to (what a recipient switches on or off).
pub fn category(kind: NotificationKind) -> NotificationCategory {
    use NotificationKind as K;
    match kind {
        K::AppointmentConfirmation
        | K::AppointmentRescheduled
        | K::AppointmentCancelled
        | K::AppointmentNoShow => NotificationCategory::AppointmentUpdates,
        K::AppointmentReminder => NotificationCategory::Reminders,
        K::IntegrationSessionOffer => NotificationCategory::CareOffers,
        K::PriorAuthorizationDecided | K::PatientResponsibility | K::SuperbillIssued => {
            NotificationCategory::Billing
        }
        K::SafetyFollowUp => NotificationCategory::CriticalAlerts,
        K::SmsKeywordReply | K::TestMessage | K::Unspecified => NotificationCategory::Service,
    }
}

/// Whether a kind is critical: it bypasses preferences, quiet hours and caps (never an SMS
/// opt-out).
pub fn is_critical(kind: NotificationKind) -> bool {
    kind == NotificationKind::SafetyFollowUp
}

/// Categories a recipient cannot switch off.
pub fn is_mandatory(category: NotificationCategory) -> bool {
    matches!(
        category,
        NotificationCategory::CriticalAlerts | NotificationCategory::Service
    )
}

/// The kind's name in webhook payloads, e.g. `appointment_confirmation`.
pub fn webhook_name(kind: NotificationKind) -> String {
    kind.as_str_name()
        .trim_start_matches("NOTIFICATION_KIND_")
        .to_ascii_lowercase()
}
