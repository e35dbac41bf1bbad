//! `sluice plugin test PLUGIN.wasm --input FILE`: runs a plugin in the real sandbox over a file,
//! the plugin author's fast local loop. Filters and detectors read JSON lines of records (see
//! [`LogRecord::from_json`]); parsers read raw lines. Output records (filters, parsers) or alerts
//! (detectors) go to stdout as JSON lines; a summary goes to stderr.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use crate::model::{LogBatch, LogRecord, Resource, StringColumn};
use crate::runtime::{
    EngineOptions, OnError, PluginEngine, PluginKind, PluginSpec, Sandbox, default_cache_dir,
};

/// Arguments of `sluice plugin test`.
#[derive(clap::Args, Debug)]
pub struct PluginTestArgs {
    /// The plugin component (`.wasm`).
    pub plugin: PathBuf,
    /// Input file: JSON lines of records for filters and detectors, raw lines for parsers.
    #[arg(long)]
    pub input: PathBuf,
    /// The plugin's config, as JSON.
    #[arg(long)]
    pub config: Option<String>,
    /// Records (or lines) per call.
    #[arg(long, default_value_t = 1024)]
    pub batch_size: usize,
    /// Deadline per call, in milliseconds. Default: the plugin kind's, as in the gateway (10 for
    /// filters and parsers, 100 for detectors).
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// Memory cap, in MiB.
    #[arg(long, default_value_t = 64)]
    pub memory_mb: u64,
    /// Detectors: after the input, a quiet stream until this time (Unix nanoseconds or RFC
    /// 3339): the detector gets a tick at the newest record time, then one at this time, as a
    /// live gateway would tick it while no data comes.
    #[arg(long)]
    pub tick: Option<String>,
    /// Expected SHA-256 of the plugin.
    #[arg(long)]
    pub sha256: Option<String>,
}

#[derive(Default)]
struct Tally {
    batches: usize,
    records_out: usize,
    dropped: usize,
    dead_lettered: usize,
    parse_errors: usize,
    alerts: usize,
    faults: Vec<String>,
    bad_input_lines: usize,
}

/// Runs the subcommand. Exit code 1 when the plugin faulted or input lines were invalid.
pub fn run(args: &PluginTestArgs) -> anyhow::Result<ExitCode> {
    let mut spec = PluginSpec::new(
        &args
            .plugin
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default(),
        &args.plugin,
    );
    if let Some(config) = &args.config {
        spec.config = serde_json::from_str(config).context("--config is not valid JSON")?;
    }
    spec.sha256 = args.sha256.clone();
    spec.limits.deadline_ms = args.deadline_ms.unwrap_or(0);
    spec.limits.memory_mb = args.memory_mb;
    spec.limits.quarantine_after = u32::MAX;
    spec.on_error = OnError::DeadLetter;
    let engine = PluginEngine::new(EngineOptions {
        cache_dir: default_cache_dir(),
        max_instances: 16,
        max_memory_mb: args.memory_mb.max(64),
    })?;
    let loaded = engine.load(&spec)?;
    let kind = loaded.kind;
    let instantiate_started = Instant::now();
    let mut sandbox = Sandbox::new(loaded)?;
    let first_instance = instantiate_started.elapsed();

    let input = std::fs::File::open(&args.input)
        .with_context(|| format!("opening {}", args.input.display()))?;
    let mut lines = std::io::BufReader::new(input).lines();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut tally = Tally::default();
    // The newest record time a detector saw, for `--tick`.
    let mut newest = 0i64;
    let batch_size = args.batch_size.max(1);
    let started = Instant::now();
    let resource = Arc::new(Resource::default());
    let source = args.input.display().to_string();
    let mut line_number = 0usize;
    loop {
        let mut chunk = Vec::with_capacity(batch_size);
        for line in lines.by_ref() {
            let line = line.with_context(|| format!("reading {}", args.input.display()))?;
            line_number += 1;
            chunk.push((line_number, line));
            if chunk.len() == batch_size {
                break;
            }
        }
        if chunk.is_empty() {
            break;
        }
        tally.batches += 1;
        match kind {
            PluginKind::Parser => {
                let mut column = StringColumn::default();
                for (_, line) in &chunk {
                    column.push(line);
                }
                let outcome =
                    sandbox.parse(&column, &source, crate::runtime::now_nanos(), &resource);
                tally.parse_errors += outcome.parse_errors;
                note_fault(
                    &mut tally,
                    outcome.fault.as_ref(),
                    outcome.dead_letter.as_ref(),
                );
                write_records(&mut out, &outcome.output, &mut tally)?;
            }
            PluginKind::Filter | PluginKind::Detector => {
                let batch = records_batch(&chunk, &args.input, &mut tally);
                if kind == PluginKind::Filter {
                    let outcome = sandbox.filter(batch);
                    tally.dropped += outcome.dropped;
                    note_fault(
                        &mut tally,
                        outcome.fault.as_ref(),
                        outcome.dead_letter.as_ref(),
                    );
                    write_records(&mut out, &outcome.output, &mut tally)?;
                } else {
                    newest = batch.timestamps().iter().copied().fold(newest, i64::max);
                    let outcome = sandbox.observe(&Arc::new(batch));
                    note_fault(&mut tally, outcome.fault.as_ref(), None);
                    write_alerts(&mut out, &outcome.alerts, &mut tally)?;
                }
            }
        }
    }
    if let (PluginKind::Detector, Some(tick)) = (kind, &args.tick) {
        let now = parse_time(tick)?;
        let ticks = if newest > 0 && newest < now {
            vec![newest, now]
        } else {
            vec![now]
        };
        for at in ticks {
            let outcome = sandbox.tick(at);
            note_fault(&mut tally, outcome.fault.as_ref(), None);
            write_alerts(&mut out, &outcome.alerts, &mut tally)?;
        }
    }
    let gateway_alerts = sandbox.take_alerts();
    write_alerts(&mut out, &gateway_alerts, &mut tally)?;
    out.flush()?;
    let elapsed = started.elapsed();
    let stats = sandbox.stats().snapshot();

    eprintln!(
        "plugin     {} ({kind}, sha256 {})",
        args.plugin.display(),
        &sandbox.plugin().sha256[..16]
    );
    eprintln!(
        "input      {} lines in {} batches{}",
        line_number,
        tally.batches,
        if tally.bad_input_lines > 0 {
            format!(", {} invalid lines skipped", tally.bad_input_lines)
        } else {
            String::new()
        }
    );
    eprintln!(
        "records    in {} out {} dropped {} dead-lettered {} parse errors {} alerts {}",
        stats.records_in,
        tally.records_out,
        tally.dropped,
        tally.dead_lettered,
        tally.parse_errors,
        tally.alerts
    );
    let per_record = if stats.records_in > 0 {
        stats.call_nanos as f64 / stats.records_in as f64
    } else {
        0.0
    };
    eprintln!(
        "time       {:.1} ns per record inside the plugin ({} calls, {:.1} µs per call); {:.1} ms in all; first instance {:.0} µs",
        per_record,
        stats.calls,
        if stats.calls > 0 {
            stats.call_nanos as f64 / stats.calls as f64 / 1000.0
        } else {
            0.0
        },
        elapsed.as_secs_f64() * 1000.0,
        first_instance.as_secs_f64() * 1e6
    );
    eprintln!(
        "faults     {} (traps {}, deadline hits {}, memory cap hits {}, output bound hits {}, invalid outputs {}); memory high-water {} KiB",
        stats.faults,
        stats.traps,
        stats.deadline_hits,
        stats.memory_cap_hits,
        stats.output_bound_hits,
        stats.invalid_outputs,
        stats.memory_high_water_bytes / 1024
    );
    for fault in &tally.faults {
        eprintln!("fault      {fault}");
    }
    if !stats.plugin_counters.is_empty() {
        let counters: Vec<String> = stats
            .plugin_counters
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        eprintln!("counters   {}", counters.join(" "));
    }
    Ok(if tally.faults.is_empty() && tally.bad_input_lines == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn records_batch(
    chunk: &[(usize, String)],
    input: &std::path::Path,
    tally: &mut Tally,
) -> LogBatch {
    let mut batch = LogBatch::new();
    for (number, line) in chunk {
        if line.trim().is_empty() {
            continue;
        }
        match LogRecord::from_json(line) {
            Ok(record) => batch.push(&record),
            Err(error) => {
                tally.bad_input_lines += 1;
                eprintln!(
                    "{}:{number}: not a record, skipped: {error}",
                    input.display()
                );
            }
        }
    }
    batch
}

fn note_fault(
    tally: &mut Tally,
    fault: Option<&crate::runtime::Fault>,
    dead_letter: Option<&LogBatch>,
) {
    if let Some(fault) = fault {
        let dead = dead_letter.map_or(0, LogBatch::len);
        tally.dead_lettered += dead;
        tally.faults.push(format!(
            "batch {}: plugin {fault}; {dead} records dead-lettered",
            tally.batches
        ));
    }
}

fn write_records(out: &mut impl Write, batch: &LogBatch, tally: &mut Tally) -> anyhow::Result<()> {
    for record in batch.records() {
        serde_json::to_writer(&mut *out, &record.to_json())?;
        out.write_all(b"\n")?;
    }
    tally.records_out += batch.len();
    Ok(())
}

fn write_alerts(
    out: &mut impl Write,
    alerts: &[crate::alerts::Alert],
    tally: &mut Tally,
) -> anyhow::Result<()> {
    for alert in alerts {
        serde_json::to_writer(&mut *out, alert)?;
        out.write_all(b"\n")?;
    }
    tally.alerts += alerts.len();
    Ok(())
}

fn parse_time(text: &str) -> anyhow::Result<i64> {
    if let Ok(nanos) = text.parse::<i64>() {
        return Ok(nanos);
    }
    let time = humantime::parse_rfc3339_weak(text)
        .with_context(|| format!("--tick `{text}` is neither nanoseconds nor RFC 3339"))?;
    Ok(time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as i64)
        .unwrap_or(0))
}
