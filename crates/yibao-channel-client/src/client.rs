//! The typed, signing HTTP client of channel protocol v1.
//!
//! Every call signs its request, sends it, checks the response signature over the status, the request's
//! PATH_AND_QUERY and the response body, and only then decodes. [`ChannelClient::send_raw`] is the same path
//! with every knob exposed, for conformance tests that send replays, skewed clocks and bad signatures.

use std::time::Duration;

use chrono::NaiveDate;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::paths::{self, InvalidSegment};
use crate::signing::{
    self, ChannelSecret, HEADER_CHANNEL, HEADER_NONCE, HEADER_REQUEST_ID, HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
};
use crate::types::{
    Ack, AgentDay, ErrorBody, OpenOrderRequest, Order, PaymentReport, PaymentStatusResponse,
    PendingRefund, PublicVerification, ReceiptDocument, ReceiptList, ReceiptSearchRequest,
    ReceiptSummary, RefundList, RefundResultRequest, ReportPaymentRequest, ReversalRequest,
    ReversalResponse, SearchRequest, SearchResponse, StatementSummary,
};

/// `application/json`
pub const JSON: &str = "application/json";
/// `text/csv`, the statement upload's content type.
pub const CSV: &str = "text/csv";
/// `application/pdf`, asked for with `Accept` to get a receipt as PDF.
pub const PDF: &str = "application/pdf";

/// Default bound on one whole request, connect to last byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound on a response body; a larger one is refused unread.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// How much of an undecodable body an error keeps, in characters.
const BODY_EXCERPT_CHARS: usize = 512;

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request never got an HTTP answer: connection refused or reset, timeout, DNS.
    #[error("transport error: {0}")]
    Transport(#[from] reqwest::Error),
    /// The protocol's error answer: an HTTP status with `{"code", "message", "request_id"}`.
    /// `signature_verified` is false when the error came unsigned (a server cannot sign for a channel it does
    /// not know); a signed error whose signature is wrong is [`ClientError::BadSignature`] instead.
    #[error("HTTP {status} {code}: {message} (request {request_id})")]
    Api {
        status: u16,
        code: String,
        message: String,
        request_id: String,
        signature_verified: bool,
    },
    /// The response's `Yibao-Signature` is missing (on a success) or does not verify: its body cannot be trusted.
    #[error("bad response signature on HTTP {status}: {reason}")]
    BadSignature { status: u16, reason: String },
    /// The response verified but its body is not what the protocol says it is.
    #[error("undecodable response body on HTTP {status}: {reason}; body starts {body:?}")]
    Decode {
        status: u16,
        reason: String,
        body: String,
    },
    /// The response body exceeded the client's bound and was not read further.
    #[error("response body larger than {limit} bytes")]
    ResponseTooLarge { limit: usize },
    /// The request could not be built as asked: a bad base URL, a path that would not go on the wire as
    /// given, an identifier that cannot be a path segment, a header value that is not legal.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl ClientError {
    /// The protocol error code, for an [`ClientError::Api`] error.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, where there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. }
            | ClientError::BadSignature { status, .. }
            | ClientError::Decode { status, .. } => Some(*status),
            ClientError::Transport(e) => e.status().map(|s| s.as_u16()),
            ClientError::ResponseTooLarge { .. } | ClientError::InvalidRequest(_) => None,
        }
    }
}

impl From<InvalidSegment> for ClientError {
    fn from(e: InvalidSegment) -> Self {
        ClientError::InvalidRequest(e.to_string())
    }
}

/// What became of the response signature check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseSignature {
    /// `Yibao-Timestamp`, `Yibao-Nonce` and `Yibao-Signature` present and the signature verifies.
    Valid,
    /// None of the three headers present.
    Missing,
    /// Some present but not all, malformed, or a signature that does not verify; says which.
    Invalid(String),
    /// Not checked: asked so in [`RawOptions`], or an unauthenticated request.
    NotChecked,
}

/// Overrides for one [`ChannelClient::send_raw`] call. The default is a correctly signed request.
#[derive(Debug, Clone, Default)]
pub struct RawOptions {
    /// `Yibao-Timestamp`; default: now plus the client's clock offset.
    pub timestamp: Option<i64>,
    /// `Yibao-Nonce`; default: a fresh one. Set it (with `timestamp`) to replay a request.
    pub nonce: Option<String>,
    /// `Yibao-Signature` sent as is instead of the computed one.
    pub signature: Option<String>,
    /// `Yibao-Channel`; default: the client's. Signing still uses `secret` (or the client's secret).
    pub channel_id: Option<String>,
    /// Sign the request with this secret instead of the client's. The response is verified with it too.
    pub secret: Option<ChannelSecret>,
    /// `Content-Type`; default: `application/json` when the body is not empty, none when it is.
    pub content_type: Option<String>,
    /// `Accept`; default: `application/json`.
    pub accept: Option<String>,
    /// Send no `Yibao-*` authentication headers at all (the public endpoints); implies no response check.
    pub unauthenticated: bool,
    /// Header names to leave out after everything else is set, e.g. `Yibao-Nonce`.
    pub omit_headers: Vec<String>,
    /// More headers, added last (a name given here replaces the computed one).
    pub extra_headers: Vec<(String, String)>,
    /// Do not check the response signature ([`RawResponse::signature`] is then `NotChecked`).
    pub skip_response_verification: bool,
}

/// The authentication a raw request carried, for building a replay of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentAuth {
    pub channel_id: String,
    pub timestamp: i64,
    pub nonce: String,
    pub signature: String,
}

/// A response as it came, with the result of the signature check.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub signature: ResponseSignature,
    /// The PATH_AND_QUERY that went on the wire and into both strings to sign.
    pub path_and_query: String,
    /// The authentication headers sent; `None` for an unauthenticated request.
    pub sent: Option<SentAuth>,
}

impl RawResponse {
    /// Whether the response signature was checked and verifies.
    pub fn signature_verified(&self) -> bool {
        self.signature == ResponseSignature::Valid
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Yibao-Request-Id`, which every response must carry.
    pub fn request_id(&self) -> Option<&str> {
        self.header(HEADER_REQUEST_ID)
    }

    /// The body as JSON of type `T`, whatever the status and signature.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| self.decode_error(e.to_string()))
    }

    /// The protocol's error body, if the body is one.
    pub fn error_body(&self) -> Option<ErrorBody> {
        serde_json::from_slice(&self.body).ok()
    }

    fn decode_error(&self, reason: String) -> ClientError {
        ClientError::Decode {
            status: self.status,
            reason,
            body: String::from_utf8_lossy(&self.body)
                .chars()
                .take(BODY_EXCERPT_CHARS)
                .collect(),
        }
    }

    /// The common checks of every typed call: a success must be verified; an error must be the protocol's
    /// error body, and if it carries a signature, the signature must verify.
    fn checked(self) -> Result<RawResponse, ClientError> {
        let verified = match &self.signature {
            ResponseSignature::Valid => true,
            ResponseSignature::NotChecked => false,
            ResponseSignature::Missing if !self.is_success() => false,
            ResponseSignature::Missing => {
                return Err(ClientError::BadSignature {
                    status: self.status,
                    reason: "response is not signed".to_owned(),
                })
            }
            ResponseSignature::Invalid(reason) => {
                return Err(ClientError::BadSignature {
                    status: self.status,
                    reason: reason.clone(),
                })
            }
        };
        if self.is_success() {
            return Ok(self);
        }
        match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(err) => Err(ClientError::Api {
                status: self.status,
                code: err.code,
                message: err.message,
                request_id: err.request_id,
                signature_verified: verified,
            }),
            Err(e) => Err(self.decode_error(format!("not the protocol's error body: {e}"))),
        }
    }

    fn into_json<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        let ok = self.checked()?;
        ok.json()
    }

    fn into_ack(self) -> Result<Ack, ClientError> {
        let ok = self.checked()?;
        if ok.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Ack::default());
        }
        ok.json()
    }
}

/// A freshly opened order, or the same order again for a repeated `channel_order_no`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedOrder {
    /// 201 (opened now) rather than 200 (the same `channel_order_no` seen before).
    pub created: bool,
    pub order: Order,
}

/// Builds a [`ChannelClient`] with non-default bounds or clock.
#[derive(Debug)]
pub struct ChannelClientBuilder {
    base_url: String,
    channel_id: String,
    secret: ChannelSecret,
    timeout: Duration,
    clock_offset_secs: i64,
    max_response_bytes: usize,
    http: Option<reqwest::Client>,
}

impl ChannelClientBuilder {
    /// Bound on one whole request (default [`DEFAULT_TIMEOUT`]). Ignored with [`Self::http_client`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Seconds added to the system clock for every `Yibao-Timestamp`: a channel whose clock is off.
    pub fn clock_offset_secs(mut self, secs: i64) -> Self {
        self.clock_offset_secs = secs;
        self
    }

    /// Bound on a response body (default [`DEFAULT_MAX_RESPONSE_BYTES`]).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Use this HTTP client (connection pool shared with others). It should not follow redirects: a
    /// redirected answer is signed over another path and will not verify.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    pub fn build(self) -> Result<ChannelClient, ClientError> {
        let origin = parse_origin(&self.base_url)?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .timeout(self.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        };
        Ok(ChannelClient {
            http,
            origin,
            channel_id: self.channel_id,
            secret: self.secret,
            clock_offset_secs: self.clock_offset_secs,
            max_response_bytes: self.max_response_bytes,
        })
    }
}

/// `scheme://host[:port]` of a base URL that has no path, query, fragment or credentials: the protocol's
/// paths are absolute (`/channel/v1/...`) and a prefix would not be part of the signed path.
fn parse_origin(base_url: &str) -> Result<String, ClientError> {
    let url = Url::parse(base_url)
        .map_err(|e| ClientError::InvalidRequest(format!("base URL {base_url:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ClientError::InvalidRequest(format!(
            "base URL {base_url:?}: scheme must be http or https"
        )));
    }
    if url.host().is_none()
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(ClientError::InvalidRequest(format!(
            "base URL {base_url:?} must be only scheme, host and port (no path, query, fragment or credentials)"
        )));
    }
    Ok(url.origin().ascii_serialization())
}

/// A channel's client of the protocol. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct ChannelClient {
    http: reqwest::Client,
    origin: String,
    channel_id: String,
    secret: ChannelSecret,
    clock_offset_secs: i64,
    max_response_bytes: usize,
}

fn header_value(what: &str, value: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(value).map_err(|_| {
        ClientError::InvalidRequest(format!("{what} is not a legal header value: {value:?}"))
    })
}

fn header_name(name: &str) -> Result<HeaderName, ClientError> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ClientError::InvalidRequest(format!("not a legal header name: {name:?}")))
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(value)
        .map_err(|e| ClientError::InvalidRequest(format!("request does not serialise: {e}")))
}

fn check_response_signature(
    secret: &ChannelSecret,
    status: u16,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> ResponseSignature {
    let get = |name: &str| headers.get(name).map(|v| v.to_str());
    let (timestamp, nonce, signature) = match (
        get(HEADER_TIMESTAMP),
        get(HEADER_NONCE),
        get(HEADER_SIGNATURE),
    ) {
        (None, None, None) => return ResponseSignature::Missing,
        (Some(Ok(t)), Some(Ok(n)), Some(Ok(s))) => (t, n, s),
        (t, n, s) => {
            let missing: Vec<&str> = [
                (HEADER_TIMESTAMP, t.is_none()),
                (HEADER_NONCE, n.is_none()),
                (HEADER_SIGNATURE, s.is_none()),
            ]
            .into_iter()
            .filter_map(|(name, absent)| absent.then_some(name))
            .collect();
            return ResponseSignature::Invalid(if missing.is_empty() {
                "a signature header is not visible ASCII".to_owned()
            } else {
                format!("missing {}", missing.join(", "))
            });
        }
    };
    let ts = match timestamp.parse::<i64>() {
        Ok(ts) if ts.to_string() == timestamp => ts,
        _ => {
            return ResponseSignature::Invalid(format!(
                "{HEADER_TIMESTAMP} is not decimal Unix seconds: {timestamp:?}"
            ))
        }
    };
    if !signing::valid_nonce(nonce) {
        return ResponseSignature::Invalid(format!(
            "{HEADER_NONCE} is not 16 to 64 of [A-Za-z0-9]: {nonce:?}"
        ));
    }
    let sts = signing::response_string_to_sign(status, path_and_query, ts, nonce, body);
    if signing::verify(secret.expose(), &sts, signature) {
        ResponseSignature::Valid
    } else {
        ResponseSignature::Invalid(
            "signature does not match the status, path, timestamp, nonce and body".to_owned(),
        )
    }
}

impl ChannelClient {
    /// A client with the default timeout and bounds. `base_url` is `http://host:port`, nothing more.
    pub fn new(
        base_url: &str,
        channel_id: impl Into<String>,
        secret: impl Into<ChannelSecret>,
    ) -> Result<Self, ClientError> {
        Self::builder(base_url, channel_id, secret).build()
    }

    pub fn builder(
        base_url: &str,
        channel_id: impl Into<String>,
        secret: impl Into<ChannelSecret>,
    ) -> ChannelClientBuilder {
        ChannelClientBuilder {
            base_url: base_url.to_owned(),
            channel_id: channel_id.into(),
            secret: secret.into(),
            timeout: DEFAULT_TIMEOUT,
            clock_offset_secs: 0,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            http: None,
        }
    }

    pub fn channel_id(&self) -> &str {
        &self.channel_id
    }

    /// `scheme://host[:port]`
    pub fn base_url(&self) -> &str {
        &self.origin
    }

    /// The same client with its clock moved by `secs` (replacing any earlier offset).
    pub fn with_clock_offset_secs(&self, secs: i64) -> Self {
        ChannelClient {
            clock_offset_secs: secs,
            ..self.clone()
        }
    }

    /// The timestamp this client puts on a request now: Unix seconds plus its clock offset.
    pub fn now(&self) -> i64 {
        chrono::Utc::now()
            .timestamp()
            .saturating_add(self.clock_offset_secs)
    }

    /// Sends one request as told and returns the response whatever its status, with the signature check's
    /// result. Fails only if the request cannot be built or sent, or the body exceeds the bound.
    ///
    /// `path_and_query` must be exactly what is to go on the wire (already percent-encoded, see
    /// [`crate::paths`]); if the URL parser would send anything else, the call is refused rather than signed
    /// over a path the server will not see.
    pub async fn send_raw(
        &self,
        method: Method,
        path_and_query: &str,
        body: Vec<u8>,
        options: RawOptions,
    ) -> Result<RawResponse, ClientError> {
        if !path_and_query.starts_with('/') {
            return Err(ClientError::InvalidRequest(format!(
                "path must start with '/': {path_and_query:?}"
            )));
        }
        let url = Url::parse(&format!("{}{path_and_query}", self.origin))
            .map_err(|e| ClientError::InvalidRequest(format!("{path_and_query:?}: {e}")))?;
        let on_wire = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        if on_wire != path_and_query || url.fragment().is_some() {
            return Err(ClientError::InvalidRequest(format!(
                "{path_and_query:?} would go on the wire as {on_wire:?}; percent-encode it (see paths::percent_encode)"
            )));
        }

        let secret = options.secret.as_ref().unwrap_or(&self.secret);
        let mut headers = HeaderMap::new();
        let sent = if options.unauthenticated {
            None
        } else {
            let channel_id = options
                .channel_id
                .clone()
                .unwrap_or_else(|| self.channel_id.clone());
            let timestamp = options.timestamp.unwrap_or_else(|| self.now());
            let nonce = options.nonce.clone().unwrap_or_else(signing::new_nonce);
            let signature = match &options.signature {
                Some(sig) => sig.clone(),
                None => signing::sign(
                    secret.expose(),
                    &signing::request_string_to_sign(
                        method.as_str(),
                        path_and_query,
                        timestamp,
                        &nonce,
                        &body,
                    ),
                ),
            };
            headers.insert(HEADER_CHANNEL, header_value(HEADER_CHANNEL, &channel_id)?);
            headers.insert(
                HEADER_TIMESTAMP,
                header_value(HEADER_TIMESTAMP, &timestamp.to_string())?,
            );
            headers.insert(HEADER_NONCE, header_value(HEADER_NONCE, &nonce)?);
            headers.insert(
                HEADER_SIGNATURE,
                header_value(HEADER_SIGNATURE, &signature)?,
            );
            Some(SentAuth {
                channel_id,
                timestamp,
                nonce,
                signature,
            })
        };
        let content_type = match &options.content_type {
            Some(ct) => Some(ct.as_str()),
            None if body.is_empty() => None,
            None => Some(JSON),
        };
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, header_value("Content-Type", ct)?);
        }
        let accept = options.accept.as_deref().unwrap_or(JSON);
        headers.insert(ACCEPT, header_value("Accept", accept)?);
        for name in &options.omit_headers {
            headers.remove(header_name(name)?);
        }
        for (name, value) in &options.extra_headers {
            headers.insert(header_name(name)?, header_value(name, value)?);
        }

        let mut response = self
            .http
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let limit = self.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX))
        {
            return Err(ClientError::ResponseTooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len().saturating_add(chunk.len()) > limit {
                return Err(ClientError::ResponseTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }

        let signature = if options.unauthenticated || options.skip_response_verification {
            ResponseSignature::NotChecked
        } else {
            check_response_signature(secret, status, path_and_query, &headers, &body)
        };
        Ok(RawResponse {
            status,
            headers,
            body,
            signature,
            path_and_query: path_and_query.to_owned(),
            sent,
        })
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
        accept: &str,
    ) -> Result<RawResponse, ClientError> {
        let options = RawOptions {
            content_type: content_type.map(str::to_owned),
            accept: Some(accept.to_owned()),
            ..RawOptions::default()
        };
        self.send_raw(method, path_and_query, body, options).await
    }

    async fn post_json<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path_and_query: &str,
        request: &Req,
    ) -> Result<Resp, ClientError> {
        self.send(
            Method::POST,
            path_and_query,
            to_json(request)?,
            Some(JSON),
            JSON,
        )
        .await?
        .into_json()
    }

    async fn get_json<Resp: DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<Resp, ClientError> {
        self.send(Method::GET, path_and_query, Vec::new(), None, JSON)
            .await?
            .into_json()
    }

    /// §1 `POST /channel/v1/payables/search`
    pub async fn search(&self, request: &SearchRequest) -> Result<SearchResponse, ClientError> {
        self.post_json(&paths::payables_search(), request).await
    }

    /// §2 `POST /channel/v1/orders`: 201 opened, or 200 the same order for a repeated `channel_order_no`.
    pub async fn open_order(&self, request: &OpenOrderRequest) -> Result<OpenedOrder, ClientError> {
        let raw = self
            .send(
                Method::POST,
                &paths::orders(),
                to_json(request)?,
                Some(JSON),
                JSON,
            )
            .await?;
        let created = raw.status == StatusCode::CREATED.as_u16();
        Ok(OpenedOrder {
            created,
            order: raw.into_json()?,
        })
    }

    /// §2 `POST /channel/v1/orders/{order_no}/cancel`, sent with an empty body; idempotent. The protocol does
    /// not define the answer's body, so it is returned as it came.
    pub async fn cancel_order(&self, order_no: &str) -> Result<Ack, ClientError> {
        self.send(
            Method::POST,
            &paths::order_cancel(order_no)?,
            Vec::new(),
            None,
            JSON,
        )
        .await?
        .into_ack()
    }

    /// §3 `POST /channel/v1/payments`
    pub async fn report_payment(
        &self,
        request: &ReportPaymentRequest,
    ) -> Result<PaymentReport, ClientError> {
        self.post_json(&paths::payments(), request).await
    }

    /// §4 `POST /channel/v1/payments/{channel_txn_id}/reversal` (冲正); idempotent.
    pub async fn reverse_payment(
        &self,
        channel_txn_id: &str,
        reason: &str,
    ) -> Result<ReversalResponse, ClientError> {
        let request = ReversalRequest {
            reason: reason.to_owned(),
        };
        self.post_json(&paths::payment_reversal(channel_txn_id)?, &request)
            .await
    }

    /// §5 `GET /channel/v1/payments/{channel_txn_id}`; 404 `NOT_FOUND` means report it again.
    pub async fn payment_status(
        &self,
        channel_txn_id: &str,
    ) -> Result<PaymentStatusResponse, ClientError> {
        self.get_json(&paths::payment(channel_txn_id)?).await
    }

    /// An addition to v1, for `village_agent` channels: who paid what through one agent on a day,
    /// masked, and the cash the agent hands in (`total`, fen).
    pub async fn agent_day(
        &self,
        agent_code: &str,
        date: chrono::NaiveDate,
    ) -> Result<AgentDay, ClientError> {
        self.get_json(&paths::agent_day(agent_code, date)?).await
    }

    /// §6 `GET /channel/v1/refunds?status=pending`: refunds yibao owes through this channel.
    pub async fn pending_refunds(&self) -> Result<Vec<PendingRefund>, ClientError> {
        let list: RefundList = self.get_json(&paths::refunds("pending")).await?;
        Ok(list.0)
    }

    /// §6 `POST /channel/v1/refunds/{refund_no}/result`; idempotent. The answer's body is not defined by the
    /// protocol and is returned as it came.
    pub async fn report_refund_result(
        &self,
        refund_no: &str,
        request: &RefundResultRequest,
    ) -> Result<Ack, ClientError> {
        self.send(
            Method::POST,
            &paths::refund_result(refund_no)?,
            to_json(request)?,
            Some(JSON),
            JSON,
        )
        .await?
        .into_ack()
    }

    /// §7 `PUT /channel/v1/statements/{date}` with `Content-Type: text/csv` (see
    /// [`crate::types::statement_csv`]). Uploading a date again replaces the earlier upload.
    pub async fn upload_statement(
        &self,
        date: NaiveDate,
        csv_text: &str,
    ) -> Result<StatementSummary, ClientError> {
        self.send(
            Method::PUT,
            &paths::statement(date),
            csv_text.as_bytes().to_vec(),
            Some(CSV),
            JSON,
        )
        .await?
        .into_json()
    }

    /// §8 `POST /channel/v1/receipts/search` (name required).
    pub async fn search_receipts(
        &self,
        request: &ReceiptSearchRequest,
    ) -> Result<Vec<ReceiptSummary>, ClientError> {
        let list: ReceiptList = self.post_json(&paths::receipts_search(), request).await?;
        Ok(list.0)
    }

    /// §8 `GET /channel/v1/receipts/{receipt_code}/{receipt_number}?check_code=` as JSON.
    pub async fn receipt_json(
        &self,
        receipt_code: &str,
        receipt_number: &str,
        check_code: &str,
    ) -> Result<ReceiptDocument, ClientError> {
        self.get_json(&paths::receipt(receipt_code, receipt_number, check_code)?)
            .await
    }

    /// §8 the same receipt as PDF (`Accept: application/pdf`); the signature covers the PDF bytes. An answer
    /// that is not `application/pdf` is a [`ClientError::Decode`].
    pub async fn receipt_pdf(
        &self,
        receipt_code: &str,
        receipt_number: &str,
        check_code: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let raw = self
            .send(
                Method::GET,
                &paths::receipt(receipt_code, receipt_number, check_code)?,
                Vec::new(),
                None,
                PDF,
            )
            .await?
            .checked()?;
        let is_pdf = raw
            .header(CONTENT_TYPE.as_str())
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(PDF));
        if !is_pdf {
            let found = raw
                .header(CONTENT_TYPE.as_str())
                .unwrap_or("none")
                .to_owned();
            return Err(raw.decode_error(format!("expected Content-Type {PDF}, got {found}")));
        }
        Ok(raw.body)
    }

    /// §8 addition: the payer's own copy as JSON (`payer_name` in full).
    pub async fn payer_copy_json(
        &self,
        receipt_code: &str,
        receipt_number: &str,
        request: &crate::types::PayerCopyRequest,
    ) -> Result<ReceiptDocument, ClientError> {
        self.post_json(
            &paths::receipt_payer_copy(receipt_code, receipt_number)?,
            request,
        )
        .await
    }

    /// §8 addition: the payer's own copy as PDF, the name in full.
    pub async fn payer_copy_pdf(
        &self,
        receipt_code: &str,
        receipt_number: &str,
        request: &crate::types::PayerCopyRequest,
    ) -> Result<Vec<u8>, ClientError> {
        let raw = self
            .send(
                Method::POST,
                &paths::receipt_payer_copy(receipt_code, receipt_number)?,
                to_json(request)?,
                Some(JSON),
                PDF,
            )
            .await?
            .checked()?;
        Ok(raw.body)
    }

    /// §8 `GET /public/receipts/verify?code=&number=&check_code=`: no authentication headers, and the
    /// answer is not checked for a signature (there is no channel secret to sign it with).
    pub async fn public_verify(
        &self,
        code: &str,
        number: &str,
        check_code: &str,
    ) -> Result<PublicVerification, ClientError> {
        let options = RawOptions {
            unauthenticated: true,
            ..RawOptions::default()
        };
        self.send_raw(
            Method::GET,
            &paths::public_verify(code, number, check_code),
            Vec::new(),
            options,
        )
        .await?
        .into_json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_must_be_an_origin() {
        assert!(parse_origin("http://127.0.0.1:8080").is_ok());
        assert_eq!(
            parse_origin("http://127.0.0.1:8080/").ok().as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            parse_origin("https://yibao.example:443").ok().as_deref(),
            Some("https://yibao.example")
        );
        for bad in [
            "127.0.0.1:8080",
            "ftp://host",
            "http://host/prefix",
            "http://host/?a=1",
            "http://user:pw@host",
            "not a url",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_is_masked_in_client_debug() {
        let client = ChannelClient::new("http://127.0.0.1:1", "bank-01", "super-secret-value");
        let Ok(client) = client else {
            panic!("client: {client:?}");
        };
        let debug = format!("{client:?}");
        assert!(debug.contains("***"));
        assert!(!debug.contains("super-secret-value"));
    }

    #[test]
    fn response_signature_check_names_the_problem() {
        let secret = ChannelSecret::from("s");
        let path = "/channel/v1/payments";
        let body = b"{}";
        let mut headers = HeaderMap::new();
        assert_eq!(
            check_response_signature(&secret, 200, path, &headers, body),
            ResponseSignature::Missing
        );
        let nonce = "0123456789abcdef";
        let sig = signing::sign(
            secret.expose(),
            &signing::response_string_to_sign(200, path, 1_604_283_300, nonce, body),
        );
        headers.insert(HEADER_TIMESTAMP, HeaderValue::from_static("1604283300"));
        assert!(matches!(
            check_response_signature(&secret, 200, path, &headers, body),
            ResponseSignature::Invalid(r) if r.contains(HEADER_NONCE) && r.contains(HEADER_SIGNATURE)
        ));
        headers.insert(HEADER_NONCE, HeaderValue::from_static(nonce));
        if let Ok(v) = HeaderValue::from_str(&sig) {
            headers.insert(HEADER_SIGNATURE, v);
        }
        assert_eq!(
            check_response_signature(&secret, 200, path, &headers, body),
            ResponseSignature::Valid
        );
        // The status, the path and the body are all covered.
        assert!(
            check_response_signature(&secret, 201, path, &headers, body)
                != ResponseSignature::Valid
        );
        assert!(
            check_response_signature(&secret, 200, "/channel/v1/orders", &headers, body)
                != ResponseSignature::Valid
        );
        assert!(
            check_response_signature(&secret, 200, path, &headers, b"{ }")
                != ResponseSignature::Valid
        );
        // A timestamp that only parses loosely is refused: the signed text is the header's text.
        headers.insert(HEADER_TIMESTAMP, HeaderValue::from_static("+1604283300"));
        assert!(matches!(
            check_response_signature(&secret, 200, path, &headers, body),
            ResponseSignature::Invalid(r) if r.contains(HEADER_TIMESTAMP)
        ));
    }
}
