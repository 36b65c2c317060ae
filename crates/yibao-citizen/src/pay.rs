//! 在线缴费: a resident pays from the look-up page. To the rest of yibao the site is a channel of
//! kind `gov_app` ([`SITE_CHANNEL_ID`]): it opens an order and reports the payment through the
//! very services the channel protocol's handlers call ([`yibao_server::services::collection`]), so
//! idempotency, locks, late and repeated notifications, refunds owed, receipts and posting are the
//! protocol's. Between the two the resident pays at a payment provider ([`PaymentProvider`]); the
//! demo and the tests use the simulated cashier ([`SimulatedCashier`], 模拟收银台), which takes no
//! money.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use yibao_server::channel::auth::ChannelContext;
use yibao_server::services::collection::{
    place_order, take_payment_report, OrderRequest, Payer, PaymentRequest,
};
use yibao_server::{AppState, ErrorCode, ServiceError};

use crate::{error_page, render};

/// The channel the site is to the rest of yibao: registered by the operator like any other
/// (`yibao channel add citizen-site --kind gov_app --regions …`); the demo registers it. Without
/// it, or disabled, the site shows where to pay but takes no payment itself.
pub const SITE_CHANNEL_ID: &str = "citizen-site";

/// Paid orders the simulated cashier remembers for [`PaymentProvider::query`].
pub const SIMULATED_ORDERS_KEPT: usize = 10_000;

/// An order as the provider is asked to collect it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderOrder {
    pub order_no: String,
    /// Fen.
    pub amount: i64,
    /// Unix seconds: the provider should not take money after this (yibao still applies or owes
    /// back whatever arrives later).
    pub expires_at: i64,
}

/// A provider's word that money was taken for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub order_no: String,
    /// The provider's transaction id: the idempotency key of the payment report.
    pub txn_id: String,
    /// Fen.
    pub amount: i64,
    /// RFC 3339 with its offset.
    pub paid_at: String,
}

/// What a provider said to a refund handed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundHandOver {
    /// Refunded; the provider's own refund id.
    Accepted { refund_id: String },
    /// Refused, with the provider's reason: yibao records the failure and tries again (staff
    /// decide after the fifth attempt, as for any channel).
    Refused { reason: String },
}

/// A payment provider (WeChat Pay, Alipay, a bank's cashier …) as the site uses it. An adapter
/// for a real provider turns these into its API calls: `create_payment` into its order creation
/// (the URL or the parameters the page hands on), `verify_notification` into checking the
/// signature of its asynchronous notification with its public key or key, `query` and `refund`
/// into its query and refund calls (docs/citizen.md).
#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync {
    /// Where the resident goes to pay `order`.
    fn create_payment(&self, order: &ProviderOrder) -> String;
    /// The notification in `body` if the provider signed it; `None` for anything else.
    fn verify_notification(&self, body: &[u8]) -> Option<Notification>;
    /// What the provider knows of the order's payment, for a notification that never came.
    async fn query(&self, order_no: &str) -> Option<Notification>;
    /// Hands back `amount` fen of transaction `txn_id`.
    async fn refund(&self, txn_id: &str, amount: i64) -> RefundHandOver;
}

/// The simulated cashier (模拟收银台): a page of this site that "takes" the money when the
/// resident confirms and notifies through [`accept_notification`], the path a real provider's
/// notification takes. Its key is made at start and never leaves the process.
pub struct SimulatedCashier {
    key: [u8; 32],
    paid: Mutex<VecDeque<Notification>>,
}

impl Default for SimulatedCashier {
    fn default() -> Self {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        SimulatedCashier {
            key,
            paid: Mutex::new(VecDeque::new()),
        }
    }
}

impl std::fmt::Debug for SimulatedCashier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimulatedCashier { key: <secret> }")
    }
}

impl SimulatedCashier {
    /// HMAC-SHA256 of the lines under the cashier's key, lowercase hex (the channel protocol's
    /// signing, reused).
    fn mac<S: AsRef<str>>(&self, parts: &[S]) -> String {
        yibao_channel_client::signing::sign(&self.key, &lines(parts))
    }

    /// Whether `signature` is [`Self::mac`] of the lines, compared in constant time.
    fn verify<S: AsRef<str>>(&self, parts: &[S], signature: &str) -> bool {
        yibao_channel_client::signing::verify(&self.key, &lines(parts), signature)
    }

    /// The order's fields signed, as the cashier page's URL carries them.
    fn order_signature(&self, order: &ProviderOrder) -> String {
        self.mac(&Self::order_lines(order))
    }

    /// Whether `signature` is the order's: the cashier's link was not changed.
    fn order_signed(&self, order: &ProviderOrder, signature: &str) -> bool {
        self.verify(&Self::order_lines(order), signature)
    }

    fn order_lines(order: &ProviderOrder) -> [String; 4] {
        [
            "order".to_owned(),
            order.order_no.clone(),
            order.amount.to_string(),
            order.expires_at.to_string(),
        ]
    }

    /// The notification as the cashier sends it: form fields with their signature.
    pub fn signed_notification(&self, n: &Notification) -> String {
        let signature = self.mac(&[
            "notify",
            &n.order_no,
            &n.txn_id,
            &n.amount.to_string(),
            &n.paid_at,
        ]);
        form_encoded(&[
            ("order_no", &n.order_no),
            ("txn_id", &n.txn_id),
            ("amount", &n.amount.to_string()),
            ("paid_at", &n.paid_at),
            ("signature", &signature),
        ])
    }

    /// The notification this cashier sent for transaction `txn_id`, if it still remembers it.
    fn sent(&self, txn_id: &str) -> Option<Notification> {
        self.paid
            .lock()
            .ok()?
            .iter()
            .rev()
            .find(|n| n.txn_id == txn_id)
            .cloned()
    }

    /// Takes the money for `order` and "loses" the notification (a provider's outage, a network
    /// failure): only [`PaymentProvider::query`] will tell. For the tests of that path.
    pub fn pay_without_notifying(
        &self,
        order_no: &str,
        amount: i64,
        paid_at: &str,
    ) -> Notification {
        let n = Notification {
            order_no: order_no.to_owned(),
            txn_id: format!("SIM{}", uuid::Uuid::new_v4().simple()),
            amount,
            paid_at: paid_at.to_owned(),
        };
        self.remember(&n);
        n
    }

    fn remember(&self, n: &Notification) {
        if let Ok(mut paid) = self.paid.lock() {
            if paid.len() >= SIMULATED_ORDERS_KEPT {
                paid.pop_front();
            }
            paid.push_back(n.clone());
        }
    }
}

fn lines<S: AsRef<str>>(parts: &[S]) -> String {
    parts
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `key=value&…`, percent-encoded.
fn form_encoded(pairs: &[(&str, &str)]) -> String {
    // Strings always serialize.
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

#[derive(Deserialize)]
struct NotificationForm {
    order_no: String,
    txn_id: String,
    amount: i64,
    paid_at: String,
    signature: String,
}

#[async_trait::async_trait]
impl PaymentProvider for SimulatedCashier {
    fn create_payment(&self, order: &ProviderOrder) -> String {
        let query = form_encoded(&[
            ("order_no", &order.order_no),
            ("amount", &order.amount.to_string()),
            ("expires_at", &order.expires_at.to_string()),
            ("signature", &self.order_signature(order)),
        ]);
        format!("/cashier?{query}")
    }

    fn verify_notification(&self, body: &[u8]) -> Option<Notification> {
        let form: NotificationForm = serde_urlencoded::from_bytes(body).ok()?;
        let parts = [
            "notify",
            form.order_no.as_str(),
            form.txn_id.as_str(),
            &form.amount.to_string(),
            form.paid_at.as_str(),
        ];
        if !self.verify(&parts, &form.signature) {
            return None;
        }
        Some(Notification {
            order_no: form.order_no,
            txn_id: form.txn_id,
            amount: form.amount,
            paid_at: form.paid_at,
        })
    }

    async fn query(&self, order_no: &str) -> Option<Notification> {
        self.paid
            .lock()
            .ok()?
            .iter()
            .rev()
            .find(|n| n.order_no == order_no)
            .cloned()
    }

    async fn refund(&self, _txn_id: &str, _amount: i64) -> RefundHandOver {
        RefundHandOver::Accepted {
            refund_id: format!("SIMR{}", uuid::Uuid::new_v4().simple()),
        }
    }
}

/// Refunds handed to the provider in one round, and the time between rounds.
pub const REFUNDS_PER_ROUND: usize = 100;
pub const REFUND_ROUND_SECONDS: u64 = 60;

/// Hands the refunds owed on the site's payments to the provider, as a channel does with §5 of
/// the protocol: listed (each marked sent, one attempt more), refunded at the provider, and the
/// provider's answer recorded as the channel's refund result. Returns how many were handed over.
pub async fn hand_over_refunds(
    state: &AppState,
    provider: &dyn PaymentProvider,
) -> Result<usize, ServiceError> {
    let refunds = state
        .storage
        .pending_refunds(SITE_CHANNEL_ID, REFUNDS_PER_ROUND)
        .await?;
    if refunds.is_empty() {
        return Ok(0);
    }
    let listed: Vec<String> = refunds.iter().map(|r| r.refund_no.clone()).collect();
    state
        .storage
        .mark_refunds_sent(SITE_CHANNEL_ID, &listed)
        .await?;
    for refund in &refunds {
        let answer = provider
            .refund(&refund.channel_txn_id, refund.amount_fen.as_fen())
            .await;
        let (succeeded, refund_id, reason) = match answer {
            RefundHandOver::Accepted { refund_id } => (true, refund_id, None),
            RefundHandOver::Refused { reason } => {
                (false, format!("{}-R", refund.refund_no), Some(reason))
            }
        };
        state
            .storage
            .refund_result(
                SITE_CHANNEL_ID,
                &refund.refund_no,
                succeeded,
                &refund_id,
                reason.as_deref(),
                state.clock.today(),
            )
            .await?;
    }
    Ok(refunds.len())
}

/// Orders asked about in one round of [`ask_about_unpaid_orders`].
pub const ORDER_QUERIES_PER_ROUND: i64 = 100;
/// How long after an order expired the provider is still asked about it, seconds.
pub const ORDER_QUERY_WINDOW_SECONDS: i64 = 3600;

/// Asks the provider about the site's orders still unpaid (open, or expired within
/// [`ORDER_QUERY_WINDOW_SECONDS`]), at most [`ORDER_QUERIES_PER_ROUND`]: a payment the provider
/// took whose notification never arrived is reported as the notification would have been
/// (applied, or owed back if the payables went meanwhile). Returns how many were found paid.
pub async fn ask_about_unpaid_orders(
    state: &AppState,
    provider: &dyn PaymentProvider,
) -> Result<usize, ServiceError> {
    let now = state.clock.now().timestamp();
    let orders = state
        .storage
        .citizen_accounts()
        .unpaid_orders_of(
            SITE_CHANNEL_ID,
            now - ORDER_QUERY_WINDOW_SECONDS,
            ORDER_QUERIES_PER_ROUND,
        )
        .await?;
    let mut found = 0;
    for order_no in orders {
        let Some(n) = provider.query(&order_no).await else {
            continue;
        };
        // Reported already (an order whose payment was owed back stays unpaid): nothing new.
        if state
            .storage
            .payment_state(SITE_CHANNEL_ID, &n.txn_id)
            .await?
            .is_some()
        {
            continue;
        }
        report_payment(state, n).await?;
        found += 1;
    }
    Ok(found)
}

/// Runs [`ask_about_unpaid_orders`] and [`hand_over_refunds`] every [`REFUND_ROUND_SECONDS`]
/// for as long as the process runs.
pub fn spawn_refund_hand_over(state: AppState, provider: Provider) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(REFUND_ROUND_SECONDS));
        loop {
            every.tick().await;
            match ask_about_unpaid_orders(&state, provider.0.as_ref()).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    orders = n,
                    "payments found by asking the payment provider: their notifications never came"
                ),
                Err(err) => tracing::warn!(
                    code = err.code.as_str(),
                    "the payment provider was not asked about unpaid orders"
                ),
            }
            match hand_over_refunds(&state, provider.0.as_ref()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    refunds = n,
                    "refunds of the citizen site handed to the payment provider"
                ),
                Err(err) => tracing::warn!(
                    code = err.code.as_str(),
                    "refunds of the citizen site not handed over"
                ),
            }
        }
    });
}

/// The provider the site pays through (an extension of the router).
#[derive(Clone)]
pub struct Provider(pub Arc<SimulatedCashier>);

impl Default for Provider {
    fn default() -> Self {
        Provider(Arc::new(SimulatedCashier::default()))
    }
}

/// Whether `channel` is the site's own, enabled and of kind `gov_app`.
pub fn is_site_channel(channel: &yibao_storage::collection::ChannelRecord) -> bool {
    channel.channel_id == SITE_CHANNEL_ID && channel.enabled && channel.kind == SITE_CHANNEL_KIND
}

/// The kind of channel the site pays through (政务服务平台).
pub const SITE_CHANNEL_KIND: &str = "gov_app";

/// The site's channel, if registered, enabled and of kind `gov_app`.
pub async fn site_channel(state: &AppState) -> Result<Option<ChannelContext>, ServiceError> {
    Ok(state
        .storage
        .get_channel(SITE_CHANNEL_ID)
        .await?
        .filter(is_site_channel)
        .map(|c| ChannelContext {
            channel_id: c.channel_id,
            kind: c.kind,
            regions: c.regions,
            test_mode: c.test_mode,
            nonce: None,
        }))
}

fn no_online_payment() -> ServiceError {
    ServiceError::new(
        ErrorCode::NotPayable,
        "本站暂不能在线缴费，请通过查询结果中列出的渠道缴费",
    )
}

#[derive(Deserialize)]
pub struct PayForm {
    payable_id: String,
    amount: i64,
}

/// `POST /pay`: opens an order for one payable as the site's channel and sends the resident to
/// the provider.
pub async fn start(
    State(state): State<AppState>,
    Extension(provider): Extension<Provider>,
    Extension(limiter): Extension<crate::limiter::AddressLimiter>,
    peer: Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<PayForm>,
) -> Response {
    if yibao_server::auth::cross_site(&headers) {
        return error_page(&ServiceError::new(
            ErrorCode::Forbidden,
            "请求不是从本站页面发出，请回到缴费查询页面重新操作",
        ));
    }
    // An order holds its payable for the hold time: opening them counts like a look-up.
    let address = crate::client_address(&state, peer, &headers);
    if let Some(refusal) = crate::refusal_over_limit(&state, &limiter, &address) {
        return refusal;
    }
    match open_order(&state, &provider, vec![form.payable_id], form.amount).await {
        Ok(url) => (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
        Err(err) => error_page(&err),
    }
}

/// Opens one order for `payable_ids` (of one region, `amount` fen in all) as the site's channel
/// and answers where the resident goes to pay it.
pub async fn open_order(
    state: &AppState,
    provider: &Provider,
    payable_ids: Vec<String>,
    amount: i64,
) -> Result<String, ServiceError> {
    let Some(channel) = site_channel(state).await? else {
        return Err(no_online_payment());
    };
    let request = OrderRequest {
        channel_order_no: format!("WEB{}", uuid::Uuid::new_v4().simple()),
        payable_ids,
        amount,
        payer: Payer::default(),
        family_account: None,
        health_card: None,
        agent_code: None,
    };
    let (_, order) = place_order(state, &channel, request).await?;
    let expires_at = DateTime::parse_from_rfc3339(&order.expires_at).map_or(0, |t| t.timestamp());
    Ok(provider.0.create_payment(&ProviderOrder {
        order_no: order.order_no,
        amount: order.amount,
        expires_at,
    }))
}

#[derive(Deserialize, Default)]
pub struct CashierQuery {
    #[serde(default)]
    order_no: String,
    #[serde(default)]
    amount: i64,
    #[serde(default)]
    expires_at: i64,
    #[serde(default)]
    signature: String,
}

impl CashierQuery {
    fn order(&self) -> ProviderOrder {
        ProviderOrder {
            order_no: self.order_no.clone(),
            amount: self.amount,
            expires_at: self.expires_at,
        }
    }
}

#[derive(askama::Template)]
#[template(path = "cashier.html")]
struct CashierPage {
    order_no: String,
    amount: String,
    amount_fen: i64,
    expires_at: i64,
    expires: String,
    signature: String,
}

fn bad_cashier_link() -> Response {
    error_page(&ServiceError::new(
        ErrorCode::NotFound,
        "收银台链接无效或已被改动，请回到缴费查询页面重新缴费",
    ))
}

/// `GET /cashier`: the simulated cashier's page (a real provider's page stands here).
pub async fn cashier(
    Extension(provider): Extension<Provider>,
    Query(q): Query<CashierQuery>,
) -> Response {
    if !provider.0.order_signed(&q.order(), &q.signature) {
        return bad_cashier_link();
    }
    let expires = Utc
        .timestamp_opt(q.expires_at, 0)
        .single()
        .map(|t| {
            t.with_timezone(&yibao_server::clock::CHINA_STANDARD_TIME)
                .format("%Y年%-m月%-d日 %H:%M")
                .to_string()
        })
        .unwrap_or_default();
    render(
        &CashierPage {
            order_no: q.order_no.clone(),
            amount: crate::yuan(q.amount),
            amount_fen: q.amount,
            expires_at: q.expires_at,
            expires,
            signature: q.signature,
        },
        StatusCode::OK,
    )
}

/// `POST /cashier`: the resident confirms; the simulated cashier "takes" the money and notifies.
pub async fn confirm(
    State(state): State<AppState>,
    Extension(provider): Extension<Provider>,
    headers: HeaderMap,
    Form(q): Form<CashierQuery>,
) -> Response {
    if yibao_server::auth::cross_site(&headers) {
        return bad_cashier_link();
    }
    if !provider.0.order_signed(&q.order(), &q.signature) {
        return bad_cashier_link();
    }
    let order = q.order();
    let notification = Notification {
        order_no: order.order_no,
        txn_id: format!("SIM{}", uuid::Uuid::new_v4().simple()),
        amount: order.amount,
        paid_at: state
            .clock
            .now()
            .with_timezone(&yibao_server::clock::CHINA_STANDARD_TIME)
            .to_rfc3339(),
    };
    provider.0.remember(&notification);
    let body = provider.0.signed_notification(&notification);
    match accept_notification(&state, &provider, body.as_bytes()).await {
        Ok(txn_id) => {
            let signature = provider.0.mac(&["result", &txn_id]);
            (
                StatusCode::SEE_OTHER,
                [(
                    header::LOCATION,
                    format!("/pay/result?txn_id={txn_id}&signature={signature}"),
                )],
            )
                .into_response()
        }
        Err(err) => error_page(&err),
    }
}

/// A provider's notification: its signature checked, then reported as the site's channel would
/// report it (§3). A repeated notification gets the first one's answer; one for an order that
/// expired or whose payables another channel took meanwhile is applied or owed back. Answers the
/// transaction id.
pub async fn accept_notification(
    state: &AppState,
    provider: &Provider,
    body: &[u8],
) -> Result<String, ServiceError> {
    let Some(n) = provider.0.verify_notification(body) else {
        return Err(ServiceError::new(
            ErrorCode::AuthFailed,
            "支付通知的签名不对，已拒收",
        ));
    };
    report_payment(state, n).await
}

/// A payment the provider vouched for (its signed notification, or its answer to `query`)
/// reported as the site's channel (§3). Answers the transaction id.
async fn report_payment(state: &AppState, n: Notification) -> Result<String, ServiceError> {
    let Some(channel) = site_channel(state).await? else {
        // The money was taken: the provider retries until the channel is back.
        return Err(ServiceError::new(
            ErrorCode::ServiceUnavailable,
            "本站的缴费渠道已停用，支付通知稍后再送",
        ));
    };
    let request = PaymentRequest {
        channel_txn_id: n.txn_id.clone(),
        order_no: Some(n.order_no),
        payable_ids: None,
        amount: n.amount,
        paid_at: n.paid_at,
    };
    take_payment_report(state, &channel, request).await?;
    Ok(n.txn_id)
}

/// `POST /pay/notify/simulated`: where the simulated cashier's notifications arrive (a real
/// provider's adapter has its own). `SUCCESS` once the payment is recorded, which is also the
/// answer to the same notification again; the provider retries anything else.
pub async fn notify(
    State(state): State<AppState>,
    Extension(provider): Extension<Provider>,
    body: axum::body::Bytes,
) -> Response {
    match accept_notification(&state, &provider, &body).await {
        Ok(_) => (StatusCode::OK, "SUCCESS").into_response(),
        Err(err) => {
            tracing::warn!(
                code = err.code.as_str(),
                "payment notification not accepted"
            );
            // The provider reads the status (and this word), not a page.
            crate::ours((err.code.status(), "FAIL").into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct ResultQuery {
    #[serde(default)]
    txn_id: String,
    #[serde(default)]
    signature: String,
    /// Set after the simulated cashier sent its notification again.
    #[serde(default)]
    renotified: Option<String>,
}

/// A receipt on the result page, with its verification link.
pub struct ReceiptLink {
    pub receipt_number: String,
    pub href: String,
}

#[derive(askama::Template)]
#[template(path = "paid.html")]
struct PaidPage {
    /// `paid`, `partially_refunded`, `refund_pending`.
    status: String,
    receipts: Vec<ReceiptLink>,
    refund: Option<String>,
    /// The simulated cashier's form that sends the same notification again.
    txn_id: String,
    signature: String,
    renotified: bool,
}

/// `GET /pay/result`: what became of the payment: paid with its receipts, or owed back.
pub async fn result(
    State(state): State<AppState>,
    Extension(provider): Extension<Provider>,
    Query(q): Query<ResultQuery>,
) -> Response {
    if !provider.0.verify(&["result", &q.txn_id], &q.signature) {
        return bad_cashier_link();
    }
    let found = match state
        .storage
        .payment_state(SITE_CHANNEL_ID, &q.txn_id)
        .await
    {
        Ok(found) => found,
        Err(err) => return error_page(&err.into()),
    };
    let Some(p) = found else {
        return bad_cashier_link();
    };
    render(
        &PaidPage {
            status: p.status.code().to_owned(),
            receipts: p
                .receipts
                .iter()
                .map(|r| ReceiptLink {
                    receipt_number: r.receipt_number.clone(),
                    href: format!(
                        "/receipts/verify?code={}&number={}&check_code={}",
                        r.receipt_code, r.receipt_number, r.check_code
                    ),
                })
                .collect(),
            refund: p
                .refund
                .as_ref()
                .map(|r| crate::yuan(r.amount_fen.as_fen())),
            txn_id: q.txn_id.clone(),
            signature: q.signature.clone(),
            renotified: q.renotified.is_some(),
        },
        StatusCode::OK,
    )
}

#[derive(Deserialize, Default)]
pub struct RenotifyForm {
    #[serde(default)]
    txn_id: String,
    #[serde(default)]
    signature: String,
}

/// `POST /cashier/renotify`: the simulated cashier sends the notification of a payment it took
/// once more, as a real provider does when it did not read `SUCCESS` (a sandbox's "resend"
/// button): the payment path answers as the first time and records nothing new.
pub async fn renotify(
    State(state): State<AppState>,
    Extension(provider): Extension<Provider>,
    headers: HeaderMap,
    Form(form): Form<RenotifyForm>,
) -> Response {
    if yibao_server::auth::cross_site(&headers)
        || !provider
            .0
            .verify(&["result", &form.txn_id], &form.signature)
    {
        return bad_cashier_link();
    }
    let Some(sent) = provider.0.sent(&form.txn_id) else {
        return bad_cashier_link();
    };
    let body = provider.0.signed_notification(&sent);
    match accept_notification(&state, &provider, body.as_bytes()).await {
        Ok(txn_id) => (
            StatusCode::SEE_OTHER,
            [(
                header::LOCATION,
                format!(
                    "/pay/result?txn_id={txn_id}&signature={}&renotified=1",
                    form.signature
                ),
            )],
        )
            .into_response(),
        Err(err) => error_page(&err),
    }
}
