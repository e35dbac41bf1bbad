//! Sluice, the observability gateway: receivers → intake → pipeline (WASM plugins) → sinks.
//!
//! This crate holds the gateway (binary `sluice`). The data path's stages live in their own
//! modules and talk through narrow types: [`model::LogBatch`] for records and
//! [`alerts::Alert`] for alerts.

pub mod alerts;
pub mod cli;
pub mod config;
pub mod durable_fs;
pub mod gateway;
pub mod intake;
pub mod model;
pub mod pipeline;
pub mod receivers;
pub mod runtime;
pub mod sinks;
pub mod telemetry;
