//! The queries behind the ops reports: open claims for aging, adjudications for denial rates and
//! days to payment.

use crate::domain::lifecycle;
use clinicnet_proto::insurance::v1::ClaimStatus;
use sqlx::PgConnection;
use time::OffsetDateTime;

/// Scope of a report.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Only this clinic.
    pub clinic_id: Option<&'a str>,
    /// Only this payer.
    pub payer_id: Option<&'a str>,
}

/// One open claim.
#[derive(Debug, sqlx::FromRow)]
pub struct OpenClaim {
    /// Clinic.
    pub clinic_id: String,
    /// Payer.
    pub payer_id: String,
    /// Status.
    pub status: i16,
    /// Whole days since submission at the report's instant.
    pub age_days: i64,
    /// Charge − paid − adjustments.
    pub outstanding_cents: i64,
}

/// Claims open at `as_of` (submitted by then), by clinic and payer.
pub async fn open_claims(
    conn: &mut PgConnection,
    scope: Scope<'_>,
    as_of: OffsetDateTime,
) -> Result<Vec<OpenClaim>, sqlx::Error> {
    let open: Vec<i16> = lifecycle::OPEN.iter().map(|s| *s as i16).collect();
    sqlx::query_as(
        "SELECT clinic_id, payer_id, status,
                floor(extract(epoch FROM ($1 - submitted_at)) / 86400)::bigint AS age_days,
                total_charge_cents - paid_cents - adjusted_cents AS outstanding_cents
         FROM claims
         WHERE status = ANY($2) AND submitted_at <= $1
           AND ($3::text IS NULL OR clinic_id = $3) AND ($4::text IS NULL OR payer_id = $4)
         ORDER BY clinic_id, payer_id",
    )
    .bind(as_of)
    .bind(open)
    .bind(scope.clinic_id)
    .bind(scope.payer_id)
    .fetch_all(&mut *conn)
    .await
}

/// Adjudications and denials of one clinic with one payer.
#[derive(Debug, sqlx::FromRow)]
pub struct DenialCounts {
    /// Clinic.
    pub clinic_id: String,
    /// Payer.
    pub payer_id: String,
    /// Claim payments posted in the period.
    pub adjudicated: i64,
    /// Of those, denials.
    pub denied: i64,
}

/// Adjudications posted in [start, end), by clinic and payer.
pub async fn denial_counts(
    conn: &mut PgConnection,
    scope: Scope<'_>,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Result<Vec<DenialCounts>, sqlx::Error> {
    sqlx::query_as(
        "SELECT clinic_id, payer_id, count(*) AS adjudicated, count(*) FILTER (WHERE outcome = $5) AS denied
         FROM adjudications
         WHERE adjudicated_at >= $1 AND adjudicated_at < $2
           AND ($3::text IS NULL OR clinic_id = $3) AND ($4::text IS NULL OR payer_id = $4)
         GROUP BY clinic_id, payer_id ORDER BY clinic_id, payer_id",
    )
    .bind(start)
    .bind(end)
    .bind(scope.clinic_id)
    .bind(scope.payer_id)
    .bind(ClaimStatus::Denied as i16)
    .fetch_all(&mut *conn)
    .await
}

/// Denials with one CARC of one clinic with one payer.
#[derive(Debug, sqlx::FromRow)]
pub struct CarcCount {
    /// Clinic.
    pub clinic_id: String,
    /// Payer.
    pub payer_id: String,
    /// CARC.
    pub reason_code: String,
    /// Denials carrying it.
    pub denied: i64,
}

/// Denials posted in [start, end) by CARC, most frequent first within each clinic and payer.
pub async fn denials_by_carc(
    conn: &mut PgConnection,
    scope: Scope<'_>,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Result<Vec<CarcCount>, sqlx::Error> {
    sqlx::query_as(
        "SELECT clinic_id, payer_id, code AS reason_code, count(*) AS denied
         FROM adjudications, unnest(denial_reason_codes) AS code
         WHERE outcome = $5 AND adjudicated_at >= $1 AND adjudicated_at < $2
           AND ($3::text IS NULL OR clinic_id = $3) AND ($4::text IS NULL OR payer_id = $4)
         GROUP BY clinic_id, payer_id, code ORDER BY clinic_id, payer_id, count(*) DESC, code",
    )
    .bind(start)
    .bind(end)
    .bind(scope.clinic_id)
    .bind(scope.payer_id)
    .bind(ClaimStatus::Denied as i16)
    .fetch_all(&mut *conn)
    .await
}

/// Payment timing of one clinic with one payer.
#[derive(Debug, sqlx::FromRow)]
pub struct PaymentTiming {
    /// Clinic.
    pub clinic_id: String,
    /// Payer.
    pub payer_id: String,
    /// Claims paid.
    pub paid_claims: i64,
    /// Mean days from submission (UTC date) to payment date.
    pub average_days: f64,
}

/// Claim payments with money, dated in [start, end), by clinic and payer.
pub async fn days_to_payment(
    conn: &mut PgConnection,
    scope: Scope<'_>,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Result<Vec<PaymentTiming>, sqlx::Error> {
    sqlx::query_as(
        "SELECT clinic_id, payer_id, count(*) AS paid_claims,
                avg(payment_date - (submitted_at AT TIME ZONE 'UTC')::date)::float8 AS average_days
         FROM adjudications
         WHERE paid_cents > 0 AND payment_date >= ($1 AT TIME ZONE 'UTC')::date
           AND payment_date < ($2 AT TIME ZONE 'UTC')::date
           AND ($3::text IS NULL OR clinic_id = $3) AND ($4::text IS NULL OR payer_id = $4)
         GROUP BY clinic_id, payer_id ORDER BY clinic_id, payer_id",
    )
    .bind(start)
    .bind(end)
    .bind(scope.clinic_id)
    .bind(scope.payer_id)
    .fetch_all(&mut *conn)
    .await
}
