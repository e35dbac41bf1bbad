//! A batch of log records as columns.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::{AttributeValue, AttributeValueRef, Resource};

mod codec;

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

    /// An empty column with room for `entries` entries of `bytes` bytes in all.
    pub fn with_capacity(entries: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(entries + 1);
        offsets.push(0);
        StringColumn {
            bytes: Vec::with_capacity(bytes),
            offsets,
        }
    }

    /// Bytes of the entries `start..end`.
    fn run_bytes(&self, start: usize, end: usize) -> usize {
        (self.offsets[end] - self.offsets[start]) as usize
    }

    /// Appends the entries `start..end` of `source`: their bytes in one copy (they are already
    /// checked UTF-8, and whole entries keep character boundaries), their offsets rebased.
    fn extend_from_run(&mut self, source: &StringColumn, start: usize, end: usize) {
        copy_run(
            (&mut self.bytes, &mut self.offsets),
            (&source.bytes, &source.offsets),
            start,
            end,
        );
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
    attribute_values: ValueColumns,
    resources: Vec<Arc<Resource>>,
    resource_of_record: Vec<u32>,
}

/// Appends entries `start..end` of a bytes-plus-offsets column to another: the bytes in one copy,
/// the offsets rebased.
fn copy_run(
    (bytes, offsets): (&mut Vec<u8>, &mut Vec<u32>),
    (source_bytes, source_offsets): (&[u8], &[u32]),
    start: usize,
    end: usize,
) {
    let (first, last) = (source_offsets[start], source_offsets[end]);
    let base = (bytes.len() as u32).wrapping_sub(first);
    bytes.extend_from_slice(&source_bytes[first as usize..last as usize]);
    offsets.extend(
        source_offsets[start + 1..=end]
            .iter()
            .map(|&offset| offset.wrapping_add(base)),
    );
}

/// The kind of one attribute value in [`ValueColumns`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum ValueKind {
    Str,
    Int,
    Double,
    Bool,
    Bytes,
}

/// Attribute values as columns, so that building, copying, selecting and dropping a batch
/// allocates nothing per value: a kind per value, a 64-bit payload for numbers and booleans
/// (0 for the others), and the bytes of text and byte values concatenated, one entry per value
/// (empty for the others).
struct ValueColumns {
    kinds: Vec<ValueKind>,
    scalars: Vec<u64>,
    data: Vec<u8>,
    data_offsets: Vec<u32>,
    /// The values in owned form, made on the first call of [`LogBatch::attribute_values`] or
    /// [`LogBatch::attributes_of`] and forgotten on any change.
    owned: OnceLock<Vec<AttributeValue>>,
}

impl Default for ValueColumns {
    fn default() -> Self {
        ValueColumns::with_capacity(0, 0)
    }
}

impl Clone for ValueColumns {
    fn clone(&self) -> Self {
        ValueColumns {
            kinds: self.kinds.clone(),
            scalars: self.scalars.clone(),
            data: self.data.clone(),
            data_offsets: self.data_offsets.clone(),
            owned: OnceLock::new(),
        }
    }
}

impl PartialEq for ValueColumns {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && (0..self.len()).all(|entry| self.get(entry) == other.get(entry))
    }
}

impl std::fmt::Debug for ValueColumns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries((0..self.len()).map(|entry| self.get(entry)))
            .finish()
    }
}

impl ValueColumns {
    fn with_capacity(values: usize, data_bytes: usize) -> Self {
        let mut data_offsets = Vec::with_capacity(values + 1);
        data_offsets.push(0);
        ValueColumns {
            kinds: Vec::with_capacity(values),
            scalars: Vec::with_capacity(values),
            data: Vec::with_capacity(data_bytes),
            data_offsets,
            owned: OnceLock::new(),
        }
    }

    fn len(&self) -> usize {
        self.kinds.len()
    }

    fn push(&mut self, value: AttributeValueRef<'_>) {
        self.owned.take();
        let (kind, scalar, data): (ValueKind, u64, &[u8]) = match value {
            AttributeValueRef::Str(text) => (ValueKind::Str, 0, text.as_bytes()),
            AttributeValueRef::Int(number) => (ValueKind::Int, number as u64, &[]),
            AttributeValueRef::Double(number) => (ValueKind::Double, number.to_bits(), &[]),
            AttributeValueRef::Bool(flag) => (ValueKind::Bool, u64::from(flag), &[]),
            AttributeValueRef::Bytes(bytes) => (ValueKind::Bytes, 0, bytes),
        };
        self.kinds.push(kind);
        self.scalars.push(scalar);
        self.data.extend_from_slice(data);
        self.data_offsets.push(self.data.len() as u32);
    }

    fn get(&self, entry: usize) -> AttributeValueRef<'_> {
        let scalar = self.scalars[entry];
        let data =
            &self.data[self.data_offsets[entry] as usize..self.data_offsets[entry + 1] as usize];
        match self.kinds[entry] {
            // Text entries come from `&str` and are copied whole, so this cannot fail.
            ValueKind::Str => AttributeValueRef::Str(std::str::from_utf8(data).unwrap_or_default()),
            ValueKind::Int => AttributeValueRef::Int(scalar as i64),
            ValueKind::Double => AttributeValueRef::Double(f64::from_bits(scalar)),
            ValueKind::Bool => AttributeValueRef::Bool(scalar != 0),
            ValueKind::Bytes => AttributeValueRef::Bytes(data),
        }
    }

    /// Bytes of text and byte values among the entries `start..end`.
    fn run_data_bytes(&self, start: usize, end: usize) -> usize {
        (self.data_offsets[end] - self.data_offsets[start]) as usize
    }

    /// Appends the entries `start..end` of `source`.
    fn extend_from_run(&mut self, source: &ValueColumns, start: usize, end: usize) {
        self.owned.take();
        self.kinds.extend_from_slice(&source.kinds[start..end]);
        self.scalars.extend_from_slice(&source.scalars[start..end]);
        copy_run(
            (&mut self.data, &mut self.data_offsets),
            (&source.data, &source.data_offsets),
            start,
            end,
        );
    }

    fn owned(&self) -> &[AttributeValue] {
        self.owned.get_or_init(|| {
            (0..self.len())
                .map(|entry| self.get(entry).to_value())
                .collect()
        })
    }
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
        self.push_attribute_ref(key, AttributeValueRef::from(&value));
    }

    /// Adds an attribute to the last record pushed, copying a borrowed value.
    pub fn push_attribute_ref(&mut self, key: &str, value: AttributeValueRef<'_>) {
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

    /// Attribute values of all records, in record order, in owned form. Values are held as
    /// columns: the owned form is made on the first call (one allocation per text or bytes
    /// value) and kept with the batch. [`attribute_value`](Self::attribute_value) reads one
    /// without allocating.
    pub fn attribute_values(&self) -> &[AttributeValue] {
        self.attribute_values.owned()
    }

    /// Attribute entry `entry` (an index into [`attribute_keys`](Self::attribute_keys)),
    /// borrowed from the columns.
    pub fn attribute_value(&self, entry: usize) -> AttributeValueRef<'_> {
        self.attribute_values.get(entry)
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

    /// The attributes of record `index`, values in owned form (see
    /// [`attribute_values`](Self::attribute_values)); [`attribute_refs_of`](Self::attribute_refs_of)
    /// reads them without allocating.
    pub fn attributes_of(
        &self,
        index: usize,
    ) -> impl Iterator<Item = (&str, &AttributeValue)> + '_ {
        let values = self.attribute_values.owned();
        self.attribute_range(index)
            .map(move |entry| (self.attribute_keys.get(entry), &values[entry]))
    }

    /// The attributes of record `index`, borrowed from the columns.
    pub fn attribute_refs_of(
        &self,
        index: usize,
    ) -> impl Iterator<Item = (&str, AttributeValueRef<'_>)> + '_ {
        self.attribute_range(index).map(move |entry| {
            (
                self.attribute_keys.get(entry),
                self.attribute_values.get(entry),
            )
        })
    }

    /// One record attribute for every record.
    pub fn attribute_column(&self, key: &str) -> Vec<Option<AttributeValue>> {
        (0..self.len())
            .map(|index| {
                self.attribute_refs_of(index)
                    .find(|(k, _)| *k == key)
                    .map(|(_, value)| value.to_value())
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
                .attribute_refs_of(index)
                .map(|(k, v)| (k.to_owned(), v.to_value()))
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
            + self.attribute_values.data.len()
            + self.attribute_values.len() * 8
    }

    /// Appends all records of `other`.
    pub fn extend_from(&mut self, other: &LogBatch) {
        if other.is_empty() {
            return;
        }
        if self.attribute_offsets.is_empty() {
            self.attribute_offsets.push(0);
        }
        let len = other.len();
        self.timestamps.extend_from_slice(&other.timestamps);
        self.observed_timestamps
            .extend_from_slice(&other.observed_timestamps);
        self.severity_numbers
            .extend_from_slice(&other.severity_numbers);
        self.severity_texts
            .extend_from_run(&other.severity_texts, 0, len);
        self.bodies.extend_from_run(&other.bodies, 0, len);
        self.trace_ids.extend_from_slice(&other.trace_ids);
        self.span_ids.extend_from_slice(&other.span_ids);
        let base = self.attribute_values.len() as u32;
        self.attribute_offsets.extend(
            other.attribute_offsets[1..=len]
                .iter()
                .map(|&end| end + base),
        );
        let entries = other.attribute_values.len();
        self.attribute_keys
            .extend_from_run(&other.attribute_keys, 0, entries);
        self.attribute_values
            .extend_from_run(&other.attribute_values, 0, entries);
        // Resources: only those the records use, each matched against ours once.
        let mut mapping: Vec<Option<u32>> = vec![None; other.resources.len()];
        self.resource_of_record.reserve(len);
        for &resource in &other.resource_of_record {
            let resource = resource as usize;
            let index = match mapping[resource] {
                Some(index) => index,
                None => {
                    let index = self.resource_index(&other.resources[resource]);
                    mapping[resource] = Some(index);
                    index
                }
            };
            self.resource_of_record.push(index);
        }
    }

    /// The records of `self` at the indices `keep` says (all when `None`), with `edits` applied.
    /// Edits must be sorted by index; edits of dropped records are ignored. A mask shorter than
    /// the batch drops the records it does not cover.
    ///
    /// Column-wise: fixed-width columns are gathered by index, strings and attribute values are
    /// copied as runs of consecutive kept records with their offsets rebased, and the resources
    /// stay as they are. Nothing is allocated per record or per value; only records with edits
    /// are built one by one.
    pub fn select_and_edit(self, keep: Option<&[u8]>, edits: &[RecordEdit]) -> LogBatch {
        let len = self.len();
        let kept = match keep {
            None if edits.is_empty() => return self,
            None => (0..len as u32).collect(),
            Some(mask) => kept_indices(mask, len),
        };
        if kept.len() == len && edits.is_empty() {
            return self;
        }
        if kept.is_empty() {
            return LogBatch::new();
        }
        self.gather(&kept, edits)
    }

    /// The records at `kept` (increasing indices), with `edits` (sorted) applied.
    fn gather(self, kept: &[u32], edits: &[RecordEdit]) -> LogBatch {
        let LogBatch {
            timestamps,
            observed_timestamps,
            severity_numbers,
            severity_texts,
            bodies,
            trace_ids,
            span_ids,
            attribute_offsets,
            attribute_keys,
            attribute_values,
            resources,
            resource_of_record,
        } = self;
        let segments = segments(kept, edits);

        let (trace_ids, _) = trace_ids.as_chunks::<16>();
        let (span_ids, _) = span_ids.as_chunks::<8>();
        let mut out = LogBatch {
            timestamps: gather_by_index(&timestamps, kept),
            observed_timestamps: gather_by_index(&observed_timestamps, kept),
            severity_numbers: gather_by_index(&severity_numbers, kept),
            severity_texts: StringColumn::default(),
            bodies: StringColumn::default(),
            trace_ids: gather_by_index(trace_ids, kept).into_flattened(),
            span_ids: gather_by_index(span_ids, kept).into_flattened(),
            attribute_offsets: Vec::new(),
            attribute_keys: StringColumn::default(),
            attribute_values: ValueColumns::default(),
            resources,
            resource_of_record: gather_by_index(&resource_of_record, kept),
        };

        // Sizes first, so that every output column is allocated once.
        let mut sizes = GatherSizes::default();
        for segment in &segments {
            match segment.edits(edits) {
                None => {
                    let (start, end) = (segment.start as usize, segment.end as usize);
                    sizes.severity_text_bytes += severity_texts.run_bytes(start, end);
                    sizes.body_bytes += bodies.run_bytes(start, end);
                    let entries =
                        attribute_offsets[start] as usize..attribute_offsets[end] as usize;
                    sizes.attribute_key_bytes +=
                        attribute_keys.run_bytes(entries.start, entries.end);
                    sizes.attribute_data_bytes +=
                        attribute_values.run_data_bytes(entries.start, entries.end);
                    sizes.attributes += entries.len();
                }
                Some(edits) => {
                    let index = segment.start as usize;
                    let edited =
                        edited_fields(&severity_numbers, &severity_texts, &bodies, index, edits);
                    sizes.severity_text_bytes += edited.severity.1.len();
                    sizes.body_bytes += edited.body.len();
                    let entries =
                        attribute_offsets[index] as usize..attribute_offsets[index + 1] as usize;
                    sizes.attribute_key_bytes +=
                        attribute_keys.run_bytes(entries.start, entries.end);
                    sizes.attribute_data_bytes +=
                        attribute_values.run_data_bytes(entries.start, entries.end);
                    sizes.attributes += entries.len();
                    // At most: a set may replace an entry rather than add one.
                    for edit in edits {
                        if let RecordChange::SetAttribute(key, value) = &edit.change {
                            sizes.attribute_key_bytes += key.len();
                            sizes.attribute_data_bytes += value.byte_size() - 8;
                            sizes.attributes += 1;
                        }
                    }
                }
            }
        }
        out.severity_texts = StringColumn::with_capacity(kept.len(), sizes.severity_text_bytes);
        out.bodies = StringColumn::with_capacity(kept.len(), sizes.body_bytes);
        out.attribute_keys =
            StringColumn::with_capacity(sizes.attributes, sizes.attribute_key_bytes);
        out.attribute_values =
            ValueColumns::with_capacity(sizes.attributes, sizes.attribute_data_bytes);
        out.attribute_offsets = Vec::with_capacity(kept.len() + 1);
        out.attribute_offsets.push(0);

        let mut position = 0;
        for segment in &segments {
            let (start, end) = (segment.start as usize, segment.end as usize);
            match segment.edits(edits) {
                None => {
                    out.severity_texts
                        .extend_from_run(&severity_texts, start, end);
                    out.bodies.extend_from_run(&bodies, start, end);
                    let (first, last) = (attribute_offsets[start], attribute_offsets[end]);
                    out.attribute_keys.extend_from_run(
                        &attribute_keys,
                        first as usize,
                        last as usize,
                    );
                    let base = (out.attribute_values.len() as u32).wrapping_sub(first);
                    out.attribute_offsets.extend(
                        attribute_offsets[start + 1..=end]
                            .iter()
                            .map(|&entry| entry.wrapping_add(base)),
                    );
                    out.attribute_values.extend_from_run(
                        &attribute_values,
                        first as usize,
                        last as usize,
                    );
                }
                Some(edits) => {
                    let edited =
                        edited_fields(&severity_numbers, &severity_texts, &bodies, start, edits);
                    out.severity_numbers[position] = edited.severity.0;
                    out.severity_texts.push(edited.severity.1);
                    out.bodies.push(edited.body);
                    let entries =
                        attribute_offsets[start] as usize..attribute_offsets[start + 1] as usize;
                    let mut attributes: Vec<(&str, AttributeValueRef<'_>)> = entries
                        .map(|entry| (attribute_keys.get(entry), attribute_values.get(entry)))
                        .collect();
                    apply_attribute_edits(&mut attributes, edits);
                    for (key, value) in attributes {
                        out.attribute_keys.push(key);
                        out.attribute_values.push(value);
                    }
                    out.attribute_offsets
                        .push(out.attribute_values.len() as u32);
                }
            }
            position += end - start;
        }
        // The input's columns are freed here: a dozen buffers, whatever the batch holds.
        out
    }
}

/// The indices of the records `mask` keeps, in order, in a batch of `len` records.
fn kept_indices(mask: &[u8], len: usize) -> Vec<u32> {
    let mask = &mask[..mask.len().min(len)];
    let mut kept = vec![0; mask.len()];
    let mut count = 0;
    // Branch-free: write every index, advance past it only when the record is kept.
    for (index, &flag) in mask.iter().enumerate() {
        kept[count] = index as u32;
        count += usize::from(flag != 0);
    }
    kept.truncate(count);
    kept
}

fn gather_by_index<T: Copy>(column: &[T], kept: &[u32]) -> Vec<T> {
    kept.iter().map(|&index| column[index as usize]).collect()
}

/// A stretch of the output: the records `start..end` of the input, copied as they are, or one
/// record (`end == start + 1`) with the edits `edits_start..edits_end`.
struct Segment {
    start: u32,
    end: u32,
    edits_start: u32,
    edits_end: u32,
}

impl Segment {
    fn edits<'e>(&self, edits: &'e [RecordEdit]) -> Option<&'e [RecordEdit]> {
        (self.edits_start < self.edits_end)
            .then(|| &edits[self.edits_start as usize..self.edits_end as usize])
    }
}

/// Splits the kept records into runs of consecutive unedited records and single edited ones.
fn segments(kept: &[u32], edits: &[RecordEdit]) -> Vec<Segment> {
    let mut segments = Vec::with_capacity(kept.len());
    let mut next_edit = 0;
    let mut position = 0;
    let edit_at =
        |next_edit: usize, index: u32| edits.get(next_edit).is_some_and(|edit| edit.index == index);
    while position < kept.len() {
        let start = kept[position];
        while next_edit < edits.len() && edits[next_edit].index < start {
            next_edit += 1;
        }
        let edits_start = next_edit;
        while edit_at(next_edit, start) {
            next_edit += 1;
        }
        position += 1;
        let mut end = start + 1;
        if edits_start == next_edit {
            while position < kept.len() && kept[position] == end && !edit_at(next_edit, end) {
                end += 1;
                position += 1;
            }
        }
        segments.push(Segment {
            start,
            end,
            edits_start: edits_start as u32,
            edits_end: next_edit as u32,
        });
    }
    segments
}

#[derive(Default)]
struct GatherSizes {
    severity_text_bytes: usize,
    body_bytes: usize,
    attribute_key_bytes: usize,
    attribute_data_bytes: usize,
    attributes: usize,
}

/// Severity (number and text) and body of a record after its `edits`.
struct EditedFields<'a> {
    severity: (u8, &'a str),
    body: &'a str,
}

fn edited_fields<'a>(
    severity_numbers: &[u8],
    severity_texts: &'a StringColumn,
    bodies: &'a StringColumn,
    index: usize,
    edits: &'a [RecordEdit],
) -> EditedFields<'a> {
    let mut fields = EditedFields {
        severity: (severity_numbers[index], severity_texts.get(index)),
        body: bodies.get(index),
    };
    for edit in edits {
        match &edit.change {
            RecordChange::Body(body) => fields.body = body,
            RecordChange::Severity(number, text) => fields.severity = (*number, text),
            _ => {}
        }
    }
    fields
}

/// Applies the attribute edits of one record, in order: a set replaces the first entry with its
/// key or appends one, a remove drops every entry with its key.
fn apply_attribute_edits<'a>(
    attributes: &mut Vec<(&'a str, AttributeValueRef<'a>)>,
    edits: &'a [RecordEdit],
) {
    for edit in edits {
        match &edit.change {
            RecordChange::SetAttribute(key, value) => {
                let value = AttributeValueRef::from(value);
                match attributes.iter_mut().find(|(existing, _)| existing == key) {
                    Some(slot) => slot.1 = value,
                    None => attributes.push((key, value)),
                }
            }
            RecordChange::RemoveAttribute(key) => {
                attributes.retain(|(existing, _)| existing != key)
            }
            _ => {}
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

    /// Today's semantics, one record at a time in row form: the reference for the gather.
    fn naive_select_and_edit(
        batch: &LogBatch,
        keep: Option<&[u8]>,
        edits: &[RecordEdit],
    ) -> Vec<LogRecord> {
        let mut out = Vec::new();
        for index in 0..batch.len() {
            if keep.is_some_and(|mask| mask.get(index).is_none_or(|flag| *flag == 0)) {
                continue;
            }
            let mut record = batch.record(index);
            for edit in edits.iter().filter(|edit| edit.index as usize == index) {
                match &edit.change {
                    RecordChange::Body(body) => record.body = body.clone(),
                    RecordChange::Severity(number, text) => {
                        record.severity_number = *number;
                        record.severity_text = text.clone();
                    }
                    RecordChange::SetAttribute(key, value) => {
                        match record.attributes.iter_mut().find(|(k, _)| k == key) {
                            Some(slot) => slot.1 = value.clone(),
                            None => record.attributes.push((key.clone(), value.clone())),
                        }
                    }
                    RecordChange::RemoveAttribute(key) => {
                        record.attributes.retain(|(k, _)| k != key)
                    }
                }
            }
            out.push(record);
        }
        out
    }

    /// Every column has one entry per record and every string column is well formed.
    fn assert_consistent(batch: &LogBatch) {
        let len = batch.len();
        assert_eq!(batch.observed_timestamps.len(), len);
        assert_eq!(batch.severity_numbers.len(), len);
        assert_eq!(batch.severity_texts.len(), len);
        assert_eq!(batch.bodies.len(), len);
        assert_eq!(batch.trace_ids.len(), len * 16);
        assert_eq!(batch.span_ids.len(), len * 8);
        assert_eq!(batch.resource_of_record.len(), len);
        assert!(
            batch
                .resource_of_record
                .iter()
                .all(|&resource| (resource as usize) < batch.resources.len())
        );
        assert_eq!(batch.attribute_offsets.len(), len + 1);
        assert_eq!(batch.attribute_offsets[0], 0);
        assert!(
            batch
                .attribute_offsets
                .windows(2)
                .all(|pair| pair[0] <= pair[1])
        );
        assert_eq!(
            batch.attribute_offsets[len] as usize,
            batch.attribute_values.len()
        );
        assert_eq!(batch.attribute_keys.len(), batch.attribute_values.len());
        let values = &batch.attribute_values;
        assert_eq!(values.scalars.len(), values.len());
        assert_eq!(values.data_offsets.len(), values.len() + 1);
        assert_eq!(values.data_offsets[0], 0);
        assert!(
            values
                .data_offsets
                .windows(2)
                .all(|pair| pair[0] <= pair[1])
        );
        assert_eq!(
            *values.data_offsets.last().unwrap() as usize,
            values.data.len()
        );
        for entry in 0..values.len() {
            if let AttributeValueRef::Str(text) = values.get(entry) {
                assert_eq!(
                    text.len(),
                    values.run_data_bytes(entry, entry + 1),
                    "valid UTF-8"
                );
            }
        }
        for column in [&batch.severity_texts, &batch.bodies, &batch.attribute_keys] {
            StringColumn::from_parts(column.bytes.clone(), column.offsets.clone()).unwrap();
        }
    }

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }
    }

    const TEXTS: [&str; 6] = ["", "a", "héllo", "日本語のログ", "GET /x -> 200", "é"];
    const KEYS: [&str; 4] = ["k", "user.id", "é", "http.status_code"];

    fn random_value(rng: &mut Rng) -> AttributeValue {
        match rng.below(5) {
            0 => AttributeValue::Str(TEXTS[rng.below(6) as usize].repeat(rng.below(3) as usize)),
            1 => AttributeValue::Int(rng.next() as i64),
            2 => AttributeValue::Double(rng.below(1000) as f64 / 7.0),
            3 => AttributeValue::Bool(rng.below(2) == 1),
            _ => AttributeValue::Bytes(vec![0xff; rng.below(4) as usize]),
        }
    }

    fn random_batch(rng: &mut Rng, len: usize) -> LogBatch {
        let resources: Vec<Arc<Resource>> = (0..3)
            .map(|n| {
                Arc::new(Resource::with_attributes(vec![(
                    "service.name".into(),
                    AttributeValue::Str(format!("service-{n}")),
                )]))
            })
            .collect();
        let records: Vec<LogRecord> = (0..len)
            .map(|index| LogRecord {
                timestamp: index as i64 * 1000 + 1,
                observed_timestamp: index as i64 * 1000 + 2,
                severity_number: rng.below(25) as u8,
                severity_text: TEXTS[rng.below(6) as usize].into(),
                body: format!("{} #{index}", TEXTS[rng.below(6) as usize]),
                trace_id: rng.next().to_le_bytes().repeat(2).try_into().unwrap(),
                span_id: rng.next().to_le_bytes(),
                attributes: (0..rng.below(4))
                    .map(|_| (KEYS[rng.below(4) as usize].into(), random_value(rng)))
                    .collect(),
                resource: resources[rng.below(3) as usize].clone(),
            })
            .collect();
        LogBatch::from_records(&records)
    }

    fn random_edits(rng: &mut Rng, len: usize) -> Vec<RecordEdit> {
        let mut edits: Vec<RecordEdit> = (0..rng.below(len as u64 / 2 + 2))
            .map(|_| RecordEdit {
                // Now and then an edit past the end, which is ignored.
                index: rng.below(len as u64 + 2) as u32,
                change: match rng.below(4) {
                    0 => RecordChange::Body(TEXTS[rng.below(6) as usize].repeat(2)),
                    1 => RecordChange::Severity(
                        rng.below(25) as u8,
                        TEXTS[rng.below(6) as usize].into(),
                    ),
                    2 => RecordChange::SetAttribute(
                        KEYS[rng.below(4) as usize].into(),
                        random_value(rng),
                    ),
                    _ => RecordChange::RemoveAttribute(KEYS[rng.below(4) as usize].into()),
                },
            })
            .collect();
        edits.sort_by_key(|edit| edit.index);
        edits
    }

    #[test]
    fn select_and_edit_matches_the_record_by_record_path() {
        let mut rng = Rng(0x5EED_1234_5678);
        for round in 0..600 {
            let len = rng.below(48) as usize;
            let batch = random_batch(&mut rng, len);
            // Dense, sparse and all-or-nothing masks, some shorter or longer than the batch.
            let density = [0, 1, 3, 5, 7, 10][round % 6];
            let mask_len = match rng.below(8) {
                0 => len.saturating_sub(rng.below(3) as usize),
                1 => len + 2,
                _ => len,
            };
            let mask: Vec<u8> = (0..mask_len)
                .map(|_| u8::from(rng.below(10) < density) * (1 + rng.below(3) as u8))
                .collect();
            let keep = (rng.below(6) != 0).then_some(mask.as_slice());
            let edits = if rng.below(2) == 0 {
                Vec::new()
            } else {
                random_edits(&mut rng, len)
            };
            let expected = naive_select_and_edit(&batch, keep, &edits);
            let out = batch.clone().select_and_edit(keep, &edits);
            assert_consistent(&out);
            let got: Vec<LogRecord> = out.records().collect();
            assert_eq!(
                got, expected,
                "round {round}: keep {keep:?}, edits {edits:?}"
            );
        }
    }

    #[test]
    fn select_copies_runs_of_kept_records() {
        let records: Vec<LogRecord> = (0..9).map(|n| record(n, &"é".repeat(n as usize))).collect();
        let batch = LogBatch::from_records(&records);
        let mask = [1, 1, 0, 1, 1, 1, 0, 0, 1];
        let out = batch.select_and_edit(Some(&mask), &[]);
        assert_consistent(&out);
        let kept: Vec<LogRecord> = out.records().collect();
        let expected: Vec<LogRecord> = [0, 1, 3, 4, 5, 8]
            .iter()
            .map(|&index| records[index].clone())
            .collect();
        assert_eq!(kept, expected);
        assert_eq!(out.bodies().offsets(), &[0, 0, 2, 8, 16, 26, 42]);
    }

    #[test]
    fn select_with_an_empty_mask_keeps_nothing() {
        let batch = LogBatch::from_records(&[record(1, "a"), record(2, "b")]);
        for mask in [&[0u8, 0][..], &[][..]] {
            let out = batch.clone().select_and_edit(Some(mask), &[]);
            assert_consistent(&out);
            assert!(out.is_empty());
            assert!(out.attribute_values().is_empty());
            assert!(out.bodies().bytes().is_empty());
        }
        // Records pushed onto the empty result are whole.
        let mut out = batch.select_and_edit(Some(&[0, 0]), &[]);
        out.push(&record(3, "c"));
        assert_consistent(&out);
        assert_eq!(out.record(0), record(3, "c"));
    }

    #[test]
    fn select_keeping_everything_returns_the_batch_itself() {
        let batch = LogBatch::from_records(&[record(1, "a"), record(2, "b")]);
        let bodies = batch.bodies().bytes().as_ptr();
        let out = batch.select_and_edit(Some(&[1, 7]), &[]);
        assert_eq!(out.bodies().bytes().as_ptr(), bodies, "no copy");
        let out = out.select_and_edit(None, &[]);
        assert_eq!(out.bodies().bytes().as_ptr(), bodies, "no copy");
        assert_eq!(
            out.records().collect::<Vec<_>>(),
            vec![record(1, "a"), record(2, "b")]
        );
    }

    #[test]
    fn select_applies_edits_to_kept_records_only() {
        let records: Vec<LogRecord> = (1..=5).map(|n| record(n, &format!("r{n}"))).collect();
        let batch = LogBatch::from_records(&records);
        let edit = |index, change| RecordEdit { index, change };
        let edits = vec![
            edit(0, RecordChange::Severity(24, "FATAL".into())),
            edit(1, RecordChange::Body("dropped".into())),
            edit(2, RecordChange::Body("first".into())),
            edit(2, RecordChange::Body("second".into())),
            edit(2, RecordChange::Severity(17, "ERROR".into())),
            edit(
                3,
                RecordChange::SetAttribute("k".into(), AttributeValue::Int(-1)),
            ),
            edit(3, RecordChange::SetAttribute("new".into(), "v".into())),
            edit(4, RecordChange::RemoveAttribute("k".into())),
        ];
        let out = batch.select_and_edit(Some(&[1, 0, 1, 1, 1]), &edits);
        assert_consistent(&out);
        assert_eq!(out.len(), 4);
        let got: Vec<LogRecord> = out.records().collect();
        assert_eq!(
            (got[0].severity_number, got[0].severity_text.as_str()),
            (24, "FATAL")
        );
        assert_eq!(got[0].body, "r1");
        assert_eq!(got[1].body, "second");
        assert_eq!(
            (got[1].severity_number, got[1].severity_text.as_str()),
            (17, "ERROR")
        );
        assert_eq!(
            got[2].attributes,
            vec![
                ("k".to_string(), AttributeValue::Int(-1)),
                ("new".to_string(), AttributeValue::from("v")),
            ]
        );
        assert!(got[3].attributes.is_empty());
        assert_eq!(got[3].body, "r5");
        // Without a mask, edits still apply.
        let batch = LogBatch::from_records(&records[..2]);
        let out = batch.select_and_edit(None, &[edit(1, RecordChange::Body("B".into()))]);
        assert_eq!(out.record(0), records[0]);
        assert_eq!(out.record(1).body, "B");
    }

    #[test]
    fn select_copies_every_kind_of_attribute_value() {
        let values = [
            ("s".to_string(), AttributeValue::from("text é")),
            ("i".to_string(), AttributeValue::Int(-7)),
            ("d".to_string(), AttributeValue::Double(2.5)),
            ("b".to_string(), AttributeValue::Bool(true)),
            ("x".to_string(), AttributeValue::Bytes(vec![0, 0xff])),
        ];
        let resource = Arc::new(Resource::with_attributes(vec![(
            "service.name".into(),
            "checkout".into(),
        )]));
        let records: Vec<LogRecord> = (0..4)
            .map(|n| LogRecord {
                body: format!("r{n}"),
                attributes: values[n..].to_vec(),
                resource: resource.clone(),
                ..LogRecord::default()
            })
            .collect();
        let batch = LogBatch::from_records(&records);
        let out = batch.select_and_edit(Some(&[0, 1, 0, 1]), &[]);
        assert_consistent(&out);
        assert_eq!(out.record(0), records[1]);
        assert_eq!(out.record(1), records[3]);
        assert!(Arc::ptr_eq(out.resource_of(1), &resource));
        assert_eq!(out.attribute_values().len(), 4 + 2);
    }

    #[test]
    fn owned_attribute_values_follow_changes() {
        let mut batch = LogBatch::from_records(&[record(1, "a")]);
        assert_eq!(batch.attribute_values(), &[AttributeValue::Int(1)]);
        assert_eq!(
            batch.attributes_of(0).collect::<Vec<_>>(),
            vec![("k", &AttributeValue::Int(1))]
        );
        batch.push_attribute("s", "text".into());
        batch.push_attribute_ref("b", AttributeValueRef::Bytes(&[1, 2]));
        assert_eq!(
            batch.attribute_values(),
            &[
                AttributeValue::Int(1),
                AttributeValue::from("text"),
                AttributeValue::Bytes(vec![1, 2])
            ]
        );
        assert_eq!(batch.attribute_value(1), AttributeValueRef::Str("text"));
        assert_eq!(
            batch
                .attribute_refs_of(0)
                .map(|(key, _)| key)
                .collect::<Vec<_>>(),
            vec!["k", "s", "b"]
        );
        assert_eq!(
            batch.attribute_column("s"),
            vec![Some(AttributeValue::from("text"))]
        );
        let copy = batch.clone();
        assert_eq!(copy, batch);
        // 41 per record, body "a", keys "k", "s", "b", values 8 + (4 + 8) + (2 + 8).
        assert_eq!(batch.byte_size(), 41 + 1 + 3 + 8 + 12 + 10);
        let mut other = batch.clone();
        other.push_attribute("s", AttributeValue::Double(f64::NAN));
        assert_ne!(other, batch);
        assert_ne!(
            other,
            other.clone(),
            "NaN is not equal to itself, as before"
        );
    }

    #[test]
    fn extend_from_appends_whole_records() {
        let mut rng = Rng(7);
        let first = random_batch(&mut rng, 5);
        let second = random_batch(&mut rng, 7);
        let mut joined = first.clone();
        joined.extend_from(&second);
        joined.extend_from(&LogBatch::new());
        assert_consistent(&joined);
        let expected: Vec<LogRecord> = first.records().chain(second.records()).collect();
        assert_eq!(joined.records().collect::<Vec<_>>(), expected);
        let mut empty = LogBatch::default();
        empty.extend_from(&second);
        assert_consistent(&empty);
        assert_eq!(
            empty.records().collect::<Vec<_>>(),
            second.records().collect::<Vec<_>>()
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
