//! Every SQL statement of the service: the read models fed by events, preferences and opt-outs,
//! webhook endpoints and secrets, and the notifications with their delivery schedule.

pub mod notifications;
pub mod preferences;
pub mod read_models;
pub mod webhooks;

use time::OffsetDateTime;

/// A jiff instant as the database's `timestamptz`.
pub fn to_db(at: jiff::Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(at.as_nanosecond())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A database `timestamptz` as a jiff instant.
pub fn from_db(at: OffsetDateTime) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(at.unix_timestamp_nanos())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}
