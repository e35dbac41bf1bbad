//! `[pipelines.NAME]`: which receivers feed a pipeline, its stages, and where its output goes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::GatewayConfig;
use crate::model::Signal;

/// One pipeline.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Receivers whose batches enter this pipeline.
    pub receivers: Vec<String>,
    /// Signals taken from those receivers. Default: all three.
    #[serde(default = "all_signals")]
    pub signals: Vec<Signal>,
    /// Plugins in the order records meet them: at most one parser first, then filters, then
    /// detectors. Parsers and filters apply to logs; detectors also see metrics and spans.
    #[serde(default)]
    pub stages: Vec<String>,
    /// Sinks that receive everything the pipeline outputs (a route without conditions).
    #[serde(default)]
    pub sinks: Vec<String>,
    /// Conditional routes, each to its own sinks; a record goes to every route it matches.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Sinks that receive the alerts of this pipeline's detectors and plugin faults.
    #[serde(default)]
    pub alerts: Vec<String>,
    /// Sink for batches a plugin faulted on under `on_error = "dead-letter"`.
    #[serde(default)]
    pub dead_letter: Option<String>,
    /// How often the detectors' state is checkpointed to the buffer directory, so their windows
    /// survive a restart or a crash. Default `"5s"`.
    #[serde(
        default = "default_checkpoint_interval",
        deserialize_with = "super::deserialize_duration"
    )]
    pub checkpoint_interval: Duration,
    /// How often detectors get a clock tick (windows close while no data comes). Default `"1s"`.
    #[serde(
        default = "default_tick_interval",
        deserialize_with = "super::deserialize_duration"
    )]
    pub tick_interval: Duration,
}

fn default_checkpoint_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_tick_interval() -> Duration {
    Duration::from_secs(1)
}

/// A route: records that match every condition go to `sinks`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Where matching records go.
    pub sinks: Vec<String>,
    /// Signals the route takes. Default: all.
    #[serde(default)]
    pub signals: Vec<Signal>,
    /// Logs only: the minimum severity (`trace`, `debug`, `info`, `warn`, `error`, `fatal`, or an
    /// OpenTelemetry severity number 1–24).
    #[serde(default)]
    pub min_severity: Option<String>,
    /// Resource attributes that must have these values (compared as text).
    #[serde(default)]
    pub resource: BTreeMap<String, String>,
    /// Record attributes (log records, spans, metric points) that must have these values
    /// (compared as text).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

fn all_signals() -> Vec<Signal> {
    vec![Signal::Logs, Signal::Metrics, Signal::Traces]
}

/// An OpenTelemetry severity number from a name (`warn`, `ERROR`, …) or a number 1–24.
pub fn severity_from_name(name: &str) -> Option<u8> {
    let number = match name.trim().to_ascii_lowercase().as_str() {
        "trace" => 1,
        "debug" => 5,
        "info" => 9,
        "warn" | "warning" => 13,
        "error" => 17,
        "fatal" | "critical" => 21,
        other => other.parse().ok()?,
    };
    (1..=24).contains(&number).then_some(number)
}

impl PipelineConfig {
    /// Every sink that takes records from this pipeline (its sinks, its routes' sinks, its
    /// dead-letter sink), each once, in that order.
    pub fn record_sinks(&self) -> Vec<&str> {
        let mut sinks: Vec<&str> = Vec::new();
        let named = self
            .sinks
            .iter()
            .chain(self.routes.iter().flat_map(|route| &route.sinks))
            .chain(&self.dead_letter);
        for sink in named {
            if !sinks.contains(&sink.as_str()) {
                sinks.push(sink);
            }
        }
        sinks
    }

    /// Checks references to receivers, plugins and sinks, pushing problems prefixed with `at`.
    pub(super) fn check(&self, at: &str, config: &GatewayConfig, problems: &mut Vec<String>) {
        if self.receivers.is_empty() {
            problems.push(format!("{at}.receivers: names no receiver"));
        }
        for (index, name) in self.receivers.iter().enumerate() {
            let Some(receiver) = config.receivers.get(name) else {
                problems.push(format!(
                    "{at}.receivers[{index}]: unknown receiver `{name}` (no [receivers.{name}])"
                ));
                continue;
            };
            if !receiver
                .signals()
                .iter()
                .any(|signal| self.signals.contains(signal))
            {
                problems.push(format!(
                    "{at}.receivers[{index}]: receiver `{name}` produces none of this pipeline's signals"
                ));
            }
        }
        for (index, name) in self.stages.iter().enumerate() {
            if !config.plugins.contains_key(name) {
                problems.push(format!(
                    "{at}.stages[{index}]: unknown plugin `{name}` (no [plugins.{name}])"
                ));
            }
        }
        for (field, interval) in [
            ("checkpoint_interval", self.checkpoint_interval),
            ("tick_interval", self.tick_interval),
        ] {
            if interval.is_zero() {
                problems.push(format!("{at}.{field}: must be longer than zero"));
            }
        }
        if self.sinks.is_empty() && self.routes.is_empty() {
            problems.push(format!(
                "{at}: no `sinks` and no `routes`: its output would go nowhere"
            ));
        }
        check_record_sinks(&format!("{at}.sinks"), &self.sinks, config, problems);
        for (index, route) in self.routes.iter().enumerate() {
            let at = format!("{at}.routes[{index}]");
            if route.sinks.is_empty() {
                problems.push(format!("{at}.sinks: names no sink"));
            }
            check_record_sinks(&format!("{at}.sinks"), &route.sinks, config, problems);
            if let Some(name) = &route.min_severity
                && severity_from_name(name).is_none()
            {
                problems.push(format!(
                    "{at}.min_severity: `{name}` is not a severity (trace, debug, info, warn, error, fatal or 1-24)"
                ));
            }
            for signal in &route.signals {
                if !self.signals.contains(signal) {
                    problems.push(format!(
                        "{at}.signals: `{signal}` is not one of the pipeline's signals"
                    ));
                }
            }
        }
        for (index, name) in self.alerts.iter().enumerate() {
            match config.sinks.get(name) {
                None => problems.push(format!(
                    "{at}.alerts[{index}]: unknown sink `{name}` (no [sinks.{name}])"
                )),
                Some(sink) if !sink.accepts().alerts => problems.push(format!(
                    "{at}.alerts[{index}]: sink `{name}` does not take alerts"
                )),
                Some(_) => {}
            }
        }
        if let Some(name) = &self.dead_letter {
            match config.sinks.get(name) {
                None => problems.push(format!(
                    "{at}.dead_letter: unknown sink `{name}` (no [sinks.{name}])"
                )),
                Some(sink) if !sink.accepts().records => problems.push(format!(
                    "{at}.dead_letter: sink `{name}` does not take records"
                )),
                Some(_) => {}
            }
        }
    }
}

fn check_record_sinks(
    at: &str,
    sinks: &[String],
    config: &GatewayConfig,
    problems: &mut Vec<String>,
) {
    for (index, name) in sinks.iter().enumerate() {
        match config.sinks.get(name) {
            None => problems.push(format!(
                "{at}[{index}]: unknown sink `{name}` (no [sinks.{name}])"
            )),
            Some(sink) if !sink.accepts().records => problems.push(format!(
                "{at}[{index}]: sink `{name}` takes only alerts; list it under `alerts`"
            )),
            Some(_) => {}
        }
    }
}
