//! Reservations: the rows PostgreSQL's exclusion constraints keep from overlapping, one per
//! active hold or visit, over the chair and the provider it occupies. Lapsed holds are expired
//! here — lazily, right before anything else tries to occupy the same chair or provider, and
//! periodically by the sweep.

use super::range;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// Which exclusion constraint refused a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clash {
    /// The chair is taken.
    Chair,
    /// The provider is taken.
    Provider,
}

/// The clash an insert or update failed on, if it was an exclusion violation.
pub fn clash_of(error: &sqlx::Error) -> Option<Clash> {
    if !platform::db::is_exclusion_violation(error) {
        return None;
    }
    match error.as_database_error().and_then(|e| e.constraint()) {
        Some("provider_not_double_booked") => Some(Clash::Provider),
        _ => Some(Clash::Chair),
    }
}

/// What a new reservation occupies.
#[derive(Debug, Clone)]
pub struct Occupancy<'a> {
    /// The slot it is in.
    pub slot_id: Uuid,
    /// The clinic.
    pub clinic_id: &'a str,
    /// The chair, unless telehealth.
    pub chair_id: Option<&'a str>,
    /// The provider, unless assigned later.
    pub provider_id: Option<&'a str>,
    /// Start of the occupied range.
    pub start: OffsetDateTime,
    /// End of the occupied range (exclusive).
    pub end: OffsetDateTime,
}

/// Clears the way for a reservation of `occupancy`: locks its chair and provider (see
/// [`lock_resources`]), then expires the lapsed holds in the way (see [`expire_lapsed_around`]).
pub async fn make_way(
    conn: &mut PgConnection,
    occupancy: &Occupancy<'_>,
) -> Result<(), sqlx::Error> {
    lock_resources(conn, occupancy).await?;
    expire_lapsed_around(conn, occupancy).await
}

/// Waits until no other transaction is reserving this chair or provider, holding the lock until
/// commit. Two bookings racing for the same chair would otherwise each insert, then each wait in
/// the exclusion constraint's check for the other: a deadlock that PostgreSQL breaks only after
/// its deadlock timeout. The locks are taken in one global order, so they cannot deadlock.
async fn lock_resources(
    conn: &mut PgConnection,
    occupancy: &Occupancy<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock(key)) FROM (
            SELECT DISTINCT key FROM unnest(ARRAY[
                hashtextextended('chair/' || $1, 0),
                hashtextextended('provider/' || $2, 0)]) AS key
             WHERE key IS NOT NULL ORDER BY key) AS keys",
    )
    .bind(occupancy.chair_id)
    .bind(occupancy.provider_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Expires the lapsed holds that overlap `[start, end)` on the chair or the provider, so a new
/// reservation does not collide with a hold nobody can use any more.
async fn expire_lapsed_around(
    conn: &mut PgConnection,
    occupancy: &Occupancy<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH lapsed AS (
            UPDATE reservations SET active = false
             WHERE active AND kind = 'hold' AND expires_at <= now() AND occupied && $3
               AND (chair_id = $1 OR provider_id = $2)
         RETURNING reservation_id)
         UPDATE holds SET status = 'expired' FROM lapsed WHERE holds.hold_id = lapsed.reservation_id",
    )
    .bind(occupancy.chair_id)
    .bind(occupancy.provider_id)
    .bind(range(occupancy.start, occupancy.end))
    .execute(conn)
    .await?;
    Ok(())
}

/// Expires every lapsed hold of a clinic (or of all clinics); returns how many.
pub async fn expire_lapsed(
    conn: &mut PgConnection,
    clinic_id: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "WITH lapsed AS (
            UPDATE reservations SET active = false
             WHERE active AND kind = 'hold' AND expires_at <= now() AND ($1::text IS NULL OR clinic_id = $1)
         RETURNING reservation_id)
         UPDATE holds SET status = 'expired' FROM lapsed WHERE holds.hold_id = lapsed.reservation_id",
    )
    .bind(clinic_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Inserts an active reservation: a visit, or a hold lasting `hold_seconds` from now (database
/// time). Returns the hold's expiry. Fails with an exclusion violation on a clash.
pub async fn insert(
    conn: &mut PgConnection,
    reservation_id: Uuid,
    occupancy: &Occupancy<'_>,
    hold_seconds: Option<u32>,
) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO reservations (reservation_id, kind, slot_id, clinic_id, chair_id, provider_id, occupied, active, expires_at)
         VALUES ($1, CASE WHEN $7::int IS NULL THEN 'appointment' ELSE 'hold' END, $2, $3, $4, $5, $6, true,
                 now() + make_interval(secs => $7::int))
         RETURNING expires_at",
    )
    .bind(reservation_id)
    .bind(occupancy.slot_id)
    .bind(occupancy.clinic_id)
    .bind(occupancy.chair_id)
    .bind(occupancy.provider_id)
    .bind(range(occupancy.start, occupancy.end))
    .bind(hold_seconds.and_then(|s| i32::try_from(s).ok()))
    .fetch_one(conn)
    .await
}

/// Moves a visit's reservation to a new slot, chair, provider and range (rescheduling). Fails
/// with an exclusion violation on a clash.
pub async fn move_to(
    conn: &mut PgConnection,
    reservation_id: Uuid,
    occupancy: &Occupancy<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE reservations SET slot_id = $2, clinic_id = $3, chair_id = $4, provider_id = $5, occupied = $6
          WHERE reservation_id = $1",
    )
    .bind(reservation_id)
    .bind(occupancy.slot_id)
    .bind(occupancy.clinic_id)
    .bind(occupancy.chair_id)
    .bind(occupancy.provider_id)
    .bind(range(occupancy.start, occupancy.end))
    .execute(conn)
    .await?;
    Ok(())
}

/// Frees the chair and provider of a reservation.
pub async fn release(conn: &mut PgConnection, reservation_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE reservations SET active = false WHERE reservation_id = $1")
        .bind(reservation_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Frees the rest of a visit that ended early: the reservation then ends at `end`, or is released
/// when the visit ended before its planned start.
pub async fn end_early(
    conn: &mut PgConnection,
    reservation_id: Uuid,
    end: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE reservations
            SET active = lower(occupied) < $2,
                occupied = CASE WHEN lower(occupied) < $2 THEN tstzrange(lower(occupied), $2, '[)') ELSE occupied END
          WHERE reservation_id = $1 AND $2 < upper(occupied)",
    )
    .bind(reservation_id)
    .bind(end)
    .execute(conn)
    .await?;
    Ok(())
}
