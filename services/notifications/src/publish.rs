//! What the service publishes (through the outbox, in the transaction of the change): a
//! notification was sent, failed for good, or was suppressed — each carrying the complete
//! notification (ids and states, never addresses or text).

use crate::{convert, store::notifications::NotificationRow};
use clinicnet_proto::events::v1::{NotificationFailed, NotificationSent, NotificationSuppressed};
use platform::events::{metadata, outbox, streams};
use sqlx::PgConnection;

/// The producer name in event metadata and subjects.
pub const PRODUCER: &str = "notifications";

/// Appends the event of `row`'s sent, failed or suppressed state to the outbox; nothing for
/// other states.
pub async fn state_changed(
    conn: &mut PgConnection,
    row: &NotificationRow,
) -> Result<(), sqlx::Error> {
    let notification = Some(convert::notification(row));
    let meta = metadata(
        PRODUCER,
        "notification",
        &row.notification_id.to_string(),
        u64::try_from(row.version).unwrap_or(0),
        "",
    );
    let subject = |event: &str| streams::subject(PRODUCER, "notification", event);
    match row.status.as_str() {
        "sent" => {
            let event = NotificationSent {
                metadata: Some(meta.clone()),
                notification,
            };
            outbox::append(conn, &subject("sent"), &meta, &event).await
        }
        "failed" => {
            let event = NotificationFailed {
                metadata: Some(meta.clone()),
                notification,
            };
            outbox::append(conn, &subject("failed"), &meta, &event).await
        }
        "suppressed" => {
            let event = NotificationSuppressed {
                metadata: Some(meta.clone()),
                notification,
            };
            outbox::append(conn, &subject("suppressed"), &meta, &event).await
        }
        _ => Ok(()),
    }
}
