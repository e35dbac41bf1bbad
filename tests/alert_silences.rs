//! Silences, from the config and from the admin endpoint (`/api/silences`): a silenced alert is
//! counted and not sent, a control alert of another service still goes through, and an alert
//! held back by a deleted silence goes out once the silence is gone.

mod support;

use std::time::Duration;

use serde_json::json;
use support::alerts::{
    Kind, Receivers, create_silence, delete_silence, error_burst_plugin, list_silences, metric,
    send_logs, start_gateway, webhook_alerts,
};

/// The services of the firing alerts the webhook accepted so far.
fn firing_services(receivers: &Receivers) -> Vec<String> {
    webhook_alerts(&receivers.accepted(Kind::Webhook))
        .into_iter()
        .filter(|(_, status, _)| status == "firing")
        .map(|(_, _, service)| service)
        .collect()
}

fn wait_for_service(receivers: &Receivers, service: &str) {
    receivers.wait_until(
        Duration::from_secs(15),
        &format!("the firing alert of {service}"),
        |receivers| {
            firing_services(receivers)
                .iter()
                .any(|found| found == service)
        },
    );
}

#[test]
fn silences_from_the_config_and_the_admin_endpoint_hold_alerts_back_until_deleted() {
    let receivers = Receivers::start();
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_gateway(
        dir.path(),
        &format!(
            r#"
{plugin}
[pipelines.logs]
receivers = ["otlp"]
stages = ["burst"]
sinks = ["records"]
alerts = ["hook"]

[sinks.hook]
type = "webhook"
url = "{hook}"

[alerts]
group_wait = "200ms"

[[alerts.silences]]
matchers = [{{ label = "service", equal = "legacy" }}]
comment = "legacy is being retired"
"#,
            // Alerts keep firing for the whole test.
            plugin = error_burst_plugin("burst", 60),
            hook = receivers.url(Kind::Webhook),
        ),
    );
    let admin = gateway.admin;
    let silenced = || {
        metric(
            admin,
            "sluice_alert_suppressed_total",
            &[("sink", "hook"), ("reason", "silenced")],
        )
    };

    // The config's silence is listed and cannot be deleted over the API.
    let listed = list_silences(admin);
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["id"], "config-0");
    assert_eq!(listed[0]["origin"], "config");
    assert_eq!(listed[0]["state"], "active");
    assert_eq!(listed[0]["comment"], "legacy is being retired");
    assert_eq!(delete_silence(admin, "config-0"), 409);

    // It holds `legacy` back; `cart`, sent after it, goes through.
    send_logs(gateway.otlp_http, "legacy", 17, 8);
    send_logs(gateway.otlp_http, "cart", 17, 8);
    wait_for_service(&receivers, "cart");
    assert_eq!(firing_services(&receivers), ["cart"]);
    assert_eq!(silenced(), 1.0);

    // A silence over the API: listed, holds `checkout` back while `search` goes through.
    let (status, answer) = create_silence(
        admin,
        &json!({
            "matchers": [
                {"label": "service", "equal": "checkout"},
                {"label": "alertname", "regex": "Error.*"}
            ],
            "duration": "10m",
            "comment": "deploying checkout"
        }),
    );
    assert_eq!(status, 201, "{answer}");
    let id = answer["id"].as_str().expect("an id").to_owned();
    let listed = list_silences(admin);
    let created = listed
        .iter()
        .find(|silence| silence["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not listed: {listed:#?}"));
    assert_eq!(created["origin"], "api");
    assert_eq!(created["comment"], "deploying checkout");
    assert_eq!(
        created["matchers"],
        json!([
            {"label": "service", "equal": "checkout"},
            {"label": "alertname", "regex": "Error.*"}
        ])
    );
    assert!(created["ends_at"].is_string(), "{created}");
    let (status, refused) = create_silence(
        admin,
        &json!({"matchers": [{"label": "service", "equal": "x"}]}),
    );
    assert_eq!(status, 400);
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|error| error.contains("duration")),
        "{refused}"
    );

    send_logs(gateway.otlp_http, "checkout", 17, 8);
    send_logs(gateway.otlp_http, "search", 17, 8);
    wait_for_service(&receivers, "search");
    assert_eq!(firing_services(&receivers), ["cart", "search"]);
    assert_eq!(silenced(), 2.0);

    // Deleted: the alert it held goes out.
    assert_eq!(delete_silence(admin, &id), 200);
    assert_eq!(delete_silence(admin, &id), 404);
    wait_for_service(&receivers, "checkout");
    assert_eq!(firing_services(&receivers), ["cart", "search", "checkout"]);
    assert_eq!(list_silences(admin).len(), 1);

    let stopped = gateway.process.stop();
    assert_eq!(stopped.sink("hook").alerts, 3, "{}", stopped.stderr);
}
