//! The alert formats against servers that check the vendors' documented schemas: `sluice run`
//! with the `error-burst` detector fed over OTLP/HTTP, its alerts to a generic webhook, a Slack
//! incoming webhook and PagerDuty's Events API v2, both stood in by tests/support/alerts.rs,
//! which validates every payload against tests/schemas/ and answers as the vendor does. One
//! incident must arrive at each as one firing and one resolved notification, enriched from the
//! `[alerts.services]` table. Also: `sluice validate` names bad alert sink settings.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::alerts::{
    Kind, Receivers, error_burst_plugin, http, send_logs, start_gateway, webhook_alerts,
};

const ROUTING_KEY: &str = "R0UT1NGKEY0123456789abcdefABCDEF";

#[test]
fn one_incident_reaches_webhook_slack_and_pagerduty_in_their_documented_formats() {
    let receivers = Receivers::start();
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_gateway(
        dir.path(),
        &format!(
            r#"
{plugin}
[pipelines.logs]
receivers = ["otlp"]
signals = ["logs"]
stages = ["burst"]
sinks = ["records"]
alerts = ["hook", "chat", "pager"]

[sinks.hook]
type = "webhook"
url = "{hook}"

[sinks.chat]
type = "slack"
url = "{slack}"

[sinks.pager]
type = "pagerduty"
url = "{pagerduty}"
routing_key = "{ROUTING_KEY}"

[alerts]
group_wait = "200ms"

[alerts.services.checkout]
owner = "alice"
team = "payments"
runbook = "https://runbooks.example.com/checkout"
"#,
            plugin = error_burst_plugin("burst", 1),
            hook = receivers.url(Kind::Webhook),
            slack = receivers.url(Kind::Slack),
            pagerduty = receivers.url(Kind::Pagerduty),
        ),
    );
    send_logs(gateway.otlp_http, "checkout", 17, 8);
    receivers.wait_until(
        Duration::from_secs(20),
        "a firing and a resolved notification at each receiver",
        |receivers| {
            [Kind::Webhook, Kind::Slack, Kind::Pagerduty]
                .iter()
                .all(|kind| receivers.received(*kind).len() >= 2)
        },
    );
    // Nothing more comes: wait past a group and a tick, then stop (which sends what is held).
    std::thread::sleep(Duration::from_millis(1500));
    let stopped = gateway.process.stop();

    // The generic webhook: its documented body, enriched.
    let webhook = receivers.accepted(Kind::Webhook);
    assert_eq!(
        webhook_alerts(&webhook),
        [
            ("ErrorBurst".into(), "firing".into(), "checkout".into()),
            ("ErrorBurst".into(), "resolved".into(), "checkout".into())
        ],
        "{webhook:#?}"
    );
    let firing = &webhook[0]["alerts"][0];
    assert_eq!(firing["labels"]["owner"], "alice", "{firing}");
    assert_eq!(firing["labels"]["team"], "payments", "{firing}");
    assert_eq!(
        firing["runbook_url"], "https://runbooks.example.com/checkout",
        "{firing}"
    );
    let fingerprint = firing["fingerprint"].as_str().expect("a fingerprint");
    let resolved = &webhook[1]["alerts"][0];
    assert_eq!(resolved["fingerprint"], fingerprint);
    assert!(resolved["ends_at"].is_string(), "{resolved}");

    // Slack: valid messages (checked by the stand-in), firing and resolved told apart.
    let slack = receivers.accepted(Kind::Slack);
    assert_eq!(slack.len(), 2, "{slack:#?}");
    let headers: Vec<&str> = slack
        .iter()
        .map(|message| {
            message["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        headers,
        [
            "FIRING: ErrorBurst (checkout)",
            "RESOLVED: ErrorBurst (checkout)"
        ]
    );
    for message in &slack {
        let text = message.to_string();
        assert!(
            text.contains("alice") && text.contains("payments"),
            "{message:#}"
        );
        assert!(
            text.contains("https://runbooks.example.com/checkout"),
            "{message:#}"
        );
    }

    // PagerDuty: a trigger and a resolve with the fingerprint as dedup key.
    let events = receivers.accepted(Kind::Pagerduty);
    assert_eq!(events.len(), 2, "{events:#?}");
    let trigger = &events[0];
    assert_eq!(trigger["routing_key"], ROUTING_KEY);
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], fingerprint);
    let payload = &trigger["payload"];
    assert_eq!(payload["severity"], "error");
    assert_eq!(payload["source"], "checkout");
    assert_eq!(payload["component"], "checkout");
    assert_eq!(payload["group"], "payments");
    assert_eq!(payload["class"], "ErrorBurst");
    assert_eq!(payload["custom_details"]["owner"], "alice");
    assert!(
        payload["summary"]
            .as_str()
            .is_some_and(|summary| summary.starts_with("ErrorBurst: service checkout")),
        "{payload}"
    );
    assert_eq!(
        trigger["links"],
        json!([{"href": "https://runbooks.example.com/checkout", "text": "Runbook"}])
    );
    let resolve = &events[1];
    assert_eq!(
        resolve,
        &json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": fingerprint})
    );

    for sink in ["hook", "chat", "pager"] {
        let summary = stopped.sink(sink);
        assert_eq!(summary.alerts, 2, "{sink}: {}", stopped.stderr);
        assert_eq!(summary.errors, 0, "{sink}: {}", stopped.stderr);
    }
}

/// The stand-ins refuse what breaks the documented schema, as the vendors do: the checks above
/// could fail.
#[test]
fn the_stand_ins_refuse_payloads_that_break_the_documented_schema() {
    let receivers = Receivers::start();
    let client = http();
    let post = |kind: Kind, body: Value| {
        client
            .post(receivers.url(kind))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .expect("the stand-in answers")
    };
    // A trigger without payload, a severity PagerDuty does not know.
    let missing_payload = post(
        Kind::Pagerduty,
        json!({"routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": "x"}),
    );
    assert_eq!(missing_payload.status(), 400);
    let answer: Value = missing_payload.json().expect("JSON");
    assert_eq!(answer["status"], "invalid event");
    let bad_severity = post(
        Kind::Pagerduty,
        json!({"routing_key": ROUTING_KEY, "event_action": "trigger", "payload": {"summary": "s", "source": "h", "severity": "fatal"}}),
    );
    assert_eq!(bad_severity.status(), 400);
    let accepted = post(
        Kind::Pagerduty,
        json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "abc"}),
    );
    assert_eq!(accepted.status(), 202);
    assert_eq!(
        accepted.json::<Value>().expect("JSON"),
        json!({"status": "success", "message": "Event processed", "dedup_key": "abc"})
    );
    // A header longer than Slack's 150 characters; a block of no known type.
    let long_header = post(
        Kind::Slack,
        json!({"text": "t", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x".repeat(151)}}]}),
    );
    assert_eq!(long_header.status(), 400);
    let unknown_block = post(
        Kind::Slack,
        json!({"text": "t", "blocks": [{"type": "banner", "text": "hi"}]}),
    );
    assert_eq!(unknown_block.status(), 400);
    let fine = post(Kind::Slack, json!({"text": "hello"}));
    assert_eq!(fine.status(), 200);
    assert_eq!(fine.text().expect("text"), "ok");
}

#[test]
fn validate_names_bad_alert_sink_settings_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        r#"
[receivers.otlp]
type = "otlp"
http = "127.0.0.1:4318"

[pipelines.logs]
receivers = ["otlp"]
alerts = ["pager", "chat", "am"]

[sinks.pager]
type = "pagerduty"

[sinks.chat]
type = "slack"
url = "hooks.slack.com/services/x"

[sinks.am]
type = "alertmanager"
url = "http://127.0.0.1:9093"
routing_key = "not for alertmanager"

[alerts]
rate_limit = { notifications = 0 }

[[alerts.silences]]
matchers = [{ label = "service", regex = "(" }]
"#,
    )
    .unwrap();
    let output = support::gateway::sluice_command()
        .arg("validate")
        .arg(&config)
        .output()
        .expect("sluice runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "sinks.pager.routing_key: missing",
        "sinks.chat.url: `hooks.slack.com/services/x` is not a URL",
        "sinks.am.routing_key: only a `type = \"pagerduty\"` sink takes it",
        "alerts.rate_limit.notifications: must be at least 1",
        "alerts.silences[0].matchers[0]: regex `(`",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }

    std::fs::write(
        &config,
        "[receivers.otlp]\ntype = \"otlp\"\nhttp = \"127.0.0.1:4318\"\n[pipelines.logs]\nreceivers = [\"otlp\"]\nalerts = [\"chat\"]\n[sinks.chat]\ntype = \"slack\"\nurl = \"https://hooks.slack.com/services/x\"\nchannel = \"#ops\"\n",
    )
    .unwrap();
    let output = support::gateway::sluice_command()
        .arg("validate")
        .arg(&config)
        .output()
        .expect("sluice runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown field `channel`"), "{stderr}");
    assert!(stderr.contains("line "), "{stderr}");
}
