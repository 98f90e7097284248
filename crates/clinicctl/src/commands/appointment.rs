//! `clinicctl appointment`: book, move, cancel, check in, complete and list visits
//! (AppointmentsService).

use crate::args::{enum_value, parse_blood_pressure, parse_modality, parse_phq9};
use crate::commands::availability::{Window, now};
use crate::context::{Ctx, Page};
use crate::exit;
use crate::output::Column;
use clap::{Args, Subcommand};
use clinicnet_proto::appointments::v1 as pb;

pub(crate) const APPOINTMENT_COLUMNS: &[Column] = &[
    ("APPOINTMENT", "appointment_id"),
    ("START", "start_time"),
    ("END", "end_time"),
    ("CLINIC", "clinic_id"),
    ("PATIENT", "patient_id"),
    ("MODALITY", "modality"),
    ("DOSE MG", "planned_dose_mg"),
    ("STATUS", "status"),
];

/// A slot or a hold to book.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// A free slot.
    #[arg(long)]
    pub slot: Option<String>,
    /// An active hold.
    #[arg(long)]
    pub hold: Option<String>,
}

/// What was done at a finished visit.
#[derive(Debug, Clone, Args)]
pub struct CompletionArgs {
    /// Modality given (default: the appointment's).
    #[arg(long, value_parser = parse_modality)]
    pub modality: Option<i32>,
    /// Dose in mg (esketamine 28, 56 or 84; 0 for therapy).
    #[arg(long, default_value_t = 0)]
    pub dose_mg: i32,
    /// Esketamine devices used (dose / 28; default computed for esketamine).
    #[arg(long)]
    pub devices: Option<i32>,
    /// Minutes of infusion or session.
    #[arg(long, default_value_t = 0)]
    pub treatment_minutes: i32,
    /// Minutes of monitoring or recovery (esketamine at least 120).
    #[arg(long, default_value_t = 0)]
    pub monitoring_minutes: i32,
    /// Blood pressure before dosing, SYS/DIA.
    #[arg(long, value_parser = parse_blood_pressure)]
    pub bp_before: Option<(i32, i32)>,
    /// Blood pressure about 40 minutes after dosing, SYS/DIA.
    #[arg(long, value_parser = parse_blood_pressure)]
    pub bp_after: Option<(i32, i32)>,
    /// PHQ-9: nine answers 0-3, comma separated.
    #[arg(long, value_parser = parse_phq9)]
    pub phq9: Option<Vec<i32>>,
    /// Rendering provider (default: the appointment's).
    #[arg(long)]
    pub provider: Option<String>,
    /// The REMS patient monitoring form was filed.
    #[arg(long)]
    pub rems_form_filed: bool,
}

impl CompletionArgs {
    /// The completion message.
    pub fn completion(&self) -> pb::Completion {
        let stamp = now();
        let bp = |v: Option<(i32, i32)>| {
            v.map(|(s, d)| pb::BloodPressure {
                systolic_mmhg: s,
                diastolic_mmhg: d,
                measure_time: Some(stamp),
            })
        };
        let esketamine = self.modality
            == Some(clinicnet_proto::common::v1::Modality::EsketamineNasalSpray as i32);
        pb::Completion {
            modality: self.modality.unwrap_or(0),
            dose_mg: self.dose_mg,
            esketamine_devices: self.devices.unwrap_or(if esketamine {
                self.dose_mg / 28
            } else {
                0
            }),
            treatment_minutes: self.treatment_minutes,
            monitoring_minutes: self.monitoring_minutes,
            blood_pressure_before: bp(self.bp_before),
            blood_pressure_after: bp(self.bp_after),
            phq9: self.phq9.as_ref().map(|items| pb::Phq9 {
                item_scores: items.clone(),
                total_score: items.iter().sum(),
                administer_time: Some(stamp),
            }),
            rendering_provider_id: self.provider.clone().unwrap_or_default(),
            rems_monitoring_form_filed: self.rems_form_filed,
            complete_time: Some(stamp),
        }
    }
}

/// Visits.
#[derive(Debug, Subcommand)]
pub enum AppointmentCmd {
    /// Book a visit from a free slot or a hold.
    #[command(
        after_help = "Example:\n  clinicctl appointment book --slot $SLOT --patient $PATIENT --dose-mg 56"
    )]
    Book {
        #[command(flatten)]
        target: Target,
        /// Patient id.
        #[arg(long)]
        patient: String,
        /// Planned dose in mg (ketamine and esketamine).
        #[arg(long, default_value_t = 0)]
        dose_mg: i32,
        /// Course the visit belongs to.
        #[arg(long, requires = "session")]
        course: Option<String>,
        /// Session number within the course.
        #[arg(long)]
        session: Option<i32>,
    },
    /// Move a booked visit to another slot (same appointment id).
    #[command(
        after_help = "Example:\n  clinicctl appointment reschedule $APPOINTMENT --slot $OTHER_SLOT"
    )]
    Reschedule {
        /// Appointment id.
        appointment_id: String,
        #[command(flatten)]
        target: Target,
    },
    /// Cancel a booked or checked-in visit.
    #[command(
        after_help = "Example:\n  clinicctl appointment cancel $APPOINTMENT --reason patient-request"
    )]
    Cancel {
        /// Appointment id.
        appointment_id: String,
        /// Why: patient-request, clinic, provider-unavailable, clinical, authorization, other.
        #[arg(long, value_parser = |s: &str| enum_value("clinicnet.appointments.v1.CancellationReason", s))]
        reason: i32,
        /// Staff note.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Record the patient's arrival.
    #[command(after_help = "Example:\n  clinicctl appointment check-in $APPOINTMENT")]
    CheckIn {
        /// Appointment id.
        appointment_id: String,
    },
    /// Record a finished visit: dose, monitoring, blood pressure, PHQ-9.
    #[command(
        after_help = "Example:\n  clinicctl appointment complete $APPOINTMENT --modality esketamine --dose-mg 56 \\\n    --monitoring-minutes 125 --bp-before 128/82 --bp-after 134/86 --phq9 2,1,2,1,1,1,1,1,0 --rems-form-filed"
    )]
    Complete {
        /// Appointment id.
        appointment_id: String,
        #[command(flatten)]
        completion: CompletionArgs,
    },
    /// Mark a booked visit whose start has passed as a no-show.
    #[command(after_help = "Example:\n  clinicctl appointment no-show $APPOINTMENT")]
    NoShow {
        /// Appointment id.
        appointment_id: String,
    },
    /// Show one visit.
    #[command(after_help = "Example:\n  clinicctl appointment get $APPOINTMENT")]
    Get {
        /// Appointment id.
        appointment_id: String,
    },
    /// List visits by clinic, patient, course, status and start.
    #[command(
        after_help = "Example:\n  clinicctl appointment list --clinic $CLINIC --status booked --days 7"
    )]
    List {
        /// Clinic id (required for partner clinics).
        #[arg(long)]
        clinic: Option<String>,
        /// Patient id.
        #[arg(long)]
        patient: Option<String>,
        /// Course id.
        #[arg(long)]
        course: Option<String>,
        /// Statuses (booked, checked-in, fulfilled, cancelled, noshow…; repeat).
        #[arg(long = "status", value_parser = |s: &str| enum_value("clinicnet.appointments.v1.AppointmentStatus", s))]
        statuses: Vec<i32>,
        /// Only visits starting from this local date (with --days).
        #[arg(long, value_parser = crate::args::parse_date)]
        from: Option<clinicnet_proto::common::v1::Date>,
        /// Days from --from (only with --from).
        #[arg(long, requires = "from", default_value_t = 14)]
        days: i64,
        #[command(flatten)]
        page: Page,
    },
    /// Book an integration or psychotherapy session 24-72 h after a ketamine session.
    #[command(
        after_help = "Example:\n  clinicctl appointment book-integration $FULFILLED_APPOINTMENT --slot $INTEGRATION_SLOT"
    )]
    BookIntegration {
        /// The fulfilled ketamine or esketamine visit.
        source_appointment_id: String,
        #[command(flatten)]
        target: Target,
    },
}

/// Runs an appointment command.
pub async fn run(ctx: &Ctx, cmd: AppointmentCmd) -> anyhow::Result<()> {
    let mut client = ctx.conn.appointments()?;
    const ONE: &str = "clinicnet.appointments.v1.";
    match cmd {
        AppointmentCmd::Book {
            target,
            patient,
            dose_mg,
            course,
            session,
        } => {
            let target = match (target.slot, target.hold) {
                (Some(slot), _) => pb::book_appointment_request::Target::SlotId(slot),
                (None, Some(hold)) => pb::book_appointment_request::Target::HoldId(hold),
                (None, None) => return Err(exit::usage("give --slot or --hold")),
            };
            let response = client
                .book_appointment(pb::BookAppointmentRequest {
                    request_id: ctx.request_id(),
                    target: Some(target),
                    patient_id: patient,
                    planned_dose_mg: dose_mg,
                    course_id: course.unwrap_or_default(),
                    course_session_number: session.unwrap_or(0),
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                &format!("{ONE}BookAppointmentResponse"),
                "appointment",
            )
        }
        AppointmentCmd::Reschedule {
            appointment_id,
            target,
        } => {
            let target = match (target.slot, target.hold) {
                (Some(slot), _) => pb::reschedule_appointment_request::Target::SlotId(slot),
                (None, Some(hold)) => pb::reschedule_appointment_request::Target::HoldId(hold),
                (None, None) => return Err(exit::usage("give --slot or --hold")),
            };
            let response = client
                .reschedule_appointment(pb::RescheduleAppointmentRequest {
                    request_id: ctx.request_id(),
                    appointment_id,
                    target: Some(target),
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                &format!("{ONE}RescheduleAppointmentResponse"),
                "appointment",
            )
        }
        AppointmentCmd::Cancel {
            appointment_id,
            reason,
            note,
        } => {
            let response = client
                .cancel_appointment(pb::CancelAppointmentRequest {
                    request_id: ctx.request_id(),
                    appointment_id,
                    reason,
                    note,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                &format!("{ONE}CancelAppointmentResponse"),
                "appointment",
            )
        }
        AppointmentCmd::CheckIn { appointment_id } => {
            let response = client
                .check_in_appointment(pb::CheckInAppointmentRequest {
                    request_id: ctx.request_id(),
                    appointment_id,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                &format!("{ONE}CheckInAppointmentResponse"),
                "appointment",
            )
        }
        AppointmentCmd::Complete {
            appointment_id,
            completion,
        } => {
            let response = client
                .complete_appointment(pb::CompleteAppointmentRequest {
                    request_id: ctx.request_id(),
                    appointment_id,
                    completion: Some(completion.completion()),
                })
                .await?
                .into_inner();
            ctx.out
                .object(&response, &format!("{ONE}CompleteAppointmentResponse"), "")
        }
        AppointmentCmd::NoShow { appointment_id } => {
            let response = client
                .mark_no_show(pb::MarkNoShowRequest {
                    request_id: ctx.request_id(),
                    appointment_id,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                &format!("{ONE}MarkNoShowResponse"),
                "appointment",
            )
        }
        AppointmentCmd::Get { appointment_id } => {
            let response = client
                .get_appointment(pb::GetAppointmentRequest { appointment_id })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                &format!("{ONE}GetAppointmentResponse"),
                "appointment",
            )
        }
        AppointmentCmd::List {
            clinic,
            patient,
            course,
            statuses,
            from,
            days,
            page,
        } => {
            let starting_within = match from {
                Some(from) => Some(
                    Window {
                        from: Some(from),
                        days,
                    }
                    .proto(&ctx.zone)?,
                ),
                None => None,
            };
            let response = client
                .list_appointments(pb::ListAppointmentsRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                    clinic_id: clinic.unwrap_or_default(),
                    patient_id: patient.unwrap_or_default(),
                    course_id: course.unwrap_or_default(),
                    statuses,
                    starting_within,
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                &format!("{ONE}ListAppointmentsResponse"),
                "appointments",
                APPOINTMENT_COLUMNS,
            )
        }
        AppointmentCmd::BookIntegration {
            source_appointment_id,
            target,
        } => {
            let target = match (target.slot, target.hold) {
                (Some(slot), _) => pb::book_integration_session_request::Target::SlotId(slot),
                (None, Some(hold)) => pb::book_integration_session_request::Target::HoldId(hold),
                (None, None) => return Err(exit::usage("give --slot or --hold")),
            };
            let response = client
                .book_integration_session(pb::BookIntegrationSessionRequest {
                    request_id: ctx.request_id(),
                    source_appointment_id,
                    target: Some(target),
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                &format!("{ONE}BookIntegrationSessionResponse"),
                "appointment",
            )
        }
    }
}
