//! `threshold`: a detector that alerts when a metric, or the count of matching log records per
//! window, stays beyond a bound (`above` / `below`) for a duration, per series; it resolves when
//! the series is back inside the bound (optionally for `resolve_for_seconds`, and past a
//! `resolve_value` band).
//!
//! - A metric rule watches every series of one metric (name + point attributes + service),
//!   optionally narrowed by attribute matchers; each point is one sample.
//! - A log rule counts the records that match it (severity, body text or pattern) per service
//!   in windows of `window_seconds`; each window's count is one sample, taken at the window's end.
//! - Time is event time (see `clock`): a replayed file gives the same alerts at any speed.
//! - One alert per incident: `Firing` once the breach lasted `for_seconds`, then the same alert
//!   `Resolved`.
//! - `snapshot` / `restore` carry the series across restarts.
//!
//! See the crate's README for the config.

mod bound;
use sluice_sdk::clock;
mod config;
use sluice_sdk::labels::{series_label, service_name, value_text};
use sluice_sdk::registry;
mod series;

use serde::{Deserialize, Serialize};
use sluice_sdk::host::{self, Level};
use sluice_sdk::{Alert, AlertStatus, Detector, LogBatch, MetricBatch, MetricKind, Plugin, Value};

use clock::EventClock;
pub use config::{AlertLevel, Config, LogMatchConfig, RuleConfig, SeverityLevel};
use config::{Rule, Settings, Source};
use registry::{Registry, cut};
use series::Series;

/// Version of the snapshot encoding.
const SNAPSHOT_VERSION: u32 = 1;

/// The detector.
#[derive(Debug)]
pub struct Threshold {
    settings: Settings,
    series: Registry<Series>,
    clock: EventClock,
    /// The earliest event time at which some series has something to do (see `Series::due`).
    next_due: i64,
    /// Counts since the last report to the host.
    counts: Counts,
}

/// Counts reported to the host as counters.
#[derive(Debug, Default)]
struct Counts {
    late: u64,
    evicted: u64,
    refused: u64,
}

/// One metric point, as the rules see it.
#[derive(Debug)]
pub struct Point<'a> {
    /// Metric name.
    pub name: &'a str,
    /// Point time (Unix ns).
    pub time: i64,
    /// The value compared with the bound.
    pub value: f64,
    /// The point's attributes.
    pub attributes: &'a [(&'a str, &'a Value)],
    /// The service.
    pub service: &'a str,
    /// The resource attributes the rules match, as `Settings::resource_keys`.
    pub resource: &'a [Option<&'a Value>],
}

/// One log record, as the rules see it.
#[derive(Debug)]
pub struct Record<'a> {
    /// Record time (Unix ns).
    pub time: i64,
    /// Severity number.
    pub severity: u8,
    /// Body.
    pub body: &'a str,
    /// The service.
    pub service: &'a str,
    /// The resource attributes the rules match, as `Settings::resource_keys`.
    pub resource: &'a [Option<&'a Value>],
}

impl Plugin for Threshold {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        Ok(Threshold {
            settings: Settings::from_config(config)?,
            series: Registry::default(),
            clock: EventClock::default(),
            next_due: i64::MIN,
            counts: Counts::default(),
        })
    }
}

/// Whether the resource matchers of `rule` hold.
fn resource_matches(rule: &Rule, resource: &[Option<&Value>]) -> bool {
    rule.resource.iter().all(|(index, expected)| {
        resource
            .get(*index)
            .copied()
            .flatten()
            .is_some_and(|value| value_text(value) == expected.as_str())
    })
}

impl Threshold {
    /// Takes one metric point.
    pub fn observe_point(&mut self, point: &Point<'_>, alerts: &mut Vec<Alert>) {
        if !point.value.is_finite() || !self.clock.accepts(point.time) {
            self.counts.refused += 1;
            return;
        }
        self.clock.observe(point.time);
        let Threshold {
            settings,
            series: registry,
            counts,
            next_due,
            ..
        } = self;
        let mut label: Option<String> = None;
        for rule in &settings.rules {
            let Source::Metric {
                name, attributes, ..
            } = &rule.source
            else {
                continue;
            };
            if name != point.name
                || !resource_matches(rule, point.resource)
                || !attributes.iter().all(|(key, expected)| {
                    point.attributes.iter().any(|(found, value)| {
                        found == key && value_text(value) == expected.as_str()
                    })
                })
            {
                continue;
            }
            let label = label.get_or_insert_with(|| series_label(point.name, point.attributes));
            let key = Series::key(&rule.name, point.service, label);
            if !registry.contains(&key) {
                forget(registry.shrink_to(settings.max_series - 1), counts, alerts);
            }
            let series = registry.touch(&key, || {
                Series::metric(&rule.name, point.service, cut(point.name, 256), label)
            });
            if !series.point(point.time, point.value, rule, alerts) {
                counts.late += 1;
            }
            *next_due = (*next_due).min(series.due(rule, settings.allowed_lateness));
        }
    }

    /// Takes one log record.
    pub fn observe_record(&mut self, record: &Record<'_>, alerts: &mut Vec<Alert>) {
        if !self.clock.accepts(record.time) {
            self.counts.refused += 1;
            return;
        }
        self.clock.observe(record.time);
        let now = self.clock.now;
        let Threshold {
            settings,
            series: registry,
            counts,
            next_due,
            ..
        } = self;
        for rule in &settings.rules {
            let Source::Logs {
                min_severity,
                body_contains,
                body_regex,
                window,
            } = &rule.source
            else {
                continue;
            };
            if record.severity < *min_severity
                || !resource_matches(rule, record.resource)
                || body_contains
                    .as_deref()
                    .is_some_and(|text| !record.body.contains(text))
                || body_regex
                    .as_ref()
                    .is_some_and(|regex| !regex.is_match(record.body))
            {
                continue;
            }
            let key = Series::key(&rule.name, record.service, "");
            if !registry.contains(&key) {
                forget(registry.shrink_to(settings.max_series - 1), counts, alerts);
            }
            let series = registry.touch(&key, || {
                Series::logs(&rule.name, record.service, *window, record.time)
            });
            // Count the windows that are over first, so few stay open within a long batch.
            if now >= series.due(rule, settings.allowed_lateness) {
                series.advance(now, rule, settings.allowed_lateness, alerts);
            }
            if !series.record(record.time) {
                counts.late += 1;
            }
            *next_due = (*next_due).min(series.due(rule, settings.allowed_lateness));
        }
    }

    /// Moves every series to the event clock, when one has something to do.
    fn advance(&mut self, alerts: &mut Vec<Alert>) {
        let now = self.clock.now;
        if now < self.next_due {
            return;
        }
        let settings = &self.settings;
        let mut next_due = i64::MAX;
        let forgotten = self.series.retain(|_, series| {
            let Some(rule) = settings.rules.iter().find(|rule| rule.name == series.rule) else {
                // Its rule is gone from the config (restored state).
                series.resolve(now, alerts);
                return false;
            };
            let keep = series.advance(now, rule, settings.allowed_lateness, alerts);
            if keep {
                next_due = next_due.min(series.due(rule, settings.allowed_lateness));
            }
            keep
        });
        drop(forgotten);
        self.next_due = next_due;
        // Only needed after restoring state taken with a larger `max_series`.
        let evicted = self.series.shrink_to(self.settings.max_series);
        forget(evicted, &mut self.counts, alerts);
    }

    /// Reports this call's counts to the host.
    fn report(&mut self, alerts: &[Alert]) {
        let fired = alerts
            .iter()
            .filter(|alert| alert.status == AlertStatus::Firing)
            .count() as u64;
        let resolved = alerts.len() as u64 - fired;
        let counts = std::mem::take(&mut self.counts);
        for (name, delta) in [
            ("late_samples", counts.late),
            ("refused_samples", counts.refused),
            ("alerts_fired", fired),
            ("alerts_resolved", resolved),
            ("series_evicted", counts.evicted),
        ] {
            if delta > 0 {
                host::counter_add(name, delta);
            }
        }
        host::gauge_set("series_tracked", self.series.len() as f64);
    }

    /// The resource attribute columns the rules match, fetched once per batch.
    fn resource_columns(
        &self,
        fetch: impl Fn(&str) -> std::rc::Rc<[Option<Value>]>,
    ) -> Vec<std::rc::Rc<[Option<Value>]>> {
        self.settings
            .resource_keys
            .iter()
            .map(|key| fetch(key))
            .collect()
    }
}

/// Resolves the alerts of evicted series.
fn forget(evicted: Vec<(String, Series)>, counts: &mut Counts, alerts: &mut Vec<Alert>) {
    for (key, mut series) in evicted {
        if series.alert.is_some() {
            host::log(
                Level::Warn,
                &format!(
                    "threshold: forgetting series `{}` while its alert fires (max_series \
                     reached); resolving it",
                    key.replace('\u{1f}', " ")
                ),
            );
        }
        let at = series.latest;
        series.resolve(at, alerts);
        counts.evicted += 1;
    }
}

/// The snapshot encoding, for writing.
#[derive(Serialize)]
struct SnapshotOut<'a> {
    version: u32,
    clock: &'a EventClock,
    /// Least recently seen first.
    series: Vec<&'a Series>,
}

/// The snapshot encoding, for reading.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotIn {
    version: u32,
    clock: EventClock,
    series: Vec<Series>,
}

/// Just the version, read when a snapshot does not decode, to report another version as such.
#[derive(Deserialize)]
struct SnapshotVersion {
    version: u32,
}

impl Detector for Threshold {
    fn observe(&mut self, batch: &LogBatch<'_>, alerts: &mut Vec<Alert>) {
        if !self.settings.rules.iter().any(|rule| rule.source.is_logs()) || batch.is_empty() {
            return;
        }
        let first_alert = alerts.len();
        self.series.begin_batch();
        let timestamps = batch.timestamps();
        let observed = batch.observed_timestamps();
        let severities = batch.severity_numbers();
        let bodies = batch.bodies();
        let services = batch.resource_attribute(&self.settings.service_attribute);
        let columns = self.resource_columns(|key| batch.resource_attribute(key));
        let mut resource: Vec<Option<&Value>> = Vec::with_capacity(columns.len());
        for index in 0..batch.len() {
            let timestamp = timestamps.get(index).copied().unwrap_or(0);
            let time = if timestamp > 0 {
                timestamp
            } else {
                observed.get(index).copied().unwrap_or(0)
            };
            resource.clear();
            resource.extend(
                columns
                    .iter()
                    .map(|column| column.get(index).and_then(Option::as_ref)),
            );
            let service = service_name(services.get(index).and_then(Option::as_ref));
            let record = Record {
                time,
                severity: severities.get(index).copied().unwrap_or(0),
                body: bodies.get(index),
                service: &service,
                resource: &resource,
            };
            self.observe_record(&record, alerts);
        }
        self.advance(alerts);
        self.report(&alerts[first_alert..]);
    }

    fn observe_metrics(&mut self, batch: &MetricBatch<'_>, alerts: &mut Vec<Alert>) {
        let names = batch.names();
        // Most points belong to metrics no rule watches: skip the batch, or those points.
        let watched: Vec<bool> = names
            .iter()
            .map(|name| {
                self.settings.rules.iter().any(|rule| {
                    matches!(&rule.source, Source::Metric { name: watched, .. } if watched == name)
                })
            })
            .collect();
        if !watched.contains(&true) {
            return;
        }
        let first_alert = alerts.len();
        self.series.begin_batch();
        let (kinds, timestamps, values, counts) = (
            batch.kinds(),
            batch.timestamps(),
            batch.values(),
            batch.counts(),
        );
        let mut attributes: Vec<Vec<(&str, &Value)>> = vec![Vec::new(); batch.len()];
        for (point, key, value) in batch.attributes().iter() {
            if let Some(list) = attributes
                .get_mut(point as usize)
                .filter(|_| watched[point as usize])
            {
                list.push((key, value));
            }
        }
        let services = batch.resource_attribute(&self.settings.service_attribute);
        let columns = self.resource_columns(|key| batch.resource_attribute(key));
        let mut resource: Vec<Option<&Value>> = Vec::with_capacity(columns.len());
        for (index, name) in names.iter().enumerate() {
            if !watched[index] {
                continue;
            }
            let value = values.get(index).copied().unwrap_or(f64::NAN);
            // Histograms and summaries: the mean of the observations.
            let value = match kinds.get(index) {
                Some(MetricKind::Histogram | MetricKind::Summary) => {
                    match counts.get(index).copied().unwrap_or(0) {
                        0 => continue,
                        count => value / count as f64,
                    }
                }
                _ => value,
            };
            resource.clear();
            resource.extend(
                columns
                    .iter()
                    .map(|column| column.get(index).and_then(Option::as_ref)),
            );
            let service = service_name(services.get(index).and_then(Option::as_ref));
            let point = Point {
                name,
                time: timestamps.get(index).copied().unwrap_or(0),
                value,
                attributes: &attributes[index],
                service: &service,
                resource: &resource,
            };
            self.observe_point(&point, alerts);
        }
        self.advance(alerts);
        self.report(&alerts[first_alert..]);
    }

    fn tick(&mut self, now: i64, alerts: &mut Vec<Alert>) {
        let first_alert = alerts.len();
        self.clock.tick(now);
        self.advance(alerts);
        self.report(&alerts[first_alert..]);
    }

    fn snapshot(&self) -> Vec<u8> {
        let snapshot = SnapshotOut {
            version: SNAPSHOT_VERSION,
            clock: &self.clock,
            series: self
                .series
                .in_recency_order()
                .map(|(_, series)| series)
                .collect(),
        };
        serde_json::to_vec(&snapshot).unwrap_or_else(|error| {
            host::log(
                Level::Error,
                &format!("threshold: cannot encode state: {error}"),
            );
            Vec::new()
        })
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let invalid = |error: &dyn std::fmt::Display| format!("invalid threshold state: {error}");
        let snapshot: SnapshotIn = match serde_json::from_slice(state) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                return Err(match serde_json::from_slice::<SnapshotVersion>(state) {
                    Ok(SnapshotVersion { version }) if version != SNAPSHOT_VERSION => format!(
                        "threshold state has version {version}; this build reads version \
                         {SNAPSHOT_VERSION}"
                    ),
                    _ => invalid(&error),
                });
            }
        };
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(format!(
                "threshold state has version {}; this build reads version {SNAPSHOT_VERSION}",
                snapshot.version
            ));
        }
        snapshot.clock.check().map_err(|error| invalid(&error))?;
        let mut entries = Vec::with_capacity(snapshot.series.len());
        for series in snapshot.series {
            series
                .check()
                .map_err(|error| invalid(&format!("series `{}`: {error}", series.rule)))?;
            if series.latest > snapshot.clock.now {
                return Err(invalid(&"a series is ahead of the clock"));
            }
            entries.push((series.own_key(), series));
        }
        self.series = Registry::from_ordered(entries).map_err(|error| invalid(&error))?;
        self.clock = snapshot.clock;
        // The next advance looks at every series (rules may have changed).
        self.next_due = i64::MIN;
        Ok(())
    }
}

sluice_sdk::export_detector!(Threshold);

#[cfg(test)]
mod tests;
