//! Alerts: what detectors (and the gateway itself) raise, on their way to the alert sinks.
//!
//! An [`Alert`] leaves a pipeline into the queue of each alert sink its pipeline names. There,
//! the sink's [`router`] enriches it ([`enrich`]), de-duplicates, groups, silences
//! ([`silences`]) and rate-limits ([`rate_limit`]); [`formats`] encode each notification the way
//! its receiver documents it, and [`delivery`] sends it with retry. [`sink`] ties them together;
//! [`config`] is the `[alerts]` table every alert sink shares.

pub mod config;
pub mod delivery;
pub mod enrich;
pub mod formats;
pub mod rate_limit;
pub mod router;
pub mod silences;
pub mod sink;

pub use config::AlertsConfig;
pub use router::{RouterStats, Routing};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// How bad an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertSeverity {
    Info,
    Warning,
    Error,
    Critical,
}

/// Whether the alert fires or has resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// An alert, the narrow type between detectors and the alert router.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// Alert name, such as `ErrorBurst`.
    pub name: String,
    pub severity: AlertSeverity,
    pub status: AlertStatus,
    /// Labels, sorted by key.
    pub labels: Vec<(String, String)>,
    /// One line for humans.
    pub summary: String,
    /// Identity for de-duplication: SHA-256 of name and labels unless the source set one.
    pub fingerprint: String,
    /// Unix nanoseconds.
    pub starts_at: i64,
    /// Unix nanoseconds, once resolved.
    pub ends_at: Option<i64>,
    /// Which plugin (or `sluice` itself) raised it.
    pub source: String,
}

impl Alert {
    /// Sorts labels and derives the fingerprint when none was given.
    pub fn normalised(mut self) -> Alert {
        self.labels.sort();
        if self.fingerprint.is_empty() {
            let mut hasher = Sha256::new();
            hasher.update(self.name.as_bytes());
            for (key, value) in &self.labels {
                hasher.update([0]);
                hasher.update(key.as_bytes());
                hasher.update([0]);
                hasher.update(value.as_bytes());
            }
            self.fingerprint = hex::encode(&hasher.finalize()[..8]);
        }
        self
    }
}
