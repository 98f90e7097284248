//! Remittances (835) over the PostRemittances stream: each remittance is posted all or nothing —
//! every claim payment must name a claim of the payer awaiting payment and balance per line —
//! and a remittance already posted is a duplicate without effect.

use super::{Insurance, validate};
use crate::{
    convert,
    domain::{
        lifecycle::{self, Action},
        remittance::{self, BilledLine, ClaimPayment as Payment, LinePayment as PaidLine},
    },
    events::{self, Cause, Event},
    store::{self, remittances::Adjudication},
};
use clinicnet_proto::insurance::v1::*;
use futures::StreamExt;
use platform::{ApiError, audit, auth::Caller, error::Violations, idempotency::MAX_REQUEST_ID_LEN};
use sqlx::PgConnection;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

/// The response stream of PostRemittances.
pub type Responses = ReceiverStream<Result<PostRemittancesResponse, Status>>;

/// Answers each remittance of `inbound` in order, until the client closes the stream or a
/// malformed or out-of-scope remittance ends it.
pub fn post(
    svc: Insurance,
    caller: Caller,
    mut inbound: Streaming<PostRemittancesRequest>,
) -> Responses {
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(next) = inbound.next().await {
            let result = match next {
                Ok(request) => post_one(&svc, &caller, request).await.map_err(Status::from),
                Err(status) => Err(status),
            };
            let stop = result.is_err();
            if sender.send(result).await.is_err() || stop {
                break;
            }
        }
    });
    ReceiverStream::new(receiver)
}

fn group(v: &mut Violations, field: &str, value: i32) -> AdjustmentGroup {
    validate::known_enum::<AdjustmentGroup>(v, field, value).unwrap_or(AdjustmentGroup::Unspecified)
}

/// Checks the message's form and converts its claim payments.
fn parse(
    req: &PostRemittancesRequest,
) -> Result<(&Remittance, time::Date, i64, Vec<Payment>), ApiError> {
    let mut v = Violations::new();
    v.check(req.request_id.trim().is_empty(), "request_id", "required");
    v.check(
        req.request_id.len() > MAX_REQUEST_ID_LEN,
        "request_id",
        "at most 128 characters",
    );
    let Some(r) = req.remittance.as_ref() else {
        return Err(ApiError::invalid("remittance", "required"));
    };
    validate::text(&mut v, "remittance.remittance_id", &r.remittance_id, 50);
    validate::slug(&mut v, "remittance.payer_id", &r.payer_id);
    let date = validate::date(
        &mut v,
        "remittance.payment_date",
        r.payment_date.as_ref(),
        false,
    );
    let total = validate::money(
        &mut v,
        "remittance.total_paid",
        r.total_paid.as_ref(),
        false,
    );
    v.check(
        r.claim_payments.is_empty(),
        "remittance.claim_payments",
        "at least one",
    );
    let mut payments = Vec::new();
    for (i, cp) in r.claim_payments.iter().enumerate() {
        let f = |name: &str| format!("remittance.claim_payments[{i}].{name}");
        validate::text(&mut v, &f("claim_id"), &cp.claim_id, 64);
        validate::optional_text(
            &mut v,
            &f("payer_claim_control_number"),
            &cp.payer_claim_control_number,
            50,
        );
        let charge = validate::money(&mut v, &f("charge"), cp.charge.as_ref(), false);
        let paid = validate::money(&mut v, &f("paid_amount"), cp.paid_amount.as_ref(), true);
        let mut lines = Vec::new();
        for (j, line) in cp.lines.iter().enumerate() {
            let f = |name: &str| format!("remittance.claim_payments[{i}].lines[{j}].{name}");
            let charge = validate::money(&mut v, &f("charge"), line.charge.as_ref(), false);
            let paid = validate::money(&mut v, &f("paid_amount"), line.paid_amount.as_ref(), true);
            let mut adjustments = Vec::new();
            for (k, a) in line.adjustments.iter().enumerate() {
                let f = |name: &str| {
                    format!("remittance.claim_payments[{i}].lines[{j}].adjustments[{k}].{name}")
                };
                let group = group(&mut v, &f("group"), a.group);
                validate::text(&mut v, &f("reason_code"), &a.reason_code, 5);
                validate::optional_text(&mut v, &f("remark_code"), &a.remark_code, 10);
                let amount = validate::money(&mut v, &f("amount"), a.amount.as_ref(), true);
                adjustments.push(remittance::Adjustment {
                    group,
                    reason_code: a.reason_code.clone(),
                    amount_cents: amount.unwrap_or(0),
                });
            }
            lines.push(PaidLine {
                line_number: line.line_number,
                procedure_code: line.procedure_code.clone(),
                charge_cents: charge.unwrap_or(0),
                paid_cents: paid.unwrap_or(0),
                adjustments,
            });
        }
        payments.push(Payment {
            charge_cents: charge.unwrap_or(0),
            paid_cents: paid.unwrap_or(0),
            lines,
        });
    }
    v.finish()?;
    match (date, total) {
        (Some(date), Some(total)) => Ok((r, date, total, payments)),
        _ => Err(ApiError::invalid("remittance", "incomplete")),
    }
}

fn result(
    claim_id: &str,
    status: ClaimPostingStatus,
    message: impl Into<String>,
) -> ClaimPostingResult {
    ClaimPostingResult {
        claim_id: claim_id.to_owned(),
        status: status as i32,
        message: message.into(),
    }
}

/// Checks one claim payment against the stored claim; the error is the posting result.
async fn check_claim(
    conn: &mut PgConnection,
    payer_id: &str,
    claim_id: &str,
    payment: &Payment,
) -> Result<Result<Claim, ClaimPostingResult>, sqlx::Error> {
    let claim = store::claims::get(conn, claim_id, true)
        .await?
        .filter(|c| c.payer_id == payer_id);
    let Some(claim) = claim else {
        return Ok(Err(result(
            claim_id,
            ClaimPostingStatus::UnknownClaim,
            "no claim of this payer has this id",
        )));
    };
    let status = ClaimStatus::try_from(claim.status).unwrap_or(ClaimStatus::Unspecified);
    if lifecycle::next(status, Action::Adjudicate(ClaimStatus::Paid)).is_err() {
        return Ok(Err(result(
            claim_id,
            ClaimPostingStatus::UnknownClaim,
            format!(
                "the claim is not awaiting payment (status {})",
                status.as_str_name()
            ),
        )));
    }
    let billed: Vec<BilledLine> = claim
        .lines
        .iter()
        .map(|l| BilledLine {
            line_number: l.line_number,
            procedure_code: l.procedure_code.clone(),
            charge_cents: l.charge.as_ref().map_or(0, |m| m.amount_cents),
        })
        .collect();
    let total = claim.total_charge.as_ref().map_or(0, |m| m.amount_cents);
    Ok(match remittance::check_balance(total, &billed, payment) {
        Ok(()) => Ok(claim),
        Err(message) => Err(result(claim_id, ClaimPostingStatus::Unbalanced, message)),
    })
}

async fn post_one(
    svc: &Insurance,
    caller: &Caller,
    req: PostRemittancesRequest,
) -> Result<PostRemittancesResponse, ApiError> {
    super::integrator_role(caller)?;
    let (r, payment_date, total_paid, payments) = parse(&req)?;
    caller.require_payer(&r.payer_id)?;
    let respond =
        |outcome: RemittanceOutcome, claims: Vec<ClaimPostingResult>| PostRemittancesResponse {
            request_id: req.request_id.clone(),
            remittance_id: r.remittance_id.clone(),
            outcome: outcome as i32,
            claims,
        };
    let mut tx = svc.pool.begin().await?;
    if !store::remittances::insert(
        &mut tx,
        &r.payer_id,
        &r.remittance_id,
        payment_date,
        total_paid,
    )
    .await?
    {
        tx.rollback().await?;
        let claims = r
            .claim_payments
            .iter()
            .map(|cp| {
                result(
                    &cp.claim_id,
                    ClaimPostingStatus::Duplicate,
                    "this remittance was already posted",
                )
            })
            .collect();
        return Ok(respond(RemittanceOutcome::Duplicate, claims));
    }
    let mut checked = Vec::new();
    let mut faults = false;
    for (i, (cp, payment)) in r.claim_payments.iter().zip(&payments).enumerate() {
        if r.claim_payments[..i]
            .iter()
            .any(|earlier| earlier.claim_id == cp.claim_id)
        {
            faults = true;
            checked.push(Err(result(
                &cp.claim_id,
                ClaimPostingStatus::Unbalanced,
                "the claim is paid twice in this remittance",
            )));
            continue;
        }
        let outcome = check_claim(&mut tx, &r.payer_id, &cp.claim_id, payment).await?;
        faults |= outcome.is_err();
        checked.push(outcome);
    }
    let paid_sum: i64 = payments.iter().map(|p| p.paid_cents).sum();
    if faults || paid_sum != total_paid {
        tx.rollback().await?;
        let totals = format!("total paid {total_paid} != claim payments {paid_sum}");
        let claims = checked
            .into_iter()
            .zip(&r.claim_payments)
            .map(|(outcome, cp)| match outcome {
                Err(fault) => fault,
                Ok(_) if faults => result(
                    &cp.claim_id,
                    ClaimPostingStatus::NotPosted,
                    "another claim of the remittance was at fault",
                ),
                Ok(_) => result(&cp.claim_id, ClaimPostingStatus::NotPosted, totals.clone()),
            })
            .collect();
        return Ok(respond(RemittanceOutcome::Rejected, claims));
    }
    let mut claims = Vec::new();
    for ((outcome, cp), payment) in checked.into_iter().zip(&r.claim_payments).zip(&payments) {
        let Ok(claim) = outcome else { continue };
        post_claim(
            &mut tx,
            caller,
            &req.request_id,
            r,
            payment_date,
            cp,
            payment,
            claim,
        )
        .await?;
        claims.push(result(&cp.claim_id, ClaimPostingStatus::Posted, ""));
    }
    tx.commit().await?;
    tracing::info!(remittance_id = %r.remittance_id, payer_id = %r.payer_id, claims = claims.len(), "remittance posted");
    Ok(respond(RemittanceOutcome::Posted, claims))
}

#[allow(clippy::too_many_arguments)]
async fn post_claim(
    conn: &mut PgConnection,
    caller: &Caller,
    request_id: &str,
    r: &Remittance,
    payment_date: time::Date,
    cp: &ClaimPayment,
    payment: &Payment,
    mut claim: Claim,
) -> Result<(), ApiError> {
    let outcome = remittance::outcome(payment);
    let from = ClaimStatus::try_from(claim.status).unwrap_or(ClaimStatus::Unspecified);
    let next = lifecycle::next(from, Action::Adjudicate(outcome.status))
        .map_err(|e| ApiError::precondition(e.rule(), e.to_string()))?;
    for line in &mut claim.lines {
        if let Some(paid) = cp.lines.iter().find(|l| l.line_number == line.line_number) {
            line.paid_amount = paid.paid_amount.clone();
            line.adjustments = paid.adjustments.clone();
        }
    }
    let now = convert::timestamp(convert::now());
    claim.status = next as i32;
    claim.paid_amount = Some(convert::usd(payment.paid_cents));
    claim.patient_responsibility = Some(convert::usd(outcome.patient_responsibility_cents));
    claim.denial_reason_codes = outcome.denial_reason_codes.clone();
    if !cp.payer_claim_control_number.is_empty() {
        claim.payer_claim_control_number = cp.payer_claim_control_number.clone();
    }
    claim.adjudication_time = Some(now);
    claim.update_time = Some(now);
    claim.version += 1;
    store::claims::save(conn, &claim).await?;
    let submitted_at = claim
        .submit_time
        .as_ref()
        .and_then(convert::instant)
        .unwrap_or_else(convert::now);
    store::remittances::insert_adjudication(
        conn,
        &Adjudication {
            payer_id: &r.payer_id,
            remittance_id: &r.remittance_id,
            claim_id: store::uuid(&claim.claim_id).ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("stored claim id is not a UUID"))
            })?,
            clinic_id: &claim.clinic_id,
            outcome: next as i16,
            denial_reason_codes: &outcome.denial_reason_codes,
            paid_cents: payment.paid_cents,
            payment_date,
            submitted_at,
        },
    )
    .await?;
    let cause = Cause {
        request_id,
        causation_event_id: None,
    };
    let event = if next == ClaimStatus::Denied {
        Event::ClaimDenied(&claim)
    } else {
        Event::ClaimAdjudicated(&claim)
    };
    events::publish(conn, event, cause).await?;
    audit::record(
        conn,
        caller,
        "insurance.claim.adjudicate",
        &claim.patient_id,
    )
    .await?;
    Ok(())
}
