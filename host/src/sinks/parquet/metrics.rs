//! The metrics schema: one row per data point. Gauges and sums fill `value_double` or
//! `value_int`; histograms fill `count`, `sum`, `min`, `max`, `bucket_counts` and
//! `explicit_bounds`; exponential histograms fill `count`, `sum`, `min`, `max` and the
//! `exponential_*` columns; summaries fill `count`, `sum` and `quantiles`. Columns a kind does not
//! use are null.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListBuilder,
    StringBuilder, StructBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, exponential_histogram_data_point, metric, number_data_point,
};

use super::schema::{
    AttributeMaps, ColumnTuning, ResourceColumns, TimeColumns, extra_nanos_field, list_element,
    list_field, otlp_time, resource_fields, string_map_field, time_field,
};
use super::writer::Rows;
use crate::model::MetricBatch;

fn quantile_fields() -> Fields {
    Fields::from(vec![
        Field::new("quantile", DataType::Float64, false),
        Field::new("value", DataType::Float64, false),
    ])
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        time_field("time"),
        extra_nanos_field("time"),
        time_field("start_time"),
        extra_nanos_field("start_time"),
        Field::new("service_name", DataType::Utf8, true),
        Field::new("metric_name", DataType::Utf8, false),
        Field::new("metric_description", DataType::Utf8, false),
        Field::new("metric_unit", DataType::Utf8, false),
        Field::new("metric_type", DataType::Utf8, false),
        Field::new("aggregation_temporality", DataType::Utf8, true),
        Field::new("is_monotonic", DataType::Boolean, true),
        Field::new("value_double", DataType::Float64, true),
        Field::new("value_int", DataType::Int64, true),
        Field::new("count", DataType::Int64, true),
        Field::new("sum", DataType::Float64, true),
        Field::new("min", DataType::Float64, true),
        Field::new("max", DataType::Float64, true),
        list_field("bucket_counts", DataType::Int64, false),
        list_field("explicit_bounds", DataType::Float64, false),
        Field::new("exponential_scale", DataType::Int32, true),
        Field::new("exponential_zero_count", DataType::Int64, true),
        Field::new("exponential_zero_threshold", DataType::Float64, true),
        Field::new("exponential_positive_offset", DataType::Int32, true),
        list_field("exponential_positive_bucket_counts", DataType::Int64, false),
        Field::new("exponential_negative_offset", DataType::Int32, true),
        list_field("exponential_negative_bucket_counts", DataType::Int64, false),
        list_field("quantiles", DataType::Struct(quantile_fields()), false),
        Field::new("flags", DataType::Int64, false),
        string_map_field("attributes"),
        string_map_field("attribute_types"),
    ];
    fields.extend(resource_fields());
    Arc::new(Schema::new(fields))
});

/// The metrics schema (documented in `docs/archive.md`).
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Column writing hints for the metrics schema.
pub const TUNING: ColumnTuning = ColumnTuning {
    unique: &["time_extra_nanos", "start_time_extra_nanos"],
    times: &["time", "start_time"],
};

/// An exponential histogram's buckets.
struct Exponential<'a> {
    scale: i32,
    zero_count: u64,
    zero_threshold: f64,
    positive: Option<&'a exponential_histogram_data_point::Buckets>,
    negative: Option<&'a exponential_histogram_data_point::Buckets>,
}

/// One data point, whatever its kind; what a kind lacks stays `None`.
struct Point<'a> {
    metric: &'a Metric,
    metric_type: &'static str,
    time: u64,
    start_time: u64,
    flags: u32,
    attributes: &'a [KeyValue],
    temporality: Option<&'static str>,
    is_monotonic: Option<bool>,
    value_double: Option<f64>,
    value_int: Option<i64>,
    count: Option<u64>,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    bucket_counts: Option<&'a [u64]>,
    explicit_bounds: Option<&'a [f64]>,
    exponential: Option<Exponential<'a>>,
    quantiles: Option<&'a [ValueAtQuantile]>,
}

impl<'a> Point<'a> {
    fn new(
        metric: &'a Metric,
        metric_type: &'static str,
        (time, start_time): (u64, u64),
        flags: u32,
        attributes: &'a [KeyValue],
    ) -> Self {
        Point {
            metric,
            metric_type,
            time,
            start_time,
            flags,
            attributes,
            temporality: None,
            is_monotonic: None,
            value_double: None,
            value_int: None,
            count: None,
            sum: None,
            min: None,
            max: None,
            bucket_counts: None,
            explicit_bounds: None,
            exponential: None,
            quantiles: None,
        }
    }
}

fn temporality(value: i32) -> Option<&'static str> {
    match AggregationTemporality::try_from(value) {
        Ok(AggregationTemporality::Delta) => Some("delta"),
        Ok(AggregationTemporality::Cumulative) => Some("cumulative"),
        _ => None,
    }
}

/// Counts are unsigned in OTLP; no real count passes `i64::MAX`, and one that did would saturate.
fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn int64_list() -> ListBuilder<Int64Builder> {
    ListBuilder::new(Int64Builder::new()).with_field(list_element(DataType::Int64, false))
}

fn append_counts(list: &mut ListBuilder<Int64Builder>, counts: Option<&[u64]>) {
    if let Some(counts) = counts {
        for &value in counts {
            list.values().append_value(count(value));
        }
    }
    list.append(counts.is_some());
}

/// Builders of every column but the resource ones.
struct Columns {
    time: TimeColumns,
    start_time: TimeColumns,
    metric_name: StringBuilder,
    metric_description: StringBuilder,
    metric_unit: StringBuilder,
    metric_type: StringBuilder,
    temporality: StringBuilder,
    is_monotonic: BooleanBuilder,
    value_double: Float64Builder,
    value_int: Int64Builder,
    count: Int64Builder,
    sum: Float64Builder,
    min: Float64Builder,
    max: Float64Builder,
    bucket_counts: ListBuilder<Int64Builder>,
    explicit_bounds: ListBuilder<Float64Builder>,
    exponential_scale: Int32Builder,
    exponential_zero_count: Int64Builder,
    exponential_zero_threshold: Float64Builder,
    exponential_positive_offset: Int32Builder,
    exponential_positive_counts: ListBuilder<Int64Builder>,
    exponential_negative_offset: Int32Builder,
    exponential_negative_counts: ListBuilder<Int64Builder>,
    quantiles: ListBuilder<StructBuilder>,
    flags: Int64Builder,
    attributes: AttributeMaps,
    partition_times: Vec<i64>,
}

impl Columns {
    fn new() -> Self {
        Columns {
            time: TimeColumns::default(),
            start_time: TimeColumns::default(),
            metric_name: StringBuilder::new(),
            metric_description: StringBuilder::new(),
            metric_unit: StringBuilder::new(),
            metric_type: StringBuilder::new(),
            temporality: StringBuilder::new(),
            is_monotonic: BooleanBuilder::new(),
            value_double: Float64Builder::new(),
            value_int: Int64Builder::new(),
            count: Int64Builder::new(),
            sum: Float64Builder::new(),
            min: Float64Builder::new(),
            max: Float64Builder::new(),
            bucket_counts: int64_list(),
            explicit_bounds: ListBuilder::new(Float64Builder::new())
                .with_field(list_element(DataType::Float64, false)),
            exponential_scale: Int32Builder::new(),
            exponential_zero_count: Int64Builder::new(),
            exponential_zero_threshold: Float64Builder::new(),
            exponential_positive_offset: Int32Builder::new(),
            exponential_positive_counts: int64_list(),
            exponential_negative_offset: Int32Builder::new(),
            exponential_negative_counts: int64_list(),
            quantiles: ListBuilder::new(StructBuilder::from_fields(quantile_fields(), 0))
                .with_field(list_element(DataType::Struct(quantile_fields()), false)),
            flags: Int64Builder::new(),
            attributes: AttributeMaps::default(),
            partition_times: Vec::new(),
        }
    }

    fn push(&mut self, point: Point<'_>, received_at: i64) -> Result<(), ArrowError> {
        let time = otlp_time(point.time);
        let start_time = otlp_time(point.start_time);
        self.time.push(time);
        self.start_time.push(start_time);
        self.partition_times.push(if time != 0 {
            time
        } else if start_time != 0 {
            start_time
        } else {
            received_at
        });
        self.metric_name.append_value(&point.metric.name);
        self.metric_description
            .append_value(&point.metric.description);
        self.metric_unit.append_value(&point.metric.unit);
        self.metric_type.append_value(point.metric_type);
        self.temporality.append_option(point.temporality);
        self.is_monotonic.append_option(point.is_monotonic);
        self.value_double.append_option(point.value_double);
        self.value_int.append_option(point.value_int);
        self.count.append_option(point.count.map(count));
        self.sum.append_option(point.sum);
        self.min.append_option(point.min);
        self.max.append_option(point.max);
        append_counts(&mut self.bucket_counts, point.bucket_counts);
        if let Some(bounds) = point.explicit_bounds {
            self.explicit_bounds.values().append_slice(bounds);
        }
        self.explicit_bounds.append(point.explicit_bounds.is_some());
        let exponential = point.exponential.as_ref();
        self.exponential_scale
            .append_option(exponential.map(|e| e.scale));
        self.exponential_zero_count
            .append_option(exponential.map(|e| count(e.zero_count)));
        self.exponential_zero_threshold
            .append_option(exponential.map(|e| e.zero_threshold));
        let positive = exponential.map(|e| e.positive);
        let negative = exponential.map(|e| e.negative);
        // A histogram without buckets on one side has offset 0 and no counts there.
        self.exponential_positive_offset
            .append_option(positive.map(|b| b.map_or(0, |b| b.offset)));
        append_counts(
            &mut self.exponential_positive_counts,
            positive.map(|b| b.map_or(&[][..], |b| &b.bucket_counts)),
        );
        self.exponential_negative_offset
            .append_option(negative.map(|b| b.map_or(0, |b| b.offset)));
        append_counts(
            &mut self.exponential_negative_counts,
            negative.map(|b| b.map_or(&[][..], |b| &b.bucket_counts)),
        );
        if let Some(quantiles) = point.quantiles {
            let entries = self.quantiles.values();
            for quantile in quantiles {
                field::<Float64Builder>(entries, 0)?.append_value(quantile.quantile);
                field::<Float64Builder>(entries, 1)?.append_value(quantile.value);
                entries.append(true);
            }
        }
        self.quantiles.append(point.quantiles.is_some());
        self.flags.append_value(i64::from(point.flags));
        self.attributes.push_otlp_row(point.attributes)
    }

    fn finish(mut self) -> (Vec<ArrayRef>, Vec<ArrayRef>, Vec<i64>) {
        let [time, time_extra] = self.time.finish();
        let [start_time, start_extra] = self.start_time.finish();
        let before_service: Vec<ArrayRef> = vec![time, time_extra, start_time, start_extra];
        let [attributes, attribute_types] = self.attributes.finish();
        let after_service: Vec<ArrayRef> = vec![
            Arc::new(self.metric_name.finish()),
            Arc::new(self.metric_description.finish()),
            Arc::new(self.metric_unit.finish()),
            Arc::new(self.metric_type.finish()),
            Arc::new(self.temporality.finish()),
            Arc::new(self.is_monotonic.finish()),
            Arc::new(self.value_double.finish()),
            Arc::new(self.value_int.finish()),
            Arc::new(self.count.finish()),
            Arc::new(self.sum.finish()),
            Arc::new(self.min.finish()),
            Arc::new(self.max.finish()),
            Arc::new(self.bucket_counts.finish()),
            Arc::new(self.explicit_bounds.finish()),
            Arc::new(self.exponential_scale.finish()),
            Arc::new(self.exponential_zero_count.finish()),
            Arc::new(self.exponential_zero_threshold.finish()),
            Arc::new(self.exponential_positive_offset.finish()),
            Arc::new(self.exponential_positive_counts.finish()),
            Arc::new(self.exponential_negative_offset.finish()),
            Arc::new(self.exponential_negative_counts.finish()),
            Arc::new(self.quantiles.finish()),
            Arc::new(self.flags.finish()),
            attributes,
            attribute_types,
        ];
        (before_service, after_service, self.partition_times)
    }
}

fn field<T: arrow::array::ArrayBuilder>(
    builder: &mut StructBuilder,
    index: usize,
) -> Result<&mut T, ArrowError> {
    builder
        .field_builder::<T>(index)
        .ok_or_else(|| ArrowError::SchemaError(format!("quantile field {index} has another type")))
}

/// The archive rows of `batch`, partitioned by point time, else start time, else
/// `received_at` (Unix nanoseconds).
pub fn rows(batch: &MetricBatch, received_at: i64) -> Result<Rows, ArrowError> {
    let mut columns = Columns::new();
    let mut resources = ResourceColumns::default();
    let mut row_resources = Vec::with_capacity(batch.len());
    for resource_metrics in &batch.resource_metrics {
        for scope_metrics in &resource_metrics.scope_metrics {
            let entry = resources.push_otlp(
                resource_metrics.resource.as_ref(),
                scope_metrics.scope.as_ref(),
            )?;
            for metric in &scope_metrics.metrics {
                let before = columns.partition_times.len();
                push_metric(&mut columns, metric, received_at)?;
                let added = columns.partition_times.len() - before;
                row_resources.extend(std::iter::repeat_n(entry, added));
            }
        }
    }
    let resources = resources.finish(row_resources)?;
    let (mut arrays, after_service, partition_times) = columns.finish();
    arrays.push(resources.service_name);
    arrays.extend(after_service);
    arrays.extend(resources.columns);
    Ok(Rows {
        batch: RecordBatch::try_new(schema(), arrays)?,
        partition_times,
    })
}

fn push_metric(columns: &mut Columns, metric: &Metric, received_at: i64) -> Result<(), ArrowError> {
    match &metric.data {
        Some(metric::Data::Gauge(gauge)) => {
            for point in &gauge.data_points {
                let mut row = Point::new(
                    metric,
                    "gauge",
                    (point.time_unix_nano, point.start_time_unix_nano),
                    point.flags,
                    &point.attributes,
                );
                set_number(&mut row, point.value);
                columns.push(row, received_at)?;
            }
        }
        Some(metric::Data::Sum(sum)) => {
            for point in &sum.data_points {
                let mut row = Point::new(
                    metric,
                    "sum",
                    (point.time_unix_nano, point.start_time_unix_nano),
                    point.flags,
                    &point.attributes,
                );
                row.temporality = temporality(sum.aggregation_temporality);
                row.is_monotonic = Some(sum.is_monotonic);
                set_number(&mut row, point.value);
                columns.push(row, received_at)?;
            }
        }
        Some(metric::Data::Histogram(histogram)) => {
            for point in &histogram.data_points {
                let mut row = Point::new(
                    metric,
                    "histogram",
                    (point.time_unix_nano, point.start_time_unix_nano),
                    point.flags,
                    &point.attributes,
                );
                row.temporality = temporality(histogram.aggregation_temporality);
                row.count = Some(point.count);
                row.sum = point.sum;
                row.min = point.min;
                row.max = point.max;
                row.bucket_counts = Some(&point.bucket_counts);
                row.explicit_bounds = Some(&point.explicit_bounds);
                columns.push(row, received_at)?;
            }
        }
        Some(metric::Data::ExponentialHistogram(histogram)) => {
            for point in &histogram.data_points {
                let mut row = Point::new(
                    metric,
                    "exponential_histogram",
                    (point.time_unix_nano, point.start_time_unix_nano),
                    point.flags,
                    &point.attributes,
                );
                row.temporality = temporality(histogram.aggregation_temporality);
                row.count = Some(point.count);
                row.sum = point.sum;
                row.min = point.min;
                row.max = point.max;
                row.exponential = Some(Exponential {
                    scale: point.scale,
                    zero_count: point.zero_count,
                    zero_threshold: point.zero_threshold,
                    positive: point.positive.as_ref(),
                    negative: point.negative.as_ref(),
                });
                columns.push(row, received_at)?;
            }
        }
        Some(metric::Data::Summary(summary)) => {
            for point in &summary.data_points {
                let mut row = Point::new(
                    metric,
                    "summary",
                    (point.time_unix_nano, point.start_time_unix_nano),
                    point.flags,
                    &point.attributes,
                );
                row.count = Some(point.count);
                row.sum = Some(point.sum);
                row.quantiles = Some(&point.quantile_values);
                columns.push(row, received_at)?;
            }
        }
        None => {}
    }
    Ok(())
}

fn set_number(row: &mut Point<'_>, value: Option<number_data_point::Value>) {
    match value {
        Some(number_data_point::Value::AsDouble(number)) => row.value_double = Some(number),
        Some(number_data_point::Value::AsInt(number)) => row.value_int = Some(number),
        None => {}
    }
}
