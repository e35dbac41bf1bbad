//! `sluice replay FILE`: sends a recorded file of OTLP/JSON export requests to a gateway over
//! OTLP/HTTP (protobuf), paced by records per second or by event time, with its timestamps
//! optionally moved so that the file's first event is now.
//!
//! The file is what the OpenTelemetry Collector's file exporter writes (and what the benches'
//! `incidents` generator writes): one `ExportLogsServiceRequest`, `ExportMetricsServiceRequest`
//! or `ExportTraceServiceRequest` per line, in OTLP/JSON. A line that is not one of those is
//! reported with its number, counted and skipped. The gateway's overload answers (429 and 503,
//! with `Retry-After`) are waited out and the request sent again, never dropped; a request it
//! refuses (any other 4xx/5xx) is reported and counted as failed. See docs/replay.md.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;
use serde_json::Value;

/// Arguments of `sluice replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The file: OTLP/JSON export requests, one per line (the Collector's file exporter format).
    pub file: PathBuf,
    /// Records (log records, metric points, spans) per second; 0 sends as fast as the gateway
    /// accepts.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Move every timestamp by one offset so that the file's first event is now, keeping the
    /// spacing.
    #[arg(long)]
    pub restamp: bool,
    /// The gateway's OTLP/HTTP endpoint; requests go to ENDPOINT/v1/logs, /v1/metrics, /v1/traces.
    #[arg(long, default_value = "http://127.0.0.1:4318")]
    pub endpoint: String,
    /// Pace by event time instead: X seconds of the file's time per second (1 = as recorded).
    /// With --rate too, the slower of the two holds.
    #[arg(long)]
    pub speed: Option<f64>,
    /// Merge consecutive lines of one signal into requests of up to this many records (a line is
    /// never split); 0 sends each line as one request.
    #[arg(long, default_value_t = 0)]
    pub batch: u64,
    /// Time allowed for one request, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
}

/// Attempts of one request while the gateway cannot be reached at all (connection refused or
/// timed out); then the replay stops. Overload answers (429, 503) are retried without limit.
const UNREACHABLE_ATTEMPTS: u32 = 8;

/// Wait after a 429 or 503 without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The longest wait a `Retry-After` may ask for (a gateway's answer, but bounded all the same).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The three signals, with their counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    Logs,
    Metrics,
    Traces,
}

impl Signal {
    fn path(self) -> &'static str {
        match self {
            Signal::Logs => "/v1/logs",
            Signal::Metrics => "/v1/metrics",
            Signal::Traces => "/v1/traces",
        }
    }
}

/// One decoded line (or several merged lines of one signal).
#[derive(Debug)]
enum Request {
    Logs(ExportLogsServiceRequest),
    Metrics(ExportMetricsServiceRequest),
    Traces(ExportTraceServiceRequest),
}

impl Request {
    fn signal(&self) -> Signal {
        match self {
            Request::Logs(_) => Signal::Logs,
            Request::Metrics(_) => Signal::Metrics,
            Request::Traces(_) => Signal::Traces,
        }
    }

    /// Log records, metric data points or spans.
    fn records(&self) -> u64 {
        match self {
            Request::Logs(request) => request
                .resource_logs
                .iter()
                .flat_map(|resource| &resource.scope_logs)
                .map(|scope| scope.log_records.len() as u64)
                .sum(),
            Request::Metrics(request) => request
                .resource_metrics
                .iter()
                .flat_map(|resource| &resource.scope_metrics)
                .flat_map(|scope| &scope.metrics)
                .map(|metric| match &metric.data {
                    Some(Data::Gauge(data)) => data.data_points.len() as u64,
                    Some(Data::Sum(data)) => data.data_points.len() as u64,
                    Some(Data::Histogram(data)) => data.data_points.len() as u64,
                    Some(Data::ExponentialHistogram(data)) => data.data_points.len() as u64,
                    Some(Data::Summary(data)) => data.data_points.len() as u64,
                    None => 0,
                })
                .sum(),
            Request::Traces(request) => request
                .resource_spans
                .iter()
                .flat_map(|resource| &resource.scope_spans)
                .map(|scope| scope.spans.len() as u64)
                .sum(),
        }
    }

    /// Calls `visit` on every event timestamp (0 means unset and is skipped by the callers).
    fn for_each_time(&mut self, mut visit: impl FnMut(&mut u64)) {
        match self {
            Request::Logs(request) => {
                for record in request
                    .resource_logs
                    .iter_mut()
                    .flat_map(|resource| &mut resource.scope_logs)
                    .flat_map(|scope| &mut scope.log_records)
                {
                    visit(&mut record.time_unix_nano);
                    visit(&mut record.observed_time_unix_nano);
                }
            }
            Request::Metrics(request) => {
                for metric in request
                    .resource_metrics
                    .iter_mut()
                    .flat_map(|resource| &mut resource.scope_metrics)
                    .flat_map(|scope| &mut scope.metrics)
                {
                    macro_rules! points {
                        ($points:expr) => {
                            for point in $points {
                                visit(&mut point.start_time_unix_nano);
                                visit(&mut point.time_unix_nano);
                                for exemplar in &mut point.exemplars {
                                    visit(&mut exemplar.time_unix_nano);
                                }
                            }
                        };
                    }
                    match &mut metric.data {
                        Some(Data::Gauge(data)) => points!(&mut data.data_points),
                        Some(Data::Sum(data)) => points!(&mut data.data_points),
                        Some(Data::Histogram(data)) => points!(&mut data.data_points),
                        Some(Data::ExponentialHistogram(data)) => {
                            points!(&mut data.data_points)
                        }
                        Some(Data::Summary(data)) => {
                            for point in &mut data.data_points {
                                visit(&mut point.start_time_unix_nano);
                                visit(&mut point.time_unix_nano);
                            }
                        }
                        None => {}
                    }
                }
            }
            Request::Traces(request) => {
                for span in request
                    .resource_spans
                    .iter_mut()
                    .flat_map(|resource| &mut resource.scope_spans)
                    .flat_map(|scope| &mut scope.spans)
                {
                    visit(&mut span.start_time_unix_nano);
                    visit(&mut span.end_time_unix_nano);
                    for event in &mut span.events {
                        visit(&mut event.time_unix_nano);
                    }
                }
            }
        }
    }

    /// The earliest event time in it (record, point or span start), if any is set.
    fn first_time(&mut self) -> Option<u64> {
        let mut first = None;
        self.for_each_time(|time| {
            if *time != 0 {
                first = Some(first.map_or(*time, |first: u64| first.min(*time)));
            }
        });
        first
    }

    /// Moves every set timestamp by `offset` nanoseconds.
    fn restamp(&mut self, offset: i128) {
        self.for_each_time(|time| {
            if *time != 0 {
                *time = (i128::from(*time) + offset).clamp(1, i128::from(u64::MAX)) as u64;
            }
        });
    }

    /// Appends `other` (of the same signal) to this request.
    fn merge(&mut self, other: Request) {
        match (self, other) {
            (Request::Logs(into), Request::Logs(from)) => {
                into.resource_logs.extend(from.resource_logs)
            }
            (Request::Metrics(into), Request::Metrics(from)) => {
                into.resource_metrics.extend(from.resource_metrics)
            }
            (Request::Traces(into), Request::Traces(from)) => {
                into.resource_spans.extend(from.resource_spans)
            }
            _ => {}
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Request::Logs(request) => request.encode_to_vec(),
            Request::Metrics(request) => request.encode_to_vec(),
            Request::Traces(request) => request.encode_to_vec(),
        }
    }

    /// Records the gateway said it rejected in a successful answer (`partial_success`).
    fn rejected_in(&self, answer: &[u8]) -> u64 {
        let rejected = match self {
            Request::Logs(_) => ExportLogsServiceResponse::decode(answer)
                .ok()
                .and_then(|answer| answer.partial_success)
                .map(|partial| partial.rejected_log_records),
            Request::Metrics(_) => ExportMetricsServiceResponse::decode(answer)
                .ok()
                .and_then(|answer| answer.partial_success)
                .map(|partial| partial.rejected_data_points),
            Request::Traces(_) => ExportTraceServiceResponse::decode(answer)
                .ok()
                .and_then(|answer| answer.partial_success)
                .map(|partial| partial.rejected_spans),
        };
        rejected.unwrap_or(0).max(0) as u64
    }
}

/// Decodes one line. Errors say what is wrong (the caller adds the line number).
fn decode_line(line: &[u8]) -> Result<Request, String> {
    let mut value: Value =
        serde_json::from_slice(line).map_err(|error| format!("not JSON: {error}"))?;
    let Some(object) = value.as_object() else {
        return Err("not a JSON object".into());
    };
    let signal = if object.contains_key("resourceLogs") {
        Signal::Logs
    } else if object.contains_key("resourceMetrics") {
        Signal::Metrics
    } else if object.contains_key("resourceSpans") {
        Signal::Traces
    } else {
        return Err(
            "not an OTLP export request (no resourceLogs, resourceMetrics or resourceSpans)".into(),
        );
    };
    fill_omitted_fields(&mut value);
    let request = match signal {
        Signal::Logs => serde_json::from_value(value).map(Request::Logs),
        Signal::Metrics => serde_json::from_value(value).map(Request::Metrics),
        Signal::Traces => serde_json::from_value(value).map(Request::Traces),
    };
    request.map_err(|error| format!("not a valid OTLP/JSON {signal:?} request: {error}"))
}

/// Adds the fields a protobuf JSON encoder leaves out when empty and the OTLP types' decoder
/// wants all the same: `"values": []` in empty `arrayValue`/`kvlistValue` objects and
/// `"key": ""` in key-values without a key.
fn fill_omitted_fields(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for name in ["arrayValue", "kvlistValue"] {
                if let Some(Value::Object(inner)) = object.get_mut(name)
                    && !inner.contains_key("values")
                {
                    inner.insert("values".into(), Value::Array(Vec::new()));
                }
            }
            if object.contains_key("value") && !object.contains_key("key") {
                object.insert("key".into(), Value::String(String::new()));
            }
            object.values_mut().for_each(fill_omitted_fields);
        }
        Value::Array(items) => items.iter_mut().for_each(fill_omitted_fields),
        _ => {}
    }
}

/// What a replay did.
#[derive(Debug, Default)]
struct Summary {
    logs: u64,
    metric_points: u64,
    spans: u64,
    requests: u64,
    retried: u64,
    failed_records: u64,
    failed_requests: u64,
    malformed_lines: u64,
}

impl Summary {
    fn sent(&self) -> u64 {
        self.logs + self.metric_points + self.spans
    }
}

/// Paces requests: by records per second, by event time, or not at all.
struct Pacer {
    rate: f64,
    speed: Option<f64>,
    origin: Instant,
    records_before: u64,
    first_event: Option<u64>,
}

impl Pacer {
    /// How long to wait before sending a request whose first event is at `event_time`.
    fn wait_before(&self, event_time: Option<u64>) -> Duration {
        let mut due = Duration::ZERO;
        if self.rate > 0.0 {
            due = due.max(Duration::from_secs_f64(
                self.records_before as f64 / self.rate,
            ));
        }
        if let (Some(speed), Some(first), Some(time)) = (self.speed, self.first_event, event_time) {
            let event_offset = time.saturating_sub(first) as f64 / 1e9;
            due = due.max(Duration::from_secs_f64(event_offset / speed));
        }
        due.saturating_sub(self.origin.elapsed())
    }

    /// A pause the pacer did not plan (a retry wait) moves the schedule back, so the requests
    /// after it are not sent in a burst to catch up.
    fn delay(&mut self, by: Duration) {
        self.origin += by;
    }
}

/// Runs the subcommand. Exit code 1 when a line was malformed or records were refused.
pub fn run(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.rate >= 0.0 && args.rate.is_finite(),
        "--rate must be 0 or more"
    );
    if let Some(speed) = args.speed {
        anyhow::ensure!(
            speed > 0.0 && speed.is_finite(),
            "--speed must be more than 0"
        );
    }
    anyhow::ensure!(
        args.timeout > 0.0 && args.timeout.is_finite(),
        "--timeout must be more than 0"
    );
    let base_url = args.endpoint.trim_end_matches('/').to_owned();
    anyhow::ensure!(
        base_url.starts_with("http://") || base_url.starts_with("https://"),
        "--endpoint must be an http:// or https:// URL, not `{}`",
        args.endpoint
    );
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    // reqwest is built without a default crypto provider and refuses to build a client, even
    // for plain http, until one is installed (an error means one already is).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let timeout = Duration::from_secs_f64(args.timeout);
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .context("cannot build the HTTP client")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let started = Instant::now();
    let mut summary = Summary::default();
    let result = runtime.block_on(replay(
        args,
        BufReader::with_capacity(1 << 20, file),
        &client,
        &base_url,
        &mut summary,
    ));
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "replay: sent {} records ({} log records, {} metric points, {} spans) in {} requests, \
         retried {}, failed {} records ({} requests), malformed lines {}, elapsed {elapsed:.2} s \
         ({:.0} records/s)",
        summary.sent(),
        summary.logs,
        summary.metric_points,
        summary.spans,
        summary.requests,
        summary.retried,
        summary.failed_records,
        summary.failed_requests,
        summary.malformed_lines,
        summary.sent() as f64 / elapsed.max(1e-9),
    );
    result?;
    Ok(
        if summary.failed_records > 0 || summary.failed_requests > 0 || summary.malformed_lines > 0
        {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    )
}

async fn replay(
    args: &ReplayArgs,
    mut reader: impl BufRead,
    client: &reqwest::Client,
    base_url: &str,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let mut pacer = Pacer {
        rate: args.rate,
        speed: args.speed,
        origin: Instant::now(),
        records_before: 0,
        first_event: None,
    };
    let mut offset: Option<i128> = None;
    // Lines waiting to be merged, per signal: (request, records, first event time).
    let mut pending: [Option<(Request, u64, Option<u64>)>; 3] = [None, None, None];
    let mut line = Vec::with_capacity(64 * 1024);
    let mut line_number = 0u64;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("reading {} after line {line_number}", args.file.display()))?;
        if read == 0 {
            break;
        }
        line_number += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let mut request = match decode_line(text) {
            Ok(request) => request,
            Err(error) => {
                eprintln!(
                    "replay: {} line {line_number}: {error}; skipped",
                    args.file.display()
                );
                summary.malformed_lines += 1;
                continue;
            }
        };
        let mut first_time = request.first_time();
        if args.restamp
            && let Some(first) = first_time
        {
            // The offset comes from the first line with a timestamp: the file's first event.
            let offset = *offset.get_or_insert_with(|| now_nanos() - i128::from(first));
            request.restamp(offset);
            first_time = Some((i128::from(first) + offset).max(1) as u64);
        }
        if let Some(first) = first_time {
            pacer.first_event.get_or_insert(first);
        }
        let records = request.records();
        let slot = request.signal() as usize;
        if args.batch == 0 {
            send_paced(
                client,
                base_url,
                &mut pacer,
                (request, records, first_time),
                summary,
            )
            .await?;
            continue;
        }
        match &mut pending[slot] {
            Some((merged, merged_records, _)) if *merged_records + records <= args.batch => {
                merged.merge(request);
                *merged_records += records;
            }
            waiting => {
                if let Some(full) = waiting.replace((request, records, first_time)) {
                    send_paced(client, base_url, &mut pacer, full, summary).await?;
                }
            }
        }
    }
    // What is left, in the order of its first event.
    let mut left: Vec<_> = pending.into_iter().flatten().collect();
    left.sort_by_key(|(_, _, first_time)| *first_time);
    for request in left {
        send_paced(client, base_url, &mut pacer, request, summary).await?;
    }
    Ok(())
}

/// Waits for the request's turn, then sends it.
async fn send_paced(
    client: &reqwest::Client,
    base_url: &str,
    pacer: &mut Pacer,
    (request, records, first_time): (Request, u64, Option<u64>),
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let wait = pacer.wait_before(first_time);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let waited = send(client, base_url, &request, records, summary).await?;
    pacer.delay(waited);
    pacer.records_before += records;
    Ok(())
}

/// Sends one request until it is accepted or refused; returns the time spent waiting on
/// overload answers and unreachable attempts.
async fn send(
    client: &reqwest::Client,
    base_url: &str,
    request: &Request,
    records: u64,
    summary: &mut Summary,
) -> anyhow::Result<Duration> {
    let url = format!("{base_url}{}", request.signal().path());
    let body = bytes::Bytes::from(request.encode());
    let mut waited = Duration::ZERO;
    let mut unreachable = 0u32;
    summary.requests += 1;
    loop {
        let answer = client
            .post(&url)
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body.clone())
            .send()
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(error) => {
                unreachable += 1;
                if unreachable >= UNREACHABLE_ATTEMPTS {
                    anyhow::bail!("{url}: {error} ({unreachable} attempts); stopping");
                }
                let pause = Duration::from_millis(100 << unreachable.min(4));
                eprintln!("replay: {url}: {error}; retrying in {pause:?}");
                summary.retried += 1;
                tokio::time::sleep(pause).await;
                waited += pause;
                continue;
            }
        };
        let status = response.status();
        if status.is_success() {
            let answer = response.bytes().await.unwrap_or_default();
            let rejected = request.rejected_in(&answer).min(records);
            let accepted = records - rejected;
            match request.signal() {
                Signal::Logs => summary.logs += accepted,
                Signal::Metrics => summary.metric_points += accepted,
                Signal::Traces => summary.spans += accepted,
            }
            if rejected > 0 {
                eprintln!("replay: {url}: the gateway rejected {rejected} of {records} records");
                summary.failed_records += rejected;
            }
            return Ok(waited);
        }
        if status == http::StatusCode::TOO_MANY_REQUESTS
            || status == http::StatusCode::SERVICE_UNAVAILABLE
        {
            let pause = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<f64>().ok())
                .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
                .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs_f64)
                .min(MAX_RETRY_AFTER);
            summary.retried += 1;
            tokio::time::sleep(pause).await;
            waited += pause;
            continue;
        }
        let text = response.text().await.unwrap_or_default();
        let text: String = text.chars().take(200).collect();
        eprintln!("replay: {url}: refused with {status}: {text}");
        summary.failed_requests += 1;
        summary.failed_records += records;
        return Ok(waited);
    }
}

fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collector_line_without_empty_fields_decodes_and_counts() {
        let line = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a"}}]},
            "scopeMetrics":[{"scope":{},"metrics":[
              {"name":"g","gauge":{"dataPoints":[{"timeUnixNano":"1000","asDouble":1.5},{"timeUnixNano":"2000","asInt":"3"}]}},
              {"name":"h","histogram":{"aggregationTemporality":2,"dataPoints":[{"startTimeUnixNano":"500","timeUnixNano":"3000","count":"2","sum":3}]}}
            ]}]}]}"#;
        let mut request = decode_line(line).unwrap();
        assert_eq!(request.records(), 3);
        assert_eq!(request.first_time(), Some(500));
        request.restamp(10_000);
        assert_eq!(request.first_time(), Some(10_500));
        let Request::Metrics(metrics) = &request else {
            panic!("not metrics")
        };
        let points = &metrics.resource_metrics[0].scope_metrics[0].metrics[0];
        let Some(Data::Gauge(gauge)) = &points.data else {
            panic!("not a gauge")
        };
        // An unset start time stays unset.
        assert_eq!(gauge.data_points[0].start_time_unix_nano, 0);
        assert_eq!(gauge.data_points[1].time_unix_nano, 12_000);
    }

    #[test]
    fn a_bad_line_says_what_is_wrong() {
        assert!(decode_line(b"{").unwrap_err().contains("not JSON"));
        assert!(
            decode_line(b"{\"resourceThings\":[]}")
                .unwrap_err()
                .contains("not an OTLP export request")
        );
        assert!(
            decode_line(b"{\"resourceLogs\":3}")
                .unwrap_err()
                .contains("not a valid OTLP/JSON Logs request")
        );
    }
}
