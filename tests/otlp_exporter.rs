//! The OTLP exporter sink against real backends on real sockets: our own OTLP receiver (gRPC
//! and HTTP) started at library level, and small test servers that answer 400 or 503 on
//! purpose. Each test builds the sink from a TOML table, the way a user configures it.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message;
use sluice::intake::{Envelope, Intake};
use sluice::model::{AttributeValue, Batch, LogBatch, LogRecord, MetricBatch, Resource, SpanBatch};
use sluice::receivers::otlp::{self as otlp_receiver, OtlpReceiverConfig, rpc};
use sluice::receivers::{ReceiverContext, ReceiverStats};
use sluice::sinks::otlp::{self as otlp_sink, OtlpSinkConfig, SHUTDOWN_RETRIES};
use sluice::sinks::{SinkContext, SinkItem, SinkStats};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Our OTLP receiver as the backend.
struct Backend {
    intake: mpsc::Receiver<Envelope>,
    stats: Arc<ReceiverStats>,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn start_backend(grpc: SocketAddr, http: SocketAddr) -> Backend {
    let (intake, receiver) = Intake::new(64, Duration::from_millis(200));
    let shutdown = CancellationToken::new();
    let stats = Arc::new(ReceiverStats::default());
    let context = ReceiverContext {
        name: "backend".into(),
        intake,
        shutdown: shutdown.clone(),
        stats: stats.clone(),
    };
    let config = OtlpReceiverConfig {
        grpc: Some(grpc),
        http: Some(http),
        max_request_bytes: 4 << 20,
    };
    otlp_receiver::start(&config, context)
        .await
        .expect("backend starts");
    Backend {
        intake: receiver,
        stats,
        _shutdown: shutdown.drop_guard(),
    }
}

/// A running sink: its queue's sending end, its counters, its task.
struct Sink {
    items: Option<mpsc::Sender<SinkItem>>,
    stats: Arc<SinkStats>,
    task: JoinHandle<()>,
}

impl Sink {
    async fn send(&self, batch: Batch) {
        self.items
            .as_ref()
            .unwrap()
            .send(SinkItem::Batch(Arc::new(batch)))
            .await
            .unwrap();
    }

    /// Closes the queue and waits (at most 10 s) for the sink to finish.
    async fn close(mut self) -> Arc<SinkStats> {
        self.items.take();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the sink ends once its queue is closed")
            .unwrap();
        self.stats
    }
}

fn sink_config(toml_text: &str) -> OtlpSinkConfig {
    toml::from_str(toml_text).expect("sink config parses")
}

/// Starts a sink, optionally with batches already queued before it runs.
async fn start_sink(config: &OtlpSinkConfig, queued: Vec<Batch>) -> Sink {
    let (sender, items) = mpsc::channel(64);
    for batch in queued {
        sender.send(SinkItem::Batch(Arc::new(batch))).await.unwrap();
    }
    let stats = Arc::new(SinkStats::default());
    let context = SinkContext {
        name: "backend".into(),
        items,
        stats: stats.clone(),
    };
    let task = otlp_sink::start(config, context)
        .await
        .expect("sink starts");
    Sink {
        items: Some(sender),
        stats,
        task,
    }
}

fn count(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Waits (at most 10 s) until `condition` holds.
async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn string(text: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(text.into())),
    })
}

fn otlp_resource(service: &str) -> Option<OtlpResource> {
    Some(OtlpResource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: string(service),
            ..KeyValue::default()
        }],
        ..OtlpResource::default()
    })
}

fn log_records(count: usize, service: &str) -> Vec<LogRecord> {
    let resource = Arc::new(Resource {
        attributes: vec![("service.name".into(), AttributeValue::from(service))],
        scope_name: "exporter-test".into(),
        scope_version: "1.0".into(),
    });
    (0..count)
        .map(|index| LogRecord {
            timestamp: 1_700_000_000_000_000_000 + index as i64,
            observed_timestamp: 1_700_000_000_000_000_100 + index as i64,
            severity_number: 9 + (index % 3) as u8 * 4,
            severity_text: ["INFO", "WARN", "ERROR"][index % 3].into(),
            body: format!("{service} record {index}"),
            trace_id: [index as u8 + 1; 16],
            span_id: [index as u8 + 1; 8],
            attributes: vec![
                ("index".into(), AttributeValue::Int(index as i64)),
                ("ratio".into(), AttributeValue::Double(0.25)),
                ("ok".into(), AttributeValue::Bool(index % 2 == 0)),
                ("raw".into(), AttributeValue::Bytes(vec![0, 1, index as u8])),
            ],
            resource: resource.clone(),
        })
        .collect()
}

fn logs(count: usize, service: &str) -> Batch {
    Batch::Logs(LogBatch::from_records(&log_records(count, service)))
}

fn spans(names: &[&str], trace_id: Vec<u8>) -> SpanBatch {
    SpanBatch {
        resource_spans: vec![ResourceSpans {
            resource: otlp_resource("traced"),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "exporter-test".into(),
                    version: "1.0".into(),
                    ..InstrumentationScope::default()
                }),
                spans: names
                    .iter()
                    .enumerate()
                    .map(|(index, name)| Span {
                        trace_id: trace_id.clone(),
                        span_id: vec![index as u8 + 1; 8],
                        name: (*name).into(),
                        kind: span::SpanKind::Server as i32,
                        start_time_unix_nano: 1_700_000_000_000_000_000,
                        end_time_unix_nano: 1_700_000_000_000_500_000,
                        attributes: vec![KeyValue {
                            key: "http.route".into(),
                            value: string("/checkout"),
                            ..KeyValue::default()
                        }],
                        events: vec![span::Event {
                            name: "retry".into(),
                            time_unix_nano: 1_700_000_000_000_100_000,
                            ..span::Event::default()
                        }],
                        status: Some(Status {
                            message: "ok".into(),
                            code: 1,
                        }),
                        ..Span::default()
                    })
                    .collect(),
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn metrics() -> MetricBatch {
    let point = |value| NumberDataPoint {
        time_unix_nano: 1_700_000_000_000_000_000,
        value: Some(value),
        attributes: vec![KeyValue {
            key: "shop".into(),
            value: string("north"),
            ..KeyValue::default()
        }],
        ..NumberDataPoint::default()
    };
    MetricBatch {
        resource_metrics: vec![ResourceMetrics {
            resource: otlp_resource("metered"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    Metric {
                        name: "orders".into(),
                        unit: "1".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![point(number_data_point::Value::AsInt(5))],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        })),
                        ..Metric::default()
                    },
                    Metric {
                        name: "queue.depth".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![
                                point(number_data_point::Value::AsDouble(1.5)),
                                point(number_data_point::Value::AsDouble(2.5)),
                            ],
                        })),
                        ..Metric::default()
                    },
                ],
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    }
}

/// Reads batches from the backend's intake until `records` records have arrived (at most
/// 10 s).
async fn receive(backend: &mut Backend, records: usize) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut received = 0;
    while received < records {
        let envelope = tokio::time::timeout(Duration::from_secs(10), backend.intake.recv())
            .await
            .expect("timed out waiting for the backend")
            .expect("backend intake open");
        received += envelope.batch.len();
        batches.push(envelope.batch);
    }
    batches
}

#[tokio::test]
async fn delivers_logs_spans_and_metrics_intact_over_grpc_and_http() {
    for protocol in ["grpc", "http"] {
        let (grpc, http) = (local(support::free_port()), local(support::free_port()));
        let mut backend = start_backend(grpc, http).await;
        let endpoint = if protocol == "grpc" { grpc } else { http };
        let sink = start_sink(
            &sink_config(&format!(
                "endpoint = \"http://{endpoint}\"\nprotocol = \"{protocol}\"\nheaders = {{ x-tenant = \"blue\" }}"
            )),
            Vec::new(),
        )
        .await;

        let sent_logs = log_records(3, "checkout");
        sink.send(Batch::Logs(LogBatch::from_records(&sent_logs)))
            .await;
        let received = receive(&mut backend, 3).await;
        let Batch::Logs(received_logs) = &received[0] else {
            panic!("not logs: {received:?}")
        };
        assert_eq!(
            received_logs.records().collect::<Vec<_>>(),
            sent_logs,
            "{protocol}"
        );

        let sent_spans = spans(&["GET /checkout", "SELECT orders"], vec![9; 16]);
        sink.send(Batch::Spans(sent_spans.clone())).await;
        let received = receive(&mut backend, 2).await;
        assert_eq!(received, vec![Batch::Spans(sent_spans)], "{protocol}");

        sink.send(Batch::Metrics(metrics())).await;
        let received = receive(&mut backend, 3).await;
        assert_eq!(received, vec![Batch::Metrics(metrics())], "{protocol}");

        let stats = sink.close().await;
        assert_eq!(count(&stats.records_written), 8, "{protocol}");
        assert_eq!(count(&stats.write_errors), 0, "{protocol}");
        assert_eq!(count(&stats.items_dropped), 0, "{protocol}");
    }
}

#[tokio::test]
async fn coalesces_queued_batches_up_to_max_batch_records() {
    let (grpc, http) = (local(support::free_port()), local(support::free_port()));
    let mut backend = start_backend(grpc, http).await;
    // Five one-record batches wait in the queue before the sink runs; at most two a request.
    let queued = (0..5)
        .map(|index| logs(1, &format!("service-{index}")))
        .collect();
    let sink = start_sink(
        &sink_config(&format!(
            "endpoint = \"http://{grpc}\"\nmax_batch_records = 2"
        )),
        queued,
    )
    .await;
    let received = receive(&mut backend, 5).await;
    let sizes: Vec<usize> = received.iter().map(Batch::len).collect();
    assert_eq!(sizes, [2, 2, 1]);
    let services: Vec<String> = received
        .iter()
        .flat_map(|batch| match batch {
            Batch::Logs(logs) => logs
                .records()
                .map(|r| r.resource.service_name().unwrap_or_default().to_owned())
                .collect::<Vec<_>>(),
            other => panic!("not logs: {other:?}"),
        })
        .collect();
    assert_eq!(
        services,
        [
            "service-0",
            "service-1",
            "service-2",
            "service-3",
            "service-4"
        ]
    );
    assert_eq!(count(&backend.stats.requests), 3);
    let stats = sink.close().await;
    assert_eq!(count(&stats.records_written), 5);
}

#[tokio::test]
async fn a_backend_down_at_first_gets_the_data_once_it_is_up() {
    for protocol in ["grpc", "http"] {
        let (grpc, http) = (local(support::free_port()), local(support::free_port()));
        let endpoint = if protocol == "grpc" { grpc } else { http };
        let sink = start_sink(
            &sink_config(&format!(
                "endpoint = \"http://{endpoint}\"\nprotocol = \"{protocol}\"\nretry_initial = \"20ms\"\nretry_max = \"100ms\"\ntimeout = \"2s\""
            )),
            Vec::new(),
        )
        .await;
        sink.send(logs(4, "patient")).await;
        // Connection refused, at least twice.
        wait_for("failed attempts", || count(&sink.stats.write_errors) >= 2).await;
        assert_eq!(count(&sink.stats.records_written), 0);

        let mut backend = start_backend(grpc, http).await;
        let received = receive(&mut backend, 4).await;
        let Batch::Logs(received_logs) = &received[0] else {
            panic!("not logs")
        };
        assert_eq!(
            received_logs.records().collect::<Vec<_>>(),
            log_records(4, "patient")
        );
        let stats = sink.close().await;
        assert_eq!(count(&stats.records_written), 4, "{protocol}");
        assert_eq!(count(&stats.items_dropped), 0, "{protocol}");
    }
}

/// A scripted answer: status, headers, body.
type Answer = (StatusCode, Vec<(&'static str, &'static str)>, Vec<u8>);

/// When each request reached a scripted backend, with its headers.
type Arrivals = Arc<std::sync::Mutex<Vec<(Instant, HeaderMap)>>>;

/// A test backend that answers each POST with the next of `answers` (the last one repeats) and
/// records when each request came.
async fn scripted_http_backend(answers: Vec<Answer>) -> (SocketAddr, Arrivals) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let arrivals = Arc::new(std::sync::Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let answers = Arc::new(answers);
    let app = {
        let arrivals = arrivals.clone();
        axum::Router::new().fallback(move |headers: HeaderMap| {
            let arrivals = arrivals.clone();
            let next = next.clone();
            let answers = answers.clone();
            async move {
                arrivals.lock().unwrap().push((Instant::now(), headers));
                let index = next.fetch_add(1, Ordering::SeqCst).min(answers.len() - 1);
                let (status, headers, body) = answers[index].clone();
                let mut response = axum::response::Response::new(axum::body::Body::from(body));
                *response.status_mut() = status;
                for (name, value) in headers {
                    response.headers_mut().insert(name, value.parse().unwrap());
                }
                response
            }
        })
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (address, arrivals)
}

#[tokio::test]
async fn http_400_drops_the_request_and_counts_it() {
    let bad_request = rpc::Status::new(tonic::Code::InvalidArgument, "no thanks").encode_to_vec();
    let (address, arrivals) = scripted_http_backend(vec![(
        StatusCode::BAD_REQUEST,
        vec![("content-type", "application/x-protobuf")],
        bad_request,
    )])
    .await;
    let sink = start_sink(
        &sink_config(&format!(
            "endpoint = \"http://{address}\"\nprotocol = \"http\"\nretry_initial = \"10ms\""
        )),
        Vec::new(),
    )
    .await;
    sink.send(logs(3, "refused")).await;
    wait_for("the request to be dropped", || {
        count(&sink.stats.items_dropped) == 3
    })
    .await;
    // The sink carries on: the next batch is tried too.
    sink.send(logs(2, "refused")).await;
    let stats = sink.close().await;
    assert_eq!(count(&stats.items_dropped), 5);
    assert_eq!(count(&stats.write_errors), 2, "each request tried once");
    assert_eq!(count(&stats.records_written), 0);
    assert_eq!(arrivals.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn http_503_is_retried_after_the_retry_after_delay() {
    let ok = ExportLogsServiceResponse::default().encode_to_vec();
    let (address, arrivals) = scripted_http_backend(vec![
        (
            StatusCode::SERVICE_UNAVAILABLE,
            vec![("retry-after", "1")],
            Vec::new(),
        ),
        (
            StatusCode::OK,
            vec![("content-type", "application/x-protobuf")],
            ok,
        ),
    ])
    .await;
    let sink = start_sink(
        &sink_config(&format!(
            "endpoint = \"http://{address}\"\nprotocol = \"http\"\nretry_initial = \"10ms\"\nretry_max = \"5s\"\nheaders = {{ x-tenant = \"blue\" }}"
        )),
        Vec::new(),
    )
    .await;
    sink.send(logs(2, "throttled")).await;
    wait_for("delivery", || count(&sink.stats.records_written) == 2).await;
    let stats = sink.close().await;
    assert_eq!(count(&stats.write_errors), 1);
    let arrivals = arrivals.lock().unwrap();
    assert_eq!(arrivals.len(), 2);
    let gap = arrivals[1].0 - arrivals[0].0;
    for (_, headers) in arrivals.iter() {
        assert_eq!(headers["content-type"], "application/x-protobuf");
        assert_eq!(headers["x-tenant"], "blue", "configured headers are sent");
    }
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}, not after Retry-After: 1"
    );
}

/// A gRPC logs backend that refuses everything as invalid, noting each request's `x-tenant`.
struct RefusingLogsService(Arc<std::sync::Mutex<Vec<String>>>);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsService
    for RefusingLogsService
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest,
        >,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let tenant = request
            .metadata()
            .get("x-tenant")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        self.0.lock().unwrap().push(tenant);
        Err(tonic::Status::invalid_argument("no thanks"))
    }
}

#[tokio::test]
async fn grpc_invalid_argument_drops_the_request_and_counts_it() {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsServiceServer;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let tenants = Arc::new(std::sync::Mutex::new(Vec::new()));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(LogsServiceServer::new(RefusingLogsService(tenants.clone())))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let sink = start_sink(
        &sink_config(&format!(
            "endpoint = \"http://{address}\"\nretry_initial = \"10ms\"\nheaders = {{ x-tenant = \"green\" }}"
        )),
        Vec::new(),
    )
    .await;
    sink.send(logs(3, "refused")).await;
    wait_for("the request to be dropped", || {
        count(&sink.stats.items_dropped) == 3
    })
    .await;
    let stats = sink.close().await;
    assert_eq!(count(&stats.write_errors), 1);
    assert_eq!(count(&stats.records_written), 0);
    assert_eq!(
        *tenants.lock().unwrap(),
        ["green"],
        "headers travel as gRPC metadata"
    );
}

#[tokio::test]
async fn records_the_backend_rejects_are_counted_as_dropped() {
    let (grpc, http) = (local(support::free_port()), local(support::free_port()));
    let mut backend = start_backend(grpc, http).await;
    let sink = start_sink(
        &sink_config(&format!("endpoint = \"http://{grpc}\"")),
        Vec::new(),
    )
    .await;
    // Our receiver rejects a span whose trace id is not 16 bytes, and takes its neighbours.
    let mut batch = spans(&["good", "bad", "also good"], vec![3; 16]);
    batch.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![3; 4];
    sink.send(Batch::Spans(batch)).await;
    let received = receive(&mut backend, 2).await;
    assert_eq!(received[0].len(), 2);
    let stats = sink.close().await;
    assert_eq!(count(&stats.records_written), 2);
    assert_eq!(count(&stats.items_dropped), 1);
}

#[tokio::test]
async fn at_shutdown_a_dead_backend_gets_a_bounded_number_of_retries() {
    let address = local(support::free_port());
    let sink = start_sink(
        &sink_config(&format!(
            "endpoint = \"http://{address}\"\nretry_initial = \"20ms\"\nretry_max = \"10s\""
        )),
        Vec::new(),
    )
    .await;
    sink.send(logs(2, "stranded")).await;
    sink.send(Batch::Spans(spans(&["stranded"], vec![4; 16])))
        .await;
    let started = Instant::now();
    let stats = sink.close().await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(count(&stats.items_dropped), 3, "every record accounted for");
    assert_eq!(count(&stats.records_written), 0);
    // A few attempts before the queue closed, at most SHUTDOWN_RETRIES retries after, and one
    // last attempt for the second request.
    assert!(count(&stats.write_errors) >= 2);
    assert!(
        count(&stats.write_errors) <= 2 + u64::from(SHUTDOWN_RETRIES) + 2,
        "{}",
        count(&stats.write_errors)
    );
}
