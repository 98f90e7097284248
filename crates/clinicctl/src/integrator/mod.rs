//! `clinicctl integrator`: an insurance integrator's side of clinicnet. `work` shows the payer's
//! work stream; `serve` answers it by simple rules (eligibility, prior authorization, claims
//! with their remittances) — an integrator's starting point and the demo's payer. It resumes
//! from its cursor after a dropped stream, and every answer's idempotency key is derived from
//! the work item, so answering an item twice has no second effect.

pub mod rules;

use crate::commands::claim::post_remittances;
use crate::context::Ctx;
use crate::exit;
use crate::output::{Table, print_json};
use clap::Subcommand;
use clinicnet_proto::insurance::v1 as pb;
use rules::{PaDecision, Rules};
use std::path::PathBuf;
use std::time::Duration;
use tokio_stream::StreamExt as _;

/// The integrator's commands.
#[derive(Debug, Subcommand)]
pub enum IntegratorCmd {
    /// Answer the payer's work stream by the rules in FILE, until interrupted.
    #[command(
        after_help = "Example:\n  export CLINICNET_TOKEN=$(clinicctl token mint --role integrator --payer florida-blue)\n  clinicctl integrator serve --payer florida-blue --rules crates/clinicctl/seed/miami/integrator-rules.toml"
    )]
    Serve {
        /// Payer whose work to answer (the token's payer).
        #[arg(long)]
        payer: String,
        /// Rules file (TOML; default: the demo payer's rules, seed/miami/integrator-rules.toml).
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Keep the cursor in this file, to resume after a restart.
        #[arg(long)]
        cursor_file: Option<PathBuf>,
    },
    /// Show the payer's work items.
    #[command(
        after_help = "Example:\n  clinicctl integrator work --payer florida-blue\n  clinicctl integrator work --payer florida-blue --follow -o json"
    )]
    Work {
        /// Payer whose work to show.
        #[arg(long)]
        payer: String,
        /// Start after this cursor.
        #[arg(long, default_value = "")]
        cursor: String,
        /// Keep printing new work (otherwise stop after 2 quiet seconds).
        #[arg(long)]
        follow: bool,
    },
}

/// Runs an integrator command.
pub async fn run(ctx: &Ctx, cmd: IntegratorCmd) -> anyhow::Result<()> {
    match cmd {
        IntegratorCmd::Serve {
            payer,
            rules,
            cursor_file,
        } => {
            let rules = match rules {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| exit::usage(format!("cannot read {}: {e}", path.display())))?;
                    Rules::parse(&text)
                        .map_err(|e| exit::usage(format!("{}: {e}", path.display())))?
                }
                None => Rules::parse(crate::seed::INTEGRATOR_RULES).map_err(exit::usage)?,
            };
            serve(ctx, &payer, &rules, cursor_file).await
        }
        IntegratorCmd::Work {
            payer,
            cursor,
            follow,
        } => work(ctx, &payer, cursor, follow).await,
    }
}

fn kind_of(item: &pb::WorkItem) -> (&'static str, String, String) {
    match &item.item {
        Some(pb::work_item::Item::EligibilityRequest(e)) => {
            let check = e.check.clone().unwrap_or_default();
            (
                "eligibility",
                check.trace_number,
                check.procedure_codes.join(","),
            )
        }
        Some(pb::work_item::Item::PriorAuthorizationRequest(p)) => {
            let pa = p.prior_authorization.clone().unwrap_or_default();
            let status = pb::PriorAuthorizationStatus::try_from(pa.status)
                .map(|s| {
                    s.as_str_name()
                        .trim_start_matches("PRIOR_AUTHORIZATION_STATUS_")
                        .to_ascii_lowercase()
                })
                .unwrap_or_default();
            ("prior-authorization", pa.prior_authorization_id, status)
        }
        Some(pb::work_item::Item::Claim(c)) => {
            let claim = c.claim.clone().unwrap_or_default();
            let status = pb::ClaimStatus::try_from(claim.status)
                .map(|s| {
                    s.as_str_name()
                        .trim_start_matches("CLAIM_STATUS_")
                        .to_ascii_lowercase()
                })
                .unwrap_or_default();
            ("claim", claim.claim_id, status)
        }
        None => ("unknown", String::new(), String::new()),
    }
}

async fn work(ctx: &Ctx, payer: &str, cursor: String, follow: bool) -> anyhow::Result<()> {
    let mut stream = ctx
        .conn
        .integrator()?
        .stream_work(pb::StreamWorkRequest {
            payer_id: payer.to_owned(),
            cursor,
        })
        .await?
        .into_inner();
    let mut table = Table::new(vec!["CURSOR", "KIND", "ID", "DETAIL", "ENQUEUED"]);
    let mut items = Vec::new();
    loop {
        let next = if follow {
            stream.next().await
        } else {
            tokio::time::timeout(Duration::from_secs(2), stream.next())
                .await
                .unwrap_or_default()
        };
        let Some(message) = next else { break };
        let item = message?.item.unwrap_or_default();
        if ctx.out.json() {
            let json = crate::output::to_json(&item, "clinicnet.insurance.v1.WorkItem")?;
            if follow {
                // One compact JSON document per line while following.
                println!("{json}");
            } else {
                items.push(json);
            }
            continue;
        }
        let (kind, id, detail) = kind_of(&item);
        let enqueued = item
            .enqueue_time
            .as_ref()
            .map(|t| crate::args::from_timestamp(t).to_string())
            .unwrap_or_default();
        if follow {
            println!("{}  {kind}  {id}  {detail}  {enqueued}", item.cursor);
        } else {
            table.row(vec![item.cursor.clone(), kind.into(), id, detail, enqueued]);
        }
    }
    if !follow {
        if ctx.out.json() {
            print_json(&items)?;
        } else {
            print!("{}", table.render());
        }
    }
    Ok(())
}

async fn serve(
    ctx: &Ctx,
    payer: &str,
    rules: &Rules,
    cursor_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut cursor = match &cursor_file {
        Some(path) => std::fs::read_to_string(path)
            .map(|c| c.trim().to_owned())
            .unwrap_or_default(),
        None => String::new(),
    };
    eprintln!("integrator for {payer}: answering work (Ctrl-C to stop)");
    let mut backoff = Duration::from_millis(500);
    loop {
        let stream = ctx
            .conn
            .integrator()?
            .stream_work(pb::StreamWorkRequest {
                payer_id: payer.to_owned(),
                cursor: cursor.clone(),
            })
            .await;
        let mut stream = match stream {
            Ok(s) => s.into_inner(),
            Err(status) if is_fatal(&status) => return Err(status.into()),
            Err(status) => {
                eprintln!(
                    "work stream unavailable ({}); retrying in {backoff:?}",
                    status.code()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(500);
        while let Some(message) = stream.next().await {
            let item = match message {
                Ok(m) => m.item.unwrap_or_default(),
                Err(status) if is_fatal(&status) => return Err(status.into()),
                Err(status) => {
                    eprintln!("work stream ended ({}); resuming", status.code());
                    break;
                }
            };
            match handle(ctx, rules, &item).await {
                Ok(line) => report(ctx, &item, &line)?,
                Err(error) if exit::status_of(&error).is_some_and(is_fatal) => return Err(error),
                Err(error) => eprintln!("item {}: {}", item.cursor, exit::render(&error)),
            }
            cursor = item.cursor.clone();
            if let Some(path) = &cursor_file {
                std::fs::write(path, &cursor)?;
            }
        }
        tokio::time::sleep(backoff).await;
    }
}

/// Errors the integrator cannot outlive: a wrong token or payer, a bad cursor.
fn is_fatal(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unauthenticated
            | tonic::Code::PermissionDenied
            | tonic::Code::InvalidArgument
            | tonic::Code::OutOfRange
    )
}

fn report(ctx: &Ctx, item: &pb::WorkItem, outcome: &str) -> anyhow::Result<()> {
    let (kind, id, _) = kind_of(item);
    if ctx.out.json() {
        print_json(
            &serde_json::json!({ "cursor": item.cursor, "kind": kind, "id": id, "outcome": outcome }),
        )
    } else {
        println!("{kind} {id}: {outcome}");
        Ok(())
    }
}

/// Answers one work item; returns what was done (ids and amounts only, never PHI).
async fn handle(ctx: &Ctx, rules: &Rules, item: &pb::WorkItem) -> anyhow::Result<String> {
    let today = jiff::ZonedDateTime::now().date();
    match &item.item {
        Some(pb::work_item::Item::EligibilityRequest(request)) => {
            let check = request.check.clone().unwrap_or_default();
            if check.status != pb::EligibilityStatus::Pending as i32 {
                return Ok("already answered".into());
            }
            let answer = rules::eligibility_answer(&rules.eligibility, &check);
            let active = answer.active;
            ctx.conn
                .integrator()?
                .answer_eligibility(pb::AnswerEligibilityRequest {
                    request_id: format!("eligibility-{}", check.trace_number),
                    trace_number: check.trace_number.clone(),
                    answer: Some(answer),
                })
                .await?;
            Ok(format!(
                "answered: {}",
                if active { "active" } else { "inactive" }
            ))
        }
        Some(pb::work_item::Item::PriorAuthorizationRequest(request)) => {
            let pa = request.prior_authorization.clone().unwrap_or_default();
            let open = [
                pb::PriorAuthorizationStatus::Requested as i32,
                pb::PriorAuthorizationStatus::Pended as i32,
            ];
            if !open.contains(&pa.status) {
                return Ok("already decided".into());
            }
            use pb::decide_prior_authorization_request::Decision;
            let (decision, text) = match rules::decide(&rules.prior_authorization, &pa, today) {
                PaDecision::Approve(a) => {
                    let text = format!(
                        "approved {} ({} units)",
                        a.authorization_number, a.units_approved
                    );
                    (Decision::Approval(a), text)
                }
                PaDecision::Deny(d) => {
                    let text = format!("denied: {}", d.reason);
                    (Decision::Denial(d), text)
                }
            };
            ctx.conn
                .integrator()?
                .decide_prior_authorization(pb::DecidePriorAuthorizationRequest {
                    request_id: format!("decide-{}-v{}", pa.prior_authorization_id, pa.version),
                    prior_authorization_id: pa.prior_authorization_id.clone(),
                    decision: Some(decision),
                })
                .await?;
            Ok(text)
        }
        Some(pb::work_item::Item::Claim(item)) => {
            let claim = item.claim.clone().unwrap_or_default();
            handle_claim(ctx, rules, claim, today).await
        }
        None => Ok("empty item".into()),
    }
}

async fn handle_claim(
    ctx: &Ctx,
    rules: &Rules,
    claim: pb::Claim,
    today: jiff::civil::Date,
) -> anyhow::Result<String> {
    use pb::acknowledge_claim_request::Result as Ack;
    let status = pb::ClaimStatus::try_from(claim.status).unwrap_or(pb::ClaimStatus::Unspecified);
    let mut claim = claim;
    match status {
        pb::ClaimStatus::Submitted => {
            if !rules.claims.accept {
                ctx.conn
                    .integrator()?
                    .acknowledge_claim(pb::AcknowledgeClaimRequest {
                        request_id: format!("ack-{}-v{}", claim.claim_id, claim.version),
                        claim_id: claim.claim_id.clone(),
                        result: Some(Ack::Rejected(pb::ClaimRejection {
                            reason_code: "A8".into(),
                            reason: "rejected by the integrator's rules".into(),
                        })),
                    })
                    .await?;
                return Ok("rejected".into());
            }
            claim = ctx
                .conn
                .integrator()?
                .acknowledge_claim(pb::AcknowledgeClaimRequest {
                    request_id: format!("ack-{}-v{}", claim.claim_id, claim.version),
                    claim_id: claim.claim_id.clone(),
                    result: Some(Ack::Accepted(pb::ClaimAcceptance {
                        payer_claim_control_number: rules::claim_control_number(&claim.claim_id),
                    })),
                })
                .await?
                .into_inner()
                .claim
                .unwrap_or(claim);
        }
        pb::ClaimStatus::Accepted | pb::ClaimStatus::Appealed => {}
        _ => return Ok(format!("nothing to do ({})", status.as_str_name())),
    }
    let remittance = rules::remittance(
        &rules.claims,
        &claim,
        &format!("RA-{}-{}", claim.claim_id, claim.version),
        crate::args::date_to_proto(today),
    );
    let paid = remittance
        .total_paid
        .as_ref()
        .map(|m| m.amount_cents)
        .unwrap_or(0);
    let results = post_remittances(ctx, vec![remittance]).await?;
    let outcome = results
        .first()
        .and_then(|r| pb::RemittanceOutcome::try_from(r.outcome).ok())
        .map(|o| {
            o.as_str_name()
                .trim_start_matches("REMITTANCE_OUTCOME_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|| "no answer".into());
    let detail = results
        .first()
        .and_then(|r| r.claims.first())
        .map(|c| c.message.clone())
        .filter(|m| !m.is_empty())
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    Ok(format!(
        "accepted; remittance {outcome}, paid {}{detail}",
        crate::output::money_text("USD", paid)
    ))
}
