//! PagerDuty Events API v2: `POST https://events.pagerduty.com/v2/enqueue` (overridable), one
//! event per alert: `trigger` for a firing alert, `resolve` for its resolution, both with the
//! alert's fingerprint as `dedup_key`, so PagerDuty folds repeats into one incident and the
//! resolution closes it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{rfc3339, truncate};
use crate::alerts::AlertStatus;
use crate::alerts::delivery::Request;
use crate::alerts::enrich::{RoutedAlert, severity_name};

/// The documented endpoint.
pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// PagerDuty cuts `payload.summary` at 1024 characters.
const MAX_SUMMARY_CHARS: usize = 1024;

/// `type = "pagerduty"`.
#[derive(Debug)]
pub struct Pagerduty {
    /// Where events go.
    pub url: String,
    /// The integration's routing key.
    pub routing_key: String,
}

/// One event.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    /// The integration key.
    pub routing_key: &'a str,
    /// `trigger` or `resolve`.
    pub event_action: &'static str,
    /// The alert's fingerprint.
    pub dedup_key: &'a str,
    /// Trigger events only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload<'a>>,
    /// The runbook, on trigger events.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link<'a>>,
    /// Shown as the event's sender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<&'static str>,
}

/// `payload` of a trigger event.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    /// One line, at most 1024 characters.
    pub summary: String,
    /// The affected system: the alert's `host` or `instance` label, else its service, else
    /// what raised it.
    pub source: &'a str,
    /// `critical`, `error`, `warning` or `info`.
    pub severity: &'static str,
    /// When it started, RFC 3339.
    pub timestamp: String,
    /// The `component` label, else the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<&'a str>,
    /// The `team` label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<&'a str>,
    /// The alert's name.
    pub class: &'a str,
    /// Every label, the fingerprint and what raised it.
    pub custom_details: BTreeMap<&'a str, &'a str>,
}

/// A link shown with the incident.
#[derive(Debug, Serialize)]
pub struct Link<'a> {
    /// URL.
    pub href: &'a str,
    /// Its text.
    pub text: &'static str,
}

impl Pagerduty {
    /// The event for one alert.
    pub fn event<'a>(&'a self, routed: &'a RoutedAlert) -> Event<'a> {
        let alert = &routed.alert;
        if alert.status == AlertStatus::Resolved {
            return Event {
                routing_key: &self.routing_key,
                event_action: "resolve",
                dedup_key: &alert.fingerprint,
                payload: None,
                links: Vec::new(),
                client: None,
            };
        }
        let service = routed.label("service");
        let source = routed
            .label("host")
            .or_else(|| routed.label("instance"))
            .or(service)
            .filter(|source| !source.is_empty())
            .unwrap_or(&alert.source);
        let mut custom_details: BTreeMap<&str, &str> = alert
            .labels
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        custom_details.insert("fingerprint", &alert.fingerprint);
        custom_details.insert("raised_by", &alert.source);
        let summary = if alert.summary.is_empty() {
            alert.name.clone()
        } else {
            format!("{}: {}", alert.name, alert.summary)
        };
        Event {
            routing_key: &self.routing_key,
            event_action: "trigger",
            dedup_key: &alert.fingerprint,
            payload: Some(Payload {
                summary: truncate(&summary, MAX_SUMMARY_CHARS),
                source,
                severity: severity_name(alert.severity),
                timestamp: rfc3339(alert.starts_at),
                component: routed.label("component").or(service),
                group: routed.label("team"),
                class: &alert.name,
                custom_details,
            }),
            links: routed
                .runbook_url
                .as_deref()
                .map(|href| Link {
                    href,
                    text: "Runbook",
                })
                .into_iter()
                .collect(),
            client: Some("Sluice"),
        }
    }

    /// The POST carrying `alerts` (one: the router sends PagerDuty one alert per request).
    pub fn encode(&self, alerts: &[RoutedAlert]) -> serde_json::Result<Request> {
        let body = match alerts {
            [routed] => serde_json::to_vec(&self.event(routed))?,
            // Never made by the router; encoded as a list so that PagerDuty refuses it loudly.
            _ => serde_json::to_vec(
                &alerts
                    .iter()
                    .map(|routed| self.event(routed))
                    .collect::<Vec<_>>(),
            )?,
        };
        Ok(Request {
            url: self.url.clone(),
            body: body.into(),
        })
    }
}
