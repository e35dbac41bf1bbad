//! File tail receiver: follows the files matching glob patterns as they grow, through rotation
//! and truncation, and hands their lines on as [`LineBatch`](crate::model::LineBatch)es (one
//! file per batch, `source` = the path, resource attributes `log.file.path` and
//! `log.file.name`); a pipeline's parser plugin turns the lines into records.
//!
//! Files are polled every `poll_ms` (portable, and cheap at this rate). A file is known by its
//! device and inode plus a fingerprint of its first bytes, so a new file that reuses an inode is
//! not taken for the old one:
//! - rotation (the path now leads to another file): the old file is read to its end through the
//!   handle still open, and followed for `rotate_wait_ms` more in case its writer has not
//!   reopened yet; the new file is read from its start;
//! - truncation (the file is shorter than the position read, or its first bytes changed, as
//!   after `copytruncate`): reading restarts at 0;
//! - a new file matching a pattern is picked up at the next poll.
//!
//! A last line without its newline waits to be completed, for `partial_line_wait_ms` at most;
//! then it is handed on as it is (a rest written later becomes a line of its own).
//!
//! Delivery is at-least-once, and exactly-once across a clean restart: the checkpoint records
//! for each file the position after the last line the intake took, and it is written (atomically)
//! only after the intake took those lines. A restart resumes there, so lines appended while the
//! gateway was stopped are read once. After a crash, lines taken since the last checkpoint write
//! (at most one poll's worth) are read again.

mod checkpoint;
mod tail;

use std::path::PathBuf;

use serde::Deserialize;
use tokio::task::JoinHandle;

use super::ReceiverContext;

/// Where to start in a file the checkpoint does not know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Read the whole file.
    #[default]
    Beginning,
    /// Only what is written from now on. Applies to the files found when the receiver starts;
    /// a file that appears later (a rotated log's successor) is always read from its start.
    End,
}

/// `type = "file"` receiver settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReceiverConfig {
    /// Glob patterns of the files to follow, e.g. `["/var/log/app/*.log"]`.
    pub paths: Vec<String>,
    /// The checkpoint file (read positions). Default `./data/checkpoints/<receiver name>.json`.
    #[serde(default)]
    pub checkpoint: Option<PathBuf>,
    /// Where to start in a file the checkpoint does not know: `"beginning"` (default) or
    /// `"end"`.
    #[serde(default)]
    pub start_at: StartAt,
    /// How often the files and patterns are checked, in milliseconds. Default 250.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// Longest line, in bytes; a longer one is skipped (counted as malformed and logged), its
    /// neighbours kept. Default 1048576 (1 MiB).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Lines per batch handed to the intake. Default 1024.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How long a last line without its newline waits to be completed before it is handed on
    /// as it is, in milliseconds. Default 5000.
    #[serde(default = "default_partial_line_wait_ms")]
    pub partial_line_wait_ms: u64,
    /// How long a file that was rotated away (renamed or deleted) is still followed for late
    /// writes, in milliseconds. Default 5000.
    #[serde(default = "default_rotate_wait_ms")]
    pub rotate_wait_ms: u64,
}

fn default_poll_ms() -> u64 {
    250
}

fn default_max_line_bytes() -> usize {
    1024 * 1024
}

fn default_batch_size() -> usize {
    1024
}

fn default_partial_line_wait_ms() -> u64 {
    5000
}

fn default_rotate_wait_ms() -> u64 {
    5000
}

impl FileReceiverConfig {
    /// Checks what serde cannot.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        if self.paths.is_empty() {
            problems.push(format!("{at}.paths: name at least one glob pattern"));
        }
        for pattern in &self.paths {
            if let Err(error) = glob::Pattern::new(pattern) {
                problems.push(format!(
                    "{at}.paths: `{pattern}` is not a glob pattern: {error}"
                ));
            }
        }
        if self.poll_ms == 0 {
            problems.push(format!("{at}.poll_ms: must be at least 1"));
        }
        if self.max_line_bytes == 0 {
            problems.push(format!("{at}.max_line_bytes: must be at least 1"));
        }
        if self.batch_size == 0 {
            problems.push(format!("{at}.batch_size: must be at least 1"));
        }
    }

    /// The checkpoint path for a receiver named `name`.
    pub fn checkpoint_path(&self, name: &str) -> PathBuf {
        self.checkpoint
            .clone()
            .unwrap_or_else(|| PathBuf::from("./data/checkpoints").join(format!("{name}.json")))
    }
}

/// Opens the checkpoint (an error here means nothing started) and spawns the tailing thread,
/// which ends at shutdown after handing on the complete lines it read and writing the
/// checkpoint.
pub async fn start(
    config: &FileReceiverConfig,
    context: ReceiverContext,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut problems = Vec::new();
    config.check(&format!("receivers.{}", context.name), &mut problems);
    if !problems.is_empty() {
        anyhow::bail!(problems.join("; "));
    }
    let checkpoint_path = config.checkpoint_path(&context.name);
    let (store, remembered) = checkpoint::CheckpointStore::open(&checkpoint_path)
        .map_err(|error| anyhow::anyhow!("receiver `{}`: {error}", context.name))?;
    let tailer = tail::Tailer::new(
        config.clone(),
        context,
        tokio::runtime::Handle::current(),
        store,
        remembered,
    );
    Ok(vec![tokio::task::spawn_blocking(move || tailer.run())])
}
