//! Receivers: sockets and files in, [`Batch`]es out to the [`Intake`].
//!
//! Each receiver decodes its input into the data model, hands it to the intake, and answers its
//! client only then: success when the intake took the batch, a retryable error when it did not,
//! a clear client error (and a counter) for malformed input, which never takes well-formed
//! neighbours down with it.

pub mod file;
pub mod framing;
pub mod http_body;
pub mod json_lines;
pub mod otlp;
pub mod remote_write;
pub mod stdin;
pub mod syslog;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::intake::Intake;
use crate::model::{Batch, Signal};

/// One `[receivers.NAME]` table; `type` selects the kind.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReceiverConfig {
    /// OTLP over gRPC and HTTP: logs, metrics, traces.
    Otlp(otlp::OtlpReceiverConfig),
    /// Syslog RFC 5424 and RFC 3164 over UDP and TCP.
    Syslog(syslog::SyslogReceiverConfig),
    /// JSON lines over TCP and HTTP POST.
    JsonLines(json_lines::JsonLinesReceiverConfig),
    /// Files followed as they grow, rotate and truncate.
    File(file::FileReceiverConfig),
    /// Prometheus remote-write.
    RemoteWrite(remote_write::RemoteWriteReceiverConfig),
    /// Lines on the gateway's standard input (for trying pipelines out).
    Stdin(stdin::StdinReceiverConfig),
}

impl ReceiverConfig {
    /// The signals this receiver can produce.
    pub fn signals(&self) -> &'static [Signal] {
        match self {
            ReceiverConfig::Otlp(_) => &[Signal::Logs, Signal::Metrics, Signal::Traces],
            ReceiverConfig::Syslog(_)
            | ReceiverConfig::JsonLines(_)
            | ReceiverConfig::File(_)
            | ReceiverConfig::Stdin(_) => &[Signal::Logs],
            ReceiverConfig::RemoteWrite(_) => &[Signal::Metrics],
        }
    }

    /// Checks what serde cannot (addresses present, sizes sane), pushing each problem prefixed
    /// with `at` (the table's location, such as `receivers.otlp`).
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        match self {
            ReceiverConfig::Otlp(config) => config.check(at, problems),
            ReceiverConfig::Syslog(config) => config.check(at, problems),
            ReceiverConfig::JsonLines(config) => config.check(at, problems),
            ReceiverConfig::File(config) => config.check(at, problems),
            ReceiverConfig::RemoteWrite(config) => config.check(at, problems),
            ReceiverConfig::Stdin(config) => config.check(at, problems),
        }
    }
}

/// Counters every receiver keeps.
#[derive(Debug, Default)]
pub struct ReceiverStats {
    /// Requests, datagrams, connections' frames or file reads handled.
    pub requests: AtomicU64,
    /// Records, points or spans handed to the intake.
    pub records_accepted: AtomicU64,
    /// Records or requests refused as malformed or too large (client errors).
    pub records_malformed: AtomicU64,
    /// Requests answered with a retryable error because the intake did not take them.
    pub requests_refused: AtomicU64,
}

impl ReceiverStats {
    /// Adds `count` to a counter.
    pub fn add(counter: &AtomicU64, count: usize) {
        counter.fetch_add(count as u64, Ordering::Relaxed);
    }
}

/// What a running receiver is given.
#[derive(Clone, Debug)]
pub struct ReceiverContext {
    /// The receiver's name in the config.
    pub name: Arc<str>,
    /// Where batches go.
    pub intake: Intake,
    /// Cancelled when the gateway shuts down: stop accepting, finish what is in hand.
    pub shutdown: CancellationToken,
    /// The receiver's counters.
    pub stats: Arc<ReceiverStats>,
}

impl ReceiverContext {
    /// Submits a batch and counts it.
    pub async fn submit(&self, batch: Batch) -> Result<(), crate::intake::IntakeError> {
        let count = batch.len();
        match self.intake.submit(&self.name, batch).await {
            Ok(()) => {
                ReceiverStats::add(&self.stats.records_accepted, count);
                Ok(())
            }
            Err(error) => {
                ReceiverStats::add(&self.stats.requests_refused, 1);
                Err(error)
            }
        }
    }
}

/// Binds the receiver's sockets (an error here means nothing of it started) and spawns its
/// tasks, which end when `context.shutdown` is cancelled.
pub async fn start(
    config: &ReceiverConfig,
    context: ReceiverContext,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    match config {
        ReceiverConfig::Otlp(config) => otlp::start(config, context).await,
        ReceiverConfig::Syslog(config) => syslog::start(config, context).await,
        ReceiverConfig::JsonLines(config) => json_lines::start(config, context).await,
        ReceiverConfig::File(config) => file::start(config, context).await,
        ReceiverConfig::RemoteWrite(config) => remote_write::start(config, context).await,
        ReceiverConfig::Stdin(config) => stdin::start(config, context).await,
    }
}
