//! Silences: label matchers that keep matching alerts from being sent while they are in force.
//!
//! One store serves every alert sink's router and the admin endpoint (`/api/silences`). The
//! silences written in the config are loaded at start and cannot be deleted over the API; the
//! ones added over the API live in memory until they end, are deleted, or the gateway stops.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::config::SilenceConfig;
use super::enrich::RoutedAlert;

/// A matcher as written: `{ label = "service", equal = "checkout" }` or
/// `{ label = "alertname", regex = "Error.*" }` (anchored at both ends).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MatcherConfig {
    /// Label name; `alertname` and `severity` match the alert's name and severity.
    pub label: String,
    /// The value must be exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equal: Option<String>,
    /// The value must match this regular expression as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// A checked matcher.
#[derive(Clone, Debug)]
pub struct Matcher {
    config: MatcherConfig,
    test: Test,
}

#[derive(Clone, Debug)]
enum Test {
    Equal(String),
    Regex(regex::Regex),
}

impl MatcherConfig {
    /// The matcher, or what is wrong with it.
    pub fn compile(&self) -> Result<Matcher, String> {
        if self.label.is_empty() {
            return Err("`label` is empty".to_owned());
        }
        let test = match (&self.equal, &self.regex) {
            (Some(value), None) => Test::Equal(value.clone()),
            (None, Some(pattern)) => Test::Regex(
                regex::Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|error| format!("regex `{pattern}`: {error}"))?,
            ),
            _ => {
                return Err(format!(
                    "matcher of `{}` needs exactly one of `equal` and `regex`",
                    self.label
                ));
            }
        };
        Ok(Matcher {
            config: self.clone(),
            test,
        })
    }
}

impl Matcher {
    /// True when the alert's label (empty when absent, as in Alertmanager) passes the test.
    pub fn matches(&self, alert: &RoutedAlert) -> bool {
        let value = alert.label(&self.config.label).unwrap_or("");
        match &self.test {
            Test::Equal(expected) => value == expected,
            Test::Regex(pattern) => pattern.is_match(value),
        }
    }
}

/// Where a silence comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `[[alerts.silences]]`; not deletable over the API.
    Config,
    /// `POST /api/silences`.
    Api,
}

/// One silence.
#[derive(Clone, Debug)]
pub struct Silence {
    /// `config-N` or a random hex id.
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// When it starts.
    pub starts_at: DateTime<Utc>,
    /// When it ends; never when `None`.
    pub ends_at: Option<DateTime<Utc>>,
    /// Why.
    pub comment: String,
    /// Config or API.
    pub origin: Origin,
}

impl Silence {
    fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && self.ends_at.is_none_or(|ends| now < ends)
    }

    fn matches(&self, alert: &RoutedAlert) -> bool {
        self.matchers.iter().all(|matcher| matcher.matches(alert))
    }
}

/// `POST /api/silences` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    /// All must match; at least one.
    pub matchers: Vec<MatcherConfig>,
    /// How long from its start, such as `"2h"`; or give `ends_at`.
    #[serde(default)]
    pub duration: Option<String>,
    /// RFC 3339 end; or give `duration`.
    #[serde(default)]
    pub ends_at: Option<String>,
    /// RFC 3339 start. Default: now.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// A silence as `GET /api/silences` lists it.
#[derive(Debug, Serialize)]
pub struct SilenceView {
    pub id: String,
    pub matchers: Vec<MatcherConfig>,
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub comment: String,
    pub origin: Origin,
    /// `active` or `pending` (starts later).
    pub state: &'static str,
}

/// Why a delete failed.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteError {
    /// No silence has this id (or it ended).
    NotFound,
    /// It is written in the config: change the config instead.
    FromConfig,
}

/// Every silence, shared by the routers and the admin endpoint.
#[derive(Debug, Default)]
pub struct SilenceStore {
    silences: Mutex<BTreeMap<String, Silence>>,
    /// Bumped on every change, so routers re-check the alerts they hold back.
    generation: AtomicU64,
}

/// An RFC 3339 time.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| {
            format!("`{text}` is not an RFC 3339 time ({error}), e.g. \"2026-12-24T00:00:00Z\"")
        })
}

fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl SilenceStore {
    /// The store holding the config's silences (checked at load, so errors here are config
    /// errors too).
    pub fn from_config(silences: &[SilenceConfig], now: DateTime<Utc>) -> Result<Self, String> {
        let store = SilenceStore::default();
        {
            let mut held = store.lock();
            for (index, silence) in silences.iter().enumerate() {
                let at = format!("alerts.silences[{index}]");
                let matchers = silence
                    .matchers
                    .iter()
                    .map(MatcherConfig::compile)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|problem| format!("{at}: {problem}"))?;
                let starts_at = match &silence.starts_at {
                    Some(text) => parse_time(text).map_err(|problem| format!("{at}: {problem}"))?,
                    None => now,
                };
                let ends_at = match &silence.ends_at {
                    Some(text) => {
                        Some(parse_time(text).map_err(|problem| format!("{at}: {problem}"))?)
                    }
                    None => None,
                };
                let id = format!("config-{index}");
                held.insert(
                    id.clone(),
                    Silence {
                        id,
                        matchers,
                        starts_at,
                        ends_at,
                        comment: silence.comment.clone(),
                        origin: Origin::Config,
                    },
                );
            }
        }
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Silence>> {
        self.silences
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Changes so far; a router re-checks what it holds back when this moves.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The id of a silence in force at `now` that matches `alert`.
    pub fn silencing(&self, alert: &RoutedAlert, now: DateTime<Utc>) -> Option<String> {
        self.lock()
            .values()
            .find(|silence| silence.in_force(now) && silence.matches(alert))
            .map(|silence| silence.id.clone())
    }

    /// The next time a silence starts or ends after `now` (when held-back alerts may change).
    pub fn next_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.lock()
            .values()
            .flat_map(|silence| [Some(silence.starts_at), silence.ends_at])
            .flatten()
            .filter(|time| *time > now)
            .min()
    }

    /// Adds a silence from the API; returns its id.
    pub fn add(&self, request: SilenceRequest, now: DateTime<Utc>) -> Result<String, String> {
        if request.matchers.is_empty() {
            return Err("`matchers`: at least one matcher is needed".to_owned());
        }
        let matchers = request
            .matchers
            .iter()
            .enumerate()
            .map(|(index, matcher)| {
                matcher
                    .compile()
                    .map_err(|problem| format!("`matchers[{index}]`: {problem}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let starts_at = match &request.starts_at {
            Some(text) => parse_time(text).map_err(|problem| format!("`starts_at`: {problem}"))?,
            None => now,
        };
        let ends_at = match (&request.duration, &request.ends_at) {
            (Some(duration), None) => {
                let duration = humantime::parse_duration(duration).map_err(|error| {
                    format!("`duration`: `{duration}` is not a duration ({error}), e.g. \"2h\"")
                })?;
                let duration = chrono::Duration::from_std(duration)
                    .map_err(|_| "`duration`: too long".to_owned())?;
                starts_at + duration
            }
            (None, Some(text)) => {
                parse_time(text).map_err(|problem| format!("`ends_at`: {problem}"))?
            }
            _ => return Err("give exactly one of `duration` and `ends_at`".to_owned()),
        };
        if ends_at <= starts_at.max(now) {
            return Err("the silence would end before it starts (or is over already)".to_owned());
        }
        let id = hex::encode(rand::random::<[u8; 8]>());
        let mut held = self.lock();
        held.retain(|_, silence| silence.ends_at.is_none_or(|ends| ends > now));
        held.insert(
            id.clone(),
            Silence {
                id: id.clone(),
                matchers,
                starts_at,
                ends_at: Some(ends_at),
                comment: request.comment,
                origin: Origin::Api,
            },
        );
        drop(held);
        self.generation.fetch_add(1, Ordering::Relaxed);
        Ok(id)
    }

    /// Deletes an API silence.
    pub fn delete(&self, id: &str) -> Result<(), DeleteError> {
        let mut held = self.lock();
        match held.get(id).map(|silence| silence.origin) {
            None => Err(DeleteError::NotFound),
            Some(Origin::Config) => Err(DeleteError::FromConfig),
            Some(Origin::Api) => {
                held.remove(id);
                drop(held);
                self.generation.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// The silences that have not ended, by id.
    pub fn list(&self, now: DateTime<Utc>) -> Vec<SilenceView> {
        self.lock()
            .values()
            .filter(|silence| silence.ends_at.is_none_or(|ends| ends > now))
            .map(|silence| SilenceView {
                id: silence.id.clone(),
                matchers: silence
                    .matchers
                    .iter()
                    .map(|matcher| matcher.config.clone())
                    .collect(),
                starts_at: format_time(silence.starts_at),
                ends_at: silence.ends_at.map(format_time),
                comment: silence.comment.clone(),
                origin: silence.origin,
                state: if silence.in_force(now) {
                    "active"
                } else {
                    "pending"
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::enrich::tests::routed;

    fn request(json: &str) -> SilenceRequest {
        serde_json::from_str(json).expect("request parses")
    }

    #[test]
    fn equal_and_anchored_regex_matchers() {
        let store = SilenceStore::default();
        let now = Utc::now();
        let alert = routed("ErrorBurst", &[("service", "checkout")]);
        let id = store
            .add(
                request(
                    r#"{"matchers":[{"label":"alertname","regex":"Error.*"},{"label":"service","equal":"checkout"}],"duration":"1h"}"#,
                ),
                now,
            )
            .expect("added");
        assert_eq!(store.silencing(&alert, now), Some(id.clone()));
        assert_eq!(
            store.silencing(&routed("ErrorBurst", &[("service", "cart")]), now),
            None
        );
        // Anchored: `Error` alone does not match `ErrorBurst`.
        let store = SilenceStore::default();
        store
            .add(
                request(r#"{"matchers":[{"label":"alertname","regex":"Error"}],"duration":"1h"}"#),
                now,
            )
            .expect("added");
        assert_eq!(store.silencing(&alert, now), None);
    }

    #[test]
    fn silences_end_and_are_deleted() {
        let store = SilenceStore::default();
        let now = Utc::now();
        let alert = routed("ErrorBurst", &[("service", "checkout")]);
        let id = store
            .add(
                request(
                    r#"{"matchers":[{"label":"service","equal":"checkout"}],"duration":"10m"}"#,
                ),
                now,
            )
            .expect("added");
        let later = now + chrono::Duration::minutes(11);
        assert_eq!(store.silencing(&alert, later), None);
        assert!(store.list(later).is_empty());
        let before = store.generation();
        assert_eq!(store.delete(&id), Ok(()));
        assert!(store.generation() > before);
        assert_eq!(store.delete(&id), Err(DeleteError::NotFound));
    }

    #[test]
    fn bad_requests_are_explained() {
        let store = SilenceStore::default();
        let now = Utc::now();
        for (body, expected) in [
            (r#"{"matchers":[],"duration":"1h"}"#, "at least one"),
            (
                r#"{"matchers":[{"label":"a","equal":"b"}]}"#,
                "exactly one of `duration`",
            ),
            (
                r#"{"matchers":[{"label":"a","regex":"("}],"duration":"1h"}"#,
                "regex",
            ),
            (
                r#"{"matchers":[{"label":"a","equal":"b","regex":"c"}],"duration":"1h"}"#,
                "exactly one of `equal`",
            ),
            (
                r#"{"matchers":[{"label":"a","equal":"b"}],"duration":"soon"}"#,
                "not a duration",
            ),
        ] {
            let error = store.add(request(body), now).expect_err(body);
            assert!(error.contains(expected), "{body}: {error}");
        }
    }

    #[test]
    fn config_silences_are_not_deletable() {
        let config: SilenceConfig = toml::from_str(
            "matchers = [{ label = \"team\", equal = \"payments\" }]\nends_at = \"2099-01-01T00:00:00Z\"",
        )
        .expect("parses");
        let now = Utc::now();
        let store = SilenceStore::from_config(&[config], now).expect("valid");
        let alert = routed("ErrorBurst", &[("team", "payments")]);
        assert_eq!(store.silencing(&alert, now).as_deref(), Some("config-0"));
        assert_eq!(store.delete("config-0"), Err(DeleteError::FromConfig));
    }
}
