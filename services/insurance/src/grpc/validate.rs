//! Field checks shared by the RPCs: each records a violation naming the field and returns the
//! parsed value when the field is valid.

use crate::convert;
use clinicnet_proto::common::v1::{Date, Money};
use platform::error::Violations;

/// A payer or plan id: 2–64 characters of a–z, 0–9 and "-".
pub fn slug(v: &mut Violations, field: &str, value: &str) {
    let ok = (2..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    v.check(!ok, field, "2-64 characters of a-z, 0-9 and '-'");
}

/// Non-empty text of at most `max` characters.
pub fn text(v: &mut Violations, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        v.add(field, "required");
    } else {
        optional_text(v, field, value, max);
    }
}

/// Text of at most `max` characters (may be empty).
pub fn optional_text(v: &mut Violations, field: &str, value: &str, max: usize) {
    if value.chars().count() > max {
        v.add(field, format!("at most {max} characters"));
    }
}

/// A required server-assigned id (a UUID).
pub fn id(v: &mut Violations, field: &str, value: &str) {
    if value.is_empty() {
        v.add(field, "required");
    } else if uuid::Uuid::parse_str(value).is_err() {
        v.add(field, "not a valid id");
    }
}

/// A required reference to another service's entity (patient, clinic, appointment).
pub fn reference(v: &mut Violations, field: &str, value: &str) {
    text(v, field, value, 128);
}

/// A date; required unless `optional`.
pub fn date(
    v: &mut Violations,
    field: &str,
    value: Option<&Date>,
    optional: bool,
) -> Option<time::Date> {
    match value {
        None if optional => None,
        None => {
            v.add(field, "required");
            None
        }
        Some(d) => {
            let parsed = convert::date(d);
            v.check(parsed.is_none(), field, "not a valid date (year 1900-9999)");
            parsed
        }
    }
}

/// A required USD amount in cents; negative only when `allow_negative`.
pub fn money(
    v: &mut Violations,
    field: &str,
    value: Option<&Money>,
    allow_negative: bool,
) -> Option<i64> {
    let Some(money) = value else {
        v.add(field, "required");
        return None;
    };
    if money.currency_code != convert::USD {
        v.add(format!("{field}.currency_code"), "only USD is accepted");
        return None;
    }
    if !allow_negative && money.amount_cents < 0 {
        v.add(format!("{field}.amount_cents"), "must not be negative");
        return None;
    }
    Some(money.amount_cents)
}

/// A HCPCS or CPT code: five characters of A–Z and 0–9.
pub fn procedure_code(v: &mut Violations, field: &str, value: &str) {
    let ok = value.len() == 5
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    v.check(
        !ok,
        field,
        "a HCPCS or CPT code: five characters of A-Z and 0-9",
    );
}

/// An ICD-10-CM code such as F33.2: a letter, two characters, optionally a dot and 1–4 more.
pub fn diagnosis_code(v: &mut Violations, field: &str, value: &str) {
    let (head, tail) = value.split_once('.').unwrap_or((value, ""));
    let bytes = head.as_bytes();
    let ok = bytes.len() == 3
        && bytes[0].is_ascii_uppercase()
        && bytes[1].is_ascii_digit()
        && (bytes[2].is_ascii_digit() || bytes[2].is_ascii_uppercase())
        && (!value.contains('.') || (1..=4).contains(&tail.len()))
        && tail
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    v.check(!ok, field, "an ICD-10-CM code such as F33.2");
}

/// An NPI: ten digits; may be empty.
pub fn optional_npi(v: &mut Violations, field: &str, value: &str) {
    let ok = value.is_empty() || (value.len() == 10 && value.bytes().all(|b| b.is_ascii_digit()));
    v.check(!ok, field, "an NPI is ten digits");
}

/// A required enum value of the contract (not UNSPECIFIED, known to this version).
pub fn known_enum<E: TryFrom<i32>>(v: &mut Violations, field: &str, value: i32) -> Option<E> {
    if value == 0 {
        v.add(field, "required");
        return None;
    }
    let parsed = E::try_from(value).ok();
    v.check(parsed.is_none(), field, "unknown value");
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(check: impl FnOnce(&mut Violations)) -> Vec<String> {
        let mut v = Violations::new();
        check(&mut v);
        match v.finish() {
            Ok(()) => vec![],
            Err(platform::ApiError::InvalidArgument(list)) => {
                list.into_iter().map(|f| f.field).collect()
            }
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn codes_and_ids() {
        assert!(fields(|v| procedure_code(v, "c", "G2083")).is_empty());
        assert!(fields(|v| procedure_code(v, "c", "90837")).is_empty());
        assert_eq!(fields(|v| procedure_code(v, "c", "g2083")), vec!["c"]);
        assert_eq!(fields(|v| procedure_code(v, "c", "G208")), vec!["c"]);
        for good in ["F33.2", "F32.A", "F33"] {
            assert!(
                fields(|v| diagnosis_code(v, "d", good)).is_empty(),
                "{good}"
            );
        }
        for bad in ["f33.2", "F3", "F33.", "F33.12345", "33.2", "F329"] {
            assert_eq!(fields(|v| diagnosis_code(v, "d", bad)), vec!["d"], "{bad}");
        }
        assert!(fields(|v| slug(v, "p", "florida-blue")).is_empty());
        assert_eq!(fields(|v| slug(v, "p", "Florida Blue")), vec!["p"]);
        assert_eq!(fields(|v| optional_npi(v, "n", "12345")), vec!["n"]);
    }

    #[test]
    fn money_is_usd_cents() {
        let usd = convert::usd(-5);
        assert_eq!(
            fields(|v| {
                money(v, "m", Some(&usd), false);
            }),
            vec!["m.amount_cents"]
        );
        let eur = Money {
            currency_code: "EUR".into(),
            amount_cents: 5,
        };
        assert_eq!(
            fields(|v| {
                money(v, "m", Some(&eur), false);
            }),
            vec!["m.currency_code"]
        );
        assert_eq!(
            fields(|v| {
                money(v, "m", None, false);
            }),
            vec!["m"]
        );
    }
}
