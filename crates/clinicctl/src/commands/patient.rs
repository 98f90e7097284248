//! `clinicctl patient`: register patients, read and list them, record and read intake
//! (PatientsService, served by appointments).

use crate::args::{enum_value, parse_date};
use crate::context::{Ctx, Page};
use crate::exit;
use crate::output::{Column, from_json_file};
use clap::{Args, Subcommand};
use clinicnet_proto::appointments::v1 as pb;
use clinicnet_proto::common::v1::{AntidepressantTrial, Date, PersonName};
use std::path::PathBuf;

const PATIENT_COLUMNS: &[Column] = &[
    ("PATIENT", "patient_id"),
    ("NAME", "name"),
    ("BIRTH DATE", "birth_date"),
    ("LOCALE", "preferred_locale"),
    ("CLINIC", "registered_clinic_id"),
    ("VERSION", "version"),
];

/// The patient's details given as flags.
#[derive(Debug, Clone, Args)]
pub struct PatientFields {
    /// Given name.
    #[arg(long)]
    pub given_name: String,
    /// Family name (double surnames together: "García Márquez").
    #[arg(long)]
    pub family_name: String,
    /// Birth date (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    pub birth_date: Date,
    /// Language of messages: en-us or es-us.
    #[arg(long, default_value = "en-us", value_parser = |s: &str| enum_value("clinicnet.common.v1.Locale", s))]
    pub locale: i32,
    /// Email address.
    #[arg(long)]
    pub email: Option<String>,
    /// The patient consents to email.
    #[arg(long)]
    pub email_consent: bool,
    /// Mobile phone, E.164 (+13055550123).
    #[arg(long)]
    pub mobile: Option<String>,
    /// The patient consents to SMS.
    #[arg(long)]
    pub sms_consent: bool,
}

/// Patients and their intake.
#[derive(Debug, Subcommand)]
pub enum PatientCmd {
    /// Register a patient at a clinic.
    #[command(
        after_help = "Example:\n  clinicctl patient register --clinic $CLINIC --given-name María --family-name \"García López\" \\\n    --birth-date 1984-05-17 --locale es-us --email maria@example.com --email-consent"
    )]
    Register {
        /// Clinic where the patient registers.
        #[arg(long)]
        clinic: String,
        #[command(flatten)]
        fields: PatientFields,
    },
    /// Show one patient.
    #[command(after_help = "Example:\n  clinicctl patient get $PATIENT")]
    Get {
        /// Patient id.
        patient_id: String,
    },
    /// List a clinic's patients.
    #[command(after_help = "Example:\n  clinicctl patient list --clinic $CLINIC")]
    List {
        /// Clinic id.
        #[arg(long)]
        clinic: String,
        #[command(flatten)]
        page: Page,
    },
    /// Replace a patient's details from a JSON file (read it with `patient get -o json`).
    #[command(
        after_help = "Example:\n  clinicctl patient get $PATIENT -o json | jq .patient > p.json && clinicctl patient update --file p.json"
    )]
    Update {
        /// JSON file with the patient; patient_id names it, version is the expected version.
        #[arg(long)]
        file: PathBuf,
    },
    /// Record an intake: diagnosis, failed antidepressant trials, baseline PHQ-9, TRD attestation.
    #[command(
        after_help = "Example:\n  clinicctl patient intake $PATIENT --clinic $CLINIC --provider $PROVIDER --diagnosis F33.2 \\\n    --trial ssri:8 --trial snri:10 --baseline-phq9 19 --trd-attested"
    )]
    Intake {
        /// Patient id.
        patient_id: String,
        /// Clinic performing the intake.
        #[arg(long)]
        clinic: String,
        /// Attesting provider id.
        #[arg(long)]
        provider: String,
        /// ICD-10-CM diagnosis code (repeat; most relevant first).
        #[arg(long = "diagnosis", required = true)]
        diagnoses: Vec<String>,
        /// A failed trial CLASS:WEEKS (ssri, snri, tca, maoi, atypical, augmentation, other),
        /// adequate dose, in this episode (repeat).
        #[arg(long = "trial", value_parser = parse_trial)]
        trials: Vec<AntidepressantTrial>,
        /// Baseline PHQ-9 total (0-27).
        #[arg(long)]
        baseline_phq9: i32,
        /// The provider attests treatment-resistant depression.
        #[arg(long)]
        trd_attested: bool,
    },
    /// Show the intake in force.
    #[command(after_help = "Example:\n  clinicctl patient get-intake $PATIENT")]
    GetIntake {
        /// Patient id.
        patient_id: String,
    },
}

fn parse_trial(text: &str) -> Result<AntidepressantTrial, String> {
    let (class, weeks) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: a trial is CLASS:WEEKS, e.g. ssri:8"))?;
    Ok(AntidepressantTrial {
        drug_class: enum_value("clinicnet.common.v1.AntidepressantClass", class)?,
        duration_weeks: weeks
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: weeks must be a number"))?,
        adequate_dose: true,
        current_episode: true,
    })
}

/// The patient message of registration flags.
pub fn patient_of(clinic: String, fields: PatientFields) -> pb::Patient {
    pb::Patient {
        name: Some(PersonName {
            given_name: fields.given_name,
            middle_name: String::new(),
            family_name: fields.family_name,
        }),
        birth_date: Some(fields.birth_date),
        preferred_locale: fields.locale,
        contacts: Some(pb::PatientContacts {
            email: fields.email.unwrap_or_default(),
            email_consent: fields.email_consent,
            mobile_phone: fields.mobile.unwrap_or_default(),
            sms_consent: fields.sms_consent,
            consent_update_time: Some(crate::commands::availability::now()),
        }),
        registered_clinic_id: clinic,
        ..Default::default()
    }
}

/// Runs a patient command.
pub async fn run(ctx: &Ctx, cmd: PatientCmd) -> anyhow::Result<()> {
    let mut client = ctx.conn.patients()?;
    match cmd {
        PatientCmd::Register { clinic, fields } => {
            let response = client
                .register_patient(pb::RegisterPatientRequest {
                    request_id: ctx.request_id(),
                    patient: Some(patient_of(clinic, fields)),
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.appointments.v1.RegisterPatientResponse",
                "patient",
            )
        }
        PatientCmd::Get { patient_id } => {
            let response = client
                .get_patient(pb::GetPatientRequest { patient_id })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.appointments.v1.GetPatientResponse",
                "patient",
            )
        }
        PatientCmd::List { clinic, page } => {
            let response = client
                .list_patients(pb::ListPatientsRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                    clinic_id: clinic,
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                "clinicnet.appointments.v1.ListPatientsResponse",
                "patients",
                PATIENT_COLUMNS,
            )
        }
        PatientCmd::Update { file } => {
            let patient: pb::Patient = from_json_file(&file, "clinicnet.appointments.v1.Patient")?;
            if patient.version == 0 {
                return Err(exit::usage(
                    "no version in the file (see patient get -o json)",
                ));
            }
            let expected_version = patient.version;
            let response = client
                .update_patient(pb::UpdatePatientRequest {
                    request_id: ctx.request_id(),
                    patient: Some(patient),
                    expected_version,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.appointments.v1.UpdatePatientResponse",
                "patient",
            )
        }
        PatientCmd::Intake {
            patient_id,
            clinic,
            provider,
            diagnoses,
            trials,
            baseline_phq9,
            trd_attested,
        } => {
            let response = client
                .record_intake(pb::RecordIntakeRequest {
                    request_id: ctx.request_id(),
                    intake: Some(pb::Intake {
                        patient_id,
                        clinic_id: clinic,
                        diagnosis_codes: diagnoses,
                        failed_trials: trials,
                        baseline_phq9: Some(pb::Phq9 {
                            item_scores: Vec::new(),
                            total_score: baseline_phq9,
                            administer_time: Some(crate::commands::availability::now()),
                        }),
                        trd_attested,
                        attesting_provider_id: provider,
                        ..Default::default()
                    }),
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.appointments.v1.RecordIntakeResponse",
                "intake",
            )
        }
        PatientCmd::GetIntake { patient_id } => {
            let response = client
                .get_intake(pb::GetIntakeRequest { patient_id })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.appointments.v1.GetIntakeResponse",
                "intake",
            )
        }
    }
}
