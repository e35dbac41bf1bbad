//! Sinks: where batches and alerts leave the gateway.
//!
//! Each sink runs as its own task behind a bounded queue of [`SinkItem`]s, so a slow sink holds
//! up only its own queue. A sink ends when every sender of its queue is gone, after writing and
//! flushing everything it was given.

pub mod debug;
pub mod otlp;
pub mod parquet;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::alerts::sink::{AlertSinkConfig, AlertSinkKind};
use crate::alerts::{Alert, Routing};
use crate::intake::Ticket;
use crate::model::Batch;

/// One `[sinks.NAME]` table; `type` selects the kind.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    /// Parquet archive, partitioned by signal, date and hour.
    Parquet(parquet::ParquetSinkConfig),
    /// OTLP exporter (gRPC or HTTP) to a backend.
    Otlp(otlp::OtlpSinkConfig),
    /// Alerts as generic JSON POSTs.
    Webhook(AlertSinkConfig),
    /// Alerts as Slack incoming-webhook messages.
    Slack(AlertSinkConfig),
    /// Alerts to Alertmanager's v2 API.
    Alertmanager(AlertSinkConfig),
    /// Alerts as PagerDuty Events API v2 events.
    Pagerduty(AlertSinkConfig),
    /// Records and alerts as JSON lines on standard output.
    Stdout(debug::StdoutSinkConfig),
    /// Records and alerts as JSON lines appended to a file.
    File(debug::FileSinkConfig),
}

/// What a sink takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepts {
    /// Batches of records, points, spans.
    pub records: bool,
    /// Alerts.
    pub alerts: bool,
}

impl SinkConfig {
    /// What this kind of sink takes.
    pub fn accepts(&self) -> Accepts {
        match self {
            SinkConfig::Parquet(_) | SinkConfig::Otlp(_) => Accepts {
                records: true,
                alerts: false,
            },
            SinkConfig::Webhook(_)
            | SinkConfig::Slack(_)
            | SinkConfig::Alertmanager(_)
            | SinkConfig::Pagerduty(_) => Accepts {
                records: false,
                alerts: true,
            },
            SinkConfig::Stdout(_) | SinkConfig::File(_) => Accepts {
                records: true,
                alerts: true,
            },
        }
    }

    /// What the sink does when the buffer is full and it holds the oldest data (alert-only
    /// sinks never hold any).
    pub fn when_full(&self) -> crate::intake::WhenFull {
        match self {
            SinkConfig::Parquet(config) => config.when_full,
            SinkConfig::Otlp(config) => config.when_full,
            SinkConfig::Stdout(config) => config.when_full,
            SinkConfig::File(config) => config.when_full,
            SinkConfig::Webhook(_)
            | SinkConfig::Slack(_)
            | SinkConfig::Alertmanager(_)
            | SinkConfig::Pagerduty(_) => crate::intake::WhenFull::Block,
        }
    }

    /// Checks what serde cannot, pushing each problem prefixed with `at` (such as
    /// `sinks.archive`).
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        match self {
            SinkConfig::Parquet(config) => config.check(at, problems),
            SinkConfig::Otlp(config) => config.check(at, problems),
            SinkConfig::Stdout(_) => {}
            SinkConfig::File(config) => config.check(at, problems),
            _ => {
                if let Some((kind, config)) = self.alert_sink() {
                    config.check(kind, at, problems);
                }
            }
        }
    }

    /// The settings and kind of an alert sink (webhook, Slack, Alertmanager, PagerDuty).
    pub fn alert_sink(&self) -> Option<(AlertSinkKind, &AlertSinkConfig)> {
        match self {
            SinkConfig::Webhook(config) => Some((AlertSinkKind::Webhook, config)),
            SinkConfig::Slack(config) => Some((AlertSinkKind::Slack, config)),
            SinkConfig::Alertmanager(config) => Some((AlertSinkKind::Alertmanager, config)),
            SinkConfig::Pagerduty(config) => Some((AlertSinkKind::Pagerduty, config)),
            _ => None,
        }
    }
}

/// What travels down a sink's queue.
#[derive(Debug)]
pub enum SinkItem {
    /// A batch of records nobody tracks (tools and tests feeding a sink directly).
    Batch(Arc<Batch>),
    /// What one entry of the intake log has for this sink, with the ticket the sink completes
    /// once all of it is durable (or deliberately given up, counted).
    Delivery(Delivery),
    /// An alert (firing or resolved).
    Alert(Arc<Alert>),
}

/// The batches one log entry has for a sink (records, and dead letters when this sink takes
/// them), never raw lines: pipelines turn those into logs first.
#[derive(Debug)]
pub struct Delivery {
    /// The batches.
    pub batches: Vec<Arc<Batch>>,
    /// Completed by the sink once every batch is durable.
    pub ticket: Ticket,
}

/// The batches of an item, with the ticket to complete when they are durable (`None` for
/// untracked batches).
pub type Batches = (Vec<Arc<Batch>>, Option<Ticket>);

impl SinkItem {
    /// Splits an item into its batches and ticket (`None` for untracked batches), or hands back
    /// the alert it carries.
    pub fn into_batches(self) -> Result<Batches, Arc<Alert>> {
        match self {
            SinkItem::Batch(batch) => Ok((vec![batch], None)),
            SinkItem::Delivery(Delivery { batches, ticket }) => Ok((batches, Some(ticket))),
            SinkItem::Alert(alert) => Err(alert),
        }
    }
}

/// Completes a ticket when there is one.
pub fn complete(ticket: Option<Ticket>) {
    if let Some(ticket) = ticket {
        ticket.done();
    }
}

/// Counters every sink keeps.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Records, points or spans written (or delivered).
    pub records_written: AtomicU64,
    /// Alerts delivered.
    pub alerts_delivered: AtomicU64,
    /// Failed attempts (each retry counts).
    pub write_errors: AtomicU64,
    /// Items given up on after the last retry.
    pub items_dropped: AtomicU64,
    /// True while the sink's last attempt failed and it is backing off.
    pub failing: std::sync::atomic::AtomicBool,
    /// Alert sinks: what their router and delivery did.
    pub router: crate::alerts::RouterStats,
}

impl SinkStats {
    /// Adds `count` to a counter.
    pub fn add(counter: &AtomicU64, count: usize) {
        counter.fetch_add(count as u64, Ordering::Relaxed);
    }
}

/// What a running sink is given.
#[derive(Debug)]
pub struct SinkContext {
    /// The sink's name in the config.
    pub name: Arc<str>,
    /// Its queue; closed when the gateway shuts down and every pipeline has finished.
    pub items: mpsc::Receiver<SinkItem>,
    /// Its counters.
    pub stats: Arc<SinkStats>,
}

/// Opens what the sink needs (an error here means it did not start) and spawns its task, which
/// ends once its queue is closed and drained, with everything flushed. Alert sinks route with
/// the defaults of an empty `[alerts]` table.
pub async fn start(config: &SinkConfig, context: SinkContext) -> anyhow::Result<JoinHandle<()>> {
    start_routed(config, context, Routing::defaults()).await
}

/// [`start`], alert sinks routing by `routing` (the gateway's `[alerts]` and silences).
pub async fn start_routed(
    config: &SinkConfig,
    context: SinkContext,
    routing: Arc<Routing>,
) -> anyhow::Result<JoinHandle<()>> {
    match config {
        SinkConfig::Parquet(config) => parquet::start(config, context).await,
        SinkConfig::Otlp(config) => otlp::start(config, context).await,
        SinkConfig::Stdout(config) => debug::start_stdout(config, context).await,
        SinkConfig::File(config) => debug::start_file(config, context).await,
        SinkConfig::Webhook(config) => {
            crate::alerts::sink::start(config, AlertSinkKind::Webhook, context, routing).await
        }
        SinkConfig::Slack(config) => {
            crate::alerts::sink::start(config, AlertSinkKind::Slack, context, routing).await
        }
        SinkConfig::Alertmanager(config) => {
            crate::alerts::sink::start(config, AlertSinkKind::Alertmanager, context, routing).await
        }
        SinkConfig::Pagerduty(config) => {
            crate::alerts::sink::start(config, AlertSinkKind::Pagerduty, context, routing).await
        }
    }
}
