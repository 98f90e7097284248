//! Turning a fulfilled visit into a draft claim or a self-pay superbill (codes from the coding
//! rules, charges from the fee schedule), and assessing a claim's issues before submission.

use crate::{
    convert,
    domain::{
        coding::{self, BilledTo, PlanRules, PricedLine, Service},
        eligibility,
        issues::{self, EligibilityFinding, LineFacts},
    },
    events::{self, Cause, Event},
    store,
};
use anyhow::Context;
use clinicnet_proto::{
    common::v1::Date,
    insurance::v1::{
        Claim, ClaimFrequency, ClaimIssue, ClaimStatus, Coverage, EligibilityStatus, Plan,
        ServiceLine, Superbill,
    },
};
use sqlx::PgConnection;

/// What billing needs of a fulfilled visit.
#[derive(Debug, Clone)]
pub struct Visit {
    /// The visit.
    pub appointment_id: String,
    /// Clinic that rendered it.
    pub clinic_id: String,
    /// The patient.
    pub patient_id: String,
    /// Local date of service.
    pub service_date: time::Date,
    /// Clinic's type 2 NPI.
    pub clinic_npi: String,
    /// Rendering provider's type 1 NPI.
    pub rendering_npi: String,
    /// ICD-10-CM codes, most relevant first.
    pub diagnosis_codes: Vec<String>,
    /// What was done.
    pub service: Service,
}

/// Most diagnosis pointers on one line (837P SV107).
const MAX_POINTERS: usize = 4;

/// The plan's rules for code selection.
pub fn rules(plan: &Plan) -> PlanRules {
    PlanRules {
        clinic_bills_drug: plan.clinic_bills_drug,
        iv_ketamine_covered: plan.iv_ketamine_covered,
    }
}

/// Service lines of priced codes, each pointing at the first (up to four) diagnoses.
pub fn service_lines(
    priced: &[PricedLine],
    diagnoses: usize,
    service_date: Date,
) -> Vec<ServiceLine> {
    let pointers: Vec<i32> =
        (1..=i32::try_from(diagnoses.min(MAX_POINTERS)).unwrap_or(0)).collect();
    priced
        .iter()
        .zip(1..)
        .map(|(p, line_number)| ServiceLine {
            line_number,
            procedure_code: p.line.code.to_owned(),
            modifiers: p.line.modifiers.iter().map(|m| (*m).to_owned()).collect(),
            units: p.line.units,
            charge: Some(convert::usd(p.charge_cents)),
            place_of_service: p.line.place_of_service.to_owned(),
            diagnosis_pointers: pointers.clone(),
            service_date: Some(service_date),
            ..Default::default()
        })
        .collect()
}

/// Sum of line charges.
pub fn total_charge(lines: &[ServiceLine]) -> i64 {
    lines
        .iter()
        .filter_map(|l| l.charge.as_ref())
        .map(|m| m.amount_cents)
        .sum()
}

/// Bills a fulfilled visit once: a draft claim to the patient's primary plan, or a superbill at
/// the self-pay cash prices. A visit already billed is left alone.
pub async fn bill_visit(
    conn: &mut PgConnection,
    visit: &Visit,
    cause: Cause<'_>,
) -> anyhow::Result<()> {
    let coverage =
        store::coverages::primary_on(conn, &visit.patient_id, visit.service_date).await?;
    let plan = match &coverage {
        Some(c) => Some(
            store::plans::get(conn, &c.plan_id)
                .await?
                .context("coverage names a missing plan")?,
        ),
        None => None,
    };
    let coding = coding::code_visit(visit.service, plan.as_ref().map(rules));
    match (coding.billed_to, coverage, plan) {
        (BilledTo::Plan, Some(coverage), Some(plan)) => {
            let claim = draft_claim(conn, visit, &coverage, &plan, coding.lines).await?;
            if store::claims::insert(conn, &claim).await? {
                events::publish(conn, Event::ClaimCreated(&claim), cause).await?;
                tracing::info!(claim_id = %claim.claim_id, appointment_id = %visit.appointment_id, "claim drafted");
            }
        }
        _ => {
            let cash = store::plans::self_pay(conn)
                .await?
                .context("no self-pay price list: ops must add a plan of the payer \"self-pay\"")?;
            let prices =
                store::plans::unit_charges(conn, &cash.plan_id, visit.service_date).await?;
            let priced = coding::price(coding.lines, |code| prices.get(code).copied())
                .context("charge overflow")?;
            let lines = service_lines(
                &priced,
                visit.diagnosis_codes.len(),
                convert::to_date(visit.service_date),
            );
            let superbill = Superbill {
                superbill_id: uuid::Uuid::now_v7().to_string(),
                appointment_id: visit.appointment_id.clone(),
                patient_id: visit.patient_id.clone(),
                clinic_id: visit.clinic_id.clone(),
                billing_provider_npi: visit.clinic_npi.clone(),
                rendering_provider_npi: visit.rendering_npi.clone(),
                diagnosis_codes: visit.diagnosis_codes.clone(),
                total_charge: Some(convert::usd(total_charge(&lines))),
                lines,
                service_date: Some(convert::to_date(visit.service_date)),
                issue_time: Some(convert::timestamp(convert::now())),
            };
            if store::superbills::insert(conn, &superbill).await? {
                events::publish(conn, Event::SuperbillIssued(&superbill), cause).await?;
                tracing::info!(superbill_id = %superbill.superbill_id, appointment_id = %visit.appointment_id, "superbill issued");
            }
        }
    }
    Ok(())
}

async fn draft_claim(
    conn: &mut PgConnection,
    visit: &Visit,
    coverage: &Coverage,
    plan: &Plan,
    coded: Vec<coding::CodedLine>,
) -> anyhow::Result<Claim> {
    let prices = store::plans::unit_charges(conn, &plan.plan_id, visit.service_date).await?;
    let priced =
        coding::price(coded, |code| prices.get(code).copied()).context("charge overflow")?;
    let lines = service_lines(
        &priced,
        visit.diagnosis_codes.len(),
        convert::to_date(visit.service_date),
    );
    let now = convert::timestamp(convert::now());
    let mut claim = Claim {
        claim_id: uuid::Uuid::now_v7().to_string(),
        status: ClaimStatus::Draft as i32,
        frequency: ClaimFrequency::Original as i32,
        clinic_id: visit.clinic_id.clone(),
        billing_provider_npi: visit.clinic_npi.clone(),
        rendering_provider_npi: visit.rendering_npi.clone(),
        patient_id: visit.patient_id.clone(),
        coverage_id: coverage.coverage_id.clone(),
        payer_id: coverage.payer_id.clone(),
        plan_id: plan.plan_id.clone(),
        appointment_id: visit.appointment_id.clone(),
        diagnosis_codes: visit.diagnosis_codes.clone(),
        total_charge: Some(convert::usd(total_charge(&lines))),
        lines,
        service_date: Some(convert::to_date(visit.service_date)),
        version: 1,
        create_time: Some(now),
        update_time: Some(now),
        ..Default::default()
    };
    assess(conn, &mut claim, plan, convert::today()).await?;
    Ok(claim)
}

/// Re-prices `lines` of a claim from its plan's fee schedule on the service date (a correction
/// keeps codes, units, modifiers and pointers; charges always come from the fee schedule).
pub async fn reprice(
    conn: &mut PgConnection,
    plan_id: &str,
    service_date: time::Date,
    lines: &mut [ServiceLine],
) -> Result<(), sqlx::Error> {
    let prices = store::plans::unit_charges(conn, plan_id, service_date).await?;
    for line in lines {
        let unit = prices.get(&line.procedure_code).copied().unwrap_or(0);
        let charge = unit.saturating_mul(i64::from(line.units));
        line.charge = Some(convert::usd(charge));
    }
    Ok(())
}

/// Recomputes the claim's issues and authorization number against today's facts: the plan's
/// rules and fee schedule, the patient's approvals, and the latest eligibility check.
pub async fn assess(
    conn: &mut PgConnection,
    claim: &mut Claim,
    plan: &Plan,
    today: time::Date,
) -> Result<(), sqlx::Error> {
    let Some(service_date) = claim.service_date.as_ref().and_then(convert::date) else {
        return Err(sqlx::Error::Protocol("claim without a service date".into()));
    };
    let prices = store::plans::unit_charges(conn, &plan.plan_id, service_date).await?;
    let approvals =
        store::authorizations::approvals(conn, &claim.patient_id, &claim.payer_id).await?;
    let eligibility =
        match store::eligibility::latest(conn, &claim.coverage_id, service_date).await? {
            None => EligibilityFinding::NotChecked,
            Some(check) => {
                let deadline = check.deadline.as_ref().and_then(convert::instant);
                let stored =
                    EligibilityStatus::try_from(check.status).unwrap_or(EligibilityStatus::Pending);
                match (check.answer, deadline) {
                    (Some(answer), _) if answer.active => EligibilityFinding::Active,
                    (Some(_), _) => EligibilityFinding::Inactive,
                    (None, Some(deadline))
                        if eligibility::effective_status(stored, deadline, convert::now())
                            == EligibilityStatus::Unknown =>
                    {
                        EligibilityFinding::Unknown
                    }
                    (None, _) => EligibilityFinding::NotChecked,
                }
            }
        };
    let lines: Vec<LineFacts> = claim
        .lines
        .iter()
        .map(|l| LineFacts {
            line_number: l.line_number,
            code: l.procedure_code.clone(),
            missing_fee: !prices.contains_key(&l.procedure_code),
        })
        .collect();
    let assessment = issues::assess(&issues::ClaimFacts {
        lines: &lines,
        service_date,
        codes_requiring_authorization: &plan.codes_requiring_authorization,
        approvals: &approvals,
        stated_authorization_number: &claim.authorization_number,
        eligibility,
        timely_filing_days: plan.timely_filing_days,
        today,
    });
    claim.issues = assessment
        .issues
        .into_iter()
        .map(|i| ClaimIssue {
            kind: i.kind as i32,
            line_number: i.line_number,
            message: i.message,
        })
        .collect();
    if let Some(number) = assessment.authorization_number {
        claim.authorization_number = number;
    }
    Ok(())
}
