//! The plugin runtime: WebAssembly components that implement the `sluice:plugin` contract
//! (`wit/plugin.wit`), run in sandboxes.
//!
//! - [`PluginEngine`] is process-wide: one wasmtime engine (pooling allocator, epoch
//!   interruption), one linker, and the on-disk cache of compiled components.
//! - [`PluginEngine::load`] verifies a plugin (optional `sha256` pin), compiles or fetches it from
//!   the cache, finds its kind, and links it once ([`LoadedPlugin`], holding an `InstancePre`).
//! - A [`Sandbox`] owns one live instance of a loaded plugin and runs calls under the plugin's
//!   deadline, memory cap and output bound, applying its fault policy.
//!
//! The pipeline sees only our model types ([`LogBatch`](crate::model::LogBatch),
//! [`Alert`](crate::alerts::Alert)); generated bindings stay in `bindings`.

mod bindings;
mod engine;
mod flat;
mod sandbox;
mod spec;
mod state;
mod stats;

pub use bindings::PARSE_ERROR_ATTRIBUTE;
pub use engine::{EngineOptions, LoadedPlugin, PluginEngine, PluginKind, default_cache_dir};
pub use flat::{FlatMetrics, FlatSpans};
pub use sandbox::{DetectOutcome, Fault, FilterOutcome, ParseOutcome, Sandbox, now_nanos};
pub use spec::{DirGrant, Grants, OnError, PluginLimits, PluginSpec};
pub use stats::{PluginStats, PluginStatsSnapshot};
