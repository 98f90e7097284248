//! The visit lifecycle with FHIR status names: booked → checked-in → fulfilled, booked or
//! checked-in → cancelled, booked → noshow once the start has passed, and rescheduling of a booked
//! visit. Anything else is an illegal transition. Cancellations inside the clinic's period are late.

use super::refusal::{Refusal, refuse};
use clinicnet_proto::appointments::v1::{AppointmentStatus, PreconditionRule as Rule};
use time::{Duration, OffsetDateTime};

/// Where a visit is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// FHIR `booked`.
    Booked,
    /// FHIR `checked-in`.
    CheckedIn,
    /// FHIR `fulfilled`.
    Fulfilled,
    /// FHIR `cancelled`.
    Cancelled,
    /// FHIR `noshow`.
    NoShow,
}

/// What can happen to a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Move it to another slot.
    Reschedule,
    /// Cancel it.
    Cancel,
    /// The patient arrived.
    CheckIn,
    /// It took place.
    Complete,
    /// The patient did not come.
    MarkNoShow,
}

impl Status {
    /// The FHIR code, as stored.
    pub fn code(self) -> &'static str {
        match self {
            Status::Booked => "booked",
            Status::CheckedIn => "checked-in",
            Status::Fulfilled => "fulfilled",
            Status::Cancelled => "cancelled",
            Status::NoShow => "noshow",
        }
    }

    /// The status of a stored FHIR code.
    pub fn from_code(code: &str) -> Option<Status> {
        [
            Status::Booked,
            Status::CheckedIn,
            Status::Fulfilled,
            Status::Cancelled,
            Status::NoShow,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }

    /// The contract's status.
    pub fn to_proto(self) -> AppointmentStatus {
        match self {
            Status::Booked => AppointmentStatus::Booked,
            Status::CheckedIn => AppointmentStatus::CheckedIn,
            Status::Fulfilled => AppointmentStatus::Fulfilled,
            Status::Cancelled => AppointmentStatus::Cancelled,
            Status::NoShow => AppointmentStatus::Noshow,
        }
    }

    /// The stored code of a contract status used by clinicnet; None for the reserved ones.
    pub fn from_proto(status: AppointmentStatus) -> Option<Status> {
        match status {
            AppointmentStatus::Booked => Some(Status::Booked),
            AppointmentStatus::CheckedIn => Some(Status::CheckedIn),
            AppointmentStatus::Fulfilled => Some(Status::Fulfilled),
            AppointmentStatus::Cancelled => Some(Status::Cancelled),
            AppointmentStatus::Noshow => Some(Status::NoShow),
            _ => None,
        }
    }
}

/// The status after `action`, or ILLEGAL_TRANSITION.
pub fn transition(from: Status, action: Action) -> Result<Status, Refusal> {
    let to = match (from, action) {
        (Status::Booked, Action::Reschedule) => Status::Booked,
        (Status::Booked | Status::CheckedIn, Action::Cancel) => Status::Cancelled,
        (Status::Booked, Action::CheckIn) => Status::CheckedIn,
        (Status::CheckedIn, Action::Complete) => Status::Fulfilled,
        (Status::Booked, Action::MarkNoShow) => Status::NoShow,
        _ => {
            return Err(refuse(
                Rule::IllegalTransition,
                format!("a {} visit cannot be {}", from.code(), past_tense(action)),
            ));
        }
    };
    Ok(to)
}

fn past_tense(action: Action) -> &'static str {
    match action {
        Action::Reschedule => "rescheduled",
        Action::Cancel => "cancelled",
        Action::CheckIn => "checked in",
        Action::Complete => "completed",
        Action::MarkNoShow => "marked a no-show",
    }
}

/// A no-show can be recorded only once the visit's start has passed.
pub fn check_no_show(now: OffsetDateTime, start: OffsetDateTime) -> Result<(), Refusal> {
    if now < start {
        return Err(refuse(
            Rule::IllegalTransition,
            "a visit that has not started yet cannot be a no-show",
        ));
    }
    Ok(())
}

/// Whether cancelling at `now` a visit starting at `start` is late: `period` or less before the
/// start, or after it.
pub fn is_late_cancellation(now: OffsetDateTime, start: OffsetDateTime, period: Duration) -> bool {
    now >= start - period
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn only_the_fhir_transitions_are_legal() {
        use Action::*;
        use Status::*;
        let legal = [
            (Booked, Reschedule, Booked),
            (Booked, Cancel, Cancelled),
            (CheckedIn, Cancel, Cancelled),
            (Booked, CheckIn, CheckedIn),
            (CheckedIn, Complete, Fulfilled),
            (Booked, MarkNoShow, NoShow),
        ];
        for from in [Booked, CheckedIn, Fulfilled, Cancelled, NoShow] {
            for action in [Reschedule, Cancel, CheckIn, Complete, MarkNoShow] {
                let expected = legal
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|t| t.2);
                match (transition(from, action), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want),
                    (Err(r), None) => assert_eq!(r.rule, Rule::IllegalTransition),
                    (got, want) => panic!("{from:?} {action:?}: {got:?}, expected {want:?}"),
                }
            }
        }
    }

    #[test]
    fn codes_round_trip() {
        for s in [
            Status::Booked,
            Status::CheckedIn,
            Status::Fulfilled,
            Status::Cancelled,
            Status::NoShow,
        ] {
            assert_eq!(Status::from_code(s.code()), Some(s));
            assert_eq!(Status::from_proto(s.to_proto()), Some(s));
        }
    }

    #[test]
    fn cancelling_inside_the_period_is_late() {
        let start = datetime!(2027-01-10 15:00 UTC);
        let day = Duration::hours(24);
        assert!(!is_late_cancellation(
            datetime!(2027-01-09 14:59 UTC),
            start,
            day
        ));
        assert!(is_late_cancellation(
            datetime!(2027-01-09 15:00 UTC),
            start,
            day
        ));
        assert!(is_late_cancellation(
            datetime!(2027-01-10 16:00 UTC),
            start,
            day
        ));
        assert!(check_no_show(datetime!(2027-01-10 14:59 UTC), start).is_err());
        assert!(check_no_show(start, start).is_ok());
    }
}
