//! Cost per record of the WASM boundary for a filter that reads one column (severity-filter,
//! `min_severity = "warn"`), against the same filter compiled natively, at batch sizes
//! 1, 64, 1024 and 4096. Every group reports per-record rates (throughput = records).
//!
//! Groups (see `benches/README.md`):
//! - `wasm_filter`: `Sandbox::filter(batch)` end to end, on a realistic severity mix (≈ 30 % kept):
//!   lend the batch, call the guest (which pulls `severity-numbers`), lift its keep mask, and
//!   build the output batch on the host (`select_and_edit`). The input batch is a clone of a
//!   prepared one, made outside the timed region (`iter_batched`).
//! - `wasm_filter_keep_all`: the same call with `min_severity = "trace"`: every record is kept, the
//!   plugin answers `selection::all`, the host returns the input as it is, and the bench feeds
//!   that output back in (no clone, no drop). This is the boundary alone: lend the batch, call,
//!   copy the column in, guest loop, verdict out, with no host-side copy of records.
//! - `native_filter`: `SeverityFilter::filter_batch` on a `sluice_sdk::LogBatch` of the same
//!   records (the column is already in memory; it computes and returns the same mask).
//! - `host_clone`: `LogBatch::clone`, the set-up cost excluded from `wasm_filter`, for reference.
//! - `host_drop`: dropping a batch, which `select_and_edit` does to its input.
//! - `host_select_and_edit`: the host applying the same keep mask with no plugin involved
//!   (`LogBatch::select_and_edit`: copy the kept records, drop the input), the part of
//!   `wasm_filter` that is not the boundary.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sluice::runtime::Sandbox;
use sluice_benches::{
    BATCH_SIZES, engine, host_batch, native_filter, sdk_batch, severity_filter_spec, warn_mask,
};
use sluice_sdk::Filter;

fn boundary(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("temporary cache directory");
    let engine = engine(cache.path(), 16);
    let warn = engine
        .load(&severity_filter_spec("warn"))
        .expect("loading severity-filter");
    let trace = engine
        .load(&severity_filter_spec("trace"))
        .expect("loading severity-filter");
    let mut warn_sandbox = Sandbox::new(warn).expect("severity-filter instance");
    let mut trace_sandbox = Sandbox::new(trace).expect("severity-filter instance");
    let mut native_warn = native_filter("warn");

    // The wasm plugin and the native build agree on every batch the benches use.
    for len in BATCH_SIZES {
        let outcome = warn_sandbox.filter(host_batch(len));
        assert!(outcome.fault.is_none(), "{:?}", outcome.fault);
        let native = native_warn.filter_batch(&sdk_batch(len));
        assert_eq!(outcome.output.len(), native.kept_indices(len).len());
        let all = trace_sandbox.filter(host_batch(len));
        assert!(all.fault.is_none(), "{:?}", all.fault);
        assert_eq!(all.output.len(), len);
    }

    let mut group = c.benchmark_group("wasm_filter");
    for len in BATCH_SIZES {
        let batch = host_batch(len);
        group.throughput(Throughput::Elements(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(len), &batch, |b, batch| {
            b.iter_batched(
                || batch.clone(),
                |batch| warn_sandbox.filter(batch),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("wasm_filter_keep_all");
    for len in BATCH_SIZES {
        // Every record is kept, so the output is the input batch itself: feed it back in, with
        // no clone and no drop anywhere in the loop.
        let mut batch = Some(host_batch(len));
        group.throughput(Throughput::Elements(len as u64));
        group.bench_function(BenchmarkId::from_parameter(len), |b| {
            b.iter(|| {
                let outcome = trace_sandbox.filter(batch.take().expect("the batch is back"));
                debug_assert_eq!(outcome.output.len(), len);
                batch = Some(outcome.output);
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("native_filter");
    for len in BATCH_SIZES {
        let batch = sdk_batch(len);
        group.throughput(Throughput::Elements(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(len), &batch, |b, batch| {
            b.iter(|| native_warn.filter_batch(black_box(batch)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("host_clone");
    for len in BATCH_SIZES {
        let batch = host_batch(len);
        group.throughput(Throughput::Elements(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(len), &batch, |b, batch| {
            b.iter(|| black_box(batch).clone())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("host_drop");
    for len in BATCH_SIZES {
        let batch = host_batch(len);
        group.throughput(Throughput::Elements(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(len), &batch, |b, batch| {
            b.iter_batched(|| batch.clone(), drop, BatchSize::LargeInput)
        });
    }
    group.finish();

    let mut group = c.benchmark_group("host_select_and_edit");
    for len in BATCH_SIZES {
        let batch = host_batch(len);
        let mask = warn_mask(&batch);
        let keep_all = mask.iter().all(|&keep| keep != 0);
        group.throughput(Throughput::Elements(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(len), &batch, |b, batch| {
            b.iter_batched(
                || batch.clone(),
                // The host gets no mask when the plugin keeps everything (`selection::all`).
                |batch| batch.select_and_edit((!keep_all).then_some(mask.as_slice()), &[]),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = boundary
}
criterion_main!(benches);
