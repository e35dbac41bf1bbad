//! What the operator configures for one plugin: where it is, how it is pinned, what it may do,
//! how long and how much it may take, and what happens when it fails.

use std::path::PathBuf;

use serde::Deserialize;

/// One plugin as configured.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// Name in logs, metrics and alerts; set from the config table key.
    #[serde(default)]
    pub name: String,
    /// Path of the `.wasm` component.
    pub path: PathBuf,
    /// Expected SHA-256 of the file, hex; a mismatch refuses the load. Default: not pinned.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The plugin's own config, passed to its `init` as JSON. Default: empty.
    #[serde(default)]
    pub config: serde_json::Value,
    /// Resource limits.
    #[serde(default)]
    pub limits: PluginLimits,
    /// What happens to a batch the plugin fails on. Default: `dead-letter`.
    #[serde(default)]
    pub on_error: OnError,
    /// Capabilities granted beyond the default of none.
    #[serde(default)]
    pub grants: Grants,
}

impl PluginSpec {
    /// A spec with defaults for the plugin at `path`.
    pub fn new(name: &str, path: impl Into<PathBuf>) -> Self {
        PluginSpec {
            name: name.to_owned(),
            path: path.into(),
            sha256: None,
            config: serde_json::Value::Null,
            limits: PluginLimits::default(),
            on_error: OnError::default(),
            grants: Grants::default(),
        }
    }
}

/// What happens to a batch when its plugin faults (trap, deadline, memory cap, bad output).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// The batch goes to the dead-letter output, unchanged.
    #[default]
    DeadLetter,
    /// The batch continues unchanged, as if the plugin were absent.
    Pass,
    /// The batch is dropped and counted.
    Drop,
}

/// Default call budget of filters and parsers, in milliseconds.
pub const FILTER_DEADLINE_MS: u64 = 10;

/// Default call budget of detectors, in milliseconds.
pub const DETECTOR_DEADLINE_MS: u64 = 100;

/// Limits on one plugin instance.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PluginLimits {
    /// Wall-clock budget of one call, in milliseconds. Default (absent or 0): the kind's,
    /// [`FILTER_DEADLINE_MS`] for filters and parsers, [`DETECTOR_DEADLINE_MS`] for detectors
    /// (they keep state and see whole batches: a template miner takes a few µs a record).
    pub deadline_ms: u64,
    /// Budget of the `init` call, in milliseconds. Default 1000.
    pub init_deadline_ms: u64,
    /// Linear memory cap, in MiB. Default 64.
    pub memory_mb: u64,
    /// Bound on what one call may return, in bytes. Default 16 MiB.
    pub max_output_bytes: u64,
    /// Detectors: bound on the state a snapshot may return, in bytes; a larger state is refused
    /// and the detector starts afresh. Default 8 MiB.
    pub max_state_bytes: u64,
    /// An instance is replaced after this many calls (guest runtimes leak). Default 100000.
    pub max_calls_per_instance: u64,
    /// An instance is replaced once its memory passes this many MiB. Default 48.
    pub recycle_memory_mb: u64,
    /// Consecutive faults after which the plugin is quarantined. Default 5.
    pub quarantine_after: u32,
    /// How long a quarantine lasts before the plugin is tried again, in seconds. Default 60.
    pub quarantine_seconds: u64,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            deadline_ms: 0,
            init_deadline_ms: 1000,
            memory_mb: 64,
            max_output_bytes: 16 << 20,
            max_state_bytes: 8 << 20,
            max_calls_per_instance: 100_000,
            recycle_memory_mb: 48,
            quarantine_after: 5,
            quarantine_seconds: 60,
        }
    }
}

/// Capabilities a plugin is granted by name. Nothing is granted by default: no files, no
/// environment, no sockets, no clocks beyond WASI's monotonic and wall clocks.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    /// Environment variables the plugin may read (their values are taken from the gateway's).
    pub env: Vec<String>,
    /// Host directories the plugin may open.
    pub dirs: Vec<DirGrant>,
}

/// One host directory granted to a plugin.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// Directory on the host.
    pub host: PathBuf,
    /// Path the plugin sees it at. Default: the same as `host`.
    #[serde(default)]
    pub guest: Option<String>,
    /// Whether the plugin may write. Default false.
    #[serde(default)]
    pub writable: bool,
}
