//! The alert webhook sink against a real HTTP server started by the test (axum on 127.0.0.1),
//! scripted to fail the way receivers do: 503, 429 with `Retry-After`, 400, no listener at all.
//! The sink is started directly, so its router has the defaults of an empty `[alerts]` table;
//! closing its queue sends whatever the router holds.

mod support;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sluice::alerts::{Alert, AlertSeverity, AlertStatus};
use sluice::sinks::{self, SinkConfig, SinkContext, SinkItem, SinkStats};
use tokio::sync::mpsc;

/// One request the server received.
#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    headers: HeaderMap,
    body: Value,
    answered: StatusCode,
}

/// The server's script (answers to give, in order; 200 once exhausted) and what it received.
#[derive(Default)]
struct Script {
    answers: VecDeque<(StatusCode, Option<&'static str>)>,
    received: Vec<Received>,
}

type Shared = Arc<Mutex<Script>>;

async fn receive(State(script): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let mut script = script.lock().unwrap();
    let (status, retry_after) = script.answers.pop_front().unwrap_or((StatusCode::OK, None));
    script.received.push(Received {
        at: Instant::now(),
        headers,
        body: serde_json::from_str(&body).unwrap_or(Value::String(body)),
        answered: status,
    });
    match retry_after {
        Some(seconds) => (status, [("retry-after", seconds)], "try later").into_response(),
        None => (status, "answer").into_response(),
    }
}

/// Starts the server; returns its URL and its script.
async fn server(answers: &[(StatusCode, Option<&'static str>)]) -> (String, Shared) {
    let script: Shared = Arc::new(Mutex::new(Script {
        answers: answers.iter().copied().collect(),
        received: Vec::new(),
    }));
    let app = axum::Router::new()
        .route("/alerts", axum::routing::post(receive))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/alerts"), script)
}

/// A webhook sink config for `url` with fast retries; `extra` (TOML) adds or overrides fields.
fn sink_config(url: &str, extra: &str) -> SinkConfig {
    let mut table: toml::Table = toml::from_str(&format!(
        "type = \"webhook\"\nurl = \"{url}\"\nretry_initial = \"10ms\"\nretry_max = \"200ms\""
    ))
    .expect("base config parses");
    table.extend(toml::from_str::<toml::Table>(extra).expect("extra config parses"));
    table.try_into().expect("sink config parses")
}

/// Queues `alerts`, then starts the sink (so that it sees them all queued at once), closes the
/// queue and waits until the sink has finished with every alert.
async fn deliver(config: &SinkConfig, alerts: Vec<Alert>) -> Arc<SinkStats> {
    let (items, receiver) = mpsc::channel(64);
    for alert in alerts {
        items
            .send(SinkItem::Alert(Arc::new(alert.normalised())))
            .await
            .expect("queued");
    }
    drop(items);
    let stats = Arc::new(SinkStats::default());
    let task = sinks::start(
        config,
        SinkContext {
            name: "pager".into(),
            items: receiver,
            stats: stats.clone(),
        },
    )
    .await
    .expect("the sink starts");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the sink finishes within 10 s")
        .expect("the sink task does not panic");
    stats
}

fn alert(name: &str, status: AlertStatus) -> Alert {
    Alert {
        name: name.into(),
        severity: AlertSeverity::Critical,
        status,
        labels: vec![
            ("team".into(), "payments".into()),
            ("service".into(), "checkout".into()),
        ],
        summary: "error rate above 5 % for 2 minutes".into(),
        fingerprint: String::new(),
        starts_at: 1_795_428_000_250_000_000,
        ends_at: (status == AlertStatus::Resolved).then_some(1_795_428_120_000_000_000),
        source: "error-burst".into(),
    }
}

fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[tokio::test]
async fn two_503s_then_the_alert_arrives_exactly_once_with_the_documented_body() {
    let (url, script) = server(&[
        (StatusCode::SERVICE_UNAVAILABLE, None),
        (StatusCode::SERVICE_UNAVAILABLE, Some("0")),
    ])
    .await;
    let config = sink_config(
        &url,
        "[headers]\nAuthorization = \"Bearer s3cret\"\nX-Tenant = \"acme\"",
    );
    let stats = deliver(&config, vec![alert("ErrorBurst", AlertStatus::Firing)]).await;

    let script = script.lock().unwrap();
    let answered: Vec<StatusCode> = script.received.iter().map(|r| r.answered).collect();
    assert_eq!(
        answered,
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK
        ]
    );
    let accepted: Vec<&Received> = script
        .received
        .iter()
        .filter(|r| r.answered.is_success())
        .collect();
    assert_eq!(accepted.len(), 1, "accepted exactly once");
    let fingerprint = alert("ErrorBurst", AlertStatus::Firing)
        .normalised()
        .fingerprint;
    assert_eq!(
        accepted[0].body,
        json!({
            "version": "1",
            "alerts": [{
                "name": "ErrorBurst",
                "severity": "critical",
                "status": "firing",
                "labels": {"service": "checkout", "team": "payments"},
                "summary": "error rate above 5 % for 2 minutes",
                "fingerprint": fingerprint,
                "starts_at": "2026-11-23T10:00:00.250Z",
                "ends_at": null,
                "source": "error-burst",
            }]
        })
    );
    // Every retry sent the same body, with the configured headers.
    for request in &script.received {
        assert_eq!(request.body, accepted[0].body);
        assert_eq!(request.headers["authorization"], "Bearer s3cret");
        assert_eq!(request.headers["x-tenant"], "acme");
        assert_eq!(request.headers["content-type"], "application/json");
    }
    assert_eq!(count(&stats.alerts_delivered), 1);
    assert_eq!(count(&stats.write_errors), 2);
    assert_eq!(count(&stats.items_dropped), 0);
}

#[tokio::test]
async fn a_400_is_not_retried_and_is_counted() {
    let (url, script) = server(&[(StatusCode::BAD_REQUEST, None)]).await;
    let stats = deliver(
        &sink_config(&url, ""),
        vec![alert("ErrorBurst", AlertStatus::Firing)],
    )
    .await;
    assert_eq!(script.lock().unwrap().received.len(), 1);
    assert_eq!(count(&stats.alerts_delivered), 0);
    assert_eq!(count(&stats.items_dropped), 1);
    assert_eq!(count(&stats.write_errors), 1);
    assert_eq!(count(&stats.router.notifications_failed), 1);
    assert_eq!(count(&stats.router.notifications_sent), 0);
}

#[tokio::test]
async fn a_resolution_never_overtakes_its_firing_even_through_retries() {
    // The second POST fails once: nothing behind it may overtake it.
    let (url, script) = server(&[(StatusCode::OK, None), (StatusCode::BAD_GATEWAY, None)]).await;
    let alerts = vec![
        alert("A", AlertStatus::Firing),
        alert("B", AlertStatus::Firing),
        alert("A", AlertStatus::Resolved),
        alert("C", AlertStatus::Firing),
        alert("B", AlertStatus::Resolved),
    ];
    let stats = deliver(&sink_config(&url, "batch = 2"), alerts).await;
    let script = script.lock().unwrap();
    let accepted: Vec<Vec<(String, String)>> = script
        .received
        .iter()
        .filter(|r| r.answered.is_success())
        .map(|r| {
            r.body["alerts"]
                .as_array()
                .expect("alerts")
                .iter()
                .map(|a| {
                    (
                        a["name"].as_str().unwrap().to_owned(),
                        a["status"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .collect();
    let pair = |name: &str, status: &str| (name.to_owned(), status.to_owned());
    // One group per alert name (the default group_by is alertname and service); at shutdown
    // every group goes out at once, each resolution in the notification after its firing.
    assert_eq!(
        accepted,
        vec![
            vec![pair("A", "firing")],
            vec![pair("B", "firing")],
            vec![pair("C", "firing")],
            vec![pair("A", "resolved")],
            vec![pair("B", "resolved")],
        ]
    );
    let resolved = &script.received[4].body["alerts"][0];
    assert_eq!(resolved["ends_at"], json!("2026-11-23T10:02:00Z"));
    assert_eq!(count(&stats.alerts_delivered), 5);
    assert_eq!(script.received.len(), 6);
    assert_eq!(count(&stats.router.notifications_sent), 5);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (url, script) = server(&[(StatusCode::TOO_MANY_REQUESTS, Some("1"))]).await;
    let stats = deliver(
        &sink_config(&url, "retry_max = \"5s\""),
        vec![alert("ErrorBurst", AlertStatus::Firing)],
    )
    .await;
    let script = script.lock().unwrap();
    assert_eq!(script.received.len(), 2);
    let waited = script.received[1].at - script.received[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?} despite Retry-After: 1"
    );
    assert_eq!(count(&stats.alerts_delivered), 1);
}

#[tokio::test]
async fn an_unreachable_receiver_is_given_up_after_max_attempts() {
    // Nothing listens on this port.
    let url = format!("http://127.0.0.1:{}/alerts", support::free_port());
    let stats = deliver(
        &sink_config(&url, "max_attempts = 3\ntimeout = \"1s\""),
        vec![alert("ErrorBurst", AlertStatus::Firing)],
    )
    .await;
    assert_eq!(count(&stats.write_errors), 3);
    assert_eq!(count(&stats.items_dropped), 1);
    assert_eq!(count(&stats.alerts_delivered), 0);
}

#[tokio::test]
async fn bad_settings_refuse_the_start_with_the_field_named() {
    let config: SinkConfig = toml::from_str(
        "type = \"webhook\"\nurl = \"ftp://example.invalid/\"\nmax_attempts = 0\nbatch = 0\n[headers]\n\"bad header\" = \"x\"",
    )
    .expect("parses");
    let (_items, receiver) = mpsc::channel(1);
    let error = sinks::start(
        &config,
        SinkContext {
            name: "pager".into(),
            items: receiver,
            stats: Arc::default(),
        },
    )
    .await
    .expect_err("bad settings refuse the start");
    let message = error.to_string();
    for field in ["url", "headers", "max_attempts", "batch"] {
        assert!(
            message.contains(&format!("sinks.pager.{field}")),
            "{field} not named in: {message}"
        );
    }
    assert!(
        toml::from_str::<SinkConfig>("type = \"webhook\"\nurl = \"http://x/\"\nretries = 3")
            .is_err(),
        "unknown fields are refused"
    );
}
