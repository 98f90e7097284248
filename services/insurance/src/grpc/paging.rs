//! Page tokens: opaque to clients, a position in the listing's order. Lists ordered by id carry
//! the last id; lists ordered newest first carry the last (time, id); coverages carry an offset.

use platform::ApiError;
use time::OffsetDateTime;
use uuid::Uuid;

fn bad_token() -> ApiError {
    ApiError::invalid("page_token", "not a token from a previous response")
}

/// The position after the newest-first item (`time`, `id`).
pub fn time_token(time: OffsetDateTime, id: &str) -> String {
    format!("{}_{}", time.unix_timestamp_nanos() / 1_000, id)
}

/// Parses a [`time_token`]; `None` for the first page.
pub fn parse_time_token(token: &str) -> Result<Option<(OffsetDateTime, Uuid)>, ApiError> {
    if token.is_empty() {
        return Ok(None);
    }
    let (micros, id) = token.split_once('_').ok_or_else(bad_token)?;
    let micros: i128 = micros.parse().map_err(|_| bad_token())?;
    let time =
        OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).map_err(|_| bad_token())?;
    let id = Uuid::parse_str(id).map_err(|_| bad_token())?;
    Ok(Some((time, id)))
}

/// Parses an offset token; 0 for the first page.
pub fn parse_offset(token: &str) -> Result<i64, ApiError> {
    if token.is_empty() {
        return Ok(0);
    }
    token
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(bad_token)
}

/// The next page's token when a page came back full (one extra row was read to find out).
pub fn next<T>(rows: &mut Vec<T>, limit: i64, token: impl FnOnce(&T) -> String) -> String {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(token).unwrap_or_default()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_tokens_round_trip_and_garbage_is_refused() {
        let time = crate::convert::now();
        let id = Uuid::now_v7();
        assert_eq!(
            parse_time_token(&time_token(time, &id.to_string())).unwrap(),
            Some((time, id))
        );
        assert!(parse_time_token("x").is_err());
        assert!(parse_offset("-3").is_err());
        assert_eq!(parse_offset("").unwrap(), 0);
    }

    #[test]
    fn next_token_only_when_more_rows_exist() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(next(&mut rows, 2, |n| n.to_string()), "2");
        assert_eq!(rows, vec![1, 2]);
        let mut rows = vec![1, 2];
        assert_eq!(next(&mut rows, 2, |n| n.to_string()), "");
    }
}
