//! What an event asks for: the notifications to create (recipient × channel × kind, with their
//! template, facts and send time), including the reminders of a visit — one per configured lead
//! time whose moment is still ahead.

use super::{facts::Facts, kind, templates::catalog::TemplateId};
use clinicnet_proto::notifications::v1::{Channel, NotificationKind};
use jiff::{SignedDuration, Timestamp};

/// Who a notification is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A patient (address from the contacts read model).
    Patient(String),
    /// A clinic: its front desk, its on-call contact (critical kinds) or its webhook endpoints.
    Clinic(String),
}

/// A notification to create.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// Recipient.
    pub recipient: Recipient,
    /// Channel; for [`Channel::Webhook`] one notification per matching endpoint of the clinic.
    pub channel: Channel,
    /// Kind.
    pub kind: NotificationKind,
    /// Template (none for webhooks).
    pub template: Option<TemplateId>,
    /// Not sent before.
    pub scheduled_at: Timestamp,
    /// For reminders: how long before the visit.
    pub reminder_lead: Option<SignedDuration>,
    /// Facts to render it with.
    pub facts: Facts,
    /// Clinic it is about.
    pub clinic_id: String,
}

impl Draft {
    /// Whether it is critical.
    pub fn critical(&self) -> bool {
        kind::is_critical(self.kind)
    }
}

/// Email and SMS to a patient, plus a webhook to the clinic when `webhook` is set.
pub fn to_patient(
    patient_id: &str,
    clinic_id: &str,
    kind: NotificationKind,
    template: TemplateId,
    facts: &Facts,
    now: Timestamp,
    webhook: bool,
) -> Vec<Draft> {
    let mut drafts: Vec<Draft> = [Channel::Email, Channel::Sms]
        .into_iter()
        .map(|channel| Draft {
            recipient: Recipient::Patient(patient_id.to_owned()),
            channel,
            kind,
            template: Some(template),
            scheduled_at: now,
            reminder_lead: None,
            facts: facts.clone(),
            clinic_id: clinic_id.to_owned(),
        })
        .collect();
    if webhook {
        drafts.push(to_webhooks(clinic_id, kind, facts, now));
    }
    drafts
}

/// Messages to a clinic's contact on `channels`.
pub fn to_clinic(
    clinic_id: &str,
    channels: &[Channel],
    kind: NotificationKind,
    template: TemplateId,
    facts: &Facts,
    now: Timestamp,
) -> Vec<Draft> {
    channels
        .iter()
        .map(|channel| Draft {
            recipient: Recipient::Clinic(clinic_id.to_owned()),
            channel: *channel,
            kind,
            template: Some(template),
            scheduled_at: now,
            reminder_lead: None,
            facts: facts.clone(),
            clinic_id: clinic_id.to_owned(),
        })
        .collect()
}

/// A webhook to each matching endpoint of the clinic.
pub fn to_webhooks(
    clinic_id: &str,
    kind: NotificationKind,
    facts: &Facts,
    now: Timestamp,
) -> Draft {
    Draft {
        recipient: Recipient::Clinic(clinic_id.to_owned()),
        channel: Channel::Webhook,
        kind,
        template: None,
        scheduled_at: now,
        reminder_lead: None,
        facts: facts.clone(),
        clinic_id: clinic_id.to_owned(),
    }
}

/// Reminders (email and SMS) for a visit starting at `start`, one per lead whose moment
/// (`start - lead`) is still after `now`; a lead already passed is skipped — the confirmation
/// covers it.
pub fn reminders(
    patient_id: &str,
    clinic_id: &str,
    start: Timestamp,
    leads: &[SignedDuration],
    facts: &Facts,
    now: Timestamp,
) -> Vec<Draft> {
    let mut drafts = Vec::new();
    for lead in leads {
        let Ok(due) = start.checked_sub(*lead) else {
            continue;
        };
        if due <= now {
            continue;
        }
        for channel in [Channel::Email, Channel::Sms] {
            drafts.push(Draft {
                recipient: Recipient::Patient(patient_id.to_owned()),
                channel,
                kind: NotificationKind::AppointmentReminder,
                template: Some(TemplateId::AppointmentReminder),
                scheduled_at: due,
                reminder_lead: Some(*lead),
                facts: facts.clone(),
                clinic_id: clinic_id.to_owned(),
            });
        }
    }
    drafts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminders_only_for_leads_still_ahead() {
        let now: Timestamp = "2026-03-10T12:00:00Z".parse().unwrap();
        let start: Timestamp = "2026-03-11T10:00:00Z".parse().unwrap();
        let leads = [
            SignedDuration::from_hours(24),
            SignedDuration::from_hours(2),
        ];
        let drafts = reminders("p", "c", start, &leads, &Facts::default(), now);
        assert_eq!(
            drafts.len(),
            2,
            "24 h lead already passed: only the 2 h one, by email and SMS"
        );
        assert!(
            drafts
                .iter()
                .all(|d| d.scheduled_at == "2026-03-11T08:00:00Z".parse().unwrap())
        );
        assert!(
            drafts
                .iter()
                .all(|d| d.reminder_lead == Some(SignedDuration::from_hours(2)))
        );
        let far = reminders(
            "p",
            "c",
            "2026-03-20T10:00:00Z".parse().unwrap(),
            &leads,
            &Facts::default(),
            now,
        );
        assert_eq!(far.len(), 4);
    }
}
