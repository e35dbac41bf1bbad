//! What the detector knows of one template: how often and when it occurred, and the alerts it
//! has firing.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use sluice_sdk::Alert;

use crate::config::AlertLevel;

/// Counts and alerts of one template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "ActivityState", try_from = "ActivityState")]
pub struct Activity {
    /// Occurrences since the template was created.
    pub count: u64,
    /// Event time of the earliest occurrence (Unix ns).
    pub first_seen: i64,
    /// Event time of the latest occurrence (Unix ns).
    pub last_seen: i64,
    /// Event times of the newest `burst_count` occurrences, oldest first: the template bursts
    /// while the oldest of them is inside the burst window.
    pub recent: VecDeque<i64>,
    /// The `LogNovelty` alert, while it fires.
    pub novelty: Option<Incident>,
    /// The `LogTemplateBurst` alert, while it fires.
    pub burst: Option<Incident>,
}

/// The encoded form of an [`Activity`]: the recent times as distances before `last_seen`
/// (about 10 digits each rather than 19).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityState {
    count: u64,
    first_seen: i64,
    last_seen: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    recent_before_last: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    novelty: Option<Incident>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    burst: Option<Incident>,
}

impl From<Activity> for ActivityState {
    fn from(activity: Activity) -> Self {
        let last_seen = activity.last_seen;
        ActivityState {
            count: activity.count,
            first_seen: activity.first_seen,
            last_seen,
            recent_before_last: activity
                .recent
                .iter()
                .map(|&time| last_seen.saturating_sub(time))
                .collect(),
            novelty: activity.novelty,
            burst: activity.burst,
        }
    }
}

impl TryFrom<ActivityState> for Activity {
    type Error = String;

    fn try_from(state: ActivityState) -> Result<Self, String> {
        let last_seen = state.last_seen;
        let recent = state
            .recent_before_last
            .iter()
            .map(|&before| match before {
                0.. => last_seen.checked_sub(before),
                _ => None,
            })
            .collect::<Option<VecDeque<i64>>>()
            .ok_or("a recent occurrence time is out of range")?;
        Ok(Activity {
            count: state.count,
            first_seen: state.first_seen,
            last_seen,
            recent,
            novelty: state.novelty,
            burst: state.burst,
        })
    }
}

/// A firing alert: what is needed to resolve exactly the alert that fired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// Alert severity.
    pub severity: AlertLevel,
    /// Summary.
    pub summary: String,
    /// When the condition started (Unix ns).
    pub starts_at: i64,
}

impl Incident {
    /// The firing alert `name` for a template of `service`.
    pub fn alert(&self, name: &str, service: &str, template_id: &str) -> Alert {
        Alert::firing(
            name,
            self.severity.into(),
            self.summary.clone(),
            self.starts_at,
        )
        .with_label("service", service)
        .with_label("template_id", template_id)
    }
}

impl Activity {
    /// Counts one occurrence at `time`, keeping the newest `burst_count` times.
    pub fn record(&mut self, time: i64, burst_count: usize) {
        if self.count == 0 {
            self.first_seen = time;
            self.last_seen = time;
        } else {
            self.first_seen = self.first_seen.min(time);
            self.last_seen = self.last_seen.max(time);
        }
        self.count = self.count.saturating_add(1);
        let at = self.recent.partition_point(|&recent| recent <= time);
        self.recent.insert(at, time);
        while self.recent.len() > burst_count {
            self.recent.pop_front();
        }
    }

    /// True while an alert fires.
    pub fn is_active(&self) -> bool {
        self.novelty.is_some() || self.burst.is_some()
    }

    /// When the firing `LogNovelty` alert resolves if the template stays quiet.
    pub fn novelty_due(&self, resolve_after: i64) -> Option<i64> {
        self.novelty
            .as_ref()
            .map(|_| self.last_seen.saturating_add(resolve_after))
    }

    /// When the firing `LogTemplateBurst` alert resolves if the template stays quiet: when the
    /// oldest of the newest `burst_count` occurrences leaves the window, the count in the
    /// window drops below `burst_count`.
    pub fn burst_due(&self, window: i64) -> Option<i64> {
        self.burst.as_ref().map(|_| {
            self.recent
                .front()
                .map_or(i64::MIN, |oldest| oldest.saturating_add(window))
        })
    }

    /// Checks an activity decoded from a snapshot; drops recent times beyond `burst_count`
    /// (the config may have changed).
    pub fn check(&mut self, burst_count: usize) -> Result<(), String> {
        if self.count == 0 || self.first_seen > self.last_seen {
            return Err("count or first/last seen out of range".to_owned());
        }
        if self.recent.len() as u64 > self.count
            || self
                .recent
                .iter()
                .zip(self.recent.iter().skip(1))
                .any(|(a, b)| a > b)
            || self
                .recent
                .iter()
                .any(|&time| time < self.first_seen || time > self.last_seen)
        {
            return Err("recent occurrence times are inconsistent".to_owned());
        }
        while self.recent.len() > burst_count {
            self.recent.pop_front();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_recent_times_before_the_last() {
        let mut activity = Activity::default();
        for time in [1_000, 4_000, 9_000] {
            activity.record(time, 2);
        }
        let json = serde_json::to_string(&activity).unwrap();
        assert_eq!(
            json,
            r#"{"count":3,"first_seen":1000,"last_seen":9000,"recent_before_last":[5000,0]}"#
        );
        assert_eq!(serde_json::from_str::<Activity>(&json).unwrap(), activity);
        let negative = json.replace("[5000,0]", "[-1]");
        assert!(serde_json::from_str::<Activity>(&negative).is_err());
    }

    #[test]
    fn keeps_the_newest_times_in_order() {
        let mut activity = Activity::default();
        for time in [5, 1, 9, 7, 3] {
            activity.record(time, 3);
        }
        assert_eq!(activity.recent, [5, 7, 9]);
        assert_eq!(
            (activity.count, activity.first_seen, activity.last_seen),
            (5, 1, 9)
        );
        assert!(activity.check(3).is_ok());
        activity.recent = [9, 7].into();
        assert!(activity.check(3).is_err());
    }
}
