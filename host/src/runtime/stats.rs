//! Per-plugin counters: what the gateway's metrics report about each plugin.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// Live counters of one plugin, shared by its sandbox and the metrics endpoint.
#[derive(Default, Debug)]
pub struct PluginStats {
    pub calls: AtomicU64,
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub call_nanos: AtomicU64,
    pub faults: AtomicU64,
    pub traps: AtomicU64,
    pub deadline_hits: AtomicU64,
    pub memory_cap_hits: AtomicU64,
    pub output_bound_hits: AtomicU64,
    pub invalid_outputs: AtomicU64,
    pub instances_created: AtomicU64,
    pub instances_recycled: AtomicU64,
    pub memory_high_water_bytes: AtomicU64,
    pub quarantines: AtomicU64,
    pub quarantined: AtomicBool,
    pub batches_dead_lettered: AtomicU64,
    pub batches_passed_on_fault: AtomicU64,
    pub records_dropped_on_fault: AtomicU64,
    pub parse_errors: AtomicU64,
    /// Size of the detector's last snapshot.
    pub state_bytes: AtomicU64,
    /// Detector snapshots taken for checkpoints.
    pub checkpoints: AtomicU64,
    /// Checkpoints that could not be saved (disk errors).
    pub checkpoint_failures: AtomicU64,
    /// Snapshots refused for being larger than `limits.max_state_bytes` (the detector restarts
    /// afresh).
    pub states_refused: AtomicU64,
    /// Detector states restored from a checkpoint.
    pub restores: AtomicU64,
    /// Checkpointed states the detector refused (it starts afresh).
    pub restore_failures: AtomicU64,
    /// Counters the plugin itself adds through the host interface.
    pub plugin_counters: Mutex<BTreeMap<String, u64>>,
    /// Gauges the plugin itself sets through the host interface.
    pub plugin_gauges: Mutex<BTreeMap<String, f64>>,
}

/// A point-in-time copy of [`PluginStats`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PluginStatsSnapshot {
    pub calls: u64,
    pub records_in: u64,
    pub records_out: u64,
    pub call_nanos: u64,
    pub faults: u64,
    pub traps: u64,
    pub deadline_hits: u64,
    pub memory_cap_hits: u64,
    pub output_bound_hits: u64,
    pub invalid_outputs: u64,
    pub instances_created: u64,
    pub instances_recycled: u64,
    pub memory_high_water_bytes: u64,
    pub quarantines: u64,
    pub quarantined: bool,
    pub batches_dead_lettered: u64,
    pub batches_passed_on_fault: u64,
    pub records_dropped_on_fault: u64,
    pub parse_errors: u64,
    pub state_bytes: u64,
    pub checkpoints: u64,
    pub checkpoint_failures: u64,
    pub states_refused: u64,
    pub restores: u64,
    pub restore_failures: u64,
    pub plugin_counters: BTreeMap<String, u64>,
}

impl PluginStats {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, delta: u64) {
        counter.fetch_add(delta, Relaxed);
    }

    /// Raises the memory high-water mark.
    pub fn observe_memory(&self, bytes: u64) {
        // Read first: the mark rarely moves, and a load is cheaper than a read-modify-write.
        if bytes > self.memory_high_water_bytes.load(Relaxed) {
            self.memory_high_water_bytes.fetch_max(bytes, Relaxed);
        }
    }

    /// Copies the counters.
    /// A checkpoint holding this plugin's state could not be saved.
    pub fn add_checkpoint_failure(&self) {
        Self::add(&self.checkpoint_failures, 1);
    }

    pub fn snapshot(&self) -> PluginStatsSnapshot {
        PluginStatsSnapshot {
            calls: self.calls.load(Relaxed),
            records_in: self.records_in.load(Relaxed),
            records_out: self.records_out.load(Relaxed),
            call_nanos: self.call_nanos.load(Relaxed),
            faults: self.faults.load(Relaxed),
            traps: self.traps.load(Relaxed),
            deadline_hits: self.deadline_hits.load(Relaxed),
            memory_cap_hits: self.memory_cap_hits.load(Relaxed),
            output_bound_hits: self.output_bound_hits.load(Relaxed),
            invalid_outputs: self.invalid_outputs.load(Relaxed),
            instances_created: self.instances_created.load(Relaxed),
            instances_recycled: self.instances_recycled.load(Relaxed),
            memory_high_water_bytes: self.memory_high_water_bytes.load(Relaxed),
            quarantines: self.quarantines.load(Relaxed),
            quarantined: self.quarantined.load(Relaxed),
            batches_dead_lettered: self.batches_dead_lettered.load(Relaxed),
            batches_passed_on_fault: self.batches_passed_on_fault.load(Relaxed),
            records_dropped_on_fault: self.records_dropped_on_fault.load(Relaxed),
            parse_errors: self.parse_errors.load(Relaxed),
            state_bytes: self.state_bytes.load(Relaxed),
            checkpoints: self.checkpoints.load(Relaxed),
            checkpoint_failures: self.checkpoint_failures.load(Relaxed),
            states_refused: self.states_refused.load(Relaxed),
            restores: self.restores.load(Relaxed),
            restore_failures: self.restore_failures.load(Relaxed),
            plugin_counters: self
                .plugin_counters
                .lock()
                .map(|counters| counters.clone())
                .unwrap_or_default(),
        }
    }
}
