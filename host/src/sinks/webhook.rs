//! Alert webhook sink: alerts as JSON POSTs, with retry.

use serde::Deserialize;
use tokio::task::JoinHandle;

use super::SinkContext;

/// `type = "webhook"` sink settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSinkConfig {
    /// URL the alerts are POSTed to.
    pub url: String,
}

impl WebhookSinkConfig {
    /// Checks what serde cannot.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        let _ = (at, problems);
    }
}

/// Opens and spawns the sink.
pub async fn start(config: &WebhookSinkConfig, context: SinkContext) -> anyhow::Result<JoinHandle<()>> {
    let _ = (config, context);
    anyhow::bail!("the webhook sink is not built yet")
}
