//! A detector that counts the records it has seen, alerts at every 10th, and panics on a record
//! whose body is `trigger`: enough to test state carried across instances and faults.

use sluice_sdk::{Alert, AlertSeverity, Detector, LogBatch, Plugin};

/// Counts records.
pub struct Counter {
    seen: u64,
}

impl Plugin for Counter {
    type Config = ();

    fn new(_config: ()) -> Result<Self, String> {
        Ok(Counter { seen: 0 })
    }
}

impl Detector for Counter {
    fn observe(&mut self, batch: &LogBatch<'_>, alerts: &mut Vec<Alert>) {
        if batch.bodies().iter().any(|body| body == "trigger") {
            panic!("hostile detector panics on purpose");
        }
        for _ in 0..batch.len() {
            self.seen += 1;
            if self.seen.is_multiple_of(10) {
                alerts.push(Alert::firing(
                    "Tenth",
                    AlertSeverity::Info,
                    format!("seen {}", self.seen),
                    0,
                ));
            }
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.seen.to_le_bytes().to_vec()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let bytes: [u8; 8] = state
            .try_into()
            .map_err(|_| format!("state of {} bytes, expected 8", state.len()))?;
        self.seen = u64::from_le_bytes(bytes);
        Ok(())
    }
}

sluice_sdk::export_detector!(Counter);
