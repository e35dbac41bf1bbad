//! The alert formats: each turns one notification (a list of routed alerts, or one alert for
//! formats that take one per request) into the JSON request its receiver documents. Nothing
//! here sends anything: [`super::delivery`] does, the same way for every format.

pub mod alertmanager;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

use chrono::{DateTime, SecondsFormat, Utc};

use super::delivery::Request;
use super::enrich::RoutedAlert;

/// A sink's format, with what it needs from the sink's config.
#[derive(Debug)]
pub enum Format {
    /// Generic JSON (`docs/alerts.md`).
    Webhook(webhook::Webhook),
    /// Slack incoming webhook.
    Slack(slack::Slack),
    /// Alertmanager v2 `POST /api/v2/alerts`.
    Alertmanager(alertmanager::Alertmanager),
    /// PagerDuty Events API v2.
    Pagerduty(pagerduty::Pagerduty),
}

impl Format {
    /// The request carrying `alerts` (at most [`max_alerts`](Self::max_alerts)), encoded at
    /// `now`.
    pub fn encode(
        &self,
        alerts: &[RoutedAlert],
        now: DateTime<Utc>,
    ) -> serde_json::Result<Request> {
        match self {
            Format::Webhook(format) => format.encode(alerts),
            Format::Slack(format) => format.encode(alerts),
            Format::Alertmanager(format) => format.encode(alerts, now),
            Format::Pagerduty(format) => format.encode(alerts),
        }
    }

    /// Most alerts one request carries.
    pub fn max_alerts(&self) -> usize {
        match self {
            Format::Webhook(format) => format.batch,
            Format::Slack(format) => format.batch,
            Format::Alertmanager(format) => format.batch,
            Format::Pagerduty(_) => 1,
        }
    }
}

/// Unix nanoseconds as RFC 3339 in UTC, with as many fractional digits as needed.
pub fn rfc3339(nanos: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(nanos).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_keeps_only_needed_digits() {
        assert_eq!(rfc3339(1_795_428_000_000_000_000), "2026-11-23T10:00:00Z");
        assert_eq!(
            rfc3339(1_795_428_000_250_000_000),
            "2026-11-23T10:00:00.250Z"
        );
    }

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo!", 5), "héll…");
    }
}
