//! The settlement API for staff, by topic: bank auto-debit ([`debit`]), statements and
//! reconciliation ([`reconciliation`]), refunds ([`refunds`]) and the reports ([`reports`]).
//!
//! Who may do what: the center administrator everything; a tax collector (税务征收) the collection
//! work of their own region; an auditor reads. Station operators have no part in collection. A
//! channel serving several regions sends one statement for all: the administrator uploads it, and a
//! tax collector sees and resolves their own region's differences of it only. The rules are
//! [`crate::auth`]'s and [`crate::services::settlement_scope`]'s; the handlers call the services.

pub mod debit;
pub mod reconciliation;
pub mod refunds;
pub mod reports;

use crate::http::ApiRouter;

pub use crate::services::settlement_scope::{PeriodQuery, MAX_REPORT_DAYS};

/// The settlement routes with the default body limit.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new()
        .merge(debit::routes())
        .merge(reconciliation::routes())
        .merge(refunds::routes())
        .merge(reports::routes())
}
