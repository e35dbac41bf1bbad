//! The plugin's config as the operator writes it, and its checked form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_sdk::{AlertSeverity, span_kind};

use crate::clock::{NANOS_PER_SECOND, duration_label};

/// Longest window accepted (7 days).
pub const MAX_WINDOW_SECONDS: u32 = 604_800;

/// Most buckets the longest window may span, to bound the state of a series.
pub const MAX_BUCKETS: u32 = 10_080;

/// The plugin's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The SLOs (at least one).
    pub slos: Vec<SloConfig>,
    /// Width of the count buckets, in seconds; every window is a whole number of them.
    /// Default: 60.
    pub bucket_seconds: u32,
    /// How long after its end a bucket still takes late events before the windows ending with
    /// it are evaluated, in seconds. Default: 10.
    pub allowed_lateness_seconds: u32,
    /// The alert windows of every SLO that does not set its own. Default: the SRE workbook's
    /// 1h/5m at 14.4 (critical) and 6h/30m at 6 (warning).
    pub windows: Vec<WindowConfig>,
    /// How counter metrics report: `cumulative` or `delta`. Default: `cumulative`.
    pub temporality: Temporality,
    /// Resource attribute naming the service. Default: `service.name`.
    pub service_attribute: String,
    /// Most (SLO, service) series tracked; the least recently seen go first. Default: 400 (a
    /// worst-case state stays under the host's 8 MiB `limits.max_state_bytes`).
    pub max_series: u32,
    /// Most cumulative counter series remembered (metric sources). Default: 1000.
    pub max_counters: u32,
    /// Name of the alert. Default: `SloBurnRate`.
    pub alert_name: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            slos: Vec::new(),
            bucket_seconds: 60,
            allowed_lateness_seconds: 10,
            windows: default_windows(),
            temporality: Temporality::Cumulative,
            service_attribute: "service.name".to_owned(),
            max_series: 400,
            max_counters: 1_000,
            alert_name: "SloBurnRate".to_owned(),
        }
    }
}

/// The SRE workbook's pairs (ch. 5, "Alerting on SLOs"): 2 % of a 30-day budget in an hour
/// pages, 5 % in six hours opens a ticket.
fn default_windows() -> Vec<WindowConfig> {
    vec![
        WindowConfig {
            long_seconds: 3_600,
            short_seconds: 300,
            burn_rate: 14.4,
            severity: AlertLevel::Critical,
        },
        WindowConfig {
            long_seconds: 21_600,
            short_seconds: 1_800,
            burn_rate: 6.0,
            severity: AlertLevel::Warning,
        },
    ]
}

/// One SLO.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    /// Name of the SLO (the `slo` label); unique.
    pub name: String,
    /// The objective: the fraction of good events, e.g. 0.999.
    pub target: f64,
    /// Services it applies to; empty: every service (one series each).
    #[serde(default)]
    pub services: Vec<String>,
    /// Events from request spans.
    #[serde(default)]
    pub spans: Option<SpanSource>,
    /// Events from counter metrics.
    #[serde(default)]
    pub metrics: Option<MetricSource>,
    /// Alert windows of this SLO. Default: the plugin's `windows`.
    #[serde(default)]
    pub windows: Option<Vec<WindowConfig>>,
    /// Events the long window must hold before it can alert (low traffic makes a single error
    /// a huge burn rate). Default: 0.
    #[serde(default)]
    pub min_events: f64,
    /// Seconds the short window's burn rate must stay at or below the threshold before an
    /// alert resolves; 0 resolves at the first such boundary, as the workbook does. A few
    /// minutes stop a low-traffic service's alert from flapping. Default: 0.
    #[serde(default)]
    pub resolve_after_seconds: u32,
}

/// Requests from spans.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpanSource {
    /// Span kinds counted: `server`, `consumer`, `client`, `producer`, `internal`,
    /// `unspecified`. Default: `["server"]`.
    pub kinds: Vec<String>,
    /// Span names counted (exact); empty: every name.
    pub names: Vec<String>,
    /// Span attributes a counted span must carry (values compared as text).
    pub attributes: BTreeMap<String, String>,
    /// A span with status code ERROR is bad. Default: true.
    pub errors: bool,
    /// A span slower than this (milliseconds) is bad too. Default: none.
    pub latency_threshold_ms: Option<f64>,
}

impl Default for SpanSource {
    fn default() -> Self {
        SpanSource {
            kinds: vec!["server".to_owned()],
            names: Vec::new(),
            attributes: BTreeMap::new(),
            errors: true,
            latency_threshold_ms: None,
        }
    }
}

/// Events from counters: a total and one way to tell the bad ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSource {
    /// The metric counting every event (a monotonic sum, or a histogram's count).
    pub total: String,
    /// The metric counting bad events.
    #[serde(default)]
    pub errors: Option<String>,
    /// The metric counting good events (bad = total − good).
    #[serde(default)]
    pub good: Option<String>,
    /// Points of `total` carrying this attribute count as bad (e.g. `error.type`).
    #[serde(default)]
    pub error_attribute: Option<String>,
    /// With `error_attribute`: only values starting with one of these count as bad (e.g. `["5"]`
    /// for `http.response.status_code`); empty: any value.
    #[serde(default)]
    pub error_value_prefixes: Vec<String>,
    /// Point attributes a counted point must carry (values compared as text).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// A pair of windows and its burn-rate threshold.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// The long window, in seconds.
    pub long_seconds: u32,
    /// The short window, in seconds.
    pub short_seconds: u32,
    /// The burn rate both windows must exceed.
    pub burn_rate: f64,
    /// Severity of its alert. Default: `warning`.
    #[serde(default = "default_severity")]
    pub severity: AlertLevel,
}

fn default_severity() -> AlertLevel {
    AlertLevel::Warning
}

/// How counters report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Temporality {
    /// Running totals since the start of the process.
    Cumulative,
    /// Each point holds what happened since the previous one.
    Delta,
}

/// Severity of an alert.
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
    /// The SLOs.
    pub slos: Vec<Slo>,
    /// Bucket width, ns.
    pub bucket: i64,
    /// Lateness allowed, ns.
    pub allowed_lateness: i64,
    /// How counters report.
    pub temporality: Temporality,
    /// Resource attribute naming the service.
    pub service_attribute: String,
    /// Most series.
    pub max_series: usize,
    /// Most counters.
    pub max_counters: usize,
    /// Alert name.
    pub alert_name: String,
}

/// A checked SLO.
#[derive(Debug)]
pub struct Slo {
    /// Name.
    pub name: String,
    /// Objective.
    pub target: f64,
    /// Services, empty for all.
    pub services: Vec<String>,
    /// Where its events come from.
    pub source: Source,
    /// Its window pairs.
    pub windows: Vec<Window>,
    /// Events needed in the long window.
    pub min_events: f64,
    /// How long the short window must stay clear before resolving, ns.
    pub resolve_after: i64,
}

/// Where an SLO's events come from.
#[derive(Debug)]
pub enum Source {
    /// Spans.
    Spans {
        /// Kinds counted (OTLP numbers).
        kinds: Vec<u8>,
        /// Names counted, empty for all.
        names: Vec<String>,
        /// Attribute matchers.
        attributes: Vec<(String, String)>,
        /// Status ERROR is bad.
        errors: bool,
        /// Slower than this (ns) is bad.
        latency_threshold: Option<i64>,
    },
    /// Counter metrics.
    Metrics {
        /// Total metric.
        total: String,
        /// How bad events are told.
        bad: BadEvents,
        /// Attribute matchers.
        attributes: Vec<(String, String)>,
    },
}

/// How a metric source tells bad events.
#[derive(Debug)]
pub enum BadEvents {
    /// A metric counts them.
    Errors(String),
    /// A metric counts the good ones.
    Good(String),
    /// Points of the total carrying an attribute (with a value starting with a prefix).
    Attribute {
        /// The attribute.
        key: String,
        /// Value prefixes; empty for any value.
        prefixes: Vec<String>,
    },
}

/// A checked window pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// Long window, in buckets.
    pub long: i64,
    /// Short window, in buckets.
    pub short: i64,
    /// Burn rate threshold.
    pub burn_rate: f64,
    /// Alert severity.
    pub severity: AlertLevel,
    /// The `window` label, e.g. `1h/5m`.
    pub label: String,
}

impl Settings {
    /// Checks `config`; the error lists every problem found.
    pub fn from_config(config: Config) -> Result<Self, String> {
        let mut problems = Vec::new();
        if config.slos.is_empty() {
            problems.push("slos: at least one SLO is needed".to_owned());
        }
        if config.bucket_seconds == 0 || config.bucket_seconds > 3_600 {
            problems.push(format!(
                "bucket_seconds {} is outside 1..=3600",
                config.bucket_seconds
            ));
        }
        let bucket_seconds = config.bucket_seconds.max(1);
        if config.allowed_lateness_seconds > 3_600 {
            problems.push(format!(
                "allowed_lateness_seconds {} is over 3600",
                config.allowed_lateness_seconds
            ));
        }
        for (field, value) in [
            ("max_series", config.max_series),
            ("max_counters", config.max_counters),
        ] {
            if value == 0 {
                problems.push(format!("{field} must be at least 1"));
            }
        }
        if config.service_attribute.trim().is_empty() {
            problems.push("service_attribute must not be empty".to_owned());
        }
        if config.alert_name.trim().is_empty() {
            problems.push("alert_name must not be empty".to_owned());
        }
        let default_windows =
            check_windows(&config.windows, "windows", bucket_seconds, &mut problems);
        let mut slos: Vec<Slo> = Vec::new();
        for (index, slo) in config.slos.into_iter().enumerate() {
            let at = format!("slos[{index}]");
            if let Some(slo) = check_slo(slo, &at, bucket_seconds, &default_windows, &mut problems)
            {
                if slos.iter().any(|other| other.name == slo.name) {
                    problems.push(format!("{at}: another SLO is named `{}`", slo.name));
                } else {
                    slos.push(slo);
                }
            }
        }
        if !problems.is_empty() {
            return Err(format!("invalid plugin config: {}", problems.join("; ")));
        }
        Ok(Settings {
            slos,
            bucket: i64::from(bucket_seconds) * NANOS_PER_SECOND,
            allowed_lateness: i64::from(config.allowed_lateness_seconds) * NANOS_PER_SECOND,
            temporality: config.temporality,
            service_attribute: config.service_attribute,
            max_series: config.max_series as usize,
            max_counters: config.max_counters as usize,
            alert_name: config.alert_name,
        })
    }

    /// The SLO named `name`.
    pub fn slo(&self, name: &str) -> Option<&Slo> {
        self.slos.iter().find(|slo| slo.name == name)
    }

    /// Whether any SLO reads spans.
    pub fn reads_spans(&self) -> bool {
        self.slos
            .iter()
            .any(|slo| matches!(slo.source, Source::Spans { .. }))
    }
}

impl Slo {
    /// Whether the SLO applies to `service`.
    pub fn covers(&self, service: &str) -> bool {
        self.services.is_empty() || self.services.iter().any(|name| name == service)
    }

    /// The longest window, in buckets.
    pub fn longest(&self) -> i64 {
        self.windows
            .iter()
            .map(|window| window.long)
            .max()
            .unwrap_or(1)
    }

    /// The longest short window, in buckets.
    pub fn longest_short(&self) -> i64 {
        self.windows
            .iter()
            .map(|window| window.short)
            .max()
            .unwrap_or(1)
    }
}

/// Checks window pairs; the checked ones (the valid ones only).
fn check_windows(
    windows: &[WindowConfig],
    at: &str,
    bucket_seconds: u32,
    problems: &mut Vec<String>,
) -> Vec<Window> {
    if windows.is_empty() {
        problems.push(format!("{at}: at least one window pair is needed"));
    }
    let mut checked: Vec<Window> = Vec::new();
    for (index, window) in windows.iter().enumerate() {
        let at = format!("{at}[{index}]");
        let before = problems.len();
        for (field, seconds) in [
            ("long_seconds", window.long_seconds),
            ("short_seconds", window.short_seconds),
        ] {
            if seconds == 0 || seconds > MAX_WINDOW_SECONDS {
                problems.push(format!(
                    "{at}.{field} {seconds} is outside 1..={MAX_WINDOW_SECONDS}"
                ));
            } else if seconds % bucket_seconds != 0 {
                problems.push(format!(
                    "{at}.{field} {seconds} is not a multiple of bucket_seconds {bucket_seconds}"
                ));
            }
        }
        if window.short_seconds >= window.long_seconds {
            problems.push(format!(
                "{at}: short_seconds {} must be shorter than long_seconds {}",
                window.short_seconds, window.long_seconds
            ));
        }
        if window.long_seconds / bucket_seconds > MAX_BUCKETS {
            problems.push(format!(
                "{at}.long_seconds {} spans more than {MAX_BUCKETS} buckets of {bucket_seconds} s",
                window.long_seconds
            ));
        }
        if !(window.burn_rate > 0.0 && window.burn_rate.is_finite()) {
            problems.push(format!(
                "{at}.burn_rate {} must be a positive number",
                window.burn_rate
            ));
        }
        let label = format!(
            "{}/{}",
            duration_label(u64::from(window.long_seconds)),
            duration_label(u64::from(window.short_seconds))
        );
        if checked.iter().any(|other| other.label == label) {
            problems.push(format!("{at}: the window pair {label} appears twice"));
        }
        if problems.len() == before {
            checked.push(Window {
                long: i64::from(window.long_seconds / bucket_seconds),
                short: i64::from(window.short_seconds / bucket_seconds),
                burn_rate: window.burn_rate,
                severity: window.severity,
                label,
            });
        }
    }
    checked
}

/// Checks one SLO, adding its problems to `problems`; `None` when it has any.
fn check_slo(
    slo: SloConfig,
    at: &str,
    bucket_seconds: u32,
    default_windows: &[Window],
    problems: &mut Vec<String>,
) -> Option<Slo> {
    let before = problems.len();
    if slo.name.trim().is_empty() {
        problems.push(format!("{at}.name must not be empty"));
    }
    if !(slo.target > 0.0 && slo.target < 1.0) {
        problems.push(format!(
            "{at}.target {} is outside (0, 1) (e.g. 0.999 for 99.9 %)",
            slo.target
        ));
    }
    if slo.resolve_after_seconds > MAX_WINDOW_SECONDS {
        problems.push(format!(
            "{at}.resolve_after_seconds {} is over {MAX_WINDOW_SECONDS}",
            slo.resolve_after_seconds
        ));
    }
    if !(slo.min_events >= 0.0 && slo.min_events.is_finite()) {
        problems.push(format!(
            "{at}.min_events {} must be 0 or more",
            slo.min_events
        ));
    }
    let windows = match &slo.windows {
        Some(windows) => check_windows(windows, &format!("{at}.windows"), bucket_seconds, problems),
        None => default_windows.to_vec(),
    };
    let source = match (slo.spans, slo.metrics) {
        (Some(spans), None) => {
            let mut kinds = Vec::new();
            for kind in &spans.kinds {
                match kind_number(kind) {
                    Some(number) => kinds.push(number),
                    None => problems.push(format!(
                        "{at}.spans.kinds: `{kind}` is not one of server, consumer, client, \
                         producer, internal, unspecified"
                    )),
                }
            }
            if kinds.is_empty() && spans.kinds.is_empty() {
                problems.push(format!("{at}.spans.kinds must name at least one kind"));
            }
            let latency_threshold = match spans.latency_threshold_ms {
                None => None,
                Some(ms) if ms > 0.0 && ms.is_finite() => Some((ms * 1e6).round() as i64),
                Some(ms) => {
                    problems.push(format!(
                        "{at}.spans.latency_threshold_ms {ms} must be a positive number"
                    ));
                    None
                }
            };
            if !spans.errors && latency_threshold.is_none() {
                problems.push(format!(
                    "{at}.spans: with `errors = false`, set latency_threshold_ms (nothing would be bad)"
                ));
            }
            Source::Spans {
                kinds,
                names: spans.names,
                attributes: spans.attributes.into_iter().collect(),
                errors: spans.errors,
                latency_threshold,
            }
        }
        (None, Some(metrics)) => {
            if metrics.total.trim().is_empty() {
                problems.push(format!("{at}.metrics.total must not be empty"));
            }
            let bad = match (metrics.errors, metrics.good, metrics.error_attribute) {
                (Some(errors), None, None) => BadEvents::Errors(errors),
                (None, Some(good), None) => BadEvents::Good(good),
                (None, None, Some(key)) => BadEvents::Attribute {
                    key,
                    prefixes: metrics.error_value_prefixes,
                },
                _ => {
                    problems.push(format!(
                        "{at}.metrics: set exactly one of `errors`, `good` and `error_attribute`"
                    ));
                    return None;
                }
            };
            if let BadEvents::Errors(name) | BadEvents::Good(name) = &bad
                && (name.trim().is_empty() || *name == metrics.total)
            {
                problems.push(format!(
                    "{at}.metrics: the errors / good metric must be named and differ from `total`"
                ));
            }
            Source::Metrics {
                total: metrics.total,
                bad,
                attributes: metrics.attributes.into_iter().collect(),
            }
        }
        _ => {
            problems.push(format!("{at}: set exactly one of `spans` and `metrics`"));
            return None;
        }
    };
    if problems.len() > before {
        return None;
    }
    Some(Slo {
        name: slo.name,
        target: slo.target,
        services: slo.services,
        source,
        windows,
        min_events: slo.min_events,
        resolve_after: i64::from(slo.resolve_after_seconds) * NANOS_PER_SECOND,
    })
}

/// The OTLP number of a span kind name.
fn kind_number(name: &str) -> Option<u8> {
    Some(match name {
        "unspecified" => span_kind::UNSPECIFIED,
        "internal" => span_kind::INTERNAL,
        "server" => span_kind::SERVER,
        "client" => span_kind::CLIENT,
        "producer" => span_kind::PRODUCER,
        "consumer" => span_kind::CONSUMER,
        _ => return None,
    })
}
