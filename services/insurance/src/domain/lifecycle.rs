//! The claim lifecycle: draft → submitted → accepted / rejected → adjudicated (paid, partially
//! paid, denied) → appealed, corrected (edited in place or replaced) or voided. Every other move
//! is illegal and named, so the API answers FAILED_PRECONDITION with the rule.

use clinicnet_proto::insurance::v1::ClaimStatus;

/// Something that happens to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Sent to the payer's integrator.
    Submit,
    /// Accepted at the payer's front end.
    Accept,
    /// Rejected at the payer's front end.
    Reject,
    /// Adjudicated by a remittance with this outcome (PAID, PARTIALLY_PAID or DENIED).
    Adjudicate(ClaimStatus),
    /// Appealed.
    Appeal,
    /// Voided.
    Void,
}

/// A move the lifecycle forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from:?} claim cannot be {action}")]
pub struct IllegalTransition {
    /// Where the claim stands.
    pub from: ClaimStatus,
    /// What was attempted, in words.
    pub action: &'static str,
}

impl IllegalTransition {
    /// The rule's stable name for FAILED_PRECONDITION details.
    pub fn rule(&self) -> &'static str {
        "claim_lifecycle"
    }
}

fn is_adjudicated(status: ClaimStatus) -> bool {
    matches!(
        status,
        ClaimStatus::Paid | ClaimStatus::PartiallyPaid | ClaimStatus::Denied
    )
}

/// The status after `action`, or why it is illegal.
pub fn next(from: ClaimStatus, action: Action) -> Result<ClaimStatus, IllegalTransition> {
    use ClaimStatus as S;
    let to = match (from, action) {
        (S::Draft, Action::Submit) => Some(S::Submitted),
        (S::Submitted, Action::Accept) => Some(S::Accepted),
        (S::Submitted, Action::Reject) => Some(S::Rejected),
        // A payer may remit without a separate front-end acknowledgement.
        (S::Submitted | S::Accepted | S::Appealed, Action::Adjudicate(outcome))
            if is_adjudicated(outcome) =>
        {
            Some(outcome)
        }
        (S::Denied | S::PartiallyPaid, Action::Appeal) => Some(S::Appealed),
        (from, Action::Void) if !matches!(from, S::Voided | S::Replaced) => Some(S::Voided),
        _ => None,
    };
    to.ok_or(IllegalTransition {
        from,
        action: match action {
            Action::Submit => "submitted",
            Action::Accept => "accepted",
            Action::Reject => "rejected",
            Action::Adjudicate(_) => "adjudicated",
            Action::Appeal => "appealed",
            Action::Void => "voided",
        },
    })
}

/// How a correction applies to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Correction {
    /// Not yet with the payer (draft, or rejected at the front end): edited in place, and a
    /// rejected claim becomes a draft again to be resubmitted.
    InPlace,
    /// The payer has it (accepted or adjudicated): a replacement claim (frequency 7) is drafted
    /// and this one becomes REPLACED.
    Replace,
}

/// How a claim in `from` is corrected, or why it cannot be.
pub fn correction(from: ClaimStatus) -> Result<Correction, IllegalTransition> {
    match from {
        ClaimStatus::Draft | ClaimStatus::Rejected => Ok(Correction::InPlace),
        ClaimStatus::Accepted
        | ClaimStatus::Paid
        | ClaimStatus::PartiallyPaid
        | ClaimStatus::Denied => Ok(Correction::Replace),
        from => Err(IllegalTransition {
            from,
            action: "corrected",
        }),
    }
}

/// Whether voiding a claim in `from` sends a void (frequency 8) to the payer: only once the payer
/// has accepted it.
pub fn void_goes_to_payer(from: ClaimStatus) -> bool {
    matches!(from, ClaimStatus::Accepted | ClaimStatus::Appealed) || is_adjudicated(from)
}

/// Claims still awaiting money from the payer (the accounts receivable).
pub const OPEN: [ClaimStatus; 4] = [
    ClaimStatus::Submitted,
    ClaimStatus::Accepted,
    ClaimStatus::Appealed,
    ClaimStatus::PartiallyPaid,
];

#[cfg(test)]
mod tests {
    use super::*;
    use ClaimStatus as S;

    const ALL: [ClaimStatus; 10] = [
        S::Draft,
        S::Submitted,
        S::Accepted,
        S::Rejected,
        S::Paid,
        S::PartiallyPaid,
        S::Denied,
        S::Appealed,
        S::Replaced,
        S::Voided,
    ];

    #[test]
    fn the_happy_path_moves_forward() {
        let mut status = S::Draft;
        for (action, expected) in [
            (Action::Submit, S::Submitted),
            (Action::Accept, S::Accepted),
            (Action::Adjudicate(S::Denied), S::Denied),
            (Action::Appeal, S::Appealed),
            (Action::Adjudicate(S::Paid), S::Paid),
            (Action::Void, S::Voided),
        ] {
            status = next(status, action).unwrap();
            assert_eq!(status, expected);
        }
    }

    #[test]
    fn only_drafts_are_submitted() {
        for from in ALL {
            assert_eq!(
                next(from, Action::Submit).is_ok(),
                from == S::Draft,
                "{from:?}"
            );
        }
    }

    #[test]
    fn only_submitted_claims_are_acknowledged() {
        for from in ALL {
            for action in [Action::Accept, Action::Reject] {
                assert_eq!(next(from, action).is_ok(), from == S::Submitted, "{from:?}");
            }
        }
    }

    #[test]
    fn adjudication_needs_a_claim_with_the_payer_and_an_adjudicated_outcome() {
        for from in ALL {
            let allowed = matches!(from, S::Submitted | S::Accepted | S::Appealed);
            assert_eq!(
                next(from, Action::Adjudicate(S::Paid)).is_ok(),
                allowed,
                "{from:?}"
            );
            assert!(next(from, Action::Adjudicate(S::Voided)).is_err());
        }
    }

    #[test]
    fn only_denied_or_partially_paid_claims_are_appealed() {
        for from in ALL {
            assert_eq!(
                next(from, Action::Appeal).is_ok(),
                matches!(from, S::Denied | S::PartiallyPaid),
                "{from:?}"
            );
        }
    }

    #[test]
    fn voided_and_replaced_claims_are_final() {
        for from in [S::Voided, S::Replaced] {
            for action in [
                Action::Submit,
                Action::Accept,
                Action::Reject,
                Action::Adjudicate(S::Paid),
                Action::Appeal,
                Action::Void,
            ] {
                let error = next(from, action).unwrap_err();
                assert_eq!(error.rule(), "claim_lifecycle");
            }
            assert!(correction(from).is_err());
        }
    }

    #[test]
    fn corrections_edit_what_the_payer_has_not_got_and_replace_the_rest() {
        assert_eq!(correction(S::Draft), Ok(Correction::InPlace));
        assert_eq!(correction(S::Rejected), Ok(Correction::InPlace));
        for from in [S::Accepted, S::Paid, S::PartiallyPaid, S::Denied] {
            assert_eq!(correction(from), Ok(Correction::Replace), "{from:?}");
        }
        for from in [S::Submitted, S::Appealed] {
            assert!(correction(from).is_err(), "{from:?}");
        }
    }

    #[test]
    fn a_void_reaches_the_payer_only_after_acceptance() {
        assert!(!void_goes_to_payer(S::Draft));
        assert!(!void_goes_to_payer(S::Submitted));
        assert!(!void_goes_to_payer(S::Rejected));
        assert!(void_goes_to_payer(S::Accepted));
        assert!(void_goes_to_payer(S::Denied));
    }
}
