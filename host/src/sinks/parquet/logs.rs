//! The logs schema: one row per log record, built from a [`LogBatch`]'s columns without going
//! through row form.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, Int32Array, MapArray, StringBuilder, StructArray};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::schema::{
    ColumnTuning, ResourceColumns, TimeColumns, TypeMap, extra_nanos_field, id_column, id_field,
    render_model_value, resource_fields, string_column, string_map_field, time_field,
};
use super::writer::Rows;
use crate::model::{LineBatch, LogBatch, Resource};

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        time_field("time"),
        extra_nanos_field("time"),
        time_field("observed_time"),
        extra_nanos_field("observed_time"),
        Field::new("service_name", DataType::Utf8, true),
        Field::new("severity_number", DataType::Int32, false),
        Field::new("severity_text", DataType::Utf8, false),
        Field::new("body", DataType::Utf8, false),
        id_field("trace_id", 16),
        id_field("span_id", 8),
        string_map_field("attributes"),
        string_map_field("attribute_types"),
    ];
    fields.extend(resource_fields());
    Arc::new(Schema::new(fields))
});

/// The logs schema (documented in `docs/archive.md`).
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Column writing hints for the logs schema.
pub const TUNING: ColumnTuning = ColumnTuning {
    unique: &[
        "time_extra_nanos",
        "observed_time_extra_nanos",
        "body",
        "trace_id",
        "span_id",
    ],
    times: &["time", "observed_time"],
};

/// The archive rows of `batch`, partitioned by event time, else observed time, else
/// `received_at` (Unix nanoseconds).
pub fn rows(batch: &LogBatch, received_at: i64) -> Result<Rows, ArrowError> {
    let count = batch.len();
    let mut time = TimeColumns::with_capacity(count);
    let mut observed_time = TimeColumns::with_capacity(count);
    let mut partition_times = Vec::with_capacity(count);
    for (&event, &observed) in batch.timestamps().iter().zip(batch.observed_timestamps()) {
        time.push(event);
        observed_time.push(observed);
        partition_times.push(if event != 0 {
            event
        } else if observed != 0 {
            observed
        } else {
            received_at
        });
    }

    // Resources: one entry per distinct resource, found by pointer first (records of a batch
    // share their resource's `Arc`), then by value.
    let mut resources = ResourceColumns::default();
    let mut known: Vec<&Arc<Resource>> = Vec::new();
    let mut row_resources = Vec::with_capacity(count);
    for index in 0..count {
        let resource = batch.resource_of(index);
        let entry = match known.iter().rposition(|k| Arc::ptr_eq(k, resource)) {
            Some(entry) => entry as u32,
            None => match known.iter().rposition(|k| k == &resource) {
                Some(entry) => entry as u32,
                None => {
                    known.push(resource);
                    resources.push_model(resource)?
                }
            },
        };
        row_resources.push(entry);
    }
    let resources = resources.finish(row_resources)?;

    let [attributes, attribute_types] = attributes(batch)?;
    let [time, time_extra] = time.finish();
    let [observed_time, observed_extra] = observed_time.finish();
    let severity_numbers: Int32Array = batch
        .severity_numbers()
        .iter()
        .map(|&number| number as i32)
        .collect::<Vec<i32>>()
        .into();
    let mut columns: Vec<ArrayRef> = vec![
        time,
        time_extra,
        observed_time,
        observed_extra,
        resources.service_name,
        Arc::new(severity_numbers),
        Arc::new(string_column(batch.severity_texts())?),
        Arc::new(string_column(batch.bodies())?),
        id_column(batch.trace_ids(), 16)?,
        id_column(batch.span_ids(), 8)?,
        attributes,
        attribute_types,
    ];
    columns.extend(resources.columns);
    Ok(Rows {
        batch: RecordBatch::try_new(schema(), columns)?,
        partition_times,
    })
}

/// The `attributes` map straight from the batch's attribute columns (keys copied as one
/// buffer, values rendered as text), and the `attribute_types` map.
fn attributes(batch: &LogBatch) -> Result<[ArrayRef; 2], ArrowError> {
    let keys = string_column(batch.attribute_keys())?;
    let mut values = StringBuilder::with_capacity(keys.len(), keys.values().len());
    let mut types = TypeMap::default();
    let mut offsets = Vec::with_capacity(batch.len() + 1);
    offsets.push(0i32);
    for index in 0..batch.len() {
        for (key, value) in batch.attributes_of(index) {
            let value_type = render_model_value(value, &mut values);
            types.note(key, value_type);
        }
        types.end_row()?;
        let end = i32::try_from(batch.attribute_range(index).end)
            .map_err(|_| ArrowError::InvalidArgumentError("too many attributes".into()))?;
        offsets.push(end);
    }
    let DataType::Map(entries_field, sorted) = string_map_field("attributes").data_type().clone()
    else {
        return Err(ArrowError::SchemaError("attributes is not a map".into()));
    };
    let DataType::Struct(entry_fields) = entries_field.data_type().clone() else {
        return Err(ArrowError::SchemaError(
            "map entries are not a struct".into(),
        ));
    };
    let entries = StructArray::try_new(
        entry_fields,
        vec![Arc::new(keys) as ArrayRef, Arc::new(values.finish())],
        None,
    )?;
    let map = MapArray::try_new(
        entries_field,
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        entries,
        None,
        sorted,
    )?;
    Ok([Arc::new(map), types.finish()])
}

/// Raw lines that reached the archive unparsed: each becomes a record with the line as body,
/// observed at `received_at`.
pub fn lines_as_logs(lines: &LineBatch, received_at: i64) -> LogBatch {
    let mut batch = LogBatch::new();
    for line in lines.lines.iter() {
        batch.push_fields(
            0,
            received_at,
            0,
            "",
            line,
            &[0; 16],
            &[0; 8],
            &lines.resource,
        );
    }
    batch
}
