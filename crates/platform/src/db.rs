//! The service's own PostgreSQL database: a pool with a statement timeout, and migrations (the
//! platform's tables, then the service's) applied on start under sqlx's advisory lock, so several
//! replicas starting at once migrate exactly once.

use crate::config::DatabaseConfig;
use sqlx::{
    ConnectOptions, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use std::{str::FromStr, time::Duration};

/// A pool for the configured database; every connection gets the configured statement timeout.
pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(config.database_url.expose())?
        .options([(
            "statement_timeout",
            config.database_statement_timeout_ms.to_string(),
        )])
        .log_statements(tracing::log::LevelFilter::Debug)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    let pool = PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Applies the platform's migrations (outbox, inbox, dead letters, idempotency keys, audit
/// record), then the service's. Service migrations use versions above 1000 so the two sets never
/// collide in `_sqlx_migrations`.
pub async fn migrate(pool: &PgPool, mut service: Migrator) -> anyhow::Result<()> {
    let mut platform = sqlx::migrate!("./migrations");
    for migrator in [&mut platform, &mut service] {
        migrator.set_ignore_missing(true);
        migrator.run(pool).await?;
    }
    Ok(())
}

/// True when `error` is a unique-constraint violation.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// True when `error` is an exclusion-constraint violation (SQLSTATE 23P01).
pub fn is_exclusion_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "23P01")
}
