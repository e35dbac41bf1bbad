//! `{{name}}`: a Sluice detector plugin.
//!
//! It counts records whose body contains `pattern` and fires one alert when the count reaches
//! `threshold`; its state survives restarts through `snapshot`/`restore`. Replace the logic with
//! your own; keep the unit tests honest.

use serde::Deserialize;
use sluice_sdk::{Alert, AlertSeverity, Detector, LogBatch, Plugin};

/// Configuration, from the plugin's `config` table in the gateway config.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Text to look for in bodies. Default: "OutOfMemory".
    pub pattern: String,
    /// Matches that fire the alert. Default: 3.
    pub threshold: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config { pattern: "OutOfMemory".into(), threshold: 3 }
    }
}

/// The plugin.
pub struct MyDetector {
    config: Config,
    matches: u64,
}

impl Plugin for MyDetector {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.threshold == 0 {
            return Err("threshold must be at least 1".into());
        }
        Ok(MyDetector { config, matches: 0 })
    }
}

impl Detector for MyDetector {
    fn observe(&mut self, batch: &LogBatch<'_>, alerts: &mut Vec<Alert>) {
        for record in batch.records() {
            if !record.body().contains(&self.config.pattern) {
                continue;
            }
            self.matches += 1;
            if self.matches == self.config.threshold {
                let summary = format!("`{}` seen {} times", self.config.pattern, self.matches);
                alerts.push(Alert::firing("{{name}}", AlertSeverity::Warning, summary, record.timestamp()));
            }
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.matches.to_le_bytes().to_vec()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let bytes: [u8; 8] = state.try_into().map_err(|_| format!("state of {} bytes, expected 8", state.len()))?;
        self.matches = u64::from_le_bytes(bytes);
        Ok(())
    }
}

sluice_sdk::export_detector!(MyDetector);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::LogRecord;

    #[test]
    fn fires_once_at_the_threshold_and_survives_a_restore() {
        let mut plugin = MyDetector::from_json_config(r#"{"threshold": 2}"#).unwrap();
        let mut alerts = Vec::new();
        plugin.observe(&LogBatch::from_records(&[LogRecord::new(17, "OutOfMemory in worker")]), &mut alerts);
        assert!(alerts.is_empty());
        let state = plugin.snapshot();
        let mut restarted = MyDetector::from_json_config(r#"{"threshold": 2}"#).unwrap();
        restarted.restore(&state).unwrap();
        let batch = [LogRecord::new(17, "OutOfMemory again"), LogRecord::new(17, "OutOfMemory and again")];
        restarted.observe(&LogBatch::from_records(&batch), &mut alerts);
        assert_eq!(alerts.len(), 1);
    }
}
