//! `clinicctl coverage` and `clinicctl eligibility`: patients' insurance coverage and
//! eligibility checks (InsuranceService), plus answering a check by hand as the payer's
//! integrator (IntegratorService).

use crate::args::{enum_value, parse_date, parse_money};
use crate::context::{Ctx, Page};
use crate::output::Column;
use clap::Subcommand;
use clinicnet_proto::common::v1::{Date, Money};
use clinicnet_proto::insurance::v1 as pb;

const COVERAGE_COLUMNS: &[Column] = &[
    ("COVERAGE", "coverage_id"),
    ("PAYER", "payer_id"),
    ("PLAN", "plan_id"),
    ("PRIORITY", "priority"),
    ("FROM", "effective_from"),
    ("UNTIL", "effective_until"),
    ("STATUS", "status"),
];

/// Coverage.
#[derive(Debug, Subcommand)]
pub enum CoverageCmd {
    /// Add a coverage to a patient.
    #[command(
        after_help = "Example:\n  clinicctl coverage add --patient $PATIENT --payer florida-blue --plan florida-blue-ppo \\\n    --member-id XJH123456789 --from 2026-01-01"
    )]
    Add {
        /// Patient id.
        #[arg(long)]
        patient: String,
        /// Payer id.
        #[arg(long)]
        payer: String,
        /// Plan id.
        #[arg(long)]
        plan: String,
        /// Member id on the card.
        #[arg(long)]
        member_id: String,
        /// Group number.
        #[arg(long, default_value = "")]
        group: String,
        /// First day of coverage (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date)]
        from: Date,
        /// Last day of coverage (open-ended when absent).
        #[arg(long, value_parser = parse_date)]
        until: Option<Date>,
        /// primary, secondary or tertiary.
        #[arg(long, default_value = "primary", value_parser = |s: &str| enum_value("clinicnet.insurance.v1.CoveragePriority", s))]
        priority: i32,
        /// The patient's relationship to the subscriber: self, spouse, child, other.
        #[arg(long, default_value = "self", value_parser = |s: &str| enum_value("clinicnet.insurance.v1.SubscriberRelationship", s))]
        relationship: i32,
    },
    /// Remove a coverage (kept for its claims).
    #[command(after_help = "Example:\n  clinicctl coverage remove $COVERAGE")]
    Remove {
        /// Coverage id.
        coverage_id: String,
    },
    /// List a patient's coverages.
    #[command(after_help = "Example:\n  clinicctl coverage list --patient $PATIENT")]
    List {
        /// Patient id.
        #[arg(long)]
        patient: String,
        /// Include removed coverages.
        #[arg(long)]
        include_removed: bool,
        #[command(flatten)]
        page: Page,
    },
}

/// Eligibility.
#[derive(Debug, Subcommand)]
pub enum EligibilityCmd {
    /// Ask whether a coverage is active on a service date (PENDING until the payer answers).
    #[command(
        after_help = "Example:\n  clinicctl eligibility check --coverage $COVERAGE --date 2026-03-10 --code G2082"
    )]
    Check {
        /// Coverage id.
        #[arg(long)]
        coverage: String,
        /// Date of service.
        #[arg(long, value_parser = parse_date)]
        date: Date,
        /// Procedure code to ask about (repeat).
        #[arg(long = "code")]
        codes: Vec<String>,
        /// Ask the payer even when a fresh cached answer exists.
        #[arg(long)]
        bypass_cache: bool,
    },
    /// Show one eligibility check (poll until not pending).
    #[command(after_help = "Example:\n  clinicctl eligibility get $CHECK")]
    Get {
        /// Check id.
        check_id: String,
    },
    /// Answer an eligibility request as the payer's integrator (271).
    #[command(
        after_help = "Example:\n  clinicctl eligibility answer $TRACE_NUMBER --active --copay 30 --coinsurance-percent 20 --auth-required"
    )]
    Answer {
        /// Trace number of the request.
        trace_number: String,
        /// Coverage is active on the date.
        #[arg(long)]
        active: bool,
        /// Copay per visit in dollars.
        #[arg(long, value_parser = parse_money)]
        copay: Option<Money>,
        /// Coinsurance in whole percent.
        #[arg(long, default_value_t = 0)]
        coinsurance_percent: i32,
        /// Deductible remaining in dollars.
        #[arg(long, value_parser = parse_money)]
        deductible: Option<Money>,
        /// The services need prior authorization.
        #[arg(long)]
        auth_required: bool,
    },
}

/// Runs a coverage command.
pub async fn run(ctx: &Ctx, cmd: CoverageCmd) -> anyhow::Result<()> {
    let mut client = ctx.conn.insurance()?;
    match cmd {
        CoverageCmd::Add {
            patient,
            payer,
            plan,
            member_id,
            group,
            from,
            until,
            priority,
            relationship,
        } => {
            let response = client
                .add_coverage(pb::AddCoverageRequest {
                    request_id: ctx.request_id(),
                    coverage: Some(pb::Coverage {
                        patient_id: patient,
                        payer_id: payer,
                        plan_id: plan,
                        member_id,
                        group_number: group,
                        relationship,
                        effective_from: Some(from),
                        effective_until: until,
                        priority,
                        ..Default::default()
                    }),
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.insurance.v1.AddCoverageResponse",
                "coverage",
            )
        }
        CoverageCmd::Remove { coverage_id } => {
            let response = client
                .remove_coverage(pb::RemoveCoverageRequest {
                    request_id: ctx.request_id(),
                    coverage_id,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.insurance.v1.RemoveCoverageResponse",
                "coverage",
            )
        }
        CoverageCmd::List {
            patient,
            include_removed,
            page,
        } => {
            let response = client
                .list_coverages(pb::ListCoveragesRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                    patient_id: patient,
                    include_removed,
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                "clinicnet.insurance.v1.ListCoveragesResponse",
                "coverages",
                COVERAGE_COLUMNS,
            )
        }
    }
}

/// Runs an eligibility command.
pub async fn run_eligibility(ctx: &Ctx, cmd: EligibilityCmd) -> anyhow::Result<()> {
    match cmd {
        EligibilityCmd::Check {
            coverage,
            date,
            codes,
            bypass_cache,
        } => {
            let response = ctx
                .conn
                .insurance()?
                .check_eligibility(pb::CheckEligibilityRequest {
                    request_id: ctx.request_id(),
                    coverage_id: coverage,
                    service_date: Some(date),
                    procedure_codes: codes,
                    bypass_cache,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.insurance.v1.CheckEligibilityResponse",
                "check",
            )
        }
        EligibilityCmd::Get { check_id } => {
            let response = ctx
                .conn
                .insurance()?
                .get_eligibility_check(pb::GetEligibilityCheckRequest { check_id })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.insurance.v1.GetEligibilityCheckResponse",
                "check",
            )
        }
        EligibilityCmd::Answer {
            trace_number,
            active,
            copay,
            coinsurance_percent,
            deductible,
            auth_required,
        } => {
            let response = ctx
                .conn
                .integrator()?
                .answer_eligibility(pb::AnswerEligibilityRequest {
                    request_id: ctx.request_id(),
                    trace_number,
                    answer: Some(pb::EligibilityAnswer {
                        active,
                        copay,
                        coinsurance_basis_points: coinsurance_percent * 100,
                        deductible_remaining: deductible,
                        prior_authorization_required: auth_required,
                        answer_time: Some(crate::commands::availability::now()),
                    }),
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.insurance.v1.AnswerEligibilityResponse",
                "check",
            )
        }
    }
}
