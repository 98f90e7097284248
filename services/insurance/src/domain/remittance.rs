//! Remittance (835) rules: a claim payment must balance against the claim as billed (every line
//! once, same code and charge, charge = paid + adjustments), and its adjustments decide the
//! outcome (paid, partially paid, denied), the denial reason codes and what the patient owes.
//! Money is integer cents throughout.

use clinicnet_proto::insurance::v1::{AdjustmentGroup, ClaimStatus};
use std::collections::BTreeSet;

/// CARCs that are the contract working as agreed rather than a refusal to pay: 45 "charge
/// exceeds fee schedule/maximum allowable" and 253 "sequestration". A claim reduced only by
/// these and by patient responsibility is paid in full.
pub const CONTRACTUAL_CARCS: [&str; 2] = ["45", "253"];

/// One adjustment (CAS): group, reason code and amount in cents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// Group code.
    pub group: AdjustmentGroup,
    /// CARC.
    pub reason_code: String,
    /// Amount; positive reduces payment.
    pub amount_cents: i64,
}

/// A claim line as billed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BilledLine {
    /// Line number.
    pub line_number: i32,
    /// Procedure code.
    pub procedure_code: String,
    /// Charge.
    pub charge_cents: i64,
}

/// A line payment (SVC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePayment {
    /// Line number paid.
    pub line_number: i32,
    /// Code as billed.
    pub procedure_code: String,
    /// Charge as billed.
    pub charge_cents: i64,
    /// Paid.
    pub paid_cents: i64,
    /// Adjustments.
    pub adjustments: Vec<Adjustment>,
}

/// A claim payment (CLP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPayment {
    /// Total charge as billed.
    pub charge_cents: i64,
    /// Total paid.
    pub paid_cents: i64,
    /// Line payments.
    pub lines: Vec<LinePayment>,
}

/// Checks `payment` against the claim's `billed` lines and total; the error explains the first
/// mismatch without PHI (e.g. "line 2: 90000 != 85000 + 4000").
pub fn check_balance(
    billed_total_cents: i64,
    billed: &[BilledLine],
    payment: &ClaimPayment,
) -> Result<(), String> {
    if payment.charge_cents != billed_total_cents {
        return Err(format!(
            "claim charge {} != billed {}",
            payment.charge_cents, billed_total_cents
        ));
    }
    let mut seen = BTreeSet::new();
    let mut charges: i128 = 0;
    let mut paid: i128 = 0;
    for line in &payment.lines {
        if !seen.insert(line.line_number) {
            return Err(format!("line {} paid twice", line.line_number));
        }
        let Some(claim_line) = billed.iter().find(|b| b.line_number == line.line_number) else {
            return Err(format!("line {} is not on the claim", line.line_number));
        };
        if claim_line.procedure_code != line.procedure_code {
            return Err(format!(
                "line {}: code {} != billed {}",
                line.line_number, line.procedure_code, claim_line.procedure_code
            ));
        }
        if claim_line.charge_cents != line.charge_cents {
            return Err(format!(
                "line {}: charge {} != billed {}",
                line.line_number, line.charge_cents, claim_line.charge_cents
            ));
        }
        let adjusted: i128 = line
            .adjustments
            .iter()
            .map(|a| i128::from(a.amount_cents))
            .sum();
        if i128::from(line.charge_cents) != i128::from(line.paid_cents) + adjusted {
            return Err(format!(
                "line {}: {} != {} + {}",
                line.line_number, line.charge_cents, line.paid_cents, adjusted
            ));
        }
        charges += i128::from(line.charge_cents);
        paid += i128::from(line.paid_cents);
    }
    if let Some(missing) = billed.iter().find(|b| !seen.contains(&b.line_number)) {
        return Err(format!("line {} is not paid", missing.line_number));
    }
    if charges != i128::from(payment.charge_cents) {
        return Err(format!(
            "line charges {} != claim charge {}",
            charges, payment.charge_cents
        ));
    }
    if paid != i128::from(payment.paid_cents) {
        return Err(format!(
            "line payments {} != claim paid {}",
            paid, payment.paid_cents
        ));
    }
    Ok(())
}

/// What a balanced payment means for the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// PAID, PARTIALLY_PAID or DENIED.
    pub status: ClaimStatus,
    /// CARCs of the adjustments that refused payment, in code order; empty when paid in full.
    pub denial_reason_codes: Vec<String>,
    /// Sum of PR adjustments.
    pub patient_responsibility_cents: i64,
    /// Sum of all adjustments.
    pub adjusted_cents: i64,
}

fn refuses_payment(adjustment: &Adjustment) -> bool {
    adjustment.amount_cents > 0
        && adjustment.group != AdjustmentGroup::Pr
        && !CONTRACTUAL_CARCS.contains(&adjustment.reason_code.as_str())
}

/// The outcome of a balanced `payment`: DENIED when nothing is paid and some adjustment refuses
/// payment; PARTIALLY_PAID when something is paid and some adjustment refuses payment; PAID
/// otherwise (reduced at most by contractual write-offs and patient responsibility — a claim
/// applied wholly to the deductible is paid, by the patient).
pub fn outcome(payment: &ClaimPayment) -> Outcome {
    let adjustments = || payment.lines.iter().flat_map(|l| l.adjustments.iter());
    let denial_reason_codes: Vec<String> = adjustments()
        .filter(|a| refuses_payment(a))
        .map(|a| a.reason_code.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let status = match (payment.paid_cents > 0, denial_reason_codes.is_empty()) {
        (_, true) => ClaimStatus::Paid,
        (true, false) => ClaimStatus::PartiallyPaid,
        (false, false) => ClaimStatus::Denied,
    };
    Outcome {
        status,
        patient_responsibility_cents: adjustments()
            .filter(|a| a.group == AdjustmentGroup::Pr)
            .map(|a| a.amount_cents)
            .sum(),
        adjusted_cents: adjustments().map(|a| a.amount_cents).sum(),
        denial_reason_codes: if status == ClaimStatus::Paid {
            Vec::new()
        } else {
            denial_reason_codes
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn adj(group: AdjustmentGroup, code: &str, amount_cents: i64) -> Adjustment {
        Adjustment {
            group,
            reason_code: code.into(),
            amount_cents,
        }
    }

    fn billed() -> Vec<BilledLine> {
        vec![
            BilledLine {
                line_number: 1,
                procedure_code: "G2083".into(),
                charge_cents: 90_000,
            },
            BilledLine {
                line_number: 2,
                procedure_code: "J0013".into(),
                charge_cents: 10_000,
            },
        ]
    }

    fn pay(line1: (i64, Vec<Adjustment>), line2: (i64, Vec<Adjustment>)) -> ClaimPayment {
        ClaimPayment {
            charge_cents: 100_000,
            paid_cents: line1.0 + line2.0,
            lines: vec![
                LinePayment {
                    line_number: 1,
                    procedure_code: "G2083".into(),
                    charge_cents: 90_000,
                    paid_cents: line1.0,
                    adjustments: line1.1,
                },
                LinePayment {
                    line_number: 2,
                    procedure_code: "J0013".into(),
                    charge_cents: 10_000,
                    paid_cents: line2.0,
                    adjustments: line2.1,
                },
            ],
        }
    }

    #[test]
    fn balanced_payment_with_contractual_write_off_and_coinsurance_is_paid() {
        let payment = pay(
            (
                70_000,
                vec![
                    adj(AdjustmentGroup::Co, "45", 15_000),
                    adj(AdjustmentGroup::Pr, "2", 5_000),
                ],
            ),
            (10_000, vec![]),
        );
        assert_eq!(check_balance(100_000, &billed(), &payment), Ok(()));
        let outcome = outcome(&payment);
        assert_eq!(outcome.status, ClaimStatus::Paid);
        assert_eq!(outcome.patient_responsibility_cents, 5_000);
        assert_eq!(outcome.adjusted_cents, 20_000);
        assert!(outcome.denial_reason_codes.is_empty());
    }

    #[test]
    fn an_unbalanced_line_names_its_amounts() {
        let payment = pay(
            (85_000, vec![adj(AdjustmentGroup::Co, "45", 4_000)]),
            (10_000, vec![]),
        );
        assert_eq!(
            check_balance(100_000, &billed(), &payment),
            Err("line 1: 90000 != 85000 + 4000".into())
        );
    }

    #[test]
    fn every_line_must_appear_once_with_its_billed_code_and_charge() {
        let mut payment = pay((90_000, vec![]), (10_000, vec![]));
        payment.lines.pop();
        payment.charge_cents = 100_000;
        payment.paid_cents = 90_000;
        assert_eq!(
            check_balance(100_000, &billed(), &payment),
            Err("line 2 is not paid".into())
        );
        let mut twice = pay((90_000, vec![]), (10_000, vec![]));
        twice.lines[1].line_number = 1;
        assert!(check_balance(100_000, &billed(), &twice).is_err());
        let mut wrong_code = pay((90_000, vec![]), (10_000, vec![]));
        wrong_code.lines[0].procedure_code = "G2082".into();
        assert!(check_balance(100_000, &billed(), &wrong_code).is_err());
        let wrong_total = pay((90_000, vec![]), (10_000, vec![]));
        assert!(check_balance(99_999, &billed(), &wrong_total).is_err());
        let mut wrong_paid = pay((90_000, vec![]), (10_000, vec![]));
        wrong_paid.paid_cents -= 1;
        assert!(check_balance(100_000, &billed(), &wrong_paid).is_err());
    }

    #[test]
    fn a_denied_line_makes_a_partial_payment() {
        let payment = pay(
            (90_000, vec![]),
            (0, vec![adj(AdjustmentGroup::Co, "96", 10_000)]),
        );
        let outcome = outcome(&payment);
        assert_eq!(outcome.status, ClaimStatus::PartiallyPaid);
        assert_eq!(outcome.denial_reason_codes, vec!["96".to_string()]);
    }

    #[test]
    fn nothing_paid_for_want_of_authorization_is_a_denial_with_carc_197() {
        let payment = pay(
            (0, vec![adj(AdjustmentGroup::Co, "197", 90_000)]),
            (0, vec![adj(AdjustmentGroup::Co, "197", 10_000)]),
        );
        let outcome = outcome(&payment);
        assert_eq!(outcome.status, ClaimStatus::Denied);
        assert_eq!(outcome.denial_reason_codes, vec!["197".to_string()]);
        assert_eq!(outcome.patient_responsibility_cents, 0);
    }

    #[test]
    fn a_claim_applied_wholly_to_the_deductible_is_paid_by_the_patient() {
        let payment = pay(
            (0, vec![adj(AdjustmentGroup::Pr, "1", 90_000)]),
            (0, vec![adj(AdjustmentGroup::Pr, "1", 10_000)]),
        );
        let outcome = outcome(&payment);
        assert_eq!(outcome.status, ClaimStatus::Paid);
        assert_eq!(outcome.patient_responsibility_cents, 100_000);
    }

    fn any_group() -> impl Strategy<Value = AdjustmentGroup> {
        prop_oneof![
            Just(AdjustmentGroup::Co),
            Just(AdjustmentGroup::Pr),
            Just(AdjustmentGroup::Oa),
            Just(AdjustmentGroup::Pi),
        ]
    }

    fn any_line(line_number: i32) -> impl Strategy<Value = LinePayment> {
        (
            0..=1_000_000i64,
            proptest::collection::vec(
                (
                    any_group(),
                    prop_oneof![Just("1"), Just("2"), Just("45"), Just("197"), Just("50")],
                    0..=100_000i64,
                ),
                0..4,
            ),
        )
            .prop_map(move |(paid, adjustments)| {
                let adjustments: Vec<Adjustment> = adjustments
                    .into_iter()
                    .map(|(g, c, a)| adj(g, c, a))
                    .collect();
                let charge = paid + adjustments.iter().map(|a| a.amount_cents).sum::<i64>();
                LinePayment {
                    line_number,
                    procedure_code: format!("C{line_number}"),
                    charge_cents: charge,
                    paid_cents: paid,
                    adjustments,
                }
            })
    }

    fn any_payment() -> impl Strategy<Value = ClaimPayment> {
        (1..=4i32)
            .prop_flat_map(|n| (1..=n).map(any_line).collect::<Vec<_>>())
            .prop_map(|lines| ClaimPayment {
                charge_cents: lines.iter().map(|l| l.charge_cents).sum(),
                paid_cents: lines.iter().map(|l| l.paid_cents).sum(),
                lines,
            })
    }

    fn billed_of(payment: &ClaimPayment) -> Vec<BilledLine> {
        payment
            .lines
            .iter()
            .map(|l| BilledLine {
                line_number: l.line_number,
                procedure_code: l.procedure_code.clone(),
                charge_cents: l.charge_cents,
            })
            .collect()
    }

    proptest! {
        #[test]
        fn balanced_payments_pass_and_money_is_conserved(payment in any_payment()) {
            prop_assert_eq!(check_balance(payment.charge_cents, &billed_of(&payment), &payment), Ok(()));
            let outcome = outcome(&payment);
            prop_assert_eq!(payment.charge_cents, payment.paid_cents + outcome.adjusted_cents);
            let pr: i64 = payment.lines.iter().flat_map(|l| &l.adjustments)
                .filter(|a| a.group == AdjustmentGroup::Pr).map(|a| a.amount_cents).sum();
            prop_assert_eq!(outcome.patient_responsibility_cents, pr);
            prop_assert_eq!(outcome.status == ClaimStatus::Paid, outcome.denial_reason_codes.is_empty());
        }

        #[test]
        fn any_change_to_a_paid_amount_unbalances(payment in any_payment(), line in 0usize..4, delta in prop_oneof![-1_000i64..=-1, 1..=1_000i64]) {
            let billed = billed_of(&payment);
            let mut changed = payment.clone();
            let index = line % changed.lines.len();
            changed.lines[index].paid_cents += delta;
            changed.paid_cents += delta;
            prop_assert!(check_balance(payment.charge_cents, &billed, &changed).is_err());
        }
    }
}
