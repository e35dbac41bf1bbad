//! Prometheus remote-write 1.0 receiver: `POST` of a snappy-compressed (block format) protobuf
//! `prometheus.WriteRequest` becomes metric points
//! (<https://prometheus.io/docs/specs/prw/remote_write_spec/>).
//!
//! Mapping: one `ResourceMetrics` per distinct (`job`, `instance`) label pair, with resource
//! attributes `service.name` = job and `service.instance.id` = instance (each only when
//! non-empty); each series becomes (or joins) a gauge `Metric` named by its `__name__` label,
//! its other labels the data point attributes, each sample a `NumberDataPoint` (as a double,
//! time in Unix nanoseconds). A Prometheus staleness marker keeps its NaN value and carries
//! the `NO_RECORDED_VALUE` flag. Remote-write 1.0 carries no metric type, so every series is a
//! gauge.
//!
//! Answers: 204 when the intake took the batch; 400 for a body that does not decode (the
//! client must not retry it); 413 over `max_request_bytes` (compressed or decoded); 415 for a
//! request that is not `Content-Type: application/x-protobuf` with `Content-Encoding: snappy`
//! (remote-write 2.0 `io.prometheus.write.v2.Request` included); 503 with `Retry-After` when the
//! gateway cannot take it now (Prometheus retries 5xx with backoff). Delivery is at-least-once.
//! A series without `__name__` is skipped and counted as malformed; native histograms and
//! exemplars are skipped (logged once, counted in the log line); metadata is ignored.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
use prost::Message as _;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::http_body::status_of;
use super::http_body::{BodyError, read_bounded};
use super::{ReceiverContext, ReceiverStats};
use crate::model::{Batch, MetricBatch};

/// The remote-write 1.0 messages, from Prometheus' `prompb/remote.proto` and `prompb/types.proto`
/// (package `prometheus`):
///
/// ```proto
/// message WriteRequest { repeated TimeSeries timeseries = 1; reserved 2; repeated MetricMetadata metadata = 3; }
/// message TimeSeries { repeated Label labels = 1; repeated Sample samples = 2;
///                      repeated Exemplar exemplars = 3; repeated Histogram histograms = 4; }
/// message Label { string name = 1; string value = 2; }
/// message Sample { double value = 1; int64 timestamp = 2; }  // timestamp in milliseconds
/// ```
///
/// Fields this receiver skips are kept as raw bytes: they are counted, never decoded.
pub mod prompb {
    /// A batch of series.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        /// The series.
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        /// `MetricMetadata` messages, undecoded.
        #[prost(bytes = "vec", repeated, tag = "3")]
        pub metadata: Vec<Vec<u8>>,
    }

    /// One series: its labels and samples.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Labels, `__name__` among them, sorted by name.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// Samples, oldest first.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        /// `Exemplar` messages, undecoded.
        #[prost(bytes = "vec", repeated, tag = "3")]
        pub exemplars: Vec<Vec<u8>>,
        /// Native `Histogram` messages, undecoded.
        #[prost(bytes = "vec", repeated, tag = "4")]
        pub histograms: Vec<Vec<u8>>,
    }

    /// A label pair.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        /// Label name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Label value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// A sample.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// The value.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Unix time in milliseconds.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
}

/// `type = "remote_write"` receiver settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteReceiverConfig {
    /// HTTP listen address, e.g. `127.0.0.1:9201`.
    pub address: SocketAddr,
    /// URL path Prometheus posts to (its `remote_write.url`). Default `/api/v1/write`.
    #[serde(default = "default_path")]
    pub path: String,
    /// Largest request, in bytes, both as sent (snappy) and decoded; a larger one is answered
    /// 413. Default 16777216 (16 MiB).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
}

fn default_path() -> String {
    "/api/v1/write".into()
}

fn default_max_request_bytes() -> usize {
    16 * 1024 * 1024
}

impl RemoteWriteReceiverConfig {
    /// Checks what serde cannot.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        if !self.path.starts_with('/') {
            problems.push(format!("{at}.path: `{}` must start with `/`", self.path));
        }
        if self.max_request_bytes == 0 {
            problems.push(format!("{at}.max_request_bytes: must be at least 1"));
        }
    }
}

/// Binds the listener (an error here means nothing started) and spawns the HTTP server, which
/// finishes the requests in hand at shutdown.
pub async fn start(
    config: &RemoteWriteReceiverConfig,
    context: ReceiverContext,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut problems = Vec::new();
    config.check(&format!("receivers.{}", context.name), &mut problems);
    if !problems.is_empty() {
        anyhow::bail!(problems.join("; "));
    }
    let listener = TcpListener::bind(config.address).await.map_err(|error| {
        anyhow::anyhow!(
            "receiver `{}`: cannot listen on HTTP {}: {error}",
            context.name,
            config.address
        )
    })?;
    let shutdown = context.shutdown.clone();
    let name = context.name.clone();
    let settings = Arc::new(Settings {
        max_request_bytes: config.max_request_bytes,
        warned_skipped: AtomicBool::new(false),
        context,
    });
    let app = Router::new()
        .route(&config.path, post(receive_write))
        .layer(DefaultBodyLimit::disable())
        .with_state(settings);
    Ok(vec![tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(receiver = %name, %error, "remote-write HTTP server failed");
        }
    })])
}

struct Settings {
    max_request_bytes: usize,
    /// Skipped histograms and exemplars are logged once per receiver.
    warned_skipped: AtomicBool,
    context: ReceiverContext,
}

fn answer(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).map(|value| value.to_str().unwrap_or("?"))
}

/// Checks the content type and encoding the 1.0 spec requires.
fn check_headers(headers: &HeaderMap) -> Result<(), String> {
    let encoding = header_text(headers, header::CONTENT_ENCODING).unwrap_or("");
    if !encoding.trim().eq_ignore_ascii_case("snappy") {
        return Err(format!(
            "Content-Encoding must be `snappy` (got `{encoding}`)"
        ));
    }
    let content_type = header_text(headers, header::CONTENT_TYPE).unwrap_or("");
    let mut parts = content_type.split(';').map(str::trim);
    let essence = parts.next().unwrap_or_default();
    if !essence.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(format!(
            "Content-Type must be `application/x-protobuf` (got `{content_type}`)"
        ));
    }
    for parameter in parts {
        if let Some((key, value)) = parameter.split_once('=')
            && key.trim().eq_ignore_ascii_case("proto")
            && value.trim().trim_matches('"') != "prometheus.WriteRequest"
        {
            return Err(format!(
                "only remote-write 1.0 (`prometheus.WriteRequest`) is accepted, not `{}`",
                value.trim()
            ));
        }
    }
    Ok(())
}

async fn receive_write(
    State(settings): State<Arc<Settings>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let context = &settings.context;
    ReceiverStats::add(&context.stats.requests, 1);
    let refuse = |status: StatusCode, message: String| {
        ReceiverStats::add(&context.stats.records_malformed, 1);
        tracing::debug!(receiver = %context.name, %status, "remote-write request refused: {message}");
        answer(status, message)
    };
    let body = match read_bounded(&headers, body, settings.max_request_bytes).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body is larger than max_request_bytes ({})",
                    settings.max_request_bytes
                ),
            );
        }
        Err(BodyError::Read(error)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {error}"),
            );
        }
    };
    if let Err(message) = check_headers(&headers) {
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, message);
    }
    let decoded_length = match snap::raw::decompress_len(&body) {
        Ok(length) => length,
        Err(error) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("the body is not snappy (block format): {error}"),
            );
        }
    };
    if decoded_length > settings.max_request_bytes {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the decoded body ({decoded_length} bytes) is larger than max_request_bytes ({})",
                settings.max_request_bytes
            ),
        );
    }
    let decoded = match snap::raw::Decoder::new().decompress_vec(&body) {
        Ok(decoded) => decoded,
        Err(error) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("the body is not snappy (block format): {error}"),
            );
        }
    };
    let request = match prompb::WriteRequest::decode(decoded.as_slice()) {
        Ok(request) => request,
        Err(error) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("the body is not a prometheus.WriteRequest: {error}"),
            );
        }
    };
    let (batch, skipped) = to_metrics(request);
    if skipped.unnamed_series > 0 {
        ReceiverStats::add(&context.stats.records_malformed, skipped.unnamed_series);
        tracing::warn!(
            receiver = %context.name,
            series = skipped.unnamed_series,
            "remote-write series without __name__ skipped"
        );
    }
    if (skipped.histograms > 0 || skipped.exemplars > 0)
        && !settings.warned_skipped.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(
            receiver = %context.name,
            histograms = skipped.histograms,
            exemplars = skipped.exemplars,
            "remote-write native histograms and exemplars are not supported and are skipped (logged once)"
        );
    }
    if batch.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    match context.submit(Batch::Metrics(batch)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => {
            let retry_after = error.retry_after_seconds();
            let mut response = answer(status_of(&error), format!("{error}"));
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            response
        }
    }
}

/// What a request held that does not become points.
#[derive(Debug, Default, PartialEq, Eq)]
struct Skipped {
    unnamed_series: usize,
    histograms: usize,
    exemplars: usize,
}

/// Prometheus' staleness marker: a NaN with this exact bit pattern.
const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
/// OTLP `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const FLAG_NO_RECORDED_VALUE: u32 = 1;

/// Points of one (job, instance) pair while a request is converted.
struct ResourceGroup {
    job: String,
    instance: String,
    metrics: Vec<Metric>,
    metric_index: HashMap<String, usize>,
}

fn string_attribute(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// Converts a request to OTLP metrics, grouping series by (job, instance).
fn to_metrics(request: prompb::WriteRequest) -> (MetricBatch, Skipped) {
    let mut skipped = Skipped::default();
    let mut groups: Vec<ResourceGroup> = Vec::new();
    let mut group_index: HashMap<(String, String), usize> = HashMap::new();
    for series in request.timeseries {
        skipped.histograms += series.histograms.len();
        skipped.exemplars += series.exemplars.len();
        let mut name = None;
        let mut job = String::new();
        let mut instance = String::new();
        let mut attributes = Vec::with_capacity(series.labels.len());
        for label in series.labels {
            match label.name.as_str() {
                "__name__" => name = Some(label.value),
                "job" => job = label.value,
                "instance" => instance = label.value,
                _ => attributes.push(string_attribute(&label.name, label.value)),
            }
        }
        let Some(name) = name.filter(|name| !name.is_empty()) else {
            skipped.unnamed_series += 1;
            continue;
        };
        if series.samples.is_empty() {
            continue;
        }
        let points: Vec<NumberDataPoint> = series
            .samples
            .iter()
            .map(|sample| NumberDataPoint {
                attributes: attributes.clone(),
                time_unix_nano: u64::try_from(sample.timestamp)
                    .unwrap_or(0)
                    .saturating_mul(1_000_000),
                value: Some(number_data_point::Value::AsDouble(sample.value)),
                flags: if sample.value.to_bits() == STALE_NAN_BITS {
                    FLAG_NO_RECORDED_VALUE
                } else {
                    0
                },
                ..NumberDataPoint::default()
            })
            .collect();
        let index = *group_index
            .entry((job.clone(), instance.clone()))
            .or_insert_with(|| {
                groups.push(ResourceGroup {
                    job,
                    instance,
                    metrics: Vec::new(),
                    metric_index: HashMap::new(),
                });
                groups.len() - 1
            });
        let group = &mut groups[index];
        match group.metric_index.get(&name) {
            Some(&metric) => {
                if let Some(metric::Data::Gauge(gauge)) = &mut group.metrics[metric].data {
                    gauge.data_points.extend(points);
                }
            }
            None => {
                group.metric_index.insert(name.clone(), group.metrics.len());
                group.metrics.push(Metric {
                    name,
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: points,
                    })),
                    ..Metric::default()
                });
            }
        }
    }
    let resource_metrics = groups
        .into_iter()
        .map(|group| {
            let mut attributes = Vec::new();
            if !group.job.is_empty() {
                attributes.push(string_attribute("service.name", group.job));
            }
            if !group.instance.is_empty() {
                attributes.push(string_attribute("service.instance.id", group.instance));
            }
            ResourceMetrics {
                resource: Some(OtlpResource {
                    attributes,
                    ..OtlpResource::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: group.metrics,
                    ..ScopeMetrics::default()
                }],
                ..ResourceMetrics::default()
            }
        })
        .collect();
    (MetricBatch { resource_metrics }, skipped)
}

#[cfg(test)]
mod tests {
    use super::prompb::{Label, Sample, TimeSeries, WriteRequest};
    use super::*;

    fn series(labels: &[(&str, &str)], samples: &[(f64, i64)]) -> TimeSeries {
        TimeSeries {
            labels: labels
                .iter()
                .map(|(name, value)| Label {
                    name: (*name).into(),
                    value: (*value).into(),
                })
                .collect(),
            samples: samples
                .iter()
                .map(|&(value, timestamp)| Sample { value, timestamp })
                .collect(),
            ..TimeSeries::default()
        }
    }

    #[test]
    fn groups_by_job_and_instance_and_merges_series_of_one_name() {
        let request = WriteRequest {
            timeseries: vec![
                series(
                    &[("__name__", "up"), ("instance", "a:9100"), ("job", "node")],
                    &[(1.0, 1000)],
                ),
                series(
                    &[
                        ("__name__", "temp"),
                        ("instance", "a:9100"),
                        ("job", "node"),
                        ("room", "x"),
                    ],
                    &[(20.5, 1000), (f64::from_bits(STALE_NAN_BITS), 2000)],
                ),
                series(
                    &[
                        ("__name__", "temp"),
                        ("instance", "a:9100"),
                        ("job", "node"),
                        ("room", "y"),
                    ],
                    &[(19.0, 1000)],
                ),
                series(&[("instance", "b"), ("job", "node")], &[(3.0, 1000)]),
                series(&[("__name__", "up"), ("job", "other")], &[(0.0, 1000)]),
            ],
            metadata: vec![vec![1, 2, 3]],
        };
        let (batch, skipped) = to_metrics(request);
        assert_eq!(skipped.unnamed_series, 1);
        assert_eq!(batch.len(), 5);
        assert_eq!(batch.resource_metrics.len(), 2);
        let node = &batch.resource_metrics[0];
        let attributes = &node.resource.as_ref().unwrap().attributes;
        assert_eq!(attributes.len(), 2);
        assert_eq!(attributes[0].key, "service.name");
        assert_eq!(attributes[1].key, "service.instance.id");
        let metrics = &node.scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 2);
        assert_eq!(metrics[1].name, "temp");
        let Some(metric::Data::Gauge(gauge)) = &metrics[1].data else {
            panic!("gauge expected")
        };
        assert_eq!(gauge.data_points.len(), 3);
        assert_eq!(gauge.data_points[0].time_unix_nano, 1_000_000_000);
        assert_eq!(gauge.data_points[0].attributes[0].key, "room");
        assert_eq!(gauge.data_points[1].flags, FLAG_NO_RECORDED_VALUE);
        let other = &batch.resource_metrics[1];
        assert_eq!(other.resource.as_ref().unwrap().attributes.len(), 1);
    }

    #[test]
    fn requires_snappy_protobuf_of_version_one() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        assert!(check_headers(&headers).is_ok());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf;proto=prometheus.WriteRequest"),
        );
        assert!(check_headers(&headers).is_ok());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf;proto=io.prometheus.write.v2.Request"),
        );
        assert!(check_headers(&headers).is_err());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(check_headers(&headers).is_err());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(check_headers(&headers).is_err());
    }
}
