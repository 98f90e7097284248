//! Recipients' preferences (optimistic versioning) and SMS opt-outs by number.

use clinicnet_proto::notifications::v1::Preferences;
use prost::Message;
use sqlx::PgConnection;
use time::OffsetDateTime;

/// Stored preferences with their version and change time.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The preferences (channels only).
    pub preferences: Preferences,
    /// Version.
    pub version: i64,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A recipient's stored preferences, if any were set.
pub async fn get(
    conn: &mut PgConnection,
    kind: &str,
    id: &str,
) -> Result<Option<Stored>, sqlx::Error> {
    let row: Option<(Vec<u8>, i64, OffsetDateTime)> = sqlx::query_as(
        "SELECT preferences, version, updated_at FROM preferences WHERE recipient_kind = $1 AND recipient_id = $2",
    )
    .bind(kind)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(bytes, version, updated_at)| Stored {
        preferences: Preferences::decode(bytes.as_slice()).unwrap_or_default(),
        version,
        updated_at,
    }))
}

/// Replaces the preferences when the stored version is `expected` (0: none stored); `None` when
/// another change won.
pub async fn set(
    conn: &mut PgConnection,
    kind: &str,
    id: &str,
    preferences: &Preferences,
    expected: i64,
) -> Result<Option<Stored>, sqlx::Error> {
    let bytes = preferences.encode_to_vec();
    let row: Option<(i64, OffsetDateTime)> = if expected == 0 {
        sqlx::query_as(
            "INSERT INTO preferences (recipient_kind, recipient_id, preferences, version)
             VALUES ($1, $2, $3, 1) ON CONFLICT DO NOTHING RETURNING version, updated_at",
        )
        .bind(kind)
        .bind(id)
        .bind(&bytes)
        .fetch_optional(conn)
        .await?
    } else {
        sqlx::query_as(
            "UPDATE preferences SET preferences = $3, version = version + 1, updated_at = now()
             WHERE recipient_kind = $1 AND recipient_id = $2 AND version = $4
             RETURNING version, updated_at",
        )
        .bind(kind)
        .bind(id)
        .bind(&bytes)
        .bind(expected)
        .fetch_optional(conn)
        .await?
    };
    Ok(row.map(|(version, updated_at)| Stored {
        preferences: preferences.clone(),
        version,
        updated_at,
    }))
}

/// Whether `phone` texted STOP (and not START since).
pub async fn sms_opted_out(conn: &mut PgConnection, phone: &str) -> Result<bool, sqlx::Error> {
    if phone.is_empty() {
        return Ok(false);
    }
    let row: Option<(bool,)> =
        sqlx::query_as("SELECT opted_out FROM sms_opt_outs WHERE phone = $1")
            .bind(phone)
            .fetch_optional(conn)
            .await?;
    Ok(row.is_some_and(|(o,)| o))
}

/// Records a STOP (`true`) or START (`false`) from `phone`, effective at once.
pub async fn set_sms_opt_out(
    conn: &mut PgConnection,
    phone: &str,
    opted_out: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sms_opt_outs (phone, opted_out) VALUES ($1, $2)
         ON CONFLICT (phone) DO UPDATE SET opted_out = EXCLUDED.opted_out, changed_at = now()",
    )
    .bind(phone)
    .bind(opted_out)
    .execute(conn)
    .await?;
    Ok(())
}
