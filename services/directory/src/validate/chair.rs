//! Chairs and rooms as a request gives them, and what a clinic's profile owes the chairs in
//! service: their location kept and their modalities still offered.

use super::{identifier, modalities, text};
use clinicnet_proto::{common::v1::Modality, directory::v1 as pb};
use platform::{ApiError, error::Violations};
use uuid::Uuid;

/// UpsertChair's chair, checked against the modalities its clinic offers. Its location is
/// checked by the caller (an unknown location is NOT_FOUND there).
pub fn for_upsert(chair: Option<&pb::Chair>, offered: &[i32]) -> Result<pb::Chair, ApiError> {
    let chair = chair.ok_or_else(|| ApiError::invalid("chair", "required"))?;
    let mut violations = Violations::new();
    check_chair(&mut violations, "chair", chair, offered);
    violations.finish()?;
    Ok(assign_chair_id(chair))
}

/// A new profile must keep every chair in service usable: its location still there and its
/// modalities still offered (retire or change the chair first).
pub fn chairs_fit(profile: &pb::Clinic, chairs: &[pb::Chair]) -> Result<(), ApiError> {
    let mut violations = Violations::new();
    for chair in chairs.iter().filter(|c| !c.retired) {
        if !profile
            .locations
            .iter()
            .any(|l| l.location_id == chair.location_id)
        {
            violations.add(
                "clinic.locations",
                format!(
                    "location {} has chair {} in service; retire or move it first",
                    chair.location_id, chair.chair_id
                ),
            );
        }
        if let Some(missing) = chair
            .modalities
            .iter()
            .find(|m| !profile.modalities.contains(m))
        {
            violations.add(
                "clinic.modalities",
                format!(
                    "chair {} gives {}; change or retire it before the clinic stops offering it",
                    chair.chair_id,
                    modality_name(*missing)
                ),
            );
        }
    }
    violations.finish()
}

fn modality_name(value: i32) -> &'static str {
    Modality::try_from(value).map_or("an unknown modality", |m| m.as_str_name())
}

pub(super) fn assign_chair_id(chair: &pb::Chair) -> pb::Chair {
    pb::Chair {
        chair_id: if chair.chair_id.is_empty() {
            Uuid::now_v7().to_string()
        } else {
            chair.chair_id.clone()
        },
        retired: false,
        ..chair.clone()
    }
}

pub(super) fn check_chair(
    violations: &mut Violations,
    field: &str,
    chair: &pb::Chair,
    offered: &[i32],
) {
    if !chair.chair_id.is_empty() {
        identifier(violations, &format!("{field}.chair_id"), &chair.chair_id);
    }
    text(
        violations,
        &format!("{field}.location_id"),
        &chair.location_id,
        64,
    );
    text(
        violations,
        &format!("{field}.display_name"),
        &chair.display_name,
        100,
    );
    violations.check(
        !(1..=50).contains(&chair.capacity),
        &format!("{field}.capacity"),
        "must be between 1 and 50",
    );
    modalities(
        violations,
        &format!("{field}.modalities"),
        &chair.modalities,
    );
    for (index, &value) in chair.modalities.iter().enumerate() {
        let item = format!("{field}.modalities[{index}]");
        if value == Modality::Telehealth as i32 {
            violations.add(item, "telehealth occupies no chair");
        } else if value != 0 && !offered.contains(&value) {
            violations.add(item, "the clinic does not offer this modality");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::clinic::tests::{clinic, location, violated};

    #[test]
    fn chairs_in_service_keep_their_location_and_modalities() {
        let mut profile = clinic();
        profile.locations = vec![location("main")];
        let chair = |retired| pb::Chair {
            chair_id: "c1".into(),
            location_id: "annex".into(),
            modalities: vec![Modality::OralKetamineLozenge as i32],
            capacity: 1,
            retired,
            ..Default::default()
        };
        assert_eq!(
            violated(chairs_fit(&profile, &[chair(false)])),
            ["clinic.locations", "clinic.modalities"]
        );
        assert!(
            chairs_fit(&profile, &[chair(true)]).is_ok(),
            "retired chairs do not hold a clinic back"
        );
    }
}
