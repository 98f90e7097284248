//! A clinic as the appointments service sees it, from the directory's newest event: its status,
//! time zone, modalities, REMS certification, locations and scheduling policy (with the
//! directory's documented defaults for fields left at 0).

use super::{geo, zone::ClinicZone};
use clinicnet_proto::{
    common::v1::Modality,
    directory::v1::{Clinic, ClinicStatus, SchedulingPolicy},
};
use time::{Date, Duration, Month};

/// A clinic's scheduling rules, in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Chair blocked before each visit.
    pub buffer_before: Duration,
    /// Chair blocked after each visit.
    pub buffer_after: Duration,
    /// Least time between booking and a visit's start.
    pub minimum_notice: Duration,
    /// How far ahead a visit may start.
    pub booking_horizon: Duration,
    /// IV ketamine infusion.
    pub iv_infusion: Duration,
    /// Recovery after an IV infusion.
    pub iv_recovery: Duration,
    /// Monitoring after an esketamine dose, in minutes as configured (checked against the REMS
    /// minimum when a visit is planned).
    pub esketamine_monitoring_minutes: i64,
    /// Integration, psychotherapy and telehealth sessions.
    pub therapy_session: Duration,
    /// A cancellation this close to the start, or closer, is late.
    pub late_cancellation: Duration,
}

fn minutes_or(value: i32, default: i64) -> Duration {
    Duration::minutes(if value > 0 { i64::from(value) } else { default })
}

impl Policy {
    /// The policy a clinic's directory record gives, defaults filled in.
    pub fn of(policy: Option<&SchedulingPolicy>) -> Policy {
        let p = policy.cloned().unwrap_or_default();
        Policy {
            buffer_before: Duration::minutes(i64::from(p.buffer_before_minutes.max(0))),
            buffer_after: Duration::minutes(i64::from(p.buffer_after_minutes.max(0))),
            minimum_notice: Duration::minutes(i64::from(p.minimum_notice_minutes.max(0))),
            booking_horizon: Duration::days(if p.booking_horizon_days > 0 {
                i64::from(p.booking_horizon_days)
            } else {
                90
            }),
            iv_infusion: minutes_or(p.iv_infusion_minutes, 40),
            iv_recovery: minutes_or(p.iv_recovery_minutes, 45),
            esketamine_monitoring_minutes: if p.esketamine_monitoring_minutes > 0 {
                i64::from(p.esketamine_monitoring_minutes)
            } else {
                120
            },
            therapy_session: minutes_or(p.therapy_session_minutes, 60),
            late_cancellation: Duration::hours(if p.late_cancellation_hours > 0 {
                i64::from(p.late_cancellation_hours)
            } else {
                24
            }),
        }
    }
}

/// A clinic of the read model.
#[derive(Debug, Clone)]
pub struct ClinicView {
    /// The directory's record.
    pub clinic: Clinic,
    /// Its time zone.
    pub zone: ClinicZone,
    /// Its scheduling rules.
    pub policy: Policy,
}

impl ClinicView {
    /// The view of `clinic`; None when its time zone is unknown.
    pub fn new(clinic: Clinic) -> Option<ClinicView> {
        let zone = ClinicZone::parse(&clinic.time_zone)?;
        let policy = Policy::of(clinic.scheduling_policy.as_ref());
        Some(ClinicView {
            clinic,
            zone,
            policy,
        })
    }

    /// The clinic's id.
    pub fn id(&self) -> &str {
        &self.clinic.clinic_id
    }

    /// Whether the directory suspended it.
    pub fn suspended(&self) -> bool {
        self.clinic.status == ClinicStatus::Suspended as i32
    }

    /// Whether it offers `modality`.
    pub fn offers(&self, modality: Modality) -> bool {
        self.clinic.modalities.contains(&(modality as i32))
    }

    /// Whether its REMS certification is current on the local `date` (valid through its expiry
    /// date inclusive).
    pub fn rems_current_on(&self, date: Date) -> bool {
        let Some(expires) = self
            .clinic
            .rems_certification
            .as_ref()
            .and_then(|c| c.expires_on.as_ref())
        else {
            return false;
        };
        let expiry = Month::try_from(u8::try_from(expires.month).unwrap_or(0))
            .ok()
            .and_then(|month| {
                Date::from_calendar_date(expires.year, month, u8::try_from(expires.day).ok()?).ok()
            });
        expiry.is_some_and(|expiry| date <= expiry)
    }

    /// Distance in kilometres from `point` (latitude, longitude) to its nearest location.
    pub fn nearest_km(&self, point: (f64, f64)) -> Option<f64> {
        self.clinic
            .locations
            .iter()
            .filter_map(|l| l.coordinates.as_ref())
            .map(|c| geo::distance_km(point, (c.latitude, c.longitude)))
            .min_by(f64::total_cmp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clinicnet_proto::{common::v1, directory::v1::RemsCertification};
    use time::macros::date;

    fn clinic(rems_expiry: Option<(i32, i32, i32)>) -> ClinicView {
        ClinicView::new(Clinic {
            clinic_id: "c1".into(),
            time_zone: "America/New_York".into(),
            status: ClinicStatus::Active as i32,
            modalities: vec![Modality::EsketamineNasalSpray as i32],
            rems_certification: rems_expiry.map(|(year, month, day)| RemsCertification {
                certification_id: "REMS-1".into(),
                expires_on: Some(v1::Date { year, month, day }),
            }),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn rems_is_current_through_its_expiry_date() {
        let c = clinic(Some((2027, 1, 31)));
        assert!(c.rems_current_on(date!(2027 - 01 - 31)));
        assert!(!c.rems_current_on(date!(2027 - 02 - 01)));
        assert!(!clinic(None).rems_current_on(date!(2020 - 01 - 01)));
    }

    #[test]
    fn policy_defaults_fill_unset_fields() {
        let p = Policy::of(None);
        assert_eq!(p.iv_infusion, Duration::minutes(40));
        assert_eq!(p.iv_recovery, Duration::minutes(45));
        assert_eq!(p.esketamine_monitoring_minutes, 120);
        assert_eq!(p.late_cancellation, Duration::hours(24));
        assert_eq!(p.minimum_notice, Duration::ZERO);
        assert!(clinic(None).offers(Modality::EsketamineNasalSpray));
        assert!(!clinic(None).offers(Modality::IvKetamine));
    }
}
