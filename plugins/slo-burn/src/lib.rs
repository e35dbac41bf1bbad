//! `slo-burn`: multi-window, multi-burn-rate error-budget alerts (Google SRE workbook, ch. 5
//! "Alerting on SLOs"). For each SLO and service it counts good and bad events in time buckets
//! (1 minute by default) and, at each bucket boundary, compares the burn rate (the error ratio
//! over the error budget `1 − target`) over each pair of windows with the pair's threshold: by
//! default 14.4 over both 1 h and 5 m pages (critical), 6 over both 6 h and 30 m opens a ticket
//! (warning). An alert resolves when its short window's burn rate is back at or below the
//! threshold, which the short window makes quick.
//!
//! Events come from request spans (server spans by default; bad = status ERROR, and optionally
//! slower than a latency bound) or from counters (a total and an errors or good counter, or a
//! total whose points carry an error attribute; cumulative counters are turned into increases,
//! across resets).
//!
//! Time is event time (see `clock`). See the crate's README for the config.

mod budget;
use sluice_sdk::clock;
mod config;
use sluice_sdk::labels::{series_label, service_name, value_text};
use sluice_sdk::registry;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sluice_sdk::host::{self, Level};
use sluice_sdk::{
    Alert, AlertStatus, Detector, MetricBatch, MetricKind, Plugin, SpanBatch, Value, status_code,
};

use budget::{Budget, Counts, Exact};
use clock::EventClock;
pub use config::{
    AlertLevel, Config, MetricSource, SloConfig, SpanSource, Temporality, WindowConfig,
};
use config::{BadEvents, Settings, Source};
use registry::{MAX_KEY_BYTES, Registry, cut};

/// Version of the snapshot encoding.
const SNAPSHOT_VERSION: u32 = 1;

/// The detector.
#[derive(Debug)]
pub struct SloBurn {
    settings: Settings,
    budgets: Registry<Budget>,
    /// Cumulative counters: their last reading, by metric + service + attributes.
    counters: Registry<Counter>,
    clock: EventClock,
    /// The earliest event time at which some budget has a boundary to evaluate.
    next_due: i64,
    /// Counts since the last report to the host.
    counts: Tally,
}

/// The last reading of a cumulative counter.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Counter {
    time: i64,
    value: Exact,
}

/// Counts reported to the host as counters.
#[derive(Debug, Default)]
struct Tally {
    late: u64,
    refused: u64,
    evicted: u64,
    counter_resets: u64,
}

impl Plugin for SloBurn {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        Ok(SloBurn {
            settings: Settings::from_config(config)?,
            budgets: Registry::default(),
            counters: Registry::default(),
            clock: EventClock::default(),
            next_due: i64::MAX,
            counts: Tally::default(),
        })
    }
}

/// Whether every `(key, value)` matcher holds in `attributes`.
fn attributes_match(matchers: &[(String, String)], attributes: &[(&str, &Value)]) -> bool {
    matchers.iter().all(|(key, expected)| {
        attributes
            .iter()
            .any(|(found, value)| found == key && value_text(value) == expected.as_str())
    })
}

impl SloBurn {
    /// Counts events of `slo` for `service` at `time`.
    fn count(
        &mut self,
        slo: usize,
        service: &str,
        time: i64,
        counts: Counts,
        alerts: &mut Vec<Alert>,
    ) {
        let slo = &self.settings.slos[slo];
        let key = format!("{}\u{1f}{service}", slo.name);
        if !self.budgets.contains(&key) {
            let evicted = self.budgets.shrink_to(self.settings.max_series - 1);
            forget(evicted, self.clock.now, &mut self.counts, alerts);
        }
        let width = self.settings.bucket;
        let budget = self
            .budgets
            .touch(&key, || Budget::new(&slo.name, service, width, time));
        if !budget.add(time, counts, slo) {
            self.counts.late += 1;
        }
        self.next_due = self
            .next_due
            .min(budget.due(self.settings.allowed_lateness));
    }

    /// The increase of the counter `name` of `service` with `attributes` to `value` at `time`:
    /// `None` for its first reading (or one not newer than the last); after a reset (a lower
    /// value) the new value itself.
    fn increase(
        &mut self,
        name: &str,
        service: &str,
        attributes: &[(&str, &Value)],
        time: i64,
        value: f64,
    ) -> Option<f64> {
        if self.settings.temporality == Temporality::Delta {
            return Some(value);
        }
        let mut key = series_label(name, attributes);
        key.push('\u{1f}');
        key.push_str(service);
        let key = cut(&key, MAX_KEY_BYTES);
        if !self.counters.contains(key) {
            let evicted = self.counters.shrink_to(self.settings.max_counters - 1);
            self.counts.evicted += evicted.len() as u64;
        }
        let mut first = false;
        let counter = self.counters.touch(key, || {
            first = true;
            Counter {
                time,
                value: Exact(value),
            }
        });
        if first {
            return None;
        }
        if time <= counter.time {
            self.counts.late += 1;
            return None;
        }
        let previous = counter.value.0;
        *counter = Counter {
            time,
            value: Exact(value),
        };
        if value < previous {
            self.counts.counter_resets += 1;
            return Some(value);
        }
        Some(value - previous)
    }

    /// Moves every budget to the event clock, when one has a boundary due.
    fn advance(&mut self, alerts: &mut Vec<Alert>) {
        let now = self.clock.now;
        if now >= self.next_due {
            let settings = &self.settings;
            let mut next_due = i64::MAX;
            let _ = self.budgets.retain(|_, budget| {
                let Some(slo) = settings.slo(&budget.slo) else {
                    // Its SLO is gone from the config (restored state).
                    budget.resolve_all(now, alerts);
                    return false;
                };
                if budget.width != settings.bucket {
                    // Restored under another bucket width: count afresh from the clock; a
                    // firing alert resolves at the next boundary (its short window is empty).
                    let firing = std::mem::take(&mut budget.alerts);
                    *budget = Budget::new(&budget.slo, &budget.service, settings.bucket, now);
                    budget.alerts = firing;
                }
                budget.advance(
                    now,
                    settings.allowed_lateness,
                    slo,
                    &settings.alert_name,
                    alerts,
                );
                if budget.is_idle() {
                    return false;
                }
                next_due = next_due.min(budget.due(settings.allowed_lateness));
                true
            });
            self.next_due = next_due;
        }
        // Only needed after restoring state taken with a larger bound.
        let evicted = self.budgets.shrink_to(self.settings.max_series);
        forget(evicted, now, &mut self.counts, alerts);
        let evicted = self.counters.shrink_to(self.settings.max_counters);
        self.counts.evicted += evicted.len() as u64;
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
            ("late_events", counts.late),
            ("refused_events", counts.refused),
            ("counter_resets", counts.counter_resets),
            ("alerts_fired", fired),
            ("alerts_resolved", resolved),
            ("series_evicted", counts.evicted),
        ] {
            if delta > 0 {
                host::counter_add(name, delta);
            }
        }
        host::gauge_set("series_tracked", self.budgets.len() as f64);
    }
}

/// Resolves the alerts of evicted budgets.
fn forget(evicted: Vec<(String, Budget)>, now: i64, counts: &mut Tally, alerts: &mut Vec<Alert>) {
    for (_, mut budget) in evicted {
        if !budget.alerts.is_empty() {
            host::log(
                Level::Warn,
                &format!(
                    "slo-burn: forgetting SLO `{}` of `{}` while its alert fires (max_series \
                     reached); resolving it",
                    budget.slo, budget.service
                ),
            );
        }
        budget.resolve_all(now, alerts);
        counts.evicted += 1;
    }
}

/// The snapshot encoding, for writing.
#[derive(Serialize)]
struct SnapshotOut<'a> {
    version: u32,
    clock: &'a EventClock,
    /// Least recently seen first.
    budgets: Vec<&'a Budget>,
    /// `[key, counter]`, least recently seen first.
    counters: Vec<(&'a str, &'a Counter)>,
}

/// The snapshot encoding, for reading.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotIn {
    version: u32,
    clock: EventClock,
    budgets: Vec<Budget>,
    counters: Vec<(String, Counter)>,
}

/// Just the version, read when a snapshot does not decode, to report another version as such.
#[derive(Deserialize)]
struct SnapshotVersion {
    version: u32,
}

impl Detector for SloBurn {
    fn observe_spans(&mut self, batch: &SpanBatch<'_>, alerts: &mut Vec<Alert>) {
        if !self.settings.reads_spans() || batch.is_empty() {
            return;
        }
        let first_alert = alerts.len();
        self.budgets.begin_batch();
        self.counters.begin_batch();
        let (kinds, starts, ends, statuses, names) = (
            batch.kinds(),
            batch.start_timestamps(),
            batch.end_timestamps(),
            batch.status_codes(),
            batch.names(),
        );
        let services = batch.resource_attribute(&self.settings.service_attribute);
        // The span attributes the SLOs match, one column per key.
        let mut keys: Vec<&str> = Vec::new();
        for slo in &self.settings.slos {
            if let Source::Spans { attributes, .. } = &slo.source {
                keys.extend(attributes.iter().map(|(key, _)| key.as_str()));
            }
        }
        keys.sort_unstable();
        keys.dedup();
        let columns: Vec<(String, sluice_sdk::AttributeColumn)> = keys
            .iter()
            .map(|key| ((*key).to_owned(), batch.attribute(key)))
            .collect();
        let mut matched: Vec<(usize, Counts)> = Vec::new();
        // Spans of one service and minute usually come together: their counts are added up
        // before they go to the budget, one budget lookup per run (slo, service, slot, time).
        let mut runs: Vec<(usize, Cow<'_, str>, i64, i64, Counts)> = Vec::new();
        let width = self.settings.bucket;
        for index in 0..batch.len() {
            let kind = kinds.get(index).copied().unwrap_or(0);
            let end = ends.get(index).copied().unwrap_or(0);
            let start = starts.get(index).copied().unwrap_or(0);
            let time = if end > 0 { end } else { start };
            let service = service_name(services.get(index).and_then(Option::as_ref));
            matched.clear();
            for (number, slo) in self.settings.slos.iter().enumerate() {
                let Source::Spans {
                    kinds: wanted,
                    names: wanted_names,
                    attributes,
                    errors,
                    latency_threshold,
                } = &slo.source
                else {
                    continue;
                };
                if !wanted.contains(&kind)
                    || !slo.covers(&service)
                    || (!wanted_names.is_empty()
                        && !wanted_names.iter().any(|name| name == names.get(index)))
                    || !attributes.iter().all(|(key, expected)| {
                        columns
                            .iter()
                            .find(|(column, _)| column == key)
                            .and_then(|(_, column)| column.get(index).and_then(Option::as_ref))
                            .is_some_and(|value| value_text(value) == expected.as_str())
                    })
                {
                    continue;
                }
                let failed = *errors && statuses.get(index) == Some(&status_code::ERROR);
                let slow = latency_threshold.is_some_and(|bound| end.saturating_sub(start) > bound);
                let bad = if failed || slow { 1.0 } else { 0.0 };
                matched.push((
                    number,
                    Counts {
                        total: 1.0,
                        bad,
                        good: 1.0 - bad,
                    },
                ));
            }
            if matched.is_empty() {
                continue;
            }
            if !self.clock.accepts(time) {
                self.counts.refused += 1;
                continue;
            }
            self.clock.observe(time);
            let slot = time.div_euclid(width);
            for &(slo, counts) in &matched {
                match runs.iter_mut().find(|run| run.0 == slo) {
                    Some(run) if run.1 == service && run.2 == slot => {
                        run.4.total += counts.total;
                        run.4.bad += counts.bad;
                        run.4.good += counts.good;
                    }
                    Some(run) => {
                        let (_, previous, _, at, sum) =
                            std::mem::replace(run, (slo, service.clone(), slot, time, counts));
                        self.count(slo, &previous, at, sum, alerts);
                    }
                    None => runs.push((slo, service.clone(), slot, time, counts)),
                }
            }
        }
        for (slo, service, _, time, counts) in runs {
            self.count(slo, &service, time, counts, alerts);
        }
        self.advance(alerts);
        self.report(&alerts[first_alert..]);
    }

    fn observe_metrics(&mut self, batch: &MetricBatch<'_>, alerts: &mut Vec<Alert>) {
        let names = batch.names();
        let watched: Vec<bool> = names
            .iter()
            .map(|name| {
                self.settings.slos.iter().any(|slo| match &slo.source {
                    Source::Metrics { total, bad, .. } => {
                        total == name
                            || matches!(bad, BadEvents::Errors(metric) | BadEvents::Good(metric) if metric == name)
                    }
                    Source::Spans { .. } => false,
                })
            })
            .collect();
        if !watched.contains(&true) {
            return;
        }
        let first_alert = alerts.len();
        self.budgets.begin_batch();
        self.counters.begin_batch();
        let (kinds, timestamps, values, point_counts) = (
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
        for (index, name) in names.iter().enumerate() {
            if !watched[index] {
                continue;
            }
            // Sums count by their value, histograms and summaries by their count of observations.
            let value = match kinds.get(index) {
                Some(MetricKind::Sum) => values.get(index).copied().unwrap_or(f64::NAN),
                Some(MetricKind::Histogram | MetricKind::Summary) => {
                    point_counts.get(index).copied().unwrap_or(0) as f64
                }
                _ => continue,
            };
            let time = timestamps.get(index).copied().unwrap_or(0);
            if !value.is_finite() || value < 0.0 || !self.clock.accepts(time) {
                self.counts.refused += 1;
                continue;
            }
            let service = service_name(services.get(index).and_then(Option::as_ref));
            let point_attributes = &attributes[index];
            // What this point counts for each SLO it feeds.
            let mut roles: Vec<(usize, Counts)> = Vec::new();
            for (number, slo) in self.settings.slos.iter().enumerate() {
                let Source::Metrics {
                    total,
                    bad,
                    attributes: matchers,
                } = &slo.source
                else {
                    continue;
                };
                if !slo.covers(&service) || !attributes_match(matchers, point_attributes) {
                    continue;
                }
                let is_total = total == name;
                let (mut counts, mut matched) = (Counts::default(), is_total);
                match bad {
                    BadEvents::Errors(metric) if metric == name => {
                        counts.bad = 1.0;
                        matched = true;
                    }
                    BadEvents::Good(metric) if metric == name => {
                        counts.good = 1.0;
                        matched = true;
                    }
                    BadEvents::Attribute { key, prefixes } if is_total => {
                        let marked = point_attributes.iter().any(|(found, value)| {
                            *found == key.as_str() && {
                                let text = value_text(value);
                                !text.is_empty()
                                    && (prefixes.is_empty()
                                        || prefixes
                                            .iter()
                                            .any(|prefix| text.starts_with(prefix.as_str())))
                            }
                        });
                        counts.bad = f64::from(u8::from(marked));
                    }
                    _ => {}
                }
                if !matched {
                    continue;
                }
                counts.total = f64::from(u8::from(is_total));
                roles.push((number, counts));
            }
            if roles.is_empty() {
                continue;
            }
            self.clock.observe(time);
            let Some(increase) = self.increase(name, &service, point_attributes, time, value)
            else {
                continue;
            };
            for (slo, role) in roles {
                let counts = Counts {
                    total: role.total * increase,
                    bad: role.bad * increase,
                    good: role.good * increase,
                };
                self.count(slo, &service, time, counts, alerts);
            }
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
            budgets: self
                .budgets
                .in_recency_order()
                .map(|(_, budget)| budget)
                .collect(),
            counters: self.counters.in_recency_order().collect(),
        };
        serde_json::to_vec(&snapshot).unwrap_or_else(|error| {
            host::log(
                Level::Error,
                &format!("slo-burn: cannot encode state: {error}"),
            );
            Vec::new()
        })
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let invalid = |error: &dyn std::fmt::Display| format!("invalid slo-burn state: {error}");
        let snapshot: SnapshotIn = match serde_json::from_slice(state) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                return Err(match serde_json::from_slice::<SnapshotVersion>(state) {
                    Ok(SnapshotVersion { version }) if version != SNAPSHOT_VERSION => format!(
                        "slo-burn state has version {version}; this build reads version \
                         {SNAPSHOT_VERSION}"
                    ),
                    _ => invalid(&error),
                });
            }
        };
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(format!(
                "slo-burn state has version {}; this build reads version {SNAPSHOT_VERSION}",
                snapshot.version
            ));
        }
        snapshot.clock.check().map_err(|error| invalid(&error))?;
        let mut budgets = Vec::with_capacity(snapshot.budgets.len());
        for budget in snapshot.budgets {
            budget.check().map_err(|error| {
                invalid(&format!(
                    "SLO `{}` of `{}`: {error}",
                    budget.slo, budget.service
                ))
            })?;
            budgets.push((format!("{}\u{1f}{}", budget.slo, budget.service), budget));
        }
        if snapshot
            .counters
            .iter()
            .any(|(_, counter)| counter.time > snapshot.clock.now)
        {
            return Err(invalid(&"a counter is ahead of the clock"));
        }
        let budgets = Registry::from_ordered(budgets).map_err(|error| invalid(&error))?;
        let counters =
            Registry::from_ordered(snapshot.counters).map_err(|error| invalid(&error))?;
        self.budgets = budgets;
        self.counters = counters;
        self.clock = snapshot.clock;
        self.next_due = i64::MIN;
        Ok(())
    }
}

sluice_sdk::export_detector!(SloBurn);

#[cfg(test)]
mod tests;
