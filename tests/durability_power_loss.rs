//! Power-loss test of the durable intake, the way Jepsen tests one (its 2025 NATS analysis): the
//! gateway's data directory — the buffer and the Parquet archive — lives on lossyfs
//! (`tests/support/lossyfs.rs`), a FUSE filesystem that keeps unsynced writes apart; the gateway
//! runs under numbered OTLP/gRPC load and is killed with SIGKILL at random moments, and after
//! each kill everything not synced is dropped (a file back to its content at its last fsync, a
//! directory back to its entries at its last fsync) before the restart. At the end every record
//! whose `Export` returned `Ok` must be in the archive; duplicates are allowed and counted.
//!
//! The control proves the test can fail: with `durability = "os"` (acknowledged after write(2),
//! before fsync) the same run loses acknowledged records — a process kill alone cannot show that
//! (`tests/durability_crash.rs` passes with either setting).
//!
//! The load, the kills and the archive check are the kill -9 harness's (`tests/support/crash.rs`).
//! `SLUICE_CRASH_SEED=N` replays the kill moments (the seed is printed).
//! `cargo test -p sluice --test durability_power_loss -- --nocapture` shows the totals. Needs
//! `/dev/fuse` and root or `fusermount3`; without them the test fails and says so.

mod support;

// The harness asks its parent for `gateway`, `python` and `workspace_root`; its DuckDB tally
// (which needs the Python env) is not used here.
#[allow(dead_code)]
#[path = "support/crash.rs"]
mod crash;
#[path = "support/lossyfs.rs"]
mod lossyfs;

use anyhow::Context as _;
use crash::{CrashReport, CrashSettings};
use lossyfs::{Dropped, LossyFs};
use support::{gateway, python, workspace_root};

/// Kill, power-loss and restart cycles of each run.
const ITERATIONS: usize = 12;

/// Fewer acknowledged records than this and the run proves nothing (see
/// `tests/durability_crash.rs`; lossyfs is slower than a disk, so the bar is lower).
const MIN_ACKNOWLEDGED: u64 = ITERATIONS as u64 * 100;

/// One run with `durability` on a fresh lossyfs mounted on `<tmp>/data`, the gateway's data
/// directory.
fn power_loss_run(durability: &str) -> CrashReport {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let seed = crash::seed_from_environment().expect("a usable seed");
    // The buffer and archive directories exist before the mount, so they are durable. The
    // gateway creates them when missing (`Log::open`, the Parquet sink's start) without syncing
    // their parent, so on lossyfs a power loss before the parent is synced by something else
    // takes the whole directory: pre-creating them keeps this test about the log and archive.
    let backing = dir.path().join("lossyfs");
    for made in ["live/buffer", "live/archive"] {
        std::fs::create_dir_all(backing.join(made)).expect("the backing directories");
    }
    let mountpoint = dir.path().join("data");
    std::fs::create_dir(&mountpoint).expect("the mountpoint");
    let fs = LossyFs::mount(&backing, &mountpoint)
        .unwrap_or_else(|error| panic!("{}", lossyfs::mount_failure(&error)));

    let mut settings = CrashSettings::new(dir.path(), ITERATIONS, seed);
    settings.durability = durability.to_owned();
    settings.progress = true;
    let mut dropped = Dropped::default();
    let report = crash::run_with(&settings, &mut || {
        let now = fs
            .drop_unsynced()
            .context("dropping the unsynced writes (the power loss)")?;
        dropped.bytes += now.bytes;
        dropped.entries += now.entries;
        Ok(())
    })
    .unwrap_or_else(|error| {
        panic!("power-loss run (durability {durability}, seed {seed}) failed: {error:#}")
    });
    println!("durability = {durability:?}: {report}");
    println!(
        "  the power losses dropped {} unsynced bytes and {} unsynced directory entries",
        dropped.bytes, dropped.entries
    );
    drop(fs);
    report
}

#[test]
fn no_acknowledged_record_is_lost_to_a_power_loss_with_fsync() {
    let report = power_loss_run("fsync");
    assert!(
        report.acknowledged >= MIN_ACKNOWLEDGED,
        "only {} records acknowledged over {ITERATIONS} lives (at least {MIN_ACKNOWLEDGED} \
         expected), the run proves nothing:\n{report}",
        report.acknowledged
    );
    assert_eq!(
        report.tally.lost,
        0,
        "{} acknowledged records did not survive the power losses (replay with {}={}):\n{report}",
        report.tally.lost,
        crash::SEED_VARIABLE,
        report.seed
    );
}

/// The control: acknowledging before fsync loses records to a power loss, and this test sees it.
#[test]
fn acknowledged_records_are_lost_to_a_power_loss_without_fsync() {
    let report = power_loss_run("os");
    assert!(
        report.tally.lost > 0,
        "durability = \"os\" lost nothing over {ITERATIONS} power losses: the test cannot tell \
         fsync from none (replay with {}={}):\n{report}",
        crash::SEED_VARIABLE,
        report.seed
    );
}
