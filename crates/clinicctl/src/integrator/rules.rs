//! The simple rules an integrator answers its payer's work with — pure functions from a work
//! item to the answer, unit-tested. A rules file (TOML) sets them:
//!
//! ```toml
//! [eligibility]
//! active = true
//! copay = "30.00"
//! coinsurance_percent = 20
//! deductible_remaining = "0"
//! authorization_required_codes = ["G2082", "G2083"]
//!
//! [prior_authorization]        # approve when every criterion holds, else deny naming it
//! min_failed_trials = 2
//! min_distinct_classes = 2
//! min_trial_weeks = 6
//! min_baseline_phq9 = 16
//! min_age_years = 18
//! validity_days = 180
//! units = 0                    # 0: the units requested
//!
//! [claims]
//! accept = true
//! allowed_percent = 80         # of each line's charge; the rest is CO-45
//! coinsurance_percent = 20     # of the allowed amount, owed by the patient (PR-2)
//! deny_without_authorization = ["G2082", "G2083"]   # CO-197 when no authorization number
//! ```

use crate::args::parse_money;
use clinicnet_proto::common::v1::{Date, Money};
use clinicnet_proto::insurance::v1 as pb;
use serde::Deserialize;
use std::collections::BTreeSet;

/// The whole rules file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Eligibility answers.
    #[serde(default)]
    pub eligibility: EligibilityRules,
    /// Prior authorization decisions.
    #[serde(default)]
    pub prior_authorization: PaRules,
    /// Claim acknowledgement and payment.
    #[serde(default)]
    pub claims: ClaimRules,
}

/// How eligibility is answered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EligibilityRules {
    /// Coverage active.
    pub active: bool,
    /// Copay in dollars.
    pub copay: String,
    /// Coinsurance percent.
    pub coinsurance_percent: i32,
    /// Deductible remaining in dollars.
    pub deductible_remaining: String,
    /// Codes that need prior authorization.
    pub authorization_required_codes: Vec<String>,
}

impl Default for EligibilityRules {
    fn default() -> Self {
        EligibilityRules {
            active: true,
            copay: "0".into(),
            coinsurance_percent: 20,
            deductible_remaining: "0".into(),
            authorization_required_codes: vec!["G2082".into(), "G2083".into()],
        }
    }
}

/// How prior authorizations are decided.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaRules {
    /// Fewest failed trials.
    pub min_failed_trials: usize,
    /// Fewest distinct classes among them.
    pub min_distinct_classes: usize,
    /// Fewest weeks per counted trial.
    pub min_trial_weeks: i32,
    /// Lowest baseline PHQ-9.
    pub min_baseline_phq9: i32,
    /// Youngest age.
    pub min_age_years: i32,
    /// Days an approval lasts.
    pub validity_days: i64,
    /// Units approved (0: as requested).
    pub units: i32,
}

impl Default for PaRules {
    fn default() -> Self {
        PaRules {
            min_failed_trials: 2,
            min_distinct_classes: 2,
            min_trial_weeks: 6,
            min_baseline_phq9: 16,
            min_age_years: 18,
            validity_days: 180,
            units: 0,
        }
    }
}

/// How claims are acknowledged and paid.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimRules {
    /// Accept at the front end (else reject every claim).
    pub accept: bool,
    /// Allowed amount as a percent of the charge.
    pub allowed_percent: i64,
    /// Patient's coinsurance as a percent of the allowed amount.
    pub coinsurance_percent: i64,
    /// Codes denied with CARC 197 when the claim has no authorization number.
    pub deny_without_authorization: Vec<String>,
}

impl Default for ClaimRules {
    fn default() -> Self {
        ClaimRules {
            accept: true,
            allowed_percent: 80,
            coinsurance_percent: 20,
            deny_without_authorization: vec!["G2082".into(), "G2083".into()],
        }
    }
}

impl Rules {
    /// Reads and checks a rules file's text.
    pub fn parse(text: &str) -> Result<Rules, String> {
        let rules: Rules = toml::from_str(text).map_err(|e| e.to_string())?;
        parse_money(&rules.eligibility.copay).map_err(|e| format!("eligibility.copay: {e}"))?;
        parse_money(&rules.eligibility.deductible_remaining)
            .map_err(|e| format!("eligibility.deductible_remaining: {e}"))?;
        if !(0..=100).contains(&rules.claims.allowed_percent)
            || !(0..=100).contains(&rules.claims.coinsurance_percent)
            || !(0..=100).contains(&rules.eligibility.coinsurance_percent)
        {
            return Err("percentages must be 0-100".into());
        }
        Ok(rules)
    }
}

/// The 271 answer to an eligibility request.
pub fn eligibility_answer(
    rules: &EligibilityRules,
    check: &pb::EligibilityCheck,
) -> pb::EligibilityAnswer {
    pb::EligibilityAnswer {
        active: rules.active,
        copay: parse_money(&rules.copay).ok(),
        coinsurance_basis_points: rules.coinsurance_percent * 100,
        deductible_remaining: parse_money(&rules.deductible_remaining).ok(),
        prior_authorization_required: check
            .procedure_codes
            .iter()
            .any(|c| rules.authorization_required_codes.contains(c)),
        answer_time: Some(crate::commands::availability::now()),
    }
}

/// A prior authorization decision.
#[derive(Debug, Clone, PartialEq)]
pub enum PaDecision {
    /// Approved.
    Approve(pb::PriorAuthorizationApproval),
    /// Denied, with the first criterion not met.
    Deny(pb::PriorAuthorizationDenial),
}

/// Decides a request by the criteria; approvals run from `today` for the validity period.
pub fn decide(
    rules: &PaRules,
    pa: &pb::PriorAuthorization,
    today: jiff::civil::Date,
) -> PaDecision {
    let facts = pa.clinical_facts.clone().unwrap_or_default();
    let counted: Vec<_> = facts
        .failed_trials
        .iter()
        .filter(|t| {
            t.duration_weeks >= rules.min_trial_weeks && t.adequate_dose && t.current_episode
        })
        .collect();
    let classes: BTreeSet<i32> = counted.iter().map(|t| t.drug_class).collect();
    let deny = |reason: String| {
        PaDecision::Deny(pb::PriorAuthorizationDenial {
            reason_code: "50".into(),
            reason,
        })
    };
    if facts.patient_age_years < rules.min_age_years {
        return deny(format!("patient younger than {}", rules.min_age_years));
    }
    if counted.len() < rules.min_failed_trials {
        return deny(format!(
            "fewer than {} adequate antidepressant trials of at least {} weeks",
            rules.min_failed_trials, rules.min_trial_weeks
        ));
    }
    if classes.len() < rules.min_distinct_classes {
        return deny(format!(
            "fewer than {} antidepressant classes tried",
            rules.min_distinct_classes
        ));
    }
    if facts.baseline_phq9 < rules.min_baseline_phq9 {
        return deny(format!("baseline PHQ-9 below {}", rules.min_baseline_phq9));
    }
    let until = today
        .checked_add(jiff::Span::new().days(rules.validity_days.max(1) - 1))
        .unwrap_or(today);
    let units = if rules.units > 0 {
        rules.units
    } else {
        pa.services.iter().map(|s| s.units).sum::<i32>().max(1)
    };
    PaDecision::Approve(pb::PriorAuthorizationApproval {
        authorization_number: authorization_number(&pa.payer_id, &pa.prior_authorization_id),
        valid_from: Some(crate::args::date_to_proto(today)),
        valid_until: Some(crate::args::date_to_proto(until)),
        units_approved: units,
    })
}

/// A stable authorization number for a request (so a replayed decision is identical).
pub fn authorization_number(payer_id: &str, pa_id: &str) -> String {
    let prefix: String = payer_id
        .split('-')
        .filter_map(|w| w.chars().next())
        .collect::<String>()
        .to_ascii_uppercase();
    let tail: String = pa_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .rev()
        .take(10)
        .collect();
    format!(
        "{prefix}-{}",
        tail.chars().rev().collect::<String>().to_ascii_uppercase()
    )
}

/// The payer's claim control number for a claim.
pub fn claim_control_number(claim_id: &str) -> String {
    let digits: String = claim_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(20)
        .collect();
    format!("ICN{}", digits.to_ascii_uppercase())
}

fn usd(cents: i64) -> Money {
    Money {
        currency_code: "USD".into(),
        amount_cents: cents,
    }
}

fn cents(m: &Option<Money>) -> i64 {
    m.as_ref().map(|m| m.amount_cents).unwrap_or(0)
}

/// The remittance paying (or denying) one claim; every line balances:
/// charge = paid + CO-45 (above the allowed amount) + PR-2 (coinsurance), or charge = CO-197
/// when a line's code needs an authorization the claim does not carry.
pub fn remittance(
    rules: &ClaimRules,
    claim: &pb::Claim,
    remittance_id: &str,
    payment_date: Date,
) -> pb::Remittance {
    let no_auth = claim.authorization_number.is_empty();
    let mut lines = Vec::new();
    for line in &claim.lines {
        let charge = cents(&line.charge);
        let adjustment = |group: pb::AdjustmentGroup, code: &str, amount: i64| pb::Adjustment {
            group: group as i32,
            reason_code: code.into(),
            amount: Some(usd(amount)),
            remark_code: String::new(),
        };
        let (paid, adjustments) = if no_auth
            && rules
                .deny_without_authorization
                .contains(&line.procedure_code)
        {
            (0, vec![adjustment(pb::AdjustmentGroup::Co, "197", charge)])
        } else {
            let allowed = charge * rules.allowed_percent / 100;
            let patient = allowed * rules.coinsurance_percent / 100;
            let mut adjustments = Vec::new();
            if charge - allowed != 0 {
                adjustments.push(adjustment(pb::AdjustmentGroup::Co, "45", charge - allowed));
            }
            if patient != 0 {
                adjustments.push(adjustment(pb::AdjustmentGroup::Pr, "2", patient));
            }
            (allowed - patient, adjustments)
        };
        lines.push(pb::LinePayment {
            line_number: line.line_number,
            procedure_code: line.procedure_code.clone(),
            charge: Some(usd(charge)),
            paid_amount: Some(usd(paid)),
            adjustments,
        });
    }
    let paid: i64 = lines.iter().map(|l| cents(&l.paid_amount)).sum();
    let charge: i64 = lines.iter().map(|l| cents(&l.charge)).sum();
    pb::Remittance {
        remittance_id: remittance_id.to_owned(),
        payer_id: claim.payer_id.clone(),
        payment_date: Some(payment_date),
        total_paid: Some(usd(paid)),
        claim_payments: vec![pb::ClaimPayment {
            claim_id: claim.claim_id.clone(),
            payer_claim_control_number: claim_control_number(&claim.claim_id),
            charge: Some(usd(charge)),
            paid_amount: Some(usd(paid)),
            lines,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clinicnet_proto::common::v1::{AntidepressantClass, AntidepressantTrial};
    use proptest::prelude::*;

    fn trial(class: AntidepressantClass, weeks: i32) -> AntidepressantTrial {
        AntidepressantTrial {
            drug_class: class as i32,
            duration_weeks: weeks,
            adequate_dose: true,
            current_episode: true,
        }
    }

    fn pa(trials: Vec<AntidepressantTrial>, phq9: i32, age: i32) -> pb::PriorAuthorization {
        pb::PriorAuthorization {
            prior_authorization_id: "0196d7c2-9b1e-7cc3-a4f5-1b2c3d4e5f60".into(),
            payer_id: "florida-blue".into(),
            services: vec![pb::RequestedService {
                procedure_code: "G2082".into(),
                units: 8,
            }],
            clinical_facts: Some(pb::ClinicalFacts {
                failed_trials: trials,
                baseline_phq9: phq9,
                patient_age_years: age,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn today() -> jiff::civil::Date {
        jiff::civil::date(2026, 3, 10)
    }

    #[test]
    fn approves_treatment_resistant_depression_and_denies_naming_the_criterion() {
        let rules = PaRules::default();
        let good = pa(
            vec![
                trial(AntidepressantClass::Ssri, 8),
                trial(AntidepressantClass::Snri, 10),
            ],
            19,
            41,
        );
        let PaDecision::Approve(approval) = decide(&rules, &good, today()) else {
            panic!("denied")
        };
        assert_eq!(approval.units_approved, 8);
        assert_eq!(approval.authorization_number, "FB-2C3D4E5F60");
        assert_eq!(approval.valid_until.unwrap().month, 9);
        let same_class = pa(
            vec![
                trial(AntidepressantClass::Ssri, 8),
                trial(AntidepressantClass::Ssri, 10),
            ],
            19,
            41,
        );
        assert!(
            matches!(decide(&rules, &same_class, today()), PaDecision::Deny(d) if d.reason.contains("classes"))
        );
        let short = pa(
            vec![
                trial(AntidepressantClass::Ssri, 4),
                trial(AntidepressantClass::Snri, 10),
            ],
            19,
            41,
        );
        assert!(
            matches!(decide(&rules, &short, today()), PaDecision::Deny(d) if d.reason.contains("trials"))
        );
        let mild = pa(
            vec![
                trial(AntidepressantClass::Ssri, 8),
                trial(AntidepressantClass::Snri, 10),
            ],
            12,
            41,
        );
        assert!(
            matches!(decide(&rules, &mild, today()), PaDecision::Deny(d) if d.reason.contains("PHQ-9"))
        );
    }

    fn claim(lines: &[(&str, i64)], auth: &str) -> pb::Claim {
        pb::Claim {
            claim_id: "c-1".into(),
            payer_id: "florida-blue".into(),
            authorization_number: auth.into(),
            lines: lines
                .iter()
                .enumerate()
                .map(|(i, (code, charge))| pb::ServiceLine {
                    line_number: i as i32 + 1,
                    procedure_code: (*code).into(),
                    charge: Some(usd(*charge)),
                    units: 1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn balanced(r: &pb::Remittance) -> bool {
        r.claim_payments.iter().all(|p| {
            p.lines.iter().all(|l| {
                cents(&l.charge)
                    == cents(&l.paid_amount)
                        + l.adjustments.iter().map(|a| cents(&a.amount)).sum::<i64>()
            }) && cents(&p.paid_amount)
                == p.lines.iter().map(|l| cents(&l.paid_amount)).sum::<i64>()
        }) && cents(&r.total_paid)
            == r.claim_payments
                .iter()
                .map(|p| cents(&p.paid_amount))
                .sum::<i64>()
    }

    #[test]
    fn pays_allowed_minus_coinsurance_and_denies_missing_authorization_with_197() {
        let rules = ClaimRules::default();
        let paid = remittance(
            &rules,
            &claim(&[("G2082", 90651)], "FB-1"),
            "r1",
            Date {
                year: 2026,
                month: 3,
                day: 10,
            },
        );
        let line = &paid.claim_payments[0].lines[0];
        assert_eq!(cents(&line.paid_amount), 72520 - 14504);
        assert!(balanced(&paid));
        let denied = remittance(
            &rules,
            &claim(&[("G2082", 90651)], ""),
            "r2",
            Date {
                year: 2026,
                month: 3,
                day: 10,
            },
        );
        let line = &denied.claim_payments[0].lines[0];
        assert_eq!(cents(&line.paid_amount), 0);
        assert_eq!(line.adjustments[0].reason_code, "197");
        assert!(balanced(&denied));
    }

    #[test]
    fn the_rules_file_is_checked() {
        assert!(Rules::parse("[claims]\nallowed_percent = 80\n").is_ok());
        assert!(Rules::parse("[claims]\nallowed_percent = 180\n").is_err());
        assert!(Rules::parse("[eligibility]\ncopay = \"thirty\"\n").is_err());
        assert!(Rules::parse("[claimz]\n").is_err());
    }

    proptest! {
        /// Whatever the charges and percentages, every remittance balances to the cent.
        #[test]
        fn remittances_always_balance(
            charges in proptest::collection::vec(1i64..5_000_000, 1..6),
            allowed in 0i64..=100,
            coinsurance in 0i64..=100,
            with_auth in any::<bool>(),
        ) {
            let rules = ClaimRules { accept: true, allowed_percent: allowed, coinsurance_percent: coinsurance, deny_without_authorization: vec!["G2082".into()] };
            let lines: Vec<(&str, i64)> = charges.iter().enumerate().map(|(i, c)| (if i % 2 == 0 { "G2082" } else { "J0013" }, *c)).collect();
            let r = remittance(&rules, &claim(&lines, if with_auth { "A" } else { "" }), "r", Date { year: 2026, month: 1, day: 1 });
            prop_assert!(balanced(&r));
            for l in &r.claim_payments[0].lines {
                prop_assert!(cents(&l.paid_amount) >= 0);
            }
        }
    }
}
