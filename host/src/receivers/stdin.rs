//! Standard input receiver: lines read from the gateway's own stdin, for trying a pipeline out
//! (`tail -f app.log | sluice run my.toml`). It ends at end of input; a gateway whose receivers
//! have all ended drains and exits.

use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::task::JoinHandle;

use super::{ReceiverContext, ReceiverStats};
use crate::model::{AttributeValue, Batch, LineBatch, Resource, StringColumn};

/// `type = "stdin"` receiver settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdinReceiverConfig {
    /// Lines per batch. Default 1024.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// A partial batch is submitted after this many milliseconds. Default 200.
    #[serde(default = "default_flush_ms")]
    pub flush_ms: u64,
}

fn default_batch_size() -> usize {
    1024
}

fn default_flush_ms() -> u64 {
    200
}

impl StdinReceiverConfig {
    /// Checks what serde cannot.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        if self.batch_size == 0 {
            problems.push(format!("{at}.batch_size: must be at least 1"));
        }
    }
}

/// Spawns the reader. Lines still being read when the gateway shuts down are not waited for.
pub async fn start(
    config: &StdinReceiverConfig,
    context: ReceiverContext,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let (lines_out, mut lines_in) = tokio::sync::mpsc::channel::<String>(config.batch_size * 4);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if lines_out.blocking_send(line).is_err() {
                    break;
                }
            }
        })?;
    let batch_size = config.batch_size;
    let flush_after = Duration::from_millis(config.flush_ms.max(1));
    let resource = Arc::new(Resource::with_attributes(vec![(
        "sluice.receiver".into(),
        AttributeValue::from(&*context.name),
    )]));
    let task = tokio::spawn(async move {
        let mut lines = StringColumn::default();
        let mut started = Instant::now();
        loop {
            let wait = flush_after.saturating_sub(started.elapsed());
            let (ended, timed_out) = tokio::select! {
                () = context.shutdown.cancelled() => (true, false),
                next = tokio::time::timeout(wait, lines_in.recv()) => match next {
                    Ok(Some(line)) => {
                        if lines.is_empty() {
                            started = Instant::now();
                        }
                        lines.push(&line);
                        (false, false)
                    }
                    Ok(None) => (true, false),
                    Err(_) => (false, true),
                },
            };
            if !lines.is_empty() && (ended || timed_out || lines.len() >= batch_size) {
                ReceiverStats::add(&context.stats.requests, 1);
                let batch = Batch::Lines(LineBatch {
                    lines: std::mem::take(&mut lines),
                    source: "stdin".into(),
                    resource: resource.clone(),
                });
                if let Err(error) = context.submit(batch).await {
                    tracing::error!(%error, "stdin lines not taken");
                }
            }
            if timed_out {
                started = Instant::now();
            }
            if ended {
                break;
            }
        }
    });
    Ok(vec![task])
}
