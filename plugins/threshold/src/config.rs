//! The plugin's config as the operator writes it, and its checked form.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};
use sluice_sdk::AlertSeverity;

use crate::bound::{Bound, Direction};
use crate::clock::NANOS_PER_SECOND;

/// Longest duration accepted for `for_seconds`, `resolve_for_seconds`, `window_seconds` and
/// `stale_seconds` (one week).
pub const MAX_SECONDS: u32 = 604_800;

/// Longest `body_regex` accepted, in bytes.
const MAX_REGEX_BYTES: usize = 4096;

/// The plugin's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The rules (at least one). Each watches a metric or a count of log records.
    pub rules: Vec<RuleConfig>,
    /// Resource attribute naming the service; data without it counts under `unknown`.
    /// Default: `service.name`.
    pub service_attribute: String,
    /// Most series tracked at once, over all rules (at least 1); beyond it the least recently
    /// seen series is forgotten. Default: 3000 (a worst-case state stays under the host's 8 MiB
    /// `limits.max_state_bytes`).
    pub max_series: u32,
    /// Log rules: seconds a window stays open for late records after it ends, before it is
    /// counted. Default: 10.
    pub allowed_lateness_seconds: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rules: Vec::new(),
            service_attribute: "service.name".to_owned(),
            max_series: 3_000,
            allowed_lateness_seconds: 10,
        }
    }
}

/// One rule: what to watch, the bound, and the alert.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Name of the rule, the `rule` label of its alerts; unique. Default: the metric name, or
    /// `logs` for a log rule.
    #[serde(default)]
    pub name: Option<String>,
    /// Name of the alert. Default: `Threshold`.
    #[serde(default = "default_alert_name")]
    pub alert_name: String,
    /// Severity of the alert: `warning`, `error` or `critical`. Default: `warning`.
    #[serde(default = "default_severity")]
    pub severity: AlertLevel,
    /// Metric rule: the metric name watched (exact).
    #[serde(default)]
    pub metric: Option<String>,
    /// Metric rule: point attributes that must match exactly (values compared as text).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Resource attributes that must match exactly (values compared as text), either kind.
    #[serde(default)]
    pub resource: BTreeMap<String, String>,
    /// Log rule: which records count.
    #[serde(default)]
    pub logs: Option<LogMatchConfig>,
    /// Breach when the value is greater than this.
    #[serde(default)]
    pub above: Option<f64>,
    /// Breach when the value is less than this.
    #[serde(default)]
    pub below: Option<f64>,
    /// A firing alert clears only once the value is back to this (at or below it for `above`,
    /// at or above it for `below`). Default: the bound itself.
    #[serde(default)]
    pub resolve_value: Option<f64>,
    /// Seconds the breach must last before the alert fires. Default: 0 (the first breaching
    /// sample fires).
    #[serde(default)]
    pub for_seconds: u32,
    /// Seconds the value must stay cleared before the alert resolves. Default: 0.
    #[serde(default)]
    pub resolve_for_seconds: u32,
    /// Log rule: the window, in seconds, over which records are counted; the count of each
    /// window is one sample. Default: 60.
    #[serde(default = "default_window_seconds")]
    pub window_seconds: u32,
    /// Metric rule: seconds without a point after which a series is forgotten (and its alert
    /// resolved). Default: 300.
    #[serde(default = "default_stale_seconds")]
    pub stale_seconds: u32,
}

fn default_alert_name() -> String {
    "Threshold".to_owned()
}

fn default_severity() -> AlertLevel {
    AlertLevel::Warning
}

fn default_window_seconds() -> u32 {
    60
}

fn default_stale_seconds() -> u32 {
    300
}

/// Which log records a log rule counts. Every condition given must hold; none counts every
/// record.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogMatchConfig {
    /// Lowest severity counted: a number 1-24 or a name (`trace`, `debug`, `info`, `warn`,
    /// `error`, `fatal`).
    pub min_severity: Option<SeverityLevel>,
    /// The body contains this text (case-sensitive).
    pub body_contains: Option<String>,
    /// The body matches this regular expression (Rust `regex` syntax).
    pub body_regex: Option<String>,
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

/// The config once checked.
#[derive(Debug)]
pub struct Settings {
    /// The rules, in config order.
    pub rules: Vec<Rule>,
    /// Resource attribute naming the service.
    pub service_attribute: String,
    /// Most series tracked.
    pub max_series: usize,
    /// How long a log window waits for late records, in nanoseconds.
    pub allowed_lateness: i64,
    /// Every resource attribute a matcher reads; `Rule::resource` indexes into it.
    pub resource_keys: Vec<String>,
}

/// A checked rule.
#[derive(Debug)]
pub struct Rule {
    /// The `rule` label.
    pub name: String,
    /// Alert name.
    pub alert_name: String,
    /// Alert severity.
    pub severity: AlertLevel,
    /// What the rule watches.
    pub source: Source,
    /// Resource matchers: (index into `Settings::resource_keys`, value).
    pub resource: Vec<(usize, String)>,
    /// The bound and its timing.
    pub bound: Bound,
}

/// What a rule watches.
#[derive(Debug)]
pub enum Source {
    /// The points of one metric.
    Metric {
        /// Metric name.
        name: String,
        /// Point attributes that must match.
        attributes: Vec<(String, String)>,
        /// A series without a point for this long is forgotten, in nanoseconds.
        stale: i64,
    },
    /// The count of matching log records per window.
    Logs {
        /// Lowest severity counted; 0 counts any.
        min_severity: u8,
        /// Text the body contains.
        body_contains: Option<String>,
        /// Pattern the body matches.
        body_regex: Option<Regex>,
        /// The window, in nanoseconds.
        window: i64,
    },
}

impl Source {
    /// Whether the rule counts log records.
    pub fn is_logs(&self) -> bool {
        matches!(self, Source::Logs { .. })
    }
}

impl Settings {
    /// Checks `config`; the error lists every problem found.
    pub fn from_config(config: Config) -> Result<Self, String> {
        let mut problems = Vec::new();
        if config.rules.is_empty() {
            problems.push("rules: at least one rule is needed".to_owned());
        }
        if config.service_attribute.trim().is_empty() {
            problems.push("service_attribute must not be empty".to_owned());
        }
        if config.max_series == 0 {
            problems.push("max_series must be at least 1".to_owned());
        }
        if config.allowed_lateness_seconds > MAX_SECONDS {
            problems.push(format!(
                "allowed_lateness_seconds {} is over {MAX_SECONDS}",
                config.allowed_lateness_seconds
            ));
        }
        let mut resource_keys: Vec<String> = Vec::new();
        let mut rules: Vec<Rule> = Vec::new();
        for (index, rule) in config.rules.into_iter().enumerate() {
            let at = format!("rules[{index}]");
            match check_rule(rule, &at, &mut resource_keys, &mut problems) {
                Some(rule) if rules.iter().any(|other| other.name == rule.name) => {
                    problems.push(format!(
                        "{at}: another rule is named `{}`; give each rule its own `name`",
                        rule.name
                    ));
                }
                Some(rule) => rules.push(rule),
                None => {}
            }
        }
        if !problems.is_empty() {
            return Err(format!("invalid plugin config: {}", problems.join("; ")));
        }
        Ok(Settings {
            rules,
            service_attribute: config.service_attribute,
            max_series: config.max_series as usize,
            allowed_lateness: i64::from(config.allowed_lateness_seconds) * NANOS_PER_SECOND,
            resource_keys,
        })
    }
}

/// Checks one rule, adding its problems to `problems`; `None` when it has any.
fn check_rule(
    rule: RuleConfig,
    at: &str,
    resource_keys: &mut Vec<String>,
    problems: &mut Vec<String>,
) -> Option<Rule> {
    let before = problems.len();
    for (field, seconds) in [
        ("for_seconds", rule.for_seconds),
        ("resolve_for_seconds", rule.resolve_for_seconds),
        ("window_seconds", rule.window_seconds),
        ("stale_seconds", rule.stale_seconds),
    ] {
        if seconds > MAX_SECONDS {
            problems.push(format!("{at}.{field} {seconds} is over {MAX_SECONDS}"));
        }
    }
    if rule.alert_name.trim().is_empty() {
        problems.push(format!("{at}.alert_name must not be empty"));
    }
    if rule
        .name
        .as_deref()
        .is_some_and(|name| name.trim().is_empty())
    {
        problems.push(format!("{at}.name must not be empty"));
    }
    let (direction, value) = match (rule.above, rule.below) {
        (Some(value), None) => (Direction::Above, value),
        (None, Some(value)) => (Direction::Below, value),
        _ => {
            problems.push(format!("{at}: set exactly one of `above` and `below`"));
            (Direction::Above, 0.0)
        }
    };
    if !value.is_finite() {
        problems.push(format!("{at}: the bound must be a finite number"));
    }
    let resolve_value = rule.resolve_value.unwrap_or(value);
    let band_ok = match direction {
        Direction::Above => resolve_value <= value,
        Direction::Below => resolve_value >= value,
    };
    if !band_ok || !resolve_value.is_finite() {
        problems.push(format!(
            "{at}.resolve_value {resolve_value} must be a number on the inside of the bound \
             (at or below `above`, at or above `below`)"
        ));
    }
    let source = match (rule.metric, rule.logs) {
        (Some(metric), None) => {
            if metric.trim().is_empty() {
                problems.push(format!("{at}.metric must not be empty"));
            }
            if rule.stale_seconds == 0 {
                problems.push(format!("{at}.stale_seconds must be at least 1"));
            }
            Source::Metric {
                name: metric,
                attributes: rule.attributes.into_iter().collect(),
                stale: i64::from(rule.stale_seconds) * NANOS_PER_SECOND,
            }
        }
        (None, Some(logs)) => {
            if !rule.attributes.is_empty() {
                problems.push(format!(
                    "{at}.attributes applies to metric rules; log rules match `resource`"
                ));
            }
            if rule.window_seconds == 0 {
                problems.push(format!("{at}.window_seconds must be at least 1"));
            }
            let min_severity = match logs.min_severity {
                None => 0,
                Some(SeverityLevel::Number(number @ 1..=24)) => number as u8,
                Some(SeverityLevel::Number(number)) => {
                    problems.push(format!("{at}.logs.min_severity {number} is outside 1..=24"));
                    0
                }
                Some(SeverityLevel::Name(name)) => sluice_sdk::severity::from_name(&name)
                    .unwrap_or_else(|| {
                        problems.push(format!(
                            "{at}.logs.min_severity `{name}` is not one of trace, debug, info, \
                             warn, error, fatal"
                        ));
                        0
                    }),
            };
            if logs.body_contains.as_deref() == Some("") {
                problems.push(format!("{at}.logs.body_contains must not be empty"));
            }
            let body_regex = match logs.body_regex {
                None => None,
                Some(pattern) if pattern.len() > MAX_REGEX_BYTES => {
                    problems.push(format!(
                        "{at}.logs.body_regex is longer than {MAX_REGEX_BYTES} bytes"
                    ));
                    None
                }
                Some(pattern) => match Regex::new(&pattern) {
                    Ok(regex) => Some(regex),
                    Err(error) => {
                        problems.push(format!("{at}.logs.body_regex: {error}"));
                        None
                    }
                },
            };
            Source::Logs {
                min_severity,
                body_contains: logs.body_contains,
                body_regex,
                window: i64::from(rule.window_seconds) * NANOS_PER_SECOND,
            }
        }
        _ => {
            problems.push(format!("{at}: set exactly one of `metric` and `logs`"));
            return None;
        }
    };
    let name = rule.name.unwrap_or_else(|| match &source {
        Source::Metric { name, .. } => name.clone(),
        Source::Logs { .. } => "logs".to_owned(),
    });
    let resource = rule
        .resource
        .into_iter()
        .map(|(key, value)| {
            let index = match resource_keys.iter().position(|known| *known == key) {
                Some(index) => index,
                None => {
                    resource_keys.push(key);
                    resource_keys.len() - 1
                }
            };
            (index, value)
        })
        .collect();
    if problems.len() > before {
        return None;
    }
    Some(Rule {
        name,
        alert_name: rule.alert_name,
        severity: rule.severity,
        source,
        resource,
        bound: Bound {
            direction,
            value,
            resolve_value,
            for_nanos: i64::from(rule.for_seconds) * NANOS_PER_SECOND,
            resolve_for_nanos: i64::from(rule.resolve_for_seconds) * NANOS_PER_SECOND,
        },
    })
}
