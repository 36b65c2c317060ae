//! One module per page group.

pub mod dashboard;
pub mod login;
pub mod persons;
// Desk pages (issue 16, group B): 退费, 审计日志, 人员管理, 缴费查询, 对账 (and its statement upload).
pub mod audit;
pub mod channels;
pub mod debit;
pub mod desk;
pub mod payments;
pub mod policies;
pub mod reconciliation;
pub mod refunds;
pub mod staff;
pub mod statements;
