//! The plugin's config as the operator writes it, and its checked form.

use serde::{Deserialize, Serialize};
use sluice_sdk::AlertSeverity;
use sluice_sdk::severity::from_name as severity_number;

/// Nanoseconds in a second.
pub const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Nanoseconds in an hour: the unit of the long-run rate, and the shortest history it is
/// measured over.
pub const NANOS_PER_HOUR: i64 = 3_600 * NANOS_PER_SECOND;

/// Longest duration accepted for any `*_seconds` field (30 days).
const MAX_SECONDS: u32 = 30 * 86_400;

/// The plugin's config. Every field is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Lowest severity of a record whose new template raises `LogNovelty`: a number 1-24 or a
    /// name (`trace`, `debug`, `info`, `warn`, `error`, `fatal`). Default: 13 (WARN).
    pub min_severity: SeverityLevel,
    /// Event time, from the first record of a service, during which its templates are learnt
    /// as the baseline and raise nothing, in seconds. Default: 3600.
    pub learning_period_seconds: u32,
    /// Drain's similarity threshold (0 < x <= 1): a line joins the most similar template of
    /// its tree leaf when at least this fraction of the template's tokens equal the line's.
    /// Default: 0.4.
    pub sim_th: f64,
    /// Drain's tree depth (3-16): the tree routes a line by its token count, then by its first
    /// `depth - 2` tokens. Default: 4.
    pub depth: u32,
    /// Most children of one tree node (at least 2); beyond it tokens share a `<*>` child.
    /// Default: 100.
    pub max_children: u32,
    /// Most templates kept per service (at least 1); beyond it the least recently seen is
    /// forgotten. Default: 300.
    pub max_clusters: u32,
    /// Most services tracked at once (at least 1); beyond it the least recently seen service is
    /// forgotten with all its templates. Default: 50.
    pub max_services: u32,
    /// Bytes of a body parsed (64-65536); the rest is ignored. Default: 2048.
    pub max_line_bytes: u32,
    /// Tokens of a body parsed (1-1024); the rest are ignored. Default: 64.
    pub max_tokens: u32,
    /// Event time a new template must stay unseen before its `LogNovelty` alert resolves, in
    /// seconds. Default: 1800.
    pub resolve_after_seconds: u32,
    /// Occurrences of a rare template within `burst_window_seconds` that raise
    /// `LogTemplateBurst` (2-1000). Default: 10.
    pub burst_count: u32,
    /// Length of the burst window, in seconds (1-2592000). Default: 300.
    pub burst_window_seconds: u32,
    /// A template is rare when it occurred at most this many times per hour before the burst
    /// window, over its whole history (at least an hour). Default: 1.
    pub rare_max_per_hour: f64,
    /// Resource attribute naming the service; records without it count under `unknown`.
    /// Default: `service.name`.
    pub service_attribute: String,
    /// Severity of the alerts raised: `warning`, `error` or `critical`. Default: `warning`.
    pub severity: AlertLevel,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_severity: SeverityLevel::Number(13),
            learning_period_seconds: 3_600,
            sim_th: 0.4,
            depth: 4,
            max_children: 100,
            max_clusters: 300,
            max_services: 50,
            max_line_bytes: 2_048,
            max_tokens: 64,
            resolve_after_seconds: 1_800,
            burst_count: 10,
            burst_window_seconds: 300,
            rare_max_per_hour: 1.0,
            service_attribute: "service.name".to_owned(),
            severity: AlertLevel::Warning,
        }
    }
}

/// A severity given as a number or a name.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SeverityLevel {
    /// An OpenTelemetry severity number.
    Number(u64),
    /// A severity name.
    Name(String),
}

/// Severity of the alerts raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertLevel {
    /// `warning` (or `warn`).
    #[serde(alias = "warn")]
    Warning,
    /// `error`.
    Error,
    /// `critical`.
    Critical,
}

impl From<AlertLevel> for AlertSeverity {
    fn from(level: AlertLevel) -> Self {
        match level {
            AlertLevel::Warning => AlertSeverity::Warning,
            AlertLevel::Error => AlertSeverity::Error,
            AlertLevel::Critical => AlertSeverity::Critical,
        }
    }
}

/// Drain's parameters.
#[derive(Clone, Copy, Debug)]
pub struct DrainParams {
    /// Similarity threshold.
    pub sim_th: f64,
    /// Prefix tokens routed on (`depth - 2`), at least 1.
    pub prefix_depth: usize,
    /// Most children per node.
    pub max_children: usize,
    /// Most clusters per service.
    pub max_clusters: usize,
}

/// The config once checked, in the units the detector works in.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Lowest severity number of a record whose new template alerts.
    pub min_severity: u8,
    /// Learning period, ns.
    pub learning_period: i64,
    /// Drain's parameters.
    pub drain: DrainParams,
    /// Most services.
    pub max_services: usize,
    /// Bytes of a body parsed.
    pub max_line_bytes: usize,
    /// Tokens of a body parsed.
    pub max_tokens: usize,
    /// Quiet time before a `LogNovelty` alert resolves, ns.
    pub resolve_after: i64,
    /// Occurrences in the burst window that fire.
    pub burst_count: usize,
    /// Burst window, ns.
    pub burst_window: i64,
    /// Burst window as configured, seconds (for summaries).
    pub burst_window_seconds: u32,
    /// Highest long-run rate of a rare template, per hour.
    pub rare_max_per_hour: f64,
    /// Resource attribute naming the service.
    pub service_attribute: String,
    /// Alert severity.
    pub severity: AlertLevel,
}

impl Settings {
    /// Checks `config`; the error lists every problem found.
    pub fn from_config(config: Config) -> Result<Self, String> {
        let mut problems = Vec::new();
        let min_severity = match config.min_severity {
            SeverityLevel::Number(number @ 1..=24) => number as u8,
            SeverityLevel::Number(number) => {
                problems.push(format!("min_severity {number} is outside 1..=24"));
                0
            }
            SeverityLevel::Name(name) => severity_number(&name).unwrap_or_else(|| {
                problems.push(format!(
                    "min_severity `{name}` is not one of trace, debug, info, warn, error, fatal"
                ));
                0
            }),
        };
        let mut in_range = |field: &str, value: u32, low: u32, high: u32| {
            if !(low..=high).contains(&value) {
                problems.push(format!("{field} {value} is outside {low}..={high}"));
            }
        };
        in_range(
            "learning_period_seconds",
            config.learning_period_seconds,
            0,
            MAX_SECONDS,
        );
        in_range("depth", config.depth, 3, 16);
        in_range("max_children", config.max_children, 2, 100_000);
        in_range("max_clusters", config.max_clusters, 1, 1_000_000);
        in_range("max_services", config.max_services, 1, 1_000_000);
        in_range("max_line_bytes", config.max_line_bytes, 64, 65_536);
        in_range("max_tokens", config.max_tokens, 1, 1_024);
        in_range(
            "resolve_after_seconds",
            config.resolve_after_seconds,
            0,
            MAX_SECONDS,
        );
        in_range("burst_count", config.burst_count, 2, 1_000);
        in_range(
            "burst_window_seconds",
            config.burst_window_seconds,
            1,
            MAX_SECONDS,
        );
        if !(config.sim_th > 0.0 && config.sim_th <= 1.0) {
            problems.push(format!("sim_th {} is outside (0, 1]", config.sim_th));
        }
        if !(config.rare_max_per_hour >= 0.0 && config.rare_max_per_hour.is_finite()) {
            problems.push(format!(
                "rare_max_per_hour {} must be a finite number >= 0",
                config.rare_max_per_hour
            ));
        }
        if config.service_attribute.trim().is_empty() {
            problems.push("service_attribute must not be empty".to_owned());
        }
        if !problems.is_empty() {
            return Err(format!("invalid plugin config: {}", problems.join("; ")));
        }
        let seconds = |value: u32| i64::from(value) * NANOS_PER_SECOND;
        Ok(Settings {
            min_severity,
            learning_period: seconds(config.learning_period_seconds),
            drain: DrainParams {
                sim_th: config.sim_th,
                prefix_depth: config.depth as usize - 2,
                max_children: config.max_children as usize,
                max_clusters: config.max_clusters as usize,
            },
            max_services: config.max_services as usize,
            max_line_bytes: config.max_line_bytes as usize,
            max_tokens: config.max_tokens as usize,
            resolve_after: seconds(config.resolve_after_seconds),
            burst_count: config.burst_count as usize,
            burst_window: seconds(config.burst_window_seconds),
            burst_window_seconds: config.burst_window_seconds,
            rare_max_per_hour: config.rare_max_per_hour,
            service_attribute: config.service_attribute,
            severity: config.severity,
        })
    }
}
