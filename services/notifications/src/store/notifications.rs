//! Notifications and their delivery schedule. A notification is created once per (source,
//! recipient, channel, kind[, reminder lead, webhook endpoint]) — the unique index makes a
//! repeated trigger a no-op. The scheduler claims due rows with `FOR UPDATE SKIP LOCKED`, so any
//! number of replicas share the work without taking the same row. Creating a notification that is
//! due at once wakes the schedulers of every replica when the transaction commits (a trigger
//! NOTIFYs, migration 1002).

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// The channel the schedulers listen on; the `notifications_due` trigger notifies it (on commit)
/// when a due notification is created.
pub const NOTIFY_CHANNEL: &str = "notifications_due";

/// A notification row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    /// Id (UUIDv7: ordered by creation).
    pub notification_id: Uuid,
    /// Triggering event id; empty for tests and keyword replies.
    pub source_event_id: String,
    /// `patient`, `clinic` or `address`.
    pub recipient_kind: String,
    /// Patient or clinic id; empty for an address.
    pub recipient_id: String,
    /// Channel number.
    pub channel: i16,
    /// Kind number.
    pub kind: i16,
    /// Category number.
    pub category: i16,
    /// Template name; empty for webhooks.
    pub template: String,
    /// Critical.
    pub critical: bool,
    /// Reminder lead in seconds; 0 when not a reminder.
    pub reminder_lead_seconds: i64,
    /// Webhook endpoint.
    pub webhook_endpoint_id: Option<Uuid>,
    /// Clinic.
    pub clinic_id: String,
    /// Visit.
    pub appointment_id: String,
    /// Explicit address (PHI).
    pub address: String,
    /// Event facts (PHI).
    pub facts: sqlx::types::Json<crate::domain::facts::Facts>,
    /// Locale rendered in.
    pub locale: i16,
    /// Status.
    pub status: String,
    /// Suppression reason number.
    pub suppression_reason: i16,
    /// Attempts made.
    pub attempts: i32,
    /// Last error, no PHI.
    pub last_error: String,
    /// Whether the last failure was permanent.
    pub permanent_failure: bool,
    /// Provider's message id.
    pub provider_message_id: String,
    /// Version, +1 per change.
    pub version: i64,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Not before.
    pub scheduled_at: OffsetDateTime,
    /// Next retry.
    pub next_attempt_at: Option<OffsetDateTime>,
    /// Accepted by the provider.
    pub sent_at: Option<OffsetDateTime>,
    /// Delivered.
    pub delivered_at: Option<OffsetDateTime>,
    /// Failed or suppressed.
    pub final_at: Option<OffsetDateTime>,
}

/// A notification to create.
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// Source key (event id or idempotency key).
    pub source_key: String,
    /// Triggering event id, or empty.
    pub source_event_id: String,
    /// `patient`, `clinic` or `address`.
    pub recipient_kind: &'static str,
    /// Patient or clinic id, or empty.
    pub recipient_id: String,
    /// Channel number.
    pub channel: i16,
    /// Kind number.
    pub kind: i16,
    /// Category number.
    pub category: i16,
    /// Template name.
    pub template: String,
    /// Critical.
    pub critical: bool,
    /// Reminder lead, seconds.
    pub reminder_lead_seconds: i64,
    /// Webhook endpoint.
    pub webhook_endpoint_id: Option<Uuid>,
    /// Clinic.
    pub clinic_id: String,
    /// Visit.
    pub appointment_id: String,
    /// Explicit address.
    pub address: String,
    /// Facts.
    pub facts: crate::domain::facts::Facts,
    /// Locale (for address recipients).
    pub locale: i16,
    /// Not sent before.
    pub scheduled_at: OffsetDateTime,
}

/// Creates the notification unless it exists (one due now wakes the schedulers on commit);
/// returns its row either way.
pub async fn create(
    conn: &mut PgConnection,
    n: &NewNotification,
) -> Result<NotificationRow, sqlx::Error> {
    let inserted: Option<NotificationRow> = sqlx::query_as(
        "INSERT INTO notifications (notification_id, source_key, source_event_id, recipient_kind,
             recipient_id, channel, kind, category, template, critical, reminder_lead_seconds,
             webhook_endpoint_id, clinic_id, appointment_id, address, facts, locale, status,
             scheduled_at, due_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
             'queued', $18, $18)
         ON CONFLICT DO NOTHING
         RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(&n.source_key)
    .bind(&n.source_event_id)
    .bind(n.recipient_kind)
    .bind(&n.recipient_id)
    .bind(n.channel)
    .bind(n.kind)
    .bind(n.category)
    .bind(&n.template)
    .bind(n.critical)
    .bind(n.reminder_lead_seconds)
    .bind(n.webhook_endpoint_id)
    .bind(&n.clinic_id)
    .bind(&n.appointment_id)
    .bind(&n.address)
    .bind(sqlx::types::Json(&n.facts))
    .bind(n.locale)
    .bind(n.scheduled_at)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = inserted {
        return Ok(row);
    }
    sqlx::query_as(
        "SELECT * FROM notifications WHERE source_key = $1 AND recipient_kind = $2
           AND recipient_id = $3 AND channel = $4 AND kind = $5 AND reminder_lead_seconds = $6
           AND webhook_endpoint_id IS NOT DISTINCT FROM $7",
    )
    .bind(&n.source_key)
    .bind(n.recipient_kind)
    .bind(&n.recipient_id)
    .bind(n.channel)
    .bind(n.kind)
    .bind(n.reminder_lead_seconds)
    .bind(n.webhook_endpoint_id)
    .fetch_one(conn)
    .await
}

/// Queued reminders of a visit, locked: the ones a move or a cancellation retires.
pub async fn queued_reminders(
    conn: &mut PgConnection,
    appointment_id: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT notification_id FROM notifications
         WHERE appointment_id = $1 AND kind = 4 AND status = 'queued'
         ORDER BY notification_id FOR UPDATE",
    )
    .bind(appointment_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Up to `limit` due notifications (queued and due, or a send whose lease ran out), locked for
/// this transaction; rows other replicas hold are skipped.
pub async fn lock_due(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM notifications
         WHERE status IN ('queued', 'sending') AND due_at <= now()
         ORDER BY due_at LIMIT $1
         FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Marks a claimed notification as being sent (attempt counted) until `lease_until`; committed
/// before the provider is called.
pub async fn begin_send(
    conn: &mut PgConnection,
    id: Uuid,
    locale: i16,
    lease_until: OffsetDateTime,
) -> Result<i32, sqlx::Error> {
    let (attempts,): (i32,) = sqlx::query_as(
        "UPDATE notifications SET status = 'sending', attempts = attempts + 1, locale = $2,
             sending_since = now(), due_at = $3, next_attempt_at = NULL, version = version + 1
         WHERE notification_id = $1 RETURNING attempts",
    )
    .bind(id)
    .bind(locale)
    .bind(lease_until)
    .fetch_one(conn)
    .await?;
    Ok(attempts)
}

/// Records the provider's acceptance of attempt `attempt`; `None` when the row moved on (another
/// worker took the send over).
pub async fn record_sent(
    conn: &mut PgConnection,
    id: Uuid,
    attempt: i32,
    provider_message_id: &str,
) -> Result<Option<NotificationRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE notifications SET status = 'sent', sent_at = now(), provider_message_id = $3,
             last_error = '', permanent_failure = false, version = version + 1
         WHERE notification_id = $1 AND status = 'sending' AND attempts = $2 RETURNING *",
    )
    .bind(id)
    .bind(attempt)
    .bind(provider_message_id)
    .fetch_optional(conn)
    .await
}

/// Puts a failed attempt back in the queue for a retry at `at`.
pub async fn record_retry(
    conn: &mut PgConnection,
    id: Uuid,
    attempt: i32,
    error: &str,
    at: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE notifications SET status = 'queued', last_error = $3, next_attempt_at = $4,
             due_at = $4, sending_since = NULL, version = version + 1
         WHERE notification_id = $1 AND status = 'sending' AND attempts = $2",
    )
    .bind(id)
    .bind(attempt)
    .bind(error)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Fails a notification for good (`attempt` guards a send in flight; `None` for a queued row).
pub async fn record_failed(
    conn: &mut PgConnection,
    id: Uuid,
    attempt: Option<i32>,
    error: &str,
    permanent: bool,
) -> Result<Option<NotificationRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE notifications SET status = 'failed', last_error = $3, permanent_failure = $4,
             final_at = now(), next_attempt_at = NULL, version = version + 1
         WHERE notification_id = $1 AND status IN ('queued', 'sending')
           AND ($2::int IS NULL OR attempts = $2) RETURNING *",
    )
    .bind(id)
    .bind(attempt)
    .bind(error)
    .bind(permanent)
    .fetch_optional(conn)
    .await
}

/// Suppresses a queued (or lease-expired) notification with `reason`.
pub async fn suppress(
    conn: &mut PgConnection,
    id: Uuid,
    reason: i16,
) -> Result<Option<NotificationRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE notifications SET status = 'suppressed', suppression_reason = $2, final_at = now(),
             next_attempt_at = NULL, version = version + 1
         WHERE notification_id = $1 AND status IN ('queued', 'sending') RETURNING *",
    )
    .bind(id)
    .bind(reason)
    .fetch_optional(conn)
    .await
}

/// Postpones a queued notification to `at` (quiet hours move the scheduled time; waiting for a
/// read model only the next look).
pub async fn postpone(
    conn: &mut PgConnection,
    id: Uuid,
    at: OffsetDateTime,
    reschedule: bool,
    note: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications SET due_at = $2,
             scheduled_at = CASE WHEN $3 THEN $2 ELSE scheduled_at END,
             last_error = CASE WHEN $4 = '' THEN last_error ELSE $4 END,
             status = 'queued', sending_since = NULL, version = version + 1
         WHERE notification_id = $1",
    )
    .bind(id)
    .bind(at)
    .bind(reschedule)
    .bind(note)
    .execute(conn)
    .await?;
    Ok(())
}

/// Non-critical, non-service SMS to a recipient accepted (or in flight) since `since`.
pub async fn sms_sent_since(
    conn: &mut PgConnection,
    recipient_kind: &str,
    recipient_id: &str,
    since: OffsetDateTime,
) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM notifications
         WHERE recipient_kind = $1 AND recipient_id = $2 AND channel = 2 AND NOT critical
           AND category <> 6 AND status IN ('sending', 'sent', 'delivered')
           AND COALESCE(sent_at, sending_since) >= $3",
    )
    .bind(recipient_kind)
    .bind(recipient_id)
    .bind(since)
    .fetch_one(conn)
    .await?;
    Ok(count)
}

/// One notification.
pub async fn get(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<NotificationRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM notifications WHERE notification_id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// A page of a recipient's or a visit's notifications, newest first.
pub struct ListQuery<'a> {
    /// `patient` or `clinic` with its id; or `None` with an appointment id.
    pub recipient: Option<(&'a str, &'a str)>,
    /// The visit.
    pub appointment_id: Option<&'a str>,
    /// Only these statuses (empty: all).
    pub statuses: Vec<String>,
    /// Only this channel (0: all).
    pub channel: i16,
    /// Clinics the caller may see (`None`: all).
    pub clinics: Option<Vec<String>>,
    /// Ids below this one (the page token).
    pub before: Option<Uuid>,
    /// Rows to return.
    pub limit: i64,
}

/// Runs a [`ListQuery`].
pub async fn list(
    conn: &mut PgConnection,
    q: &ListQuery<'_>,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM notifications
         WHERE ($1::text IS NULL OR (recipient_kind = $1 AND recipient_id = $2))
           AND ($3::text IS NULL OR appointment_id = $3)
           AND (cardinality($4::text[]) = 0 OR status = ANY($4))
           AND ($5 = 0 OR channel = $5)
           AND ($6::text[] IS NULL OR clinic_id = ANY($6))
           AND ($7::uuid IS NULL OR notification_id < $7)
         ORDER BY notification_id DESC LIMIT $8",
    )
    .bind(q.recipient.map(|(kind, _)| kind))
    .bind(q.recipient.map(|(_, id)| id))
    .bind(q.appointment_id)
    .bind(&q.statuses)
    .bind(q.channel)
    .bind(&q.clinics)
    .bind(q.before)
    .bind(q.limit)
    .fetch_all(conn)
    .await
}

/// Test messages of a clinic created since `since`.
pub async fn tests_since(
    conn: &mut PgConnection,
    clinic_id: &str,
    since: OffsetDateTime,
) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM notifications WHERE kind = 12 AND clinic_id = $1 AND created_at >= $2",
    )
    .bind(clinic_id)
    .bind(since)
    .fetch_one(conn)
    .await?;
    Ok(count)
}
