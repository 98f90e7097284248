//! Offering work to the payer's integrator: eligibility requests, prior authorization requests
//! and claims become items of the payer's work stream, with the member details the payer needs,
//! in the transaction that creates them; and the signal that wakes the streams when work arrives.

use crate::{convert, store};
use clinicnet_proto::insurance::v1::{
    Claim, ClaimItem, Coverage, EligibilityCheck, EligibilityRequestItem, MemberInfo,
    PriorAuthorization, PriorAuthorizationRequestItem, WorkItem, work_item::Item,
};
use platform::{shutdown::Shutdown, wake::Wakeup};
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;

/// Member details of a coverage for the payer (from the coverage and the patient read model).
pub async fn member(
    conn: &mut PgConnection,
    coverage: &Coverage,
) -> Result<MemberInfo, sqlx::Error> {
    let patient = store::patients::get(conn, &coverage.patient_id).await?;
    Ok(MemberInfo {
        member_id: coverage.member_id.clone(),
        group_number: coverage.group_number.clone(),
        patient_name: patient.as_ref().and_then(|p| p.name.clone()),
        patient_birth_date: patient.and_then(|p| p.birth_date),
        relationship: coverage.relationship,
    })
}

async fn offer(
    conn: &mut PgConnection,
    payer_id: &str,
    patient_id: &str,
    item: Item,
) -> Result<(), sqlx::Error> {
    let work = WorkItem {
        cursor: String::new(),
        enqueue_time: None,
        item: Some(item),
    };
    store::work::append(conn, payer_id, patient_id, &work).await?;
    Ok(())
}

/// Offers an eligibility request.
pub async fn offer_eligibility(
    conn: &mut PgConnection,
    check: &EligibilityCheck,
    coverage: &Coverage,
) -> Result<(), sqlx::Error> {
    let member = member(conn, coverage).await?;
    let item = Item::EligibilityRequest(EligibilityRequestItem {
        check: Some(check.clone()),
        member: Some(member),
        provider_npi: String::new(),
    });
    offer(conn, &check.payer_id, &check.patient_id, item).await
}

/// Offers a prior authorization request.
pub async fn offer_prior_authorization(
    conn: &mut PgConnection,
    pa: &PriorAuthorization,
    coverage: &Coverage,
) -> Result<(), sqlx::Error> {
    let member = member(conn, coverage).await?;
    let item = Item::PriorAuthorizationRequest(PriorAuthorizationRequestItem {
        prior_authorization: Some(pa.clone()),
        member: Some(member),
    });
    offer(conn, &pa.payer_id, &pa.patient_id, item).await
}

/// Offers a claim as it is now (a submission, replacement, appeal or — with frequency VOID — a
/// void).
pub async fn offer_claim(conn: &mut PgConnection, claim: &Claim) -> Result<(), sqlx::Error> {
    let coverage = store::coverages::get(conn, &claim.coverage_id)
        .await?
        .ok_or_else(|| sqlx::Error::Protocol("claim without its coverage".into()))?;
    let member = member(conn, &coverage).await?;
    let item = Item::Claim(ClaimItem {
        claim: Some(claim.clone()),
        member: Some(member),
    });
    offer(conn, &claim.payer_id, &claim.patient_id, item).await
}

/// A stored item ready to send: its cursor and enqueue time filled in.
pub fn delivered(stored: store::work::Stored, payer_id: &str) -> WorkItem {
    let mut item = stored.item;
    item.cursor = crate::domain::cursor::Cursor {
        payer_id: payer_id.to_owned(),
        seq: stored.seq,
    }
    .encode();
    item.enqueue_time = Some(convert::timestamp(stored.enqueued_at));
    item
}

/// Wakes work streams when work is appended (LISTEN/NOTIFY): a counter that changes when work
/// was notified (once for a burst), and also after the listener reconnects (notifications may
/// have been missed).
#[derive(Debug, Clone)]
pub struct WorkSignal {
    receiver: watch::Receiver<u64>,
}

impl WorkSignal {
    /// Starts listening on `pool`'s database until `shutdown`.
    pub fn start(pool: PgPool, shutdown: Shutdown) -> WorkSignal {
        let (sender, receiver) = watch::channel(0u64);
        tokio::spawn(async move {
            let mut wakeup = Wakeup::listen(&pool, store::work::NOTIFY_CHANNEL).await;
            loop {
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = wakeup.notified() => sender.send_modify(|n| *n = n.wrapping_add(1)),
                }
            }
        });
        WorkSignal { receiver }
    }

    /// A receiver that sees every later change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        let mut receiver = self.receiver.clone();
        receiver.mark_unchanged();
        receiver
    }
}
