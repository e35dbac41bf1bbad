//! Metric and span batches flattened for detectors: one entry per data point or span, with the
//! place it came from, so the `metric-batch` and `span-batch` resources can answer each column
//! accessor by one pass over the entries. Built once per batch, only for pipelines that have a
//! detector; the batch itself is shared, not copied.

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};

use super::bindings::wit;
use crate::model::otlp::attribute_from_otlp;
use crate::model::{AttributeValue, MetricBatch, SpanBatch, StringColumn};

/// Where one entry sits: resource, scope, metric (or span) and point indices.
#[derive(Clone, Copy, Debug)]
struct Place {
    resource: u32,
    scope: u32,
    item: u32,
    point: u32,
}

/// The data points of a metric batch, flattened.
#[derive(Debug)]
pub struct FlatMetrics {
    batch: Arc<MetricBatch>,
    places: Vec<Place>,
    pub kinds: Vec<wit::MetricKind>,
    pub monotonic: Vec<bool>,
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
    pub counts: Vec<u64>,
}

impl FlatMetrics {
    /// Flattens every point of `batch` (exponential histograms count as histograms).
    pub fn new(batch: Arc<MetricBatch>) -> FlatMetrics {
        let mut flat = FlatMetrics {
            batch: batch.clone(),
            places: Vec::new(),
            kinds: Vec::new(),
            monotonic: Vec::new(),
            timestamps: Vec::new(),
            values: Vec::new(),
            counts: Vec::new(),
        };
        for (r, resource) in batch.resource_metrics.iter().enumerate() {
            for (s, scope) in resource.scope_metrics.iter().enumerate() {
                for (m, metric) in scope.metrics.iter().enumerate() {
                    let mut push = |point: usize, kind, monotonic, time, value, count| {
                        flat.places.push(Place {
                            resource: r as u32,
                            scope: s as u32,
                            item: m as u32,
                            point: point as u32,
                        });
                        flat.kinds.push(kind);
                        flat.monotonic.push(monotonic);
                        flat.timestamps.push(time as i64);
                        flat.values.push(value);
                        flat.counts.push(count);
                    };
                    match &metric.data {
                        Some(metric::Data::Gauge(gauge)) => {
                            for (p, point) in gauge.data_points.iter().enumerate() {
                                let value = number(point.value);
                                push(
                                    p,
                                    wit::MetricKind::Gauge,
                                    false,
                                    point.time_unix_nano,
                                    value,
                                    0,
                                );
                            }
                        }
                        Some(metric::Data::Sum(sum)) => {
                            for (p, point) in sum.data_points.iter().enumerate() {
                                let value = number(point.value);
                                let kind = wit::MetricKind::Sum;
                                push(p, kind, sum.is_monotonic, point.time_unix_nano, value, 0);
                            }
                        }
                        Some(metric::Data::Histogram(histogram)) => {
                            for (p, point) in histogram.data_points.iter().enumerate() {
                                let (sum, count) = (point.sum.unwrap_or(0.0), point.count);
                                let kind = wit::MetricKind::Histogram;
                                push(p, kind, false, point.time_unix_nano, sum, count);
                            }
                        }
                        Some(metric::Data::ExponentialHistogram(histogram)) => {
                            for (p, point) in histogram.data_points.iter().enumerate() {
                                let (sum, count) = (point.sum.unwrap_or(0.0), point.count);
                                let kind = wit::MetricKind::Histogram;
                                push(p, kind, false, point.time_unix_nano, sum, count);
                            }
                        }
                        Some(metric::Data::Summary(summary)) => {
                            for (p, point) in summary.data_points.iter().enumerate() {
                                let kind = wit::MetricKind::Summary;
                                let (sum, count) = (point.sum, point.count);
                                push(p, kind, false, point.time_unix_nano, sum, count);
                            }
                        }
                        None => {}
                    }
                }
            }
        }
        flat
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// True when there is no point.
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    fn metric(&self, place: Place) -> &opentelemetry_proto::tonic::metrics::v1::Metric {
        &self.batch.resource_metrics[place.resource as usize].scope_metrics[place.scope as usize]
            .metrics[place.item as usize]
    }

    /// Metric name of each point.
    pub fn names(&self) -> StringColumn {
        column(
            self.places
                .iter()
                .map(|&place| self.metric(place).name.as_str()),
        )
    }

    /// Unit of each point.
    pub fn units(&self) -> StringColumn {
        column(
            self.places
                .iter()
                .map(|&place| self.metric(place).unit.as_str()),
        )
    }

    /// Point attributes of each point.
    fn point_attributes(&self, place: Place) -> &[KeyValue] {
        match &self.metric(place).data {
            Some(metric::Data::Gauge(gauge)) => &gauge.data_points[place.point as usize].attributes,
            Some(metric::Data::Sum(sum)) => &sum.data_points[place.point as usize].attributes,
            Some(metric::Data::Histogram(histogram)) => {
                &histogram.data_points[place.point as usize].attributes
            }
            Some(metric::Data::ExponentialHistogram(histogram)) => {
                &histogram.data_points[place.point as usize].attributes
            }
            Some(metric::Data::Summary(summary)) => {
                &summary.data_points[place.point as usize].attributes
            }
            None => &[],
        }
    }

    fn resource_attributes(&self, place: Place) -> &[KeyValue] {
        self.batch.resource_metrics[place.resource as usize]
            .resource
            .as_ref()
            .map_or(&[], |resource| &resource.attributes)
    }

    /// One point attribute for each point.
    pub fn attribute(&self, key: &str) -> Vec<Option<wit::Value>> {
        let places = self.places.iter();
        places
            .map(|&place| lookup(self.point_attributes(place), key))
            .collect()
    }

    /// One resource attribute for each point.
    pub fn resource_attribute(&self, key: &str) -> Vec<Option<wit::Value>> {
        let places = self.places.iter();
        places
            .map(|&place| lookup(self.resource_attributes(place), key))
            .collect()
    }

    /// All point attributes.
    pub fn attributes(&self) -> wit::AttributeTable {
        table(
            self.places
                .iter()
                .map(|&place| self.point_attributes(place)),
        )
    }
}

fn number(value: Option<number_data_point::Value>) -> f64 {
    match value {
        Some(number_data_point::Value::AsDouble(value)) => value,
        Some(number_data_point::Value::AsInt(value)) => value as f64,
        None => 0.0,
    }
}

/// The spans of a span batch, flattened.
#[derive(Debug)]
pub struct FlatSpans {
    batch: Arc<SpanBatch>,
    places: Vec<Place>,
}

impl FlatSpans {
    /// Flattens every span of `batch`.
    pub fn new(batch: Arc<SpanBatch>) -> FlatSpans {
        let mut places = Vec::with_capacity(batch.len());
        for (r, resource) in batch.resource_spans.iter().enumerate() {
            for (s, scope) in resource.scope_spans.iter().enumerate() {
                for item in 0..scope.spans.len() {
                    places.push(Place {
                        resource: r as u32,
                        scope: s as u32,
                        item: item as u32,
                        point: 0,
                    });
                }
            }
        }
        FlatSpans { batch, places }
    }

    /// Number of spans.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// True when there is no span.
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    fn spans(&self) -> impl Iterator<Item = &opentelemetry_proto::tonic::trace::v1::Span> {
        self.places.iter().map(|&place| {
            &self.batch.resource_spans[place.resource as usize].scope_spans[place.scope as usize]
                .spans[place.item as usize]
        })
    }

    /// Name of each span.
    pub fn names(&self) -> StringColumn {
        column(self.spans().map(|span| span.name.as_str()))
    }

    /// Kind of each span.
    pub fn kinds(&self) -> Vec<u8> {
        self.spans()
            .map(|span| span.kind.clamp(0, 255) as u8)
            .collect()
    }

    /// Start of each span.
    pub fn start_timestamps(&self) -> Vec<i64> {
        self.spans()
            .map(|span| span.start_time_unix_nano as i64)
            .collect()
    }

    /// End of each span.
    pub fn end_timestamps(&self) -> Vec<i64> {
        self.spans()
            .map(|span| span.end_time_unix_nano as i64)
            .collect()
    }

    /// Status code of each span.
    pub fn status_codes(&self) -> Vec<u8> {
        let code = |span: &opentelemetry_proto::tonic::trace::v1::Span| {
            span.status
                .as_ref()
                .map_or(0, |status| status.code.clamp(0, 255) as u8)
        };
        self.spans().map(code).collect()
    }

    /// Trace id of each span, 16 bytes each.
    pub fn trace_ids(&self) -> Vec<u8> {
        let mut ids = Vec::with_capacity(self.len() * 16);
        for span in self.spans() {
            ids.extend_from_slice(&fixed::<16>(&span.trace_id));
        }
        ids
    }

    /// Span id of each span, 8 bytes each.
    pub fn span_ids(&self) -> Vec<u8> {
        let mut ids = Vec::with_capacity(self.len() * 8);
        for span in self.spans() {
            ids.extend_from_slice(&fixed::<8>(&span.span_id));
        }
        ids
    }

    /// One span attribute for each span.
    pub fn attribute(&self, key: &str) -> Vec<Option<wit::Value>> {
        self.spans()
            .map(|span| lookup(&span.attributes, key))
            .collect()
    }

    /// One resource attribute for each span.
    pub fn resource_attribute(&self, key: &str) -> Vec<Option<wit::Value>> {
        let resource = |place: Place| {
            self.batch.resource_spans[place.resource as usize]
                .resource
                .as_ref()
                .map_or(&[][..], |resource| &resource.attributes)
        };
        let places = self.places.iter();
        places.map(|&place| lookup(resource(place), key)).collect()
    }

    /// All span attributes.
    pub fn attributes(&self) -> wit::AttributeTable {
        table(self.spans().map(|span| &span.attributes[..]))
    }
}

/// An id of `N` bytes (zeros when absent or malformed).
fn fixed<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes.try_into().unwrap_or([0; N])
}

fn column<'a>(items: impl Iterator<Item = &'a str>) -> StringColumn {
    let mut column = StringColumn::default();
    for item in items {
        column.push(item);
    }
    column
}

fn lookup(attributes: &[KeyValue], key: &str) -> Option<wit::Value> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .map(|attribute| (&attribute_from_otlp(attribute.value.as_ref())).into())
}

fn table<'a>(entries: impl Iterator<Item = &'a [KeyValue]>) -> wit::AttributeTable {
    let mut records = Vec::new();
    let mut keys = StringColumn::default();
    let mut values = Vec::new();
    for (index, attributes) in entries.enumerate() {
        for attribute in attributes {
            records.push(index as u32);
            keys.push(&attribute.key);
            let value: AttributeValue = attribute_from_otlp(attribute.value.as_ref());
            values.push((&value).into());
        }
    }
    wit::AttributeTable {
        records,
        keys: (&keys).into(),
        values,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
        ScopeMetrics, Sum,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

    use super::*;

    fn text(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    fn number_point(time: u64, value: number_data_point::Value, mount: &str) -> NumberDataPoint {
        NumberDataPoint {
            time_unix_nano: time,
            value: Some(value),
            attributes: vec![text("mount", mount)],
            ..Default::default()
        }
    }

    #[test]
    fn every_point_of_every_metric_is_one_entry() {
        let metric = |name: &str, data| Metric {
            name: name.into(),
            unit: "1".into(),
            data: Some(data),
            ..Default::default()
        };
        let batch = MetricBatch {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![text("service.name", "db")],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        metric(
                            "disk",
                            metric::Data::Gauge(Gauge {
                                data_points: vec![
                                    number_point(10, number_data_point::Value::AsDouble(0.5), "/"),
                                    number_point(20, number_data_point::Value::AsInt(7), "/boot"),
                                ],
                            }),
                        ),
                        metric(
                            "requests",
                            metric::Data::Sum(Sum {
                                data_points: vec![number_point(
                                    30,
                                    number_data_point::Value::AsInt(100),
                                    "-",
                                )],
                                is_monotonic: true,
                                ..Default::default()
                            }),
                        ),
                        metric(
                            "latency",
                            metric::Data::Histogram(Histogram {
                                data_points: vec![HistogramDataPoint {
                                    time_unix_nano: 40,
                                    count: 4,
                                    sum: Some(2.0),
                                    ..Default::default()
                                }],
                                ..Default::default()
                            }),
                        ),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let flat = FlatMetrics::new(Arc::new(batch));
        assert_eq!(flat.len(), 4);
        let names: Vec<String> = flat.names().iter().map(str::to_owned).collect();
        assert_eq!(names, ["disk", "disk", "requests", "latency"]);
        assert_eq!(flat.timestamps, [10, 20, 30, 40]);
        assert_eq!(flat.values, [0.5, 7.0, 100.0, 2.0]);
        assert_eq!(flat.counts, [0, 0, 0, 4]);
        assert_eq!(flat.monotonic, [false, false, true, false]);
        assert_eq!(flat.kinds[3], wit::MetricKind::Histogram);
        let mounts = flat.attribute("mount");
        assert!(matches!(&mounts[1], Some(wit::Value::Str(mount)) if mount == "/boot"));
        assert!(mounts[3].is_none());
        let services = flat.resource_attribute("service.name");
        assert!(
            services
                .iter()
                .all(|s| matches!(s, Some(wit::Value::Str(name)) if name == "db"))
        );
        assert_eq!(flat.attributes().records, [0, 1, 2]);
    }

    #[test]
    fn spans_carry_kind_status_times_and_ids() {
        let span = |name: &str, code: i32, id: u8| Span {
            name: name.into(),
            kind: 2,
            start_time_unix_nano: 100,
            end_time_unix_nano: 250,
            trace_id: vec![id; 16],
            span_id: vec![id; 3], // malformed: read as zeros
            status: Some(Status {
                code,
                ..Default::default()
            }),
            ..Default::default()
        };
        let batch = SpanBatch {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span("GET /", 2, 1), span("POST /", 0, 2)],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let flat = FlatSpans::new(Arc::new(batch));
        assert_eq!(flat.len(), 2);
        assert_eq!(flat.kinds(), [2, 2]);
        assert_eq!(flat.status_codes(), [2, 0]);
        assert_eq!(flat.end_timestamps(), [250, 250]);
        assert_eq!(&flat.trace_ids()[16..], &[2; 16]);
        assert_eq!(flat.span_ids(), [0; 16]);
        assert!(
            flat.resource_attribute("service.name")
                .iter()
                .all(Option::is_none)
        );
    }
}
