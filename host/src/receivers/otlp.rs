//! OTLP receiver: gRPC (tonic) and HTTP (protobuf and JSON, gzip) for logs, metrics and traces.

use std::net::SocketAddr;

use serde::Deserialize;
use tokio::task::JoinHandle;

use super::ReceiverContext;

/// `type = "otlp"` receiver settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpReceiverConfig {
    /// gRPC listen address, e.g. `127.0.0.1:4317`.
    #[serde(default)]
    pub grpc: Option<SocketAddr>,
    /// HTTP listen address, e.g. `127.0.0.1:4318`.
    #[serde(default)]
    pub http: Option<SocketAddr>,
}

impl OtlpReceiverConfig {
    /// Checks what serde cannot.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        let _ = (at, problems);
    }
}

/// Binds and spawns the receiver.
pub async fn start(config: &OtlpReceiverConfig, context: ReceiverContext) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let _ = (config, context);
    anyhow::bail!("the otlp receiver is not built yet")
}
