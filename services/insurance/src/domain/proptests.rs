//! Properties of claim code selection (esketamine by dose, IV infusion by minutes, psychotherapy
//! by session time) and of remittance balancing, each checked against an independent statement
//! of the rule.

use super::{
    coding::{BilledTo, CodingError, PlanRules, code_visit, service_of},
    remittance::{
        Adjustment, BilledLine, CONTRACTUAL_CARCS, ClaimPayment, LinePayment, check_balance,
        outcome,
    },
};
use clinicnet_proto::{
    common::v1::Modality,
    insurance::v1::{AdjustmentGroup, ClaimStatus},
};
use proptest::prelude::*;

fn any_rules() -> impl Strategy<Value = Option<PlanRules>> {
    proptest::option::of(
        (any::<bool>(), any::<bool>()).prop_map(|(drug, iv)| PlanRules {
            clinic_bills_drug: drug,
            iv_ketamine_covered: iv,
        }),
    )
}

/// Doses near the device multiples and anywhere else.
fn any_dose() -> impl Strategy<Value = i32> {
    prop_oneof![
        (-2i32..=12).prop_map(|d| d * 28),
        -100i32..=400,
        any::<i32>()
    ]
}

fn lines_of(
    modality: Modality,
    dose: i32,
    minutes: i32,
    rules: Option<PlanRules>,
) -> Vec<(String, i32)> {
    let service = service_of(modality, dose, minutes).unwrap();
    code_visit(service, rules)
        .lines
        .iter()
        .map(|l| (l.code.to_owned(), l.units))
        .collect()
}

/// Units of 96366: hour k (k ≥ 1) after the first counts once more than 30 of its minutes are used.
fn additional_hours_counted(minutes: i32) -> i32 {
    (1..=minutes / 60).filter(|k| minutes > 60 * k + 30).count() as i32
}

proptest! {
    /// For any dose, esketamine is codable iff the dose is a positive number of 28 mg devices, and
    /// then the session code is G2082 iff the dose is at most 56 mg, else G2083, with J0013 for
    /// every mg unless the pharmacy benefit pays the drug.
    #[test]
    fn esketamine_is_g2082_iff_the_dose_is_at_most_56_mg(
        dose in any_dose(), minutes in any::<i32>(), rules in any_rules(),
    ) {
        let codable = dose > 0 && dose % 28 == 0;
        match service_of(Modality::EsketamineNasalSpray, dose, minutes) {
            Err(error) => {
                prop_assert!(!codable);
                prop_assert_eq!(error, CodingError::EsketamineDose(dose));
            }
            Ok(_) => {
                prop_assert!(codable);
                let session = if dose <= 56 { "G2082" } else { "G2083" };
                let mut expected = vec![(session.to_owned(), 1)];
                if rules.is_none_or(|r| r.clinic_bills_drug) {
                    expected.push(("J0013".to_owned(), dose));
                }
                prop_assert_eq!(lines_of(Modality::EsketamineNasalSpray, dose, minutes, rules), expected);
            }
        }
    }

    /// For any infusion length, IV ketamine is codable iff it lasts more than 15 minutes, and then
    /// it is one 96365, one 96366 per additional hour of which more than 30 minutes were used, and
    /// one J3490; it goes to the plan only when the plan covers IV ketamine.
    #[test]
    fn iv_infusion_codes_follow_the_minutes(minutes in -30i32..=1_500, rules in any_rules()) {
        let Ok(service) = service_of(Modality::IvKetamine, 0, minutes) else {
            prop_assert!(minutes <= 15);
            return Ok(());
        };
        prop_assert!(minutes > 15);
        let mut expected = vec![("96365".to_owned(), 1)];
        let extra = additional_hours_counted(minutes);
        if extra > 0 {
            expected.push(("96366".to_owned(), extra));
        }
        expected.push(("J3490".to_owned(), 1));
        prop_assert_eq!(lines_of(Modality::IvKetamine, 0, minutes, rules), expected);
        let to_plan = rules.is_some_and(|r| r.iv_ketamine_covered);
        prop_assert_eq!(code_visit(service, rules).billed_to == BilledTo::Plan, to_plan);
    }

    /// For any session time, a talk session is codable from 16 minutes, coded by the CPT midpoint
    /// rule, and placed at place of service 02 with modifier 95 iff delivered by video.
    #[test]
    fn psychotherapy_codes_follow_session_time_and_place(
        minutes in -10i32..=300,
        modality in proptest::sample::select(vec![
            Modality::IntegrationTherapy, Modality::Psychotherapy, Modality::Telehealth,
        ]),
        rules in any_rules(),
    ) {
        let Ok(service) = service_of(modality, 0, minutes) else {
            prop_assert!(minutes < 16);
            return Ok(());
        };
        let code = match minutes {
            16..=37 => "90832",
            38..=52 => "90834",
            53.. => "90837",
            _ => return Err(TestCaseError::fail(format!("{minutes} minutes coded"))),
        };
        let coding = code_visit(service, rules);
        prop_assert_eq!(coding.lines.len(), 1);
        let line = &coding.lines[0];
        prop_assert_eq!(line.code, code);
        let video = modality == Modality::Telehealth;
        prop_assert_eq!(line.place_of_service, if video { "02" } else { "11" });
        prop_assert_eq!(line.modifiers.clone(), if video { vec!["95"] } else { vec![] });
    }

    /// Oral lozenges and an unset modality are never billable, whatever the dose and time.
    #[test]
    fn lozenges_are_never_billable(dose in any::<i32>(), minutes in any::<i32>()) {
        for modality in [Modality::OralKetamineLozenge, Modality::Unspecified] {
            prop_assert_eq!(service_of(modality, dose, minutes), Err(CodingError::NotBillable(modality)));
        }
    }
}

/// A change that may make a remittance disagree with its claim.
#[derive(Debug, Clone)]
enum Fault {
    PaidAmount(usize, i64),
    AdjustmentAmount(usize, i64),
    DroppedLine(usize),
    DuplicatedLine(usize),
    LineNotOnTheClaim,
    ProcedureCode(usize),
    LineCharge(usize, i64),
    ClaimCharge(i64),
    ClaimPaid(i64),
}

fn any_fault() -> impl Strategy<Value = Option<Fault>> {
    let line = 0usize..5;
    let delta = prop_oneof![-5_000i64..=-1, 1..=5_000i64];
    proptest::option::weighted(
        0.7,
        prop_oneof![
            (line.clone(), delta.clone()).prop_map(|(l, d)| Fault::PaidAmount(l, d)),
            (line.clone(), delta.clone()).prop_map(|(l, d)| Fault::AdjustmentAmount(l, d)),
            line.clone().prop_map(Fault::DroppedLine),
            line.clone().prop_map(Fault::DuplicatedLine),
            Just(Fault::LineNotOnTheClaim),
            line.clone().prop_map(Fault::ProcedureCode),
            (line, delta.clone()).prop_map(|(l, d)| Fault::LineCharge(l, d)),
            delta.clone().prop_map(Fault::ClaimCharge),
            delta.prop_map(Fault::ClaimPaid),
        ],
    )
}

fn any_adjustment() -> impl Strategy<Value = Adjustment> {
    (
        proptest::sample::select(vec![
            AdjustmentGroup::Co,
            AdjustmentGroup::Pr,
            AdjustmentGroup::Oa,
            AdjustmentGroup::Pi,
        ]),
        proptest::sample::select(vec!["1", "2", "3", "45", "50", "96", "197", "253"]),
        -2_000i64..=200_000,
    )
        .prop_map(|(group, code, amount_cents)| Adjustment {
            group,
            reason_code: code.to_owned(),
            amount_cents,
        })
}

/// A claim of one to five lines and the payment that balances it exactly.
fn any_balanced_remittance() -> impl Strategy<Value = (Vec<BilledLine>, ClaimPayment)> {
    proptest::collection::vec(
        (
            0i64..=300_000,
            proptest::collection::vec(any_adjustment(), 0..4),
        ),
        1..=5,
    )
    .prop_map(|lines| {
        let paid: Vec<LinePayment> = lines
            .into_iter()
            .zip(1..)
            .map(|((paid_cents, adjustments), line_number)| LinePayment {
                line_number,
                procedure_code: ["G2083", "J0013", "96365", "96366", "90837"]
                    [line_number as usize - 1]
                    .to_owned(),
                charge_cents: paid_cents + adjustments.iter().map(|a| a.amount_cents).sum::<i64>(),
                paid_cents,
                adjustments,
            })
            .collect();
        let billed = paid
            .iter()
            .map(|l| BilledLine {
                line_number: l.line_number,
                procedure_code: l.procedure_code.clone(),
                charge_cents: l.charge_cents,
            })
            .collect();
        let payment = ClaimPayment {
            charge_cents: paid.iter().map(|l| l.charge_cents).sum(),
            paid_cents: paid.iter().map(|l| l.paid_cents).sum(),
            lines: paid,
        };
        (billed, payment)
    })
}

fn inject(payment: &mut ClaimPayment, fault: Fault) {
    let n = payment.lines.len();
    match fault {
        Fault::PaidAmount(l, d) => payment.lines[l % n].paid_cents += d,
        Fault::AdjustmentAmount(l, d) => {
            if let Some(a) = payment.lines[l % n].adjustments.first_mut() {
                a.amount_cents += d;
            }
        }
        Fault::DroppedLine(l) => {
            payment.lines.remove(l % n);
        }
        Fault::DuplicatedLine(l) => payment.lines.push(payment.lines[l % n].clone()),
        Fault::LineNotOnTheClaim => {
            let mut extra = payment.lines[0].clone();
            extra.line_number = 99;
            payment.lines.push(extra);
        }
        Fault::ProcedureCode(l) => payment.lines[l % n].procedure_code = "99213".to_owned(),
        Fault::LineCharge(l, d) => payment.lines[l % n].charge_cents += d,
        Fault::ClaimCharge(d) => payment.charge_cents += d,
        Fault::ClaimPaid(d) => payment.paid_cents += d,
    }
}

/// The balance rule stated on its own: every billed line paid exactly once with its code and
/// charge, each line's charge equal to its payment plus its adjustments, and the claim's totals
/// equal to the sums of its lines and to the billed total.
fn balances(billed: &[BilledLine], payment: &ClaimPayment) -> bool {
    let mut numbers: Vec<i32> = payment.lines.iter().map(|l| l.line_number).collect();
    numbers.sort_unstable();
    let mut billed_numbers: Vec<i32> = billed.iter().map(|b| b.line_number).collect();
    billed_numbers.sort_unstable();
    let billed_total: i64 = billed.iter().map(|b| b.charge_cents).sum();
    numbers == billed_numbers
        && payment.lines.iter().all(|l| {
            let adjusted: i64 = l.adjustments.iter().map(|a| a.amount_cents).sum();
            billed.iter().any(|b| {
                b.line_number == l.line_number
                    && b.procedure_code == l.procedure_code
                    && b.charge_cents == l.charge_cents
            }) && l.charge_cents == l.paid_cents + adjusted
        })
        && payment.charge_cents == billed_total
        && payment.charge_cents == payment.lines.iter().map(|l| l.charge_cents).sum::<i64>()
        && payment.paid_cents == payment.lines.iter().map(|l| l.paid_cents).sum::<i64>()
}

proptest! {
    /// Any remittance, balanced or with one fault injected, passes the balance check iff the
    /// balance rule holds; when it passes, paid plus adjustments equals the charge for the claim
    /// and each line, and the patient owes exactly the PR adjustments.
    #[test]
    fn a_remittance_passes_iff_it_balances(
        (billed, balanced) in any_balanced_remittance(), fault in any_fault(),
    ) {
        let mut payment = balanced;
        if let Some(fault) = fault {
            inject(&mut payment, fault);
        }
        let billed_total: i64 = billed.iter().map(|b| b.charge_cents).sum();
        let checked = check_balance(billed_total, &billed, &payment);
        prop_assert_eq!(checked.is_ok(), balances(&billed, &payment), "{:?}", checked);
        if checked.is_ok() {
            let result = outcome(&payment);
            prop_assert_eq!(payment.paid_cents + result.adjusted_cents, payment.charge_cents);
            for line in &payment.lines {
                let adjusted: i64 = line.adjustments.iter().map(|a| a.amount_cents).sum();
                prop_assert_eq!(line.paid_cents + adjusted, line.charge_cents);
            }
            let owed: i64 = payment.lines.iter().flat_map(|l| &l.adjustments)
                .filter(|a| a.group == AdjustmentGroup::Pr).map(|a| a.amount_cents).sum();
            prop_assert_eq!(result.patient_responsibility_cents, owed);
        }
    }

    /// The order of the lines in a remittance changes neither its balance nor its outcome.
    #[test]
    fn line_order_does_not_matter(
        (billed, payment) in any_balanced_remittance(), rotation in 0usize..5,
    ) {
        let mut reordered = payment.clone();
        let n = reordered.lines.len();
        reordered.lines.rotate_left(rotation % n);
        reordered.lines.reverse();
        prop_assert_eq!(check_balance(payment.charge_cents, &billed, &reordered), Ok(()));
        prop_assert_eq!(outcome(&reordered), outcome(&payment));
    }

    /// A balanced remittance is PAID iff no positive adjustment outside patient responsibility and
    /// the contractual CARCs refuses payment; otherwise it is DENIED when nothing is paid and
    /// PARTIALLY_PAID when something is, naming exactly the refusing CARCs, sorted and distinct.
    #[test]
    fn the_outcome_names_exactly_the_refusing_adjustments((_, payment) in any_balanced_remittance()) {
        let mut refusing: Vec<String> = payment.lines.iter().flat_map(|l| &l.adjustments)
            .filter(|a| a.amount_cents > 0 && a.group != AdjustmentGroup::Pr
                && !CONTRACTUAL_CARCS.contains(&a.reason_code.as_str()))
            .map(|a| a.reason_code.clone())
            .collect();
        refusing.sort_unstable();
        refusing.dedup();
        let result = outcome(&payment);
        let status = match (refusing.is_empty(), payment.paid_cents > 0) {
            (true, _) => ClaimStatus::Paid,
            (false, true) => ClaimStatus::PartiallyPaid,
            (false, false) => ClaimStatus::Denied,
        };
        prop_assert_eq!(result.status, status);
        prop_assert_eq!(result.denial_reason_codes, refusing);
    }
}
