//! The integration window: integration or psychotherapy sessions are booked in the "neuroplastic
//! window" from 24 to 72 hours after a ketamine or esketamine session ends, half-open.

use super::refusal::{Refusal, refuse};
use clinicnet_proto::appointments::v1::PreconditionRule;
use time::{Duration, OffsetDateTime};

/// Hours after the session the window opens.
pub const OPENS_AFTER_HOURS: i64 = 24;
/// Hours after the session the window closes (exclusive).
pub const CLOSES_AFTER_HOURS: i64 = 72;

/// `[ended + 24 h, ended + 72 h)`.
pub fn window(session_ended: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    (
        session_ended + Duration::hours(OPENS_AFTER_HOURS),
        session_ended + Duration::hours(CLOSES_AFTER_HOURS),
    )
}

/// A session starting at `start` must start inside the window.
pub fn check_inside(
    window: (OffsetDateTime, OffsetDateTime),
    start: OffsetDateTime,
) -> Result<(), Refusal> {
    if start < window.0 || start >= window.1 {
        return Err(refuse(
            PreconditionRule::OutsideIntegrationWindow,
            format!(
                "integration sessions start between {} and {} (UTC, end exclusive)",
                window.0, window.1
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_window_is_half_open_from_24_to_72_hours() {
        let w = window(datetime!(2027-01-05 16:00 UTC));
        assert!(check_inside(w, datetime!(2027-01-06 16:00 UTC)).is_ok());
        assert!(check_inside(w, datetime!(2027-01-08 15:59 UTC)).is_ok());
        assert!(check_inside(w, datetime!(2027-01-06 15:59 UTC)).is_err());
        assert!(check_inside(w, datetime!(2027-01-08 16:00 UTC)).is_err());
    }
}
