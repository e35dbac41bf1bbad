//! OTLP receiver: logs, metrics and traces over gRPC (`grpc`, tonic) and HTTP (`http`: protobuf
//! and JSON, gzip), following the OTLP specification (<https://opentelemetry.io/docs/specs/otlp/>).
//!
//! Both transports decode a request, convert it with [`crate::model::otlp`] (logs become a
//! [`LogBatch`](crate::model::LogBatch); metrics and spans keep their OTLP structure) and hand the
//! batch to the intake. The client hears back only then:
//!
//! | outcome | gRPC | HTTP |
//! |---|---|---|
//! | taken | OK, empty `partial_success` | 200 |
//! | some records invalid (say a trace id that is not 16 bytes) | OK, `partial_success` with the rejected count; the valid neighbours are taken | 200, same |
//! | undecodable request | `INVALID_ARGUMENT` | 400 |
//! | request over `max_request_bytes` (after decompression) | `RESOURCE_EXHAUSTED` without `RetryInfo` (not retryable) | 413 |
//! | buffer full (`[buffer] max_bytes`, or too much waiting in memory) | `RESOURCE_EXHAUSTED` with `RetryInfo` | 429 with `Retry-After` |
//! | buffer cannot be written (a disk error) | `UNAVAILABLE` with `RetryInfo` | 503 with `Retry-After` |
//! | shutting down | `UNAVAILABLE` with `RetryInfo` | 503 with `Retry-After` |
//! | unknown path, wrong method, unsupported `Content-Type` or `Content-Encoding` | (tonic: `UNIMPLEMENTED`) | 404, 405, 415 |
//!
//! Delivery: at-least-once from the client's point of view. A batch is acknowledged only once
//! it is fsynced in the buffer; every refusal is retryable unless the data itself is bad.

mod grpc;
mod http;
pub mod rpc;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{ReceiverContext, ReceiverStats};
use crate::intake::IntakeError;
use crate::model::otlp::{Converted, logs_from_otlp, metrics_from_otlp, spans_from_otlp};
use crate::model::{Batch, Signal};

/// How long a server keeps serving requests already in hand after shutdown is asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

fn default_max_request_bytes() -> usize {
    4 * 1024 * 1024
}

/// `type = "otlp"` receiver settings. At least one of `grpc` and `http` is required.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpReceiverConfig {
    /// OTLP/gRPC listen address, e.g. `127.0.0.1:4317` (the OTLP default port). No default:
    /// gRPC is off when absent.
    #[serde(default)]
    pub grpc: Option<SocketAddr>,
    /// OTLP/HTTP listen address, e.g. `127.0.0.1:4318` (the OTLP default port), serving
    /// `POST /v1/logs`, `/v1/metrics` and `/v1/traces`. No default: HTTP is off when absent.
    #[serde(default)]
    pub http: Option<SocketAddr>,
    /// Largest request accepted, in bytes, after decompression; larger ones are refused (HTTP
    /// 413, gRPC `RESOURCE_EXHAUSTED`) and not retried by the client. Default 4 MiB (4194304).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
}

impl OtlpReceiverConfig {
    /// Checks what serde cannot: an address to listen on, distinct addresses, a usable size.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        if self.grpc.is_none() && self.http.is_none() {
            problems.push(format!(
                "{at}: needs at least one of `grpc` and `http` (addresses such as \"127.0.0.1:4317\")"
            ));
        }
        if let (Some(grpc), Some(http)) = (self.grpc, self.http)
            && grpc == http
        {
            problems.push(format!(
                "{at}: `grpc` and `http` must listen on different addresses (both are {grpc})"
            ));
        }
        if self.max_request_bytes == 0 {
            problems.push(format!("{at}.max_request_bytes: must be greater than 0"));
        }
    }
}

/// Binds every configured address first (a port in use fails the start, naming the address,
/// with nothing left running), then spawns one server task per transport.
pub async fn start(
    config: &OtlpReceiverConfig,
    context: ReceiverContext,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut problems = Vec::new();
    config.check(&format!("receivers.{}", context.name), &mut problems);
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("; "));
    }
    let grpc_listener = match config.grpc {
        Some(address) => Some(bind(address, "gRPC", &context.name).await?),
        None => None,
    };
    let http_listener = match config.http {
        Some(address) => Some(bind(address, "HTTP", &context.name).await?),
        None => None,
    };
    let exports = Arc::new(Exports {
        context: context.clone(),
    });
    let mut tasks = Vec::new();
    if let Some(listener) = grpc_listener {
        tasks.push(grpc::spawn(
            listener,
            exports.clone(),
            config.max_request_bytes,
        ));
    }
    if let Some(listener) = http_listener {
        tasks.push(http::spawn(listener, exports, config.max_request_bytes));
    }
    Ok(tasks)
}

async fn bind(address: SocketAddr, transport: &str, name: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| {
        format!("receiver `{name}`: cannot listen for OTLP/{transport} on {address}")
    })
}

/// Unix nanoseconds now.
fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What both transports share once a request is decoded: conversion, the intake, the counters.
struct Exports {
    context: ReceiverContext,
}

impl Exports {
    fn stats(&self) -> &ReceiverStats {
        &self.context.stats
    }

    /// Counts a request, whatever becomes of it.
    fn count_request(&self) {
        ReceiverStats::add(&self.stats().requests, 1);
    }

    /// Counts a request refused whole as malformed or too large.
    fn count_malformed_request(&self, why: &str) {
        ReceiverStats::add(&self.stats().records_malformed, 1);
        tracing::debug!(receiver = %self.context.name, why, "OTLP request refused");
    }

    /// Counts the records left out of a request, then hands over the rest.
    async fn submit<T>(
        &self,
        signal: Signal,
        converted: Converted<T>,
        batch: impl FnOnce(T) -> Batch,
    ) -> Result<Option<(i64, String)>, IntakeError> {
        if self.context.shutdown.is_cancelled() {
            return Err(IntakeError::ShuttingDown);
        }
        let Converted {
            batch: taken,
            rejected,
            error_message,
        } = converted;
        self.context.submit(batch(taken)).await?;
        if rejected == 0 {
            return Ok(None);
        }
        ReceiverStats::add(&self.stats().records_malformed, rejected);
        tracing::debug!(
            receiver = %self.context.name,
            %signal,
            rejected,
            error = %error_message,
            "OTLP request partly rejected"
        );
        Ok(Some((rejected as i64, error_message)))
    }

    async fn logs(
        &self,
        request: ExportLogsServiceRequest,
    ) -> Result<ExportLogsServiceResponse, IntakeError> {
        let converted = logs_from_otlp(&request.resource_logs, now_nanos());
        drop(request);
        let rejected = self.submit(Signal::Logs, converted, Batch::Logs).await?;
        Ok(ExportLogsServiceResponse {
            partial_success: rejected.map(|(rejected_log_records, error_message)| {
                ExportLogsPartialSuccess {
                    rejected_log_records,
                    error_message,
                }
            }),
        })
    }

    async fn metrics(
        &self,
        request: ExportMetricsServiceRequest,
    ) -> Result<ExportMetricsServiceResponse, IntakeError> {
        let converted = metrics_from_otlp(request.resource_metrics);
        let rejected = self
            .submit(Signal::Metrics, converted, Batch::Metrics)
            .await?;
        Ok(ExportMetricsServiceResponse {
            partial_success: rejected.map(|(rejected_data_points, error_message)| {
                ExportMetricsPartialSuccess {
                    rejected_data_points,
                    error_message,
                }
            }),
        })
    }

    async fn traces(
        &self,
        request: ExportTraceServiceRequest,
    ) -> Result<ExportTraceServiceResponse, IntakeError> {
        let converted = spans_from_otlp(request.resource_spans);
        let rejected = self.submit(Signal::Traces, converted, Batch::Spans).await?;
        Ok(ExportTraceServiceResponse {
            partial_success: rejected.map(|(rejected_spans, error_message)| {
                ExportTracePartialSuccess {
                    rejected_spans,
                    error_message,
                }
            }),
        })
    }
}

/// Resolves once shutdown has been asked for and the drain time has passed: servers still busy
/// then are stopped.
async fn drain_deadline(shutdown: tokio_util::sync::CancellationToken) {
    shutdown.cancelled().await;
    tokio::time::sleep(DRAIN_TIMEOUT).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> OtlpReceiverConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn config_needs_an_address_and_defaults_the_size() {
        let mut problems = Vec::new();
        let empty = config("");
        assert_eq!(empty.max_request_bytes, 4 * 1024 * 1024);
        empty.check("receivers.otlp", &mut problems);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("receivers.otlp: needs at least one"));

        problems.clear();
        config(r#"grpc = "127.0.0.1:4317""#).check("receivers.otlp", &mut problems);
        assert!(problems.is_empty());

        config(
            r#"grpc = "127.0.0.1:4317"
http = "127.0.0.1:4317"
max_request_bytes = 0"#,
        )
        .check("receivers.otlp", &mut problems);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(toml::from_str::<OtlpReceiverConfig>("grcp = \"127.0.0.1:1\"").is_err());
    }
}
