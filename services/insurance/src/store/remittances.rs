//! Posted remittances and the adjudications they carried (one row per claim payment).

use sqlx::PgConnection;

/// Records a remittance as posted; false when it was posted before (a duplicate).
pub async fn insert(
    conn: &mut PgConnection,
    payer_id: &str,
    remittance_id: &str,
    payment_date: time::Date,
    total_paid_cents: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO remittances (payer_id, remittance_id, payment_date, total_paid_cents)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(payer_id)
    .bind(remittance_id)
    .bind(payment_date)
    .bind(total_paid_cents)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// One posted claim payment.
#[derive(Debug)]
pub struct Adjudication<'a> {
    /// Payer.
    pub payer_id: &'a str,
    /// Remittance.
    pub remittance_id: &'a str,
    /// Claim.
    pub claim_id: uuid::Uuid,
    /// Clinic of the claim.
    pub clinic_id: &'a str,
    /// PAID, PARTIALLY_PAID or DENIED.
    pub outcome: i16,
    /// CARCs of a denial.
    pub denial_reason_codes: &'a [String],
    /// Paid.
    pub paid_cents: i64,
    /// Payment date.
    pub payment_date: time::Date,
    /// When the claim was submitted.
    pub submitted_at: time::OffsetDateTime,
}

/// Records a claim payment.
pub async fn insert_adjudication(
    conn: &mut PgConnection,
    a: &Adjudication<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO adjudications (payer_id, remittance_id, claim_id, clinic_id, outcome,
            denial_reason_codes, paid_cents, payment_date, submitted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(a.payer_id)
    .bind(a.remittance_id)
    .bind(a.claim_id)
    .bind(a.clinic_id)
    .bind(a.outcome)
    .bind(a.denial_reason_codes)
    .bind(a.paid_cents)
    .bind(a.payment_date)
    .bind(a.submitted_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
