//! `sluice run [CONFIG]` and `sluice validate CONFIG`.
//!
//! For now the gateway's only receiver is standard input (JSON lines, or whatever the pipeline's
//! parser reads) and its only sink is standard output (records as JSON lines); alerts and
//! dead-lettered batches go to standard error. Network receivers and sinks come next.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::config::GatewayConfig;
use crate::model::StringColumn;
use crate::pipeline::{Pipeline, PipelineOutput};
use crate::runtime::{EngineOptions, PluginEngine, now_nanos};

fn load_config(path: Option<&Path>) -> anyhow::Result<GatewayConfig> {
    match path {
        Some(path) => GatewayConfig::load(path),
        None => GatewayConfig::embedded_default(),
    }
}

/// `sluice validate`: loads the config and every plugin, runs their `init`, reports every problem.
pub fn validate(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = load_config(path)?;
    let engine = PluginEngine::new(EngineOptions::default())?;
    let pipeline = Pipeline::build(&engine, &config)?;
    let stages: Vec<String> = pipeline
        .sandboxes()
        .map(|sandbox| format!("{} ({})", sandbox.plugin().spec.name, sandbox.plugin().kind))
        .collect();
    eprintln!("config is valid: {}", stages.join(" → "));
    Ok(ExitCode::SUCCESS)
}

/// `sluice run`: stdin → pipeline → stdout, until end of input.
pub fn run(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = load_config(path)?;
    let engine = PluginEngine::new(EngineOptions::default())?;
    let mut pipeline = Pipeline::build(&engine, &config)?;
    tracing::info!(stages = ?config.pipeline.stages, "sluice running: reading standard input");

    let (sender, lines) = mpsc::sync_channel::<String>(config.pipeline.batch_size * 4);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });

    let flush_after = Duration::from_millis(config.pipeline.flush_ms.max(1));
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut batch = StringColumn::default();
    let mut batch_started = Instant::now();
    let mut last_tick = Instant::now();
    let (mut records_out, mut dropped, mut dead_lettered, mut alerts) =
        (0usize, 0usize, 0usize, 0usize);
    loop {
        let wait = flush_after.saturating_sub(batch_started.elapsed());
        let ended = match lines.recv_timeout(wait) {
            Ok(line) => {
                if batch.is_empty() {
                    batch_started = Instant::now();
                }
                batch.push(&line);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let full = batch.len() >= config.pipeline.batch_size;
        let due = !batch.is_empty() && batch_started.elapsed() >= flush_after;
        if full || due || (ended && !batch.is_empty()) {
            let output = pipeline.process_lines(&batch, "stdin");
            batch = StringColumn::default();
            batch_started = Instant::now();
            let counts = emit(&mut out, output)?;
            records_out += counts.0;
            dropped += counts.1;
            dead_lettered += counts.2;
            alerts += counts.3;
        }
        if last_tick.elapsed() >= Duration::from_secs(1) || ended {
            last_tick = Instant::now();
            let tick_alerts = pipeline.tick(now_nanos());
            alerts += tick_alerts.len();
            emit(
                &mut out,
                PipelineOutput {
                    alerts: tick_alerts,
                    ..PipelineOutput::default()
                },
            )?;
        }
        if ended {
            break;
        }
    }
    out.flush()?;
    eprintln!(
        "sluice: {records_out} records out, {dropped} dropped by filters, {dead_lettered} dead-lettered, {alerts} alerts"
    );
    for sandbox in pipeline.sandboxes() {
        let stats = sandbox.stats().snapshot();
        eprintln!(
            "  {:<16} calls {} in {} out {} faults {}",
            sandbox.plugin().spec.name,
            stats.calls,
            stats.records_in,
            stats.records_out,
            stats.faults
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes one batch's output; returns (records, dropped, dead-lettered, alerts).
fn emit(
    out: &mut impl Write,
    output: PipelineOutput,
) -> anyhow::Result<(usize, usize, usize, usize)> {
    for record in output.records.records() {
        serde_json::to_writer(&mut *out, &record.to_json())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    let mut dead_lettered = 0;
    for (plugin, batch) in &output.dead_letters {
        dead_lettered += batch.len();
        for record in batch.records() {
            eprintln!("dead-letter ({plugin}): {}", record.to_json());
        }
    }
    for alert in &output.alerts {
        eprintln!("alert: {}", serde_json::to_string(alert)?);
    }
    Ok((
        output.records.len(),
        output.dropped,
        dead_lettered,
        output.alerts.len(),
    ))
}
