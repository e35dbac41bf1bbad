//! Parquet archive sink: one schema per signal, zstd, Hive-style partitions by signal, date and hour, files written under a temporary name and renamed when complete.

use serde::Deserialize;
use tokio::task::JoinHandle;

use super::SinkContext;

/// `type = "parquet"` sink settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSinkConfig {
    /// Root directory of the archive.
    pub path: std::path::PathBuf,
}

impl ParquetSinkConfig {
    /// Checks what serde cannot.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        let _ = (at, problems);
    }
}

/// Opens and spawns the sink.
pub async fn start(config: &ParquetSinkConfig, context: SinkContext) -> anyhow::Result<JoinHandle<()>> {
    let _ = (config, context);
    anyhow::bail!("the parquet sink is not built yet")
}
