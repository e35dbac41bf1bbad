//! A detector's window survives `kill -9`: the gateway checkpoints detector state with the log
//! position it had seen, restores it at the next start and shows the detector only what came
//! after. Real `sluice run` processes, OTLP/JSON over HTTP, SIGKILL, the shipped `error-burst`
//! plugin, alerts read from a file sink.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sluice::pipeline::{Checkpoint, checkpoint_path};
use support::gateway::{GatewayProcess, Ports, read_json_lines};
use support::plugin_wasm;

/// error-burst fires at 10 errors of one service within 10 minutes.
fn config(ports: &mut Ports, extra_limits: &str) -> (String, SocketAddr) {
    let http = SocketAddr::from(([127, 0, 0, 1], ports.tcp()));
    let detector = toml_string(&plugin_wasm("error-burst").display().to_string());
    let config = format!(
        r#"
[receivers.otlp]
type = "otlp"
http = "{http}"

[plugins.error-burst]
path = {detector}
config = {{ threshold = 10, window_seconds = 600 }}
limits = {{ deadline_ms = 1000 {extra_limits} }}

[pipelines.logs]
receivers = ["otlp"]
signals = ["logs"]
stages = ["error-burst"]
sinks = ["records"]
alerts = ["alerts"]
checkpoint_interval = "100ms"

[sinks.records]
type = "file"
path = "records.jsonl"

[sinks.alerts]
type = "file"
path = "alerts.jsonl"
"#
    );
    (config, http)
}

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string")
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64
}

/// Sends `count` ERROR records of service `checkout` as one OTLP/JSON request.
fn send_errors(http: SocketAddr, first: usize, count: usize) {
    let now = now_nanos().to_string();
    let records: Vec<Value> = (first..first + count)
        .map(|index| {
            json!({
                "timeUnixNano": now,
                "observedTimeUnixNano": now,
                "severityNumber": 17,
                "severityText": "ERROR",
                "body": { "stringValue": format!("payment declined #{index}") },
            })
        })
        .collect();
    let body = json!({ "resourceLogs": [{
        "resource": { "attributes": [
            { "key": "service.name", "value": { "stringValue": "checkout" } }
        ] },
        "scopeLogs": [{ "logRecords": records }],
    }] });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::blocking::Client::new()
        .post(format!("http://{http}/v1/logs"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .expect("the gateway answers");
    assert_eq!(response.status(), 200, "{:?}", response.text());
}

/// Waits until the pipeline's checkpoint covers `seq` and the records sink's cursor is past it,
/// so that a restart replays nothing to either; returns the checkpoint.
fn wait_until_settled(dir: &Path, seq: u64, gateway: &GatewayProcess) -> Checkpoint {
    let path = checkpoint_path(&dir.join("data/buffer"), "logs");
    let cursors = dir.join("data/buffer/cursors.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let checkpoint = Checkpoint::load(&path).unwrap_or_default();
        let sink_cursor = std::fs::read(&cursors)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .and_then(|file| file["consumers"]["logs→records"].as_u64())
            .unwrap_or(0);
        if let Some(checkpoint) = checkpoint
            && checkpoint.seq >= seq
            && sink_cursor >= seq
        {
            return checkpoint;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint at {seq} and sink cursor past it within 30 s (cursor {sink_cursor}):\n{}",
            gateway.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alerts(dir: &Path) -> Vec<Value> {
    let path = dir.join("alerts.jsonl");
    if !path.exists() {
        return Vec::new();
    }
    read_json_lines(&path)
        .into_iter()
        .filter(|line| line["signal"] == "alert")
        .collect()
}

/// Six errors, a checkpoint, `kill -9`, a restart, five more errors: eleven in the window, so
/// the burst fires once; `forget` deletes the checkpoint before the restart (the control).
fn crash_in_the_middle_of_a_window(forget: bool) -> (Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, http) = GatewayProcess::start(dir.path(), |ports| config(ports, ""));
    send_errors(http, 0, 6);
    let checkpoint = wait_until_settled(dir.path(), 1, &gateway);
    assert_eq!(checkpoint.states.len(), 1, "{checkpoint:?}");
    assert_eq!(checkpoint.states[0].0, "error-burst");
    assert!(
        !checkpoint.states[0].1.is_empty(),
        "the window is in the state"
    );
    drop(gateway); // SIGKILL

    if forget {
        std::fs::remove_file(checkpoint_path(&dir.path().join("data/buffer"), "logs")).unwrap();
    }
    let (gateway, http) = GatewayProcess::start(dir.path(), |ports| config(ports, ""));
    send_errors(http, 6, 5);
    // The burst would fire on the batch itself: give the pipeline a moment, then stop cleanly.
    std::thread::sleep(Duration::from_millis(500));
    let stopped = gateway.stop();
    let records = read_json_lines(&dir.path().join("records.jsonl"));
    assert_eq!(
        records.len(),
        11,
        "every record reached the sink once:\n{}",
        stopped.stderr
    );
    (alerts(dir.path()), stopped.stderr)
}

#[test]
fn a_detector_window_survives_kill_9() {
    let (alerts, stderr) = crash_in_the_middle_of_a_window(false);
    let fired: Vec<&Value> = alerts
        .iter()
        .filter(|alert| alert["name"] == "ErrorBurst")
        .collect();
    assert_eq!(
        fired.len(),
        1,
        "six errors before the crash and five after make one burst: {alerts:#?}\n{stderr}"
    );
    let text = fired[0].to_string();
    assert!(text.contains("checkout"), "{text}");
    assert!(text.contains("firing"), "{text}");
}

#[test]
fn without_its_checkpoint_the_window_is_forgotten() {
    // The control: the same run with the checkpoint deleted sees only five errors.
    let (alerts, stderr) = crash_in_the_middle_of_a_window(true);
    assert!(
        alerts.is_empty(),
        "five errors after the restart are below the threshold: {alerts:#?}\n{stderr}"
    );
}

#[test]
fn a_state_over_its_bound_is_refused_and_the_detector_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let limits = ", max_state_bytes = 8";
    let (gateway, http) = GatewayProcess::start(dir.path(), |ports| config(ports, limits));
    send_errors(http, 0, 6);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !alerts(dir.path())
        .iter()
        .any(|alert| alert.to_string().contains("DetectorStateTooLarge"))
    {
        assert!(
            Instant::now() < deadline,
            "no DetectorStateTooLarge alert within 30 s:\n{}",
            gateway.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The window was dropped with the state: five more errors do not make a burst, and the
    // gateway goes on taking records.
    send_errors(http, 6, 5);
    std::thread::sleep(Duration::from_millis(300));
    let stopped = gateway.stop();
    assert!(
        stopped.stderr.contains("limits.max_state_bytes"),
        "{}",
        stopped.stderr
    );
    let records = read_json_lines(&dir.path().join("records.jsonl"));
    assert_eq!(records.len(), 11, "{}", stopped.stderr);
    assert!(
        !alerts(dir.path())
            .iter()
            .any(|alert| alert.to_string().contains("ErrorBurst")),
        "{}",
        stopped.stderr
    );
}
