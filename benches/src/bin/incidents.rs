//! `incidents`: writes the labelled replay set (see `sluice_benches::incidents`).
//!
//! ```sh
//! cargo run --release -p sluice-benches --bin incidents -- --seed 1 --hours 8 --out /tmp/incidents
//! ```
//!
//! writes `OUT/telemetry.jsonl` (OTLP/JSON export requests, one per line, in time order: what the
//! OpenTelemetry Collector's file exporter writes, and what `sluice replay` reads) and
//! `OUT/labels.json` (every incident with its kind, service, start, end and the detector meant to
//! catch it; every noise episode that must not alert).

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use sluice_benches::incidents::{BASE_TIME_NANOS, Options, generate, rfc3339};

/// Command-line arguments.
#[derive(Parser, Debug)]
#[command(about = "Write the labelled incident replay set: OTLP/JSON lines and labels.json")]
struct Args {
    /// Seed of the random numbers: the same seed and length give the same files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated hours (the schedule is laid out for 8; other lengths scale it).
    #[arg(long, default_value_t = 8.0)]
    hours: f64,
    /// Event time of the first step, Unix nanoseconds (default 2025-06-02T00:00:00Z).
    #[arg(long, default_value_t = BASE_TIME_NANOS)]
    start: i64,
    /// Directory to write `telemetry.jsonl` and `labels.json` to (created when missing).
    #[arg(long)]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.hours > 0.0 && args.hours <= 48.0,
        "--hours must be in (0, 48], not {}",
        args.hours
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let telemetry = args.out.join("telemetry.jsonl");
    let mut out = BufWriter::new(
        File::create(&telemetry).with_context(|| format!("creating {}", telemetry.display()))?,
    );
    let options = Options {
        seed: args.seed,
        hours: args.hours,
        base_time_nanos: args.start,
    };
    let (labels, counts) =
        generate(&options, &mut out).with_context(|| format!("writing {}", telemetry.display()))?;
    drop(out);
    let labels_path = args.out.join("labels.json");
    std::fs::write(&labels_path, serde_json::to_string_pretty(&labels)? + "\n")
        .with_context(|| format!("writing {}", labels_path.display()))?;
    let size = std::fs::metadata(&telemetry).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}: {} lines, {} log records, {} metric points, {} spans ({:.1} MB), {} to {}",
        telemetry.display(),
        counts.lines,
        counts.logs,
        counts.metric_points,
        counts.spans,
        size as f64 / 1e6,
        rfc3339(counts.first_time_nanos),
        rfc3339(counts.last_time_nanos),
    );
    println!(
        "{}: {} incidents, {} noise episodes",
        labels_path.display(),
        labels["incidents"].as_array().map_or(0, Vec::len),
        labels["noise"].as_array().map_or(0, Vec::len),
    );
    Ok(())
}
