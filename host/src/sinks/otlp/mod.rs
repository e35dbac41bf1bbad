//! OTLP exporter sink: forwards logs, metrics and spans to a backend (a trace store, another
//! collector) over OTLP/gRPC or OTLP/HTTP (binary protobuf).
//!
//! Batches waiting in the sink's queue are coalesced into requests of at most
//! `max_batch_records` ([`requests`]); each request is encoded once and sent by [`transport`].
//! A retryable failure (gRPC `UNAVAILABLE`, `DEADLINE_EXCEEDED`, …, `RESOURCE_EXHAUSTED` with
//! `RetryInfo`; HTTP 429, 502, 503, 504; a refused or broken connection) is retried after an
//! exponential backoff with jitter from `retry_initial` up to `retry_max`, or after the delay
//! the backend asked for. A permanent failure (HTTP 400, gRPC `INVALID_ARGUMENT`, …) drops the
//! request: its records are counted in `items_dropped` and logged as an error, as are records
//! the backend rejects in a partial success.
//!
//! Delivery: at-least-once (a request may be sent again after a timeout the backend did in fact
//! take). A batch's ticket is completed once its request is answered, so the intake log keeps
//! the records until then; a backend that is down only makes this sink's cursor wait. When the
//! queue closes at shutdown, the sink stops retrying after [`SHUTDOWN_RETRIES`] more attempts (a
//! second apart at most) and leaves what it could not deliver in the log for the next start.

mod requests;
mod transport;

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::task::JoinHandle;

use self::requests::{EncodedRequest, Pending};
use self::transport::{Failure, Transport};
use super::{SinkContext, SinkItem, SinkStats};
use crate::intake::Ticket;
use crate::model::Signal;

/// Retries left in all, once the queue has closed (the gateway is shutting down): a dead
/// backend must not hold the shutdown up for long.
pub const SHUTDOWN_RETRIES: u32 = 3;

/// Longest wait between those last retries.
const SHUTDOWN_RETRY_WAIT: Duration = Duration::from_secs(1);

/// Which OTLP transport the sink speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// OTLP/gRPC (default port 4317).
    #[default]
    Grpc,
    /// OTLP/HTTP with binary protobuf bodies (default port 4318).
    Http,
}

fn default_signals() -> Vec<Signal> {
    vec![Signal::Logs, Signal::Metrics, Signal::Traces]
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_batch_records() -> usize {
    1024
}

fn default_retry_initial() -> Duration {
    Duration::from_millis(500)
}

fn default_retry_max() -> Duration {
    Duration::from_secs(30)
}

/// `type = "otlp"` sink settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpSinkConfig {
    /// When the buffer is full and this sink holds its oldest data: `"block"` (default: keep
    /// everything, receivers push back on clients) or `"drop_oldest"` (give it up, counted).
    #[serde(default)]
    pub when_full: crate::intake::WhenFull,
    /// Backend address: `http://127.0.0.1:4317` for gRPC, `http://127.0.0.1:4318` for HTTP
    /// (where `/v1/logs`, `/v1/metrics`, `/v1/traces` are appended). Required. `https://` works
    /// with `protocol = "http"` only.
    pub endpoint: String,
    /// `"grpc"` or `"http"` (binary protobuf). Default `"grpc"`.
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// Signals forwarded; batches of other signals are left alone. Default all three:
    /// `["logs", "metrics", "traces"]`.
    #[serde(default = "default_signals")]
    pub signals: Vec<Signal>,
    /// Time limit of one request (connecting included), e.g. `"10s"`. Default `"10s"`.
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::config::deserialize_duration"
    )]
    pub timeout: Duration,
    /// Most records (log records, spans or data points) per request; queued batches are
    /// coalesced up to it and larger ones cut. Default 1024.
    #[serde(default = "default_max_batch_records")]
    pub max_batch_records: usize,
    /// First retry delay, doubled after each failure up to `retry_max`, each with random jitter
    /// (between half and all of it). Default `"500ms"`.
    #[serde(
        default = "default_retry_initial",
        deserialize_with = "crate::config::deserialize_duration"
    )]
    pub retry_initial: Duration,
    /// Longest retry delay. Default `"30s"`.
    #[serde(
        default = "default_retry_max",
        deserialize_with = "crate::config::deserialize_duration"
    )]
    pub retry_max: Duration,
    /// Headers sent with every request (gRPC metadata for gRPC), e.g.
    /// `{ authorization = "Bearer …" }`. Default none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl OtlpSinkConfig {
    /// Checks what serde cannot: a usable endpoint for the protocol, sane sizes and delays,
    /// valid header names and values.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        let scheme_ok = match self.protocol {
            OtlpProtocol::Grpc => self.endpoint.starts_with("http://"),
            OtlpProtocol::Http => {
                self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")
            }
        };
        if !scheme_ok {
            problems.push(format!(
                "{at}.endpoint: `{}` must start with http://{} (e.g. \"http://127.0.0.1:{}\")",
                self.endpoint,
                if self.protocol == OtlpProtocol::Http {
                    " or https://"
                } else {
                    " (TLS is supported with protocol = \"http\" only)"
                },
                if self.protocol == OtlpProtocol::Http {
                    4318
                } else {
                    4317
                },
            ));
        } else if self.endpoint.parse::<http::Uri>().is_err() {
            problems.push(format!(
                "{at}.endpoint: `{}` is not a valid URL",
                self.endpoint
            ));
        }
        if self.signals.is_empty() {
            problems.push(format!("{at}.signals: must name at least one signal"));
        }
        if self.max_batch_records == 0 {
            problems.push(format!("{at}.max_batch_records: must be greater than 0"));
        }
        if self.timeout.is_zero() {
            problems.push(format!("{at}.timeout: must be greater than 0"));
        }
        if self.retry_initial.is_zero() || self.retry_initial > self.retry_max {
            problems.push(format!(
                "{at}.retry_initial: must be greater than 0 and at most retry_max ({})",
                humantime::format_duration(self.retry_max)
            ));
        }
        for (name, value) in &self.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                problems.push(format!("{at}.headers: `{name}` is not a valid header name"));
            } else if http::HeaderValue::from_str(value).is_err() {
                problems.push(format!(
                    "{at}.headers.{name}: the value is not a valid header value"
                ));
            }
        }
    }
}

/// Checks the config, builds the client (no connection is made yet: a backend that is down
/// at start is retried like one that goes down later) and spawns the sink's task.
pub async fn start(
    config: &OtlpSinkConfig,
    context: SinkContext,
) -> anyhow::Result<JoinHandle<()>> {
    let mut problems = Vec::new();
    config.check(&format!("sinks.{}", context.name), &mut problems);
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("; "));
    }
    let headers: Vec<(String, String)> = config
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let transport = match config.protocol {
        OtlpProtocol::Grpc => Transport::grpc(&config.endpoint, config.timeout, &headers),
        OtlpProtocol::Http => Transport::http(&config.endpoint, config.timeout, &headers),
    }
    .map_err(|error| anyhow::anyhow!("sink `{}`: {error:#}", context.name))?;
    let exporter = Exporter {
        transport,
        signals: config.signals.clone(),
        max_batch_records: config.max_batch_records,
        retry_initial: config.retry_initial,
        retry_max: config.retry_max,
        shutdown_retries_left: SHUTDOWN_RETRIES,
        context,
    };
    Ok(tokio::spawn(exporter.run()))
}

struct Exporter {
    transport: Transport,
    signals: Vec<Signal>,
    max_batch_records: usize,
    retry_initial: Duration,
    retry_max: Duration,
    shutdown_retries_left: u32,
    context: SinkContext,
}

impl Exporter {
    async fn run(mut self) {
        let mut pending = Pending::default();
        let mut tickets = Vec::new();
        let mut items = 0;
        while let Some(item) = self.context.items.recv().await {
            items += usize::from(self.take(&mut pending, item, &mut tickets));
            // Coalesce what is already waiting, up to one full request.
            while pending.records() < self.max_batch_records {
                match self.context.items.try_recv() {
                    Ok(item) => items += usize::from(self.take(&mut pending, item, &mut tickets)),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            // Batches fed without a ticket have no buffer behind them.
            let untracked = tickets.len() < items;
            items = 0;
            let mut all_settled = true;
            for request in pending.take_requests(self.max_batch_records) {
                all_settled &= self.deliver(request, untracked).await == Outcome::Settled;
            }
            if all_settled {
                tickets.drain(..).for_each(Ticket::done);
            } else {
                // Still failing at shutdown: the tickets stay pending, so the buffer keeps these
                // records and replays them on the next start.
                tickets.clear();
            }
        }
        tracing::debug!(sink = %self.context.name, "OTLP exporter stopped: queue closed");
    }

    /// Adds an item's batches to the pending requests; true when it carried batches.
    fn take(&self, pending: &mut Pending, item: SinkItem, tickets: &mut Vec<Ticket>) -> bool {
        let Ok((batches, ticket)) = item.into_batches() else {
            return false;
        };
        tickets.extend(ticket);
        for batch in batches {
            if !self.signals.contains(&batch.signal()) {
                continue;
            }
            if let Err(lines) = pending.add(&batch) {
                SinkStats::add(&self.context.stats.items_dropped, lines);
                tracing::error!(
                    sink = %self.context.name,
                    lines,
                    "raw lines reached the OTLP exporter unparsed; dropped"
                );
            }
        }
        true
    }

    /// Sends one request until it is taken, refused for good, or shutdown ends the retries.
    /// `untracked`: some of its records came without a ticket, so giving up drops them.
    async fn deliver(&mut self, request: EncodedRequest, untracked: bool) -> Outcome {
        let stats = self.context.stats.clone();
        let mut backoff = self.retry_initial;
        loop {
            let failure = match self.transport.send(&request).await {
                Ok(accepted) => {
                    stats
                        .failing
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    let rejected = accepted.rejected.min(request.records);
                    SinkStats::add(&stats.records_written, request.records - rejected);
                    if rejected > 0 {
                        SinkStats::add(&stats.items_dropped, rejected);
                        tracing::error!(
                            sink = %self.context.name,
                            signal = %request.signal,
                            rejected,
                            error = %accepted.message,
                            "the backend rejected part of a request"
                        );
                    }
                    return Outcome::Settled;
                }
                Err(failure) => failure,
            };
            SinkStats::add(&stats.write_errors, 1);
            stats
                .failing
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let (message, retry_after) = match failure {
                Failure::Permanent { message } => {
                    self.give_up(&request, &message, "refused for good");
                    return Outcome::Settled;
                }
                Failure::Retryable {
                    message,
                    retry_after,
                } => (message, retry_after),
            };
            let mut wait = retry_after
                .unwrap_or_else(|| jittered(backoff))
                .min(self.retry_max);
            if self.context.items.is_closed() {
                if self.shutdown_retries_left == 0 && untracked {
                    self.give_up(&request, &message, "still failing at shutdown");
                    return Outcome::Settled;
                }
                if self.shutdown_retries_left == 0 {
                    tracing::error!(
                        sink = %self.context.name,
                        signal = %request.signal,
                        records = request.records,
                        error = %message,
                        "OTLP export still failing at shutdown; the records stay in the buffer for the next start"
                    );
                    return Outcome::Abandoned;
                }
                self.shutdown_retries_left -= 1;
                wait = wait.min(SHUTDOWN_RETRY_WAIT);
            }
            tracing::warn!(
                sink = %self.context.name,
                signal = %request.signal,
                records = request.records,
                error = %message,
                retry_in = ?wait,
                "OTLP export failed; retrying"
            );
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(self.retry_max);
        }
    }

    fn give_up(&self, request: &EncodedRequest, message: &str, why: &str) {
        SinkStats::add(&self.context.stats.items_dropped, request.records);
        tracing::error!(
            sink = %self.context.name,
            signal = %request.signal,
            records = request.records,
            error = %message,
            "OTLP export {why}; records dropped"
        );
    }
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Delivered, or refused for good (counted as dropped).
    Settled,
    /// Given up at shutdown: left for the buffer to replay.
    Abandoned,
}

/// `delay` with jitter: a random point between half of it and all of it, so that many
/// exporters failing together do not retry in step.
fn jittered(delay: Duration) -> Duration {
    delay.mul_f64(rand::rng().random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_checks() {
        let config: OtlpSinkConfig =
            toml::from_str(r#"endpoint = "http://127.0.0.1:4317""#).unwrap();
        assert_eq!(config.protocol, OtlpProtocol::Grpc);
        assert_eq!(config.signals, default_signals());
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.max_batch_records, 1024);
        assert_eq!(config.retry_initial, Duration::from_millis(500));
        assert_eq!(config.retry_max, Duration::from_secs(30));
        let mut problems = Vec::new();
        config.check("sinks.backend", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");

        let config: OtlpSinkConfig = toml::from_str(
            r#"endpoint = "https://backend:4317"
timeout = "0s"
retry_initial = "1m"
retry_max = "1s"
max_batch_records = 0
signals = []
headers = { "bad header" = "x" }"#,
        )
        .unwrap();
        config.check("sinks.backend", &mut problems);
        assert_eq!(problems.len(), 6, "{problems:?}");
        assert!(problems[0].starts_with("sinks.backend.endpoint"));

        assert!(toml::from_str::<OtlpSinkConfig>("endpoint = \"x\"\ntimeout = \"soon\"").is_err());
        assert!(toml::from_str::<OtlpSinkConfig>("endpoint = \"x\"\nprotocol = \"udp\"").is_err());
    }

    #[test]
    fn jitter_stays_between_half_and_all() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_millis(1000));
            assert!(wait >= Duration::from_millis(500) && wait <= Duration::from_millis(1000));
        }
    }
}
