//! The Prometheus remote-write receiver over real HTTP: a real Prometheus server (Debian's
//! `prometheus` package) scraping a fixed target and remote-writing to the receiver, then
//! requests encoded here (prost + snappy, from message definitions of this test's own) for exact
//! contents and for each kind of bad request.

mod support;

use support::prompb;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    NumberDataPoint, ResourceMetrics, metric, number_data_point,
};
use prost::Message;
use sluice::intake::{Envelope, Intake};
use sluice::model::{Batch, MetricBatch};
use sluice::receivers::{ReceiverConfig, ReceiverContext, ReceiverStats};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Running {
    batches: mpsc::Receiver<Envelope>,
    context: ReceiverContext,
    tasks: Vec<JoinHandle<()>>,
    address: SocketAddr,
}

async fn start(extra: &str, intake: (Intake, mpsc::Receiver<Envelope>)) -> Running {
    let (intake, batches) = intake;
    let context = ReceiverContext {
        name: Arc::from("prom"),
        intake,
        shutdown: CancellationToken::new(),
        stats: Arc::new(ReceiverStats::default()),
    };
    // A port found free may be taken before the receiver binds it (by another test's client
    // connection): try another port then.
    for _ in 0..5 {
        let address: SocketAddr = format!("127.0.0.1:{}", support::free_port())
            .parse()
            .unwrap();
        let config: ReceiverConfig = toml::from_str(&format!(
            "type = \"remote_write\"\naddress = \"{address}\"\n{extra}"
        ))
        .unwrap();
        match sluice::receivers::start(&config, context.clone()).await {
            Ok(tasks) => {
                return Running {
                    batches,
                    context,
                    tasks,
                    address,
                };
            }
            Err(error) if error.to_string().contains("in use") => continue,
            Err(error) => panic!("{error:#}"),
        }
    }
    panic!("no free port");
}

async fn stop(running: Running) {
    running.context.shutdown.cancel();
    for task in running.tasks {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the receiver ends on shutdown")
            .unwrap();
    }
}

fn metrics_of(envelope: Envelope) -> MetricBatch {
    assert_eq!(&*envelope.receiver, "prom");
    match envelope.batch {
        Batch::Metrics(batch) => batch,
        other => panic!("remote-write must produce metrics, got {other:?}"),
    }
}

fn string_value(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref())
        .and_then(|value| match &value.value {
            Some(any_value::Value::StringValue(text)) => Some(text.clone()),
            _ => None,
        })
}

/// A point without its resource and time: (metric, sorted attributes, value).
type NamedValue = (String, Vec<(String, String)>, f64);

/// A bad request and its expected status: (what, body, content type, encoding, status).
type BadRequest = (
    &'static str,
    Vec<u8>,
    &'static str,
    Option<&'static str>,
    u16,
);

/// Every point as (service.name, service.instance.id, metric, sorted attributes, value, time).
type Point = (String, String, String, Vec<(String, String)>, f64, u64);

fn points(batch: &MetricBatch) -> Vec<Point> {
    let mut out = Vec::new();
    for resource in &batch.resource_metrics {
        let attributes = &resource.resource.as_ref().unwrap().attributes;
        let job = string_value(attributes, "service.name").unwrap_or_default();
        let instance = string_value(attributes, "service.instance.id").unwrap_or_default();
        for scope in &resource.scope_metrics {
            for metric in &scope.metrics {
                let Some(metric::Data::Gauge(gauge)) = &metric.data else {
                    panic!("every remote-write series is a gauge: {metric:?}");
                };
                for point in &gauge.data_points {
                    out.push((
                        job.clone(),
                        instance.clone(),
                        metric.name.clone(),
                        point_attributes(point),
                        value_of(point),
                        point.time_unix_nano,
                    ));
                }
            }
        }
    }
    out
}

fn point_attributes(point: &NumberDataPoint) -> Vec<(String, String)> {
    let mut attributes: Vec<(String, String)> = point
        .attributes
        .iter()
        .map(|attribute| {
            (
                attribute.key.clone(),
                string_value(std::slice::from_ref(attribute), &attribute.key).unwrap(),
            )
        })
        .collect();
    attributes.sort();
    attributes
}

fn value_of(point: &NumberDataPoint) -> f64 {
    match point.value {
        Some(number_data_point::Value::AsDouble(value)) => value,
        other => panic!("points are doubles: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// A real Prometheus.

/// Kills the child process when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const EXPOSITION: &str = "\
# TYPE sluice_test_temperature gauge
sluice_test_temperature{room=\"kitchen\"} 21.5
sluice_test_temperature{room=\"attic\"} 30
# TYPE sluice_test_requests_total counter
sluice_test_requests_total{method=\"GET\",code=\"200\"} 7
";

/// Serves `EXPOSITION` at `/metrics` until the token is cancelled.
async fn serve_target(shutdown: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            ([("content-type", "text/plain; version=0.0.4")], EXPOSITION)
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .unwrap();
    });
    address
}

fn prometheus_installed() -> bool {
    Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_writes_what_it_scraped() {
    assert!(
        prometheus_installed(),
        "`prometheus` is not installed: run `bash scripts/system-deps` (the README's test command does)"
    );
    let mut running = start("", Intake::new(64, Duration::from_secs(1))).await;
    let target_shutdown = CancellationToken::new();
    let target = serve_target(target_shutdown.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: sluice-test
    static_configs:
      - targets: ["{target}"]
remote_write:
  - url: http://{receiver}/api/v1/write
    queue_config:
      batch_send_deadline: 100ms
      min_backoff: 50ms
      max_backoff: 500ms
"#,
            receiver = running.address
        ),
    )
    .unwrap();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let _prometheus = ChildGuard(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            // Port 0: its web interface is not used.
            .arg("--web.listen-address=127.0.0.1:0")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("prometheus starts"),
    );

    // Wait for a scrape of our target to come through, whatever else Prometheus sends first.
    let instance = target.to_string();
    let wanted = |point: &Point| {
        point.0 == "sluice-test" && point.1 == instance && point.2.starts_with("sluice_test_")
    };
    let mut ours: Vec<Point> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while ours.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let envelope = tokio::time::timeout(left, running.batches.recv())
            .await
            .unwrap_or_else(|_| panic!("no scrape of the target arrived from Prometheus: {ours:?}"))
            .unwrap();
        ours.extend(points(&metrics_of(envelope)).into_iter().filter(&wanted));
    }
    // The first scrape's three series (a later scrape may have come along in the same batch).
    let first_time = ours.iter().map(|point| point.5).min().unwrap();
    let mut first: Vec<Point> = ours
        .into_iter()
        .filter(|point| point.5 == first_time)
        .collect();
    first.sort_by(|a, b| (&a.2, &a.3).cmp(&(&b.2, &b.3)));
    let pair = |key: &str, value: &str| (key.to_owned(), value.to_owned());
    let expected: Vec<NamedValue> = vec![
        (
            "sluice_test_requests_total".into(),
            vec![pair("code", "200"), pair("method", "GET")],
            7.0,
        ),
        (
            "sluice_test_temperature".into(),
            vec![pair("room", "attic")],
            30.0,
        ),
        (
            "sluice_test_temperature".into(),
            vec![pair("room", "kitchen")],
            21.5,
        ),
    ];
    let got: Vec<NamedValue> = first
        .iter()
        .map(|point| (point.2.clone(), point.3.clone(), point.4))
        .collect();
    assert_eq!(got, expected);
    assert!(
        first_time >= started - 60_000_000_000,
        "scrape time {first_time}"
    );
    assert_eq!(
        running
            .context
            .stats
            .records_malformed
            .load(Ordering::Relaxed),
        0
    );
    target_shutdown.cancel();
    stop(running).await;
}

// ---------------------------------------------------------------------------------------------
// Requests encoded here.

fn label(name: &str, value: &str) -> prompb::Label {
    prompb::Label {
        name: name.into(),
        value: value.into(),
    }
}

fn series(labels: &[(&str, &str)], samples: &[(f64, i64)]) -> prompb::TimeSeries {
    prompb::TimeSeries {
        labels: labels
            .iter()
            .map(|(name, value)| label(name, value))
            .collect(),
        samples: samples
            .iter()
            .map(|&(value, timestamp)| prompb::Sample { value, timestamp })
            .collect(),
        exemplars: Vec::new(),
    }
}

fn encode(request: &prompb::WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .unwrap()
}

fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn post(
    client: &reqwest::Client,
    address: SocketAddr,
    body: Vec<u8>,
    content_type: &str,
    encoding: Option<&str>,
) -> reqwest::Response {
    let mut request = client
        .post(format!("http://{address}/api/v1/write"))
        .header("content-type", content_type)
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(body);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_requests_arrive_exactly_and_bad_ones_are_refused() {
    let mut running = start(
        "max_request_bytes = 4096",
        Intake::new(64, Duration::from_secs(1)),
    )
    .await;
    let client = http_client();
    let protobuf = "application/x-protobuf";

    let mut exemplar_series = series(
        &[
            ("__name__", "latency_seconds"),
            ("job", "api"),
            ("instance", "b:80"),
        ],
        &[(0.25, 1_700_000_000_500)],
    );
    exemplar_series.exemplars.push(prompb::Exemplar {
        labels: vec![label("trace_id", "abc")],
        value: 0.3,
        timestamp: 1_700_000_000_400,
    });
    let request = prompb::WriteRequest {
        timeseries: vec![
            series(
                &[
                    ("__name__", "cpu_seconds"),
                    ("cpu", "0"),
                    ("instance", "a:9100"),
                    ("job", "node"),
                ],
                &[(10.5, 1_700_000_000_000), (11.0, 1_700_000_015_000)],
            ),
            // No __name__: skipped, its neighbours kept.
            series(
                &[("instance", "a:9100"), ("job", "node")],
                &[(1.0, 1_700_000_000_000)],
            ),
            series(
                &[
                    ("__name__", "cpu_seconds"),
                    ("cpu", "1"),
                    ("instance", "a:9100"),
                    ("job", "node"),
                ],
                &[(f64::from_bits(0x7ff0_0000_0000_0002), 1_700_000_000_000)],
            ),
            exemplar_series,
            series(&[("__name__", "no_job")], &[(-1.0, 1_700_000_000_000)]),
        ],
    };
    let response = post(
        &client,
        running.address,
        encode(&request),
        protobuf,
        Some("snappy"),
    )
    .await;
    assert_eq!(response.status(), 204);
    let batch = metrics_of(
        tokio::time::timeout(Duration::from_secs(5), running.batches.recv())
            .await
            .unwrap()
            .unwrap(),
    );
    let pair = |key: &str, value: &str| (key.to_owned(), value.to_owned());
    let got = points(&batch);
    assert_eq!(got.len(), 5);
    assert_eq!(
        got[0],
        (
            "node".into(),
            "a:9100".into(),
            "cpu_seconds".into(),
            vec![pair("cpu", "0")],
            10.5,
            1_700_000_000_000_000_000
        )
    );
    assert_eq!(got[1].4, 11.0);
    assert_eq!(got[1].5, 1_700_000_015_000_000_000);
    assert_eq!(got[2].3, vec![pair("cpu", "1")]);
    assert_eq!(
        got[2].4.to_bits(),
        0x7ff0_0000_0000_0002,
        "staleness marker kept"
    );
    assert_eq!(
        (
            got[3].0.as_str(),
            got[3].1.as_str(),
            got[3].2.as_str(),
            got[3].4
        ),
        ("api", "b:80", "latency_seconds", 0.25)
    );
    assert_eq!(
        (
            got[4].0.as_str(),
            got[4].1.as_str(),
            got[4].2.as_str(),
            got[4].4
        ),
        ("", "", "no_job", -1.0)
    );
    // Three resources, the series of one name merged into one metric.
    assert_eq!(batch.resource_metrics.len(), 3);
    let node: &ResourceMetrics = &batch.resource_metrics[0];
    assert_eq!(node.scope_metrics[0].metrics.len(), 1);
    let Some(metric::Data::Gauge(gauge)) = &node.scope_metrics[0].metrics[0].data else {
        panic!("gauge expected")
    };
    assert_eq!(
        gauge.data_points[2].flags, 1,
        "NO_RECORDED_VALUE on the marker"
    );
    assert!(
        batch.resource_metrics[2]
            .resource
            .as_ref()
            .unwrap()
            .attributes
            .is_empty()
    );
    assert_eq!(
        running
            .context
            .stats
            .records_malformed
            .load(Ordering::Relaxed),
        1
    );

    // Bad requests: each refused, nothing reaches the intake.
    let good = encode(&prompb::WriteRequest {
        timeseries: vec![series(&[("__name__", "x")], &[(1.0, 1)])],
    });
    let cases: Vec<BadRequest> = vec![
        (
            "not snappy",
            b"\xff\xff\xff\xff\xff not snappy".to_vec(),
            protobuf,
            Some("snappy"),
            400,
        ),
        (
            "snappy, not protobuf",
            snap::raw::Encoder::new()
                .compress_vec(b"\xff\xff\xff\xff")
                .unwrap(),
            protobuf,
            Some("snappy"),
            400,
        ),
        ("no encoding", good.clone(), protobuf, None, 415),
        ("gzip", good.clone(), protobuf, Some("gzip"), 415),
        (
            "json",
            good.clone(),
            "application/json",
            Some("snappy"),
            415,
        ),
        (
            "remote-write 2.0",
            good.clone(),
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            Some("snappy"),
            415,
        ),
        (
            "too large as sent",
            vec![0u8; 5000],
            protobuf,
            Some("snappy"),
            413,
        ),
        (
            "too large decoded",
            snap::raw::Encoder::new()
                .compress_vec(&vec![0u8; 50_000])
                .unwrap(),
            protobuf,
            Some("snappy"),
            413,
        ),
    ];
    for (what, body, content_type, encoding, status) in cases {
        let response = post(&client, running.address, body, content_type, encoding).await;
        assert_eq!(response.status(), status, "{what}");
        let message = response.text().await.unwrap();
        assert!(!message.is_empty(), "{what}: the answer says why");
    }
    let extra = tokio::time::timeout(Duration::from_millis(200), running.batches.recv()).await;
    assert!(extra.is_err(), "refused requests must not reach the intake");
    assert_eq!(
        running
            .context
            .stats
            .records_malformed
            .load(Ordering::Relaxed),
        9
    );
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_intake_answers_429_with_retry_after() {
    // Room for one batch, and nobody drains it.
    let mut running = start("", Intake::new(1, Duration::from_millis(50))).await;
    let client = http_client();
    let body = |value: f64| {
        encode(&prompb::WriteRequest {
            timeseries: vec![series(&[("__name__", "x"), ("job", "j")], &[(value, 1000)])],
        })
    };
    let first = post(
        &client,
        running.address,
        body(1.0),
        "application/x-protobuf",
        Some("snappy"),
    )
    .await;
    assert_eq!(first.status(), 204);
    let second = post(
        &client,
        running.address,
        body(2.0),
        "application/x-protobuf",
        Some("snappy"),
    )
    .await;
    assert_eq!(second.status(), 429);
    assert_eq!(second.headers()["retry-after"], "1");

    let taken = metrics_of(running.batches.recv().await.unwrap());
    assert_eq!(points(&taken)[0].4, 1.0);
    let retry = post(
        &client,
        running.address,
        body(2.0),
        "application/x-protobuf",
        Some("snappy"),
    )
    .await;
    assert_eq!(retry.status(), 204);
    let taken = metrics_of(running.batches.recv().await.unwrap());
    assert_eq!(points(&taken)[0].4, 2.0);
    stop(running).await;
}
