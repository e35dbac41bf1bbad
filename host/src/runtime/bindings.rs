//! Generated bindings of the plugin contract (`wit/plugin.wit`) and their conversion to and from
//! our own model types. Nothing outside the runtime sees a generated type.

use std::sync::Arc;

use crate::alerts::{Alert, AlertSeverity, AlertStatus};
use crate::model::{AttributeValue, LogBatch, RecordChange, RecordEdit, StringColumn};

/// The `log-batch` resource's host type. The batch itself is the one lent for the current call
/// (`PluginState::lend`): a handle names it, nothing is stored per handle.
pub struct LogBatchResource;

/// The `metric-batch` resource's host type, lent like [`LogBatchResource`].
pub struct MetricBatchResource;

/// The `span-batch` resource's host type, lent like [`LogBatchResource`].
pub struct SpanBatchResource;

/// Bindings of the `filter` world; its interfaces are shared by the other worlds.
pub mod filter {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sluice:plugin/filter",
        imports: { default: trappable },
        with: {
            "sluice:plugin/types.log-batch": super::LogBatchResource,
            "sluice:plugin/types.metric-batch": super::MetricBatchResource,
            "sluice:plugin/types.span-batch": super::SpanBatchResource,
        },
    });
}

/// Bindings of the `parser` world.
pub mod parser {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sluice:plugin/parser",
        imports: { default: trappable },
        with: {
            "sluice:plugin/types": super::filter::sluice::plugin::types,
            "sluice:plugin/host": super::filter::sluice::plugin::host,
        },
    });
}

/// Bindings of the `detector` world.
pub mod detector {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sluice:plugin/detector",
        imports: { default: trappable },
        with: {
            "sluice:plugin/types": super::filter::sluice::plugin::types,
            "sluice:plugin/host": super::filter::sluice::plugin::host,
        },
    });
}

pub use filter::sluice::plugin::host as wit_host;
pub use filter::sluice::plugin::types as wit;

impl From<&AttributeValue> for wit::Value {
    fn from(value: &AttributeValue) -> Self {
        match value {
            AttributeValue::Str(text) => wit::Value::Str(text.clone()),
            AttributeValue::Int(number) => wit::Value::Int(*number),
            AttributeValue::Double(number) => wit::Value::Double(*number),
            AttributeValue::Bool(flag) => wit::Value::Boolean(*flag),
            AttributeValue::Bytes(bytes) => wit::Value::Bytes(bytes.clone()),
        }
    }
}

impl From<wit::Value> for AttributeValue {
    fn from(value: wit::Value) -> Self {
        match value {
            wit::Value::Str(text) => AttributeValue::Str(text),
            wit::Value::Int(number) => AttributeValue::Int(number),
            wit::Value::Double(number) => AttributeValue::Double(number),
            wit::Value::Boolean(flag) => AttributeValue::Bool(flag),
            wit::Value::Bytes(bytes) => AttributeValue::Bytes(bytes),
        }
    }
}

impl From<&StringColumn> for wit::StringColumn {
    fn from(column: &StringColumn) -> Self {
        wit::StringColumn {
            bytes: column.bytes().to_vec(),
            offsets: column.offsets().to_vec(),
        }
    }
}

/// Converts a guest's string column, checking offsets and UTF-8.
pub fn string_column(column: wit::StringColumn, what: &str) -> Result<StringColumn, String> {
    StringColumn::from_parts(column.bytes, column.offsets)
        .map_err(|error| format!("{what}: {error}"))
}

/// A filter's verdict in host terms: the keep mask (`None` = keep all) and sorted edits.
pub struct FilterVerdict {
    pub keep: Option<Vec<u8>>,
    pub edits: Vec<RecordEdit>,
}

/// Converts and checks a filter result for a batch of `len` records.
pub fn filter_verdict(result: wit::FilterResult, len: usize) -> Result<FilterVerdict, String> {
    let keep = match result.keep {
        wit::Selection::All => None,
        wit::Selection::None => Some(vec![0; len]),
        wit::Selection::Mask(mask) if mask.len() == len => Some(mask),
        wit::Selection::Mask(mask) => {
            return Err(format!(
                "keep mask has {} entries for a batch of {len} records",
                mask.len()
            ));
        }
    };
    let mut edits = Vec::with_capacity(result.edits.len());
    for edit in result.edits {
        if edit.index as usize >= len {
            return Err(format!(
                "edit of record {} in a batch of {len} records",
                edit.index
            ));
        }
        let change = match edit.change {
            wit::Change::Body(body) => RecordChange::Body(body),
            wit::Change::Severity(severity) if severity.number <= 24 => {
                RecordChange::Severity(severity.number, severity.text)
            }
            wit::Change::Severity(severity) => {
                return Err(format!(
                    "severity number {} is outside 0..=24",
                    severity.number
                ));
            }
            wit::Change::SetAttribute(kv) => RecordChange::SetAttribute(kv.key, kv.value.into()),
            wit::Change::RemoveAttribute(key) => RecordChange::RemoveAttribute(key),
        };
        edits.push(RecordEdit {
            index: edit.index,
            change,
        });
    }
    // Stable: edits to one record keep the order the plugin gave them.
    edits.sort_by_key(|edit| edit.index);
    Ok(FilterVerdict { keep, edits })
}

/// Approximate bytes of a filter result, for the output bound.
pub fn filter_result_size(result: &wit::FilterResult) -> usize {
    let mask = match &result.keep {
        wit::Selection::Mask(mask) => mask.len(),
        _ => 0,
    };
    mask + result
        .edits
        .iter()
        .map(|edit| 8 + change_size(&edit.change))
        .sum::<usize>()
}

fn value_size(value: &wit::Value) -> usize {
    match value {
        wit::Value::Str(text) => text.len() + 8,
        wit::Value::Bytes(bytes) => bytes.len() + 8,
        _ => 8,
    }
}

fn change_size(change: &wit::Change) -> usize {
    match change {
        wit::Change::Body(body) => body.len(),
        wit::Change::Severity(severity) => 1 + severity.text.len(),
        wit::Change::SetAttribute(kv) => kv.key.len() + value_size(&kv.value),
        wit::Change::RemoveAttribute(key) => key.len(),
    }
}

/// Approximate bytes of a parser's output, for the output bound.
pub fn log_records_size(records: &wit::LogRecords) -> usize {
    records.timestamps.len() * 9
        + records.severity_texts.bytes.len()
        + records.bodies.bytes.len()
        + records.trace_ids.len()
        + records.span_ids.len()
        + records.attributes.keys.bytes.len()
        + records
            .attributes
            .values
            .iter()
            .map(value_size)
            .sum::<usize>()
        + records
            .parse_errors
            .iter()
            .map(|error| error.message.len() + 4)
            .sum::<usize>()
}

/// Attribute key the host sets on records a parser could not parse cleanly.
pub const PARSE_ERROR_ATTRIBUTE: &str = "sluice.parse_error";

/// Converts and checks a parser's output into a batch whose records come from `resource`,
/// observed at `observed`. Returns the batch and how many records were parse errors.
pub fn parsed_batch(
    records: wit::LogRecords,
    observed: i64,
    resource: &Arc<crate::model::Resource>,
) -> Result<(LogBatch, usize), String> {
    let len = records.timestamps.len();
    if records.severity_numbers.len() != len {
        return Err(format!(
            "{} severity numbers for {len} records",
            records.severity_numbers.len()
        ));
    }
    let severity_texts = string_column(records.severity_texts, "severity-texts")?;
    let bodies = string_column(records.bodies, "bodies")?;
    if severity_texts.len() != len || bodies.len() != len {
        return Err(format!(
            "{} severity texts and {} bodies for {len} records",
            severity_texts.len(),
            bodies.len()
        ));
    }
    let has_trace_ids = !records.trace_ids.is_empty();
    if has_trace_ids && (records.trace_ids.len() != len * 16 || records.span_ids.len() != len * 8) {
        return Err(
            "trace-ids and span-ids must hold 16 and 8 bytes per record, or be empty".into(),
        );
    }
    let attribute_keys = string_column(records.attributes.keys, "attribute keys")?;
    let attribute_count = records.attributes.records.len();
    if attribute_keys.len() != attribute_count || records.attributes.values.len() != attribute_count
    {
        return Err("attribute table columns differ in length".into());
    }
    if records
        .attributes
        .records
        .windows(2)
        .any(|pair| pair[0] > pair[1])
        || records
            .attributes
            .records
            .last()
            .is_some_and(|&record| record as usize >= len)
    {
        return Err("attribute table must be ordered by record and name existing records".into());
    }
    let mut errors = records.parse_errors;
    errors.sort_by_key(|error| error.index);
    if errors
        .last()
        .is_some_and(|error| error.index as usize >= len)
    {
        return Err("parse error names a record that does not exist".into());
    }

    let mut batch = LogBatch::new();
    let mut values = records.attributes.values.into_iter();
    let mut attribute = 0;
    let mut error = errors.iter().peekable();
    let zero_trace = [0u8; 16];
    let zero_span = [0u8; 8];
    for index in 0..len {
        let (mut trace_id, mut span_id) = (zero_trace, zero_span);
        if has_trace_ids {
            trace_id.copy_from_slice(&records.trace_ids[index * 16..index * 16 + 16]);
            span_id.copy_from_slice(&records.span_ids[index * 8..index * 8 + 8]);
        }
        let timestamp = records.timestamps[index];
        batch.push_fields(
            if timestamp == 0 { observed } else { timestamp },
            observed,
            records.severity_numbers[index].min(24),
            severity_texts.get(index),
            bodies.get(index),
            &trace_id,
            &span_id,
            resource,
        );
        while attribute < attribute_count && records.attributes.records[attribute] as usize == index
        {
            if let Some(value) = values.next() {
                batch.push_attribute(attribute_keys.get(attribute), value.into());
            }
            attribute += 1;
        }
        while let Some(parse_error) = error.next_if(|error| error.index as usize == index) {
            batch.push_attribute(
                PARSE_ERROR_ATTRIBUTE,
                AttributeValue::Str(parse_error.message.clone()),
            );
        }
    }
    Ok((batch, errors.len()))
}

/// Converts a detector's alert.
pub fn alert(alert: wit::Alert, source: &str) -> Alert {
    Alert {
        name: alert.name,
        severity: match alert.severity {
            wit::AlertSeverity::Info => AlertSeverity::Info,
            wit::AlertSeverity::Warning => AlertSeverity::Warning,
            wit::AlertSeverity::Error => AlertSeverity::Error,
            wit::AlertSeverity::Critical => AlertSeverity::Critical,
        },
        status: match alert.status {
            wit::AlertStatus::Firing => AlertStatus::Firing,
            wit::AlertStatus::Resolved => AlertStatus::Resolved,
        },
        labels: alert.labels,
        summary: alert.summary,
        fingerprint: alert.fingerprint,
        starts_at: alert.starts_at,
        ends_at: alert.ends_at,
        source: source.to_owned(),
    }
    .normalised()
}

/// Approximate bytes of a detector's alerts, for the output bound.
pub fn alerts_size(alerts: &[wit::Alert]) -> usize {
    alerts
        .iter()
        .map(|alert| {
            64 + alert.name.len()
                + alert.summary.len()
                + alert.fingerprint.len()
                + alert
                    .labels
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>()
        })
        .sum()
}
