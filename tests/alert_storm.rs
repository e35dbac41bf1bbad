//! One incident, a storm of alerts, one notification each way per sink.
//!
//! Four pipelines on the same OTLP receiver each run their own `error-burst` detector, so one
//! burst of errors raises the same alert (same name and labels, so the same fingerprint) four
//! times firing and four times resolved; a fifth runs the test detector `hostile-detector`,
//! which repeats its `Tenth` alert at every tenth record while the burst lasts. The router of
//! each of the four alert sinks (webhook, Slack, PagerDuty stand-ins and a real Alertmanager)
//! must turn that into exactly one firing and one resolved `ErrorBurst` notification and one
//! `Tenth`, counting the rest as de-duplicated.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::alerts::{
    Alertmanager, Kind, Receivers, error_burst_plugin, metric, send_logs, start_gateway,
    webhook_alerts,
};

const DETECTORS: usize = 4;
const REQUESTS: usize = 20;
const ERRORS_PER_REQUEST: usize = 10;

#[test]
fn a_storm_of_repeated_alerts_is_one_firing_and_one_resolved_notification_per_sink() {
    let receivers = Receivers::start();
    let dir = tempfile::tempdir().unwrap();
    let alertmanager = Alertmanager::start(
        &dir.path().join("alertmanager"),
        &receivers.url(Kind::AlertmanagerHook),
    );
    let mut body = String::new();
    for index in 0..DETECTORS {
        body.push_str(&error_burst_plugin(&format!("burst{index}"), 1));
        body.push_str(&format!(
            "[pipelines.p{index}]\nreceivers = [\"otlp\"]\nstages = [\"burst{index}\"]\nsinks = [\"records\"]\nalerts = [\"hook\", \"chat\", \"pager\", \"am\"]\n\n"
        ));
    }
    body.push_str(&format!(
        r#"
[plugins.counter]
path = {counter:?}

[pipelines.counting]
receivers = ["otlp"]
stages = ["counter"]
sinks = ["records"]
alerts = ["hook", "chat", "pager", "am"]

[sinks.hook]
type = "webhook"
url = "{hook}"

[sinks.chat]
type = "slack"
url = "{slack}"

[sinks.pager]
type = "pagerduty"
url = "{pagerduty}"
routing_key = "R0UT1NGKEY0123456789abcdefABCDEF"

[sinks.am]
type = "alertmanager"
url = "{alertmanager}"

[alerts]
group_wait = "300ms"
"#,
        counter = support::plugin_wasm("hostile-detector")
            .display()
            .to_string(),
        hook = receivers.url(Kind::Webhook),
        slack = receivers.url(Kind::Slack),
        pagerduty = receivers.url(Kind::Pagerduty),
        alertmanager = alertmanager.url,
    ));
    let gateway_dir = dir.path().join("gateway");
    std::fs::create_dir_all(&gateway_dir).unwrap();
    let gateway = start_gateway(&gateway_dir, &body);

    for _ in 0..REQUESTS {
        send_logs(gateway.otlp_http, "checkout", 17, ERRORS_PER_REQUEST);
        std::thread::sleep(Duration::from_millis(100));
    }
    receivers.wait_until(
        Duration::from_secs(20),
        "the ErrorBurst resolution at the webhook, Slack and PagerDuty",
        |receivers| {
            webhook_alerts(&receivers.accepted(Kind::Webhook))
                .iter()
                .any(|(name, status, _)| name == "ErrorBurst" && status == "resolved")
                && receivers.accepted(Kind::Slack).len() >= 3
                && receivers.accepted(Kind::Pagerduty).len() >= 3
        },
    );
    // Past a group wait and a detector tick: any straggler would have gone out by now.
    std::thread::sleep(Duration::from_secs(2));
    let repeats = DETECTORS * 2 - 2 + REQUESTS * ERRORS_PER_REQUEST / 10 - 1;
    for sink in ["hook", "chat", "pager", "am"] {
        let deduplicated = metric(
            gateway.admin,
            "sluice_alert_suppressed_total",
            &[("sink", sink), ("reason", "deduplicated")],
        );
        assert_eq!(deduplicated, repeats as f64, "{sink}");
        let sent = metric(
            gateway.admin,
            "sluice_alert_notifications_total",
            &[("sink", sink), ("outcome", "sent")],
        );
        assert_eq!(sent, 3.0, "{sink}");
    }
    let active: Vec<String> = alertmanager
        .alerts()
        .iter()
        .filter(|alert| alert["status"]["state"] == "active")
        .map(|alert| {
            alert["labels"]["alertname"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(active, ["Tenth"], "{:#?}", alertmanager.alerts());
    let stopped = gateway.process.stop();

    let pair = |name: &str, status: &str| (name.to_owned(), status.to_owned());
    let mut webhook: Vec<(String, String)> = webhook_alerts(&receivers.accepted(Kind::Webhook))
        .into_iter()
        .map(|(name, status, _)| (name, status))
        .collect();
    webhook.sort();
    assert_eq!(
        webhook,
        [
            pair("ErrorBurst", "firing"),
            pair("ErrorBurst", "resolved"),
            pair("Tenth", "firing")
        ]
    );
    let mut slack: Vec<String> = receivers.accepted(Kind::Slack).iter().map(header).collect();
    slack.sort();
    assert_eq!(
        slack,
        [
            "FIRING: ErrorBurst (checkout)",
            "FIRING: Tenth",
            "RESOLVED: ErrorBurst (checkout)"
        ]
    );
    let mut pagerduty: Vec<(String, String)> = receivers
        .accepted(Kind::Pagerduty)
        .iter()
        .map(|event| {
            (
                event["event_action"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                event["dedup_key"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    pagerduty.sort();
    assert_eq!(pagerduty.len(), 3, "{pagerduty:?}");
    let actions: Vec<&str> = pagerduty
        .iter()
        .map(|(action, _)| action.as_str())
        .collect();
    assert_eq!(actions, ["resolve", "trigger", "trigger"]);
    assert!(
        pagerduty[1..].iter().any(|(_, key)| key == &pagerduty[0].1),
        "the resolve closes a trigger's dedup key: {pagerduty:?}"
    );

    for index in 0..DETECTORS {
        assert_eq!(stopped.pipeline(&format!("p{index}")).alerts, 2);
    }
    assert_eq!(
        stopped.pipeline("counting").alerts,
        (REQUESTS * ERRORS_PER_REQUEST / 10) as u64
    );
    for sink in ["hook", "chat", "pager", "am"] {
        let summary = stopped.sink(sink);
        assert_eq!(summary.alerts, 3, "{sink}: {}", stopped.stderr);
        assert_eq!(summary.errors, 0, "{sink}: {}", stopped.stderr);
    }
}

fn header(message: &Value) -> String {
    message["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
