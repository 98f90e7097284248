//! One mapping from what can go wrong in a service to a gRPC status: field violations become
//! INVALID_ARGUMENT with `google.rpc.BadRequest` details; internal errors are logged with the
//! trace id and returned without detail.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// An error a handler returns; converted to a `tonic::Status` at the boundary.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; each violation names its field.
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// The named thing does not exist (or the caller may not know it exists).
    #[error("{0} not found")]
    NotFound(String),
    /// The thing to create exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A business rule forbids the operation in the current state; `rule` names the rule and
    /// becomes the `type` of the `google.rpc.PreconditionViolation` returned.
    #[error("{rule}: {message}")]
    FailedPrecondition {
        /// Stable name of the rule, e.g. `slot_taken`.
        rule: &'static str,
        /// What the caller can do about it.
        message: String,
    },
    /// A concurrent change won (stale version); the caller should re-read and retry.
    #[error("aborted: {0}")]
    Aborted(String),
    /// The caller is authenticated but outside the scope of the resource.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// No valid credentials.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// A dependency is not available right now; retrying later may succeed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything unexpected: logged in full, returned without detail.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// A broken business rule.
    pub fn precondition(rule: &'static str, message: impl Into<String>) -> Self {
        Self::FailedPrecondition {
            rule,
            message: message.into(),
        }
    }

    /// An unexpected failure.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }
}

impl From<sqlx::Error> for ApiError {
    /// A transaction PostgreSQL aborted because it collided with a concurrent one (deadlock or
    /// serialization failure) changed nothing and can be retried with the same request id:
    /// ABORTED. A pool with no free connection in time: UNAVAILABLE. Anything else: INTERNAL.
    fn from(error: sqlx::Error) -> Self {
        let code = error.as_database_error().and_then(|e| e.code());
        match code.as_deref() {
            Some("40P01" | "40001") => {
                Self::Aborted("the request collided with a concurrent change; retry it".into())
            }
            _ if matches!(error, sqlx::Error::PoolTimedOut) => {
                Self::Unavailable("the database is busy; retry".into())
            }
            _ => Self::Internal(error.into()),
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::InvalidArgument(violations) => {
                let message = format!("invalid argument: {}", describe(&violations));
                Status::with_error_details(
                    Code::InvalidArgument,
                    message,
                    ErrorDetails::with_bad_request(violations),
                )
            }
            ApiError::NotFound(what) => Status::not_found(format!("{what} not found")),
            ApiError::AlreadyExists(what) => {
                Status::already_exists(format!("{what} already exists"))
            }
            ApiError::FailedPrecondition { rule, message } => {
                let mut details = ErrorDetails::new();
                details.add_precondition_failure_violation(rule, "", message.clone());
                Status::with_error_details(
                    Code::FailedPrecondition,
                    format!("{rule}: {message}"),
                    details,
                )
            }
            ApiError::Aborted(message) => Status::aborted(message),
            ApiError::PermissionDenied(message) => Status::permission_denied(message),
            ApiError::Unauthenticated(message) => Status::unauthenticated(message),
            ApiError::Unavailable(message) => Status::unavailable(message),
            ApiError::Internal(error) => {
                let trace_id = crate::trace_context::current_trace_id();
                tracing::error!(error = format!("{error:#}"), %trace_id, "internal error");
                Status::internal(format!("internal error (trace {trace_id})"))
            }
        }
    }
}

/// Collects field violations while validating a request.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is invalid.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Records a violation when `bad` holds.
    pub fn check(&mut self, bad: bool, field: &str, description: &str) {
        if bad {
            self.add(field, description);
        }
    }

    /// Ok when nothing was recorded, otherwise INVALID_ARGUMENT with every violation.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self.0))
        }
    }
}

/// The `field` names of a status's `google.rpc.BadRequest` details (for clients and tests).
pub fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_become_invalid_argument_with_fields() {
        let mut violations = Violations::new();
        violations.add("npi", "check digit does not match");
        violations.check(true, "time_zone", "not an IANA time zone");
        violations.check(false, "name", "never recorded");
        let status = Status::from(violations.finish().unwrap_err());
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(violated_fields(&status), vec!["npi", "time_zone"]);
    }

    #[test]
    fn internal_errors_carry_no_detail() {
        let status = Status::from(ApiError::internal(anyhow::anyhow!(
            "relation \"patients\" violates constraint for maria@example.com"
        )));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("maria"), "{}", status.message());
        assert!(status.message().starts_with("internal error"));
    }

    #[test]
    fn database_errors_map_to_retryable_codes_where_they_are() {
        assert_eq!(
            Status::from(ApiError::from(sqlx::Error::PoolTimedOut)).code(),
            Code::Unavailable
        );
        assert_eq!(
            Status::from(ApiError::from(sqlx::Error::RowNotFound)).code(),
            Code::Internal
        );
    }

    #[test]
    fn precondition_names_the_rule() {
        let status = Status::from(ApiError::precondition("slot_taken", "pick another slot"));
        assert_eq!(status.code(), Code::FailedPrecondition);
        let failure = status.get_details_precondition_failure().unwrap();
        assert_eq!(failure.violations[0].r#type, "slot_taken");
    }
}
