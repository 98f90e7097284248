//! StreamWork: the payer's work items in sequence order from just after the client's cursor,
//! then tailing new work as it is appended (woken by LISTEN/NOTIFY, with a periodic re-read as a
//! safety net). Resuming with the cursor of the last item processed misses and repeats nothing.
//! Work history is kept in full in v1, so no cursor is ever older than the retained history
//! (OUT_OF_RANGE is reserved for when it is pruned).

use super::{IntegratorApi, validate};
use crate::{domain::cursor::Cursor, store, work};
use clinicnet_proto::insurance::v1::{StreamWorkRequest, StreamWorkResponse};
use platform::{ApiError, audit, auth::Caller, error::Violations};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status};

/// Items read per query.
const BATCH: i64 = 200;
/// Re-read interval when no notification arrives.
const POLL: Duration = Duration::from_secs(1);

/// The response stream of StreamWork.
pub type WorkStream = ReceiverStream<Result<StreamWorkResponse, Status>>;

/// Opens the payer's work stream after the request's cursor.
pub async fn open(
    api: &IntegratorApi,
    request: Request<StreamWorkRequest>,
) -> Result<WorkStream, ApiError> {
    let caller = Caller::of(&request)?;
    super::integrator_role(&caller)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    validate::slug(&mut v, "payer_id", &req.payer_id);
    v.finish()?;
    caller.require_payer(&req.payer_id)?;
    let after = if req.cursor.is_empty() {
        0
    } else {
        let cursor = Cursor::parse(&req.cursor)
            .filter(|c| c.payer_id == req.payer_id)
            .ok_or_else(|| {
                ApiError::invalid("cursor", "not a cursor of this payer's work stream")
            })?;
        let mut conn = api.state.pool.acquire().await?;
        if cursor.seq > store::work::last_seq(&mut conn, &req.payer_id).await? {
            return Err(ApiError::invalid(
                "cursor",
                "beyond the last item of this payer's work",
            ));
        }
        cursor.seq
    };
    let (sender, receiver) = mpsc::channel(64);
    let api = api.clone();
    tokio::spawn(async move {
        if let Err(error) = pump(&api, &caller, &req.payer_id, after, &sender).await {
            let _ = sender.send(Err(Status::from(error))).await;
        }
    });
    Ok(ReceiverStream::new(receiver))
}

async fn pump(
    api: &IntegratorApi,
    caller: &Caller,
    payer_id: &str,
    mut last: i64,
    sender: &mpsc::Sender<Result<StreamWorkResponse, Status>>,
) -> Result<(), ApiError> {
    let mut wake = api.signal.subscribe();
    loop {
        let batch = {
            let mut conn = api.state.pool.acquire().await?;
            store::work::after(&mut conn, payer_id, last, BATCH).await?
        };
        if batch.is_empty() {
            tokio::select! {
                _ = api.shutdown.wait() => {
                    let _ = sender.send(Err(Status::unavailable("the server is stopping; resume from the last cursor"))).await;
                    return Ok(());
                }
                _ = sender.closed() => return Ok(()),
                _ = wake.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
            continue;
        }
        let mut tx = api.state.pool.begin().await?;
        for stored in &batch {
            audit::record(
                &mut tx,
                caller,
                "insurance.work.deliver",
                &stored.patient_id,
            )
            .await?;
        }
        tx.commit().await?;
        for stored in batch {
            let seq = stored.seq;
            let item = work::delivered(stored, payer_id);
            if sender
                .send(Ok(StreamWorkResponse { item: Some(item) }))
                .await
                .is_err()
            {
                return Ok(());
            }
            last = seq;
        }
    }
}
