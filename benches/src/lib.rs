//! Shared set-up of the Sluice benchmarks (`benches/*.rs`): where the built plugins are, an
//! engine with a private compile cache, the severity-filter spec the benches run, and batches of
//! realistic log records built identically for the host (`sluice::model`) and for the SDK
//! (`sluice_sdk`, the native comparison).
//!
//! See `benches/README.md` for what each bench measures and the figures measured here.

pub mod incidents;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice::model::{AttributeValue, LogBatch, LogRecord, Resource};
use sluice::runtime::{EngineOptions, PluginEngine, PluginSpec};

/// Batch sizes of the boundary bench: one record (the per-call floor), a small request, the
/// design's reference size (1024) and the top of its normal range (4096).
pub const BATCH_SIZES: [usize; 4] = [1, 64, 1024, 4096];

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Path of a plugin built to `wasm32-wasip2` by `scripts/build-plugins` (or under
/// `$SLUICE_PLUGIN_DIR`); panics with the fix when it is missing.
pub fn plugin_wasm(crate_name: &str) -> PathBuf {
    let dir = std::env::var_os("SLUICE_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/wasm32-wasip2/plugin"));
    let path = dir.join(format!("{}.wasm", crate_name.replace('-', "_")));
    assert!(
        path.exists(),
        "{} is missing: build the plugins first with `bash scripts/build-plugins` \
         (or point SLUICE_PLUGIN_DIR at a directory holding them)",
        path.display()
    );
    path
}

/// A plugin engine whose compile cache lives in `cache_dir` (a temporary directory in every
/// bench, so a run never reads or pollutes the user's cache), with `max_instances` pool slots.
pub fn engine(cache_dir: &Path, max_instances: u32) -> PluginEngine {
    PluginEngine::new(EngineOptions {
        cache_dir: Some(cache_dir.to_path_buf()),
        max_instances,
        ..EngineOptions::default()
    })
    .expect("creating the plugin engine")
}

/// The severity-filter plugin with `min_severity` = `min_severity`, under limits a bench never
/// trips: a 1 s deadline per call, no quarantine, no recycling by call count.
pub fn severity_filter_spec(min_severity: &str) -> PluginSpec {
    let mut spec = PluginSpec::new("severity-filter", plugin_wasm("severity-filter"));
    spec.config = serde_json::json!({ "min_severity": min_severity });
    spec.limits.deadline_ms = 1000;
    spec.limits.quarantine_after = 1_000_000;
    spec.limits.max_calls_per_instance = u64::MAX;
    spec
}

/// The severity-filter config as JSON text, exactly as the host passes it to the plugin's `init`.
pub fn severity_filter_config(min_severity: &str) -> String {
    serde_json::json!({ "min_severity": min_severity }).to_string()
}

/// A small deterministic generator (xorshift64*), so every run and every model gets the same
/// records without a `rand` dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// Severity mix of the records, in per mille: (number, text, share). With `min_severity = warn`
/// the filter keeps warn, error, fatal and unspecified: about 30 % of the records.
const SEVERITY_MIX: [(u8, &str, u64); 7] = [
    (1, "TRACE", 20),
    (5, "DEBUG", 130),
    (9, "INFO", 550),
    (13, "WARN", 180),
    (17, "ERROR", 100),
    (21, "FATAL", 10),
    (0, "", 10),
];

const PATHS: [&str; 6] = [
    "/api/v1/orders",
    "/api/v1/cart/items",
    "/api/v1/users/me",
    "/healthz",
    "/api/v2/payments/authorize",
    "/static/app.js",
];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const SERVICES: [&str; 3] = ["checkout", "cart", "payments"];

/// One record, field by field, independent of the model it goes into.
struct Fields {
    timestamp: i64,
    severity_number: u8,
    severity_text: &'static str,
    body: String,
    trace_id: [u8; 16],
    span_id: [u8; 8],
    method: &'static str,
    status: i64,
    user: String,
    service: usize,
}

/// `len` records shaped like an HTTP service's logs: a realistic severity mix, 60–90 byte bodies,
/// trace context, three attributes and one of three resources. Deterministic.
fn fields(len: usize) -> Vec<Fields> {
    let mut rng = Rng(0x5EED_0F51_0CE5);
    let base = 1_795_428_000_000_000_000_i64;
    (0..len)
        .map(|index| {
            let mut pick = rng.below(1000);
            let &(severity_number, severity_text, _) = SEVERITY_MIX
                .iter()
                .find(|(_, _, share)| {
                    if pick < *share {
                        true
                    } else {
                        pick -= share;
                        false
                    }
                })
                .unwrap_or(&SEVERITY_MIX[2]);
            let method = METHODS[rng.below(METHODS.len() as u64) as usize];
            let path = PATHS[rng.below(PATHS.len() as u64) as usize];
            let status = match severity_number {
                17.. => 500 + rng.below(4) as i64,
                13..=16 => 400 + rng.below(30) as i64,
                _ => 200 + rng.below(5) as i64,
            };
            let millis = rng.below(2000);
            let user = format!("user-{:06}", rng.below(1_000_000));
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&rng.next().to_le_bytes());
            trace_id[8..].copy_from_slice(&rng.next().to_le_bytes());
            Fields {
                timestamp: base + index as i64 * 1_000_000,
                severity_number,
                severity_text,
                body: format!("{method} {path} -> {status} in {millis} ms (request {index:08x})"),
                trace_id,
                span_id: rng.next().to_le_bytes(),
                method,
                status,
                user,
                service: rng.below(SERVICES.len() as u64) as usize,
            }
        })
        .collect()
}

fn resource(service: &str) -> Vec<(String, AttributeValue)> {
    vec![
        ("service.name".into(), AttributeValue::from(service)),
        (
            "host.name".into(),
            AttributeValue::from("node-17.eu-west-1"),
        ),
    ]
}

/// `len` records as the host holds them.
pub fn host_records(len: usize) -> Vec<LogRecord> {
    let resources: Vec<Arc<Resource>> = SERVICES
        .iter()
        .map(|service| Arc::new(Resource::with_attributes(resource(service))))
        .collect();
    fields(len)
        .into_iter()
        .map(|f| LogRecord {
            timestamp: f.timestamp,
            observed_timestamp: f.timestamp + 250_000,
            severity_number: f.severity_number,
            severity_text: f.severity_text.into(),
            body: f.body,
            trace_id: f.trace_id,
            span_id: f.span_id,
            attributes: vec![
                ("http.method".into(), AttributeValue::from(f.method)),
                ("http.status_code".into(), AttributeValue::Int(f.status)),
                ("user.id".into(), AttributeValue::Str(f.user)),
            ],
            resource: resources[f.service].clone(),
        })
        .collect()
}

/// `len` records as a host batch (what `Sandbox::filter` takes).
pub fn host_batch(len: usize) -> LogBatch {
    LogBatch::from_records(&host_records(len))
}

/// The same `len` records as an SDK batch (what a plugin's `filter_batch` takes natively).
pub fn sdk_batch(len: usize) -> sluice_sdk::LogBatch<'static> {
    let records: Vec<sluice_sdk::LogRecord> = fields(len)
        .into_iter()
        .map(|f| sluice_sdk::LogRecord {
            timestamp: f.timestamp,
            observed_timestamp: f.timestamp + 250_000,
            severity_number: f.severity_number,
            severity_text: f.severity_text.into(),
            body: f.body,
            trace_id: f.trace_id,
            span_id: f.span_id,
            attributes: vec![
                ("http.method".into(), f.method.into()),
                ("http.status_code".into(), f.status.into()),
                ("user.id".into(), f.user.into()),
            ],
            resource_attributes: vec![
                ("service.name".into(), SERVICES[f.service].into()),
                ("host.name".into(), "node-17.eu-west-1".into()),
            ],
        })
        .collect();
    sluice_sdk::LogBatch::from_records(&records)
}

/// The keep mask `min_severity = warn` gives over `batch` (what the plugin answers), for benches
/// of the host's side alone.
pub fn warn_mask(batch: &LogBatch) -> Vec<u8> {
    batch
        .severity_numbers()
        .iter()
        .map(|&severity| u8::from(severity >= 13 || severity == 0))
        .collect()
}

/// The native severity filter, configured as the plugin is.
pub fn native_filter(min_severity: &str) -> severity_filter::SeverityFilter {
    use sluice_sdk::Plugin;
    severity_filter::SeverityFilter::from_json_config(&severity_filter_config(min_severity))
        .expect("severity-filter config")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::Filter;

    #[test]
    fn host_and_sdk_batches_hold_the_same_records() {
        let host = host_batch(512);
        let sdk = sdk_batch(512);
        assert_eq!(host.len(), 512);
        assert_eq!(host.severity_numbers(), sdk.severity_numbers());
        assert_eq!(host.bodies().bytes(), sdk.bodies().bytes.as_slice());
        assert_eq!(host.trace_ids(), sdk.trace_ids());
    }

    #[test]
    fn the_mix_drops_some_records_with_warn() {
        let batch = sdk_batch(1024);
        let result = native_filter("warn").filter_batch(&batch);
        let kept = result.kept_indices(batch.len()).len();
        assert!((200..450).contains(&kept), "kept {kept} of 1024");
        let mask = warn_mask(&host_batch(1024));
        assert_eq!(mask.iter().filter(|&&keep| keep != 0).count(), kept);
        // The single record of the batch-size-1 benches is one the filter drops.
        assert_eq!(warn_mask(&host_batch(1)), vec![0]);
        // With `trace` every record is kept and the plugin answers without a mask.
        let all = native_filter("trace").filter_batch(&batch);
        assert_eq!(all.keep, sluice_sdk::Selection::All);
    }
}
