//! Enrichment: the `owner` and `team` labels and the runbook URL of an alert, from the
//! `[alerts.services]` table and the runbook template, so that whoever is notified knows whose it
//! is and what to do.

use std::collections::BTreeMap;

use super::config::{AlertsConfig, ServiceConfig};
use super::{Alert, AlertSeverity};

/// An alert on its way through a router: its labels enriched, its runbook found.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutedAlert {
    /// The alert; its fingerprint is the detector's (computed before enrichment), so the firing
    /// and resolved alerts keep matching.
    pub alert: Alert,
    /// Where the runbook is, when known.
    pub runbook_url: Option<String>,
}

impl RoutedAlert {
    /// A label's value; `alertname` and `severity` give the alert's name and severity unless it
    /// has labels of those names.
    pub fn label(&self, name: &str) -> Option<&str> {
        if let Some(value) = find(&self.alert.labels, name) {
            return Some(value);
        }
        match name {
            "alertname" => Some(&self.alert.name),
            "severity" => Some(severity_name(self.alert.severity)),
            _ => None,
        }
    }
}

/// `info`, `warning`, `error` or `critical`.
pub fn severity_name(severity: AlertSeverity) -> &'static str {
    match severity {
        AlertSeverity::Info => "info",
        AlertSeverity::Warning => "warning",
        AlertSeverity::Error => "error",
        AlertSeverity::Critical => "critical",
    }
}

fn find<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    labels
        .binary_search_by(|(key, _)| key.as_str().cmp(name))
        .ok()
        .map(|index| labels[index].1.as_str())
}

/// Adds owner, team and runbook.
#[derive(Debug, Default)]
pub struct Enricher {
    services: BTreeMap<String, ServiceConfig>,
    runbook_template: Option<String>,
}

impl Enricher {
    /// From `[alerts]`.
    pub fn new(config: &AlertsConfig) -> Self {
        Enricher {
            services: config.services.clone(),
            runbook_template: config.runbook_template.clone(),
        }
    }

    /// The alert with `owner` and `team` from its service's entry (labels it already has win)
    /// and its runbook: a `runbook_url` label, else the service's, else the template's.
    pub fn enrich(&self, alert: &Alert) -> RoutedAlert {
        let mut alert = alert.clone();
        let service = find(&alert.labels, "service").map(str::to_owned);
        let entry = service.as_deref().and_then(|name| self.services.get(name));
        if let Some(entry) = entry {
            for (label, value) in [("owner", &entry.owner), ("team", &entry.team)] {
                if let Some(value) = value
                    && find(&alert.labels, label).is_none()
                {
                    alert.labels.push((label.to_owned(), value.clone()));
                }
            }
            alert.labels.sort();
        }
        let runbook_url = find(&alert.labels, "runbook_url")
            .map(str::to_owned)
            .or_else(|| entry.and_then(|entry| entry.runbook.clone()))
            .or_else(|| {
                self.runbook_template.as_ref().map(|template| {
                    template
                        .replace("{alertname}", &alert.name)
                        .replace("{service}", service.as_deref().unwrap_or(""))
                        .replace("{severity}", severity_name(alert.severity))
                })
            });
        RoutedAlert { alert, runbook_url }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alerts::AlertStatus;

    /// A firing alert named `name` with `labels`, as a detector raises it.
    pub fn alert(name: &str, labels: &[(&str, &str)]) -> Alert {
        Alert {
            name: name.to_owned(),
            severity: AlertSeverity::Error,
            status: AlertStatus::Firing,
            labels: labels
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
            summary: format!("{name} fires"),
            fingerprint: String::new(),
            starts_at: 1_795_428_000_000_000_000,
            ends_at: None,
            source: "test".to_owned(),
        }
        .normalised()
    }

    /// The same, routed without enrichment.
    pub fn routed(name: &str, labels: &[(&str, &str)]) -> RoutedAlert {
        Enricher::default().enrich(&alert(name, labels))
    }

    fn enricher() -> Enricher {
        let config: AlertsConfig = toml::from_str(
            r#"
runbook_template = "https://runbooks.example.com/{service}/{alertname}"
[services.checkout]
owner = "alice"
team = "payments"
runbook = "https://runbooks.example.com/checkout"
[services.cart]
team = "shop"
"#,
        )
        .expect("parses");
        Enricher::new(&config)
    }

    #[test]
    fn owner_team_and_runbook_come_from_the_service_table() {
        let routed = enricher().enrich(&alert("ErrorBurst", &[("service", "checkout")]));
        assert_eq!(routed.label("owner"), Some("alice"));
        assert_eq!(routed.label("team"), Some("payments"));
        assert_eq!(
            routed.runbook_url.as_deref(),
            Some("https://runbooks.example.com/checkout")
        );
        // The fingerprint is the detector's, so the resolution still matches.
        assert_eq!(
            routed.alert.fingerprint,
            alert("ErrorBurst", &[("service", "checkout")]).fingerprint
        );
        assert!(routed.alert.labels.is_sorted());
    }

    #[test]
    fn the_alerts_own_labels_win_and_the_template_fills_in() {
        let routed = enricher().enrich(&alert(
            "ErrorBurst",
            &[("service", "cart"), ("team", "checkout-oncall")],
        ));
        assert_eq!(routed.label("team"), Some("checkout-oncall"));
        assert_eq!(routed.label("owner"), None);
        assert_eq!(
            routed.runbook_url.as_deref(),
            Some("https://runbooks.example.com/cart/ErrorBurst")
        );
        let routed = enricher().enrich(&alert(
            "ErrorBurst",
            &[("runbook_url", "https://wiki/x"), ("service", "checkout")],
        ));
        assert_eq!(routed.runbook_url.as_deref(), Some("https://wiki/x"));
        assert_eq!(routed.label("alertname"), Some("ErrorBurst"));
        assert_eq!(routed.label("severity"), Some("error"));
    }
}
