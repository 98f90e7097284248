//! The gates a booking passes, each refusing with its own rule: the clinic is active and offers the
//! modality (and so do the chair and the provider), esketamine only under a current REMS
//! certification and with the REMS monitoring, the whole visit fits the slot, minimum notice and
//! booking horizon, an intake showing treatment-resistant depression before any ketamine, and the
//! dose rules (first esketamine dose at 65 and over, the course plan's dose).

use super::{
    clinic::ClinicView,
    refusal::{Refusal, refuse},
    visit::{self, Placement, VisitDurations},
};
use clinicnet_proto::{
    appointments::v1::{Intake, PreconditionRule as Rule},
    common::v1::Modality,
};
use time::{Date, OffsetDateTime};

/// Clinical thresholds the service is configured with (they vary by network and payer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClinicalRules {
    /// Failed antidepressant trials that make depression treatment-resistant.
    pub min_failed_trials: usize,
    /// Weeks at the final dose a trial must have lasted to count.
    pub min_trial_weeks: i32,
    /// Age from which the first esketamine dose is limited.
    pub reduced_start_age: i32,
    /// The largest first esketamine dose from that age, in mg.
    pub reduced_start_max_dose_mg: i32,
}

/// Everything a booking is judged on.
#[derive(Debug, Clone)]
pub struct BookingFacts<'a> {
    /// The clinic of the slot.
    pub clinic: &'a ClinicView,
    /// The slot's modality.
    pub modality: Modality,
    /// Modalities of the slot's chair; None for a visit without a chair (telehealth).
    pub chair_modalities: Option<&'a [i32]>,
    /// Modalities of the slot's provider; None when a provider is assigned at booking.
    pub provider_modalities: Option<&'a [i32]>,
    /// Start of the slot.
    pub slot_start: OffsetDateTime,
    /// End of the slot.
    pub slot_end: OffsetDateTime,
    /// Now.
    pub now: OffsetDateTime,
    /// The patient's date of birth.
    pub birth_date: Date,
    /// The intake in force, if any.
    pub intake: Option<&'a Intake>,
    /// The planned dose in mg (0 when not applicable).
    pub planned_dose_mg: i32,
    /// Whether this would be the patient's first esketamine session.
    pub first_esketamine_session: bool,
    /// The course session's planned dose, when booked in a course whose plan sets one.
    pub course_dose_mg: Option<i32>,
}

/// Whether the clinic may give `modality` on the local `date`: active, offering it, and for
/// esketamine holding a current REMS certification.
pub fn check_clinic_offers(
    clinic: &ClinicView,
    modality: Modality,
    date: Date,
) -> Result<(), Refusal> {
    if clinic.suspended() {
        return Err(refuse(
            Rule::ClinicSuspended,
            "the clinic is suspended and takes no new bookings",
        ));
    }
    if !clinic.offers(modality) {
        return Err(refuse(
            Rule::ModalityNotSupported,
            format!("the clinic does not offer {}", modality.as_str_name()),
        ));
    }
    if modality == Modality::EsketamineNasalSpray && !clinic.rems_current_on(date) {
        return Err(refuse(
            Rule::RemsCertificationNotCurrent,
            format!(
                "the clinic's esketamine REMS certification is missing or not current on {date}"
            ),
        ));
    }
    Ok(())
}

/// Failed trials that count toward treatment-resistant depression.
pub fn counted_trials(intake: &Intake, rules: &ClinicalRules) -> usize {
    intake
        .failed_trials
        .iter()
        .filter(|t| {
            t.adequate_dose && t.current_episode && t.duration_weeks >= rules.min_trial_weeks
        })
        .count()
}

/// Ketamine in any form needs an intake on file that shows treatment-resistant depression.
pub fn check_eligibility(
    modality: Modality,
    intake: Option<&Intake>,
    rules: &ClinicalRules,
) -> Result<(), Refusal> {
    if !visit::is_ketamine(modality) {
        return Ok(());
    }
    let Some(intake) = intake else {
        return Err(refuse(
            Rule::IntakeMissing,
            "record the patient's intake before ketamine therapy",
        ));
    };
    let trials = counted_trials(intake, rules);
    if !intake.trd_attested || trials < rules.min_failed_trials {
        return Err(refuse(
            Rule::TrdCriteriaNotMet,
            format!(
                "treatment-resistant depression needs an attestation and at least {} failed adequate trials of {} weeks or more in this episode; the intake shows {trials}{}",
                rules.min_failed_trials,
                rules.min_trial_weeks,
                if intake.trd_attested {
                    ""
                } else {
                    " and no attestation"
                }
            ),
        ));
    }
    Ok(())
}

/// Age in whole years on `date`.
pub fn age_on(birth: Date, date: Date) -> i32 {
    let mut age = date.year() - birth.year();
    if (date.month() as u8, date.day()) < (birth.month() as u8, birth.day()) {
        age -= 1;
    }
    age
}

/// Judges a booking; on success, where the visit lands.
pub fn check_booking(
    facts: &BookingFacts<'_>,
    durations: &VisitDurations,
    rules: &ClinicalRules,
) -> Result<Placement, Refusal> {
    let clinic = facts.clinic;
    let shape = visit::shape(facts.modality, &clinic.policy, durations)?;
    let placement = shape.place(facts.slot_start);
    let visit_date = clinic.zone.local_date(placement.visit_start);
    check_clinic_offers(clinic, facts.modality, visit_date)?;
    let m = facts.modality as i32;
    if facts.chair_modalities.is_some_and(|ms| !ms.contains(&m)) {
        return Err(refuse(
            Rule::ModalityNotSupported,
            "the chair does not support the modality",
        ));
    }
    if facts.provider_modalities.is_some_and(|ms| !ms.contains(&m)) {
        return Err(refuse(
            Rule::ModalityNotSupported,
            "the provider does not offer the modality",
        ));
    }
    if !shape.fits(facts.slot_start, facts.slot_end) {
        return Err(refuse(
            Rule::VisitDoesNotFit,
            format!(
                "the visit needs {} minutes with buffers; the slot has {}",
                shape.occupied().whole_minutes(),
                (facts.slot_end - facts.slot_start).whole_minutes()
            ),
        ));
    }
    if placement.visit_start < facts.now + clinic.policy.minimum_notice {
        return Err(refuse(
            Rule::MinimumNotice,
            format!(
                "the clinic needs {} minutes' notice before a visit",
                clinic.policy.minimum_notice.whole_minutes()
            ),
        ));
    }
    if placement.visit_start > facts.now + clinic.policy.booking_horizon {
        return Err(refuse(
            Rule::BookingHorizon,
            format!(
                "the clinic books at most {} days ahead",
                clinic.policy.booking_horizon.whole_days()
            ),
        ));
    }
    check_eligibility(facts.modality, facts.intake, rules)?;
    check_dose(facts, visit_date, rules)?;
    Ok(placement)
}

fn check_dose(
    facts: &BookingFacts<'_>,
    visit_date: Date,
    rules: &ClinicalRules,
) -> Result<(), Refusal> {
    if let Some(planned) = facts.course_dose_mg.filter(|d| *d > 0)
        && facts.planned_dose_mg > planned
    {
        return Err(refuse(
            Rule::DoseNotAllowed,
            format!("the course plan allows {planned} mg for this session"),
        ));
    }
    if facts.modality == Modality::EsketamineNasalSpray
        && facts.first_esketamine_session
        && age_on(facts.birth_date, visit_date) >= rules.reduced_start_age
        && facts.planned_dose_mg > rules.reduced_start_max_dose_mg
    {
        return Err(refuse(
            Rule::DoseNotAllowed,
            format!(
                "patients aged {} and over start esketamine at {} mg",
                rules.reduced_start_age, rules.reduced_start_max_dose_mg
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clinicnet_proto::{
        common::v1::{AntidepressantClass, AntidepressantTrial},
        directory::v1::{Clinic, ClinicStatus, RemsCertification, SchedulingPolicy},
    };
    use time::{
        Duration,
        macros::{date, datetime},
    };

    const RULES: ClinicalRules = ClinicalRules {
        min_failed_trials: 2,
        min_trial_weeks: 6,
        reduced_start_age: 65,
        reduced_start_max_dose_mg: 28,
    };
    const DURATIONS: VisitDurations = VisitDurations {
        esketamine_dosing: Duration::minutes(15),
        lozenge_visit: Duration::minutes(120),
    };
    const NOW: OffsetDateTime = datetime!(2027-01-04 12:00 UTC);

    fn clinic(status: ClinicStatus, rems: Option<i32>, monitoring: i32) -> ClinicView {
        ClinicView::new(Clinic {
            clinic_id: "c".into(),
            time_zone: "America/New_York".into(),
            status: status as i32,
            modalities: vec![
                Modality::EsketamineNasalSpray as i32,
                Modality::IvKetamine as i32,
            ],
            rems_certification: rems.map(|year| RemsCertification {
                certification_id: "R".into(),
                expires_on: Some(clinicnet_proto::common::v1::Date {
                    year,
                    month: 12,
                    day: 31,
                }),
            }),
            scheduling_policy: Some(SchedulingPolicy {
                minimum_notice_minutes: 60,
                booking_horizon_days: 30,
                esketamine_monitoring_minutes: monitoring,
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap()
    }

    fn trial(weeks: i32) -> AntidepressantTrial {
        AntidepressantTrial {
            drug_class: AntidepressantClass::Ssri as i32,
            duration_weeks: weeks,
            adequate_dose: true,
            current_episode: true,
        }
    }

    fn intake(trials: Vec<AntidepressantTrial>, attested: bool) -> Intake {
        Intake {
            failed_trials: trials,
            trd_attested: attested,
            ..Default::default()
        }
    }

    fn facts<'a>(clinic: &'a ClinicView, intake: Option<&'a Intake>) -> BookingFacts<'a> {
        BookingFacts {
            clinic,
            modality: Modality::EsketamineNasalSpray,
            chair_modalities: Some(&[2]),
            provider_modalities: None,
            slot_start: datetime!(2027-01-06 14:00 UTC),
            slot_end: datetime!(2027-01-06 17:00 UTC),
            now: NOW,
            birth_date: date!(1980 - 05 - 01),
            intake,
            planned_dose_mg: 56,
            first_esketamine_session: true,
            course_dose_mg: None,
        }
    }

    fn rule_of(result: Result<Placement, Refusal>) -> Rule {
        result.unwrap_err().rule
    }

    #[test]
    fn an_eligible_booking_passes_every_gate() {
        let c = clinic(ClinicStatus::Active, Some(2027), 120);
        let i = intake(vec![trial(8), trial(6)], true);
        let p = check_booking(&facts(&c, Some(&i)), &DURATIONS, &RULES).unwrap();
        assert_eq!(p.visit_end - p.visit_start, Duration::minutes(135));
    }

    #[test]
    fn each_gate_refuses_with_its_own_rule() {
        let i = intake(vec![trial(8), trial(6)], true);
        let active = clinic(ClinicStatus::Active, Some(2027), 120);
        let suspended = clinic(ClinicStatus::Suspended, Some(2027), 120);
        assert_eq!(
            rule_of(check_booking(
                &facts(&suspended, Some(&i)),
                &DURATIONS,
                &RULES
            )),
            Rule::ClinicSuspended
        );
        let lapsed = clinic(ClinicStatus::Active, Some(2026), 120);
        assert_eq!(
            rule_of(check_booking(&facts(&lapsed, Some(&i)), &DURATIONS, &RULES)),
            Rule::RemsCertificationNotCurrent
        );
        let short = clinic(ClinicStatus::Active, Some(2027), 90);
        assert_eq!(
            rule_of(check_booking(&facts(&short, Some(&i)), &DURATIONS, &RULES)),
            Rule::MonitoringTooShort
        );
        let mut f = facts(&active, Some(&i));
        f.chair_modalities = Some(&[1]);
        assert_eq!(
            rule_of(check_booking(&f, &DURATIONS, &RULES)),
            Rule::ModalityNotSupported
        );
        let mut f = facts(&active, Some(&i));
        f.slot_end = f.slot_start + Duration::minutes(120);
        assert_eq!(
            rule_of(check_booking(&f, &DURATIONS, &RULES)),
            Rule::VisitDoesNotFit
        );
        let mut f = facts(&active, Some(&i));
        f.slot_start = NOW + Duration::minutes(30);
        f.slot_end = f.slot_start + Duration::hours(3);
        assert_eq!(
            rule_of(check_booking(&f, &DURATIONS, &RULES)),
            Rule::MinimumNotice
        );
        let mut f = facts(&active, Some(&i));
        f.slot_start = NOW + Duration::days(31);
        f.slot_end = f.slot_start + Duration::hours(3);
        assert_eq!(
            rule_of(check_booking(&f, &DURATIONS, &RULES)),
            Rule::BookingHorizon
        );
        assert_eq!(
            rule_of(check_booking(&facts(&active, None), &DURATIONS, &RULES)),
            Rule::IntakeMissing
        );
        let one_trial = intake(vec![trial(8), trial(4)], true);
        assert_eq!(
            rule_of(check_booking(
                &facts(&active, Some(&one_trial)),
                &DURATIONS,
                &RULES
            )),
            Rule::TrdCriteriaNotMet
        );
        let unattested = intake(vec![trial(8), trial(8)], false);
        assert_eq!(
            rule_of(check_booking(
                &facts(&active, Some(&unattested)),
                &DURATIONS,
                &RULES
            )),
            Rule::TrdCriteriaNotMet
        );
    }

    #[test]
    fn patients_65_and_over_start_esketamine_at_28_mg() {
        let c = clinic(ClinicStatus::Active, Some(2027), 120);
        let i = intake(vec![trial(8), trial(6)], true);
        let mut f = facts(&c, Some(&i));
        f.birth_date = date!(1962 - 01 - 06);
        assert_eq!(
            rule_of(check_booking(&f, &DURATIONS, &RULES)),
            Rule::DoseNotAllowed
        );
        f.planned_dose_mg = 28;
        assert!(check_booking(&f, &DURATIONS, &RULES).is_ok());
        f.planned_dose_mg = 56;
        f.first_esketamine_session = false;
        assert!(check_booking(&f, &DURATIONS, &RULES).is_ok());
        f.course_dose_mg = Some(28);
        assert_eq!(
            rule_of(check_booking(&f, &DURATIONS, &RULES)),
            Rule::DoseNotAllowed
        );
    }

    #[test]
    fn age_counts_whole_years() {
        assert_eq!(age_on(date!(1962 - 01 - 07), date!(2027 - 01 - 06)), 64);
        assert_eq!(age_on(date!(1962 - 01 - 06), date!(2027 - 01 - 06)), 65);
    }
}
