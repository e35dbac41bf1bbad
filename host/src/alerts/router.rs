//! The alert router of one alert sink: between the sink's queue (alerts as detectors raise them,
//! repeats included) and its delivery (one HTTP request at a time).
//!
//! For each alert, in order: enrich it ([`Enricher`]); de-duplicate by fingerprint (a firing
//! alert already notified, or waiting to be, is not sent again until `repeat_interval`; a
//! resolution goes once, and only for an alert whose firing went); hold back what a silence
//! matches (counted; re-checked while held, so it goes out when the silence ends or is deleted);
//! group alerts with the same `group_by` values for `group_wait` into one notification; and let
//! notifications out at most as fast as the token bucket allows, in the order they were made,
//! so a resolution never overtakes its firing.
//!
//! The router is a plain state machine driven by [`Router::receive`], [`Router::advance`] and
//! [`Router::take`] with the time passed in; the sink's task ([`super::sink`]) runs it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::config::{AlertsConfig, RateLimitConfig};
use super::enrich::{Enricher, RoutedAlert};
use super::rate_limit::TokenBucket;
use super::silences::SilenceStore;
use super::{Alert, AlertStatus};
use crate::sinks::SinkStats;

/// How often alerts held back by a silence are checked again.
const SILENCE_RECHECK: Duration = Duration::from_secs(1);

/// What every alert sink's router shares: the `[alerts]` policy and the silences.
#[derive(Debug)]
pub struct Routing {
    /// Owner, team, runbook.
    pub enricher: Enricher,
    /// Labels that make a group.
    pub group_by: Vec<String>,
    /// How long a group collects.
    pub group_wait: Duration,
    /// Re-notification of a still-firing alert.
    pub repeat_interval: Duration,
    /// The token bucket's settings.
    pub rate_limit: RateLimitConfig,
    /// Config and API silences.
    pub silences: Arc<SilenceStore>,
}

impl Routing {
    /// From a checked `[alerts]` table.
    pub fn new(config: &AlertsConfig) -> anyhow::Result<Arc<Routing>> {
        let silences =
            SilenceStore::from_config(&config.silences, Utc::now()).map_err(anyhow::Error::msg)?;
        Ok(Arc::new(Routing {
            enricher: Enricher::new(config),
            group_by: config.group_by.clone(),
            group_wait: config.group_wait,
            repeat_interval: config.repeat_interval,
            rate_limit: config.rate_limit.clone(),
            silences: Arc::new(silences),
        }))
    }

    /// The defaults of an empty `[alerts]` table.
    pub fn defaults() -> Arc<Routing> {
        let config = AlertsConfig::default();
        Arc::new(Routing {
            enricher: Enricher::new(&config),
            group_by: config.group_by,
            group_wait: config.group_wait,
            repeat_interval: config.repeat_interval,
            rate_limit: config.rate_limit,
            silences: Arc::default(),
        })
    }
}

/// Counters of one alert sink's router and delivery (`/metrics`: `sluice_alert_…{sink}`).
#[derive(Debug, Default)]
pub struct RouterStats {
    /// Set once a router runs for the sink (so only alert sinks show these counters).
    pub active: AtomicBool,
    /// Notifications (requests) the receiver accepted.
    pub notifications_sent: AtomicU64,
    /// Notifications given up on (refused, or out of attempts).
    pub notifications_failed: AtomicU64,
    /// Alerts not sent because the same alert was notified or waiting already (repeats while
    /// firing, repeated resolutions, resolutions of alerts never notified).
    pub alerts_deduplicated: AtomicU64,
    /// Alerts held back by a silence.
    pub alerts_silenced: AtomicU64,
    /// Notifications that had to wait for the rate limit.
    pub notifications_rate_limited: AtomicU64,
    /// Firing alerts dropped because `rate_limit.max_waiting` alerts were waiting already.
    pub alerts_dropped_waiting: AtomicU64,
}

fn count(counter: &AtomicU64, by: usize) {
    counter.fetch_add(by as u64, Ordering::Relaxed);
}

/// How a sink's format shapes its notifications.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Most alerts in one notification (1 for formats that take one alert per request).
    pub max_alerts: usize,
    /// Re-send still-firing alerts at least this often (Alertmanager forgets alerts that are
    /// not re-sent), whatever `repeat_interval` says.
    pub resend_interval: Option<Duration>,
}

/// One request's worth of alerts, in the order they are to be read.
#[derive(Debug)]
pub struct Notification {
    /// Firing and resolved alerts.
    pub alerts: Vec<RoutedAlert>,
    waited: bool,
}

type GroupKey = Vec<String>;

#[derive(Debug)]
enum Phase {
    /// In a group, waiting to go out.
    Pending,
    /// Its firing went out at this time.
    Notified(Instant),
    /// A silence holds it back.
    Silenced,
}

/// A firing alert the router knows.
#[derive(Debug)]
struct Tracked {
    alert: RoutedAlert,
    group: GroupKey,
    phase: Phase,
    /// Its resolution, come while its firing was still pending: it goes in the group's next
    /// notification, after the firing.
    resolution: Option<RoutedAlert>,
}

#[derive(Debug)]
enum Entry {
    /// The latest of a tracked alert (by fingerprint).
    Firing(String),
    Resolved(RoutedAlert),
}

#[derive(Debug)]
struct Group {
    /// Creation order, to flush groups due at the same time in the order they began.
    sequence: u64,
    deadline: Instant,
    entries: Vec<Entry>,
}

/// The router of one alert sink.
#[derive(Debug)]
pub struct Router {
    routing: Arc<Routing>,
    stats: Arc<SinkStats>,
    shape: Shape,
    repeat_interval: Duration,
    tracked: HashMap<String, Tracked>,
    groups: HashMap<GroupKey, Group>,
    next_sequence: u64,
    ready: VecDeque<Notification>,
    bucket: TokenBucket,
    last_silence_check: Instant,
    silence_generation: u64,
    closing: bool,
}

impl Router {
    /// A router with nothing held.
    pub fn new(routing: Arc<Routing>, shape: Shape, stats: Arc<SinkStats>, now: Instant) -> Self {
        let repeat_interval = match shape.resend_interval {
            Some(resend) => resend.min(routing.repeat_interval),
            None => routing.repeat_interval,
        };
        let bucket = TokenBucket::new(
            routing.rate_limit.notifications,
            routing.rate_limit.per,
            now,
        );
        let silence_generation = routing.silences.generation();
        stats.router.active.store(true, Ordering::Relaxed);
        Router {
            routing,
            stats,
            shape: Shape {
                max_alerts: shape.max_alerts.max(1),
                ..shape
            },
            repeat_interval,
            tracked: HashMap::new(),
            groups: HashMap::new(),
            next_sequence: 0,
            ready: VecDeque::new(),
            bucket,
            last_silence_check: now,
            silence_generation,
            closing: false,
        }
    }

    /// Takes one alert from the queue.
    pub fn receive(&mut self, alert: &Alert, now: Instant, wall: DateTime<Utc>) {
        let routed = self.routing.enricher.enrich(alert);
        let fingerprint = routed.alert.fingerprint.clone();
        match routed.alert.status {
            AlertStatus::Firing => self.firing(fingerprint, routed, now, wall),
            AlertStatus::Resolved => self.resolved(fingerprint, routed, now),
        }
    }

    fn firing(
        &mut self,
        fingerprint: String,
        routed: RoutedAlert,
        now: Instant,
        wall: DateTime<Utc>,
    ) {
        if let Some(tracked) = self.tracked.get_mut(&fingerprint) {
            tracked.alert = routed;
            match tracked.phase {
                Phase::Silenced => count(&self.stats.router.alerts_silenced, 1),
                // Firing again before its resolution went: it is still one incident.
                Phase::Pending | Phase::Notified(_) => {
                    tracked.resolution = None;
                    count(&self.stats.router.alerts_deduplicated, 1);
                }
            }
            return;
        }
        if self.routing.silences.silencing(&routed, wall).is_some() {
            count(&self.stats.router.alerts_silenced, 1);
            let group = self.group_key(&routed);
            self.tracked.insert(
                fingerprint,
                Tracked {
                    alert: routed,
                    group,
                    phase: Phase::Silenced,
                    resolution: None,
                },
            );
            return;
        }
        if self.waiting() >= self.routing.rate_limit.max_waiting {
            // Not tracked: its resolution will find nothing to resolve and go nowhere either.
            count(&self.stats.router.alerts_dropped_waiting, 1);
            tracing::warn!(
                alert = %routed.alert.name,
                "alert dropped: rate_limit.max_waiting alerts are waiting for their notification"
            );
            return;
        }
        let group = self.group_key(&routed);
        self.enqueue(group.clone(), Entry::Firing(fingerprint.clone()), now);
        self.tracked.insert(
            fingerprint,
            Tracked {
                alert: routed,
                group,
                phase: Phase::Pending,
                resolution: None,
            },
        );
    }

    fn resolved(&mut self, fingerprint: String, routed: RoutedAlert, now: Instant) {
        let Some(tracked) = self.tracked.get_mut(&fingerprint) else {
            // Resolved already, or never notified.
            count(&self.stats.router.alerts_deduplicated, 1);
            return;
        };
        match tracked.phase {
            Phase::Pending => {
                tracked.resolution = Some(routed);
            }
            Phase::Silenced => {
                self.tracked.remove(&fingerprint);
                count(&self.stats.router.alerts_silenced, 1);
            }
            Phase::Notified(_) => {
                let group = tracked.group.clone();
                self.tracked.remove(&fingerprint);
                self.enqueue(group, Entry::Resolved(routed), now);
            }
        }
    }

    fn group_key(&self, routed: &RoutedAlert) -> GroupKey {
        self.routing
            .group_by
            .iter()
            .map(|label| routed.label(label).unwrap_or("").to_owned())
            .collect()
    }

    fn enqueue(&mut self, key: GroupKey, entry: Entry, now: Instant) {
        let deadline = if self.closing {
            now
        } else {
            now + self.routing.group_wait
        };
        let sequence = self.next_sequence;
        let group = self.groups.entry(key).or_insert_with(|| Group {
            sequence,
            deadline,
            entries: Vec::new(),
        });
        if group.sequence == sequence {
            self.next_sequence += 1;
        }
        group.entries.push(entry);
    }

    /// Alerts waiting in groups and in notifications not yet sent.
    fn waiting(&self) -> usize {
        self.groups
            .values()
            .map(|group| group.entries.len())
            .sum::<usize>()
            + self
                .ready
                .iter()
                .map(|notification| notification.alerts.len())
                .sum::<usize>()
    }

    /// Does what is due at `now`: re-checks silenced alerts, repeats still-firing alerts,
    /// flushes groups whose wait is over.
    pub fn advance(&mut self, now: Instant, wall: DateTime<Utc>) {
        let generation = self.routing.silences.generation();
        if generation != self.silence_generation
            || now.saturating_duration_since(self.last_silence_check) >= SILENCE_RECHECK
        {
            self.silence_generation = generation;
            self.last_silence_check = now;
            self.release_unsilenced(now, wall);
        }
        let repeat = self.repeat_interval;
        let due: Vec<String> = self
            .tracked
            .iter()
            .filter(|(_, tracked)| {
                matches!(tracked.phase, Phase::Notified(at) if now.saturating_duration_since(at) >= repeat)
            })
            .map(|(fingerprint, _)| fingerprint.clone())
            .collect();
        for fingerprint in due {
            if let Some(tracked) = self.tracked.get_mut(&fingerprint) {
                tracked.phase = Phase::Pending;
                let group = tracked.group.clone();
                self.enqueue(group, Entry::Firing(fingerprint), now);
            }
        }
        let mut due: Vec<(u64, GroupKey)> = self
            .groups
            .iter()
            .filter(|(_, group)| self.closing || group.deadline <= now)
            .map(|(key, group)| (group.sequence, key.clone()))
            .collect();
        due.sort();
        for (_, key) in due {
            self.flush(key, now, wall);
        }
    }

    fn release_unsilenced(&mut self, now: Instant, wall: DateTime<Utc>) {
        let released: Vec<String> = self
            .tracked
            .iter()
            .filter(|(_, tracked)| matches!(tracked.phase, Phase::Silenced))
            .filter(|(_, tracked)| {
                self.routing
                    .silences
                    .silencing(&tracked.alert, wall)
                    .is_none()
            })
            .map(|(fingerprint, _)| fingerprint.clone())
            .collect();
        for fingerprint in released {
            if let Some(tracked) = self.tracked.get_mut(&fingerprint) {
                tracked.phase = Phase::Pending;
                let group = tracked.group.clone();
                self.enqueue(group, Entry::Firing(fingerprint), now);
            }
        }
    }

    fn flush(&mut self, key: GroupKey, now: Instant, wall: DateTime<Utc>) {
        let Some(group) = self.groups.remove(&key) else {
            return;
        };
        let mut alerts = Vec::with_capacity(group.entries.len());
        let mut next_round = Vec::new();
        for entry in group.entries {
            match entry {
                Entry::Resolved(routed) => alerts.push(routed),
                Entry::Firing(fingerprint) => {
                    let Some(tracked) = self.tracked.get_mut(&fingerprint) else {
                        continue;
                    };
                    if !matches!(tracked.phase, Phase::Pending) {
                        continue;
                    }
                    if self
                        .routing
                        .silences
                        .silencing(&tracked.alert, wall)
                        .is_some()
                    {
                        count(&self.stats.router.alerts_silenced, 1);
                        if tracked.resolution.is_some() {
                            self.tracked.remove(&fingerprint);
                        } else {
                            tracked.phase = Phase::Silenced;
                        }
                        continue;
                    }
                    alerts.push(tracked.alert.clone());
                    match tracked.resolution.take() {
                        Some(resolution) => {
                            self.tracked.remove(&fingerprint);
                            next_round.push(Entry::Resolved(resolution));
                        }
                        None => tracked.phase = Phase::Notified(now),
                    }
                }
            }
        }
        if !next_round.is_empty() {
            let sequence = self.next_sequence;
            self.next_sequence += 1;
            let deadline = if self.closing {
                now
            } else {
                now + self.routing.group_wait
            };
            self.groups.insert(
                key,
                Group {
                    sequence,
                    deadline,
                    entries: next_round,
                },
            );
        }
        let mut alerts = alerts.into_iter().peekable();
        while alerts.peek().is_some() {
            let chunk: Vec<RoutedAlert> = alerts.by_ref().take(self.shape.max_alerts).collect();
            self.ready.push_back(Notification {
                alerts: chunk,
                waited: false,
            });
        }
    }

    /// The next notification to send, when the rate limit lets one out now.
    pub fn take(&mut self, now: Instant) -> Option<Notification> {
        let front = self.ready.front_mut()?;
        if self.bucket.try_take(now) {
            return self.ready.pop_front();
        }
        if !front.waited {
            front.waited = true;
            count(&self.stats.router.notifications_rate_limited, 1);
        }
        None
    }

    /// True when a notification is ready and a token is there for it; a notification that is
    /// ready without a token is counted as rate-limited (once).
    pub fn can_take(&mut self, now: Instant) -> bool {
        if self.ready.is_empty() {
            return false;
        }
        if self.bucket.next_token(now) <= now {
            return true;
        }
        if let Some(front) = self.ready.front_mut()
            && !front.waited
        {
            front.waited = true;
            count(&self.stats.router.notifications_rate_limited, 1);
        }
        false
    }

    /// When something is next due (a group's wait, a repeat, a silence re-check, a token for a
    /// waiting notification); `None` when nothing is.
    pub fn next_due(&mut self, now: Instant) -> Option<Instant> {
        let mut due: Option<Instant> = None;
        let mut consider = |at: Instant| due = Some(due.map_or(at, |due| due.min(at)));
        for group in self.groups.values() {
            consider(if self.closing { now } else { group.deadline });
        }
        for tracked in self.tracked.values() {
            match tracked.phase {
                Phase::Notified(at) => consider(at + self.repeat_interval),
                Phase::Silenced => consider(self.last_silence_check + SILENCE_RECHECK),
                Phase::Pending => {}
            }
        }
        if !self.ready.is_empty() {
            // A token there now is not a wake-up: the notification waits for the delivery.
            let token = self.bucket.next_token(now);
            if token > now {
                consider(token);
            }
        }
        due
    }

    /// The queue closed: every group goes out at once (a pending resolution right after its
    /// firing); alerts held by silences are let go.
    pub fn close(&mut self) {
        self.closing = true;
        self.tracked
            .retain(|_, tracked| !matches!(tracked.phase, Phase::Silenced));
    }

    /// True once closed and nothing waits any more.
    pub fn finished(&self) -> bool {
        self.closing && self.groups.is_empty() && self.ready.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::enrich::tests::alert;
    use crate::alerts::silences::SilenceRequest;

    fn routing(extra: &str) -> Arc<Routing> {
        let config: AlertsConfig =
            toml::from_str(&format!("group_wait = \"2s\"\n{extra}")).expect("parses");
        Routing::new(&config).expect("valid")
    }

    struct Harness {
        router: Router,
        start: Instant,
        now: Instant,
        stats: Arc<SinkStats>,
    }

    impl Harness {
        fn new(routing: Arc<Routing>, max_alerts: usize) -> Self {
            let start = Instant::now();
            let stats = Arc::new(SinkStats::default());
            Harness {
                router: Router::new(
                    routing,
                    Shape {
                        max_alerts,
                        resend_interval: None,
                    },
                    stats.clone(),
                    start,
                ),
                start,
                now: start,
                stats,
            }
        }

        fn at(&mut self, seconds: f64) {
            self.now = self.start + Duration::from_secs_f64(seconds);
            self.router.advance(self.now, Utc::now());
        }

        fn send(&mut self, alert: &Alert) {
            self.router.receive(alert, self.now, Utc::now());
        }

        /// Every notification the rate limit lets out now, as (name, status) lists.
        fn out(&mut self) -> Vec<Vec<(String, AlertStatus)>> {
            let mut out = Vec::new();
            while self.router.can_take(self.now) {
                let Some(notification) = self.router.take(self.now) else {
                    break;
                };
                out.push(
                    notification
                        .alerts
                        .iter()
                        .map(|routed| (routed.alert.name.clone(), routed.alert.status))
                        .collect(),
                );
            }
            out
        }
    }

    fn resolved(alert: &Alert) -> Alert {
        Alert {
            status: AlertStatus::Resolved,
            ends_at: Some(alert.starts_at + 60_000_000_000),
            ..alert.clone()
        }
    }

    fn read(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    use AlertStatus::{Firing, Resolved};

    #[test]
    fn a_storm_of_repeats_is_one_firing_and_one_resolution() {
        let mut harness = Harness::new(routing(""), 64);
        let burst = alert("ErrorBurst", &[("service", "checkout")]);
        for second in 0..100 {
            harness.at(f64::from(second) * 0.1);
            harness.send(&burst);
        }
        harness.at(12.0);
        assert_eq!(harness.out(), vec![vec![("ErrorBurst".to_owned(), Firing)]]);
        for _ in 0..5 {
            harness.send(&resolved(&burst));
        }
        harness.at(20.0);
        assert_eq!(
            harness.out(),
            vec![vec![("ErrorBurst".to_owned(), Resolved)]]
        );
        assert_eq!(read(&harness.stats.router.alerts_deduplicated), 99 + 4);
        // Firing again after the resolution is a new incident.
        harness.send(&burst);
        harness.at(23.0);
        assert_eq!(harness.out(), vec![vec![("ErrorBurst".to_owned(), Firing)]]);
    }

    #[test]
    fn a_resolution_waiting_with_its_firing_goes_after_it() {
        let mut harness = Harness::new(routing(""), 64);
        let burst = alert("ErrorBurst", &[("service", "checkout")]);
        harness.send(&burst);
        harness.at(0.5);
        harness.send(&resolved(&burst));
        harness.at(2.0);
        assert_eq!(harness.out(), vec![vec![("ErrorBurst".to_owned(), Firing)]]);
        harness.at(3.9);
        assert!(harness.out().is_empty());
        harness.at(4.0);
        assert_eq!(
            harness.out(),
            vec![vec![("ErrorBurst".to_owned(), Resolved)]]
        );
    }

    #[test]
    fn a_resolution_of_an_alert_never_notified_goes_nowhere() {
        let mut harness = Harness::new(routing(""), 64);
        harness.send(&resolved(&alert("ErrorBurst", &[("service", "checkout")])));
        harness.at(10.0);
        assert!(harness.out().is_empty());
        assert_eq!(read(&harness.stats.router.alerts_deduplicated), 1);
    }

    #[test]
    fn alerts_with_the_same_group_labels_go_together() {
        let mut harness = Harness::new(routing(""), 64);
        let a = alert("ErrorBurst", &[("service", "checkout"), ("window", "60s")]);
        let b = alert("ErrorBurst", &[("service", "checkout"), ("window", "5m")]);
        let c = alert("ErrorBurst", &[("service", "cart")]);
        harness.send(&a);
        harness.at(1.0);
        harness.send(&b);
        harness.send(&c);
        harness.at(2.0);
        // a's group is due; c's group (started at 1 s) is not.
        let out = harness.out();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), 2);
        harness.at(3.0);
        assert_eq!(harness.out().len(), 1);
    }

    #[test]
    fn groups_are_split_to_the_formats_size() {
        let mut harness = Harness::new(routing("group_by = [\"alertname\"]"), 1);
        for service in ["a", "b", "c"] {
            harness.send(&alert("ErrorBurst", &[("service", service)]));
        }
        harness.at(2.0);
        assert_eq!(harness.out().len(), 3);
    }

    #[test]
    fn still_firing_alerts_repeat_after_repeat_interval() {
        let mut harness = Harness::new(routing("repeat_interval = \"10s\""), 64);
        let burst = alert("ErrorBurst", &[("service", "checkout")]);
        harness.send(&burst);
        harness.at(2.0);
        assert_eq!(harness.out().len(), 1);
        harness.at(11.0);
        assert!(harness.out().is_empty());
        harness.at(12.0);
        harness.at(14.0);
        assert_eq!(harness.out(), vec![vec![("ErrorBurst".to_owned(), Firing)]]);
        assert_eq!(
            harness.router.next_due(harness.now),
            Some(harness.now + Duration::from_secs(10))
        );
    }

    #[test]
    fn the_rate_limit_delays_in_order_and_counts() {
        let mut harness = Harness::new(
            routing("rate_limit = { notifications = 2, per = \"10s\" }"),
            64,
        );
        for service in ["a", "b", "c", "d"] {
            harness.send(&alert("ErrorBurst", &[("service", service)]));
        }
        harness.at(2.0);
        assert_eq!(harness.out().len(), 2);
        assert_eq!(read(&harness.stats.router.notifications_rate_limited), 1);
        assert_eq!(
            harness.router.next_due(harness.now),
            Some(harness.start + Duration::from_secs(7))
        );
        harness.at(7.0);
        assert_eq!(harness.out().len(), 1);
        harness.at(12.0);
        assert_eq!(harness.out().len(), 1);
        assert_eq!(read(&harness.stats.router.notifications_rate_limited), 2);
    }

    #[test]
    fn a_notification_waiting_for_the_delivery_is_no_reason_to_wake() {
        let mut harness = Harness::new(routing(""), 64);
        harness.send(&alert("ErrorBurst", &[("service", "checkout")]));
        harness.at(2.0);
        assert!(harness.router.can_take(harness.now));
        // Ready, with a token: the sink waits for room in the delivery, not for a time; the
        // next thing due is the alert's repeat.
        assert_eq!(
            harness.router.next_due(harness.now),
            Some(harness.now + Duration::from_secs(4 * 3600))
        );
    }

    #[test]
    fn beyond_max_waiting_firing_alerts_are_dropped_with_their_resolutions() {
        let mut harness = Harness::new(
            routing("rate_limit = { notifications = 1, per = \"1h\", max_waiting = 2 }"),
            64,
        );
        let alerts: Vec<Alert> = ["a", "b", "c"]
            .iter()
            .map(|service| alert("ErrorBurst", &[("service", service)]))
            .collect();
        for alert in &alerts {
            harness.send(alert);
        }
        assert_eq!(read(&harness.stats.router.alerts_dropped_waiting), 1);
        harness.send(&resolved(&alerts[2]));
        harness.router.close();
        harness.at(2.0);
        harness.at(2.0);
        assert_eq!(harness.out().len(), 1);
        assert_eq!(read(&harness.stats.router.alerts_deduplicated), 1);
    }

    #[test]
    fn a_silenced_alert_is_held_and_released_when_the_silence_goes() {
        let routing = routing("");
        let mut harness = Harness::new(routing.clone(), 64);
        let request: SilenceRequest = serde_json::from_str(
            r#"{"matchers":[{"label":"service","equal":"checkout"}],"duration":"1h"}"#,
        )
        .expect("parses");
        let id = routing.silences.add(request, Utc::now()).expect("added");
        let burst = alert("ErrorBurst", &[("service", "checkout")]);
        harness.send(&burst);
        harness.send(&burst);
        harness.at(5.0);
        assert!(harness.out().is_empty());
        assert_eq!(read(&harness.stats.router.alerts_silenced), 2);
        routing.silences.delete(&id).expect("deleted");
        harness.at(5.5);
        harness.at(7.5);
        assert_eq!(harness.out(), vec![vec![("ErrorBurst".to_owned(), Firing)]]);
        harness.send(&resolved(&burst));
        harness.at(10.0);
        assert_eq!(
            harness.out(),
            vec![vec![("ErrorBurst".to_owned(), Resolved)]]
        );
    }

    #[test]
    fn closing_sends_everything_in_order() {
        let mut harness = Harness::new(routing(""), 64);
        let a = alert("A", &[]);
        let b = alert("B", &[]);
        harness.send(&a);
        harness.send(&b);
        harness.send(&resolved(&a));
        harness.router.close();
        let mut out = Vec::new();
        while !harness.router.finished() {
            harness.router.advance(harness.now, Utc::now());
            out.extend(harness.out());
        }
        let names: Vec<(String, AlertStatus)> = out.into_iter().flatten().collect();
        assert_eq!(
            names,
            vec![
                ("A".to_owned(), Firing),
                ("B".to_owned(), Firing),
                ("A".to_owned(), Resolved)
            ]
        );
    }
}
