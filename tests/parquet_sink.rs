//! The Parquet archive sink, driven at the library level and read back the way data teams read
//! it: pyarrow's dataset API with Hive partitioning and DuckDB's `read_parquet`, both through
//! `tests/python/read_archive.py`.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice::model::{AttributeValue, Batch, LogBatch, LogRecord, Resource};
use sluice::sinks::{self, SinkConfig, SinkContext, SinkItem, SinkStats};
use tokio::sync::mpsc;

/// 2026-11-23T10:00:00Z in Unix nanoseconds.
const HOUR_10: i64 = 1_795_428_000_000_000_000;
/// One hour in nanoseconds.
const HOUR: i64 = 3_600_000_000_000;

fn sink_config(root: &Path, extra: &str) -> SinkConfig {
    let text = format!(
        "type = \"parquet\"\npath = {}\n{extra}",
        toml::Value::String(root.display().to_string())
    );
    toml::from_str(&text).expect("sink config parses")
}

/// A running sink and the sending end of its queue.
struct RunningSink {
    items: mpsc::Sender<SinkItem>,
    stats: Arc<SinkStats>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_sink(config: &SinkConfig) -> RunningSink {
    let (items, receiver) = mpsc::channel(16);
    let stats = Arc::new(SinkStats::default());
    let task = sinks::start(
        config,
        SinkContext {
            name: "archive".into(),
            items: receiver,
            stats: stats.clone(),
        },
    )
    .await
    .expect("the sink starts");
    RunningSink { items, stats, task }
}

impl RunningSink {
    async fn send(&self, batch: Batch) {
        self.items
            .send(SinkItem::Batch(Arc::new(batch)))
            .await
            .expect("the sink is running");
    }

    /// Closes the queue and waits until every file is complete.
    async fn close(self) -> Arc<SinkStats> {
        drop(self.items);
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the sink finishes within 10 s")
            .expect("the sink task does not panic");
        self.stats
    }
}

/// What pyarrow and DuckDB read from the archive, plus the rows of each DuckDB query.
fn read_archive(root: &Path, queries: Value) -> Value {
    let script = support::workspace_root().join("tests/python/read_archive.py");
    let mut child = Command::new(support::python())
        .arg(script)
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(json!({ "queries": queries }).to_string().as_bytes())
            .expect("queries written");
    }
    let output = child.wait_with_output().expect("python runs");
    assert!(
        output.status.success(),
        "read_archive.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("read_archive.py prints JSON")
}

/// Every file under `root`, relative to it.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).expect("readable directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    found.sort();
    found
}

fn counts(expected: &[(&str, u64)]) -> Value {
    Value::Object(
        expected
            .iter()
            .map(|(partition, count)| (partition.to_string(), json!(count)))
            .collect(),
    )
}

fn checkout_resource() -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![
            ("service.name".into(), AttributeValue::from("checkout")),
            ("host.cpus".into(), AttributeValue::Int(8)),
        ],
        scope_name: "checkout.http".into(),
        scope_version: "1.2.0".into(),
    })
}

/// Log `index`: in hour 10 for even indices, hour 11 for odd ones; every fifth has no event
/// time and is placed by its observed time.
fn log_record(index: i64, resource: &Arc<Resource>) -> LogRecord {
    let hour = if index % 2 == 0 {
        HOUR_10
    } else {
        HOUR_10 + HOUR
    };
    let time = hour + index * 1_000_003 + 7;
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&(index as u64 + 1).to_be_bytes());
    trace_id[8] = 0xab;
    LogRecord {
        timestamp: if index % 5 == 0 { 0 } else { time },
        observed_timestamp: time + 500,
        severity_number: (index % 24 + 1) as u8,
        severity_text: "INFO".into(),
        body: format!("log {index}: payment accepted ✓"),
        trace_id,
        span_id: if index % 3 == 0 {
            [0; 8]
        } else {
            [1, 2, 3, 4, 5, 6, 7, index as u8]
        },
        attributes: vec![
            ("index".into(), AttributeValue::Int(index)),
            ("ratio".into(), AttributeValue::Double(index as f64 / 4.0)),
            ("ok".into(), AttributeValue::Bool(index % 2 == 0)),
            ("route".into(), AttributeValue::from("/pay")),
            (
                "raw".into(),
                AttributeValue::Bytes(vec![0xde, 0xad, index as u8]),
            ),
        ],
        resource: resource.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_round_trip_through_pyarrow_and_duckdb_in_hour_partitions() {
    let root = tempfile::tempdir().expect("temp dir");
    let sink = start_sink(&sink_config(root.path(), "")).await;
    let resource = checkout_resource();
    let records: Vec<LogRecord> = (0..500).map(|i| log_record(i, &resource)).collect();
    for chunk in records.chunks(128) {
        sink.send(Batch::Logs(LogBatch::from_records(chunk))).await;
    }
    let stats = sink.close().await;
    assert_eq!(stats.records_written.load(Ordering::Relaxed), 500);
    assert_eq!(stats.items_dropped.load(Ordering::Relaxed), 0);

    let files = files_under(root.path());
    assert!(
        files.iter().all(|f| !f.to_string_lossy().ends_with(".tmp")),
        "temporary files left: {files:?}"
    );
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            name.starts_with("part-") && name.ends_with(".parquet"),
            "{name}"
        );
    }

    let read = read_archive(
        root.path(),
        json!({
            "logs": "SELECT body, hex(trace_id) AS trace_id, hex(span_id) AS span_id, \
                     epoch_us(time) AS time_us, time_extra_nanos, epoch_us(observed_time) AS observed_us, \
                     observed_time_extra_nanos, severity_number, service_name, \
                     attributes['index'] AS index_text, attribute_types['index'] AS index_type, \
                     CAST(attributes['ratio'] AS DOUBLE) AS ratio, \
                     resource_attributes['host.cpus'] AS cpus, scope_name, scope_version, \
                     CAST(date AS VARCHAR) AS date, hour \
                     FROM {logs}",
        }),
    );
    let logs = &read["signals"]["logs"];
    let expected = counts(&[
        ("date=2026-11-23/hour=10", 250),
        ("date=2026-11-23/hour=11", 250),
    ]);
    assert_eq!(logs["pyarrow_counts"], expected);
    assert_eq!(logs["duckdb_counts"], expected);

    // pyarrow: every field of every record comes back.
    let rows = logs["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 500);
    let by_body: BTreeMap<&str, &Value> = rows
        .iter()
        .map(|row| (row["body"].as_str().expect("body"), row))
        .collect();
    for record in &records {
        let row = by_body[record.body.as_str()];
        let nanos = |column: &str| {
            row[column].as_i64().map(|micros| {
                micros * 1000
                    + row[format!("{column}_extra_nanos")]
                        .as_i64()
                        .expect("extra")
            })
        };
        assert_eq!(
            nanos("time"),
            (record.timestamp != 0).then_some(record.timestamp)
        );
        assert_eq!(nanos("observed_time"), Some(record.observed_timestamp));
        assert_eq!(row["severity_number"], json!(record.severity_number));
        assert_eq!(row["severity_text"], json!("INFO"));
        assert_eq!(row["trace_id"], json!(hex(&record.trace_id)));
        let span_id = (record.span_id != [0; 8]).then(|| hex(&record.span_id));
        assert_eq!(row["span_id"], json!(span_id));
        assert_eq!(row["service_name"], json!("checkout"));
        assert_eq!(row["scope_name"], json!("checkout.http"));
        assert_eq!(row["scope_version"], json!("1.2.0"));
        assert_eq!(
            row["resource_attributes"],
            json!({"service.name": "checkout", "host.cpus": "8"})
        );
        assert_eq!(row["resource_attribute_types"], json!({"host.cpus": "int"}));
        let index = record.attributes[0].1.clone();
        let AttributeValue::Int(index) = index else {
            unreachable!()
        };
        assert_eq!(
            row["attributes"],
            json!({
                "index": index.to_string(),
                "ratio": (index as f64 / 4.0).to_string(),
                "ok": (index % 2 == 0).to_string(),
                "route": "/pay",
                "raw": hex(&[0xde, 0xad, index as u8]),
            })
        );
        assert_eq!(
            row["attribute_types"],
            json!({"index": "int", "ratio": "double", "ok": "bool", "raw": "bytes"})
        );
        let hour = if index % 2 == 0 { 10 } else { 11 };
        assert_eq!(row["hour"], json!(hour), "record {index}");
    }

    // DuckDB: the same values through SQL, with typed attributes cast back.
    let duck = read["queries"]["logs"].as_array().expect("duckdb rows");
    assert_eq!(duck.len(), 500);
    for row in duck {
        let body = row["body"].as_str().expect("body");
        let index: i64 = body[4..body.find(':').unwrap()].parse().unwrap();
        let record = &records[index as usize];
        assert_eq!(row["trace_id"], json!(hex(&record.trace_id).to_uppercase()));
        let time_us = row["time_us"].as_i64();
        let time = time_us.map(|us| us * 1000 + row["time_extra_nanos"].as_i64().unwrap());
        assert_eq!(time, (record.timestamp != 0).then_some(record.timestamp));
        assert_eq!(
            row["observed_us"].as_i64().unwrap() * 1000
                + row["observed_time_extra_nanos"].as_i64().unwrap(),
            record.observed_timestamp
        );
        assert_eq!(row["index_text"], json!(index.to_string()));
        assert_eq!(row["index_type"], json!("int"));
        assert_eq!(row["ratio"], json!(index as f64 / 4.0));
        assert_eq!(row["cpus"], json!("8"));
        assert_eq!(row["service_name"], json!("checkout"));
        assert_eq!(row["date"], json!("2026-11-23"));
        assert_eq!(row["hour"], json!(if index % 2 == 0 { 10 } else { 11 }));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[allow(dead_code)]
fn unused(_: Instant) {}
