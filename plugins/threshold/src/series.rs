//! One watched series: the points of one metric series, or the matching records of one service
//! for a log rule, with where it stands against its rule's bound.

use serde::{Deserialize, Serialize};
use sluice_sdk::Alert;

use crate::bound::{Tracker, Transition};
use crate::clock::{NANOS_PER_SECOND, duration_label};
use crate::config::{AlertLevel, Rule, Source};

/// Most log windows one series keeps open (waiting for late records).
const MAX_OPEN_WINDOWS: usize = 64;

/// A watched series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// Name of its rule.
    pub rule: String,
    /// The `service` label.
    pub service: String,
    /// Metric rules: the metric name (the `metric` label).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metric: String,
    /// Metric rules: the metric name and its point attributes (the `series` label).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub series: String,
    /// Time of the newest point or record (Unix ns).
    pub latest: i64,
    /// Where it stands against the bound.
    pub tracker: Tracker,
    /// Log rules: the window width the slots count in, in nanoseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub width: i64,
    /// Log rules: the next window to count, as a slot (`time / width`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub next_slot: i64,
    /// Log rules: `[slot, records]` of the windows not counted yet, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<(i64, u64)>,
    /// The alert while it fires, as it fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Fired>,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

/// A firing alert: what it fired with, so that it resolves as the same alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fired {
    /// Alert name.
    pub name: String,
    /// Alert severity.
    pub severity: AlertLevel,
    /// Summary.
    pub summary: String,
    /// When it fired.
    pub starts_at: i64,
}

impl Series {
    /// The key of a series in the registry.
    pub fn key(rule: &str, service: &str, series: &str) -> String {
        format!("{rule}\u{1f}{service}\u{1f}{series}")
    }

    /// This series' key.
    pub fn own_key(&self) -> String {
        Series::key(&self.rule, &self.service, &self.series)
    }

    /// A metric series.
    pub fn metric(rule: &str, service: &str, metric: &str, series: &str) -> Self {
        Series {
            rule: rule.to_owned(),
            service: service.to_owned(),
            metric: metric.to_owned(),
            series: series.to_owned(),
            latest: 0,
            tracker: Tracker::default(),
            width: 0,
            next_slot: 0,
            windows: Vec::new(),
            alert: None,
        }
    }

    /// A log series whose first record is at `time`.
    pub fn logs(rule: &str, service: &str, width: i64, time: i64) -> Self {
        Series {
            width,
            next_slot: time.div_euclid(width),
            ..Series::metric(rule, service, "", "")
        }
    }

    /// The alert of this series.
    fn alert_of(&self, fired: &Fired) -> Alert {
        let mut alert = Alert::firing(
            &fired.name,
            fired.severity.into(),
            fired.summary.clone(),
            fired.starts_at,
        )
        .with_label("service", &self.service)
        .with_label("rule", &self.rule);
        if !self.metric.is_empty() {
            alert = alert
                .with_label("metric", &self.metric)
                .with_label("series", &self.series);
        }
        alert
    }

    /// A metric point. Returns false for a point not newer than the newest one seen (ignored).
    pub fn point(&mut self, time: i64, value: f64, rule: &Rule, alerts: &mut Vec<Alert>) -> bool {
        if time <= self.latest {
            return false;
        }
        self.latest = time;
        self.sample(time, value, rule, alerts);
        true
    }

    /// A matching log record at `time`. Returns false for a record of a window already
    /// counted (ignored).
    pub fn record(&mut self, time: i64) -> bool {
        let slot = time.div_euclid(self.width);
        if slot < self.next_slot {
            return false;
        }
        self.latest = self.latest.max(time);
        match self.windows.binary_search_by_key(&slot, |&(slot, _)| slot) {
            Ok(found) => self.windows[found].1 += 1,
            Err(at) if self.windows.len() < MAX_OPEN_WINDOWS => self.windows.insert(at, (slot, 1)),
            // Far ahead of the windows still open: those are counted now, as if closed.
            Err(_) => return false,
        }
        true
    }

    /// Moves the series to the event clock `now`: counts the log windows that are over (plus
    /// `lateness`), and forgets a metric series without points for its rule's `stale` time.
    /// Returns false when the series should be forgotten.
    pub fn advance(
        &mut self,
        now: i64,
        rule: &Rule,
        lateness: i64,
        alerts: &mut Vec<Alert>,
    ) -> bool {
        match &rule.source {
            Source::Metric { stale, .. } => {
                let deadline = self.latest.saturating_add(*stale);
                if now <= deadline {
                    return true;
                }
                self.resolve(deadline, alerts);
                false
            }
            Source::Logs { window, .. } => {
                if self.width != *window {
                    // Restored under another window: restart counting at the clock.
                    self.width = *window;
                    self.windows.clear();
                    self.next_slot = now.div_euclid(*window);
                }
                // Window `slot` is due once `(slot + 1) * width + lateness <= now`.
                let due_before = now.saturating_sub(lateness).div_euclid(self.width);
                while self.next_slot < due_before {
                    let width = self.width;
                    let end = |slot: i64| (slot + 1).saturating_mul(width);
                    match self.windows.first() {
                        Some(&(slot, count)) if slot == self.next_slot => {
                            self.windows.remove(0);
                            self.sample(end(slot), count as f64, rule, alerts);
                            self.next_slot += 1;
                        }
                        next => {
                            // A run of empty windows: one sample at its first and one at its
                            // last window is all the bound can see of it.
                            let run_end =
                                next.map_or(due_before, |&(slot, _)| slot.min(due_before));
                            self.sample(end(self.next_slot), 0.0, rule, alerts);
                            if run_end - 1 > self.next_slot {
                                self.sample(end(run_end - 1), 0.0, rule, alerts);
                            }
                            self.next_slot = run_end;
                        }
                    }
                }
                // With an `above` bound, a series that holds nothing comes back with its next
                // record; a `below` bound must keep watching the silence.
                !(self.windows.is_empty()
                    && self.tracker.is_idle()
                    && self.alert.is_none()
                    && rule.bound.breaches(f64::INFINITY))
            }
        }
    }

    /// When `advance` next has something to do: the end of the next log window (plus
    /// `lateness`), or the time a metric series goes stale.
    pub fn due(&self, rule: &Rule, lateness: i64) -> i64 {
        match &rule.source {
            Source::Metric { stale, .. } => self.latest.saturating_add(*stale).saturating_add(1),
            Source::Logs { window, .. } if *window == self.width => (self.next_slot + 1)
                .saturating_mul(self.width)
                .saturating_add(lateness),
            Source::Logs { .. } => i64::MIN,
        }
    }

    /// Takes one sample of the series.
    fn sample(&mut self, time: i64, value: f64, rule: &Rule, alerts: &mut Vec<Alert>) {
        match self.tracker.sample(time, value, &rule.bound) {
            Some(Transition::Fired { starts_at, since }) => {
                let fired = Fired {
                    name: rule.alert_name.clone(),
                    severity: rule.severity,
                    summary: self.summary(value, starts_at - since, rule),
                    starts_at,
                };
                alerts.push(self.alert_of(&fired));
                self.alert = Some(fired);
            }
            Some(Transition::Resolved { ends_at }) => self.resolve(ends_at, alerts),
            None => {}
        }
    }

    /// Resolves the firing alert, if any, at `ends_at`.
    pub fn resolve(&mut self, ends_at: i64, alerts: &mut Vec<Alert>) {
        self.tracker = Tracker::default();
        if let Some(fired) = self.alert.take() {
            alerts.push(self.alert_of(&fired).resolved(ends_at));
        }
    }

    /// The summary of an alert that fired on `value` after a breach of `lasted` nanoseconds.
    fn summary(&self, value: f64, lasted: i64, rule: &Rule) -> String {
        let what = match &rule.source {
            Source::Metric { .. } => format!("{} = {}", self.series, number(value)),
            Source::Logs { window, .. } => format!(
                "{} records matching rule {} in {}",
                number(value),
                rule.name,
                duration_label((*window / NANOS_PER_SECOND) as u64)
            ),
        };
        let mut text = format!(
            "service {}: {what}, {}",
            self.service,
            rule.bound.describe()
        );
        if lasted > 0 {
            text.push_str(&format!(
                " for {}",
                duration_label((lasted / NANOS_PER_SECOND) as u64)
            ));
        }
        text
    }

    /// Checks a series decoded from a snapshot.
    pub fn check(&self) -> Result<(), String> {
        self.tracker.check(self.latest)?;
        if self.alert.is_some() != self.tracker.firing_since.is_some() {
            return Err("the alert and the tracker disagree".to_owned());
        }
        if self.width < 0 || (self.width == 0 && (!self.windows.is_empty() || self.next_slot != 0))
        {
            return Err("log windows without a width".to_owned());
        }
        let mut previous = self.next_slot - 1;
        for &(slot, count) in &self.windows {
            if slot <= previous || count == 0 {
                return Err("log windows are out of order or empty".to_owned());
            }
            previous = slot;
        }
        if self.windows.len() > MAX_OPEN_WINDOWS {
            return Err("too many open log windows".to_owned());
        }
        Ok(())
    }
}

/// A value as text: integers without decimals, others with at most four.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{value:.0}");
    }
    let text = format!("{value:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
