//! One watched series: its baseline and where it stands. A point is anomalous when its
//! z-score against the baseline *before* the point is beyond the threshold; an anomaly must
//! persist `min_duration` (every point anomalous) to fire, and the alert resolves after
//! `resolve_after` of normal points. While an anomaly is under way the baseline is frozen (or
//! down-weighted), so the anomaly does not become its own baseline; one that lasts
//! `rebaseline_after` does, through a shadow baseline of the anomalous points.

use serde::{Deserialize, Serialize};
use sluice_sdk::Alert;

use crate::baseline::Baseline;
use crate::clock::{NANOS_PER_SECOND, duration_label};
use crate::config::{AlertLevel, Settings};

/// A point as read from the batch, before it becomes a value of the series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reading {
    /// A value as is (gauges, non-monotonic sums, delta points).
    Value(f64),
    /// A cumulative counter: the series' value is its increase per second.
    Counter(f64),
    /// A cumulative histogram or summary (sum, count): the series' value is the mean of the
    /// observations made since the previous point.
    Distribution(f64, u64),
}

/// A watched series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// The `service` label.
    pub service: String,
    /// The `metric` label.
    pub metric: String,
    /// The `series` label: metric name and point attributes.
    pub series: String,
    /// Time of the newest point (Unix ns).
    pub latest: i64,
    /// The baseline.
    pub baseline: Baseline,
    /// Cumulative readings: the previous one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Previous>,
    /// The anomaly under way (pending or firing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<Anomaly>,
    /// While firing: time of the first normal point of the current normal run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal_since: Option<i64>,
    /// The alert while it fires, as it fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Fired>,
}

/// A cumulative reading.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Previous {
    /// Its time.
    pub time: i64,
    /// Counter value, or sum of observations.
    #[serde(with = "crate::baseline::exact")]
    pub value: f64,
    /// Observations (distributions).
    pub count: u64,
}

/// An anomaly under way.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anomaly {
    /// Time of its first anomalous point.
    pub since: i64,
    /// The baseline of its anomalous points.
    pub shadow: Baseline,
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

/// What taking a point did, for the host's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// The point was used.
    Used,
    /// The point was not newer than the newest one.
    Late,
    /// The point gave no value (first cumulative reading, counter reset, no observation).
    NoValue,
}

impl Series {
    /// A series with nothing seen yet.
    pub fn new(service: &str, metric: &str, series: &str) -> Self {
        Series {
            service: service.to_owned(),
            metric: metric.to_owned(),
            series: series.to_owned(),
            latest: 0,
            baseline: Baseline::default(),
            previous: None,
            anomaly: None,
            normal_since: None,
            alert: None,
        }
    }

    /// The alert of this series.
    fn alert_of(&self, fired: &Fired) -> Alert {
        Alert::firing(
            &fired.name,
            fired.severity.into(),
            fired.summary.clone(),
            fired.starts_at,
        )
        .with_label("service", &self.service)
        .with_label("metric", &self.metric)
        .with_label("series", &self.series)
    }

    /// Takes the point `reading` at `time`.
    pub fn point(
        &mut self,
        time: i64,
        reading: Reading,
        settings: &Settings,
        alerts: &mut Vec<Alert>,
    ) -> Taken {
        if time <= self.latest {
            return Taken::Late;
        }
        self.latest = time;
        let Some(value) = self.value_of(time, reading) else {
            return Taken::NoValue;
        };
        if !value.is_finite() {
            return Taken::NoValue;
        }
        self.sample(time, value, settings, alerts);
        Taken::Used
    }

    /// The series' value for `reading`.
    fn value_of(&mut self, time: i64, reading: Reading) -> Option<f64> {
        let (value, count) = match reading {
            Reading::Value(value) => return Some(value),
            Reading::Counter(value) => (value, 0),
            Reading::Distribution(sum, count) => (sum, count),
        };
        let previous = self.previous.replace(Previous { time, value, count })?;
        // A counter that went down was reset: its first reading after is a new start.
        if value < previous.value || count < previous.count {
            return None;
        }
        match reading {
            Reading::Counter(_) => {
                let seconds = (time - previous.time) as f64 / NANOS_PER_SECOND as f64;
                Some((value - previous.value) / seconds)
            }
            _ if count == previous.count => None,
            _ => Some((value - previous.value) / (count - previous.count) as f64),
        }
    }

    /// Takes the value `x` at `time`.
    fn sample(&mut self, time: i64, x: f64, settings: &Settings, alerts: &mut Vec<Alert>) {
        if self.baseline.n < settings.warmup_points {
            self.baseline.update(x, settings.alpha);
            return;
        }
        let z = self.baseline.z(x, &settings.floors);
        let damped = settings.alpha * settings.anomaly_weight;
        if settings.is_anomalous(z) {
            self.normal_since = None;
            let anomaly = self.anomaly.get_or_insert(Anomaly {
                since: time,
                shadow: Baseline::default(),
            });
            anomaly.shadow.update(x, settings.alpha);
            let (since, shadow) = (anomaly.since, anomaly.shadow);
            if damped > 0.0 {
                self.baseline.update(x, damped);
            }
            let lasted = time - since;
            if self.alert.is_none() && lasted >= settings.min_duration {
                let fired = Fired {
                    name: settings.alert_name.clone(),
                    severity: settings.severity,
                    summary: self.summary(x, z, lasted, settings),
                    starts_at: time,
                };
                alerts.push(self.alert_of(&fired));
                self.alert = Some(fired);
            } else if self.alert.is_some()
                && settings.rebaseline_after > 0
                && lasted >= settings.rebaseline_after
            {
                // The anomaly has become the normal: its points are the new baseline.
                self.baseline.mean = shadow.mean;
                self.baseline.var = shadow.var;
                self.anomaly = None;
            }
            return;
        }
        if self.alert.is_none() {
            // A pending anomaly that did not last, or none: the point is normal.
            self.anomaly = None;
            self.baseline.update(x, settings.alpha);
            return;
        }
        if damped > 0.0 {
            self.baseline.update(x, damped);
        }
        let since = *self.normal_since.get_or_insert(time);
        if time - since >= settings.resolve_after {
            self.resolve(time, alerts);
        }
    }

    /// Resolves the firing alert (if any) at `ends_at` and forgets the anomaly.
    pub fn resolve(&mut self, ends_at: i64, alerts: &mut Vec<Alert>) {
        self.anomaly = None;
        self.normal_since = None;
        if let Some(fired) = self.alert.take() {
            alerts.push(self.alert_of(&fired).resolved(ends_at));
        }
    }

    /// At event time `now`: a series silent for `stale` drops its anomaly, resolving its alert.
    pub fn advance(&mut self, now: i64, settings: &Settings, alerts: &mut Vec<Alert>) {
        let deadline = self.latest.saturating_add(settings.stale);
        if now > deadline && (self.anomaly.is_some() || self.alert.is_some()) {
            self.resolve(deadline, alerts);
        }
    }

    /// When `advance` next has something to do.
    pub fn due(&self, settings: &Settings) -> i64 {
        if self.anomaly.is_some() || self.alert.is_some() {
            self.latest.saturating_add(settings.stale).saturating_add(1)
        } else {
            i64::MAX
        }
    }

    /// The summary of an alert firing on `x`.
    fn summary(&self, x: f64, z: f64, lasted: i64, settings: &Settings) -> String {
        let side = if z > 0.0 { "above" } else { "below" };
        let mut text = format!(
            "service {}: {} = {} is {}σ {side} its baseline {} (σ {})",
            self.service,
            self.series,
            number(x),
            if z.is_finite() {
                format!("{:.1}", z.abs())
            } else {
                "∞".to_owned()
            },
            number(self.baseline.mean),
            number(self.baseline.stddev(&settings.floors)),
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
        self.baseline.check()?;
        let times = [
            self.anomaly.map(|anomaly| anomaly.since),
            self.normal_since,
            self.alert.as_ref().map(|alert| alert.starts_at),
            self.previous.map(|previous| previous.time),
        ];
        if times.iter().flatten().any(|&time| time > self.latest) {
            return Err("a time is ahead of the series".to_owned());
        }
        if self.normal_since.is_some() && self.alert.is_none() {
            return Err("a normal run without an alert".to_owned());
        }
        if let Some(anomaly) = &self.anomaly {
            anomaly.shadow.check()?;
        }
        Ok(())
    }
}

/// A value as text: integers without decimals, others with four significant digits or so.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{value:.0}");
    }
    let decimals = if value.abs() >= 100.0 {
        1
    } else if value.abs() >= 1.0 {
        3
    } else {
        4
    };
    let text = format!("{value:.decimals$}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
