//! JSON lines receiver: over TCP (one JSON object per line) and HTTP POST.

use std::net::SocketAddr;

use serde::Deserialize;
use tokio::task::JoinHandle;

use super::ReceiverContext;

/// `type = "json_lines"` receiver settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonLinesReceiverConfig {
    /// TCP listen address.
    #[serde(default)]
    pub tcp: Option<SocketAddr>,
    /// HTTP listen address.
    #[serde(default)]
    pub http: Option<SocketAddr>,
}

impl JsonLinesReceiverConfig {
    /// Checks what serde cannot.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        let _ = (at, problems);
    }
}

/// Binds and spawns the receiver.
pub async fn start(config: &JsonLinesReceiverConfig, context: ReceiverContext) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let _ = (config, context);
    anyhow::bail!("the json_lines receiver is not built yet")
}
