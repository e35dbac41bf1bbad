//! `error-burst`: a detector that alerts when the number of error records of one service within a
//! sliding window crosses a threshold, and resolves the alert once the errors have stayed below
//! it for a while.
//!
//! - Records at or above `min_severity` count as errors, per service (a resource attribute,
//!   `service.name` by default; `unknown` when absent).
//! - Time is event time: each record counts at its timestamp (its observed timestamp when the
//!   timestamp is 0). The detector keeps an event clock, the newest time of any record; each
//!   service has its own clock, which follows the event clock at the distance its last error
//!   trailed it, so a service whose logs arrive late keeps its own pace. `tick(now)` moves the
//!   event clock on by the wall-clock time elapsed only while no record arrives: an alert
//!   resolves when the stream stops, and a replayed stream gives the same alerts at any speed.
//! - One alert per incident: `Firing` when the count reaches `threshold` (with `starts_at` the
//!   time it did), nothing more while it fires, then the same alert `Resolved` once the count
//!   has stayed below the threshold for `resolve_after_seconds`.
//! - `snapshot` / `restore` carry the windows and the firing alerts across restarts.
//!
//! See the crate's README for the config and the exact window semantics.

mod config;
mod service;
mod window;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_sdk::host::{self, Level};
use sluice_sdk::{Alert, AlertStatus, Detector, LogBatch, Plugin, Value};

pub use config::{AlertLevel, Config, SeverityLevel};
use config::{MAX_WINDOW_SECONDS, NANOS_PER_SECOND, Settings};
use service::Service;

/// A record timestamped further than this ahead of the time the gateway observed it is counted
/// at its observed time, so one bad clock cannot push a service's window into the future.
const MAX_FUTURE_SKEW: i64 = 300 * NANOS_PER_SECOND;

/// Service names longer than this (in bytes) are cut, to bound the state.
const MAX_SERVICE_NAME_BYTES: usize = 256;

/// Service of the records that lack the service attribute.
const UNKNOWN_SERVICE: &str = "unknown";

/// Version of the snapshot encoding. Version 1 (before the tick fields) is still read.
const SNAPSHOT_VERSION: u32 = 2;

/// The detector.
#[derive(Debug)]
pub struct ErrorBurst {
    settings: Settings,
    registry: Registry,
    /// The event clock: the newest time of any record (errors or not), moved on by ticks while
    /// no record arrives.
    latest: i64,
    /// `now` of the previous tick.
    last_tick: Option<i64>,
    /// Whether a record arrived since the previous tick.
    events_since_tick: bool,
}

/// The tracked services and their recency.
#[derive(Debug, Default)]
struct Registry {
    services: BTreeMap<String, Service>,
    /// Service names by `Service::seen`, least recently seen first.
    recency: BTreeMap<u64, String>,
    next_seen: u64,
    /// Services forgotten to make room, since the last report.
    evicted: u64,
}

impl Registry {
    /// The service `name`, created by `create` if new (forgetting the least recently seen
    /// services to make room), and marked as seen unless it was already seen since `seen_from`.
    fn touch(
        &mut self,
        name: &str,
        seen_from: u64,
        max_services: usize,
        create: impl FnOnce() -> Service,
        alerts: &mut Vec<Alert>,
    ) -> &mut Service {
        let seen = self.next_seen;
        if self.services.contains_key(name) {
            let service = self
                .services
                .get_mut(name)
                .expect("the service was just found");
            if service.seen < seen_from {
                self.recency.remove(&service.seen);
                self.recency.insert(seen, name.to_owned());
                service.seen = seen;
                self.next_seen += 1;
            }
            return service;
        }
        self.shrink_to(max_services.saturating_sub(1), alerts);
        let mut service = create();
        service.seen = seen;
        self.next_seen += 1;
        self.recency.insert(seen, name.to_owned());
        self.services.entry(name.to_owned()).or_insert(service)
    }

    /// Forgets the least recently seen services until at most `max` remain.
    fn shrink_to(&mut self, max: usize, alerts: &mut Vec<Alert>) {
        while self.services.len() > max {
            let Some((_, name)) = self.recency.pop_first() else {
                break;
            };
            if let Some(service) = self.services.remove(&name) {
                if service.incident.is_some() {
                    host::log(
                        Level::Warn,
                        &format!(
                            "error-burst: forgetting service `{name}` while its alert fires \
                             (max_services reached); resolving it"
                        ),
                    );
                }
                service.forget(&name, alerts);
                self.evicted += 1;
            }
        }
    }

    /// Drops the services that hold nothing.
    fn remove_idle(&mut self) {
        let idle: Vec<(u64, String)> = self
            .services
            .iter()
            .filter(|(_, service)| service.is_idle())
            .map(|(name, service)| (service.seen, name.clone()))
            .collect();
        for (seen, name) in idle {
            self.services.remove(&name);
            self.recency.remove(&seen);
        }
    }

    /// Rebuilds the recency index from `services`, renumbering in the same order.
    fn from_services(mut services: BTreeMap<String, Service>) -> Self {
        let mut order: Vec<(u64, String)> = services
            .iter()
            .map(|(name, service)| (service.seen, name.clone()))
            .collect();
        order.sort();
        let mut recency = BTreeMap::new();
        for (seen, (_, name)) in order.into_iter().enumerate() {
            let seen = seen as u64;
            if let Some(service) = services.get_mut(&name) {
                service.seen = seen;
            }
            recency.insert(seen, name);
        }
        Registry {
            next_seen: recency.len() as u64,
            services,
            recency,
            evicted: 0,
        }
    }
}

/// The name of the service of a record: the attribute as text, cut to a bounded length.
fn service_name(value: Option<&Value>) -> Cow<'_, str> {
    let name = match value {
        Some(Value::Str(text)) if !text.is_empty() => Cow::Borrowed(text.as_str()),
        Some(Value::Int(number)) => Cow::Owned(number.to_string()),
        Some(Value::Double(number)) => Cow::Owned(number.to_string()),
        Some(Value::Boolean(flag)) => Cow::Owned(flag.to_string()),
        _ => Cow::Borrowed(UNKNOWN_SERVICE),
    };
    if name.len() <= MAX_SERVICE_NAME_BYTES {
        return name;
    }
    let mut end = MAX_SERVICE_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(name[..end].to_owned())
}

/// The time a record counts at: its timestamp, or its observed time when the timestamp is
/// unknown or implausibly far in the future; `None` when it has neither.
fn record_time(timestamp: i64, observed: Option<i64>) -> Option<i64> {
    match observed {
        Some(observed)
            if timestamp <= 0 || timestamp > observed.saturating_add(MAX_FUTURE_SKEW) =>
        {
            Some(observed)
        }
        _ if timestamp > 0 => Some(timestamp),
        _ => None,
    }
}

/// The snapshot encoding, for writing.
#[derive(Serialize)]
struct SnapshotOut<'a> {
    version: u32,
    bucket_seconds: u32,
    latest: i64,
    last_tick: Option<i64>,
    events_since_tick: bool,
    services: &'a BTreeMap<String, Service>,
}

/// The snapshot encoding, for reading.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotIn {
    version: u32,
    bucket_seconds: u32,
    latest: i64,
    /// Absent from version 1.
    #[serde(default)]
    last_tick: Option<i64>,
    /// Absent from version 1.
    #[serde(default)]
    events_since_tick: bool,
    services: BTreeMap<String, Service>,
}

/// Just the version, read when a snapshot does not decode, to report another version as such.
#[derive(Deserialize)]
struct SnapshotVersion {
    version: u32,
}

impl Plugin for ErrorBurst {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        Ok(ErrorBurst {
            settings: Settings::from_config(config)?,
            registry: Registry::default(),
            latest: 0,
            last_tick: None,
            events_since_tick: false,
        })
    }
}

impl ErrorBurst {
    /// Moves each service's clock on with the event clock, keeping the distance by which its
    /// last record trailed it. Buckets expire and alerts resolve at their exact instants.
    fn catch_up(&mut self, alerts: &mut Vec<Alert>) {
        for (name, service) in &mut self.registry.services {
            let to = self.latest.saturating_sub(service.lag);
            service.advance(name, to, &self.settings, alerts);
        }
    }

    /// Reports this call's counts to the host.
    fn report(&mut self, late: u64, alerts: &[Alert]) {
        let fired = alerts
            .iter()
            .filter(|alert| alert.status == AlertStatus::Firing)
            .count() as u64;
        let resolved = alerts.len() as u64 - fired;
        let evicted = std::mem::take(&mut self.registry.evicted);
        for (name, delta) in [
            ("late_records", late),
            ("alerts_fired", fired),
            ("alerts_resolved", resolved),
            ("services_evicted", evicted),
        ] {
            if delta > 0 {
                host::counter_add(name, delta);
            }
        }
        host::gauge_set("services_tracked", self.registry.services.len() as f64);
    }
}

impl Detector for ErrorBurst {
    fn observe(&mut self, batch: &LogBatch<'_>, alerts: &mut Vec<Alert>) {
        let settings = &self.settings;
        let counts_all = settings.counts_all_records();
        let severities = batch.severity_numbers();
        if severities.is_empty() {
            return;
        }
        self.events_since_tick = true;
        let timestamps = batch.timestamps();
        let observed = batch.observed_timestamps();
        let first_alert = alerts.len();
        // Most batches hold no error: then, unless the ratio needs every record, they only move
        // the event clock, and no other column is fetched.
        if !counts_all && !severities.iter().any(|&s| s >= settings.min_severity) {
            for (index, &timestamp) in timestamps.iter().enumerate() {
                let observed = observed.get(index).copied().filter(|&time| time > 0);
                if let Some(time) = record_time(timestamp, observed) {
                    self.latest = self.latest.max(time);
                }
            }
            self.catch_up(alerts);
            self.report(0, &alerts[first_alert..]);
            return;
        }
        let services = batch.resource_attribute(&settings.service_attribute);
        let seen_from = self.registry.next_seen;
        let mut late = 0;
        // The service of the previous record: records of one resource usually come together.
        let mut current: Option<(Cow<'_, str>, &mut Service)> = None;

        for (index, &severity) in severities.iter().enumerate() {
            let observed = observed.get(index).copied().filter(|&time| time > 0);
            let time = record_time(timestamps.get(index).copied().unwrap_or(0), observed);
            if let Some(time) = time {
                self.latest = self.latest.max(time);
            }
            let is_error = severity >= settings.min_severity;
            if !is_error && !counts_all {
                continue;
            }
            let name = service_name(services.get(index).and_then(Option::as_ref));
            // How far this record trails the event clock.
            let lag = time.map_or(0, |time| self.latest - time);
            if !matches!(&current, Some((previous, _)) if *previous == name) {
                let latest = self.latest;
                let service = self.registry.touch(
                    &name,
                    seen_from,
                    settings.max_services,
                    || Service::new(time.unwrap_or(latest), lag, 0),
                    alerts,
                );
                current = Some((name, service));
            }
            let Some((name, service)) = current.as_mut() else {
                unreachable!("the current service was just set");
            };
            // A record without any time counts at the service's clock.
            let time = time.unwrap_or(service.clock);
            if !service.count(name, time, lag, is_error, settings, alerts) {
                late += 1;
            }
        }

        // An alert that fired during this batch reports the count at the end of the batch.
        for alert in &mut alerts[first_alert..] {
            if alert.status != AlertStatus::Firing {
                continue;
            }
            let Some((_, name)) = alert.labels.iter().find(|(key, _)| key == "service") else {
                continue;
            };
            if let Some(service) = self.registry.services.get_mut(name)
                && let Some(text) = service.refresh_summary(name, alert.starts_at, settings)
            {
                alert.summary = text;
            }
        }
        self.catch_up(alerts);
        self.report(late, &alerts[first_alert..]);
    }

    fn tick(&mut self, now: i64, alerts: &mut Vec<Alert>) {
        if now <= 0 {
            return;
        }
        let first_alert = alerts.len();
        // The wall clock moves the event clock only while the stream is quiet, so a replay
        // faster or slower than real time is not disturbed.
        if let Some(previous) = self.last_tick
            && !self.events_since_tick
            && now > previous
        {
            self.latest = self.latest.saturating_add(now - previous);
        }
        self.last_tick = Some(now);
        self.events_since_tick = false;
        self.catch_up(alerts);
        self.registry.remove_idle();
        // Only needed after restoring state taken with a larger `max_services`.
        self.registry.shrink_to(self.settings.max_services, alerts);
        self.report(0, &alerts[first_alert..]);
    }

    fn snapshot(&self) -> Vec<u8> {
        let snapshot = SnapshotOut {
            version: SNAPSHOT_VERSION,
            bucket_seconds: self.settings.geometry.bucket_seconds,
            latest: self.latest,
            last_tick: self.last_tick,
            events_since_tick: self.events_since_tick,
            services: &self.registry.services,
        };
        serde_json::to_vec(&snapshot).unwrap_or_else(|error| {
            host::log(
                Level::Error,
                &format!("error-burst: cannot encode state: {error}"),
            );
            Vec::new()
        })
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let invalid = |error: &dyn std::fmt::Display| format!("invalid error-burst state: {error}");
        let snapshot: SnapshotIn = match serde_json::from_slice(state) {
            Ok(snapshot) => snapshot,
            // Name the version when that is what does not match.
            Err(error) => {
                return Err(match serde_json::from_slice::<SnapshotVersion>(state) {
                    Ok(SnapshotVersion { version })
                        if !(1..=SNAPSHOT_VERSION).contains(&version) =>
                    {
                        format!(
                            "error-burst state has version {version}; this build reads versions \
                         1 to {SNAPSHOT_VERSION}"
                        )
                    }
                    _ => invalid(&error),
                });
            }
        };
        if !(1..=SNAPSHOT_VERSION).contains(&snapshot.version) {
            return Err(format!(
                "error-burst state has version {}; this build reads versions 1 to \
                 {SNAPSHOT_VERSION}",
                snapshot.version
            ));
        }
        if !(1..=MAX_WINDOW_SECONDS).contains(&snapshot.bucket_seconds) {
            return Err(invalid(&format!(
                "bucket_seconds {} is out of range",
                snapshot.bucket_seconds
            )));
        }
        let mut services = snapshot.services;
        let geometry = self.settings.geometry;
        for (name, service) in &mut services {
            service
                .check(snapshot.bucket_seconds, MAX_FUTURE_SKEW)
                .map_err(|error| invalid(&format!("service `{name}`: {error}")))?;
            // The window may have been configured differently when the state was taken.
            service
                .window
                .rebucket(snapshot.bucket_seconds, geometry.bucket_seconds);
            service
                .window
                .drop_before(geometry.first_live_slot(service.clock));
        }
        self.registry = Registry::from_services(services);
        self.latest = snapshot.latest;
        self.last_tick = snapshot.last_tick;
        self.events_since_tick = snapshot.events_since_tick;
        Ok(())
    }
}

sluice_sdk::export_detector!(ErrorBurst);

#[cfg(test)]
mod tests;
