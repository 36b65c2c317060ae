//! The `yibao` command's library: configuration, backend selection, the demo data set and the CLI.
//! `main.rs` only calls [`cli::main`].

pub mod accounts_cli;
pub mod backup;
pub mod cli;
pub mod config;
pub mod cover_cli;
pub mod demo;
pub mod operator;
pub mod settlement_cli;
pub mod setup_cli;
pub mod simulate;
pub mod storage;
