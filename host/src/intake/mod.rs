//! The intake: where receivers hand over batches. A receiver acknowledges its client only when
//! [`Intake::submit`] returns `Ok`; an error is retryable and the receiver says so to its client
//! (gRPC `UNAVAILABLE`/`RESOURCE_EXHAUSTED`, HTTP 429/503), it never drops the batch silently.
//!
//! Today the intake is a bounded queue in memory in front of the pipelines; the durable log
//! (acknowledge after fsync) replaces its inside without changing this interface.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::model::Batch;

/// A batch with the name of the receiver it came from.
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
    /// The queue stayed full for longer than the intake waits: try again after the delay.
    #[error("the gateway is overloaded; retry after {}s", retry_after.as_secs().max(1))]
    Overloaded {
        /// How long the client should wait before retrying.
        retry_after: Duration,
    },
    /// The gateway is shutting down.
    #[error("the gateway is shutting down")]
    ShuttingDown,
}

/// The receivers' side of the intake. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Intake {
    sender: mpsc::Sender<Envelope>,
    wait: Duration,
}

impl Intake {
    /// An intake holding at most `capacity` batches in flight; `submit` waits up to `wait` for
    /// room before answering overloaded.
    pub fn new(capacity: usize, wait: Duration) -> (Intake, mpsc::Receiver<Envelope>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (Intake { sender, wait }, receiver)
    }

    /// Hands over a batch; `Ok` means the gateway has taken responsibility for it.
    /// Empty batches are accepted and dropped.
    pub async fn submit(&self, receiver: &Arc<str>, batch: Batch) -> Result<(), IntakeError> {
        if batch.is_empty() {
            return Ok(());
        }
        let envelope = Envelope {
            receiver: receiver.clone(),
            batch,
        };
        match tokio::time::timeout(self.wait, self.sender.send(envelope)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(IntakeError::ShuttingDown),
            Err(_) => Err(IntakeError::Overloaded {
                retry_after: Duration::from_secs(1),
            }),
        }
    }

    /// `submit` from a thread that is not a Tokio task (blocking receivers).
    pub fn submit_blocking(&self, receiver: &Arc<str>, batch: Batch) -> Result<(), IntakeError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.sender
            .blocking_send(Envelope {
                receiver: receiver.clone(),
                batch,
            })
            .map_err(|_| IntakeError::ShuttingDown)
    }
}
