//! kill -9 crash test of the durable intake: numbered OTLP/gRPC log records under load, the
//! gateway killed with SIGKILL at random moments and restarted, 20 times; at the end every
//! record whose `Export` returned `Ok` must be in the Parquet archive, read with DuckDB (and
//! with the `parquet` crate, which must agree). Duplicates are allowed and reported.
//!
//! The harness is `tests/support/crash.rs`; `benches/src/bin/crash.rs` runs it longer on the
//! release build. `SLUICE_CRASH_SEED=N` replays the kill moments of a run (the seed is printed).
//! `cargo test -p sluice --test durability_crash -- --nocapture` shows the totals.

mod support;

// The harness asks its parent for `gateway`, `python` and `workspace_root` (the crash bench
// includes it the same way).
#[path = "support/crash.rs"]
mod crash;

use crash::CrashSettings;
use support::{gateway, python, workspace_root};

/// Kill-and-restart cycles.
const ITERATIONS: usize = 20;

/// Fewer acknowledged records than this and the run proves nothing (a gateway that refuses
/// everything loses nothing). Each life runs under load for 100 ms or more, and even the debug
/// gateway on a busy machine acknowledges far more than 250 records in that time.
const MIN_ACKNOWLEDGED: u64 = ITERATIONS as u64 * 250;

#[test]
fn every_acknowledged_record_survives_kill_9_and_restart() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let seed = crash::seed_from_environment().expect("a usable seed");
    let mut settings = CrashSettings::new(dir.path(), ITERATIONS, seed);
    settings.progress = true;
    let report = crash::run(&settings)
        .unwrap_or_else(|error| panic!("crash run with seed {seed} failed: {error:#}"));
    println!("{report}");

    let duckdb = crash::duckdb_tally(
        &settings.archive_dir(),
        &report.acknowledged_ranges,
        dir.path(),
    )
    .unwrap_or_else(|error| panic!("DuckDB could not read the archive: {error:#}"));
    println!(
        "DuckDB: {} rows, lost={} duplicated={}",
        duckdb.archived_rows, duckdb.lost, duckdb.duplicated
    );
    assert_eq!(
        duckdb, report.tally,
        "DuckDB and the parquet crate read the archive differently (seed {seed})"
    );

    assert!(
        report.acknowledged >= MIN_ACKNOWLEDGED,
        "only {} records acknowledged over {ITERATIONS} lives (at least {MIN_ACKNOWLEDGED} \
         expected), the run proves nothing:\n{report}",
        report.acknowledged
    );
    let lives_with_acknowledgements = report
        .lifetimes
        .iter()
        .filter(|life| life.acknowledged > 0)
        .count();
    assert!(
        lives_with_acknowledgements * 2 >= ITERATIONS,
        "only {lives_with_acknowledgements} of {ITERATIONS} lives acknowledged anything before \
         SIGKILL:\n{report}"
    );
    assert_eq!(
        report.tally.lost,
        0,
        "{} acknowledged records are not in the archive (at-least-once broken; replay with \
         {}={seed}):\n{report}",
        report.tally.lost,
        crash::SEED_VARIABLE
    );
}
