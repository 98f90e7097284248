//! The event probe's consumer side, shared by the `event-probe` binary and in-process tests: a
//! handler that applies each event to an `effects` table (one row per application, in order), and
//! fails events of aggregates named `poison…` until they are listed in `poison_fixed`.

use clinicnet_proto::events::v1::EventMetadata;
use futures::future::BoxFuture;
use platform::events::consumer::{Handler, IncomingEvent};
use prost::Message;
use sqlx::{PgConnection, PgPool};

/// The probe's tables: `effects` and `poison_fixed`, next to the platform's.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    platform::db::migrate(pool, sqlx::migrate!("./probe-migrations")).await
}

/// Applies events (whose payload is their own [`EventMetadata`]) to the `effects` table.
#[derive(Debug, Default, Clone, Copy)]
pub struct ApplyEffects;

impl Handler for ApplyEffects {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a IncomingEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let metadata = EventMetadata::decode(event.payload.as_ref())?;
            if metadata.aggregate_id.starts_with("poison") {
                let fixed: Option<(String,)> =
                    sqlx::query_as("SELECT aggregate_id FROM poison_fixed WHERE aggregate_id = $1")
                        .bind(&metadata.aggregate_id)
                        .fetch_optional(&mut *conn)
                        .await?;
                anyhow::ensure!(
                    fixed.is_some(),
                    "poison event for {}",
                    metadata.aggregate_id
                );
            }
            sqlx::query(
                "INSERT INTO effects (event_id, aggregate_id, aggregate_version) VALUES ($1, $2, $3)",
            )
            .bind(event.event_id)
            .bind(&metadata.aggregate_id)
            .bind(i64::try_from(metadata.aggregate_version)?)
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
    }
}
