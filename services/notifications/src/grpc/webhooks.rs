//! Clinics' webhook endpoints: register (returns the signing secret once), rotate the secret
//! with a grace period in which both secrets sign, remove (secrets destroyed), list.

use super::id;
use crate::{
    convert,
    domain::signing,
    store::{read_models, webhooks as store},
};
use clinicnet_proto::notifications::v1::{self as pb, NotificationKind};
use platform::{
    ApiError,
    auth::Caller,
    error::Violations,
    idempotency::{self, Start},
    paging::Page,
};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;
const DEFAULT_GRACE_SECONDS: i64 = 24 * 3600;

fn check_url(url: &str, v: &mut Violations) {
    if url.len() > 2000 {
        v.add("url", "at most 2,000 characters");
    }
    match reqwest::Url::parse(url) {
        Ok(parsed)
            if parsed.scheme() == "https" && parsed.host_str().is_some_and(|h| !h.is_empty()) => {}
        Ok(_) => v.add("url", "must be an https:// URL with a host"),
        Err(_) => v.add("url", "not a URL"),
    }
}

/// RegisterWebhookEndpoint.
pub async fn register(
    pool: &PgPool,
    caller: &Caller,
    request: pb::RegisterWebhookEndpointRequest,
) -> Result<pb::RegisterWebhookEndpointResponse, ApiError> {
    let mut v = Violations::new();
    v.check(request.clinic_id.is_empty(), "clinic_id", "required");
    check_url(&request.url, &mut v);
    v.check(
        request.description.chars().count() > 200,
        "description",
        "at most 200 characters",
    );
    let mut kinds = Vec::new();
    for (i, kind) in request.kinds.iter().enumerate() {
        match NotificationKind::try_from(*kind) {
            Ok(NotificationKind::Unspecified) | Err(_) => {
                v.add(format!("kinds[{i}]"), "a known kind is required")
            }
            Ok(kind) => kinds.push(kind as i16),
        }
    }
    v.finish()?;
    caller.require_clinic(&request.clinic_id)?;
    let mut tx = match idempotency::start(
        pool,
        caller,
        "RegisterWebhookEndpoint",
        &request.request_id,
        &request,
    )
    .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    if read_models::clinic(tx.conn(), &request.clinic_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!("clinic {}", request.clinic_id)));
    }
    let secret = signing::new_secret();
    let endpoint = store::register(
        tx.conn(),
        &request.clinic_id,
        &request.url,
        &kinds,
        &request.description,
        &secret,
    )
    .await?
    .ok_or_else(|| {
        ApiError::AlreadyExists("a webhook endpoint with this URL for the clinic".into())
    })?;
    let response = pb::RegisterWebhookEndpointResponse {
        endpoint: Some(convert::endpoint(&endpoint)),
        secret: signing::encode_secret(&secret),
    };
    tx.commit(&response).await?;
    Ok(response)
}

/// RotateWebhookSecret.
pub async fn rotate(
    pool: &PgPool,
    caller: &Caller,
    request: pb::RotateWebhookSecretRequest,
) -> Result<pb::RotateWebhookSecretResponse, ApiError> {
    let endpoint_id = id("endpoint_id", &request.endpoint_id)?;
    let grace = match &request.grace_period {
        None => DEFAULT_GRACE_SECONDS,
        Some(d)
            if d.seconds < 0
                || d.nanos < 0
                || d.seconds > MAX_GRACE_SECONDS
                || (d.seconds == MAX_GRACE_SECONDS && d.nanos > 0) =>
        {
            return Err(ApiError::invalid("grace_period", "must be 0–7 days"));
        }
        Some(d) => d.seconds,
    };
    let mut tx = match idempotency::start(
        pool,
        caller,
        "RotateWebhookSecret",
        &request.request_id,
        &request,
    )
    .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let endpoint = store::lock(tx.conn(), endpoint_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("webhook endpoint {endpoint_id}")))?;
    caller.require_clinic(&endpoint.clinic_id)?;
    if endpoint.removed_at.is_some() {
        return Err(ApiError::precondition(
            "endpoint_removed",
            "the endpoint was removed; register a new one",
        ));
    }
    let secret = signing::new_secret();
    let until = OffsetDateTime::now_utc() + time::Duration::seconds(grace);
    store::rotate(tx.conn(), endpoint_id, &secret, until).await?;
    let endpoint = store::get(tx.conn(), endpoint_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("webhook endpoint {endpoint_id}")))?;
    let response = pb::RotateWebhookSecretResponse {
        endpoint: Some(convert::endpoint(&endpoint)),
        secret: signing::encode_secret(&secret),
    };
    tx.commit(&response).await?;
    Ok(response)
}

/// RemoveWebhookEndpoint.
pub async fn remove(
    pool: &PgPool,
    caller: &Caller,
    request: pb::RemoveWebhookEndpointRequest,
) -> Result<pb::RemoveWebhookEndpointResponse, ApiError> {
    let endpoint_id = id("endpoint_id", &request.endpoint_id)?;
    let mut tx = match idempotency::start(
        pool,
        caller,
        "RemoveWebhookEndpoint",
        &request.request_id,
        &request,
    )
    .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let endpoint = store::lock(tx.conn(), endpoint_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("webhook endpoint {endpoint_id}")))?;
    caller.require_clinic(&endpoint.clinic_id)?;
    if endpoint.removed_at.is_some() {
        return Err(ApiError::precondition(
            "endpoint_already_removed",
            "the endpoint was already removed",
        ));
    }
    store::remove(tx.conn(), endpoint_id).await?;
    let endpoint = store::get(tx.conn(), endpoint_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("webhook endpoint {endpoint_id}")))?;
    let response = pb::RemoveWebhookEndpointResponse {
        endpoint: Some(convert::endpoint(&endpoint)),
    };
    tx.commit(&response).await?;
    Ok(response)
}

/// ListWebhookEndpoints.
pub async fn list(
    pool: &PgPool,
    caller: &Caller,
    request: pb::ListWebhookEndpointsRequest,
) -> Result<pb::ListWebhookEndpointsResponse, ApiError> {
    let mut v = Violations::new();
    v.check(request.clinic_id.is_empty(), "clinic_id", "required");
    v.finish()?;
    let filters = pb::ListWebhookEndpointsRequest {
        page_size: 0,
        page_token: String::new(),
        ..request.clone()
    };
    let page: Page<Uuid> = Page::parse(&filters, request.page_size, &request.page_token, 20, 100)?;
    caller.require_clinic(&request.clinic_id)?;
    let mut conn = pool.acquire().await?;
    let rows = store::list(
        &mut conn,
        &request.clinic_id,
        request.include_removed,
        page.after,
        page.fetch_limit(),
    )
    .await?;
    let (rows, next_page_token) = page.finish(rows, |r| r.endpoint_id);
    Ok(pb::ListWebhookEndpointsResponse {
        next_page_token,
        endpoints: rows.iter().map(convert::endpoint).collect(),
    })
}
