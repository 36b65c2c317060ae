//! Use cases shared by the HTTP API and the command line: roster import, assessment, staff.

pub mod assessment;
pub mod roster_import;
pub mod staff;
