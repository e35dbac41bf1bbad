//! Alertmanager API v2: `POST {url}/api/v2/alerts` with a JSON array of `postableAlert` objects
//! (`labels` with `alertname`, `annotations`, `startsAt`, `endsAt`, `generatorURL`).
//!
//! Alertmanager resolves an alert by itself once its `endsAt` passes, so a firing alert is sent
//! with `endsAt` four `resend_interval`s ahead and re-sent every `resend_interval` while it fires
//! (as Prometheus does); its resolution carries the real end. Label and annotation names are
//! made to fit Alertmanager's rule (`[a-zA-Z_][a-zA-Z0-9_]*`, other characters become `_`), and
//! empty values are left out, as Alertmanager treats them as absent.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::rfc3339;
use crate::alerts::AlertStatus;
use crate::alerts::delivery::Request;
use crate::alerts::enrich::{RoutedAlert, severity_name};

/// `type = "alertmanager"`.
#[derive(Debug)]
pub struct Alertmanager {
    /// `{url}/api/v2/alerts`.
    pub endpoint: String,
    /// Most alerts per POST.
    pub batch: usize,
    /// How often a firing alert is re-sent.
    pub resend_interval: Duration,
    /// `generatorURL` of every alert, when set.
    pub generator_url: Option<String>,
}

/// One `postableAlert`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    /// Identity in Alertmanager; includes `alertname` and `severity`.
    pub labels: BTreeMap<String, String>,
    /// `summary`, `runbook_url`, `fingerprint`, `source`.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339: the end of a resolved alert, or when a firing one expires unless re-sent.
    pub ends_at: String,
    /// Link to what raised it.
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

/// A label or annotation name Alertmanager accepts.
fn label_name(name: &str) -> String {
    let mut fitted: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if fitted.is_empty() || fitted.starts_with(|c: char| c.is_ascii_digit()) {
        fitted.insert(0, '_');
    }
    fitted
}

impl Alertmanager {
    /// The endpoint for a base URL such as `http://alertmanager:9093`.
    pub fn endpoint(url: &str) -> String {
        format!("{}/api/v2/alerts", url.trim_end_matches('/'))
    }

    /// The alert as Alertmanager takes it.
    pub fn postable(&self, routed: &RoutedAlert, now: DateTime<Utc>) -> PostableAlert {
        let alert = &routed.alert;
        let mut labels = BTreeMap::new();
        for (key, value) in &alert.labels {
            if !value.is_empty() {
                labels.insert(label_name(key), value.clone());
            }
        }
        labels.insert("alertname".to_owned(), alert.name.clone());
        labels
            .entry("severity".to_owned())
            .or_insert_with(|| severity_name(alert.severity).to_owned());
        let mut annotations = BTreeMap::new();
        if !alert.summary.is_empty() {
            annotations.insert("summary".to_owned(), alert.summary.clone());
        }
        if let Some(runbook) = &routed.runbook_url {
            annotations.insert("runbook_url".to_owned(), runbook.clone());
        }
        annotations.insert("fingerprint".to_owned(), alert.fingerprint.clone());
        annotations.insert("source".to_owned(), alert.source.clone());
        let ends_at = match (alert.status, alert.ends_at) {
            (AlertStatus::Resolved, Some(ends_at)) => rfc3339(ends_at),
            (AlertStatus::Resolved, None) => now.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            (AlertStatus::Firing, _) => {
                let ahead = chrono::Duration::from_std(self.resend_interval * 4)
                    .unwrap_or(chrono::Duration::hours(1));
                (now + ahead).to_rfc3339_opts(SecondsFormat::AutoSi, true)
            }
        };
        PostableAlert {
            labels,
            annotations,
            starts_at: rfc3339(alert.starts_at),
            ends_at,
            generator_url: self.generator_url.clone(),
        }
    }

    /// The POST carrying `alerts`.
    pub fn encode(
        &self,
        alerts: &[RoutedAlert],
        now: DateTime<Utc>,
    ) -> serde_json::Result<Request> {
        let body: Vec<PostableAlert> = alerts
            .iter()
            .map(|routed| self.postable(routed, now))
            .collect();
        Ok(Request {
            url: self.endpoint.clone(),
            body: serde_json::to_vec(&body)?.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::enrich::tests::routed;

    #[test]
    fn labels_fit_alertmanager_and_firing_alerts_expire_unless_re_sent() {
        let format = Alertmanager {
            endpoint: Alertmanager::endpoint("http://am:9093/"),
            batch: 64,
            resend_interval: Duration::from_secs(60),
            generator_url: None,
        };
        assert_eq!(format.endpoint, "http://am:9093/api/v2/alerts");
        let alert = routed(
            "ErrorBurst",
            &[("service.name", "checkout"), ("9lives", "x"), ("empty", "")],
        );
        let now = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let postable = format.postable(&alert, now);
        let names: Vec<&str> = postable.labels.keys().map(String::as_str).collect();
        assert_eq!(names, ["_9lives", "alertname", "service_name", "severity"]);
        assert_eq!(postable.ends_at, "2026-11-23T10:04:00Z");
        let json = serde_json::to_value(&postable).expect("serialises");
        assert!(json.get("generatorURL").is_none());
        assert_eq!(json["startsAt"], "2026-11-23T10:00:00Z");
    }
}
