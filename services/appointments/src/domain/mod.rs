//! The appointments rules, pure and free of I/O: clinic time zones and policies, how long a visit
//! occupies a chair, the booking and clinical gates, the visit lifecycle, availability generation,
//! treatment course plans, the integration window and outcomes.

pub mod clinic;
pub mod course;
pub mod gates;
pub mod geo;
pub mod integration;
pub mod lifecycle;
pub mod outcomes;
#[cfg(test)]
mod proptests;
pub mod refusal;
pub mod schedule;
pub mod visit;
pub mod zone;
