//! The traces schema: one row per span, its events and links as lists of structs.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, Int64Builder, ListArray, StringBuilder, StructArray};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};

use super::schema::{
    AttributeMaps, ColumnTuning, IdColumn, ResourceColumns, TimeColumns, extra_nanos_field,
    id_field, list_element, otlp_time, resource_fields, string_map_field, time_field,
};
use super::writer::Rows;
use crate::model::SpanBatch;

fn event_fields() -> Fields {
    Fields::from(vec![
        time_field("time"),
        extra_nanos_field("time"),
        Field::new("name", DataType::Utf8, false),
        string_map_field("attributes"),
        string_map_field("attribute_types"),
    ])
}

fn link_fields() -> Fields {
    Fields::from(vec![
        id_field("trace_id", 16),
        id_field("span_id", 8),
        Field::new("trace_state", DataType::Utf8, false),
        string_map_field("attributes"),
        string_map_field("attribute_types"),
    ])
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        time_field("start_time"),
        extra_nanos_field("start_time"),
        time_field("end_time"),
        extra_nanos_field("end_time"),
        Field::new("duration_nanos", DataType::Int64, true),
        Field::new("service_name", DataType::Utf8, true),
        id_field("trace_id", 16),
        id_field("span_id", 8),
        id_field("parent_span_id", 8),
        Field::new("trace_state", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("status_code", DataType::Utf8, false),
        Field::new("status_message", DataType::Utf8, false),
        Field::new("flags", DataType::Int64, false),
        string_map_field("attributes"),
        string_map_field("attribute_types"),
        Field::new(
            "events",
            DataType::List(list_element(DataType::Struct(event_fields()), false)),
            false,
        ),
        Field::new(
            "links",
            DataType::List(list_element(DataType::Struct(link_fields()), false)),
            false,
        ),
    ];
    fields.extend(resource_fields());
    Arc::new(Schema::new(fields))
});

/// The traces schema (documented in `docs/archive.md`).
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Column writing hints for the traces schema.
pub const TUNING: ColumnTuning = ColumnTuning {
    unique: &[
        "start_time_extra_nanos",
        "end_time_extra_nanos",
        "duration_nanos",
        "trace_id",
        "span_id",
        "parent_span_id",
    ],
    times: &["start_time", "end_time"],
};

fn kind_name(kind: i32) -> &'static str {
    match SpanKind::try_from(kind) {
        Ok(SpanKind::Internal) => "internal",
        Ok(SpanKind::Server) => "server",
        Ok(SpanKind::Client) => "client",
        Ok(SpanKind::Producer) => "producer",
        Ok(SpanKind::Consumer) => "consumer",
        _ => "unspecified",
    }
}

fn status_name(status: Option<&Status>) -> &'static str {
    match status.map(|status| StatusCode::try_from(status.code)) {
        Some(Ok(StatusCode::Ok)) => "ok",
        Some(Ok(StatusCode::Error)) => "error",
        _ => "unset",
    }
}

/// The `events` column: a list per span of `{time, time_extra_nanos, name, attributes,
/// attribute_types}`.
struct EventColumns {
    time: TimeColumns,
    name: StringBuilder,
    attributes: AttributeMaps,
    offsets: Vec<i32>,
}

impl EventColumns {
    fn new() -> Self {
        EventColumns {
            time: TimeColumns::default(),
            name: StringBuilder::new(),
            attributes: AttributeMaps::default(),
            offsets: vec![0],
        }
    }

    fn push_span(&mut self, events: &[Event]) -> Result<(), ArrowError> {
        for event in events {
            self.time.push(otlp_time(event.time_unix_nano));
            self.name.append_value(&event.name);
            self.attributes.push_otlp_row(&event.attributes)?;
        }
        let end = self.offsets.last().copied().unwrap_or_default() + events.len() as i32;
        self.offsets.push(end);
        Ok(())
    }

    fn finish(mut self) -> Result<ArrayRef, ArrowError> {
        let [time, time_extra] = self.time.finish();
        let [attributes, attribute_types] = self.attributes.finish();
        let events = StructArray::try_new(
            event_fields(),
            vec![
                time,
                time_extra,
                Arc::new(self.name.finish()),
                attributes,
                attribute_types,
            ],
            None,
        )?;
        list(events, self.offsets)
    }
}

/// The `links` column: a list per span of `{trace_id, span_id, trace_state, attributes,
/// attribute_types}`.
struct LinkColumns {
    trace_id: IdColumn,
    span_id: IdColumn,
    trace_state: StringBuilder,
    attributes: AttributeMaps,
    offsets: Vec<i32>,
}

impl LinkColumns {
    fn new() -> Self {
        LinkColumns {
            trace_id: IdColumn::new(16),
            span_id: IdColumn::new(8),
            trace_state: StringBuilder::new(),
            attributes: AttributeMaps::default(),
            offsets: vec![0],
        }
    }

    fn push_span(&mut self, links: &[Link]) -> Result<(), ArrowError> {
        for link in links {
            self.trace_id.push(&link.trace_id);
            self.span_id.push(&link.span_id);
            self.trace_state.append_value(&link.trace_state);
            self.attributes.push_otlp_row(&link.attributes)?;
        }
        let end = self.offsets.last().copied().unwrap_or_default() + links.len() as i32;
        self.offsets.push(end);
        Ok(())
    }

    fn finish(mut self) -> Result<ArrayRef, ArrowError> {
        let [attributes, attribute_types] = self.attributes.finish();
        let links = StructArray::try_new(
            link_fields(),
            vec![
                self.trace_id.finish()?,
                self.span_id.finish()?,
                Arc::new(self.trace_state.finish()),
                attributes,
                attribute_types,
            ],
            None,
        )?;
        list(links, self.offsets)
    }
}

fn list(values: StructArray, offsets: Vec<i32>) -> Result<ArrayRef, ArrowError> {
    let element = list_element(values.data_type().clone(), false);
    Ok(Arc::new(ListArray::try_new(
        element,
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Arc::new(values),
        None,
    )?))
}

/// The archive rows of `batch`, partitioned by start time, else end time, else `received_at`
/// (Unix nanoseconds).
pub fn rows(batch: &SpanBatch, received_at: i64) -> Result<Rows, ArrowError> {
    let count = batch.len();
    let mut start_time = TimeColumns::with_capacity(count);
    let mut end_time = TimeColumns::with_capacity(count);
    let mut duration = Int64Builder::with_capacity(count);
    let mut trace_id = IdColumn::new(16);
    let mut span_id = IdColumn::new(8);
    let mut parent_span_id = IdColumn::new(8);
    let mut trace_state = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut kind = StringBuilder::new();
    let mut status_code = StringBuilder::new();
    let mut status_message = StringBuilder::new();
    let mut flags = Int64Builder::with_capacity(count);
    let mut attributes = AttributeMaps::default();
    let mut events = EventColumns::new();
    let mut links = LinkColumns::new();
    let mut resources = ResourceColumns::default();
    let mut row_resources = Vec::with_capacity(count);
    let mut partition_times = Vec::with_capacity(count);

    let mut push = |span: &Span| -> Result<(), ArrowError> {
        let start = otlp_time(span.start_time_unix_nano);
        let end = otlp_time(span.end_time_unix_nano);
        start_time.push(start);
        end_time.push(end);
        duration.append_option((start != 0 && end != 0).then(|| end.saturating_sub(start)));
        partition_times.push(if start != 0 {
            start
        } else if end != 0 {
            end
        } else {
            received_at
        });
        trace_id.push(&span.trace_id);
        span_id.push(&span.span_id);
        parent_span_id.push(&span.parent_span_id);
        trace_state.append_value(&span.trace_state);
        name.append_value(&span.name);
        kind.append_value(kind_name(span.kind));
        status_code.append_value(status_name(span.status.as_ref()));
        status_message.append_value(
            span.status
                .as_ref()
                .map(|status| status.message.as_str())
                .unwrap_or_default(),
        );
        flags.append_value(i64::from(span.flags));
        attributes.push_otlp_row(&span.attributes)?;
        events.push_span(&span.events)?;
        links.push_span(&span.links)
    };
    for resource_spans in &batch.resource_spans {
        for scope_spans in &resource_spans.scope_spans {
            let entry = resources
                .push_otlp(resource_spans.resource.as_ref(), scope_spans.scope.as_ref())?;
            for span in &scope_spans.spans {
                push(span)?;
                row_resources.push(entry);
            }
        }
    }
    let resources = resources.finish(row_resources)?;
    let [start_time, start_extra] = start_time.finish();
    let [end_time, end_extra] = end_time.finish();
    let [attributes, attribute_types] = attributes.finish();
    let mut columns: Vec<ArrayRef> = vec![
        start_time,
        start_extra,
        end_time,
        end_extra,
        Arc::new(duration.finish()),
        resources.service_name,
        trace_id.finish()?,
        span_id.finish()?,
        parent_span_id.finish()?,
        Arc::new(trace_state.finish()),
        Arc::new(name.finish()),
        Arc::new(kind.finish()),
        Arc::new(status_code.finish()),
        Arc::new(status_message.finish()),
        Arc::new(flags.finish()),
        attributes,
        attribute_types,
        events.finish()?,
        links.finish()?,
    ];
    columns.extend(resources.columns);
    Ok(Rows {
        batch: RecordBatch::try_new(schema(), columns)?,
        partition_times,
    })
}
