//! What the directory publishes on its DIRECTORY stream, through the outbox in the transaction of
//! the change: clinic registered / updated / suspended / reactivated / chair changed, each with
//! the complete clinic and every provider serving it, and provider changed with the complete
//! provider. Each carries the aggregate's version after the change, so consumers build their read
//! models from these events alone and ignore anything not newer than what they hold.

use crate::store;
use clinicnet_proto::{
    directory::v1 as pb,
    events::v1::{
        ChairChangeKind, ChairChanged, ClinicReactivated, ClinicRegistered, ClinicSuspended,
        ClinicUpdated, ProviderChangeKind, ProviderChanged,
    },
};
use platform::events::{metadata, outbox, streams::subject};
use sqlx::PgConnection;
use uuid::Uuid;

/// The producing service, and the first token of its subjects.
pub const PRODUCER: &str = "directory";

/// How a clinic changed.
#[derive(Debug, Clone)]
pub enum ClinicChange {
    /// It joined the network.
    Registered,
    /// Its profile changed.
    Updated,
    /// It was suspended.
    Suspended,
    /// It was reactivated.
    Reactivated,
    /// One of its chairs was added, changed or retired.
    Chair(ChairChangeKind, pb::Chair),
}

/// Appends the event of a clinic change; `clinic` is the clinic after it.
pub async fn clinic_changed(
    conn: &mut PgConnection,
    change: ClinicChange,
    clinic: &pb::Clinic,
    request_id: &str,
) -> Result<(), sqlx::Error> {
    let id =
        Uuid::parse_str(&clinic.clinic_id).map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
    let providers = store::providers::serving(conn, id).await?;
    let meta = metadata(
        PRODUCER,
        "clinic",
        &clinic.clinic_id,
        clinic.version,
        request_id,
    );
    let (clinic, facts) = (Some(clinic.clone()), Some(meta.clone()));
    let topic = |event| subject(PRODUCER, "clinic", event);
    match change {
        ClinicChange::Registered => {
            let event = ClinicRegistered {
                metadata: facts,
                clinic,
                providers,
            };
            outbox::append(conn, &topic("registered"), &meta, &event).await
        }
        ClinicChange::Updated => {
            let event = ClinicUpdated {
                metadata: facts,
                clinic,
                providers,
            };
            outbox::append(conn, &topic("updated"), &meta, &event).await
        }
        ClinicChange::Suspended => {
            let event = ClinicSuspended {
                metadata: facts,
                clinic,
                providers,
            };
            outbox::append(conn, &topic("suspended"), &meta, &event).await
        }
        ClinicChange::Reactivated => {
            let event = ClinicReactivated {
                metadata: facts,
                clinic,
                providers,
            };
            outbox::append(conn, &topic("reactivated"), &meta, &event).await
        }
        ClinicChange::Chair(kind, chair) => {
            let event = ChairChanged {
                metadata: facts,
                kind: kind as i32,
                chair: Some(chair),
                clinic,
                providers,
            };
            outbox::append(conn, &topic("chair_changed"), &meta, &event).await
        }
    }
}

/// Appends the event of a provider change; `provider` is the provider after it.
pub async fn provider_changed(
    conn: &mut PgConnection,
    kind: ProviderChangeKind,
    provider: &pb::Provider,
    request_id: &str,
) -> Result<(), sqlx::Error> {
    let meta = metadata(
        PRODUCER,
        "provider",
        &provider.provider_id,
        provider.version,
        request_id,
    );
    let event = ProviderChanged {
        metadata: Some(meta.clone()),
        kind: kind as i32,
        provider: Some(provider.clone()),
    };
    outbox::append(
        conn,
        &subject(PRODUCER, "provider", "changed"),
        &meta,
        &event,
    )
    .await
}
