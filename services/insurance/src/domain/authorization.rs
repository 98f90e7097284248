//! Prior authorization rules: when an approval covers a service, when it has expired, how long
//! an approval lasts when the payer gives no end date, and when a booking needs a new request.

use clinicnet_proto::insurance::v1::PriorAuthorizationStatus;
use time::{Date, Duration};

/// An approved authorization as far as coverage of services is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The payer's authorization number.
    pub number: String,
    /// First covered service date.
    pub valid_from: Date,
    /// Last covered service date.
    pub valid_until: Date,
    /// Codes it was requested (and approved) for.
    pub codes: Vec<String>,
}

impl Approval {
    /// Whether it covers `code` on `service_date`.
    pub fn covers(&self, code: &str, service_date: Date) -> bool {
        self.valid_from <= service_date
            && service_date <= self.valid_until
            && self.codes.iter().any(|c| c == code)
    }
}

/// The approval that covers `code` on `service_date`, the latest-ending one when several do.
pub fn covering<'a>(
    approvals: &'a [Approval],
    code: &str,
    service_date: Date,
) -> Option<&'a Approval> {
    approvals
        .iter()
        .filter(|a| a.covers(code, service_date))
        .max_by_key(|a| a.valid_until)
}

/// The status to show: an approval whose last valid day is before `today` has EXPIRED.
pub fn effective_status(
    stored: PriorAuthorizationStatus,
    valid_until: Option<Date>,
    today: Date,
) -> PriorAuthorizationStatus {
    match (stored, valid_until) {
        (PriorAuthorizationStatus::Approved, Some(until)) if until < today => {
            PriorAuthorizationStatus::Expired
        }
        (status, _) => status,
    }
}

/// The last valid day of an approval starting `valid_from` that lasts `validity_days` days.
pub fn default_valid_until(valid_from: Date, validity_days: i32) -> Date {
    let days = i64::from(validity_days.max(1)) - 1;
    valid_from
        .checked_add(Duration::days(days))
        .unwrap_or(Date::MAX)
}

/// Whether a booking on `service_date` needs a new request: none of `codes` is covered by an
/// approval, and no request is still awaiting a decision (requested or pended).
pub fn booking_needs_request(
    approvals: &[Approval],
    codes: &[&str],
    service_date: Date,
    undecided_requests: usize,
) -> bool {
    undecided_requests == 0
        && !codes
            .iter()
            .any(|code| covering(approvals, code, service_date).is_some())
}

/// Age in whole years on `on` of someone born on `birth`.
pub fn age_years(birth: Date, on: Date) -> i32 {
    let had_birthday = (on.month(), on.day()) >= (birth.month(), birth.day());
    (on.year() - birth.year() - i32::from(!had_birthday)).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn age_counts_whole_years() {
        let birth = date!(1990 - 06 - 15);
        assert_eq!(age_years(birth, date!(2026 - 06 - 14)), 35);
        assert_eq!(age_years(birth, date!(2026 - 06 - 15)), 36);
        assert_eq!(age_years(date!(2000 - 02 - 29), date!(2026 - 02 - 28)), 25);
        assert_eq!(age_years(date!(2000 - 02 - 29), date!(2026 - 03 - 01)), 26);
    }

    fn approval(number: &str, from: Date, until: Date) -> Approval {
        Approval {
            number: number.into(),
            valid_from: from,
            valid_until: until,
            codes: vec!["G2082".into(), "G2083".into()],
        }
    }

    #[test]
    fn an_approval_covers_its_codes_between_its_dates_inclusive() {
        let a = approval("A1", date!(2026 - 01 - 01), date!(2026 - 06 - 30));
        assert!(a.covers("G2082", date!(2026 - 01 - 01)));
        assert!(a.covers("G2083", date!(2026 - 06 - 30)));
        assert!(!a.covers("G2082", date!(2025 - 12 - 31)));
        assert!(!a.covers("G2082", date!(2026 - 07 - 01)));
        assert!(!a.covers("J0013", date!(2026 - 03 - 01)));
    }

    #[test]
    fn the_latest_ending_covering_approval_wins() {
        let approvals = [
            approval("OLD", date!(2026 - 01 - 01), date!(2026 - 03 - 31)),
            approval("NEW", date!(2026 - 03 - 01), date!(2026 - 08 - 31)),
        ];
        assert_eq!(
            covering(&approvals, "G2082", date!(2026 - 03 - 15)).map(|a| a.number.as_str()),
            Some("NEW")
        );
        assert_eq!(covering(&approvals, "G2082", date!(2026 - 09 - 01)), None);
    }

    #[test]
    fn an_approval_expires_the_day_after_its_last_valid_day() {
        let until = date!(2026 - 06 - 30);
        use PriorAuthorizationStatus as S;
        assert_eq!(
            effective_status(S::Approved, Some(until), until),
            S::Approved
        );
        assert_eq!(
            effective_status(S::Approved, Some(until), date!(2026 - 07 - 01)),
            S::Expired
        );
        assert_eq!(
            effective_status(S::Denied, None, date!(2030 - 01 - 01)),
            S::Denied
        );
    }

    #[test]
    fn default_validity_counts_the_first_day() {
        assert_eq!(
            default_valid_until(date!(2026 - 01 - 01), 180),
            date!(2026 - 06 - 29)
        );
        assert_eq!(
            default_valid_until(date!(2026 - 01 - 01), 1),
            date!(2026 - 01 - 01)
        );
    }

    #[test]
    fn a_booking_needs_a_request_only_without_approval_or_pending_request() {
        let approvals = [approval("A", date!(2026 - 01 - 01), date!(2026 - 01 - 31))];
        let codes = ["G2082", "G2083"];
        assert!(!booking_needs_request(
            &approvals,
            &codes,
            date!(2026 - 01 - 15),
            0
        ));
        assert!(booking_needs_request(
            &approvals,
            &codes,
            date!(2026 - 02 - 01),
            0
        ));
        assert!(!booking_needs_request(
            &approvals,
            &codes,
            date!(2026 - 02 - 01),
            1
        ));
        assert!(booking_needs_request(&[], &codes, date!(2026 - 02 - 01), 0));
    }
}
