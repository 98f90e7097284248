//! Page tokens: opaque to callers, a position in a stable order (start time and id, an id, a
//! plan code or an offset). A token that does not parse is INVALID_ARGUMENT on `page_token`.

use platform::error::Violations;
use time::OffsetDateTime;
use uuid::Uuid;

/// The token after the row at (time, id).
pub fn time_key(time: OffsetDateTime, id: Uuid) -> String {
    format!("{}_{id}", time.unix_timestamp_nanos())
}

/// The (time, id) a token names; None for the first page.
pub fn parse_time_key(v: &mut Violations, token: &str) -> Option<(OffsetDateTime, Uuid)> {
    if token.is_empty() {
        return None;
    }
    let parsed = token.split_once('_').and_then(|(nanos, id)| {
        let time = OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?;
        Some((time, Uuid::parse_str(id).ok()?))
    });
    if parsed.is_none() {
        v.add("page_token", "not a token from a previous response");
    }
    parsed
}

/// The id a token names; None for the first page.
pub fn parse_id_key(v: &mut Violations, token: &str) -> Option<Uuid> {
    if token.is_empty() {
        return None;
    }
    let parsed = Uuid::parse_str(token).ok();
    if parsed.is_none() {
        v.add("page_token", "not a token from a previous response");
    }
    parsed
}

/// The offset a token names; 0 for the first page.
pub fn parse_offset(v: &mut Violations, token: &str) -> usize {
    if token.is_empty() {
        return 0;
    }
    token
        .strip_prefix("o")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            v.add("page_token", "not a token from a previous response");
            0
        })
}

/// The token of an offset.
pub fn offset(n: usize) -> String {
    format!("o{n}")
}
