//! The state of one service: its clock, its window and its incident, and the alert lifecycle.

use serde::{Deserialize, Serialize};
use sluice_sdk::Alert;

use crate::config::{AlertLevel, NANOS_PER_SECOND, Settings};
use crate::window::Window;

/// One tracked service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The service's clock: the latest event time seen for it, moved on by ticks (Unix ns).
    pub clock: i64,
    /// How far the service's event time trails the detector's event clock: the event clock
    /// minus the time of the record that last moved `clock` (ns). Between its records, the
    /// clock follows the event clock at this distance.
    pub lag: i64,
    /// When the service was last seen, as a sequence number (for least-recently-seen eviction).
    pub seen: u64,
    /// Counts in the window.
    pub window: Window,
    /// The alert currently firing, if any.
    pub incident: Option<Incident>,
}

/// A firing alert: everything needed to resolve exactly the alert that fired, even if the
/// config changed in between (after a restore).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// Alert name.
    pub name: String,
    /// Alert severity.
    pub severity: AlertLevel,
    /// Value of the `window` label.
    pub window: String,
    /// Summary.
    pub summary: String,
    /// When the count crossed the threshold (Unix ns).
    pub starts_at: i64,
    /// Since when the count has been below the threshold, if it is.
    pub below_since: Option<i64>,
}

impl Incident {
    /// The firing alert for `service`.
    pub fn alert(&self, service: &str) -> Alert {
        Alert::firing(
            &self.name,
            self.severity.into(),
            self.summary.clone(),
            self.starts_at,
        )
        .with_label("service", service)
        .with_label("window", &self.window)
    }
}

/// The summary of an alert for `service` with `errors` errors among `total` records.
pub fn summary(service: &str, errors: u64, total: u64, settings: &Settings) -> String {
    let mut text = format!(
        "service {service}: {errors} errors in the last {} s (threshold {})",
        settings.window_seconds, settings.threshold
    );
    if settings.counts_all_records() && total > 0 {
        text.push_str(&format!(
            ", {}% of {total} records (min {}%)",
            percent(errors as f64 / total as f64),
            percent(settings.min_ratio)
        ));
    }
    text
}

/// A fraction as a percentage with at most one decimal.
fn percent(fraction: f64) -> String {
    let text = format!("{:.1}", fraction * 100.0);
    text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
}

impl Service {
    /// A service first seen at `clock`.
    pub fn new(clock: i64, lag: i64, seen: u64) -> Self {
        Service {
            clock,
            lag,
            seen,
            window: Window::default(),
            incident: None,
        }
    }

    /// True when the service holds nothing worth keeping.
    pub fn is_idle(&self) -> bool {
        self.window.is_empty() && self.incident.is_none()
    }

    /// Counts one record at `time`. A record newer than the clock moves it (and sets `lag`);
    /// an older one still inside the window is counted where it belongs. Returns false for a
    /// record older than the window, which is not counted.
    pub fn count(
        &mut self,
        name: &str,
        time: i64,
        lag: i64,
        is_error: bool,
        settings: &Settings,
        alerts: &mut Vec<Alert>,
    ) -> bool {
        if time > self.clock {
            self.advance(name, time, settings, alerts);
            self.lag = lag;
        }
        let slot = settings.geometry.slot(time);
        if slot < settings.geometry.first_live_slot(self.clock) {
            return false;
        }
        self.window.add(slot, is_error);
        self.evaluate(name, self.clock, settings, alerts);
        true
    }

    /// Moves the clock forward to `to`. Buckets leave the window at their exact instants and a
    /// pending resolution happens at its exact instant, so the alerts do not depend on how
    /// often the clock is moved.
    pub fn advance(&mut self, name: &str, to: i64, settings: &Settings, alerts: &mut Vec<Alert>) {
        if to <= self.clock {
            return;
        }
        // A no-op unless the state was restored under a different config.
        self.evaluate(name, self.clock, settings, alerts);
        loop {
            let expiry = self
                .window
                .oldest_slot()
                .map(|slot| settings.geometry.expiry(slot))
                .filter(|&at| at <= to);
            if let Some(due) = self.resolution_due(settings)
                && due <= expiry.unwrap_or(to)
            {
                self.resolve(name, due, alerts);
                continue;
            }
            let Some(at) = expiry else { break };
            self.window.pop_oldest();
            self.clock = self.clock.max(at);
            self.evaluate(name, self.clock, settings, alerts);
        }
        self.clock = to;
    }

    /// When the firing alert resolves if nothing changes.
    fn resolution_due(&self, settings: &Settings) -> Option<i64> {
        let below_since = self.incident.as_ref()?.below_since?;
        Some(below_since.saturating_add(settings.resolve_after))
    }

    /// Whether the window is over the threshold.
    fn over(&self, settings: &Settings) -> bool {
        let (errors, total) = (self.window.errors(), self.window.total());
        errors >= settings.threshold
            && (!settings.counts_all_records()
                || errors as f64 >= settings.min_ratio * total as f64)
    }

    /// Fires, holds or resolves after the window changed at time `at`.
    fn evaluate(&mut self, name: &str, at: i64, settings: &Settings, alerts: &mut Vec<Alert>) {
        let over = self.over(settings);
        match &mut self.incident {
            None if over => {
                let incident = Incident {
                    name: settings.alert_name.clone(),
                    severity: settings.severity,
                    window: format!("{}s", settings.window_seconds),
                    summary: summary(name, self.window.errors(), self.window.total(), settings),
                    starts_at: at,
                    below_since: None,
                };
                alerts.push(incident.alert(name));
                self.incident = Some(incident);
            }
            None => {}
            Some(incident) if over => incident.below_since = None,
            Some(incident) => {
                let below_since = *incident.below_since.get_or_insert(at);
                let due = below_since.saturating_add(settings.resolve_after);
                if due <= at {
                    self.resolve(name, due, alerts);
                }
            }
        }
    }

    /// Resolves the firing alert at `ends_at`.
    fn resolve(&mut self, name: &str, ends_at: i64, alerts: &mut Vec<Alert>) {
        if let Some(incident) = self.incident.take() {
            alerts.push(incident.alert(name).resolved(ends_at));
        }
    }

    /// Forgets the service: a firing alert is resolved at the service's clock, since nothing
    /// will watch it any more.
    pub fn forget(mut self, name: &str, alerts: &mut Vec<Alert>) {
        let ends_at = self.clock;
        self.resolve(name, ends_at, alerts);
    }

    /// Refreshes the summary of an alert that fired during the current batch to the count at
    /// the end of the batch. Returns the new summary.
    pub fn refresh_summary(
        &mut self,
        name: &str,
        starts_at: i64,
        settings: &Settings,
    ) -> Option<String> {
        let text = summary(name, self.window.errors(), self.window.total(), settings);
        let incident = self.incident.as_mut()?;
        if incident.starts_at != starts_at || incident.below_since.is_some() {
            return None;
        }
        incident.summary = text.clone();
        Some(text)
    }

    /// Checks a service decoded from a snapshot taken with buckets of `bucket_seconds`.
    pub fn check(&self, bucket_seconds: u32, max_future_skew: i64) -> Result<(), String> {
        if self.lag < -max_future_skew {
            return Err(format!("lag {} is out of range", self.lag));
        }
        let clock_slot = self
            .clock
            .div_euclid(i64::from(bucket_seconds.max(1)) * NANOS_PER_SECOND);
        if self
            .window
            .newest_slot()
            .is_some_and(|slot| slot > clock_slot)
        {
            return Err("a bucket is ahead of the clock".to_owned());
        }
        if let Some(incident) = &self.incident {
            let below_ok = incident
                .below_since
                .is_none_or(|since| since >= incident.starts_at && since <= self.clock);
            if incident.starts_at > self.clock || !below_ok {
                return Err("the incident times are inconsistent with the clock".to_owned());
            }
        }
        Ok(())
    }
}
