//! The plugin's config as the operator writes it, and its checked form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_sdk::AlertSeverity;

use crate::baseline::{Floors, alpha_of_half_life};
use crate::clock::NANOS_PER_SECOND;

/// Longest duration accepted for the `*_seconds` fields (one week).
pub const MAX_SECONDS: u32 = 604_800;

/// The plugin's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Metric names watched (exact). With `metric_prefixes`, at least one entry in all.
    pub metrics: Vec<String>,
    /// Metric name prefixes watched (e.g. `http.server.`).
    pub metric_prefixes: Vec<String>,
    /// Point attributes a watched point must carry (values compared as text).
    pub attributes: BTreeMap<String, String>,
    /// Weight of each new point in the baseline, in (0, 1). Default: from `half_life_points`.
    pub alpha: Option<f64>,
    /// Points after which an old point weighs half in the baseline (instead of `alpha`).
    /// Default: 30.
    pub half_life_points: Option<f64>,
    /// Points a series absorbs before it can alert. Default: 30.
    pub warmup_points: u32,
    /// |z| above which a point is anomalous. Default: 4.
    pub z_threshold: f64,
    /// Which deviations count: `both`, `up` or `down`. Default: `both`.
    pub direction: Direction,
    /// Seconds an anomaly must persist (every point anomalous) before the alert fires.
    /// Default: 120.
    pub min_duration_seconds: u32,
    /// Seconds of normal points after which a firing alert resolves. Default: 300.
    pub resolve_after_seconds: u32,
    /// Floor of the standard deviation, in the metric's unit. Default: 0.
    pub min_stddev: f64,
    /// Floor of the standard deviation as a fraction of the mean's magnitude. Default: 0.01.
    pub min_relative_stddev: f64,
    /// Weight of anomalous points in the baseline while an anomaly is under way, as a fraction
    /// of `alpha` (0 freezes the baseline, 1 lets the anomaly in). Default: 0.
    pub anomaly_weight: f64,
    /// Seconds after which a lasting anomaly becomes the new baseline (the alert then resolves
    /// after `resolve_after_seconds`); 0 never. Default: 3600.
    pub rebaseline_after_seconds: u32,
    /// Seconds without a point after which a firing series resolves. Default: 900.
    pub stale_seconds: u32,
    /// How monotonic sums and histograms report: `cumulative` (running totals: the series
    /// is the increase per second, or the mean of the new observations) or `delta`.
    /// Default: `cumulative`.
    pub temporality: Temporality,
    /// Most series tracked (at least 1); the least recently seen go first. Default: 3000 (a
    /// worst-case state stays under the host's 8 MiB `limits.max_state_bytes`).
    pub max_series: u32,
    /// Resource attribute naming the service. Default: `service.name`.
    pub service_attribute: String,
    /// Name of the alert. Default: `MetricAnomaly`.
    pub alert_name: String,
    /// Severity of the alert: `warning`, `error` or `critical`. Default: `warning`.
    pub severity: AlertLevel,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            metrics: Vec::new(),
            metric_prefixes: Vec::new(),
            attributes: BTreeMap::new(),
            alpha: None,
            half_life_points: None,
            warmup_points: 30,
            z_threshold: 4.0,
            direction: Direction::Both,
            min_duration_seconds: 120,
            resolve_after_seconds: 300,
            min_stddev: 0.0,
            min_relative_stddev: 0.01,
            anomaly_weight: 0.0,
            rebaseline_after_seconds: 3600,
            stale_seconds: 900,
            temporality: Temporality::Cumulative,
            max_series: 3_000,
            service_attribute: "service.name".to_owned(),
            alert_name: "MetricAnomaly".to_owned(),
            severity: AlertLevel::Warning,
        }
    }
}

/// Which deviations count as anomalous.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Above or below the baseline.
    Both,
    /// Above only.
    Up,
    /// Below only.
    Down,
}

/// How counters and distributions report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Temporality {
    /// Running totals since the start of the process.
    Cumulative,
    /// Each point holds what happened since the previous one.
    Delta,
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

/// The config once checked.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Exact metric names watched.
    pub metrics: Vec<String>,
    /// Metric name prefixes watched.
    pub metric_prefixes: Vec<String>,
    /// Point attributes that must match.
    pub attributes: Vec<(String, String)>,
    /// Weight of a new point.
    pub alpha: f64,
    /// Points before alerting.
    pub warmup_points: u64,
    /// |z| threshold.
    pub z_threshold: f64,
    /// Which deviations count.
    pub direction: Direction,
    /// Persistence before firing, ns.
    pub min_duration: i64,
    /// Normal time before resolving, ns.
    pub resolve_after: i64,
    /// Standard deviation floors.
    pub floors: Floors,
    /// Weight of anomalous points, as a fraction of `alpha`.
    pub anomaly_weight: f64,
    /// Anomaly age at which it becomes the baseline, ns; 0 never.
    pub rebaseline_after: i64,
    /// Silence after which a firing series resolves, ns.
    pub stale: i64,
    /// How counters and distributions report.
    pub temporality: Temporality,
    /// Most series tracked.
    pub max_series: usize,
    /// Resource attribute naming the service.
    pub service_attribute: String,
    /// Alert name.
    pub alert_name: String,
    /// Alert severity.
    pub severity: AlertLevel,
}

impl Settings {
    /// Checks `config`; the error lists every problem found.
    pub fn from_config(config: Config) -> Result<Self, String> {
        let mut problems = Vec::new();
        if config.metrics.is_empty() && config.metric_prefixes.is_empty() {
            problems
                .push("metrics / metric_prefixes: name at least one metric to watch".to_owned());
        }
        if config
            .metrics
            .iter()
            .chain(&config.metric_prefixes)
            .any(|name| name.trim().is_empty())
        {
            problems.push("metrics / metric_prefixes must not hold empty names".to_owned());
        }
        let alpha = match (config.alpha, config.half_life_points) {
            (Some(_), Some(_)) => {
                problems.push("set one of alpha and half_life_points, not both".to_owned());
                0.5
            }
            (Some(alpha), None) => {
                if !(alpha > 0.0 && alpha < 1.0) {
                    problems.push(format!("alpha {alpha} is outside (0, 1)"));
                }
                alpha
            }
            (None, half_life) => {
                let points = half_life.unwrap_or(30.0);
                if !(1.0..=1e6).contains(&points) {
                    problems.push(format!("half_life_points {points} is outside 1..=1000000"));
                }
                alpha_of_half_life(points)
            }
        };
        if config.warmup_points < 2 {
            problems
                .push("warmup_points must be at least 2 (a variance needs two points)".to_owned());
        }
        if !(config.z_threshold > 0.0 && config.z_threshold.is_finite()) {
            problems.push(format!(
                "z_threshold {} must be a positive number",
                config.z_threshold
            ));
        }
        for (field, seconds) in [
            ("min_duration_seconds", config.min_duration_seconds),
            ("resolve_after_seconds", config.resolve_after_seconds),
            ("rebaseline_after_seconds", config.rebaseline_after_seconds),
            ("stale_seconds", config.stale_seconds),
        ] {
            if seconds > MAX_SECONDS {
                problems.push(format!("{field} {seconds} is over {MAX_SECONDS}"));
            }
        }
        if config.stale_seconds == 0 {
            problems.push("stale_seconds must be at least 1".to_owned());
        }
        if config.rebaseline_after_seconds != 0
            && config.rebaseline_after_seconds < config.min_duration_seconds
        {
            problems.push(format!(
                "rebaseline_after_seconds {} is shorter than min_duration_seconds {} (0 turns it off)",
                config.rebaseline_after_seconds, config.min_duration_seconds
            ));
        }
        if !(config.min_stddev >= 0.0 && config.min_stddev.is_finite()) {
            problems.push(format!(
                "min_stddev {} must be 0 or more",
                config.min_stddev
            ));
        }
        if !(0.0..=1.0).contains(&config.min_relative_stddev) {
            problems.push(format!(
                "min_relative_stddev {} is outside 0..=1",
                config.min_relative_stddev
            ));
        }
        if !(0.0..=1.0).contains(&config.anomaly_weight) {
            problems.push(format!(
                "anomaly_weight {} is outside 0..=1",
                config.anomaly_weight
            ));
        }
        if config.max_series == 0 {
            problems.push("max_series must be at least 1".to_owned());
        }
        if config.service_attribute.trim().is_empty() {
            problems.push("service_attribute must not be empty".to_owned());
        }
        if config.alert_name.trim().is_empty() {
            problems.push("alert_name must not be empty".to_owned());
        }
        if !problems.is_empty() {
            return Err(format!("invalid plugin config: {}", problems.join("; ")));
        }
        let nanos = |seconds: u32| i64::from(seconds) * NANOS_PER_SECOND;
        Ok(Settings {
            metrics: config.metrics,
            metric_prefixes: config.metric_prefixes,
            attributes: config.attributes.into_iter().collect(),
            alpha,
            warmup_points: u64::from(config.warmup_points),
            z_threshold: config.z_threshold,
            direction: config.direction,
            min_duration: nanos(config.min_duration_seconds),
            resolve_after: nanos(config.resolve_after_seconds),
            floors: Floors {
                min_stddev: config.min_stddev,
                min_relative_stddev: config.min_relative_stddev,
            },
            anomaly_weight: config.anomaly_weight,
            rebaseline_after: nanos(config.rebaseline_after_seconds),
            stale: nanos(config.stale_seconds),
            temporality: config.temporality,
            max_series: config.max_series as usize,
            service_attribute: config.service_attribute,
            alert_name: config.alert_name,
            severity: config.severity,
        })
    }

    /// Whether the metric `name` is watched.
    pub fn watches(&self, name: &str) -> bool {
        self.metrics.iter().any(|metric| metric == name)
            || self
                .metric_prefixes
                .iter()
                .any(|prefix| name.starts_with(prefix.as_str()))
    }

    /// Whether a point z-score `z` is anomalous.
    pub fn is_anomalous(&self, z: f64) -> bool {
        match self.direction {
            Direction::Both => z.abs() > self.z_threshold,
            Direction::Up => z > self.z_threshold,
            Direction::Down => z < -self.z_threshold,
        }
    }
}
