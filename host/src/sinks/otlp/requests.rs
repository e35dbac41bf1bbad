//! Turning queued batches into export requests: batches of one signal are coalesced, then cut
//! into requests of at most `max_batch_records` records (log records, spans, or data points —
//! a metric's points are never split, so one metric with more points than the limit goes
//! alone), each encoded once so that retries resend the same bytes.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics, metric};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use crate::model::otlp::logs_to_otlp;
use crate::model::{Batch, Signal};

/// One encoded `Export*ServiceRequest`, ready to send (and resend).
#[derive(Clone, Debug)]
pub struct EncodedRequest {
    /// Which service it goes to.
    pub signal: Signal,
    /// The protobuf-encoded request.
    pub body: Bytes,
    /// Records, spans or data points it carries.
    pub records: usize,
}

/// Batches taken off the queue and not yet sent, by signal.
#[derive(Default)]
pub struct Pending {
    logs: Vec<ResourceLogs>,
    metrics: Vec<ResourceMetrics>,
    spans: Vec<ResourceSpans>,
    records: usize,
}

impl Pending {
    /// Records, spans and points held.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Adds a batch. Raw lines are not a signal an OTLP backend takes: they are handed back.
    pub fn add(&mut self, batch: &Batch) -> Result<(), usize> {
        match batch {
            Batch::Logs(logs) => self.logs.extend(logs_to_otlp(logs)),
            Batch::Metrics(metrics) => self.metrics.extend(metrics.resource_metrics.clone()),
            Batch::Spans(spans) => self.spans.extend(spans.resource_spans.clone()),
            Batch::Lines(lines) => return Err(lines.lines.len()),
        }
        self.records += batch.len();
        Ok(())
    }

    /// Everything held, as requests of at most `max_records` each; leaves `self` empty.
    pub fn take_requests(&mut self, max_records: usize) -> Vec<EncodedRequest> {
        let mut requests = Vec::new();
        for (resource_logs, records) in split(std::mem::take(&mut self.logs), max_records) {
            requests.push(EncodedRequest {
                signal: Signal::Logs,
                body: ExportLogsServiceRequest { resource_logs }
                    .encode_to_vec()
                    .into(),
                records,
            });
        }
        for (resource_metrics, records) in split(std::mem::take(&mut self.metrics), max_records) {
            requests.push(EncodedRequest {
                signal: Signal::Metrics,
                body: ExportMetricsServiceRequest { resource_metrics }
                    .encode_to_vec()
                    .into(),
                records,
            });
        }
        for (resource_spans, records) in split(std::mem::take(&mut self.spans), max_records) {
            requests.push(EncodedRequest {
                signal: Signal::Traces,
                body: ExportTraceServiceRequest { resource_spans }
                    .encode_to_vec()
                    .into(),
                records,
            });
        }
        self.records = 0;
        requests
    }
}

/// A resource entry of an OTLP request: a resource and its scopes.
trait ResourceEntry: Sized {
    type Scope: ScopeEntry;
    /// Takes the scopes out, leaving the resource with none.
    fn take_scopes(&mut self) -> Vec<Self::Scope>;
    fn push_scope(&mut self, scope: Self::Scope);
    /// The same resource with no scope.
    fn shell(&self) -> Self;
}

/// A scope entry: a scope and the items (records, spans, metrics) it holds.
trait ScopeEntry: Sized {
    type Item;
    fn take_items(&mut self) -> Vec<Self::Item>;
    fn push_item(&mut self, item: Self::Item);
    fn shell(&self) -> Self;
    /// Records an item counts for.
    fn weight(item: &Self::Item) -> usize;
}

/// Cuts resource entries into requests of at most `max_records` (an item heavier than that
/// goes alone), keeping order; empty scopes and resources are left out. Returns each request
/// with its record count.
fn split<R: ResourceEntry>(resources: Vec<R>, max_records: usize) -> Vec<(Vec<R>, usize)> {
    let max_records = max_records.max(1);
    let mut requests = Vec::new();
    let mut current: Vec<R> = Vec::new();
    let mut count = 0;
    for mut resource in resources {
        let scopes = resource.take_scopes();
        let mut open_resource: Option<R> = None;
        for mut scope in scopes {
            let items = scope.take_items();
            let mut open_scope: Option<R::Scope> = None;
            for item in items {
                let weight = R::Scope::weight(&item);
                if count > 0 && count + weight > max_records {
                    if let Some(full_scope) = open_scope.take() {
                        open_resource
                            .get_or_insert_with(|| resource.shell())
                            .push_scope(full_scope);
                    }
                    current.extend(open_resource.take());
                    requests.push((std::mem::take(&mut current), count));
                    count = 0;
                }
                open_scope
                    .get_or_insert_with(|| scope.shell())
                    .push_item(item);
                count += weight;
            }
            if let Some(done) = open_scope {
                open_resource
                    .get_or_insert_with(|| resource.shell())
                    .push_scope(done);
            }
        }
        current.extend(open_resource);
    }
    if !current.is_empty() {
        requests.push((current, count));
    }
    requests
}

impl ResourceEntry for ResourceLogs {
    type Scope = ScopeLogs;
    fn take_scopes(&mut self) -> Vec<ScopeLogs> {
        std::mem::take(&mut self.scope_logs)
    }
    fn push_scope(&mut self, scope: ScopeLogs) {
        self.scope_logs.push(scope);
    }
    fn shell(&self) -> Self {
        ResourceLogs {
            resource: self.resource.clone(),
            scope_logs: Vec::new(),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl ScopeEntry for ScopeLogs {
    type Item = LogRecord;
    fn take_items(&mut self) -> Vec<LogRecord> {
        std::mem::take(&mut self.log_records)
    }
    fn push_item(&mut self, item: LogRecord) {
        self.log_records.push(item);
    }
    fn shell(&self) -> Self {
        ScopeLogs {
            scope: self.scope.clone(),
            log_records: Vec::new(),
            schema_url: self.schema_url.clone(),
        }
    }
    fn weight(_: &LogRecord) -> usize {
        1
    }
}

impl ResourceEntry for ResourceSpans {
    type Scope = ScopeSpans;
    fn take_scopes(&mut self) -> Vec<ScopeSpans> {
        std::mem::take(&mut self.scope_spans)
    }
    fn push_scope(&mut self, scope: ScopeSpans) {
        self.scope_spans.push(scope);
    }
    fn shell(&self) -> Self {
        ResourceSpans {
            resource: self.resource.clone(),
            scope_spans: Vec::new(),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl ScopeEntry for ScopeSpans {
    type Item = Span;
    fn take_items(&mut self) -> Vec<Span> {
        std::mem::take(&mut self.spans)
    }
    fn push_item(&mut self, item: Span) {
        self.spans.push(item);
    }
    fn shell(&self) -> Self {
        ScopeSpans {
            scope: self.scope.clone(),
            spans: Vec::new(),
            schema_url: self.schema_url.clone(),
        }
    }
    fn weight(_: &Span) -> usize {
        1
    }
}

impl ResourceEntry for ResourceMetrics {
    type Scope = ScopeMetrics;
    fn take_scopes(&mut self) -> Vec<ScopeMetrics> {
        std::mem::take(&mut self.scope_metrics)
    }
    fn push_scope(&mut self, scope: ScopeMetrics) {
        self.scope_metrics.push(scope);
    }
    fn shell(&self) -> Self {
        ResourceMetrics {
            resource: self.resource.clone(),
            scope_metrics: Vec::new(),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl ScopeEntry for ScopeMetrics {
    type Item = Metric;
    fn take_items(&mut self) -> Vec<Metric> {
        std::mem::take(&mut self.metrics)
    }
    fn push_item(&mut self, item: Metric) {
        self.metrics.push(item);
    }
    fn shell(&self) -> Self {
        ScopeMetrics {
            scope: self.scope.clone(),
            metrics: Vec::new(),
            schema_url: self.schema_url.clone(),
        }
    }
    fn weight(metric: &Metric) -> usize {
        match &metric.data {
            Some(metric::Data::Gauge(gauge)) => gauge.data_points.len(),
            Some(metric::Data::Sum(sum)) => sum.data_points.len(),
            Some(metric::Data::Histogram(histogram)) => histogram.data_points.len(),
            Some(metric::Data::ExponentialHistogram(histogram)) => histogram.data_points.len(),
            Some(metric::Data::Summary(summary)) => summary.data_points.len(),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::metrics::v1::{Gauge, NumberDataPoint};

    use super::*;
    use crate::model::{MetricBatch, SpanBatch};

    fn spans(resource_count: usize, per_scope: &[usize]) -> Vec<ResourceSpans> {
        (0..resource_count)
            .map(|resource| ResourceSpans {
                scope_spans: per_scope
                    .iter()
                    .enumerate()
                    .map(|(scope, &count)| ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: format!("r{resource}s{scope}"),
                            ..InstrumentationScope::default()
                        }),
                        spans: (0..count)
                            .map(|index| Span {
                                name: format!("r{resource}s{scope}-{index}"),
                                ..Span::default()
                            })
                            .collect(),
                        ..ScopeSpans::default()
                    })
                    .collect(),
                ..ResourceSpans::default()
            })
            .collect()
    }

    fn names(request: &[ResourceSpans]) -> Vec<String> {
        request
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .flat_map(|scope| &scope.spans)
            .map(|span| span.name.clone())
            .collect()
    }

    #[test]
    fn split_cuts_at_the_limit_and_keeps_order_and_scopes() {
        let input = spans(2, &[3, 0, 2]);
        let all_names = names(&input);
        let requests = split(input, 4);
        let counts: Vec<usize> = requests.iter().map(|(_, count)| *count).collect();
        assert_eq!(counts, [4, 4, 2]);
        let mut rejoined = Vec::new();
        for (request, count) in &requests {
            assert_eq!(names(request).len(), *count);
            rejoined.extend(names(request));
            for resource in request {
                for scope in &resource.scope_spans {
                    assert!(!scope.spans.is_empty(), "no empty scope is sent");
                    let prefix = &scope.scope.as_ref().unwrap().name;
                    assert!(scope.spans.iter().all(|span| span.name.starts_with(prefix)));
                }
            }
        }
        assert_eq!(rejoined, all_names);
        assert!(split(spans(1, &[0]), 4).is_empty());
    }

    #[test]
    fn a_metric_heavier_than_the_limit_goes_alone() {
        let metric = |name: &str, points: usize| Metric {
            name: name.into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint::default(); points],
            })),
            ..Metric::default()
        };
        let mut pending = Pending::default();
        let batch = Batch::Metrics(MetricBatch {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![metric("a", 1), metric("big", 5), metric("c", 2)],
                    ..ScopeMetrics::default()
                }],
                ..ResourceMetrics::default()
            }],
        });
        pending.add(&batch).unwrap();
        pending.add(&Batch::Spans(SpanBatch::default())).unwrap();
        assert_eq!(pending.records(), 8);
        let requests = pending.take_requests(3);
        let counts: Vec<usize> = requests.iter().map(|request| request.records).collect();
        assert_eq!(counts, [1, 5, 2]);
        assert!(requests.iter().all(|r| r.signal == Signal::Metrics));
        assert_eq!(pending.records(), 0);
        assert!(pending.take_requests(3).is_empty());
    }
}
