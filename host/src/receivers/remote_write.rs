//! Prometheus remote-write receiver: snappy-compressed protobuf WriteRequests become metric points.

use std::net::SocketAddr;

use serde::Deserialize;
use tokio::task::JoinHandle;

use super::ReceiverContext;

/// `type = "remote_write"` receiver settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteReceiverConfig {
    /// HTTP listen address.
    pub address: SocketAddr,
}

impl RemoteWriteReceiverConfig {
    /// Checks what serde cannot.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        let _ = (at, problems);
    }
}

/// Binds and spawns the receiver.
pub async fn start(config: &RemoteWriteReceiverConfig, context: ReceiverContext) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let _ = (config, context);
    anyhow::bail!("the remote_write receiver is not built yet")
}
