//! The alert router as a user meets it through `sluice run`: grouping, the rate limit, and
//! retry after a receiver's 503. Alerts come from the `error-burst` detector fed over OTLP/HTTP,
//! one per service, and stay firing for the test.

mod support;

use std::time::Duration;

use support::alerts::{
    Kind, Receivers, error_burst_plugin, metric, send_logs, start_gateway, webhook_alerts,
};

fn config(receivers: &Receivers, sinks: &[&str], alerts: &str, extra_sinks: &str) -> String {
    let alert_sinks: Vec<String> = sinks.iter().map(|sink| format!("{sink:?}")).collect();
    format!(
        r#"
{plugin}
[pipelines.logs]
receivers = ["otlp"]
stages = ["burst"]
sinks = ["records"]
alerts = [{alert_sinks}]

[sinks.hook]
type = "webhook"
url = "{hook}"
retry_initial = "50ms"
{extra_sinks}
[alerts]
{alerts}
"#,
        plugin = error_burst_plugin("burst", 60),
        alert_sinks = alert_sinks.join(", "),
        hook = receivers.url(Kind::Webhook),
    )
}

#[test]
fn alerts_with_the_same_group_labels_go_out_together_where_the_format_allows() {
    let receivers = Receivers::start();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[sinks.chat]\ntype = \"slack\"\nurl = \"{}\"\n[sinks.pager]\ntype = \"pagerduty\"\nurl = \"{}\"\nrouting_key = \"R0UT1NGKEY0123456789abcdefABCDEF\"\n",
        receivers.url(Kind::Slack),
        receivers.url(Kind::Pagerduty)
    );
    let gateway = start_gateway(
        dir.path(),
        &config(
            &receivers,
            &["hook", "chat", "pager"],
            "group_by = [\"alertname\"]\ngroup_wait = \"1500ms\"",
            &extra,
        ),
    );
    for service in ["cart", "checkout", "search"] {
        send_logs(gateway.otlp_http, service, 17, 8);
    }
    receivers.wait_until(
        Duration::from_secs(15),
        "three PagerDuty events",
        |receivers| receivers.accepted(Kind::Pagerduty).len() >= 3,
    );
    std::thread::sleep(Duration::from_secs(2));
    let stopped = gateway.process.stop();

    // The webhook and Slack take lists: one notification for the three.
    let webhook = receivers.accepted(Kind::Webhook);
    assert_eq!(webhook.len(), 1, "{webhook:#?}");
    let mut services: Vec<String> = webhook_alerts(&webhook)
        .into_iter()
        .map(|(_, _, service)| service)
        .collect();
    services.sort();
    assert_eq!(services, ["cart", "checkout", "search"]);
    let slack = receivers.accepted(Kind::Slack);
    assert_eq!(slack.len(), 1, "{slack:#?}");
    assert_eq!(
        slack[0]["blocks"][0]["text"]["text"],
        "FIRING: ErrorBurst ×3"
    );
    // PagerDuty takes one event per alert.
    let mut sources: Vec<String> = receivers
        .accepted(Kind::Pagerduty)
        .iter()
        .map(|event| {
            event["payload"]["source"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    sources.sort();
    assert_eq!(sources, ["cart", "checkout", "search"]);
    assert_eq!(stopped.sink("hook").alerts, 3);
    assert_eq!(stopped.sink("pager").alerts, 3);
}

#[test]
fn the_rate_limit_spaces_notifications_and_counts_those_that_waited() {
    let receivers = Receivers::start();
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_gateway(
        dir.path(),
        &config(
            &receivers,
            &["hook"],
            "group_wait = \"100ms\"\nrate_limit = { notifications = 1, per = \"2s\" }",
            "",
        ),
    );
    for service in ["cart", "checkout", "search"] {
        send_logs(gateway.otlp_http, service, 17, 8);
    }
    receivers.wait_until(
        Duration::from_secs(20),
        "three notifications",
        |receivers| receivers.accepted(Kind::Webhook).len() >= 3,
    );
    let rate_limited = metric(
        gateway.admin,
        "sluice_alert_notifications_total",
        &[("sink", "hook"), ("outcome", "rate_limited")],
    );
    let stopped = gateway.process.stop();
    assert_eq!(rate_limited, 2.0, "{}", stopped.stderr);
    let arrivals: Vec<std::time::Instant> = receivers
        .received(Kind::Webhook)
        .iter()
        .map(|request| request.at)
        .collect();
    assert_eq!(arrivals.len(), 3);
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(1800),
            "one notification per 2 s, yet two came {gap:?} apart"
        );
    }
    assert_eq!(stopped.sink("hook").alerts, 3);
}

#[test]
fn a_notification_answered_503_is_retried_until_accepted() {
    let receivers = Receivers::start();
    receivers.fail_next(Kind::Webhook, 2, 503);
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_gateway(
        dir.path(),
        &config(&receivers, &["hook"], "group_wait = \"100ms\"", ""),
    );
    send_logs(gateway.otlp_http, "checkout", 17, 8);
    receivers.wait_until(
        Duration::from_secs(15),
        "an accepted notification",
        |receivers| !receivers.accepted(Kind::Webhook).is_empty(),
    );
    let sent = metric(
        gateway.admin,
        "sluice_alert_notifications_total",
        &[("sink", "hook"), ("outcome", "sent")],
    );
    let failed = metric(
        gateway.admin,
        "sluice_alert_notifications_total",
        &[("sink", "hook"), ("outcome", "failed")],
    );
    let stopped = gateway.process.stop();
    let received = receivers.received(Kind::Webhook);
    let statuses: Vec<u16> = received.iter().map(|request| request.status).collect();
    assert_eq!(statuses, [503, 503, 200]);
    assert!(
        received
            .iter()
            .all(|request| request.body == received[2].body),
        "every attempt carried the same body"
    );
    assert_eq!((sent, failed), (1.0, 0.0));
    let summary = stopped.sink("hook");
    assert_eq!(
        (summary.alerts, summary.errors),
        (1, 2),
        "{}",
        stopped.stderr
    );
}
