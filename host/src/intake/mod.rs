//! The intake: where receivers hand over batches. A receiver acknowledges its client only when
//! [`Intake::submit`] returns `Ok`; an error is retryable and the receiver says so to its client
//! (gRPC `RESOURCE_EXHAUSTED`/`UNAVAILABLE` with retry info, HTTP 429/503 with `Retry-After`), it
//! never drops the batch silently.
//!
//! In the gateway the intake is the durable [`Log`]: `submit` resolves once the batch is written
//! and fsynced (group commit). Pipelines read the log, each pipeline-to-sink edge with its own
//! [`Consumer`] cursor. [`Intake::new`] gives a plain in-memory queue instead, for testing a
//! receiver on its own.

mod config;
mod consumer;
mod cursors;
pub mod inspect;
mod log;
mod recovery;
pub mod segment;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

pub use config::{BufferConfig, Durability, WhenFull};
pub use consumer::{Consumer, Ticket, consumer_name};
pub use cursors::{CURSORS_FILE, CursorFile};
pub use log::{Entry, Log, LogGauges, LogStats};
pub use recovery::{DAMAGED_DIR, Recovery, Repair};

use crate::model::Batch;

/// A batch with the name of the receiver it came from (what the in-memory queue carries).
#[derive(Debug)]
pub struct Envelope {
    /// The receiver's name in the config.
    pub receiver: Arc<str>,
    /// What it received.
    pub batch: Batch,
}

/// Why a batch was not taken. Every case is retryable by the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// The log is at its size limit, or too much waits in memory: try again after the delay.
    #[error("the gateway is overloaded; retry after {}s", retry_after.as_secs().max(1))]
    Overloaded {
        /// How long the client should wait before retrying.
        retry_after: Duration,
    },
    /// The log cannot be written (a disk error): try again after the delay.
    #[error("the gateway cannot store data right now ({reason}); retry after {}s", retry_after.as_secs().max(1))]
    Unavailable {
        /// How long the client should wait before retrying.
        retry_after: Duration,
        /// What went wrong.
        reason: String,
    },
    /// The gateway is shutting down.
    #[error("the gateway is shutting down")]
    ShuttingDown,
}

impl IntakeError {
    /// How long the client should wait before trying again.
    pub fn retry_after(&self) -> Duration {
        match self {
            IntakeError::Overloaded { retry_after }
            | IntakeError::Unavailable { retry_after, .. } => *retry_after,
            IntakeError::ShuttingDown => Duration::from_secs(5),
        }
    }

    /// `Retry-After` in whole seconds (at least 1).
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after().as_secs_f64().ceil().max(1.0) as u64
    }

    /// True when the gateway is out of room (HTTP 429, gRPC `RESOURCE_EXHAUSTED`) rather than
    /// unable to serve (HTTP 503, gRPC `UNAVAILABLE`).
    pub fn is_overload(&self) -> bool {
        matches!(self, IntakeError::Overloaded { .. })
    }
}

/// The receivers' side of the intake. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Intake {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Log(Arc<Log>),
    Queue {
        sender: mpsc::Sender<Envelope>,
        wait: Duration,
    },
}

impl Intake {
    /// An in-memory intake holding at most `capacity` batches; `submit` waits up to `wait` for
    /// room before answering overloaded. For testing receivers on their own: nothing is durable.
    pub fn new(capacity: usize, wait: Duration) -> (Intake, mpsc::Receiver<Envelope>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (
            Intake {
                backend: Backend::Queue { sender, wait },
            },
            receiver,
        )
    }

    /// The intake of a durable log.
    pub fn durable(log: Arc<Log>) -> Intake {
        Intake {
            backend: Backend::Log(log),
        }
    }

    /// Hands over a batch; `Ok` means the gateway has taken responsibility for it (with a
    /// durable log: it is on disk). Empty batches are accepted and dropped.
    pub async fn submit(&self, receiver: &Arc<str>, batch: Batch) -> Result<(), IntakeError> {
        if batch.is_empty() {
            return Ok(());
        }
        match &self.backend {
            Backend::Log(log) => log.append(receiver, batch).await,
            Backend::Queue { sender, wait } => {
                let envelope = Envelope {
                    receiver: receiver.clone(),
                    batch,
                };
                match tokio::time::timeout(*wait, sender.send(envelope)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(IntakeError::ShuttingDown),
                    Err(_) => Err(IntakeError::Overloaded {
                        retry_after: Duration::from_secs(1),
                    }),
                }
            }
        }
    }
}
