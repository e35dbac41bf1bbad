//! The whole gateway end to end, driven the way a platform team drives it: a config file,
//! `sluice run` as a process, real clients (the OpenTelemetry SDKs for Python and Rust,
//! sockets, files, Prometheus remote-write, a webhook server) on real ports, SIGTERM, and then
//! what it left behind read with the data teams' tools (pyarrow and DuckDB for the archive).
//!
//! Each test starts its own gateway on free ports, except `the_default_config_…`, which uses
//! the default config's fixed ports and runs alone (see [`exclusive`]).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{Value, json};
use support::gateway::{
    GatewayProcess, Ports, read_archive, read_json_lines, wait_for_archive_rows,
};
use support::plugin_wasm;

// ── Test scheduling ────────────────────────────────────────────────────────────────────────────

/// Tests share this lock: the default-config test takes it alone (it uses fixed ports and
/// measures the start time, which other gateways starting at the same moment would skew), the
/// others together.
static SCHEDULE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    SCHEDULE.read().unwrap_or_else(|poison| poison.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    SCHEDULE
        .write()
        .unwrap_or_else(|poison| poison.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

// ── Small helpers ──────────────────────────────────────────────────────────────────────────────

/// A TOML string literal for a path.
fn toml_path(path: &Path) -> String {
    toml_string(&path.display().to_string())
}

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

fn plugin(name: &str) -> String {
    toml_path(&plugin_wasm(name))
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_nanos() as i64
}

/// Unix nanoseconds of an RFC 3339 time.
fn nanos(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("an RFC 3339 time")
        .timestamp_nanos_opt()
        .expect("in range")
}

/// The archive partition (`date=…/hour=…`) of a time in Unix nanoseconds.
fn partition_of_nanos(time: i64) -> String {
    let time = chrono::DateTime::from_timestamp_nanos(time);
    time.format("date=%Y-%m-%d/hour=%H").to_string()
}

/// The partition a pyarrow row names (`date` and `hour` come from the path).
fn partition_of_row(row: &Value) -> String {
    format!(
        "date={}/hour={:02}",
        row["date"].as_str().expect("date"),
        row["hour"].as_i64().expect("hour")
    )
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// An OTLP logs request from `service`: one record per `(severity number, body)`, each with
/// the attribute `test.id` = its body, timestamped now.
fn log_request(service: &str, records: &[(i32, &str)]) -> ExportLogsServiceRequest {
    let now = now_nanos() as u64;
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![string_attribute("service.name", service)],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "e2e".into(),
                    version: "1".into(),
                    ..Default::default()
                }),
                log_records: records
                    .iter()
                    .map(|&(severity, body)| LogRecord {
                        time_unix_nano: now,
                        observed_time_unix_nano: now,
                        severity_number: severity,
                        severity_text: severity_text(severity).into(),
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(body.into())),
                        }),
                        attributes: vec![string_attribute("test.id", body)],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn severity_text(number: i32) -> &'static str {
    match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "",
    }
}

fn http_client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

/// POSTs an OTLP logs request as protobuf to `http://address/v1/logs`.
fn post_otlp_logs(
    client: &reqwest::blocking::Client,
    address: SocketAddr,
    body: Vec<u8>,
) -> reqwest::blocking::Response {
    client
        .post(format!("http://{address}/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .expect("the gateway answers")
}

async fn grpc_export_logs(
    address: SocketAddr,
    request: ExportLogsServiceRequest,
) -> Result<(), tonic::Status> {
    let mut client = LogsServiceClient::connect(format!("http://{address}"))
        .await
        .expect("connects over gRPC");
    client.export(request).await.map(|_| ())
}

/// Waits until a file sink's output holds at least `count` lines; returns them. On timeout,
/// panics with the lines and with what `context` says (such as the gateway's stderr).
fn wait_for_lines(
    path: &Path,
    count: usize,
    timeout: Duration,
    context: impl Fn() -> String,
) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let lines = read_json_lines(path);
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {} lines after {timeout:?}, expected {count}: {lines:?}\n{}",
            path.display(),
            lines.len(),
            context()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rows<'a>(archive: &'a Value, signal: &str) -> &'a Vec<Value> {
    archive["signals"][signal]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no {signal} in the archive: {archive}"))
}

/// Partition → rows, as pyarrow and DuckDB both counted them (they must agree).
fn partition_counts(archive: &Value, signal: &str) -> BTreeMap<String, u64> {
    let counts = |reader: &str| -> BTreeMap<String, u64> {
        archive["signals"][signal][reader]
            .as_object()
            .unwrap_or_else(|| panic!("no {reader} for {signal}: {archive}"))
            .iter()
            .map(|(partition, count)| (partition.clone(), count.as_u64().expect("a count")))
            .collect()
    };
    let pyarrow = counts("pyarrow_counts");
    assert_eq!(
        pyarrow,
        counts("duckdb_counts"),
        "pyarrow and DuckDB disagree on {signal}"
    );
    pyarrow
}

/// How many times `id` is a whole word of `text`.
fn word_count(text: &str, id: &str) -> usize {
    text.split(|c: char| c.is_whitespace() || c == '"')
        .filter(|word| *word == id)
        .count()
}

// ── 1. OTLP end to end: two SDKs, two transports, archive and a downstream gateway ──────────────

/// What one sender sends: the same plan for the Python and the Rust SDK.
struct Plan {
    service: String,
    /// `(test.id, time, severity number, severity text)`.
    logs: Vec<(String, i64, u8, &'static str)>,
    /// `(name, start, end, parent index)`.
    spans: Vec<(&'static str, i64, i64, Option<usize>)>,
    /// `(shop, value)` of the counter `orders`.
    orders: Vec<(&'static str, u64)>,
}

/// Two hours of event time, so the archive has two partitions per signal.
const HOUR_8: &str = "2026-11-20T08:10:00Z";
const HOUR_9: &str = "2026-11-20T09:20:00Z";

impl Plan {
    /// Six logs (two below `info`, dropped by the severity filter) across two hours, three
    /// spans (a parent and its child at 08, a root at 09), two counter points.
    fn new(service: &str, offset_ms: i64) -> Plan {
        let severities: [(u8, &str); 6] = [
            (5, "DEBUG"),
            (9, "INFO"),
            (13, "WARN"),
            (17, "ERROR"),
            (1, "TRACE"),
            (9, "INFO"),
        ];
        let logs = severities
            .iter()
            .enumerate()
            .map(|(index, &(severity, text))| {
                let hour = if index % 2 == 0 { HOUR_8 } else { HOUR_9 };
                let time = nanos(hour) + offset_ms * 1_000_000 + index as i64 * 1_000_000_007;
                (format!("{service}-log-{index}"), time, severity, text)
            })
            .collect();
        let at8 = nanos(HOUR_8) + offset_ms * 1_000_000;
        let at9 = nanos(HOUR_9) + offset_ms * 1_000_000;
        Plan {
            service: service.into(),
            logs,
            spans: vec![
                ("checkout", at8, at8 + 250_000_123, None),
                ("charge", at8 + 100_000_000, at8 + 200_000_000, Some(0)),
                ("refund", at9, at9 + 50_000_000, None),
            ],
            orders: vec![("north", 5), ("south", 2)],
        }
    }

    fn kept_logs(&self) -> impl Iterator<Item = &(String, i64, u8, &'static str)> {
        self.logs
            .iter()
            .filter(|(_, _, severity, _)| *severity >= 9)
    }

    fn to_json(&self) -> Value {
        json!({
            "service": self.service,
            "resource": {"deployment.environment": "e2e"},
            "scope": ["e2e-scope", "1.0"],
            "logs": self.logs.iter().enumerate().map(|(index, (id, time, severity, text))| json!({
                "time_ns": time,
                "severity_number": severity,
                "severity_text": text,
                "body": format!("{} says {id}", self.service),
                "attributes": {"test.id": id, "seq": index},
            })).collect::<Vec<_>>(),
            "spans": self.spans.iter().map(|(name, start, end, parent)| json!({
                "name": name,
                "start_ns": start,
                "end_ns": end,
                "parent": parent,
                "attributes": {"test.service": self.service},
            })).collect::<Vec<_>>(),
            "counters": self.orders.iter().map(|(shop, value)| json!({
                "name": "orders",
                "value": value,
                "attributes": {"shop": shop},
            })).collect::<Vec<_>>(),
        })
    }
}

/// A span as sent: `(name, trace id hex, span id hex, parent span id hex)`.
type SentSpan = (String, String, String, Option<String>);

/// Starts `tests/python/otlp_send_plan.py` on `plan`; [`python_sender_spans`] waits for it.
fn spawn_python_sender(protocol: &str, endpoint: String, plan: &Plan) -> std::process::Child {
    let mut child = std::process::Command::new(support::python())
        .arg(support::workspace_root().join("tests/python/otlp_send_plan.py"))
        .arg(protocol)
        .arg(endpoint)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(plan.to_json().to_string().as_bytes())
        .expect("plan written");
    child
}

/// Waits for a Python sender to finish; returns the spans it made.
fn python_sender_spans(child: std::process::Child) -> Vec<SentSpan> {
    let output = child.wait_with_output().expect("python ends");
    assert!(
        output.status.success(),
        "otlp_send_plan.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "otlp_send_plan.py printed no JSON ({error}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    printed["spans"]
        .as_array()
        .expect("spans printed")
        .iter()
        .map(|span| {
            (
                span["name"].as_str().unwrap().to_owned(),
                span["trace_id"].as_str().unwrap().to_owned(),
                span["span_id"].as_str().unwrap().to_owned(),
                span["parent_span_id"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn system_time(nanos: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos as u64)
}

/// Sends `plan` through the Rust SDK with these exporters, shutting the providers down (which
/// flushes them); returns the spans it made.
fn send_plan_with_rust(
    plan: &Plan,
    logs: opentelemetry_otlp::LogExporter,
    spans: opentelemetry_otlp::SpanExporter,
    metrics: opentelemetry_otlp::MetricExporter,
) -> Vec<SentSpan> {
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};

    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(plan.service.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "deployment.environment",
            "e2e",
        ))
        .build();
    let scope = opentelemetry::InstrumentationScope::builder("e2e-scope")
        .with_version("1.0")
        .build();
    let logger_provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
        .with_resource(resource.clone())
        .with_batch_exporter(logs)
        .build();
    let tracer_provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_batch_exporter(spans)
        .build();
    let meter_provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_resource(resource)
        .with_periodic_exporter(metrics)
        .build();

    let tracer = tracer_provider.tracer_with_scope(scope.clone());
    let mut started = Vec::new();
    let mut sent: Vec<SentSpan> = Vec::new();
    for &(name, start, _, parent) in &plan.spans {
        let builder = tracer
            .span_builder(name)
            .with_start_time(system_time(start))
            .with_attributes(vec![opentelemetry::KeyValue::new(
                "test.service",
                plan.service.clone(),
            )]);
        let parent_context = parent.map(|index: usize| {
            opentelemetry::Context::new().with_remote_span_context(started.get(index).map_or_else(
                opentelemetry::trace::SpanContext::empty_context,
                |span: &opentelemetry_sdk::trace::Span| span.span_context().clone(),
            ))
        });
        let span = match &parent_context {
            Some(context) => builder.start_with_context(&tracer, context),
            None => builder.start(&tracer),
        };
        let context = span.span_context();
        sent.push((
            name.to_owned(),
            context.trace_id().to_string(),
            context.span_id().to_string(),
            parent.map(|index| sent[index].2.clone()),
        ));
        started.push(span);
    }
    for (mut span, &(_, _, end, _)) in started.into_iter().zip(&plan.spans) {
        span.end_with_timestamp(system_time(end));
    }

    let logger = logger_provider.logger_with_scope(scope.clone());
    for (index, (id, time, severity, text)) in plan.logs.iter().enumerate() {
        let mut record = logger.create_log_record();
        record.set_timestamp(system_time(*time));
        record.set_severity_number(match severity {
            1 => Severity::Trace,
            5 => Severity::Debug,
            9 => Severity::Info,
            13 => Severity::Warn,
            17 => Severity::Error,
            other => panic!("no SDK severity planned for {other}"),
        });
        record.set_severity_text(text);
        record.set_body(format!("{} says {id}", plan.service).into());
        record.add_attribute("test.id", id.clone());
        record.add_attribute("seq", index as i64);
        logger.emit(record);
    }

    let orders = meter_provider
        .meter_with_scope(scope)
        .u64_counter("orders")
        .build();
    for &(shop, value) in &plan.orders {
        orders.add(value, &[opentelemetry::KeyValue::new("shop", shop)]);
    }

    logger_provider.shutdown().expect("logs flushed");
    tracer_provider.shutdown().expect("spans flushed");
    meter_provider.shutdown().expect("metrics flushed");
    sent
}

/// The spans a file sink wrote (OTLP JSON, ids in hex): `(service, span id, trace id)`.
fn spans_in_file_sink(lines: &[Value]) -> Vec<(String, String, String)> {
    let mut spans = Vec::new();
    for line in lines {
        assert_eq!(line["signal"], "traces", "{line}");
        let resource = &line["resourceSpans"];
        let service = resource["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|attribute| attribute["key"] == "service.name")
            .and_then(|attribute| attribute["value"]["stringValue"].as_str())
            .unwrap_or_default()
            .to_owned();
        for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
            for span in scope["spans"].as_array().into_iter().flatten() {
                spans.push((
                    service.clone(),
                    span["spanId"].as_str().unwrap_or_default().to_lowercase(),
                    span["traceId"].as_str().unwrap_or_default().to_lowercase(),
                ));
            }
        }
    }
    spans
}

#[test]
fn otlp_from_both_sdks_over_both_transports_reaches_the_archive_and_a_downstream_gateway() {
    let _schedule = shared();
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let downstream_dir = dir.path().join("downstream");
    let upstream_dir = dir.path().join("upstream");
    std::fs::create_dir_all(&downstream_dir).unwrap();
    std::fs::create_dir_all(&upstream_dir).unwrap();
    let spans_file = downstream_dir.join("spans.jsonl");
    let archive = upstream_dir.join("archive");

    // The downstream gateway: OTLP in, spans to a file.
    let (downstream, downstream_grpc) =
        GatewayProcess::start(&downstream_dir, |ports: &mut Ports| {
            let grpc = ports.tcp();
            let config = format!(
                r#"
[receivers.otlp]
type = "otlp"
grpc = "127.0.0.1:{grpc}"

[pipelines.traces]
receivers = ["otlp"]
signals = ["traces"]
sinks = ["spans"]

[sinks.spans]
type = "file"
path = {spans}
"#,
                spans = toml_path(&spans_file),
            );
            (config, grpc)
        });

    // The gateway under test: OTLP in over both transports, a severity filter on logs, every
    // signal to the archive, spans also forwarded downstream over OTLP/gRPC.
    let (upstream, (grpc, http)) = GatewayProcess::start(&upstream_dir, |ports: &mut Ports| {
        let grpc = ports.tcp();
        let http = ports.tcp();
        let config = format!(
            r#"
[receivers.otlp]
type = "otlp"
grpc = "127.0.0.1:{grpc}"
http = "127.0.0.1:{http}"

[plugins.severity-filter]
path = {filter}
config = {{ min_severity = "info" }}

[pipelines.logs]
receivers = ["otlp"]
signals = ["logs"]
stages = ["severity-filter"]
sinks = ["archive"]

[pipelines.telemetry]
receivers = ["otlp"]
signals = ["metrics", "traces"]
sinks = ["archive"]

[[pipelines.telemetry.routes]]
signals = ["traces"]
sinks = ["downstream"]

[sinks.archive]
type = "parquet"
path = {archive}
max_file_age = "1s"

[sinks.downstream]
type = "otlp"
endpoint = "http://127.0.0.1:{downstream_grpc}"
protocol = "grpc"
retry_initial = "100ms"
"#,
            filter = plugin("severity-filter"),
            archive = toml_path(&archive),
        );
        (config, (grpc, http))
    });

    let plans = [
        Plan::new("py-grpc", 0),
        Plan::new("py-http", 1),
        Plan::new("rust-grpc", 2),
        Plan::new("rust-http", 3),
    ];

    // All four senders at once: two Python processes, two Rust SDK threads.
    let python_grpc = spawn_python_sender("grpc", format!("http://127.0.0.1:{grpc}"), &plans[0]);
    let python_http = spawn_python_sender("http", format!("http://127.0.0.1:{http}"), &plans[1]);
    let mut sent: BTreeMap<String, Vec<SentSpan>> = BTreeMap::new();
    std::thread::scope(|scope| {
        let rust_grpc = {
            use opentelemetry_otlp::WithExportConfig;
            let endpoint = format!("http://127.0.0.1:{grpc}");
            // tonic needs the runtime to build its channel; the SDK then exports from its own
            // threads through it.
            let (logs, spans, metrics) = runtime.block_on(async {
                (
                    opentelemetry_otlp::LogExporter::builder()
                        .with_tonic()
                        .with_endpoint(&endpoint)
                        .build()
                        .unwrap(),
                    opentelemetry_otlp::SpanExporter::builder()
                        .with_tonic()
                        .with_endpoint(&endpoint)
                        .build()
                        .unwrap(),
                    opentelemetry_otlp::MetricExporter::builder()
                        .with_tonic()
                        .with_endpoint(&endpoint)
                        .build()
                        .unwrap(),
                )
            });
            let plan = &plans[2];
            scope.spawn(move || send_plan_with_rust(plan, logs, spans, metrics))
        };
        let rust_http = {
            let plan = &plans[3];
            scope.spawn(move || {
                use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
                let _ = rustls::crypto::ring::default_provider().install_default();
                let endpoint = |signal: &str| format!("http://127.0.0.1:{http}/v1/{signal}");
                let logs = opentelemetry_otlp::LogExporter::builder()
                    .with_http()
                    .with_http_client(reqwest::blocking::Client::new())
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(endpoint("logs"))
                    .build()
                    .unwrap();
                let spans = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_http_client(reqwest::blocking::Client::new())
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(endpoint("traces"))
                    .build()
                    .unwrap();
                let metrics = opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_http_client(reqwest::blocking::Client::new())
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(endpoint("metrics"))
                    .build()
                    .unwrap();
                send_plan_with_rust(plan, logs, spans, metrics)
            })
        };
        sent.insert("rust-grpc".into(), rust_grpc.join().unwrap());
        sent.insert("rust-http".into(), rust_http.join().unwrap());
    });
    sent.insert("py-grpc".into(), python_sender_spans(python_grpc));
    sent.insert("py-http".into(), python_sender_spans(python_http));

    // Every request was answered, so everything is in the gateway: SIGTERM drains it into the
    // archive and the downstream gateway before the process exits.
    let upstream = upstream.stop();
    let downstream = downstream.stop();
    drop(runtime);
    println!(
        "upstream:\n{}\ndownstream:\n{}",
        upstream.stderr, downstream.stderr
    );

    let logs_sent: usize = plans.iter().map(|plan| plan.logs.len()).sum();
    let logs_kept: usize = plans.iter().map(|plan| plan.kept_logs().count()).sum();
    let spans_sent: usize = plans.iter().map(|plan| plan.spans.len()).sum();
    let points_sent: usize = plans.iter().map(|plan| plan.orders.len()).sum();
    let otlp = upstream.receiver("otlp");
    assert_eq!(
        (otlp.accepted, otlp.malformed, otlp.refused),
        ((logs_sent + spans_sent + points_sent) as u64, 0, 0),
        "{}",
        upstream.stderr
    );
    let logs_pipeline = upstream.pipeline("logs");
    assert_eq!(logs_pipeline.records_in, logs_sent as u64);
    assert_eq!(logs_pipeline.records_out, logs_kept as u64);
    assert_eq!(logs_pipeline.dropped, (logs_sent - logs_kept) as u64);
    let archive_sink = upstream.sink("archive");
    assert_eq!(
        (archive_sink.written, archive_sink.dropped),
        ((logs_kept + spans_sent + points_sent) as u64, 0),
        "{}",
        upstream.stderr
    );
    let forwarded = upstream.sink("downstream");
    assert_eq!(
        (forwarded.written, forwarded.dropped),
        (spans_sent as u64, 0),
        "{}",
        upstream.stderr
    );
    assert_eq!(downstream.sink("spans").written, spans_sent as u64);

    let read = read_archive(
        &archive,
        json!({
            "logs_per_service": "SELECT service_name, count(*) AS n FROM {logs} GROUP BY ALL ORDER BY ALL",
            "spans_per_service": "SELECT service_name, count(*) AS n FROM {traces} GROUP BY ALL ORDER BY ALL",
            "orders": "SELECT service_name, attributes['shop'] AS shop, value_int, metric_type, is_monotonic FROM {metrics} WHERE metric_name = 'orders' ORDER BY ALL",
            "typed_seq": "SELECT count(*) AS n FROM {logs} WHERE attribute_types['seq'] = 'int' AND CAST(attributes['seq'] AS BIGINT) >= 1",
        }),
    );

    // Logs: exactly the kept records, each in its event-time partition.
    let mut expected_partitions: BTreeMap<String, u64> = BTreeMap::new();
    let mut expected_logs: BTreeMap<String, (String, i64, u8, String)> = BTreeMap::new();
    for plan in &plans {
        for (id, time, severity, text) in plan.kept_logs() {
            *expected_partitions
                .entry(partition_of_nanos(*time))
                .or_default() += 1;
            expected_logs.insert(
                id.clone(),
                (plan.service.clone(), *time, *severity, (*text).to_owned()),
            );
        }
    }
    assert_eq!(expected_partitions.len(), 2, "the plan spans two hours");
    assert_eq!(partition_counts(&read, "logs"), expected_partitions);
    let log_rows = rows(&read, "logs");
    assert_eq!(log_rows.len(), logs_kept, "no record lost or duplicated");
    let mut seen = BTreeSet::new();
    for row in log_rows {
        let id = row["attributes"]["test.id"]
            .as_str()
            .unwrap_or_else(|| panic!("no test.id: {row}"));
        assert!(seen.insert(id.to_owned()), "{id} archived twice");
        let (service, time, severity, text) = expected_logs
            .get(id)
            .unwrap_or_else(|| panic!("{id} was filtered out, yet archived: {row}"));
        assert_eq!(row["service_name"], service.as_str(), "{row}");
        assert_eq!(row["severity_number"], *severity as i64, "{row}");
        assert_eq!(row["severity_text"], text.as_str(), "{row}");
        assert_eq!(row["body"], format!("{service} says {id}"), "{row}");
        assert_eq!(row["time"], time / 1000, "{row}");
        assert_eq!(row["time_extra_nanos"], time % 1000, "{row}");
        assert_eq!(partition_of_row(row), partition_of_nanos(*time), "{row}");
        assert_eq!(row["attribute_types"]["seq"], "int", "{row}");
        assert_eq!(
            row["resource_attributes"]["deployment.environment"], "e2e",
            "{row}"
        );
        assert_eq!(row["scope_name"], "e2e-scope", "{row}");
        assert_eq!(row["scope_version"], "1.0", "{row}");
    }
    assert_eq!(
        read["queries"]["logs_per_service"],
        json!(
            plans
                .iter()
                .map(|plan| json!({"service_name": plan.service, "n": plan.kept_logs().count()}))
                .collect::<Vec<_>>()
        )
    );
    // The integer attribute reads back as a number in DuckDB: every kept record has seq >= 1
    // (seq 0 is the DEBUG record the filter dropped).
    assert_eq!(read["queries"]["typed_seq"][0]["n"], logs_kept as i64);

    // Spans: exactly the ids the SDKs made, in their start-time partitions.
    let mut expected_spans: BTreeMap<String, (String, String, Option<String>)> = BTreeMap::new();
    let mut expected_span_partitions: BTreeMap<String, u64> = BTreeMap::new();
    for plan in &plans {
        let made = &sent[&plan.service];
        assert_eq!(made.len(), plan.spans.len());
        for ((name, trace_id, span_id, parent), (_, start, _, _)) in made.iter().zip(&plan.spans) {
            expected_spans.insert(
                span_id.clone(),
                (plan.service.clone(), trace_id.clone(), parent.clone()),
            );
            *expected_span_partitions
                .entry(partition_of_nanos(*start))
                .or_default() += 1;
            assert!(!name.is_empty());
        }
    }
    assert_eq!(expected_spans.len(), spans_sent, "span ids are distinct");
    assert_eq!(partition_counts(&read, "traces"), expected_span_partitions);
    let span_rows = rows(&read, "traces");
    assert_eq!(span_rows.len(), spans_sent);
    let archived_ids: BTreeSet<&str> = span_rows
        .iter()
        .map(|row| row["span_id"].as_str().expect("span_id"))
        .collect();
    assert_eq!(
        archived_ids,
        expected_spans.keys().map(String::as_str).collect(),
        "archived span ids"
    );
    for row in span_rows {
        let (service, trace_id, parent) = &expected_spans[row["span_id"].as_str().unwrap()];
        assert_eq!(row["service_name"], service.as_str(), "{row}");
        assert_eq!(row["trace_id"], trace_id.as_str(), "{row}");
        assert_eq!(row["parent_span_id"].as_str(), parent.as_deref(), "{row}");
        assert_eq!(row["attributes"]["test.service"], service.as_str(), "{row}");
        assert_eq!(
            row["resource_attributes"]["deployment.environment"], "e2e",
            "{row}"
        );
    }

    // Metrics: two counter points per sender, each in the partition of its own time.
    let point_counts = partition_counts(&read, "metrics");
    assert_eq!(point_counts.values().sum::<u64>(), points_sent as u64);
    for row in rows(&read, "metrics") {
        let time = row["time"].as_i64().expect("a point time") * 1000;
        assert_eq!(partition_of_row(row), partition_of_nanos(time), "{row}");
    }
    let mut expected_orders: Vec<Value> = plans
        .iter()
        .flat_map(|plan| {
            plan.orders.iter().map(|(shop, value)| {
                json!({"service_name": plan.service, "shop": shop, "value_int": value,
                       "metric_type": "sum", "is_monotonic": true})
            })
        })
        .collect();
    expected_orders.sort_by_key(|order| order.to_string());
    let mut orders = read["queries"]["orders"]
        .as_array()
        .expect("orders")
        .clone();
    orders.sort_by_key(|order| order.to_string());
    assert_eq!(orders, expected_orders);

    // The downstream gateway got exactly the spans sent, once each.
    let forwarded = spans_in_file_sink(&read_json_lines(&spans_file));
    assert_eq!(forwarded.len(), spans_sent, "{forwarded:?}");
    let forwarded_ids: BTreeMap<&str, (&str, &str)> = forwarded
        .iter()
        .map(|(service, span_id, trace_id)| {
            (span_id.as_str(), (service.as_str(), trace_id.as_str()))
        })
        .collect();
    assert_eq!(forwarded_ids.len(), spans_sent, "no span forwarded twice");
    for (span_id, (service, trace_id, _)) in &expected_spans {
        assert_eq!(
            forwarded_ids.get(span_id.as_str()),
            Some(&(service.as_str(), trace_id.as_str())),
            "span {span_id} downstream"
        );
    }
}

// ── 2. Every plain receiver through one config ─────────────────────────────────────────────────

use support::prompb;

/// One series of a remote-write request: labels (sorted, `__name__` first) and
/// `(value, milliseconds)` samples.
fn series(labels: &[(&str, &str)], samples: &[(f64, i64)]) -> prompb::TimeSeries {
    let mut labels: Vec<prompb::Label> = labels
        .iter()
        .map(|(name, value)| prompb::Label {
            name: (*name).into(),
            value: (*value).into(),
        })
        .collect();
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    prompb::TimeSeries {
        labels,
        samples: samples
            .iter()
            .map(|&(value, timestamp)| prompb::Sample { value, timestamp })
            .collect(),
        exemplars: Vec::new(),
    }
}

fn post_remote_write(
    client: &reqwest::blocking::Client,
    address: SocketAddr,
    request: &prompb::WriteRequest,
) -> reqwest::blocking::Response {
    let body = snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("snappy compresses");
    client
        .post(format!("http://{address}/api/v1/write"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(body)
        .send()
        .expect("the gateway answers")
}

/// An RFC 6587 octet-counted frame.
fn octet_counted(message: &str) -> String {
    format!("{} {message}", message.len())
}

/// Waits until the file receiver's checkpoint records `path`'s file (by inode) as read up to
/// `length` bytes: its lines are then in the gateway.
fn wait_for_checkpoint(checkpoint: &Path, inode: u64, length: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let offset = std::fs::read(checkpoint)
            .ok()
            .and_then(|text| serde_json::from_slice::<Value>(&text).ok())
            .and_then(|document| {
                document["files"]
                    .as_array()?
                    .iter()
                    .find(|file| file["inode"] == inode)
                    .and_then(|file| file["offset"].as_u64())
            });
        if offset == Some(length) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the checkpoint {} has offset {offset:?} for inode {inode}, expected {length}",
            checkpoint.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("the file exists").ino()
}

fn append_lines(file: &mut std::fs::File, lines: &[String]) {
    for line in lines {
        writeln!(file, "{line}").expect("line written");
    }
    file.flush().expect("flushed");
}

#[test]
fn every_plain_receiver_lands_each_record_in_the_archive_exactly_once() {
    let _schedule = shared();
    let dir = tempfile::tempdir().unwrap();
    let logs_dir = dir.path().join("logs");
    std::fs::create_dir_all(&logs_dir).unwrap();
    let archive = dir.path().join("archive");
    let checkpoint = dir.path().join("state/files.json");

    struct Addresses {
        json_tcp: SocketAddr,
        json_http: SocketAddr,
        syslog_udp: SocketAddr,
        syslog_tcp: SocketAddr,
        remote_write: SocketAddr,
    }
    let (gateway, at) = GatewayProcess::start(dir.path(), |ports: &mut Ports| {
        let at = Addresses {
            json_tcp: SocketAddr::from(([127, 0, 0, 1], ports.tcp())),
            json_http: SocketAddr::from(([127, 0, 0, 1], ports.tcp())),
            syslog_udp: SocketAddr::from(([127, 0, 0, 1], ports.udp())),
            syslog_tcp: SocketAddr::from(([127, 0, 0, 1], ports.tcp())),
            remote_write: SocketAddr::from(([127, 0, 0, 1], ports.tcp())),
        };
        let config = format!(
            r#"
[receivers.json]
type = "json_lines"
tcp = "{json_tcp}"
http = "{json_http}"
flush_ms = 20

[receivers.syslog]
type = "syslog"
udp = "{syslog_udp}"
tcp = "{syslog_tcp}"
flush_ms = 20

[receivers.files]
type = "file"
paths = [{pattern}]
checkpoint = {checkpoint}
poll_ms = 20

[receivers.prom]
type = "remote_write"
address = "{remote_write}"

[plugins.json-parser]
path = {parser}
config = {{ timestamp_field = "timestamp", severity_field = "level", message_field = "message" }}

[pipelines.json]
receivers = ["json"]
stages = ["json-parser"]
sinks = ["archive"]

[pipelines.plain]
receivers = ["syslog", "files"]
sinks = ["archive"]

[pipelines.prometheus]
receivers = ["prom"]
signals = ["metrics"]
sinks = ["archive"]

[sinks.archive]
type = "parquet"
path = {archive}
max_file_age = "1s"
"#,
            json_tcp = at.json_tcp,
            json_http = at.json_http,
            syslog_udp = at.syslog_udp,
            syslog_tcp = at.syslog_tcp,
            remote_write = at.remote_write,
            pattern = toml_string(&format!("{}/*.log", logs_dir.display())),
            checkpoint = toml_path(&checkpoint),
            parser = plugin("json-parser"),
            archive = toml_path(&archive),
        );
        (config, at)
    });
    let client = http_client();
    // Every record sent, by its id, and whether the id is an attribute (`id`) or a word of the
    // body.
    let mut in_attribute: Vec<String> = Vec::new();
    let mut in_body: Vec<String> = Vec::new();

    // JSON lines over TCP, then over HTTP.
    let json_line = |id: &str, level: &str| {
        json!({"timestamp": "2026-11-23T10:00:00Z", "level": level, "message": format!("json line {id}"), "id": id})
            .to_string()
    };
    let tcp_ids: Vec<String> = (0..20).map(|index| format!("json-tcp-{index}")).collect();
    let mut stream = TcpStream::connect(at.json_tcp).unwrap();
    for id in &tcp_ids {
        writeln!(stream, "{}", json_line(id, "info")).unwrap();
    }
    drop(stream);
    in_attribute.extend(tcp_ids);
    let http_ids: Vec<String> = (0..20).map(|index| format!("json-http-{index}")).collect();
    let body: String = http_ids
        .iter()
        .map(|id| json_line(id, "warn") + "\n")
        .collect();
    let response = client
        .post(format!("http://{}/v1/jsonl", at.json_http))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().unwrap(),
        json!({"accepted": 20, "rejected": []})
    );
    in_attribute.extend(http_ids);

    // Syslog: RFC 5424 and RFC 3164, over UDP and over TCP in both framings.
    let rfc5424 = |id: &str| {
        format!(
            "<165>1 2026-11-23T10:00:00.000Z web01 shop 4242 ID47 [e2e@32473 case=\"x\"] order {id}"
        )
    };
    let rfc3164 = |id: &str| format!("<34>Nov 23 10:00:00 web01 su[99]: order {id}");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for index in 0..5 {
        for (id, frame) in [
            (
                format!("syslog-udp-5424-{index}"),
                rfc5424 as fn(&str) -> String,
            ),
            (format!("syslog-udp-3164-{index}"), rfc3164),
        ] {
            socket
                .send_to(frame(&id).as_bytes(), at.syslog_udp)
                .unwrap();
            in_body.push(id);
        }
    }
    let mut stream = TcpStream::connect(at.syslog_tcp).unwrap();
    let mut payload = String::new();
    for index in 0..5 {
        let ids = [
            format!("syslog-tcp-counted-5424-{index}"),
            format!("syslog-tcp-counted-3164-{index}"),
            format!("syslog-tcp-newline-5424-{index}"),
            format!("syslog-tcp-newline-3164-{index}"),
        ];
        payload.push_str(&octet_counted(&rfc5424(&ids[0])));
        payload.push_str(&octet_counted(&rfc3164(&ids[1])));
        payload.push_str(&(rfc5424(&ids[2]) + "\n"));
        payload.push_str(&(rfc3164(&ids[3]) + "\n"));
        in_body.extend(ids);
    }
    stream.write_all(payload.as_bytes()).unwrap();
    drop(stream);

    // A file, followed through rotation by rename and create, with a late write through the
    // writer's old handle and appends to the new file.
    let live = logs_dir.join("app.log");
    let mut writer = std::fs::File::create(&live).unwrap();
    let first: Vec<String> = (0..5).map(|index| format!("file-first-{index}")).collect();
    append_lines(&mut writer, &first);
    wait_for_checkpoint(
        &checkpoint,
        inode(&live),
        std::fs::metadata(&live).unwrap().len(),
    );
    let rotated = logs_dir.join("app.log.1");
    std::fs::rename(&live, &rotated).unwrap();
    let mut new_writer = std::fs::File::create(&live).unwrap();
    let second: Vec<String> = (0..5).map(|index| format!("file-second-{index}")).collect();
    append_lines(&mut new_writer, &second);
    let late = vec!["file-late-0".to_owned()];
    append_lines(&mut writer, &late);
    let third: Vec<String> = (0..5).map(|index| format!("file-third-{index}")).collect();
    append_lines(&mut new_writer, &third);
    wait_for_checkpoint(
        &checkpoint,
        inode(&live),
        std::fs::metadata(&live).unwrap().len(),
    );
    wait_for_checkpoint(
        &checkpoint,
        inode(&rotated),
        std::fs::metadata(&rotated).unwrap().len(),
    );
    in_body.extend(first);
    in_body.extend(second);
    in_body.extend(late);
    in_body.extend(third);

    // Prometheus remote-write: two series, three samples.
    let millis = now_nanos() / 1_000_000;
    let request = prompb::WriteRequest {
        timeseries: vec![
            series(
                &[
                    ("__name__", "e2e_requests_total"),
                    ("job", "shop"),
                    ("instance", "web01:9100"),
                    ("id", "rw-0"),
                ],
                &[(42.0, millis - 1000), (43.0, millis)],
            ),
            series(
                &[
                    ("__name__", "e2e_temperature_celsius"),
                    ("job", "shop"),
                    ("instance", "web01:9100"),
                    ("id", "rw-1"),
                ],
                &[(21.5, millis)],
            ),
        ],
    };
    let response = post_remote_write(&client, at.remote_write, &request);
    assert_eq!(response.status(), 204);

    // TCP and UDP have no acknowledgement: wait until the archive holds everything (files are
    // completed a second after they open), then stop.
    let log_count = in_attribute.len() + in_body.len();
    let waited = [
        wait_for_archive_rows(&archive, "logs", log_count as i64, Duration::from_secs(10)),
        wait_for_archive_rows(&archive, "metrics", 3, Duration::from_secs(10)),
    ];
    let stopped = gateway.stop();
    println!("{}", stopped.stderr);
    // Tells, when records are missing, whether they had reached the archive before SIGTERM.
    let waited = format!("before SIGTERM: {waited:?}\n{}", stopped.stderr);
    assert_eq!(
        stopped.sink("archive").written,
        log_count as u64 + 3,
        "{waited}"
    );
    for receiver in ["json", "syslog", "files", "prom"] {
        assert_eq!(stopped.receiver(receiver).malformed, 0, "{receiver}");
    }

    let read = read_archive(&archive, json!({}));
    let log_rows = rows(&read, "logs");
    for id in in_attribute.iter().chain(&in_body) {
        let found = log_rows
            .iter()
            .filter(|row| {
                row["attributes"]["id"] == id.as_str()
                    || word_count(row["body"].as_str().unwrap_or_default(), id) > 0
            })
            .count();
        assert_eq!(found, 1, "{id} archived {found} times; {waited}");
    }
    assert_eq!(log_rows.len(), log_count, "no record lost or duplicated");
    for id in &in_attribute {
        let found: Vec<&Value> = log_rows
            .iter()
            .filter(|row| row["attributes"]["id"] == id.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{id}: {found:?}");
        assert_eq!(found[0]["body"], format!("json line {id}"));
        let severity = if id.starts_with("json-tcp") { 9 } else { 13 };
        assert_eq!(found[0]["severity_number"], severity, "{id}");
        assert_eq!(
            found[0]["time"],
            nanos("2026-11-23T10:00:00Z") / 1000,
            "{id}"
        );
    }
    for id in &in_body {
        let found: Vec<&Value> = log_rows
            .iter()
            .filter(|row| word_count(row["body"].as_str().unwrap_or_default(), id) > 0)
            .collect();
        assert_eq!(found.len(), 1, "{id}: {found:?}");
        let row = found[0];
        if id.starts_with("syslog") {
            assert_eq!(row["body"], format!("order {id}"), "{row}");
            assert_eq!(row["attributes"]["syslog.hostname"], "web01", "{row}");
            if id.contains("5424") {
                assert_eq!(row["attributes"]["syslog.sd.e2e@32473.case"], "x", "{row}");
                assert_eq!(row["severity_number"], 10, "{row}"); // local4.notice
            } else {
                assert_eq!(row["attributes"]["syslog.appname"], "su", "{row}");
                assert_eq!(row["severity_number"], 21, "{row}"); // auth.crit
            }
        } else {
            assert_eq!(row["body"], id.as_str(), "{row}");
            assert!(
                row["resource_attributes"]["log.file.path"]
                    .as_str()
                    .is_some_and(|path| path.starts_with(&logs_dir.display().to_string())),
                "{row}"
            );
        }
    }

    let metric_rows = rows(&read, "metrics");
    let mut points: Vec<(String, String, f64)> = metric_rows
        .iter()
        .map(|row| {
            assert_eq!(row["service_name"], "shop", "{row}");
            (
                row["metric_name"].as_str().unwrap().to_owned(),
                row["attributes"]["id"].as_str().unwrap().to_owned(),
                row["value_double"].as_f64().unwrap(),
            )
        })
        .collect();
    points.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(
        points,
        [
            ("e2e_requests_total".to_owned(), "rw-0".to_owned(), 42.0),
            ("e2e_requests_total".to_owned(), "rw-0".to_owned(), 43.0),
            (
                "e2e_temperature_celsius".to_owned(),
                "rw-1".to_owned(),
                21.5
            ),
        ]
    );
}

// ── 3. Malformed input beside well-formed input ────────────────────────────────────────────────

/// Sends raw bytes as the message of a gRPC call, to reach the server with what no generated
/// client would encode.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
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

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Calls the OTLP logs `Export` method with `body` as the raw message.
async fn raw_grpc_export_logs(address: SocketAddr, body: Vec<u8>) -> Result<(), tonic::Status> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .expect("a URI")
        .connect()
        .await
        .expect("connects over gRPC");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    grpc.unary(
        tonic::Request::new(body),
        http::uri::PathAndQuery::from_static(
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        ),
        RawCodec,
    )
    .await
    .map(|_| ())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// True once the peer has closed the connection (reads end or fail within the timeout).
fn closed_by_peer(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout set");
    let mut buffer = [0u8; 64];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(error) => {
                return !matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

#[test]
fn malformed_input_is_refused_alone_and_the_gateway_keeps_serving() {
    let _schedule = shared();
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    struct Addresses {
        grpc: SocketAddr,
        otlp_http: SocketAddr,
        json_tcp: SocketAddr,
        json_http: SocketAddr,
        syslog_udp: SocketAddr,
        syslog_tcp: SocketAddr,
    }
    let (gateway, at) = GatewayProcess::start(dir.path(), |ports: &mut Ports| {
        let at = Addresses {
            grpc: SocketAddr::from(([127, 0, 0, 1], ports.tcp())),
            otlp_http: SocketAddr::from(([127, 0, 0, 1], ports.tcp())),
            json_tcp: SocketAddr::from(([127, 0, 0, 1], ports.tcp())),
            json_http: SocketAddr::from(([127, 0, 0, 1], ports.tcp())),
            syslog_udp: SocketAddr::from(([127, 0, 0, 1], ports.udp())),
            syslog_tcp: SocketAddr::from(([127, 0, 0, 1], ports.tcp())),
        };
        let config = format!(
            r#"
[receivers.otlp]
type = "otlp"
grpc = "{grpc}"
http = "{otlp_http}"
max_request_bytes = 65536

[receivers.json]
type = "json_lines"
tcp = "{json_tcp}"
http = "{json_http}"
max_request_bytes = 65536
flush_ms = 20

[receivers.syslog]
type = "syslog"
udp = "{syslog_udp}"
tcp = "{syslog_tcp}"
max_frame_bytes = 1024
flush_ms = 20

[plugins.json-parser]
path = {parser}

[pipelines.otlp]
receivers = ["otlp"]
signals = ["logs"]
sinks = ["archive"]

[pipelines.json]
receivers = ["json"]
stages = ["json-parser"]
sinks = ["archive"]

[pipelines.syslog]
receivers = ["syslog"]
sinks = ["archive"]

[sinks.archive]
type = "parquet"
path = {archive}
max_file_age = "1s"
"#,
            grpc = at.grpc,
            otlp_http = at.otlp_http,
            json_tcp = at.json_tcp,
            json_http = at.json_http,
            syslog_udp = at.syslog_udp,
            syslog_tcp = at.syslog_tcp,
            parser = plugin("json-parser"),
            archive = toml_path(&archive),
        );
        (config, at)
    });
    let client = http_client();
    // Ids of the well-formed records, each to be archived exactly once.
    let mut good: Vec<String> = Vec::new();

    // OTLP/HTTP: garbage protobuf is a 400, a request over max_request_bytes once decompressed
    // a 413; good requests around them succeed. (A request whose declared length is over the
    // limit is checked apart, in `an_oversized_http_request_is_always_answered_413`.)
    let request = |id: &str| log_request("e2e", &[(9, id)]).encode_to_vec();
    let response = post_otlp_logs(&client, at.otlp_http, request("otlp-http-0"));
    assert_eq!(response.status(), 200);
    good.push("otlp-http-0".into());
    let response = post_otlp_logs(&client, at.otlp_http, vec![0xff, 0xff, 0xff, 0x0f, 0x12]);
    assert_eq!(response.status(), 400);
    let huge = "x".repeat(100 * 1024);
    let compressed = gzip(&request(&huge));
    assert!(compressed.len() < 65536);
    let response = client
        .post(format!("http://{}/v1/logs", at.otlp_http))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(compressed)
        .send()
        .expect("the gateway answers");
    assert_eq!(response.status(), 413);
    let response = post_otlp_logs(&client, at.otlp_http, request("otlp-http-1"));
    assert_eq!(response.status(), 200);
    good.push("otlp-http-1".into());

    // OTLP/gRPC: garbage is INVALID_ARGUMENT, oversized RESOURCE_EXHAUSTED; good calls around
    // them succeed.
    runtime.block_on(async {
        grpc_export_logs(at.grpc, log_request("e2e", &[(9, "otlp-grpc-0")]))
            .await
            .expect("a good export succeeds");
        let status = raw_grpc_export_logs(at.grpc, vec![0xff, 0xff, 0xff, 0x0f, 0x12])
            .await
            .expect_err("garbage is refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        let status = raw_grpc_export_logs(at.grpc, request(&huge))
            .await
            .expect_err("an oversized request is refused");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        grpc_export_logs(at.grpc, log_request("e2e", &[(9, "otlp-grpc-1")]))
            .await
            .expect("a later good export succeeds");
    });
    good.push("otlp-grpc-0".into());
    good.push("otlp-grpc-1".into());

    // JSON lines over HTTP: invalid lines are listed in a 400, the valid ones kept; a body over
    // max_request_bytes once decompressed is a 413; a later request succeeds.
    let json_line = |id: &str| json!({"message": format!("json {id}"), "id": id}).to_string();
    let body = [
        json_line("json-http-0"),
        "{not json".to_owned(),
        json_line("json-http-1"),
        "[1, 2".to_owned(),
        json_line("json-http-2"),
    ]
    .join("\n");
    let response = client
        .post(format!("http://{}/v1/jsonl", at.json_http))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().unwrap();
    assert_eq!(answer["accepted"], 3, "{answer}");
    let refused_lines: Vec<&Value> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|refused| &refused["line"])
        .collect();
    assert_eq!(refused_lines, [&json!(2), &json!(4)], "{answer}");
    good.extend((0..3).map(|index| format!("json-http-{index}")));
    let response = client
        .post(format!("http://{}/v1/jsonl", at.json_http))
        .header("content-encoding", "gzip")
        .body(gzip(json_line(&"y".repeat(100 * 1024)).as_bytes()))
        .send()
        .unwrap();
    assert_eq!(response.status(), 413);
    let response = client
        .post(format!("http://{}/v1/jsonl", at.json_http))
        .body(json_line("json-http-3"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    good.push("json-http-3".into());

    // JSON lines over TCP: an invalid line between valid ones.
    let mut stream = TcpStream::connect(at.json_tcp).unwrap();
    write!(
        stream,
        "{}\n{{\"unterminated\": \n{}\n",
        json_line("json-tcp-0"),
        json_line("json-tcp-1")
    )
    .unwrap();
    drop(stream);
    good.extend(["json-tcp-0".to_owned(), "json-tcp-1".to_owned()]);

    // Syslog over TCP: a frame that is not syslog between good ones (kept, marked as a parse
    // error); a bad octet count closes the connection, keeping what came before; a new
    // connection is served.
    let mut stream = TcpStream::connect(at.syslog_tcp).unwrap();
    stream
        .write_all(b"<13>1 2026-11-23T10:00:00Z web01 app - - - syslog-tcp-0\nthis frame is not syslog\n<13>Nov 23 10:00:01 web01 app: syslog-tcp-1\n")
        .unwrap();
    stream
        .write_all(
            format!(
                "{}0 <13>bad count\n",
                octet_counted("<13>1 - web01 app - - - syslog-tcp-2")
            )
            .as_bytes(),
        )
        .unwrap();
    assert!(
        closed_by_peer(&mut stream),
        "a bad octet count closes the connection"
    );
    let mut stream = TcpStream::connect(at.syslog_tcp).unwrap();
    stream
        .write_all(octet_counted("<13>1 - web01 app - - - syslog-tcp-3").as_bytes())
        .unwrap();
    drop(stream);
    good.extend((0..4).map(|index| format!("syslog-tcp-{index}")));

    // Syslog over UDP: binary garbage between good datagrams.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(b"<13>1 - web01 app - - - syslog-udp-0", at.syslog_udp)
        .unwrap();
    socket
        .send_to(&[0x00, 0xff, 0xfe, 0x01, 0x80], at.syslog_udp)
        .unwrap();
    socket
        .send_to(b"<13>1 - web01 app - - - syslog-udp-1", at.syslog_udp)
        .unwrap();
    good.extend((0..2).map(|index| format!("syslog-udp-{index}")));

    // The well-formed records, plus the two non-syslog frames kept as parse errors.
    let expected_rows = good.len() + 2;
    let waited = wait_for_archive_rows(
        &archive,
        "logs",
        expected_rows as i64,
        Duration::from_secs(10),
    );
    let stopped = gateway.stop();
    println!("{}", stopped.stderr);
    // Tells, when records are missing, whether they had reached the archive before SIGTERM.
    let waited = format!("before SIGTERM: {waited:?}\n{}", stopped.stderr);
    // OTLP: garbage and oversized, over each transport.
    assert_eq!(stopped.receiver("otlp").malformed, 4, "{}", stopped.stderr);
    // JSON lines: two invalid lines and an oversized body over HTTP, one invalid line over TCP.
    assert_eq!(stopped.receiver("json").malformed, 4, "{}", stopped.stderr);
    // Syslog: the frame that is not syslog, the bad octet count, the binary datagram.
    assert_eq!(
        stopped.receiver("syslog").malformed,
        3,
        "{}",
        stopped.stderr
    );

    let read = read_archive(&archive, json!({}));
    let log_rows = rows(&read, "logs");
    for id in &good {
        let found = log_rows
            .iter()
            .filter(|row| {
                row["attributes"]["test.id"] == id.as_str()
                    || row["attributes"]["id"] == id.as_str()
                    || word_count(row["body"].as_str().unwrap_or_default(), id) > 0
            })
            .count();
        assert_eq!(found, 1, "{id} archived {found} times; {waited}");
    }
    assert_eq!(log_rows.len(), expected_rows, "{log_rows:#?}");
    let parse_errors: Vec<&str> = log_rows
        .iter()
        .filter(|row| row["attributes"]["sluice.parse_error"].is_string())
        .map(|row| row["body"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(parse_errors.len(), 2, "{parse_errors:?}");
    assert!(
        parse_errors.contains(&"this frame is not syslog"),
        "{parse_errors:?}"
    );
}

// ── 4. A detector's alert reaches a webhook ────────────────────────────────────────────────────

#[test]
fn an_error_burst_alert_reaches_the_webhook_as_documented() {
    let _schedule = shared();
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();

    // The webhook receiver: every POST body, in order.
    let (posts_sender, mut posts) = tokio::sync::mpsc::unbounded_channel::<(String, Value)>();
    let webhook = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/hooks/sluice",
            axum::routing::post(
                move |headers: http::HeaderMap, body: axum::body::Bytes| async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let _ = posts_sender.send((content_type, body));
                    http::StatusCode::OK
                },
            ),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        address
    });

    let (gateway, otlp_http) = GatewayProcess::start(dir.path(), |ports: &mut Ports| {
        let http = SocketAddr::from(([127, 0, 0, 1], ports.tcp()));
        let config = format!(
            r#"
[receivers.otlp]
type = "otlp"
http = "{http}"

[plugins.error-burst]
path = {detector}
config = {{ threshold = 5, window_seconds = 60 }}

[pipelines.logs]
receivers = ["otlp"]
signals = ["logs"]
stages = ["error-burst"]
sinks = ["archive"]
alerts = ["hook"]

[sinks.archive]
type = "parquet"
path = "archive"

[sinks.hook]
type = "webhook"
url = "http://{webhook}/hooks/sluice"
retry_initial = "100ms"
"#,
            detector = plugin("error-burst"),
        );
        (config, http)
    });

    // Eight errors of one service (threshold 5) and some info records of another, in one
    // request; then a second request with more errors, which must not fire again.
    let client = http_client();
    let errors: Vec<String> = (0..8).map(|index| format!("error-{index}")).collect();
    let records: Vec<(i32, &str)> = errors.iter().map(|id| (17, id.as_str())).collect();
    let response = post_otlp_logs(
        &client,
        otlp_http,
        log_request("checkout", &records).encode_to_vec(),
    );
    assert_eq!(response.status(), 200);
    let response = post_otlp_logs(
        &client,
        otlp_http,
        log_request(
            "catalog",
            &[(9, "info-0"), (9, "info-1"), (17, "catalog-error-0")],
        )
        .encode_to_vec(),
    );
    assert_eq!(response.status(), 200);

    let (content_type, body) = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), posts.recv())
            .await
            .expect("the webhook is called within 10 s")
            .expect("the webhook server runs")
    });
    let response = post_otlp_logs(
        &client,
        otlp_http,
        log_request("checkout", &[(17, "error-8"), (17, "error-9")]).encode_to_vec(),
    );
    assert_eq!(response.status(), 200);
    let stopped = gateway.stop();
    println!("{}\n{body:#}", stopped.stderr);

    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(body["version"], "1", "{body}");
    let alerts = body["alerts"].as_array().expect("alerts");
    assert_eq!(alerts.len(), 1, "{body}");
    let alert = &alerts[0];
    assert_eq!(alert["name"], "ErrorBurst", "{alert}");
    assert_eq!(alert["status"], "firing", "{alert}");
    assert_eq!(alert["severity"], "error", "{alert}");
    assert_eq!(alert["source"], "error-burst", "{alert}");
    assert_eq!(
        alert["labels"],
        json!({"service": "checkout", "window": "60s"}),
        "{alert}"
    );
    assert!(alert["ends_at"].is_null(), "{alert}");
    assert!(
        alert["summary"]
            .as_str()
            .is_some_and(|summary| summary.contains("checkout")),
        "{alert}"
    );
    let fingerprint = alert["fingerprint"].as_str().expect("a fingerprint");
    assert_eq!(fingerprint.len(), 16, "{alert}");
    assert!(
        fingerprint.chars().all(|c| c.is_ascii_hexdigit()),
        "{alert}"
    );
    let starts_at = alert["starts_at"].as_str().expect("starts_at");
    assert!(starts_at.ends_with('Z'), "{alert}");
    let starts_at = chrono::DateTime::parse_from_rfc3339(starts_at).expect("RFC 3339");
    let age = chrono::Utc::now().signed_duration_since(starts_at);
    assert!(
        age >= chrono::TimeDelta::zero() && age < chrono::TimeDelta::seconds(60),
        "starts_at {starts_at} is not recent"
    );

    // One incident, one alert: nothing more was posted, and the counters agree.
    assert!(posts.try_recv().is_err(), "a second alert was posted");
    assert_eq!(stopped.pipeline("logs").alerts, 1, "{}", stopped.stderr);
    assert_eq!(stopped.sink("hook").alerts, 1, "{}", stopped.stderr);
    assert_eq!(stopped.sink("archive").written, 13, "{}", stopped.stderr);
}

// ── 5. The embedded default config ─────────────────────────────────────────────────────────────

#[test]
fn the_default_config_serves_otlp_and_archives_under_the_working_directory() {
    // Fixed ports, and a start time to measure: no other gateway of this file runs meanwhile.
    let _schedule = exclusive();
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();

    // `validate` loads every plugin of the default config: the plugin cache is warm after it.
    let validated = support::gateway::sluice_command()
        .arg("validate")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "{}",
        String::from_utf8_lossy(&validated.stderr)
    );

    let mut command = support::gateway::sluice_command();
    command.arg("run").current_dir(dir.path());
    let gateway = GatewayProcess::spawn(command, &[4317, 4318, 5170]).unwrap_or_else(|failed| {
        panic!(
            "sluice run (default config) did not start; is something else on 127.0.0.1:4317, 4318 or 5170?\n{}",
            failed.stderr
        )
    });
    let start_ms = gateway.start_ms();
    println!("sluice run with the default config: {start_ms} ms to start (warm plugin cache)");

    let client = http_client();
    let response = post_otlp_logs(
        &client,
        "127.0.0.1:4318".parse().unwrap(),
        log_request("default-config", &[(9, "default-http-0")]).encode_to_vec(),
    );
    assert_eq!(response.status(), 200);
    runtime.block_on(async {
        grpc_export_logs(
            "127.0.0.1:4317".parse().unwrap(),
            log_request("default-config", &[(13, "default-grpc-0")]),
        )
        .await
        .expect("an export over gRPC succeeds");
    });
    let stopped = gateway.stop();
    println!("{}", stopped.stderr);
    assert_eq!(stopped.receiver("otlp").accepted, 2, "{}", stopped.stderr);

    let archive = dir.path().join("data/archive");
    let read = read_archive(&archive, json!({}));
    let mut bodies: Vec<(&str, &str)> = rows(&read, "logs")
        .iter()
        .map(|row| {
            (
                row["body"].as_str().unwrap_or_default(),
                row["service_name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        [
            ("default-grpc-0", "default-config"),
            ("default-http-0", "default-config")
        ]
    );
    assert!(
        start_ms < 1000,
        "the default config took {start_ms} ms to start with a warm plugin cache"
    );
}

// ── 6. Dead letters ────────────────────────────────────────────────────────────────────────────

#[test]
fn a_faulting_plugin_dead_letters_its_batch_and_the_next_batch_flows() {
    let _schedule = shared();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let dlq = dir.path().join("dlq.jsonl");

    // Two pipelines, each with the hostile filter in another mode: one traps (a panic), one
    // loops past its deadline. Both dead-letter to the same file.
    let (gateway, (trapping, looping)) = GatewayProcess::start(dir.path(), |ports: &mut Ports| {
        let trapping = SocketAddr::from(([127, 0, 0, 1], ports.tcp()));
        let looping = SocketAddr::from(([127, 0, 0, 1], ports.tcp()));
        let config = format!(
            r#"
[receivers.trapping]
type = "otlp"
http = "{trapping}"

[receivers.looping]
type = "otlp"
http = "{looping}"

# Deadlines are wall-clock time: on a busy machine a healthy call may take more than the
# default 10 ms, so the trapping plugin gets a second and the looping one 100 ms.
[plugins.panicky]
path = {hostile}
config = {{ mode = "panic" }}
on_error = "dead-letter"
limits = {{ deadline_ms = 1000 }}

[plugins.spinner]
path = {hostile}
config = {{ mode = "loop" }}
on_error = "dead-letter"
limits = {{ deadline_ms = 100 }}

[pipelines.trapping]
receivers = ["trapping"]
signals = ["logs"]
stages = ["panicky"]
sinks = ["out"]
dead_letter = "dlq"

[pipelines.looping]
receivers = ["looping"]
signals = ["logs"]
stages = ["spinner"]
sinks = ["out"]
dead_letter = "dlq"

[sinks.out]
type = "file"
path = {out}

[sinks.dlq]
type = "file"
path = {dlq}
"#,
            hostile = plugin("hostile"),
            out = toml_path(&out),
            dlq = toml_path(&dlq),
        );
        (config, (trapping, looping))
    });
    let client = http_client();
    let context = || {
        format!(
            "dead letters: {:?}\ngateway stderr:\n{}",
            read_json_lines(&dlq),
            gateway.stderr_so_far()
        )
    };

    for (address, plugin_name) in [(trapping, "panicky"), (looping, "spinner")] {
        // A batch the plugin faults on: every record of it goes to the dead-letter file,
        // unchanged, marked with the plugin's name.
        let faulting = [
            format!("{plugin_name}-before"),
            "trigger".to_owned(),
            format!("{plugin_name}-after"),
        ];
        let records: Vec<(i32, &str)> = faulting.iter().map(|body| (9, body.as_str())).collect();
        let response = post_otlp_logs(
            &client,
            address,
            log_request("dead-letters", &records).encode_to_vec(),
        );
        assert_eq!(response.status(), 200);
        let expected_dead = if plugin_name == "panicky" { 3 } else { 6 };
        let dead = wait_for_lines(&dlq, expected_dead, Duration::from_secs(10), context);
        let dead: Vec<&Value> = dead
            .iter()
            .filter(|record| record["attributes"]["sluice.dead_letter.plugin"] == plugin_name)
            .collect();
        let bodies: Vec<&str> = dead
            .iter()
            .map(|record| record["body"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(bodies, faulting, "{dead:?}");
        for record in &dead {
            assert!(
                record["attributes"]["calls"].is_null(),
                "a dead letter is the batch as it came, without the plugin's edits: {record}"
            );
            assert_eq!(record["attributes"]["test.id"], record["body"], "{record}");
        }

        // The next batch flows through a fresh instance, edited by it.
        let next = format!("{plugin_name}-next");
        let response = post_otlp_logs(
            &client,
            address,
            log_request("dead-letters", &[(9, &next)]).encode_to_vec(),
        );
        assert_eq!(response.status(), 200);
        let expected_out = if plugin_name == "panicky" { 1 } else { 2 };
        let flowed = wait_for_lines(&out, expected_out, Duration::from_secs(10), context);
        let record = flowed
            .iter()
            .find(|record| record["body"] == next.as_str())
            .unwrap_or_else(|| panic!("{next} did not flow: {flowed:?}"));
        assert!(record["attributes"]["calls"].is_i64(), "{record}");
        assert!(
            record["attributes"]["sluice.dead_letter.plugin"].is_null(),
            "{record}"
        );
    }

    let stopped = gateway.stop();
    println!("{}", stopped.stderr);
    for pipeline in ["trapping", "looping"] {
        let summary = stopped.pipeline(pipeline);
        assert_eq!(
            (
                summary.records_in,
                summary.records_out,
                summary.dead_lettered
            ),
            (4, 1, 3),
            "{pipeline}: {}",
            stopped.stderr
        );
    }
    assert_eq!(stopped.sink("dlq").written, 6, "{}", stopped.stderr);
    assert_eq!(stopped.sink("out").written, 2, "{}", stopped.stderr);
    assert_eq!(read_json_lines(&dlq).len(), 6);
    assert_eq!(read_json_lines(&out).len(), 2);
}

// ── 7. Shutdown and restart ────────────────────────────────────────────────────────────────────

#[test]
fn the_file_receiver_reads_lines_appended_while_stopped_exactly_once_after_a_restart() {
    let _schedule = shared();
    let dir = tempfile::tempdir().unwrap();
    let logs_dir = dir.path().join("logs");
    std::fs::create_dir_all(&logs_dir).unwrap();
    let archive = dir.path().join("archive");
    let checkpoint = dir.path().join("state/files.json");
    let render = |_: &mut Ports| {
        let config = format!(
            r#"
[receivers.files]
type = "file"
paths = [{pattern}]
checkpoint = {checkpoint}
poll_ms = 20

[pipelines.files]
receivers = ["files"]
sinks = ["archive"]

[sinks.archive]
type = "parquet"
path = {archive}
"#,
            pattern = toml_string(&format!("{}/*.log", logs_dir.display())),
            checkpoint = toml_path(&checkpoint),
            archive = toml_path(&archive),
        );
        (config, ())
    };
    let live = logs_dir.join("app.log");
    let mut writer = std::fs::File::create(&live).unwrap();
    let before: Vec<String> = (0..50).map(|index| format!("before-{index}")).collect();
    append_lines(&mut writer, &before);

    let (gateway, ()) = GatewayProcess::start(dir.path(), render);
    wait_for_checkpoint(
        &checkpoint,
        inode(&live),
        std::fs::metadata(&live).unwrap().len(),
    );
    let first_run = gateway.stop();
    assert_eq!(
        first_run.receiver("files").accepted,
        50,
        "{}",
        first_run.stderr
    );

    // Written while no gateway runs: the next one starts where the checkpoint says.
    let during: Vec<String> = (0..30)
        .map(|index| format!("while-stopped-{index}"))
        .collect();
    append_lines(&mut writer, &during);
    let (gateway, ()) = GatewayProcess::start(dir.path(), render);
    let after: Vec<String> = (0..20).map(|index| format!("after-{index}")).collect();
    append_lines(&mut writer, &after);
    wait_for_checkpoint(
        &checkpoint,
        inode(&live),
        std::fs::metadata(&live).unwrap().len(),
    );
    let second_run = gateway.stop();
    assert_eq!(
        second_run.receiver("files").accepted,
        50,
        "{}",
        second_run.stderr
    );

    let read = read_archive(&archive, json!({}));
    let mut bodies: Vec<&str> = rows(&read, "logs")
        .iter()
        .map(|row| row["body"].as_str().unwrap_or_default())
        .collect();
    bodies.sort();
    let mut expected: Vec<&str> = before
        .iter()
        .chain(&during)
        .chain(&after)
        .map(String::as_str)
        .collect();
    expected.sort();
    assert_eq!(bodies, expected, "every line once, across the restart");
}

#[test]
fn lines_a_tcp_client_sent_before_sigterm_are_drained_into_the_sinks() {
    let _schedule = shared();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let (gateway, (json_tcp, syslog_tcp)) =
        GatewayProcess::start(dir.path(), |ports: &mut Ports| {
            let json_tcp = SocketAddr::from(([127, 0, 0, 1], ports.tcp()));
            let syslog_tcp = SocketAddr::from(([127, 0, 0, 1], ports.tcp()));
            let config = format!(
                r#"
[receivers.json]
type = "json_lines"
tcp = "{json_tcp}"
flush_ms = 10

[receivers.syslog]
type = "syslog"
tcp = "{syslog_tcp}"
flush_ms = 10

[pipelines.main]
receivers = ["json", "syslog"]
sinks = ["out"]

[sinks.out]
type = "file"
path = {out}
"#,
                out = toml_path(&out),
            );
            (config, (json_tcp, syslog_tcp))
        });

    // Both connections are accepted and served: their first line is out.
    let mut json_stream = TcpStream::connect(json_tcp).unwrap();
    let mut syslog_stream = TcpStream::connect(syslog_tcp).unwrap();
    json_stream.write_all(b"{\"n\": \"first\"}\n").unwrap();
    syslog_stream
        .write_all(b"<13>1 - host app - - - first\n")
        .unwrap();
    wait_for_lines(&out, 2, Duration::from_secs(10), || gateway.stderr_so_far());

    // Then a burst on each, the connections closed by the client, and SIGTERM: a graceful stop
    // reads what the clients sent before it stops.
    const BURST: usize = 20_000;
    let json_burst: String = (0..BURST)
        .map(|index| format!("{{\"n\": {index}}}\n"))
        .collect();
    let syslog_burst: String = (0..BURST)
        .map(|index| format!("<13>1 - host app - - - burst {index}\n"))
        .collect();
    let json_writer = std::thread::spawn(move || {
        json_stream.write_all(json_burst.as_bytes()).unwrap();
        json_stream.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let syslog_writer = std::thread::spawn(move || {
        syslog_stream.write_all(syslog_burst.as_bytes()).unwrap();
        syslog_stream.shutdown(std::net::Shutdown::Write).unwrap();
    });
    json_writer.join().unwrap();
    syslog_writer.join().unwrap();
    let stopped = gateway.stop();
    println!("{}", stopped.stderr);
    assert_eq!(
        stopped.receiver("json").accepted,
        BURST as u64 + 1,
        "{}",
        stopped.stderr
    );
    assert_eq!(
        stopped.receiver("syslog").accepted,
        BURST as u64 + 1,
        "{}",
        stopped.stderr
    );
    assert_eq!(read_json_lines(&out).len(), 2 * (BURST + 1));
}

#[test]
fn an_oversized_http_request_is_always_answered_413() {
    let _schedule = shared();
    let dir = tempfile::tempdir().unwrap();
    let (gateway, (otlp_http, json_http)) =
        GatewayProcess::start(dir.path(), |ports: &mut Ports| {
            let otlp_http = SocketAddr::from(([127, 0, 0, 1], ports.tcp()));
            let json_http = SocketAddr::from(([127, 0, 0, 1], ports.tcp()));
            let config = format!(
                r#"
[receivers.otlp]
type = "otlp"
http = "{otlp_http}"
max_request_bytes = 65536

[receivers.json]
type = "json_lines"
http = "{json_http}"
max_request_bytes = 65536

[pipelines.main]
receivers = ["otlp", "json"]
signals = ["logs"]
sinks = ["out"]

[sinks.out]
type = "stdout"
"#
            );
            (config, (otlp_http, json_http))
        });
    // What an SDK does with a batch too large for the gateway: one POST with its length
    // declared. Each must get its 413 (which OTLP clients do not retry), never a cut
    // connection (which they retry, sending the same batch again and again).
    let client = http_client();
    let body = vec![b'x'; 100 * 1024];
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for (address, path) in [(otlp_http, "/v1/logs"), (json_http, "/v1/jsonl")] {
        for _ in 0..200 {
            let outcome = match client
                .post(format!("http://{address}{path}"))
                .header("content-type", "application/x-protobuf")
                .body(body.clone())
                .send()
            {
                Ok(response) => format!("{path}: {}", response.status()),
                Err(error) => format!("{path}: no answer: {error:?}"),
            };
            *outcomes.entry(outcome).or_default() += 1;
        }
    }
    gateway.stop();
    assert_eq!(
        outcomes,
        BTreeMap::from([
            ("/v1/jsonl: 413 Payload Too Large".to_owned(), 200),
            ("/v1/logs: 413 Payload Too Large".to_owned(), 200),
        ]),
        "every oversized request is answered 413"
    );
}
