//! `[alerts]`: what every alert sink's router shares: who owns which service, how alerts are
//! grouped, repeated and rate-limited, and the silences written in the config.
//!
//! ```toml
//! [alerts]
//! group_by = ["alertname", "service"]
//! group_wait = "2s"
//! repeat_interval = "4h"
//! runbook_template = "https://runbooks.example.com/{alertname}"
//! rate_limit = { notifications = 20, per = "1m", max_waiting = 1000 }
//!
//! [alerts.services.checkout]
//! owner = "alice"
//! team = "payments"
//! runbook = "https://runbooks.example.com/checkout"
//!
//! [[alerts.silences]]
//! matchers = [{ label = "service", equal = "checkout" }]
//! ends_at = "2026-12-24T00:00:00Z"
//! comment = "maintenance window"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::silences::{MatcherConfig, parse_time};

/// The `[alerts]` table. Every field has a default, so the table itself is optional.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Owner, team and runbook per service (the alert's `service` label, which detectors take
    /// from the resource attribute `service.name`). Default: none.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceConfig>,
    /// Runbook URL of alerts whose service has none in `services`; `{alertname}`, `{service}`
    /// and `{severity}` are replaced by the alert's. Default: none.
    #[serde(default)]
    pub runbook_template: Option<String>,
    /// Labels whose values put alerts in one group (one notification); `alertname` is the
    /// alert's name. Default `["alertname", "service"]`.
    #[serde(default = "default_group_by")]
    pub group_by: Vec<String>,
    /// How long a group collects alerts after its first one before it goes out. Default `"2s"`.
    #[serde(
        default = "default_group_wait",
        deserialize_with = "crate::config::deserialize_duration"
    )]
    pub group_wait: Duration,
    /// A still-firing alert is notified again after this long. Default `"4h"`.
    #[serde(
        default = "default_repeat_interval",
        deserialize_with = "crate::config::deserialize_duration"
    )]
    pub repeat_interval: Duration,
    /// Most notifications each alert sink sends per interval. Default 20 per minute.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Silences in force from the start (more can be added on the admin endpoint).
    #[serde(default)]
    pub silences: Vec<SilenceConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            services: BTreeMap::new(),
            runbook_template: None,
            group_by: default_group_by(),
            group_wait: default_group_wait(),
            repeat_interval: default_repeat_interval(),
            rate_limit: RateLimitConfig::default(),
            silences: Vec::new(),
        }
    }
}

fn default_group_by() -> Vec<String> {
    vec!["alertname".to_owned(), "service".to_owned()]
}

fn default_group_wait() -> Duration {
    Duration::from_secs(2)
}

fn default_repeat_interval() -> Duration {
    Duration::from_secs(4 * 3600)
}

/// `[alerts.services.NAME]`: who to tell about a service.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Value of the `owner` label (unless the alert has one).
    #[serde(default)]
    pub owner: Option<String>,
    /// Value of the `team` label (unless the alert has one).
    #[serde(default)]
    pub team: Option<String>,
    /// Runbook URL of this service's alerts.
    #[serde(default)]
    pub runbook: Option<String>,
}

/// `[alerts.rate_limit]`: a token bucket per alert sink.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Notifications (HTTP requests) allowed per `per`, which is also the burst. Default 20.
    #[serde(default = "default_notifications")]
    pub notifications: u32,
    /// The interval. Default `"1m"`.
    #[serde(
        default = "default_per",
        deserialize_with = "crate::config::deserialize_duration"
    )]
    pub per: Duration,
    /// Alerts that may wait for their notification (grouping, rate limit, a receiver that is
    /// down); beyond it new firing alerts are dropped and counted. Default 1000.
    #[serde(default = "default_max_waiting")]
    pub max_waiting: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            notifications: default_notifications(),
            per: default_per(),
            max_waiting: default_max_waiting(),
        }
    }
}

fn default_notifications() -> u32 {
    20
}

fn default_per() -> Duration {
    Duration::from_secs(60)
}

fn default_max_waiting() -> usize {
    1000
}

/// `[[alerts.silences]]`: alerts matching every matcher are not sent while it is in force.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceConfig {
    /// Label matchers, all of which must match.
    pub matchers: Vec<MatcherConfig>,
    /// RFC 3339 time it starts, such as `"2026-12-24T00:00:00Z"`. Default: at once.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// RFC 3339 time it ends. Default: never.
    #[serde(default)]
    pub ends_at: Option<String>,
    /// Why, for whoever reads the silence list.
    #[serde(default)]
    pub comment: String,
}

impl AlertsConfig {
    /// Checks what serde cannot, pushing each problem prefixed with `at` (`alerts`).
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        for (name, service) in &self.services {
            if let Some(runbook) = &service.runbook {
                check_url(&format!("{at}.services.{name}.runbook"), runbook, problems);
            }
        }
        if let Some(template) = &self.runbook_template {
            let example = template
                .replace("{alertname}", "A")
                .replace("{service}", "s")
                .replace("{severity}", "error");
            check_url(&format!("{at}.runbook_template"), &example, problems);
        }
        if self.group_by.iter().any(|label| label.is_empty()) {
            problems.push(format!("{at}.group_by: a label name is empty"));
        }
        if self.repeat_interval.is_zero() {
            problems.push(format!("{at}.repeat_interval: must be above 0"));
        }
        if self.rate_limit.notifications == 0 {
            problems.push(format!("{at}.rate_limit.notifications: must be at least 1"));
        }
        if self.rate_limit.per.is_zero() {
            problems.push(format!("{at}.rate_limit.per: must be above 0"));
        }
        if self.rate_limit.max_waiting == 0 {
            problems.push(format!("{at}.rate_limit.max_waiting: must be at least 1"));
        }
        for (index, silence) in self.silences.iter().enumerate() {
            let at = format!("{at}.silences[{index}]");
            if silence.matchers.is_empty() {
                problems.push(format!(
                    "{at}.matchers: at least one matcher is needed (a silence of everything is refused)"
                ));
            }
            for (position, matcher) in silence.matchers.iter().enumerate() {
                if let Err(problem) = matcher.compile() {
                    problems.push(format!("{at}.matchers[{position}]: {problem}"));
                }
            }
            for (field, value) in [
                ("starts_at", &silence.starts_at),
                ("ends_at", &silence.ends_at),
            ] {
                if let Some(value) = value
                    && let Err(problem) = parse_time(value)
                {
                    problems.push(format!("{at}.{field}: {problem}"));
                }
            }
        }
    }
}

/// Pushes a problem unless `url` is an absolute http(s) URL.
pub fn check_url(at: &str, url: &str, problems: &mut Vec<String>) {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
        Ok(parsed) => problems.push(format!(
            "{at}: `{url}` must be http:// or https://, not {}://",
            parsed.scheme()
        )),
        Err(error) => problems.push(format!("{at}: `{url}` is not a URL: {error}")),
    }
}
