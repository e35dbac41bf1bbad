//! Alert webhook sink: alerts as JSON POSTs (`{"version": "1", "alerts": [...]}`, documented in
//! `docs/alerts.md`), with retry.
//!
//! One POST is in flight at a time and alerts leave in the order they came, so a resolved alert
//! never overtakes its firing one (order per fingerprint). Connection errors, timeouts, 408, 429
//! and 5xx answers are retried with exponential backoff and jitter, waiting at least as long as a
//! `Retry-After` header asks (up to `retry_max`); any other answer outside 2xx means the receiver
//! refuses the alert, and retrying cannot help: it is dropped and counted.
//!
//! Delivery: at least once (a POST that times out after the receiver took it is sent again),
//! until `max_attempts` is reached; then the alerts are dropped, counted in `items_dropped` and
//! logged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::{SinkContext, SinkItem, SinkStats};
use crate::alerts::{Alert, AlertSeverity, AlertStatus};

/// Version of the body format, sent as its `version` field.
pub const BODY_VERSION: &str = "1";

/// At most this much of a refusing answer's body is kept for the log.
const ANSWER_EXCERPT_BYTES: usize = 512;

/// `type = "webhook"` sink settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSinkConfig {
    /// URL the alerts are POSTed to (`http://` or `https://`).
    pub url: String,
    /// Extra request headers, such as `{ Authorization = "Bearer …" }`. Default none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Time allowed for one POST, connection included, such as `"10s"`. Default `"10s"`.
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
    /// Attempts per POST, the first included, before its alerts are dropped. Default 10.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Most alerts per POST; alerts already queued are sent together up to this. Default 1 (one
    /// alert per POST).
    #[serde(default = "default_batch")]
    pub batch: usize,
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

fn default_batch() -> usize {
    1
}

impl WebhookSinkConfig {
    /// Checks what serde cannot.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        match reqwest::Url::parse(&self.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            Ok(url) => problems.push(format!(
                "{at}.url: `{}` must be http:// or https://, not {}://",
                self.url,
                url.scheme()
            )),
            Err(error) => problems.push(format!("{at}.url: `{}`: {error}", self.url)),
        }
        if let Err(problem) = self.header_map() {
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
        if self.batch == 0 {
            problems.push(format!("{at}.batch: must be at least 1"));
        }
    }

    fn header_map(&self) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a header name"))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| format!("the value of `{name}` is not a valid header value"))?;
            // Credentials stay out of debug output.
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(headers)
    }
}

/// The body of one POST.
#[derive(Debug, Serialize)]
pub struct WebhookBody<'a> {
    /// Format version, [`BODY_VERSION`].
    pub version: &'static str,
    /// The alerts, in the order they were raised.
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
}

/// Unix nanoseconds as RFC 3339 in UTC, with as many fractional digits as needed.
fn rfc3339(nanos: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(nanos).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl<'a> WebhookBody<'a> {
    /// The body carrying `alerts`.
    pub fn new(alerts: &'a [Arc<Alert>]) -> Self {
        WebhookBody {
            version: BODY_VERSION,
            alerts: alerts
                .iter()
                .map(|alert| WebhookAlert {
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
                })
                .collect(),
        }
    }
}

/// Builds the HTTP client and spawns the sink; bad settings refuse the start.
pub async fn start(
    config: &WebhookSinkConfig,
    context: SinkContext,
) -> anyhow::Result<JoinHandle<()>> {
    let mut problems = Vec::new();
    config.check(&format!("sinks.{}", context.name), &mut problems);
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("; "));
    }
    let headers = config.header_map().map_err(anyhow::Error::msg)?;
    // reqwest is built without a bundled crypto provider: use ring, as the rest of the gateway.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .default_headers(headers)
        .build()
        .with_context(|| format!("sink `{}`: building the HTTP client", context.name))?;
    let delivery = Delivery {
        client,
        config: config.clone(),
        name: context.name.clone(),
        stats: context.stats.clone(),
    };
    Ok(tokio::spawn(run(delivery, context)))
}

async fn run(delivery: Delivery, mut context: SinkContext) {
    let mut alerts = Vec::with_capacity(delivery.config.batch);
    while let Some(item) = context.items.recv().await {
        delivery.take(item, &mut alerts);
        while alerts.len() < delivery.config.batch {
            match context.items.try_recv() {
                Ok(item) => delivery.take(item, &mut alerts),
                Err(_) => break,
            }
        }
        if !alerts.is_empty() {
            delivery.deliver(&alerts).await;
            alerts.clear();
        }
    }
}

/// What one POST ended with.
enum Attempt {
    Delivered,
    /// Worth retrying, after at least this long when the receiver said so.
    Retry(Option<Duration>),
    Refused(String),
}

struct Delivery {
    client: reqwest::Client,
    config: WebhookSinkConfig,
    name: Arc<str>,
    stats: Arc<SinkStats>,
}

impl Delivery {
    fn take(&self, item: SinkItem, alerts: &mut Vec<Arc<Alert>>) {
        match item.into_batches() {
            Err(alert) => alerts.push(alert),
            Ok((batches, ticket)) => {
                // Config checks keep records away from this sink; counted if any arrive.
                let records: usize = batches.iter().map(|batch| batch.len()).sum();
                SinkStats::add(&self.stats.items_dropped, records);
                tracing::warn!(sink = %self.name, records, "the webhook takes alerts only; records dropped");
                super::complete(ticket);
            }
        }
    }

    /// POSTs `alerts` until accepted, refused, or out of attempts.
    async fn deliver(&self, alerts: &[Arc<Alert>]) {
        let body = match serde_json::to_vec(&WebhookBody::new(alerts)) {
            Ok(body) => bytes::Bytes::from(body),
            Err(error) => {
                // Cannot happen with string keys; counted rather than trusted.
                self.give_up(alerts, &format!("cannot encode: {error}"));
                return;
            }
        };
        for attempt in 1..=self.config.max_attempts {
            let retry_after = match self.attempt(body.clone()).await {
                Attempt::Delivered => {
                    SinkStats::add(&self.stats.alerts_delivered, alerts.len());
                    return;
                }
                Attempt::Refused(problem) => {
                    SinkStats::add(&self.stats.write_errors, 1);
                    self.give_up(alerts, &format!("refused, not retried: {problem}"));
                    return;
                }
                Attempt::Retry(retry_after) => retry_after,
            };
            SinkStats::add(&self.stats.write_errors, 1);
            if attempt == self.config.max_attempts {
                break;
            }
            let wait = self.backoff(attempt, retry_after);
            tracing::warn!(
                sink = %self.name,
                attempt,
                wait = %humantime::format_duration(wait),
                "webhook delivery failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
        self.give_up(
            alerts,
            &format!("no success after {} attempts", self.config.max_attempts),
        );
    }

    async fn attempt(&self, body: bytes::Bytes) -> Attempt {
        let response = match self.client.post(&self.config.url).body(body).send().await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(sink = %self.name, error = %error_chain(&error), "webhook POST failed");
                return Attempt::Retry(None);
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Delivered;
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        let answer = excerpt(response).await;
        if is_retryable(status) {
            tracing::warn!(sink = %self.name, %status, answer, "webhook answered with an error");
            Attempt::Retry(retry_after)
        } else {
            Attempt::Refused(format!("{status}: {answer}"))
        }
    }

    /// The wait after failed attempt `attempt` (1-based): `retry_initial` doubled per attempt, up
    /// to `retry_max`, with jitter taking it down by up to half so that senders spread out; never
    /// less than the receiver's `Retry-After`, never more than `retry_max`.
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let doubling = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        let ceiling = self
            .config
            .retry_initial
            .saturating_mul(doubling)
            .min(self.config.retry_max);
        let jittered = ceiling.mul_f64(rand::random_range(0.5..=1.0));
        jittered
            .max(retry_after.unwrap_or_default())
            .min(self.config.retry_max)
    }

    fn give_up(&self, alerts: &[Arc<Alert>], why: &str) {
        SinkStats::add(&self.stats.items_dropped, alerts.len());
        let names: Vec<&str> = alerts.iter().map(|alert| alert.name.as_str()).collect();
        tracing::error!(
            sink = %self.name,
            url = %self.config.url,
            alerts = ?names,
            "webhook delivery given up ({why}); alerts dropped"
        );
    }
}

/// 408, 429 and 5xx are worth retrying; the rest of 4xx (and anything else) is the receiver
/// refusing this request for good.
fn is_retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// `Retry-After` as seconds or as an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&Utc) - Utc::now();
    Some(wait.to_std().unwrap_or_default())
}

/// The start of an answer's body, for the log.
async fn excerpt(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < ANSWER_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(ANSWER_EXCERPT_BYTES);
    String::from_utf8_lossy(&kept).into_owned()
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn retryable_statuses() {
        assert!(is_retryable(StatusCode::SERVICE_UNAVAILABLE));
        assert!(is_retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(is_retryable(StatusCode::REQUEST_TIMEOUT));
        assert!(!is_retryable(StatusCode::BAD_REQUEST));
        assert!(!is_retryable(StatusCode::UNAUTHORIZED));
    }

    #[test]
    fn rfc3339_keeps_only_needed_digits() {
        assert_eq!(rfc3339(1_795_428_000_000_000_000), "2026-11-23T10:00:00Z");
        assert_eq!(
            rfc3339(1_795_428_000_250_000_000),
            "2026-11-23T10:00:00.250Z"
        );
    }
}
