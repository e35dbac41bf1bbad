//! One plugin's sandbox: the instance that serves its calls, the deadline, memory cap and output
//! bound of each call, and the fault policy. A faulted instance is thrown away and the next call
//! gets a fresh one; a plugin that keeps faulting is quarantined (bypassed by its policy) and an
//! alert says so. Instances are also recycled before they fail, after a number of calls or past a
//! memory high-water mark, carrying a detector's state across.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use wasmtime::component::Resource;
use wasmtime::{Store, Trap};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::bindings::{
    self, LogBatchResource, MetricBatchResource, SpanBatchResource, detector, filter, parser, wit,
};
use super::engine::{EPOCH_TICK, LoadedPlugin, PluginPre};
use super::flat::{FlatMetrics, FlatSpans};
use super::spec::{Grants, OnError};
use super::state::{LentBatch, MemoryCapExceeded, PluginState};
use super::stats::PluginStats;
use crate::alerts::{Alert, AlertSeverity, AlertStatus};
use crate::model::{LogBatch, Resource as RecordResource, StringColumn};

/// Why a call did not give a usable answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The call ran past its deadline and was interrupted.
    Deadline { deadline_ms: u64 },
    /// The plugin grew its memory past its cap.
    MemoryCap(String),
    /// The plugin trapped (a panic, an out-of-bounds access, `unreachable`).
    Trap(String),
    /// The plugin returned more than its output bound.
    OutputTooLarge { bytes: usize, bound: u64 },
    /// The plugin returned something malformed (a mask of the wrong length, bad UTF-8...).
    InvalidOutput(String),
    /// The plugin returned an error for the batch (parsers may).
    PluginError(String),
    /// A fresh instance could not be made.
    Instantiate(String),
    /// The plugin is quarantined; it was not called.
    Quarantined,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Deadline { deadline_ms } => {
                write!(f, "interrupted at its deadline of {deadline_ms} ms")
            }
            Fault::MemoryCap(message) => write!(f, "stopped at its memory cap: {message}"),
            Fault::Trap(message) => write!(f, "trapped: {message}"),
            Fault::OutputTooLarge { bytes, bound } => {
                write!(
                    f,
                    "returned {bytes} bytes, over its output bound of {bound} bytes"
                )
            }
            Fault::InvalidOutput(message) => write!(f, "returned invalid output: {message}"),
            Fault::PluginError(message) => write!(f, "failed the batch: {message}"),
            Fault::Instantiate(message) => write!(f, "could not be instantiated: {message}"),
            Fault::Quarantined => write!(f, "is quarantined"),
        }
    }
}

/// What came of a filter call, after the fault policy.
#[derive(Debug)]
pub struct FilterOutcome {
    /// Records that continue down the pipeline.
    pub output: LogBatch,
    /// Records the filter dropped (or the policy dropped).
    pub dropped: usize,
    /// The batch, unchanged, when the policy is `dead-letter` and the call faulted.
    pub dead_letter: Option<LogBatch>,
    pub fault: Option<Fault>,
}

/// What came of a parser call, after the fault policy.
#[derive(Debug)]
pub struct ParseOutcome {
    /// Records that continue down the pipeline.
    pub output: LogBatch,
    /// Records flagged with `sluice.parse_error`.
    pub parse_errors: usize,
    /// The raw input as records, when the policy is `dead-letter` and the call faulted.
    pub dead_letter: Option<LogBatch>,
    /// Raw lines dropped by the policy.
    pub dropped: usize,
    pub fault: Option<Fault>,
}

/// What came of a detector call.
#[derive(Debug, Default)]
pub struct DetectOutcome {
    pub alerts: Vec<Alert>,
    pub fault: Option<Fault>,
}

/// Errors about a plugin's output, raised on the host side of the boundary.
#[derive(Debug)]
enum OutputFault {
    TooLarge { bytes: usize, bound: u64 },
    Invalid(String),
    PluginError(String),
}

enum Exports {
    Filter(filter::Filter),
    Parser(parser::Parser),
    Detector(detector::Detector),
}

struct Instance {
    store: Store<PluginState>,
    exports: Exports,
    calls: u64,
}

/// The sandbox of one plugin. Calls are synchronous and take `&mut self`: a pipeline worker owns
/// its sandbox; several workers each own one of the same [`LoadedPlugin`].
pub struct Sandbox {
    plugin: Arc<LoadedPlugin>,
    config_json: String,
    instance: Option<Instance>,
    consecutive_faults: u32,
    quarantined_until: Option<Instant>,
    /// Detector state to restore into the next instance.
    carried_state: Option<Vec<u8>>,
    /// The gateway's own alerts about this plugin (quarantine), for the pipeline to route.
    pending_alerts: Vec<Alert>,
}

fn wasi_context(grants: &Grants) -> anyhow::Result<WasiCtx> {
    let mut builder = WasiCtxBuilder::new();
    for name in &grants.env {
        if let Ok(value) = std::env::var(name) {
            builder.env(name, value);
        }
    }
    for dir in &grants.dirs {
        let guest = dir
            .guest
            .clone()
            .unwrap_or_else(|| dir.host.display().to_string());
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        builder
            .preopened_dir(&dir.host, &guest, perms)
            .map_err(|error| anyhow!("granting directory {}: {error}", dir.host.display()))?;
    }
    Ok(builder.build())
}

fn ticks(milliseconds: u64) -> u64 {
    // One tick more than the budget: the first tick may come at any moment of the current one.
    milliseconds.div_ceil(EPOCH_TICK.as_millis().max(1) as u64) + 1
}

impl Sandbox {
    /// Makes the plugin's first instance and runs its `init`; an `init` error refuses the plugin
    /// with the plugin's own message.
    pub fn new(plugin: Arc<LoadedPlugin>) -> anyhow::Result<Self> {
        let config_json = match &plugin.spec.config {
            serde_json::Value::Null => String::new(),
            config => config.to_string(),
        };
        let mut sandbox = Sandbox {
            plugin,
            config_json,
            instance: None,
            consecutive_faults: 0,
            quarantined_until: None,
            carried_state: None,
            pending_alerts: Vec::new(),
        };
        let instance = sandbox.instantiate().map_err(|error| {
            anyhow!(
                "plugin `{}` ({}): {error}",
                sandbox.plugin.spec.name,
                sandbox.plugin.spec.path.display()
            )
        })?;
        sandbox.instance = Some(instance);
        Ok(sandbox)
    }

    /// The loaded plugin.
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// The plugin's counters.
    pub fn stats(&self) -> &Arc<PluginStats> {
        &self.plugin.stats
    }

    /// Whether the plugin is quarantined now.
    pub fn is_quarantined(&self) -> bool {
        self.quarantined_until
            .is_some_and(|until| Instant::now() < until)
    }

    /// Takes the gateway's own alerts about this plugin.
    pub fn take_alerts(&mut self) -> Vec<Alert> {
        std::mem::take(&mut self.pending_alerts)
    }

    fn instantiate(&mut self) -> anyhow::Result<Instance> {
        let spec = &self.plugin.spec;
        let wasi = wasi_context(&spec.grants)?;
        let state = PluginState::new(
            wasi,
            (spec.limits.memory_mb as usize) << 20,
            Arc::from(spec.name.as_str()),
            self.plugin.stats.clone(),
        );
        let mut store = Store::new(&self.plugin.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(ticks(spec.limits.init_deadline_ms));
        let exports = match &self.plugin.pre {
            PluginPre::Filter(pre) => {
                Exports::Filter(pre.instantiate(&mut store).map_err(|e| anyhow!("{e}"))?)
            }
            PluginPre::Parser(pre) => {
                Exports::Parser(pre.instantiate(&mut store).map_err(|e| anyhow!("{e}"))?)
            }
            PluginPre::Detector(pre) => {
                Exports::Detector(pre.instantiate(&mut store).map_err(|e| anyhow!("{e}"))?)
            }
        };
        PluginStats::add(&self.plugin.stats.instances_created, 1);
        let init = match &exports {
            Exports::Filter(exports) => exports.call_init(&mut store, &self.config_json),
            Exports::Parser(exports) => exports.call_init(&mut store, &self.config_json),
            Exports::Detector(exports) => exports.call_init(&mut store, &self.config_json),
        };
        match init {
            Ok(Ok(())) => {}
            Ok(Err(message)) => return Err(anyhow!("refused its config: {message}")),
            Err(error) => {
                return Err(anyhow!(
                    "init failed: {}",
                    describe_error(&error, &store, spec.limits.init_deadline_ms)
                ));
            }
        }
        if let (Exports::Detector(exports), Some(state)) = (&exports, &self.carried_state) {
            match exports.call_restore(&mut store, state) {
                Ok(Ok(())) => {}
                Ok(Err(message)) => {
                    tracing::warn!(plugin = %spec.name, "detector refused its carried state: {message}")
                }
                Err(error) => return Err(anyhow!("restore failed: {error}")),
            }
        }
        Ok(Instance {
            store,
            exports,
            calls: 0,
        })
    }

    /// Makes sure there is an instance to call, unless the plugin is quarantined.
    fn ready(&mut self) -> Result<(), Fault> {
        if let Some(until) = self.quarantined_until {
            if Instant::now() < until {
                return Err(Fault::Quarantined);
            }
            self.quarantined_until = None;
            self.consecutive_faults = 0;
            self.plugin.stats.quarantined.store(false, Relaxed);
            tracing::info!(plugin = %self.plugin.spec.name, "quarantine over; trying the plugin again");
        }
        if self.instance.is_none() {
            match self.instantiate() {
                Ok(instance) => self.instance = Some(instance),
                Err(error) => {
                    return Err(self.record_fault(Fault::Instantiate(format!("{error:#}"))));
                }
            }
        }
        Ok(())
    }

    /// Runs one call under the plugin's limits, lending it `lent` for the call (`call` gets the
    /// store, the exports and the batch's handle; host-side checks of its output come back as
    /// [`OutputFault`]). Gives the lent batch back whatever happens.
    fn call<R>(
        &mut self,
        records_in: usize,
        lent: LentBatch,
        call: impl FnOnce(
            &mut Store<PluginState>,
            &Exports,
            Resource<LogBatchResource>,
        ) -> wasmtime::Result<Result<R, OutputFault>>,
    ) -> (Result<R, Fault>, LentBatch) {
        if let Err(fault) = self.ready() {
            return (Err(fault), lent);
        }
        let plugin = &*self.plugin;
        let (limits, stats) = (&plugin.spec.limits, &*plugin.stats);
        let Some(instance) = self.instance.as_mut() else {
            return (Err(Fault::Instantiate("no instance".into())), lent);
        };
        instance.store.set_epoch_deadline(ticks(limits.deadline_ms));
        instance.calls += 1;
        let handle = instance.store.data_mut().lend(lent);
        // The two clock reads of a call: its duration is what the plugin's metrics report.
        let started = Instant::now();
        let result = call(&mut instance.store, &instance.exports, handle);
        let elapsed = started.elapsed();
        let lent = instance.store.data_mut().take_lent();
        PluginStats::add(&stats.calls, 1);
        PluginStats::add(&stats.records_in, records_in as u64);
        PluginStats::add(&stats.call_nanos, elapsed.as_nanos() as u64);
        let memory_bytes = instance.store.data().limiter.memory_bytes;
        stats.observe_memory(memory_bytes as u64);
        let fault = match result {
            Ok(Ok(value)) => {
                self.consecutive_faults = 0;
                let recycle = instance.calls >= limits.max_calls_per_instance
                    || memory_bytes as u64 > limits.recycle_memory_mb << 20;
                if recycle {
                    self.recycle();
                }
                return (Ok(value), lent);
            }
            Ok(Err(OutputFault::TooLarge { bytes, bound })) => {
                PluginStats::add(&stats.output_bound_hits, 1);
                Fault::OutputTooLarge { bytes, bound }
            }
            Ok(Err(OutputFault::Invalid(message))) => {
                PluginStats::add(&stats.invalid_outputs, 1);
                Fault::InvalidOutput(message)
            }
            Ok(Err(OutputFault::PluginError(message))) => Fault::PluginError(message),
            Err(error) => {
                if error.downcast_ref::<MemoryCapExceeded>().is_some() {
                    PluginStats::add(&stats.memory_cap_hits, 1);
                    Fault::MemoryCap(
                        error
                            .downcast_ref::<MemoryCapExceeded>()
                            .map(|e| e.to_string())
                            .unwrap_or_default(),
                    )
                } else if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                    PluginStats::add(&stats.deadline_hits, 1);
                    Fault::Deadline {
                        deadline_ms: limits.deadline_ms,
                    }
                } else {
                    PluginStats::add(&stats.traps, 1);
                    Fault::Trap(describe_error(&error, &instance.store, limits.deadline_ms))
                }
            }
        };
        // A faulted instance may be in any state: never call it again.
        self.instance = None;
        (Err(self.record_fault(fault)), lent)
    }

    fn record_fault(&mut self, fault: Fault) -> Fault {
        let stats = &self.plugin.stats;
        PluginStats::add(&stats.faults, 1);
        self.consecutive_faults += 1;
        let spec = &self.plugin.spec;
        tracing::warn!(plugin = %spec.name, consecutive = self.consecutive_faults, "plugin {fault}");
        if self.consecutive_faults >= spec.limits.quarantine_after.max(1) {
            let seconds = spec.limits.quarantine_seconds;
            self.quarantined_until = Some(Instant::now() + Duration::from_secs(seconds));
            PluginStats::add(&stats.quarantines, 1);
            stats.quarantined.store(true, Relaxed);
            tracing::error!(plugin = %spec.name, seconds, "plugin quarantined after {} consecutive faults", self.consecutive_faults);
            let summary = format!(
                "plugin `{}` quarantined for {seconds} s after {} consecutive faults; last: it {fault}; its batches follow on_error = {:?}",
                spec.name, self.consecutive_faults, spec.on_error
            );
            self.pending_alerts
                .push(self.gateway_alert("PluginQuarantined", summary));
        }
        fault
    }

    /// An alert the gateway raises about this plugin.
    fn gateway_alert(&self, name: &str, summary: String) -> Alert {
        Alert {
            name: name.into(),
            severity: AlertSeverity::Critical,
            status: AlertStatus::Firing,
            labels: vec![("plugin".into(), self.plugin.spec.name.clone())],
            summary,
            fingerprint: String::new(),
            starts_at: now_nanos(),
            ends_at: None,
            source: "sluice".into(),
        }
        .normalised()
    }

    /// Replaces the instance before it fails, carrying a detector's state across.
    fn recycle(&mut self) {
        let Some(mut instance) = self.instance.take() else {
            return;
        };
        if let Exports::Detector(exports) = &instance.exports {
            instance
                .store
                .set_epoch_deadline(ticks(self.plugin.spec.limits.deadline_ms));
            let bound = self.plugin.spec.limits.max_state_bytes;
            match exports.call_snapshot(&mut instance.store) {
                Ok(state) if state.len() as u64 <= bound => self.carried_state = Some(state),
                Ok(state) => {
                    PluginStats::add(&self.plugin.stats.states_refused, 1);
                    tracing::error!(plugin = %self.plugin.spec.name, bytes = state.len(), bound, "detector state over limits.max_state_bytes at recycling: the new instance starts afresh");
                    self.carried_state = None;
                }
                Err(error) => {
                    tracing::warn!(plugin = %self.plugin.spec.name, "snapshot before recycling failed: {error}")
                }
            }
        }
        PluginStats::add(&self.plugin.stats.instances_recycled, 1);
    }

    /// Runs a filter over one batch and applies its verdict, or the fault policy.
    pub fn filter(&mut self, batch: LogBatch) -> FilterOutcome {
        let len = batch.len();
        if len == 0 {
            return FilterOutcome {
                output: batch,
                dropped: 0,
                dead_letter: None,
                fault: None,
            };
        }
        let bound = self.plugin.spec.limits.max_output_bytes;
        // The batch moves into the store for the call and comes back after it: no copy of its
        // records, no allocation.
        let (result, lent) = self.call(len, LentBatch::Owned(batch), |store, exports, handle| {
            let Exports::Filter(exports) = exports else {
                return Ok(Err(OutputFault::Invalid("not a filter".into())));
            };
            let result = exports.call_filter_logs(store, handle)?;
            let bytes = bindings::filter_result_size(&result);
            if bytes as u64 > bound {
                return Ok(Err(OutputFault::TooLarge { bytes, bound }));
            }
            Ok(bindings::filter_verdict(result, len).map_err(OutputFault::Invalid))
        });
        let batch = lent.into_owned();
        match result {
            Ok(verdict) => {
                let output = batch.select_and_edit(verdict.keep.as_deref(), &verdict.edits);
                PluginStats::add(&self.plugin.stats.records_out, output.len() as u64);
                FilterOutcome {
                    dropped: len - output.len(),
                    output,
                    dead_letter: None,
                    fault: None,
                }
            }
            Err(fault) => self.filter_fault(batch, fault),
        }
    }

    fn filter_fault(&mut self, batch: LogBatch, fault: Fault) -> FilterOutcome {
        let stats = &self.plugin.stats;
        match self.plugin.spec.on_error {
            OnError::Pass => {
                PluginStats::add(&stats.batches_passed_on_fault, 1);
                PluginStats::add(&stats.records_out, batch.len() as u64);
                FilterOutcome {
                    output: batch,
                    dropped: 0,
                    dead_letter: None,
                    fault: Some(fault),
                }
            }
            OnError::Drop => {
                PluginStats::add(&stats.records_dropped_on_fault, batch.len() as u64);
                FilterOutcome {
                    dropped: batch.len(),
                    output: LogBatch::new(),
                    dead_letter: None,
                    fault: Some(fault),
                }
            }
            OnError::DeadLetter => {
                PluginStats::add(&stats.batches_dead_lettered, 1);
                FilterOutcome {
                    output: LogBatch::new(),
                    dropped: 0,
                    dead_letter: Some(batch),
                    fault: Some(fault),
                }
            }
        }
    }

    /// Runs a parser over raw lines from `source` received at `received` (Unix nanoseconds).
    /// Its records get `resource`. On a fault the policy applies to the raw lines, as records
    /// whose body is the line.
    pub fn parse(
        &mut self,
        lines: &StringColumn,
        source: &str,
        received: i64,
        resource: &Arc<RecordResource>,
    ) -> ParseOutcome {
        let input = wit::RawInput {
            lines: lines.into(),
            source: source.to_owned(),
            received,
        };
        let bound = self.plugin.spec.limits.max_output_bytes;
        let (result, _) = self.call(lines.len(), LentBatch::Nothing, move |store, exports, _| {
            let Exports::Parser(exports) = exports else {
                return Ok(Err(OutputFault::Invalid("not a parser".into())));
            };
            let records = match exports.call_parse(store, &input)? {
                Ok(records) => records,
                Err(message) => return Ok(Err(OutputFault::PluginError(message))),
            };
            let bytes = bindings::log_records_size(&records);
            if bytes as u64 > bound {
                return Ok(Err(OutputFault::TooLarge { bytes, bound }));
            }
            Ok(bindings::parsed_batch(records, received, resource).map_err(OutputFault::Invalid))
        });
        let stats = &self.plugin.stats;
        match result {
            Ok((output, parse_errors)) => {
                PluginStats::add(&stats.records_out, output.len() as u64);
                PluginStats::add(&stats.parse_errors, parse_errors as u64);
                ParseOutcome {
                    output,
                    parse_errors,
                    dead_letter: None,
                    dropped: 0,
                    fault: None,
                }
            }
            Err(fault) => {
                let raw = raw_lines_batch(lines, received, resource);
                match self.plugin.spec.on_error {
                    OnError::Pass => {
                        PluginStats::add(&stats.batches_passed_on_fault, 1);
                        ParseOutcome {
                            output: raw,
                            parse_errors: 0,
                            dead_letter: None,
                            dropped: 0,
                            fault: Some(fault),
                        }
                    }
                    OnError::Drop => {
                        PluginStats::add(&stats.records_dropped_on_fault, lines.len() as u64);
                        ParseOutcome {
                            output: LogBatch::new(),
                            parse_errors: 0,
                            dead_letter: None,
                            dropped: lines.len(),
                            fault: Some(fault),
                        }
                    }
                    OnError::DeadLetter => {
                        PluginStats::add(&stats.batches_dead_lettered, 1);
                        ParseOutcome {
                            output: LogBatch::new(),
                            parse_errors: 0,
                            dead_letter: Some(raw),
                            dropped: 0,
                            fault: Some(fault),
                        }
                    }
                }
            }
        }
    }

    /// Lets a detector observe one batch.
    pub fn observe(&mut self, batch: &Arc<LogBatch>) -> DetectOutcome {
        let lent = LentBatch::Shared(batch.clone());
        let bound = self.plugin.spec.limits.max_output_bytes;
        let source = self.plugin.spec.name.clone();
        let (result, _) = self.call(batch.len(), lent, move |store, exports, handle| {
            let Exports::Detector(exports) = exports else {
                return Ok(Err(OutputFault::Invalid("not a detector".into())));
            };
            let alerts = exports.call_observe_logs(store, handle)?;
            Ok(checked_alerts(alerts, bound, &source))
        });
        self.detect_outcome(result, batch.len())
    }

    /// Lets a detector observe one batch of metric points.
    pub fn observe_metrics(&mut self, batch: &Arc<FlatMetrics>) -> DetectOutcome {
        let lent = LentBatch::Metrics(batch.clone());
        let bound = self.plugin.spec.limits.max_output_bytes;
        let source = self.plugin.spec.name.clone();
        let (result, _) = self.call(batch.len(), lent, move |store, exports, handle| {
            let Exports::Detector(exports) = exports else {
                return Ok(Err(OutputFault::Invalid("not a detector".into())));
            };
            let handle = Resource::<MetricBatchResource>::new_borrow(handle.rep());
            let alerts = exports.call_observe_metrics(store, handle)?;
            Ok(checked_alerts(alerts, bound, &source))
        });
        self.detect_outcome(result, batch.len())
    }

    /// Lets a detector observe one batch of spans.
    pub fn observe_spans(&mut self, batch: &Arc<FlatSpans>) -> DetectOutcome {
        let lent = LentBatch::Spans(batch.clone());
        let bound = self.plugin.spec.limits.max_output_bytes;
        let source = self.plugin.spec.name.clone();
        let (result, _) = self.call(batch.len(), lent, move |store, exports, handle| {
            let Exports::Detector(exports) = exports else {
                return Ok(Err(OutputFault::Invalid("not a detector".into())));
            };
            let handle = Resource::<SpanBatchResource>::new_borrow(handle.rep());
            let alerts = exports.call_observe_spans(store, handle)?;
            Ok(checked_alerts(alerts, bound, &source))
        });
        self.detect_outcome(result, batch.len())
    }

    /// Advances a detector's clock to `now` (Unix nanoseconds).
    pub fn tick(&mut self, now: i64) -> DetectOutcome {
        let bound = self.plugin.spec.limits.max_output_bytes;
        let source = self.plugin.spec.name.clone();
        let (result, _) = self.call(0, LentBatch::Nothing, move |store, exports, _| {
            let Exports::Detector(exports) = exports else {
                return Ok(Err(OutputFault::Invalid("not a detector".into())));
            };
            let alerts = exports.call_tick(store, now)?;
            Ok(checked_alerts(alerts, bound, &source))
        });
        self.detect_outcome(result, 0)
    }

    fn detect_outcome(
        &mut self,
        result: Result<Vec<Alert>, Fault>,
        records: usize,
    ) -> DetectOutcome {
        PluginStats::add(&self.plugin.stats.records_out, records as u64);
        match result {
            Ok(alerts) => DetectOutcome {
                alerts,
                fault: None,
            },
            Err(fault) => DetectOutcome {
                alerts: Vec::new(),
                fault: Some(fault),
            },
        }
    }

    /// A detector's state, for checkpointing. A state over `limits.max_state_bytes` is refused:
    /// counted, reported as an alert, and the detector restarts afresh (a fresh instance with no
    /// state), so a runaway state cannot grow the checkpoints or the memory without bound.
    pub fn checkpoint_state(&mut self) -> Result<Vec<u8>, Fault> {
        let bound = self.plugin.spec.limits.max_state_bytes;
        let result = self
            .call(0, LentBatch::Nothing, move |store, exports, _| {
                let Exports::Detector(exports) = exports else {
                    return Ok(Err(OutputFault::Invalid("not a detector".into())));
                };
                let state = exports.call_snapshot(store)?;
                if state.len() as u64 > bound {
                    return Ok(Err(OutputFault::TooLarge {
                        bytes: state.len(),
                        bound,
                    }));
                }
                Ok(Ok(state))
            })
            .0;
        let stats = &self.plugin.stats;
        match &result {
            Ok(state) => {
                PluginStats::add(&stats.checkpoints, 1);
                stats.state_bytes.store(state.len() as u64, Relaxed);
            }
            Err(Fault::OutputTooLarge { bytes, bound }) => {
                PluginStats::add(&stats.states_refused, 1);
                let message = format!(
                    "detector state of {bytes} bytes is over its bound of {bound} bytes (limits.max_state_bytes): it starts afresh"
                );
                tracing::error!(plugin = %self.plugin.spec.name, "{message}");
                self.pending_alerts
                    .push(self.gateway_alert("DetectorStateTooLarge", message));
                self.instance = None;
                self.carried_state = None;
                stats.state_bytes.store(0, Relaxed);
            }
            Err(_) => {}
        }
        result
    }

    /// Brings back a detector's state; it is also carried into later fresh instances.
    pub fn restore(&mut self, state: Vec<u8>) -> Result<(), Fault> {
        let carried = state.clone();
        let (result, _) = self.call(0, LentBatch::Nothing, move |store, exports, _| {
            let Exports::Detector(exports) = exports else {
                return Ok(Err(OutputFault::Invalid("not a detector".into())));
            };
            Ok(exports
                .call_restore(store, &state)?
                .map_err(OutputFault::PluginError))
        });
        let stats = &self.plugin.stats;
        match result {
            Ok(()) => {
                PluginStats::add(&stats.restores, 1);
                stats.state_bytes.store(carried.len() as u64, Relaxed);
                self.carried_state = Some(carried);
            }
            Err(_) => PluginStats::add(&stats.restore_failures, 1),
        }
        result
    }
}

fn checked_alerts(
    alerts: Vec<wit::Alert>,
    bound: u64,
    source: &str,
) -> Result<Vec<Alert>, OutputFault> {
    let bytes = bindings::alerts_size(&alerts);
    if bytes as u64 > bound {
        return Err(OutputFault::TooLarge { bytes, bound });
    }
    Ok(alerts
        .into_iter()
        .map(|alert| bindings::alert(alert, source))
        .collect())
}

/// Raw lines as records whose body is the line, for a parser's fault policy.
fn raw_lines_batch(
    lines: &StringColumn,
    received: i64,
    resource: &Arc<RecordResource>,
) -> LogBatch {
    let mut batch = LogBatch::new();
    for line in lines.iter() {
        batch.push_fields(received, received, 0, "", line, &[0; 16], &[0; 8], resource);
    }
    batch
}

/// A trap described for the operator, with what the plugin said last (the SDK reports panics).
fn describe_error(error: &wasmtime::Error, store: &Store<PluginState>, deadline_ms: u64) -> String {
    if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return format!("interrupted at its deadline of {deadline_ms} ms");
    }
    let mut message = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error}"),
    };
    if let Some(said) = &store.data().last_error_message {
        message.push_str("; plugin said: ");
        message.push_str(said);
    }
    message
}

/// Now, in Unix nanoseconds.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as i64)
        .unwrap_or(0)
}
