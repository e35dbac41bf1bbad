//! The generic webhook body, `{"version": "1", "alerts": [...]}`, documented in
//! `docs/alerts.md`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::rfc3339;
use crate::alerts::delivery::Request;
use crate::alerts::enrich::RoutedAlert;
use crate::alerts::{AlertSeverity, AlertStatus};

/// Version of the body format, sent as its `version` field.
pub const BODY_VERSION: &str = "1";

/// `type = "webhook"`.
#[derive(Debug)]
pub struct Webhook {
    /// Where the body is POSTed.
    pub url: String,
    /// Most alerts per POST.
    pub batch: usize,
}

/// The body of one POST.
#[derive(Debug, Serialize)]
pub struct WebhookBody<'a> {
    /// Format version, [`BODY_VERSION`].
    pub version: &'static str,
    /// The alerts, firing before their resolution.
    pub alerts: Vec<WebhookAlert<'a>>,
}

/// One alert as the webhook sends it.
#[derive(Debug, Serialize)]
pub struct WebhookAlert<'a> {
    /// Alert name, such as `ErrorBurst`.
    pub name: &'a str,
    /// `info`, `warning`, `error` or `critical`.
    pub severity: AlertSeverity,
    /// `firing` or `resolved`.
    pub status: AlertStatus,
    /// Labels, as an object sorted by key.
    pub labels: BTreeMap<&'a str, &'a str>,
    /// One line for humans.
    pub summary: &'a str,
    /// De-duplication key: the same alert keeps it from firing to resolved.
    pub fingerprint: &'a str,
    /// When it started, RFC 3339 in UTC.
    pub starts_at: String,
    /// When it ended, RFC 3339 in UTC; null while firing.
    pub ends_at: Option<String>,
    /// What raised it: a plugin's name or `sluice`.
    pub source: &'a str,
    /// The runbook, when known (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<&'a str>,
}

impl<'a> WebhookBody<'a> {
    /// The body carrying `alerts`.
    pub fn new(alerts: &'a [RoutedAlert]) -> Self {
        WebhookBody {
            version: BODY_VERSION,
            alerts: alerts
                .iter()
                .map(|routed| {
                    let alert = &routed.alert;
                    WebhookAlert {
                        name: &alert.name,
                        severity: alert.severity,
                        status: alert.status,
                        labels: alert
                            .labels
                            .iter()
                            .map(|(key, value)| (key.as_str(), value.as_str()))
                            .collect(),
                        summary: &alert.summary,
                        fingerprint: &alert.fingerprint,
                        starts_at: rfc3339(alert.starts_at),
                        ends_at: alert.ends_at.map(rfc3339),
                        source: &alert.source,
                        runbook_url: routed.runbook_url.as_deref(),
                    }
                })
                .collect(),
        }
    }
}

impl Webhook {
    /// The POST carrying `alerts`.
    pub fn encode(&self, alerts: &[RoutedAlert]) -> serde_json::Result<Request> {
        Ok(Request {
            url: self.url.clone(),
            body: serde_json::to_vec(&WebhookBody::new(alerts))?.into(),
        })
    }
}
