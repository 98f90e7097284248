//! `clinicctl pa`, `clinicctl claim` and `clinicctl remit`: prior authorizations, claims with
//! their corrections, appeals, voids, superbills and reports (InsuranceService), and the payer's
//! side of them — decisions, acknowledgements and remittances (IntegratorService).

use crate::args::{enum_value, parse_date};
use crate::commands::availability::Window;
use crate::context::{Ctx, Page};
use crate::exit;
use crate::output::{Column, from_json_file};
use clap::Subcommand;
use clinicnet_proto::common::v1::Date;
use clinicnet_proto::insurance::v1 as pb;
use std::path::PathBuf;

const PA_COLUMNS: &[Column] = &[
    ("PRIOR AUTH", "prior_authorization_id"),
    ("PATIENT", "patient_id"),
    ("PAYER", "payer_id"),
    ("CLINIC", "clinic_id"),
    ("STATUS", "status"),
    ("AUTH NUMBER", "approval.authorization_number"),
    ("REQUESTED", "request_time"),
];

const CLAIM_COLUMNS: &[Column] = &[
    ("CLAIM", "claim_id"),
    ("STATUS", "status"),
    ("SERVICE DATE", "service_date"),
    ("PATIENT", "patient_id"),
    ("PAYER", "payer_id"),
    ("CHARGE", "total_charge"),
    ("PAID", "paid_amount"),
    ("PATIENT OWES", "patient_responsibility"),
    ("DENIAL", "denial_reason_codes"),
];

const POSTING_COLUMNS: &[Column] = &[
    ("CLAIM", "claim_id"),
    ("STATUS", "status"),
    ("MESSAGE", "message"),
];

/// Prior authorizations.
#[derive(Debug, Subcommand)]
pub enum PaCmd {
    /// Request a prior authorization by hand (clinical facts come from the intake).
    #[command(
        after_help = "Example:\n  clinicctl pa request --patient $PATIENT --coverage $COVERAGE --clinic $CLINIC --npi 1234567893 --service G2083:8"
    )]
    Request {
        /// Patient id.
        #[arg(long)]
        patient: String,
        /// Coverage id.
        #[arg(long)]
        coverage: String,
        /// Clinic id.
        #[arg(long)]
        clinic: String,
        /// Ordering provider's NPI.
        #[arg(long)]
        npi: String,
        /// CODE:UNITS asked for (repeat), e.g. G2083:8.
        #[arg(long = "service", required = true, value_parser = parse_service)]
        services: Vec<pb::RequestedService>,
        /// Visit it is for.
        #[arg(long)]
        appointment: Option<String>,
        /// Course it is for.
        #[arg(long)]
        course: Option<String>,
    },
    /// Show one prior authorization.
    #[command(after_help = "Example:\n  clinicctl pa get $PRIOR_AUTH")]
    Get {
        /// Prior authorization id.
        prior_authorization_id: String,
    },
    /// List prior authorizations, newest first.
    #[command(after_help = "Example:\n  clinicctl pa list --clinic $CLINIC --status requested")]
    List {
        /// Patient id.
        #[arg(long)]
        patient: Option<String>,
        /// Clinic id (required for partner clinics).
        #[arg(long)]
        clinic: Option<String>,
        /// Payer id.
        #[arg(long)]
        payer: Option<String>,
        /// requested, pended, approved, denied or expired.
        #[arg(long, value_parser = |s: &str| enum_value("clinicnet.insurance.v1.PriorAuthorizationStatus", s))]
        status: Option<i32>,
        #[command(flatten)]
        page: Page,
    },
    /// Decide a request as the payer's integrator: approve, deny or pend.
    #[command(
        after_help = "Example:\n  clinicctl pa decide $PRIOR_AUTH --approve --auth-number FB-2026-0001 --from 2026-03-01 --until 2026-08-31 --units 24\n  clinicctl pa decide $PRIOR_AUTH --deny --reason \"fewer than two antidepressant classes\""
    )]
    Decide {
        /// Prior authorization id.
        prior_authorization_id: String,
        /// Approve.
        #[arg(long, group = "decision", requires_all = ["auth_number", "from", "until"])]
        approve: bool,
        /// Deny.
        #[arg(long, group = "decision", requires = "reason")]
        deny: bool,
        /// Pend for more information.
        #[arg(long, group = "decision", requires = "reason")]
        pend: bool,
        /// Authorization number (approve).
        #[arg(long)]
        auth_number: Option<String>,
        /// First service date covered (approve).
        #[arg(long, value_parser = parse_date)]
        from: Option<Date>,
        /// Last service date covered (approve).
        #[arg(long, value_parser = parse_date)]
        until: Option<Date>,
        /// Units approved.
        #[arg(long, default_value_t = 0)]
        units: i32,
        /// Reason (deny, pend).
        #[arg(long)]
        reason: Option<String>,
        /// Reason code (deny).
        #[arg(long, default_value = "")]
        reason_code: String,
    },
}

/// Claims.
#[derive(Debug, Subcommand)]
pub enum ClaimCmd {
    /// Show a claim with its lines and adjudication.
    #[command(after_help = "Example:\n  clinicctl claim get $CLAIM")]
    Get {
        /// Claim id.
        claim_id: String,
    },
    /// List claims, newest first.
    #[command(
        after_help = "Example:\n  clinicctl claim list --clinic $CLINIC --status denied\n  clinicctl claim list --appointment $APPOINTMENT -o json | jq -r '.claims[0].status'"
    )]
    List {
        /// Clinic id (required for partner clinics).
        #[arg(long)]
        clinic: Option<String>,
        /// Payer id.
        #[arg(long)]
        payer: Option<String>,
        /// Patient id.
        #[arg(long)]
        patient: Option<String>,
        /// Appointment id.
        #[arg(long)]
        appointment: Option<String>,
        /// Statuses (draft, submitted, accepted, rejected, paid, partially-paid, denied…; repeat).
        #[arg(long = "status", value_parser = |s: &str| enum_value("clinicnet.insurance.v1.ClaimStatus", s))]
        statuses: Vec<i32>,
        /// Service dates from.
        #[arg(long, value_parser = parse_date)]
        from: Option<Date>,
        /// Service dates until.
        #[arg(long, value_parser = parse_date)]
        until: Option<Date>,
        #[command(flatten)]
        page: Page,
    },
    /// Submit a draft claim to the payer.
    #[command(after_help = "Example:\n  clinicctl claim submit $CLAIM")]
    Submit {
        /// Claim id.
        claim_id: String,
        /// Submit even with blocking issues (e.g. to obtain a denial to appeal).
        #[arg(long)]
        despite_issues: bool,
    },
    /// Correct a claim (edited in place, or replaced when already accepted).
    #[command(
        after_help = "Example:\n  clinicctl claim correct $CLAIM --diagnosis F33.2 --auth-number FB-2026-0001 --reason \"authorization obtained\""
    )]
    Correct {
        /// Claim id.
        claim_id: String,
        /// Diagnosis codes (repeat; replaces the current ones).
        #[arg(long = "diagnosis")]
        diagnoses: Vec<String>,
        /// Lines from a JSON file: {"lines": [ServiceLine…]}.
        #[arg(long)]
        lines_file: Option<PathBuf>,
        /// Authorization number.
        #[arg(long, default_value = "")]
        auth_number: String,
        /// Why (no PHI).
        #[arg(long)]
        reason: String,
    },
    /// Appeal a denied or partially paid claim.
    #[command(
        after_help = "Example:\n  clinicctl claim appeal $CLAIM --reason \"authorization was on file\" --auth-number FB-2026-0001"
    )]
    Appeal {
        /// Claim id.
        claim_id: String,
        /// Grounds of the appeal.
        #[arg(long)]
        reason: String,
        /// Authorization number obtained since.
        #[arg(long, default_value = "")]
        auth_number: String,
    },
    /// Void a claim.
    #[command(
        after_help = "Example:\n  clinicctl claim void $CLAIM --reason \"billed to the wrong payer\""
    )]
    Void {
        /// Claim id.
        claim_id: String,
        /// Why (no PHI).
        #[arg(long)]
        reason: String,
    },
    /// Acknowledge a submitted claim as the payer's integrator (accept or reject).
    #[command(
        after_help = "Example:\n  clinicctl claim ack $CLAIM --accept --icn 2026031000123\n  clinicctl claim ack $CLAIM --reject --reason-code A7 --reason \"member id not found\""
    )]
    Ack {
        /// Claim id.
        claim_id: String,
        /// Accept for adjudication.
        #[arg(long, group = "result", requires = "icn")]
        accept: bool,
        /// Reject at the front end.
        #[arg(long, group = "result", requires = "reason")]
        reject: bool,
        /// The payer's claim control number (accept).
        #[arg(long)]
        icn: Option<String>,
        /// Rejection code.
        #[arg(long, default_value = "")]
        reason_code: String,
        /// Rejection reason.
        #[arg(long)]
        reason: Option<String>,
    },
    /// A self-pay superbill (and its PDF).
    #[command(
        after_help = "Example:\n  clinicctl claim superbill --appointment $APPOINTMENT --pdf superbill.pdf"
    )]
    Superbill {
        /// By superbill id.
        #[arg(long, conflicts_with = "appointment")]
        id: Option<String>,
        /// By visit.
        #[arg(long)]
        appointment: Option<String>,
        /// Write the PDF here.
        #[arg(long)]
        pdf: Option<PathBuf>,
    },
    /// Accounts receivable aging by clinic and payer.
    #[command(after_help = "Example:\n  clinicctl claim aging --clinic $CLINIC")]
    Aging {
        /// Clinic id (required for partner clinics).
        #[arg(long)]
        clinic: Option<String>,
        /// Payer id.
        #[arg(long)]
        payer: Option<String>,
    },
    /// Denial rate by reason code over a period.
    #[command(after_help = "Example:\n  clinicctl claim denials --from 2026-01-01 --days 90")]
    Denials {
        /// Clinic id (required for partner clinics).
        #[arg(long)]
        clinic: Option<String>,
        /// Payer id.
        #[arg(long)]
        payer: Option<String>,
        #[command(flatten)]
        window: Window,
    },
    /// Average days from submission to payment over a period.
    #[command(
        after_help = "Example:\n  clinicctl claim days-to-payment --from 2026-01-01 --days 90"
    )]
    DaysToPayment {
        /// Clinic id (required for partner clinics).
        #[arg(long)]
        clinic: Option<String>,
        /// Payer id.
        #[arg(long)]
        payer: Option<String>,
        #[command(flatten)]
        window: Window,
    },
}

/// Remittances.
#[derive(Debug, Subcommand)]
pub enum RemitCmd {
    /// Post remittances (835) from a JSON file: one Remittance, or {"remittances": [...]}.
    #[command(
        after_help = "Example:\n  clinicctl remit post --file remittance.json\n\nEach remittance is posted all or nothing; re-sending one is answered DUPLICATE."
    )]
    Post {
        /// JSON file with a clinicnet.insurance.v1.Remittance, or {"remittances": [...]}.
        #[arg(long)]
        file: PathBuf,
    },
}

fn parse_service(text: &str) -> Result<pb::RequestedService, String> {
    let (code, units) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not CODE:UNITS"))?;
    Ok(pb::RequestedService {
        procedure_code: code.trim().to_owned(),
        units: units
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: units must be a number"))?,
    })
}

/// Runs a prior authorization command.
pub async fn run_pa(ctx: &Ctx, cmd: PaCmd) -> anyhow::Result<()> {
    match cmd {
        PaCmd::Request {
            patient,
            coverage,
            clinic,
            npi,
            services,
            appointment,
            course,
        } => {
            let response = ctx
                .conn
                .insurance()?
                .request_prior_authorization(pb::RequestPriorAuthorizationRequest {
                    request_id: ctx.request_id(),
                    patient_id: patient,
                    coverage_id: coverage,
                    clinic_id: clinic,
                    appointment_id: appointment.unwrap_or_default(),
                    course_id: course.unwrap_or_default(),
                    provider_npi: npi,
                    services,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.insurance.v1.RequestPriorAuthorizationResponse",
                "prior_authorization",
            )
        }
        PaCmd::Get {
            prior_authorization_id,
        } => {
            let response = ctx
                .conn
                .insurance()?
                .get_prior_authorization(pb::GetPriorAuthorizationRequest {
                    prior_authorization_id,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.insurance.v1.GetPriorAuthorizationResponse",
                "prior_authorization",
            )
        }
        PaCmd::List {
            patient,
            clinic,
            payer,
            status,
            page,
        } => {
            let response = ctx
                .conn
                .insurance()?
                .list_prior_authorizations(pb::ListPriorAuthorizationsRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                    patient_id: patient.unwrap_or_default(),
                    clinic_id: clinic.unwrap_or_default(),
                    payer_id: payer.unwrap_or_default(),
                    status: status.unwrap_or(0),
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                "clinicnet.insurance.v1.ListPriorAuthorizationsResponse",
                "prior_authorizations",
                PA_COLUMNS,
            )
        }
        PaCmd::Decide {
            prior_authorization_id,
            approve,
            deny,
            pend,
            auth_number,
            from,
            until,
            units,
            reason,
            reason_code,
        } => {
            use pb::decide_prior_authorization_request::Decision;
            let decision = if approve {
                Decision::Approval(pb::PriorAuthorizationApproval {
                    authorization_number: auth_number.unwrap_or_default(),
                    valid_from: from,
                    valid_until: until,
                    units_approved: units,
                })
            } else if deny {
                Decision::Denial(pb::PriorAuthorizationDenial {
                    reason_code,
                    reason: reason.unwrap_or_default(),
                })
            } else if pend {
                Decision::Pend(pb::PriorAuthorizationPend {
                    reason: reason.unwrap_or_default(),
                })
            } else {
                return Err(exit::usage("give --approve, --deny or --pend"));
            };
            let response = ctx
                .conn
                .integrator()?
                .decide_prior_authorization(pb::DecidePriorAuthorizationRequest {
                    request_id: ctx.request_id(),
                    prior_authorization_id,
                    decision: Some(decision),
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.insurance.v1.DecidePriorAuthorizationResponse",
                "prior_authorization",
            )
        }
    }
}

/// Runs a claim command.
pub async fn run(ctx: &Ctx, cmd: ClaimCmd) -> anyhow::Result<()> {
    let mut client = ctx.conn.insurance()?;
    const P: &str = "clinicnet.insurance.v1.";
    match cmd {
        ClaimCmd::Get { claim_id } => {
            let response = client
                .get_claim(pb::GetClaimRequest { claim_id })
                .await?
                .into_inner();
            ctx.out
                .object(&response, &format!("{P}GetClaimResponse"), "claim")
        }
        ClaimCmd::List {
            clinic,
            payer,
            patient,
            appointment,
            statuses,
            from,
            until,
            page,
        } => {
            let response = client
                .list_claims(pb::ListClaimsRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                    clinic_id: clinic.unwrap_or_default(),
                    payer_id: payer.unwrap_or_default(),
                    patient_id: patient.unwrap_or_default(),
                    appointment_id: appointment.unwrap_or_default(),
                    statuses,
                    service_date_from: from,
                    service_date_to: until,
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                &format!("{P}ListClaimsResponse"),
                "claims",
                CLAIM_COLUMNS,
            )
        }
        ClaimCmd::Submit {
            claim_id,
            despite_issues,
        } => {
            let response = client
                .submit_claim(pb::SubmitClaimRequest {
                    request_id: ctx.request_id(),
                    claim_id,
                    submit_despite_issues: despite_issues,
                })
                .await?
                .into_inner();
            ctx.out
                .object(&response, &format!("{P}SubmitClaimResponse"), "claim")
        }
        ClaimCmd::Correct {
            claim_id,
            diagnoses,
            lines_file,
            auth_number,
            reason,
        } => {
            let lines = match lines_file {
                Some(path) => {
                    let holder: pb::CorrectClaimRequest =
                        from_json_file(&path, &format!("{P}CorrectClaimRequest"))?;
                    holder.lines
                }
                None => Vec::new(),
            };
            let response = client
                .correct_claim(pb::CorrectClaimRequest {
                    request_id: ctx.request_id(),
                    claim_id,
                    diagnosis_codes: diagnoses,
                    lines,
                    authorization_number: auth_number,
                    reason,
                })
                .await?
                .into_inner();
            ctx.out
                .object(&response, &format!("{P}CorrectClaimResponse"), "claim")
        }
        ClaimCmd::Appeal {
            claim_id,
            reason,
            auth_number,
        } => {
            let response = client
                .appeal_claim(pb::AppealClaimRequest {
                    request_id: ctx.request_id(),
                    claim_id,
                    reason,
                    authorization_number: auth_number,
                })
                .await?
                .into_inner();
            ctx.out
                .object(&response, &format!("{P}AppealClaimResponse"), "claim")
        }
        ClaimCmd::Void { claim_id, reason } => {
            let response = client
                .void_claim(pb::VoidClaimRequest {
                    request_id: ctx.request_id(),
                    claim_id,
                    reason,
                })
                .await?
                .into_inner();
            ctx.out
                .object(&response, &format!("{P}VoidClaimResponse"), "claim")
        }
        ClaimCmd::Ack {
            claim_id,
            accept,
            reject,
            icn,
            reason_code,
            reason,
        } => {
            use pb::acknowledge_claim_request::Result as Ack;
            let result = if accept {
                Ack::Accepted(pb::ClaimAcceptance {
                    payer_claim_control_number: icn.unwrap_or_default(),
                })
            } else if reject {
                Ack::Rejected(pb::ClaimRejection {
                    reason_code,
                    reason: reason.unwrap_or_default(),
                })
            } else {
                return Err(exit::usage("give --accept or --reject"));
            };
            let response = ctx
                .conn
                .integrator()?
                .acknowledge_claim(pb::AcknowledgeClaimRequest {
                    request_id: ctx.request_id(),
                    claim_id,
                    result: Some(result),
                })
                .await?
                .into_inner();
            ctx.out
                .object(&response, &format!("{P}AcknowledgeClaimResponse"), "claim")
        }
        ClaimCmd::Superbill {
            id,
            appointment,
            pdf,
        } => {
            let key = match (id, appointment) {
                (Some(id), _) => pb::get_superbill_request::Key::SuperbillId(id),
                (None, Some(a)) => pb::get_superbill_request::Key::AppointmentId(a),
                (None, None) => return Err(exit::usage("give --id or --appointment")),
            };
            let mut response = client
                .get_superbill(pb::GetSuperbillRequest { key: Some(key) })
                .await?
                .into_inner();
            if let Some(path) = pdf {
                std::fs::write(&path, &response.pdf)?;
                eprintln!("wrote {} ({} bytes)", path.display(), response.pdf.len());
            }
            response.pdf.clear();
            ctx.out
                .object(&response, &format!("{P}GetSuperbillResponse"), "superbill")
        }
        ClaimCmd::Aging { clinic, payer } => {
            let response = client
                .get_ar_aging_report(pb::GetArAgingReportRequest {
                    as_of: None,
                    clinic_id: clinic.unwrap_or_default(),
                    payer_id: payer.unwrap_or_default(),
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                &format!("{P}GetArAgingReportResponse"),
                "rows",
                &[
                    ("CLINIC", "clinic_id"),
                    ("PAYER", "payer_id"),
                    ("OUTSTANDING", "total_outstanding"),
                ],
            )
        }
        ClaimCmd::Denials {
            clinic,
            payer,
            window,
        } => {
            let response = client
                .get_denial_report(pb::GetDenialReportRequest {
                    period: Some(window.proto(&ctx.zone)?),
                    clinic_id: clinic.unwrap_or_default(),
                    payer_id: payer.unwrap_or_default(),
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                &format!("{P}GetDenialReportResponse"),
                "rows",
                &[
                    ("CLINIC", "clinic_id"),
                    ("PAYER", "payer_id"),
                    ("ADJUDICATED", "adjudicated_claims"),
                    ("DENIED", "denied_claims"),
                    ("RATE", "denial_rate"),
                ],
            )
        }
        ClaimCmd::DaysToPayment {
            clinic,
            payer,
            window,
        } => {
            let response = client
                .get_days_to_payment_report(pb::GetDaysToPaymentReportRequest {
                    period: Some(window.proto(&ctx.zone)?),
                    clinic_id: clinic.unwrap_or_default(),
                    payer_id: payer.unwrap_or_default(),
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                &format!("{P}GetDaysToPaymentReportResponse"),
                "rows",
                &[
                    ("CLINIC", "clinic_id"),
                    ("PAYER", "payer_id"),
                    ("PAID CLAIMS", "paid_claims"),
                    ("AVG DAYS", "average_days_to_payment"),
                ],
            )
        }
    }
}

/// Runs a remittance command.
pub async fn run_remit(ctx: &Ctx, cmd: RemitCmd) -> anyhow::Result<()> {
    match cmd {
        RemitCmd::Post { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| exit::usage(format!("cannot read {}: {e}", file.display())))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| exit::usage(format!("{}: not JSON: {e}", file.display())))?;
            let items: Vec<serde_json::Value> = match value.get("remittances") {
                Some(serde_json::Value::Array(items)) => items.clone(),
                _ => vec![value],
            };
            let mut remittances = Vec::new();
            for item in items {
                let remittance: pb::Remittance = crate::output::from_json(
                    &item.to_string(),
                    "clinicnet.insurance.v1.Remittance",
                )?;
                remittances.push(remittance);
            }
            let responses = post_remittances(ctx, remittances).await?;
            let response = pb::PostRemittancesResponse {
                claims: responses.iter().flat_map(|r| r.claims.clone()).collect(),
                ..Default::default()
            };
            if ctx.out.json() {
                let all: Vec<serde_json::Value> = responses
                    .iter()
                    .map(|r| {
                        crate::output::to_json(r, "clinicnet.insurance.v1.PostRemittancesResponse")
                    })
                    .collect::<anyhow::Result<_>>()?;
                crate::output::print_json(&all)
            } else {
                for r in &responses {
                    println!(
                        "remittance {}: {}",
                        r.remittance_id,
                        pb::RemittanceOutcome::try_from(r.outcome)
                            .map(|o| o
                                .as_str_name()
                                .trim_start_matches("REMITTANCE_OUTCOME_")
                                .to_ascii_lowercase())
                            .unwrap_or_default()
                    );
                }
                ctx.out.list(
                    &response,
                    "clinicnet.insurance.v1.PostRemittancesResponse",
                    "claims",
                    POSTING_COLUMNS,
                )
            }
        }
    }
}

/// Posts remittances over the bidirectional stream; one result per remittance, in order.
pub async fn post_remittances(
    ctx: &Ctx,
    remittances: Vec<pb::Remittance>,
) -> anyhow::Result<Vec<pb::PostRemittancesResponse>> {
    let count = remittances.len();
    let requests: Vec<pb::PostRemittancesRequest> = remittances
        .into_iter()
        .map(|r| pb::PostRemittancesRequest {
            request_id: format!("remit-{}", r.remittance_id),
            remittance: Some(r),
        })
        .collect();
    let mut stream = ctx
        .conn
        .integrator()?
        .post_remittances(futures::stream::iter(requests))
        .await?
        .into_inner();
    let mut responses = Vec::with_capacity(count);
    while let Some(response) = stream.message().await? {
        responses.push(response);
        if responses.len() == count {
            break;
        }
    }
    Ok(responses)
}
