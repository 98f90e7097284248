//! A clinic as a request gives it: its profile (everything UpdateClinic replaces) and its initial
//! chairs, checked and made ready to store — output-only fields cleared, scheduling-policy
//! defaults filled in, location and chair ids assigned — with the facts search needs derived.

use super::{
    chair::{assign_chair_id, check_chair},
    civil_date, date, given_twice,
    hours::{date_overrides, weekly_hours},
    identifier, languages, modalities, repeated, rule, text,
};
use crate::domain::{codes, contact, expiry, geo, npi, time_zone};
use clinicnet_proto::{
    common::v1::{self as common, Modality},
    directory::v1 as pb,
};
use jiff::{Timestamp, civil::Date, tz::TimeZone};
use platform::{ApiError, error::Violations};
use std::collections::HashSet;
use uuid::Uuid;

/// A checked clinic profile and what search needs of it.
#[derive(Debug, Clone)]
pub struct ValidClinic {
    /// The profile to store: no id, status, chairs, version or timestamps.
    pub profile: pb::Clinic,
    /// Facts derived for search.
    pub facts: SearchFacts,
}

/// What search needs that the profile holds only implicitly.
#[derive(Debug, Clone, Default)]
pub struct SearchFacts {
    /// ISO weekdays with weekly hours.
    pub open_weekdays: Vec<i16>,
    /// Each dated override and whether the clinic is open that day.
    pub open_overrides: Vec<(Date, bool)>,
    /// When the REMS certification stops being current; none without one.
    pub rems_valid_until: Option<Timestamp>,
}

/// CreateClinic's clinic: its profile and its initial chairs.
pub fn for_create(
    clinic: Option<&pb::Clinic>,
    now: Timestamp,
) -> Result<(ValidClinic, Vec<pb::Chair>), ApiError> {
    let clinic = clinic.ok_or_else(|| ApiError::invalid("clinic", "required"))?;
    let mut violations = Violations::new();
    let valid = profile(&mut violations, clinic, now);
    let locations: HashSet<&str> = valid
        .profile
        .locations
        .iter()
        .map(|l| l.location_id.as_str())
        .collect();
    let mut chairs = Vec::with_capacity(clinic.chairs.len());
    for (index, chair) in clinic.chairs.iter().enumerate() {
        let field = format!("clinic.chairs[{index}]");
        check_chair(&mut violations, &field, chair, &clinic.modalities);
        violations.check(
            !chair.location_id.is_empty() && !locations.contains(chair.location_id.as_str()),
            &format!("{field}.location_id"),
            "must be the location_id of one of this clinic's locations",
        );
        chairs.push(assign_chair_id(chair));
    }
    let chair_ids = clinic.chairs.iter().map(|c| c.chair_id.as_str());
    given_twice(&mut violations, "clinic.chairs", "chair_id", chair_ids);
    violations.finish()?;
    Ok((valid, chairs))
}

/// UpdateClinic's clinic: the id it names and its new profile.
pub fn for_update(
    clinic: Option<&pb::Clinic>,
    now: Timestamp,
) -> Result<(Uuid, ValidClinic), ApiError> {
    let clinic = clinic.ok_or_else(|| ApiError::invalid("clinic", "required"))?;
    let mut violations = Violations::new();
    let id = super::uuid(&mut violations, "clinic.clinic_id", &clinic.clinic_id);
    let valid = profile(&mut violations, clinic, now);
    violations.finish()?;
    Ok((id.unwrap_or_default(), valid))
}

/// Whether a stored clinic offers esketamine without a REMS certification current at `now`.
pub fn esketamine_without_current_rems(clinic: &pb::Clinic, now: Timestamp) -> bool {
    let offers = clinic
        .modalities
        .contains(&(Modality::EsketamineNasalSpray as i32));
    let current = clinic
        .rems_certification
        .as_ref()
        .and_then(|rems| rems.expires_on.as_ref())
        .zip(time_zone::parse(&clinic.time_zone).ok())
        .and_then(|(expires_on, zone)| {
            civil_date(expires_on).map(|last_day| expiry::is_current(last_day, &zone, now))
        })
        .unwrap_or(false);
    offers && !current
}

/// Checks everything UpdateClinic replaces and builds the profile to store.
fn profile(violations: &mut Violations, clinic: &pb::Clinic, now: Timestamp) -> ValidClinic {
    text(violations, "clinic.display_name", &clinic.display_name, 200);
    rule(violations, "clinic.npi", npi::check(&clinic.npi));
    let zone = time_zone::parse(&clinic.time_zone);
    rule(
        violations,
        "clinic.time_zone",
        zone.as_ref().map(|_| ()).map_err(|e| *e),
    );
    languages(violations, "clinic.languages", &clinic.languages);
    let open_weekdays = weekly_hours(violations, clinic.weekly_hours.as_ref());
    let open_overrides = date_overrides(violations, &clinic.date_overrides);
    check_contact(violations, clinic.contact.as_ref());
    check_locations(violations, &clinic.locations);
    modalities(violations, "clinic.modalities", &clinic.modalities);
    let rems_valid_until = rems(violations, clinic, zone.ok().as_ref(), now);
    for (index, payer) in clinic.in_network_payer_ids.iter().enumerate() {
        identifier(
            violations,
            &format!("clinic.in_network_payer_ids[{index}]"),
            payer,
        );
    }
    repeated(
        violations,
        "clinic.in_network_payer_ids",
        &clinic.in_network_payer_ids,
    );
    let scheduling_policy = policy(violations, clinic.scheduling_policy.as_ref());
    instructions(violations, &clinic.iv_preparation_instructions);

    let locations = clinic
        .locations
        .iter()
        .map(|location| pb::Location {
            location_id: if location.location_id.is_empty() {
                Uuid::now_v7().to_string()
            } else {
                location.location_id.clone()
            },
            ..location.clone()
        })
        .collect();
    ValidClinic {
        profile: pb::Clinic {
            clinic_id: String::new(),
            status: 0,
            chairs: Vec::new(),
            version: 0,
            suspension_reason: String::new(),
            create_time: None,
            update_time: None,
            locations,
            scheduling_policy,
            ..clinic.clone()
        },
        facts: SearchFacts {
            open_weekdays,
            open_overrides,
            rems_valid_until,
        },
    }
}

fn check_contact(violations: &mut Violations, contact: Option<&pb::ClinicContact>) {
    let Some(contact) = contact else {
        violations.add("clinic.contact", "required");
        return;
    };
    rule(
        violations,
        "clinic.contact.phone",
        contact::check_e164(&contact.phone),
    );
    rule(
        violations,
        "clinic.contact.email",
        contact::check_email(&contact.email),
    );
    let Some(on_call) = contact.on_call.as_ref() else {
        violations.add(
            "clinic.contact.on_call",
            "required: who receives safety alerts",
        );
        return;
    };
    text(
        violations,
        "clinic.contact.on_call.display_name",
        &on_call.display_name,
        100,
    );
    rule(
        violations,
        "clinic.contact.on_call.phone",
        contact::check_e164(&on_call.phone),
    );
    if !on_call.email.is_empty() {
        rule(
            violations,
            "clinic.contact.on_call.email",
            contact::check_email(&on_call.email),
        );
    }
}

fn check_locations(violations: &mut Violations, locations: &[pb::Location]) {
    if locations.is_empty() {
        violations.add("clinic.locations", "at least one is required");
    }
    for (index, location) in locations.iter().enumerate() {
        let field = format!("clinic.locations[{index}]");
        if !location.location_id.is_empty() {
            identifier(
                violations,
                &format!("{field}.location_id"),
                &location.location_id,
            );
        }
        text(
            violations,
            &format!("{field}.display_name"),
            &location.display_name,
            100,
        );
        address(
            violations,
            &format!("{field}.address"),
            location.address.as_ref(),
        );
        match location.coordinates.as_ref() {
            None => violations.add(format!("{field}.coordinates"), "required"),
            Some(point) => {
                let field = format!("{field}.coordinates");
                rule(
                    violations,
                    &format!("{field}.latitude"),
                    geo::check_latitude(point.latitude),
                );
                rule(
                    violations,
                    &format!("{field}.longitude"),
                    geo::check_longitude(point.longitude),
                );
            }
        }
    }
    let location_ids = locations.iter().map(|l| l.location_id.as_str());
    given_twice(violations, "clinic.locations", "location_id", location_ids);
}

fn address(violations: &mut Violations, field: &str, address: Option<&common::Address>) {
    let Some(address) = address else {
        violations.add(field, "required");
        return;
    };
    violations.check(
        !(1..=3).contains(&address.lines.len()),
        &format!("{field}.lines"),
        "1 to 3 lines",
    );
    for (index, line) in address.lines.iter().enumerate() {
        text(violations, &format!("{field}.lines[{index}]"), line, 100);
    }
    text(
        violations,
        &format!("{field}.locality"),
        &address.locality,
        100,
    );
    rule(
        violations,
        &format!("{field}.region"),
        codes::check_state(&address.region),
    );
    rule(
        violations,
        &format!("{field}.postal_code"),
        codes::check_zip(&address.postal_code),
    );
    rule(
        violations,
        &format!("{field}.country_code"),
        codes::check_country(&address.country_code),
    );
}

/// Checks the REMS certification, and that esketamine is offered only with a current one (in the
/// clinic's own time zone). Returns when the certification stops being current.
fn rems(
    violations: &mut Violations,
    clinic: &pb::Clinic,
    zone: Option<&TimeZone>,
    now: Timestamp,
) -> Option<Timestamp> {
    let offers_esketamine = clinic
        .modalities
        .contains(&(Modality::EsketamineNasalSpray as i32));
    let Some(rems) = clinic.rems_certification.as_ref() else {
        violations.check(
            offers_esketamine,
            "clinic.rems_certification",
            "required to offer esketamine nasal spray (FDA REMS)",
        );
        return None;
    };
    text(
        violations,
        "clinic.rems_certification.certification_id",
        &rems.certification_id,
        64,
    );
    let last_day = date(
        violations,
        "clinic.rems_certification.expires_on",
        rems.expires_on.as_ref(),
    )?;
    let valid_until = expiry::valid_until(last_day, zone?);
    violations.check(
        offers_esketamine && now >= valid_until,
        "clinic.rems_certification.expires_on",
        "the REMS certification has expired in the clinic's time zone; esketamine needs a current one",
    );
    Some(valid_until)
}

/// The scheduling policy with the contract's defaults filled in (IV infusion 40 min, IV recovery
/// 45 min, late cancellation 24 h), every value in its range.
fn policy(
    violations: &mut Violations,
    policy: Option<&pb::SchedulingPolicy>,
) -> Option<pb::SchedulingPolicy> {
    let Some(given) = policy else {
        violations.add("clinic.scheduling_policy", "required");
        return None;
    };
    let or = |value: i32, default: i32| if value == 0 { default } else { value };
    let filled = pb::SchedulingPolicy {
        iv_infusion_minutes: or(given.iv_infusion_minutes, 40),
        iv_recovery_minutes: or(given.iv_recovery_minutes, 45),
        late_cancellation_hours: or(given.late_cancellation_hours, 24),
        ..*given
    };
    let ranges = [
        (
            "buffer_before_minutes",
            filled.buffer_before_minutes,
            0,
            120,
        ),
        ("buffer_after_minutes", filled.buffer_after_minutes, 0, 120),
        (
            "minimum_notice_minutes",
            filled.minimum_notice_minutes,
            0,
            10_080,
        ),
        ("booking_horizon_days", filled.booking_horizon_days, 1, 365),
        ("iv_infusion_minutes", filled.iv_infusion_minutes, 10, 240),
        ("iv_recovery_minutes", filled.iv_recovery_minutes, 30, 120),
        (
            "esketamine_monitoring_minutes",
            filled.esketamine_monitoring_minutes,
            120,
            480,
        ),
        (
            "therapy_session_minutes",
            filled.therapy_session_minutes,
            15,
            240,
        ),
        (
            "late_cancellation_hours",
            filled.late_cancellation_hours,
            1,
            168,
        ),
    ];
    for (name, value, min, max) in ranges {
        violations.check(
            !(min..=max).contains(&value),
            &format!("clinic.scheduling_policy.{name}"),
            &format!("must be between {min} and {max}"),
        );
    }
    Some(filled)
}

fn instructions(violations: &mut Violations, texts: &[pb::LocalizedText]) {
    let mut locales = Vec::with_capacity(texts.len());
    for (index, localized) in texts.iter().enumerate() {
        let field = format!("clinic.iv_preparation_instructions[{index}]");
        match common::Locale::try_from(localized.locale) {
            Ok(common::Locale::Unspecified) | Err(_) => {
                violations.add(format!("{field}.locale"), "must be a supported locale");
            }
            Ok(locale) => locales.push(locale as i32),
        }
        text(violations, &format!("{field}.text"), &localized.text, 1000);
    }
    repeated(
        violations,
        "clinic.iv_preparation_instructions.locale",
        &locales,
    );
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn at(instant: &str) -> Timestamp {
        instant.parse().unwrap()
    }

    pub(in crate::validate) fn location(id: &str) -> pb::Location {
        pb::Location {
            location_id: id.into(),
            display_name: "Coral Gables".into(),
            address: Some(common::Address {
                lines: vec!["2000 Ponce de Leon Blvd".into()],
                locality: "Coral Gables".into(),
                region: "FL".into(),
                postal_code: "33134".into(),
                country_code: "US".into(),
            }),
            coordinates: Some(common::GeoPoint {
                latitude: 25.75,
                longitude: -80.26,
            }),
        }
    }

    pub(in crate::validate) fn clinic() -> pb::Clinic {
        pb::Clinic {
            display_name: "Ketamine Health Centers".into(),
            npi: "1234567893".into(),
            time_zone: "America/New_York".into(),
            languages: vec!["en".into(), "es".into()],
            contact: Some(pb::ClinicContact {
                phone: "+13055550100".into(),
                email: "frontdesk@khc.example".into(),
                on_call: Some(pb::OnCallContact {
                    display_name: "Clinical on-call".into(),
                    phone: "+13055550199".into(),
                    email: String::new(),
                }),
            }),
            locations: vec![location("")],
            modalities: vec![
                Modality::IvKetamine as i32,
                Modality::EsketamineNasalSpray as i32,
            ],
            rems_certification: Some(pb::RemsCertification {
                certification_id: "REMS-1".into(),
                expires_on: Some(common::Date {
                    year: 2026,
                    month: 6,
                    day: 30,
                }),
            }),
            scheduling_policy: Some(pb::SchedulingPolicy {
                booking_horizon_days: 90,
                esketamine_monitoring_minutes: 120,
                therapy_session_minutes: 60,
                ..Default::default()
            }),
            version: 7,
            clinic_id: "ignored".into(),
            ..Default::default()
        }
    }

    pub(in crate::validate) fn violated(
        result: Result<impl std::fmt::Debug, ApiError>,
    ) -> Vec<String> {
        match result {
            Err(ApiError::InvalidArgument(violations)) => {
                violations.into_iter().map(|v| v.field).collect()
            }
            other => panic!("not INVALID_ARGUMENT: {other:?}"),
        }
    }

    #[test]
    fn a_valid_clinic_is_stored_with_defaults_ids_and_search_facts() {
        let (valid, chairs) = for_create(Some(&clinic()), at("2026-06-01T00:00:00Z")).unwrap();
        assert!(chairs.is_empty());
        let policy = valid.profile.scheduling_policy.unwrap();
        assert_eq!(
            (
                policy.iv_infusion_minutes,
                policy.iv_recovery_minutes,
                policy.late_cancellation_hours
            ),
            (40, 45, 24)
        );
        assert!(Uuid::parse_str(&valid.profile.locations[0].location_id).is_ok());
        assert_eq!(
            (valid.profile.clinic_id.as_str(), valid.profile.version),
            ("", 0)
        );
        assert!(valid.facts.open_weekdays.is_empty());
        assert_eq!(
            valid.facts.rems_valid_until,
            Some(at("2026-07-01T04:00:00Z"))
        );
    }

    #[test]
    fn esketamine_needs_a_rems_certification_current_in_the_clinics_zone() {
        // 23:30 on June 30 in Miami is still the last valid day; 00:30 on July 1 is not.
        assert!(for_create(Some(&clinic()), at("2026-07-01T03:30:00Z")).is_ok());
        let late = for_create(Some(&clinic()), at("2026-07-01T04:30:00Z"));
        assert_eq!(violated(late), ["clinic.rems_certification.expires_on"]);
        let without = pb::Clinic {
            rems_certification: None,
            ..clinic()
        };
        assert_eq!(
            violated(for_create(Some(&without), at("2026-06-01T00:00:00Z"))),
            ["clinic.rems_certification"]
        );
    }

    #[test]
    fn every_violation_is_reported_at_once() {
        let mut broken = clinic();
        broken.npi = "1234567890".into();
        broken.time_zone = "Eastern".into();
        broken.locations[0].coordinates = Some(common::GeoPoint {
            latitude: -91.0,
            longitude: 0.0,
        });
        broken.chairs = vec![pb::Chair {
            location_id: "nowhere".into(),
            display_name: "Chair".into(),
            modalities: vec![Modality::Telehealth as i32],
            capacity: 1,
            ..Default::default()
        }];
        let fields = violated(for_create(Some(&broken), at("2026-06-01T00:00:00Z")));
        assert_eq!(
            fields,
            [
                "clinic.npi",
                "clinic.time_zone",
                "clinic.locations[0].coordinates.latitude",
                "clinic.chairs[0].modalities[0]",
                "clinic.chairs[0].location_id",
            ]
        );
    }

    #[test]
    fn reactivation_checks_the_rems_certification_when_esketamine_is_offered() {
        let stored = clinic();
        assert!(!esketamine_without_current_rems(
            &stored,
            at("2026-06-30T12:00:00Z")
        ));
        assert!(esketamine_without_current_rems(
            &stored,
            at("2026-07-01T12:00:00Z")
        ));
        let iv_only = pb::Clinic {
            modalities: vec![Modality::IvKetamine as i32],
            ..clinic()
        };
        assert!(!esketamine_without_current_rems(
            &iv_only,
            at("2027-01-01T00:00:00Z")
        ));
    }
}
