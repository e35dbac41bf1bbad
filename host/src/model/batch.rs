//! The unit every stage passes on: a [`Batch`] of one signal.

use std::fmt;
use std::sync::Arc;

use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, metric};
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use serde::{Deserialize, Serialize};

use super::{LogBatch, Resource, StringColumn};

/// The three OpenTelemetry signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// Log records.
    Logs,
    /// Metric points.
    Metrics,
    /// Spans.
    Traces,
}

impl Signal {
    /// The lower-case name used in config, partitions and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
            Signal::Traces => "traces",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Metric points, held in the OTLP data model's own structure (resource → scope → metric →
/// points). No plugin reads metrics yet, so they are kept as decoded and converted once, where a
/// sink encodes them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricBatch {
    /// Metrics grouped by resource and scope.
    pub resource_metrics: Vec<ResourceMetrics>,
}

impl MetricBatch {
    /// Number of data points (a histogram point counts once).
    pub fn len(&self) -> usize {
        self.resource_metrics.iter().map(points_of).sum()
    }

    /// True when there is no data point.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Number of data points under one resource (a histogram point counts once).
pub fn points_of(resource: &ResourceMetrics) -> usize {
    resource
        .scope_metrics
        .iter()
        .flat_map(|scope| &scope.metrics)
        .map(|metric| match &metric.data {
            Some(metric::Data::Gauge(gauge)) => gauge.data_points.len(),
            Some(metric::Data::Sum(sum)) => sum.data_points.len(),
            Some(metric::Data::Histogram(histogram)) => histogram.data_points.len(),
            Some(metric::Data::ExponentialHistogram(histogram)) => histogram.data_points.len(),
            Some(metric::Data::Summary(summary)) => summary.data_points.len(),
            None => 0,
        })
        .sum()
}

/// Spans, held in the OTLP data model's own structure (resource → scope → spans), which is also
/// what the OTLP exporter forwards.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanBatch {
    /// Spans grouped by resource and scope.
    pub resource_spans: Vec<ResourceSpans>,
}

impl SpanBatch {
    /// Number of spans.
    pub fn len(&self) -> usize {
        self.resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len())
            .sum()
    }

    /// True when there is no span.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Raw text lines not yet parsed (file tail, JSON lines): a pipeline's parser plugin turns them
/// into log records; a pipeline without a parser keeps each line as the body of a record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LineBatch {
    /// One entry per line, without its line terminator.
    pub lines: StringColumn,
    /// Where the lines come from (a file path, a peer address), passed to the parser.
    pub source: String,
    /// The resource the records will carry.
    pub resource: Arc<Resource>,
}

/// One batch of one signal: what receivers hand to the intake, pipelines process and sinks
/// write.
// A batch moves a handful of times in its life (receiver → pipeline → router), so the size of
// the columnar `LogBatch` variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Batch {
    /// Log records, as columns.
    Logs(LogBatch),
    /// Metric points.
    Metrics(MetricBatch),
    /// Spans.
    Spans(SpanBatch),
    /// Raw lines, before parsing: they become logs.
    Lines(LineBatch),
}

impl Batch {
    /// The signal the batch carries (raw lines are logs).
    pub fn signal(&self) -> Signal {
        match self {
            Batch::Logs(_) | Batch::Lines(_) => Signal::Logs,
            Batch::Metrics(_) => Signal::Metrics,
            Batch::Spans(_) => Signal::Traces,
        }
    }

    /// Number of records, points, spans or lines.
    pub fn len(&self) -> usize {
        match self {
            Batch::Logs(batch) => batch.len(),
            Batch::Metrics(batch) => batch.len(),
            Batch::Spans(batch) => batch.len(),
            Batch::Lines(batch) => batch.lines.len(),
        }
    }

    /// True when the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
