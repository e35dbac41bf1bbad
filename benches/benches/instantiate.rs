//! Plugin start-up costs, for severity-filter:
//! - `instantiate/load_from_cache`: `PluginEngine::load` of a plugin whose compiled artifact is
//!   already in the on-disk cache (a temporary directory, warmed once): read the `.wasm`, hash
//!   it, deserialize the cached artifact, check its kind, link it (`InstancePre`).
//! - `instantiate/new_instance`: `Sandbox::new(loaded.clone())`: a store, an instance from the
//!   `InstancePre` (pooling allocator) and the plugin's `init` call with its config.
//! - `instantiate/drop_instance`: dropping that sandbox (its store and pool slot), which the
//!   gateway pays when an instance faults or is recycled.
//!
//! And the pieces of `load_from_cache`, to see where its time goes:
//! - `load_pieces/read_file`, `load_pieces/sha256`: what `load` does before touching wasmtime;
//! - `load_pieces/deserialize_cached`: `PluginEngine::compile_cached` on a warm cache.
//!
//! Each timed region holds only the step named; what is made is dropped outside it
//! (`iter_custom`), so pool slots and mappings never pile up.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use sha2::{Digest, Sha256};
use sluice::runtime::Sandbox;
use sluice_benches::{engine, severity_filter_spec};

/// Times `step` alone `iters` times; what it returns is dropped outside the timed region.
fn timed<T>(iters: u64, mut step: impl FnMut() -> T) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let started = Instant::now();
        let made = black_box(step());
        total += started.elapsed();
        drop(made);
    }
    total
}

fn instantiate(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("temporary cache directory");
    let engine = engine(cache.path(), 16);
    let spec = severity_filter_spec("warn");
    // Warm the cache once: the first load compiles and writes the artifact.
    let loaded = engine.load(&spec).expect("loading severity-filter");
    let cached = std::fs::read_dir(cache.path())
        .expect("reading the cache directory")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "cwasm"))
        .count();
    assert_eq!(cached, 1, "the first load writes one cache entry");

    let mut group = c.benchmark_group("instantiate");
    group.bench_function("load_from_cache", |b| {
        b.iter_custom(|iters| timed(iters, || engine.load(&spec).expect("load from cache")))
    });
    group.bench_function("new_instance", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                Sandbox::new(loaded.clone()).expect("severity-filter instance")
            })
        })
    });
    group.bench_function("drop_instance", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let sandbox = Sandbox::new(loaded.clone()).expect("severity-filter instance");
                let started = Instant::now();
                drop(black_box(sandbox));
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();

    let bytes = std::fs::read(&spec.path).expect("reading the plugin");
    let sha256: String = Sha256::digest(&bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let mut group = c.benchmark_group("load_pieces");
    group.bench_function("read_file", |b| {
        b.iter(|| std::fs::read(black_box(&spec.path)).expect("reading the plugin"))
    });
    group.bench_function("sha256", |b| b.iter(|| Sha256::digest(black_box(&bytes))));
    group.bench_function("deserialize_cached", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                engine
                    .compile_cached(&bytes, &sha256)
                    .expect("deserializing the cached artifact")
            })
        })
    });
    group.finish();
    assert_eq!(
        loaded.stats.snapshot().faults,
        0,
        "no instance faulted during the bench"
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = instantiate
}
criterion_main!(benches);
