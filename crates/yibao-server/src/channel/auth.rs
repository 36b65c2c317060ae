//! Channel authentication (protocol § Authentication): HMAC-signed requests, clock skew, replay,
//! rate limit; and signed responses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use yibao_channel_client::signing;

use super::secrets::{open, ChannelSecret};
use crate::error::{ErrorCode, ServiceError};
use crate::middleware::{render_error, RequestId};
use crate::AppState;

/// How long a nonce is remembered, seconds.
pub const NONCE_WINDOW_SECONDS: i64 = 15 * 60;
/// Largest channel request body (a daily statement CSV is the largest): 96 MiB, a million lines with room.
pub const MAX_CHANNEL_BODY_BYTES: usize = 96 * 1024 * 1024;
/// Largest body of every other channel request: 64 KiB.
pub const MAX_SMALL_CHANNEL_BODY_BYTES: usize = 64 * 1024;
/// Largest response body signed (a receipt PDF is the largest): 8 MiB.
pub const MAX_SIGNED_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// The authenticated channel, for handlers.
#[derive(Debug, Clone)]
pub struct ChannelContext {
    pub channel_id: String,
    pub kind: String,
    pub regions: Vec<String>,
    /// A test channel (接入测试): its requests' scenarios are recorded.
    pub test_mode: bool,
    /// The request's nonce, when authentication leaves it to be recorded with what the request
    /// writes ([`PendingNonce`]); `None` once recorded, or where no signed request came.
    pub nonce: Option<PendingNonce>,
}

/// A payment report's nonce, not recorded yet (issue 14). Its report records it in the payment
/// writer's transaction ([`yibao_storage::collection::NewPayment::nonce`]): the unique key of
/// `channel_nonces` refuses a replay there, committed with the payment or not at all, so a
/// restart or a second server on the same database refuses it exactly as before, and a report
/// costs no statement and commit of its own for its nonce. A request that never reaches the
/// writer (a malformed report, a rate limit) leaves it here, and authentication records it once
/// the handler has answered, refusing a replay then ([`channel_auth`]); nothing such a request
/// does is written.
#[derive(Debug, Clone)]
pub struct PendingNonce(Arc<Mutex<Option<String>>>);

impl PendingNonce {
    fn new(nonce: String) -> PendingNonce {
        PendingNonce(Arc::new(Mutex::new(Some(nonce))))
    }

    /// The nonce, for the one writer that records it; `None` after the first take.
    pub fn take(&self) -> Option<String> {
        self.0.lock().ok().and_then(|mut nonce| nonce.take())
    }
}

/// The payment report (protocol § 3): the one request whose nonce goes with what it writes.
fn nonce_recorded_with_payment(method: &str, path: &str) -> bool {
    method == "POST" && path == "/channel/v1/payments"
}

impl ChannelContext {
    pub fn allows(&self, region: &str) -> bool {
        self.regions.iter().any(|r| r == region)
    }

    /// The region a payment naming none of this channel's payables is kept under: the channel's
    /// first (registration refuses a channel without one, or with a malformed code).
    pub fn home_region(&self) -> Result<yibao_domain::RegionCode, crate::error::ServiceError> {
        match self.regions.first() {
            Some(region) => Ok(yibao_domain::RegionCode::parse(region)?),
            None => Err(crate::error::ServiceError::of(
                crate::error::ErrorCode::RegionNotAllowed,
            )),
        }
    }
}

/// Token buckets per channel: `rate_per_second` tokens a second, bursts up to one second's worth.
/// Bounded: one entry per registered channel.
#[derive(Debug, Default, Clone)]
pub struct RateLimiter {
    buckets: Arc<Mutex<HashMap<String, (f64, std::time::Instant)>>>,
}

impl RateLimiter {
    /// Takes one token; `false` when the channel is over its rate.
    pub fn allow(&self, channel_id: &str, rate_per_second: i64) -> bool {
        let rate = rate_per_second.max(1) as f64;
        let now = std::time::Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        let (tokens, last) = buckets.entry(channel_id.to_owned()).or_insert((rate, now));
        let refill = now.duration_since(*last).as_secs_f64() * rate;
        *tokens = (*tokens + refill).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `REPLAYED`: the channel used this nonce before, within the window.
pub(crate) fn replayed() -> ServiceError {
    ServiceError::new(
        ErrorCode::Replayed,
        "重复的请求（Nonce 在15分钟内已使用过），请使用新的 Nonce 重新签名",
    )
}

fn auth_failed() -> ServiceError {
    ServiceError::new(
        ErrorCode::AuthFailed,
        "渠道认证失败：请检查渠道编号、密钥、签名和时间戳",
    )
}

/// Authenticates a channel request, runs the handler, renders any error and signs the response.
pub async fn channel_auth(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| request.uri().path().to_owned());
    let now = state.clock.now().timestamp();
    match authenticate(&state, request).await {
        Ok((secret, request)) => {
            let test_channel = request
                .extensions()
                .get::<ChannelContext>()
                .filter(|c| c.test_mode)
                .cloned();
            let Some(channel) = test_channel else {
                let response = run_handler(&state, request, next, now).await;
                let response = render_error(response, &request_id).await;
                return sign_response(response, &path_and_query, &secret, now).await;
            };
            // A test channel's request and answer are read for the scenarios they went through.
            let method = request.method().as_str().to_owned();
            let path = request.uri().path().to_owned();
            let (parts, body) = request.into_parts();
            let sent = to_bytes(body, MAX_CHANNEL_BODY_BYTES)
                .await
                .unwrap_or_default();
            let request = Request::from_parts(parts, Body::from(sent.clone()));
            let response =
                render_error(run_handler(&state, request, next, now).await, &request_id).await;
            let (parts, body) = response.into_parts();
            let Ok(answer) = to_bytes(body, MAX_SIGNED_RESPONSE_BYTES).await else {
                return ServiceError::of(ErrorCode::InternalError).into_response();
            };
            crate::services::sandbox::record_exchange(
                &state,
                &channel,
                &method,
                &path,
                parts.status.as_u16(),
                &sent,
                &answer,
            )
            .await;
            let response = Response::from_parts(parts, Body::from(answer));
            sign_response(response, &path_and_query, &secret, now).await
        }
        Err((error, secret)) => {
            let response = render_error(error.into_response(), &request_id).await;
            match secret {
                Some(secret) => sign_response(response, &path_and_query, &secret, now).await,
                None => response,
            }
        }
    }
}

/// Runs the handler; then records a nonce it left unrecorded ([`PendingNonce`]), and answers
/// `REPLAYED` instead when the channel had used it. Not after a server error: the channel sends
/// the same request again, which must not be refused as its own replay.
async fn run_handler(state: &AppState, request: Request, next: Next, now: i64) -> Response {
    let pending = request
        .extensions()
        .get::<ChannelContext>()
        .and_then(|c| Some((c.nonce.clone()?, c.channel_id.clone())));
    let response = next.run(request).await;
    let Some((pending, channel_id)) = pending else {
        return response;
    };
    if response.status().is_server_error() {
        return response;
    }
    let Some(nonce) = pending.take() else {
        return response;
    };
    match record_nonce(state, &channel_id, &nonce, now).await {
        Ok(()) => response,
        Err(e) => e.into_response(),
    }
}

/// Records the nonce (through the nonce writer when there is one): `REPLAYED` when the channel
/// used it before.
async fn record_nonce(
    state: &AppState,
    channel_id: &str,
    nonce: &str,
    now: i64,
) -> Result<(), ServiceError> {
    let fresh = match &state.nonce_writer {
        Some(writer) => writer.remember(channel_id, nonce, now).await,
        None => state.storage.remember_nonce(channel_id, nonce, now).await,
    }?;
    if !fresh {
        refused("nonce_replayed", channel_id);
        return Err(replayed());
    }
    Ok(())
}

/// The channel's rotated-out secret while its grace period lasts.
fn previous_secret(
    channel: &yibao_storage::collection::ChannelRecord,
    state: &AppState,
    now: i64,
) -> Option<ChannelSecret> {
    let previous = channel.previous_secret.as_ref().filter(|p| now < p.until)?;
    open(&previous.secret_sealed, state.master_key.as_ref())
        .map_err(|e| {
            tracing::error!(channel = %channel.channel_id, error = e, "previous channel secret cannot be opened");
        })
        .ok()
}

/// Logs why a channel request was refused: the caller gets the same `AUTH_FAILED` for every
/// reason (so a probe learns nothing), the operator's log says which check failed and for whom.
pub(crate) fn refused(reason: &'static str, channel_id: &str) {
    tracing::warn!(channel = ?channel_id, reason, "channel authentication failed");
}

async fn authenticate(
    state: &AppState,
    request: Request,
) -> Result<(ChannelSecret, Request), (ServiceError, Option<ChannelSecret>)> {
    let headers = request.headers();
    let channel_id = header(headers, signing::HEADER_CHANNEL)
        .unwrap_or_default()
        .to_owned();
    let timestamp =
        header(headers, signing::HEADER_TIMESTAMP).and_then(|t| t.trim().parse::<i64>().ok());
    let nonce = header(headers, signing::HEADER_NONCE)
        .unwrap_or_default()
        .to_owned();
    let signature = header(headers, signing::HEADER_SIGNATURE)
        .unwrap_or_default()
        .to_owned();
    if channel_id.is_empty() || channel_id.len() > 64 {
        refused(
            "missing_or_overlong_channel_id",
            &channel_id.chars().take(64).collect::<String>(),
        );
        return Err((auth_failed(), None));
    }
    let channel = match state
        .storage
        .get_channel(&channel_id)
        .await
        .map_err(|e| (ServiceError::from(e), None))?
    {
        Some(c) if c.enabled => c,
        Some(_) => {
            refused("channel_disabled", &channel_id);
            return Err((auth_failed(), None));
        }
        None => {
            refused("unknown_channel", &channel_id);
            return Err((auth_failed(), None));
        }
    };
    let secret = open(&channel.secret_sealed, state.master_key.as_ref()).map_err(|e| {
        tracing::error!(channel = %channel_id, error = e, "channel secret cannot be opened");
        (auth_failed(), None)
    })?;
    let fail = |e: ServiceError| (e, Some(secret.clone()));
    let now = state.clock.now().timestamp();
    let Some(timestamp) = timestamp.filter(|t| signing::timestamp_fresh(*t, now)) else {
        match timestamp {
            Some(t) => tracing::warn!(
                channel = %channel_id,
                reason = "timestamp_skew",
                skew_seconds = t - now,
                "channel authentication failed"
            ),
            None => refused("timestamp_missing_or_malformed", &channel_id),
        }
        return Err(fail(ServiceError::new(
            ErrorCode::AuthFailed,
            "请求时间与服务器时间相差超过300秒，请校准时钟后重试",
        )));
    };
    if !signing::valid_nonce(&nonce) {
        refused("malformed_nonce", &channel_id);
        return Err(fail(auth_failed()));
    }
    let method = request.method().as_str().to_owned();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    // Only the statement upload may be large; everything else is small JSON.
    let limit = if path_and_query.starts_with("/channel/v1/statements/") {
        MAX_CHANNEL_BODY_BYTES
    } else {
        MAX_SMALL_CHANNEL_BODY_BYTES
    };
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, limit).await.map_err(|_| {
        refused("body_too_large", &channel_id);
        fail(ServiceError::of(ErrorCode::PayloadTooLarge))
    })?;
    let to_sign =
        signing::request_string_to_sign(&method, &path_and_query, timestamp, &nonce, &bytes);
    // After a rotation the previous secret is accepted until its grace period ends; the answer is
    // then signed with the secret the request was signed with, which the channel holds.
    let secret = if signing::verify(secret.expose(), &to_sign, &signature) {
        secret
    } else {
        match previous_secret(&channel, state, now) {
            Some(previous) if signing::verify(previous.expose(), &to_sign, &signature) => previous,
            _ => {
                refused(
                    if signature.is_empty() {
                        "signature_missing"
                    } else {
                        "signature_mismatch"
                    },
                    &channel_id,
                );
                return Err(fail(auth_failed()));
            }
        }
    };
    let fail = |e: ServiceError| (e, Some(secret.clone()));
    let pending = if nonce_recorded_with_payment(&method, parts.uri.path()) {
        Some(PendingNonce::new(nonce))
    } else {
        record_nonce(state, &channel_id, &nonce, now)
            .await
            .map_err(fail)?;
        None
    };
    if !state
        .rate_limiter
        .allow(&channel_id, channel.rate_per_second)
    {
        // A nonce left for the payment is recorded now: it was seen, and a replay says so first.
        if let Some(nonce) = pending.as_ref().and_then(PendingNonce::take) {
            record_nonce(state, &channel_id, &nonce, now)
                .await
                .map_err(fail)?;
        }
        tracing::info!(channel = %channel_id, reason = "rate_limited", "channel request refused");
        return Err(fail(ServiceError::new(
            ErrorCode::RateLimited,
            "请求过于频繁，请稍后重试",
        )));
    }
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(ChannelContext {
        channel_id,
        kind: channel.kind,
        regions: channel.regions,
        test_mode: channel.test_mode,
        nonce: pending,
    });
    Ok((secret, request))
}

async fn sign_response(
    response: Response,
    path_and_query: &str,
    secret: &ChannelSecret,
    timestamp: i64,
) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_SIGNED_RESPONSE_BYTES).await else {
        return ServiceError::of(ErrorCode::InternalError).into_response();
    };
    let nonce = signing::new_nonce();
    let to_sign = signing::response_string_to_sign(
        parts.status.as_u16(),
        path_and_query,
        timestamp,
        &nonce,
        &bytes,
    );
    let signature = signing::sign(secret.expose(), &to_sign);
    for (name, value) in [
        (signing::HEADER_TIMESTAMP, timestamp.to_string()),
        (signing::HEADER_NONCE, nonce),
        (signing::HEADER_SIGNATURE, signature),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            parts.headers.insert(name, v);
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}
