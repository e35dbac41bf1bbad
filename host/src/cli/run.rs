//! `sluice run [CONFIG]` and `sluice validate [CONFIG]`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::config::GatewayConfig;
use crate::gateway::{Gateway, GatewayStats, Prepared};
use crate::runtime::{EngineOptions, PluginEngine};

fn load_config(path: Option<&Path>) -> anyhow::Result<GatewayConfig> {
    match path {
        Some(path) => GatewayConfig::load(path),
        None => GatewayConfig::embedded_default(),
    }
}

/// `sluice validate`: parses the config, checks every reference and setting, loads every plugin
/// and runs its `init`; reports every problem with its location. Opens no port.
pub fn validate(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = load_config(path)?;
    let engine = PluginEngine::new(EngineOptions::default())?;
    let prepared = Prepared::new(config, &engine)?;
    eprintln!("config is valid");
    for line in prepared.describe() {
        eprintln!("  {line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `sluice run`: checks the config as `validate` does (nothing starts when it fails), starts
/// sinks, pipelines and receivers, and runs until SIGINT or SIGTERM (or until every receiver
/// has ended, as stdin does at end of input); then drains.
pub fn run(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let config = load_config(path)?;
    let engine = PluginEngine::new(EngineOptions::default())?;
    let shutdown_timeout = config.shutdown_timeout;
    let prepared = Prepared::new(config, &engine)?;
    let description = prepared.describe();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice")
        .build()?;
    runtime.block_on(async move {
        let mut gateway = Gateway::start(prepared).await?;
        for line in &description {
            tracing::info!("{line}");
        }
        report_buffer(gateway.stats());
        eprintln!(
            "sluice: running ({} ms to start); SIGINT or SIGTERM stops it",
            started.elapsed().as_millis()
        );
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => eprintln!("sluice: interrupted, draining"),
            _ = terminate.recv() => eprintln!("sluice: terminated, draining"),
            () = gateway.receivers_finished() => eprintln!("sluice: every receiver has ended, draining"),
        }
        let summary = summary(gateway.stats());
        gateway.stop(shutdown_timeout).await;
        eprintln!("{summary}");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// What the buffer held at start: repairs it needed, and what the sinks have still to get.
fn report_buffer(stats: &GatewayStats) {
    let Some(log) = &stats.log else { return };
    for repair in &stats.repairs {
        eprintln!("sluice: buffer repaired: {repair}");
    }
    let committed = log.committed();
    let behind = log
        .consumers()
        .iter()
        .map(|consumer| committed.saturating_sub(consumer.durable()))
        .max()
        .unwrap_or(0);
    eprintln!(
        "sluice: buffer {}: {} repairs, {behind} entries to deliver from an earlier run",
        log.dir().display(),
        stats.repairs.len()
    );
}

/// One line per part with its counters (read at stop: the counters are shared).
fn summary(stats: &GatewayStats) -> impl std::fmt::Display + use<> {
    let receivers: Vec<_> = stats
        .receivers
        .iter()
        .map(|(name, stats)| (name.clone(), stats.clone()))
        .collect();
    let pipelines: Vec<_> = stats
        .pipelines
        .iter()
        .map(|(name, stats)| (name.clone(), stats.clone()))
        .collect();
    let sinks: Vec<_> = stats
        .sinks
        .iter()
        .map(|(name, stats)| (name.clone(), stats.clone()))
        .collect();
    Summary {
        receivers,
        pipelines,
        sinks,
    }
}

struct Summary {
    receivers: Vec<(String, std::sync::Arc<crate::receivers::ReceiverStats>)>,
    pipelines: Vec<(String, std::sync::Arc<crate::pipeline::PipelineStats>)>,
    sinks: Vec<(String, std::sync::Arc<crate::sinks::SinkStats>)>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let read = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        writeln!(f, "sluice: stopped")?;
        for (name, stats) in &self.receivers {
            writeln!(
                f,
                "  receiver {name}: {} accepted, {} malformed, {} refused",
                read(&stats.records_accepted),
                read(&stats.records_malformed),
                read(&stats.requests_refused)
            )?;
        }
        for (name, stats) in &self.pipelines {
            writeln!(
                f,
                "  pipeline {name}: {} in, {} out, {} dropped by filters, {} dead-lettered, {} unrouted, {} alerts",
                read(&stats.records_in),
                read(&stats.records_out),
                read(&stats.records_dropped),
                read(&stats.records_dead_lettered),
                read(&stats.records_unrouted),
                read(&stats.alerts)
            )?;
        }
        for (name, stats) in &self.sinks {
            writeln!(
                f,
                "  sink {name}: {} written, {} alerts, {} errors, {} dropped",
                read(&stats.records_written),
                read(&stats.alerts_delivered),
                read(&stats.write_errors),
                read(&stats.items_dropped)
            )?;
        }
        Ok(())
    }
}
