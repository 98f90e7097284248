//! `clinicctl journey`: one demo patient's way through a seeded network — intake, coverage and
//! eligibility, booking an esketamine session (its prior authorization decided by the payer's
//! integrator), the confirmation and reminders, completion with a PHQ-9, the claim and its
//! payment, and the notifications delivered — then the ids and the clinicctl commands to look
//! at each. A step whose service is not ready (UNIMPLEMENTED) is skipped with a note, and so is
//! everything that depends on it; nothing is faked.

use crate::commands::appointment::CompletionArgs;
use crate::context::Ctx;
use crate::exit;
use crate::seed::{find_clinic, not_ready};
use clap::Args;
use clinicnet_proto::appointments::v1 as apt;
use clinicnet_proto::common::v1::{
    AntidepressantClass, AntidepressantTrial, Locale, Modality, PersonName,
};
use clinicnet_proto::insurance::v1 as ins;
use clinicnet_proto::notifications::v1 as ntf;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `journey`.
#[derive(Debug, Args)]
pub struct JourneyArgs {
    /// Seed clinic the patient goes to.
    #[arg(long, default_value = "ketamine-health-centers")]
    pub clinic: String,
    /// Payer of the patient's coverage (its integrator must be serving).
    #[arg(long, default_value = "suncoast-health")]
    pub payer: String,
    /// Plan of the coverage.
    #[arg(long, default_value = "suncoast-ppo")]
    pub plan: String,
    /// The mail sink's directory, to show the email delivered.
    #[arg(long)]
    pub mail_dir: Option<PathBuf>,
    /// Seconds to wait for each asynchronous outcome (integrator answers, events, delivery).
    #[arg(long, default_value_t = 45)]
    pub wait_seconds: u64,
}

/// How a step ended.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done.
    Done,
    /// Skipped: a service is not ready, or an earlier step did not happen.
    Skipped,
    /// Tried and failed.
    Failed,
}

/// One step of the journey.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What the step does.
    pub step: String,
    /// How it ended.
    pub outcome: Outcome,
    /// What happened (ids, statuses, amounts; never PHI beyond the demo patient's ids).
    pub detail: String,
}

/// The journey's result, printed as JSON with `-o json`.
#[derive(Debug, Default, Serialize)]
pub struct Journey {
    /// The trace of the whole journey (see `clinicctl traces`).
    pub trace_id: String,
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Ids to look up: clinic, provider, patient, coverage, appointment, claim…
    pub ids: BTreeMap<String, String>,
    /// Status of the claim at the end, when there is one.
    pub claim_status: Option<String>,
    /// Emails found in the mail sink's directory for this journey.
    pub emails_delivered: usize,
    /// clinicctl commands to look at what happened.
    pub commands: Vec<String>,
}

impl Journey {
    fn step(&mut self, ctx: &Ctx, step: &str, outcome: Outcome, detail: impl Into<String>) {
        let detail = detail.into();
        if !ctx.out.json() {
            let mark = match outcome {
                Outcome::Done => "✔",
                Outcome::Skipped => "·",
                Outcome::Failed => "✘",
            };
            println!("{mark} {step}: {detail}");
        }
        self.steps.push(Step {
            step: step.into(),
            outcome,
            detail,
        });
    }

    fn skip(&mut self, ctx: &Ctx, step: &str, why: &str) {
        self.step(ctx, step, Outcome::Skipped, format!("skipped — {why}"));
    }

    /// Records a failed or not-ready call; true when the journey can go on without it.
    fn failed(&mut self, ctx: &Ctx, step: &str, service: &str, error: &anyhow::Error) {
        if not_ready(error) {
            self.skip(
                ctx,
                step,
                &format!("the {service} service is not ready yet (UNIMPLEMENTED)"),
            );
        } else {
            self.step(ctx, step, Outcome::Failed, exit::render(error));
        }
    }
}

/// Polls `check` every 500 ms until it yields a value or `wait` passes.
async fn poll<T, F, Fut>(wait: Duration, mut check: F) -> anyhow::Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(value) = check().await? {
            return Ok(Some(value));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn enum_name(full: &str, n: i32) -> String {
    crate::output::pool()
        .get_enum_by_name(full)
        .map(|d| crate::output::enum_short_name(&d, n))
        .unwrap_or_else(|| n.to_string())
}

/// Runs the journey.
pub async fn run(ctx: &Ctx, args: JourneyArgs) -> anyhow::Result<()> {
    let journey = play(ctx, &args).await?;
    if ctx.out.json() {
        return crate::output::print_json(&journey);
    }
    println!();
    println!("ids:");
    for (k, v) in &journey.ids {
        println!("  {k:<14} {v}");
    }
    if let Some(status) = &journey.claim_status {
        println!("  claim status   {status}");
    }
    println!("  trace          {}", journey.trace_id);
    println!();
    println!("look at it yourself:");
    for command in &journey.commands {
        println!("  {command}");
    }
    if journey.steps.iter().any(|s| s.outcome == Outcome::Failed) {
        return Err(exit::refused(
            "some steps of the journey failed (see above)",
        ));
    }
    Ok(())
}

/// Plays the journey and returns what happened.
pub async fn play(ctx: &Ctx, args: &JourneyArgs) -> anyhow::Result<Journey> {
    let wait = Duration::from_secs(args.wait_seconds);
    let mut j = Journey {
        trace_id: platform::trace_context::current_trace_id(),
        ..Journey::default()
    };
    let mails_before = count_mail(args.mail_dir.as_deref());

    // 1. The clinic and its esketamine provider, from the directory.
    let clinic = match find_clinic(ctx, &args.clinic).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            j.step(
                ctx,
                "find the clinic",
                Outcome::Failed,
                format!(
                    "{} is not in the directory: run `clinicctl seed miami` first",
                    args.clinic
                ),
            );
            return Ok(j);
        }
        Err(e) => {
            j.failed(ctx, "find the clinic", "directory", &e);
            return Ok(j);
        }
    };
    let providers = ctx
        .conn
        .directory()?
        .list_providers(clinicnet_proto::directory::v1::ListProvidersRequest {
            page_size: 100,
            page_token: String::new(),
            clinic_id: clinic.clinic_id.clone(),
        })
        .await?
        .into_inner()
        .providers;
    let Some(provider) = providers
        .iter()
        .find(|p| {
            p.modalities
                .contains(&(Modality::EsketamineNasalSpray as i32))
        })
        .cloned()
    else {
        j.step(
            ctx,
            "find the clinic",
            Outcome::Failed,
            "the clinic has no esketamine provider: run `clinicctl seed miami`",
        );
        return Ok(j);
    };
    j.ids.insert("clinic".into(), clinic.clinic_id.clone());
    j.ids
        .insert("provider".into(), provider.provider_id.clone());
    j.step(
        ctx,
        "find the clinic",
        Outcome::Done,
        format!(
            "{} ({}), provider NPI {}",
            clinic.display_name, clinic.clinic_id, provider.npi
        ),
    );
    j.commands
        .push(format!("clinicctl clinic get {}", clinic.clinic_id));

    // 2. Intake: register the patient and record the TRD screening.
    let mut patients = ctx.conn.patients()?;
    let register_request_id = ctx.request_id_for("register");
    let registered = poll(wait, || async {
        let result = ctx
            .conn
            .patients()?
            .register_patient(apt::RegisterPatientRequest {
                request_id: register_request_id.clone(),
                patient: Some(apt::Patient {
                    name: Some(PersonName {
                        given_name: "María".into(),
                        middle_name: String::new(),
                        family_name: "Demo García".into(),
                    }),
                    birth_date: Some(clinicnet_proto::common::v1::Date {
                        year: 1984,
                        month: 5,
                        day: 17,
                    }),
                    preferred_locale: Locale::EsUs as i32,
                    contacts: Some(apt::PatientContacts {
                        email: "maria.demo@example.com".into(),
                        email_consent: true,
                        mobile_phone: "+13055550123".into(),
                        sms_consent: false,
                        consent_update_time: Some(crate::commands::availability::now()),
                    }),
                    registered_clinic_id: clinic.clinic_id.clone(),
                    ..Default::default()
                }),
            })
            .await;
        match result {
            Ok(r) => Ok(Some(Ok(r))),
            // The appointments service learns clinics from the directory's events: give it time.
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Ok(Some(Err(anyhow::Error::new(s)))),
        }
    })
    .await?
    .unwrap_or_else(|| {
        Err(anyhow::anyhow!(
            "the appointments service does not know the clinic yet"
        ))
    });
    let patient = match registered {
        Ok(r) => r.into_inner().patient.unwrap_or_default(),
        Err(e) => {
            j.failed(ctx, "register the patient", "appointments", &e);
            j.skip(ctx, "the rest of the journey", "it needs a patient");
            return Ok(j);
        }
    };
    j.ids.insert("patient".into(), patient.patient_id.clone());
    j.step(
        ctx,
        "register the patient",
        Outcome::Done,
        format!("patient {} (es_US, email consent)", patient.patient_id),
    );
    j.commands
        .push(format!("clinicctl patient get {}", patient.patient_id));
    let intake = patients
        .record_intake(apt::RecordIntakeRequest {
            request_id: ctx.request_id_for("intake"),
            intake: Some(apt::Intake {
                patient_id: patient.patient_id.clone(),
                clinic_id: clinic.clinic_id.clone(),
                diagnosis_codes: vec!["F33.2".into()],
                failed_trials: vec![
                    AntidepressantTrial {
                        drug_class: AntidepressantClass::Ssri as i32,
                        duration_weeks: 8,
                        adequate_dose: true,
                        current_episode: true,
                    },
                    AntidepressantTrial {
                        drug_class: AntidepressantClass::Snri as i32,
                        duration_weeks: 10,
                        adequate_dose: true,
                        current_episode: true,
                    },
                ],
                baseline_phq9: Some(apt::Phq9 {
                    item_scores: vec![3, 2, 2, 2, 2, 2, 2, 2, 2],
                    total_score: 19,
                    administer_time: Some(crate::commands::availability::now()),
                }),
                trd_attested: true,
                attesting_provider_id: provider.provider_id.clone(),
                ..Default::default()
            }),
        })
        .await
        .map_err(anyhow::Error::new);
    match intake {
        Ok(_) => j.step(
            ctx,
            "record the intake",
            Outcome::Done,
            "two failed antidepressant classes, baseline PHQ-9 19, TRD attested",
        ),
        Err(e) => {
            j.failed(ctx, "record the intake", "appointments", &e);
            return Ok(j);
        }
    }

    // 3. Coverage (insurance learns the patient from appointments' events: retry briefly).
    let coverage = poll(wait, || async {
        let result = ctx
            .conn
            .insurance()?
            .add_coverage(ins::AddCoverageRequest {
                request_id: format!("journey/coverage/{}", patient.patient_id),
                coverage: Some(ins::Coverage {
                    patient_id: patient.patient_id.clone(),
                    payer_id: args.payer.clone(),
                    plan_id: args.plan.clone(),
                    member_id: format!(
                        "SCH{}",
                        patient
                            .patient_id
                            .chars()
                            .filter(char::is_ascii_alphanumeric)
                            .take(10)
                            .collect::<String>()
                            .to_ascii_uppercase()
                    ),
                    relationship: ins::SubscriberRelationship::Self_ as i32,
                    effective_from: Some(clinicnet_proto::common::v1::Date {
                        year: 2026,
                        month: 1,
                        day: 1,
                    }),
                    priority: ins::CoveragePriority::Primary as i32,
                    ..Default::default()
                }),
            })
            .await;
        match result {
            Ok(r) => Ok(Some(Ok(r.into_inner().coverage.unwrap_or_default()))),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Ok(Some(Err(anyhow::Error::new(s)))),
        }
    })
    .await?;
    let coverage = match coverage {
        Some(Ok(c)) => {
            j.ids.insert("coverage".into(), c.coverage_id.clone());
            j.step(
                ctx,
                "add coverage",
                Outcome::Done,
                format!("{} / {} ({})", args.payer, args.plan, c.coverage_id),
            );
            j.commands.push(format!(
                "clinicctl coverage list --patient {}",
                patient.patient_id
            ));
            Some(c)
        }
        Some(Err(e)) => {
            j.failed(ctx, "add coverage", "insurance", &e);
            None
        }
        None => {
            j.step(
                ctx,
                "add coverage",
                Outcome::Failed,
                "insurance did not learn of the patient in time",
            );
            None
        }
    };

    // 4. Find and book an esketamine session.
    let now = jiff::Timestamp::now();
    let found = ctx
        .conn
        .appointments()?
        .find_slots(apt::FindSlotsRequest {
            page_size: 5,
            page_token: String::new(),
            modality: Modality::EsketamineNasalSpray as i32,
            place: Some(apt::find_slots_request::Place::ClinicId(
                clinic.clinic_id.clone(),
            )),
            provider_language: String::new(),
            range: Some(crate::args::interval(
                now,
                now + jiff::SignedDuration::from_hours(24 * 14),
            )),
            provider_id: String::new(),
            render_in_clinic_time_zone: true,
        })
        .await
        .map_err(anyhow::Error::new);
    let offer = match found {
        Ok(r) => r.into_inner().offers.into_iter().next(),
        Err(e) => {
            j.failed(ctx, "find an esketamine slot", "appointments", &e);
            return Ok(j);
        }
    };
    let Some(offer) = offer else {
        j.step(
            ctx,
            "find an esketamine slot",
            Outcome::Failed,
            "no free esketamine slot in the next 14 days: run `clinicctl seed miami`",
        );
        return Ok(j);
    };
    let slot = offer.slot.clone().unwrap_or_default();
    j.step(
        ctx,
        "find an esketamine slot",
        Outcome::Done,
        format!("{} at {}", slot.slot_id, offer.local_start),
    );
    let booked = ctx
        .conn
        .appointments()?
        .book_appointment(apt::BookAppointmentRequest {
            request_id: ctx.request_id_for("book"),
            target: Some(apt::book_appointment_request::Target::SlotId(
                slot.slot_id.clone(),
            )),
            patient_id: patient.patient_id.clone(),
            planned_dose_mg: 56,
            course_id: String::new(),
            course_session_number: 0,
        })
        .await
        .map_err(anyhow::Error::new);
    let appointment = match booked {
        Ok(r) => r.into_inner().appointment.unwrap_or_default(),
        Err(e) => {
            j.failed(ctx, "book the esketamine session", "appointments", &e);
            return Ok(j);
        }
    };
    j.ids
        .insert("appointment".into(), appointment.appointment_id.clone());
    j.step(
        ctx,
        "book the esketamine session",
        Outcome::Done,
        format!(
            "appointment {} (56 mg, {})",
            appointment.appointment_id, offer.local_start
        ),
    );
    j.commands.push(format!(
        "clinicctl appointment get {}",
        appointment.appointment_id
    ));
    let service_date = offer.visit_start_time.as_ref().map(|t| {
        crate::args::date_to_proto(
            crate::args::from_timestamp(t)
                .to_zoned_datetime(
                    crate::args::parse_zone(&offer.clinic_time_zone)
                        .unwrap_or(jiff::tz::TimeZone::UTC),
                )
                .date(),
        )
    });

    // 5. Eligibility and prior authorization, answered by the payer's integrator.
    if let Some(coverage) = &coverage {
        eligibility(ctx, &mut j, coverage, service_date, wait).await;
        prior_authorization(
            ctx,
            &mut j,
            &PaFor {
                patient_id: &patient.patient_id,
                coverage_id: &coverage.coverage_id,
                clinic_id: &clinic.clinic_id,
                appointment_id: &appointment.appointment_id,
                provider_npi: &provider.npi,
            },
            wait,
        )
        .await;
    } else {
        j.skip(ctx, "eligibility and prior authorization", "no coverage");
    }

    // 6. Confirmation and reminders.
    notifications(
        ctx,
        &mut j,
        &appointment.appointment_id,
        wait,
        "confirmation and reminders",
    )
    .await;

    // 7. The visit: check in, complete with PHQ-9.
    let mut client = ctx.conn.appointments()?;
    let checked_in = client
        .check_in_appointment(apt::CheckInAppointmentRequest {
            request_id: ctx.request_id_for("check-in"),
            appointment_id: appointment.appointment_id.clone(),
        })
        .await
        .map_err(anyhow::Error::new);
    if let Err(e) = checked_in {
        j.failed(ctx, "check in", "appointments", &e);
        return finish(ctx, j, args, mails_before, wait).await;
    }
    j.step(
        ctx,
        "check in",
        Outcome::Done,
        "patient arrived; blood pressure 128/82 before dosing",
    );
    let completion = CompletionArgs {
        modality: Some(Modality::EsketamineNasalSpray as i32),
        dose_mg: 56,
        devices: Some(2),
        treatment_minutes: 15,
        monitoring_minutes: 125,
        bp_before: Some((128, 82)),
        bp_after: Some((134, 86)),
        phq9: Some(vec![2, 1, 1, 1, 1, 1, 1, 1, 0]),
        provider: Some(provider.provider_id.clone()),
        rems_form_filed: true,
    };
    let completed = client
        .complete_appointment(apt::CompleteAppointmentRequest {
            request_id: ctx.request_id_for("complete"),
            appointment_id: appointment.appointment_id.clone(),
            completion: Some(completion.completion()),
        })
        .await
        .map_err(anyhow::Error::new);
    match completed {
        Ok(r) => {
            let r = r.into_inner();
            let window = r
                .integration_window
                .and_then(|w| w.window)
                .and_then(|w| w.start_time)
                .map(|t| {
                    format!(
                        "; integration window opens {}",
                        crate::args::from_timestamp(&t)
                    )
                })
                .unwrap_or_default();
            j.step(
                ctx,
                "complete the session",
                Outcome::Done,
                format!("56 mg (2 devices), 125 min monitoring, PHQ-9 9 (baseline 19){window}"),
            );
        }
        Err(e) => {
            j.failed(ctx, "complete the session", "appointments", &e);
            return finish(ctx, j, args, mails_before, wait).await;
        }
    }

    // 8. The claim and the integrator's payment.
    if coverage.is_some() {
        claim(ctx, &mut j, &appointment.appointment_id, wait).await;
    } else {
        j.skip(ctx, "claim", "no coverage");
    }
    finish(ctx, j, args, mails_before, wait).await
}

async fn eligibility(
    ctx: &Ctx,
    j: &mut Journey,
    coverage: &ins::Coverage,
    date: Option<clinicnet_proto::common::v1::Date>,
    wait: Duration,
) {
    let checked = async {
        let check = ctx
            .conn
            .insurance()?
            .check_eligibility(ins::CheckEligibilityRequest {
                request_id: ctx.request_id_for("eligibility"),
                coverage_id: coverage.coverage_id.clone(),
                service_date: date,
                procedure_codes: vec!["G2082".into()],
                bypass_cache: true,
            })
            .await?
            .into_inner()
            .check
            .unwrap_or_default();
        let answered = poll(wait, || async {
            let c = ctx
                .conn
                .insurance()?
                .get_eligibility_check(ins::GetEligibilityCheckRequest {
                    check_id: check.check_id.clone(),
                })
                .await?
                .into_inner()
                .check
                .unwrap_or_default();
            Ok((c.status != ins::EligibilityStatus::Pending as i32).then_some(c))
        })
        .await?;
        anyhow::Ok((check, answered))
    }
    .await;
    match checked {
        Ok((check, Some(answered))) => {
            let answer = answered.answer.unwrap_or_default();
            j.ids.insert("eligibility".into(), check.check_id.clone());
            j.step(
                ctx,
                "check eligibility",
                Outcome::Done,
                format!(
                    "{} (trace {}): active {}, copay {}, prior authorization required {}",
                    enum_name("clinicnet.insurance.v1.EligibilityStatus", answered.status),
                    check.trace_number,
                    answer.active,
                    crate::output::money_text(
                        "USD",
                        answer.copay.map(|m| m.amount_cents).unwrap_or(0)
                    ),
                    answer.prior_authorization_required
                ),
            );
            j.commands
                .push(format!("clinicctl eligibility get {}", check.check_id));
        }
        Ok((check, None)) => j.step(
            ctx,
            "check eligibility",
            Outcome::Failed,
            format!(
                "still pending after {wait:?} (trace {}): is `clinicctl integrator serve` running?",
                check.trace_number
            ),
        ),
        Err(e) => j.failed(ctx, "check eligibility", "insurance", &e),
    }
}

/// Who and what a prior authorization is for.
struct PaFor<'a> {
    patient_id: &'a str,
    coverage_id: &'a str,
    clinic_id: &'a str,
    appointment_id: &'a str,
    provider_npi: &'a str,
}

/// The patient's prior authorizations.
async fn prior_authorizations(
    ctx: &Ctx,
    patient_id: &str,
) -> anyhow::Result<Vec<ins::PriorAuthorization>> {
    Ok(ctx
        .conn
        .insurance()?
        .list_prior_authorizations(ins::ListPriorAuthorizationsRequest {
            page_size: 10,
            page_token: String::new(),
            patient_id: patient_id.to_owned(),
            clinic_id: String::new(),
            payer_id: String::new(),
            status: 0,
        })
        .await?
        .into_inner()
        .prior_authorizations)
}

/// Waits for the prior authorization requested on booking; requests one by hand (as a front
/// desk would) when none was, then waits for the integrator's decision.
async fn prior_authorization(ctx: &Ctx, j: &mut Journey, pa: &PaFor<'_>, wait: Duration) {
    let result = async {
        let on_booking = poll(wait.min(Duration::from_secs(10)), || async {
            let all = prior_authorizations(ctx, pa.patient_id).await?;
            Ok((!all.is_empty()).then_some(()))
        })
        .await?;
        let mut how = "requested on booking";
        if on_booking.is_none() {
            how = "requested by hand (none was requested on booking)";
            let requested = poll(wait, || async {
                let result = ctx
                    .conn
                    .insurance()?
                    .request_prior_authorization(ins::RequestPriorAuthorizationRequest {
                        request_id: format!("journey/prior-auth/{}", pa.appointment_id),
                        patient_id: pa.patient_id.to_owned(),
                        coverage_id: pa.coverage_id.to_owned(),
                        clinic_id: pa.clinic_id.to_owned(),
                        appointment_id: pa.appointment_id.to_owned(),
                        course_id: String::new(),
                        provider_npi: pa.provider_npi.to_owned(),
                        services: vec![ins::RequestedService {
                            procedure_code: "G2082".into(),
                            units: 1,
                        }],
                    })
                    .await;
                match result {
                    Ok(_) => Ok(Some(Ok(()))),
                    // Insurance learns the intake from appointments' events: give it time.
                    Err(s)
                        if matches!(
                            s.code(),
                            tonic::Code::FailedPrecondition | tonic::Code::NotFound
                        ) =>
                    {
                        Ok(None)
                    }
                    Err(s) => Ok(Some(Err(anyhow::Error::new(s)))),
                }
            })
            .await?;
            match requested {
                Some(r) => r?,
                None => anyhow::bail!("insurance kept refusing the request for {wait:?}"),
            }
        }
        let decided = poll(wait, || async {
            let all = prior_authorizations(ctx, pa.patient_id).await?;
            Ok(all
                .into_iter()
                .find(|p| p.status != ins::PriorAuthorizationStatus::Requested as i32))
        })
        .await?;
        anyhow::Ok((how, decided))
    }
    .await;
    match result {
        Ok((how, Some(decided))) => {
            let number = match &decided.decision {
                Some(ins::prior_authorization::Decision::Approval(a)) => {
                    format!(", authorization {}", a.authorization_number)
                }
                _ => String::new(),
            };
            j.ids
                .insert("prior_auth".into(), decided.prior_authorization_id.clone());
            j.step(
                ctx,
                "prior authorization",
                Outcome::Done,
                format!(
                    "{how} and {}{number}",
                    enum_name(
                        "clinicnet.insurance.v1.PriorAuthorizationStatus",
                        decided.status
                    )
                ),
            );
            j.commands.push(format!(
                "clinicctl pa get {}",
                decided.prior_authorization_id
            ));
        }
        Ok((_, None)) => j.step(
            ctx,
            "prior authorization",
            Outcome::Failed,
            format!("not decided after {wait:?}: is `clinicctl integrator serve` running?"),
        ),
        Err(e) => j.failed(ctx, "prior authorization", "insurance", &e),
    }
}

async fn notifications(
    ctx: &Ctx,
    j: &mut Journey,
    appointment_id: &str,
    wait: Duration,
    step: &str,
) {
    let result = poll(wait, || async {
        let list = ctx
            .conn
            .notifications()?
            .list_notifications(ntf::ListNotificationsRequest {
                page_size: 50,
                page_token: String::new(),
                filter: Some(ntf::list_notifications_request::Filter::AppointmentId(
                    appointment_id.to_owned(),
                )),
                statuses: Vec::new(),
                channel: 0,
            })
            .await?
            .into_inner();
        let confirmed = list.notifications.iter().any(|n| {
            n.kind == ntf::NotificationKind::AppointmentConfirmation as i32
                && n.status != ntf::NotificationStatus::Queued as i32
        });
        Ok(confirmed.then_some(list.notifications))
    })
    .await;
    match result {
        Ok(Some(list)) => {
            let text: Vec<String> = list
                .iter()
                .map(|n| {
                    format!(
                        "{} {} {}",
                        enum_name("clinicnet.notifications.v1.NotificationKind", n.kind),
                        enum_name("clinicnet.notifications.v1.Channel", n.channel),
                        enum_name("clinicnet.notifications.v1.NotificationStatus", n.status)
                    )
                })
                .collect();
            j.step(ctx, step, Outcome::Done, text.join("; "));
            j.commands.push(format!(
                "clinicctl notify list --appointment {appointment_id}"
            ));
        }
        Ok(None) => j.step(
            ctx,
            step,
            Outcome::Failed,
            format!("no confirmation delivered after {wait:?}"),
        ),
        Err(e) => j.failed(ctx, step, "notifications", &e),
    }
}

async fn claim(ctx: &Ctx, j: &mut Journey, appointment_id: &str, wait: Duration) {
    let list = |statuses: Vec<i32>| async move {
        let claims = ctx
            .conn
            .insurance()?
            .list_claims(ins::ListClaimsRequest {
                page_size: 10,
                appointment_id: appointment_id.to_owned(),
                statuses,
                ..Default::default()
            })
            .await?
            .into_inner()
            .claims;
        anyhow::Ok(claims.into_iter().next())
    };
    let draft = poll(wait, || list(Vec::new())).await;
    let draft = match draft {
        Ok(Some(c)) => c,
        Ok(None) => {
            j.step(
                ctx,
                "claim",
                Outcome::Failed,
                format!("no claim built for the visit after {wait:?}"),
            );
            return;
        }
        Err(e) => {
            j.failed(ctx, "claim", "insurance", &e);
            return;
        }
    };
    j.ids.insert("claim".into(), draft.claim_id.clone());
    j.commands
        .push(format!("clinicctl claim get {}", draft.claim_id));
    if draft.status == ins::ClaimStatus::Draft as i32 {
        let submitted = async {
            Ok(ctx
                .conn
                .insurance()?
                .submit_claim(ins::SubmitClaimRequest {
                    request_id: ctx.request_id_for("submit-claim"),
                    claim_id: draft.claim_id.clone(),
                    submit_despite_issues: false,
                })
                .await?)
        }
        .await;
        let submitted: anyhow::Result<_> = submitted;
        match submitted {
            Ok(_) => j.step(
                ctx,
                "submit the claim",
                Outcome::Done,
                format!(
                    "claim {} ({} lines, {})",
                    draft.claim_id,
                    draft.lines.len(),
                    crate::output::money_text(
                        "USD",
                        draft.total_charge.map(|m| m.amount_cents).unwrap_or(0)
                    )
                ),
            ),
            Err(e) => {
                j.failed(ctx, "submit the claim", "insurance", &e);
                return;
            }
        }
    }
    let settled = [
        ins::ClaimStatus::Paid as i32,
        ins::ClaimStatus::PartiallyPaid as i32,
        ins::ClaimStatus::Denied as i32,
        ins::ClaimStatus::Rejected as i32,
    ];
    let done = poll(wait, || async {
        anyhow::Ok(
            list(Vec::new())
                .await?
                .filter(|c| settled.contains(&c.status)),
        )
    })
    .await;
    match done {
        Ok(Some(c)) => {
            let status = enum_name("clinicnet.insurance.v1.ClaimStatus", c.status);
            j.claim_status = Some(status.clone());
            j.step(
                ctx,
                "integrator payment",
                Outcome::Done,
                format!(
                    "claim {status}: charged {}, paid {}, patient owes {}",
                    crate::output::money_text(
                        "USD",
                        c.total_charge.map(|m| m.amount_cents).unwrap_or(0)
                    ),
                    crate::output::money_text(
                        "USD",
                        c.paid_amount.map(|m| m.amount_cents).unwrap_or(0)
                    ),
                    crate::output::money_text(
                        "USD",
                        c.patient_responsibility
                            .map(|m| m.amount_cents)
                            .unwrap_or(0)
                    ),
                ),
            );
        }
        Ok(None) => j.step(
            ctx,
            "integrator payment",
            Outcome::Failed,
            format!(
                "claim not adjudicated after {wait:?}: is `clinicctl integrator serve` running?"
            ),
        ),
        Err(e) => j.failed(ctx, "integrator payment", "insurance", &e),
    }
}

fn count_mail(dir: Option<&std::path::Path>) -> usize {
    dir.and_then(|d| std::fs::read_dir(d).ok())
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}

async fn finish(
    ctx: &Ctx,
    mut j: Journey,
    args: &JourneyArgs,
    mails_before: usize,
    wait: Duration,
) -> anyhow::Result<Journey> {
    if let Some(dir) = &args.mail_dir {
        let delivered = poll(wait, || async {
            let n = count_mail(Some(dir)).saturating_sub(mails_before);
            Ok((n > 0).then_some(n))
        })
        .await?;
        match delivered {
            Some(n) => {
                j.emails_delivered = n;
                j.step(
                    ctx,
                    "mail sink",
                    Outcome::Done,
                    format!("{n} email(s) delivered to {}", dir.display()),
                );
            }
            None => j.step(
                ctx,
                "mail sink",
                Outcome::Skipped,
                format!(
                    "no email arrived in {} (is notifications delivering to the sink?)",
                    dir.display()
                ),
            ),
        }
    }
    if let Some(patient) = j.ids.get("patient").cloned() {
        j.commands
            .push(format!("clinicctl notify list --patient {patient}"));
    }
    j.commands.push("clinicctl events lag".into());
    Ok(j)
}
