//! Detectors: watch batches, keep state, raise alerts.

use crate::{Alert, AlertSeverity, AlertStatus, LogBatch, MetricBatch, Plugin, SpanBatch};

/// A detector plugin. The host checkpoints its state with [`snapshot`](Detector::snapshot) at
/// the pipeline's checkpoint interval and brings it back with [`restore`](Detector::restore)
/// after a restart (even a `kill -9`) or in a fresh instance, so a window in progress is kept.
///
/// Each `observe*` method has a default that ignores the signal: implement the ones you read.
pub trait Detector: Plugin {
    /// Observes one batch of log records; pushes the alerts it raises or resolves onto `alerts`.
    fn observe(&mut self, batch: &LogBatch<'_>, alerts: &mut Vec<Alert>) {
        let _ = (batch, alerts);
    }

    /// Observes one batch of metric points.
    fn observe_metrics(&mut self, batch: &MetricBatch<'_>, alerts: &mut Vec<Alert>) {
        let _ = (batch, alerts);
    }

    /// Observes one batch of spans.
    fn observe_spans(&mut self, batch: &SpanBatch<'_>, alerts: &mut Vec<Alert>) {
        let _ = (batch, alerts);
    }

    /// A wall-clock tick (Unix nanoseconds) at the pipeline's tick interval, so windows close
    /// while no data comes. The default does nothing.
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
