//! The command groups of clinicctl, one module per area of the contracts.

pub mod appointment;
pub mod availability;
pub mod claim;
pub mod clinic;
pub mod course;
pub mod coverage;
pub mod events;
pub mod import_cmd;
pub mod notify;
pub mod patient;
pub mod payer;
pub mod provider;
pub mod token;
