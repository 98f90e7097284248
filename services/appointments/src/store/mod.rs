//! Every SQL statement of the appointments service, by noun: the directory read model, patients
//! and intakes, availability, reservations (what PostgreSQL keeps from overlapping), holds,
//! appointments, courses and outcomes.

pub mod appointments;
pub mod availability;
pub mod courses;
pub mod directory;
pub mod holds;
pub mod outcomes;
pub mod patients;
pub mod reservations;

use sqlx::postgres::types::PgRange;
use time::OffsetDateTime;

/// The half-open range `[start, end)`.
pub fn range(start: OffsetDateTime, end: OffsetDateTime) -> PgRange<OffsetDateTime> {
    PgRange::from(start..end)
}

/// The bounds of a half-open range read back from PostgreSQL.
pub fn bounds(range: &PgRange<OffsetDateTime>) -> (OffsetDateTime, OffsetDateTime) {
    use std::ops::Bound;
    let value = |bound: &Bound<OffsetDateTime>| match bound {
        Bound::Included(t) | Bound::Excluded(t) => *t,
        Bound::Unbounded => OffsetDateTime::UNIX_EPOCH,
    };
    (value(&range.start), value(&range.end))
}

/// Modalities as stored (`smallint[]`) to the wire's `i32`s.
pub fn modalities(stored: &[i16]) -> Vec<i32> {
    stored.iter().map(|m| i32::from(*m)).collect()
}
