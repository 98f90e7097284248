//! What every command receives: the connection to the services, the printer, the time zone
//! times are read and shown in, and the idempotency key of its mutating call.

use crate::client::{Connection, new_request_id};
use crate::output::Printer;
use clap::Args;
use jiff::tz::TimeZone;

/// The run-wide state a command works with.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Endpoints and token.
    pub conn: Connection,
    /// Output format.
    pub out: Printer,
    /// Zone local date-times on the command line are read in and tables show times in.
    pub zone: TimeZone,
    request_id: Option<String>,
}

impl Ctx {
    /// A context.
    pub fn new(conn: Connection, out: Printer, zone: TimeZone, request_id: Option<String>) -> Ctx {
        Ctx {
            conn,
            out,
            zone,
            request_id,
        }
    }

    /// The idempotency key of this command's mutating call: `--request-id` when given (so a
    /// retried command returns the first answer), else a fresh UUIDv7.
    pub fn request_id(&self) -> String {
        self.request_id.clone().unwrap_or_else(new_request_id)
    }

    /// A key for the `n`-th of several mutating calls of one command, derived from
    /// `--request-id` when given.
    pub fn request_id_for(&self, part: &str) -> String {
        match &self.request_id {
            Some(id) => format!("{id}/{part}"),
            None => new_request_id(),
        }
    }
}

/// Paging flags of every list command.
#[derive(Debug, Clone, Args)]
pub struct Page {
    /// Items per page (0: the server's default).
    #[arg(long, default_value_t = 0)]
    pub page_size: i32,
    /// Token printed after the previous page ("more: --page-token …").
    #[arg(long, default_value = "")]
    pub page_token: String,
}
