//! Ops reports: accounts receivable aging, denial rate by CARC, average days to payment — per
//! clinic and payer.

use super::{Insurance, access};
use crate::{
    convert,
    domain::aging,
    store::{self, reports::Scope},
};
use clinicnet_proto::{common::v1::TimeInterval, insurance::v1::*};
use platform::{ApiError, auth::Caller, error::Violations};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use tonic::Request;

/// Per clinic and payer: the aging buckets and the open claims by status.
type AgingRows = BTreeMap<(String, String), (Vec<AgingBucket>, BTreeMap<i32, i32>)>;

fn period(value: Option<&TimeInterval>) -> Result<(OffsetDateTime, OffsetDateTime), ApiError> {
    let mut v = Violations::new();
    let Some(p) = value else {
        return Err(ApiError::invalid("period", "required"));
    };
    let start = p.start_time.as_ref().and_then(convert::instant);
    let end = p.end_time.as_ref().and_then(convert::instant);
    v.check(start.is_none(), "period.start_time", "required");
    v.check(end.is_none(), "period.end_time", "required");
    if let (Some(start), Some(end)) = (start, end) {
        v.check(end <= start, "period.end_time", "must be after start_time");
        v.finish()?;
        return Ok((start, end));
    }
    v.finish()?;
    Err(ApiError::invalid("period", "required"))
}

fn scope<'a>(
    caller: &Caller,
    clinic_id: &'a str,
    payer_id: &'a str,
) -> Result<Scope<'a>, ApiError> {
    Ok(Scope {
        clinic_id: access::clinic_filter(caller, clinic_id)?,
        payer_id: (!payer_id.is_empty()).then_some(payer_id),
    })
}

/// GetArAgingReport.
pub async fn ar_aging(
    svc: &Insurance,
    request: Request<GetArAgingReportRequest>,
) -> Result<GetArAgingReportResponse, ApiError> {
    let caller = Caller::of(&request)?;
    let req = request.into_inner();
    let scope = scope(&caller, &req.clinic_id, &req.payer_id)?;
    let as_of = match &req.as_of {
        Some(t) => convert::instant(t).ok_or_else(|| ApiError::invalid("as_of", "out of range"))?,
        None => convert::now(),
    };
    let mut conn = svc.pool.acquire().await?;
    let claims = store::reports::open_claims(&mut conn, scope, as_of).await?;
    let mut rows = AgingRows::new();
    for claim in claims {
        let (buckets, statuses) = rows
            .entry((claim.clinic_id, claim.payer_id))
            .or_insert_with(|| {
                let buckets = aging::BUCKETS
                    .iter()
                    .map(|(min, max)| AgingBucket {
                        min_days: *min,
                        max_days: max.unwrap_or(0),
                        claim_count: 0,
                        outstanding: Some(convert::usd(0)),
                    })
                    .collect();
                (buckets, BTreeMap::new())
            });
        if let Some(bucket) = buckets.get_mut(aging::bucket(claim.age_days)) {
            bucket.claim_count += 1;
            if let Some(m) = bucket.outstanding.as_mut() {
                m.amount_cents += claim.outstanding_cents;
            }
        }
        *statuses.entry(i32::from(claim.status)).or_insert(0) += 1;
    }
    let rows = rows
        .into_iter()
        .map(|((clinic_id, payer_id), (buckets, statuses))| {
            let total: i64 = buckets
                .iter()
                .filter_map(|b| b.outstanding.as_ref())
                .map(|m| m.amount_cents)
                .sum();
            ArAgingRow {
                clinic_id,
                payer_id,
                buckets,
                status_counts: statuses
                    .into_iter()
                    .map(|(status, claim_count)| ClaimStatusCount {
                        status,
                        claim_count,
                    })
                    .collect(),
                total_outstanding: Some(convert::usd(total)),
            }
        })
        .collect();
    Ok(GetArAgingReportResponse { rows })
}

fn ratio(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// GetDenialReport.
pub async fn denials(
    svc: &Insurance,
    request: Request<GetDenialReportRequest>,
) -> Result<GetDenialReportResponse, ApiError> {
    let caller = Caller::of(&request)?;
    let req = request.into_inner();
    let scope = scope(&caller, &req.clinic_id, &req.payer_id)?;
    let (start, end) = period(req.period.as_ref())?;
    let mut conn = svc.pool.acquire().await?;
    let counts = store::reports::denial_counts(&mut conn, scope, start, end).await?;
    let by_carc = store::reports::denials_by_carc(&mut conn, scope, start, end).await?;
    let rows = counts
        .into_iter()
        .map(|c| DenialReportRow {
            by_reason: by_carc
                .iter()
                .filter(|r| r.clinic_id == c.clinic_id && r.payer_id == c.payer_id)
                .map(|r| CarcDenials {
                    reason_code: r.reason_code.clone(),
                    claim_count: i32::try_from(r.denied).unwrap_or(i32::MAX),
                    rate: ratio(r.denied, c.adjudicated),
                })
                .collect(),
            adjudicated_claims: i32::try_from(c.adjudicated).unwrap_or(i32::MAX),
            denied_claims: i32::try_from(c.denied).unwrap_or(i32::MAX),
            denial_rate: ratio(c.denied, c.adjudicated),
            clinic_id: c.clinic_id,
            payer_id: c.payer_id,
        })
        .collect();
    Ok(GetDenialReportResponse { rows })
}

/// GetDaysToPaymentReport.
pub async fn days_to_payment(
    svc: &Insurance,
    request: Request<GetDaysToPaymentReportRequest>,
) -> Result<GetDaysToPaymentReportResponse, ApiError> {
    let caller = Caller::of(&request)?;
    let req = request.into_inner();
    let scope = scope(&caller, &req.clinic_id, &req.payer_id)?;
    let (start, end) = period(req.period.as_ref())?;
    let mut conn = svc.pool.acquire().await?;
    let rows = store::reports::days_to_payment(&mut conn, scope, start, end)
        .await?
        .into_iter()
        .map(|r| DaysToPaymentRow {
            clinic_id: r.clinic_id,
            payer_id: r.payer_id,
            paid_claims: i32::try_from(r.paid_claims).unwrap_or(i32::MAX),
            average_days_to_payment: r.average_days,
        })
        .collect();
    Ok(GetDaysToPaymentReportResponse { rows })
}
