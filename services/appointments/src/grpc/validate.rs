//! Field checks shared by the RPCs: ids, intervals, page sizes, contacts, codes. Each adds a
//! violation naming the field; the handler finishes the collection into INVALID_ARGUMENT.

use super::convert;
use clinicnet_proto::common::v1::TimeInterval;
use platform::error::Violations;
use time::OffsetDateTime;
use uuid::Uuid;

/// A required UUID.
pub fn id(v: &mut Violations, field: &str, value: &str) -> Option<Uuid> {
    if value.is_empty() {
        v.add(field, "required");
        return None;
    }
    let parsed = Uuid::parse_str(value).ok();
    if parsed.is_none() {
        v.add(field, "not a valid id");
    }
    parsed
}

/// An optional UUID (empty means none).
pub fn optional_id(v: &mut Violations, field: &str, value: &str) -> Option<Uuid> {
    if value.is_empty() {
        None
    } else {
        id(v, field, value)
    }
}

/// A required non-empty text id of another service (clinic, chair, provider).
pub fn text_id<'a>(v: &mut Violations, field: &str, value: &'a str) -> &'a str {
    if value.trim().is_empty() {
        v.add(field, "required");
    } else if value.len() > 200 {
        v.add(field, "at most 200 characters");
    }
    value
}

/// A required instant.
pub fn instant(
    v: &mut Violations,
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Option<OffsetDateTime> {
    match value {
        None => {
            v.add(field, "required");
            None
        }
        Some(t) => {
            let parsed = convert::instant(t);
            if parsed.is_none() {
                v.add(field, "not a valid timestamp");
            }
            parsed
        }
    }
}

/// A required half-open interval whose end is after its start, at most `max_days` long.
pub fn interval(
    v: &mut Violations,
    field: &str,
    value: Option<&TimeInterval>,
    max_days: Option<i64>,
) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let Some(value) = value else {
        v.add(field, "required");
        return None;
    };
    let start = instant(v, &format!("{field}.start_time"), value.start_time.as_ref());
    let end = instant(v, &format!("{field}.end_time"), value.end_time.as_ref());
    let (start, end) = (start?, end?);
    if end <= start {
        v.add(format!("{field}.end_time"), "must be after start_time");
        return None;
    }
    if let Some(days) = max_days
        && end - start > time::Duration::days(days)
    {
        v.add(field, format!("at most {days} days long"));
        return None;
    }
    Some((start, end))
}

/// E.164: `+` then 8 to 15 digits, the first not 0.
pub fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A plausible email address: one `@`, a local part, a dotted domain, no spaces, at most 254.
pub fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

/// An ICD-10-CM code: a letter, a digit, a digit or letter, then optionally a dot and 1 to 4
/// letters or digits (e.g. "F33.2", "F32.A").
pub fn is_icd10_cm(code: &str) -> bool {
    let bytes = code.as_bytes();
    if bytes.len() < 3
        || !bytes[0].is_ascii_uppercase()
        || !bytes[1].is_ascii_digit()
        || !bytes[2].is_ascii_alphanumeric()
    {
        return false;
    }
    match &code[3..] {
        "" => true,
        rest => rest.strip_prefix('.').is_some_and(|tail| {
            (1..=4).contains(&tail.len())
                && tail
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_and_codes() {
        assert!(is_e164("+13055550123"));
        assert!(!is_e164("3055550123"));
        assert!(!is_e164("+0305555"));
        assert!(is_email("maria@example.com"));
        assert!(!is_email("maria@example"));
        assert!(!is_email("maria example@x.com"));
        assert!(is_icd10_cm("F33.2"));
        assert!(is_icd10_cm("F32.A"));
        assert!(is_icd10_cm("F32"));
        assert!(!is_icd10_cm("f33.2"));
        assert!(!is_icd10_cm("F3"));
        assert!(!is_icd10_cm("F33."));
    }

    #[test]
    fn intervals_must_move_forward() {
        let mut v = Violations::new();
        let t = |s| {
            Some(prost_types::Timestamp {
                seconds: s,
                nanos: 0,
            })
        };
        assert!(
            interval(
                &mut v,
                "w",
                Some(&TimeInterval {
                    start_time: t(10),
                    end_time: t(20)
                }),
                None
            )
            .is_some()
        );
        assert!(v.finish().is_ok());
        let mut v = Violations::new();
        assert!(
            interval(
                &mut v,
                "w",
                Some(&TimeInterval {
                    start_time: t(20),
                    end_time: t(10)
                }),
                None
            )
            .is_none()
        );
        assert!(v.finish().is_err());
    }
}
