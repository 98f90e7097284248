//! The JetStream streams, declared idempotently at start-up: one per producing service, named
//! after it (`DIRECTORY`, `APPOINTMENTS`, …), holding `clinicnet.<service>.>` on file storage.
//!
//! The duplicate window is ten minutes: long enough to cover a relay that crashed between the
//! publish ack and marking its rows sent and was restarted by its supervisor, short enough to keep
//! the server's id table small. A retry later than that is stopped by the consumers' inboxes.
//! Streams keep every event (no age limit) so a consumer with a fresh database can rebuild its
//! read model from the start.

use async_nats::jetstream::{self, stream};
use std::time::Duration;

/// How long JetStream remembers message ids for de-duplication.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// The stream a service publishes to: `DIRECTORY` for `directory`.
pub fn stream_name(service: &str) -> String {
    service.to_ascii_uppercase()
}

/// The subject of an event: `clinicnet.<service>.<aggregate>.<event>`.
pub fn subject(service: &str, aggregate: &str, event: &str) -> String {
    format!("clinicnet.{service}.{aggregate}.{event}")
}

/// Creates the service's stream, or brings an existing one to the wanted configuration.
pub async fn ensure_stream(
    jetstream: &jetstream::Context,
    service: &str,
    replicas: usize,
) -> anyhow::Result<stream::Info> {
    let config = stream::Config {
        name: stream_name(service),
        subjects: vec![format!("clinicnet.{service}.>")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        num_replicas: replicas,
        duplicate_window: DUPLICATE_WINDOW,
        discard: stream::DiscardPolicy::Old,
        ..Default::default()
    };
    let mut created = jetstream.get_or_create_stream(config.clone()).await?;
    let current = created.info().await?.config.clone();
    if current.num_replicas != config.num_replicas
        || current.duplicate_window != config.duplicate_window
        || current.subjects != config.subjects
    {
        return Ok(jetstream.update_stream(config).await?);
    }
    Ok(created.info().await?.clone())
}
