//! What the insurance service publishes (through the transactional outbox, in the same
//! transaction as the change) and what it consumes ([`appointments`]).

pub mod appointments;

use clinicnet_proto::{
    events::v1::{
        ClaimAdjudicated, ClaimCreated, ClaimDenied, ClaimSubmitted, ClaimVoided,
        EligibilityAnswered, EventMetadata, PriorAuthorizationDecided, PriorAuthorizationRequested,
        SuperbillIssued,
    },
    insurance::v1::{Claim, EligibilityCheck, PriorAuthorization, Superbill},
};
use platform::events::{outbox, streams};
use sqlx::PgConnection;
use uuid::Uuid;

/// The producer name on every event.
pub const PRODUCER: &str = "insurance";

/// What caused a change: a call (its request id) or an event (its id).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cause<'a> {
    /// Idempotency key of the call; empty for event-driven changes.
    pub request_id: &'a str,
    /// The event whose handling made the change.
    pub causation_event_id: Option<Uuid>,
}

/// An event to publish.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// An integrator answered an eligibility request.
    EligibilityAnswered(&'a EligibilityCheck),
    /// A prior authorization was requested.
    PriorAuthorizationRequested(&'a PriorAuthorization),
    /// A prior authorization was decided.
    PriorAuthorizationDecided(&'a PriorAuthorization),
    /// A draft claim was created.
    ClaimCreated(&'a Claim),
    /// A claim was submitted.
    ClaimSubmitted(&'a Claim),
    /// A claim was paid in full or in part.
    ClaimAdjudicated(&'a Claim),
    /// A claim was denied.
    ClaimDenied(&'a Claim),
    /// A claim was voided.
    ClaimVoided(&'a Claim),
    /// A superbill was issued.
    SuperbillIssued(&'a Superbill),
}

fn metadata(aggregate: &str, id: &str, version: u64, cause: Cause<'_>) -> EventMetadata {
    let mut metadata =
        platform::events::metadata(PRODUCER, aggregate, id, version, cause.request_id);
    if let Some(event_id) = cause.causation_event_id {
        metadata.causation_event_id = event_id.to_string();
    }
    metadata
}

/// Appends `event` to the outbox on `conn` (the transaction of the change).
pub async fn publish(
    conn: &mut PgConnection,
    event: Event<'_>,
    cause: Cause<'_>,
) -> Result<(), sqlx::Error> {
    let subject = |aggregate: &str, name: &str| streams::subject(PRODUCER, aggregate, name);
    match event {
        Event::EligibilityAnswered(check) => {
            let m = metadata("eligibility_check", &check.check_id, 1, cause);
            let e = EligibilityAnswered {
                metadata: Some(m.clone()),
                check: Some(check.clone()),
            };
            outbox::append(conn, &subject("eligibility", "answered"), &m, &e).await
        }
        Event::PriorAuthorizationRequested(pa) => {
            let m = metadata(
                "prior_authorization",
                &pa.prior_authorization_id,
                pa.version,
                cause,
            );
            let e = PriorAuthorizationRequested {
                metadata: Some(m.clone()),
                prior_authorization: Some(pa.clone()),
            };
            outbox::append(conn, &subject("prior_authorization", "requested"), &m, &e).await
        }
        Event::PriorAuthorizationDecided(pa) => {
            let m = metadata(
                "prior_authorization",
                &pa.prior_authorization_id,
                pa.version,
                cause,
            );
            let e = PriorAuthorizationDecided {
                metadata: Some(m.clone()),
                prior_authorization: Some(pa.clone()),
            };
            outbox::append(conn, &subject("prior_authorization", "decided"), &m, &e).await
        }
        Event::ClaimCreated(claim) => {
            let m = metadata("claim", &claim.claim_id, claim.version, cause);
            let e = ClaimCreated {
                metadata: Some(m.clone()),
                claim: Some(claim.clone()),
            };
            outbox::append(conn, &subject("claim", "created"), &m, &e).await
        }
        Event::ClaimSubmitted(claim) => {
            let m = metadata("claim", &claim.claim_id, claim.version, cause);
            let e = ClaimSubmitted {
                metadata: Some(m.clone()),
                claim: Some(claim.clone()),
            };
            outbox::append(conn, &subject("claim", "submitted"), &m, &e).await
        }
        Event::ClaimAdjudicated(claim) => {
            let m = metadata("claim", &claim.claim_id, claim.version, cause);
            let e = ClaimAdjudicated {
                metadata: Some(m.clone()),
                claim: Some(claim.clone()),
            };
            outbox::append(conn, &subject("claim", "adjudicated"), &m, &e).await
        }
        Event::ClaimDenied(claim) => {
            let m = metadata("claim", &claim.claim_id, claim.version, cause);
            let e = ClaimDenied {
                metadata: Some(m.clone()),
                claim: Some(claim.clone()),
                denial_reason_codes: claim.denial_reason_codes.clone(),
            };
            outbox::append(conn, &subject("claim", "denied"), &m, &e).await
        }
        Event::ClaimVoided(claim) => {
            let m = metadata("claim", &claim.claim_id, claim.version, cause);
            let e = ClaimVoided {
                metadata: Some(m.clone()),
                claim: Some(claim.clone()),
            };
            outbox::append(conn, &subject("claim", "voided"), &m, &e).await
        }
        Event::SuperbillIssued(superbill) => {
            let m = metadata("superbill", &superbill.superbill_id, 1, cause);
            let e = SuperbillIssued {
                metadata: Some(m.clone()),
                superbill: Some(superbill.clone()),
            };
            outbox::append(conn, &subject("superbill", "issued"), &m, &e).await
        }
    }
}
