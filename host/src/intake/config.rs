//! `[buffer]`: the durable intake log's settings.

use std::path::PathBuf;

use serde::Deserialize;

/// When an acknowledgement is given.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// After the batch is written and fsynced: survives a process kill and a power loss.
    #[default]
    Fsync,
    /// After the batch is written to the operating system: survives a process kill, not a
    /// power loss. For benchmarks and for disks that lie about fsync anyway.
    Os,
}

/// The `[buffer]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    /// Directory of the log (created when missing). Default `./data/buffer`.
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// `"fsync"` (default) or `"os"`.
    #[serde(default)]
    pub durability: Durability,
    /// Size limit of the log on disk; past it receivers answer with retryable errors (or sinks
    /// set to `when_full = "drop_oldest"` give up their oldest data). Default 1 GiB.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// A new segment file is started past this size. Default 64 MiB.
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: u64,
    /// Memory for batches accepted but not yet written, and for recently written batches the
    /// pipelines read without going to disk. Past it receivers answer with retryable errors.
    /// Default 128 MiB.
    #[serde(default = "default_memory_bytes")]
    pub memory_bytes: u64,
}

fn default_path() -> PathBuf {
    PathBuf::from("./data/buffer")
}

fn default_max_bytes() -> u64 {
    1 << 30
}

fn default_segment_bytes() -> u64 {
    64 << 20
}

fn default_memory_bytes() -> u64 {
    128 << 20
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            path: default_path(),
            durability: Durability::default(),
            max_bytes: default_max_bytes(),
            segment_bytes: default_segment_bytes(),
            memory_bytes: default_memory_bytes(),
        }
    }
}

impl BufferConfig {
    /// Checks what serde cannot.
    pub fn check(&self, problems: &mut Vec<String>) {
        if self.path.as_os_str().is_empty() {
            problems.push("buffer.path: must not be empty".into());
        }
        if self.segment_bytes < 4096 {
            problems.push("buffer.segment_bytes: must be at least 4096".into());
        }
        if self.max_bytes < 2 * self.segment_bytes {
            problems.push(format!(
                "buffer.max_bytes: {} must be at least twice segment_bytes ({})",
                self.max_bytes, self.segment_bytes
            ));
        }
        if self.memory_bytes < 1 << 20 {
            problems.push("buffer.memory_bytes: must be at least 1 MiB".into());
        }
    }
}

/// What a sink does when the log is full and it is the one holding the oldest data.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Keep everything: the log stays full and receivers push back on their clients.
    #[default]
    Block,
    /// Give up this sink's oldest data (counted) so that intake goes on.
    DropOldest,
}
