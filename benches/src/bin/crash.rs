//! `crash`: the kill -9 crash test of the durable intake as a long run — the harness of
//! `tests/durability_crash.rs` (`tests/support/crash.rs`) with `--iterations` SIGKILLs (200 by
//! default) of the release gateway under load, then a graceful stop and the archive checked:
//! every acknowledged record must be in it. Prints the totals
//! `iterations=N acknowledged=A lost=L duplicated=D seed=S`; the exit status is 1 when a record
//! was lost, 2 when the run itself failed.
//!
//! ```sh
//! cargo build --release -p sluice --bin sluice -p sluice-benches --bin crash
//! target/release/crash --iterations 200            # --seed N replays a run's kill moments
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;

use anyhow::{Context as _, ensure};
use clap::Parser;

#[allow(dead_code)]
#[path = "../../../tests/support/gateway.rs"]
mod gateway;

#[path = "../../../tests/support/crash.rs"]
mod crash;

/// Command-line arguments.
#[derive(Parser, Debug)]
#[command(
    about = "kill -9 the gateway under load, again and again; check nothing acknowledged was lost"
)]
struct Args {
    /// Kill-and-restart cycles.
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// Seed of the kill moments. Default: `$SLUICE_CRASH_SEED`, else from the clock.
    #[arg(long)]
    seed: Option<u64>,
    /// Concurrent OTLP/gRPC exporters.
    #[arg(long, default_value_t = 4)]
    senders: usize,
    /// Records per request.
    #[arg(long, default_value_t = 200)]
    batch: usize,
    /// Shortest time under load before SIGKILL, in ms.
    #[arg(long, default_value_t = 100)]
    min_kill_ms: u64,
    /// Longest time under load before SIGKILL, in ms.
    #[arg(long, default_value_t = 600)]
    max_kill_ms: u64,
    /// `buffer.durability` of the gateway: `fsync` or `os`.
    #[arg(long, default_value = "fsync")]
    durability: String,
    /// The gateway binary. Default: `sluice` next to this binary (`target/release/sluice`).
    #[arg(long)]
    sluice: Option<PathBuf>,
    /// Also read the archive with DuckDB (the test virtualenv of `scripts/python-env`).
    #[arg(long)]
    duckdb: bool,
    /// Keep the config, gateway data and archive in this directory (created) instead of a
    /// temporary directory removed at the end.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Print only the report, not a line per iteration.
    #[arg(long)]
    quiet: bool,
}

/// The gateway binary of this run, for `gateway.rs`.
static SLUICE_BINARY: OnceLock<PathBuf> = OnceLock::new();

/// The `sluice` binary the harness starts (`gateway.rs` asks its parent for it).
fn sluice_binary() -> PathBuf {
    SLUICE_BINARY
        .get()
        .cloned()
        .expect("run() sets the gateway binary before anything starts it")
}

/// The workspace root (`gateway.rs` and `crash.rs` ask their parent for it).
fn workspace_root() -> PathBuf {
    sluice_benches::workspace_root()
}

/// The interpreter of the test virtualenv (`$SLUICE_PYTHON`, else `target/python`), for
/// `--duckdb`.
fn python() -> PathBuf {
    std::env::var_os("SLUICE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/python/bin/python"))
}

/// A free TCP port on 127.0.0.1 (`gateway.rs` asks its parent for it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("no free port on 127.0.0.1")
}

fn run(args: Args) -> anyhow::Result<bool> {
    let sluice = match args.sluice {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("this binary has no directory")?
            .join("sluice"),
    };
    ensure!(
        sluice.exists(),
        "{} is missing: build it first with `cargo build --release -p sluice --bin sluice`",
        sluice.display()
    );
    SLUICE_BINARY.get_or_init(|| sluice);
    ensure!(
        args.min_kill_ms <= args.max_kill_ms,
        "--min-kill-ms is above --max-kill-ms"
    );
    let seed = match args.seed {
        Some(seed) => seed,
        None => crash::seed_from_environment()?,
    };

    let temporary;
    let dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temporary = tempfile::tempdir()?;
            temporary.path().to_path_buf()
        }
    };
    let mut settings = crash::CrashSettings::new(&dir, args.iterations, seed);
    settings.senders = args.senders;
    settings.records_per_request = args.batch;
    settings.kill_after_ms = args.min_kill_ms..=args.max_kill_ms;
    settings.durability = args.durability.clone();
    settings.progress = !args.quiet;
    eprintln!(
        "crash: {} iterations, seed {seed}, durability {}, gateway {}, in {}",
        args.iterations,
        args.durability,
        sluice_binary().display(),
        dir.display()
    );
    let report = crash::run(&settings).with_context(|| format!("the run with seed {seed}"))?;
    println!("{report}");
    if args.duckdb {
        let duckdb =
            crash::duckdb_tally(&settings.archive_dir(), &report.acknowledged_ranges, &dir)?;
        println!(
            "DuckDB: {} rows, lost={} duplicated={}{}",
            duckdb.archived_rows,
            duckdb.lost,
            duckdb.duplicated,
            if duckdb == report.tally {
                " (agrees)"
            } else {
                " (DISAGREES with the parquet crate)"
            }
        );
        ensure!(
            duckdb == report.tally,
            "DuckDB and the parquet crate read the archive differently"
        );
    }
    Ok(report.tally.lost == 0)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("crash: {error:#}");
            ExitCode::from(2)
        }
    }
}
