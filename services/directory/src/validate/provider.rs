//! A provider as a request gives it, checked and made ready to store (output-only fields
//! cleared), and the licence rule that needs the time zones of the clinics it serves.

use super::{civil_date, date, languages, modalities, optional_text, repeated, rule, text};
use crate::domain::{codes, expiry, npi};
use clinicnet_proto::directory::v1 as pb;
use jiff::{Timestamp, tz::TimeZone};
use platform::{ApiError, error::Violations};
use uuid::Uuid;

/// A checked provider.
#[derive(Debug, Clone)]
pub struct ValidProvider {
    /// The provider to store: no id, status, version or timestamps.
    pub profile: pb::Provider,
    /// The clinics it serves, in the order given.
    pub clinic_ids: Vec<Uuid>,
}

/// CreateProvider's provider.
pub fn for_create(provider: Option<&pb::Provider>) -> Result<ValidProvider, ApiError> {
    let provider = provider.ok_or_else(|| ApiError::invalid("provider", "required"))?;
    let mut violations = Violations::new();
    let valid = check(&mut violations, provider);
    violations.finish()?;
    Ok(valid)
}

/// UpdateProvider's provider: the id it names and its new state.
pub fn for_update(provider: Option<&pb::Provider>) -> Result<(Uuid, ValidProvider), ApiError> {
    let provider = provider.ok_or_else(|| ApiError::invalid("provider", "required"))?;
    let mut violations = Violations::new();
    let id = super::uuid(
        &mut violations,
        "provider.provider_id",
        &provider.provider_id,
    );
    let valid = check(&mut violations, provider);
    violations.finish()?;
    Ok((id.unwrap_or_default(), valid))
}

/// A licence marked current must not have expired where any clinic the provider serves is.
pub fn licences_current(
    provider: &pb::Provider,
    zones: &[TimeZone],
    now: Timestamp,
) -> Result<(), ApiError> {
    let mut violations = Violations::new();
    for (index, licence) in provider.licenses.iter().enumerate() {
        let expired = licence
            .expires_on
            .as_ref()
            .and_then(civil_date)
            .is_some_and(|last_day| expiry::expired_anywhere(last_day, zones, now));
        violations.check(
            licence.current && expired,
            &format!("provider.licenses[{index}].current"),
            "an expired licence cannot be current",
        );
    }
    violations.finish()
}

fn check(violations: &mut Violations, provider: &pb::Provider) -> ValidProvider {
    match provider.name.as_ref() {
        None => violations.add("provider.name", "required"),
        Some(name) => {
            text(
                violations,
                "provider.name.given_name",
                &name.given_name,
                100,
            );
            optional_text(
                violations,
                "provider.name.middle_name",
                &name.middle_name,
                100,
            );
            text(
                violations,
                "provider.name.family_name",
                &name.family_name,
                100,
            );
        }
    }
    for (index, credential) in provider.credentials.iter().enumerate() {
        text(
            violations,
            &format!("provider.credentials[{index}]"),
            credential,
            20,
        );
    }
    repeated(violations, "provider.credentials", &provider.credentials);
    rule(violations, "provider.npi", npi::check(&provider.npi));
    for (index, board) in provider.board_certifications.iter().enumerate() {
        let field = format!("provider.board_certifications[{index}]");
        text(violations, &format!("{field}.board"), &board.board, 200);
        text(
            violations,
            &format!("{field}.specialty"),
            &board.specialty,
            200,
        );
        if board.expires_on.is_some() {
            date(
                violations,
                &format!("{field}.expires_on"),
                board.expires_on.as_ref(),
            );
        }
    }
    languages(violations, "provider.languages", &provider.languages);
    for (index, licence) in provider.licenses.iter().enumerate() {
        let field = format!("provider.licenses[{index}]");
        rule(
            violations,
            &format!("{field}.state"),
            codes::check_state(&licence.state),
        );
        text(
            violations,
            &format!("{field}.license_number"),
            &licence.license_number,
            50,
        );
        text(
            violations,
            &format!("{field}.license_type"),
            &licence.license_type,
            20,
        );
        date(
            violations,
            &format!("{field}.expires_on"),
            licence.expires_on.as_ref(),
        );
    }
    if provider.clinic_ids.is_empty() {
        violations.add("provider.clinic_ids", "at least one is required");
    }
    let clinic_ids = provider
        .clinic_ids
        .iter()
        .enumerate()
        .filter_map(|(index, id)| {
            super::uuid(violations, &format!("provider.clinic_ids[{index}]"), id)
        })
        .collect();
    repeated(violations, "provider.clinic_ids", &provider.clinic_ids);
    modalities(violations, "provider.modalities", &provider.modalities);
    ValidProvider {
        profile: pb::Provider {
            provider_id: String::new(),
            status: 0,
            version: 0,
            create_time: None,
            update_time: None,
            ..provider.clone()
        },
        clinic_ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clinicnet_proto::common::v1 as common;

    fn provider(expires_on: common::Date, current: bool) -> pb::Provider {
        pb::Provider {
            name: Some(common::PersonName {
                given_name: "Ana".into(),
                middle_name: String::new(),
                family_name: "García Márquez".into(),
            }),
            npi: "1245319599".into(),
            languages: vec!["es".into()],
            licenses: vec![pb::StateLicense {
                state: "FL".into(),
                license_number: "ME123456".into(),
                license_type: "MD".into(),
                expires_on: Some(expires_on),
                current,
            }],
            clinic_ids: vec![Uuid::now_v7().to_string()],
            modalities: vec![1],
            ..Default::default()
        }
    }

    #[test]
    fn an_expired_licence_cannot_be_current_where_the_provider_serves() {
        let june_30 = common::Date {
            year: 2026,
            month: 6,
            day: 30,
        };
        let now: Timestamp = "2026-07-01T02:00:00Z".parse().unwrap();
        let miami = TimeZone::get("America/New_York").unwrap();
        let honolulu = TimeZone::get("Pacific/Honolulu").unwrap();
        let valid = for_create(Some(&provider(june_30, true))).unwrap();
        // Still June 30 in Miami at 22:00: current there.
        assert!(licences_current(&valid.profile, std::slice::from_ref(&miami), now).is_ok());
        let later: Timestamp = "2026-07-01T04:00:00Z".parse().unwrap();
        let Err(ApiError::InvalidArgument(violations)) =
            licences_current(&valid.profile, &[honolulu, miami], later)
        else {
            panic!("an expired licence was accepted as current");
        };
        assert_eq!(violations[0].field, "provider.licenses[0].current");
        let history = for_create(Some(&provider(june_30, false))).unwrap();
        assert!(licences_current(&history.profile, &[], later).is_ok());
    }

    #[test]
    fn ids_must_be_canonical_and_fields_are_named() {
        let mut bad = provider(
            common::Date {
                year: 2026,
                month: 2,
                day: 30,
            },
            false,
        );
        bad.clinic_ids = vec![bad.clinic_ids[0].to_uppercase()];
        bad.licenses[0].state = "Florida".into();
        let Err(ApiError::InvalidArgument(violations)) = for_create(Some(&bad)) else {
            panic!("accepted");
        };
        let fields: Vec<_> = violations.into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                "provider.licenses[0].state",
                "provider.licenses[0].expires_on",
                "provider.clinic_ids[0]"
            ]
        );
    }
}
