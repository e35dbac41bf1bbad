//! The gateway's configuration: one TOML file, checked whole before anything starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::runtime::PluginSpec;

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
    /// The pipeline records go through.
    pub pipeline: PipelineConfig,
    /// Plugins by name.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginSpec>,
}

/// The pipeline: plugins in order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Plugin names: at most one parser first, then filters, then detectors.
    pub stages: Vec<String>,
    /// Lines per batch. Default 1024.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Flush a partial batch after this many milliseconds. Default 200.
    #[serde(default = "default_flush_ms")]
    pub flush_ms: u64,
}

fn default_batch_size() -> usize {
    1024
}

fn default_flush_ms() -> u64 {
    200
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
    /// in; references are checked (the plugins themselves are checked by loading them).
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
        let mut problems = Vec::new();
        for stage in &config.pipeline.stages {
            if !config.plugins.contains_key(stage) {
                problems.push(format!("{origin}: pipeline.stages names `{stage}`, which no [plugins.{stage}] table defines"));
            }
        }
        if config.pipeline.batch_size == 0 {
            problems.push(format!("{origin}: pipeline.batch_size must be at least 1"));
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(config)
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
