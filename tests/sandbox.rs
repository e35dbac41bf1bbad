//! The sandbox against hostile plugins: each misbehaviour is contained, the fault policy applies,
//! the next batch gets a fresh instance, and the counters show it.

mod support;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sluice::model::{AttributeValue, LogBatch, LogRecord, Resource};
use sluice::runtime::{
    DirGrant, EngineOptions, Fault, OnError, PluginEngine, PluginKind, PluginSpec, Sandbox,
};
use support::plugin_wasm;

fn engine() -> &'static PluginEngine {
    static ENGINE: OnceLock<PluginEngine> = OnceLock::new();
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let cache = CACHE.get_or_init(|| tempfile::tempdir().unwrap());
        PluginEngine::new(EngineOptions {
            cache_dir: Some(cache.path().to_path_buf()),
            ..EngineOptions::default()
        })
        .unwrap()
    })
}

fn hostile(mode: &str, on_error: OnError) -> PluginSpec {
    let mut spec = PluginSpec::new("hostile", plugin_wasm("hostile"));
    spec.config = serde_json::json!({ "mode": mode });
    spec.on_error = on_error;
    spec.limits.quarantine_after = 100;
    spec
}

fn sandbox(spec: &PluginSpec) -> Sandbox {
    Sandbox::new(engine().load(spec).unwrap()).unwrap()
}

fn batch(bodies: &[&str]) -> LogBatch {
    let resource = Arc::new(Resource::with_attributes(vec![(
        "service.name".into(),
        "checkout".into(),
    )]));
    let records: Vec<LogRecord> = bodies
        .iter()
        .map(|body| LogRecord {
            severity_number: 9,
            body: body.to_string(),
            resource: resource.clone(),
            ..LogRecord::default()
        })
        .collect();
    LogBatch::from_records(&records)
}

/// The `calls` attribute the hostile plugin stamps: how many batches its instance has seen.
fn instance_calls(batch: &LogBatch) -> i64 {
    match batch
        .record(0)
        .attributes
        .iter()
        .find(|(key, _)| key == "calls")
    {
        Some((_, AttributeValue::Int(calls))) => *calls,
        other => panic!("no calls attribute: {other:?}"),
    }
}

/// Runs the trigger batch, checks the fault, then checks that a normal batch is served by a
/// fresh instance.
fn fault_then_recover(sandbox: &mut Sandbox) -> (sluice::runtime::FilterOutcome, Fault) {
    let warm = sandbox.filter(batch(&["a", "b"]));
    assert!(warm.fault.is_none(), "{:?}", warm.fault);
    assert_eq!(instance_calls(&warm.output), 1);
    let outcome = sandbox.filter(batch(&["a", "trigger", "c"]));
    let fault = outcome.fault.clone().expect("the trigger batch faults");
    let next = sandbox.filter(batch(&["d", "e"]));
    assert!(next.fault.is_none(), "next batch faulted: {:?}", next.fault);
    assert_eq!(next.output.len(), 2);
    assert_eq!(
        instance_calls(&next.output),
        1,
        "the next batch must be served by a fresh instance"
    );
    let stats = sandbox.stats().snapshot();
    assert_eq!(stats.instances_created, 2);
    assert_eq!(stats.faults, 1);
    assert_eq!(stats.calls, 3);
    (outcome, fault)
}

#[test]
fn infinite_loop_is_interrupted_near_its_deadline() {
    let mut spec = hostile("loop", OnError::DeadLetter);
    spec.limits.deadline_ms = 50;
    let mut sandbox = sandbox(&spec);
    sandbox.filter(batch(&["warm"]));
    let started = Instant::now();
    let outcome = sandbox.filter(batch(&["trigger", "x"]));
    let elapsed = started.elapsed();
    assert_eq!(outcome.fault, Some(Fault::Deadline { deadline_ms: 50 }));
    assert!(
        elapsed >= Duration::from_millis(50),
        "interrupted early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1000),
        "interrupted late: {elapsed:?}"
    );
    // dead-letter: the batch is kept whole, unchanged, and nothing continues.
    let dead = outcome.dead_letter.expect("dead-lettered");
    assert_eq!(dead.len(), 2);
    assert_eq!(dead.record(0).body, "trigger");
    assert!(dead.record(0).attributes.is_empty());
    assert!(outcome.output.is_empty());
    let stats = sandbox.stats().snapshot();
    assert_eq!(stats.deadline_hits, 1);
    assert_eq!(stats.batches_dead_lettered, 1);

    let next = sandbox.filter(batch(&["after"]));
    assert!(next.fault.is_none());
    assert_eq!(instance_calls(&next.output), 1);
}

#[test]
fn memory_bomb_is_stopped_at_its_cap() {
    let mut spec = hostile("memory-bomb", OnError::Drop);
    spec.limits.memory_mb = 16;
    spec.limits.deadline_ms = 2000;
    let mut sandbox = sandbox(&spec);
    let (outcome, fault) = fault_then_recover(&mut sandbox);
    assert!(matches!(fault, Fault::MemoryCap(_)), "{fault:?}");
    assert_eq!(outcome.dropped, 3);
    assert!(outcome.output.is_empty() && outcome.dead_letter.is_none());
    let stats = sandbox.stats().snapshot();
    assert_eq!(stats.memory_cap_hits, 1);
    assert_eq!(stats.records_dropped_on_fault, 3);
    assert!(
        stats.memory_high_water_bytes <= 16 << 20,
        "{}",
        stats.memory_high_water_bytes
    );
}

#[test]
fn panic_traps_with_the_plugins_message() {
    let mut sandbox = sandbox(&hostile("panic", OnError::Pass));
    let (outcome, fault) = fault_then_recover(&mut sandbox);
    match &fault {
        Fault::Trap(message) => assert!(message.contains("panics on purpose"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    // pass: the batch continues unchanged.
    assert_eq!(outcome.output.len(), 3);
    assert!(outcome.output.record(1).attributes.is_empty());
    let stats = sandbox.stats().snapshot();
    assert_eq!(stats.traps, 1);
    assert_eq!(stats.batches_passed_on_fault, 1);
}

#[test]
fn oversized_output_is_refused() {
    let mut spec = hostile("oversized-output", OnError::DeadLetter);
    spec.limits.max_output_bytes = 1 << 20;
    spec.limits.deadline_ms = 2000;
    let mut sandbox = sandbox(&spec);
    let (outcome, fault) = fault_then_recover(&mut sandbox);
    assert!(
        matches!(fault, Fault::OutputTooLarge { bound: 1048576, .. }),
        "{fault:?}"
    );
    assert_eq!(outcome.dead_letter.map(|batch| batch.len()), Some(3));
    assert_eq!(sandbox.stats().snapshot().output_bound_hits, 1);
}

#[test]
fn malformed_verdict_is_refused() {
    let mut sandbox = sandbox(&hostile("bad-mask", OnError::Pass));
    let (_, fault) = fault_then_recover(&mut sandbox);
    assert!(
        matches!(&fault, Fault::InvalidOutput(message) if message.contains("keep mask has 1 entries")),
        "{fault:?}"
    );
    assert_eq!(sandbox.stats().snapshot().invalid_outputs, 1);
}

#[test]
fn files_are_out_of_reach_unless_granted() {
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("secret.txt");
    std::fs::write(&secret, "the-secret-content").unwrap();
    let mut spec = hostile("read-file", OnError::Pass);
    spec.config = serde_json::json!({ "mode": "read-file", "path": secret.display().to_string() });
    // What is checked here is the capability, not the time: a loaded CI machine may take longer
    // than the default 10 ms over a first file open.
    spec.limits.deadline_ms = 2000;
    let mut denied = sandbox(&spec);
    let (outcome, fault) = fault_then_recover(&mut denied);
    assert!(
        matches!(&fault, Fault::Trap(message) if message.contains("could not read")),
        "{fault:?}"
    );
    assert!(
        outcome
            .output
            .records()
            .all(|record| !record.body.contains("the-secret-content"))
    );

    // The same plugin, granted the directory, reads it.
    spec.grants.dirs.push(DirGrant {
        host: secret_dir.path().to_path_buf(),
        guest: None,
        writable: false,
    });
    let mut granted = sandbox(&spec);
    let outcome = granted.filter(batch(&["trigger"]));
    assert!(outcome.fault.is_none(), "{:?}", outcome.fault);
    assert_eq!(outcome.output.record(0).body, "the-secret-content");
}

#[test]
fn environment_is_out_of_reach_unless_granted() {
    // SAFETY: set once, before any plugin of this test reads it; no other test touches it.
    unsafe { std::env::set_var("SLUICE_TEST_SECRET_VARIABLE", "the-secret-value") };
    let mut spec = hostile("read-env", OnError::Pass);
    spec.config =
        serde_json::json!({ "mode": "read-env", "variable": "SLUICE_TEST_SECRET_VARIABLE" });
    spec.limits.deadline_ms = 2000;
    let mut denied = sandbox(&spec);
    let (outcome, fault) = fault_then_recover(&mut denied);
    assert!(
        matches!(&fault, Fault::Trap(message) if message.contains("could not read")),
        "{fault:?}"
    );
    assert!(
        outcome
            .output
            .records()
            .all(|record| !record.body.contains("the-secret-value"))
    );

    spec.grants.env.push("SLUICE_TEST_SECRET_VARIABLE".into());
    let mut granted = sandbox(&spec);
    let outcome = granted.filter(batch(&["trigger"]));
    assert!(outcome.fault.is_none(), "{:?}", outcome.fault);
    assert_eq!(outcome.output.record(0).body, "the-secret-value");
}

#[test]
fn repeated_faults_quarantine_the_plugin_and_raise_an_alert() {
    let mut spec = hostile("panic", OnError::DeadLetter);
    spec.limits.quarantine_after = 3;
    spec.limits.quarantine_seconds = 3600;
    let mut sandbox = sandbox(&spec);
    for _ in 0..3 {
        assert!(matches!(
            sandbox.filter(batch(&["trigger"])).fault,
            Some(Fault::Trap(_))
        ));
    }
    assert!(sandbox.is_quarantined());
    let alerts = sandbox.take_alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].name, "PluginQuarantined");
    assert!(
        alerts[0].summary.contains("3 consecutive faults"),
        "{}",
        alerts[0].summary
    );
    // While quarantined the plugin is not called and its policy applies, even to good batches.
    let calls_before = sandbox.stats().snapshot().calls;
    let bypassed = sandbox.filter(batch(&["fine"]));
    assert_eq!(bypassed.fault, Some(Fault::Quarantined));
    assert_eq!(bypassed.dead_letter.map(|batch| batch.len()), Some(1));
    let stats = sandbox.stats().snapshot();
    assert_eq!(stats.calls, calls_before);
    assert!(stats.quarantined);
    assert_eq!(stats.quarantines, 1);
}

#[test]
fn init_errors_refuse_the_load_with_the_plugins_message() {
    let spec = hostile("reject-config", OnError::Pass);
    let error = Sandbox::new(engine().load(&spec).unwrap())
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("refused on purpose"), "{error}");
    assert!(error.contains("hostile"), "{error}");
}

#[test]
fn wrong_sha256_pin_refuses_the_load() {
    let mut spec = hostile("", OnError::Pass);
    spec.sha256 = Some("00".repeat(32));
    let error = engine().load(&spec).err().expect("refused");
    let message = format!("{error:#}");
    assert!(message.contains("sha256 mismatch"), "{message}");
    assert!(
        message.contains(&format!("expected {}", "00".repeat(32))),
        "{message}"
    );

    // The right pin loads.
    let bytes = std::fs::read(&spec.path).unwrap();
    use sha2::Digest;
    spec.sha256 = Some(hex::encode(sha2::Sha256::digest(&bytes)));
    assert_eq!(engine().load(&spec).unwrap().kind, PluginKind::Filter);
}

#[test]
fn instances_are_recycled_after_their_call_budget() {
    let mut spec = hostile("", OnError::Pass);
    spec.limits.max_calls_per_instance = 3;
    let mut sandbox = sandbox(&spec);
    let calls: Vec<i64> = (0..7)
        .map(|_| instance_calls(&sandbox.filter(batch(&["a"])).output))
        .collect();
    assert_eq!(calls, vec![1, 2, 3, 1, 2, 3, 1]);
    let stats = sandbox.stats().snapshot();
    assert_eq!(stats.instances_recycled, 2);
    assert_eq!(stats.faults, 0);
}

#[test]
fn detector_state_survives_recycling_and_an_explicit_restore() {
    let mut spec = PluginSpec::new("counter", plugin_wasm("hostile-detector"));
    spec.limits.max_calls_per_instance = 2;
    let loaded = engine().load(&spec).unwrap();
    assert_eq!(loaded.kind, PluginKind::Detector);
    let mut sandbox = Sandbox::new(loaded).unwrap();
    let mut alerts = Vec::new();
    for _ in 0..5 {
        let outcome = sandbox.observe(&Arc::new(batch(&["a", "b", "c", "d"])));
        assert!(outcome.fault.is_none());
        alerts.extend(outcome.alerts);
    }
    // 20 records across three instances: the count carried over, so alerts at 10 and 20.
    let summaries: Vec<&str> = alerts.iter().map(|alert| alert.summary.as_str()).collect();
    assert_eq!(summaries, vec!["seen 10", "seen 20"]);
    assert!(!alerts[0].fingerprint.is_empty());
    assert_eq!(sandbox.checkpoint_state().unwrap(), 20u64.to_le_bytes());

    // A trap loses the instance; the next one starts from the last restored state.
    sandbox.restore(100u64.to_le_bytes().to_vec()).unwrap();
    let trapped = sandbox.observe(&Arc::new(batch(&["trigger"])));
    assert!(matches!(trapped.fault, Some(Fault::Trap(_))));
    let outcome = sandbox.observe(&Arc::new(batch(&["a"; 10])));
    assert_eq!(outcome.alerts.len(), 1);
    assert_eq!(outcome.alerts[0].summary, "seen 110");
    assert!(sandbox.restore(vec![1, 2, 3]).is_err());
}

#[test]
fn severity_filter_keeps_what_it_should() {
    let mut spec = PluginSpec::new("severity", plugin_wasm("severity-filter"));
    spec.config = serde_json::json!({ "min_severity": "warn" });
    let mut sandbox = sandbox(&spec);
    let records: Vec<LogRecord> = [1u8, 9, 13, 17, 21, 0]
        .iter()
        .map(|&severity| LogRecord {
            severity_number: severity,
            body: format!("s{severity}"),
            ..LogRecord::default()
        })
        .collect();
    let outcome = sandbox.filter(LogBatch::from_records(&records));
    let kept: Vec<String> = outcome.output.records().map(|record| record.body).collect();
    assert_eq!(kept, vec!["s13", "s17", "s21", "s0"]);
    assert_eq!(outcome.dropped, 2);
    let stats = sandbox.stats().snapshot();
    assert_eq!((stats.records_in, stats.records_out), (6, 4));
}

#[test]
fn compiled_components_are_cached_by_content_hash() {
    let cache = tempfile::tempdir().unwrap();
    let options = EngineOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..EngineOptions::default()
    };
    let spec = PluginSpec::new("severity", plugin_wasm("severity-filter"));
    let first = PluginEngine::new(options.clone()).unwrap();
    first.load(&spec).unwrap();
    let entries: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1);
    let name = entries[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let bytes = std::fs::read(&spec.path).unwrap();
    use sha2::Digest;
    assert!(
        name.starts_with(&hex::encode(sha2::Sha256::digest(&bytes))),
        "{name}"
    );
    // A second engine (a restart) loads from the cache and still works.
    let second = PluginEngine::new(options).unwrap();
    let mut sandbox = Sandbox::new(second.load(&spec).unwrap()).unwrap();
    assert!(sandbox.filter(batch(&["x"])).fault.is_none());
}

#[test]
fn a_file_that_is_not_a_plugin_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"not wasm at all").unwrap();
    let error = engine()
        .load(&PluginSpec::new("junk", &path))
        .err()
        .expect("refused");
    let message = format!("{error:#}");
    assert!(message.contains("loading plugin `junk`"), "{message}");
}
