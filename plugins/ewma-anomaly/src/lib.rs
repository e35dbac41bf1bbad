//! `ewma-anomaly`: a detector that keeps an exponentially weighted moving mean and variance per
//! metric series (metric name + point attributes + service) and alerts when the series leaves
//! it: each point's z-score against the baseline before the point; after `warmup_points`, an
//! anomaly that persists `min_duration_seconds` fires `MetricAnomaly`, and `resolve_after_seconds`
//! of normal points resolve it. The baseline is frozen while an anomaly is under way, so a level
//! shift stays anomalous until it ends (or lasts `rebaseline_after_seconds` and becomes the new
//! normal). A single spike shorter than the minimum duration, and slow drift that the baseline
//! follows, raise nothing.
//!
//! Time is event time (see `clock`). See the crate's README for the config.

mod baseline;
use sluice_sdk::clock;
mod config;
use sluice_sdk::labels::{series_label, service_name, value_text};
use sluice_sdk::registry;
mod series;

use serde::{Deserialize, Serialize};
use sluice_sdk::host::{self, Level};
use sluice_sdk::{Alert, AlertStatus, Detector, MetricBatch, MetricKind, Plugin, Value};

use clock::EventClock;
use config::Settings;
pub use config::{AlertLevel, Config, Direction, Temporality};
use registry::{Registry, cut};
pub use series::Reading;
use series::{Series, Taken};

/// Version of the snapshot encoding.
const SNAPSHOT_VERSION: u32 = 1;

/// The detector.
#[derive(Debug)]
pub struct EwmaAnomaly {
    settings: Settings,
    series: Registry<Series>,
    clock: EventClock,
    /// The earliest event time at which some series has something to do (see `Series::due`).
    next_due: i64,
    /// Counts since the last report to the host.
    counts: Counts,
    /// The series key of the point at hand (kept to reuse its allocation).
    key_buffer: String,
}

/// Counts reported to the host as counters.
#[derive(Debug, Default)]
struct Counts {
    late: u64,
    refused: u64,
    evicted: u64,
}

impl Plugin for EwmaAnomaly {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        Ok(EwmaAnomaly {
            settings: Settings::from_config(config)?,
            series: Registry::default(),
            clock: EventClock::default(),
            next_due: i64::MAX,
            counts: Counts::default(),
            key_buffer: String::new(),
        })
    }
}

impl EwmaAnomaly {
    /// Takes one point of the watched metric `name` with `attributes`, of `service`.
    pub fn observe_point(
        &mut self,
        name: &str,
        attributes: &[(&str, &Value)],
        service: &str,
        time: i64,
        reading: Reading,
        alerts: &mut Vec<Alert>,
    ) {
        if !self.clock.accepts(time) {
            self.counts.refused += 1;
            return;
        }
        let matches = self.settings.attributes.iter().all(|(key, expected)| {
            attributes
                .iter()
                .any(|(found, value)| found == key && value_text(value) == expected.as_str())
        });
        if !matches {
            return;
        }
        self.clock.observe(time);
        // The key `service \u{1f} label`, built in a buffer kept across points.
        let mut key = std::mem::take(&mut self.key_buffer);
        key.clear();
        key.push_str(service);
        key.push('\u{1f}');
        if attributes.is_sorted_by_key(|(key, _)| *key) {
            key.push_str(&series_label(name, attributes));
        } else {
            let mut sorted = attributes.to_vec();
            sorted.sort_unstable_by_key(|(key, _)| *key);
            key.push_str(&series_label(name, &sorted));
        }
        if !self.series.contains(&key) {
            let evicted = self.series.shrink_to(self.settings.max_series - 1);
            forget(evicted, &mut self.counts, alerts);
        }
        let label = &key[service.len() + 1..];
        let series = self
            .series
            .touch(&key, || Series::new(service, cut(name, 256), label));
        match series.point(time, reading, &self.settings, alerts) {
            Taken::Late => self.counts.late += 1,
            Taken::Used | Taken::NoValue => {}
        }
        self.next_due = self.next_due.min(series.due(&self.settings));
        self.key_buffer = key;
    }

    /// Moves every series to the event clock, when one has something to do.
    fn advance(&mut self, alerts: &mut Vec<Alert>) {
        let now = self.clock.now;
        if now >= self.next_due {
            let settings = &self.settings;
            let mut next_due = i64::MAX;
            let _ = self.series.retain(|_, series| {
                series.advance(now, settings, alerts);
                next_due = next_due.min(series.due(settings));
                true
            });
            self.next_due = next_due;
        }
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
            ("late_points", counts.late),
            ("refused_points", counts.refused),
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

    /// How a point of `kind` is read.
    fn reading(
        &self,
        kind: MetricKind,
        monotonic: bool,
        value: f64,
        count: u64,
    ) -> Option<Reading> {
        let cumulative = self.settings.temporality == Temporality::Cumulative;
        Some(match kind {
            MetricKind::Gauge => Reading::Value(value),
            MetricKind::Sum if !monotonic => Reading::Value(value),
            MetricKind::Sum if cumulative => Reading::Counter(value),
            MetricKind::Sum => Reading::Value(value),
            _ if cumulative => Reading::Distribution(value, count),
            _ if count == 0 => return None,
            _ => Reading::Value(value / count as f64),
        })
    }
}

/// Resolves the alerts of evicted series.
fn forget(evicted: Vec<(String, Series)>, counts: &mut Counts, alerts: &mut Vec<Alert>) {
    for (_, mut series) in evicted {
        if series.alert.is_some() {
            host::log(
                Level::Warn,
                &format!(
                    "ewma-anomaly: forgetting series `{}` of `{}` while its alert fires \
                     (max_series reached); resolving it",
                    series.series, series.service
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

impl Detector for EwmaAnomaly {
    fn observe_metrics(&mut self, batch: &MetricBatch<'_>, alerts: &mut Vec<Alert>) {
        let names = batch.names();
        let watched: Vec<bool> = names
            .iter()
            .map(|name| self.settings.watches(name))
            .collect();
        if !watched.contains(&true) {
            return;
        }
        let first_alert = alerts.len();
        self.series.begin_batch();
        let (kinds, monotonic, timestamps, values, counts) = (
            batch.kinds(),
            batch.monotonic(),
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
        for list in &mut attributes {
            list.sort_unstable_by_key(|(key, _)| *key);
        }
        let services = batch.resource_attribute(&self.settings.service_attribute);
        for (index, name) in names.iter().enumerate() {
            if !watched[index] {
                continue;
            }
            let Some(reading) = self.reading(
                kinds.get(index).copied().unwrap_or(MetricKind::Gauge),
                monotonic.get(index).copied().unwrap_or(false),
                values.get(index).copied().unwrap_or(f64::NAN),
                counts.get(index).copied().unwrap_or(0),
            ) else {
                continue;
            };
            let service = service_name(services.get(index).and_then(Option::as_ref));
            self.observe_point(
                name,
                &attributes[index],
                &service,
                timestamps.get(index).copied().unwrap_or(0),
                reading,
                alerts,
            );
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
                &format!("ewma-anomaly: cannot encode state: {error}"),
            );
            Vec::new()
        })
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let invalid =
            |error: &dyn std::fmt::Display| format!("invalid ewma-anomaly state: {error}");
        let snapshot: SnapshotIn = match serde_json::from_slice(state) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                return Err(match serde_json::from_slice::<SnapshotVersion>(state) {
                    Ok(SnapshotVersion { version }) if version != SNAPSHOT_VERSION => format!(
                        "ewma-anomaly state has version {version}; this build reads version \
                         {SNAPSHOT_VERSION}"
                    ),
                    _ => invalid(&error),
                });
            }
        };
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(format!(
                "ewma-anomaly state has version {}; this build reads version {SNAPSHOT_VERSION}",
                snapshot.version
            ));
        }
        snapshot.clock.check().map_err(|error| invalid(&error))?;
        let mut entries = Vec::with_capacity(snapshot.series.len());
        for series in snapshot.series {
            series
                .check()
                .map_err(|error| invalid(&format!("series `{}`: {error}", series.series)))?;
            if series.latest > snapshot.clock.now {
                return Err(invalid(&"a series is ahead of the clock"));
            }
            entries.push((format!("{}\u{1f}{}", series.service, series.series), series));
        }
        self.series = Registry::from_ordered(entries).map_err(|error| invalid(&error))?;
        self.clock = snapshot.clock;
        self.next_due = i64::MIN;
        Ok(())
    }
}

sluice_sdk::export_detector!(EwmaAnomaly);

#[cfg(test)]
mod tests;
