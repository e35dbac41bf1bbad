//! `[sinks.NAME]` of the alert sinks: `type = "webhook"`, `"slack"`, `"alertmanager"` or
//! `"pagerduty"`. One settings struct serves the four: what they share (delivery and retry)
//! plus the few fields of one kind, which the others refuse by name.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::alerts::config::check_url;
use crate::alerts::delivery::{self, RetrySettings};
use crate::alerts::formats::Format;
use crate::alerts::formats::alertmanager::Alertmanager;
use crate::alerts::formats::pagerduty::{self, Pagerduty};
use crate::alerts::formats::slack::{self, Slack};
use crate::alerts::formats::webhook::Webhook;

/// Which receiver an alert sink talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertSinkKind {
    /// Generic JSON webhook.
    Webhook,
    /// Slack incoming webhook.
    Slack,
    /// Alertmanager v2 API.
    Alertmanager,
    /// PagerDuty Events API v2.
    Pagerduty,
}

impl AlertSinkKind {
    /// The `type` value.
    pub fn name(self) -> &'static str {
        match self {
            AlertSinkKind::Webhook => "webhook",
            AlertSinkKind::Slack => "slack",
            AlertSinkKind::Alertmanager => "alertmanager",
            AlertSinkKind::Pagerduty => "pagerduty",
        }
    }
}

/// Settings of an alert sink.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSinkConfig {
    /// Where notifications go: the webhook's URL, the Slack incoming webhook's URL, the
    /// Alertmanager's base URL (`/api/v2/alerts` is appended), or PagerDuty's events endpoint.
    /// Required, except for `pagerduty` (default `https://events.pagerduty.com/v2/enqueue`).
    #[serde(default)]
    pub url: Option<String>,
    /// PagerDuty only, required: the integration's routing key (Events API v2).
    #[serde(default)]
    pub routing_key: Option<String>,
    /// Extra request headers, such as `{ Authorization = "Bearer …" }`. Default none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Time allowed for one request, connection included. Default `"10s"`.
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::config::deserialize_duration"
    )]
    pub timeout: Duration,
    /// Wait before the first retry; each further retry waits twice as long (with jitter), up to
    /// `retry_max`. Default `"500ms"`.
    #[serde(
        default = "default_retry_initial",
        deserialize_with = "crate::config::deserialize_duration"
    )]
    pub retry_initial: Duration,
    /// Longest wait between two attempts, `Retry-After` included. Default `"30s"`.
    #[serde(
        default = "default_retry_max",
        deserialize_with = "crate::config::deserialize_duration"
    )]
    pub retry_max: Duration,
    /// Attempts per request, the first included, before its notification is dropped. Default 10.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Most alerts per request (a bigger group is split). Default 64; Slack at most and by
    /// default 10; PagerDuty always 1.
    #[serde(default)]
    pub batch: Option<usize>,
    /// Alertmanager only: how often a still-firing alert is re-sent (Alertmanager resolves
    /// alerts that stop coming); `endsAt` of a firing alert is four of these ahead. Default
    /// `"1m"`.
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    pub resend_interval: Option<Duration>,
    /// Alertmanager only: the `generatorURL` of every alert (a link to this gateway or its
    /// dashboard). Default: not sent.
    #[serde(default)]
    pub generator_url: Option<String>,
}

fn deserialize_optional_duration<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    crate::config::deserialize_duration(deserializer).map(Some)
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_retry_initial() -> Duration {
    Duration::from_millis(500)
}

fn default_retry_max() -> Duration {
    Duration::from_secs(30)
}

fn default_max_attempts() -> u32 {
    10
}

const DEFAULT_BATCH: usize = 64;

const DEFAULT_RESEND_INTERVAL: Duration = Duration::from_secs(60);

impl AlertSinkConfig {
    /// Checks what serde cannot, pushing each problem prefixed with `at` (`sinks.NAME`).
    pub fn check(&self, kind: AlertSinkKind, at: &str, problems: &mut Vec<String>) {
        let only = |field: &str, owner: &str, problems: &mut Vec<String>| {
            problems.push(format!(
                "{at}.{field}: only a `type = \"{owner}\"` sink takes it, this one is `{}`",
                kind.name()
            ));
        };
        match (&self.url, kind) {
            (Some(url), _) => check_url(&format!("{at}.url"), url, problems),
            (None, AlertSinkKind::Pagerduty) => {}
            (None, _) => problems.push(format!(
                "{at}.url: missing: {}",
                match kind {
                    AlertSinkKind::Slack => "the Slack incoming webhook's URL",
                    AlertSinkKind::Alertmanager =>
                        "the Alertmanager's base URL, such as \"http://alertmanager:9093\"",
                    _ => "where the alerts are POSTed",
                }
            )),
        }
        match (&self.routing_key, kind) {
            (Some(key), AlertSinkKind::Pagerduty) if key.trim().is_empty() => {
                problems.push(format!("{at}.routing_key: is empty"))
            }
            (None, AlertSinkKind::Pagerduty) => problems.push(format!(
                "{at}.routing_key: missing: the PagerDuty integration key (Events API v2) the events go to"
            )),
            (Some(_), AlertSinkKind::Pagerduty) | (None, _) => {}
            (Some(_), _) => only("routing_key", "pagerduty", problems),
        }
        if kind != AlertSinkKind::Alertmanager {
            if self.resend_interval.is_some() {
                only("resend_interval", "alertmanager", problems);
            }
            if self.generator_url.is_some() {
                only("generator_url", "alertmanager", problems);
            }
        }
        if self
            .resend_interval
            .is_some_and(|interval| interval.is_zero())
        {
            problems.push(format!("{at}.resend_interval: must be above 0"));
        }
        if let Some(url) = &self.generator_url {
            check_url(&format!("{at}.generator_url"), url, problems);
        }
        match (self.batch, kind) {
            (Some(0), _) => problems.push(format!("{at}.batch: must be at least 1")),
            (Some(batch), AlertSinkKind::Pagerduty) if batch != 1 => problems.push(format!(
                "{at}.batch: PagerDuty takes one event per request; leave it out"
            )),
            (Some(batch), AlertSinkKind::Slack) if batch > slack::MAX_ALERTS => {
                problems.push(format!(
                    "{at}.batch: at most {} (Slack allows 50 blocks a message)",
                    slack::MAX_ALERTS
                ))
            }
            _ => {}
        }
        if let Err(problem) = delivery::header_map(&self.headers) {
            problems.push(format!("{at}.headers: {problem}"));
        }
        if self.timeout.is_zero() {
            problems.push(format!("{at}.timeout: must be above 0"));
        }
        if self.retry_initial.is_zero() {
            problems.push(format!("{at}.retry_initial: must be above 0"));
        }
        if self.retry_max < self.retry_initial {
            problems.push(format!(
                "{at}.retry_max: must be at least retry_initial ({})",
                humantime::format_duration(self.retry_initial)
            ));
        }
        if self.max_attempts == 0 {
            problems.push(format!("{at}.max_attempts: must be at least 1"));
        }
    }

    /// How requests are retried.
    pub fn retry(&self) -> RetrySettings {
        RetrySettings {
            timeout: self.timeout,
            retry_initial: self.retry_initial,
            retry_max: self.retry_max,
            max_attempts: self.max_attempts,
        }
    }

    /// The format (call after [`check`](Self::check) found nothing).
    pub fn format(&self, kind: AlertSinkKind) -> Format {
        let url = self.url.clone().unwrap_or_default();
        match kind {
            AlertSinkKind::Webhook => Format::Webhook(Webhook {
                url,
                batch: self.batch.unwrap_or(DEFAULT_BATCH),
            }),
            AlertSinkKind::Slack => Format::Slack(Slack {
                url,
                batch: self.batch.unwrap_or(slack::MAX_ALERTS),
            }),
            AlertSinkKind::Alertmanager => Format::Alertmanager(Alertmanager {
                endpoint: Alertmanager::endpoint(&url),
                batch: self.batch.unwrap_or(DEFAULT_BATCH),
                resend_interval: self.resend_interval.unwrap_or(DEFAULT_RESEND_INTERVAL),
                generator_url: self.generator_url.clone(),
            }),
            AlertSinkKind::Pagerduty => Format::Pagerduty(Pagerduty {
                url: self
                    .url
                    .clone()
                    .unwrap_or_else(|| pagerduty::DEFAULT_URL.to_owned()),
                routing_key: self.routing_key.clone().unwrap_or_default(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(kind: AlertSinkKind, toml_text: &str) -> Vec<String> {
        let config: AlertSinkConfig = toml::from_str(toml_text).expect("parses");
        let mut problems = Vec::new();
        config.check(kind, "sinks.x", &mut problems);
        problems
    }

    #[test]
    fn each_kind_asks_for_what_it_needs() {
        let found = problems(AlertSinkKind::Pagerduty, "");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("sinks.x.routing_key: missing"),
            "{found:?}"
        );
        let found = problems(AlertSinkKind::Slack, "");
        assert!(found[0].starts_with("sinks.x.url: missing"), "{found:?}");
        let found = problems(AlertSinkKind::Alertmanager, "url = \"not a url\"");
        assert!(
            found[0].starts_with("sinks.x.url: `not a url` is not a URL"),
            "{found:?}"
        );
        let found = problems(
            AlertSinkKind::Webhook,
            "url = \"http://x/\"\nrouting_key = \"k\"\nresend_interval = \"1m\"",
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("only a `type = \"pagerduty\"` sink"),
            "{found:?}"
        );
        assert!(problems(AlertSinkKind::Pagerduty, "routing_key = \"R0UT1NGKEY\"").is_empty());
        assert!(
            toml::from_str::<AlertSinkConfig>("url = \"http://x/\"\nchannel = \"#ops\"").is_err(),
            "unknown fields are refused"
        );
    }
}
