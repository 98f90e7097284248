//! How long a visit occupies its chair and provider: the dose or session, monitoring or recovery,
//! and the clinic's buffers before and after. Esketamine needs at least the REMS minimum of 120
//! minutes of monitoring after the dose.

use super::{clinic::Policy, refusal::Refusal};
use clinicnet_proto::{appointments::v1::PreconditionRule, common::v1::Modality};
use time::{Duration, OffsetDateTime};

/// The REMS minimum monitoring after an esketamine dose, in minutes.
pub const REMS_MINIMUM_MONITORING_MINUTES: i64 = 120;

/// Visit lengths the service is configured with that no clinic policy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitDurations {
    /// Giving an esketamine dose (blood pressure, devices five minutes apart), before monitoring.
    pub esketamine_dosing: Duration,
    /// A supervised oral ketamine lozenge visit, dose and monitoring.
    pub lozenge_visit: Duration,
}

/// The parts of a visit of one modality at one clinic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitShape {
    /// Buffer before the visit.
    pub before: Duration,
    /// The visit itself, monitoring or recovery included.
    pub length: Duration,
    /// Buffer after the visit.
    pub after: Duration,
}

/// Where a visit lands in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// First instant the chair and provider are taken (the slot's start).
    pub occupied_start: OffsetDateTime,
    /// First instant they are free again (after the buffer).
    pub occupied_end: OffsetDateTime,
    /// Start of the visit.
    pub visit_start: OffsetDateTime,
    /// End of the visit, monitoring or recovery included.
    pub visit_end: OffsetDateTime,
}

impl VisitShape {
    /// Buffers and visit together.
    pub fn occupied(&self) -> Duration {
        self.before + self.length + self.after
    }

    /// The visit placed at the start of a slot starting at `slot_start`.
    pub fn place(&self, slot_start: OffsetDateTime) -> Placement {
        let visit_start = slot_start + self.before;
        let visit_end = visit_start + self.length;
        Placement {
            occupied_start: slot_start,
            occupied_end: visit_end + self.after,
            visit_start,
            visit_end,
        }
    }

    /// Whether the whole visit, buffers included, fits in `[slot_start, slot_end)`.
    pub fn fits(&self, slot_start: OffsetDateTime, slot_end: OffsetDateTime) -> bool {
        slot_start + self.occupied() <= slot_end
    }
}

/// The shape of a `modality` visit under `policy`. Esketamine at a clinic whose monitoring is
/// configured below the REMS minimum is refused (MONITORING_TOO_SHORT).
pub fn shape(
    modality: Modality,
    policy: &Policy,
    durations: &VisitDurations,
) -> Result<VisitShape, Refusal> {
    let length = match modality {
        Modality::IvKetamine => policy.iv_infusion + policy.iv_recovery,
        Modality::EsketamineNasalSpray => {
            if policy.esketamine_monitoring_minutes < REMS_MINIMUM_MONITORING_MINUTES {
                return Err(Refusal::new(
                    PreconditionRule::MonitoringTooShort,
                    format!(
                        "the clinic plans {} minutes of monitoring after esketamine; at least {REMS_MINIMUM_MONITORING_MINUTES} are required",
                        policy.esketamine_monitoring_minutes
                    ),
                ));
            }
            durations.esketamine_dosing + Duration::minutes(policy.esketamine_monitoring_minutes)
        }
        Modality::OralKetamineLozenge => durations.lozenge_visit,
        Modality::IntegrationTherapy | Modality::Psychotherapy | Modality::Telehealth => {
            policy.therapy_session
        }
        Modality::Unspecified => {
            return Err(Refusal::new(
                PreconditionRule::ModalityNotSupported,
                "a visit needs a modality",
            ));
        }
    };
    Ok(VisitShape {
        before: policy.buffer_before,
        length,
        after: policy.buffer_after,
    })
}

/// Ketamine in any form: needs an intake on file and opens an integration window.
pub fn is_ketamine(modality: Modality) -> bool {
    matches!(
        modality,
        Modality::IvKetamine | Modality::EsketamineNasalSpray | Modality::OralKetamineLozenge
    )
}

/// Sessions that may be booked inside an integration window.
pub fn is_integration_session(modality: Modality) -> bool {
    matches!(
        modality,
        Modality::IntegrationTherapy | Modality::Psychotherapy | Modality::Telehealth
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const DURATIONS: VisitDurations = VisitDurations {
        esketamine_dosing: Duration::minutes(15),
        lozenge_visit: Duration::minutes(120),
    };

    fn policy(monitoring: i64) -> Policy {
        Policy {
            buffer_before: Duration::minutes(10),
            buffer_after: Duration::minutes(15),
            esketamine_monitoring_minutes: monitoring,
            ..Policy::of(None)
        }
    }

    #[test]
    fn esketamine_occupies_dose_monitoring_and_buffers() {
        let s = shape(Modality::EsketamineNasalSpray, &policy(120), &DURATIONS).unwrap();
        assert_eq!(s.length, Duration::minutes(135));
        assert_eq!(s.occupied(), Duration::minutes(160));
        let start = datetime!(2027-01-05 14:00 UTC);
        let p = s.place(start);
        assert_eq!(p.visit_start, datetime!(2027-01-05 14:10 UTC));
        assert_eq!(p.visit_end, datetime!(2027-01-05 16:25 UTC));
        assert_eq!(p.occupied_end, datetime!(2027-01-05 16:40 UTC));
        assert!(s.fits(start, datetime!(2027-01-05 16:40 UTC)));
        assert!(!s.fits(start, datetime!(2027-01-05 16:39 UTC)));
    }

    #[test]
    fn esketamine_under_two_hours_of_monitoring_is_refused() {
        let refusal = shape(Modality::EsketamineNasalSpray, &policy(90), &DURATIONS).unwrap_err();
        assert_eq!(refusal.rule, PreconditionRule::MonitoringTooShort);
    }

    #[test]
    fn iv_is_infusion_plus_recovery_and_therapy_its_session() {
        let iv = shape(Modality::IvKetamine, &policy(120), &DURATIONS).unwrap();
        assert_eq!(iv.length, Duration::minutes(85));
        let therapy = shape(Modality::IntegrationTherapy, &policy(120), &DURATIONS).unwrap();
        assert_eq!(therapy.length, Duration::minutes(60));
    }
}
