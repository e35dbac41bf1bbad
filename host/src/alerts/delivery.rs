//! Delivery of an alert sink's notifications over HTTP, with retry; the same for every format.
//!
//! One request is in flight at a time and notifications leave in the order the router made them,
//! so a resolution never overtakes its firing, even across retries. Connection errors, timeouts,
//! 408, 429 and 5xx answers are retried with exponential backoff and jitter, waiting at least as
//! long as a `Retry-After` header asks (up to `retry_max`); any other answer outside 2xx means the
//! receiver refuses the request, and retrying the same body cannot help: it is dropped and
//! counted.
//!
//! Delivery: at least once (a request that times out after the receiver took it is sent again),
//! until `max_attempts` is reached; then the notification is dropped, counted and logged.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use crate::sinks::SinkStats;

/// At most this much of a refusing answer's body is kept for the log.
const ANSWER_EXCERPT_BYTES: usize = 512;

/// One request's target and body (always JSON).
#[derive(Debug)]
pub struct Request {
    /// Where it is POSTed.
    pub url: String,
    /// The JSON body.
    pub body: bytes::Bytes,
}

/// How requests are sent and retried.
#[derive(Clone, Debug)]
pub struct RetrySettings {
    /// Time allowed for one request, connection included.
    pub timeout: Duration,
    /// Wait before the first retry, doubled for each further one.
    pub retry_initial: Duration,
    /// Longest wait between two attempts, `Retry-After` included.
    pub retry_max: Duration,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
}

/// Extra headers as a header map, with `Content-Type: application/json`; values are marked
/// sensitive so credentials stay out of debug output.
pub fn header_map(
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a header name"))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| format!("the value of `{name}` is not a valid header value"))?;
        value.set_sensitive(true);
        map.insert(header, value);
    }
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(map)
}

/// What one attempt ended with.
enum Attempt {
    Delivered,
    /// Worth retrying, after at least this long when the receiver said so.
    Retry(Option<Duration>),
    Refused(String),
}

/// The HTTP side of one alert sink.
pub struct Delivery {
    client: reqwest::Client,
    settings: RetrySettings,
    name: Arc<str>,
    stats: Arc<SinkStats>,
}

impl Delivery {
    /// Builds the HTTP client.
    pub fn new(
        name: Arc<str>,
        settings: RetrySettings,
        headers: HeaderMap,
        stats: Arc<SinkStats>,
    ) -> anyhow::Result<Delivery> {
        // reqwest is built without a bundled crypto provider: use ring, as the rest of the gateway.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .default_headers(headers)
            .build()
            .with_context(|| format!("sink `{name}`: building the HTTP client"))?;
        Ok(Delivery {
            client,
            settings,
            name,
            stats,
        })
    }

    /// Sends `request` (carrying `alerts` alerts) until accepted, refused, or out of attempts;
    /// true when accepted.
    pub async fn deliver(&self, request: &Request, alerts: usize) -> bool {
        let router = &self.stats.router;
        for attempt in 1..=self.settings.max_attempts {
            let retry_after = match self.attempt(request).await {
                Attempt::Delivered => {
                    self.stats
                        .failing
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    SinkStats::add(&self.stats.alerts_delivered, alerts);
                    SinkStats::add(&router.notifications_sent, 1);
                    return true;
                }
                Attempt::Refused(problem) => {
                    SinkStats::add(&self.stats.write_errors, 1);
                    self.give_up(request, alerts, &format!("refused, not retried: {problem}"));
                    return false;
                }
                Attempt::Retry(retry_after) => retry_after,
            };
            SinkStats::add(&self.stats.write_errors, 1);
            self.stats
                .failing
                .store(true, std::sync::atomic::Ordering::Relaxed);
            if attempt == self.settings.max_attempts {
                break;
            }
            let wait = backoff(&self.settings, attempt, retry_after);
            tracing::warn!(
                sink = %self.name,
                attempt,
                wait = %humantime::format_duration(wait),
                "alert delivery failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
        self.give_up(
            request,
            alerts,
            &format!("no success after {} attempts", self.settings.max_attempts),
        );
        false
    }

    async fn attempt(&self, request: &Request) -> Attempt {
        let sent = self
            .client
            .post(&request.url)
            .body(request.body.clone())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(sink = %self.name, error = %error_chain(&error), "alert POST failed");
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
            .and_then(|value| parse_retry_after(value, Utc::now()));
        let answer = excerpt(response).await;
        if is_retryable(status) {
            tracing::warn!(sink = %self.name, %status, answer, "alert receiver answered with an error");
            Attempt::Retry(retry_after)
        } else {
            Attempt::Refused(format!("{status}: {answer}"))
        }
    }

    fn give_up(&self, request: &Request, alerts: usize, why: &str) {
        SinkStats::add(&self.stats.items_dropped, alerts);
        SinkStats::add(&self.stats.router.notifications_failed, 1);
        tracing::error!(
            sink = %self.name,
            url = %redacted(&request.url),
            alerts,
            "alert delivery given up ({why}); notification dropped"
        );
    }
}

/// The URL without its path and query (Slack's webhook URLs carry their secret in the path).
fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}/…",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default()
        ),
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

/// The wait after failed attempt `attempt` (1-based): `retry_initial` doubled per attempt, up
/// to `retry_max`, with jitter taking it down by up to half so that senders spread out; never
/// less than the receiver's `Retry-After`, never more than `retry_max`.
fn backoff(settings: &RetrySettings, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let doubling = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
    let ceiling = settings
        .retry_initial
        .saturating_mul(doubling)
        .min(settings.retry_max);
    let jittered = ceiling.mul_f64(rand::random_range(0.5..=1.0));
    jittered
        .max(retry_after.unwrap_or_default())
        .min(settings.retry_max)
}

/// 408, 429 and 5xx are worth retrying; the rest of 4xx (and anything else) is the receiver
/// refusing this request for good.
fn is_retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// `Retry-After` as seconds or as an HTTP date.
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&Utc) - now;
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
        let now = DateTime::parse_from_rfc3339("1994-11-06T08:49:30Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
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
    fn backoff_doubles_within_bounds_and_honours_retry_after() {
        let settings = RetrySettings {
            timeout: Duration::from_secs(1),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
            max_attempts: 10,
        };
        for _ in 0..100 {
            let third = backoff(&settings, 3, None);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(backoff(&settings, 20, None) <= settings.retry_max);
            assert_eq!(
                backoff(&settings, 1, Some(Duration::from_secs(5))),
                settings.retry_max
            );
        }
    }

    #[test]
    fn urls_are_logged_without_their_secret_path() {
        assert_eq!(
            redacted("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
    }
}
