//! Availability: SyncAvailability, StreamSyncAvailability (chunks staged as they arrive, committed
//! all or nothing when the client half-closes), GenerateAvailability (weekly hours × chairs) and
//! ListSlots. Syncs of one clinic apply one at a time; replaying the last sync_version returns its
//! outcome, an older one is STALE_SYNC_VERSION.

use super::{State, caller, convert, idempotent, validate};
use crate::{
    domain::{
        clinic::ClinicView,
        refusal::refuse,
        schedule::{self, ChairPlan, Hours},
        visit,
    },
    events::publish,
    store::{
        self,
        availability::{Applied, Staged},
        directory::{ChairRow, ProviderRow},
    },
};
use clinicnet_proto::{
    appointments::v1::{
        AvailabilitySlot, GenerateAvailabilityRequest, GenerateAvailabilityResponse,
        ListSlotsRequest, ListSlotsResponse, PreconditionRule as Rule, SlotStatus,
        StreamSyncAvailabilityRequest, StreamSyncAvailabilityResponse, SyncAvailabilityRequest,
        SyncAvailabilityResponse, SyncConflict, SyncOutcome,
        stream_sync_availability_request::Part,
    },
    common::v1::{Modality, TimeInterval},
};
use platform::{ApiError, auth::Caller, error::Violations, paging::Page};
use prost::Message;
use sqlx::PgConnection;
use std::collections::HashMap;
use time::OffsetDateTime;
use tonic::{Request, Streaming};
use uuid::Uuid;

/// Most slots in a unary sync.
const MAX_UNARY_SLOTS: usize = 10_000;
/// Most slots in one chunk of a streamed sync.
const MAX_CHUNK_SLOTS: usize = 5_000;
/// Most slots in a streamed sync.
const MAX_STREAMED_SLOTS: i64 = 1_000_000;
/// Longest sync window, in days.
const MAX_WINDOW_DAYS: i64 = 93;
/// Most field violations reported for one sync.
const MAX_VIOLATIONS: usize = 100;

/// What every sync names.
#[derive(Debug, Clone)]
struct Header {
    clinic_id: String,
    window: (OffsetDateTime, OffsetDateTime),
    version: i64,
}

fn header(
    v: &mut Violations,
    clinic_id: &str,
    window: Option<&TimeInterval>,
    version: u64,
) -> Option<Header> {
    validate::text_id(v, "clinic_id", clinic_id);
    let window = validate::interval(v, "window", window, Some(MAX_WINDOW_DAYS));
    if version == 0 || i64::try_from(version).is_err() {
        v.add("sync_version", "greater than 0");
    }
    Some(Header {
        clinic_id: clinic_id.to_owned(),
        window: window?,
        version: i64::try_from(version).ok()?,
    })
}

/// A sync being staged.
struct Staging {
    clinic: ClinicView,
    chairs: HashMap<String, ChairRow>,
    providers: HashMap<String, ProviderRow>,
    count: i64,
}

enum Opened {
    Replay(SyncOutcome),
    Staging(Box<Staging>),
}

/// Locks the clinic's syncs and decides: replay, stale, or stage a new one.
async fn open(
    conn: &mut PgConnection,
    caller: &Caller,
    header: &Header,
) -> Result<Opened, ApiError> {
    caller.require_clinic(&header.clinic_id)?;
    let clinic = store::directory::clinic(conn, &header.clinic_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("clinic {}", header.clinic_id)))?;
    if clinic.suspended() {
        return Err(refuse(Rule::ClinicSuspended, "the clinic is suspended").into());
    }
    let last = store::availability::lock_last_version(conn, &header.clinic_id).await?;
    if header.version == last {
        let stored = store::availability::recorded_outcome(conn, &header.clinic_id, last)
            .await?
            .ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("sync {last} applied without an outcome"))
            })?;
        let mut outcome = SyncOutcome::decode(stored.as_slice()).map_err(ApiError::internal)?;
        outcome.replayed = true;
        return Ok(Opened::Replay(outcome));
    }
    if header.version < last {
        return Err(refuse(
            Rule::StaleSyncVersion,
            format!(
                "sync_version {} is older than {last}, the last applied",
                header.version
            ),
        )
        .into());
    }
    let chairs = store::directory::chairs_of(conn, &header.clinic_id)
        .await?
        .into_iter()
        .map(|c| (c.chair_id.clone(), c))
        .collect();
    let providers = store::directory::providers_of(conn, &header.clinic_id)
        .await?
        .into_iter()
        .map(|p| (p.provider_id.clone(), p))
        .collect();
    store::availability::begin_staging(conn).await?;
    Ok(Opened::Staging(Box::new(Staging {
        clinic,
        chairs,
        providers,
        count: 0,
    })))
}

/// Checks one synced slot; adds it to `staged` when valid. Returns the number of violations.
fn check_slot(
    v: &mut Violations,
    staging: &Staging,
    header: &Header,
    index: i64,
    slot: &AvailabilitySlot,
    staged: &mut Staged,
) -> Result<usize, ApiError> {
    let mut problems: Vec<(&str, &str)> = Vec::new();
    let modality = Modality::try_from(slot.modality).unwrap_or(Modality::Unspecified);
    if modality == Modality::Unspecified {
        problems.push(("modality", "required"));
    }
    if slot.chair_id.is_empty() {
        if modality != Modality::Telehealth || slot.provider_id.is_empty() {
            problems.push((
                "chair_id",
                "required (only a telehealth slot with a provider has no chair)",
            ));
        }
    } else {
        let chair = staging
            .chairs
            .get(&slot.chair_id)
            .ok_or_else(|| ApiError::NotFound(format!("chair {}", slot.chair_id)))?;
        if chair.retired {
            problems.push(("chair_id", "the chair is retired"));
        } else if !chair
            .modalities
            .iter()
            .any(|m| i32::from(*m) == slot.modality)
        {
            problems.push(("modality", "the chair does not support the modality"));
        }
    }
    if !slot.provider_id.is_empty() {
        let provider = staging
            .providers
            .get(&slot.provider_id)
            .ok_or_else(|| ApiError::NotFound(format!("provider {}", slot.provider_id)))?;
        if !provider.active {
            problems.push(("provider_id", "the provider is inactive"));
        } else if !provider
            .modalities
            .iter()
            .any(|m| i32::from(*m) == slot.modality)
        {
            problems.push(("provider_id", "the provider does not offer the modality"));
        }
    }
    if slot.external_id.chars().count() > 200 {
        problems.push(("external_id", "at most 200 characters"));
    }
    let start = slot.start_time.as_ref().and_then(convert::instant);
    let end = slot.end_time.as_ref().and_then(convert::instant);
    match (start, end) {
        (None, _) => problems.push(("start_time", "required, a valid timestamp")),
        (_, None) => problems.push(("end_time", "required, a valid timestamp")),
        (Some(start), Some(end)) if end <= start => {
            problems.push(("end_time", "must be after start_time"))
        }
        (Some(start), Some(end)) if start < header.window.0 || end > header.window.1 => {
            problems.push(("start_time", "the slot must lie inside the window"));
        }
        (Some(start), Some(end)) if problems.is_empty() => {
            staged.ordinals.push(index);
            staged.external_ids.push(slot.external_id.clone());
            staged.chair_ids.push(slot.chair_id.clone());
            staged.provider_ids.push(slot.provider_id.clone());
            staged
                .modalities
                .push(i16::try_from(slot.modality).unwrap_or(0));
            staged.starts.push(start);
            staged.ends.push(end);
        }
        _ => {}
    }
    for (name, why) in &problems {
        v.add(format!("slots[{index}].{name}"), *why);
    }
    Ok(problems.len())
}

/// Validates and stages a batch of synced slots, numbered on from those staged before.
async fn stage(
    conn: &mut PgConnection,
    staging: &mut Staging,
    header: &Header,
    slots: &[AvailabilitySlot],
) -> Result<(), ApiError> {
    let mut v = Violations::new();
    let mut staged = Staged::default();
    let mut problems = 0;
    for (i, slot) in slots.iter().enumerate() {
        let index = staging.count + i64::try_from(i).unwrap_or(i64::MAX);
        problems += check_slot(&mut v, staging, header, index, slot, &mut staged)?;
        if problems >= MAX_VIOLATIONS {
            break;
        }
    }
    v.finish()?;
    staging.count += i64::try_from(slots.len()).unwrap_or(i64::MAX);
    if !staged.is_empty() {
        store::availability::stage(conn, &staged).await?;
    }
    Ok(())
}

fn conflict(row: &store::availability::ConflictRow) -> SyncConflict {
    let (start, end) = store::bounds(&row.during);
    SyncConflict {
        kind: row.kind,
        slot_id: row.slot_id.to_string(),
        appointment_id: row
            .appointment_id
            .map(|a| a.to_string())
            .unwrap_or_default(),
        chair_id: row.chair_id.clone().unwrap_or_default(),
        start_time: Some(convert::timestamp(start)),
        end_time: Some(convert::timestamp(end)),
        external_id: row.external_id.clone(),
    }
}

/// Applies the staged slots, records the outcome and publishes AvailabilitySynced.
async fn close(
    conn: &mut PgConnection,
    header: &Header,
    request_id: &str,
) -> Result<SyncOutcome, ApiError> {
    if let Some(index) = store::availability::first_duplicate(conn).await? {
        return Err(ApiError::invalid(
            format!("slots[{index}]"),
            "repeats an earlier slot of the sync",
        ));
    }
    let Applied {
        added,
        removed,
        unchanged,
        conflicts,
    } = store::availability::apply(conn, &header.clinic_id, header.version, header.window).await?;
    let outcome = SyncOutcome {
        clinic_id: header.clinic_id.clone(),
        sync_version: u64::try_from(header.version).unwrap_or(0),
        window: Some(convert::interval(header.window.0, header.window.1)),
        replayed: false,
        slots_added: added,
        slots_removed: removed,
        slots_unchanged: unchanged,
        conflicts: conflicts.iter().map(conflict).collect(),
        applied_time: Some(convert::timestamp(OffsetDateTime::now_utc())),
    };
    store::availability::record(
        conn,
        &header.clinic_id,
        header.version,
        &outcome.encode_to_vec(),
    )
    .await?;
    publish::availability_synced(conn, &outcome, request_id).await?;
    tracing::info!(
        clinic_id = %header.clinic_id,
        sync_version = header.version,
        added, removed, unchanged,
        conflicts = outcome.conflicts.len(),
        "availability synced"
    );
    Ok(outcome)
}

/// SyncAvailability.
pub async fn sync(
    state: &State,
    request: Request<SyncAvailabilityRequest>,
) -> Result<SyncAvailabilityResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let header = header(
        &mut v,
        &req.clinic_id,
        req.window.as_ref(),
        req.sync_version,
    );
    if req.slots.len() > MAX_UNARY_SLOTS {
        v.add(
            "slots",
            "at most 10,000 slots: use StreamSyncAvailability for more",
        );
    }
    v.finish()?;
    let header = header.ok_or_else(|| ApiError::invalid("window", "required"))?;
    idempotent(
        &state.pool,
        &caller,
        "SyncAvailability",
        &req.request_id,
        &req,
        async |conn: &mut PgConnection| {
            let outcome = match open(conn, &caller, &header).await? {
                Opened::Replay(outcome) => outcome,
                Opened::Staging(mut staging) => {
                    stage(conn, &mut staging, &header, &req.slots).await?;
                    close(conn, &header, &req.request_id).await?
                }
            };
            Ok(SyncAvailabilityResponse {
                outcome: Some(outcome),
            })
        },
    )
    .await
}

/// StreamSyncAvailability.
pub async fn stream_sync(
    state: &State,
    request: Request<Streaming<StreamSyncAvailabilityRequest>>,
) -> Result<StreamSyncAvailabilityResponse, ApiError> {
    let caller = caller(&request)?;
    let mut stream = request.into_inner();
    let first = next(state, &mut stream)
        .await?
        .ok_or_else(|| ApiError::invalid("header", "the stream is empty: send the header first"))?;
    let Some(Part::Header(h)) = &first.part else {
        return Err(ApiError::invalid(
            "header",
            "the first message must carry the header",
        ));
    };
    let mut v = Violations::new();
    let header = header(&mut v, &h.clinic_id, h.window.as_ref(), h.sync_version);
    if !(0..=MAX_STREAMED_SLOTS).contains(&h.expected_slot_count) {
        v.add("header.expected_slot_count", "between 0 and 1,000,000");
    }
    v.finish()?;
    let header = header.ok_or_else(|| ApiError::invalid("header.window", "required"))?;
    let expected = h.expected_slot_count;
    let request_id = first.request_id.clone();
    idempotent(
        &state.pool,
        &caller,
        "StreamSyncAvailability",
        &request_id,
        &first,
        async |conn: &mut PgConnection| {
            let mut staging = match open(conn, &caller, &header).await? {
                Opened::Replay(outcome) => {
                    while next(state, &mut stream).await?.is_some() {}
                    return Ok(StreamSyncAvailabilityResponse {
                        outcome: Some(outcome),
                    });
                }
                Opened::Staging(staging) => staging,
            };
            while let Some(message) = next(state, &mut stream).await? {
                if !message.request_id.is_empty() && message.request_id != request_id {
                    return Err(ApiError::invalid(
                        "request_id",
                        "later messages leave it empty or repeat the first",
                    ));
                }
                let chunk = match message.part {
                    Some(Part::Chunk(chunk)) => chunk,
                    _ => {
                        return Err(ApiError::invalid(
                            "chunk",
                            "every message after the header carries a chunk",
                        ));
                    }
                };
                if chunk.slots.len() > MAX_CHUNK_SLOTS {
                    return Err(ApiError::invalid(
                        "chunk.slots",
                        "at most 5,000 slots per chunk",
                    ));
                }
                if staging.count + i64::try_from(chunk.slots.len()).unwrap_or(i64::MAX) > expected {
                    return Err(ApiError::invalid(
                        "header.expected_slot_count",
                        "more slots arrived than announced",
                    ));
                }
                stage(conn, &mut staging, &header, &chunk.slots).await?;
            }
            if staging.count != expected {
                return Err(ApiError::invalid(
                    "header.expected_slot_count",
                    format!("{expected} slots announced, {} received", staging.count),
                ));
            }
            let outcome = close(conn, &header, &request_id).await?;
            Ok(StreamSyncAvailabilityResponse {
                outcome: Some(outcome),
            })
        },
    )
    .await
}

/// The next message of a client stream; UNAVAILABLE when the service stops meanwhile.
async fn next(
    state: &State,
    stream: &mut Streaming<StreamSyncAvailabilityRequest>,
) -> Result<Option<StreamSyncAvailabilityRequest>, ApiError> {
    tokio::select! {
        _ = state.shutdown.wait() => Err(ApiError::Unavailable("the service is stopping; nothing was applied".into())),
        message = stream.message() => message.map_err(|status| {
            ApiError::Unavailable(format!("the stream failed ({}); nothing was applied", status.code()))
        }),
    }
}

/// GenerateAvailability.
pub async fn generate(
    state: &State,
    request: Request<GenerateAvailabilityRequest>,
) -> Result<GenerateAvailabilityResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let header = header(
        &mut v,
        &req.clinic_id,
        req.window.as_ref(),
        req.sync_version,
    );
    for (i, m) in req.modalities.iter().enumerate() {
        if Modality::try_from(*m).map_or(true, |m| m == Modality::Unspecified) {
            v.add(format!("modalities[{i}]"), "unknown modality");
        }
    }
    v.finish()?;
    let header = header.ok_or_else(|| ApiError::invalid("window", "required"))?;
    idempotent(
        &state.pool,
        &caller,
        "GenerateAvailability",
        &req.request_id,
        &req,
        async |conn: &mut PgConnection| {
            let staging = match open(conn, &caller, &header).await? {
                Opened::Replay(outcome) => {
                    return Ok(GenerateAvailabilityResponse {
                        outcome: Some(outcome),
                    });
                }
                Opened::Staging(staging) => staging,
            };
            for chair_id in &req.chair_ids {
                if !staging.chairs.contains_key(chair_id) {
                    return Err(ApiError::NotFound(format!("chair {chair_id}")));
                }
            }
            let clinic = &staging.clinic;
            let durations = state.settings.durations();
            let plans: Vec<ChairPlan> = staging
                .chairs
                .values()
                .filter(|c| {
                    !c.retired && (req.chair_ids.is_empty() || req.chair_ids.contains(&c.chair_id))
                })
                .map(|c| ChairPlan {
                    chair_id: c.chair_id.clone(),
                    modalities: c
                        .modalities
                        .iter()
                        .map(|m| i32::from(*m))
                        .filter(|m| req.modalities.is_empty() || req.modalities.contains(m))
                        .filter_map(|m| {
                            let modality =
                                Modality::try_from(m).ok().filter(|m| clinic.offers(*m))?;
                            let shape = visit::shape(modality, &clinic.policy, &durations).ok()?;
                            Some((m, shape.occupied()))
                        })
                        .collect(),
                })
                .collect();
            let hours = Hours {
                weekly: clinic.clinic.weekly_hours.as_ref(),
                overrides: &clinic.clinic.date_overrides,
            };
            let slots = schedule::generate(&clinic.zone, hours, header.window, &plans);
            let mut staged = Staged::default();
            for (i, slot) in slots.into_iter().enumerate() {
                staged.ordinals.push(i64::try_from(i).unwrap_or(i64::MAX));
                staged.external_ids.push(String::new());
                staged.chair_ids.push(slot.chair_id);
                staged.provider_ids.push(String::new());
                staged
                    .modalities
                    .push(i16::try_from(slot.modality).unwrap_or(0));
                staged.starts.push(slot.start);
                staged.ends.push(slot.end);
            }
            if !staged.is_empty() {
                store::availability::stage(conn, &staged).await?;
            }
            let outcome = close(conn, &header, &req.request_id).await?;
            Ok(GenerateAvailabilityResponse {
                outcome: Some(outcome),
            })
        },
    )
    .await
}

/// ListSlots.
pub async fn list_slots(
    state: &State,
    request: Request<ListSlotsRequest>,
) -> Result<ListSlotsResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    validate::text_id(&mut v, "clinic_id", &req.clinic_id);
    let window = validate::interval(&mut v, "window", req.window.as_ref(), None);
    let mut statuses = Vec::new();
    for (i, s) in req.statuses.iter().enumerate() {
        match SlotStatus::try_from(*s)
            .ok()
            .and_then(convert::slot_status_code)
        {
            Some(code) => statuses.push(code.to_owned()),
            None => v.add(format!("statuses[{i}]"), "unknown status"),
        }
    }
    v.finish()?;
    let window = window.ok_or_else(|| ApiError::invalid("window", "required"))?;
    let filters = ListSlotsRequest {
        page_size: 0,
        page_token: String::new(),
        ..req.clone()
    };
    let page: Page<(OffsetDateTime, Uuid)> =
        Page::parse(&filters, req.page_size, &req.page_token, 500, 5_000)?;
    caller.require_clinic(&req.clinic_id)?;
    let mut conn = state.pool.acquire().await?;
    store::directory::clinic(&mut conn, &req.clinic_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("clinic {}", req.clinic_id)))?;
    let chair = (!req.chair_id.is_empty()).then_some(req.chair_id.as_str());
    let rows = store::availability::list(
        &mut conn,
        &req.clinic_id,
        window,
        chair,
        &statuses,
        page.after,
        page.fetch_limit(),
    )
    .await?;
    let (rows, next) = page.finish(rows, |r| (r.times().0, r.slot_id));
    Ok(ListSlotsResponse {
        slots: rows.iter().map(convert::slot).collect(),
        next_page_token: next,
    })
}
