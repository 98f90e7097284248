//! Eligibility (270/271) rules: a request nobody answers before its deadline is UNKNOWN — never
//! a guess. (Fresh answers are found by the cache query in the store.)

use clinicnet_proto::insurance::v1::EligibilityStatus;
use time::OffsetDateTime;

/// The status to show: a pending check past its deadline is UNKNOWN.
pub fn effective_status(
    stored: EligibilityStatus,
    deadline: OffsetDateTime,
    now: OffsetDateTime,
) -> EligibilityStatus {
    if stored == EligibilityStatus::Pending && now >= deadline {
        EligibilityStatus::Unknown
    } else {
        stored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::{Duration, macros::datetime};

    #[test]
    fn a_pending_check_becomes_unknown_at_its_deadline() {
        let deadline = datetime!(2026-01-01 12:00 UTC);
        use EligibilityStatus as S;
        assert_eq!(
            effective_status(S::Pending, deadline, deadline - Duration::SECOND),
            S::Pending
        );
        assert_eq!(effective_status(S::Pending, deadline, deadline), S::Unknown);
        assert_eq!(
            effective_status(S::Answered, deadline, deadline + Duration::HOUR),
            S::Answered
        );
    }
}
