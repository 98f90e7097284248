//! What the appointments service publishes (through the outbox, in the transaction of the change)
//! and what it consumes (the directory's events, into its read model).

pub mod directory;
pub mod publish;
