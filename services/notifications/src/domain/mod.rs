//! The rules of notifications, pure and without I/O: templates and their formatting, visit
//! instructions, minimum necessary, what each event asks for, whether and when a message goes
//! out, retries, inbound keywords, preferences and webhook signatures.

pub mod compose;
pub mod facts;
pub mod format;
pub mod instructions;
pub mod keywords;
pub mod kind;
pub mod plan;
pub mod policy;
pub mod preferences;
pub mod retry;
pub mod sensitive;
pub mod signing;
pub mod templates;
