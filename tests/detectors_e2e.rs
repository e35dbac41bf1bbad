//! Metric points and spans reach detectors through the WASM boundary of a real `sluice run`:
//! OTLP/JSON over HTTP in, the shipped `threshold` and `slo-burn` plugins, alerts read from a
//! file sink. The detectors' own logic is unit-tested in their crates; this checks that the host
//! hands them the right columns (names, kinds, times, values, attributes, resource attributes,
//! span kinds and status codes) and that their alerts come out, once per incident.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::gateway::{GatewayProcess, Ports, read_json_lines};
use support::plugin_wasm;

const SECOND: u64 = 1_000_000_000;

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string")
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64
}

fn post(http: SocketAddr, path: &str, body: &Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::blocking::Client::new()
        .post(format!("http://{http}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .expect("the gateway answers");
    assert_eq!(response.status(), 200, "{:?}", response.text());
}

fn resource(service: &str) -> Value {
    json!({ "attributes": [{ "key": "service.name", "value": { "stringValue": service } }] })
}

/// Alerts written by the `alerts` file sink, waiting up to 30 s for at least `count`.
fn wait_for_alerts(dir: &Path, count: usize, gateway: &GatewayProcess) -> Vec<Value> {
    let path = dir.join("alerts.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let alerts: Vec<Value> = if path.exists() {
            read_json_lines(&path)
        } else {
            Vec::new()
        };
        if alerts.len() >= count {
            return alerts;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} alerts within 30 s: {alerts:#?}\n{}",
            alerts.len(),
            gateway.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An alert time as the file sink writes it (Unix nanoseconds, or RFC 3339).
fn time_of(value: &Value) -> chrono::DateTime<chrono::Utc> {
    match value {
        Value::Number(nanos) => chrono::DateTime::from_timestamp_nanos(nanos.as_i64().unwrap()),
        Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
            .expect("RFC 3339")
            .to_utc(),
        other => panic!("not a time: {other}"),
    }
}

/// A label of an alert as the file sink writes it (`[[key, value], …]`).
fn label<'a>(alert: &'a Value, key: &str) -> &'a str {
    let pairs = alert["labels"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    pairs
        .iter()
        .find(|pair| pair[0] == key)
        .and_then(|pair| pair[1].as_str())
        .unwrap_or_default()
}

#[test]
fn a_disk_filling_up_is_caught_from_metric_points() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, http) = GatewayProcess::start(dir.path(), |ports: &mut Ports| {
        let http = SocketAddr::from(([127, 0, 0, 1], ports.tcp()));
        let detector = toml_string(&plugin_wasm("threshold").display().to_string());
        let config = format!(
            r#"
[receivers.otlp]
type = "otlp"
http = "{http}"

[plugins.disk-full]
path = {detector}
limits = {{ deadline_ms = 1000 }}

[[plugins.disk-full.config.rules]]
name = "disk-full"
alert_name = "DiskAlmostFull"
severity = "critical"
metric = "system.filesystem.utilization"
attributes = {{ mountpoint = "/" }}
above = 0.9
for_seconds = 300

[pipelines.metrics]
receivers = ["otlp"]
signals = ["metrics"]
stages = ["disk-full"]
sinks = ["points"]
alerts = ["alerts"]

[sinks.points]
type = "file"
path = "points.jsonl"

[sinks.alerts]
type = "file"
path = "alerts.jsonl"
"#
        );
        (config, http)
    });

    // Ten minutes of points every 30 s, ending now: `db`'s root file system is at 95 % from
    // the second minute on; its /boot and `web`'s root stay low (and `db`'s /boot is even
    // above the bound, but not the watched mount point).
    let start = now_nanos() - 600 * SECOND;
    let points = |service: &str, mountpoint: &str, value: &dyn Fn(u64) -> f64| {
        let points: Vec<Value> = (0..20u64)
            .map(|step| {
                json!({
                    "timeUnixNano": (start + step * 30 * SECOND).to_string(),
                    "asDouble": value(step),
                    "attributes": [{ "key": "mountpoint", "value": { "stringValue": mountpoint } }],
                })
            })
            .collect();
        json!({
            "resource": resource(service),
            "scopeMetrics": [{ "metrics": [{
                "name": "system.filesystem.utilization",
                "unit": "1",
                "gauge": { "dataPoints": points },
            }] }],
        })
    };
    let body = json!({ "resourceMetrics": [
        points("db", "/", &|step| if step >= 4 { 0.95 } else { 0.6 }),
        points("db", "/boot", &|_| 0.97),
        points("web", "/", &|_| 0.5),
    ] });
    post(http, "/v1/metrics", &body);

    wait_for_alerts(dir.path(), 1, &gateway);
    let stopped = gateway.stop();
    let alerts: Vec<Value> = read_json_lines(&dir.path().join("alerts.jsonl"))
        .into_iter()
        .filter(|alert| alert["status"] == "firing")
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:#?}\n{}", stopped.stderr);
    let alert = &alerts[0];
    assert_eq!(alert["name"], "DiskAlmostFull", "{alert}");
    assert_eq!(alert["severity"], "critical", "{alert}");
    assert_eq!(label(alert, "service"), "db", "{alert}");
    assert!(alert.to_string().contains("mountpoint"), "{alert}");
    // Confirmed 300 s after the first breaching point (step 4), at step 14, in event time.
    let confirmed = chrono::DateTime::from_timestamp_nanos((start + 14 * 30 * SECOND) as i64);
    assert_eq!(time_of(&alert["starts_at"]), confirmed, "{alert}");
    let points = read_json_lines(&dir.path().join("points.jsonl"));
    assert_eq!(points.len(), 3, "every point passes on: {points:#?}");
}

#[test]
fn an_error_budget_burning_is_caught_from_server_spans() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, http) = GatewayProcess::start(dir.path(), |ports: &mut Ports| {
        let http = SocketAddr::from(([127, 0, 0, 1], ports.tcp()));
        let detector = toml_string(&plugin_wasm("slo-burn").display().to_string());
        let config = format!(
            r#"
[receivers.otlp]
type = "otlp"
http = "{http}"

[plugins.slo-burn]
path = {detector}
limits = {{ deadline_ms = 1000 }}

[[plugins.slo-burn.config.slos]]
name = "availability"
target = 0.999
spans = {{ kinds = ["server"] }}

[pipelines.traces]
receivers = ["otlp"]
signals = ["traces"]
stages = ["slo-burn"]
sinks = ["spans"]
alerts = ["alerts"]

[sinks.spans]
type = "file"
path = "spans.jsonl"

[sinks.alerts]
type = "file"
path = "alerts.jsonl"
"#
        );
        (config, http)
    });

    // 75 minutes of traffic ending now, ten requests a minute per service: `checkout` fails one
    // request in ten (a burn rate of 100 against 99.9 %), `catalog` none; client spans of
    // `catalog` fail too, but an availability SLO counts server spans only.
    let start = now_nanos() - 75 * 60 * SECOND;
    let spans = |service: &str, kind: u32, fails: bool| {
        let spans: Vec<Value> = (0..750u64)
            .map(|index| {
                let begin = start + index * 6 * SECOND;
                let code = if fails && index % 10 == 0 { 2 } else { 1 };
                json!({
                    "traceId": format!("{:032x}", index + 1),
                    "spanId": format!("{:016x}", index + 1),
                    "name": "GET /cart",
                    "kind": kind,
                    "startTimeUnixNano": begin.to_string(),
                    "endTimeUnixNano": (begin + 20_000_000).to_string(),
                    "status": { "code": code },
                })
            })
            .collect();
        json!({ "resource": resource(service), "scopeSpans": [{ "spans": spans }] })
    };
    let body = json!({ "resourceSpans": [
        spans("checkout", 2, true),
        spans("catalog", 2, false),
        spans("catalog", 3, true),
    ] });
    post(http, "/v1/traces", &body);

    wait_for_alerts(dir.path(), 2, &gateway);
    let stopped = gateway.stop();
    let alerts: Vec<Value> = read_json_lines(&dir.path().join("alerts.jsonl"))
        .into_iter()
        .filter(|alert| alert["status"] == "firing")
        .collect();
    let mut windows: Vec<&str> = alerts.iter().map(|alert| label(alert, "window")).collect();
    windows.sort_unstable();
    assert_eq!(
        windows,
        ["1h/5m", "6h/30m"],
        "{alerts:#?}\n{}",
        stopped.stderr
    );
    for alert in &alerts {
        assert_eq!(alert["name"], "SloBurnRate", "{alert}");
        assert_eq!(label(alert, "service"), "checkout", "{alert}");
        assert_eq!(label(alert, "slo"), "availability", "{alert}");
    }
    let page = alerts
        .iter()
        .find(|alert| label(alert, "window") == "1h/5m");
    assert_eq!(page.unwrap()["severity"], "critical");
    let spans = read_json_lines(&dir.path().join("spans.jsonl"));
    assert_eq!(spans.len(), 3, "every span passes on");
}
