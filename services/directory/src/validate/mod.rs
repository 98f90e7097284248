//! Requests checked field by field before anything is stored. Every offending field is named in
//! one INVALID_ARGUMENT (google.rpc.BadRequest) by its path in the request, e.g.
//! `clinic.locations[0].coordinates.latitude`; the domain rules say what is wrong with it.

pub mod chair;
pub mod clinic;
mod hours;
pub mod provider;
pub mod query;

use crate::domain::codes;
use clinicnet_proto::common::v1 as common;
use platform::error::Violations;
use std::{collections::HashSet, hash::Hash};
use uuid::Uuid;

/// Longest client-chosen identifier (location, chair and payer ids).
const MAX_IDENTIFIER_LEN: usize = 64;

/// Records a violation on `field` when a domain rule rejects the value.
pub(crate) fn rule(violations: &mut Violations, field: &str, outcome: Result<(), &'static str>) {
    if let Err(reason) = outcome {
        violations.add(field, reason);
    }
}

/// A required text of 1 to `max` characters that is not only blanks.
pub(crate) fn text(violations: &mut Violations, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        violations.add(field, "required");
    } else {
        optional_text(violations, field, value, max);
    }
}

/// An optional text of at most `max` characters.
pub(crate) fn optional_text(violations: &mut Violations, field: &str, value: &str, max: usize) {
    if value.chars().count() > max {
        violations.add(field, format!("at most {max} characters"));
    }
}

/// A client-chosen identifier: 1 to 64 characters of letters, digits, `.`, `_` and `-`.
pub(crate) fn identifier(violations: &mut Violations, field: &str, value: &str) {
    let valid = (1..=MAX_IDENTIFIER_LEN).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    violations.check(
        !valid,
        field,
        "must be 1 to 64 letters, digits, '.', '_' or '-'",
    );
}

/// A server-assigned id: a UUID in its canonical lower-case hyphenated form.
pub(crate) fn uuid(violations: &mut Violations, field: &str, value: &str) -> Option<Uuid> {
    let parsed = Uuid::parse_str(value)
        .ok()
        .filter(|id| id.to_string() == value);
    violations.check(
        parsed.is_none(),
        field,
        "must be an id returned by this service",
    );
    parsed
}

/// A required calendar date, 1900-01-01 to 9999-12-31.
pub(crate) fn date(
    violations: &mut Violations,
    field: &str,
    value: Option<&common::Date>,
) -> Option<jiff::civil::Date> {
    let Some(value) = value else {
        violations.add(field, "required");
        return None;
    };
    let parsed = civil_date(value);
    violations.check(
        parsed.is_none(),
        field,
        "must be a valid date between 1900-01-01 and 9999-12-31",
    );
    parsed
}

/// The calendar date a message names, when it is one between 1900-01-01 and 9999-12-31.
pub(crate) fn civil_date(value: &common::Date) -> Option<jiff::civil::Date> {
    if !(1900..=9999).contains(&value.year) {
        return None;
    }
    let year = i16::try_from(value.year).ok()?;
    let month = i8::try_from(value.month).ok()?;
    let day = i8::try_from(value.day).ok()?;
    jiff::civil::Date::new(year, month, day).ok()
}

/// A required modality (a known value other than UNSPECIFIED).
pub(crate) fn modality(
    violations: &mut Violations,
    field: &str,
    value: i32,
) -> Option<common::Modality> {
    match common::Modality::try_from(value) {
        Ok(common::Modality::Unspecified) => violations.add(field, "required"),
        Ok(modality) => return Some(modality),
        Err(_) => violations.add(field, "unknown modality"),
    }
    None
}

/// At least one modality, each known, none twice.
pub(crate) fn modalities(violations: &mut Violations, field: &str, values: &[i32]) {
    if values.is_empty() {
        violations.add(field, "at least one is required");
    }
    for (index, &value) in values.iter().enumerate() {
        modality(violations, &format!("{field}[{index}]"), value);
    }
    repeated(violations, field, values);
}

/// At least one language subtag, each valid, none twice.
pub(crate) fn languages(violations: &mut Violations, field: &str, values: &[String]) {
    if values.is_empty() {
        violations.add(field, "at least one is required");
    }
    for (index, language) in values.iter().enumerate() {
        rule(
            violations,
            &format!("{field}[{index}]"),
            codes::check_language(language),
        );
    }
    repeated(violations, field, values);
}

/// Names `{list}[i].{id_field}` for every client-chosen id that an earlier element already has.
pub(crate) fn given_twice<'a>(
    violations: &mut Violations,
    list: &str,
    id_field: &str,
    ids: impl Iterator<Item = &'a str>,
) {
    let mut seen = HashSet::new();
    for (index, id) in ids.enumerate() {
        if !id.is_empty() && !seen.insert(id) {
            violations.add(
                format!("{list}[{index}].{id_field}"),
                "another element has this id",
            );
        }
    }
}

/// Names every element of `values` that repeats an earlier one.
pub(crate) fn repeated<T: Eq + Hash>(violations: &mut Violations, field: &str, values: &[T]) {
    let mut seen = HashSet::new();
    for (index, value) in values.iter().enumerate() {
        if !seen.insert(value) {
            violations.add(format!("{field}[{index}]"), "listed twice");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::ApiError;

    fn fields(violations: Violations) -> Vec<String> {
        match violations.finish() {
            Ok(()) => vec![],
            Err(ApiError::InvalidArgument(list)) => list.into_iter().map(|v| v.field).collect(),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn dates_must_exist_in_the_calendar() {
        let mut v = Violations::new();
        let ok = date(
            &mut v,
            "d",
            Some(&common::Date {
                year: 2028,
                month: 2,
                day: 29,
            }),
        );
        assert_eq!(ok, Some(jiff::civil::date(2028, 2, 29)));
        date(
            &mut v,
            "feb30",
            Some(&common::Date {
                year: 2026,
                month: 2,
                day: 30,
            }),
        );
        date(
            &mut v,
            "old",
            Some(&common::Date {
                year: 1899,
                month: 12,
                day: 31,
            }),
        );
        date(&mut v, "missing", None);
        assert_eq!(fields(v), ["feb30", "old", "missing"]);
    }

    #[test]
    fn lists_name_the_bad_and_the_repeated_element() {
        let mut v = Violations::new();
        modalities(&mut v, "m", &[1, 0, 1, 99]);
        languages(&mut v, "l", &["en".into(), "EN".into(), "en".into()]);
        modalities(&mut v, "empty", &[]);
        assert_eq!(fields(v), ["m[1]", "m[3]", "m[2]", "l[1]", "l[2]", "empty"]);
    }

    #[test]
    fn identifiers_and_texts() {
        let mut v = Violations::new();
        identifier(&mut v, "ok", "chair-3_b.1");
        identifier(&mut v, "space", "chair 3");
        identifier(&mut v, "long", &"x".repeat(65));
        text(&mut v, "blank", "  ", 10);
        text(&mut v, "long_text", "ñandú ñandú", 10);
        text(&mut v, "fits", "ñandú", 5);
        assert_eq!(fields(v), ["space", "long", "blank", "long_text"]);
    }
}
