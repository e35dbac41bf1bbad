//! Conversions between the OTLP protobuf types (`opentelemetry_proto::tonic`) and the model.
//!
//! The OTLP receiver decodes requests into these types and calls [`logs_from_otlp`],
//! [`spans_from_otlp`] and [`metrics_from_otlp`]; the OTLP exporter calls [`logs_to_otlp`] on the
//! way out. Each `*_from_otlp` checks every record on its own: a record the OTLP data model calls
//! invalid (a trace id that is not 16 bytes, say) is left out and counted, its neighbours are kept,
//! and the receiver reports the count as the request's partial success.
//!
//! What a log record keeps: times, severity number and text, body, trace and span ids, attributes,
//! and its resource attributes with the scope name and version. What it loses: `flags`,
//! `event_name`, the `dropped_attributes_count`s, the schema URLs, scope attributes and resource
//! entity refs. Bodies that are not strings become their JSON text (`{"k":1}`, `42`), as do nested
//! attribute values (arrays and key-value lists); bytes nested in JSON are hex. An attribute
//! without a value becomes the empty string. Metrics and spans stay in their OTLP structures and
//! lose nothing.

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord as OtlpLogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{NumberDataPoint, ResourceMetrics, metric};
use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};

use super::{AttributeValue, LogBatch, MetricBatch, Resource, SpanBatch};

/// The highest OpenTelemetry severity number (`FATAL4`).
const MAX_SEVERITY_NUMBER: i32 = 24;

/// The outcome of converting one request: what was kept, and what was left out and why.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Converted<T> {
    /// The valid records, points or spans.
    pub batch: T,
    /// How many were left out as invalid.
    pub rejected: usize,
    /// Why: the first problem met, with a count of the others (empty when nothing was rejected).
    pub error_message: String,
}

/// Collects rejection reasons: the first one in full, the rest only counted.
#[derive(Default)]
struct Rejections {
    count: usize,
    first: Option<String>,
}

impl Rejections {
    fn reject(&mut self, reason: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(reason());
        }
    }

    fn into_converted<T>(self, batch: T, what: &str) -> Converted<T> {
        let error_message = match (self.first, self.count) {
            (None, _) => String::new(),
            (Some(first), 1) => first,
            (Some(first), count) => {
                format!("{first} (and {} more invalid {what})", count - 1)
            }
        };
        Converted {
            batch,
            rejected: self.count,
            error_message,
        }
    }
}

/// An OTLP value as a model attribute value: scalars keep their type, arrays and key-value lists
/// become their JSON text, an empty value the empty string.
pub fn attribute_from_otlp(value: Option<&AnyValue>) -> AttributeValue {
    match value.and_then(|value| value.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => AttributeValue::Str(text.clone()),
        Some(any_value::Value::BoolValue(flag)) => AttributeValue::Bool(*flag),
        Some(any_value::Value::IntValue(number)) => AttributeValue::Int(*number),
        Some(any_value::Value::DoubleValue(number)) => AttributeValue::Double(*number),
        Some(any_value::Value::BytesValue(bytes)) => AttributeValue::Bytes(bytes.clone()),
        Some(nested @ (any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_))) => {
            AttributeValue::Str(value_json(nested).to_string())
        }
        // An index into the profiling signal's string table: meaningless outside it.
        Some(any_value::Value::StringValueStrindex(_)) | None => AttributeValue::Str(String::new()),
    }
}

/// A model attribute value as an OTLP value.
pub fn attribute_to_otlp(value: &AttributeValue) -> AnyValue {
    let value = match value {
        AttributeValue::Str(text) => any_value::Value::StringValue(text.clone()),
        AttributeValue::Int(number) => any_value::Value::IntValue(*number),
        AttributeValue::Double(number) => any_value::Value::DoubleValue(*number),
        AttributeValue::Bool(flag) => any_value::Value::BoolValue(*flag),
        AttributeValue::Bytes(bytes) => any_value::Value::BytesValue(bytes.clone()),
    };
    AnyValue { value: Some(value) }
}

/// An OTLP value as plain JSON (bytes as hex), for nested values and non-string bodies.
pub fn any_value_json(value: &AnyValue) -> serde_json::Value {
    value
        .value
        .as_ref()
        .map(value_json)
        .unwrap_or(serde_json::Value::Null)
}

fn value_json(value: &any_value::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        any_value::Value::StringValue(text) => Value::from(text.as_str()),
        any_value::Value::BoolValue(flag) => Value::from(*flag),
        any_value::Value::IntValue(number) => Value::from(*number),
        any_value::Value::DoubleValue(number) => Value::from(*number),
        any_value::Value::BytesValue(bytes) => Value::from(hex::encode(bytes)),
        any_value::Value::ArrayValue(array) => {
            Value::Array(array.values.iter().map(any_value_json).collect())
        }
        any_value::Value::KvlistValue(list) => Value::Object(
            list.values
                .iter()
                .map(|pair| {
                    let value = pair
                        .value
                        .as_ref()
                        .map(any_value_json)
                        .unwrap_or(Value::Null);
                    (pair.key.clone(), value)
                })
                .collect(),
        ),
        any_value::Value::StringValueStrindex(_) => Value::Null,
    }
}

/// A log body as text: strings as they are, anything else as its JSON text, none as empty.
fn body_text(body: Option<&AnyValue>) -> String {
    match body.and_then(|body| body.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => text.clone(),
        Some(other) => value_json(other).to_string(),
        None => String::new(),
    }
}

fn attributes_from_otlp(attributes: &[KeyValue]) -> Vec<(String, AttributeValue)> {
    attributes
        .iter()
        .map(|pair| (pair.key.clone(), attribute_from_otlp(pair.value.as_ref())))
        .collect()
}

fn attributes_to_otlp(attributes: &[(String, AttributeValue)]) -> Vec<KeyValue> {
    attributes
        .iter()
        .map(|(key, value)| KeyValue {
            key: key.clone(),
            value: Some(attribute_to_otlp(value)),
            ..KeyValue::default()
        })
        .collect()
}

/// The model resource of an OTLP resource seen under an instrumentation scope.
pub fn resource_from_otlp(
    resource: Option<&OtlpResource>,
    scope: Option<&InstrumentationScope>,
) -> Resource {
    Resource {
        attributes: resource
            .map(|resource| attributes_from_otlp(&resource.attributes))
            .unwrap_or_default(),
        scope_name: scope.map(|scope| scope.name.clone()).unwrap_or_default(),
        scope_version: scope.map(|scope| scope.version.clone()).unwrap_or_default(),
    }
}

/// Copies an id that must be empty (absent) or exactly `N` bytes.
fn fixed_id<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], String> {
    let mut id = [0; N];
    match bytes.len() {
        0 => Ok(id),
        length if length == N => {
            id.copy_from_slice(bytes);
            Ok(id)
        }
        length => Err(format!(
            "{what} must be {N} bytes or empty, got {length} bytes"
        )),
    }
}

fn nanos(value: u64, what: &str) -> Result<i64, String> {
    i64::try_from(value).map_err(|_| format!("{what} {value} is past the year 2262"))
}

/// Appends one OTLP log record to `batch`, or says why it is invalid (and appends nothing).
fn push_log_record(
    batch: &mut LogBatch,
    record: &OtlpLogRecord,
    resource: &Arc<Resource>,
    observed_now: i64,
) -> Result<(), String> {
    let trace_id = fixed_id::<16>(&record.trace_id, "trace_id")?;
    let span_id = fixed_id::<8>(&record.span_id, "span_id")?;
    let timestamp = nanos(record.time_unix_nano, "time_unix_nano")?;
    let observed = match nanos(record.observed_time_unix_nano, "observed_time_unix_nano")? {
        0 => observed_now,
        observed => observed,
    };
    let severity_number = u8::try_from(record.severity_number)
        .ok()
        .filter(|number| i32::from(*number) <= MAX_SEVERITY_NUMBER)
        .ok_or_else(|| {
            format!(
                "severity_number {} is outside 0..=24",
                record.severity_number
            )
        })?;
    let body = body_text(record.body.as_ref());
    batch.push_fields(
        timestamp,
        observed,
        severity_number,
        &record.severity_text,
        &body,
        &trace_id,
        &span_id,
        resource,
    );
    for pair in &record.attributes {
        batch.push_attribute(&pair.key, attribute_from_otlp(pair.value.as_ref()));
    }
    Ok(())
}

/// Converts the logs of one export request into a [`LogBatch`], leaving out and counting invalid
/// records (ids of the wrong length, times past `i64`, severity numbers past 24). Records without
/// an observed time get `observed_now` (Unix nanoseconds).
pub fn logs_from_otlp(resource_logs: &[ResourceLogs], observed_now: i64) -> Converted<LogBatch> {
    let mut batch = LogBatch::new();
    let mut rejections = Rejections::default();
    let mut index = 0usize;
    for resource_log in resource_logs {
        for scope_log in &resource_log.scope_logs {
            let resource = Arc::new(resource_from_otlp(
                resource_log.resource.as_ref(),
                scope_log.scope.as_ref(),
            ));
            for record in &scope_log.log_records {
                if let Err(reason) = push_log_record(&mut batch, record, &resource, observed_now) {
                    rejections.reject(|| format!("log record {index}: {reason}"));
                }
                index += 1;
            }
        }
    }
    rejections.into_converted(batch, "log records")
}

/// Converts a [`LogBatch`] into OTLP: one `ResourceLogs` per distinct set of resource attributes,
/// one `ScopeLogs` per scope under it, records in batch order within each.
pub fn logs_to_otlp(batch: &LogBatch) -> Vec<ResourceLogs> {
    // For each resource entry of the batch met so far: its ResourceLogs and ScopeLogs positions.
    let mut out: Vec<ResourceLogs> = Vec::new();
    let mut groups: Vec<(Arc<Resource>, usize, usize)> = Vec::new();
    for index in 0..batch.len() {
        let resource = batch.resource_of(index);
        let (resource_position, scope_position) = match groups
            .iter()
            .rfind(|(known, ..)| Arc::ptr_eq(known, resource) || **known == **resource)
        {
            Some((_, resource_position, scope_position)) => (*resource_position, *scope_position),
            None => {
                let resource_position = match out.iter().position(|existing| {
                    existing
                        .resource
                        .as_ref()
                        .is_some_and(|r| same_attributes(&r.attributes, &resource.attributes))
                }) {
                    Some(position) => position,
                    None => {
                        out.push(ResourceLogs {
                            resource: Some(OtlpResource {
                                attributes: attributes_to_otlp(&resource.attributes),
                                ..OtlpResource::default()
                            }),
                            ..ResourceLogs::default()
                        });
                        out.len() - 1
                    }
                };
                let scopes = &mut out[resource_position].scope_logs;
                scopes.push(ScopeLogs {
                    scope: scope_to_otlp(resource),
                    ..ScopeLogs::default()
                });
                let scope_position = scopes.len() - 1;
                groups.push((resource.clone(), resource_position, scope_position));
                (resource_position, scope_position)
            }
        };
        out[resource_position].scope_logs[scope_position]
            .log_records
            .push(log_record_to_otlp(batch, index));
    }
    out
}

fn same_attributes(otlp: &[KeyValue], model: &[(String, AttributeValue)]) -> bool {
    otlp.len() == model.len()
        && otlp.iter().zip(model).all(|(pair, (key, value))| {
            pair.key == *key && attribute_from_otlp(pair.value.as_ref()) == *value
        })
}

fn scope_to_otlp(resource: &Resource) -> Option<InstrumentationScope> {
    if resource.scope_name.is_empty() && resource.scope_version.is_empty() {
        return None;
    }
    Some(InstrumentationScope {
        name: resource.scope_name.clone(),
        version: resource.scope_version.clone(),
        ..InstrumentationScope::default()
    })
}

fn id_to_otlp(id: &[u8]) -> Vec<u8> {
    if id.iter().all(|byte| *byte == 0) {
        Vec::new()
    } else {
        id.to_vec()
    }
}

fn log_record_to_otlp(batch: &LogBatch, index: usize) -> OtlpLogRecord {
    let body = batch.bodies().get(index);
    OtlpLogRecord {
        time_unix_nano: u64::try_from(batch.timestamps()[index]).unwrap_or(0),
        observed_time_unix_nano: u64::try_from(batch.observed_timestamps()[index]).unwrap_or(0),
        severity_number: i32::from(batch.severity_numbers()[index]),
        severity_text: batch.severity_texts().get(index).to_owned(),
        body: (!body.is_empty()).then(|| AnyValue {
            value: Some(any_value::Value::StringValue(body.to_owned())),
        }),
        attributes: batch
            .attributes_of(index)
            .map(|(key, value)| KeyValue {
                key: key.to_owned(),
                value: Some(attribute_to_otlp(value)),
                ..KeyValue::default()
            })
            .collect(),
        trace_id: id_to_otlp(&batch.trace_ids()[index * 16..index * 16 + 16]),
        span_id: id_to_otlp(&batch.span_ids()[index * 8..index * 8 + 8]),
        ..OtlpLogRecord::default()
    }
}

/// Why a span is invalid, if it is: trace and span ids must be 16 and 8 bytes and not all zero,
/// a parent span id empty or 8 bytes.
fn span_problem(span: &Span) -> Option<String> {
    let valid_id = |id: &[u8], length: usize| id.len() == length && id.iter().any(|b| *b != 0);
    if !valid_id(&span.trace_id, 16) {
        return Some(format!(
            "trace_id must be 16 bytes, not all zero (got {} bytes)",
            span.trace_id.len()
        ));
    }
    if !valid_id(&span.span_id, 8) {
        return Some(format!(
            "span_id must be 8 bytes, not all zero (got {} bytes)",
            span.span_id.len()
        ));
    }
    if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
        return Some(format!(
            "parent_span_id must be 8 bytes or empty (got {} bytes)",
            span.parent_span_id.len()
        ));
    }
    None
}

/// Takes the spans of one export request, leaving out and counting invalid spans (see
/// `span_problem`); scopes and resources left empty are removed.
pub fn spans_from_otlp(mut resource_spans: Vec<ResourceSpans>) -> Converted<SpanBatch> {
    let mut rejections = Rejections::default();
    let mut index = 0usize;
    for resource in &mut resource_spans {
        for scope in &mut resource.scope_spans {
            scope.spans.retain(|span| {
                let problem = span_problem(span);
                if let Some(problem) = problem.as_ref() {
                    rejections.reject(|| format!("span {index} `{}`: {problem}", span.name));
                }
                index += 1;
                problem.is_none()
            });
        }
        resource.scope_spans.retain(|scope| !scope.spans.is_empty());
    }
    resource_spans.retain(|resource| !resource.scope_spans.is_empty());
    rejections.into_converted(SpanBatch { resource_spans }, "spans")
}

/// Takes the metrics of one export request, leaving out and counting gauge and sum points that
/// carry no value (the OTLP data model calls them invalid).
pub fn metrics_from_otlp(mut resource_metrics: Vec<ResourceMetrics>) -> Converted<MetricBatch> {
    let mut rejections = Rejections::default();
    for resource in &mut resource_metrics {
        for scope in &mut resource.scope_metrics {
            for metric in &mut scope.metrics {
                let points: Option<&mut Vec<NumberDataPoint>> = match &mut metric.data {
                    Some(metric::Data::Gauge(gauge)) => Some(&mut gauge.data_points),
                    Some(metric::Data::Sum(sum)) => Some(&mut sum.data_points),
                    _ => None,
                };
                if let Some(points) = points {
                    let name = &metric.name;
                    points.retain(|point| {
                        if point.value.is_none() {
                            rejections
                                .reject(|| format!("metric `{name}`: a data point has no value"));
                        }
                        point.value.is_some()
                    });
                }
            }
        }
    }
    rejections.into_converted(MetricBatch { resource_metrics }, "data points")
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::metrics::v1::{Gauge, Metric, ScopeMetrics, number_data_point};
    use opentelemetry_proto::tonic::trace::v1::ScopeSpans;

    use super::*;

    fn string(text: &str) -> AnyValue {
        AnyValue {
            value: Some(any_value::Value::StringValue(text.into())),
        }
    }

    fn pair(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    fn resource(service: &str) -> Option<OtlpResource> {
        Some(OtlpResource {
            attributes: vec![pair(
                "service.name",
                any_value::Value::StringValue(service.into()),
            )],
            ..OtlpResource::default()
        })
    }

    fn scope(name: &str) -> Option<InstrumentationScope> {
        Some(InstrumentationScope {
            name: name.into(),
            version: "1.2.3".into(),
            ..InstrumentationScope::default()
        })
    }

    fn log(body: &str, severity: i32) -> OtlpLogRecord {
        OtlpLogRecord {
            time_unix_nano: 1_700_000_000_000_000_000,
            observed_time_unix_nano: 1_700_000_000_000_000_001,
            severity_number: severity,
            severity_text: "WARN".into(),
            body: Some(string(body)),
            attributes: vec![
                pair("user", any_value::Value::StringValue("ann".into())),
                pair("count", any_value::Value::IntValue(-3)),
                pair("ratio", any_value::Value::DoubleValue(0.5)),
                pair("ok", any_value::Value::BoolValue(true)),
                pair("raw", any_value::Value::BytesValue(vec![0, 1, 255])),
            ],
            trace_id: (1..=16).collect(),
            span_id: (1..=8).collect(),
            ..OtlpLogRecord::default()
        }
    }

    fn request() -> Vec<ResourceLogs> {
        vec![
            ResourceLogs {
                resource: resource("checkout"),
                scope_logs: vec![
                    ScopeLogs {
                        scope: scope("http"),
                        log_records: vec![log("a", 13), log("b", 17)],
                        ..ScopeLogs::default()
                    },
                    ScopeLogs {
                        scope: scope("db"),
                        log_records: vec![log("c", 9)],
                        ..ScopeLogs::default()
                    },
                ],
                ..ResourceLogs::default()
            },
            ResourceLogs {
                resource: resource("payments"),
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records: vec![OtlpLogRecord {
                        body: Some(string("d")),
                        ..OtlpLogRecord::default()
                    }],
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            },
        ]
    }

    #[test]
    fn logs_round_trip_through_the_model() {
        let original = request();
        let converted = logs_from_otlp(&original, 42);
        assert_eq!(converted.rejected, 0);
        assert_eq!(converted.error_message, "");
        let batch = converted.batch;
        assert_eq!(batch.len(), 4);

        let first = batch.record(0);
        assert_eq!(first.timestamp, 1_700_000_000_000_000_000);
        assert_eq!(first.observed_timestamp, 1_700_000_000_000_000_001);
        assert_eq!(first.severity_number, 13);
        assert_eq!(first.severity_text, "WARN");
        assert_eq!(first.body, "a");
        assert_eq!(first.trace_id.to_vec(), (1..=16).collect::<Vec<u8>>());
        assert_eq!(first.span_id.to_vec(), (1..=8).collect::<Vec<u8>>());
        assert_eq!(
            first.attributes[4].1,
            AttributeValue::Bytes(vec![0, 1, 255])
        );
        assert_eq!(first.resource.service_name(), Some("checkout"));
        assert_eq!(first.resource.scope_name, "http");
        assert_eq!(first.resource.scope_version, "1.2.3");
        // No observed time: the gateway's clock fills it in.
        assert_eq!(batch.record(3).observed_timestamp, 42);

        let mut expected = original;
        expected[1].scope_logs[0].log_records[0].observed_time_unix_nano = 42;
        assert_eq!(logs_to_otlp(&batch), expected);
    }

    #[test]
    fn structured_bodies_and_nested_attributes_become_json_text() {
        let nested = any_value::Value::KvlistValue(KeyValueList {
            values: vec![
                pair("n", any_value::Value::IntValue(1)),
                pair(
                    "list",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: vec![string("x"), AnyValue { value: None }],
                    }),
                ),
            ],
        });
        let record = OtlpLogRecord {
            body: Some(AnyValue {
                value: Some(nested.clone()),
            }),
            attributes: vec![
                pair("nested", nested),
                KeyValue {
                    key: "empty".into(),
                    ..KeyValue::default()
                },
            ],
            ..OtlpLogRecord::default()
        };
        let request = vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }];
        let converted = logs_from_otlp(&request, 1).batch.record(0);
        assert_eq!(converted.body, r#"{"list":["x",null],"n":1}"#);
        assert_eq!(
            converted.attributes,
            vec![
                (
                    "nested".to_string(),
                    AttributeValue::from(r#"{"list":["x",null],"n":1}"#)
                ),
                ("empty".to_string(), AttributeValue::from("")),
            ]
        );
    }

    #[test]
    fn invalid_log_records_are_rejected_alone() {
        let mut request = request();
        let records = &mut request[0].scope_logs[0].log_records;
        records[0].trace_id = vec![1, 2, 3];
        records[1].severity_number = 99;
        let converted = logs_from_otlp(&request, 1);
        assert_eq!(converted.rejected, 2);
        assert_eq!(
            converted.error_message,
            "log record 0: trace_id must be 16 bytes or empty, got 3 bytes (and 1 more invalid log records)"
        );
        let bodies: Vec<_> = converted.batch.bodies().iter().collect();
        assert_eq!(bodies, ["c", "d"]);
    }

    #[test]
    fn invalid_spans_are_rejected_alone() {
        let span = |name: &str, trace_id: Vec<u8>| Span {
            name: name.into(),
            trace_id,
            span_id: vec![7; 8],
            ..Span::default()
        };
        let request = vec![ResourceSpans {
            resource: resource("checkout"),
            scope_spans: vec![
                ScopeSpans {
                    spans: vec![span("good", vec![1; 16]), span("short", vec![1; 4])],
                    ..ScopeSpans::default()
                },
                ScopeSpans {
                    spans: vec![span("zero", vec![0; 16])],
                    ..ScopeSpans::default()
                },
            ],
            ..ResourceSpans::default()
        }];
        let converted = spans_from_otlp(request);
        assert_eq!(converted.rejected, 2);
        assert!(converted.error_message.starts_with("span 1 `short`"));
        assert_eq!(converted.batch.len(), 1);
        assert_eq!(converted.batch.resource_spans[0].scope_spans.len(), 1);
    }

    #[test]
    fn number_points_without_value_are_rejected_alone() {
        let point = |value| NumberDataPoint {
            value,
            ..NumberDataPoint::default()
        };
        let request = vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "queue.depth".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![
                            point(Some(number_data_point::Value::AsInt(3))),
                            point(None),
                        ],
                    })),
                    ..Metric::default()
                }],
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }];
        let converted = metrics_from_otlp(request);
        assert_eq!(converted.rejected, 1);
        assert_eq!(converted.batch.len(), 1);
        assert_eq!(
            converted.error_message,
            "metric `queue.depth`: a data point has no value"
        );
    }
}
