//! Handlers of the channel protocol. Every answer follows the spec's field names exactly.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use yibao_domain::{FeeYear, Fen, IdNumber, PersonName, RegionCode};
use yibao_storage::collection::{
    ReceiptRecord, RefundResultOutcome, RefundState, ReversalOutcome, MAX_PAYABLES_PER_REQUEST,
};
use yibao_storage::PayableRecord;

use super::answers::{
    BackPaymentAnswer, Component, Insured, NotCollectableAnswer, OrderAnswer, PayableAnswer,
    PaymentAnswer, PaymentStatusAnswer, PendingRefund, ReceiptAnswer, ReceiptBrief, RefundOwed,
    RefundResultAnswer, ReversalAnswer, SearchAnswer, StatementSummary, Window,
};
use super::auth::ChannelContext;
use super::MAX_REFUNDS_LISTED;
use crate::error::{ErrorCode, ServiceError};
use crate::json::ApiJson;
use crate::receipts::PayerName;
use crate::services::collection::{
    bad_request, channel_identifier, order_json, place_order, policies_for, protocol_reason,
    receipt_checked, receipt_refs, take_payment_report,
};
use crate::services::new_id;
use crate::services::refunds::refund_due_kept;
use crate::AppState;

pub use crate::services::collection::{payment_json, OrderRequest, Payer, PaymentRequest};

pub(crate) fn not_found_person() -> ServiceError {
    ServiceError::new(
        ErrorCode::NotFound,
        "未查到应缴费信息：请核对身份证号码和姓名是否与医保经办机构登记的一致；如未登记，请先到乡镇/社区登记或核定后再缴费",
    )
}

use crate::receipts::masked_name;

fn component(code: &str, name: &str, amount: i64) -> Component {
    Component {
        code: code.to_owned(),
        name: name.to_owned(),
        amount,
    }
}

fn components(p: &PayableRecord) -> Vec<Component> {
    let mut parts = vec![component("basic", "基本医疗保险", p.basic_fen.as_fen())];
    if p.critical_illness_fen > Fen::ZERO {
        parts.push(component(
            "critical_illness",
            "大病保险",
            p.critical_illness_fen.as_fen(),
        ));
    }
    if p.long_term_care_fen > Fen::ZERO {
        parts.push(component(
            "long_term_care",
            "照护保险",
            p.long_term_care_fen.as_fen(),
        ));
    }
    parts
}

#[derive(Deserialize, ToSchema)]
pub struct SearchRequest {
    /// The resident ID number; give this or `insured_number`.
    id_number: Option<String>,
    /// An addition to v1 (issue 17): the insured number (参保编号, 16 characters) instead of
    /// the ID number, as a teller reads it off a receipt or a screen. Its first six digits name
    /// the region searched.
    insured_number: Option<String>,
    name: Option<String>,
    region: Option<String>,
    fee_year: Option<i64>,
    /// Required from a channel of kind `village_agent` (村代办员), refused from others: the agent
    /// searching, who finds only residents of their villages. An addition to v1.
    agent_code: Option<String>,
}

/// § 1 Search payables.
#[utoipa::path(post, path = "/channel/v1/payables/search", tag = "channel", summary = "查询应缴费信息", request_body = SearchRequest, description = "§1 Search payables by ID number (+ name), or by insured number (参保编号, an addition to v1). Signed per the channel protocol.",
    responses((status = 200, description = "the person's current payables, paid ones too", body = SearchAnswer), (status = 400, description = "`INVALID_REQUEST`: neither or both of `id_number` and `insured_number`", body = crate::ErrorBody), (status = 404, description = "`NOT_FOUND`: no such person on record", body = crate::ErrorBody), (status = 409, description = "`LOCKED`: held by an open order", body = crate::ErrorBody), (status = 422, description = "`INVALID_ID_NUMBER`, `INVALID_INSURED_NUMBER`, `INVALID_NAME` or another field refused", body = crate::ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    Extension(channel): Extension<ChannelContext>,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Json<SearchAnswer>, ServiceError> {
    let (id, regions) = match (&req.id_number, &req.insured_number) {
        (Some(id), None) => (
            IdNumber::parse(id, state.clock.today())?.id_number,
            searched_regions(&channel, req.region.as_deref())?,
        ),
        (None, Some(number)) => {
            let number = yibao_domain::InsuredNumber::parse(number)?;
            let region = number.region();
            if req
                .region
                .as_deref()
                .is_some_and(|r| r.trim() != region.as_str())
            {
                return Err(not_found_person());
            }
            if !channel.allows(region.as_str()) {
                return Err(ServiceError::of(ErrorCode::RegionNotAllowed));
            }
            let Some(id) = state.storage.person_by_insured_number(&number).await? else {
                return Err(not_found_person());
            };
            (id, vec![region.to_string()])
        }
        _ => {
            return Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                "请填写身份证号码（id_number）或参保编号（insured_number）二者之一",
            ))
        }
    };
    let fee_year = req
        .fee_year
        .map(FeeYear::new)
        .transpose()?
        .map(|y| i32::from(y.get()));
    // A test channel's first search of a fresh test ID number enrols them (接入测试).
    if channel.test_mode && yibao_domain::sandbox::is_fresh_id_number(id.as_str()) {
        crate::services::sandbox::enrol_fresh(&state, &id, req.name.as_deref()).await?;
    }
    // Gathered with the searches that arrive meanwhile, where the server gathers them.
    let found = match &state.search_reader {
        Some(reader) => {
            reader
                .search(yibao_storage::payable_search::PersonQuery {
                    id_number: id,
                    regions,
                    fee_year,
                })
                .await?
        }
        None => state.storage.search_person(&id, &regions, fee_year).await?,
    };
    let mut views = found.views;
    if let Some(name) = &req.name {
        views.retain(|v| PersonName::parse(&v.name).is_ok_and(|n| n.matches(name)));
    }
    // A village agent finds only residents of their villages (anyone else as not on record).
    let agent_code =
        crate::services::collection::agent_code_of(&channel, req.agent_code.as_deref())?;
    let agent =
        crate::services::collection::village_agent_of(&state, &channel, agent_code.as_ref())
            .await?;
    views.retain(|v| crate::services::collection::agent_serves(agent.as_ref(), v));
    let Some(first) = views.first() else {
        return Err(not_found_person());
    };
    let insured = Insured {
        name_masked: masked_name(&first.name),
        id_number_masked: id.masked(),
        insured_number: first.insured_number.clone(),
    };
    let policies = policies_for(&state, &views).await?;
    let now = state.clock.now().timestamp();
    // The 2025 rules: when cover would start, for what can still be paid.
    let covers = crate::services::cover::covers_from(
        &found.stored,
        &views,
        &policies,
        state.clock.today(),
        crate::services::cover::BackPaymentsWith::Offered,
        |v| matches!(v.payable.channel_status(now), "unpaid" | "locked"),
    );
    let payables: Vec<PayableAnswer> = views
        .iter()
        .map(|v| {
            let p = &v.payable;
            let policy = policies.get(&(p.region, p.fee_year));
            let cover = covers.get(&p.payable_id).map(|c| c.answer());
            let back_payment = p.buys_back().map(|year| BackPaymentAnswer {
                buys_back_year: year,
                text: yibao_domain::back_payment_text_zh(year, p.fee_year.get()),
            });
            let not_collectable = matches!(p.channel_status(now), "unpaid" | "locked")
                .then(|| {
                    crate::services::collection::channel_refusal(
                        policy,
                        &channel.kind,
                        p,
                        state.clock.today(),
                    )
                })
                .flatten()
                .map(|refusal| NotCollectableAnswer {
                    code: yibao_domain::ChannelRefusal::CODE.to_owned(),
                    text: refusal.to_string(),
                });
            PayableAnswer {
                payable_id: p.payable_id.clone(),
                item: "resident_medical".to_owned(),
                item_name: yibao_domain::item_name_zh(p.buys_back()),
                fee_year: i32::from(p.fee_year.get()),
                region: p.region.to_string(),
                region_name: v.region_name.clone(),
                amount: p.amount_fen.as_fen(),
                components: components(p),
                status: p.channel_status(now).to_owned(),
                window: policy.map(|policy| Window {
                    opens: policy.window().opens(),
                    closes: policy.window().closes(),
                    extension_until: policy.cover_rules().waiting.extension_until,
                }),
                cover,
                back_payment,
                not_collectable,
            }
        })
        .collect();
    Ok(Json(SearchAnswer { insured, payables }))
}

/// The regions a search by ID number looks in: the one asked for, which the channel must serve,
/// or all the channel serves.
fn searched_regions(
    channel: &ChannelContext,
    region: Option<&str>,
) -> Result<Vec<String>, ServiceError> {
    Ok(match region {
        Some(r) => {
            let code = RegionCode::parse(r)?;
            if !channel.allows(code.as_str()) {
                return Err(ServiceError::of(ErrorCode::RegionNotAllowed));
            }
            vec![code.to_string()]
        }
        None => channel.regions.clone(),
    })
}

/// § 2 Open an order.
#[utoipa::path(post, path = "/channel/v1/orders", tag = "channel", summary = "下单（锁定应缴费信息）", request_body = OrderRequest, description = "§2 Open an order holding payables. Signed per the channel protocol.",
    responses((status = 201, description = "the order opened", body = OrderAnswer), (status = 200, description = "the same `channel_order_no` again: the order opened before", body = OrderAnswer), (status = 404, description = "`NOT_FOUND`: a payable is unknown", body = crate::ErrorBody), (status = 409, description = "`IDEMPOTENCY_CONFLICT` or `ALREADY_PAID`", body = crate::ErrorBody), (status = 422, description = "`NOT_PAYABLE`, `AMOUNT_MISMATCH`, `WINDOW_CLOSED` or a field refused", body = crate::ErrorBody)))]
pub async fn open_order(
    State(state): State<AppState>,
    Extension(channel): Extension<ChannelContext>,
    ApiJson(req): ApiJson<OrderRequest>,
) -> Result<Response, ServiceError> {
    let (status, order) = place_order(&state, &channel, req).await?;
    Ok((status, Json(order)).into_response())
}

/// § 2 Cancel an open order. Idempotent.
#[utoipa::path(post, path = "/channel/v1/orders/{order_no}/cancel", tag = "channel", summary = "取消订单", params(("order_no" = String, Path)), description = "§2 Cancel an open order. Signed per the channel protocol.",
    responses((status = 200, description = "the order, cancelled", body = OrderAnswer), (status = 404, description = "`NOT_FOUND`: no such order of this channel", body = crate::ErrorBody), (status = 422, description = "a malformed `order_no`", body = crate::ErrorBody)))]
pub async fn cancel_order(
    State(state): State<AppState>,
    Extension(channel): Extension<ChannelContext>,
    Path(order_no): Path<String>,
) -> Result<Json<OrderAnswer>, ServiceError> {
    channel_identifier("order_no", &order_no)?;
    match state
        .storage
        .cancel_order(&channel.channel_id, &order_no)
        .await?
    {
        Some(order) => Ok(Json(order_json(&order))),
        None => Err(ServiceError::new(ErrorCode::NotFound, "未找到该订单")),
    }
}

/// § 3 Report a payment: never a rejection that loses the citizen's money once the request is well formed.
#[utoipa::path(post, path = "/channel/v1/payments", tag = "channel", summary = "上报缴费", request_body = PaymentRequest, description = "§3 Report a payment. Signed per the channel protocol.",
    responses((status = 200, description = "`paid`, `partially_refunded` or `refund_pending`: the payment is recorded either way", body = PaymentAnswer), (status = 404, description = "`NOT_FOUND`: the order is unknown", body = crate::ErrorBody), (status = 409, description = "`IDEMPOTENCY_CONFLICT`, `ALREADY_PAID` or `REVERSED`", body = crate::ErrorBody), (status = 422, description = "a field refused", body = crate::ErrorBody)))]
pub async fn report_payment(
    State(state): State<AppState>,
    Extension(channel): Extension<ChannelContext>,
    ApiJson(req): ApiJson<PaymentRequest>,
) -> Result<Json<PaymentAnswer>, ServiceError> {
    Ok(Json(take_payment_report(&state, &channel, req).await?))
}

fn refund_json(r: &RefundState) -> RefundOwed {
    RefundOwed {
        refund_no: r.refund_no.clone(),
        amount: r.amount_fen.as_fen(),
        reason: protocol_reason(&r.reason).to_owned(),
        due: r.due,
    }
}

/// § 5 Payment status.
#[utoipa::path(get, path = "/channel/v1/payments/{channel_txn_id}", tag = "channel", summary = "查询缴费状态", params(("channel_txn_id" = String, Path)), description = "§5 Payment status. Signed per the channel protocol.",
    responses((status = 200, description = "what yibao knows of the payment", body = PaymentStatusAnswer), (status = 404, description = "`NOT_FOUND`: yibao never saw it; report it again", body = crate::ErrorBody), (status = 422, description = "a malformed `channel_txn_id`", body = crate::ErrorBody)))]
pub async fn payment_status(
    State(state): State<AppState>,
    Extension(channel): Extension<ChannelContext>,
    Path(channel_txn_id): Path<String>,
) -> Result<Json<PaymentStatusAnswer>, ServiceError> {
    channel_identifier("channel_txn_id", &channel_txn_id)?;
    let Some(p) = state
        .storage
        .payment_state(&channel.channel_id, &channel_txn_id)
        .await?
    else {
        return Err(ServiceError::new(
            ErrorCode::NotFound,
            "未收到过该笔缴费，请重新上报（上报是幂等的）",
        ));
    };
    Ok(Json(PaymentStatusAnswer {
        payment_no: p.payment_no.clone(),
        status: p.status.code().to_owned(),
        receipts: receipt_refs(&p.receipts),
        refund: p.refund.as_ref().map(refund_json),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct ReversalRequest {
    reason: String,
    /// Addition to the protocol: whether the channel already returned the money. Default true (a
    /// reversal undoes the debit); `false` makes a later payment report a refund owed instead of 409.
    funds_returned: Option<bool>,
}

/// § 4 Reverse a payment (冲正). Idempotent; recorded ahead for an unknown transaction.
#[utoipa::path(post, path = "/channel/v1/payments/{channel_txn_id}/reversal", tag = "channel", summary = "冲正", request_body = ReversalRequest, params(("channel_txn_id" = String, Path)), description = "§4 Reverse a payment (冲正). Signed per the channel protocol.",
    responses((status = 200, description = "reversed (or recorded ahead of its payment report)", body = ReversalAnswer), (status = 409, description = "`REVERSAL_CLOSED`: too late to reverse", body = crate::ErrorBody), (status = 422, description = "a field refused", body = crate::ErrorBody)))]
pub async fn reverse(
    State(state): State<AppState>,
    Extension(channel): Extension<ChannelContext>,
    Path(channel_txn_id): Path<String>,
    ApiJson(req): ApiJson<ReversalRequest>,
) -> Result<Json<ReversalAnswer>, ServiceError> {
    channel_identifier("channel_txn_id", &channel_txn_id)?;
    let today = state.clock.today();
    let region = channel
        .regions
        .first()
        .and_then(|r| yibao_domain::RegionCode::parse(r).ok());
    let refund_due = refund_due_kept(&state, region, today).await?;
    let reversal = yibao_storage::collection::NewReversal {
        channel_id: channel.channel_id.clone(),
        channel_txn_id: channel_txn_id.clone(),
        reason: req.reason.chars().take(200).collect(),
        funds_returned: req.funds_returned.unwrap_or(true),
        now: state.clock.now().timestamp(),
        event_ids: (0..MAX_PAYABLES_PER_REQUEST)
            .map(|_| new_id("EV"))
            .collect(),
        refund_no: new_id("RF"),
        refund_due,
    };
    let outcome = state.storage.reverse_payment(&reversal).await?;
    match outcome {
        ReversalOutcome::Reversed | ReversalOutcome::RecordedAhead => Ok(Json(ReversalAnswer {
            result: "reversed".to_owned(),
        })),
        ReversalOutcome::Closed => Err(ServiceError::of(ErrorCode::ReversalClosed)),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RefundQuery {
    status: Option<String>,
}

/// § 6 Refunds owed through this channel.
#[utoipa::path(get, path = "/channel/v1/refunds", tag = "channel", summary = "查询待退费", params(RefundQuery), description = "§6 Refunds owed (status=pending). Signed per the channel protocol.",
    responses((status = 200, description = "refunds owed through this channel, owed ones first", body = [PendingRefund]), (status = 422, body = crate::ErrorBody)))]
pub async fn pending_refunds(
    State(state): State<AppState>,
    Extension(channel): Extension<ChannelContext>,
    Query(query): Query<RefundQuery>,
) -> Result<Json<Vec<PendingRefund>>, ServiceError> {
    if query.status.as_deref().is_some_and(|s| s != "pending") {
        return Err(bad_request("status 目前只支持 pending"));
    }
    let refunds = state
        .storage
        .pending_refunds(&channel.channel_id, MAX_REFUNDS_LISTED)
        .await?;
    // Handed to the channel: owed (or failed, for another attempt) becomes sent, one attempt more.
    let listed: Vec<String> = refunds.iter().map(|r| r.refund_no.clone()).collect();
    state
        .storage
        .mark_refunds_sent(&channel.channel_id, &listed)
        .await?;
    let list: Vec<PendingRefund> = refunds
        .iter()
        .map(|r| PendingRefund {
            refund_no: r.refund_no.clone(),
            channel_txn_id: r.channel_txn_id.clone(),
            amount: r.amount_fen.as_fen(),
            reason: protocol_reason(&r.reason).to_owned(),
            due: r.due,
        })
        .collect();
    Ok(Json(list))
}

#[derive(Deserialize, ToSchema)]
pub struct RefundResultRequest {
    status: String,
    channel_refund_id: String,
    failure_reason: Option<String>,
}

/// § 6 A refund's result. Idempotent.
#[utoipa::path(post, path = "/channel/v1/refunds/{refund_no}/result", tag = "channel", summary = "上报退费结果", request_body = RefundResultRequest, params(("refund_no" = String, Path)), description = "§6 A refund result. Signed per the channel protocol.",
    responses((status = 200, description = "the refund's state now", body = RefundResultAnswer), (status = 404, description = "`NOT_FOUND`: no such refund of this channel", body = crate::ErrorBody), (status = 409, description = "`IDEMPOTENCY_CONFLICT`: another result was reported", body = crate::ErrorBody), (status = 422, description = "a field refused", body = crate::ErrorBody)))]
pub async fn refund_result(
    State(state): State<AppState>,
    Extension(channel): Extension<ChannelContext>,
    Path(refund_no): Path<String>,
    ApiJson(req): ApiJson<RefundResultRequest>,
) -> Result<Json<RefundResultAnswer>, ServiceError> {
    channel_identifier("refund_no", &refund_no)?;
    channel_identifier("channel_refund_id", &req.channel_refund_id)?;
    let succeeded = match req.status.as_str() {
        "succeeded" => true,
        "failed" => false,
        _ => return Err(bad_request("status 应为 succeeded 或 failed")),
    };
    let failure: Option<String> = req.failure_reason.map(|f| f.chars().take(200).collect());
    match state
        .storage
        .refund_result(
            &channel.channel_id,
            &refund_no,
            succeeded,
            &req.channel_refund_id,
            failure.as_deref(),
            state.clock.today(),
        )
        .await?
    {
        RefundResultOutcome::Done(r) => Ok(Json(RefundResultAnswer {
            refund_no: r.refund_no,
            status: r.status.code().to_owned(),
        })),
        RefundResultOutcome::NotFound => {
            Err(ServiceError::new(ErrorCode::NotFound, "未找到该退费"))
        }
        RefundResultOutcome::Conflict(message) => {
            Err(ServiceError::new(ErrorCode::IdempotencyConflict, message))
        }
    }
}

/// § 7 The daily statement: matched against this channel's payments of that date.
#[utoipa::path(put, path = "/channel/v1/statements/{date}", tag = "channel", summary = "上传日对账单", request_body(content = String, content_type = "text/csv"), params(("date" = String, Path)), description = "§7 Daily statement (text/csv). Signed per the channel protocol.",
    responses((status = 200, description = "the reconciliation summary", body = StatementSummary), (status = 422, description = "a line refused", body = crate::ErrorBody)))]
pub async fn statement(
    State(state): State<AppState>,
    Extension(channel): Extension<ChannelContext>,
    Path(date): Path<String>,
    body: Bytes,
) -> Result<Json<StatementSummary>, ServiceError> {
    let day = NaiveDate::parse_from_str(&date, "%Y-%m-%d")
        .map_err(|_| bad_request("日期格式应为 YYYY-MM-DD"))?;
    let summary = crate::services::reconciliation::reconcile(
        state.storage.as_ref(),
        &state.clock,
        crate::services::reconciliation::StatementUpload {
            channel_id: &channel.channel_id,
            day,
            format: yibao_statement_file::StatementFormat::Protocol,
            bytes: &body,
        },
    )
    .await
    .map_err(|e| match e.code {
        // The protocol's own code for a request it cannot read.
        ErrorCode::BadStatementFile => ServiceError::new(ErrorCode::InvalidRequest, e.message),
        _ => e,
    })?;
    Ok(Json(summary))
}

#[derive(Deserialize, ToSchema)]
pub struct ReceiptSearchRequest {
    id_number: String,
    name: String,
    fee_year: Option<i64>,
}

fn receipt_brief(r: &ReceiptRecord) -> ReceiptBrief {
    ReceiptBrief {
        receipt_code: r.receipt_code.clone(),
        receipt_number: r.receipt_number.clone(),
        check_code: r.check_code.clone(),
        payable_id: r.payable_id.clone(),
        fee_year: i32::from(r.fee_year.get()),
        amount: r.amount_fen.as_fen(),
        issued_on: r.issued_on,
        status: r.status.code().to_owned(),
    }
}

/// § 8 A person's receipts (name required).
#[utoipa::path(post, path = "/channel/v1/receipts/search", tag = "channel", summary = "查询票据", request_body = ReceiptSearchRequest, description = "§8 Receipt search. Signed per the channel protocol.",
    responses((status = 200, description = "the person's receipts, voided ones too", body = [ReceiptBrief]), (status = 404, description = "`NOT_FOUND`: no such person on record", body = crate::ErrorBody), (status = 422, description = "`INVALID_ID_NUMBER`, `INVALID_NAME` or another field refused", body = crate::ErrorBody)))]
pub async fn search_receipts(
    State(state): State<AppState>,
    Extension(channel): Extension<ChannelContext>,
    ApiJson(req): ApiJson<ReceiptSearchRequest>,
) -> Result<Json<Vec<ReceiptBrief>>, ServiceError> {
    let id = IdNumber::parse(&req.id_number, state.clock.today())?.id_number;
    let fee_year = req
        .fee_year
        .map(FeeYear::new)
        .transpose()?
        .map(|y| i32::from(y.get()));
    let receipts = state
        .storage
        .receipts_of_person(id.as_str(), &channel.regions, fee_year)
        .await?;
    let mine: Vec<ReceiptBrief> = receipts
        .iter()
        .filter(|r| PersonName::parse(&r.payer_name).is_ok_and(|n| n.matches(&req.name)))
        .map(receipt_brief)
        .collect();
    if mine.is_empty() {
        return Err(ServiceError::new(
            ErrorCode::NotFound,
            "未查到票据：请核对身份证号码和姓名",
        ));
    }
    Ok(Json(mine))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckCodeQuery {
    check_code: Option<String>,
}

/// Whether the client is a browser asking for a page: `text/html` named in `Accept` before any
/// JSON type (a browser sends `text/html,…,*/*`; API clients send `application/json` or nothing).
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    match (accept.find("text/html"), accept.find("json")) {
        (Some(html), Some(json)) => html < json,
        (Some(_), None) => true,
        _ => false,
    }
}

fn wants_pdf(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/pdf"))
}

/// § 8 One receipt, as JSON or, with `Accept: application/pdf`, as the PDF. The payer's name is
/// masked in both: the receipt's numbers and check code are printed on every copy, so whoever has
/// seen one can ask; the payer's own copy is [`payer_copy`].
#[utoipa::path(get, path = "/channel/v1/receipts/{receipt_code}/{receipt_number}", tag = "channel", summary = "获取票据（JSON 或 PDF）", params(("receipt_code" = String, Path), ("receipt_number" = String, Path), CheckCodeQuery), description = "§8 One receipt, JSON or PDF, the payer's name masked. Signed per the channel protocol.",
    responses((status = 200, description = "the receipt as JSON, or with `Accept: application/pdf` the PDF", content((ReceiptAnswer = "application/json"), (Vec<u8> = "application/pdf"))), (status = 404, description = "`NOT_FOUND`: no such receipt, or the check code is wrong", body = crate::ErrorBody), (status = 422, description = "a malformed parameter", body = crate::ErrorBody)))]
pub async fn get_receipt(
    State(state): State<AppState>,
    Extension(channel): Extension<ChannelContext>,
    Path((code, number)): Path<(String, String)>,
    Query(query): Query<CheckCodeQuery>,
    headers: HeaderMap,
) -> Result<Response, ServiceError> {
    let receipt = receipt_checked(&state, &code, &number, query.check_code.as_deref()).await?;
    if !channel.allows(receipt.region.as_str()) {
        return Err(ServiceError::of(ErrorCode::RegionNotAllowed));
    }
    if wants_pdf(&headers) {
        let pdf =
            crate::receipts::render_pdf_off_thread(&state, &receipt, PayerName::Masked).await?;
        return Ok(crate::receipts::pdf_response(&receipt, pdf));
    }
    Ok(Json(channel_receipt_json(&state, &receipt, PayerName::Masked)).into_response())
}

fn channel_receipt_json(
    state: &AppState,
    receipt: &ReceiptRecord,
    payer: PayerName,
) -> ReceiptAnswer {
    // Stored as the JSON list of components written when the receipt was issued.
    let components: Vec<Component> = serde_json::from_str(&receipt.components).unwrap_or_default();
    ReceiptAnswer {
        title: "社会保险费电子票据".to_owned(),
        payer_name_masked: masked_name(&receipt.payer_name),
        payer_name: (payer == PayerName::Full).then(|| receipt.payer_name.clone()),
        payer_id_number_masked: receipt.id_number.masked(),
        insured_number: receipt.insured_number.clone(),
        item: "resident_medical".to_owned(),
        item_name: yibao_domain::item_name_zh(receipt.bought_back_year()),
        fee_year: i32::from(receipt.fee_year.get()),
        components,
        amount: receipt.amount_fen.as_fen(),
        issued_on: receipt.issued_on,
        verify_url: state.public_base_url.verify_url(receipt),
        receipt_code: receipt.receipt_code.clone(),
        receipt_number: receipt.receipt_number.clone(),
        check_code: receipt.check_code.clone(),
        issuer: receipt.issuer.clone(),
        status: receipt.status.code().to_owned(),
        payable_id: receipt.payable_id.clone(),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct PayerCopyRequest {
    check_code: String,
    /// The payer's ID number, as in the receipt search.
    id_number: String,
    /// The payer's name, as in the receipt search.
    name: String,
}

/// § 8, addition: the payer's own copy, a proof of payment with the payer's name in full (the ID
/// number stays masked). The channel proves who the payer is as for the receipt search: their ID
/// number and name must match the receipt. JSON (`payer_name` added), or the PDF with
/// `Accept: application/pdf`. A mismatch is answered as an unknown receipt.
#[utoipa::path(post, path = "/channel/v1/receipts/{receipt_code}/{receipt_number}/payer-copy", tag = "channel", summary = "交款人本人的票据（姓名完整）", request_body = PayerCopyRequest,
    params(("receipt_code" = String, Path), ("receipt_number" = String, Path)),
    description = "§8 addition: the payer's own copy (name in full) for a channel that proves the payer's ID number and name. Signed per the channel protocol.",
    responses((status = 200, description = "the payer's copy as JSON (with `payer_name`), or with `Accept: application/pdf` the PDF", content((ReceiptAnswer = "application/json"), (Vec<u8> = "application/pdf"))), (status = 404, description = "`NOT_FOUND`: no such receipt, wrong check code, or ID number and name do not match", body = crate::ErrorBody), (status = 422, description = "`INVALID_ID_NUMBER` or another field refused; for the PDF, `RECEIPT_GLYPH_MISSING`: a character of the name (code point in the message) is in no receipt font", body = crate::ErrorBody), (status = 503, description = "`SERVICE_UNAVAILABLE`: no receipt font installed", body = crate::ErrorBody)))]
pub async fn payer_copy(
    State(state): State<AppState>,
    Extension(channel): Extension<ChannelContext>,
    Path((code, number)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PayerCopyRequest>,
) -> Result<Response, ServiceError> {
    let id = IdNumber::parse(&req.id_number, state.clock.today())?.id_number;
    let receipt = receipt_checked(&state, &code, &number, Some(&req.check_code)).await?;
    if !channel.allows(receipt.region.as_str()) {
        return Err(ServiceError::of(ErrorCode::RegionNotAllowed));
    }
    let proven = receipt.id_number == id
        && PersonName::parse(&receipt.payer_name).is_ok_and(|n| n.matches(&req.name));
    if !proven {
        return Err(ServiceError::new(
            ErrorCode::NotFound,
            "未找到该票据，请核对票据代码、号码、校验码和交款人的身份证号码、姓名",
        ));
    }
    if wants_pdf(&headers) {
        let pdf = crate::receipts::render_pdf_off_thread(&state, &receipt, PayerName::Full).await?;
        return Ok(crate::receipts::pdf_response(&receipt, pdf));
    }
    Ok(Json(channel_receipt_json(&state, &receipt, PayerName::Full)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentDayQuery {
    /// The day paid (China Standard Time), `YYYY-MM-DD`.
    date: String,
}

/// One payable an agent's payments applied on the day, masked as every channel answer is.
#[derive(Serialize, ToSchema)]
pub struct AgentDayLine {
    pub payment_no: String,
    pub paid_at: String,
    pub name_masked: String,
    pub id_number_masked: String,
    pub fee_year: i32,
    /// Fen.
    pub amount: i64,
}

/// A village agent's day: who paid what through them, and the total they owe the agency.
#[derive(Serialize, ToSchema)]
pub struct AgentDayAnswer {
    pub agent_code: String,
    pub date: NaiveDate,
    /// Fen: what the day's payments applied, the cash to hand in (交款).
    pub total: i64,
    /// The list stops at 2 000 lines; `total` is always the whole day's.
    pub truncated: bool,
    pub lines: Vec<AgentDayLine>,
}

/// An addition to v1 (issue 17): a village agent's (村代办员) daily list, for channels of kind
/// `village_agent`.
#[utoipa::path(get, path = "/channel/v1/agents/{agent_code}/payments", tag = "channel", summary = "代办员当日缴费清单", params(("agent_code" = String, Path, description = "the agent's code"), AgentDayQuery), description = "An addition to v1: who paid what through one village agent on a day, and the cash to hand in. Signed per the channel protocol; `village_agent` channels only.",
    responses((status = 200, description = "the day's list", body = AgentDayAnswer), (status = 400, description = "`INVALID_REQUEST`: not a `village_agent` channel, or a malformed date", body = crate::ErrorBody), (status = 403, description = "`AGENT_NOT_ALLOWED`: no such agent of this channel, or disabled", body = crate::ErrorBody)))]
pub async fn agent_day(
    State(state): State<AppState>,
    Extension(channel): Extension<ChannelContext>,
    Path(agent_code): Path<String>,
    Query(query): Query<AgentDayQuery>,
) -> Result<Json<AgentDayAnswer>, ServiceError> {
    let code = crate::services::collection::agent_code_of(&channel, Some(&agent_code))?;
    let agent = crate::services::collection::village_agent_of(&state, &channel, code.as_ref())
        .await?
        .ok_or_else(|| {
            ServiceError::new(ErrorCode::InvalidRequest, "代办员清单仅限村级代办渠道")
        })?;
    let date = NaiveDate::parse_from_str(query.date.trim(), "%Y-%m-%d").map_err(|_| {
        ServiceError::new(
            ErrorCode::InvalidRequest,
            "date 应为 YYYY-MM-DD，如 2026-11-10",
        )
    })?;
    let (lines, truncated) =
        crate::services::village_agents::day_list(&state, &agent, date).await?;
    let total = crate::services::village_agents::day_total(&state, &agent, date).await?;
    Ok(Json(AgentDayAnswer {
        agent_code: agent.code.to_string(),
        date,
        total,
        truncated,
        lines: lines
            .iter()
            .map(|l| AgentDayLine {
                payment_no: l.payment_no.clone(),
                paid_at: l.paid_at.clone(),
                name_masked: masked_name(&l.name),
                id_number_masked: l.id_number.masked(),
                fee_year: l.fee_year,
                amount: l.amount_fen,
            })
            .collect(),
    }))
}
