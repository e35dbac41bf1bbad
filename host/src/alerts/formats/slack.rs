//! Slack incoming webhook: `{"text": …, "blocks": [...]}`, POSTed to the webhook's URL.
//!
//! `text` is the fallback shown in notifications; `blocks` lay out each alert: a header saying
//! FIRING or RESOLVED, a section with the summary and fields (severity, service, owner, team,
//! times), a context line with the other labels, and a Runbook button when one is known.
//! Slack's limits are kept: 50 blocks a message (so at most 10 alerts), 150 characters of header,
//! 3000 of section text, 10 fields of 2000, 10 context elements.

use serde_json::{Value, json};

use super::{rfc3339, truncate};
use crate::alerts::AlertStatus;
use crate::alerts::delivery::Request;
use crate::alerts::enrich::{RoutedAlert, severity_name};

/// Most alerts one message can lay out within Slack's 50 blocks.
pub const MAX_ALERTS: usize = 10;

/// `type = "slack"`.
#[derive(Debug)]
pub struct Slack {
    /// The incoming webhook's URL.
    pub url: String,
    /// Most alerts per message (at most [`MAX_ALERTS`]).
    pub batch: usize,
}

/// Escapes text for Slack's mrkdwn (`&`, `<`, `>`).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

fn status_word(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Firing => "FIRING",
        AlertStatus::Resolved => "RESOLVED",
    }
}

fn status_emoji(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Firing => ":fire:",
        AlertStatus::Resolved => ":white_check_mark:",
    }
}

impl Slack {
    /// The message for `alerts`.
    pub fn message(&self, alerts: &[RoutedAlert]) -> Value {
        let firing = alerts
            .iter()
            .filter(|routed| routed.alert.status == AlertStatus::Firing)
            .count();
        let resolved = alerts.len() - firing;
        let headline = match (firing, resolved) {
            (_, 0) => format!("FIRING: {}", describe(alerts)),
            (0, _) => format!("RESOLVED: {}", describe(alerts)),
            _ => format!("FIRING {firing}, RESOLVED {resolved}: {}", describe(alerts)),
        };
        let text = match alerts {
            [routed] => format!(
                "{} {headline}: {}",
                status_emoji(routed.alert.status),
                routed.alert.summary
            ),
            _ => headline.clone(),
        };
        let mut blocks = vec![json!({
            "type": "header",
            "text": {"type": "plain_text", "text": truncate(&headline, 150), "emoji": true},
        })];
        for (index, routed) in alerts.iter().take(MAX_ALERTS).enumerate() {
            if index > 0 {
                blocks.push(json!({"type": "divider"}));
            }
            blocks.extend(alert_blocks(routed));
        }
        json!({"text": truncate(&escape(&text), 3000), "blocks": blocks})
    }

    /// The POST carrying `alerts`.
    pub fn encode(&self, alerts: &[RoutedAlert]) -> serde_json::Result<Request> {
        Ok(Request {
            url: self.url.clone(),
            body: serde_json::to_vec(&self.message(alerts))?.into(),
        })
    }
}

/// `ErrorBurst checkout` or `3 alerts`.
fn describe(alerts: &[RoutedAlert]) -> String {
    let first = match alerts.first() {
        Some(routed) => routed,
        None => return "no alert".to_owned(),
    };
    let same_name = alerts
        .iter()
        .all(|routed| routed.alert.name == first.alert.name);
    match (same_name, first.label("service")) {
        (true, Some(service)) if alerts.len() == 1 => format!("{} ({service})", first.alert.name),
        (true, _) if alerts.len() == 1 => first.alert.name.clone(),
        (true, _) => format!("{} ×{}", first.alert.name, alerts.len()),
        (false, _) => format!("{} alerts", alerts.len()),
    }
}

/// Section, context and (with a runbook) actions of one alert.
fn alert_blocks(routed: &RoutedAlert) -> Vec<Value> {
    let alert = &routed.alert;
    let title = format!(
        "{} *{}* {}\n{}",
        status_emoji(alert.status),
        status_word(alert.status),
        escape(&alert.name),
        escape(&alert.summary)
    );
    let mut fields = vec![mrkdwn(format!(
        "*Severity*\n{}",
        severity_name(alert.severity)
    ))];
    for (label, heading) in [("service", "Service"), ("owner", "Owner"), ("team", "Team")] {
        if let Some(value) = routed.label(label).filter(|value| !value.is_empty()) {
            fields.push(mrkdwn(format!(
                "*{heading}*\n{}",
                truncate(&escape(value), 1900)
            )));
        }
    }
    fields.push(mrkdwn(format!("*Started*\n{}", rfc3339(alert.starts_at))));
    if let Some(ends_at) = alert.ends_at {
        fields.push(mrkdwn(format!("*Ended*\n{}", rfc3339(ends_at))));
    }
    let other_labels: Vec<String> = alert
        .labels
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "service" | "owner" | "team"))
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    let mut context = format!(
        "fingerprint `{}` · from {}",
        alert.fingerprint, alert.source
    );
    if !other_labels.is_empty() {
        context = format!("{} · {context}", other_labels.join(", "));
    }
    let mut blocks = vec![
        json!({
            "type": "section",
            "text": mrkdwn(truncate(&title, 3000)),
            "fields": fields,
        }),
        json!({
            "type": "context",
            "elements": [mrkdwn(truncate(&escape(&context), 2000))],
        }),
    ];
    if let Some(runbook) = &routed.runbook_url {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": "Runbook"},
                "url": truncate(runbook, 3000),
            }],
        }));
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::enrich::tests::routed;

    #[test]
    fn firing_and_resolved_read_differently() {
        let slack = Slack {
            url: "https://hooks.slack.com/services/x".into(),
            batch: 10,
        };
        let mut alert = routed("ErrorBurst", &[("service", "checkout")]);
        let firing = slack.message(std::slice::from_ref(&alert));
        assert!(
            firing["text"]
                .as_str()
                .is_some_and(|text| text.contains("FIRING"))
        );
        alert.alert.status = AlertStatus::Resolved;
        alert.alert.ends_at = Some(alert.alert.starts_at + 1);
        let resolved = slack.message(&[alert]);
        assert_eq!(
            resolved["blocks"][0]["text"]["text"],
            "RESOLVED: ErrorBurst (checkout)"
        );
    }

    #[test]
    fn markup_in_alerts_is_escaped() {
        assert_eq!(escape("<@here> & co"), "&lt;@here&gt; &amp; co");
    }
}
