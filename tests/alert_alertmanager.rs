//! The Alertmanager sink against a real Alertmanager (Debian's `prometheus-alertmanager`, run
//! by the test on 127.0.0.1 with its own config and storage): the gateway's `error-burst`
//! alert must be taken by `POST /api/v2/alerts` (Alertmanager validates the schema), show in
//! `GET /api/v2/alerts` with its labels, annotations and a future `endsAt` while it fires, and
//! end with the resolution's `endsAt`, which Alertmanager passes on to its own webhook receiver
//! (our recorder) as a resolved notification.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::alerts::{
    Alertmanager, Kind, Receivers, error_burst_plugin, send_logs, start_gateway,
};

fn error_bursts(alertmanager: &Alertmanager) -> Vec<Value> {
    alertmanager
        .alerts()
        .into_iter()
        .filter(|alert| alert["labels"]["alertname"] == "ErrorBurst")
        .collect()
}

#[test]
fn firing_then_resolved_alerts_arrive_in_alertmanager_as_documented() {
    let receivers = Receivers::start();
    let dir = tempfile::tempdir().unwrap();
    let alertmanager = Alertmanager::start(
        &dir.path().join("alertmanager"),
        &receivers.url(Kind::AlertmanagerHook),
    );
    let gateway_dir = dir.path().join("gateway");
    std::fs::create_dir_all(&gateway_dir).unwrap();
    let gateway = start_gateway(
        &gateway_dir,
        &format!(
            r#"
{plugin}
[pipelines.logs]
receivers = ["otlp"]
signals = ["logs"]
stages = ["burst"]
sinks = ["records"]
alerts = ["am"]

[sinks.am]
type = "alertmanager"
url = "{url}"
generator_url = "http://sluice.example.com/gateway"

[alerts]
group_wait = "200ms"
runbook_template = "https://runbooks.example.com/{{service}}/{{alertname}}"

[alerts.services.checkout]
owner = "alice"
team = "payments"
"#,
            plugin = error_burst_plugin("burst", 3),
            url = alertmanager.url,
        ),
    );

    send_logs(gateway.otlp_http, "checkout", 17, 8);
    // Firing: in Alertmanager's alert list, active, with what the gateway knows.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let firing = loop {
        if let Some(alert) = error_bursts(&alertmanager).into_iter().next() {
            break alert;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ErrorBurst in Alertmanager after 15 s; gateway:\n{}\nalertmanager:\n{}",
            gateway.process.stderr_so_far(),
            alertmanager.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let labels = &firing["labels"];
    assert_eq!(labels["alertname"], "ErrorBurst", "{firing:#}");
    assert_eq!(labels["service"], "checkout", "{firing:#}");
    assert_eq!(labels["owner"], "alice", "{firing:#}");
    assert_eq!(labels["team"], "payments", "{firing:#}");
    assert_eq!(labels["severity"], "error", "{firing:#}");
    assert_eq!(labels["window"], "1s", "{firing:#}");
    let annotations = &firing["annotations"];
    assert!(
        annotations["summary"]
            .as_str()
            .is_some_and(|summary| summary.contains("checkout")),
        "{firing:#}"
    );
    assert_eq!(
        annotations["runbook_url"],
        "https://runbooks.example.com/checkout/ErrorBurst"
    );
    assert_eq!(annotations["source"], "burst");
    assert_eq!(
        annotations["fingerprint"].as_str().map(str::len),
        Some(16),
        "{firing:#}"
    );
    assert_eq!(firing["generatorURL"], "http://sluice.example.com/gateway");
    assert_eq!(firing["status"]["state"], "active", "{firing:#}");
    let starts_at = timestamp(&firing["startsAt"]);
    let ends_at = timestamp(&firing["endsAt"]);
    assert!(
        ends_at > chrono::Utc::now(),
        "a firing alert ends in the future: {firing:#}"
    );
    assert!(starts_at < chrono::Utc::now());

    // Resolved: Alertmanager sends its receiver the alert with the resolution's end time.
    receivers.wait_until(
        Duration::from_secs(20),
        "Alertmanager notifying the resolution",
        |receivers| {
            receivers
                .received(Kind::AlertmanagerHook)
                .iter()
                .any(|request| request.body["status"] == "resolved")
        },
    );
    let notifications = receivers.accepted(Kind::AlertmanagerHook);
    let resolved = notifications
        .iter()
        .find(|notification| notification["status"] == "resolved")
        .expect("a resolved notification");
    let alert = &resolved["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "ErrorBurst", "{resolved:#}");
    assert_eq!(alert["labels"]["owner"], "alice", "{resolved:#}");
    // Alertmanager's API prints milliseconds, its webhook nanoseconds.
    let same_start = timestamp(&alert["startsAt"]) - starts_at;
    assert!(same_start.num_milliseconds().abs() < 1, "{resolved:#}");
    let resolved_at = timestamp(&alert["endsAt"]);
    assert!(
        resolved_at > starts_at && resolved_at <= chrono::Utc::now(),
        "the resolution's end, not the firing alert's expiry: {resolved:#}"
    );
    assert!(
        notifications
            .iter()
            .any(|notification| notification["status"] == "firing"),
        "Alertmanager notified the firing alert too: {notifications:#?}"
    );
    // And it no longer lists the alert as active.
    assert!(
        error_bursts(&alertmanager)
            .iter()
            .all(|alert| alert["status"]["state"] != "active"),
        "{:#?}",
        alertmanager.alerts()
    );

    let stopped = gateway.process.stop();
    let summary = stopped.sink("am");
    assert_eq!(summary.alerts, 2, "{}", stopped.stderr);
    assert_eq!(summary.errors, 0, "{}", stopped.stderr);
}

fn timestamp(value: &Value) -> chrono::DateTime<chrono::Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .with_timezone(&chrono::Utc)
}
