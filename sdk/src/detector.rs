//! Detectors: watch batches, keep state, raise alerts.

use crate::{Alert, AlertSeverity, AlertStatus, LogBatch, Plugin};

/// A detector plugin. The host checkpoints its state with [`snapshot`](Detector::snapshot) and
/// brings it back with [`restore`](Detector::restore) after a restart or a fresh instance.
pub trait Detector: Plugin {
    /// Observes one batch; pushes the alerts it raises or resolves onto `alerts`.
    fn observe(&mut self, batch: &LogBatch<'_>, alerts: &mut Vec<Alert>);

    /// A clock tick (Unix nanoseconds) for time windows. The default does nothing.
    fn tick(&mut self, now: i64, alerts: &mut Vec<Alert>) {
        let _ = (now, alerts);
    }

    /// The state to checkpoint.
    fn snapshot(&self) -> Vec<u8>;

    /// Brings back state from [`snapshot`](Detector::snapshot).
    fn restore(&mut self, state: &[u8]) -> Result<(), String>;
}

impl Alert {
    /// A firing alert with no labels yet.
    pub fn firing(name: &str, severity: AlertSeverity, summary: String, starts_at: i64) -> Self {
        Alert {
            name: name.to_owned(),
            severity,
            status: AlertStatus::Firing,
            labels: Vec::new(),
            summary,
            fingerprint: String::new(),
            starts_at,
            ends_at: None,
        }
    }

    /// The same alert, resolved at `ends_at`.
    pub fn resolved(mut self, ends_at: i64) -> Self {
        self.status = AlertStatus::Resolved;
        self.ends_at = Some(ends_at);
        self
    }

    /// Adds a label.
    pub fn with_label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.to_owned(), value.to_owned()));
        self
    }
}
