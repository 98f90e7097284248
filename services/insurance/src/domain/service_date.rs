//! The local date of a visit in its clinic's time zone: the date of service on claims and the
//! date authorizations are checked against.

use jiff::{Timestamp, tz::TimeZone};

/// The date of `unix_seconds` in the IANA zone `time_zone`; `None` for an unknown zone or an
/// instant out of range.
pub fn local_date(unix_seconds: i64, time_zone: &str) -> Option<time::Date> {
    let zone = TimeZone::get(time_zone).ok()?;
    let date = Timestamp::from_second(unix_seconds)
        .ok()?
        .to_zoned_datetime(zone)
        .date();
    let month = time::Month::try_from(u8::try_from(date.month()).ok()?).ok()?;
    time::Date::from_calendar_date(
        i32::from(date.year()),
        month,
        u8::try_from(date.day()).ok()?,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn an_evening_visit_in_miami_is_dated_locally() {
        // 2026-03-11 02:30 UTC is 22:30 on the 10th in Miami (EDT, UTC-4).
        assert_eq!(
            local_date(1_773_196_200, "America/New_York"),
            Some(date!(2026 - 03 - 10))
        );
        assert_eq!(
            local_date(1_773_196_200, "UTC"),
            Some(date!(2026 - 03 - 11))
        );
        assert_eq!(local_date(0, "Mars/Olympus"), None);
    }
}
