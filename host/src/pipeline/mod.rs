//! Pipelines: batches from receivers → plugin stages → routes → sinks.
//!
//! Each pipeline runs on its own thread (plugin calls are synchronous and CPU-bound), takes
//! batches from its input queue, runs them through its [`Stages`], splits the output between its
//! sinks with its [`Router`], and sends alerts and dead letters where its config says. Records a
//! filter drops and records no route takes are counted, never lost silently.

mod checkpoint;
mod routing;
mod stages;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

pub use checkpoint::{Checkpoint, DETECTORS_CONSUMER, checkpoint_path};
pub use routing::{Routed, Router};
pub use stages::{StageOutput, Stages};

use crate::alerts::Alert;
use crate::intake::{Consumer, Entry, Log};
use crate::model::{AttributeValue, Batch, LogBatch, RecordChange, RecordEdit, Signal};
use crate::runtime::now_nanos;
use crate::sinks::{Delivery, SinkItem};

/// Attribute set on dead-lettered records: the plugin that faulted on them.
pub const DEAD_LETTER_PLUGIN_ATTRIBUTE: &str = "sluice.dead_letter.plugin";

use checkpoint::Checkpointer;

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
    /// Alerts dropped because their sinks stayed full.
    pub alerts_dropped: AtomicU64,
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
    checkpoint_interval: Duration,
    tick_interval: Duration,
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
            checkpoint_interval: Duration::from_secs(5),
            tick_interval: Duration::from_secs(1),
        }
    }

    /// Sets how often the detectors' state is checkpointed and how often they get a tick.
    pub fn with_timing(mut self, checkpoint_interval: Duration, tick_interval: Duration) -> Self {
        self.checkpoint_interval = checkpoint_interval;
        self.tick_interval = tick_interval;
        self
    }

    /// The pipeline's counters.
    pub fn stats(&self) -> Arc<PipelineStats> {
        self.stats.clone()
    }

    /// The plugin stages, for their counters.
    pub fn stages(&self) -> &Stages {
        &self.stages
    }

    /// Runs one batch the first time (detectors see it, everything is counted) or again for a
    /// sink that fell behind (no detector, no alert, no count).
    fn run(&mut self, batch: Batch, pass: Pass) -> Vec<(usize, SinkItem)> {
        let first = pass == Pass::First;
        let stats = self.stats.clone();
        let count = |counter: &AtomicU64, value: usize| {
            if first {
                add(counter, value);
            }
        };
        count(&stats.batches_in, 1);
        count(&stats.records_in, batch.len());
        let output = self.stages.process(batch, first);
        count(&stats.records_dropped, output.dropped);
        let mut deliveries = Vec::new();
        for (plugin, dead) in output.dead_letters {
            self.dead_letter(&plugin, dead, first, &mut deliveries);
        }
        if first {
            self.alerts(output.alerts, &mut deliveries);
        }
        if let Some(batch) = output.batch {
            count(&stats.records_out, batch.len());
            let routed = self.router.route(batch);
            if routed.unrouted > 0 && first {
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

    fn dead_letter(
        &self,
        plugin: &str,
        batch: LogBatch,
        first: bool,
        deliveries: &mut Vec<(usize, SinkItem)>,
    ) {
        if first {
            add(&self.stats.records_dead_lettered, batch.len());
        }
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

/// Whether a log entry is processed for the first time or again for a sink that fell behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    First,
    Again,
}

/// What a pipeline takes from the log: entries of these receivers carrying these signals.
#[derive(Clone, Debug)]
pub struct Input {
    /// Receiver names.
    pub receivers: Vec<String>,
    /// Signals.
    pub signals: Vec<Signal>,
}

impl Input {
    fn takes(&self, entry: &Entry) -> bool {
        self.receivers.iter().any(|name| **name == *entry.receiver)
            && self.signals.contains(&entry.batch.signal())
    }
}

/// One pipeline → sink edge: the sink's queue and the edge's cursor on the log.
pub struct Edge {
    /// Index of the sink.
    pub sink: usize,
    /// The edge's cursor.
    pub consumer: Arc<Consumer>,
    /// The sink's queue.
    pub queue: mpsc::Sender<SinkItem>,
    /// A delivery the queue had no room for, sent before anything else on this edge.
    parked: Option<SinkItem>,
}

impl Edge {
    /// An edge to sink `sink` through its queue.
    pub fn new(sink: usize, consumer: Arc<Consumer>, queue: mpsc::Sender<SinkItem>) -> Edge {
        Edge {
            sink,
            consumer,
            queue,
            parked: None,
        }
    }

    /// Tries the parked delivery again; true when the edge is free to take more.
    fn unpark(&mut self, pipeline: &str) -> bool {
        let Some(item) = self.parked.take() else {
            return true;
        };
        match self.queue.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(item)) => {
                self.parked = Some(item);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!(
                    pipeline,
                    sink = self.consumer.sink(),
                    "sink queue closed: its task ended early"
                );
                true
            }
        }
    }
}

/// How a pipeline thread is told to finish.
#[derive(Clone, Debug, Default)]
pub struct Stop {
    /// Set once the log is closed: finish what it holds, then end.
    pub draining: Arc<AtomicBool>,
    /// Set when the shutdown time is up: end now (what is not delivered stays in the log).
    pub abandon: Arc<AtomicBool>,
}

/// Alerts waiting for room in their sinks' queues, at most this many.
const MAX_WAITING_ALERTS: usize = 10_000;

/// Runs a pipeline on a thread of its own: reads the log for its edges, each at its own
/// position, so a sink that is slow or down holds back only its own edge; returns when `stop`
/// says so. The sink queues it holds are dropped with it, so the sinks see their queues close
/// once every pipeline is done.
pub fn spawn(
    pipeline: Pipeline,
    input: Input,
    log: Arc<Log>,
    edges: Vec<Edge>,
    alert_queues: Vec<mpsc::Sender<SinkItem>>,
    stop: Stop,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("pipeline-{}", pipeline.name))
        .spawn(move || {
            let mut pipeline = pipeline;
            let from_edges = edges
                .iter()
                .map(|edge| edge.consumer.next())
                .min()
                .unwrap_or(1)
                .saturating_sub(1);
            let mut checkpointer = None;
            let mut newest = from_edges;
            if !pipeline.stages.detectors_mut().is_empty() {
                let every = pipeline.checkpoint_interval;
                let (mut detectors, seen) = Checkpointer::open(
                    &log,
                    &pipeline.name,
                    pipeline.stages.detectors_mut(),
                    every,
                );
                // Without a checkpoint the detectors start with the sinks; with one, exactly
                // after what they had seen.
                newest = seen.unwrap_or(from_edges);
                detectors.hold_from(newest);
                checkpointer = Some(detectors);
            }
            let mut reader = Reader {
                pipeline,
                input,
                log,
                edges,
                alert_queues,
                waiting_alerts: VecDeque::new(),
                newest,
                turn: 0,
                checkpointer,
            };
            reader.run(&stop);
        })
}

/// The state of a pipeline thread.
struct Reader {
    pipeline: Pipeline,
    input: Input,
    log: Arc<Log>,
    edges: Vec<Edge>,
    alert_queues: Vec<mpsc::Sender<SinkItem>>,
    waiting_alerts: VecDeque<(usize, SinkItem)>,
    /// The highest sequence number processed so far (detectors have seen everything up to it).
    newest: u64,
    /// The edge whose turn it is to pick the next entry (round robin, so that an edge catching
    /// up and the edges at the head share the thread).
    turn: usize,
    /// The detectors' checkpoints, when the pipeline has detectors.
    checkpointer: Option<Checkpointer>,
}

impl Reader {
    fn run(&mut self, stop: &Stop) {
        let mut last_tick = Instant::now();
        loop {
            if stop.abandon.load(Ordering::Relaxed) {
                break;
            }
            let committed = self.log.committed();
            let worked = self.step();
            if last_tick.elapsed() >= self.pipeline.tick_interval {
                last_tick = Instant::now();
                let alerts = self.pipeline.tick(now_nanos());
                self.waiting_alerts.extend(alerts);
            }
            self.checkpoint(false);
            self.send_alerts();
            if worked {
                continue;
            }
            let blocked = self.edges.iter().any(|edge| edge.parked.is_some())
                || !self.waiting_alerts.is_empty();
            if stop.draining.load(Ordering::Relaxed) && self.log.is_closed() && !blocked {
                let caught_up = self
                    .edges
                    .iter()
                    .all(|edge| self.log.next_entry(edge.consumer.next()).is_none())
                    && self.log.next_entry(self.newest + 1).is_none();
                if caught_up {
                    break;
                }
            }
            let wait = if blocked {
                Duration::from_millis(5)
            } else {
                self.pipeline
                    .tick_interval
                    .saturating_sub(last_tick.elapsed())
                    .min(Duration::from_millis(100))
            };
            self.log.wait_past(committed, wait);
        }
        // What the detectors have seen is consistent at any point between two entries, so a
        // checkpoint is taken even when the shutdown time is up.
        self.checkpoint(true);
        if !stop.abandon.load(Ordering::Relaxed) {
            let alerts = self.pipeline.tick(now_nanos());
            self.waiting_alerts.extend(alerts);
            for (sink, item) in self.waiting_alerts.drain(..) {
                if self.alert_queues[sink].blocking_send(item).is_err() {
                    tracing::error!(pipeline = %self.pipeline.name, sink, "alert sink queue closed");
                }
            }
        }
    }

    /// Checkpoints the detectors when their interval is due (or now, with `force`).
    fn checkpoint(&mut self, force: bool) {
        if let Some(checkpointer) = &mut self.checkpointer
            && (force || checkpointer.due())
        {
            checkpointer.save(self.newest, self.pipeline.stages.detectors_mut());
        }
    }

    /// Sends parked deliveries, then handles the next entry of the edge whose turn it is (and of
    /// every edge at the same position). True when something was done.
    fn step(&mut self) -> bool {
        let name = self.pipeline.name.clone();
        let mut worked = false;
        for edge in &mut self.edges {
            let was_parked = edge.parked.is_some();
            if edge.unpark(&name) && was_parked {
                worked = true;
            }
        }
        let count = self.edges.len();
        for offset in 0..count {
            let index = (self.turn + offset) % count;
            let edge = &self.edges[index];
            if edge.parked.is_some() {
                continue;
            }
            // Entries are processed for the first time in order: an edge ahead of that point
            // (after a restart, behind a detector checkpoint) waits for it to catch up, so the
            // detectors see every entry exactly once.
            let from = edge.consumer.next().min(self.newest + 1);
            if let Some(entry) = self.log.next_entry(from) {
                self.turn = index + 1;
                self.handle(&entry, from);
                return true;
            }
        }
        worked
    }

    /// Processes one entry and delivers it to every free edge positioned at it.
    fn handle(&mut self, entry: &Entry, from: u64) {
        let pass = if entry.seq > self.newest {
            self.newest = entry.seq;
            if let Some(checkpointer) = &self.checkpointer {
                checkpointer.seen(entry.seq);
            }
            Pass::First
        } else {
            Pass::Again
        };
        let mut by_sink: Vec<(usize, Vec<Arc<Batch>>)> = Vec::new();
        if self.input.takes(entry) {
            for (sink, item) in self.pipeline.run((*entry.batch).clone(), pass) {
                match item {
                    SinkItem::Batch(batch) => match by_sink.iter_mut().find(|(s, _)| *s == sink) {
                        Some((_, batches)) => batches.push(batch),
                        None => by_sink.push((sink, vec![batch])),
                    },
                    alert => self.queue_alert(sink, alert),
                }
            }
        }
        let name = self.pipeline.name.clone();
        for edge in &mut self.edges {
            let position = edge.consumer.next();
            if edge.parked.is_some() || position < from || position > entry.seq {
                continue;
            }
            let batches = by_sink
                .iter()
                .find(|(sink, _)| *sink == edge.sink)
                .map(|(_, batches)| batches.clone())
                .unwrap_or_default();
            if batches.is_empty() {
                edge.consumer.advance(entry.seq + 1);
                continue;
            }
            let ticket = edge.consumer.ticket(entry.seq);
            edge.consumer.advance(entry.seq + 1);
            edge.parked = Some(SinkItem::Delivery(Delivery { batches, ticket }));
            edge.unpark(&name);
        }
    }

    fn queue_alert(&mut self, sink: usize, alert: SinkItem) {
        if self.waiting_alerts.len() >= MAX_WAITING_ALERTS {
            self.waiting_alerts.pop_front();
            add(&self.pipeline.stats.alerts_dropped, 1);
            tracing::error!(pipeline = %self.pipeline.name, "too many alerts waiting for their sinks; the oldest is dropped");
        }
        self.waiting_alerts.push_back((sink, alert));
    }

    /// Sends waiting alerts while their queues have room.
    fn send_alerts(&mut self) {
        while let Some((sink, item)) = self.waiting_alerts.pop_front() {
            match self.alert_queues[sink].try_send(item) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(item)) => {
                    self.waiting_alerts.push_front((sink, item));
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    tracing::error!(pipeline = %self.pipeline.name, sink, "alert sink queue closed");
                }
            }
        }
    }
}
