//! The OTLP receiver, driven by real clients over real sockets: the Rust `opentelemetry-otlp`
//! exporters, the Python SDK's exporters, and hand-made requests for the error cases. Each test
//! starts the receiver at library level and reads what reaches the intake.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut};
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::{InstrumentationScope, KeyValue as SdkKeyValue};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord as OtlpLogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use opentelemetry_sdk::Resource as SdkResource;
use prost::Message;
use sluice::intake::{Envelope, Intake};
use sluice::model::{AttributeValue, Batch, LogRecord};
use sluice::receivers::otlp::{self, OtlpReceiverConfig, rpc};
use sluice::receivers::{ReceiverContext, ReceiverStats};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

const LOGS_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// A receiver running on free ports, with its intake's other end.
struct Running {
    grpc: SocketAddr,
    http: SocketAddr,
    intake: mpsc::Receiver<Envelope>,
    shutdown: CancellationToken,
    stats: Arc<ReceiverStats>,
    tasks: Vec<JoinHandle<()>>,
}

async fn start_receiver(intake_capacity: usize, max_request_bytes: usize) -> Running {
    let grpc: SocketAddr = format!("127.0.0.1:{}", support::free_port())
        .parse()
        .unwrap();
    let http_address: SocketAddr = format!("127.0.0.1:{}", support::free_port())
        .parse()
        .unwrap();
    let (intake, receiver) = Intake::new(intake_capacity, Duration::from_millis(200));
    let shutdown = CancellationToken::new();
    let stats = Arc::new(ReceiverStats::default());
    let context = ReceiverContext {
        name: "otlp".into(),
        intake,
        shutdown: shutdown.clone(),
        stats: stats.clone(),
    };
    let config = OtlpReceiverConfig {
        grpc: Some(grpc),
        http: Some(http_address),
        max_request_bytes,
    };
    let tasks = otlp::start(&config, context)
        .await
        .expect("receiver starts");
    Running {
        grpc,
        http: http_address,
        intake: receiver,
        shutdown,
        stats,
        tasks,
    }
}

/// Everything that reached the intake, by signal.
#[derive(Default)]
struct Received {
    logs: Vec<LogRecord>,
    metrics: Vec<ResourceMetrics>,
    spans: Vec<ResourceSpans>,
}

impl Received {
    fn span_count(&self) -> usize {
        self.spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len())
            .sum()
    }

    /// `(shop attribute, value)` of every point of the `orders` sum.
    fn orders(&self) -> Vec<(String, i64)> {
        let mut points: Vec<(String, i64)> = self
            .metrics
            .iter()
            .flat_map(|resource| &resource.scope_metrics)
            .flat_map(|scope| &scope.metrics)
            .filter(|metric| metric.name == "orders")
            .flat_map(|metric| match &metric.data {
                Some(metric::Data::Sum(sum)) => sum.data_points.clone(),
                other => panic!("orders is not a sum: {other:?}"),
            })
            .map(|point| {
                let shop = point
                    .attributes
                    .iter()
                    .find(|pair| pair.key == "shop")
                    .and_then(|pair| pair.value.as_ref())
                    .and_then(|value| match &value.value {
                        Some(any_value::Value::StringValue(text)) => Some(text.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                let value = match point.value {
                    Some(number_data_point::Value::AsInt(value)) => value,
                    Some(number_data_point::Value::AsDouble(value)) => value as i64,
                    None => panic!("point without value"),
                };
                (shop, value)
            })
            .collect();
        points.sort();
        points
    }
}

/// Reads the intake until `done` says enough has arrived (at most 10 s).
async fn receive_until(
    intake: &mut mpsc::Receiver<Envelope>,
    done: impl Fn(&Received) -> bool,
) -> Received {
    let mut received = Received::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(&received) {
        let envelope = tokio::time::timeout_at(deadline, intake.recv())
            .await
            .expect("timed out waiting for the intake")
            .expect("intake closed");
        assert_eq!(&*envelope.receiver, "otlp");
        match envelope.batch {
            Batch::Logs(batch) => received.logs.extend(batch.records()),
            Batch::Metrics(batch) => received.metrics.extend(batch.resource_metrics),
            Batch::Spans(batch) => received.spans.extend(batch.resource_spans),
            Batch::Lines(_) => panic!("the OTLP receiver sent raw lines"),
        }
    }
    received
}

fn attribute<'a>(record: &'a LogRecord, key: &str) -> Option<&'a AttributeValue> {
    record
        .attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, value)| value)
}

fn otlp_string(text: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(text.into())),
    })
}

/// A logs request of `count` records from service `svc`, each body "record N".
fn logs_request(count: usize) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(OtlpResource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: otlp_string("svc"),
                    ..KeyValue::default()
                }],
                ..OtlpResource::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: (0..count)
                    .map(|index| OtlpLogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000 + index as u64,
                        severity_number: 9,
                        body: otlp_string(&format!("record {index}")),
                        trace_id: vec![7; 16],
                        span_id: vec![8; 8],
                        ..OtlpLogRecord::default()
                    })
                    .collect(),
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

async fn logs_client(address: SocketAddr) -> LogsServiceClient<Channel> {
    LogsServiceClient::connect(format!("http://{address}"))
        .await
        .expect("connects")
}

/// Sends raw bytes as the body of a gRPC call, to reach the server with what no generated
/// client would encode.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

async fn raw_grpc(address: SocketAddr, path: &'static str, body: Vec<u8>) -> tonic::Status {
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(body),
        http::uri::PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .expect_err("the raw request must fail")
}

fn sdk_resource(service: &'static str) -> SdkResource {
    SdkResource::builder()
        .with_service_name(service)
        .with_attribute(SdkKeyValue::new("deployment.environment", "test"))
        .build()
}

fn sdk_scope() -> InstrumentationScope {
    InstrumentationScope::builder("rust-scope")
        .with_version("0.9")
        .build()
}

/// What `emit_with_rust_sdk` sent, to compare with what arrived.
struct SentByRust {
    trace_id: [u8; 16],
    span_id: [u8; 8],
}

/// Emits two log records, two spans and a counter through the Rust SDK with the given
/// exporters, then shuts the providers down (which flushes them).
fn emit_with_rust_sdk(
    logs: opentelemetry_otlp::LogExporter,
    spans: opentelemetry_otlp::SpanExporter,
    metrics: opentelemetry_otlp::MetricExporter,
) -> SentByRust {
    let logger_provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
        .with_resource(sdk_resource("rust-app"))
        .with_batch_exporter(logs)
        .build();
    let tracer_provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_resource(sdk_resource("rust-app"))
        .with_batch_exporter(spans)
        .build();
    let meter_provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_resource(sdk_resource("rust-app"))
        .with_periodic_exporter(metrics)
        .build();

    let tracer = tracer_provider.tracer_with_scope(sdk_scope());
    let parent = tracer.start("parent");
    let parent_context = opentelemetry::Context::current_with_span(parent);
    let mut child = tracer.start_with_context("child", &parent_context);
    child.set_attribute(SdkKeyValue::new("http.route", "/checkout"));
    let trace_id = child.span_context().trace_id();
    let span_id = child.span_context().span_id();

    let logger = logger_provider.logger_with_scope(sdk_scope());
    for (severity, text, body, item) in [
        (Severity::Warn, "WARN", "low stock", "apple"),
        (Severity::Error, "ERROR", "payment failed", "pear"),
    ] {
        let mut record = logger.create_log_record();
        record.set_severity_number(severity);
        record.set_severity_text(text);
        record.set_body(body.into());
        record.set_trace_context(trace_id, span_id, None);
        record.add_attribute("item", item);
        record.add_attribute("left", 3_i64);
        logger.emit(record);
    }
    child.end();
    drop(parent_context);

    let orders = meter_provider
        .meter_with_scope(sdk_scope())
        .u64_counter("orders")
        .build();
    orders.add(5, &[SdkKeyValue::new("shop", "north")]);
    orders.add(2, &[SdkKeyValue::new("shop", "south")]);

    logger_provider.shutdown().expect("logs flushed");
    tracer_provider.shutdown().expect("spans flushed");
    meter_provider.shutdown().expect("metrics flushed");
    SentByRust {
        trace_id: trace_id.to_bytes(),
        span_id: span_id.to_bytes(),
    }
}

/// Checks what `emit_with_rust_sdk` or `tests/python/otlp_send.py` sent, as it reached the
/// intake: two log records, two spans, two counter points, all from `service`.
fn assert_sdk_data(
    received: &Received,
    service: &str,
    scope: (&str, &str),
    trace_id: [u8; 16],
    span_id: [u8; 8],
) {
    assert_eq!(received.logs.len(), 2, "log records");
    let warn = &received.logs[0];
    assert_eq!(warn.body, "low stock");
    assert_eq!(warn.severity_number, 13);
    assert_eq!(warn.severity_text, "WARN");
    assert_eq!(
        attribute(warn, "item"),
        Some(&AttributeValue::from("apple"))
    );
    assert_eq!(attribute(warn, "left"), Some(&AttributeValue::Int(3)));
    let error = &received.logs[1];
    assert_eq!(error.body, "payment failed");
    assert_eq!(error.severity_number, 17);
    assert_eq!(error.severity_text, "ERROR");
    assert_eq!(
        attribute(error, "item"),
        Some(&AttributeValue::from("pear"))
    );
    for record in &received.logs {
        assert_eq!(record.trace_id, trace_id);
        assert_eq!(record.span_id, span_id);
        assert!(record.timestamp > 0 || record.observed_timestamp > 0);
        assert_eq!(record.resource.service_name(), Some(service));
        assert_eq!(
            record.resource.attribute("deployment.environment"),
            Some(&AttributeValue::from("test"))
        );
        assert_eq!(record.resource.scope_name, scope.0);
        assert_eq!(record.resource.scope_version, scope.1);
    }

    assert_eq!(received.span_count(), 2, "spans");
    let spans: Vec<_> = received
        .spans
        .iter()
        .flat_map(|resource| &resource.scope_spans)
        .flat_map(|scope| &scope.spans)
        .collect();
    let child = spans.iter().find(|span| span.name == "child").unwrap();
    let parent = spans.iter().find(|span| span.name == "parent").unwrap();
    assert_eq!(child.trace_id, trace_id);
    assert_eq!(child.span_id, span_id);
    assert_eq!(child.parent_span_id, parent.span_id);
    assert!(
        child
            .attributes
            .iter()
            .any(|pair| pair.key == "http.route" && pair.value == otlp_string("/checkout"))
    );
    for resource in &received.spans {
        let service_name = resource
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|pair| pair.key == "service.name"))
            .and_then(|pair| pair.value.clone());
        assert_eq!(service_name, otlp_string(service));
    }

    assert_eq!(
        received.orders(),
        vec![("north".to_string(), 5), ("south".to_string(), 2)]
    );
}

fn sdk_data_complete(received: &Received) -> bool {
    received.logs.len() >= 2 && received.span_count() >= 2 && received.orders().len() >= 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_over_grpc_arrives_as_sent() {
    use opentelemetry_otlp::WithExportConfig;
    let mut receiver = start_receiver(64, 4 << 20).await;
    let endpoint = format!("http://{}", receiver.grpc);
    let logs = opentelemetry_otlp::LogExporter::builder()
        .with_tonic()
        .with_endpoint(&endpoint)
        .build()
        .unwrap();
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(&endpoint)
        .build()
        .unwrap();
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint(&endpoint)
        .build()
        .unwrap();
    let sent = tokio::task::spawn_blocking(move || emit_with_rust_sdk(logs, spans, metrics))
        .await
        .unwrap();
    let received = receive_until(&mut receiver.intake, sdk_data_complete).await;
    assert_sdk_data(
        &received,
        "rust-app",
        ("rust-scope", "0.9"),
        sent.trace_id,
        sent.span_id,
    );
    assert_eq!(
        receiver
            .stats
            .records_accepted
            .load(std::sync::atomic::Ordering::Relaxed),
        6
    );
}

/// Runs `tests/python/otlp_send.py` and returns the ids it printed.
async fn send_with_python(protocol: &str, endpoint: String) -> ([u8; 16], [u8; 8]) {
    let script = support::workspace_root().join("tests/python/otlp_send.py");
    let output = tokio::process::Command::new(support::python())
        .arg(script)
        .arg(protocol)
        .arg(endpoint)
        .output()
        .await
        .expect("python runs");
    assert!(
        output.status.success(),
        "otlp_send.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ids: serde_json::Value = serde_json::from_slice(&output.stdout).expect("ids printed");
    let mut trace_id = [0; 16];
    hex::decode_to_slice(ids["trace_id"].as_str().unwrap(), &mut trace_id).unwrap();
    let mut span_id = [0; 8];
    hex::decode_to_slice(ids["span_id"].as_str().unwrap(), &mut span_id).unwrap();
    (trace_id, span_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_grpc_arrives_as_sent() {
    let mut receiver = start_receiver(64, 4 << 20).await;
    let (trace_id, span_id) = send_with_python("grpc", format!("http://{}", receiver.grpc)).await;
    let received = receive_until(&mut receiver.intake, sdk_data_complete).await;
    assert_sdk_data(
        &received,
        "python-app",
        ("py-scope", "0.1"),
        trace_id,
        span_id,
    );
}

#[tokio::test]
async fn grpc_refuses_malformed_and_oversized_requests_and_keeps_serving() {
    let mut receiver = start_receiver(64, 64 * 1024).await;

    // A length-delimited field whose length runs past the end of the message.
    let status = raw_grpc(receiver.grpc, LOGS_PATH, vec![0x0a, 0x05, 0x01]).await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("malformed"), "{status:?}");

    // Over the 64 KiB limit, plain and gzip-compressed.
    let mut client = logs_client(receiver.grpc).await;
    let status = client.export(logs_request(4000)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    let mut gzip_client = logs_client(receiver.grpc)
        .await
        .send_compressed(CompressionEncoding::Gzip);
    let status = gzip_client.export(logs_request(4000)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    // Neither carries RetryInfo: the client must not retry.
    assert!(rpc::Status::decode(status.details()).map_or(true, |s| s.retry_delay().is_none()));

    // The server still serves well-formed requests, gzip included.
    let response = gzip_client.export(logs_request(3)).await.unwrap();
    assert_eq!(response.into_inner(), ExportLogsServiceResponse::default());
    let received = receive_until(&mut receiver.intake, |r| r.logs.len() >= 3).await;
    assert_eq!(received.logs[2].body, "record 2");
    assert_eq!(received.logs[2].trace_id, [7; 16]);
    assert_eq!(
        receiver
            .stats
            .records_malformed
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    assert!(receiver.intake.try_recv().is_err(), "nothing else arrived");
}

#[tokio::test]
async fn grpc_partial_success_rejects_only_the_invalid_record() {
    let mut receiver = start_receiver(64, 4 << 20).await;
    let mut request = logs_request(3);
    request.resource_logs[0].scope_logs[0].log_records[1].trace_id = vec![1, 2, 3];
    let response = logs_client(receiver.grpc)
        .await
        .export(request)
        .await
        .unwrap()
        .into_inner();
    let partial = response.partial_success.expect("partial success");
    assert_eq!(partial.rejected_log_records, 1);
    assert!(
        partial.error_message.contains("trace_id"),
        "{}",
        partial.error_message
    );
    let received = receive_until(&mut receiver.intake, |r| r.logs.len() >= 2).await;
    let bodies: Vec<_> = received.logs.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["record 0", "record 2"]);
}

#[tokio::test]
async fn grpc_answers_resource_exhausted_with_retry_info_when_the_intake_is_full() {
    let receiver = start_receiver(1, 4 << 20).await;
    let mut client = logs_client(receiver.grpc).await;
    // The first batch fills the intake (nobody reads it); the second cannot get in.
    client.export(logs_request(1)).await.unwrap();
    let status = client.export(logs_request(1)).await.unwrap_err();
    // RESOURCE_EXHAUSTED with RetryInfo: retryable for OTLP clients.
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    let details = rpc::Status::decode(status.details()).expect("google.rpc.Status details");
    assert_eq!(details.retry_delay(), Some(Duration::from_secs(1)));
    assert_eq!(
        receiver
            .stats
            .requests_refused
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        receiver
            .stats
            .records_malformed
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "a full intake is not a malformed request"
    );
}

#[tokio::test]
async fn start_fails_on_a_port_in_use_and_shutdown_stops_the_server() {
    let receiver = start_receiver(4, 4 << 20).await;

    // A second receiver on an address in use refuses to start and says which.
    for (grpc, http, taken) in [
        (Some(receiver.grpc), None, receiver.grpc),
        (None, Some(receiver.http), receiver.http),
    ] {
        let (intake, _rx) = Intake::new(4, Duration::from_millis(10));
        let context = ReceiverContext {
            name: "second".into(),
            intake,
            shutdown: CancellationToken::new(),
            stats: Arc::default(),
        };
        let config = OtlpReceiverConfig {
            grpc,
            http,
            max_request_bytes: 1024,
        };
        let error = otlp::start(&config, context).await.unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains(&taken.to_string()), "{message}");
        assert!(message.contains("receiver `second`"), "{message}");
    }

    receiver.shutdown.cancel();
    for task in receiver.tasks {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("server stops on shutdown")
            .unwrap();
    }
    for address in [receiver.grpc, receiver.http] {
        assert!(
            tokio::net::TcpStream::connect(address).await.is_err(),
            "nothing listens on {address} after shutdown"
        );
    }
}

// ── OTLP/HTTP ──────────────────────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_over_http_protobuf_and_json_arrives_as_sent() {
    use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
    for protocol in [Protocol::HttpBinary, Protocol::HttpJson] {
        let mut receiver = start_receiver(64, 4 << 20).await;
        let address = receiver.http;
        // The SDK exports from threads of its own, outside Tokio: give it the blocking client,
        // built (and dropped) on a blocking thread too.
        let sent = tokio::task::spawn_blocking(move || {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let endpoint = |signal: &str| format!("http://{address}/v1/{signal}");
            let logs = opentelemetry_otlp::LogExporter::builder()
                .with_http()
                .with_http_client(reqwest::blocking::Client::new())
                .with_protocol(protocol)
                .with_endpoint(endpoint("logs"))
                .build()
                .unwrap();
            let spans = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(reqwest::blocking::Client::new())
                .with_protocol(protocol)
                .with_endpoint(endpoint("traces"))
                .build()
                .unwrap();
            let metrics = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_http_client(reqwest::blocking::Client::new())
                .with_protocol(protocol)
                .with_endpoint(endpoint("metrics"))
                .build()
                .unwrap();
            emit_with_rust_sdk(logs, spans, metrics)
        })
        .await
        .unwrap();
        let received = receive_until(&mut receiver.intake, sdk_data_complete).await;
        assert_sdk_data(
            &received,
            "rust-app",
            ("rust-scope", "0.9"),
            sent.trace_id,
            sent.span_id,
        );
        assert_eq!(
            receiver
                .stats
                .records_malformed
                .load(std::sync::atomic::Ordering::Relaxed),
            0,
            "{protocol:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_http_arrives_as_sent() {
    let mut receiver = start_receiver(64, 4 << 20).await;
    let (trace_id, span_id) = send_with_python("http", format!("http://{}", receiver.http)).await;
    let received = receive_until(&mut receiver.intake, sdk_data_complete).await;
    assert_sdk_data(
        &received,
        "python-app",
        ("py-scope", "0.1"),
        trace_id,
        span_id,
    );
}

fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// POSTs `body` to `path` with these headers.
async fn post(
    client: &reqwest::Client,
    receiver: &Running,
    path: &str,
    content_type: &str,
    content_encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = client
        .post(format!("http://{}{path}", receiver.http))
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = content_encoding {
        request = request.header("content-encoding", encoding);
    }
    request.send().await.expect("the receiver answers")
}

/// The `google.rpc.Status` protobuf body of an error answer.
async fn status_body(response: reqwest::Response) -> rpc::Status {
    assert_eq!(
        response.headers()["content-type"],
        "application/x-protobuf",
        "error bodies are in the request's encoding"
    );
    rpc::Status::decode(response.bytes().await.unwrap()).expect("a google.rpc.Status body")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn http_refuses_bad_requests_with_the_right_status_and_keeps_serving() {
    let mut receiver = start_receiver(64, 64 * 1024).await;
    let client = http_client();
    let protobuf = "application/x-protobuf";

    let response = post(
        &client,
        &receiver,
        "/v1/logs",
        protobuf,
        None,
        vec![0x0a, 0x05, 0x01],
    )
    .await;
    assert_eq!(response.status(), 400);
    let status = status_body(response).await;
    assert!(status.message.contains("malformed"), "{status:?}");

    let response = post(
        &client,
        &receiver,
        "/v1/logs",
        "application/json",
        None,
        b"{\"resourceLogs\": [{\"scopeLogs\": ".to_vec(),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/json");
    let status: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status["code"], 3, "{status}");
    assert!(
        status["message"].as_str().unwrap().contains("OTLP/JSON"),
        "{status}"
    );

    // Over the 64 KiB limit: as sent, and once inflated (a small gzip body).
    let big = logs_request(4000).encode_to_vec();
    let response = post(&client, &receiver, "/v1/logs", protobuf, None, big.clone()).await;
    assert_eq!(response.status(), 413);
    assert!(gzip(&big).len() < 64 * 1024);
    let response = post(
        &client,
        &receiver,
        "/v1/logs",
        protobuf,
        Some("gzip"),
        gzip(&big),
    )
    .await;
    assert_eq!(response.status(), 413);
    let response = post(
        &client,
        &receiver,
        "/v1/logs",
        protobuf,
        Some("gzip"),
        b"not gzip".to_vec(),
    )
    .await;
    assert_eq!(response.status(), 400);

    let response = post(
        &client,
        &receiver,
        "/v1/nothing",
        protobuf,
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(response.status(), 404);
    let response = client
        .get(format!("http://{}/v1/logs", receiver.http))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let response = post(
        &client,
        &receiver,
        "/v1/logs",
        "text/plain",
        None,
        b"hi".to_vec(),
    )
    .await;
    assert_eq!(response.status(), 415);
    let response = post(
        &client,
        &receiver,
        "/v1/logs",
        protobuf,
        Some("br"),
        Vec::new(),
    )
    .await;
    assert_eq!(response.status(), 415);

    // Well-formed requests still get through, gzip-compressed ones included.
    let body = gzip(&logs_request(3).encode_to_vec());
    let response = post(&client, &receiver, "/v1/logs", protobuf, Some("gzip"), body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], protobuf);
    let answer = ExportLogsServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(answer, ExportLogsServiceResponse::default());
    let received = receive_until(&mut receiver.intake, |r| r.logs.len() >= 3).await;
    assert_eq!(received.logs[1].body, "record 1");
    assert_eq!(received.logs[1].resource.service_name(), Some("svc"));
    assert!(receiver.intake.try_recv().is_err(), "nothing else arrived");
}

#[tokio::test]
async fn http_json_partial_success_rejects_only_the_invalid_record() {
    let mut receiver = start_receiver(64, 4 << 20).await;
    let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"json-app"}}]},
        "scopeSpans":[{"scope":{"name":"hand"},"spans":[
            {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"good","kind":2,
             "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":1700000000000000500,
             "attributes":[{"key":"n","value":{"intValue":"7"}}]},
            {"traceId":"0102","spanId":"0102030405060708","name":"short-trace-id"},
            {"traceId":"0102030405060708090A0B0C0D0E0F10","spanId":"1112131415161718","name":"upper-case-hex"}
        ]}]}]}"#;
    let response = post(
        &http_client(),
        &receiver,
        "/v1/traces",
        "application/json; charset=utf-8",
        None,
        body.to_vec(),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], "1", "{answer}");
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("short-trace-id"),
        "{answer}"
    );
    let received = receive_until(&mut receiver.intake, |r| r.span_count() >= 2).await;
    let spans: Vec<_> = received.spans[0].scope_spans[0].spans.iter().collect();
    assert_eq!(spans[0].name, "good");
    assert_eq!(spans[0].trace_id, (1..=16).collect::<Vec<u8>>());
    assert_eq!(spans[0].kind, 2);
    assert_eq!(spans[0].end_time_unix_nano, 1_700_000_000_000_000_500);
    assert_eq!(
        spans[0].attributes[0].value.as_ref().unwrap().value,
        Some(any_value::Value::IntValue(7))
    );
    assert_eq!(spans[1].name, "upper-case-hex");
}

#[tokio::test]
async fn http_answers_429_with_retry_after_when_the_intake_is_full() {
    let receiver = start_receiver(1, 4 << 20).await;
    let client = http_client();
    let body = logs_request(1).encode_to_vec();
    let protobuf = "application/x-protobuf";
    let response = post(&client, &receiver, "/v1/logs", protobuf, None, body.clone()).await;
    assert_eq!(response.status(), 200);
    let response = post(&client, &receiver, "/v1/logs", protobuf, None, body).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let status = status_body(response).await;
    assert!(status.message.contains("overloaded"), "{status:?}");
}
