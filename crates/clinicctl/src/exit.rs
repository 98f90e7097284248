//! Exit codes and error reporting: every failure is classified once, here, into the code scripts
//! branch on (usage, not found, permission, refused by a rule, server), and printed with the
//! server's field and precondition violations.

use std::fmt::Write as _;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// The exit-code table shown at the end of `clinicctl --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  refused or declined: a rule said no (FAILED_PRECONDITION, ALREADY_EXISTS, ABORTED,
     OUT_OF_RANGE, RESOURCE_EXHAUSTED), the confirmation was answered no, or a local error
     (a file that cannot be read or written)
  2  usage: bad command line, bad input file (each bad row reported with its line number),
     missing configuration, or INVALID_ARGUMENT from the server (each field named)
  3  not found (NOT_FOUND)
  4  permission: no token, UNAUTHENTICATED or PERMISSION_DENIED
  5  server: UNAVAILABLE (service not reachable), INTERNAL, UNIMPLEMENTED, DEADLINE_EXCEEDED,
     UNKNOWN, DATA_LOSS";

/// What kind of failure ended the command; each kind has its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A rule refused the call, the user declined, or a local error.
    Refused,
    /// The command line, an input file or a field was wrong.
    Usage,
    /// Something named does not exist.
    NotFound,
    /// Not allowed: no or bad token, or outside the caller's scope.
    Permission,
    /// The server failed or could not be reached.
    Server,
}

impl Kind {
    /// The process exit code of this kind.
    pub fn code(self) -> u8 {
        match self {
            Kind::Refused => 1,
            Kind::Usage => 2,
            Kind::NotFound => 3,
            Kind::Permission => 4,
            Kind::Server => 5,
        }
    }

    /// The kind a gRPC status code belongs to.
    pub fn of_code(code: Code) -> Kind {
        match code {
            Code::InvalidArgument => Kind::Usage,
            Code::NotFound => Kind::NotFound,
            Code::Unauthenticated | Code::PermissionDenied => Kind::Permission,
            Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::Aborted
            | Code::OutOfRange
            | Code::ResourceExhausted
            | Code::Cancelled
            | Code::Ok => Kind::Refused,
            Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss => Kind::Server,
        }
    }
}

/// An error raised by clinicctl itself with the kind it should exit with.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// Exit kind.
    pub kind: Kind,
    /// What to tell the user.
    pub message: String,
}

/// A usage error (exit 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    CliError {
        kind: Kind::Usage,
        message: message.into(),
    }
    .into()
}

/// A refusal (exit 1), e.g. a declined confirmation.
pub fn refused(message: impl Into<String>) -> anyhow::Error {
    CliError {
        kind: Kind::Refused,
        message: message.into(),
    }
    .into()
}

/// A permission error raised locally (exit 4), e.g. no token configured.
pub fn permission(message: impl Into<String>) -> anyhow::Error {
    CliError {
        kind: Kind::Permission,
        message: message.into(),
    }
    .into()
}

/// The kind of an error anywhere in its chain; transport failures are server errors.
pub fn classify(error: &anyhow::Error) -> Kind {
    for cause in error.chain() {
        if let Some(cli) = cause.downcast_ref::<CliError>() {
            return cli.kind;
        }
        if let Some(status) = cause.downcast_ref::<Status>() {
            return Kind::of_code(status.code());
        }
        if cause.downcast_ref::<tonic::transport::Error>().is_some() {
            return Kind::Server;
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return Kind::Refused;
        }
    }
    Kind::Refused
}

/// The gRPC status in an error's chain, if any.
pub fn status_of(error: &anyhow::Error) -> Option<&Status> {
    error.chain().find_map(|c| c.downcast_ref::<Status>())
}

/// The message printed for an error: context, the gRPC code and message, then each field or
/// precondition violation on its own line.
pub fn render(error: &anyhow::Error) -> String {
    let mut text = String::from("error: ");
    let mut first = true;
    for cause in error.chain() {
        if !first {
            text.push_str(": ");
        }
        first = false;
        match cause.downcast_ref::<Status>() {
            Some(status) => text.push_str(&render_status(status)),
            None => {
                let _ = write!(text, "{cause}");
            }
        }
    }
    text
}

fn render_status(status: &Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if status.code() == Code::Unavailable {
        text.push_str(" (is the service running and the endpoint right? see --help)");
    }
    if let Some(bad) = status.get_details_bad_request() {
        for violation in bad.field_violations {
            let _ = write!(
                text,
                "\n  field {}: {}",
                violation.field, violation.description
            );
        }
    }
    if let Some(failure) = status.get_details_precondition_failure() {
        for violation in failure.violations {
            let _ = match violation.subject.as_str() {
                "" => write!(
                    text,
                    "\n  rule {}: {}",
                    violation.r#type, violation.description
                ),
                subject => write!(
                    text,
                    "\n  rule {} ({subject}): {}",
                    violation.r#type, violation.description
                ),
            };
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, FieldViolation};

    #[test]
    fn each_kind_has_its_own_code() {
        let mut codes: Vec<u8> = [
            Kind::Refused,
            Kind::Usage,
            Kind::NotFound,
            Kind::Permission,
            Kind::Server,
        ]
        .iter()
        .map(|k| k.code())
        .collect();
        codes.dedup();
        assert_eq!(codes, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn statuses_map_to_kinds_through_context() {
        let error = anyhow::Error::new(Status::not_found("no clinic")).context("clinic get");
        assert_eq!(classify(&error), Kind::NotFound);
        let error = anyhow::Error::new(Status::permission_denied("scope"));
        assert_eq!(classify(&error), Kind::Permission);
        let error = anyhow::Error::new(Status::unavailable("down"));
        assert_eq!(classify(&error), Kind::Server);
        let error = anyhow::Error::new(Status::failed_precondition("taken"));
        assert_eq!(classify(&error), Kind::Refused);
        assert_eq!(classify(&usage("bad flag")), Kind::Usage);
    }

    #[test]
    fn field_violations_are_printed() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "invalid",
            ErrorDetails::with_bad_request(vec![FieldViolation::new("clinic.npi", "check digit")]),
        );
        let text = render(&anyhow::Error::new(status));
        assert!(text.contains("field clinic.npi: check digit"), "{text}");
    }
}
