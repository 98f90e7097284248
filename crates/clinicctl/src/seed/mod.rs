//! `clinicctl seed miami`: the Miami demo network of DOMAIN.md — three clinics, their providers,
//! payers and plans, and two weeks of availability — loaded through the public gRPC API only.
//! Safe to run again: creations use fixed idempotency keys and fall back to finding what exists
//! (by NPI or id); availability is re-synced with a newer sync version. A service whose RPCs are
//! not implemented yet is skipped with a note, never faked.

pub mod journey;

use crate::commands::availability::default_sync_version;
use crate::commands::import_cmd::{resolve, stream};
use crate::context::Ctx;
use crate::import::{self, Format, ParseOptions};
use crate::output::{Table, from_json, print_json};
use clap::Subcommand;
use clinicnet_proto::directory::v1 as dir;
use clinicnet_proto::insurance::v1 as ins;
use serde::Serialize;
use tonic::Code;

/// Seed clinics: (key, JSON of a clinicnet.directory.v1.Clinic).
pub const CLINICS: [(&str, &str); 3] = [
    (
        "ketamine-health-centers",
        include_str!("../../seed/miami/clinics/ketamine-health-centers.json"),
    ),
    (
        "ketamine-wellness-south-florida",
        include_str!("../../seed/miami/clinics/ketamine-wellness-south-florida.json"),
    ),
    (
        "ketamine-expert-clinic",
        include_str!("../../seed/miami/clinics/ketamine-expert-clinic.json"),
    ),
];
const PROVIDERS: &str = include_str!("../../seed/miami/providers.json");
const PAYERS: &str = include_str!("../../seed/miami/payers.json");
const PLANS: [&str; 3] = [
    include_str!("../../seed/miami/plans/suncoast-ppo.json"),
    include_str!("../../seed/miami/plans/biscayne-hmo.json"),
    include_str!("../../seed/miami/plans/self-pay-cash.json"),
];
/// The practice calendar Ketamine Health Centers syncs its availability from.
pub const KHC_CALENDAR: &str = include_str!("../../seed/miami/ketamine-health-centers.ics");
/// The rules of the demo payer's integrator.
pub const INTEGRATOR_RULES: &str = include_str!("../../seed/miami/integrator-rules.toml");

/// Demo data.
#[derive(Debug, Subcommand)]
pub enum SeedCmd {
    /// The Miami network (clinics, providers, payers, plans) and two weeks of availability.
    #[command(
        after_help = "Example:\n  export CLINICNET_TOKEN=$(JWT_HS256_SECRET=clinicnet-development-secret clinicctl token mint --role ops)\n  clinicctl seed miami --days 14"
    )]
    Miami {
        /// Days of availability to sync from today.
        #[arg(long, default_value_t = 14)]
        days: i64,
    },
}

/// One line of the seed report.
#[derive(Debug, Clone, Serialize)]
pub struct Seeded {
    /// clinic, provider, payer, plan, availability.
    pub kind: &'static str,
    /// Seed key (clinic key, NPI, payer or plan id).
    pub key: String,
    /// Id in clinicnet; empty when skipped.
    pub id: String,
    /// created, existing, synced, skipped: <why>.
    pub result: String,
}

/// What a seed run did.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Each item.
    pub items: Vec<Seeded>,
    /// Parts skipped because a service is not ready.
    pub notes: Vec<String>,
}

impl Report {
    fn add(&mut self, kind: &'static str, key: &str, id: &str, result: impl Into<String>) {
        self.items.push(Seeded {
            kind,
            key: key.to_owned(),
            id: id.to_owned(),
            result: result.into(),
        });
    }
}

/// Whether the error is a service answering UNIMPLEMENTED (its RPCs have not landed yet).
pub fn not_ready(error: &anyhow::Error) -> bool {
    crate::exit::status_of(error).is_some_and(|s| s.code() == Code::Unimplemented)
}

fn code_of(error: &anyhow::Error) -> Option<Code> {
    crate::exit::status_of(error).map(|s| s.code())
}

/// Runs a seed command.
pub async fn run(ctx: &Ctx, cmd: SeedCmd) -> anyhow::Result<()> {
    match cmd {
        SeedCmd::Miami { days } => {
            let report = seed_miami(ctx, days).await?;
            if ctx.out.json() {
                return print_json(&report);
            }
            let mut table = Table::new(vec!["KIND", "KEY", "ID", "RESULT"]);
            for item in &report.items {
                table.row(vec![
                    item.kind.into(),
                    item.key.clone(),
                    if item.id.is_empty() {
                        "-".into()
                    } else {
                        item.id.clone()
                    },
                    item.result.clone(),
                ]);
            }
            print!("{}", table.render());
            for note in &report.notes {
                println!("note: {note}");
            }
            Ok(())
        }
    }
}

/// Every clinic (all pages).
pub async fn all_clinics(ctx: &Ctx) -> anyhow::Result<Vec<dir::Clinic>> {
    let mut client = ctx.conn.directory()?;
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_clinics(dir::ListClinicsRequest {
                page_size: 500,
                page_token,
                status: 0,
            })
            .await?
            .into_inner();
        out.extend(page.clinics);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        page_token = page.next_page_token;
    }
}

/// Every provider (all pages).
pub async fn all_providers(ctx: &Ctx) -> anyhow::Result<Vec<dir::Provider>> {
    let mut client = ctx.conn.directory()?;
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_providers(dir::ListProvidersRequest {
                page_size: 500,
                page_token,
                clinic_id: String::new(),
            })
            .await?
            .into_inner();
        out.extend(page.providers);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        page_token = page.next_page_token;
    }
}

/// The seed clinic `key` as the directory has it, found by NPI.
pub async fn find_clinic(ctx: &Ctx, key: &str) -> anyhow::Result<Option<dir::Clinic>> {
    let Some((_, json)) = CLINICS.iter().find(|(k, _)| *k == key) else {
        return Ok(None);
    };
    let seed: dir::Clinic = from_json(json, "clinicnet.directory.v1.Clinic")?;
    Ok(all_clinics(ctx)
        .await?
        .into_iter()
        .find(|c| c.npi == seed.npi))
}

/// Seeds the Miami network.
pub async fn seed_miami(ctx: &Ctx, days: i64) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let clinics = seed_clinics(ctx, &mut report).await?;
    if !clinics.is_empty() {
        seed_providers(ctx, &clinics, &mut report).await?;
    }
    seed_insurance(ctx, &mut report).await?;
    if !clinics.is_empty() {
        seed_availability(ctx, &clinics, days, &mut report).await?;
    }
    Ok(report)
}

async fn seed_clinics(
    ctx: &Ctx,
    report: &mut Report,
) -> anyhow::Result<Vec<(String, dir::Clinic)>> {
    let mut client = ctx.conn.directory()?;
    let mut out = Vec::new();
    for (key, json) in CLINICS {
        let clinic: dir::Clinic = from_json(json, "clinicnet.directory.v1.Clinic")?;
        let npi = clinic.npi.clone();
        let created = client
            .create_clinic(dir::CreateClinicRequest {
                request_id: format!("seed-miami/clinic/{npi}"),
                clinic: Some(clinic),
            })
            .await
            .map_err(anyhow::Error::new);
        match created {
            Ok(response) => {
                let clinic = response.into_inner().clinic.unwrap_or_default();
                report.add("clinic", key, &clinic.clinic_id, "created or replayed");
                out.push((key.to_owned(), clinic));
            }
            Err(e) if not_ready(&e) => {
                report.notes.push("directory is not ready (UNIMPLEMENTED): clinics, providers and availability skipped".into());
                return Ok(Vec::new());
            }
            Err(e) if code_of(&e) == Some(Code::AlreadyExists) => {
                match all_clinics(ctx).await?.into_iter().find(|c| c.npi == npi) {
                    Some(clinic) => {
                        report.add("clinic", key, &clinic.clinic_id, "existing");
                        out.push((key.to_owned(), clinic));
                    }
                    None => {
                        return Err(
                            e.context(format!("clinic {key} exists but cannot be found by NPI"))
                        );
                    }
                }
            }
            Err(e) => return Err(e.context(format!("seeding clinic {key}"))),
        }
    }
    Ok(out)
}

async fn seed_providers(
    ctx: &Ctx,
    clinics: &[(String, dir::Clinic)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut client = ctx.conn.directory()?;
    let file: serde_json::Value = serde_json::from_str(PROVIDERS)?;
    let entries = file["providers"].as_array().cloned().unwrap_or_default();
    let mut existing: Option<Vec<dir::Provider>> = None;
    for entry in entries {
        let mut provider: dir::Provider = from_json(
            &entry["provider"].to_string(),
            "clinicnet.directory.v1.Provider",
        )?;
        provider.clinic_ids = entry["clinics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str())
            .filter_map(|k| {
                clinics
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, c)| c.clinic_id.clone())
            })
            .collect();
        let npi = provider.npi.clone();
        let created = client
            .create_provider(dir::CreateProviderRequest {
                request_id: format!("seed-miami/provider/{npi}"),
                provider: Some(provider),
            })
            .await
            .map_err(anyhow::Error::new);
        match created {
            Ok(response) => {
                let p = response.into_inner().provider.unwrap_or_default();
                report.add("provider", &npi, &p.provider_id, "created or replayed");
            }
            Err(e) if code_of(&e) == Some(Code::AlreadyExists) => {
                if existing.is_none() {
                    existing = Some(all_providers(ctx).await?);
                }
                let id = existing
                    .as_ref()
                    .and_then(|all| all.iter().find(|p| p.npi == npi))
                    .map(|p| p.provider_id.clone())
                    .unwrap_or_default();
                report.add("provider", &npi, &id, "existing");
            }
            Err(e) => return Err(e.context(format!("seeding provider {npi}"))),
        }
    }
    Ok(())
}

async fn seed_insurance(ctx: &Ctx, report: &mut Report) -> anyhow::Result<()> {
    let mut client = ctx.conn.insurance()?;
    let payers: serde_json::Value = serde_json::from_str(PAYERS)?;
    for value in payers["payers"].as_array().cloned().unwrap_or_default() {
        let payer: ins::Payer = from_json(&value.to_string(), "clinicnet.insurance.v1.Payer")?;
        let id = payer.payer_id.clone();
        let result = client
            .upsert_payer(ins::UpsertPayerRequest {
                request_id: format!("seed-miami/payer/{id}"),
                payer: Some(payer),
                expected_version: 0,
            })
            .await
            .map_err(anyhow::Error::new);
        match result {
            Ok(_) => report.add("payer", &id, &id, "created or replayed"),
            Err(e) if not_ready(&e) => {
                report.notes.push(
                    "insurance is not ready (UNIMPLEMENTED): payers and plans skipped".into(),
                );
                return Ok(());
            }
            Err(e) if code_of(&e) == Some(Code::Aborted) => {
                report.add("payer", &id, &id, "existing")
            }
            Err(e) => return Err(e.context(format!("seeding payer {id}"))),
        }
    }
    for json in PLANS {
        let plan: ins::Plan = from_json(json, "clinicnet.insurance.v1.Plan")?;
        let id = plan.plan_id.clone();
        let result = client
            .upsert_plan(ins::UpsertPlanRequest {
                request_id: format!("seed-miami/plan/{id}"),
                plan: Some(plan),
                expected_version: 0,
            })
            .await
            .map_err(anyhow::Error::new);
        match result {
            Ok(_) => report.add("plan", &id, &id, "created or replayed"),
            Err(e) if code_of(&e) == Some(Code::Aborted) => {
                report.add("plan", &id, &id, "existing")
            }
            Err(e) => return Err(e.context(format!("seeding plan {id}"))),
        }
    }
    Ok(())
}

/// Seconds to wait for the appointments service to learn a new clinic from the directory's
/// events (it replays the whole DIRECTORY stream on a fresh database).
const READ_MODEL_WAIT_SECONDS: u64 = 120;

/// Waits until the appointments service knows the clinic (ListSlots stops answering NOT_FOUND).
async fn wait_for_read_model(
    ctx: &Ctx,
    clinic_id: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_secs(READ_MODEL_WAIT_SECONDS);
    let mut told = false;
    loop {
        let now = jiff::Timestamp::now();
        let probe = ctx
            .conn
            .appointments()?
            .list_slots(clinicnet_proto::appointments::v1::ListSlotsRequest {
                page_size: 1,
                page_token: String::new(),
                clinic_id: clinic_id.to_owned(),
                window: Some(crate::args::interval(
                    now,
                    now + jiff::SignedDuration::from_hours(1),
                )),
                chair_id: String::new(),
                statuses: Vec::new(),
            })
            .await;
        match probe {
            Err(status)
                if status.code() == Code::NotFound && tokio::time::Instant::now() < deadline =>
            {
                if !told && !ctx.out.json() {
                    eprintln!(
                        "waiting for the appointments service to learn the clinics from the directory's events…"
                    );
                    told = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(status) if status.code() == Code::NotFound => {
                report.notes.push(format!(
                    "the appointments service did not learn clinic {clinic_id} within {READ_MODEL_WAIT_SECONDS}s"
                ));
                return Ok(());
            }
            _ => return Ok(()),
        }
    }
}

/// Ketamine Health Centers syncs its practice calendar (iCalendar, streamed); the others
/// generate slots from their hours.
async fn seed_availability(
    ctx: &Ctx,
    clinics: &[(String, dir::Clinic)],
    days: i64,
    report: &mut Report,
) -> anyhow::Result<()> {
    let window = crate::commands::availability::Window { from: None, days };
    for (key, clinic) in clinics {
        let zone = crate::args::parse_zone(&clinic.time_zone).map_err(crate::exit::usage)?;
        let span = window.interval(&zone)?;
        wait_for_read_model(ctx, &clinic.clinic_id, report).await?;
        let sync_version = default_sync_version();
        let result = if key == "ketamine-health-centers" {
            let options = ParseOptions {
                zone,
                window: span,
                default_chair: None,
                default_modality: None,
            };
            let parsed = import::parse(Format::Ics, KHC_CALENDAR, &options).map_err(|e| {
                anyhow::anyhow!(
                    "seed calendar: {}",
                    e.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            })?;
            let providers = all_providers(ctx).await?;
            let incoming = resolve(&parsed.slots, clinic, &providers).map_err(|e| {
                anyhow::anyhow!(
                    "seed calendar: {}",
                    e.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            })?;
            stream(ctx, &format!("seed-miami/sync/{}/{sync_version}", clinic.clinic_id), &clinic.clinic_id, span, sync_version, &incoming)
                .await
                .map(|o| format!("synced from its practice calendar (.ics): {} slots added, {} removed, {} unchanged", o.slots_added, o.slots_removed, o.slots_unchanged))
        } else {
            ctx.conn
                .appointments()?
                .generate_availability(
                    clinicnet_proto::appointments::v1::GenerateAvailabilityRequest {
                        request_id: format!(
                            "seed-miami/generate/{}/{sync_version}",
                            clinic.clinic_id
                        ),
                        clinic_id: clinic.clinic_id.clone(),
                        window: Some(crate::args::interval(span.0, span.1)),
                        sync_version,
                        chair_ids: Vec::new(),
                        modalities: Vec::new(),
                    },
                )
                .await
                .map_err(anyhow::Error::new)
                .map(|r| {
                    let o = r.into_inner().outcome.unwrap_or_default();
                    format!(
                        "generated from its hours: {} slots added, {} removed, {} unchanged",
                        o.slots_added, o.slots_removed, o.slots_unchanged
                    )
                })
        };
        match result {
            Ok(text) => report.add("availability", key, &clinic.clinic_id, text),
            Err(e) if not_ready(&e) => {
                report.notes.push(
                    "appointments is not ready (UNIMPLEMENTED): availability not synced".into(),
                );
                return Ok(());
            }
            Err(e) if code_of(&e) == Some(Code::NotFound) => {
                // The appointments read model learns clinics from directory events; give it a moment.
                report.add(
                    "availability",
                    key,
                    &clinic.clinic_id,
                    format!("skipped: {}", crate::exit::render(&e)),
                );
            }
            Err(e) => return Err(e.context(format!("availability of {key}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_files_are_valid_contract_messages() {
        for (key, json) in CLINICS {
            let clinic: dir::Clinic = from_json(json, "clinicnet.directory.v1.Clinic")
                .unwrap_or_else(|e| panic!("{key}: {e:#}"));
            assert!(!clinic.chairs.is_empty(), "{key}");
        }
        let file: serde_json::Value = serde_json::from_str(PROVIDERS).unwrap();
        for entry in file["providers"].as_array().unwrap() {
            let _: dir::Provider = from_json(
                &entry["provider"].to_string(),
                "clinicnet.directory.v1.Provider",
            )
            .unwrap();
        }
        for json in PLANS {
            let _: ins::Plan = from_json(json, "clinicnet.insurance.v1.Plan").unwrap();
        }
        crate::integrator::rules::Rules::parse(INTEGRATOR_RULES).unwrap();
    }

    #[test]
    fn the_practice_calendar_fills_two_weeks() {
        let zone = jiff::tz::TimeZone::get("America/New_York").unwrap();
        let start = jiff::civil::date(2026, 11, 30)
            .to_zoned_datetime(zone.clone())
            .unwrap()
            .timestamp();
        let end = jiff::civil::date(2026, 12, 14)
            .to_zoned_datetime(zone.clone())
            .unwrap()
            .timestamp();
        let parsed = import::parse(
            Format::Ics,
            KHC_CALENDAR,
            &ParseOptions {
                zone,
                window: (start, end),
                default_chair: None,
                default_modality: None,
            },
        )
        .unwrap();
        // Ten weekdays: 2+1(MWF)… per day; at least one esketamine slot every weekday.
        assert!(parsed.slots.len() > 60, "{}", parsed.slots.len());
        let clinic: dir::Clinic = from_json(CLINICS[0].1, "clinicnet.directory.v1.Clinic").unwrap();
        let mut with_ids = clinic.clone();
        for (i, chair) in with_ids.chairs.iter_mut().enumerate() {
            chair.chair_id = format!("chair-{i}");
        }
        assert!(resolve(&parsed.slots, &with_ids, &[]).is_ok());
    }
}
