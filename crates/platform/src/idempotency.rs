//! Idempotent mutating calls: the first call with a (caller, request_id) records its answer in
//! the same transaction as its effect; a retry — even one racing the original — gets that answer.
//!
//! The race is settled by PostgreSQL: a concurrent insert of the same key waits on the unique
//! index until the first transaction ends, then either sees the committed answer or, when the
//! first rolled back, becomes the first itself.

use crate::{auth::Caller, error::ApiError};
use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

/// Longest accepted request id.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The outcome of starting an idempotent call.
#[derive(Debug)]
pub enum Start<R> {
    /// The first call with this key: do the work in [`IdempotentTx`] and commit it.
    Fresh(IdempotentTx),
    /// A retry: the first call's answer.
    Replay(R),
}

/// The transaction of a first call; its effect and its answer commit together.
#[derive(Debug)]
pub struct IdempotentTx {
    tx: Transaction<'static, Postgres>,
    caller: String,
    request_id: String,
}

impl IdempotentTx {
    /// The connection to perform the call's effect on.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Records `response` as the answer for this key and commits the effect with it.
    pub async fn commit<R: Message>(mut self, response: &R) -> Result<(), ApiError> {
        sqlx::query(
            "UPDATE idempotency_keys SET response = $1 WHERE caller = $2 AND request_id = $3",
        )
        .bind(response.encode_to_vec())
        .bind(&self.caller)
        .bind(&self.request_id)
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

/// Validates the request id and begins the call: fresh, or the recorded answer of a retry.
/// A request id reused for a different request is INVALID_ARGUMENT.
pub async fn start<Q: Message, R: Message + Default>(
    pool: &PgPool,
    caller: &Caller,
    method: &str,
    request_id: &str,
    request: &Q,
) -> Result<Start<R>, ApiError> {
    if request_id.trim().is_empty() {
        return Err(ApiError::invalid(
            "request_id",
            "required: an idempotency key for this call",
        ));
    }
    if request_id.len() > MAX_REQUEST_ID_LEN {
        return Err(ApiError::invalid(
            "request_id",
            format!("at most {MAX_REQUEST_ID_LEN} characters"),
        ));
    }
    let fingerprint = Sha256::digest(request.encode_to_vec()).to_vec();
    let caller_key = caller.key();
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (caller, request_id, method, fingerprint, response)
         VALUES ($1, $2, $3, $4, '') ON CONFLICT DO NOTHING",
    )
    .bind(&caller_key)
    .bind(request_id)
    .bind(method)
    .bind(&fingerprint)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Start::Fresh(IdempotentTx {
            tx,
            caller: caller_key,
            request_id: request_id.to_owned(),
        }));
    }
    tx.rollback().await?;
    let (stored_method, stored_fingerprint, response): (String, Vec<u8>, Vec<u8>) = sqlx::query_as(
        "SELECT method, fingerprint, response FROM idempotency_keys WHERE caller = $1 AND request_id = $2",
    )
    .bind(&caller_key)
    .bind(request_id)
    .fetch_one(pool)
    .await?;
    if stored_method != method || stored_fingerprint != fingerprint {
        return Err(ApiError::invalid(
            "request_id",
            "already used for a different request; use a new request_id",
        ));
    }
    let response = R::decode(response.as_slice()).map_err(ApiError::internal)?;
    Ok(Start::Replay(response))
}
