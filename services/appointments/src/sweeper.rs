//! The hold sweep: marks lapsed holds expired and frees their reservations every interval, so
//! listings and the database show them expired even when nobody books their chair. (A booking of
//! the same chair or provider expires them at once anyway.) Every replica sweeps; the statement is
//! idempotent.

use crate::store;
use platform::shutdown::Shutdown;
use sqlx::PgPool;
use std::time::Duration;

/// Sweeps every `interval` until shutdown.
pub async fn run(pool: PgPool, interval: Duration, shutdown: Shutdown) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = ticks.tick() => {}
        }
        let swept = match pool.acquire().await {
            Ok(mut conn) => store::reservations::expire_lapsed(&mut conn, None).await,
            Err(error) => Err(error),
        };
        match swept {
            Ok(0) => {}
            Ok(expired) => tracing::debug!(expired, "lapsed holds expired"),
            Err(error) => {
                tracing::warn!(error = %error, "hold sweep failed; retrying at the next interval")
            }
        }
    }
}
