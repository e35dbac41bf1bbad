//! The data of one plugin instance's store: its WASI context (empty unless granted), its resource
//! table, its memory limiter, and the host interface the plugin imports.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{LogBatchResource, MetricBatchResource, SpanBatchResource, wit, wit_host};
use super::flat::{FlatMetrics, FlatSpans};
use super::stats::PluginStats;
use crate::model::{AttributeValueRef, LogBatch};

/// Raised by the limiter when a plugin grows its memory past its cap.
#[derive(Debug)]
pub struct MemoryCapExceeded {
    pub cap_bytes: usize,
    pub wanted_bytes: usize,
}

impl std::fmt::Display for MemoryCapExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "memory cap of {} bytes exceeded (wanted {} bytes)",
            self.cap_bytes, self.wanted_bytes
        )
    }
}

impl std::error::Error for MemoryCapExceeded {}

/// Caps linear memory and tables, and remembers how large memory got.
pub struct MemoryLimiter {
    cap_bytes: usize,
    /// Current linear memory size of the instance.
    pub memory_bytes: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap_bytes {
            return Err(wasmtime::Error::new(MemoryCapExceeded {
                cap_bytes: self.cap_bytes,
                wanted_bytes: desired,
            }));
        }
        self.memory_bytes = desired;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The batch a call lends the plugin, as the `log-batch` resource its export receives.
#[derive(Default)]
// Held by value on purpose: boxing it would cost an allocation per call, the thing it avoids.
#[allow(clippy::large_enum_variant)]
pub enum LentBatch {
    /// No batch is lent (between calls, and for calls that take none).
    #[default]
    Nothing,
    /// A batch the caller owns, moved into the store for the call and back out after it.
    Owned(LogBatch),
    /// A batch the caller shares.
    Shared(Arc<LogBatch>),
    /// Metric points, for a detector.
    Metrics(Arc<FlatMetrics>),
    /// Spans, for a detector.
    Spans(Arc<FlatSpans>),
}

impl LentBatch {
    fn get(&self) -> Option<&LogBatch> {
        match self {
            LentBatch::Owned(batch) => Some(batch),
            LentBatch::Shared(batch) => Some(batch),
            LentBatch::Nothing | LentBatch::Metrics(_) | LentBatch::Spans(_) => None,
        }
    }

    /// The batch, owned again.
    pub fn into_owned(self) -> LogBatch {
        match self {
            LentBatch::Owned(batch) => batch,
            LentBatch::Shared(batch) => Arc::unwrap_or_clone(batch),
            LentBatch::Nothing | LentBatch::Metrics(_) | LentBatch::Spans(_) => LogBatch::new(),
        }
    }
}

/// The host representation of the lent batch's handle. The batch lives in a slot of the store
/// data rather than in the resource table, so lending it costs no table insertion or removal;
/// the guest only ever holds a borrow of it for the duration of one call.
const LENT_BATCH_REP: u32 = 0;

/// Store data of one plugin instance.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The batch of the current call.
    lent: LentBatch,
    pub limiter: MemoryLimiter,
    plugin_name: Arc<str>,
    stats: Arc<PluginStats>,
    /// The last error-level message the plugin logged (the SDK logs panics this way).
    pub last_error_message: Option<String>,
}

impl PluginState {
    pub fn new(
        wasi: WasiCtx,
        memory_cap_bytes: usize,
        plugin_name: Arc<str>,
        stats: Arc<PluginStats>,
    ) -> Self {
        PluginState {
            wasi,
            table: ResourceTable::new(),
            lent: LentBatch::Nothing,
            limiter: MemoryLimiter {
                cap_bytes: memory_cap_bytes,
                memory_bytes: 0,
            },
            plugin_name,
            stats,
            last_error_message: None,
        }
    }

    /// Lends `batch` to the plugin until [`take_lent`](Self::take_lent); returns the borrowed
    /// handle to pass to the export.
    pub fn lend(&mut self, batch: LentBatch) -> Resource<LogBatchResource> {
        self.lent = batch;
        Resource::new_borrow(LENT_BATCH_REP)
    }

    /// Takes the lent batch back.
    pub fn take_lent(&mut self) -> LentBatch {
        std::mem::take(&mut self.lent)
    }

    fn batch(&self, handle: &Resource<LogBatchResource>) -> wasmtime::Result<&LogBatch> {
        match self.lent.get() {
            Some(batch) if handle.rep() == LENT_BATCH_REP => Ok(batch),
            _ => Err(wasmtime::Error::msg("unknown log-batch handle")),
        }
    }

    fn metrics(&self, handle: &Resource<MetricBatchResource>) -> wasmtime::Result<&FlatMetrics> {
        match &self.lent {
            LentBatch::Metrics(batch) if handle.rep() == LENT_BATCH_REP => Ok(batch),
            _ => Err(wasmtime::Error::msg("unknown metric-batch handle")),
        }
    }

    fn spans(&self, handle: &Resource<SpanBatchResource>) -> wasmtime::Result<&FlatSpans> {
        match &self.lent {
            LentBatch::Spans(batch) if handle.rep() == LENT_BATCH_REP => Ok(batch),
            _ => Err(wasmtime::Error::msg("unknown span-batch handle")),
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit_host::Host for PluginState {
    fn log(&mut self, level: wit_host::Level, message: String) -> wasmtime::Result<()> {
        // Bound what a plugin can make us keep or print.
        let mut message = message;
        if message.len() > 4096 {
            let mut cut = 4096;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let plugin = &*self.plugin_name;
        match level {
            wit_host::Level::Trace => tracing::trace!(plugin, "{message}"),
            wit_host::Level::Debug => tracing::debug!(plugin, "{message}"),
            wit_host::Level::Info => tracing::info!(plugin, "{message}"),
            wit_host::Level::Warn => tracing::warn!(plugin, "{message}"),
            wit_host::Level::Error => {
                tracing::error!(plugin, "{message}");
                self.last_error_message = Some(message);
            }
        }
        Ok(())
    }

    fn counter_add(&mut self, name: String, delta: u64) -> wasmtime::Result<()> {
        if let Ok(mut counters) = self.stats.plugin_counters.lock()
            && (counters.len() < 256 || counters.contains_key(&name))
        {
            *counters.entry(name).or_default() += delta;
        }
        Ok(())
    }

    fn gauge_set(&mut self, name: String, value: f64) -> wasmtime::Result<()> {
        if let Ok(mut gauges) = self.stats.plugin_gauges.lock()
            && (gauges.len() < 256 || gauges.contains_key(&name))
        {
            gauges.insert(name, value);
        }
        Ok(())
    }
}

impl wit::Host for PluginState {}

/// A batch's attribute value as the contract's `value`.
fn wit_value(value: AttributeValueRef<'_>) -> wit::Value {
    match value {
        AttributeValueRef::Str(text) => wit::Value::Str(text.to_owned()),
        AttributeValueRef::Int(number) => wit::Value::Int(number),
        AttributeValueRef::Double(number) => wit::Value::Double(number),
        AttributeValueRef::Bool(flag) => wit::Value::Boolean(flag),
        AttributeValueRef::Bytes(bytes) => wit::Value::Bytes(bytes.to_vec()),
    }
}

impl wit::HostLogBatch for PluginState {
    fn len(&mut self, batch: Resource<LogBatchResource>) -> wasmtime::Result<u32> {
        Ok(self.batch(&batch)?.len() as u32)
    }

    fn timestamps(&mut self, batch: Resource<LogBatchResource>) -> wasmtime::Result<Vec<i64>> {
        Ok(self.batch(&batch)?.timestamps().to_vec())
    }

    fn observed_timestamps(
        &mut self,
        batch: Resource<LogBatchResource>,
    ) -> wasmtime::Result<Vec<i64>> {
        Ok(self.batch(&batch)?.observed_timestamps().to_vec())
    }

    fn severity_numbers(&mut self, batch: Resource<LogBatchResource>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.batch(&batch)?.severity_numbers().to_vec())
    }

    fn severity_texts(
        &mut self,
        batch: Resource<LogBatchResource>,
    ) -> wasmtime::Result<wit::StringColumn> {
        Ok(self.batch(&batch)?.severity_texts().into())
    }

    fn bodies(&mut self, batch: Resource<LogBatchResource>) -> wasmtime::Result<wit::StringColumn> {
        Ok(self.batch(&batch)?.bodies().into())
    }

    fn trace_ids(&mut self, batch: Resource<LogBatchResource>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.batch(&batch)?.trace_ids().to_vec())
    }

    fn span_ids(&mut self, batch: Resource<LogBatchResource>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.batch(&batch)?.span_ids().to_vec())
    }

    fn attribute(
        &mut self,
        batch: Resource<LogBatchResource>,
        key: String,
    ) -> wasmtime::Result<Vec<Option<wit::Value>>> {
        let batch = self.batch(&batch)?;
        Ok((0..batch.len())
            .map(|index| {
                batch
                    .attribute_refs_of(index)
                    .find(|(k, _)| *k == key)
                    .map(|(_, value)| wit_value(value))
            })
            .collect())
    }

    fn resource_attribute(
        &mut self,
        batch: Resource<LogBatchResource>,
        key: String,
    ) -> wasmtime::Result<Vec<Option<wit::Value>>> {
        let batch = self.batch(&batch)?;
        Ok(batch
            .resource_attribute_column(&key)
            .iter()
            .map(|value| value.as_ref().map(Into::into))
            .collect())
    }

    fn attributes(
        &mut self,
        batch: Resource<LogBatchResource>,
    ) -> wasmtime::Result<wit::AttributeTable> {
        let batch = self.batch(&batch)?;
        Ok(wit::AttributeTable {
            records: batch.attribute_records(),
            keys: batch.attribute_keys().into(),
            values: (0..batch.attribute_keys().len())
                .map(|entry| wit_value(batch.attribute_value(entry)))
                .collect(),
        })
    }

    fn drop(&mut self, _batch: Resource<LogBatchResource>) -> wasmtime::Result<()> {
        // The host only lends borrows of its batch; there is no owned handle to free.
        Ok(())
    }
}

impl wit::HostMetricBatch for PluginState {
    fn len(&mut self, batch: Resource<MetricBatchResource>) -> wasmtime::Result<u32> {
        Ok(self.metrics(&batch)?.len() as u32)
    }

    fn names(
        &mut self,
        batch: Resource<MetricBatchResource>,
    ) -> wasmtime::Result<wit::StringColumn> {
        Ok((&self.metrics(&batch)?.names()).into())
    }

    fn units(
        &mut self,
        batch: Resource<MetricBatchResource>,
    ) -> wasmtime::Result<wit::StringColumn> {
        Ok((&self.metrics(&batch)?.units()).into())
    }

    fn kinds(
        &mut self,
        batch: Resource<MetricBatchResource>,
    ) -> wasmtime::Result<Vec<wit::MetricKind>> {
        Ok(self.metrics(&batch)?.kinds.clone())
    }

    fn monotonic(&mut self, batch: Resource<MetricBatchResource>) -> wasmtime::Result<Vec<bool>> {
        Ok(self.metrics(&batch)?.monotonic.clone())
    }

    fn timestamps(&mut self, batch: Resource<MetricBatchResource>) -> wasmtime::Result<Vec<i64>> {
        Ok(self.metrics(&batch)?.timestamps.clone())
    }

    fn values(&mut self, batch: Resource<MetricBatchResource>) -> wasmtime::Result<Vec<f64>> {
        Ok(self.metrics(&batch)?.values.clone())
    }

    fn counts(&mut self, batch: Resource<MetricBatchResource>) -> wasmtime::Result<Vec<u64>> {
        Ok(self.metrics(&batch)?.counts.clone())
    }

    fn attribute(
        &mut self,
        batch: Resource<MetricBatchResource>,
        key: String,
    ) -> wasmtime::Result<Vec<Option<wit::Value>>> {
        Ok(self.metrics(&batch)?.attribute(&key))
    }

    fn resource_attribute(
        &mut self,
        batch: Resource<MetricBatchResource>,
        key: String,
    ) -> wasmtime::Result<Vec<Option<wit::Value>>> {
        Ok(self.metrics(&batch)?.resource_attribute(&key))
    }

    fn attributes(
        &mut self,
        batch: Resource<MetricBatchResource>,
    ) -> wasmtime::Result<wit::AttributeTable> {
        Ok(self.metrics(&batch)?.attributes())
    }

    fn drop(&mut self, _batch: Resource<MetricBatchResource>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl wit::HostSpanBatch for PluginState {
    fn len(&mut self, batch: Resource<SpanBatchResource>) -> wasmtime::Result<u32> {
        Ok(self.spans(&batch)?.len() as u32)
    }

    fn names(&mut self, batch: Resource<SpanBatchResource>) -> wasmtime::Result<wit::StringColumn> {
        Ok((&self.spans(&batch)?.names()).into())
    }

    fn kinds(&mut self, batch: Resource<SpanBatchResource>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.spans(&batch)?.kinds())
    }

    fn start_timestamps(
        &mut self,
        batch: Resource<SpanBatchResource>,
    ) -> wasmtime::Result<Vec<i64>> {
        Ok(self.spans(&batch)?.start_timestamps())
    }

    fn end_timestamps(&mut self, batch: Resource<SpanBatchResource>) -> wasmtime::Result<Vec<i64>> {
        Ok(self.spans(&batch)?.end_timestamps())
    }

    fn status_codes(&mut self, batch: Resource<SpanBatchResource>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.spans(&batch)?.status_codes())
    }

    fn trace_ids(&mut self, batch: Resource<SpanBatchResource>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.spans(&batch)?.trace_ids())
    }

    fn span_ids(&mut self, batch: Resource<SpanBatchResource>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.spans(&batch)?.span_ids())
    }

    fn attribute(
        &mut self,
        batch: Resource<SpanBatchResource>,
        key: String,
    ) -> wasmtime::Result<Vec<Option<wit::Value>>> {
        Ok(self.spans(&batch)?.attribute(&key))
    }

    fn resource_attribute(
        &mut self,
        batch: Resource<SpanBatchResource>,
        key: String,
    ) -> wasmtime::Result<Vec<Option<wit::Value>>> {
        Ok(self.spans(&batch)?.resource_attribute(&key))
    }

    fn attributes(
        &mut self,
        batch: Resource<SpanBatchResource>,
    ) -> wasmtime::Result<wit::AttributeTable> {
        Ok(self.spans(&batch)?.attributes())
    }

    fn drop(&mut self, _batch: Resource<SpanBatchResource>) -> wasmtime::Result<()> {
        Ok(())
    }
}
