//! The gateway's configuration: one TOML file, checked whole before anything starts.
//!
//! ```toml
//! [receivers.otlp]            # where data comes in
//! type = "otlp"
//! grpc = "127.0.0.1:4317"
//!
//! [plugins.severity-filter]   # WASM plugins, by name
//! path = "severity_filter.wasm"
//! config = { min_severity = "info" }
//!
//! [pipelines.default]         # receivers → stages → sinks
//! receivers = ["otlp"]
//! stages = ["severity-filter"]
//! sinks = ["archive"]
//!
//! [sinks.archive]             # where data goes out
//! type = "parquet"
//! path = "./data/archive"
//! ```

mod pipeline;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

pub use pipeline::{PipelineConfig, RouteConfig, severity_from_name};

use crate::alerts::AlertsConfig;
use crate::intake::BufferConfig;
use crate::receivers::ReceiverConfig;
use crate::runtime::PluginSpec;
use crate::sinks::SinkConfig;
use crate::telemetry::AdminConfig;

/// The embedded default config (`conf/sluice.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../../conf/sluice.toml");

/// The whole configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Directory relative plugin paths are resolved from. Default: `$SLUICE_PLUGIN_DIR`, else the
    /// workspace's `target/wasm32-wasip2/plugin`.
    #[serde(default)]
    pub plugin_dir: Option<PathBuf>,
    /// Receivers by name.
    #[serde(default)]
    pub receivers: BTreeMap<String, ReceiverConfig>,
    /// Plugins by name.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginSpec>,
    /// Pipelines by name.
    #[serde(default)]
    pub pipelines: BTreeMap<String, PipelineConfig>,
    /// Sinks by name.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkConfig>,
    /// Where the gateway serves its own metrics and health checks. Default: not served.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// The durable intake log. Default: `./data/buffer`, acknowledging after fsync.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// How long a stop (SIGTERM, SIGINT) may take to deliver what is in flight; what is not
    /// delivered by then stays in the buffer for the next start. Default `"30s"`.
    #[serde(
        default = "default_shutdown_timeout",
        deserialize_with = "deserialize_duration"
    )]
    pub shutdown_timeout: Duration,
    /// Items queued per sink. Default 64.
    #[serde(default = "default_sink_queue")]
    pub sink_queue: usize,
    /// What every alert sink's router shares: owners and runbooks per service, grouping,
    /// repeats, rate limit, silences (`docs/alerts.md`). Default: an empty table.
    #[serde(default)]
    pub alerts: AlertsConfig,
}

fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(30)
}

/// A duration written the humantime way (`"500ms"`, `"60s"`, `"5m"`).
pub fn deserialize_duration<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|error| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration: {error} (e.g. \"10s\")"
        ))
    })
}

fn default_sink_queue() -> usize {
    64
}

fn default_plugin_dir() -> PathBuf {
    std::env::var_os("SLUICE_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/plugin")
        })
}

impl GatewayConfig {
    /// Parses a config; `origin` names it in errors. Plugin paths are resolved and names filled
    /// in; every reference and setting is checked and every problem reported at once, each with
    /// its location (the plugins themselves are checked by loading them).
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<GatewayConfig> {
        let mut config: GatewayConfig =
            toml::from_str(text).with_context(|| format!("{origin}: invalid config"))?;
        let plugin_dir = config.plugin_dir.clone().unwrap_or_else(default_plugin_dir);
        for (name, spec) in &mut config.plugins {
            spec.name = name.clone();
            if spec.path.is_relative() {
                spec.path = plugin_dir.join(&spec.path);
            }
        }
        let problems: Vec<String> = config
            .problems()
            .into_iter()
            .map(|problem| format!("{origin}: {problem}"))
            .collect();
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(config)
    }

    /// Every problem references and settings have, each starting with its location.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.pipelines.is_empty() {
            problems.push("no [pipelines.NAME] table: nothing would flow".to_owned());
        }
        self.buffer.check(&mut problems);
        self.alerts.check("alerts", &mut problems);
        if self.sink_queue == 0 {
            problems.push("sink_queue: must be at least 1".to_owned());
        }
        for (name, receiver) in &self.receivers {
            receiver.check(&format!("receivers.{name}"), &mut problems);
        }
        for (name, sink) in &self.sinks {
            sink.check(&format!("sinks.{name}"), &mut problems);
        }
        for (name, pipeline) in &self.pipelines {
            pipeline.check(&format!("pipelines.{name}"), self, &mut problems);
        }
        problems
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> anyhow::Result<GatewayConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        GatewayConfig::parse(&text, &path.display().to_string())
    }

    /// The embedded default.
    pub fn embedded_default() -> anyhow::Result<GatewayConfig> {
        GatewayConfig::parse(DEFAULT_CONFIG, "embedded conf/sluice.toml")
    }
}
