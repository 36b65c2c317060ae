//! What the desk pages (退费, 审计日志, 人员管理, 缴费查询, 对账) share: pages of a list and the
//! money readers' scope.

use yibao_server::AppState;
use yibao_storage::Role;

use crate::session::ConsoleUser;
use crate::PageError;

/// The desk pages' routes, merged into [`crate::router`].
pub fn routes() -> axum::Router<AppState> {
    use crate::pages::{
        audit, channels, debit, payments, policies, reconciliation, refunds, staff, statements,
    };
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/console/refunds", get(refunds::list))
        .route("/console/refunds/{refund_no}/retry", post(refunds::retry))
        .route("/console/audit", get(audit::list))
        .route("/console/debit", get(debit::list))
        .route("/console/debit/agreements", post(debit::sign))
        .route(
            "/console/debit/agreements/{region}/{agreement_no}/cancel",
            post(debit::cancel),
        )
        .route("/console/debit/runs", post(debit::create_run))
        .route("/console/debit/runs/{run_no}", get(debit::run))
        .route(
            "/console/debit/runs/{run_no}/request-file",
            get(debit::request_file),
        )
        .route(
            "/console/debit/runs/{run_no}/result",
            post(debit::upload_result).layer(axum::extract::DefaultBodyLimit::max(
                debit::MAX_RESULT_BODY_BYTES,
            )),
        )
        .route("/console/policies", get(policies::list))
        .route("/console/policies/calendar", post(policies::put_calendar))
        .route("/console/policies/fee", post(policies::put_fee_policy))
        .route(
            "/console/channels",
            get(channels::list).post(channels::create),
        )
        .route(
            "/console/channels/{channel_id}/policy",
            post(channels::set_policy),
        )
        .route(
            "/console/channels/{channel_id}/edit",
            get(channels::edit_form).post(channels::edit),
        )
        .route(
            "/console/channels/{channel_id}/secret",
            post(channels::rotate_secret),
        )
        .route(
            "/console/channels/{channel_id}/disable",
            post(channels::disable),
        )
        .route(
            "/console/channels/{channel_id}/enable",
            post(channels::enable),
        )
        .route("/console/staff", get(staff::list).post(staff::create))
        .route(
            "/console/staff/{username}/password",
            post(staff::reset_password),
        )
        .route("/console/staff/{username}/disable", post(staff::disable))
        .route("/console/staff/{username}/enable", post(staff::enable))
        .route(
            "/console/payments",
            get(payments::form).post(payments::lookup),
        )
        .route("/console/receipts/{receipt_no}", get(payments::receipt_pdf))
        .route("/console/reconciliation", get(reconciliation::list))
        .route(
            "/console/reconciliation/resolve",
            get(reconciliation::resolve_form).post(reconciliation::resolve),
        )
        .route(
            "/console/reconciliation/statement",
            get(statements::form).post(statements::upload).layer(
                axum::extract::DefaultBodyLimit::max(statements::MAX_STATEMENT_BODY_BYTES),
            ),
        )
}

/// Rows on one page of a desk list.
pub const PAGE_SIZE: usize = 50;
/// Deepest row a desk list reaches (page 200 of 50): the lists say so and ask for a narrower
/// filter beyond it.
pub const MAX_ROWS: usize = 10_000;

/// The 1-based page asked for, bounded so that the rows read stay within [`MAX_ROWS`].
pub fn page_number(asked: Option<&str>) -> usize {
    asked
        .and_then(|p| p.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, MAX_ROWS / PAGE_SIZE)
}

/// Rows to read for `page`: everything before it, the page, and one more to know whether a next
/// page exists.
pub fn rows_for(page: usize) -> usize {
    (page * PAGE_SIZE + 1).min(MAX_ROWS)
}

/// One page cut from the rows read for it ([`rows_for`]).
pub struct Paged<T> {
    pub rows: Vec<T>,
    pub pager: Pager,
}

/// Links to the previous and next pages, keeping the filters (`query` is the filters' query
/// string, already encoded, without `page`).
pub struct Pager {
    pub page: usize,
    pub prev: Option<String>,
    pub next: Option<String>,
    /// The list stopped at [`MAX_ROWS`].
    pub capped: bool,
}

impl<T> Paged<T> {
    pub fn cut(all: Vec<T>, page: usize, path: &str, query: &str) -> Paged<T> {
        Paged::cut_as(all, page, path, query, "page")
    }

    /// The same with another name of the page parameter (a page with two lists).
    pub fn cut_as(all: Vec<T>, page: usize, path: &str, query: &str, param: &str) -> Paged<T> {
        let read = all.len();
        let start = (page - 1) * PAGE_SIZE;
        let rows: Vec<T> = all.into_iter().skip(start).take(PAGE_SIZE).collect();
        let has_next = read > start + PAGE_SIZE && start + PAGE_SIZE < MAX_ROWS;
        let link = |p: usize| {
            if query.is_empty() {
                format!("{path}?{param}={p}")
            } else {
                format!("{path}?{query}&{param}={p}")
            }
        };
        Paged {
            rows,
            pager: Pager {
                page,
                prev: (page > 1).then(|| link(page - 1)),
                next: has_next.then(|| link(page + 1)),
                capped: read >= MAX_ROWS && start + PAGE_SIZE >= MAX_ROWS,
            },
        }
    }
}

/// A query string of non-empty filters, urlencoded.
pub fn query_of(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

/// Who reads money matters (refunds, payments, reconciliation), as the JSON API decides it
/// ([`yibao_server::auth::Staff::collection_read_scope`]): `Some(region)` for a tax collector, `None` for
/// every region (administrator, auditor); a station operator is refused.
pub fn money_reader(user: &ConsoleUser) -> Result<Option<String>, PageError> {
    Ok(user.staff.collection_read_scope()?)
}

/// The regions to choose from (code, name), for the roles that see every region.
pub async fn regions(state: &AppState) -> Result<Vec<(String, String)>, PageError> {
    Ok(state
        .storage
        .list_regions()
        .await?
        .iter()
        .map(|r| (r.code().to_string(), r.name().to_owned()))
        .collect())
}

/// The region a money list shows: one's own (tax collector), or the one chosen (all when none).
pub fn chosen_region(
    own: Option<String>,
    asked: Option<&str>,
) -> Result<Option<String>, PageError> {
    match (own, asked.map(str::trim).filter(|r| !r.is_empty())) {
        (Some(own), _) => Ok(Some(own)),
        (None, Some(text)) => Ok(Some(
            yibao_domain::RegionCode::parse(text)
                .map_err(yibao_server::ServiceError::from)?
                .to_string(),
        )),
        (None, None) => Ok(None),
    }
}

/// The administrator, checked as the API's `Admin` extractor checks (a handler taking `Admin`
/// trusts that it was checked).
pub fn admin_of(user: &ConsoleUser) -> Result<yibao_server::auth::Admin, PageError> {
    user.staff.require_admin()?;
    Ok(yibao_server::auth::Admin(user.staff.clone()))
}

/// After a form that changed something: to the page that shows it (POST, redirect, GET).
pub fn see_other(to: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    match axum::http::HeaderValue::from_str(to) {
        Ok(v) => (
            axum::http::StatusCode::SEE_OTHER,
            [(axum::http::header::LOCATION, v)],
        )
            .into_response(),
        Err(_) => PageError::bad_form("页面地址有误").into_response(),
    }
}

/// Whether the role may act on money (the API's administrator-only actions).
pub fn is_admin(user: &ConsoleUser) -> bool {
    user.account().role == Role::Admin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_bounded_and_keep_their_filters() {
        assert_eq!(page_number(None), 1);
        assert_eq!(page_number(Some("0")), 1);
        assert_eq!(page_number(Some("x")), 1);
        assert_eq!(page_number(Some("999999")), MAX_ROWS / PAGE_SIZE);
        assert_eq!(rows_for(1), PAGE_SIZE + 1);
        assert_eq!(rows_for(MAX_ROWS / PAGE_SIZE), MAX_ROWS);
        let p = Paged::cut(
            (0..51).collect::<Vec<_>>(),
            1,
            "/console/refunds",
            "status=owed",
        );
        assert_eq!(p.rows.len(), PAGE_SIZE);
        assert_eq!(
            p.pager.next.as_deref(),
            Some("/console/refunds?status=owed&page=2")
        );
        assert!(p.pager.prev.is_none());
        let p = Paged::cut((0..51).collect::<Vec<_>>(), 2, "/console/refunds", "");
        assert_eq!(p.rows, vec![50]);
        assert_eq!(p.pager.prev.as_deref(), Some("/console/refunds?page=1"));
        assert!(p.pager.next.is_none());
        let last = MAX_ROWS / PAGE_SIZE;
        let p = Paged::cut((0..MAX_ROWS).collect::<Vec<_>>(), last, "/x", "");
        assert!(p.pager.next.is_none() && p.pager.capped);
        // Two lists on one page, each with its own parameter, keeping the other's.
        let p = Paged::cut_as(
            (0..120).collect::<Vec<_>>(),
            2,
            "/console/debit",
            "rpage=3",
            "apage",
        );
        assert_eq!(p.rows.first(), Some(&50));
        assert_eq!(
            p.pager.next.as_deref(),
            Some("/console/debit?rpage=3&apage=3")
        );
        assert_eq!(
            p.pager.prev.as_deref(),
            Some("/console/debit?rpage=3&apage=1")
        );
        assert_eq!(
            query_of(&[("a", "1"), ("b", ""), ("c", "退 费")]),
            "a=1&c=%E9%80%80+%E8%B4%B9"
        );
    }
}
