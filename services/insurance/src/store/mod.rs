//! Every SQL statement of the insurance service, one module per table family. Aggregates are
//! stored as their contract message (`body`) plus the columns constraints and queries need; the
//! functions here keep the two in step.

pub mod authorizations;
pub mod claims;
pub mod coverages;
pub mod eligibility;
pub mod patients;
pub mod payers;
pub mod plans;
pub mod remittances;
pub mod reports;
pub mod superbills;
pub mod work;

use prost::Message;

/// Decodes a stored body.
pub fn decode<M: Message + Default>(body: &[u8]) -> Result<M, sqlx::Error> {
    M::decode(body).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A stored id that must be a UUID; `None` when the text is not one (so it cannot exist).
pub fn uuid(text: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(text).ok()
}

/// `u64` versions as PostgreSQL bigints.
pub fn version(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
