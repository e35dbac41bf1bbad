//! Pipelines: batches from receivers → plugin stages → routes → sinks.
//!
//! Each pipeline runs on its own thread (plugin calls are synchronous and CPU-bound), takes
//! batches from its input queue, runs them through its [`Stages`], splits the output between its
//! sinks with its [`Router`], and sends alerts and dead letters where its config says. Records a
//! filter drops and records no route takes are counted, never lost silently.

mod routing;
mod stages;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

pub use routing::{Routed, Router};
pub use stages::{StageOutput, Stages};

use crate::alerts::Alert;
use crate::model::{AttributeValue, Batch, LogBatch, RecordChange, RecordEdit};
use crate::runtime::now_nanos;
use crate::sinks::SinkItem;

/// Attribute set on dead-lettered records: the plugin that faulted on them.
pub const DEAD_LETTER_PLUGIN_ATTRIBUTE: &str = "sluice.dead_letter.plugin";

/// How often detectors get a tick.
const TICK_EVERY: Duration = Duration::from_secs(1);

/// Counters of one pipeline.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Batches taken from the input queue.
    pub batches_in: AtomicU64,
    /// Records, points, spans or lines taken in.
    pub records_in: AtomicU64,
    /// Records that came out of the stages.
    pub records_out: AtomicU64,
    /// Records dropped by filters or fault policies.
    pub records_dropped: AtomicU64,
    /// Records sent to the dead-letter sink (or logged when there is none).
    pub records_dead_lettered: AtomicU64,
    /// Records no route took.
    pub records_unrouted: AtomicU64,
    /// Alerts raised.
    pub alerts: AtomicU64,
}

fn add(counter: &AtomicU64, count: usize) {
    counter.fetch_add(count as u64, Ordering::Relaxed);
}

/// Where a pipeline's output goes, as indices into the gateway's sink queues.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// Sinks of the pipeline's alerts.
    pub alerts: Vec<usize>,
    /// Sink of dead-lettered batches.
    pub dead_letter: Option<usize>,
}

/// One running pipeline.
pub struct Pipeline {
    name: Arc<str>,
    stages: Stages,
    router: Router,
    outputs: Outputs,
    stats: Arc<PipelineStats>,
}

impl Pipeline {
    /// A pipeline from its loaded stages, compiled routes and outputs.
    pub fn new(name: &str, stages: Stages, router: Router, outputs: Outputs) -> Pipeline {
        Pipeline {
            name: name.into(),
            stages,
            router,
            outputs,
            stats: Arc::default(),
        }
    }

    /// The pipeline's counters.
    pub fn stats(&self) -> Arc<PipelineStats> {
        self.stats.clone()
    }

    /// The plugin stages, for their counters.
    pub fn stages(&self) -> &Stages {
        &self.stages
    }

    /// Runs one batch; returns what goes to which sink.
    pub fn process(&mut self, batch: Batch) -> Vec<(usize, SinkItem)> {
        add(&self.stats.batches_in, 1);
        add(&self.stats.records_in, batch.len());
        let output = self.stages.process(batch);
        add(&self.stats.records_dropped, output.dropped);
        let mut deliveries = Vec::new();
        for (plugin, dead) in output.dead_letters {
            self.dead_letter(&plugin, dead, &mut deliveries);
        }
        self.alerts(output.alerts, &mut deliveries);
        if let Some(batch) = output.batch {
            add(&self.stats.records_out, batch.len());
            let routed = self.router.route(batch);
            if routed.unrouted > 0 {
                add(&self.stats.records_unrouted, routed.unrouted);
                tracing::debug!(pipeline = %self.name, records = routed.unrouted, "records matched no route");
            }
            deliveries.extend(
                routed
                    .deliveries
                    .into_iter()
                    .map(|(sink, part)| (sink, SinkItem::Batch(part))),
            );
        }
        deliveries
    }

    /// Advances detectors' clocks; returns their alerts' deliveries.
    pub fn tick(&mut self, now: i64) -> Vec<(usize, SinkItem)> {
        let mut deliveries = Vec::new();
        let alerts = self.stages.tick(now);
        self.alerts(alerts, &mut deliveries);
        deliveries
    }

    fn alerts(&self, alerts: Vec<Alert>, deliveries: &mut Vec<(usize, SinkItem)>) {
        add(&self.stats.alerts, alerts.len());
        for alert in alerts {
            if self.outputs.alerts.is_empty() {
                tracing::warn!(pipeline = %self.name, alert = ?alert, "alert (no alert sink configured)");
                continue;
            }
            let alert = Arc::new(alert);
            for &sink in &self.outputs.alerts {
                deliveries.push((sink, SinkItem::Alert(alert.clone())));
            }
        }
    }

    fn dead_letter(&self, plugin: &str, batch: LogBatch, deliveries: &mut Vec<(usize, SinkItem)>) {
        add(&self.stats.records_dead_lettered, batch.len());
        let Some(sink) = self.outputs.dead_letter else {
            tracing::warn!(pipeline = %self.name, plugin, records = batch.len(), "dead-lettered records (no dead_letter sink configured): they are dropped");
            return;
        };
        let edits: Vec<RecordEdit> = (0..batch.len() as u32)
            .map(|index| RecordEdit {
                index,
                change: RecordChange::SetAttribute(
                    DEAD_LETTER_PLUGIN_ATTRIBUTE.into(),
                    AttributeValue::from(plugin),
                ),
            })
            .collect();
        let tagged = batch.select_and_edit(None, &edits);
        deliveries.push((sink, SinkItem::Batch(Arc::new(Batch::Logs(tagged)))));
    }
}

/// Runs a pipeline on a thread of its own until its input queue closes, then returns: the sink
/// senders it holds are dropped with it, so the sinks see their queues close once every
/// pipeline is done.
pub fn spawn(
    mut pipeline: Pipeline,
    mut input: mpsc::Receiver<Batch>,
    sinks: Vec<mpsc::Sender<SinkItem>>,
    runtime: tokio::runtime::Handle,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("pipeline-{}", pipeline.name))
        .spawn(move || {
            let mut last_tick = Instant::now();
            loop {
                let wait = TICK_EVERY.saturating_sub(last_tick.elapsed());
                let next =
                    runtime.block_on(async { tokio::time::timeout(wait, input.recv()).await });
                let deliveries = match next {
                    Ok(Some(batch)) => pipeline.process(batch),
                    Ok(None) => break,
                    Err(_) => Vec::new(),
                };
                send(&pipeline.name, &sinks, deliveries);
                if last_tick.elapsed() >= TICK_EVERY {
                    last_tick = Instant::now();
                    let deliveries = pipeline.tick(now_nanos());
                    send(&pipeline.name, &sinks, deliveries);
                }
            }
            let deliveries = pipeline.tick(now_nanos());
            send(&pipeline.name, &sinks, deliveries);
        })
}

/// Sends deliveries, waiting for room in each sink's queue (back-pressure).
fn send(pipeline: &str, sinks: &[mpsc::Sender<SinkItem>], deliveries: Vec<(usize, SinkItem)>) {
    for (sink, item) in deliveries {
        if sinks[sink].blocking_send(item).is_err() {
            tracing::error!(pipeline, sink, "sink queue closed: its task ended early");
        }
    }
}
