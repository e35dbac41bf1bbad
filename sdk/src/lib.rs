//! # sluice-sdk
//!
//! Write plugins for the Sluice gateway in ordinary Rust. A plugin is a type that implements one
//! of three traits and is exported with one macro:
//!
//! - [`Filter`] + [`export_filter!`]: keep, drop or edit log records;
//! - [`Parser`] + [`export_parser!`]: turn raw lines into log records;
//! - [`Detector`] + [`export_detector!`]: watch logs, metric points ([`MetricBatch`]) and spans
//!   ([`SpanBatch`]), keep state, raise [`Alert`]s.
//!
//! The host hands a plugin one batch per call. [`LogBatch`] fetches each column from the host
//! the first time the plugin reads it, so a plugin pays only for what it uses. The same crate
//! builds natively, where [`LogBatch::from_records`] makes batches for unit tests.
//!
//! See the SDK README for a walk from nothing to a tested `.wasm`.

mod batch;
pub mod clock;
mod columns;
mod detector;
mod filter;
pub mod host;
pub mod labels;
mod metrics;
mod parser;
pub mod registry;
pub mod severity;
mod spans;

/// Bindings of the contract's shared types and host imports (generated from `wit/plugin.wit`).
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "sluice:plugin/guest-imports",
        generate_all,
        additional_derives: [PartialEq],
    });
}

pub use batch::{LogBatch, LogRecord, LogRecordView};
pub use bindings::sluice::plugin::types::{
    Alert, AlertSeverity, AlertStatus, AttributeTable, Change, Edit, FilterResult, KeyValue,
    LogRecords, MetricKind, ParseError, RawInput, Selection, Severity, StringColumn, Value,
};
pub use columns::AttributeColumn;
pub use detector::Detector;
pub use filter::{Filter, Verdict};
pub use metrics::{MetricBatch, MetricPoint, MetricPointView};
pub use parser::{LogRecordsBuilder, Parser};
pub use spans::{Span, SpanBatch, SpanView, span_kind, status_code};

/// What every plugin has, whatever its kind: a config and a constructor from it.
///
/// The host passes the plugin's table from the gateway config as JSON; the SDK deserializes it into
/// `Config` (an empty table gives `Config::default()`). An `Err` from `new` refuses the plugin at
/// load time, and the gateway shows your message to the operator.
pub trait Plugin: Sized {
    /// The plugin's own configuration.
    type Config: serde::de::DeserializeOwned + Default;
    /// Builds the plugin from its configuration.
    fn new(config: Self::Config) -> Result<Self, String>;

    /// Builds the plugin from its config as JSON, exactly as the host's `init` call does
    /// (for unit tests).
    fn from_json_config(config: &str) -> Result<Self, String> {
        __private::init_plugin(config)
    }
}

/// Re-exported for the export macros; not part of the public API.
#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

include!(concat!(env!("OUT_DIR"), "/export_macros.rs"));

impl StringColumn {
    /// An empty column.
    pub fn new() -> Self {
        StringColumn {
            bytes: Vec::new(),
            offsets: vec![0],
        }
    }

    /// Builds a column from strings.
    pub fn from_strs<'s>(items: impl IntoIterator<Item = &'s str>) -> Self {
        let mut column = StringColumn::new();
        for item in items {
            column.push(item);
        }
        column
    }

    /// Appends one entry.
    pub fn push(&mut self, item: &str) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.bytes.extend_from_slice(item.as_bytes());
        self.offsets.push(self.bytes.len() as u32);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True when the column has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `index` as text ("" when out of range or not UTF-8; the host only sends UTF-8).
    pub fn get(&self, index: usize) -> &str {
        let (Some(&start), Some(&end)) = (self.offsets.get(index), self.offsets.get(index + 1))
        else {
            return "";
        };
        self.bytes
            .get(start as usize..end as usize)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or("")
    }

    /// Iterates over the entries.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(move |index| self.get(index))
    }
}

impl Default for StringColumn {
    fn default() -> Self {
        StringColumn::new()
    }
}

impl AttributeTable {
    /// An empty table.
    pub fn new() -> Self {
        AttributeTable {
            records: Vec::new(),
            keys: StringColumn::new(),
            values: Vec::new(),
        }
    }

    /// Appends attribute `key = value` of record `record`.
    pub fn push(&mut self, record: u32, key: &str, value: Value) {
        self.records.push(record);
        self.keys.push(key);
        self.values.push(value);
    }

    /// Iterates over `(record, key, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str, &Value)> + '_ {
        self.records
            .iter()
            .zip(&self.values)
            .enumerate()
            .map(move |(entry, (record, value))| (*record, self.keys.get(entry), value))
    }
}

impl Default for AttributeTable {
    fn default() -> Self {
        AttributeTable::new()
    }
}

impl Value {
    /// The value as text when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Str(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Str(text)
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Self {
        Value::Int(number)
    }
}

impl From<f64> for Value {
    fn from(number: f64) -> Self {
        Value::Double(number)
    }
}

impl From<bool> for Value {
    fn from(flag: bool) -> Self {
        Value::Boolean(flag)
    }
}

/// Helpers the export macros call; not part of the public API.
#[doc(hidden)]
pub mod __private {
    use serde::de::DeserializeOwned;

    /// Parses the JSON config the host passes to `init` and builds the plugin.
    pub fn init_plugin<P: crate::Plugin>(config: &str) -> Result<P, String> {
        report_panics_to_host();
        let config = parse_config::<P::Config>(config)?;
        P::new(config)
    }

    /// Sends panic messages to the host's log, so the operator sees why a plugin trapped.
    fn report_panics_to_host() {
        #[cfg(target_arch = "wasm32")]
        {
            static HOOK: std::sync::Once = std::sync::Once::new();
            HOOK.call_once(|| {
                std::panic::set_hook(Box::new(|info| {
                    crate::host::log(crate::host::Level::Error, &format!("panicked: {info}"));
                }));
            });
        }
    }

    /// Parses a plugin config; an empty text or `null` gives the default.
    pub fn parse_config<C: DeserializeOwned + Default>(config: &str) -> Result<C, String> {
        let trimmed = config.trim();
        if trimmed.is_empty() || trimmed == "null" {
            return Ok(C::default());
        }
        serde_json::from_str(trimmed).map_err(|error| format!("invalid plugin config: {error}"))
    }

    /// The plugin instance; the host always calls `init` first, so its absence is a host bug.
    pub fn initialised<P>(slot: &mut Option<P>) -> &mut P {
        match slot {
            Some(plugin) => plugin,
            None => panic!("sluice plugin called before init"),
        }
    }

    pub use crate::parser::run_parser;
}
