//! The insurance rules, pure and without I/O: code selection, the claim lifecycle, remittance
//! balancing, prior authorization and eligibility rules, claim issues, aging buckets and work
//! stream cursors.

pub mod aging;
pub mod authorization;
pub mod coding;
pub mod cursor;
pub mod eligibility;
pub mod issues;
pub mod lifecycle;
#[cfg(test)]
mod proptests;
pub mod remittance;
pub mod service_date;
