//! The running gateway: the durable intake log, sinks, pipelines (each reading the log) and
//! receivers, started in that order (so nothing is accepted before it has somewhere to go) and
//! stopped in the reverse order (so everything accepted is written out, and what could not be
//! stays in the log for the next start).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::GatewayConfig;
use crate::intake::{Intake, Log, Repair};
use crate::pipeline::{self, Edge, Input, Outputs, Pipeline, PipelineStats, Router, Stages};
use crate::receivers::{self, ReceiverContext, ReceiverStats};
use crate::runtime::{PluginEngine, PluginStats};
use crate::sinks::{self, SinkContext, SinkStats};
use crate::telemetry;

/// A config with every plugin loaded and initialised: what `validate` checks and `run` starts.
pub struct Prepared {
    config: GatewayConfig,
    pipelines: Vec<(String, Pipeline)>,
}

impl Prepared {
    /// Loads every pipeline's plugins (running their `init`) and compiles the routes. Nothing is
    /// opened or bound. Every problem is reported, each with its location.
    pub fn new(config: GatewayConfig, engine: &PluginEngine) -> anyhow::Result<Prepared> {
        let sink_names: Vec<&String> = config.sinks.keys().collect();
        let sink_index = |name: &str| {
            sink_names
                .iter()
                .position(|sink| sink.as_str() == name)
                .expect("config checked that sinks exist")
        };
        let mut pipelines = Vec::new();
        let mut problems = Vec::new();
        for (name, pipeline) in &config.pipelines {
            let at = format!("pipelines.{name}.stages");
            match Stages::build(engine, &at, &pipeline.stages, &config.plugins) {
                Ok(stages) => {
                    let router = Router::new(pipeline, sink_index);
                    let outputs = Outputs {
                        alerts: pipeline
                            .alerts
                            .iter()
                            .map(|name| sink_index(name))
                            .collect(),
                        dead_letter: pipeline.dead_letter.as_deref().map(sink_index),
                    };
                    let built = Pipeline::new(name, stages, router, outputs)
                        .with_timing(pipeline.checkpoint_interval, pipeline.tick_interval);
                    pipelines.push((name.clone(), built));
                }
                Err(error) => problems.push(format!("{error:#}")),
            }
        }
        if !problems.is_empty() {
            anyhow::bail!("{}", problems.join("\n"));
        }
        Ok(Prepared { config, pipelines })
    }

    /// One line per pipeline: receivers → stages → sinks.
    pub fn describe(&self) -> Vec<String> {
        self.pipelines
            .iter()
            .map(|(name, pipeline)| {
                let config = &self.config.pipelines[name];
                let stages: Vec<String> = pipeline
                    .stages()
                    .sandboxes()
                    .map(|sandbox| {
                        format!("{} ({})", sandbox.plugin().spec.name, sandbox.plugin().kind)
                    })
                    .collect();
                let mut sinks = config.sinks.clone();
                sinks.extend(config.routes.iter().flat_map(|route| route.sinks.clone()));
                sinks.dedup();
                format!(
                    "pipeline {name}: [{}] → [{}] → [{}]",
                    config.receivers.join(", "),
                    stages.join(" → "),
                    sinks.join(", ")
                )
            })
            .collect()
    }
}

/// Counters of every part, by name.
#[derive(Default)]
pub struct GatewayStats {
    /// Per plugin, by pipeline and plugin name.
    pub plugins: BTreeMap<(String, String), Arc<PluginStats>>,
    /// Per receiver.
    pub receivers: BTreeMap<String, Arc<ReceiverStats>>,
    /// Per pipeline.
    pub pipelines: BTreeMap<String, Arc<PipelineStats>>,
    /// Per sink.
    pub sinks: BTreeMap<String, Arc<SinkStats>>,
    /// The durable intake log.
    pub log: Option<Arc<Log>>,
    /// What the log's recovery repaired at start-up.
    pub repairs: Vec<Repair>,
}

/// A started gateway.
pub struct Gateway {
    shutdown: CancellationToken,
    receiver_tasks: Vec<JoinHandle<()>>,
    log: Arc<Log>,
    pipeline_stop: pipeline::Stop,
    pipeline_threads: Vec<std::thread::JoinHandle<()>>,
    sink_tasks: Vec<(String, JoinHandle<()>)>,
    admin: Option<JoinHandle<()>>,
    stats: Arc<GatewayStats>,
}

impl Gateway {
    /// Starts sinks, pipelines and receivers. A sink that cannot open or a receiver that cannot
    /// bind stops the start with an error naming it; what had started is stopped again.
    pub async fn start(prepared: Prepared) -> anyhow::Result<Gateway> {
        let Prepared { config, pipelines } = prepared;
        let mut stats = GatewayStats::default();
        let shutdown = CancellationToken::new();

        let buffer = config.buffer.clone();
        let (log, recovery) = tokio::task::spawn_blocking(move || Log::open(&buffer))
            .await
            .context("buffer: the opening task failed")?
            .context("buffer: cannot open")?;
        for repair in &recovery.repairs {
            tracing::warn!(buffer = %log.dir().display(), "{repair}");
        }
        tracing::info!(buffer = %log.dir().display(), entries = recovery.entries(), "buffer open");
        stats.log = Some(log.clone());
        stats.repairs = recovery.repairs;

        let routing = match crate::alerts::Routing::new(&config.alerts) {
            Ok(routing) => routing,
            Err(error) => {
                let log = log.clone();
                let _ = tokio::task::spawn_blocking(move || log.shutdown()).await;
                return Err(error.context("alerts: cannot start"));
            }
        };
        let mut sink_senders = Vec::new();
        let mut sink_tasks = Vec::new();
        for (name, sink) in &config.sinks {
            let (sender, items) = mpsc::channel(config.sink_queue);
            let sink_stats = Arc::new(SinkStats::default());
            let context = SinkContext {
                name: name.as_str().into(),
                items,
                stats: sink_stats.clone(),
            };
            let task = match sinks::start_routed(sink, context, routing.clone()).await {
                Ok(task) => task,
                Err(error) => {
                    let log = log.clone();
                    let _ = tokio::task::spawn_blocking(move || log.shutdown()).await;
                    return Err(error.context(format!("sinks.{name}: cannot start")));
                }
            };
            stats.sinks.insert(name.clone(), sink_stats);
            sink_senders.push(sender);
            sink_tasks.push((name.clone(), task));
        }

        let sink_names: Vec<&String> = config.sinks.keys().collect();
        let pipeline_stop = pipeline::Stop::default();
        let mut pipeline_threads = Vec::new();
        for (name, pipeline) in pipelines {
            let pipeline_config = &config.pipelines[&name];
            let edges = pipeline_config
                .record_sinks()
                .into_iter()
                .map(|sink| {
                    let index = sink_names
                        .iter()
                        .position(|known| known.as_str() == sink)
                        .expect("config checked that sinks exist");
                    let consumer = log.consumer(&name, sink, config.sinks[sink].when_full());
                    Edge::new(index, consumer, sink_senders[index].clone())
                })
                .collect();
            let input = Input {
                receivers: pipeline_config.receivers.clone(),
                signals: pipeline_config.signals.clone(),
            };
            stats.pipelines.insert(name.clone(), pipeline.stats());
            for sandbox in pipeline.stages().sandboxes() {
                stats.plugins.insert(
                    (name.clone(), sandbox.plugin().spec.name.clone()),
                    sandbox.stats().clone(),
                );
            }
            let thread = pipeline::spawn(
                pipeline,
                input,
                log.clone(),
                edges,
                sink_senders.clone(),
                pipeline_stop.clone(),
            )
            .with_context(|| format!("pipelines.{name}: cannot start its thread"))?;
            pipeline_threads.push(thread);
        }
        drop(sink_senders);

        let intake = Intake::durable(log.clone());
        let receiver_stats: BTreeMap<String, Arc<ReceiverStats>> = config
            .receivers
            .keys()
            .map(|name| (name.clone(), Arc::default()))
            .collect();
        stats.receivers = receiver_stats.clone();
        let stats = Arc::new(stats);
        let ready = Arc::new(AtomicBool::new(false));

        let mut gateway = Gateway {
            shutdown,
            receiver_tasks: Vec::new(),
            log,
            pipeline_stop,
            pipeline_threads,
            sink_tasks,
            admin: None,
            stats: stats.clone(),
        };
        if let Some(admin) = &config.admin {
            let silences = routing.silences.clone();
            match telemetry::serve(
                admin,
                stats,
                ready.clone(),
                silences,
                gateway.shutdown.clone(),
            )
            .await
            {
                Ok(task) => gateway.admin = Some(task),
                Err(error) => {
                    gateway.stop(Duration::from_secs(5)).await;
                    return Err(error.context("admin: cannot start"));
                }
            }
        }
        for (name, receiver) in &config.receivers {
            let context = ReceiverContext {
                name: name.as_str().into(),
                intake: intake.clone(),
                shutdown: gateway.shutdown.clone(),
                stats: receiver_stats[name].clone(),
            };
            match receivers::start(receiver, context).await {
                Ok(tasks) => gateway.receiver_tasks.extend(tasks),
                Err(error) => {
                    gateway.stop(Duration::from_secs(5)).await;
                    return Err(error.context(format!("receivers.{name}: cannot start")));
                }
            }
        }
        ready.store(true, Ordering::Relaxed);
        Ok(gateway)
    }

    /// The counters of every part.
    pub fn stats(&self) -> &GatewayStats {
        &self.stats
    }

    /// Resolves when every receiver task has ended by itself (only finite inputs end).
    /// Never resolves when there is no receiver. Cancel-safe: tasks still running stay for
    /// [`stop`](Self::stop).
    pub async fn receivers_finished(&mut self) {
        if self.receiver_tasks.is_empty() {
            std::future::pending::<()>().await;
        }
        while let Some(task) = self.receiver_tasks.last_mut() {
            let _ = task.await;
            self.receiver_tasks.pop();
        }
    }

    /// Stops receiving, then lets everything accepted flow out through the pipelines and sinks.
    /// Parts still busy after `timeout` are abandoned (with an error log).
    pub async fn stop(self, timeout: Duration) {
        let Gateway {
            shutdown,
            receiver_tasks,
            log,
            pipeline_stop,
            pipeline_threads,
            sink_tasks,
            admin,
            ..
        } = self;
        shutdown.cancel();
        let deadline = tokio::time::Instant::now() + timeout;
        for task in receiver_tasks {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::error!("a receiver did not stop in time");
            }
        }
        // Everything acknowledged is in the log; the pipelines deliver what it holds.
        {
            let log = log.clone();
            let _ = tokio::task::spawn_blocking(move || log.close()).await;
        }
        pipeline_stop.draining.store(true, Ordering::Relaxed);
        let threads = tokio::task::spawn_blocking(move || {
            for thread in pipeline_threads {
                let _ = thread.join();
            }
        });
        tokio::pin!(threads);
        if tokio::time::timeout_at(deadline, &mut threads)
            .await
            .is_err()
        {
            tracing::error!(
                "pipelines did not deliver everything in time; the rest stays in the buffer for the next start"
            );
            pipeline_stop.abandon.store(true, Ordering::Relaxed);
            let _ = threads.await;
        }
        for (name, task) in sink_tasks {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::error!(sink = %name, "sink did not flush in time; what it had not written stays in the buffer for the next start");
            }
        }
        // Save every cursor (sinks that finished moved theirs to the end).
        let _ = tokio::task::spawn_blocking(move || log.shutdown()).await;
        if let Some(admin) = admin {
            let _ = tokio::time::timeout_at(deadline, admin).await;
        }
    }
}
