//! What every clinicnet service shares, and nothing domain-specific: configuration, telemetry and
//! trace propagation, the gRPC server, authentication, error mapping, the database, idempotency,
//! the audit record, the event backbone (outbox, relay, idempotent consumers) with its operator
//! API, and waking workers when committed work arrives (LISTEN/NOTIFY).

pub mod audit;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod maintenance;
pub mod metrics;
pub mod observe;
pub mod ops;
pub mod paging;
pub mod runtime;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod trace_context;
pub mod wake;

pub use error::ApiError;
