//! System-test harness for clinicnet: real PostgreSQL, real NATS JetStream and the real service
//! binaries, each test with its own databases, ports and (when it needs one) its own `nats-server`.
//!
//! Typical use in a test:
//!
//! ```no_run
//! use std::time::Duration;
//! use system_tests::{database::TestDatabase, infra, service::{ServiceProcess, ServiceSpec}};
//!
//! # async fn example() -> anyhow::Result<()> {
//! let db = TestDatabase::create("directory").await;
//! let mut directory = ServiceProcess::spawn(
//!     ServiceSpec::new("directory")
//!         .env("DATABASE_URL", db.url())
//!         .env("NATS_URL", infra::nats_url())
//!         .env("JWT_HS256_SECRET", "test-secret"),
//! )
//! .await?;
//! directory.wait_serving(Duration::from_secs(30)).await?;
//! let channel = directory.channel().await?;
//! # let _ = channel;
//! directory.sigterm()?;
//! let status = directory.wait_exit(Duration::from_secs(30)).await?;
//! assert!(status.success());
//! db.drop_db().await;
//! # Ok(())
//! # }
//! ```

pub mod database;
pub mod fixtures;
pub mod infra;
mod logtail;
pub mod nats;
pub mod network;
pub mod otlp;
pub mod ports;
pub mod postgres;
pub mod probe;
pub mod raw;
mod reaper;
pub mod receivers;
pub mod service;
pub mod workload;

pub use database::TestDatabase;
pub use nats::PrivateNats;
pub use ports::free_port;
pub use postgres::PrivatePostgres;
pub use service::{ServiceProcess, ServiceSpec};
