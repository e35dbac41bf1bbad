//! `log-novelty`: a detector that mines log templates online with Drain, per service, and
//! alerts on what the templates reveal:
//!
//! - `LogNovelty`: a template never seen before appears in a record of warning-or-worse
//!   severity, after the service's learning period (the "innocent-looking precursor": a new
//!   kind of warning that precedes an outage). It resolves once the template has been quiet
//!   for `resolve_after_seconds`.
//! - `LogTemplateBurst`: a known template that is rare over its history (at most
//!   `rare_max_per_hour`) occurs `burst_count` times within `burst_window_seconds`. It resolves
//!   when the count in the window drops below `burst_count`.
//!
//! Time is event time: a global clock at the newest record timestamp, which a `tick` moves on
//! by the wall-clock time elapsed only while no record arrives, so a replay gives the same
//! alerts at any speed and alerts still resolve when a live stream stops.
//!
//! Modules: `mask` turns a body into tokens, `drain` keeps the templates of one service,
//! `activity` the counts and alerts of one template; this file ties them to the services and
//! the plugin contract. See the crate's README for the config and the exact semantics.

mod activity;
mod config;
mod drain;
mod mask;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sluice_sdk::host::{self, Level};
use sluice_sdk::{Alert, AlertStatus, Detector, LogBatch, Plugin, Value};

use activity::Incident;
pub use config::{AlertLevel, Config, SeverityLevel};
use config::{NANOS_PER_HOUR, NANOS_PER_SECOND, Settings};
use drain::{Cluster, Drain, DrainState, LEVEL_NAMES, level_of};
use mask::Tokenizer;

/// Name of the alert on a new template.
pub const NOVELTY_ALERT: &str = "LogNovelty";

/// Name of the alert on a burst of a rare template.
pub const BURST_ALERT: &str = "LogTemplateBurst";

/// A record timestamped further than this ahead of the time the gateway observed it counts at
/// its observed time, so one bad clock cannot push the event clock into the future.
const MAX_FUTURE_SKEW: i64 = 300 * NANOS_PER_SECOND;

/// Service names longer than this (in bytes) are cut, to bound the state.
const MAX_SERVICE_NAME_BYTES: usize = 256;

/// Example lines in summaries are cut to this many bytes.
const MAX_EXAMPLE_BYTES: usize = 200;

/// Service of the records that lack the service attribute.
const UNKNOWN_SERVICE: &str = "unknown";

/// Version of the snapshot encoding.
const SNAPSHOT_VERSION: u32 = 1;

/// The detector.
#[derive(Debug)]
pub struct LogNovelty {
    settings: Settings,
    registry: Registry,
    /// Event clock: the newest record time, moved on by ticks while no record arrives.
    clock: i64,
    /// `now` of the previous tick.
    last_tick: Option<i64>,
    /// Whether a record arrived since the previous tick.
    events_since_tick: bool,
    /// Scratch buffers, not state.
    tokenizer: Tokenizer,
    /// Counts since the last report to the host.
    counts: Counts,
}

/// Counts reported to the host after each call.
#[derive(Debug, Default)]
struct Counts {
    templates_created: u64,
    templates_evicted: u64,
    services_evicted: u64,
    empty_records: u64,
}

/// The templates of one service.
#[derive(Debug)]
struct Service {
    /// Event time of the service's first record.
    first_seen: i64,
    /// End of its learning period.
    learn_until: i64,
    /// When the service was last seen, as a sequence number (for least-recently-seen eviction).
    seen: u64,
    drain: Drain,
    /// Clusters with an alert firing (derived from `drain`, not encoded).
    active: BTreeSet<u64>,
}

/// The tracked services and their recency.
#[derive(Debug, Default)]
struct Registry {
    services: BTreeMap<String, Service>,
    /// Service names by `Service::seen`, least recently seen first.
    recency: BTreeMap<u64, String>,
    next_seen: u64,
}

/// Where the detector's output goes while it handles a call.
struct Output<'a> {
    alerts: &'a mut Vec<Alert>,
    counts: &'a mut Counts,
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
        mut forget: impl FnMut(&str, Service),
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
        self.shrink_to(max_services.saturating_sub(1), &mut forget);
        let mut service = create();
        service.seen = seen;
        self.next_seen += 1;
        self.recency.insert(seen, name.to_owned());
        self.services.entry(name.to_owned()).or_insert(service)
    }

    /// Forgets the least recently seen services until at most `max` remain.
    fn shrink_to(&mut self, max: usize, forget: &mut impl FnMut(&str, Service)) {
        while self.services.len() > max {
            let Some((_, name)) = self.recency.pop_first() else {
                break;
            };
            if let Some(service) = self.services.remove(&name) {
                forget(&name, service);
            }
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
    match name {
        Cow::Borrowed(text) => Cow::Borrowed(mask::cut(text, MAX_SERVICE_NAME_BYTES)),
        Cow::Owned(text) => Cow::Owned(mask::cut(&text, MAX_SERVICE_NAME_BYTES).to_owned()),
    }
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

/// A template id as the `template_id` label shows it: 16 hex digits.
fn id_text(template_id: u64) -> String {
    format!("{template_id:016x}")
}

/// Resolves what is due for a template of `service` at event time `clock`; returns whether an
/// alert still fires.
fn resolve_due(
    service: &str,
    cluster: &mut Cluster,
    clock: i64,
    settings: &Settings,
    out: &mut Output<'_>,
) -> bool {
    let template_id = cluster.template_id;
    let activity = &mut cluster.activity;
    if let Some(due) = activity.novelty_due(settings.resolve_after)
        && due <= clock
        && let Some(incident) = activity.novelty.take()
    {
        let alert = incident.alert(NOVELTY_ALERT, service, &id_text(template_id));
        out.alerts.push(alert.resolved(due));
    }
    if let Some(due) = activity.burst_due(settings.burst_window)
        && due <= clock
        && let Some(incident) = activity.burst.take()
    {
        let alert = incident.alert(BURST_ALERT, service, &id_text(template_id));
        out.alerts.push(alert.resolved(due));
    }
    activity.is_active()
}

/// Resolves the alerts of a template that is forgotten, at the time they were due or at
/// `clock`, whichever is first: nothing will watch it any more.
fn retire(service: &str, mut cluster: Cluster, clock: i64, settings: &Settings, out: &mut Output) {
    let activity = &mut cluster.activity;
    let template_id = id_text(cluster.template_id);
    let novelty_due = activity.novelty_due(settings.resolve_after);
    let burst_due = activity.burst_due(settings.burst_window);
    for (name, incident, due) in [
        (NOVELTY_ALERT, activity.novelty.take(), novelty_due),
        (BURST_ALERT, activity.burst.take(), burst_due),
    ] {
        if let Some(incident) = incident {
            let ends_at = due.unwrap_or(clock).min(clock).max(incident.starts_at);
            let alert = incident.alert(name, service, &template_id);
            out.alerts.push(alert.resolved(ends_at));
        }
    }
}

/// Forgets a whole service.
fn retire_service(name: &str, service: Service, clock: i64, settings: &Settings, out: &mut Output) {
    if !service.active.is_empty() {
        host::log(
            Level::Warn,
            &format!(
                "log-novelty: forgetting service `{name}` while {} of its alerts fire \
                 (max_services reached); resolving them",
                service.active.len()
            ),
        );
    }
    let mut drain = service.drain;
    let mut evicted = Vec::new();
    drain.shrink_to(0, &mut evicted);
    for (_, cluster) in evicted {
        retire(name, cluster, clock, settings, out);
    }
    out.counts.services_evicted += 1;
}

/// A template's text and an example line, for summaries.
fn describe(cluster: &Cluster, example: &str) -> String {
    format!(
        "{} log template `{}` (e.g. `{}`)",
        LEVEL_NAMES[usize::from(cluster.level.min(6))],
        cluster.text(),
        mask::cut(example.trim(), MAX_EXAMPLE_BYTES)
    )
}

/// Whether the template `cluster` of a service learning until `learn_until` bursts now, and
/// its rate before the window (per hour) if so: at least `burst_count` occurrences in the
/// window ending at `clock`, after the service's learning period, with a history before the
/// window of at least the learning period (and the window), and rare over that history.
fn bursts(cluster: &Cluster, learn_until: i64, clock: i64, settings: &Settings) -> Option<f64> {
    let activity = &cluster.activity;
    let window_start = clock.saturating_sub(settings.burst_window);
    let oldest = *activity.recent.front()?;
    if activity.burst.is_some()
        || activity.recent.len() < settings.burst_count
        || oldest <= window_start
        || clock < learn_until
    {
        return None;
    }
    // A rate needs a history: a template seen for a few minutes is not known to be rare.
    let history = window_start.saturating_sub(activity.first_seen);
    if history < settings.learning_period.max(settings.burst_window) {
        return None;
    }
    let before = activity.count.saturating_sub(settings.burst_count as u64);
    let rate = before as f64 * NANOS_PER_HOUR as f64 / history.max(NANOS_PER_HOUR) as f64;
    (rate <= settings.rare_max_per_hour).then_some(rate)
}

/// Resolves what is due in every service at `clock`.
fn resolve_all(registry: &mut Registry, clock: i64, settings: &Settings, out: &mut Output) {
    for (name, service) in &mut registry.services {
        let Service { drain, active, .. } = service;
        active.retain(|&id| {
            drain
                .get_mut(id)
                .is_some_and(|cluster| resolve_due(name, cluster, clock, settings, out))
        });
    }
}

/// The snapshot encoding.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Snapshot {
    version: u32,
    clock: i64,
    last_tick: Option<i64>,
    events_since_tick: bool,
    next_seen: u64,
    services: BTreeMap<String, ServiceState>,
}

/// The encoded form of a [`Service`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceState {
    first_seen: i64,
    learn_until: i64,
    seen: u64,
    drain: DrainState,
}

/// Just the version, read when a snapshot does not decode, to report another version as such.
#[derive(Deserialize)]
struct SnapshotVersion {
    version: u32,
}

impl Plugin for LogNovelty {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        Ok(LogNovelty {
            settings: Settings::from_config(config)?,
            registry: Registry::default(),
            clock: 0,
            last_tick: None,
            events_since_tick: false,
            tokenizer: Tokenizer::default(),
            counts: Counts::default(),
        })
    }
}

impl LogNovelty {
    /// Reports this call's counts to the host.
    fn report(&mut self, alerts: &[Alert]) {
        let fired = alerts
            .iter()
            .filter(|alert| alert.status == AlertStatus::Firing)
            .count() as u64;
        let resolved = alerts.len() as u64 - fired;
        let counts = std::mem::take(&mut self.counts);
        for (name, delta) in [
            ("alerts_fired", fired),
            ("alerts_resolved", resolved),
            ("templates_created", counts.templates_created),
            ("templates_evicted", counts.templates_evicted),
            ("services_evicted", counts.services_evicted),
            ("empty_records", counts.empty_records),
        ] {
            if delta > 0 {
                host::counter_add(name, delta);
            }
        }
        let templates: usize = self
            .registry
            .services
            .values()
            .map(|service| service.drain.len())
            .sum();
        host::gauge_set("services_tracked", self.registry.services.len() as f64);
        host::gauge_set("templates_tracked", templates as f64);
    }
}

impl Detector for LogNovelty {
    fn observe(&mut self, batch: &LogBatch<'_>, alerts: &mut Vec<Alert>) {
        if batch.is_empty() {
            return;
        }
        let first_alert = alerts.len();
        let LogNovelty {
            settings,
            registry,
            clock,
            events_since_tick,
            tokenizer,
            counts,
            ..
        } = self;
        let mut out = Output {
            alerts: &mut *alerts,
            counts,
        };
        let severities = batch.severity_numbers();
        // Severity texts are only needed for records without a severity number.
        let texts = severities.contains(&0).then(|| batch.severity_texts());
        let bodies = batch.bodies();
        let timestamps = batch.timestamps();
        let observed = batch.observed_timestamps();
        let service_names = batch.resource_attribute(&settings.service_attribute);
        let seen_from = registry.next_seen;
        let mut evicted = Vec::new();
        // The service of the previous record: records of one resource usually come together.
        let mut current: Option<(Cow<'_, str>, &mut Service)> = None;

        for (index, &severity_number) in severities.iter().enumerate() {
            let observed = observed.get(index).copied().filter(|&time| time > 0);
            let time = record_time(timestamps.get(index).copied().unwrap_or(0), observed)
                .unwrap_or(*clock);
            *clock = (*clock).max(time);
            *events_since_tick = true;
            let body = bodies.get(index);
            if body.trim().is_empty() {
                out.counts.empty_records += 1;
                continue;
            }
            let severity = match (severity_number, &texts) {
                (0, Some(texts)) => sluice_sdk::severity::from_name(texts.get(index)).unwrap_or(0),
                _ => severity_number,
            };
            let name = service_name(service_names.get(index).and_then(Option::as_ref));
            if !matches!(&current, Some((previous, _)) if *previous == name) {
                let now = *clock;
                let learning_period = settings.learning_period;
                let service = registry.touch(
                    &name,
                    seen_from,
                    settings.max_services,
                    || Service {
                        first_seen: time,
                        learn_until: time.saturating_add(learning_period),
                        seen: 0,
                        drain: Drain::default(),
                        active: BTreeSet::new(),
                    },
                    |name, service| retire_service(name, service, now, settings, &mut out),
                );
                current = Some((name, service));
            }
            let Some((name, service)) = current.as_mut() else {
                unreachable!("the current service was just set");
            };

            let line = tokenizer.tokenize(body, settings.max_line_bytes, settings.max_tokens);
            let (id, created) =
                service
                    .drain
                    .add(level_of(severity), &line, &settings.drain, &mut evicted);
            for (evicted_id, cluster) in evicted.drain(..) {
                service.active.remove(&evicted_id);
                out.counts.templates_evicted += 1;
                retire(name, cluster, *clock, settings, &mut out);
            }
            let Some(cluster) = service.drain.get_mut(id) else {
                continue;
            };
            // Alerts due before this occurrence resolve first.
            resolve_due(name, cluster, *clock, settings, &mut out);
            cluster.activity.record(time, settings.burst_count);
            if created {
                out.counts.templates_created += 1;
                if time >= service.learn_until && severity >= settings.min_severity {
                    let incident = Incident {
                        severity: settings.severity,
                        summary: format!("service {name}: new {}", describe(cluster, body)),
                        starts_at: time,
                    };
                    out.alerts
                        .push(incident.alert(NOVELTY_ALERT, name, &cluster.id_text()));
                    cluster.activity.novelty = Some(incident);
                }
            }
            if let Some(rate) = bursts(cluster, service.learn_until, *clock, settings) {
                let incident = Incident {
                    severity: settings.severity,
                    summary: format!(
                        "service {name}: rare {} seen {} times in {} s (before: {rate:.2}/h, \
                         rare at <= {}/h)",
                        describe(cluster, body),
                        settings.burst_count,
                        settings.burst_window_seconds,
                        settings.rare_max_per_hour
                    ),
                    starts_at: cluster.activity.last_seen.min(*clock),
                };
                out.alerts
                    .push(incident.alert(BURST_ALERT, name, &cluster.id_text()));
                cluster.activity.burst = Some(incident);
            }
            if cluster.activity.is_active() {
                service.active.insert(id);
            }
        }
        resolve_all(registry, *clock, settings, &mut out);
        self.report(&alerts[first_alert..]);
    }

    fn tick(&mut self, now: i64, alerts: &mut Vec<Alert>) {
        if now <= 0 {
            return;
        }
        if let Some(previous) = self.last_tick
            && !self.events_since_tick
            && now > previous
        {
            self.clock = self.clock.saturating_add(now - previous);
        }
        self.last_tick = Some(now);
        self.events_since_tick = false;
        let first_alert = alerts.len();
        let LogNovelty {
            settings,
            registry,
            clock,
            counts,
            ..
        } = self;
        let mut out = Output {
            alerts: &mut *alerts,
            counts,
        };
        resolve_all(registry, *clock, settings, &mut out);
        // Only needed after restoring state taken with a larger `max_services`.
        let now = *clock;
        registry.shrink_to(settings.max_services, &mut |name, service| {
            retire_service(name, service, now, settings, &mut out)
        });
        self.report(&alerts[first_alert..]);
    }

    fn snapshot(&self) -> Vec<u8> {
        let snapshot = Snapshot {
            version: SNAPSHOT_VERSION,
            clock: self.clock,
            last_tick: self.last_tick,
            events_since_tick: self.events_since_tick,
            next_seen: self.registry.next_seen,
            services: self
                .registry
                .services
                .iter()
                .map(|(name, service)| {
                    let state = ServiceState {
                        first_seen: service.first_seen,
                        learn_until: service.learn_until,
                        seen: service.seen,
                        drain: service.drain.to_state(),
                    };
                    (name.clone(), state)
                })
                .collect(),
        };
        serde_json::to_vec(&snapshot).unwrap_or_else(|error| {
            host::log(
                Level::Error,
                &format!("log-novelty: cannot encode state: {error}"),
            );
            Vec::new()
        })
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let invalid = |error: &dyn std::fmt::Display| format!("invalid log-novelty state: {error}");
        let wrong_version = |version: u32| {
            format!(
                "log-novelty state has version {version}; this build reads version \
                 {SNAPSHOT_VERSION}"
            )
        };
        let snapshot: Snapshot = match serde_json::from_slice(state) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                return Err(match serde_json::from_slice::<SnapshotVersion>(state) {
                    Ok(SnapshotVersion { version }) if version != SNAPSHOT_VERSION => {
                        wrong_version(version)
                    }
                    _ => invalid(&error),
                });
            }
        };
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(wrong_version(snapshot.version));
        }
        let mut registry = Registry {
            next_seen: snapshot.next_seen,
            ..Registry::default()
        };
        for (name, state) in snapshot.services {
            if state.seen >= snapshot.next_seen
                || registry.recency.insert(state.seen, name.clone()).is_some()
            {
                return Err(invalid(&format!("service `{name}`: recency out of range")));
            }
            let drain = Drain::from_state(state.drain, self.settings.burst_count)
                .map_err(|error| invalid(&format!("service `{name}`: {error}")))?;
            let active = drain
                .clusters()
                .filter(|(_, cluster)| cluster.activity.is_active())
                .map(|(id, _)| id)
                .collect();
            let service = Service {
                first_seen: state.first_seen,
                learn_until: state.learn_until,
                seen: state.seen,
                drain,
                active,
            };
            registry.services.insert(name, service);
        }
        self.registry = registry;
        self.clock = snapshot.clock;
        self.last_tick = snapshot.last_tick;
        self.events_since_tick = snapshot.events_since_tick;
        Ok(())
    }
}

sluice_sdk::export_detector!(LogNovelty);

#[cfg(test)]
mod tests;
