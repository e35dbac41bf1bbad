//! A batch of spans as a detector sees it, with columns fetched from the host on first use.

use std::cell::OnceCell;

use crate::bindings::sluice::plugin::types;
use crate::columns::{AttributeColumn, AttributeColumns, column_of, filled, table_of};
use crate::{AttributeTable, StringColumn, Value};

/// Span kinds, as OpenTelemetry numbers them.
pub mod span_kind {
    /// Unspecified.
    pub const UNSPECIFIED: u8 = 0;
    /// An internal operation.
    pub const INTERNAL: u8 = 1;
    /// The server side of a request: what request-based SLOs count.
    pub const SERVER: u8 = 2;
    /// The client side of a request.
    pub const CLIENT: u8 = 3;
    /// A message sent.
    pub const PRODUCER: u8 = 4;
    /// A message handled.
    pub const CONSUMER: u8 = 5;
}

/// Span status codes, as OpenTelemetry numbers them.
pub mod status_code {
    /// No status set.
    pub const UNSET: u8 = 0;
    /// Explicitly successful.
    pub const OK: u8 = 1;
    /// Failed.
    pub const ERROR: u8 = 2;
}

/// One batch of spans. Columns are fetched from the host lazily, once per batch.
pub struct SpanBatch<'h> {
    host: Option<&'h types::SpanBatch>,
    len: OnceCell<usize>,
    names: OnceCell<StringColumn>,
    kinds: OnceCell<Vec<u8>>,
    start_timestamps: OnceCell<Vec<i64>>,
    end_timestamps: OnceCell<Vec<i64>>,
    status_codes: OnceCell<Vec<u8>>,
    trace_ids: OnceCell<Vec<u8>>,
    span_ids: OnceCell<Vec<u8>>,
    attributes: OnceCell<AttributeTable>,
    attribute_columns: AttributeColumns,
    resource_attribute_columns: AttributeColumns,
    owned_attributes: Vec<Vec<(String, Value)>>,
    owned_resource_attributes: Vec<Vec<(String, Value)>>,
}

/// One span with the fields detectors read, for building batches natively (unit tests).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Span {
    /// Span name.
    pub name: String,
    /// Kind ([`span_kind`]).
    pub kind: u8,
    /// Start, Unix nanoseconds.
    pub start: i64,
    /// End, Unix nanoseconds.
    pub end: i64,
    /// Status code ([`status_code`]).
    pub status_code: u8,
    /// Trace id.
    pub trace_id: [u8; 16],
    /// Span id.
    pub span_id: [u8; 8],
    /// Span attributes.
    pub attributes: Vec<(String, Value)>,
    /// Attributes of the span's resource (such as `service.name`).
    pub resource_attributes: Vec<(String, Value)>,
}

impl Span {
    /// A server span named `name` from `start` to `end`, status unset.
    pub fn new(name: &str, start: i64, end: i64) -> Self {
        Span {
            name: name.to_owned(),
            kind: span_kind::SERVER,
            start,
            end,
            ..Span::default()
        }
    }

    /// Sets the kind.
    pub fn with_kind(mut self, kind: u8) -> Self {
        self.kind = kind;
        self
    }

    /// Sets the status code.
    pub fn with_status(mut self, status_code: u8) -> Self {
        self.status_code = status_code;
        self
    }

    /// Adds a span attribute.
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

impl<'h> SpanBatch<'h> {
    /// Wraps the host's batch resource; used by the export macros.
    #[doc(hidden)]
    pub fn from_host(batch: &'h types::SpanBatch) -> Self {
        SpanBatch {
            host: Some(batch),
            len: OnceCell::new(),
            names: OnceCell::new(),
            kinds: OnceCell::new(),
            start_timestamps: OnceCell::new(),
            end_timestamps: OnceCell::new(),
            status_codes: OnceCell::new(),
            trace_ids: OnceCell::new(),
            span_ids: OnceCell::new(),
            attributes: OnceCell::new(),
            attribute_columns: AttributeColumns::default(),
            resource_attribute_columns: AttributeColumns::default(),
            owned_attributes: Vec::new(),
            owned_resource_attributes: Vec::new(),
        }
    }

    /// Builds a batch from spans, for unit tests and native runs.
    pub fn from_spans(spans: &[Span]) -> SpanBatch<'static> {
        let attributes: Vec<_> = spans.iter().map(|s| s.attributes.clone()).collect();
        SpanBatch {
            host: None,
            len: filled(spans.len()),
            names: filled(StringColumn::from_strs(
                spans.iter().map(|s| s.name.as_str()),
            )),
            kinds: filled(spans.iter().map(|s| s.kind).collect()),
            start_timestamps: filled(spans.iter().map(|s| s.start).collect()),
            end_timestamps: filled(spans.iter().map(|s| s.end).collect()),
            status_codes: filled(spans.iter().map(|s| s.status_code).collect()),
            trace_ids: filled(spans.iter().flat_map(|s| s.trace_id).collect()),
            span_ids: filled(spans.iter().flat_map(|s| s.span_id).collect()),
            attributes: filled(table_of(&attributes)),
            attribute_columns: AttributeColumns::default(),
            resource_attribute_columns: AttributeColumns::default(),
            owned_attributes: attributes,
            owned_resource_attributes: spans
                .iter()
                .map(|s| s.resource_attributes.clone())
                .collect(),
        }
    }

    fn host(&self) -> &'h types::SpanBatch {
        // Every column of a native batch is filled at construction, so the host is never asked.
        self.host.expect("native batches have every column")
    }

    /// Number of spans.
    pub fn len(&self) -> usize {
        *self.len.get_or_init(|| match self.kinds.get() {
            Some(column) => column.len(),
            None => self.host().len() as usize,
        })
    }

    /// True when there is no span.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Name of each span.
    pub fn names(&self) -> &StringColumn {
        self.names.get_or_init(|| self.host().names())
    }

    /// Kind of each span ([`span_kind`]).
    pub fn kinds(&self) -> &[u8] {
        self.kinds.get_or_init(|| self.host().kinds())
    }

    /// Start of each span, Unix nanoseconds.
    pub fn start_timestamps(&self) -> &[i64] {
        self.start_timestamps
            .get_or_init(|| self.host().start_timestamps())
    }

    /// End of each span, Unix nanoseconds.
    pub fn end_timestamps(&self) -> &[i64] {
        self.end_timestamps
            .get_or_init(|| self.host().end_timestamps())
    }

    /// Status code of each span ([`status_code`]).
    pub fn status_codes(&self) -> &[u8] {
        self.status_codes.get_or_init(|| self.host().status_codes())
    }

    /// Trace ids, 16 bytes per span.
    pub fn trace_ids(&self) -> &[u8] {
        self.trace_ids.get_or_init(|| self.host().trace_ids())
    }

    /// Span ids, 8 bytes per span.
    pub fn span_ids(&self) -> &[u8] {
        self.span_ids.get_or_init(|| self.host().span_ids())
    }

    /// Every span attribute of every span.
    pub fn attributes(&self) -> &AttributeTable {
        self.attributes.get_or_init(|| self.host().attributes())
    }

    /// One span attribute for every span (`None` where absent); fetched once per key.
    pub fn attribute(&self, key: &str) -> AttributeColumn {
        self.attribute_columns.get(key, || match self.host {
            Some(batch) => batch.attribute(key).into(),
            None => column_of(&self.owned_attributes, key),
        })
    }

    /// One resource attribute (such as `service.name`) for every span; fetched once per key.
    pub fn resource_attribute(&self, key: &str) -> AttributeColumn {
        self.resource_attribute_columns
            .get(key, || match self.host {
                Some(batch) => batch.resource_attribute(key).into(),
                None => column_of(&self.owned_resource_attributes, key),
            })
    }

    /// A view of the span at `index`.
    pub fn span(&self, index: usize) -> SpanView<'_, 'h> {
        SpanView { batch: self, index }
    }

    /// Views of every span, in order.
    pub fn spans(&self) -> impl Iterator<Item = SpanView<'_, 'h>> + '_ {
        (0..self.len()).map(move |index| self.span(index))
    }
}

/// One span of a [`SpanBatch`]. Reading a field fetches its column for the whole batch once.
#[derive(Clone, Copy)]
pub struct SpanView<'b, 'h> {
    batch: &'b SpanBatch<'h>,
    index: usize,
}

impl<'b> SpanView<'b, '_> {
    /// Position of the span in its batch.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Span name.
    pub fn name(&self) -> &'b str {
        self.batch.names().get(self.index)
    }

    /// Kind ([`span_kind`]).
    pub fn kind(&self) -> u8 {
        self.batch.kinds()[self.index]
    }

    /// Start, Unix nanoseconds.
    pub fn start(&self) -> i64 {
        self.batch.start_timestamps()[self.index]
    }

    /// End, Unix nanoseconds.
    pub fn end(&self) -> i64 {
        self.batch.end_timestamps()[self.index]
    }

    /// End minus start (0 when the end is before the start).
    pub fn duration_nanos(&self) -> i64 {
        (self.end() - self.start()).max(0)
    }

    /// Status code ([`status_code`]).
    pub fn status_code(&self) -> u8 {
        self.batch.status_codes()[self.index]
    }

    /// True when the span's status is an error.
    pub fn is_error(&self) -> bool {
        self.status_code() == status_code::ERROR
    }

    /// A span attribute.
    pub fn attribute(&self, key: &str) -> Option<Value> {
        self.batch.attribute(key)[self.index].clone()
    }

    /// A resource attribute.
    pub fn resource_attribute(&self, key: &str) -> Option<Value> {
        self.batch.resource_attribute(key)[self.index].clone()
    }
}
