//! Code selection: which HCPCS/CPT codes, units, modifiers and place of service a fulfilled visit
//! is billed with, and whether to the patient's plan (a claim) or to the patient (a self-pay
//! superbill). Pure: the plan's rules and fee schedule come in as data.

use clinicnet_proto::common::v1::Modality;

/// Largest esketamine dose billed as G2082 ("up to 56 mg"); anything above is G2083.
pub const G2082_MAX_DOSE_MG: i32 = 56;
/// Milligrams in one esketamine nasal spray device.
pub const ESKETAMINE_DEVICE_MG: i32 = 28;
/// Longest infusion CPT still calls a push rather than an infusion (96365 needs more).
pub const MAX_PUSH_MINUTES: i32 = 15;
/// Minutes beyond a full additional hour that make that hour count (CPT "more than 30 minutes").
pub const ADDITIONAL_HOUR_THRESHOLD_MINUTES: i32 = 30;

/// What was done at a visit, as far as billing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Esketamine nasal spray session with its dose.
    Esketamine {
        /// Dose in whole milligrams (28, 56 or 84).
        dose_mg: i32,
    },
    /// IV ketamine infusion with its length.
    IvKetamine {
        /// Infusion length in minutes.
        infusion_minutes: i32,
    },
    /// Integration or psychotherapy session.
    Psychotherapy {
        /// Face-to-face minutes.
        minutes: i32,
        /// Delivered by video.
        telehealth: bool,
    },
}

/// Why a visit cannot be coded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodingError {
    /// The esketamine dose is not a positive multiple of one device.
    #[error("esketamine dose {0} mg is not a positive multiple of {ESKETAMINE_DEVICE_MG} mg")]
    EsketamineDose(i32),
    /// An infusion too short to be an infusion.
    #[error(
        "an infusion of {0} minutes is not billable as 96365 (more than {MAX_PUSH_MINUTES} needed)"
    )]
    InfusionTooShort(i32),
    /// A psychotherapy session shorter than the shortest code's time.
    #[error("a psychotherapy session of {0} minutes is shorter than 16 minutes")]
    SessionTooShort(i32),
    /// A modality with no billing code (e.g. oral lozenges).
    #[error("modality {0:?} has no billing code")]
    NotBillable(Modality),
}

/// The billing facts of a fulfilled visit.
pub fn service_of(
    modality: Modality,
    dose_mg: i32,
    treatment_minutes: i32,
) -> Result<Service, CodingError> {
    match modality {
        Modality::EsketamineNasalSpray => {
            if dose_mg <= 0 || dose_mg % ESKETAMINE_DEVICE_MG != 0 {
                return Err(CodingError::EsketamineDose(dose_mg));
            }
            Ok(Service::Esketamine { dose_mg })
        }
        Modality::IvKetamine => {
            if treatment_minutes <= MAX_PUSH_MINUTES {
                return Err(CodingError::InfusionTooShort(treatment_minutes));
            }
            Ok(Service::IvKetamine {
                infusion_minutes: treatment_minutes,
            })
        }
        Modality::IntegrationTherapy | Modality::Psychotherapy | Modality::Telehealth => {
            if treatment_minutes < 16 {
                return Err(CodingError::SessionTooShort(treatment_minutes));
            }
            Ok(Service::Psychotherapy {
                minutes: treatment_minutes,
                telehealth: modality == Modality::Telehealth,
            })
        }
        other => Err(CodingError::NotBillable(other)),
    }
}

/// The billing rules of the patient's plan that code selection needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanRules {
    /// The clinic bills the esketamine drug (J0013 per mg) to the plan.
    pub clinic_bills_drug: bool,
    /// The plan covers IV ketamine.
    pub iv_ketamine_covered: bool,
}

/// Who a visit is billed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BilledTo {
    /// The patient's plan: a claim.
    Plan,
    /// The patient: a self-pay superbill at cash prices.
    Patient,
}

/// One coded service line, before pricing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodedLine {
    /// HCPCS or CPT code.
    pub code: &'static str,
    /// Units (sessions, hours, or mg for J0013).
    pub units: i32,
    /// Modifiers.
    pub modifiers: Vec<&'static str>,
    /// CMS place of service.
    pub place_of_service: &'static str,
}

/// The coded visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coding {
    /// Who pays.
    pub billed_to: BilledTo,
    /// The lines in claim order.
    pub lines: Vec<CodedLine>,
}

const OFFICE: &str = "11";
const TELEHEALTH: &str = "02";

fn line(code: &'static str, units: i32) -> CodedLine {
    CodedLine {
        code,
        units,
        modifiers: Vec::new(),
        place_of_service: OFFICE,
    }
}

/// Units of 96366 ("each additional hour") for an infusion of `minutes`.
///
/// CPT counts infusion time by the "time is passed" rule: the first hour (96365) covers any
/// infusion of more than 15 minutes up to 90 minutes, and an additional hour is reported only when
/// more than 30 minutes of it is used — so 96366 starts at 91 minutes, a second unit at 151
/// minutes, and so on. A 61-minute or 90-minute infusion is still one 96365 alone: reporting an
/// hour for a few minutes past the first would overstate the service, which is what the rule
/// exists to prevent.
pub fn additional_infusion_hours(minutes: i32) -> i32 {
    let beyond_first = minutes - 60;
    if beyond_first <= 0 {
        return 0;
    }
    let full_hours = beyond_first / 60;
    let rest = beyond_first % 60;
    full_hours + i32::from(rest > ADDITIONAL_HOUR_THRESHOLD_MINUTES)
}

/// The psychotherapy code for a session of `minutes` (CPT midpoint rule: 90832 16–37 minutes,
/// 90834 38–52, 90837 53 and over).
pub fn psychotherapy_code(minutes: i32) -> &'static str {
    match minutes {
        ..=37 => "90832",
        38..=52 => "90834",
        _ => "90837",
    }
}

/// Codes `service` for a patient whose plan has `rules` (`None`: no active coverage, self-pay).
pub fn code_visit(service: Service, rules: Option<PlanRules>) -> Coding {
    match service {
        Service::Esketamine { dose_mg } => {
            let session = if dose_mg <= G2082_MAX_DOSE_MG {
                "G2082"
            } else {
                "G2083"
            };
            let mut lines = vec![line(session, 1)];
            // Self-pay patients buy the drug from the clinic, so the superbill shows it too.
            if rules.is_none_or(|r| r.clinic_bills_drug) {
                lines.push(line("J0013", dose_mg));
            }
            Coding {
                billed_to: billed_to(rules.is_some()),
                lines,
            }
        }
        Service::IvKetamine { infusion_minutes } => {
            let mut lines = vec![line("96365", 1)];
            let extra = additional_infusion_hours(infusion_minutes);
            if extra > 0 {
                lines.push(line("96366", extra));
            }
            lines.push(line("J3490", 1));
            Coding {
                billed_to: billed_to(rules.is_some_and(|r| r.iv_ketamine_covered)),
                lines,
            }
        }
        Service::Psychotherapy {
            minutes,
            telehealth,
        } => {
            let mut session = line(psychotherapy_code(minutes), 1);
            if telehealth {
                session.place_of_service = TELEHEALTH;
                session.modifiers.push("95");
            }
            Coding {
                billed_to: billed_to(rules.is_some()),
                lines: vec![session],
            }
        }
    }
}

fn billed_to(insured: bool) -> BilledTo {
    if insured {
        BilledTo::Plan
    } else {
        BilledTo::Patient
    }
}

/// A coded line with its charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    /// The coded line.
    pub line: CodedLine,
    /// Unit charge × units in cents; 0 when the fee schedule has no entry.
    pub charge_cents: i64,
    /// The fee schedule has no entry for the code on the service date.
    pub missing_fee: bool,
}

/// Prices `lines` with `unit_charge` (the fee schedule for the service date, in cents).
/// `None` when a charge would overflow.
pub fn price(
    lines: Vec<CodedLine>,
    unit_charge: impl Fn(&str) -> Option<i64>,
) -> Option<Vec<PricedLine>> {
    lines
        .into_iter()
        .map(|line| {
            let unit = unit_charge(line.code);
            let charge_cents = unit.unwrap_or(0).checked_mul(i64::from(line.units))?;
            Some(PricedLine {
                missing_fee: unit.is_none(),
                charge_cents,
                line,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BUY_AND_BILL: PlanRules = PlanRules {
        clinic_bills_drug: true,
        iv_ketamine_covered: false,
    };
    const PHARMACY_DRUG_IV_COVERED: PlanRules = PlanRules {
        clinic_bills_drug: false,
        iv_ketamine_covered: true,
    };

    fn codes(coding: &Coding) -> Vec<(&'static str, i32)> {
        coding.lines.iter().map(|l| (l.code, l.units)).collect()
    }

    #[test]
    fn esketamine_56_mg_is_g2082_plus_56_units_of_j0013_when_the_clinic_bills_the_drug() {
        let coding = code_visit(Service::Esketamine { dose_mg: 56 }, Some(BUY_AND_BILL));
        assert_eq!(coding.billed_to, BilledTo::Plan);
        assert_eq!(codes(&coding), vec![("G2082", 1), ("J0013", 56)]);
    }

    #[test]
    fn esketamine_84_mg_is_g2083() {
        let coding = code_visit(Service::Esketamine { dose_mg: 84 }, Some(BUY_AND_BILL));
        assert_eq!(codes(&coding), vec![("G2083", 1), ("J0013", 84)]);
    }

    #[test]
    fn esketamine_28_mg_is_g2082() {
        let coding = code_visit(Service::Esketamine { dose_mg: 28 }, Some(BUY_AND_BILL));
        assert_eq!(codes(&coding), vec![("G2082", 1), ("J0013", 28)]);
    }

    #[test]
    fn esketamine_drug_is_left_out_when_the_pharmacy_benefit_pays_it() {
        let coding = code_visit(
            Service::Esketamine { dose_mg: 84 },
            Some(PHARMACY_DRUG_IV_COVERED),
        );
        assert_eq!(codes(&coding), vec![("G2083", 1)]);
    }

    #[test]
    fn uninsured_esketamine_gets_a_superbill_with_the_drug() {
        let coding = code_visit(Service::Esketamine { dose_mg: 56 }, None);
        assert_eq!(coding.billed_to, BilledTo::Patient);
        assert_eq!(codes(&coding), vec![("G2082", 1), ("J0013", 56)]);
    }

    #[test]
    fn esketamine_dose_must_be_whole_devices() {
        for dose in [0, -28, 30, 57] {
            assert_eq!(
                service_of(Modality::EsketamineNasalSpray, dose, 0),
                Err(CodingError::EsketamineDose(dose))
            );
        }
        assert_eq!(
            service_of(Modality::EsketamineNasalSpray, 84, 0),
            Ok(Service::Esketamine { dose_mg: 84 })
        );
    }

    #[test]
    fn iv_infusion_of_40_minutes_is_96365_and_j3490_on_a_covering_plan() {
        let coding = code_visit(
            Service::IvKetamine {
                infusion_minutes: 40,
            },
            Some(PHARMACY_DRUG_IV_COVERED),
        );
        assert_eq!(coding.billed_to, BilledTo::Plan);
        assert_eq!(codes(&coding), vec![("96365", 1), ("J3490", 1)]);
    }

    #[test]
    fn iv_infusion_not_covered_becomes_a_superbill() {
        let coding = code_visit(
            Service::IvKetamine {
                infusion_minutes: 40,
            },
            Some(BUY_AND_BILL),
        );
        assert_eq!(coding.billed_to, BilledTo::Patient);
        assert_eq!(codes(&coding), vec![("96365", 1), ("J3490", 1)]);
    }

    #[test]
    fn additional_infusion_hour_needs_more_than_30_minutes_of_it() {
        for (minutes, units) in [
            (16, 0),
            (40, 0),
            (60, 0),
            (61, 0),
            (90, 0),
            (91, 1),
            (120, 1),
            (150, 1),
            (151, 2),
            (211, 3),
        ] {
            assert_eq!(additional_infusion_hours(minutes), units, "{minutes} min");
        }
        let coding = code_visit(
            Service::IvKetamine {
                infusion_minutes: 151,
            },
            Some(PHARMACY_DRUG_IV_COVERED),
        );
        assert_eq!(
            codes(&coding),
            vec![("96365", 1), ("96366", 2), ("J3490", 1)]
        );
    }

    #[test]
    fn infusion_of_15_minutes_or_less_is_not_an_infusion() {
        assert_eq!(
            service_of(Modality::IvKetamine, 0, 15),
            Err(CodingError::InfusionTooShort(15))
        );
        assert!(service_of(Modality::IvKetamine, 0, 16).is_ok());
    }

    #[test]
    fn psychotherapy_code_follows_session_time() {
        for (minutes, code) in [
            (16, "90832"),
            (37, "90832"),
            (38, "90834"),
            (52, "90834"),
            (53, "90837"),
            (60, "90837"),
        ] {
            assert_eq!(psychotherapy_code(minutes), code, "{minutes} min");
        }
        assert_eq!(
            service_of(Modality::IntegrationTherapy, 0, 15),
            Err(CodingError::SessionTooShort(15))
        );
    }

    #[test]
    fn telehealth_session_is_place_of_service_02_with_modifier_95() {
        let service = service_of(Modality::Telehealth, 0, 60).unwrap();
        let coding = code_visit(service, Some(BUY_AND_BILL));
        assert_eq!(
            coding.lines,
            vec![CodedLine {
                code: "90837",
                units: 1,
                modifiers: vec!["95"],
                place_of_service: "02"
            }]
        );
        let in_person = code_visit(
            service_of(Modality::IntegrationTherapy, 0, 60).unwrap(),
            Some(BUY_AND_BILL),
        );
        assert_eq!(in_person.lines[0].place_of_service, "11");
        assert!(in_person.lines[0].modifiers.is_empty());
    }

    #[test]
    fn lozenges_are_not_billable() {
        assert_eq!(
            service_of(Modality::OralKetamineLozenge, 100, 30),
            Err(CodingError::NotBillable(Modality::OralKetamineLozenge))
        );
    }

    #[test]
    fn pricing_multiplies_units_and_flags_missing_entries() {
        let coding = code_visit(Service::Esketamine { dose_mg: 84 }, Some(BUY_AND_BILL));
        let priced = price(coding.lines, |code| (code == "G2083").then_some(135_600)).unwrap();
        assert_eq!(priced[0].charge_cents, 135_600);
        assert!(!priced[0].missing_fee);
        assert_eq!(priced[1].charge_cents, 0);
        assert!(priced[1].missing_fee);
        assert_eq!(price(vec![line("J0013", 84)], |_| Some(i64::MAX)), None);
    }

    fn any_service() -> impl Strategy<Value = Service> {
        prop_oneof![
            (1..=10i32).prop_map(|devices| Service::Esketamine {
                dose_mg: devices * ESKETAMINE_DEVICE_MG
            }),
            (16..=600i32).prop_map(|infusion_minutes| Service::IvKetamine { infusion_minutes }),
            (16..=240i32, any::<bool>()).prop_map(|(minutes, telehealth)| Service::Psychotherapy {
                minutes,
                telehealth
            }),
        ]
    }

    fn any_rules() -> impl Strategy<Value = Option<PlanRules>> {
        proptest::option::of(
            (any::<bool>(), any::<bool>()).prop_map(|(d, iv)| PlanRules {
                clinic_bills_drug: d,
                iv_ketamine_covered: iv,
            }),
        )
    }

    proptest! {
        #[test]
        fn every_visit_has_positive_units_and_exactly_one_session_code(
            service in any_service(), rules in any_rules()
        ) {
            let coding = code_visit(service, rules);
            prop_assert!(coding.lines.iter().all(|l| l.units >= 1));
            let sessions = coding.lines.iter().filter(|l| matches!(
                l.code, "G2082" | "G2083" | "96365" | "90832" | "90834" | "90837")).count();
            prop_assert_eq!(sessions, 1);
            prop_assert!(coding.lines.iter().all(|l| l.modifiers.len() <= 4));
        }

        #[test]
        fn uninsured_visits_are_always_self_pay(service in any_service()) {
            prop_assert_eq!(code_visit(service, None).billed_to, BilledTo::Patient);
        }

        #[test]
        fn j0013_units_equal_the_dose(devices in 1..=10i32, rules in any_rules()) {
            let dose_mg = devices * ESKETAMINE_DEVICE_MG;
            let coding = code_visit(Service::Esketamine { dose_mg }, rules);
            let drug: Vec<i32> = coding.lines.iter().filter(|l| l.code == "J0013").map(|l| l.units).collect();
            let expected = if rules.is_none_or(|r| r.clinic_bills_drug) { vec![dose_mg] } else { vec![] };
            prop_assert_eq!(drug, expected);
        }

        #[test]
        fn additional_hours_grow_with_time_and_never_exceed_started_hours(a in 16..=1_000i32, b in 16..=1_000i32) {
            let (short, long) = (a.min(b), a.max(b));
            prop_assert!(additional_infusion_hours(short) <= additional_infusion_hours(long));
            prop_assert!(additional_infusion_hours(long) <= (long - 1) / 60);
        }

        #[test]
        fn a_line_charge_is_unit_charge_times_units(service in any_service(), unit in 0..=10_000_000i64) {
            let priced = price(code_visit(service, None).lines, |_| Some(unit)).unwrap();
            for line in priced {
                prop_assert_eq!(line.charge_cents, unit * i64::from(line.line.units));
                prop_assert!(line.charge_cents >= 0);
            }
        }
    }
}
