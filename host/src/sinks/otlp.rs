//! OTLP exporter sink (gRPC or HTTP) to a trace backend, with batching and retry.

use serde::Deserialize;
use tokio::task::JoinHandle;

use super::SinkContext;

/// `type = "otlp"` sink settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpSinkConfig {
    /// Endpoint, e.g. `http://127.0.0.1:4317` (gRPC) or `http://127.0.0.1:4318` (HTTP).
    pub endpoint: String,
}

impl OtlpSinkConfig {
    /// Checks what serde cannot.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        let _ = (at, problems);
    }
}

/// Opens and spawns the sink.
pub async fn start(config: &OtlpSinkConfig, context: SinkContext) -> anyhow::Result<JoinHandle<()>> {
    let _ = (config, context);
    anyhow::bail!("the otlp sink is not built yet")
}
