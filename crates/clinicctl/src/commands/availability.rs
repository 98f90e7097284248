//! `clinicctl availability`: import a partner's availability file, generate slots from clinic
//! hours, list and find slots, hold and release them (AppointmentsService).

use crate::args::{interval, parse_date, parse_modality, timestamp};
use crate::commands::import_cmd::{self, ImportArgs};
use crate::context::{Ctx, Page};
use crate::exit;
use crate::output::Column;
use clap::{Args, Subcommand};
use clinicnet_proto::appointments::v1 as pb;
use clinicnet_proto::common::v1::{Date, TimeInterval};
use jiff::tz::TimeZone;

const SLOT_COLUMNS: &[Column] = &[
    ("SLOT", "slot_id"),
    ("START", "start_time"),
    ("END", "end_time"),
    ("CHAIR", "chair_id"),
    ("PROVIDER", "provider_id"),
    ("MODALITY", "modality"),
    ("STATUS", "status"),
    ("EXTERNAL ID", "external_id"),
];

const OFFER_COLUMNS: &[Column] = &[
    ("SLOT", "slot.slot_id"),
    ("CLINIC", "slot.clinic_id"),
    ("VISIT START", "local_start"),
    ("VISIT END", "local_end"),
    ("CHAIR", "slot.chair_id"),
    ("MODALITY", "slot.modality"),
    ("KM", "distance_km"),
];

/// A window of local days in the clinic's (or the given) time zone.
#[derive(Debug, Clone, Args)]
pub struct Window {
    /// First local date (YYYY-MM-DD; default today).
    #[arg(long, value_parser = parse_date)]
    pub from: Option<Date>,
    /// Number of days from --from.
    #[arg(long, default_value_t = 14)]
    pub days: i64,
}

impl Window {
    /// [from 00:00, from + days 00:00) in `zone`.
    pub fn interval(&self, zone: &TimeZone) -> anyhow::Result<(jiff::Timestamp, jiff::Timestamp)> {
        if !(1..=93).contains(&self.days) {
            return Err(exit::usage("--days must be 1-93"));
        }
        let from = match &self.from {
            Some(d) => {
                crate::args::date_from_proto(d).ok_or_else(|| exit::usage("bad --from date"))?
            }
            None => jiff::ZonedDateTime::now()
                .with_time_zone(zone.clone())
                .date(),
        };
        let to = from
            .checked_add(jiff::Span::new().days(self.days))
            .map_err(|e| exit::usage(format!("--days: {e}")))?;
        let start = from.to_zoned_datetime(zone.clone())?.timestamp();
        let end = to.to_zoned_datetime(zone.clone())?.timestamp();
        Ok((start, end))
    }

    /// The window as the contracts' interval.
    pub fn proto(&self, zone: &TimeZone) -> anyhow::Result<TimeInterval> {
        let (start, end) = self.interval(zone)?;
        Ok(interval(start, end))
    }
}

/// A clinic's availability.
#[derive(Debug, Subcommand)]
pub enum AvailabilityCmd {
    /// Import availability from CSV, iCalendar (.ics) or a FHIR R4 Bundle of Slots: shows the
    /// diff against current availability and asks before applying; nothing is applied when any
    /// row is bad.
    Import(ImportArgs),
    /// Generate free slots from the clinic's hours and chairs, and apply them as a sync.
    #[command(
        after_help = "Example:\n  clinicctl availability generate --clinic $CLINIC --days 14"
    )]
    Generate {
        /// Clinic id.
        #[arg(long)]
        clinic: String,
        #[command(flatten)]
        window: Window,
        /// Only these chairs (repeat).
        #[arg(long = "chair")]
        chairs: Vec<String>,
        /// Only these modalities (repeat).
        #[arg(long = "modality", value_parser = parse_modality)]
        modalities: Vec<i32>,
        /// Sync version (default: now in milliseconds, so it always increases).
        #[arg(long)]
        sync_version: Option<u64>,
    },
    /// List a clinic's slots in a window with their FHIR status.
    #[command(
        after_help = "Example:\n  clinicctl availability list --clinic $CLINIC --days 7 --status free"
    )]
    List {
        /// Clinic id.
        #[arg(long)]
        clinic: String,
        #[command(flatten)]
        window: Window,
        /// Only this chair.
        #[arg(long)]
        chair: Option<String>,
        /// Only these statuses (free, busy, busy-unavailable, busy-tentative, entered-in-error).
        #[arg(long = "status", value_parser = |s: &str| crate::args::enum_value("clinicnet.appointments.v1.SlotStatus", s))]
        statuses: Vec<i32>,
        #[command(flatten)]
        page: Page,
    },
    /// Find free slots where a whole visit of a modality fits.
    #[command(
        after_help = "Example:\n  clinicctl availability find --modality esketamine --clinic $CLINIC --days 14\n  clinicctl availability find --modality iv --near 25.7617,-80.1918 --radius-km 30 --language es"
    )]
    Find {
        /// Modality of the visit.
        #[arg(long, value_parser = parse_modality)]
        modality: i32,
        /// One clinic...
        #[arg(long, conflicts_with = "near")]
        clinic: Option<String>,
        /// ...or clinics near LAT,LON.
        #[arg(long, requires = "radius_km")]
        near: Option<String>,
        /// Radius around --near in kilometres.
        #[arg(long)]
        radius_km: Option<f64>,
        /// Provider language (e.g. es).
        #[arg(long)]
        language: Option<String>,
        /// Only this provider.
        #[arg(long)]
        provider: Option<String>,
        #[command(flatten)]
        window: Window,
        #[command(flatten)]
        page: Page,
    },
    /// Hold a free slot for a few minutes while a booking is completed.
    #[command(
        after_help = "Example:\n  clinicctl availability hold $SLOT --patient $PATIENT --ttl-minutes 10"
    )]
    Hold {
        /// Slot id.
        slot_id: String,
        /// Patient the hold is for.
        #[arg(long)]
        patient: Option<String>,
        /// Minutes to hold (1-15; default 5).
        #[arg(long)]
        ttl_minutes: Option<i64>,
    },
    /// Release an active hold.
    #[command(after_help = "Example:\n  clinicctl availability release $HOLD")]
    Release {
        /// Hold id.
        hold_id: String,
    },
}

/// Runs an availability command.
pub async fn run(ctx: &Ctx, cmd: AvailabilityCmd) -> anyhow::Result<()> {
    match cmd {
        AvailabilityCmd::Import(args) => import_cmd::run(ctx, args).await,
        AvailabilityCmd::Generate {
            clinic,
            window,
            chairs,
            modalities,
            sync_version,
        } => {
            let zone = clinic_zone(ctx, &clinic).await?;
            let response = ctx
                .conn
                .appointments()?
                .generate_availability(pb::GenerateAvailabilityRequest {
                    request_id: ctx.request_id(),
                    clinic_id: clinic,
                    window: Some(window.proto(&zone)?),
                    sync_version: sync_version.unwrap_or_else(default_sync_version),
                    chair_ids: chairs,
                    modalities,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.appointments.v1.GenerateAvailabilityResponse",
                "outcome",
            )
        }
        AvailabilityCmd::List {
            clinic,
            window,
            chair,
            statuses,
            page,
        } => {
            let zone = clinic_zone(ctx, &clinic).await?;
            let response = ctx
                .conn
                .appointments()?
                .list_slots(pb::ListSlotsRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                    clinic_id: clinic,
                    window: Some(window.proto(&zone)?),
                    chair_id: chair.unwrap_or_default(),
                    statuses,
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                "clinicnet.appointments.v1.ListSlotsResponse",
                "slots",
                SLOT_COLUMNS,
            )
        }
        AvailabilityCmd::Find {
            modality,
            clinic,
            near,
            radius_km,
            language,
            provider,
            window,
            page,
        } => {
            let place = match (clinic, near) {
                (Some(clinic), None) => pb::find_slots_request::Place::ClinicId(clinic),
                (None, Some(near)) => pb::find_slots_request::Place::Near(pb::NearPoint {
                    point: Some(crate::commands::clinic::parse_point(&near)?),
                    radius_km: radius_km.unwrap_or(0.0),
                }),
                _ => return Err(exit::usage("give --clinic or --near")),
            };
            let response = ctx
                .conn
                .appointments()?
                .find_slots(pb::FindSlotsRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                    modality,
                    place: Some(place),
                    provider_language: language.unwrap_or_default(),
                    range: Some(window.proto(&ctx.zone)?),
                    provider_id: provider.unwrap_or_default(),
                    render_in_clinic_time_zone: true,
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                "clinicnet.appointments.v1.FindSlotsResponse",
                "offers",
                OFFER_COLUMNS,
            )
        }
        AvailabilityCmd::Hold {
            slot_id,
            patient,
            ttl_minutes,
        } => {
            let response = ctx
                .conn
                .appointments()?
                .hold_slot(pb::HoldSlotRequest {
                    request_id: ctx.request_id(),
                    slot_id,
                    patient_id: patient.unwrap_or_default(),
                    ttl: ttl_minutes.map(|m| prost_types::Duration {
                        seconds: m * 60,
                        nanos: 0,
                    }),
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.appointments.v1.HoldSlotResponse",
                "hold",
            )
        }
        AvailabilityCmd::Release { hold_id } => {
            let response = ctx
                .conn
                .appointments()?
                .release_hold(pb::ReleaseHoldRequest {
                    request_id: ctx.request_id(),
                    hold_id,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.appointments.v1.ReleaseHoldResponse",
                "hold",
            )
        }
    }
}

/// A sync version that increases with time: milliseconds since the epoch.
pub fn default_sync_version() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(1)
}

/// The clinic's time zone, from the directory.
pub async fn clinic_zone(ctx: &Ctx, clinic_id: &str) -> anyhow::Result<TimeZone> {
    let clinic = ctx
        .conn
        .directory()?
        .get_clinic(clinicnet_proto::directory::v1::GetClinicRequest {
            clinic_id: clinic_id.to_owned(),
        })
        .await?
        .into_inner()
        .clinic
        .unwrap_or_default();
    crate::args::parse_zone(&clinic.time_zone).map_err(exit::usage)
}

/// Now as a protobuf timestamp.
pub fn now() -> prost_types::Timestamp {
    timestamp(jiff::Timestamp::now())
}
