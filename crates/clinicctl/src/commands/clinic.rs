//! `clinicctl clinic`: register, read, change, suspend and search clinics and their chairs
//! (DirectoryService).

use crate::args::{parse_date, parse_modality};
use crate::context::{Ctx, Page};
use crate::exit;
use crate::output::{Column, from_json_file};
use clap::Subcommand;
use clinicnet_proto::common::v1::GeoPoint;
use clinicnet_proto::directory::v1 as pb;
use std::path::PathBuf;

const CLINIC_COLUMNS: &[Column] = &[
    ("CLINIC", "clinic_id"),
    ("NAME", "display_name"),
    ("STATUS", "status"),
    ("TIME ZONE", "time_zone"),
    ("LANGUAGES", "languages"),
    ("MODALITIES", "modalities"),
    ("VERSION", "version"),
];

const SEARCH_COLUMNS: &[Column] = &[
    ("CLINIC", "clinic.clinic_id"),
    ("NAME", "clinic.display_name"),
    ("KM", "distance_km"),
    ("LANGUAGES", "clinic.languages"),
    ("MODALITIES", "clinic.modalities"),
];

/// Clinics of the network (ops registers them; partners update their own).
#[derive(Debug, Subcommand)]
pub enum ClinicCmd {
    /// Register a clinic from a JSON file (a clinicnet.directory.v1.Clinic).
    #[command(
        after_help = "Example:\n  clinicctl clinic create --file crates/clinicctl/seed/miami/clinics/ketamine-health-centers.json"
    )]
    Create {
        /// JSON file with the clinic (proto3 JSON; ids, status and version are ignored).
        #[arg(long)]
        file: PathBuf,
    },
    /// Show one clinic with its locations, chairs, hours and policy.
    #[command(
        after_help = "Example:\n  clinicctl clinic get 0196d7c2-9b1e-7cc3-a4f5-1b2c3d4e5f60\n  clinicctl clinic get 0196d7c2-9b1e-7cc3-a4f5-1b2c3d4e5f60 -o json | jq .clinic.chairs"
    )]
    Get {
        /// Clinic id.
        clinic_id: String,
    },
    /// List clinics, active and suspended.
    #[command(after_help = "Example:\n  clinicctl clinic list --status active")]
    List {
        /// Only this status: active or suspended.
        #[arg(long, value_parser = |s: &str| crate::args::enum_value("clinicnet.directory.v1.ClinicStatus", s))]
        status: Option<i32>,
        #[command(flatten)]
        page: Page,
    },
    /// Replace a clinic's profile from a JSON file (read it with `clinic get -o json` first).
    #[command(
        after_help = "Example:\n  clinicctl clinic get $CLINIC -o json | jq .clinic > clinic.json\n  $EDITOR clinic.json\n  clinicctl clinic update --file clinic.json"
    )]
    Update {
        /// JSON file with the clinic; clinic_id names it and version is the expected version.
        #[arg(long)]
        file: PathBuf,
        /// Expected version (default: the version in the file).
        #[arg(long)]
        expected_version: Option<u64>,
    },
    /// Suspend an active clinic: hidden from search, no new bookings.
    #[command(
        after_help = "Example:\n  clinicctl clinic suspend $CLINIC --reason \"REMS recertification pending\""
    )]
    Suspend {
        /// Clinic id.
        clinic_id: String,
        /// Why (shown to ops).
        #[arg(long)]
        reason: String,
        /// Expected version (default: the current one, read first).
        #[arg(long)]
        expected_version: Option<u64>,
    },
    /// Reactivate a suspended clinic.
    #[command(after_help = "Example:\n  clinicctl clinic reactivate $CLINIC")]
    Reactivate {
        /// Clinic id.
        clinic_id: String,
        /// Expected version (default: the current one, read first).
        #[arg(long)]
        expected_version: Option<u64>,
    },
    /// Add a chair or room, or replace one (with --chair-id).
    #[command(
        after_help = "Example:\n  clinicctl clinic add-chair $CLINIC --location $LOCATION --name \"Infusion 3\" --modality iv --modality esketamine"
    )]
    AddChair {
        /// Clinic id.
        clinic_id: String,
        /// Replace this chair instead of adding one.
        #[arg(long)]
        chair_id: Option<String>,
        /// Location id of the clinic.
        #[arg(long)]
        location: String,
        /// Name shown to staff.
        #[arg(long)]
        name: String,
        /// Modality the chair supports (repeat for several).
        #[arg(long = "modality", required = true, value_parser = parse_modality)]
        modalities: Vec<i32>,
        /// Patients at once (1 for a chair).
        #[arg(long, default_value_t = 1)]
        capacity: i32,
    },
    /// Retire a chair (kept for history, takes no new slots).
    #[command(after_help = "Example:\n  clinicctl clinic remove-chair $CLINIC $CHAIR")]
    RemoveChair {
        /// Clinic id.
        clinic_id: String,
        /// Chair id.
        chair_id: String,
    },
    /// Find active clinics by modality, language, payer, date open, REMS and distance.
    #[command(
        after_help = "Example:\n  clinicctl clinic search --modality esketamine --language es --near 25.7617,-80.1918 --radius-km 25"
    )]
    Search {
        /// Modality offered (iv, esketamine, lozenge, integration, psychotherapy, telehealth).
        #[arg(long, value_parser = parse_modality)]
        modality: Option<i32>,
        /// Language spoken (BCP 47 primary subtag, e.g. es).
        #[arg(long)]
        language: Option<String>,
        /// In-network payer id.
        #[arg(long)]
        payer: Option<String>,
        /// Open on this local date (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date)]
        open_on: Option<clinicnet_proto::common::v1::Date>,
        /// REMS certification current (true) or not (false).
        #[arg(long)]
        rems_certified: Option<bool>,
        /// Search around LAT,LON.
        #[arg(long, requires = "radius_km")]
        near: Option<String>,
        /// Radius around --near in kilometres.
        #[arg(long)]
        radius_km: Option<f64>,
        #[command(flatten)]
        page: Page,
    },
}

/// Runs a clinic command.
pub async fn run(ctx: &Ctx, cmd: ClinicCmd) -> anyhow::Result<()> {
    let mut client = ctx.conn.directory()?;
    match cmd {
        ClinicCmd::Create { file } => {
            let clinic: pb::Clinic = from_json_file(&file, "clinicnet.directory.v1.Clinic")?;
            let response = client
                .create_clinic(pb::CreateClinicRequest {
                    request_id: ctx.request_id(),
                    clinic: Some(clinic),
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.directory.v1.CreateClinicResponse",
                "clinic",
            )
        }
        ClinicCmd::Get { clinic_id } => {
            let response = client
                .get_clinic(pb::GetClinicRequest { clinic_id })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.directory.v1.GetClinicResponse",
                "clinic",
            )
        }
        ClinicCmd::List { status, page } => {
            let response = client
                .list_clinics(pb::ListClinicsRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                    status: status.unwrap_or(0),
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                "clinicnet.directory.v1.ListClinicsResponse",
                "clinics",
                CLINIC_COLUMNS,
            )
        }
        ClinicCmd::Update {
            file,
            expected_version,
        } => {
            let clinic: pb::Clinic = from_json_file(&file, "clinicnet.directory.v1.Clinic")?;
            let expected_version = expected_version.unwrap_or(clinic.version);
            if expected_version == 0 {
                return Err(exit::usage(
                    "no version in the file: pass --expected-version (see clinic get)",
                ));
            }
            let response = client
                .update_clinic(pb::UpdateClinicRequest {
                    request_id: ctx.request_id(),
                    clinic: Some(clinic),
                    expected_version,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.directory.v1.UpdateClinicResponse",
                "clinic",
            )
        }
        ClinicCmd::Suspend {
            clinic_id,
            reason,
            expected_version,
        } => {
            let expected_version = version_of(ctx, &clinic_id, expected_version).await?;
            let response = client
                .suspend_clinic(pb::SuspendClinicRequest {
                    request_id: ctx.request_id(),
                    clinic_id,
                    expected_version,
                    reason,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.directory.v1.SuspendClinicResponse",
                "clinic",
            )
        }
        ClinicCmd::Reactivate {
            clinic_id,
            expected_version,
        } => {
            let expected_version = version_of(ctx, &clinic_id, expected_version).await?;
            let response = client
                .reactivate_clinic(pb::ReactivateClinicRequest {
                    request_id: ctx.request_id(),
                    clinic_id,
                    expected_version,
                })
                .await?
                .into_inner();
            ctx.out.object(
                &response,
                "clinicnet.directory.v1.ReactivateClinicResponse",
                "clinic",
            )
        }
        ClinicCmd::AddChair {
            clinic_id,
            chair_id,
            location,
            name,
            modalities,
            capacity,
        } => {
            let expected_version = version_of(ctx, &clinic_id, None).await?;
            let response = client
                .upsert_chair(pb::UpsertChairRequest {
                    request_id: ctx.request_id(),
                    clinic_id,
                    expected_version,
                    chair: Some(pb::Chair {
                        chair_id: chair_id.unwrap_or_default(),
                        location_id: location,
                        display_name: name,
                        modalities,
                        capacity,
                        retired: false,
                    }),
                })
                .await?
                .into_inner();
            ctx.out
                .object(&response, "clinicnet.directory.v1.UpsertChairResponse", "")
        }
        ClinicCmd::RemoveChair {
            clinic_id,
            chair_id,
        } => {
            let expected_version = version_of(ctx, &clinic_id, None).await?;
            let response = client
                .remove_chair(pb::RemoveChairRequest {
                    request_id: ctx.request_id(),
                    clinic_id,
                    chair_id,
                    expected_version,
                })
                .await?
                .into_inner();
            ctx.out
                .object(&response, "clinicnet.directory.v1.RemoveChairResponse", "")
        }
        ClinicCmd::Search {
            modality,
            language,
            payer,
            open_on,
            rems_certified,
            near,
            radius_km,
            page,
        } => {
            let near = near.as_deref().map(parse_point).transpose()?;
            let response = client
                .search_clinics(pb::SearchClinicsRequest {
                    page_size: page.page_size,
                    page_token: page.page_token,
                    modality: modality.unwrap_or(0),
                    language: language.unwrap_or_default(),
                    payer_id: payer.unwrap_or_default(),
                    open_on,
                    rems_certified,
                    near,
                    radius_km: radius_km.unwrap_or(0.0),
                })
                .await?
                .into_inner();
            ctx.out.list(
                &response,
                "clinicnet.directory.v1.SearchClinicsResponse",
                "results",
                SEARCH_COLUMNS,
            )
        }
    }
}

/// The expected version given, else the clinic's current one.
async fn version_of(ctx: &Ctx, clinic_id: &str, given: Option<u64>) -> anyhow::Result<u64> {
    if let Some(version) = given {
        return Ok(version);
    }
    let clinic = ctx
        .conn
        .directory()?
        .get_clinic(pb::GetClinicRequest {
            clinic_id: clinic_id.to_owned(),
        })
        .await?
        .into_inner()
        .clinic
        .unwrap_or_default();
    Ok(clinic.version)
}

/// `LAT,LON` as a point.
pub fn parse_point(text: &str) -> anyhow::Result<GeoPoint> {
    let bad = || exit::usage(format!("{text:?} is not LAT,LON (e.g. 25.7617,-80.1918)"));
    let (lat, lon) = text.split_once(',').ok_or_else(bad)?;
    Ok(GeoPoint {
        latitude: lat.trim().parse().map_err(|_| bad())?,
        longitude: lon.trim().parse().map_err(|_| bad())?,
    })
}
