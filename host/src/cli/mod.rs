//! Subcommands of the `sluice` binary that are not the gateway itself.

pub mod plugin_new;
pub mod plugin_test;
pub mod replay;
pub mod run;
