//! `clinicctl payer` and `clinicctl plan`: payers and their plans with fee schedules and prior
//! authorization rules — data managed by ops (InsuranceService).

use crate::context::{Ctx, Page};
use crate::output::{Column, from_json_file};
use clap::Subcommand;
use clinicnet_proto::insurance::v1 as pb;
use std::path::PathBuf;

const PAYER_COLUMNS: &[Column] = &[
    ("PAYER", "payer_id"),
    ("NAME", "display_name"),
    ("EDI ID", "edi_payer_id"),
    ("VERSION", "version"),
];

const PLAN_COLUMNS: &[Column] = &[
    ("PLAN", "plan_id"),
    ("PAYER", "payer_id"),
    ("NAME", "display_name"),
    ("AUTH CODES", "codes_requiring_authorization"),
    ("IV COVERED", "iv_ketamine_covered"),
    ("VERSION", "version"),
];

/// Payers.
#[derive(Debug, Subcommand)]
pub enum PayerCmd {
    /// Create or replace a payer from a JSON file (a clinicnet.insurance.v1.Payer).
    #[command(
        after_help = "Example:\n  echo '{\"payer_id\":\"florida-blue\",\"display_name\":\"Florida Blue\"}' > payer.json\n  clinicctl payer upsert --file payer.json"
    )]
    Upsert {
        /// JSON file; payer_id names the payer, version is the expected version (0 creates).
        #[arg(long)]
        file: PathBuf,
    },
    /// Show one payer.
    #[command(after_help = "Example:\n  clinicctl payer get florida-blue")]
    Get {
        /// Payer id.
        payer_id: String,
    },
    /// List payers.
    #[command(after_help = "Example:\n  clinicctl payer list")]
    List {
        #[command(flatten)]
        page: Page,
    },
}

/// Plans.
#[derive(Debug, Subcommand)]
pub enum PlanCmd {
    /// Create or replace a plan from a JSON file (a clinicnet.insurance.v1.Plan).
    #[command(
        after_help = "Example:\n  clinicctl plan upsert --file crates/clinicctl/seed/miami/plans/florida-blue-ppo.json"
    )]
    Upsert {
        /// JSON file; plan_id names the plan, version is the expected version (0 creates).
        #[arg(long)]
        file: PathBuf,
    },
    /// Show one plan with its fee schedule.
    #[command(after_help = "Example:\n  clinicctl plan get florida-blue-ppo")]
    Get {
        /// Plan id.
        plan_id: String,
    },
    /// List plans, optionally of one payer.
    #[command(after_help = "Example:\n  clinicctl plan list --payer florida-blue")]
    List {
        /// Only plans of this payer.
        #[arg(long)]
        payer: Option<String>,
        #[command(flatten)]
        page: Page,
    },
}

/// Runs a payer command.
pub async fn run_payer(ctx: &Ctx, cmd: PayerCmd) -> anyhow::Result<()> {
    let mut client = ctx.conn.insurance()?;
    match cmd {
        PayerCmd::Upsert { file } => {
            let payer: pb::Payer = from_json_file(&file, "clinicnet.insurance.v1.Payer")?;
            let expected_version = payer.version;
            let response = client
                .upsert_payer(pb::UpsertPayerRequest {
                    request_id: ctx.request_id(),
                    payer: Some(payer),
                    expected_version,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.insurance.v1.UpsertPayerResponse",
                "payer",
            )
        }
        PayerCmd::Get { payer_id } => {
            let response = client
                .get_payer(pb::GetPayerRequest { payer_id })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.insurance.v1.GetPayerResponse",
                "payer",
            )
        }
        PayerCmd::List { page } => {
            let response = client
                .list_payers(pb::ListPayersRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                "clinicnet.insurance.v1.ListPayersResponse",
                "payers",
                PAYER_COLUMNS,
            )
        }
    }
}

/// Runs a plan command.
pub async fn run_plan(ctx: &Ctx, cmd: PlanCmd) -> anyhow::Result<()> {
    let mut client = ctx.conn.insurance()?;
    match cmd {
        PlanCmd::Upsert { file } => {
            let plan: pb::Plan = from_json_file(&file, "clinicnet.insurance.v1.Plan")?;
            let expected_version = plan.version;
            let response = client
                .upsert_plan(pb::UpsertPlanRequest {
                    request_id: ctx.request_id(),
                    plan: Some(plan),
                    expected_version,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.insurance.v1.UpsertPlanResponse",
                "plan",
            )
        }
        PlanCmd::Get { plan_id } => {
            let response = client
                .get_plan(pb::GetPlanRequest { plan_id })
                .await?
                .into_inner();
            ctx.out
                .object(&response, "clinicnet.insurance.v1.GetPlanResponse", "plan")
        }
        PlanCmd::List { payer, page } => {
            let response = client
                .list_plans(pb::ListPlansRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                    payer_id: payer.unwrap_or_default(),
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                "clinicnet.insurance.v1.ListPlansResponse",
                "plans",
                PLAN_COLUMNS,
            )
        }
    }
}
