//! Routing: which of a pipeline's sinks each record goes to.
//!
//! A pipeline's `sinks` is a route without conditions; each `[[routes]]` entry adds one with
//! conditions. A record goes to every sink of every route it matches, once per sink. Records
//! that match no route are counted as unrouted, never dropped silently.

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

use crate::config::{PipelineConfig, severity_from_name};
use crate::model::{AttributeValueRef, Batch, LogBatch, MetricBatch, Signal, SpanBatch, points_of};

/// One route, with its sink names resolved to indices.
#[derive(Clone, Debug)]
struct Route {
    sinks: Vec<usize>,
    signals: Vec<Signal>,
    min_severity: Option<u8>,
    resource: Vec<(String, String)>,
    attributes: Vec<(String, String)>,
}

/// Where a batch goes.
#[derive(Debug, Default)]
pub struct Routed {
    /// Sink index and the part of the batch it gets; sinks with the same part share it.
    pub deliveries: Vec<(usize, Arc<Batch>)>,
    /// Records, points or spans no route took.
    pub unrouted: usize,
}

/// The compiled routes of one pipeline.
#[derive(Clone, Debug)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Compiles a pipeline's routes; `sink_index` maps a sink name (already checked to exist)
    /// to its index.
    pub fn new(config: &PipelineConfig, sink_index: impl Fn(&str) -> usize) -> Router {
        let mut routes = Vec::new();
        if !config.sinks.is_empty() {
            routes.push(Route {
                sinks: config.sinks.iter().map(|name| sink_index(name)).collect(),
                signals: Vec::new(),
                min_severity: None,
                resource: Vec::new(),
                attributes: Vec::new(),
            });
        }
        for route in &config.routes {
            routes.push(Route {
                sinks: route.sinks.iter().map(|name| sink_index(name)).collect(),
                signals: route.signals.clone(),
                min_severity: route.min_severity.as_deref().and_then(severity_from_name),
                resource: route.resource.clone().into_iter().collect(),
                attributes: route.attributes.clone().into_iter().collect(),
            });
        }
        Router { routes }
    }

    /// Splits a batch between the sinks.
    pub fn route(&self, batch: Batch) -> Routed {
        let signal = batch.signal();
        let routes: Vec<&Route> = self
            .routes
            .iter()
            .filter(|route| route.signals.is_empty() || route.signals.contains(&signal))
            .collect();
        let len = batch.len();
        // Per route, which items it takes (`None`: all of them).
        let masks: Vec<Option<Vec<bool>>> = routes
            .iter()
            .map(|route| route_mask(route, &batch))
            .collect();
        let mut per_sink: HashMap<usize, Option<Vec<bool>>> = HashMap::new();
        for (route, mask) in routes.iter().zip(&masks) {
            for &sink in &route.sinks {
                let entry = per_sink
                    .entry(sink)
                    .or_insert_with(|| Some(vec![false; len]));
                *entry = union(entry.take(), mask.as_deref());
            }
        }
        let mut taken = Some(vec![false; len]);
        for mask in &masks {
            taken = union(taken, mask.as_deref());
        }
        let unrouted = match &taken {
            None => 0,
            Some(mask) => mask.iter().filter(|taken| !**taken).count(),
        };
        let batch = Arc::new(batch);
        let mut shared: HashMap<Option<Vec<bool>>, Arc<Batch>> = HashMap::new();
        let mut deliveries = Vec::new();
        let mut sinks: Vec<_> = per_sink.into_iter().collect();
        sinks.sort_by_key(|(sink, _)| *sink);
        for (sink, mask) in sinks {
            let mask = mask.filter(|mask| !mask.iter().all(|keep| *keep));
            if mask
                .as_ref()
                .is_some_and(|mask| !mask.iter().any(|keep| *keep))
            {
                continue;
            }
            let part = shared
                .entry(mask.clone())
                .or_insert_with(|| match &mask {
                    None => batch.clone(),
                    Some(mask) => Arc::new(select(&batch, mask)),
                })
                .clone();
            deliveries.push((sink, part));
        }
        Routed {
            deliveries,
            unrouted,
        }
    }
}

/// `a OR b`, where `None` means all true.
fn union(a: Option<Vec<bool>>, b: Option<&[bool]>) -> Option<Vec<bool>> {
    match (a, b) {
        (None, _) | (_, None) => None,
        (Some(mut a), Some(b)) => {
            for (a, b) in a.iter_mut().zip(b) {
                *a |= *b;
            }
            Some(a)
        }
    }
}

fn route_mask(route: &Route, batch: &Batch) -> Option<Vec<bool>> {
    if route.min_severity.is_none() && route.resource.is_empty() && route.attributes.is_empty() {
        return None;
    }
    Some(match batch {
        Batch::Logs(logs) => log_mask(route, logs),
        Batch::Metrics(metrics) => metric_mask(route, metrics),
        Batch::Spans(spans) => span_mask(route, spans),
        // Pipelines parse lines before routing; were one to arrive, it has no fields to match.
        Batch::Lines(lines) => vec![false; lines.lines.len()],
    })
}

fn log_mask(route: &Route, logs: &LogBatch) -> Vec<bool> {
    (0..logs.len())
        .map(|index| {
            route
                .min_severity
                .is_none_or(|min| logs.severity_numbers()[index] >= min)
                && route.resource.iter().all(|(key, want)| {
                    logs.resource_of(index)
                        .attribute(key)
                        .is_some_and(|value| value_is(value.into(), want))
                })
                && route.attributes.iter().all(|(key, want)| {
                    logs.attribute_refs_of(index)
                        .any(|(k, value)| k == key && value_is(value, want))
                })
        })
        .collect()
}

fn metric_mask(route: &Route, metrics: &MetricBatch) -> Vec<bool> {
    let mut mask = Vec::with_capacity(metrics.len());
    for resource in &metrics.resource_metrics {
        let resource_matches = route.resource.iter().all(|(key, want)| {
            resource
                .resource
                .as_ref()
                .is_some_and(|r| key_value_is(&r.attributes, key, want))
        });
        let points = points_of(resource);
        // Metric point attributes are not matched: a route with `attributes` takes no point.
        mask.extend(std::iter::repeat_n(
            resource_matches && route.attributes.is_empty() && route.min_severity.is_none(),
            points,
        ));
    }
    mask
}

fn span_mask(route: &Route, spans: &SpanBatch) -> Vec<bool> {
    let mut mask = Vec::with_capacity(spans.len());
    for resource in &spans.resource_spans {
        let resource_matches = route.resource.iter().all(|(key, want)| {
            resource
                .resource
                .as_ref()
                .is_some_and(|r| key_value_is(&r.attributes, key, want))
        });
        for scope in &resource.scope_spans {
            for span in &scope.spans {
                mask.push(
                    resource_matches
                        && route.min_severity.is_none()
                        && route
                            .attributes
                            .iter()
                            .all(|(key, want)| key_value_is(&span.attributes, key, want)),
                );
            }
        }
    }
    mask
}

/// The items of `batch` where `mask` is true.
fn select(batch: &Batch, mask: &[bool]) -> Batch {
    match batch {
        Batch::Logs(logs) => {
            let keep: Vec<u8> = mask.iter().map(|keep| u8::from(*keep)).collect();
            Batch::Logs(logs.clone().select_and_edit(Some(&keep), &[]))
        }
        Batch::Spans(spans) => {
            let mut index = 0;
            let mut selected = spans.clone();
            for resource in &mut selected.resource_spans {
                for scope in &mut resource.scope_spans {
                    scope.spans.retain(|_| {
                        index += 1;
                        mask[index - 1]
                    });
                }
                resource.scope_spans.retain(|scope| !scope.spans.is_empty());
            }
            selected
                .resource_spans
                .retain(|resource| !resource.scope_spans.is_empty());
            Batch::Spans(selected)
        }
        Batch::Metrics(metrics) => {
            // Metric masks are uniform per resource (see `metric_mask`).
            let mut offset = 0;
            let mut selected = MetricBatch::default();
            for resource in &metrics.resource_metrics {
                let points = points_of(resource);
                if points > 0 && mask[offset] {
                    selected.resource_metrics.push(resource.clone());
                }
                offset += points;
            }
            Batch::Metrics(selected)
        }
        Batch::Lines(lines) => Batch::Lines(lines.clone()),
    }
}

fn value_is(value: AttributeValueRef<'_>, want: &str) -> bool {
    match value {
        AttributeValueRef::Str(text) => text == want,
        AttributeValueRef::Int(number) => number.to_string() == want,
        AttributeValueRef::Double(number) => number.to_string() == want,
        AttributeValueRef::Bool(flag) => flag.to_string() == want,
        AttributeValueRef::Bytes(bytes) => hex::encode(bytes) == want,
    }
}

fn key_value_is(attributes: &[KeyValue], key: &str, want: &str) -> bool {
    attributes.iter().any(|kv| {
        kv.key == key
            && kv
                .value
                .as_ref()
                .is_some_and(|value: &AnyValue| match &value.value {
                    Some(any_value::Value::StringValue(text)) => text == want,
                    Some(any_value::Value::IntValue(number)) => number.to_string() == want,
                    Some(any_value::Value::DoubleValue(number)) => number.to_string() == want,
                    Some(any_value::Value::BoolValue(flag)) => flag.to_string() == want,
                    _ => false,
                })
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;

    use super::*;
    use crate::config::GatewayConfig;
    use crate::model::{LogRecord, Resource};

    /// The router of pipeline `main` in a config with sinks `all` (0), `checkout` (1), `errors` (2).
    fn router(pipeline: &str) -> Router {
        let text = format!(
            "[receivers.in]\ntype = \"stdin\"\n[sinks.all]\ntype = \"stdout\"\n[sinks.errors]\ntype = \"stdout\"\n[sinks.checkout]\ntype = \"stdout\"\n[pipelines.main]\nreceivers = [\"in\"]\n{pipeline}"
        );
        let config = GatewayConfig::parse(&text, "test").unwrap();
        let names: Vec<&String> = config.sinks.keys().collect();
        Router::new(&config.pipelines["main"], |name| {
            names.iter().position(|sink| sink.as_str() == name).unwrap()
        })
    }

    fn log(service: &str, severity: u8, user: &str) -> LogRecord {
        LogRecord {
            severity_number: severity,
            body: format!("{service} {severity} {user}"),
            attributes: vec![("user".into(), user.into())],
            resource: Arc::new(Resource::with_attributes(vec![(
                "service.name".into(),
                service.into(),
            )])),
            ..LogRecord::default()
        }
    }

    fn bodies(batch: &Batch) -> Vec<String> {
        match batch {
            Batch::Logs(logs) => logs.records().map(|record| record.body).collect(),
            other => panic!("not logs: {other:?}"),
        }
    }

    #[test]
    fn log_records_go_to_every_route_they_match_once_per_sink() {
        // Sink indices follow the sinks' names: all = 0, checkout = 1, errors = 2.
        let router = router(
            "sinks = [\"all\"]\n[[pipelines.main.routes]]\nsinks = [\"errors\", \"all\"]\nmin_severity = \"error\"\n[[pipelines.main.routes]]\nsinks = [\"checkout\"]\nresource = { \"service.name\" = \"checkout\" }\nattributes = { user = \"bob\" }\n",
        );
        let records = [
            log("checkout", 17, "bob"),
            log("checkout", 9, "bob"),
            log("checkout", 17, "eve"),
            log("billing", 21, "bob"),
        ];
        let routed = router.route(Batch::Logs(LogBatch::from_records(&records)));
        assert_eq!(routed.unrouted, 0);
        let by_sink: Vec<(usize, Vec<String>)> = routed
            .deliveries
            .iter()
            .map(|(sink, part)| (*sink, bodies(part)))
            .collect();
        assert_eq!(
            by_sink,
            vec![
                (0, records.iter().map(|r| r.body.clone()).collect()),
                (1, vec!["checkout 17 bob".into(), "checkout 9 bob".into()]),
                (
                    2,
                    vec![
                        "checkout 17 bob".into(),
                        "checkout 17 eve".into(),
                        "billing 21 bob".into()
                    ]
                ),
            ]
        );
    }

    #[test]
    fn records_no_route_takes_are_counted() {
        let router =
            router("[[pipelines.main.routes]]\nsinks = [\"errors\"]\nmin_severity = \"error\"\n");
        let records = [log("a", 17, "x"), log("a", 9, "x"), log("a", 5, "x")];
        let routed = router.route(Batch::Logs(LogBatch::from_records(&records)));
        assert_eq!(routed.unrouted, 2);
        assert_eq!(routed.deliveries.len(), 1);
        assert_eq!(bodies(&routed.deliveries[0].1), vec!["a 17 x".to_string()]);
    }

    fn resource_metrics(service: &str, points: usize) -> ResourceMetrics {
        ResourceMetrics {
            resource: Some(OtlpResource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(service.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "up".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint::default(); points],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn metric_points_are_routed_by_resource() {
        let router = router(
            "[[pipelines.main.routes]]\nsinks = [\"checkout\"]\nresource = { \"service.name\" = \"checkout\" }\n",
        );
        let batch = MetricBatch {
            resource_metrics: vec![
                resource_metrics("billing", 2),
                resource_metrics("checkout", 3),
            ],
        };
        let routed = router.route(Batch::Metrics(batch));
        assert_eq!(routed.unrouted, 2);
        assert_eq!(routed.deliveries.len(), 1);
        let Batch::Metrics(part) = routed.deliveries[0].1.as_ref() else {
            panic!("not metrics");
        };
        assert_eq!(part.len(), 3);
        assert_eq!(part.resource_metrics.len(), 1);
    }
}
