//! Availability: slots and syncs. A sync stages its slots in a temporary table (bulk, with
//! `UNNEST` arrays) and replaces the clinic's free slots in the window with set-based statements,
//! all in the caller's transaction: identical slots stay, free slots no longer sent are marked
//! entered-in-error, booked and held slots are never touched (reported as conflicts), and new
//! slots overlapping a booking on the same chair or provider are not created (conflicts too).

use super::bounds;
use sqlx::{PgConnection, postgres::types::PgRange};
use time::OffsetDateTime;
use uuid::Uuid;

/// A slot as stored, with its status as seen now (busy and busy-tentative derived from its active
/// reservation).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SlotRow {
    /// Id.
    pub slot_id: Uuid,
    /// Clinic.
    pub clinic_id: String,
    /// Chair, unless telehealth.
    pub chair_id: Option<String>,
    /// Provider, when the slot names one.
    pub provider_id: Option<String>,
    /// Modality.
    pub modality: i16,
    /// `[start, end)`.
    pub during: PgRange<OffsetDateTime>,
    /// FHIR status code: free, busy, busy-tentative, busy-unavailable or entered-in-error.
    pub status: String,
    /// The sync that created it.
    pub sync_version: i64,
    /// The clinic's id for it.
    pub external_id: String,
}

impl SlotRow {
    /// Start and end.
    pub fn times(&self) -> (OffsetDateTime, OffsetDateTime) {
        bounds(&self.during)
    }
}

const SLOT_SELECT: &str = "SELECT s.slot_id, s.clinic_id, s.chair_id, s.provider_id, s.modality, s.during,
        CASE WHEN s.status <> 'free' THEN s.status
             WHEN r.kind = 'appointment' THEN 'busy'
             WHEN r.kind = 'hold' THEN 'busy-tentative'
             ELSE 'free' END AS status,
        s.sync_version, s.external_id
   FROM slots s
   LEFT JOIN LATERAL (SELECT kind FROM reservations r
                       WHERE r.slot_id = s.slot_id AND r.active AND (r.expires_at IS NULL OR r.expires_at > now())
                       LIMIT 1) r ON true";

/// One slot.
pub async fn slot(conn: &mut PgConnection, slot_id: Uuid) -> Result<Option<SlotRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SLOT_SELECT} WHERE s.slot_id = $1"))
        .bind(slot_id)
        .fetch_optional(conn)
        .await
}

/// A page of a clinic's slots starting in a window, ordered by start then id, after the key
/// `after`; `statuses` empty means all but entered-in-error.
pub async fn list(
    conn: &mut PgConnection,
    clinic_id: &str,
    window: (OffsetDateTime, OffsetDateTime),
    chair_id: Option<&str>,
    statuses: &[String],
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<SlotRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT * FROM ({SLOT_SELECT}
            WHERE s.clinic_id = $1 AND lower(s.during) >= $2 AND lower(s.during) < $3
              AND ($4::text IS NULL OR s.chair_id = $4)
              AND ($6::timestamptz IS NULL OR (lower(s.during), s.slot_id) > ($6, $7))) listed
          WHERE (cardinality($5::text[]) = 0 AND status <> 'entered-in-error') OR status = ANY($5)
          ORDER BY lower(during), slot_id LIMIT $8"
    ))
    .bind(clinic_id)
    .bind(window.0)
    .bind(window.1)
    .bind(chair_id)
    .bind(statuses)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A search for bookable slots.
#[derive(Debug, Clone, Copy)]
pub struct Search<'a> {
    /// The clinic.
    pub clinic_id: &'a str,
    /// The modality.
    pub modality: i16,
    /// Slots starting from…
    pub from: OffsetDateTime,
    /// …until (exclusive).
    pub to: OffsetDateTime,
    /// How long the visit occupies the slot, buffers included.
    pub min_length: time::Duration,
    /// Only slots of this provider or without one.
    pub provider_id: Option<&'a str>,
    /// Only slots after this (start, slot id), in the order returned.
    pub after: Option<(OffsetDateTime, Uuid)>,
    /// At most this many.
    pub limit: i64,
}

/// Free slots of the search's modality at its clinic starting in `[from, to)` (earliest first)
/// that are at least `min_length` long and whose first `min_length` no active reservation of their
/// chair or provider overlaps.
pub async fn bookable(
    conn: &mut PgConnection,
    search: Search<'_>,
) -> Result<Vec<SlotRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SLOT_SELECT}
          WHERE s.clinic_id = $1 AND s.modality = $2 AND s.status = 'free'
            AND lower(s.during) >= $3 AND lower(s.during) < $4
            AND upper(s.during) - lower(s.during) >= make_interval(secs => $5)
            AND ($6::text IS NULL OR s.provider_id IS NULL OR s.provider_id = $6)
            AND NOT EXISTS (
                SELECT 1 FROM reservations o
                 WHERE o.active AND (o.expires_at IS NULL OR o.expires_at > now())
                   AND o.occupied && tstzrange(lower(s.during), lower(s.during) + make_interval(secs => $5), '[)')
                   AND (o.chair_id = s.chair_id OR o.provider_id = s.provider_id))
            AND ($8::timestamptz IS NULL OR (lower(s.during), s.slot_id) > ($8, $9))
          ORDER BY lower(s.during), s.slot_id LIMIT $7"
    ))
    .bind(search.clinic_id)
    .bind(search.modality)
    .bind(search.from)
    .bind(search.to)
    .bind(search.min_length.as_seconds_f64())
    .bind(search.provider_id)
    .bind(search.limit)
    .bind(search.after.map(|a| a.0))
    .bind(search.after.map(|a| a.1))
    .fetch_all(conn)
    .await
}

/// Where a clinic's syncs stand, read under a lock held to the end of the transaction so syncs of
/// one clinic apply one at a time.
pub async fn lock_last_version(
    conn: &mut PgConnection,
    clinic_id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query("INSERT INTO availability_state (clinic_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(clinic_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar(
        "SELECT last_sync_version FROM availability_state WHERE clinic_id = $1 FOR UPDATE",
    )
    .bind(clinic_id)
    .fetch_one(conn)
    .await
}

/// The recorded outcome of an applied sync.
pub async fn recorded_outcome(
    conn: &mut PgConnection,
    clinic_id: &str,
    version: i64,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT outcome FROM availability_syncs WHERE clinic_id = $1 AND sync_version = $2",
    )
    .bind(clinic_id)
    .bind(version)
    .fetch_optional(conn)
    .await
}

/// Records an applied sync and makes its version the clinic's last.
pub async fn record(
    conn: &mut PgConnection,
    clinic_id: &str,
    version: i64,
    outcome: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO availability_syncs (clinic_id, sync_version, outcome) VALUES ($1, $2, $3)",
    )
    .bind(clinic_id)
    .bind(version)
    .bind(outcome)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE availability_state SET last_sync_version = $2 WHERE clinic_id = $1")
        .bind(clinic_id)
        .bind(version)
        .execute(conn)
        .await?;
    Ok(())
}

/// Slots of a sync, column by column, as staged.
#[derive(Debug, Default)]
pub struct Staged {
    /// Position of each slot in the sync.
    pub ordinals: Vec<i64>,
    /// The clinic's ids.
    pub external_ids: Vec<String>,
    /// Chairs ('' for none).
    pub chair_ids: Vec<String>,
    /// Providers ('' for any).
    pub provider_ids: Vec<String>,
    /// Modalities.
    pub modalities: Vec<i16>,
    /// Starts.
    pub starts: Vec<OffsetDateTime>,
    /// Ends.
    pub ends: Vec<OffsetDateTime>,
}

impl Staged {
    /// Whether no slot is staged.
    pub fn is_empty(&self) -> bool {
        self.ordinals.is_empty()
    }
}

/// Creates the transaction's staging table. A large sync's statements may run longer than the
/// service's usual statement timeout: the transaction gets a longer one.
pub async fn begin_staging(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET LOCAL statement_timeout = '120s'")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "CREATE TEMP TABLE sync_incoming (
             ord bigint NOT NULL, external_id text NOT NULL, chair_id text, provider_id text,
             modality smallint NOT NULL, during tstzrange NOT NULL, matched uuid, blocked_by uuid
         ) ON COMMIT DROP",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Appends slots to the staging table in one statement.
pub async fn stage(conn: &mut PgConnection, slots: &Staged) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sync_incoming (ord, external_id, chair_id, provider_id, modality, during)
         SELECT o, e, NULLIF(c, ''), NULLIF(p, ''), m, tstzrange(s, t, '[)')
           FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::smallint[], $6::timestamptz[], $7::timestamptz[])
             AS u(o, e, c, p, m, s, t)",
    )
    .bind(&slots.ordinals)
    .bind(&slots.external_ids)
    .bind(&slots.chair_ids)
    .bind(&slots.provider_ids)
    .bind(&slots.modalities)
    .bind(&slots.starts)
    .bind(&slots.ends)
    .execute(conn)
    .await?;
    Ok(())
}

/// The position of the first slot that repeats an earlier one of the same sync, if any.
pub async fn first_duplicate(conn: &mut PgConnection) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT max(ord) FROM sync_incoming
          GROUP BY coalesce(chair_id, ''), coalesce(provider_id, ''), modality, during
         HAVING count(*) > 1 ORDER BY 1 LIMIT 1",
    )
    .fetch_optional(conn)
    .await
}

/// A booked or held slot a sync could not change.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConflictRow {
    /// 1: booked slot kept; 2: synced slot overlapping a booking.
    pub kind: i32,
    /// The booked or held slot.
    pub slot_id: Uuid,
    /// The visit booked in it, when booked.
    pub appointment_id: Option<Uuid>,
    /// Its chair.
    pub chair_id: Option<String>,
    /// Its times.
    pub during: PgRange<OffsetDateTime>,
    /// The synced slot's external id, when any.
    pub external_id: String,
}

/// What a sync did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Free slots created.
    pub added: i64,
    /// Free slots removed.
    pub removed: i64,
    /// Slots identical before and after.
    pub unchanged: i64,
    /// Changes refused around booked or held slots.
    pub conflicts: Vec<ConflictRow>,
}

/// Replaces the clinic's free slots starting in the window with the staged ones.
pub async fn apply(
    conn: &mut PgConnection,
    clinic_id: &str,
    version: i64,
    window: (OffsetDateTime, OffsetDateTime),
) -> Result<Applied, sqlx::Error> {
    super::reservations::expire_lapsed(conn, Some(clinic_id)).await?;
    sqlx::query("ANALYZE sync_incoming")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "CREATE TEMP TABLE sync_existing ON COMMIT DROP AS
         SELECT s.slot_id, coalesce(s.chair_id, '') AS chair_key, coalesce(s.provider_id, '') AS provider_key,
                s.chair_id, s.modality, s.during, r.reservation_id, r.kind
           FROM slots s
           LEFT JOIN reservations r ON r.slot_id = s.slot_id AND r.active
          WHERE s.clinic_id = $1 AND s.status = 'free' AND lower(s.during) >= $2 AND lower(s.during) < $3",
    )
    .bind(clinic_id)
    .bind(window.0)
    .bind(window.1)
    .execute(&mut *conn)
    .await?;
    sqlx::query("ANALYZE sync_existing")
        .execute(&mut *conn)
        .await?;
    let unchanged = sqlx::query(
        "UPDATE sync_incoming i SET matched = e.slot_id FROM sync_existing e
          WHERE e.chair_key = coalesce(i.chair_id, '') AND e.provider_key = coalesce(i.provider_id, '')
            AND e.modality = i.modality AND e.during = i.during",
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let removed = sqlx::query(
        "UPDATE slots s SET status = 'entered-in-error', removed_in_version = $1
           FROM sync_existing e
          WHERE s.slot_id = e.slot_id AND e.reservation_id IS NULL
            AND NOT EXISTS (SELECT 1 FROM sync_incoming i WHERE i.matched = e.slot_id)",
    )
    .bind(version)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let mut conflicts: Vec<ConflictRow> = sqlx::query_as(
        "SELECT 1 AS kind, e.slot_id, CASE WHEN e.kind = 'appointment' THEN e.reservation_id END AS appointment_id,
                e.chair_id, e.during, '' AS external_id
           FROM sync_existing e
          WHERE e.reservation_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM sync_incoming i WHERE i.matched = e.slot_id)
          ORDER BY lower(e.during), e.slot_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    // Bookings anywhere on the chairs and providers of the unmatched slots, in the window.
    sqlx::query(
        "CREATE TEMP TABLE sync_busy ON COMMIT DROP AS
         SELECT r.reservation_id, r.kind, r.slot_id, r.chair_id, r.provider_id, r.occupied
           FROM reservations r
          WHERE r.active AND r.occupied && tstzrange($1, $2, '[)')
            AND (r.chair_id IN (SELECT chair_id FROM sync_incoming WHERE matched IS NULL)
                 OR r.provider_id IN (SELECT provider_id FROM sync_incoming WHERE matched IS NULL))",
    )
    .bind(window.0)
    .bind(window.1)
    .execute(&mut *conn)
    .await?;
    for key in ["chair_id", "provider_id"] {
        sqlx::query(&format!(
            "UPDATE sync_incoming i SET blocked_by = b.reservation_id FROM sync_busy b
              WHERE i.matched IS NULL AND i.blocked_by IS NULL AND b.{key} = i.{key} AND b.occupied && i.during"
        ))
        .execute(&mut *conn)
        .await?;
    }
    let overlapping: Vec<ConflictRow> = sqlx::query_as(
        "SELECT 2 AS kind, b.slot_id, CASE WHEN b.kind = 'appointment' THEN b.reservation_id END AS appointment_id,
                s.chair_id, s.during, i.external_id
           FROM sync_incoming i
           JOIN sync_busy b ON b.reservation_id = i.blocked_by
           JOIN slots s ON s.slot_id = b.slot_id
          ORDER BY i.ord",
    )
    .fetch_all(&mut *conn)
    .await?;
    conflicts.extend(overlapping);
    let added = sqlx::query(
        "INSERT INTO slots (slot_id, clinic_id, chair_id, provider_id, modality, during, status, sync_version, external_id)
         SELECT gen_random_uuid(), $1, chair_id, provider_id, modality, during, 'free', $2, external_id
           FROM sync_incoming WHERE matched IS NULL AND blocked_by IS NULL",
    )
    .bind(clinic_id)
    .bind(version)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(Applied {
        added: count(added),
        removed: count(removed),
        unchanged: count(unchanged),
        conflicts,
    })
}
