//! `clinicctl availability import`: read a file, check every row (line numbers, nothing applied
//! when any is bad), resolve chair and provider names against the clinic, show the diff against
//! current availability, ask, then stream the sync with a progress bar.

use crate::commands::availability::{Window, default_sync_version};
use crate::context::Ctx;
use crate::exit;
use crate::import::diff::{self, Change, Incoming, Summary};
use crate::import::{self, FileSlot, Format, ParseOptions, RowError};
use crate::output::{Table, print_json, to_json};
use clap::Args;
use clinicnet_proto::appointments::v1 as pb;
use clinicnet_proto::directory::v1::{
    Chair, Clinic, GetClinicRequest, ListProvidersRequest, Provider,
};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;

/// Slots per streamed chunk (the contract allows up to 5,000).
const CHUNK: usize = 1_000;
/// Imports this large get a progress bar.
const PROGRESS_FROM: usize = 2_000;
/// Changes listed in the table before "… and N more".
const SHOWN_CHANGES: usize = 15;

/// Arguments of `availability import`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  clinicctl availability import --clinic $CLINIC slots.csv
  clinicctl availability import --clinic $CLINIC practice-calendar.ics --from 2026-03-02 --days 28
  clinicctl availability import --clinic $CLINIC medplum-slots.json --modality esketamine --yes

CSV: a header row with start,end[,chair][,modality][,provider][,external_id][,time_zone];
times RFC 3339, or local (read in time_zone, else the clinic's zone).
iCalendar: each VEVENT (with RRULE/EXDATE/RDATE, TZID zones) is a slot; chair from LOCATION or
X-CLINICNET-CHAIR, modality from CATEGORIES or X-CLINICNET-MODALITY.
FHIR R4: a Bundle of Slot resources; only status free is imported (busy, busy-tentative and
busy-unavailable are not free time; entered-in-error is ignored).
Chairs are named by id or display name, providers by id or NPI.")]
pub struct ImportArgs {
    /// Clinic whose availability is replaced inside the window.
    #[arg(long)]
    pub clinic: String,
    /// The file: .csv, .ics, or a FHIR Bundle (.json).
    pub file: PathBuf,
    /// Format, when the file name does not tell.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub window: Window,
    /// Chair (id or name) for rows that name none.
    #[arg(long)]
    pub chair: Option<String>,
    /// Modality for rows that name none.
    #[arg(long, value_parser = crate::args::parse_modality)]
    pub modality: Option<i32>,
    /// Apply without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Show the diff and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Sync version (default: now in milliseconds).
    #[arg(long)]
    pub sync_version: Option<u64>,
}

/// Runs an import.
pub async fn run(ctx: &Ctx, args: ImportArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| exit::usage(format!("cannot read {}: {e}", args.file.display())))?;
    let format = match args.format {
        Some(f) => f,
        None => Format::detect(&args.file.to_string_lossy(), &text).ok_or_else(|| {
            exit::usage("cannot tell the file's format: pass --format csv|ics|fhir")
        })?,
    };
    let clinic = ctx
        .conn
        .directory()?
        .get_clinic(GetClinicRequest {
            clinic_id: args.clinic.clone(),
        })
        .await?
        .into_inner()
        .clinic
        .unwrap_or_default();
    let zone = crate::args::parse_zone(&clinic.time_zone).map_err(exit::usage)?;
    let window = args.window.interval(&zone)?;
    let options = ParseOptions {
        zone,
        window,
        default_chair: args.chair.clone(),
        default_modality: args.modality,
    };
    let parsed =
        import::parse(format, &text, &options).map_err(|errors| bad_rows(&args, &errors))?;
    let providers = providers_of(ctx, &clinic.clinic_id).await?;
    let incoming =
        resolve(&parsed.slots, &clinic, &providers).map_err(|errors| bad_rows(&args, &errors))?;
    let current = current_slots(ctx, &clinic.clinic_id, window).await?;
    let diff = diff::diff(&incoming, &current);
    let summary = Summary {
        file_slots: incoming.len(),
        skipped: parsed.skipped.len(),
        added: diff.added.len(),
        removed: diff.removed.len(),
        unchanged: diff.unchanged,
        kept: diff.kept.len(),
        conflicts: diff.conflicts.len(),
    };
    let changes = changes(&incoming, &diff);
    if !ctx.out.json() {
        print_diff(ctx, &clinic, window, &summary, &changes, &parsed.skipped);
    }
    let json_report = |outcome: Option<serde_json::Value>| {
        serde_json::json!({
            "clinic_id": clinic.clinic_id,
            "window": { "start_time": window.0.to_string(), "end_time": window.1.to_string() },
            "summary": summary,
            "changes": changes,
            "skipped": parsed.skipped.iter().map(|s| serde_json::json!({"line": s.line, "reason": s.reason})).collect::<Vec<_>>(),
            "outcome": outcome,
        })
    };
    if args.dry_run {
        if ctx.out.json() {
            print_json(&json_report(None))?;
        }
        return Ok(());
    }
    if diff.is_empty() {
        if ctx.out.json() {
            print_json(&json_report(None))?;
        } else {
            println!("nothing to change: the clinic's availability already matches the file");
        }
        return Ok(());
    }
    if !args.yes {
        confirm(&clinic)?;
    }
    let sync_version = args.sync_version.unwrap_or_else(default_sync_version);
    let outcome = stream(
        ctx,
        &ctx.request_id(),
        &clinic.clinic_id,
        window,
        sync_version,
        &incoming,
    )
    .await?;
    if ctx.out.json() {
        print_json(&json_report(Some(to_json(
            &outcome,
            "clinicnet.appointments.v1.SyncOutcome",
        )?)))
    } else {
        println!(
            "applied sync {}: {} added, {} removed, {} unchanged, {} conflicts{}",
            outcome.sync_version,
            outcome.slots_added,
            outcome.slots_removed,
            outcome.slots_unchanged,
            outcome.conflicts.len(),
            if outcome.replayed {
                " (replayed: already applied)"
            } else {
                ""
            }
        );
        Ok(())
    }
}

fn bad_rows(args: &ImportArgs, errors: &[RowError]) -> anyhow::Error {
    for error in errors {
        eprintln!("{}:{}: {}", args.file.display(), error.line, error.message);
    }
    exit::usage(format!(
        "{} bad row{} in {}: nothing applied",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" },
        args.file.display()
    ))
}

/// The clinic's providers (all pages).
async fn providers_of(ctx: &Ctx, clinic_id: &str) -> anyhow::Result<Vec<Provider>> {
    let mut client = ctx.conn.directory()?;
    let mut providers = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_providers(ListProvidersRequest {
                page_size: 500,
                page_token,
                clinic_id: clinic_id.to_owned(),
            })
            .await?
            .into_inner();
        providers.extend(page.providers);
        if page.next_page_token.is_empty() {
            return Ok(providers);
        }
        page_token = page.next_page_token;
    }
}

/// Chair and provider names to ids; each unknown name is a bad row.
pub fn resolve(
    slots: &[FileSlot],
    clinic: &Clinic,
    providers: &[Provider],
) -> Result<Vec<Incoming>, Vec<RowError>> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for slot in slots {
        let chair: Option<&Chair> = clinic
            .chairs
            .iter()
            .find(|c| c.chair_id == slot.chair)
            .or_else(|| {
                clinic
                    .chairs
                    .iter()
                    .find(|c| !c.retired && c.display_name.eq_ignore_ascii_case(slot.chair.trim()))
            });
        let chair = match chair {
            Some(c) if c.retired => {
                errors.push(RowError {
                    line: slot.line,
                    message: format!("chair {:?} is retired", c.display_name),
                });
                continue;
            }
            Some(c) => c,
            None => {
                errors.push(RowError {
                    line: slot.line,
                    message: format!("the clinic has no chair {:?}", slot.chair),
                });
                continue;
            }
        };
        if !chair.modalities.contains(&slot.modality) {
            errors.push(RowError {
                line: slot.line,
                message: format!(
                    "chair {:?} does not support {}",
                    chair.display_name,
                    modality_name(slot.modality)
                ),
            });
            continue;
        }
        let provider_id = if slot.provider.is_empty() {
            String::new()
        } else {
            match providers
                .iter()
                .find(|p| p.provider_id == slot.provider || p.npi == slot.provider)
            {
                Some(p) => p.provider_id.clone(),
                None => {
                    errors.push(RowError {
                        line: slot.line,
                        message: format!("no provider {:?} serves this clinic", slot.provider),
                    });
                    continue;
                }
            }
        };
        out.push(Incoming {
            line: slot.line,
            slot: pb::AvailabilitySlot {
                external_id: slot.external_id.chars().take(200).collect(),
                chair_id: chair.chair_id.clone(),
                provider_id,
                modality: slot.modality,
                start_time: Some(crate::args::timestamp(slot.start)),
                end_time: Some(crate::args::timestamp(slot.end)),
            },
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn modality_name(modality: i32) -> String {
    crate::output::pool()
        .get_enum_by_name("clinicnet.common.v1.Modality")
        .map(|d| crate::output::enum_short_name(&d, modality))
        .unwrap_or_else(|| modality.to_string())
}

/// Every current slot of the window (all statuses but entered-in-error).
async fn current_slots(
    ctx: &Ctx,
    clinic_id: &str,
    window: (jiff::Timestamp, jiff::Timestamp),
) -> anyhow::Result<Vec<pb::Slot>> {
    let mut client = ctx.conn.appointments()?;
    let mut slots = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_slots(pb::ListSlotsRequest {
                page_size: 5_000,
                page_token,
                clinic_id: clinic_id.to_owned(),
                window: Some(crate::args::interval(window.0, window.1)),
                chair_id: String::new(),
                statuses: Vec::new(),
            })
            .await?
            .into_inner();
        slots.extend(page.slots);
        if page.next_page_token.is_empty() {
            return Ok(slots);
        }
        page_token = page.next_page_token;
    }
}

fn changes(incoming: &[Incoming], diff: &diff::Diff) -> Vec<Change> {
    let text = |ts: &Option<prost_types::Timestamp>| {
        ts.as_ref()
            .map(|t| crate::args::from_timestamp(t).to_string())
            .unwrap_or_default()
    };
    let mut out: Vec<Change> = diff
        .added
        .iter()
        .map(|&i| Change {
            change: "add",
            line: incoming[i].line,
            chair_id: incoming[i].slot.chair_id.clone(),
            modality: modality_name(incoming[i].slot.modality),
            start: text(&incoming[i].slot.start_time),
            end: text(&incoming[i].slot.end_time),
        })
        .collect();
    out.extend(diff.removed.iter().map(|s| Change {
        change: "remove",
        line: 0,
        chair_id: s.chair_id.clone(),
        modality: modality_name(s.modality),
        start: text(&s.start_time),
        end: text(&s.end_time),
    }));
    out.extend(diff.conflicts.iter().map(|(i, _)| Change {
        change: "conflict",
        line: incoming[*i].line,
        chair_id: incoming[*i].slot.chair_id.clone(),
        modality: modality_name(incoming[*i].slot.modality),
        start: text(&incoming[*i].slot.start_time),
        end: text(&incoming[*i].slot.end_time),
    }));
    out
}

fn print_diff(
    ctx: &Ctx,
    clinic: &Clinic,
    window: (jiff::Timestamp, jiff::Timestamp),
    summary: &Summary,
    changes: &[Change],
    skipped: &[import::Skipped],
) {
    let zone = crate::args::parse_zone(&clinic.time_zone).unwrap_or_else(|_| ctx.zone.clone());
    let local = |text: &str| {
        text.parse::<jiff::Timestamp>()
            .map(|t| {
                t.to_zoned_datetime(zone.clone())
                    .strftime("%a %Y-%m-%d %H:%M %Z")
                    .to_string()
            })
            .unwrap_or_else(|_| text.to_owned())
    };
    let chair_name = |id: &str| {
        clinic
            .chairs
            .iter()
            .find(|c| c.chair_id == id)
            .map(|c| c.display_name.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    println!(
        "{} ({}), window {} → {}",
        clinic.display_name,
        clinic.time_zone,
        local(&window.0.to_string()),
        local(&window.1.to_string())
    );
    println!(
        "file: {} slots, {} entries not imported | diff: +{} added, -{} removed, {} unchanged, {} booked/held/blocked kept, {} conflicts",
        summary.file_slots,
        summary.skipped,
        summary.added,
        summary.removed,
        summary.unchanged,
        summary.kept,
        summary.conflicts
    );
    let mut table = Table::new(vec!["", "LINE", "START", "END", "CHAIR", "MODALITY"]);
    for change in changes.iter().take(SHOWN_CHANGES) {
        table.row(vec![
            match change.change {
                "add" => "+",
                "remove" => "-",
                _ => "!",
            }
            .to_owned(),
            if change.line == 0 {
                "-".to_owned()
            } else {
                change.line.to_string()
            },
            local(&change.start),
            local(&change.end),
            chair_name(&change.chair_id),
            change.modality.clone(),
        ]);
    }
    if !changes.is_empty() {
        print!("{}", table.render());
    }
    if changes.len() > SHOWN_CHANGES {
        println!(
            "… and {} more (-o json lists them all)",
            changes.len() - SHOWN_CHANGES
        );
    }
    for skip in skipped.iter().take(5) {
        println!("not imported, line {}: {}", skip.line, skip.reason);
    }
    if skipped.len() > 5 {
        println!("… and {} more entries not imported", skipped.len() - 5);
    }
}

fn confirm(clinic: &Clinic) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(exit::usage(
            "standard input is not a terminal: pass --yes to apply (or --dry-run to only see the diff)",
        ));
    }
    eprint!(
        "Replace the free slots of {} in this window with the file's? [y/N] ",
        clinic.display_name
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(exit::refused("declined: nothing applied"))
    }
}

/// Streams a sync: a header, then chunks; all or nothing on the server. A progress bar is
/// drawn on standard error for large syncs when it is a terminal.
pub async fn stream(
    ctx: &Ctx,
    request_id: &str,
    clinic_id: &str,
    window: (jiff::Timestamp, jiff::Timestamp),
    sync_version: u64,
    incoming: &[Incoming],
) -> anyhow::Result<pb::SyncOutcome> {
    let total = incoming.len();
    let progress = if total >= PROGRESS_FROM {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} sending slots {bar:40} {pos}/{len} ({per_sec}, {eta} left)",
        ) {
            bar.set_style(style);
        }
        Some(bar)
    } else {
        None
    };
    let header = pb::StreamSyncAvailabilityRequest {
        request_id: request_id.to_owned(),
        part: Some(pb::stream_sync_availability_request::Part::Header(
            pb::SyncAvailabilityHeader {
                clinic_id: clinic_id.to_owned(),
                window: Some(crate::args::interval(window.0, window.1)),
                sync_version,
                expected_slot_count: i64::try_from(total).unwrap_or(i64::MAX),
            },
        )),
    };
    let chunks: Vec<Vec<pb::AvailabilitySlot>> = incoming
        .chunks(CHUNK)
        .map(|c| c.iter().map(|i| i.slot.clone()).collect())
        .collect();
    let bar = progress.clone();
    let messages = futures::stream::iter(std::iter::once(header).chain(chunks.into_iter().map(
        move |slots| {
            if let Some(bar) = &bar {
                bar.inc(slots.len() as u64);
            }
            pb::StreamSyncAvailabilityRequest {
                request_id: String::new(),
                part: Some(pb::stream_sync_availability_request::Part::Chunk(
                    pb::SyncAvailabilityChunk { slots },
                )),
            }
        },
    )));
    let result = ctx
        .conn
        .appointments_streaming()?
        .stream_sync_availability(messages)
        .await;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let response = result?.into_inner();
    response
        .outcome
        .ok_or_else(|| anyhow::anyhow!("the server answered without an outcome"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clinicnet_proto::common::v1::Modality;

    fn clinic() -> Clinic {
        Clinic {
            clinic_id: "c".into(),
            chairs: vec![
                Chair {
                    chair_id: "ch-1".into(),
                    display_name: "Spravato 1".into(),
                    modalities: vec![Modality::EsketamineNasalSpray as i32],
                    capacity: 1,
                    ..Default::default()
                },
                Chair {
                    chair_id: "ch-old".into(),
                    display_name: "Old chair".into(),
                    modalities: vec![Modality::IvKetamine as i32],
                    retired: true,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn slot(line: usize, chair: &str, modality: Modality, provider: &str) -> FileSlot {
        FileSlot {
            line,
            external_id: String::new(),
            chair: chair.into(),
            provider: provider.into(),
            modality: modality as i32,
            start: "2026-03-10T13:00:00Z".parse().unwrap(),
            end: "2026-03-10T15:30:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn chairs_by_name_or_id_and_providers_by_npi() {
        let providers = vec![Provider {
            provider_id: "p-1".into(),
            npi: "1234567893".into(),
            ..Default::default()
        }];
        let ok = resolve(
            &[
                slot(
                    2,
                    "spravato 1",
                    Modality::EsketamineNasalSpray,
                    "1234567893",
                ),
                slot(3, "ch-1", Modality::EsketamineNasalSpray, ""),
            ],
            &clinic(),
            &providers,
        )
        .unwrap();
        assert_eq!(ok[0].slot.chair_id, "ch-1");
        assert_eq!(ok[0].slot.provider_id, "p-1");
        assert_eq!(ok[1].slot.chair_id, "ch-1");
        let errors = resolve(
            &[
                slot(2, "Nope", Modality::IvKetamine, ""),
                slot(3, "Spravato 1", Modality::IvKetamine, ""),
                slot(4, "ch-old", Modality::IvKetamine, ""),
                slot(5, "Spravato 1", Modality::EsketamineNasalSpray, "999"),
            ],
            &clinic(),
            &providers,
        )
        .unwrap_err();
        assert_eq!(
            errors.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![2, 3, 4, 5]
        );
        assert!(errors[1].message.contains("does not support iv_ketamine"));
        assert!(errors[2].message.contains("retired"));
    }
}
