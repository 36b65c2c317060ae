//! One module per page group.

pub mod dashboard;
pub mod login;
pub mod persons;
