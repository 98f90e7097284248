//! When a dated credential stops being current. An expiry date is the last local day the
//! credential is valid, so it is current until the first instant of the next day in the time
//! zone where it is used: a REMS certification in its clinic's zone, a state licence in the zone
//! of every clinic its provider serves.

use jiff::{Timestamp, civil::Date, tz::TimeZone};

/// The first instant at which a credential valid through `last_day` (local date in `zone`) is no
/// longer current. A last day at the end of the calendar never ends.
pub fn valid_until(last_day: Date, zone: &TimeZone) -> Timestamp {
    last_day
        .tomorrow()
        .and_then(|next| next.to_zoned_datetime(zone.clone()))
        .map(|start| start.timestamp())
        .unwrap_or(Timestamp::MAX)
}

/// Whether a credential valid through `last_day` in `zone` is current at `now`.
pub fn is_current(last_day: Date, zone: &TimeZone, now: Timestamp) -> bool {
    now < valid_until(last_day, zone)
}

/// Whether a licence valid through `last_day` has expired at `now` in any of `zones` (the zones
/// of the clinics its provider serves; UTC when there are none).
pub fn expired_anywhere(last_day: Date, zones: &[TimeZone], now: Timestamp) -> bool {
    if zones.is_empty() {
        return !is_current(last_day, &TimeZone::UTC, now);
    }
    zones.iter().any(|zone| !is_current(last_day, zone, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn at(instant: &str) -> Timestamp {
        instant.parse().unwrap()
    }

    #[test]
    fn current_through_the_whole_last_local_day() {
        let miami = zone("America/New_York");
        let last = date(2026, 6, 30);
        // 23:59 on the last day in Miami is 03:59 UTC the next day: still current.
        assert!(is_current(last, &miami, at("2026-07-01T03:59:59Z")));
        // Midnight in Miami: expired.
        assert!(!is_current(last, &miami, at("2026-07-01T04:00:00Z")));
        assert_eq!(valid_until(last, &miami), at("2026-07-01T04:00:00Z"));
    }

    #[test]
    fn the_same_instant_is_a_different_day_in_different_zones() {
        let last = date(2026, 6, 30);
        let now = at("2026-06-30T12:00:00Z");
        // Kiritimati (UTC+14) is already on July 1; Pago Pago (UTC-11) still on June 30.
        assert!(!is_current(last, &zone("Pacific/Kiritimati"), now));
        assert!(is_current(last, &zone("Pacific/Pago_Pago"), now));
    }

    #[test]
    fn daylight_saving_changes_move_the_end_of_the_day() {
        let miami = zone("America/New_York");
        // Standard time in winter: midnight is 05:00 UTC.
        assert_eq!(
            valid_until(date(2026, 1, 14), &miami),
            at("2026-01-15T05:00:00Z")
        );
        // The day after the spring change starts at 04:00 UTC.
        assert_eq!(
            valid_until(date(2026, 3, 8), &miami),
            at("2026-03-09T04:00:00Z")
        );
    }

    #[test]
    fn the_end_of_the_calendar_never_expires() {
        let last = date(9999, 12, 31);
        assert_eq!(valid_until(last, &TimeZone::UTC), Timestamp::MAX);
        assert!(is_current(last, &TimeZone::UTC, at("2026-01-01T00:00:00Z")));
    }

    #[test]
    fn a_licence_is_expired_when_it_has_expired_where_any_served_clinic_is() {
        let last = date(2026, 6, 30);
        let now = at("2026-06-30T12:00:00Z");
        let pago = zone("Pacific/Pago_Pago");
        let kiritimati = zone("Pacific/Kiritimati");
        assert!(!expired_anywhere(last, std::slice::from_ref(&pago), now));
        assert!(expired_anywhere(last, &[pago, kiritimati], now));
        assert!(!expired_anywhere(last, &[], now));
        assert!(expired_anywhere(last, &[], at("2026-07-01T00:00:00Z")));
    }
}
