//! One module per page group.

pub mod dashboard;
pub mod login;
pub mod persons;
// Campaign pages (issue 16, group A).
pub mod assessment;
pub mod roster;
pub mod uninsured;
pub mod unpaid;
