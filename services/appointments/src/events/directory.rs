//! The directory consumer: clinics (with their chairs and the providers serving them) and
//! providers from directory events into the read model. Each copy is applied only when newer than
//! the stored one, so redeliveries and out-of-order events leave the newest state.

use crate::store;
use clinicnet_proto::{
    directory::v1::{Clinic, Provider},
    events::v1::{
        ChairChanged, ClinicReactivated, ClinicRegistered, ClinicSuspended, ClinicUpdated,
        ProviderChanged,
    },
};
use futures::future::BoxFuture;
use platform::events::consumer::{Handler, IncomingEvent};
use prost::Message;
use sqlx::PgConnection;

/// Durable consumer name.
pub const CONSUMER: &str = "appointments-directory";
/// The stream it reads.
pub const STREAM: &str = "DIRECTORY";
/// Its filter: every directory event (one filter subject per consumer on NATS 2.9).
pub const FILTER: &str = "clinicnet.directory.>";

/// Builds the directory read model.
#[derive(Debug, Default)]
pub struct DirectoryReadModel;

impl Handler for DirectoryReadModel {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a IncomingEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(apply(conn, event))
    }
}

async fn apply(conn: &mut PgConnection, event: &IncomingEvent) -> anyhow::Result<()> {
    let payload = event.payload.as_ref();
    let (clinic, providers) = match event.subject.as_str() {
        "clinicnet.directory.clinic.registered" => {
            let e = ClinicRegistered::decode(payload)?;
            (e.clinic, e.providers)
        }
        "clinicnet.directory.clinic.updated" => {
            let e = ClinicUpdated::decode(payload)?;
            (e.clinic, e.providers)
        }
        "clinicnet.directory.clinic.suspended" => {
            let e = ClinicSuspended::decode(payload)?;
            (e.clinic, e.providers)
        }
        "clinicnet.directory.clinic.reactivated" => {
            let e = ClinicReactivated::decode(payload)?;
            (e.clinic, e.providers)
        }
        "clinicnet.directory.clinic.chair_changed" => {
            let e = ChairChanged::decode(payload)?;
            (e.clinic, e.providers)
        }
        "clinicnet.directory.provider.changed" => {
            let e = ProviderChanged::decode(payload)?;
            (None, e.provider.into_iter().collect())
        }
        _ => return Ok(()),
    };
    if let Some(clinic) = clinic {
        apply_clinic(conn, &clinic).await?;
    }
    for provider in &providers {
        apply_provider(conn, provider).await?;
    }
    Ok(())
}

async fn apply_clinic(conn: &mut PgConnection, clinic: &Clinic) -> anyhow::Result<()> {
    anyhow::ensure!(
        !clinic.clinic_id.is_empty(),
        "clinic event without a clinic id"
    );
    store::directory::apply_clinic(conn, clinic).await?;
    Ok(())
}

async fn apply_provider(conn: &mut PgConnection, provider: &Provider) -> anyhow::Result<()> {
    anyhow::ensure!(
        !provider.provider_id.is_empty(),
        "provider event without a provider id"
    );
    store::directory::apply_provider(conn, provider).await?;
    Ok(())
}
