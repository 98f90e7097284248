//! Clinics' webhook endpoints and their signing secrets: the current secret, and a previous one
//! that keeps signing until its grace period ends. Removing an endpoint destroys its secrets.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// An endpoint row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    /// Id.
    pub endpoint_id: Uuid,
    /// Clinic.
    pub clinic_id: String,
    /// https URL.
    pub url: String,
    /// Kinds delivered (empty: all).
    pub kinds: Vec<i16>,
    /// Note.
    pub description: String,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Removed.
    pub removed_at: Option<OffsetDateTime>,
    /// When the current secret was issued.
    pub secret_issued_at: Option<OffsetDateTime>,
    /// Until when the previous secret signs.
    pub previous_expires_at: Option<OffsetDateTime>,
}

const SELECT: &str = "SELECT e.*,
        (SELECT issued_at FROM webhook_secrets s WHERE s.endpoint_id = e.endpoint_id AND s.expires_at IS NULL) AS secret_issued_at,
        (SELECT max(expires_at) FROM webhook_secrets s WHERE s.endpoint_id = e.endpoint_id AND s.expires_at > now()) AS previous_expires_at
     FROM webhook_endpoints e";

/// Registers an endpoint with its first secret; `None` when the clinic has a live endpoint with
/// this URL.
pub async fn register(
    conn: &mut PgConnection,
    clinic_id: &str,
    url: &str,
    kinds: &[i16],
    description: &str,
    secret: &[u8],
) -> Result<Option<EndpointRow>, sqlx::Error> {
    let id = Uuid::now_v7();
    let inserted = sqlx::query(
        "INSERT INTO webhook_endpoints (endpoint_id, clinic_id, url, kinds, description)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(clinic_id)
    .bind(url)
    .bind(kinds)
    .bind(description)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO webhook_secrets (endpoint_id, secret, issued_at) VALUES ($1, $2, now())",
    )
    .bind(id)
    .bind(secret)
    .execute(&mut *conn)
    .await?;
    get(conn, id).await
}

/// One endpoint.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE e.endpoint_id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// One endpoint, locked for a change.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE e.endpoint_id = $1 FOR UPDATE OF e"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Issues `secret` as the current one; the current one signs until `previous_until`, and older
/// ones stop at once.
pub async fn rotate(
    conn: &mut PgConnection,
    id: Uuid,
    secret: &[u8],
    previous_until: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM webhook_secrets WHERE endpoint_id = $1 AND expires_at IS NOT NULL")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE webhook_secrets SET expires_at = $2 WHERE endpoint_id = $1 AND expires_at IS NULL",
    )
    .bind(id)
    .bind(previous_until)
    .execute(&mut *conn)
    .await?;
    // clock_timestamp(): a later instant than the previous secret's issue time in this transaction.
    sqlx::query("INSERT INTO webhook_secrets (endpoint_id, secret, issued_at) VALUES ($1, $2, clock_timestamp())")
        .bind(id)
        .bind(secret)
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes an endpoint and destroys its secrets.
pub async fn remove(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE webhook_endpoints SET removed_at = now() WHERE endpoint_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM webhook_secrets WHERE endpoint_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A page of a clinic's endpoints, oldest first.
pub async fn list(
    conn: &mut PgConnection,
    clinic_id: &str,
    include_removed: bool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE e.clinic_id = $1 AND ($2 OR e.removed_at IS NULL)
           AND ($3::uuid IS NULL OR e.endpoint_id > $3)
         ORDER BY e.endpoint_id LIMIT $4"
    ))
    .bind(clinic_id)
    .bind(include_removed)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Live endpoints of a clinic that want `kind`.
pub async fn subscribers(
    conn: &mut PgConnection,
    clinic_id: &str,
    kind: i16,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT endpoint_id FROM webhook_endpoints
         WHERE clinic_id = $1 AND removed_at IS NULL AND (cardinality(kinds) = 0 OR $2 = ANY(kinds))
         ORDER BY endpoint_id",
    )
    .bind(clinic_id)
    .bind(kind)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The secrets that sign now (current first), or nothing when the endpoint is removed.
pub async fn signing_secrets(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
        "SELECT s.secret FROM webhook_secrets s JOIN webhook_endpoints e USING (endpoint_id)
         WHERE s.endpoint_id = $1 AND e.removed_at IS NULL
           AND (s.expires_at IS NULL OR s.expires_at > now())
         ORDER BY s.expires_at IS NULL DESC, s.issued_at DESC",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(s,)| s).collect())
}
