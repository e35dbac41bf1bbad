//! The plugin's config as the operator writes it, and its checked form.

use serde::{Deserialize, Serialize};
use sluice_sdk::AlertSeverity;

use crate::window::Geometry;

/// Longest window accepted, in seconds (one day).
pub const MAX_WINDOW_SECONDS: u32 = 86_400;

/// Nanoseconds in a second.
pub const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The plugin's config. Every field is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Lowest severity counted as an error: a number 1-24 or a name (`trace`, `debug`, `info`,
    /// `warn`, `error`, `fatal`). Default: 17 (ERROR).
    pub min_severity: SeverityLevel,
    /// Length of the sliding window in seconds, 1-86400. Default: 60.
    pub window_seconds: u32,
    /// Number of errors of one service within the window that fires the alert (at least 1).
    /// Default: 50.
    pub threshold: u64,
    /// Also require the errors to be at least this fraction (0-1) of all records of the service
    /// within the window. Default: 0 (off).
    pub min_ratio: f64,
    /// Resource attribute naming the service; records without it count under `unknown`.
    /// Default: `service.name`.
    pub service_attribute: String,
    /// Seconds the count must stay below the threshold before a firing alert resolves.
    /// Default: the value of `window_seconds`.
    pub resolve_after_seconds: Option<u32>,
    /// Most services tracked at once (at least 1); beyond it the least recently seen service is
    /// forgotten. Default: 10000.
    pub max_services: u32,
    /// Name of the alert. Default: `ErrorBurst`.
    pub alert_name: String,
    /// Severity of the alert: `warning`, `error` or `critical`. Default: `error`.
    pub severity: AlertLevel,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_severity: SeverityLevel::Number(17),
            window_seconds: 60,
            threshold: 50,
            min_ratio: 0.0,
            service_attribute: "service.name".to_owned(),
            resolve_after_seconds: None,
            max_services: 10_000,
            alert_name: "ErrorBurst".to_owned(),
            severity: AlertLevel::Error,
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

/// Severity of the alert raised.
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

use sluice_sdk::severity::from_name as severity_number;

/// The config once checked, in the units the detector works in.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Lowest severity number counted as an error.
    pub min_severity: u8,
    /// Window length as configured, in seconds (used in labels and summaries).
    pub window_seconds: u32,
    /// How the window is cut into buckets.
    pub geometry: Geometry,
    /// Errors in the window that fire.
    pub threshold: u64,
    /// Minimum share of errors among all records, 0 when off.
    pub min_ratio: f64,
    /// Resource attribute naming the service.
    pub service_attribute: String,
    /// Time below the threshold before resolving, in nanoseconds.
    pub resolve_after: i64,
    /// Most services tracked.
    pub max_services: usize,
    /// Alert name.
    pub alert_name: String,
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
        if !(1..=MAX_WINDOW_SECONDS).contains(&config.window_seconds) {
            problems.push(format!(
                "window_seconds {} is outside 1..={MAX_WINDOW_SECONDS}",
                config.window_seconds
            ));
        }
        if config.threshold == 0 {
            problems.push("threshold must be at least 1".to_owned());
        }
        if !(0.0..=1.0).contains(&config.min_ratio) {
            problems.push(format!(
                "min_ratio {} is outside 0..=1 (a fraction, 0 = off)",
                config.min_ratio
            ));
        }
        if config.service_attribute.trim().is_empty() {
            problems.push("service_attribute must not be empty".to_owned());
        }
        if config.max_services == 0 {
            problems.push("max_services must be at least 1".to_owned());
        }
        if config.alert_name.trim().is_empty() {
            problems.push("alert_name must not be empty".to_owned());
        }
        if !problems.is_empty() {
            return Err(format!("invalid plugin config: {}", problems.join("; ")));
        }

        let resolve_after_seconds = config
            .resolve_after_seconds
            .unwrap_or(config.window_seconds);
        Ok(Settings {
            min_severity,
            window_seconds: config.window_seconds,
            geometry: Geometry::for_window(config.window_seconds),
            threshold: config.threshold,
            min_ratio: config.min_ratio,
            service_attribute: config.service_attribute,
            resolve_after: i64::from(resolve_after_seconds) * NANOS_PER_SECOND,
            max_services: config.max_services as usize,
            alert_name: config.alert_name,
            severity: config.severity,
        })
    }

    /// Whether every record is counted (for the ratio), not only errors.
    pub fn counts_all_records(&self) -> bool {
        self.min_ratio > 0.0
    }
}
