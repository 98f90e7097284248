//! Keyset paging with opaque page tokens. A token holds the sort key of the last item returned
//! and a fingerprint of the filters it was issued for: the next page starts strictly after that
//! key, so items added, removed or changed elsewhere never shift the pages (nothing is returned
//! twice or skipped); only an item whose own sort key changes mid-walk can cross the cursor. A
//! token presented with other filters is refused.

use crate::ApiError;
use prost::Message;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Format version of the tokens this code writes.
const TOKEN_FORMAT: u8 = 1;
/// Bytes of the filter fingerprint kept in a token.
const FINGERPRINT_LEN: usize = 8;

/// A sort key a page can start after.
pub trait Key: Sized {
    /// Appends the key's bytes.
    fn write(&self, out: &mut Vec<u8>);
    /// The key `write` wrote, if `bytes` is one.
    fn read(bytes: &[u8]) -> Option<Self>;
}

impl Key for Uuid {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn read(bytes: &[u8]) -> Option<Self> {
        Uuid::from_slice(bytes).ok()
    }
}

impl Key for i64 {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn read(bytes: &[u8]) -> Option<Self> {
        Some(i64::from_be_bytes(bytes.try_into().ok()?))
    }
}

/// A text key, e.g. a plan code.
impl Key for String {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn read(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

/// A time with an id as tie-breaker, e.g. (start time, appointment id).
impl Key for (time::OffsetDateTime, Uuid) {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.unix_timestamp_nanos().to_be_bytes());
        self.1.write(out);
    }
    fn read(bytes: &[u8]) -> Option<Self> {
        let (nanos, id) = bytes.split_at_checked(16)?;
        let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from_be_bytes(
            nanos.try_into().ok()?,
        ))
        .ok()?;
        Some((time, Uuid::read(id)?))
    }
}

/// A text key with an id as tie-breaker, e.g. (consumer, event id).
impl Key for (String, Uuid) {
    fn write(&self, out: &mut Vec<u8>) {
        self.1.write(out);
        out.extend_from_slice(self.0.as_bytes());
    }
    fn read(bytes: &[u8]) -> Option<Self> {
        let (id, text) = bytes.split_at_checked(16)?;
        Some((String::from_utf8(text.to_vec()).ok()?, Uuid::read(id)?))
    }
}

/// One page asked for: how many items, after which key.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<K> {
    /// Items wanted.
    pub size: usize,
    /// The key to start after; none for the first page.
    pub after: Option<K>,
    fingerprint: [u8; FINGERPRINT_LEN],
}

impl<K: Key> Page<K> {
    /// The page a request asks for. `filters` is the request with its paging fields cleared; a
    /// page size of 0 means `default`; above `max` is INVALID_ARGUMENT.
    pub fn parse<F: Message>(
        filters: &F,
        page_size: i32,
        page_token: &str,
        default: usize,
        max: usize,
    ) -> Result<Page<K>, ApiError> {
        let size = match usize::try_from(page_size) {
            Ok(0) => default,
            Ok(size) if size <= max => size,
            _ => {
                return Err(ApiError::invalid(
                    "page_size",
                    format!("must be between 0 and {max}"),
                ));
            }
        };
        let fingerprint = fingerprint(filters);
        let after = if page_token.is_empty() {
            None
        } else {
            Some(read_token(page_token, &fingerprint)?)
        };
        Ok(Page {
            size,
            after,
            fingerprint,
        })
    }

    /// How many rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch_limit(&self) -> i64 {
        i64::try_from(self.size).map_or(i64::MAX, |size| size.saturating_add(1))
    }

    /// Cuts the fetched rows to the page and makes the token of the next page (empty on the
    /// last page).
    pub fn finish<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> K) -> (Vec<T>, String) {
        if rows.len() <= self.size {
            return (rows, String::new());
        }
        rows.truncate(self.size);
        let token = rows.last().map_or_else(String::new, |last| {
            let mut bytes = vec![TOKEN_FORMAT];
            bytes.extend_from_slice(&self.fingerprint);
            key(last).write(&mut bytes);
            hex::encode(bytes)
        });
        (rows, token)
    }
}

fn fingerprint<F: Message>(filters: &F) -> [u8; FINGERPRINT_LEN] {
    let digest = Sha256::digest(filters.encode_to_vec());
    let mut fingerprint = [0; FINGERPRINT_LEN];
    fingerprint.copy_from_slice(&digest[..FINGERPRINT_LEN]);
    fingerprint
}

fn read_token<K: Key>(token: &str, fingerprint: &[u8; FINGERPRINT_LEN]) -> Result<K, ApiError> {
    let malformed = || ApiError::invalid("page_token", "not a page token of this list");
    let bytes = hex::decode(token).map_err(|_| malformed())?;
    let Some((&TOKEN_FORMAT, rest)) = bytes.split_first() else {
        return Err(malformed());
    };
    let (issued_for, key) = rest
        .split_at_checked(FINGERPRINT_LEN)
        .ok_or_else(malformed)?;
    if issued_for != fingerprint {
        return Err(ApiError::invalid(
            "page_token",
            "issued for other filters; repeat the filters of the first page",
        ));
    }
    K::read(key).ok_or_else(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clinicnet_proto::ops::v1::ListDeadLettersRequest;

    fn filters(consumer: &str) -> ListDeadLettersRequest {
        ListDeadLettersRequest {
            consumer: consumer.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_token_resumes_after_the_last_key_of_its_page() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let first: Page<Uuid> = Page::parse(&filters("a"), 2, "", 50, 500).unwrap();
        assert_eq!(first.fetch_limit(), 3);
        let (rows, token) = first.finish(ids[..3].to_vec(), |id| *id);
        assert_eq!(rows, ids[..2]);
        let second: Page<Uuid> = Page::parse(&filters("a"), 2, &token, 50, 500).unwrap();
        assert_eq!(second.after, Some(ids[1]));
        let (rows, token) = second.finish(ids[2..4].to_vec(), |id| *id);
        assert_eq!(rows, ids[2..4]);
        assert!(token.is_empty(), "the last page has no next token");
    }

    #[test]
    fn composite_keys_round_trip() {
        let key = ("notifications-appointments".to_owned(), Uuid::now_v7());
        let page: Page<(String, Uuid)> = Page::parse(&filters(""), 1, "", 20, 200).unwrap();
        let (_, token) = page.finish(vec![key.clone(), key.clone()], |k| k.clone());
        let next: Page<(String, Uuid)> = Page::parse(&filters(""), 1, &token, 20, 200).unwrap();
        assert_eq!(next.after, Some(key));
        let key = (
            time::OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_789).unwrap(),
            Uuid::now_v7(),
        );
        let page: Page<(time::OffsetDateTime, Uuid)> =
            Page::parse(&filters(""), 1, "", 20, 200).unwrap();
        let (_, token) = page.finish(vec![key, key], |k| *k);
        let next: Page<(time::OffsetDateTime, Uuid)> =
            Page::parse(&filters(""), 1, &token, 20, 200).unwrap();
        assert_eq!(next.after, Some(key));
        let page: Page<String> = Page::parse(&filters(""), 1, "", 20, 200).unwrap();
        let (_, token) = page.finish(vec!["esketamine-adult".to_owned(), "x".to_owned()], |k| {
            k.clone()
        });
        let next: Page<String> = Page::parse(&filters(""), 1, &token, 20, 200).unwrap();
        assert_eq!(next.after.as_deref(), Some("esketamine-adult"));
        let page: Page<i64> = Page::parse(&filters(""), 1, "", 20, 200).unwrap();
        let (_, token) = page.finish(vec![-7_i64, 9], |k| *k);
        let next: Page<i64> = Page::parse(&filters(""), 1, &token, 20, 200).unwrap();
        assert_eq!(next.after, Some(-7));
    }

    #[test]
    fn tokens_are_bound_to_their_filters_and_sizes_to_their_range() {
        let page: Page<Uuid> = Page::parse(&filters("a"), 1, "", 50, 500).unwrap();
        let (_, token) = page.finish(vec![Uuid::now_v7(), Uuid::now_v7()], |id| *id);
        let other = Page::<Uuid>::parse(&filters("b"), 1, &token, 50, 500);
        assert!(matches!(other, Err(ApiError::InvalidArgument(_))));
        for garbage in ["zz", "00", "01", &token[..token.len() - 2]] {
            let parsed = Page::<Uuid>::parse(&filters("a"), 1, garbage, 50, 500);
            assert!(
                matches!(parsed, Err(ApiError::InvalidArgument(_))),
                "{garbage}"
            );
        }
        assert_eq!(
            Page::<Uuid>::parse(&filters("a"), 0, "", 50, 500)
                .unwrap()
                .size,
            50
        );
        assert!(Page::<Uuid>::parse(&filters("a"), 501, "", 50, 500).is_err());
        assert!(Page::<Uuid>::parse(&filters("a"), -1, "", 50, 500).is_err());
    }
}
