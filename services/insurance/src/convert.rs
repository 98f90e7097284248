//! Conversions between the contract's value types (dates, timestamps, money) and the Rust and
//! database types the service computes with. Money is integer cents of USD, the only currency v1
//! accepts.

use clinicnet_proto::common::v1::{Date, Money};
use prost_types::Timestamp;
use time::OffsetDateTime;

/// The one currency v1 accepts.
pub const USD: &str = "USD";

/// `cents` as USD money.
pub fn usd(cents: i64) -> Money {
    Money {
        currency_code: USD.into(),
        amount_cents: cents,
    }
}

/// The contract date as a calendar date; `None` when it is not a valid date in 1900–9999.
pub fn date(value: &Date) -> Option<time::Date> {
    if !(1900..=9999).contains(&value.year) {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(value.month).ok()?).ok()?;
    time::Date::from_calendar_date(value.year, month, u8::try_from(value.day).ok()?).ok()
}

/// The calendar date as a contract date.
pub fn to_date(value: time::Date) -> Date {
    Date {
        year: value.year(),
        month: i32::from(u8::from(value.month())),
        day: i32::from(value.day()),
    }
}

/// The contract timestamp as an instant; `None` when out of range.
pub fn instant(value: &Timestamp) -> Option<OffsetDateTime> {
    let nanos = i128::from(value.seconds) * 1_000_000_000 + i128::from(value.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// The instant as a contract timestamp.
pub fn timestamp(value: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: value.unix_timestamp(),
        nanos: i32::try_from(value.nanosecond()).unwrap_or(0),
    }
}

/// Now, truncated to microseconds so it survives a round trip through PostgreSQL unchanged.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_microsecond(now.microsecond()).unwrap_or(now)
}

/// Today's date in UTC.
pub fn today() -> time::Date {
    OffsetDateTime::now_utc().date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_invalid_ones_are_refused() {
        let d = Date {
            year: 2026,
            month: 2,
            day: 28,
        };
        assert_eq!(date(&d).map(to_date), Some(d));
        for (year, month, day) in [(2026, 2, 29), (2026, 13, 1), (1899, 1, 1), (2026, 0, 1)] {
            assert_eq!(date(&Date { year, month, day }), None);
        }
    }

    #[test]
    fn timestamps_round_trip() {
        let t = now();
        assert_eq!(instant(&timestamp(t)), Some(t));
    }
}
