//! What the alert tests talk to: stand-ins for the receivers that have no local server (Slack's
//! incoming webhooks and PagerDuty's Events API v2), which check each payload against the
//! vendor's documented schema in `tests/schemas/` and answer the way the vendor does; a plain
//! webhook recorder; Debian's `prometheus-alertmanager` run as a process; and the gateway's side:
//! error logs over OTLP/HTTP, the silence API, `/metrics`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::gateway::{GatewayProcess, Ports};
use super::{free_port, workspace_root};

/// Which stand-in a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `POST /webhook`: the generic JSON webhook, answered 200.
    Webhook,
    /// `POST /slack/services/…`: checked against the Slack schema, answered `ok` or 400.
    Slack,
    /// `POST /pagerduty/v2/enqueue`: checked against the PagerDuty schema, 202 or 400.
    Pagerduty,
    /// `POST /alertmanager-hook`: Alertmanager's own webhook notifications.
    AlertmanagerHook,
}

/// One request a stand-in took.
#[derive(Clone, Debug)]
pub struct Received {
    /// When it came.
    pub at: Instant,
    /// Its JSON body.
    pub body: Value,
    /// The status it was answered with.
    pub status: u16,
    /// Schema violations found (empty when valid, always empty for unchecked kinds).
    pub violations: Vec<String>,
}

#[derive(Default)]
struct Shared {
    received: BTreeMap<Kind, Vec<Received>>,
    /// Statuses to answer the next requests of a kind with, before checking anything.
    script: BTreeMap<Kind, VecDeque<u16>>,
}

/// The stand-in receivers, on one HTTP server on 127.0.0.1, run on their own runtime.
pub struct Receivers {
    runtime: tokio::runtime::Runtime,
    /// Where they listen.
    pub address: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

fn schema(name: &str) -> jsonschema::Validator {
    let path = workspace_root().join("tests/schemas").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|error| panic!("{name} is not a valid schema: {error}"))
}

struct Checker {
    shared: Arc<Mutex<Shared>>,
    slack: jsonschema::Validator,
    pagerduty: jsonschema::Validator,
}

fn violations(validator: &jsonschema::Validator, body: &Value) -> Vec<String> {
    validator
        .iter_errors(body)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect()
}

async fn take(checker: Arc<Checker>, kind: Kind, body: axum::body::Bytes) -> Response {
    let scripted = checker
        .shared
        .lock()
        .unwrap()
        .script
        .get_mut(&kind)
        .and_then(VecDeque::pop_front);
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let (body, mut found) = match parsed {
        Ok(body) => (body, Vec::new()),
        Err(error) => (
            Value::String(String::from_utf8_lossy(&body).into_owned()),
            vec![format!("not JSON: {error}")],
        ),
    };
    if found.is_empty() {
        found = match kind {
            Kind::Slack => violations(&checker.slack, &body),
            Kind::Pagerduty => violations(&checker.pagerduty, &body),
            _ => Vec::new(),
        };
    }
    let response = match (scripted, kind, found.is_empty()) {
        (Some(status), _, _) => {
            let status = StatusCode::from_u16(status).expect("a status");
            (status, [("retry-after", "0")], "scripted failure").into_response()
        }
        (None, Kind::Slack, true) => (StatusCode::OK, "ok").into_response(),
        // Slack answers 400 with a short reason in plain text.
        (None, Kind::Slack, false) => (StatusCode::BAD_REQUEST, "invalid_blocks").into_response(),
        (None, Kind::Pagerduty, true) => (
            StatusCode::ACCEPTED,
            [("content-type", "application/json")],
            json!({"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]})
                .to_string(),
        )
            .into_response(),
        (None, Kind::Pagerduty, false) => (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            json!({"status": "invalid event", "message": "Event object is invalid", "errors": found})
                .to_string(),
        )
            .into_response(),
        (None, _, _) => (StatusCode::OK, "").into_response(),
    };
    let status = response.status().as_u16();
    checker
        .shared
        .lock()
        .unwrap()
        .received
        .entry(kind)
        .or_default()
        .push(Received {
            at: Instant::now(),
            body,
            status,
            violations: found,
        });
    response
}

impl Receivers {
    /// Starts the stand-ins on a free port.
    pub fn start() -> Receivers {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let checker = Arc::new(Checker {
            shared: shared.clone(),
            slack: schema("slack-incoming-webhook.json"),
            pagerduty: schema("pagerduty-events-v2-enqueue.json"),
        });
        let route = |kind: Kind| {
            let checker = checker.clone();
            axum::routing::post(move |State(()): State<()>, body: axum::body::Bytes| {
                take(checker.clone(), kind, body)
            })
        };
        let app = axum::Router::new()
            .route("/webhook", route(Kind::Webhook))
            .route("/slack/services/T0001/B0001/s3cr3t", route(Kind::Slack))
            .route("/pagerduty/v2/enqueue", route(Kind::Pagerduty))
            .route("/alertmanager-hook", route(Kind::AlertmanagerHook))
            .with_state(());
        let address = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1");
            let address = listener.local_addr().expect("an address");
            tokio::spawn(async move { axum::serve(listener, app).await });
            address
        });
        Receivers {
            runtime,
            address,
            shared,
        }
    }

    /// The URL of a stand-in.
    pub fn url(&self, kind: Kind) -> String {
        let path = match kind {
            Kind::Webhook => "/webhook",
            Kind::Slack => "/slack/services/T0001/B0001/s3cr3t",
            Kind::Pagerduty => "/pagerduty/v2/enqueue",
            Kind::AlertmanagerHook => "/alertmanager-hook",
        };
        format!("http://{}{path}", self.address)
    }

    /// Answers the next `count` requests of `kind` with `status` (and `Retry-After: 0`).
    pub fn fail_next(&self, kind: Kind, count: usize, status: u16) {
        let mut shared = self.shared.lock().unwrap();
        let script = shared.script.entry(kind).or_default();
        script.extend(std::iter::repeat_n(status, count));
    }

    /// What `kind` received so far.
    pub fn received(&self, kind: Kind) -> Vec<Received> {
        self.shared
            .lock()
            .unwrap()
            .received
            .get(&kind)
            .cloned()
            .unwrap_or_default()
    }

    /// The requests of `kind` it accepted (2xx), after checking that none violated its schema.
    pub fn accepted(&self, kind: Kind) -> Vec<Value> {
        let received = self.received(kind);
        for request in &received {
            assert!(
                request.violations.is_empty(),
                "{kind:?} payload violates the documented schema: {:?}\n{:#}",
                request.violations,
                request.body
            );
        }
        received
            .into_iter()
            .filter(|request| (200..300).contains(&request.status))
            .map(|request| request.body)
            .collect()
    }

    /// Waits until `done` holds for what was received, up to `timeout`; panics with what came.
    pub fn wait_until(&self, timeout: Duration, what: &str, done: impl Fn(&Receivers) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            if Instant::now() >= deadline {
                let shared = self.shared.lock().unwrap();
                panic!(
                    "not within {timeout:?}: {what}; received so far: {:#?}",
                    shared.received
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receivers {
    fn drop(&mut self) {
        // The runtime stops its server when dropped; nothing to wait for.
        let _ = &self.runtime;
    }
}

/// `prometheus-alertmanager` (Debian's package, installed by `scripts/system-deps`) on
/// 127.0.0.1, with its storage in a temporary directory. Killed when dropped.
pub struct Alertmanager {
    child: Child,
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    log: PathBuf,
}

impl Alertmanager {
    /// The binary: `$SLUICE_ALERTMANAGER`, else Debian's path, else `alertmanager` on the path.
    fn binary() -> PathBuf {
        if let Some(path) = std::env::var_os("SLUICE_ALERTMANAGER") {
            return PathBuf::from(path);
        }
        for candidate in [
            "/usr/bin/prometheus-alertmanager",
            "/usr/local/bin/alertmanager",
        ] {
            if Path::new(candidate).exists() {
                return PathBuf::from(candidate);
            }
        }
        panic!(
            "Alertmanager is missing: install it with `bash scripts/system-deps` (Debian's prometheus-alertmanager)"
        );
    }

    /// Starts it in `dir`, notifying `hook` (with resolutions) after a short group wait.
    pub fn start(dir: &Path, hook: &str) -> Alertmanager {
        std::fs::create_dir_all(dir).expect("alertmanager dir");
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: sluice-test\n  group_by: ['alertname', 'service']\n  group_wait: 100ms\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: sluice-test\n    webhook_configs:\n      - url: {hook}\n        send_resolved: true\n"
            ),
        )
        .expect("alertmanager.yml written");
        let log = dir.join("alertmanager.log");
        let mut last = String::new();
        for _ in 0..4 {
            let port = free_port();
            let child = Command::new(Self::binary())
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .arg("--log.level=debug")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log file"))
                .spawn()
                .expect("alertmanager starts");
            let mut alertmanager = Alertmanager {
                child,
                url: format!("http://127.0.0.1:{port}"),
                log: log.clone(),
            };
            if alertmanager.wait_ready() {
                return alertmanager;
            }
            last = alertmanager.log();
        }
        panic!("alertmanager did not become ready:\n{last}");
    }

    fn wait_ready(&mut self) -> bool {
        let client = http();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return false;
            }
            if client
                .get(format!("{}/-/ready", self.url))
                .send()
                .is_ok_and(|response| response.status().is_success())
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /api/v2/alerts`: the alerts it holds (active, silenced, inhibited, unprocessed).
    pub fn alerts(&self) -> Vec<Value> {
        let response = http()
            .get(format!("{}/api/v2/alerts", self.url))
            .send()
            .expect("alertmanager answers");
        assert!(response.status().is_success(), "{}", response.status());
        response.json().expect("a JSON array")
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking HTTP client with a short timeout.
pub fn http() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos()
}

/// POSTs `count` log records of `service` at `severity` (17 = ERROR) as OTLP/JSON to the
/// gateway's OTLP/HTTP receiver; asserts it took them.
pub fn send_logs(otlp_http: SocketAddr, service: &str, severity: u8, count: usize) {
    let now = now_nanos().to_string();
    let records: Vec<Value> = (0..count)
        .map(|index| {
            json!({
                "timeUnixNano": now,
                "observedTimeUnixNano": now,
                "severityNumber": severity,
                "severityText": if severity >= 17 { "ERROR" } else { "INFO" },
                "body": {"stringValue": format!("{service} record {index}")},
            })
        })
        .collect();
    let body = json!({
        "resourceLogs": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": service}},
            ]},
            "scopeLogs": [{"scope": {"name": "alert-tests"}, "logRecords": records}],
        }]
    });
    let response = http()
        .post(format!("http://{otlp_http}/v1/logs"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .expect("the gateway answers");
    assert_eq!(response.status(), 200, "{:?}", response.text());
}

/// `POST /api/silences` on the admin address; returns the answer's status and JSON.
pub fn create_silence(admin: SocketAddr, silence: &Value) -> (u16, Value) {
    let response = http()
        .post(format!("http://{admin}/api/silences"))
        .header("content-type", "application/json")
        .body(silence.to_string())
        .send()
        .expect("the admin endpoint answers");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// `GET /api/silences`.
pub fn list_silences(admin: SocketAddr) -> Vec<Value> {
    http()
        .get(format!("http://{admin}/api/silences"))
        .send()
        .expect("the admin endpoint answers")
        .json()
        .expect("a JSON array")
}

/// `DELETE /api/silences/{id}`; returns the status.
pub fn delete_silence(admin: SocketAddr, id: &str) -> u16 {
    http()
        .delete(format!("http://{admin}/api/silences/{id}"))
        .send()
        .expect("the admin endpoint answers")
        .status()
        .as_u16()
}

/// The value of the sample `name{labels}` on `/metrics` (labels in the order rendered).
pub fn metric(admin: SocketAddr, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = http()
        .get(format!("http://{admin}/metrics"))
        .send()
        .expect("the admin endpoint answers")
        .text()
        .expect("text");
    let rendered: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}=\"{value}\""))
        .collect();
    let prefix = format!("{name}{{{}}} ", rendered.join(","));
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} on /metrics:\n{text}"))
}

/// The `error-burst` detector set to fire on 5 errors of a service within 1 s and to resolve
/// `resolve_after_seconds` after they stop, as a `[plugins.NAME]` table.
pub fn error_burst_plugin(name: &str, resolve_after_seconds: u32) -> String {
    format!(
        "[plugins.{name}]\npath = {:?}\nconfig = {{ threshold = 5, window_seconds = 1, resolve_after_seconds = {resolve_after_seconds} }}\n",
        super::plugin_wasm("error-burst").display().to_string()
    )
}

/// A gateway started for an alert test.
pub struct AlertGateway {
    /// The process.
    pub process: GatewayProcess,
    /// Its OTLP/HTTP receiver `otlp`.
    pub otlp_http: SocketAddr,
    /// Its admin endpoint (metrics, silences).
    pub admin: SocketAddr,
}

/// Runs `sluice run` in `dir` with an OTLP/HTTP receiver named `otlp`, the admin endpoint, a
/// file sink `records` (`records.jsonl`, for the pipelines' records), and `body` (plugins,
/// pipelines, sinks, `[alerts]`).
pub fn start_gateway(dir: &Path, body: &str) -> AlertGateway {
    let (process, (otlp_http, admin)) = GatewayProcess::start(dir, |ports: &mut Ports| {
        let otlp_http = SocketAddr::from(([127, 0, 0, 1], ports.tcp()));
        let admin = SocketAddr::from(([127, 0, 0, 1], ports.tcp()));
        let config = format!(
            "[receivers.otlp]\ntype = \"otlp\"\nhttp = \"{otlp_http}\"\n\n[admin]\naddress = \"{admin}\"\n\n[sinks.records]\ntype = \"file\"\npath = \"records.jsonl\"\n\n{body}"
        );
        (config, (otlp_http, admin))
    });
    AlertGateway {
        process,
        otlp_http,
        admin,
    }
}

/// The alerts of the webhook bodies in `bodies`, in order, as (name, status, service).
pub fn webhook_alerts(bodies: &[Value]) -> Vec<(String, String, String)> {
    bodies
        .iter()
        .flat_map(|body| body["alerts"].as_array().cloned().unwrap_or_default())
        .map(|alert| {
            (
                alert["name"].as_str().unwrap_or_default().to_owned(),
                alert["status"].as_str().unwrap_or_default().to_owned(),
                alert["labels"]["service"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}
