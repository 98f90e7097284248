//! Availability sync: one large `StreamSyncAvailability` (chunks of 5,000 slots, all or nothing)
//! through gRPC to the real appointments binary, next to `COPY` of the same rows into an
//! equivalent table (same columns, checks and indexes) on the same database.

use crate::{
    report::{Row, ScenarioReport},
    scenarios::{
        Scale,
        appointments::{self, SLOTS_PER_DAY},
    },
};
use std::{fmt::Write as _, time::Instant};
use uuid::Uuid;

/// A whole-hour UTC instant as PostgreSQL reads it.
fn utc(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:00:00+00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour()
    )
}

/// Runs the scenario.
pub async fn run(scale: Scale) -> anyhow::Result<ScenarioReport> {
    // 90 days of slots per chair at most, inside the 93-day window a sync may replace.
    let per_chair = (90 * SLOTS_PER_DAY).min(scale.sync_slots);
    let chairs = scale.sync_slots.div_ceil(per_chair);
    let (service, clinic) = appointments::start(chairs).await?;
    let mut apps = appointments::apps(&service).await?;
    let slots: Vec<_> = (0..chairs)
        .flat_map(|n| (0..per_chair).map(move |k| (n, k)))
        .take(scale.sync_slots)
        .map(|(n, k)| appointments::slot(&clinic, n, k))
        .collect();

    let start = Instant::now();
    let outcome = appointments::stream_sync(
        &mut apps,
        &clinic,
        appointments::window(per_chair),
        slots,
        1,
    )
    .await?;
    let grpc_seconds = start.elapsed().as_secs_f64();
    let pool = service.database.pool();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM slots WHERE clinic_id = $1")
        .bind(&clinic.id)
        .fetch_one(pool)
        .await?;
    anyhow::ensure!(
        usize::try_from(stored)? == scale.sync_slots,
        "the sync stored {stored} slots, not {}",
        scale.sync_slots
    );

    // The same rows as COPY text, into a table shaped like `slots`.
    sqlx::query("CREATE TABLE bench_slots (LIKE slots INCLUDING ALL)")
        .execute(pool)
        .await?;
    let mut rows = String::new();
    for n in 0..chairs {
        for k in 0..per_chair.min(scale.sync_slots - n * per_chair) {
            let start = appointments::slot_start(k);
            let end = start + time::Duration::hours(1);
            let _ = writeln!(
                rows,
                "{}\t{}\t{}\t{}\t{}\t[\"{}\",\"{}\")\tfree\t1\t\\N\t",
                Uuid::now_v7(),
                clinic.id,
                clinic.chair(n),
                clinic.provider(n),
                appointments::PSYCHOTHERAPY,
                utc(start),
                utc(end),
            );
        }
    }
    let start = Instant::now();
    let mut conn = pool.acquire().await?;
    let mut copy = conn
        .copy_in_raw(
            "COPY bench_slots (slot_id, clinic_id, chair_id, provider_id, modality, during, status, sync_version, removed_in_version, external_id) FROM STDIN",
        )
        .await?;
    copy.send(rows.as_bytes()).await?;
    let copied = copy.finish().await?;
    let copy_seconds = start.elapsed().as_secs_f64();
    drop(conn);
    service.stop().await;

    Ok(ScenarioReport {
        name: "Availability sync".into(),
        description: format!(
            "One StreamSyncAvailability of {} one-hour psychotherapy slots over {chairs} chairs (header, chunks of 5,000, applied all or nothing in one transaction: validation against the clinic's chairs and modalities, replacing the window, the sync record and its event; {} slots added), next to COPY of the same {copied} rows into a table with the same columns, checks and indexes on the same database.",
            scale.sync_slots, outcome.slots_added
        ),
        rows: vec![Row {
            metric: format!("{} slots synced", scale.sync_slots),
            value: grpc_seconds,
            baseline: Some(copy_seconds),
            unit: "s",
            goal: "≤ 3× COPY".into(),
            met: Some(grpc_seconds <= 3.0 * copy_seconds),
        }],
        plots: vec![],
    })
}
