//! `sluice replay` the way a user runs it: a recorded file (the benches' labelled incident set,
//! OTLP/JSON lines as the Collector's file exporter writes them) sent to a real `sluice run` over
//! OTLP/HTTP, and to a stand-in gateway that answers 429 and 503 before it accepts.

mod support;

#[path = "../benches/src/incidents.rs"]
#[allow(dead_code)]
mod incidents;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;
use serde_json::Value;
use support::gateway::{GatewayProcess, Ports, read_json_lines, sluice_command};

/// A small set (15 minutes of the shop, every kind of incident scaled down) in `dir`, with two
/// malformed lines put in at lines 3 and 6. Returns the file and its counts.
fn recorded_file(dir: &Path) -> (std::path::PathBuf, incidents::Counts) {
    let mut text = Vec::new();
    let (_, counts) = incidents::generate(
        &incidents::Options {
            seed: 3,
            hours: 0.25,
            ..incidents::Options::default()
        },
        &mut text,
    )
    .expect("the set is generated");
    let mut lines: Vec<&[u8]> = text.split(|&byte| byte == b'\n').collect();
    lines.insert(2, b"this line is not JSON");
    lines.insert(5, br#"{"resourceThings":[]}"#);
    let path = dir.join("recorded.jsonl");
    std::fs::write(&path, lines.join(&b'\n')).expect("file written");
    (path, counts)
}

fn replay(file: &Path, endpoint: &str, extra: &[&str]) -> Output {
    sluice_command()
        .arg("replay")
        .arg(file)
        .arg("--endpoint")
        .arg(endpoint)
        .args(extra)
        .output()
        .expect("sluice replay runs")
}

/// The numbers of the summary line, by what they count.
fn summary(stderr: &str) -> BTreeMap<String, f64> {
    let line = stderr
        .lines()
        .find(|line| line.starts_with("replay: sent "))
        .unwrap_or_else(|| panic!("no summary:\n{stderr}"));
    let mut numbers = BTreeMap::new();
    let words: Vec<&str> = line
        .split([' ', ',', '(', ')'])
        .filter(|word| !word.is_empty())
        .collect();
    for (index, word) in words.iter().enumerate() {
        if let Ok(number) = word.parse::<f64>() {
            // "sent N records", "retried N", "failed N records", "malformed lines N",
            // "elapsed N s".
            let key = match (words.get(index.wrapping_sub(1)), words.get(index + 1)) {
                (Some(&"sent"), _) => "sent",
                (Some(&"retried"), _) => "retried",
                (Some(&"failed"), _) => "failed",
                (Some(&"lines"), _) => "malformed",
                (Some(&"elapsed"), _) => "elapsed",
                (_, Some(&"requests")) if words[index - 1] == "in" => "requests",
                _ => continue,
            };
            numbers.insert(key.to_owned(), number);
        }
    }
    numbers
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_nanos() as i64
}

fn nanos(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("an RFC 3339 time")
        .timestamp_nanos_opt()
        .expect("in range")
}

/// Every event time of the file, per signal (`logs`, `metrics`, `traces`), sorted.
fn file_times(file: &Path) -> BTreeMap<&'static str, Vec<i64>> {
    let mut times: BTreeMap<&'static str, Vec<i64>> = BTreeMap::new();
    let text = std::fs::read_to_string(file).expect("file read");
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if value.get("resourceLogs").is_some() {
            let request: ExportLogsServiceRequest = serde_json::from_value(value).unwrap();
            for resource in request.resource_logs {
                for scope in resource.scope_logs {
                    times.entry("logs").or_default().extend(
                        scope
                            .log_records
                            .iter()
                            .map(|record| record.time_unix_nano as i64),
                    );
                }
            }
        } else if value.get("resourceMetrics").is_some() {
            let request: ExportMetricsServiceRequest = serde_json::from_value(value).unwrap();
            times
                .entry("metrics")
                .or_default()
                .extend(metric_times(&request));
        } else if value.get("resourceSpans").is_some() {
            let request: ExportTraceServiceRequest = serde_json::from_value(value).unwrap();
            for resource in request.resource_spans {
                for scope in resource.scope_spans {
                    times.entry("traces").or_default().extend(
                        scope
                            .spans
                            .iter()
                            .flat_map(|span| [span.start_time_unix_nano, span.end_time_unix_nano])
                            .map(|time| time as i64),
                    );
                }
            }
        }
    }
    times.values_mut().for_each(|times| times.sort_unstable());
    times
}

fn metric_times(request: &ExportMetricsServiceRequest) -> Vec<i64> {
    let mut times = Vec::new();
    for resource in &request.resource_metrics {
        for scope in &resource.scope_metrics {
            for metric in &scope.metrics {
                if let Some(Data::Gauge(gauge)) = &metric.data {
                    times.extend(
                        gauge
                            .data_points
                            .iter()
                            .map(|point| point.time_unix_nano as i64),
                    );
                }
            }
        }
    }
    times
}

/// Every event time the gateway's file sink wrote, per signal, sorted.
fn sink_times(lines: &[Value]) -> BTreeMap<&'static str, Vec<i64>> {
    let mut times: BTreeMap<&'static str, Vec<i64>> = BTreeMap::new();
    for line in lines {
        match line["signal"].as_str() {
            Some("logs") => times
                .entry("logs")
                .or_default()
                .push(nanos(line["timestamp"].as_str().expect("a timestamp"))),
            Some("metrics") => {
                let mut request = line.clone();
                let resource = request["resourceMetrics"].take();
                let request: ExportMetricsServiceRequest =
                    serde_json::from_value(serde_json::json!({ "resourceMetrics": [resource] }))
                        .expect("a metrics line is OTLP/JSON");
                times
                    .entry("metrics")
                    .or_default()
                    .extend(metric_times(&request));
            }
            Some("traces") => {
                let mut request = line.clone();
                let resource = request["resourceSpans"].take();
                let request: ExportTraceServiceRequest =
                    serde_json::from_value(serde_json::json!({ "resourceSpans": [resource] }))
                        .expect("a traces line is OTLP/JSON");
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        times.entry("traces").or_default().extend(
                            scope
                                .spans
                                .iter()
                                .flat_map(|span| {
                                    [span.start_time_unix_nano, span.end_time_unix_nano]
                                })
                                .map(|time| time as i64),
                        );
                    }
                }
            }
            other => panic!("unexpected line {other:?}: {line}"),
        }
    }
    times.values_mut().for_each(|times| times.sort_unstable());
    times
}

#[test]
fn a_recorded_file_arrives_whole_restamped_to_now_and_paced() {
    let dir = tempfile::tempdir().unwrap();
    let (file, counts) = recorded_file(dir.path());
    let out = dir.path().join("out.jsonl");
    let (gateway, http) = GatewayProcess::start(dir.path(), |ports: &mut Ports| {
        let http = SocketAddr::from(([127, 0, 0, 1], ports.tcp()));
        let config = format!(
            r#"
[receivers.otlp]
type = "otlp"
http = "{http}"

[pipelines.all]
receivers = ["otlp"]
signals = ["logs", "metrics", "traces"]
sinks = ["out"]

[sinks.out]
type = "file"
path = {out:?}
"#,
            out = out.display().to_string(),
        );
        (config, http)
    });

    // Paced at 2500 records/s: the file's 4 600-odd records take about two seconds.
    let rate = 2500.0;
    let before = now_nanos();
    let output = replay(
        &file,
        &format!("http://{http}"),
        &["--restamp", "--rate", "2500"],
    );
    let after = now_nanos();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stopped = gateway.stop();
    println!("{stderr}\n{}", stopped.stderr);

    // The two malformed lines are named, skipped and counted, and make the exit status 1.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 3: not JSON"), "{stderr}");
    assert!(
        stderr.contains("line 6: not an OTLP export request"),
        "{stderr}"
    );
    let numbers = summary(&stderr);
    assert_eq!(numbers["malformed"], 2.0, "{stderr}");
    assert_eq!(numbers["failed"], 0.0, "{stderr}");
    assert_eq!(numbers["sent"], counts.records() as f64, "{stderr}");
    assert_eq!(numbers["requests"], counts.lines as f64, "{stderr}");

    // Pacing: at 2500 records/s the last request cannot leave before (records − one line)/rate.
    // Only a lower bound: a slow machine makes it later, never earlier.
    let largest_line = 200.0;
    assert!(
        numbers["elapsed"] >= (counts.records() as f64 - largest_line) / rate,
        "{stderr}"
    );

    // Every record arrived, once.
    let lines = read_json_lines(&out);
    let arrived = sink_times(&lines);
    let recorded = file_times(&file);
    assert_eq!(
        stopped.receiver("otlp").accepted,
        counts.records(),
        "{}",
        stopped.stderr
    );
    assert_eq!(arrived["logs"].len() as u64, counts.logs);
    assert_eq!(arrived["metrics"].len() as u64, counts.metric_points);
    assert_eq!(arrived["traces"].len() as u64, 2 * counts.spans);

    // Restamped by one offset: the file's first event became the moment the replay started,
    // and every time moved by exactly that offset (the spacing is kept).
    let offset = arrived["metrics"][0] - recorded["metrics"][0];
    assert!(
        offset >= before - counts.first_time_nanos && offset <= after - counts.first_time_nanos,
        "offset {offset} is not now − the first event"
    );
    for signal in ["logs", "metrics", "traces"] {
        assert_eq!(arrived[signal].len(), recorded[signal].len(), "{signal}");
        for (arrived, recorded) in arrived[signal].iter().zip(&recorded[signal]) {
            assert_eq!(arrived - recorded, offset, "{signal}: spacing changed");
        }
    }
}

#[test]
fn overload_answers_are_waited_out_and_nothing_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (file, counts) = recorded_file(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    // A stand-in gateway: the first request gets 429 (Retry-After: 0), the second 503
    // (Retry-After: 1), then every request is accepted and its records counted.
    #[derive(Default)]
    struct Seen {
        requests: u64,
        records: u64,
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let address = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let handler = |signal: &'static str| {
            let seen = seen.clone();
            move |body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    let mut seen = seen.lock().unwrap();
                    seen.requests += 1;
                    match seen.requests {
                        1 => return (http::StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")]),
                        2 => {
                            return (
                                http::StatusCode::SERVICE_UNAVAILABLE,
                                [("retry-after", "1")],
                            );
                        }
                        _ => {}
                    }
                    seen.records += match signal {
                        "logs" => ExportLogsServiceRequest::decode(body)
                            .unwrap()
                            .resource_logs
                            .iter()
                            .flat_map(|resource| &resource.scope_logs)
                            .map(|scope| scope.log_records.len() as u64)
                            .sum(),
                        "metrics" => {
                            metric_times(&ExportMetricsServiceRequest::decode(body).unwrap()).len()
                                as u64
                        }
                        _ => ExportTraceServiceRequest::decode(body)
                            .unwrap()
                            .resource_spans
                            .iter()
                            .flat_map(|resource| &resource.scope_spans)
                            .map(|scope| scope.spans.len() as u64)
                            .sum(),
                    };
                    (
                        http::StatusCode::OK,
                        [("content-type", "application/x-protobuf")],
                    )
                }
            }
        };
        let app = axum::Router::new()
            .route("/v1/logs", axum::routing::post(handler("logs")))
            .route("/v1/metrics", axum::routing::post(handler("metrics")))
            .route("/v1/traces", axum::routing::post(handler("traces")));
        tokio::spawn(async move { axum::serve(listener, app).await });
        address
    });

    let output = replay(&file, &format!("http://{address}/"), &["--batch", "500"]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    println!("{stderr}");
    let numbers = summary(&stderr);
    assert_eq!(numbers["retried"], 2.0, "{stderr}");
    assert_eq!(numbers["failed"], 0.0, "{stderr}");
    assert_eq!(numbers["sent"], counts.records() as f64, "{stderr}");
    // The 503 asked for a second: the replay waited for it.
    assert!(numbers["elapsed"] >= 1.0, "{stderr}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.records, counts.records());
    // Merged into requests of at most 500 records: far fewer than the lines.
    assert!(
        seen.requests - 2 < counts.lines / 4,
        "{} requests",
        seen.requests
    );
    assert_eq!(numbers["requests"], (seen.requests - 2) as f64, "{stderr}");
}

#[test]
fn an_unreachable_gateway_stops_the_replay_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = recorded_file(dir.path());
    let port = support::free_port();
    let output = replay(&file, &format!("http://127.0.0.1:{port}"), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("attempts); stopping"), "{stderr}");
    assert!(stderr.contains("replay: sent 0 records"), "{stderr}");
}
