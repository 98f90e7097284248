//! A refusal by a business rule: which `PreconditionRule` (its contract name is what callers see as
//! the FAILED_PRECONDITION rule) and why, in words a front desk can act on.

use clinicnet_proto::appointments::v1::PreconditionRule;
use platform::ApiError;

/// A rule said no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The rule.
    pub rule: PreconditionRule,
    /// What the caller can do about it.
    pub message: String,
}

impl Refusal {
    /// A refusal by `rule`.
    pub fn new(rule: PreconditionRule, message: impl Into<String>) -> Refusal {
        Refusal {
            rule,
            message: message.into(),
        }
    }

    /// The rule's contract name, e.g. `PRECONDITION_RULE_SLOT_UNAVAILABLE`.
    pub fn rule_name(&self) -> &'static str {
        self.rule.as_str_name()
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        ApiError::precondition(refusal.rule_name(), refusal.message)
    }
}

/// Shorthand: a refusal by `rule`.
pub fn refuse(rule: PreconditionRule, message: impl Into<String>) -> Refusal {
    Refusal::new(rule, message)
}
