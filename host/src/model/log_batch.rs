//! A batch of log records as columns.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{AttributeValue, Resource};

/// Strings in Arrow's layout: all bytes concatenated, `offsets` one longer than the entries.
#[derive(Clone, Debug, PartialEq)]
pub struct StringColumn {
    bytes: Vec<u8>,
    offsets: Vec<u32>,
}

impl Default for StringColumn {
    fn default() -> Self {
        StringColumn {
            bytes: Vec::new(),
            offsets: vec![0],
        }
    }
}

impl StringColumn {
    /// Builds a column from raw parts, checking the offsets and that every entry is UTF-8.
    pub fn from_parts(bytes: Vec<u8>, offsets: Vec<u32>) -> Result<Self, String> {
        if offsets.first() != Some(&0) {
            return Err("string column offsets must start at 0".into());
        }
        if offsets.windows(2).any(|pair| pair[0] > pair[1]) {
            return Err("string column offsets must not decrease".into());
        }
        if offsets.last().map(|&end| end as usize) != Some(bytes.len()) {
            return Err("string column offsets must end at the byte length".into());
        }
        // Entries are contiguous, so the whole buffer is UTF-8 exactly when each entry is and
        // no boundary splits a character.
        let text = std::str::from_utf8(&bytes)
            .map_err(|error| format!("string column is not UTF-8: {error}"))?;
        if offsets
            .iter()
            .any(|&offset| !text.is_char_boundary(offset as usize))
        {
            return Err("string column offset splits a UTF-8 character".into());
        }
        Ok(StringColumn { bytes, offsets })
    }

    /// Appends one entry.
    pub fn push(&mut self, item: &str) {
        self.bytes.extend_from_slice(item.as_bytes());
        self.offsets.push(self.bytes.len() as u32);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when there is no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `index`.
    pub fn get(&self, index: usize) -> &str {
        let start = self.offsets[index] as usize;
        let end = self.offsets[index + 1] as usize;
        // Every constructor checks UTF-8 and boundaries, so this cannot fail.
        std::str::from_utf8(&self.bytes[start..end]).unwrap_or_default()
    }

    /// The concatenated bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The offsets.
    pub fn offsets(&self) -> &[u32] {
        &self.offsets
    }

    /// Iterates over the entries.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(move |index| self.get(index))
    }
}

/// One log record with every field: the row form of a [`LogBatch`] entry, for building batches
/// from row-oriented input and for debug output.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogRecord {
    /// Event time, Unix nanoseconds (0 = unknown).
    pub timestamp: i64,
    /// Time the gateway observed the record, Unix nanoseconds.
    pub observed_timestamp: i64,
    /// OpenTelemetry severity number (0-24).
    pub severity_number: u8,
    /// Severity text.
    pub severity_text: String,
    /// Body as text.
    pub body: String,
    /// Trace id, all zero when absent.
    pub trace_id: [u8; 16],
    /// Span id, all zero when absent.
    pub span_id: [u8; 8],
    /// Record attributes.
    pub attributes: Vec<(String, AttributeValue)>,
    /// The record's resource.
    pub resource: Arc<Resource>,
}

/// A change to one record of a batch, as a filter plugin asks for it.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordChange {
    /// Replace the body.
    Body(String),
    /// Replace severity number and text.
    Severity(u8, String),
    /// Insert or replace an attribute.
    SetAttribute(String, AttributeValue),
    /// Remove an attribute.
    RemoveAttribute(String),
}

/// A change to the record at `index`.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordEdit {
    /// Index of the record in the batch the filter saw.
    pub index: u32,
    /// What changes.
    pub change: RecordChange,
}

/// A batch of log records, one column per field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogBatch {
    timestamps: Vec<i64>,
    observed_timestamps: Vec<i64>,
    severity_numbers: Vec<u8>,
    severity_texts: StringColumn,
    bodies: StringColumn,
    trace_ids: Vec<u8>,
    span_ids: Vec<u8>,
    /// Attributes of record `i` are entries `attribute_offsets[i]..attribute_offsets[i + 1]`.
    attribute_offsets: Vec<u32>,
    attribute_keys: StringColumn,
    attribute_values: Vec<AttributeValue>,
    resources: Vec<Arc<Resource>>,
    resource_of_record: Vec<u32>,
}

impl LogBatch {
    /// An empty batch.
    pub fn new() -> Self {
        LogBatch {
            attribute_offsets: vec![0],
            ..LogBatch::default()
        }
    }

    /// A batch holding `records`.
    pub fn from_records<'r>(records: impl IntoIterator<Item = &'r LogRecord>) -> Self {
        let mut batch = LogBatch::new();
        for record in records {
            batch.push(record);
        }
        batch
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// True when the batch has no record.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    fn resource_index(&mut self, resource: &Arc<Resource>) -> u32 {
        // Records of one batch nearly always share a handful of resources: look at the last first.
        if let Some(position) = self
            .resources
            .iter()
            .rposition(|known| Arc::ptr_eq(known, resource) || known == resource)
        {
            return position as u32;
        }
        self.resources.push(resource.clone());
        (self.resources.len() - 1) as u32
    }

    /// Appends a record.
    pub fn push(&mut self, record: &LogRecord) {
        self.push_fields(
            record.timestamp,
            record.observed_timestamp,
            record.severity_number,
            &record.severity_text,
            &record.body,
            &record.trace_id,
            &record.span_id,
            &record.resource,
        );
        for (key, value) in &record.attributes {
            self.push_attribute(key, value.clone());
        }
    }

    /// Appends a record without attributes; add them with [`push_attribute`](Self::push_attribute).
    #[allow(clippy::too_many_arguments)]
    pub fn push_fields(
        &mut self,
        timestamp: i64,
        observed_timestamp: i64,
        severity_number: u8,
        severity_text: &str,
        body: &str,
        trace_id: &[u8; 16],
        span_id: &[u8; 8],
        resource: &Arc<Resource>,
    ) {
        if self.attribute_offsets.is_empty() {
            self.attribute_offsets.push(0);
        }
        self.timestamps.push(timestamp);
        self.observed_timestamps.push(observed_timestamp);
        self.severity_numbers.push(severity_number);
        self.severity_texts.push(severity_text);
        self.bodies.push(body);
        self.trace_ids.extend_from_slice(trace_id);
        self.span_ids.extend_from_slice(span_id);
        let resource = self.resource_index(resource);
        self.resource_of_record.push(resource);
        self.attribute_offsets
            .push(self.attribute_values.len() as u32);
    }

    /// Adds an attribute to the last record pushed.
    pub fn push_attribute(&mut self, key: &str, value: AttributeValue) {
        self.attribute_keys.push(key);
        self.attribute_values.push(value);
        if let Some(last) = self.attribute_offsets.last_mut() {
            *last = self.attribute_values.len() as u32;
        }
    }

    /// Event times.
    pub fn timestamps(&self) -> &[i64] {
        &self.timestamps
    }

    /// Observed times.
    pub fn observed_timestamps(&self) -> &[i64] {
        &self.observed_timestamps
    }

    /// Severity numbers.
    pub fn severity_numbers(&self) -> &[u8] {
        &self.severity_numbers
    }

    /// Severity texts.
    pub fn severity_texts(&self) -> &StringColumn {
        &self.severity_texts
    }

    /// Bodies.
    pub fn bodies(&self) -> &StringColumn {
        &self.bodies
    }

    /// Trace ids, 16 bytes per record.
    pub fn trace_ids(&self) -> &[u8] {
        &self.trace_ids
    }

    /// Span ids, 8 bytes per record.
    pub fn span_ids(&self) -> &[u8] {
        &self.span_ids
    }

    /// Attribute keys of all records, in record order.
    pub fn attribute_keys(&self) -> &StringColumn {
        &self.attribute_keys
    }

    /// Attribute values of all records, in record order.
    pub fn attribute_values(&self) -> &[AttributeValue] {
        &self.attribute_values
    }

    /// Range of attribute entries of record `index`.
    pub fn attribute_range(&self, index: usize) -> std::ops::Range<usize> {
        self.attribute_offsets[index] as usize..self.attribute_offsets[index + 1] as usize
    }

    /// For each attribute entry, the index of its record.
    pub fn attribute_records(&self) -> Vec<u32> {
        let mut records = Vec::with_capacity(self.attribute_values.len());
        for index in 0..self.len() {
            let range = self.attribute_range(index);
            records.extend(std::iter::repeat_n(index as u32, range.len()));
        }
        records
    }

    /// The attributes of record `index`.
    pub fn attributes_of(
        &self,
        index: usize,
    ) -> impl Iterator<Item = (&str, &AttributeValue)> + '_ {
        self.attribute_range(index).map(move |entry| {
            (
                self.attribute_keys.get(entry),
                &self.attribute_values[entry],
            )
        })
    }

    /// One record attribute for every record.
    pub fn attribute_column(&self, key: &str) -> Vec<Option<AttributeValue>> {
        (0..self.len())
            .map(|index| {
                self.attributes_of(index)
                    .find(|(k, _)| *k == key)
                    .map(|(_, value)| value.clone())
            })
            .collect()
    }

    /// The resource of record `index`.
    pub fn resource_of(&self, index: usize) -> &Arc<Resource> {
        &self.resources[self.resource_of_record[index] as usize]
    }

    /// One resource attribute for every record.
    pub fn resource_attribute_column(&self, key: &str) -> Vec<Option<AttributeValue>> {
        let per_resource: Vec<Option<AttributeValue>> = self
            .resources
            .iter()
            .map(|resource| resource.attribute(key).cloned())
            .collect();
        self.resource_of_record
            .iter()
            .map(|&resource| per_resource[resource as usize].clone())
            .collect()
    }

    /// Record `index` in row form.
    pub fn record(&self, index: usize) -> LogRecord {
        let mut trace_id = [0; 16];
        trace_id.copy_from_slice(&self.trace_ids[index * 16..index * 16 + 16]);
        let mut span_id = [0; 8];
        span_id.copy_from_slice(&self.span_ids[index * 8..index * 8 + 8]);
        LogRecord {
            timestamp: self.timestamps[index],
            observed_timestamp: self.observed_timestamps[index],
            severity_number: self.severity_numbers[index],
            severity_text: self.severity_texts.get(index).to_owned(),
            body: self.bodies.get(index).to_owned(),
            trace_id,
            span_id,
            attributes: self
                .attributes_of(index)
                .map(|(k, v)| (k.to_owned(), v.clone()))
                .collect(),
            resource: self.resource_of(index).clone(),
        }
    }

    /// Every record in row form.
    pub fn records(&self) -> impl Iterator<Item = LogRecord> + '_ {
        (0..self.len()).map(|index| self.record(index))
    }

    /// Approximate bytes held, for bounds and metrics.
    pub fn byte_size(&self) -> usize {
        self.len() * 41
            + self.severity_texts.bytes.len()
            + self.bodies.bytes.len()
            + self.attribute_keys.bytes.len()
            + self
                .attribute_values
                .iter()
                .map(AttributeValue::byte_size)
                .sum::<usize>()
    }

    /// Appends all records of `other`.
    pub fn extend_from(&mut self, other: &LogBatch) {
        for index in 0..other.len() {
            self.push_copy(other, index, &[]);
        }
    }

    /// The records of `self` at the indices `keep` says (all when `None`), with `edits` applied.
    /// Edits must be sorted by index; edits of dropped records are ignored.
    pub fn select_and_edit(self, keep: Option<&[u8]>, edits: &[RecordEdit]) -> LogBatch {
        if keep.is_none() && edits.is_empty() {
            return self;
        }
        let mut out = LogBatch::new();
        let mut next_edit = 0;
        for index in 0..self.len() {
            let start = next_edit;
            while next_edit < edits.len() && edits[next_edit].index as usize == index {
                next_edit += 1;
            }
            if keep.is_some_and(|mask| mask.get(index).is_none_or(|flag| *flag == 0)) {
                continue;
            }
            out.push_copy(&self, index, &edits[start..next_edit]);
        }
        out
    }

    /// Appends record `index` of `source` with `edits` (all for that record) applied.
    fn push_copy(&mut self, source: &LogBatch, index: usize, edits: &[RecordEdit]) {
        let mut severity = (
            source.severity_numbers[index],
            source.severity_texts.get(index),
        );
        let mut body = source.bodies.get(index);
        for edit in edits {
            match &edit.change {
                RecordChange::Body(new_body) => body = new_body,
                RecordChange::Severity(number, text) => severity = (*number, text),
                _ => {}
            }
        }
        let mut trace_id = [0; 16];
        trace_id.copy_from_slice(&source.trace_ids[index * 16..index * 16 + 16]);
        let mut span_id = [0; 8];
        span_id.copy_from_slice(&source.span_ids[index * 8..index * 8 + 8]);
        self.push_fields(
            source.timestamps[index],
            source.observed_timestamps[index],
            severity.0,
            severity.1,
            body,
            &trace_id,
            &span_id,
            source.resource_of(index),
        );
        let attribute_edits = edits.iter().any(|edit| {
            matches!(
                edit.change,
                RecordChange::SetAttribute(..) | RecordChange::RemoveAttribute(_)
            )
        });
        if !attribute_edits {
            for (key, value) in source.attributes_of(index) {
                self.push_attribute(key, value.clone());
            }
            return;
        }
        let mut attributes: Vec<(&str, AttributeValue)> = source
            .attributes_of(index)
            .map(|(key, value)| (key, value.clone()))
            .collect();
        for edit in edits {
            match &edit.change {
                RecordChange::SetAttribute(key, value) => {
                    match attributes.iter_mut().find(|(existing, _)| existing == key) {
                        Some(slot) => slot.1 = value.clone(),
                        None => attributes.push((key, value.clone())),
                    }
                }
                RecordChange::RemoveAttribute(key) => {
                    attributes.retain(|(existing, _)| existing != key)
                }
                _ => {}
            }
        }
        for (key, value) in attributes {
            self.push_attribute(key, value);
        }
    }
}

/// JSON form of a record, for `sluice plugin test` input and output and for debug sinks.
#[derive(Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct LogRecordJson {
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    timestamp: serde_json::Value,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    observed_timestamp: serde_json::Value,
    severity_number: u8,
    #[serde(skip_serializing_if = "String::is_empty")]
    severity_text: String,
    body: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    trace_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    span_id: String,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    resource: serde_json::Map<String, serde_json::Value>,
}

fn time_from_json(value: &serde_json::Value) -> Result<i64, String> {
    match value {
        serde_json::Value::Null => Ok(0),
        serde_json::Value::Number(number) => number
            .as_i64()
            .ok_or_else(|| format!("timestamp {number} is not an integer of nanoseconds")),
        serde_json::Value::String(text) => {
            let time = humantime::parse_rfc3339_weak(text)
                .map_err(|error| format!("timestamp `{text}`: {error}"))?;
            let nanos = time
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| format!("timestamp `{text}` is before 1970"))?
                .as_nanos();
            i64::try_from(nanos).map_err(|_| format!("timestamp `{text}` is out of range"))
        }
        other => Err(format!(
            "timestamp must be nanoseconds or RFC 3339 text, not {other}"
        )),
    }
}

fn time_to_json(nanos: i64) -> serde_json::Value {
    if nanos <= 0 {
        return serde_json::Value::Null;
    }
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(nanos as u64);
    serde_json::Value::from(humantime::format_rfc3339_nanos(time).to_string())
}

fn id_from_hex<const N: usize>(text: &str, what: &str) -> Result<[u8; N], String> {
    let mut id = [0; N];
    if !text.is_empty() {
        hex::decode_to_slice(text, &mut id).map_err(|error| format!("{what} `{text}`: {error}"))?;
    }
    Ok(id)
}

impl LogRecord {
    /// Parses the JSON form: `{"timestamp", "severity_number", "severity_text", "body",
    /// "attributes": {..}, "resource": {..}, "trace_id", "span_id"}`; times are nanoseconds or
    /// RFC 3339 text.
    pub fn from_json(line: &str) -> Result<LogRecord, String> {
        let json: LogRecordJson = serde_json::from_str(line).map_err(|error| error.to_string())?;
        Ok(LogRecord {
            timestamp: time_from_json(&json.timestamp)?,
            observed_timestamp: time_from_json(&json.observed_timestamp)?,
            severity_number: json.severity_number,
            severity_text: json.severity_text,
            body: json.body,
            trace_id: id_from_hex(&json.trace_id, "trace_id")?,
            span_id: id_from_hex(&json.span_id, "span_id")?,
            attributes: json
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), AttributeValue::from_json(v)))
                .collect(),
            resource: Arc::new(Resource::with_attributes(
                json.resource
                    .iter()
                    .map(|(k, v)| (k.clone(), AttributeValue::from_json(v)))
                    .collect(),
            )),
        })
    }

    /// The JSON form (see [`from_json`](Self::from_json)).
    pub fn to_json(&self) -> serde_json::Value {
        let hex_unless_zero = |id: &[u8]| {
            if id.iter().all(|b| *b == 0) {
                String::new()
            } else {
                hex::encode(id)
            }
        };
        let json = LogRecordJson {
            timestamp: time_to_json(self.timestamp),
            observed_timestamp: time_to_json(self.observed_timestamp),
            severity_number: self.severity_number,
            severity_text: self.severity_text.clone(),
            body: self.body.clone(),
            trace_id: hex_unless_zero(&self.trace_id),
            span_id: hex_unless_zero(&self.span_id),
            attributes: self
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
            resource: self
                .resource
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        };
        serde_json::to_value(json).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(severity: u8, body: &str) -> LogRecord {
        LogRecord {
            severity_number: severity,
            body: body.into(),
            attributes: vec![("k".into(), AttributeValue::Int(severity as i64))],
            ..LogRecord::default()
        }
    }

    #[test]
    fn select_and_edit_keeps_masked_records_and_applies_edits() {
        let batch = LogBatch::from_records(&[record(1, "a"), record(2, "b"), record(3, "c")]);
        let edits = vec![
            RecordEdit {
                index: 0,
                change: RecordChange::Body("dropped anyway".into()),
            },
            RecordEdit {
                index: 2,
                change: RecordChange::Body("C".into()),
            },
            RecordEdit {
                index: 2,
                change: RecordChange::SetAttribute("new".into(), "v".into()),
            },
            RecordEdit {
                index: 2,
                change: RecordChange::RemoveAttribute("k".into()),
            },
        ];
        let out = batch.select_and_edit(Some(&[0, 1, 1]), &edits);
        assert_eq!(out.len(), 2);
        assert_eq!(out.record(0), record(2, "b"));
        let edited = out.record(1);
        assert_eq!(edited.body, "C");
        assert_eq!(
            edited.attributes,
            vec![("new".to_string(), AttributeValue::from("v"))]
        );
    }

    #[test]
    fn string_column_rejects_bad_parts() {
        assert!(StringColumn::from_parts(b"ab".to_vec(), vec![0, 1, 2]).is_ok());
        assert!(StringColumn::from_parts(b"ab".to_vec(), vec![0, 3]).is_err());
        assert!(StringColumn::from_parts(vec![0xff], vec![0, 1]).is_err());
        assert!(StringColumn::from_parts("é".as_bytes().to_vec(), vec![0, 1, 2]).is_err());
        assert!(StringColumn::from_parts(b"ab".to_vec(), vec![0, 2, 1, 2]).is_err());
    }

    #[test]
    fn json_round_trip() {
        let line = r#"{"timestamp":"2026-11-23T10:00:00.5Z","severity_number":17,"severity_text":"ERROR","body":"boom","attributes":{"n":3,"ok":true},"resource":{"service.name":"checkout"},"trace_id":"0102030405060708090a0b0c0d0e0f10"}"#;
        let parsed = LogRecord::from_json(line).unwrap();
        assert_eq!(parsed.timestamp, 1_795_428_000_500_000_000);
        assert_eq!(
            parsed.resource.attribute("service.name"),
            Some(&AttributeValue::from("checkout"))
        );
        let again = LogRecord::from_json(&parsed.to_json().to_string()).unwrap();
        assert_eq!(parsed, again);
        assert!(LogRecord::from_json(r#"{"bogus":1}"#).is_err());
    }
}
