//! Memory per plugin instance (plain `main`, not criterion): the process's resident set
//! (`VmRSS` of `/proc/self/status`) with the engine created and severity-filter loaded (idle),
//! then its growth over N live sandboxes that each processed one 1024-record batch, divided by N,
//! and what stays resident once they are all dropped (pool slots keep some memory warm).
//! The plugin is compiled into the (temporary) cache by a child process first, so the figures are
//! those of a gateway starting on a warm cache; the child reports what compiling costs instead.
//!
//! `cargo bench -p sluice-benches --bench memory` runs N = 200; under `cargo test` (no `--bench`
//! argument) it runs N = 8 as a smoke test.

use std::path::Path;
use std::time::Instant;

use sluice::runtime::Sandbox;
use sluice_benches::{engine, host_batch, severity_filter_spec};

/// Set in the child process that compiles the plugin into the cache (see `main`).
const WARM_CACHE_ENV: &str = "SLUICE_BENCH_WARM_CACHE";

/// Records in the batch each instance processes.
const BATCH: usize = 1024;

/// The resident-set fields of `/proc/self/status`, in KiB.
#[derive(Clone, Copy, Default)]
struct Rss {
    total: u64,
    anon: u64,
    file: u64,
    shmem: u64,
}

impl Rss {
    fn now() -> Rss {
        let status =
            std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Rss {
            total: field("VmRSS:"),
            anon: field("RssAnon:"),
            file: field("RssFile:"),
            shmem: field("RssShmem:"),
        }
    }

    /// Growth since `base`, in KiB: total, anonymous, file-backed, shared memory.
    fn minus(self, base: Rss) -> [i64; 4] {
        [
            self.total as i64 - base.total as i64,
            self.anon as i64 - base.anon as i64,
            self.file as i64 - base.file as i64,
            self.shmem as i64 - base.shmem as i64,
        ]
    }
}

/// Prints one table row: `kib` divided by `per`, in MiB.
fn row(what: &str, kib: [i64; 4], per: f64) {
    let mib = |kib: i64| kib as f64 / per / 1024.0;
    println!(
        "| {what:<44} | {:>9.2} | {:>9.2} | {:>9.2} | {:>9.2} |",
        mib(kib[0]),
        mib(kib[1]),
        mib(kib[2]),
        mib(kib[3]),
    );
}

/// In the child: compiles severity-filter into the cache directory `dir` and prints the RSS that
/// compiling added, in KiB. Compiling keeps allocator arenas that a gateway restarting on a warm
/// cache never has, so the parent only ever loads from the cache.
fn warm_cache(dir: &Path) {
    let engine = engine(dir, 16);
    let before = Rss::now();
    let loaded = engine
        .load(&severity_filter_spec("warn"))
        .expect("compiling severity-filter");
    println!("{}", Rss::now().minus(before)[0]);
    drop(loaded);
}

fn main() {
    if let Some(dir) = std::env::var_os(WARM_CACHE_ENV) {
        return warm_cache(Path::new(&dir));
    }
    let bench = std::env::args().any(|arg| arg == "--bench");
    let instances: usize = if bench { 200 } else { 8 };

    let start = Rss::now();
    let cache = tempfile::tempdir().expect("temporary cache directory");
    let child = std::process::Command::new(std::env::current_exe().expect("this binary"))
        .env(WARM_CACHE_ENV, cache.path())
        .output()
        .expect("running the cache-warming child");
    assert!(
        child.status.success(),
        "warming the cache failed: {}",
        String::from_utf8_lossy(&child.stderr)
    );
    let compile_kib: i64 = String::from_utf8_lossy(&child.stdout)
        .trim()
        .parse()
        .unwrap_or(0);

    let before_engine = Rss::now();
    let engine = engine(cache.path(), 256);
    let with_engine = Rss::now();
    let spec = severity_filter_spec("warn");
    // Loaded from the warm cache, as a restarted gateway does.
    let loaded = engine
        .load(&spec)
        .expect("loading severity-filter from the cache");
    let idle = Rss::now();

    let batch = host_batch(BATCH);
    // The first instance pays one-time costs (the plugin's code pages, wasmtime's lazy
    // initialisation, allocator arenas); keep it apart from the per-instance figure.
    let mut first = Sandbox::new(loaded.clone()).expect("severity-filter instance");
    let outcome = first.filter(batch.clone());
    assert!(outcome.fault.is_none(), "{:?}", outcome.fault);
    drop(outcome);
    let after_first = Rss::now();

    let started = Instant::now();
    let mut sandboxes = Vec::with_capacity(instances);
    for _ in 0..instances {
        let mut sandbox = Sandbox::new(loaded.clone()).expect("severity-filter instance");
        let outcome = sandbox.filter(batch.clone());
        assert!(outcome.fault.is_none(), "{:?}", outcome.fault);
        sandboxes.push(sandbox);
    }
    let elapsed = started.elapsed();
    let after_all = Rss::now();
    // What their pool slots keep once they are gone (`linear_memory_keep_resident`).
    drop(sandboxes);
    let after_drop = Rss::now();
    let stats = loaded.stats.snapshot();
    assert_eq!(stats.instances_created, instances as u64 + 1);
    assert_eq!(stats.faults, 0);

    println!();
    println!(
        "severity-filter, {instances} live instances, each after one {BATCH}-record batch \
         (pooling allocator, {} MiB memory cap)",
        spec.limits.memory_mb
    );
    println!();
    println!(
        "| {:<44} | {:>9} | {:>9} | {:>9} | {:>9} |",
        "MiB", "VmRSS", "RssAnon", "RssFile", "RssShmem"
    );
    println!(
        "|{:-<46}|{:->11}|{:->11}|{:->11}|{:->11}|",
        "", "", "", "", ""
    );
    let whole = Rss::default();
    row("process at start (bench binary)", start.minus(whole), 1.0);
    row(
        "idle: engine + severity-filter loaded",
        idle.minus(whole),
        1.0,
    );
    row(
        "  of which the engine",
        with_engine.minus(before_engine),
        1.0,
    );
    row(
        "  of which loading from the cache",
        idle.minus(with_engine),
        1.0,
    );
    row(
        "  (a cold-cache compile adds instead, VmRSS)",
        [compile_kib, 0, 0, 0],
        1.0,
    );
    row(
        "first instance + its batch (one-time)",
        after_first.minus(idle),
        1.0,
    );
    row(
        &format!("per instance (growth over {instances}, / {instances})"),
        after_all.minus(after_first),
        instances as f64,
    );
    row(
        "kept per instance once all are dropped",
        after_drop.minus(after_first),
        instances as f64,
    );
    println!();
    println!(
        "plugin memory_high_water_bytes: {} ({:.2} MiB of linear memory per instance)",
        stats.memory_high_water_bytes,
        stats.memory_high_water_bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "{instances} instances made and fed in {:.1} ms ({:.1} µs each, batch included)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / instances as f64
    );
    println!(
        "targets: ≤ 2 MB per instance (issue), ≤ 1.5 MB (design); \
         idle RSS ≤ 25 MB (design, whole gateway)"
    );
    drop(first);
}
