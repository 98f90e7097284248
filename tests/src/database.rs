//! Throwaway PostgreSQL databases: each test (or each service in a test) gets a fresh database
//! with a unique name on the shared server (or a given one), dropped afterwards.
//!
//! Set `CLINICNET_TEST_KEEP_DB=1` to keep the databases of a run for inspection.

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor};

use crate::infra;

/// SQLSTATE `object_in_use`: CREATE DATABASE while another session uses the template.
const OBJECT_IN_USE: &str = "55006";

/// A fresh, uniquely named database; dropped by [`TestDatabase::drop_db`] or, failing that, on drop.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
    pool: PgPool,
    dropped: bool,
}

impl TestDatabase {
    /// Creates the database `<prefix>_<uuid>` (lowercase; the prefix sanitised to `[a-z0-9_]`) on
    /// the server of [`infra::postgres_admin_url`] and opens a small pool to it. Panics on failure.
    pub async fn create(prefix: &str) -> TestDatabase {
        match TestDatabase::try_create(prefix).await {
            Ok(database) => database,
            Err(error) => panic!("could not create a test database for {prefix:?}: {error:#}"),
        }
    }

    /// Like [`TestDatabase::create`], returning the error instead of panicking.
    pub async fn try_create(prefix: &str) -> anyhow::Result<TestDatabase> {
        let admin_url = match tokio::task::spawn_blocking(infra::postgres_admin_url).await {
            Ok(url) => url,
            Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
        };
        TestDatabase::try_create_on(&admin_url, prefix).await
    }

    /// Like [`TestDatabase::create`], on the server of `admin_url` (a superuser URL, such as a
    /// [`crate::postgres::PrivatePostgres`]'s) instead of the shared one. Panics on failure.
    pub async fn create_on(admin_url: &str, prefix: &str) -> TestDatabase {
        match TestDatabase::try_create_on(admin_url, prefix).await {
            Ok(database) => database,
            Err(error) => panic!("could not create a test database for {prefix:?}: {error:#}"),
        }
    }

    /// Like [`TestDatabase::create_on`], returning the error instead of panicking.
    pub async fn try_create_on(admin_url: &str, prefix: &str) -> anyhow::Result<TestDatabase> {
        let admin_url = admin_url.to_owned();
        let name = database_name(prefix);
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("connect to {admin_url}"))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match admin
                .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
                .await
            {
                Ok(_) => break,
                Err(sqlx::Error::Database(error))
                    if error.code().as_deref() == Some(OBJECT_IN_USE) && attempt < 20 =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => return Err(error).with_context(|| format!("CREATE DATABASE {name}")),
            }
        }
        let _ = admin.close().await;
        let url = url_with_database(&admin_url, &name);
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await
            .with_context(|| format!("connect to {url}"))?;
        Ok(TestDatabase {
            name,
            url,
            admin_url,
            pool,
            dropped: false,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection URL for the database (what a service gets as `DATABASE_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A small pool (at most 5 connections) to the database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool and drops the database `WITH (FORCE)`, ending other sessions on it (such as
    /// a service still connected). Panics on failure.
    pub async fn drop_db(mut self) {
        self.pool.close().await;
        if keep_databases() {
            eprintln!("keeping test database {} ({})", self.name, self.url);
        } else if let Err(error) = drop_database(&self.admin_url, &self.name).await {
            panic!("could not drop test database {}: {error:#}", self.name);
        }
        self.dropped = true;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        if keep_databases() {
            eprintln!("keeping test database {} ({})", self.name, self.url);
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: use a runtime of our own.
        let dropper = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(drop_database(&admin_url, &name))
        });
        match dropper.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!(
                "warning: could not drop test database {}: {error:#}",
                self.name
            ),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

fn keep_databases() -> bool {
    std::env::var("CLINICNET_TEST_KEEP_DB").is_ok_and(|value| !value.is_empty() && value != "0")
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("connect to {admin_url}"))?;
    admin
        .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
        .await
        .with_context(|| format!("DROP DATABASE {name}"))?;
    let _ = admin.close().await;
    Ok(())
}

/// `<prefix>_<uuid simple>`: lowercase, `[a-z0-9_]`, at most 63 bytes (PostgreSQL's limit).
pub fn database_name(prefix: &str) -> String {
    let mut clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() || clean.starts_with(|c: char| c.is_ascii_digit()) {
        clean.insert_str(0, "t_");
    }
    clean.truncate(30);
    format!("{clean}_{}", uuid::Uuid::new_v4().simple())
}

/// `url` with its database (the path) replaced by `database`, keeping any query parameters.
pub fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |index| index + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_sanitised_and_short_enough() {
        let a = database_name("Appointments-Booking race");
        let b = database_name("Appointments-Booking race");
        assert_ne!(a, b);
        assert!(a.starts_with("appointments_booking_race_"), "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
        assert!(database_name(&"x".repeat(100)).len() <= 63);
        assert!(database_name("9lives").starts_with("t_9lives_"));
    }

    #[test]
    fn database_in_url_is_replaced() {
        assert_eq!(
            url_with_database("postgres://postgres@127.0.0.1:5432/postgres", "d1"),
            "postgres://postgres@127.0.0.1:5432/d1"
        );
        assert_eq!(
            url_with_database("postgres://u:p@h:1", "d1"),
            "postgres://u:p@h:1/d1"
        );
        assert_eq!(
            url_with_database("postgres://u@h/postgres?sslmode=disable&host=/tmp", "d1"),
            "postgres://u@h/d1?sslmode=disable&host=/tmp"
        );
    }
}
