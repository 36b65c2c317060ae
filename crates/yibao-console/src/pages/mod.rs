//! One module per page group.

pub mod dashboard;
pub mod login;
pub mod persons;
// 家庭户 (issue 17).
pub mod households;
// Campaign pages (issue 16, group A).
pub mod assessment;
pub mod roster;
pub mod uninsured;
// 网上参保登记 from the citizen site (issue 11).
pub mod applications;
pub mod unpaid;
// 缴费公示 (the printable listing of the paid).
pub mod listing;
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
// 村级代办 (issue 17).
pub mod village_agents;
// 接入测试 (issue 17).
pub mod sandbox;
