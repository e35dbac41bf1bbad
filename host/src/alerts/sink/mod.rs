//! An alert sink: its queue feeds a [`Router`], whose notifications one [`Delivery`] task sends
//! in order, encoded in the sink's [`Format`]. The plumbing is the same for every kind; only the
//! format differs.
//!
//! Two tasks, so the router keeps taking alerts (and counting repeats) while a receiver that is
//! down makes the delivery retry. Between them is room for one notification: the rest wait in
//! the router, where the rate limit and `rate_limit.max_waiting` apply. When the queue closes,
//! everything held goes out (rate limit still applies) before the sink ends.

pub mod config;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use config::{AlertSinkConfig, AlertSinkKind};

use super::delivery::{self, Delivery};
use super::formats::Format;
use super::router::{Notification, Router, Routing, Shape};
use crate::sinks::{SinkContext, SinkItem, SinkStats};

/// Checks the settings, builds the HTTP client and spawns the router and delivery tasks.
pub async fn start(
    config: &AlertSinkConfig,
    kind: AlertSinkKind,
    context: SinkContext,
    routing: Arc<Routing>,
) -> anyhow::Result<JoinHandle<()>> {
    let mut problems = Vec::new();
    config.check(kind, &format!("sinks.{}", context.name), &mut problems);
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("; "));
    }
    let headers = delivery::header_map(&config.headers).map_err(anyhow::Error::msg)?;
    let delivery = Delivery::new(
        context.name.clone(),
        config.retry(),
        headers,
        context.stats.clone(),
    )?;
    let format = config.format(kind);
    let shape = Shape {
        max_alerts: format.max_alerts(),
        resend_interval: match &format {
            Format::Alertmanager(alertmanager) => Some(alertmanager.resend_interval),
            _ => None,
        },
    };
    let (notifications, ready) = mpsc::channel(1);
    let sender = tokio::spawn(send(delivery, format, ready, context.name.clone()));
    let router = Router::new(routing, shape, context.stats.clone(), Instant::now());
    Ok(tokio::spawn(async move {
        route(router, context, notifications).await;
        let _ = sender.await;
    }))
}

/// Feeds the router from the queue and hands notifications to the delivery task.
async fn route(
    mut router: Router,
    mut context: SinkContext,
    notifications: mpsc::Sender<Notification>,
) {
    let mut open = true;
    loop {
        let now = Instant::now();
        router.advance(now, chrono::Utc::now());
        if !open && router.finished() {
            break;
        }
        let can_take = router.can_take(now);
        let wake = router.next_due(now).map(tokio::time::Instant::from_std);
        tokio::select! {
            permit = notifications.reserve(), if can_take => {
                let Ok(permit) = permit else { break };
                if let Some(notification) = router.take(Instant::now()) {
                    permit.send(notification);
                }
            }
            item = context.items.recv(), if open => match item {
                Some(item) => take(&mut router, item, &context),
                None => {
                    open = false;
                    router.close();
                }
            },
            _ = sleep_until(wake) => {}
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn take(router: &mut Router, item: SinkItem, context: &SinkContext) {
    match item.into_batches() {
        Err(alert) => router.receive(&alert, Instant::now(), chrono::Utc::now()),
        Ok((batches, ticket)) => {
            // Config checks keep records away from alert sinks; counted if any arrive.
            let records: usize = batches.iter().map(|batch| batch.len()).sum();
            SinkStats::add(&context.stats.items_dropped, records);
            tracing::warn!(sink = %context.name, records, "an alert sink takes alerts only; records dropped");
            crate::sinks::complete(ticket);
        }
    }
}

/// Encodes and delivers each notification in turn.
async fn send(
    delivery: Delivery,
    format: Format,
    mut ready: mpsc::Receiver<Notification>,
    name: Arc<str>,
) {
    while let Some(notification) = ready.recv().await {
        match format.encode(&notification.alerts, chrono::Utc::now()) {
            Ok(request) => {
                delivery.deliver(&request, notification.alerts.len()).await;
            }
            Err(error) => {
                // Cannot happen with string keys; counted rather than trusted.
                tracing::error!(sink = %name, %error, "cannot encode a notification; dropped");
            }
        }
    }
}
