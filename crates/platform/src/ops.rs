//! The operator view of the event backbone, served by every service: outbox lag, consumer lag,
//! dead letters, and re-driving a dead letter once its cause is fixed. Ops role only.

use crate::{
    auth::{Caller, Role},
    error::ApiError,
    events::consumer::Consumer,
    idempotency::{self, Start},
    paging::Page,
};
use clinicnet_proto::ops::v1::{
    ConsumerLag, DeadLetter, DeadLetterStatus, GetEventBacklogRequest, GetEventBacklogResponse,
    ListDeadLettersRequest, ListDeadLettersResponse, RedriveDeadLetterRequest,
    RedriveDeadLetterResponse, RedriveOutcome, event_ops_service_server::EventOpsService,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 500;

/// The `EventOpsService` of one service: its outbox, its consumers and their dead letters.
#[derive(Clone)]
pub struct EventOps {
    pool: PgPool,
    consumers: Vec<Consumer>,
    service: String,
}

impl EventOps {
    /// Operations over `pool`'s backbone tables and the service's `consumers`.
    pub fn new(service: &str, pool: PgPool, consumers: Vec<Consumer>) -> Self {
        Self {
            pool,
            consumers,
            service: service.to_owned(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct DeadLetterRow {
    consumer: String,
    event_id: Uuid,
    subject: String,
    attempts: i32,
    last_error: String,
    first_failed_at: time::OffsetDateTime,
    last_failed_at: time::OffsetDateTime,
    redriven_at: Option<time::OffsetDateTime>,
}

fn timestamp(at: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.unix_timestamp(),
        nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
    }
}

impl From<DeadLetterRow> for DeadLetter {
    fn from(row: DeadLetterRow) -> Self {
        let status = if row.redriven_at.is_some() {
            DeadLetterStatus::Redriven
        } else {
            DeadLetterStatus::Parked
        };
        DeadLetter {
            event_id: row.event_id.to_string(),
            subject: row.subject,
            consumer: row.consumer,
            attempts: row.attempts,
            last_error: row.last_error,
            first_failure_time: Some(timestamp(row.first_failed_at)),
            last_failure_time: Some(timestamp(row.last_failed_at)),
            status: status as i32,
            redrive_time: row.redriven_at.map(timestamp),
        }
    }
}

const DEAD_LETTER_COLUMNS: &str = "consumer, event_id, subject, attempts, last_error, first_failed_at, last_failed_at, redriven_at";

impl EventOps {
    async fn backlog(&self) -> Result<GetEventBacklogResponse, ApiError> {
        let (pending, oldest_seconds): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8
               FROM outbox",
        )
        .fetch_one(&self.pool)
        .await?;
        let (dead_letters,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM dead_letters WHERE redriven_at IS NULL")
                .fetch_one(&self.pool)
                .await?;
        let mut consumers = Vec::with_capacity(self.consumers.len());
        for consumer in &self.consumers {
            let (pending_messages, ack_pending, redelivered) =
                consumer.lag().await.map_err(|e| {
                    ApiError::Unavailable(format!(
                        "consumer {} lag unavailable: {e}",
                        consumer.spec.name
                    ))
                })?;
            consumers.push(ConsumerLag {
                consumer: consumer.spec.name.clone(),
                stream: consumer.spec.stream.clone(),
                pending_messages,
                ack_pending,
                redelivered,
                last_ack_time: None,
            });
        }
        Ok(GetEventBacklogResponse {
            service: self.service.clone(),
            outbox_pending: u64::try_from(pending).unwrap_or(0),
            oldest_pending_age: oldest_seconds.map(|s| prost_types::Duration {
                seconds: s as i64,
                nanos: ((s.fract()) * 1e9) as i32,
            }),
            consumers,
            dead_letters: u64::try_from(dead_letters).unwrap_or(0),
            observe_time: Some(timestamp(time::OffsetDateTime::now_utc())),
        })
    }

    async fn list(
        &self,
        request: &ListDeadLettersRequest,
    ) -> Result<ListDeadLettersResponse, ApiError> {
        let filters = ListDeadLettersRequest {
            page_size: 0,
            page_token: String::new(),
            ..request.clone()
        };
        let page: Page<(String, Uuid)> = Page::parse(
            &filters,
            request.page_size,
            &request.page_token,
            DEFAULT_PAGE_SIZE,
            MAX_PAGE_SIZE,
        )?;
        let status = DeadLetterStatus::try_from(request.status)
            .map_err(|_| ApiError::invalid("status", "unknown dead-letter status"))?;
        let (after_consumer, after_event) = page.after.clone().unwrap_or_default();
        let rows: Vec<DeadLetterRow> = sqlx::query_as(&format!(
            "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters
              WHERE ($1 = '' OR consumer = $1)
                AND ($2 = 0 OR ($2 = 1 AND redriven_at IS NULL) OR ($2 = 2 AND redriven_at IS NOT NULL))
                AND (consumer, event_id) > ($3, $4)
              ORDER BY consumer, event_id
              LIMIT $5"
        ))
        .bind(&request.consumer)
        .bind(status as i32)
        .bind(after_consumer)
        .bind(after_event)
        .bind(page.fetch_limit())
        .fetch_all(&self.pool)
        .await?;
        let (rows, next_page_token) = page.finish(rows, |row| (row.consumer.clone(), row.event_id));
        Ok(ListDeadLettersResponse {
            dead_letters: rows.into_iter().map(DeadLetter::from).collect(),
            next_page_token,
        })
    }

    async fn redrive(
        &self,
        caller: &Caller,
        request: &RedriveDeadLetterRequest,
    ) -> Result<RedriveDeadLetterResponse, ApiError> {
        let event_id = Uuid::parse_str(&request.event_id)
            .map_err(|_| ApiError::invalid("event_id", "must be a UUID"))?;
        let start = idempotency::start::<_, RedriveDeadLetterResponse>(
            &self.pool,
            caller,
            "RedriveDeadLetter",
            &request.request_id,
            request,
        )
        .await?;
        let transaction = match start {
            Start::Replay(response) => return Ok(response),
            Start::Fresh(transaction) => transaction,
        };
        let consumers: Vec<(String,)> = sqlx::query_as(
            "SELECT consumer FROM dead_letters WHERE event_id = $1 AND ($2 = '' OR consumer = $2)",
        )
        .bind(event_id)
        .bind(&request.consumer)
        .fetch_all(&self.pool)
        .await?;
        let name = match consumers.as_slice() {
            [] => return Err(ApiError::NotFound(format!("dead letter {event_id}"))),
            [(name,)] => name.clone(),
            _ => {
                return Err(ApiError::invalid(
                    "consumer",
                    "the event is dead-lettered by several consumers; name one",
                ));
            }
        };
        let consumer = self
            .consumers
            .iter()
            .find(|c| c.spec.name == name)
            .ok_or_else(|| {
                ApiError::precondition(
                    "consumer_not_running",
                    format!("consumer {name} does not run in this service"),
                )
            })?;
        let outcome = match consumer.redrive(event_id).await {
            Ok(Some(true)) => RedriveOutcome::Applied,
            Ok(Some(false)) => RedriveOutcome::AlreadyApplied,
            Ok(None) => return Err(ApiError::NotFound(format!("dead letter {event_id}"))),
            Err(error) => {
                tracing::warn!(consumer = %name, %event_id, error = format!("{error:#}"), "re-drive failed");
                sqlx::query(
                    "UPDATE dead_letters SET attempts = attempts + 1, last_error = $3, last_failed_at = now()
                      WHERE consumer = $1 AND event_id = $2",
                )
                .bind(&name)
                .bind(event_id)
                .bind(format!("{error:#}"))
                .execute(&self.pool)
                .await?;
                RedriveOutcome::Failed
            }
        };
        let row: DeadLetterRow = sqlx::query_as(&format!(
            "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE consumer = $1 AND event_id = $2"
        ))
        .bind(&name)
        .bind(event_id)
        .fetch_one(&self.pool)
        .await?;
        let response = RedriveDeadLetterResponse {
            outcome: outcome as i32,
            dead_letter: Some(row.into()),
        };
        transaction.commit(&response).await?;
        Ok(response)
    }
}

#[tonic::async_trait]
impl EventOpsService for EventOps {
    async fn get_event_backlog(
        &self,
        request: Request<GetEventBacklogRequest>,
    ) -> Result<Response<GetEventBacklogResponse>, Status> {
        Caller::of(&request)?.require_role(&[Role::Ops])?;
        Ok(Response::new(self.backlog().await?))
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        Caller::of(&request)?.require_role(&[Role::Ops])?;
        Ok(Response::new(self.list(request.get_ref()).await?))
    }

    async fn redrive_dead_letter(
        &self,
        request: Request<RedriveDeadLetterRequest>,
    ) -> Result<Response<RedriveDeadLetterResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require_role(&[Role::Ops])?;
        Ok(Response::new(
            self.redrive(&caller, request.get_ref()).await?,
        ))
    }
}
