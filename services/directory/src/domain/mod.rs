//! The directory's rules, pure and free of I/O: identifiers and codes, contact formats, time
//! zones, coordinates and search areas, opening hours, and when dated credentials stop being
//! current. Each rule answers with the reason a value is rejected; callers name the field.

pub mod codes;
pub mod contact;
pub mod expiry;
pub mod geo;
pub mod hours;
pub mod npi;
pub mod time_zone;
