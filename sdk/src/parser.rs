//! Parsers: raw lines in, log records out.

use crate::{AttributeTable, LogRecords, ParseError, Plugin, RawInput, StringColumn, Value};

/// A parser plugin. Implement [`parse_line`](Parser::parse_line); an `Err` for a line keeps the
/// line as the body of a record flagged with the error, so one bad line never costs its neighbours.
pub trait Parser: Plugin {
    /// Parses one line into zero or more records appended to `out`. On `Err`, anything this call
    /// appended is rolled back and the raw line becomes a record flagged as a parse error.
    fn parse_line(
        &mut self,
        line: &str,
        input: &RawInput,
        out: &mut LogRecordsBuilder,
    ) -> Result<(), String>;
}

/// Runs a parser over a whole input; used by the export macro and by native tests.
pub fn run_parser<P: Parser>(parser: &mut P, input: &RawInput) -> Result<LogRecords, String> {
    let mut out = LogRecordsBuilder::with_capacity(input.lines.len());
    for line in input.lines.iter() {
        let mark = out.mark();
        if let Err(message) = parser.parse_line(line, input, &mut out) {
            out.rollback(mark);
            out.push_parse_error(line, input.received, message);
        }
    }
    Ok(out.finish())
}

/// Appends log records column by column, without an allocation per record.
#[derive(Default)]
pub struct LogRecordsBuilder {
    records: LogRecords,
    has_trace_context: bool,
}

// `LogRecords` is generated; its string columns need their leading 0 offset, so no derive.
#[allow(clippy::derivable_impls)]
impl Default for LogRecords {
    fn default() -> Self {
        LogRecords {
            timestamps: Vec::new(),
            severity_numbers: Vec::new(),
            severity_texts: StringColumn::new(),
            bodies: StringColumn::new(),
            trace_ids: Vec::new(),
            span_ids: Vec::new(),
            attributes: AttributeTable::new(),
            parse_errors: Vec::new(),
        }
    }
}

/// A position in a builder to roll back to.
#[derive(Clone, Copy)]
struct Mark {
    records: usize,
    severity_bytes: usize,
    body_bytes: usize,
    attributes: usize,
    attribute_key_bytes: usize,
}

impl LogRecordsBuilder {
    /// A builder with room for `records` records.
    pub fn with_capacity(records: usize) -> Self {
        let mut builder = LogRecordsBuilder::default();
        builder.records.timestamps.reserve(records);
        builder.records.severity_numbers.reserve(records);
        builder
    }

    /// Number of records so far.
    pub fn len(&self) -> usize {
        self.records.timestamps.len()
    }

    /// True when no record was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a record and returns its index; add its attributes with
    /// [`attribute`](Self::attribute) right after.
    pub fn push(
        &mut self,
        timestamp: i64,
        severity_number: u8,
        severity_text: &str,
        body: &str,
    ) -> u32 {
        let index = self.len() as u32;
        self.records.timestamps.push(timestamp);
        self.records.severity_numbers.push(severity_number);
        self.records.severity_texts.push(severity_text);
        self.records.bodies.push(body);
        if self.has_trace_context {
            self.records.trace_ids.extend_from_slice(&[0; 16]);
            self.records.span_ids.extend_from_slice(&[0; 8]);
        }
        index
    }

    /// Adds an attribute to the last record pushed.
    pub fn attribute(&mut self, key: &str, value: Value) {
        let Some(record) = self.len().checked_sub(1) else {
            return;
        };
        self.records.attributes.push(record as u32, key, value);
    }

    /// Sets the trace context of the last record pushed.
    pub fn trace_context(&mut self, trace_id: [u8; 16], span_id: [u8; 8]) {
        let Some(record) = self.len().checked_sub(1) else {
            return;
        };
        if !self.has_trace_context {
            self.has_trace_context = true;
            self.records.trace_ids = vec![0; self.len() * 16];
            self.records.span_ids = vec![0; self.len() * 8];
        }
        self.records.trace_ids[record * 16..record * 16 + 16].copy_from_slice(&trace_id);
        self.records.span_ids[record * 8..record * 8 + 8].copy_from_slice(&span_id);
    }

    /// Appends `raw` as a record flagged as a parse error with `message`.
    pub fn push_parse_error(&mut self, raw: &str, timestamp: i64, message: String) {
        let index = self.push(timestamp, 0, "", raw);
        self.records
            .parse_errors
            .push(ParseError { index, message });
    }

    fn mark(&self) -> Mark {
        Mark {
            records: self.len(),
            severity_bytes: self.records.severity_texts.bytes.len(),
            body_bytes: self.records.bodies.bytes.len(),
            attributes: self.records.attributes.records.len(),
            attribute_key_bytes: self.records.attributes.keys.bytes.len(),
        }
    }

    fn rollback(&mut self, mark: Mark) {
        let records = &mut self.records;
        records.timestamps.truncate(mark.records);
        records.severity_numbers.truncate(mark.records);
        records.severity_texts.bytes.truncate(mark.severity_bytes);
        records.severity_texts.offsets.truncate(mark.records + 1);
        records.bodies.bytes.truncate(mark.body_bytes);
        records.bodies.offsets.truncate(mark.records + 1);
        if self.has_trace_context {
            records.trace_ids.truncate(mark.records * 16);
            records.span_ids.truncate(mark.records * 8);
        }
        records.attributes.records.truncate(mark.attributes);
        records.attributes.values.truncate(mark.attributes);
        records
            .attributes
            .keys
            .bytes
            .truncate(mark.attribute_key_bytes);
        records
            .attributes
            .keys
            .offsets
            .truncate(mark.attributes + 1);
    }

    /// The records built.
    pub fn finish(self) -> LogRecords {
        self.records
    }
}

impl RawInput {
    /// Input of `lines` from `source`, for tests.
    pub fn from_lines<'s>(source: &str, lines: impl IntoIterator<Item = &'s str>) -> Self {
        RawInput {
            lines: StringColumn::from_strs(lines),
            source: source.to_owned(),
            received: 0,
        }
    }
}
