//! A batch of log records as the plugin sees it: columns fetched from the host on first use and
//! kept for the rest of the call, and a per-record view over them.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use crate::bindings::sluice::plugin::types;
use crate::{AttributeTable, StringColumn, Value};

/// Attribute columns fetched so far, by key.
type AttributeColumns = RefCell<Vec<(String, Rc<[Option<Value>]>)>>;

/// Where the columns come from.
enum Source<'h> {
    /// The host's batch resource (inside the sandbox).
    Host(&'h types::LogBatch),
    /// Columns filled at construction (unit tests, native runs).
    Owned,
}

/// One batch of log records. Columns are fetched from the host lazily, once per batch.
pub struct LogBatch<'h> {
    source: Source<'h>,
    /// Asked of the host only when no column fetched so far tells it.
    len: OnceCell<usize>,
    timestamps: OnceCell<Vec<i64>>,
    observed_timestamps: OnceCell<Vec<i64>>,
    severity_numbers: OnceCell<Vec<u8>>,
    severity_texts: OnceCell<StringColumn>,
    bodies: OnceCell<StringColumn>,
    trace_ids: OnceCell<Vec<u8>>,
    span_ids: OnceCell<Vec<u8>>,
    attributes: OnceCell<AttributeTable>,
    attribute_columns: AttributeColumns,
    resource_attribute_columns: AttributeColumns,
    owned_resource_attributes: Vec<Vec<(String, Value)>>,
}

/// One log record with every field, for building batches natively (unit tests, samples).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogRecord {
    /// Event time, Unix nanoseconds.
    pub timestamp: i64,
    /// Time the gateway saw the record, Unix nanoseconds.
    pub observed_timestamp: i64,
    /// OpenTelemetry severity number (0-24).
    pub severity_number: u8,
    /// Severity text.
    pub severity_text: String,
    /// Body as text.
    pub body: String,
    /// Trace id (all zero when absent).
    pub trace_id: [u8; 16],
    /// Span id (all zero when absent).
    pub span_id: [u8; 8],
    /// Record attributes.
    pub attributes: Vec<(String, Value)>,
    /// Attributes of the record's resource (such as `service.name`).
    pub resource_attributes: Vec<(String, Value)>,
}

impl LogRecord {
    /// A record with a severity and a body, the rest empty.
    pub fn new(severity_number: u8, body: &str) -> Self {
        LogRecord {
            severity_number,
            body: body.to_owned(),
            ..LogRecord::default()
        }
    }

    /// Adds a record attribute.
    pub fn with_attribute(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.attributes.push((key.to_owned(), value.into()));
        self
    }

    /// Adds a resource attribute.
    pub fn with_resource_attribute(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.resource_attributes
            .push((key.to_owned(), value.into()));
        self
    }
}

fn filled<T>(value: T) -> OnceCell<T> {
    let cell = OnceCell::new();
    let _ = cell.set(value);
    cell
}

impl<'h> LogBatch<'h> {
    /// Wraps the host's batch resource; used by the export macros.
    #[doc(hidden)]
    pub fn from_host(batch: &'h types::LogBatch) -> Self {
        LogBatch {
            source: Source::Host(batch),
            len: OnceCell::new(),
            timestamps: OnceCell::new(),
            observed_timestamps: OnceCell::new(),
            severity_numbers: OnceCell::new(),
            severity_texts: OnceCell::new(),
            bodies: OnceCell::new(),
            trace_ids: OnceCell::new(),
            span_ids: OnceCell::new(),
            attributes: OnceCell::new(),
            attribute_columns: RefCell::new(Vec::new()),
            resource_attribute_columns: RefCell::new(Vec::new()),
            owned_resource_attributes: Vec::new(),
        }
    }

    /// Builds a batch from records, for unit tests and native runs.
    pub fn from_records(records: &[LogRecord]) -> LogBatch<'static> {
        let mut attributes = AttributeTable::new();
        for (index, record) in records.iter().enumerate() {
            for (key, value) in &record.attributes {
                attributes.push(index as u32, key, value.clone());
            }
        }
        LogBatch {
            source: Source::Owned,
            len: filled(records.len()),
            timestamps: filled(records.iter().map(|r| r.timestamp).collect()),
            observed_timestamps: filled(records.iter().map(|r| r.observed_timestamp).collect()),
            severity_numbers: filled(records.iter().map(|r| r.severity_number).collect()),
            severity_texts: filled(StringColumn::from_strs(
                records.iter().map(|r| r.severity_text.as_str()),
            )),
            bodies: filled(StringColumn::from_strs(
                records.iter().map(|r| r.body.as_str()),
            )),
            trace_ids: filled(records.iter().flat_map(|r| r.trace_id).collect()),
            span_ids: filled(records.iter().flat_map(|r| r.span_id).collect()),
            attributes: filled(attributes),
            attribute_columns: RefCell::new(Vec::new()),
            resource_attribute_columns: RefCell::new(Vec::new()),
            owned_resource_attributes: records
                .iter()
                .map(|r| r.resource_attributes.clone())
                .collect(),
        }
    }

    fn host(&self) -> &'h types::LogBatch {
        match self.source {
            Source::Host(batch) => batch,
            // Every owned column is filled at construction, so the host is never asked.
            Source::Owned => unreachable!("owned batches have every column"),
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        *self.len.get_or_init(|| {
            // A fixed-width column already fetched tells the length without a host call.
            if let Some(column) = self.severity_numbers.get() {
                column.len()
            } else if let Some(column) = self.timestamps.get() {
                column.len()
            } else if let Some(column) = self.observed_timestamps.get() {
                column.len()
            } else {
                self.host().len() as usize
            }
        })
    }

    /// True when the batch has no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Event times, Unix nanoseconds.
    pub fn timestamps(&self) -> &[i64] {
        self.timestamps.get_or_init(|| self.host().timestamps())
    }

    /// Observed times, Unix nanoseconds.
    pub fn observed_timestamps(&self) -> &[i64] {
        self.observed_timestamps
            .get_or_init(|| self.host().observed_timestamps())
    }

    /// Severity numbers, one per record.
    pub fn severity_numbers(&self) -> &[u8] {
        self.severity_numbers
            .get_or_init(|| self.host().severity_numbers())
    }

    /// Severity texts.
    pub fn severity_texts(&self) -> &StringColumn {
        self.severity_texts
            .get_or_init(|| self.host().severity_texts())
    }

    /// Bodies as text.
    pub fn bodies(&self) -> &StringColumn {
        self.bodies.get_or_init(|| self.host().bodies())
    }

    /// Trace ids, 16 bytes per record.
    pub fn trace_ids(&self) -> &[u8] {
        self.trace_ids.get_or_init(|| self.host().trace_ids())
    }

    /// Span ids, 8 bytes per record.
    pub fn span_ids(&self) -> &[u8] {
        self.span_ids.get_or_init(|| self.host().span_ids())
    }

    /// Every record attribute of every record.
    pub fn attributes(&self) -> &AttributeTable {
        self.attributes.get_or_init(|| self.host().attributes())
    }

    /// One record attribute for every record (`None` where absent); fetched once per key.
    pub fn attribute(&self, key: &str) -> Rc<[Option<Value>]> {
        if let Some((_, column)) = self
            .attribute_columns
            .borrow()
            .iter()
            .find(|(k, _)| k == key)
        {
            return column.clone();
        }
        let column: Rc<[Option<Value>]> = match self.source {
            Source::Host(batch) => batch.attribute(key).into(),
            Source::Owned => {
                let mut column = vec![None; self.len()];
                for (record, attribute_key, value) in self.attributes().iter() {
                    if attribute_key == key {
                        column[record as usize] = Some(value.clone());
                    }
                }
                column.into()
            }
        };
        self.attribute_columns
            .borrow_mut()
            .push((key.to_owned(), column.clone()));
        column
    }

    /// One resource attribute (such as `service.name`) for every record; fetched once per key.
    pub fn resource_attribute(&self, key: &str) -> Rc<[Option<Value>]> {
        if let Some((_, column)) = self
            .resource_attribute_columns
            .borrow()
            .iter()
            .find(|(k, _)| k == key)
        {
            return column.clone();
        }
        let column: Rc<[Option<Value>]> = match self.source {
            Source::Host(batch) => batch.resource_attribute(key).into(),
            Source::Owned => self
                .owned_resource_attributes
                .iter()
                .map(|attributes| {
                    attributes
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.clone())
                })
                .collect(),
        };
        self.resource_attribute_columns
            .borrow_mut()
            .push((key.to_owned(), column.clone()));
        column
    }

    /// A view of the record at `index`.
    pub fn record(&self, index: usize) -> LogRecordView<'_, 'h> {
        LogRecordView { batch: self, index }
    }

    /// Views of every record, in order.
    pub fn records(&self) -> impl Iterator<Item = LogRecordView<'_, 'h>> + '_ {
        (0..self.len()).map(move |index| self.record(index))
    }
}

/// One record of a [`LogBatch`]. Reading a field fetches its column for the whole batch once.
#[derive(Clone, Copy)]
pub struct LogRecordView<'b, 'h> {
    batch: &'b LogBatch<'h>,
    index: usize,
}

impl<'b, 'h> LogRecordView<'b, 'h> {
    /// Position of the record in its batch.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The batch the record belongs to.
    pub fn batch(&self) -> &'b LogBatch<'h> {
        self.batch
    }

    /// Event time, Unix nanoseconds.
    pub fn timestamp(&self) -> i64 {
        self.batch
            .timestamps()
            .get(self.index)
            .copied()
            .unwrap_or(0)
    }

    /// Severity number (0-24).
    pub fn severity_number(&self) -> u8 {
        self.batch
            .severity_numbers()
            .get(self.index)
            .copied()
            .unwrap_or(0)
    }

    /// Severity text.
    pub fn severity_text(&self) -> &'b str {
        self.batch.severity_texts().get(self.index)
    }

    /// Body as text.
    pub fn body(&self) -> &'b str {
        self.batch.bodies().get(self.index)
    }

    /// A record attribute.
    pub fn attribute(&self, key: &str) -> Option<Value> {
        self.batch.attribute(key).get(self.index).cloned().flatten()
    }

    /// A resource attribute.
    pub fn resource_attribute(&self, key: &str) -> Option<Value> {
        self.batch
            .resource_attribute(key)
            .get(self.index)
            .cloned()
            .flatten()
    }
}
