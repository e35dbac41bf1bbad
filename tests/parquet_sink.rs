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

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde_json::{Value, json};
use sluice::model::{AttributeValue, Batch, LogBatch, LogRecord, MetricBatch, Resource, SpanBatch};
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

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

fn otlp_resource(service: &str) -> Option<OtlpResource> {
    Some(OtlpResource {
        attributes: vec![
            string_kv("service.name", service),
            kv("process.pid", any_value::Value::IntValue(4242)),
        ],
        ..OtlpResource::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "meter.payments".into(),
        version: "0.9".into(),
        ..InstrumentationScope::default()
    })
}

/// One point of each kind in hour 10 and the same again in hour 11.
fn metric_batch() -> MetricBatch {
    let mut metrics = Vec::new();
    for (hour, time) in [(10, HOUR_10 + 1_500), (11, HOUR_10 + HOUR + 2_500)] {
        let time = time as u64;
        let start = time - 60_000_000_000;
        let attributes = vec![
            string_kv("route", "/pay"),
            kv("hour", any_value::Value::IntValue(hour)),
            kv(
                "tags",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(any_value::Value::StringValue("a".into())),
                    }],
                }),
            ),
        ];
        let number = |value| NumberDataPoint {
            attributes: attributes.clone(),
            start_time_unix_nano: start,
            time_unix_nano: time,
            value: Some(value),
            ..NumberDataPoint::default()
        };
        metrics.push(Metric {
            name: "queue.depth".into(),
            unit: "{item}".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![number(number_data_point::Value::AsInt(7))],
            })),
            ..Metric::default()
        });
        metrics.push(Metric {
            name: "requests".into(),
            description: "requests served".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![number(number_data_point::Value::AsDouble(12.5))],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Metric::default()
        });
        metrics.push(Metric {
            name: "latency".into(),
            unit: "ms".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: attributes.clone(),
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count: 6,
                    sum: Some(42.0),
                    bucket_counts: vec![1, 2, 3],
                    explicit_bounds: vec![5.0, 10.0],
                    min: Some(0.5),
                    max: Some(20.0),
                    ..HistogramDataPoint::default()
                }],
                aggregation_temporality: AggregationTemporality::Delta as i32,
            })),
            ..Metric::default()
        });
        metrics.push(Metric {
            name: "size".into(),
            data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    attributes: attributes.clone(),
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count: 5,
                    sum: Some(30.0),
                    scale: 2,
                    zero_count: 1,
                    zero_threshold: 0.001,
                    positive: Some(Buckets {
                        offset: -1,
                        bucket_counts: vec![2, 2],
                    }),
                    negative: None,
                    ..ExponentialHistogramDataPoint::default()
                }],
                aggregation_temporality: AggregationTemporality::Delta as i32,
            })),
            ..Metric::default()
        });
        metrics.push(Metric {
            name: "gc.pause".into(),
            data: Some(metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    attributes: attributes.clone(),
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count: 10,
                    sum: 3.5,
                    quantile_values: vec![
                        ValueAtQuantile {
                            quantile: 0.5,
                            value: 0.25,
                        },
                        ValueAtQuantile {
                            quantile: 0.99,
                            value: 1.5,
                        },
                    ],
                    ..SummaryDataPoint::default()
                }],
            })),
            ..Metric::default()
        });
    }
    MetricBatch {
        resource_metrics: vec![ResourceMetrics {
            resource: otlp_resource("payments"),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics,
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    }
}

/// Spans `count`, half starting in hour 10 and half in hour 11, each with an event and every
/// third with a link.
fn span_batch(count: u64) -> SpanBatch {
    let spans = (0..count)
        .map(|index| {
            let start = HOUR_10 as u64 + (index % 2) * HOUR as u64 + index * 1_000 + 1;
            let mut trace_id = vec![0x11; 16];
            trace_id[15] = index as u8;
            Span {
                trace_id: trace_id.clone(),
                span_id: vec![0x22, 0, 0, 0, 0, 0, 0, index as u8 + 1],
                parent_span_id: if index == 0 {
                    vec![]
                } else {
                    vec![0x22, 0, 0, 0, 0, 0, 0, 1]
                },
                name: format!("GET /item/{index}"),
                kind: SpanKind::Server as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 1_234_567,
                attributes: vec![kv(
                    "http.status_code",
                    any_value::Value::IntValue(200 + index as i64),
                )],
                events: vec![Event {
                    time_unix_nano: start + 10,
                    name: "cache miss".into(),
                    attributes: vec![kv("hit", any_value::Value::BoolValue(false))],
                    ..Event::default()
                }],
                links: if index % 3 == 0 {
                    vec![Link {
                        trace_id: vec![0x33; 16],
                        span_id: vec![0x44; 8],
                        attributes: vec![string_kv("link.kind", "follows")],
                        ..Link::default()
                    }]
                } else {
                    vec![]
                },
                status: Some(Status {
                    code: if index == 1 {
                        StatusCode::Error
                    } else {
                        StatusCode::Ok
                    } as i32,
                    message: if index == 1 {
                        "boom".into()
                    } else {
                        String::new()
                    },
                }),
                ..Span::default()
            }
        })
        .collect();
    SpanBatch {
        resource_spans: vec![ResourceSpans {
            resource: otlp_resource("frontend"),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_spans_round_trip_with_every_point_kind() {
    let root = tempfile::tempdir().expect("temp dir");
    let sink = start_sink(&sink_config(root.path(), "")).await;
    sink.send(Batch::Metrics(metric_batch())).await;
    sink.send(Batch::Spans(span_batch(40))).await;
    let stats = sink.close().await;
    assert_eq!(stats.records_written.load(Ordering::Relaxed), 10 + 40);
    assert_eq!(stats.items_dropped.load(Ordering::Relaxed), 0);

    let read = read_archive(
        root.path(),
        json!({
            "metrics": "SELECT metric_name, metric_type, hour, value_int, value_double, \
                        list_sum(bucket_counts) AS bucket_total, explicit_bounds[2] AS second_bound, \
                        exponential_positive_bucket_counts AS positive, quantiles[2].value AS p99, \
                        attributes['hour'] AS hour_attribute, attribute_types['tags'] AS tags_type, \
                        epoch_us(time) * 1000 + time_extra_nanos AS time_nanos \
                        FROM {metrics} ORDER BY hour, metric_name",
            "spans": "SELECT name, hex(trace_id) AS trace_id, hex(parent_span_id) AS parent, \
                      duration_nanos, events[1].name AS event, events[1].attribute_types['hit'] AS hit_type, \
                      len(links) AS links, hex(links[1].span_id) AS link_span, status_code, \
                      CAST(attributes['http.status_code'] AS INTEGER) AS status \
                      FROM {traces} ORDER BY name",
        }),
    );
    let metrics = &read["signals"]["metrics"];
    let expected = counts(&[
        ("date=2026-11-23/hour=10", 5),
        ("date=2026-11-23/hour=11", 5),
    ]);
    assert_eq!(metrics["pyarrow_counts"], expected);
    assert_eq!(metrics["duckdb_counts"], expected);
    let rows = metrics["rows"].as_array().expect("rows");
    let row = |name: &str, hour: i64| {
        rows.iter()
            .find(|row| row["metric_name"] == json!(name) && row["hour"] == json!(hour))
            .unwrap_or_else(|| panic!("no {name} in hour {hour}"))
    };
    let histogram = row("latency", 10);
    assert_eq!(histogram["metric_type"], json!("histogram"));
    assert_eq!(histogram["aggregation_temporality"], json!("delta"));
    assert_eq!(histogram["count"], json!(6));
    assert_eq!(histogram["sum"], json!(42.0));
    assert_eq!(histogram["min"], json!(0.5));
    assert_eq!(histogram["max"], json!(20.0));
    assert_eq!(histogram["bucket_counts"], json!([1, 2, 3]));
    assert_eq!(histogram["explicit_bounds"], json!([5.0, 10.0]));
    assert_eq!(histogram["value_double"], Value::Null);
    assert_eq!(histogram["service_name"], json!("payments"));
    assert_eq!(histogram["scope_name"], json!("meter.payments"));
    assert_eq!(histogram["metric_unit"], json!("ms"));
    assert_eq!(
        histogram["attributes"],
        json!({"route": "/pay", "hour": "10", "tags": "[\"a\"]"})
    );
    assert_eq!(
        histogram["attribute_types"],
        json!({"hour": "int", "tags": "array"})
    );
    assert_eq!(
        histogram["time"].as_i64().unwrap() * 1000
            + histogram["time_extra_nanos"].as_i64().unwrap(),
        HOUR_10 + 1_500
    );
    let sum = row("requests", 11);
    assert_eq!(sum["metric_type"], json!("sum"));
    assert_eq!(sum["is_monotonic"], json!(true));
    assert_eq!(sum["aggregation_temporality"], json!("cumulative"));
    assert_eq!(sum["value_double"], json!(12.5));
    assert_eq!(sum["metric_description"], json!("requests served"));
    let gauge = row("queue.depth", 10);
    assert_eq!(gauge["value_int"], json!(7));
    assert_eq!(gauge["is_monotonic"], Value::Null);
    let exponential = row("size", 11);
    assert_eq!(exponential["exponential_scale"], json!(2));
    assert_eq!(exponential["exponential_zero_count"], json!(1));
    assert_eq!(exponential["exponential_zero_threshold"], json!(0.001));
    assert_eq!(exponential["exponential_positive_offset"], json!(-1));
    assert_eq!(
        exponential["exponential_positive_bucket_counts"],
        json!([2, 2])
    );
    assert_eq!(exponential["exponential_negative_bucket_counts"], json!([]));
    let summary = row("gc.pause", 10);
    assert_eq!(
        summary["quantiles"],
        json!([{"quantile": 0.5, "value": 0.25}, {"quantile": 0.99, "value": 1.5}])
    );
    assert_eq!(summary["count"], json!(10));

    let duck_metrics = read["queries"]["metrics"].as_array().expect("metric rows");
    assert_eq!(duck_metrics.len(), 10);
    let duck_latency = duck_metrics
        .iter()
        .find(|row| row["metric_name"] == json!("latency") && row["hour"] == json!(11))
        .expect("latency in hour 11");
    assert_eq!(duck_latency["bucket_total"], json!(6));
    assert_eq!(duck_latency["second_bound"], json!(10.0));
    assert_eq!(duck_latency["hour_attribute"], json!("11"));
    assert_eq!(duck_latency["tags_type"], json!("array"));
    assert_eq!(duck_latency["time_nanos"], json!(HOUR_10 + HOUR + 2_500));
    let duck_summary = duck_metrics
        .iter()
        .find(|row| row["metric_name"] == json!("gc.pause"))
        .expect("summary");
    assert_eq!(duck_summary["p99"], json!(1.5));

    let traces = &read["signals"]["traces"];
    let expected = counts(&[
        ("date=2026-11-23/hour=10", 20),
        ("date=2026-11-23/hour=11", 20),
    ]);
    assert_eq!(traces["pyarrow_counts"], expected);
    assert_eq!(traces["duckdb_counts"], expected);
    let spans = traces["rows"].as_array().expect("span rows");
    let span = |index: u64| {
        spans
            .iter()
            .find(|row| row["name"] == json!(format!("GET /item/{index}")))
            .unwrap_or_else(|| panic!("no span {index}"))
    };
    let root_span = span(0);
    assert_eq!(root_span["parent_span_id"], Value::Null);
    assert_eq!(
        root_span["trace_id"],
        json!(format!("{}00", "11".repeat(15)))
    );
    assert_eq!(root_span["span_id"], json!("2200000000000001"));
    assert_eq!(root_span["kind"], json!("server"));
    assert_eq!(root_span["status_code"], json!("ok"));
    assert_eq!(root_span["duration_nanos"], json!(1_234_567));
    assert_eq!(
        root_span["start_time"].as_i64().unwrap() * 1000
            + root_span["start_time_extra_nanos"].as_i64().unwrap(),
        HOUR_10 + 1
    );
    assert_eq!(
        root_span["links"],
        json!([{
            "trace_id": "33".repeat(16),
            "span_id": "44".repeat(8),
            "trace_state": "",
            "attributes": {"link.kind": "follows"},
            "attribute_types": {},
        }])
    );
    let event = &root_span["events"][0];
    assert_eq!(event["name"], json!("cache miss"));
    assert_eq!(event["attributes"], json!({"hit": "false"}));
    assert_eq!(event["attribute_types"], json!({"hit": "bool"}));
    assert_eq!(
        event["time"].as_i64().unwrap() * 1000 + event["time_extra_nanos"].as_i64().unwrap(),
        HOUR_10 + 11
    );
    let failed = span(1);
    assert_eq!(failed["status_code"], json!("error"));
    assert_eq!(failed["status_message"], json!("boom"));
    assert_eq!(failed["parent_span_id"], json!("2200000000000001"));
    assert_eq!(failed["links"], json!([]));
    assert_eq!(failed["hour"], json!(11));

    let duck_spans = read["queries"]["spans"].as_array().expect("span rows");
    assert_eq!(duck_spans.len(), 40);
    let duck_root = duck_spans
        .iter()
        .find(|row| row["name"] == json!("GET /item/0"))
        .expect("root span");
    assert_eq!(duck_root["parent"], Value::Null);
    assert_eq!(duck_root["event"], json!("cache miss"));
    assert_eq!(duck_root["hit_type"], json!("bool"));
    assert_eq!(duck_root["links"], json!(1));
    assert_eq!(duck_root["link_span"], json!("44".repeat(8).to_uppercase()));
    assert_eq!(duck_root["status"], json!(200));
    assert_eq!(duck_root["duration_nanos"], json!(1_234_567));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_roll_by_size_and_every_row_lands_once() {
    let root = tempfile::tempdir().expect("temp dir");
    let config = sink_config(
        root.path(),
        "max_file_bytes = 16384\nrow_group_rows = 400\nmax_file_age = \"1h\"",
    );
    let sink = start_sink(&config).await;
    let resource = checkout_resource();
    let mut sent = 0;
    for batch in 0..10 {
        let records: Vec<LogRecord> = (0..400)
            .map(|i| {
                let index = batch * 400 + i;
                LogRecord {
                    timestamp: HOUR_10 + index * 1_000_000,
                    // Distinct, poorly compressible bodies, so files fill up.
                    body: format!(
                        "request {index} took {} µs",
                        index.wrapping_mul(2_654_435_761) % 1_000_003
                    ),
                    trace_id: (index as u128)
                        .wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
                        .to_be_bytes(),
                    resource: resource.clone(),
                    ..LogRecord::default()
                }
            })
            .collect();
        sent += records.len();
        sink.send(Batch::Logs(LogBatch::from_records(&records)))
            .await;
    }
    let stats = sink.close().await;
    assert_eq!(stats.records_written.load(Ordering::Relaxed), sent as u64);

    let files = files_under(root.path());
    assert!(
        files.iter().all(|f| !f.to_string_lossy().contains(".tmp")),
        "{files:?}"
    );
    assert!(files.len() >= 3, "expected several files, got {files:?}");
    for file in &files {
        assert!(
            file.starts_with("signal=logs/date=2026-11-23/hour=10"),
            "{file:?}"
        );
        let size = std::fs::metadata(root.path().join(file)).unwrap().len();
        // A file closes once it reaches the limit, so it passes it by at most one batch.
        assert!(size < 16384 * 4, "{file:?} is {size} bytes");
    }
    let read = read_archive(
        root.path(),
        json!({"distinct": "SELECT count(DISTINCT body) AS bodies, count(*) AS rows FROM {logs}"}),
    );
    let expected = counts(&[("date=2026-11-23/hour=10", sent as u64)]);
    assert_eq!(read["signals"]["logs"]["pyarrow_counts"], expected);
    assert_eq!(read["signals"]["logs"]["duckdb_counts"], expected);
    assert_eq!(
        read["queries"]["distinct"],
        json!([{"bodies": sent, "rows": sent}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_file_completes_at_its_age_without_more_data_or_close() {
    let root = tempfile::tempdir().expect("temp dir");
    let sink = start_sink(&sink_config(root.path(), "max_file_age = \"300ms\"")).await;
    let resource = checkout_resource();
    let sent_at = Instant::now();
    sink.send(Batch::Logs(LogBatch::from_records(&[log_record(
        2, &resource,
    )])))
    .await;

    let complete = |root: &Path| {
        files_under(root)
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "parquet"))
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let first = loop {
        let found = complete(root.path());
        // The file is renamed into view, then its directory synced, then its rows counted.
        if !found.is_empty() && stats_written(&sink.stats) == 1 {
            break found;
        }
        assert!(Instant::now() < deadline, "no file completed within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        sent_at.elapsed() >= Duration::from_millis(300),
        "the file completed before its age"
    );
    assert_eq!(first.len(), 1);
    // Still running: later records go to a new file.
    sink.send(Batch::Logs(LogBatch::from_records(&[log_record(
        4, &resource,
    )])))
    .await;
    let stats = sink.close().await;
    assert_eq!(stats.records_written.load(Ordering::Relaxed), 2);
    assert_eq!(complete(root.path()).len(), 2);
    let read = read_archive(root.path(), json!({}));
    assert_eq!(
        read["signals"]["logs"]["duckdb_counts"],
        counts(&[("date=2026-11-23/hour=10", 2)])
    );
}

fn stats_written(stats: &SinkStats) -> u64 {
    stats.records_written.load(Ordering::Relaxed)
}

#[tokio::test]
async fn bad_settings_refuse_the_start_with_the_field_named() {
    let root = tempfile::tempdir().expect("temp dir");
    let config = sink_config(root.path(), "compression_level = 0\nrow_group_rows = 0");
    let (_items, receiver) = mpsc::channel(1);
    let error = sinks::start(
        &config,
        SinkContext {
            name: "archive".into(),
            items: receiver,
            stats: Arc::default(),
        },
    )
    .await
    .expect_err("bad settings refuse the start");
    let message = error.to_string();
    assert!(
        message.contains("sinks.archive.compression_level"),
        "{message}"
    );
    assert!(
        message.contains("sinks.archive.row_group_rows"),
        "{message}"
    );
    let typo = format!(
        "type = \"parquet\"\npath = \"{}\"\nmax_file_size = 1",
        root.path().display()
    );
    assert!(toml::from_str::<SinkConfig>(&typo).is_err());
    let bad_age = format!(
        "type = \"parquet\"\npath = \"{}\"\nmax_file_age = \"soon\"",
        root.path().display()
    );
    let error = toml::from_str::<SinkConfig>(&bad_age).expect_err("bad duration");
    assert!(error.to_string().contains("soon"), "{error}");
}

/// Spark reads every signal's files (slow: about 20 s for the JVM). Run it with
/// `SLUICE_SPARK_PYTHON=/path/to/python-with-pyspark cargo test -p sluice --test parquet_sink -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pyspark and Java 17: set SLUICE_SPARK_PYTHON"]
async fn spark_reads_every_signal() {
    let python = std::env::var_os("SLUICE_SPARK_PYTHON").expect("SLUICE_SPARK_PYTHON is set");
    let root = tempfile::tempdir().expect("temp dir");
    let sink = start_sink(&sink_config(root.path(), "")).await;
    let resource = checkout_resource();
    let records: Vec<LogRecord> = (0..100).map(|i| log_record(i, &resource)).collect();
    sink.send(Batch::Logs(LogBatch::from_records(&records)))
        .await;
    sink.send(Batch::Metrics(metric_batch())).await;
    sink.send(Batch::Spans(span_batch(10))).await;
    sink.close().await;
    let output = Command::new(python)
        .arg(support::workspace_root().join("tests/python/spark_read_archive.py"))
        .arg(root.path())
        .output()
        .expect("python starts");
    assert!(
        output.status.success(),
        "spark failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let halves = |n| {
        counts(&[
            ("date=2026-11-23/hour=10", n),
            ("date=2026-11-23/hour=11", n),
        ])
    };
    assert_eq!(read["logs"], halves(50));
    assert_eq!(read["metrics"], halves(5));
    assert_eq!(read["traces"], halves(5));
    assert_eq!(read["checks"]["logs"]["max_index"], json!(99));
    assert_eq!(read["checks"]["logs"]["traces"], json!(100));
    assert_eq!(read["checks"]["traces"]["events"], json!(10));
    assert_eq!(read["checks"]["traces"]["link_kind"], json!("follows"));
    assert_eq!(read["checks"]["metrics"]["bucket_total"], json!(12));
    assert_eq!(read["checks"]["metrics"]["p99"], json!(1.5));
}
