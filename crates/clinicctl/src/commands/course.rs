//! `clinicctl course` and `clinicctl outcomes`: treatment course plans and courses, and the
//! response and remission figures computed from PHQ-9 scores (AppointmentsService).

use crate::args::{enum_value, parse_date, parse_modality};
use crate::commands::availability::Window;
use crate::context::{Ctx, Page};
use crate::output::Column;
use clap::Subcommand;
use clinicnet_proto::appointments::v1 as pb;
use clinicnet_proto::common::v1::{Date, TimeOfDay};

const PLAN_COLUMNS: &[Column] = &[
    ("PLAN", "plan_code"),
    ("NAME", "display_name"),
    ("MODALITY", "modality"),
];

/// Treatment courses.
#[derive(Debug, Subcommand)]
pub enum CourseCmd {
    /// List the configured course plans.
    #[command(after_help = "Example:\n  clinicctl course plans --modality esketamine")]
    Plans {
        /// Only plans of this modality.
        #[arg(long, value_parser = parse_modality)]
        modality: Option<i32>,
        #[command(flatten)]
        page: Page,
    },
    /// Create a course from a plan; its sessions are planned, not booked.
    #[command(
        after_help = "Example:\n  clinicctl course create --patient $PATIENT --clinic $CLINIC --plan esketamine-adult \\\n    --start 2026-03-09 --day mon --day thu --preferred-start 09:00"
    )]
    Create {
        /// Patient id.
        #[arg(long)]
        patient: String,
        /// Clinic id.
        #[arg(long)]
        clinic: String,
        /// Plan code (see `course plans`).
        #[arg(long)]
        plan: String,
        /// First local date (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date)]
        start: Date,
        /// Preferred provider.
        #[arg(long)]
        provider: Option<String>,
        /// Preferred local start time HH:MM.
        #[arg(long, value_parser = parse_time_of_day)]
        preferred_start: Option<TimeOfDay>,
        /// Weekdays the patient can come (mon..sun; repeat).
        #[arg(long = "day", value_parser = parse_day)]
        days: Vec<i32>,
    },
    /// Book every session of a course (slots picked from its preferences, or given).
    #[command(
        after_help = "Example:\n  clinicctl course book $COURSE\n  clinicctl course book $COURSE --choice 1=$SLOT_A --choice 2=$SLOT_B"
    )]
    Book {
        /// Course id.
        course_id: String,
        /// SESSION=SLOT for each session (all or none).
        #[arg(long = "choice", value_parser = parse_choice)]
        choices: Vec<pb::SessionSlotChoice>,
    },
    /// Show a course with its sessions.
    #[command(after_help = "Example:\n  clinicctl course get $COURSE")]
    Get {
        /// Course id.
        course_id: String,
    },
}

/// Outcomes.
#[derive(Debug, Subcommand)]
pub enum OutcomesCmd {
    /// Response and remission rates from PHQ-9 scores over a period.
    #[command(
        after_help = "Example:\n  clinicctl outcomes show --clinic $CLINIC --days 90 --modality esketamine\n\nWithout --from the period is the last --days days, today included."
    )]
    Show {
        /// Clinic id (empty: the whole network, ops only).
        #[arg(long)]
        clinic: Option<String>,
        /// Only this modality (default IV ketamine and esketamine).
        #[arg(long, value_parser = parse_modality)]
        modality: Option<i32>,
        #[command(flatten)]
        window: Window,
        /// Fewest sessions with a PHQ-9 for a patient to count (0: 3).
        #[arg(long, default_value_t = 0)]
        min_sessions: i32,
    },
}

fn parse_time_of_day(text: &str) -> Result<TimeOfDay, String> {
    let (h, m) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not HH:MM"))?;
    Ok(TimeOfDay {
        hours: h.parse().map_err(|_| format!("{text:?} is not HH:MM"))?,
        minutes: m.parse().map_err(|_| format!("{text:?} is not HH:MM"))?,
    })
}

fn parse_day(text: &str) -> Result<i32, String> {
    let full = match text.to_ascii_lowercase().get(..3) {
        Some("mon") => "monday",
        Some("tue") => "tuesday",
        Some("wed") => "wednesday",
        Some("thu") => "thursday",
        Some("fri") => "friday",
        Some("sat") => "saturday",
        Some("sun") => "sunday",
        _ => text,
    };
    enum_value("clinicnet.common.v1.DayOfWeek", full)
}

fn parse_choice(text: &str) -> Result<pb::SessionSlotChoice, String> {
    let (n, slot) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not SESSION=SLOT"))?;
    Ok(pb::SessionSlotChoice {
        session_number: n
            .parse()
            .map_err(|_| format!("{text:?}: session is a number"))?,
        slot_id: slot.to_owned(),
    })
}

/// Runs a course command.
pub async fn run(ctx: &Ctx, cmd: CourseCmd) -> anyhow::Result<()> {
    let mut client = ctx.conn.appointments()?;
    match cmd {
        CourseCmd::Plans { modality, page } => {
            let response = client
                .list_course_plans(pb::ListCoursePlansRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                    modality: modality.unwrap_or(0),
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                "clinicnet.appointments.v1.ListCoursePlansResponse",
                "plans",
                PLAN_COLUMNS,
            )
        }
        CourseCmd::Create {
            patient,
            clinic,
            plan,
            start,
            provider,
            preferred_start,
            days,
        } => {
            let response = client
                .create_course(pb::CreateCourseRequest {
                    request_id: ctx.request_id(),
                    patient_id: patient,
                    clinic_id: clinic,
                    plan_code: plan,
                    start_date: Some(start),
                    preferences: Some(pb::CoursePreferences {
                        provider_id: provider.unwrap_or_default(),
                        preferred_start,
                        days,
                    }),
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.appointments.v1.CreateCourseResponse",
                "course",
            )
        }
        CourseCmd::Book { course_id, choices } => {
            let response = client
                .book_course(pb::BookCourseRequest {
                    request_id: ctx.request_id(),
                    course_id,
                    choices,
                })
                .await?
                .into_inner();
            if ctx.out.json() {
                ctx.out.object(
                    &response,
                    "clinicnet.appointments.v1.BookCourseResponse",
                    "",
                )
            } else {
                ctx.out.list(
                    &response,
                    "clinicnet.appointments.v1.BookCourseResponse",
                    "appointments",
                    crate::commands::appointment::APPOINTMENT_COLUMNS,
                )
            }
        }
        CourseCmd::Get { course_id } => {
            let response = client
                .get_course(pb::GetCourseRequest { course_id })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.appointments.v1.GetCourseResponse",
                "course",
            )
        }
    }
}

/// Runs an outcomes command.
pub async fn run_outcomes(ctx: &Ctx, cmd: OutcomesCmd) -> anyhow::Result<()> {
    match cmd {
        OutcomesCmd::Show {
            clinic,
            modality,
            window,
            min_sessions,
        } => {
            // Outcomes look back: without --from the period is the last --days days.
            let window = match window.from {
                Some(_) => window,
                None => {
                    let today = jiff::ZonedDateTime::now()
                        .with_time_zone(ctx.zone.clone())
                        .date();
                    let from = today.checked_sub(jiff::Span::new().days(window.days - 1))?;
                    Window {
                        from: Some(crate::args::date_to_proto(from)),
                        days: window.days,
                    }
                }
            };
            let response = ctx
                .conn
                .appointments()?
                .get_outcomes(pb::GetOutcomesRequest {
                    clinic_id: clinic.unwrap_or_default(),
                    modality: modality.unwrap_or(0),
                    period: Some(window.proto(&ctx.zone)?),
                    min_sessions,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.appointments.v1.GetOutcomesResponse",
                "",
            )
        }
    }
}
