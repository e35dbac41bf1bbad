//! The error budget of one SLO for one service: event counts in time buckets, and the window
//! pairs evaluated at each bucket boundary (multi-window, multi-burn-rate alerts, SRE workbook
//! ch. 5). A pair fires when the burn rate over both its long and its short window exceeds its
//! threshold, and resolves when the short window's burn rate is back at or below it.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sluice_sdk::Alert;

use crate::clock::NANOS_PER_SECOND;
use crate::config::{AlertLevel, BadEvents, Slo, Source, Window};

/// A count in snapshots: a JSON integer when whole, else its shortest exact text (serde_json's
/// default parser does not read every JSON float back to the same bits, and restored counts
/// must be exact).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Exact(pub f64);

/// Whole counts below 2^53 are written as JSON integers (read back exactly), others as text.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

impl Serialize for Exact {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.fract() == 0.0 && (0.0..MAX_EXACT_INTEGER).contains(&self.0) {
            serializer.serialize_u64(self.0 as u64)
        } else {
            serializer.collect_str(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Exact {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Count;
        impl serde::de::Visitor<'_> for Count {
            type Value = Exact;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a count: a whole number, or a number as text")
            }

            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Exact, E> {
                Ok(Exact(value as f64))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Exact, E> {
                match text.parse::<f64>() {
                    Ok(value) if value.is_finite() && value >= 0.0 => Ok(Exact(value)),
                    _ => Err(E::custom(format!("`{text}` is not a count"))),
                }
            }
        }
        deserializer.deserialize_any(Count)
    }
}

/// Event counts of one bucket: `[slot, total, bad, good]` in snapshots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket(pub i64, pub Exact, pub Exact, pub Exact);

impl Bucket {
    fn slot(&self) -> i64 {
        self.0
    }
}

/// Sums over a window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    /// Every event.
    pub total: f64,
    /// Bad events (sources that count them).
    pub bad: f64,
    /// Good events (sources that count them).
    pub good: f64,
}

impl Counts {
    /// The bad events of `slo`'s source.
    pub fn bad_of(&self, slo: &Slo) -> f64 {
        match &slo.source {
            Source::Metrics {
                bad: BadEvents::Good(_),
                ..
            } => (self.total - self.good).max(0.0),
            _ => self.bad.min(self.total),
        }
    }

    /// The burn rate of `slo`: the error ratio over the budget ratio (`1 − target`).
    pub fn burn_rate(&self, slo: &Slo) -> f64 {
        if self.total <= 0.0 {
            return 0.0;
        }
        self.bad_of(slo) / self.total / (1.0 - slo.target)
    }
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
    /// Since when the short window has been at or below the threshold, while it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_since: Option<i64>,
}

/// The budget of one SLO for one service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// The `slo` label.
    pub slo: String,
    /// The `service` label.
    pub service: String,
    /// The bucket width the slots count in, ns.
    pub width: i64,
    /// The slot of the first event: a window reaching further back than this is scaled down
    /// (the time before counts as good, at the same traffic), so a young series does not read
    /// its first minutes as the whole window.
    pub first_slot: i64,
    /// The next boundary to evaluate, as a slot: evaluating boundary `b` reads the buckets
    /// before slot `b`.
    pub next_boundary: i64,
    /// Buckets that hold events, oldest first.
    pub buckets: VecDeque<Bucket>,
    /// Firing alerts by `window` label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alerts: BTreeMap<String, Fired>,
}

impl Budget {
    /// The budget of `slo` for `service`, whose first event is at `time`.
    pub fn new(slo: &str, service: &str, width: i64, time: i64) -> Self {
        Budget {
            slo: slo.to_owned(),
            service: service.to_owned(),
            width,
            first_slot: time.div_euclid(width),
            next_boundary: time.div_euclid(width) + 1,
            buckets: VecDeque::new(),
            alerts: BTreeMap::new(),
        }
    }

    /// Counts events at `time`. Returns false when the time is before every window still to be
    /// evaluated (ignored).
    pub fn add(&mut self, time: i64, counts: Counts, slo: &Slo) -> bool {
        let slot = time.div_euclid(self.width);
        if slot < self.next_boundary - slo.longest() {
            return false;
        }
        self.first_slot = self.first_slot.min(slot);
        let index = match self
            .buckets
            .binary_search_by_key(&slot, |bucket| bucket.slot())
        {
            Ok(index) => index,
            Err(index) => {
                self.buckets
                    .insert(index, Bucket(slot, Exact(0.0), Exact(0.0), Exact(0.0)));
                index
            }
        };
        let bucket = &mut self.buckets[index];
        bucket.1.0 += counts.total;
        bucket.2.0 += counts.bad;
        bucket.3.0 += counts.good;
        true
    }

    /// The sums over the `buckets` buckets before boundary `boundary`.
    pub fn sums(&self, boundary: i64, buckets: i64) -> Counts {
        let mut counts = Counts::default();
        for bucket in self.buckets.iter().rev() {
            if bucket.slot() >= boundary {
                continue;
            }
            if bucket.slot() < boundary - buckets {
                break;
            }
            counts.total += bucket.1.0;
            counts.bad += bucket.2.0;
            counts.good += bucket.3.0;
        }
        counts
    }

    /// Evaluates every boundary due at event time `now` (each `lateness` after it passed).
    pub fn advance(
        &mut self,
        now: i64,
        lateness: i64,
        slo: &Slo,
        alert_name: &str,
        alerts: &mut Vec<Alert>,
    ) {
        let due = now.saturating_sub(lateness).div_euclid(self.width);
        let (longest, longest_short) = (slo.longest(), slo.longest_short());
        while self.next_boundary <= due {
            // Past the newest bucket by the longest short window, every short window is empty:
            // nothing can fire and every alert has resolved, so the boundaries can be skipped.
            let quiet_from = self
                .buckets
                .back()
                .map_or(i64::MIN, |bucket| bucket.slot() + longest_short + 1);
            if self.alerts.is_empty() && self.next_boundary > quiet_from {
                self.next_boundary = due + 1;
                break;
            }
            self.evaluate(self.next_boundary, slo, alert_name, alerts);
            self.next_boundary += 1;
        }
        // Buckets no window still to be evaluated reaches go.
        while self
            .buckets
            .front()
            .is_some_and(|bucket| bucket.slot() < self.next_boundary - longest)
        {
            self.buckets.pop_front();
        }
    }

    /// When `advance` next has something to do.
    pub fn due(&self, lateness: i64) -> i64 {
        self.next_boundary
            .saturating_mul(self.width)
            .saturating_add(lateness)
    }

    /// Whether the budget holds nothing.
    pub fn is_idle(&self) -> bool {
        self.buckets.is_empty() && self.alerts.is_empty()
    }

    /// Evaluates the window pairs at `boundary`.
    fn evaluate(&mut self, boundary: i64, slo: &Slo, alert_name: &str, alerts: &mut Vec<Alert>) {
        let at = boundary.saturating_mul(self.width);
        // Alerts of pairs no longer configured (restored state) resolve.
        let gone: Vec<String> = self
            .alerts
            .keys()
            .filter(|label| !slo.windows.iter().any(|window| &window.label == *label))
            .cloned()
            .collect();
        for label in gone {
            self.resolve(&label, at, alerts);
        }
        let age = (boundary - self.first_slot).max(1);
        let rate = |counts: &Counts, buckets: i64| {
            counts.burn_rate(slo) * (age.min(buckets) as f64 / buckets as f64)
        };
        for window in &slo.windows {
            let long = self.sums(boundary, window.long);
            let short = self.sums(boundary, window.short);
            let (long_rate, short_rate) = (rate(&long, window.long), rate(&short, window.short));
            let firing = self.alerts.contains_key(&window.label);
            if !firing
                && long_rate > window.burn_rate
                && short_rate > window.burn_rate
                && long.total >= slo.min_events
            {
                let fired = Fired {
                    name: alert_name.to_owned(),
                    severity: window.severity,
                    summary: self.summary(slo, window, &long, long_rate, short_rate),
                    starts_at: at,
                    clear_since: None,
                };
                alerts.push(self.alert_of(&window.label, &fired));
                self.alerts.insert(window.label.clone(), fired);
            } else if let Some(fired) = self.alerts.get_mut(&window.label) {
                if short_rate > window.burn_rate {
                    fired.clear_since = None;
                    continue;
                }
                let since = *fired.clear_since.get_or_insert(at);
                if at - since >= slo.resolve_after {
                    self.resolve(&window.label, at, alerts);
                }
            }
        }
    }

    /// Resolves the alert of the window pair `label` at `ends_at`.
    fn resolve(&mut self, label: &str, ends_at: i64, alerts: &mut Vec<Alert>) {
        if let Some(fired) = self.alerts.remove(label) {
            alerts.push(self.alert_of(label, &fired).resolved(ends_at));
        }
    }

    /// Resolves every firing alert at `ends_at` (the budget is forgotten).
    pub fn resolve_all(&mut self, ends_at: i64, alerts: &mut Vec<Alert>) {
        let labels: Vec<String> = self.alerts.keys().cloned().collect();
        for label in labels {
            self.resolve(&label, ends_at, alerts);
        }
    }

    /// The alert of the window pair `label`.
    fn alert_of(&self, label: &str, fired: &Fired) -> Alert {
        Alert::firing(
            &fired.name,
            fired.severity.into(),
            fired.summary.clone(),
            fired.starts_at,
        )
        .with_label("service", &self.service)
        .with_label("slo", &self.slo)
        .with_label("window", label)
    }

    /// e.g. `service checkout: SLO availability (99.9 %) burns its error budget 18.2× over 1h
    /// and 25× over 5m (threshold 14.4×): 1.82 % bad of 12000 events in 1h`.
    fn summary(
        &self,
        slo: &Slo,
        window: &Window,
        long: &Counts,
        long_rate: f64,
        short_rate: f64,
    ) -> String {
        let (long_label, short_label) = window
            .label
            .split_once('/')
            .unwrap_or((window.label.as_str(), ""));
        format!(
            "service {}: SLO {} ({} %) burns its error budget {}× over {long_label} and {}× over \
             {short_label} (threshold {}×): {} % bad of {} events in {long_label}",
            self.service,
            slo.name,
            trimmed(slo.target * 100.0, 3),
            trimmed(long_rate, 1),
            trimmed(short_rate, 1),
            trimmed(window.burn_rate, 2),
            trimmed(long.bad_of(slo) / long.total * 100.0, 2),
            trimmed(long.total, 1),
        )
    }

    /// Checks a budget decoded from a snapshot.
    pub fn check(&self) -> Result<(), String> {
        if self.width < NANOS_PER_SECOND {
            return Err("the bucket width is out of range".to_owned());
        }
        let mut previous = i64::MIN;
        for bucket in &self.buckets {
            if bucket.slot() <= previous || bucket.slot() < self.first_slot {
                return Err("buckets are out of order".to_owned());
            }
            previous = bucket.slot();
        }
        Ok(())
    }
}

/// `value` with at most `decimals` decimals, trailing zeros cut.
fn trimmed(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}
