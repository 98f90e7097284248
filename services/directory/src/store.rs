//! Every SQL statement of the directory, by noun: [`clinics`] (with their chairs, locations and
//! dated overrides), [`providers`] and [`search`]. Statements take the caller's connection, so a
//! change, its event and its idempotency record commit together. A clinic or provider is read back
//! as the API's message, exactly as GetClinic and the events show it.

pub mod clinics;
pub mod providers;
pub mod search;

use prost::Message;
use time::OffsetDateTime;

/// The stored profile message.
fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, sqlx::Error> {
    M::decode(bytes).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}

/// A database instant as a protobuf timestamp.
fn timestamp(at: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.unix_timestamp(),
        nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
    }
}

/// An instant as the database stores it.
fn db_instant(at: jiff::Timestamp) -> Result<OffsetDateTime, sqlx::Error> {
    OffsetDateTime::from_unix_timestamp_nanos(at.as_nanosecond())
        .map_err(|error| sqlx::Error::Encode(Box::new(error)))
}

/// A calendar date as the database stores it.
fn db_date(date: jiff::civil::Date) -> Result<time::Date, sqlx::Error> {
    let month = u8::try_from(date.month())
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(|| sqlx::Error::Encode(format!("month of {date}").into()))?;
    let day = u8::try_from(date.day()).map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
    time::Date::from_calendar_date(i32::from(date.year()), month, day)
        .map_err(|error| sqlx::Error::Encode(Box::new(error)))
}

/// A version as the database stores it.
fn db_version(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

/// A stored version as the API shows it.
fn api_version(version: i64) -> u64 {
    u64::try_from(version).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_and_dates_convert_exactly() {
        let at: jiff::Timestamp = "2026-07-01T04:00:00.123456Z".parse().unwrap();
        let stored = db_instant(at).unwrap();
        assert_eq!(stored.unix_timestamp(), at.as_second());
        assert_eq!(stored.microsecond(), 123_456);
        assert!(db_instant(jiff::Timestamp::MAX).is_ok());
        let date = db_date(jiff::civil::date(2026, 11, 26)).unwrap();
        assert_eq!(date, time::macros::date!(2026 - 11 - 26));
        assert_eq!(timestamp(stored).nanos, 123_456_000);
    }
}
