//! 接入测试 (issue 17): the sandbox's test residents and, for each test channel, which of the
//! protocol's scenarios it has gone through, as the bank's client did them. The administrator's.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use yibao_domain::sandbox::{
    fresh_id_number, FixedState, FIXED_RESIDENTS, SANDBOX_REGION, TEST_AMOUNT_FEN,
    UNKNOWN_ID_NUMBER,
};
use yibao_server::AppState;

use crate::pages::desk::admin_of;
use crate::session::ConsoleUser;
use crate::view::{beijing_minute, yuan, Chrome};
use crate::{html, PageError};

/// A test resident as the page lists them.
pub struct ResidentLine {
    pub id_number: String,
    pub name: String,
    pub what: &'static str,
}

/// One scenario of a test channel.
pub struct ScenarioLine {
    pub code: &'static str,
    pub title: &'static str,
    pub how: &'static str,
    pub done: bool,
    pub last: String,
    pub times: i64,
}

/// A test channel with its scenarios.
pub struct ChannelProgress {
    pub channel_id: String,
    pub enabled: bool,
    pub completed: usize,
    pub scenarios: Vec<ScenarioLine>,
}

#[derive(Template)]
#[template(path = "desk/sandbox.html")]
pub struct SandboxPage {
    pub chrome: Chrome,
    pub region: &'static str,
    pub amount: String,
    pub residents: Vec<ResidentLine>,
    pub channels: Vec<ChannelProgress>,
    pub total: usize,
}

fn what(state: FixedState) -> &'static str {
    match state {
        FixedState::AlreadyPaid => "已缴费：下单 409 ALREADY_PAID，报账退款原因 ALREADY_PAID",
        FixedState::LockedByOrder => "被其他订单锁定：下单 409 LOCKED",
        FixedState::LockedByDebitRun => "银行扣费进行中：下单 409 LOCKED（银行扣费进行中）",
        FixedState::WindowClosed => "只欠已过征缴期的2000年度：下单 422 WINDOW_CLOSED",
        FixedState::Exempt => "低保免缴：下单 422 NOT_PAYABLE",
    }
}

/// `GET /console/sandbox`.
pub async fn page(State(state): State<AppState>, user: ConsoleUser) -> Result<Response, PageError> {
    admin_of(&user)?;
    let mut residents: Vec<ResidentLine> = FIXED_RESIDENTS
        .iter()
        .map(|r| ResidentLine {
            id_number: r.id_number.to_owned(),
            name: r.name.to_owned(),
            what: what(r.state),
        })
        .collect();
    residents.push(ResidentLine {
        id_number: UNKNOWN_ID_NUMBER.to_owned(),
        name: String::new(),
        what: "不在册：查询 404 NOT_FOUND",
    });
    for n in [0, 1] {
        residents.push(ResidentLine {
            id_number: fresh_id_number(n).unwrap_or_default(),
            name: String::new(),
            what: "新居民（出生于2000年的任一测试号码）：首次查询时登记，应缴 400.00 元",
        });
    }
    let progress = yibao_server::services::sandbox::progress(state.storage.as_ref()).await?;
    let channels = progress
        .into_iter()
        .map(|p| ChannelProgress {
            completed: p.completed(),
            channel_id: p.channel_id,
            enabled: p.enabled,
            scenarios: p
                .scenarios
                .into_iter()
                .map(|(s, done)| ScenarioLine {
                    code: s.code(),
                    title: s.title(),
                    how: s.how(),
                    done: done.is_some(),
                    last: done
                        .map(|(at, _)| beijing_minute(at.saturating_mul(1000)))
                        .unwrap_or_default(),
                    times: done.map_or(0, |(_, times)| times),
                })
                .collect(),
        })
        .collect();
    html(&SandboxPage {
        chrome: Chrome::new(&user, "sandbox", "接入测试"),
        region: SANDBOX_REGION,
        amount: yuan(TEST_AMOUNT_FEN),
        residents,
        channels,
        total: yibao_domain::sandbox::Scenario::ALL.len(),
    })
}
