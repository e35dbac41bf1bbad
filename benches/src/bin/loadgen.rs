//! `loadgen`: sends OTLP logs over gRPC to a gateway, at a given rate or flat out, and reports
//! how many records were accepted.
//!
//! ```sh
//! cargo run --release -p sluice-benches --bin loadgen -- \
//!     --endpoint http://127.0.0.1:4317 --rate 0 --duration 10s --batch 1024 --connections 4
//! ```
//!
//! Before sending anything it generates a pool of `ExportLogsServiceRequest`s from `--seed`
//! (deterministic) and encodes each once, so neither generating nor encoding records is part of
//! the measurement: a send copies the encoded bytes into the gRPC frame. The records look like an
//! HTTP service's logs (see [`generator`]): ≈ 355 bytes of protobuf each (8–10 attributes with
//! OpenTelemetry semantic-convention keys take ≈ 260 of them, a 20–60 byte body), one
//! resource per service, mostly `INFO` with some `TRACE`/`DEBUG`/`WARN`/`ERROR`/`FATAL`, distinct
//! trace and span ids within the pool (the pool is sent round and round).
//!
//! Each of `--connections` workers has its own HTTP/2 connection and one request in flight.
//! A request's records count as accepted when the answer is OK, minus its
//! `partial_success.rejected_log_records`. Retryable refusals (`UNAVAILABLE`, and the other
//! codes the OTLP specification makes retryable) are counted, waited out (the server's
//! `RetryInfo`, at most 1 s) and not resent: the load goes on with the next request. Any other
//! error is counted and makes the exit status 1.
//!
//! `--json` prints the report as one JSON object (the e2e benchmark reads it), including the
//! accepted records by severity number, so a reader can work out what a severity filter keeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::{BufMut as _, Bytes};
use clap::Parser;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use prost::Message as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// The gRPC method of an OTLP logs export.
const EXPORT_LOGS_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// Longest wait after a retryable refusal, whatever the server's `RetryInfo` asks.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Wait after a retryable refusal that carries no `RetryInfo`.
const DEFAULT_BACKOFF: Duration = Duration::from_millis(50);

/// Command-line arguments.
#[derive(Parser, Debug)]
#[command(about = "Send OTLP/gRPC logs to a gateway and report the records accepted per second")]
struct Args {
    /// OTLP/gRPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    endpoint: String,
    /// Records per second to offer, 0 = flat out.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// How long to send, e.g. `10s`, `500ms`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Records per `ExportLogsServiceRequest`.
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// Concurrent requests in flight, each on its own connection.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Services (resources) the records come from.
    #[arg(long, default_value_t = 5)]
    services: usize,
    /// Seed of the generated records.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Distinct requests generated up front and sent round and round.
    #[arg(long, default_value_t = 64)]
    pool: usize,
    /// Threads of the sending runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Per-request timeout.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Parses `250ms`, `10s`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 10s, 500ms or 2m"))?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        other => return Err(format!("unknown unit `{other}` in `{text}` (ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|error| format!("`{text}`: {error}"))
}

/// Deterministic OTLP log requests shaped like an HTTP service's logs.
mod generator {
    use bytes::Bytes;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use prost::Message as _;
    use rand::rngs::StdRng;
    use rand::{Rng as _, RngCore as _, SeedableRng as _};

    /// Severities (number, text) with their weight in percent: 2 % trace, 18 % debug, 60 % info,
    /// 13 % warn, 6 % error, 1 % fatal. A filter with `min_severity = "info"` keeps 80 %.
    pub const SEVERITY_MIX: [(i32, &str, u32); 6] = [
        (1, "TRACE", 2),
        (5, "DEBUG", 18),
        (9, "INFO", 60),
        (13, "WARN", 13),
        (17, "ERROR", 6),
        (21, "FATAL", 1),
    ];

    const SERVICE_NAMES: [&str; 8] = [
        "checkout", "payments", "cart", "catalog", "auth", "shipping", "search", "profile",
    ];
    const METHODS: [(&str, u32); 4] = [("GET", 70), ("POST", 20), ("PUT", 6), ("DELETE", 4)];
    const ROUTES: [&str; 5] = [
        "/v1/{service}/{id}",
        "/v1/{service}",
        "/v1/{service}/{id}/items",
        "/v2/{service}/search",
        "/v1/{service}/{id}/events",
    ];
    const UPSTREAMS: [&str; 4] = ["postgres", "redis", "inventory", "kafka"];

    /// One request of the pool: its encoded bytes and what it holds.
    pub struct PreparedRequest {
        /// The encoded `ExportLogsServiceRequest`.
        pub bytes: Bytes,
        /// Log records in it.
        pub records: u64,
        /// Its records counted by severity number (0–24).
        pub by_severity: [u64; 25],
    }

    /// A service: its resource and its pods.
    struct Service {
        name: &'static str,
        resource: Resource,
        pods: Vec<String>,
    }

    /// Makes requests from a seed: the same seed, services and start time give the same bytes.
    pub struct Generator {
        rng: StdRng,
        services: Vec<Service>,
        next_time: u64,
    }

    fn string(key: &str, value: impl Into<String>) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(value.into())),
            }),
            ..KeyValue::default()
        }
    }

    fn int(key: &str, value: i64) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue {
                value: Some(Value::IntValue(value)),
            }),
            ..KeyValue::default()
        }
    }

    fn double(key: &str, value: f64) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue {
                value: Some(Value::DoubleValue(value)),
            }),
            ..KeyValue::default()
        }
    }

    fn weighted<T: Copy>(rng: &mut StdRng, choices: &[(T, u32)]) -> T {
        let total: u32 = choices.iter().map(|(_, weight)| weight).sum();
        let mut pick = rng.random_range(0..total);
        for &(choice, weight) in choices {
            if pick < weight {
                return choice;
            }
            pick -= weight;
        }
        unreachable!("pick is below the total weight")
    }

    fn hex(rng: &mut StdRng, digits: usize) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        (0..digits)
            .map(|_| char::from(DIGITS[rng.random_range(0..16)]))
            .collect()
    }

    impl Generator {
        /// A generator of records from `services` services (at least one) whose event times
        /// start at `start_unix_nanos` and advance by 1–20 µs a record.
        pub fn new(seed: u64, services: usize, start_unix_nanos: u64) -> Generator {
            let mut rng = StdRng::seed_from_u64(seed);
            let services = (0..services.max(1))
                .map(|index| {
                    let name = SERVICE_NAMES[index % SERVICE_NAMES.len()];
                    let name = if index < SERVICE_NAMES.len() {
                        name.to_owned()
                    } else {
                        format!("{name}-{}", index / SERVICE_NAMES.len())
                    };
                    let name: &'static str = Box::leak(name.into_boxed_str());
                    let deployment = hex(&mut rng, 6);
                    let pods = (0..3)
                        .map(|_| format!("{name}-{deployment}-{}", hex(&mut rng, 5)))
                        .collect();
                    let resource = Resource {
                        attributes: vec![
                            string("service.name", name),
                            string("service.namespace", "shop"),
                            string("service.version", format!("1.{}.{}", index % 7, index % 3)),
                            string("deployment.environment", "production"),
                            string("k8s.namespace.name", "shop-prod"),
                            string("k8s.deployment.name", name),
                            string("host.name", format!("node-{}", rng.random_range(1..40))),
                        ],
                        ..Resource::default()
                    };
                    Service {
                        name,
                        resource,
                        pods,
                    }
                })
                .collect();
            Generator {
                rng,
                services,
                next_time: start_unix_nanos,
            }
        }

        /// One log record of `service`.
        fn record(&mut self, service: usize) -> LogRecord {
            let rng = &mut self.rng;
            let service = &self.services[service];
            self.next_time += rng.random_range(1_000..20_000);
            let time = self.next_time;
            let (severity_number, severity_text) = weighted(
                rng,
                &SEVERITY_MIX.map(|(number, text, weight)| ((number, text), weight)),
            );
            let method = weighted(rng, &METHODS);
            let id = rng.random_range(10_000..99_999);
            let route =
                ROUTES[rng.random_range(0..ROUTES.len())].replace("{service}", service.name);
            let path = route.replace("{id}", &id.to_string());
            let status: i64 = match severity_number {
                17.. => [500, 502, 503, 504][rng.random_range(0..4)],
                13 => [404, 409, 429, 499][rng.random_range(0..4)],
                _ => [200, 200, 200, 201, 204, 304][rng.random_range(0..6)],
            };
            let duration_ms = match severity_number {
                13.. => rng.random_range(400.0..3000.0),
                _ => rng.random_range(0.3..120.0),
            };
            let duration_ms = (duration_ms * 1000.0_f64).round() / 1000.0;
            let upstream = UPSTREAMS[rng.random_range(0..UPSTREAMS.len())];
            let response_size = rng.random_range(80..40_000);
            let body = match severity_number {
                ..=5 => format!(
                    "{upstream} lookup {path} hit={} {:.2}ms",
                    rng.random_bool(0.7),
                    duration_ms / 10.0
                ),
                9 => format!("{method} {path} {status} {duration_ms:.1}ms"),
                13 => format!("slow {method} {path} {status} {duration_ms:.1}ms > 400ms"),
                _ => format!(
                    "{method} {path} failed: {upstream} {status} after {} tries",
                    rng.random_range(1..4)
                ),
            };
            let mut attributes = vec![
                string("http.method", method),
                string("http.route", route),
                int("http.status_code", status),
                string(
                    "user.id",
                    format!("u-{}", rng.random_range(10_000..500_000)),
                ),
                string(
                    "k8s.pod.name",
                    service.pods[rng.random_range(0..service.pods.len())].clone(),
                ),
                string(
                    "client.address",
                    format!(
                        "10.{}.{}.{}",
                        rng.random_range(0..64),
                        rng.random_range(0..256),
                        rng.random_range(1..255)
                    ),
                ),
                double("duration_ms", duration_ms),
                string("request.id", hex(rng, 8)),
            ];
            // Eight attributes always, two more on some records.
            if rng.random_bool(0.5) {
                attributes.push(int("http.response_size", response_size));
            }
            if rng.random_bool(0.5) {
                attributes.push(string(
                    "tenant.id",
                    format!("t-{:04}", rng.random_range(0..500)),
                ));
            }
            let mut trace_id = vec![0; 16];
            rng.fill_bytes(&mut trace_id);
            let mut span_id = vec![0; 8];
            rng.fill_bytes(&mut span_id);
            LogRecord {
                time_unix_nano: time,
                observed_time_unix_nano: time + rng.random_range(100_000..5_000_000),
                severity_number,
                severity_text: severity_text.to_owned(),
                body: Some(AnyValue {
                    value: Some(Value::StringValue(body)),
                }),
                attributes,
                flags: 1,
                trace_id,
                span_id,
                ..LogRecord::default()
            }
        }

        /// A request of `records` records spread over the services at random, one
        /// `ResourceLogs` (with one `ScopeLogs`) per service present.
        pub fn request(&mut self, records: usize) -> ExportLogsServiceRequest {
            let mut by_service: Vec<Vec<LogRecord>> = vec![Vec::new(); self.services.len()];
            for _ in 0..records {
                let service = self.rng.random_range(0..self.services.len());
                let record = self.record(service);
                by_service[service].push(record);
            }
            let resource_logs = by_service
                .into_iter()
                .enumerate()
                .filter(|(_, log_records)| !log_records.is_empty())
                .map(|(service, log_records)| ResourceLogs {
                    resource: Some(self.services[service].resource.clone()),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: "sluice-loadgen".to_owned(),
                            version: "0.1.0".to_owned(),
                            ..InstrumentationScope::default()
                        }),
                        log_records,
                        ..ScopeLogs::default()
                    }],
                    ..ResourceLogs::default()
                })
                .collect();
            ExportLogsServiceRequest { resource_logs }
        }

        /// A request of `records` records, encoded, with its counts.
        pub fn prepared(&mut self, records: usize) -> PreparedRequest {
            let request = self.request(records);
            let mut by_severity = [0u64; 25];
            for record in log_records(&request) {
                by_severity[record.severity_number as usize] += 1;
            }
            PreparedRequest {
                bytes: Bytes::from(request.encode_to_vec()),
                records: records as u64,
                by_severity,
            }
        }
    }

    /// Every log record of a request.
    pub fn log_records(request: &ExportLogsServiceRequest) -> impl Iterator<Item = &LogRecord> {
        request
            .resource_logs
            .iter()
            .flat_map(|resource| &resource.scope_logs)
            .flat_map(|scope| &scope.log_records)
    }
}

/// A gRPC codec that sends an already encoded request as it is and decodes the response.
#[derive(Clone, Copy, Default)]
struct PreEncodedLogs;

impl Codec for PreEncodedLogs {
    type Encode = Bytes;
    type Decode = ExportLogsServiceResponse;
    type Encoder = PreEncodedLogs;
    type Decoder = PreEncodedLogs;

    fn encoder(&mut self) -> Self::Encoder {
        PreEncodedLogs
    }

    fn decoder(&mut self) -> Self::Decoder {
        PreEncodedLogs
    }
}

impl Encoder for PreEncodedLogs {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for PreEncodedLogs {
    type Item = ExportLogsServiceResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        ExportLogsServiceResponse::decode(src)
            .map(Some)
            .map_err(|error| Status::internal(format!("undecodable response: {error}")))
    }
}

/// Whether the OTLP specification lets a client retry after this status, and after how long.
fn retry_after(status: &Status) -> Option<Duration> {
    let delay = sluice::receivers::otlp::rpc::Status::decode(status.details())
        .ok()
        .and_then(|details| details.retry_delay());
    let retryable = match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => delay.is_some(),
        _ => false,
    };
    retryable.then(|| delay.unwrap_or(DEFAULT_BACKOFF).min(MAX_BACKOFF))
}

/// What one worker saw.
#[derive(Default)]
struct Tally {
    requests: u64,
    records_sent: u64,
    records_accepted: u64,
    records_rejected: u64,
    accepted_by_severity: [u64; 25],
    partially_rejected_requests: u64,
    retryable_refusals: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_us: Vec<u64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.records_sent += other.records_sent;
        self.records_accepted += other.records_accepted;
        self.records_rejected += other.records_rejected;
        for (total, count) in self
            .accepted_by_severity
            .iter_mut()
            .zip(other.accepted_by_severity)
        {
            *total += count;
        }
        self.partially_rejected_requests += other.partially_rejected_requests;
        self.retryable_refusals += other.retryable_refusals;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_us.extend(other.latencies_us);
    }
}

/// The send schedule all workers share.
struct Plan {
    pool: Vec<generator::PreparedRequest>,
    start: tokio::time::Instant,
    end: tokio::time::Instant,
    /// Seconds between two requests at the asked rate; `None` = flat out.
    interval: Option<f64>,
    next_slot: AtomicU64,
}

async fn worker(channel: Channel, plan: Arc<Plan>, timeout: Duration) -> Tally {
    let mut client = tonic::client::Grpc::new(channel);
    let path = PathAndQuery::from_static(EXPORT_LOGS_PATH);
    let mut tally = Tally::default();
    loop {
        let slot = plan.next_slot.fetch_add(1, Ordering::Relaxed);
        if let Some(interval) = plan.interval {
            let due = plan.start + Duration::from_secs_f64(interval * slot as f64);
            if due >= plan.end {
                break;
            }
            tokio::time::sleep_until(due).await;
        }
        if tokio::time::Instant::now() >= plan.end {
            break;
        }
        let prepared = &plan.pool[(slot % plan.pool.len() as u64) as usize];
        let mut request = tonic::Request::new(prepared.bytes.clone());
        request.set_timeout(timeout);
        let sent = Instant::now();
        tally.requests += 1;
        tally.records_sent += prepared.records;
        let answer = match client.ready().await {
            Ok(()) => client.unary(request, path.clone(), PreEncodedLogs).await,
            Err(error) => Err(Status::unavailable(format!(
                "connection not ready: {error}"
            ))),
        };
        match answer {
            Ok(response) => {
                tally.latencies_us.push(sent.elapsed().as_micros() as u64);
                let rejected = response
                    .into_inner()
                    .partial_success
                    .map_or(0, |partial| partial.rejected_log_records.max(0) as u64)
                    .min(prepared.records);
                tally.records_accepted += prepared.records - rejected;
                tally.records_rejected += rejected;
                if rejected == 0 {
                    for (total, count) in tally
                        .accepted_by_severity
                        .iter_mut()
                        .zip(prepared.by_severity)
                    {
                        *total += count;
                    }
                } else {
                    tally.partially_rejected_requests += 1;
                }
            }
            Err(status) => match retry_after(&status) {
                Some(delay) => {
                    tally.retryable_refusals += 1;
                    tokio::time::sleep(delay).await;
                }
                None => {
                    tally.errors += 1;
                    tally.first_error.get_or_insert_with(|| {
                        format!("{:?}: {}", status.code(), status.message())
                    });
                }
            },
        }
    }
    tally
}

/// User and system CPU seconds of this process so far (all threads), from `/proc/self/stat`.
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) are utime and stime; `after_name` starts at field 3.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn percentile(sorted: &[u64], fraction: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn run(args: Args) -> anyhow::Result<bool> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(args.pool > 0, "--pool must be at least 1");

    let generated = Instant::now();
    let start_nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    let mut generator = generator::Generator::new(args.seed, args.services, start_nanos);
    let pool: Vec<_> = (0..args.pool)
        .map(|_| generator.prepared(args.batch))
        .collect();
    let pool_bytes: usize = pool.iter().map(|request| request.bytes.len()).sum();
    let pool_records = (args.pool * args.batch) as f64;
    if !args.json {
        eprintln!(
            "loadgen: {} requests of {} records generated in {:.2} s, {:.0} bytes per record encoded",
            args.pool,
            args.batch,
            generated.elapsed().as_secs_f64(),
            pool_bytes as f64 / pool_records
        );
    }

    let endpoint = Endpoint::from_shared(args.endpoint.clone())
        .with_context(|| format!("--endpoint {}", args.endpoint))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5));
    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        channels.push(
            endpoint
                .connect()
                .await
                .with_context(|| format!("cannot connect to {}", args.endpoint))?,
        );
    }

    let cpu_before = own_cpu_seconds();
    let start = tokio::time::Instant::now();
    let plan = Arc::new(Plan {
        pool,
        start,
        end: start + args.duration,
        interval: (args.rate > 0).then(|| args.batch as f64 / args.rate as f64),
        next_slot: AtomicU64::new(0),
    });
    let workers: Vec<_> = channels
        .into_iter()
        .map(|channel| tokio::spawn(worker(channel, plan.clone(), args.timeout)))
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        tally.merge(worker.await?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = match (cpu_before, own_cpu_seconds()) {
        (Some(before), Some(after)) => after - before,
        _ => f64::NAN,
    };

    tally.latencies_us.sort_unstable();
    let p50 = percentile(&tally.latencies_us, 0.50);
    let p99 = percentile(&tally.latencies_us, 0.99);
    let records_per_second = tally.records_accepted as f64 / elapsed;
    if args.json {
        let report = serde_json::json!({
            "endpoint": args.endpoint,
            "rate": args.rate,
            "batch": args.batch,
            "connections": args.connections,
            "seed": args.seed,
            "bytes_per_record": pool_bytes as f64 / pool_records,
            "elapsed_seconds": elapsed,
            "requests": tally.requests,
            "records_sent": tally.records_sent,
            "records_accepted": tally.records_accepted,
            "records_rejected": tally.records_rejected,
            "partially_rejected_requests": tally.partially_rejected_requests,
            "accepted_by_severity": tally.accepted_by_severity.to_vec(),
            "retryable_refusals": tally.retryable_refusals,
            "errors": tally.errors,
            "first_error": tally.first_error,
            "records_per_second": records_per_second,
            "latency_p50_us": p50,
            "latency_p99_us": p99,
            "loadgen_cpu_seconds": cpu,
        });
        println!("{report}");
    } else {
        println!(
            "requests sent        {}\n\
             records sent         {}\n\
             records accepted     {} ({} rejected in partial successes)\n\
             retryable refusals   {}\n\
             errors               {}{}\n\
             elapsed              {elapsed:.2} s\n\
             records/s accepted   {records_per_second:.0}\n\
             request latency      p50 {:.2} ms, p99 {:.2} ms\n\
             loadgen CPU          {cpu:.2} s",
            tally.requests,
            tally.records_sent,
            tally.records_accepted,
            tally.records_rejected,
            tally.retryable_refusals,
            tally.errors,
            tally
                .first_error
                .as_deref()
                .map(|error| format!(" (first: {error})"))
                .unwrap_or_default(),
            p50 as f64 / 1000.0,
            p99 as f64 / 1000.0,
        );
    }
    Ok(tally.errors == 0)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("building the Tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("loadgen: requests failed with non-retryable errors");
            std::process::ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::generator::{Generator, SEVERITY_MIX, log_records};
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;

    const START: u64 = 1_790_000_000_000_000_000;

    #[test]
    fn records_are_about_350_bytes_with_8_to_10_attributes() {
        let mut generator = Generator::new(7, 5, START);
        let request = generator.request(4096);
        let records: Vec<_> = log_records(&request).collect();
        assert_eq!(records.len(), 4096);
        let mean = records.iter().map(|r| r.encoded_len()).sum::<usize>() as f64 / 4096.0;
        eprintln!("mean encoded record: {mean:.1} bytes");
        assert!((300.0..=380.0).contains(&mean), "mean record size {mean}");
        for record in &records {
            assert!((8..=10).contains(&record.attributes.len()));
            assert_eq!(record.trace_id.len(), 16);
            assert_eq!(record.span_id.len(), 8);
            assert!(record.time_unix_nano >= START);
        }
        assert_eq!(request.resource_logs.len(), 5, "one resource per service");
        for resource in &request.resource_logs {
            let name = &resource.resource.as_ref().unwrap().attributes[0];
            assert_eq!(name.key, "service.name");
        }
    }

    #[test]
    fn ids_are_distinct_and_severities_follow_the_mix() {
        let mut generator = Generator::new(7, 5, START);
        let request = generator.request(20_000);
        let mut trace_ids: Vec<_> = log_records(&request).map(|r| r.trace_id.clone()).collect();
        trace_ids.sort();
        trace_ids.dedup();
        assert_eq!(trace_ids.len(), 20_000);
        for (number, text, weight) in SEVERITY_MIX {
            let count = log_records(&request)
                .filter(|r| r.severity_number == number)
                .inspect(|r| assert_eq!(r.severity_text, text))
                .count();
            let share = count as f64 / 200.0;
            assert!(
                (share - f64::from(weight)).abs() < 1.0 + f64::from(weight) * 0.1,
                "{text}: {share} % against {weight} %"
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_counts_add_up() {
        let first = Generator::new(3, 4, START).prepared(512);
        let again = Generator::new(3, 4, START).prepared(512);
        let other = Generator::new(4, 4, START).prepared(512);
        assert_eq!(first.bytes, again.bytes);
        assert_ne!(first.bytes, other.bytes);
        assert_eq!(first.records, 512);
        assert_eq!(first.by_severity.iter().sum::<u64>(), 512);
        let decoded = ExportLogsServiceRequest::decode(first.bytes.as_ref()).unwrap();
        assert_eq!(log_records(&decoded).count(), 512);
    }

    #[test]
    fn the_gateway_model_takes_every_generated_record() {
        let request = Generator::new(9, 8, START).request(1000);
        let converted = sluice::model::otlp::logs_from_otlp(&request.resource_logs, 0);
        assert_eq!(converted.rejected, 0, "{}", converted.error_message);
        assert_eq!(converted.batch.len(), 1000);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn retryable_codes_follow_the_otlp_specification() {
        assert_eq!(
            retry_after(&Status::unavailable("busy")),
            Some(DEFAULT_BACKOFF)
        );
        assert_eq!(retry_after(&Status::resource_exhausted("too big")), None);
        assert_eq!(retry_after(&Status::invalid_argument("bad")), None);
        let details = sluice::receivers::otlp::rpc::Status::new(Code::Unavailable, "busy")
            .with_retry_delay(Duration::from_millis(300));
        let status =
            Status::with_details(Code::Unavailable, "busy", details.encode_to_vec().into());
        assert_eq!(retry_after(&status), Some(Duration::from_millis(300)));
    }
}
