//! A labelled replay set: logs, metrics and request spans of a small shop (five services) over a
//! simulated period, with incidents injected at known times and noise that must not alert.
//!
//! The output is what the OpenTelemetry Collector's file exporter writes: one OTLP/JSON export
//! request per line (`ExportLogsServiceRequest`, `ExportMetricsServiceRequest` or
//! `ExportTraceServiceRequest`), in time order. Each line holds one step (10 s) of one signal for
//! every service. [`generate`] also returns the labels: every incident with its kind, service,
//! the detector meant to catch it (and others whose alert on it is right too), its `onset` (when
//! the trouble began), `start` (when it shows in the data as its detector defines it: the first
//! burst line, the disk past 90 %) and `end`; and every noise episode, which must not alert.
//!
//! Deterministic: the same seed and length give the same bytes (the random numbers come from a
//! SplitMix64 of our own, not from a crate whose algorithm may change). The schedule is laid out
//! for 8 hours; other lengths scale the positions and durations of incidents and noise by
//! `hours / 8`, so very short sets (used by tests of `sluice replay`) keep every kind of event.
//!
//! This file is also compiled into the `sluice` crate's `tests/replay.rs` (by `#[path]`), so it
//! uses only crates both packages depend on: opentelemetry-proto, serde_json and chrono.

use std::io::{self, Write};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use serde_json::{Value, json};

/// The set's fixed start: 2025-06-02T00:00:00Z, in Unix nanoseconds (in the past, so that
/// detectors refusing points far ahead of the wall clock take it unrestamped).
pub const BASE_TIME_NANOS: i64 = 1_748_822_400_000_000_000;

/// Length of one step (one line per signal), in seconds.
pub const STEP_SECONDS: i64 = 10;

/// Seconds after an incident's end during which its detector's alert still counts as a hit.
pub const GRACE_SECONDS: i64 = 600;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Seed of the random numbers.
    pub seed: u64,
    /// Length of the simulated period, in hours (the schedule is laid out for 8).
    pub hours: f64,
    /// Event time of the first step, Unix nanoseconds.
    pub base_time_nanos: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            hours: 8.0,
            base_time_nanos: BASE_TIME_NANOS,
        }
    }
}

/// What a generated set holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Lines written (export requests).
    pub lines: u64,
    /// Log records.
    pub logs: u64,
    /// Metric data points.
    pub metric_points: u64,
    /// Spans.
    pub spans: u64,
    /// Event time of the first record, Unix nanoseconds.
    pub first_time_nanos: i64,
    /// Event time of the last record, Unix nanoseconds.
    pub last_time_nanos: i64,
}

impl Counts {
    /// All records: log records, metric points and spans.
    pub fn records(&self) -> u64 {
        self.logs + self.metric_points + self.spans
    }
}

// ── Random numbers ─────────────────────────────────────────────────────────────────────────────

/// SplitMix64: small, fast and fixed forever, so a seed means the same set in every version.
struct Random(u64);

impl Random {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Poisson-distributed count with mean `mean` (Knuth; the means here are small).
    fn poisson(&mut self, mean: f64) -> u32 {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 30.0 {
            return (mean + mean.sqrt() * self.normal()).round().max(0.0) as u32;
        }
        let limit = (-mean).exp();
        let mut product = self.unit();
        let mut count = 0;
        while product > limit {
            count += 1;
            product *= self.unit();
        }
        count
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        out
    }
}

// ── The shop ───────────────────────────────────────────────────────────────────────────────────

/// The services, with their host and request route.
const SERVICES: [(&str, &str, &str); 5] = [
    ("frontend", "node-1", "GET /products/{id}"),
    ("checkout", "node-2", "POST /checkout"),
    ("payments", "node-3", "POST /payments/authorize"),
    ("inventory", "node-2", "POST /inventory/reserve"),
    ("shipping-worker", "node-4", "process shipment"),
];

const FRONTEND: usize = 0;
const CHECKOUT: usize = 1;
const PAYMENTS: usize = 2;
const INVENTORY: usize = 3;
const SHIPPING: usize = 4;

/// Log records per second per service in normal operation.
const LOG_RATE: f64 = 0.5;

/// Server spans (requests) per second per service.
const REQUEST_RATE: f64 = 0.3;

/// Share of failed requests in normal operation (the SLO is 99.9 %).
const BASE_ERROR_RATE: f64 = 0.0002;

const INFO: i32 = 9;
const WARN: i32 = 13;
const ERROR: i32 = 17;

/// Normal log templates of each service: (severity, weight, template). `{n}` is replaced by a
/// number, `{id}` by an identifier.
const TEMPLATES: [&[(i32, u32, &str)]; 5] = [
    &[
        (INFO, 40, "GET /products/{id} 200 {n}ms"),
        (INFO, 25, "GET /cart 200 {n}ms"),
        (INFO, 15, "user {id} logged in"),
        (WARN, 3, "slow request GET /search took {n}ms"),
    ],
    &[
        (INFO, 40, "order {id} created for user {id}"),
        (INFO, 30, "cart {id} priced at {n} EUR"),
        (
            WARN,
            3,
            "retrying inventory reservation for order {id} (attempt {n})",
        ),
    ],
    &[
        (INFO, 45, "authorized payment {id} amount {n} EUR"),
        (INFO, 10, "settlement batch {n} flushed ({n} items)"),
    ],
    &[
        (INFO, 40, "reserved {n} units of sku {id}"),
        (INFO, 25, "stock level for sku {id}: {n}"),
        (WARN, 4, "stock low for sku {id}: {n} left"),
    ],
    &[
        (INFO, 40, "dispatched shipment {id} via {id}"),
        (INFO, 30, "polled queue: {n} messages"),
    ],
];

/// Known error templates (seen now and then in normal operation, and in error bursts).
const CARD_DECLINED: &str = "payment authorization failed for order {id}: card declined";
const UPSTREAM_503: &str = "upstream checkout returned 503 for request {id}";
const ACQUIRER_TIMEOUT: &str = "gateway timeout talking to acquirer after {n}ms";
const PRINTER_DOWN: &str = "label printer {id} unreachable";
/// The error line of a failed request, per service.
const REQUEST_FAILED: &str = "request {id} failed with status 500: {id}";
/// Rare warning seen every half hour or so from the start (known, benign).
const SETTLEMENT_RETRY: &str = "settlement retry scheduled for batch {n}";

/// New templates, never seen before their incident.
const TLS_FALLBACK: &str =
    "acquirer TLS session resumption disabled, falling back to full handshake (peer 10.4.{n}.{n})";
const REPLICA_LAG: &str = "replica lag exceeded {n}s on shard {n}, serving stale reads";

/// Metric names.
const LATENCY: &str = "http.server.latency";
const CPU: &str = "process.cpu.utilization";
const MEMORY: &str = "process.memory.usage";
const QUEUE_DEPTH: &str = "messaging.queue.depth";
const DISK: &str = "system.filesystem.utilization";

/// Normal mean latency (ms) of each service.
const BASE_LATENCY: [f64; 5] = [45.0, 120.0, 80.0, 30.0, 250.0];

// ── The schedule ───────────────────────────────────────────────────────────────────────────────

/// What happens to a service over an interval of event time.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Effect {
    /// ERROR logs of a known template at `per_second`.
    ErrorLogs {
        template: &'static str,
        per_second: f64,
    },
    /// A never-seen template at `per_second`, with its severity.
    NewTemplate {
        template: &'static str,
        severity: i32,
        per_second: f64,
    },
    /// The mean latency is multiplied by `factor`.
    Latency { factor: f64 },
    /// The queue depth is multiplied by `factor`.
    QueueDepth { factor: f64 },
    /// The disk fills from `from` to `to` (share) linearly over the first `ramp_share` of the
    /// interval, stays near `to`, and is cleaned up (to 0.55) at its end.
    DiskFill { from: f64, to: f64, ramp_share: f64 },
    /// The disk shows `level` over the interval.
    DiskLevel { level: f64 },
    /// Failed requests at `error_rate`.
    Errors { error_rate: f64 },
}

/// One scheduled episode: an incident (with the detector meant to catch it) or noise.
#[derive(Clone, Debug)]
struct Episode {
    id: &'static str,
    kind: &'static str,
    service: usize,
    start: i64,
    end: i64,
    /// The detector meant to catch it; `None` for noise.
    detector: Option<&'static str>,
    /// Other detectors whose alert on it is right too (not counted against them).
    accepted_by: &'static [&'static str],
    effect: Effect,
    description: &'static str,
    /// For incidents: the first and last event time it showed in the data (set while
    /// generating; the labels use them when present).
    seen_start: Option<i64>,
    seen_end: Option<i64>,
}

fn schedule(options: &Options) -> Vec<Episode> {
    let scale = options.hours / 8.0;
    let base = options.base_time_nanos;
    // Minutes of the 8-hour layout, scaled.
    let at = |minute: f64| base + (minute * scale * 60.0 * NANOS_PER_SECOND as f64) as i64;
    let mut episodes = Vec::new();
    #[allow(clippy::too_many_arguments)]
    let mut add = |id: &'static str,
                   kind: &'static str,
                   service: usize,
                   (start, minutes): (f64, f64),
                   detector: Option<&'static str>,
                   accepted_by: &'static [&'static str],
                   effect: Effect,
                   description: &'static str| {
        episodes.push(Episode {
            id,
            kind,
            service,
            start: at(start),
            end: at(start + minutes),
            detector,
            accepted_by,
            effect,
            description,
            seen_start: None,
            seen_end: None,
        });
    };
    // Incidents. The first hour (scaled) is warm-up: normal operation only.
    add(
        "eb-1",
        "error-burst",
        CHECKOUT,
        (96.0, 8.0),
        Some("error-burst"),
        &["log-novelty"],
        Effect::ErrorLogs {
            template: CARD_DECLINED,
            per_second: 3.0,
        },
        "card declines after a bad deploy of the card-validation rules: 3 ERROR/s of a known template",
    );
    add(
        "nov-1",
        "new-error-template",
        PAYMENTS,
        (130.0, 25.0),
        Some("log-novelty"),
        &[],
        Effect::NewTemplate {
            template: TLS_FALLBACK,
            severity: WARN,
            per_second: 0.05,
        },
        "a new WARN line (TLS fallback to the acquirer) that precedes the latency shift ls-1",
    );
    add(
        "ls-1",
        "metric-level-shift",
        PAYMENTS,
        (144.0, 80.0),
        Some("ewma-anomaly"),
        &[],
        Effect::Latency { factor: 2.8 },
        "payments latency steps from 80 ms to about 225 ms and stays there for 80 minutes",
    );
    add(
        "disk-1",
        "disk-filling",
        INVENTORY,
        (168.0, 100.0),
        Some("threshold"),
        &["ewma-anomaly"],
        Effect::DiskFill {
            from: 0.72,
            to: 0.97,
            ramp_share: 0.6,
        },
        "the inventory data volume fills past 90 % and stays there until cleaned up",
    );
    add(
        "slo-1",
        "error-budget-burn",
        CHECKOUT,
        (216.0, 100.0),
        Some("slo-burn"),
        &[],
        Effect::Errors { error_rate: 0.025 },
        "2.5 % of checkout requests fail for 100 minutes (SLO 99.9 %: burn rate 25)",
    );
    add(
        "nov-2",
        "new-error-template",
        INVENTORY,
        (278.0, 20.0),
        Some("log-novelty"),
        &[],
        Effect::NewTemplate {
            template: REPLICA_LAG,
            severity: ERROR,
            per_second: 1.0 / 30.0,
        },
        "a new ERROR line (replica lag, stale reads) every 30 s",
    );
    add(
        "eb-2",
        "error-burst",
        FRONTEND,
        (317.0, 5.0),
        Some("error-burst"),
        &["log-novelty"],
        Effect::ErrorLogs {
            template: UPSTREAM_503,
            per_second: 2.0,
        },
        "the frontend logs 2 ERROR/s of a known template while checkout restarts",
    );
    add(
        "ls-2",
        "metric-level-shift",
        SHIPPING,
        (346.0, 60.0),
        Some("ewma-anomaly"),
        &[],
        Effect::QueueDepth { factor: 9.0 },
        "the shipping queue backs up from about 40 to about 360 messages and stays there for an hour",
    );
    add(
        "slo-2",
        "error-budget-burn",
        FRONTEND,
        (384.0, 80.0),
        Some("slo-burn"),
        &[],
        Effect::Errors { error_rate: 0.03 },
        "3 % of frontend requests fail for 80 minutes (burn rate 30)",
    );
    // Noise: none of it should alert.
    for (index, start) in [72.0, 192.0, 312.0, 432.0].into_iter().enumerate() {
        let id = ["periodic-1", "periodic-2", "periodic-3", "periodic-4"][index];
        add(
            id,
            "periodic-burst",
            SHIPPING,
            (start, 3.0),
            None,
            &[],
            Effect::QueueDepth { factor: 3.5 },
            "the two-hourly batch import: the queue triples for 3 minutes and drains",
        );
        add(
            id,
            "periodic-burst",
            SHIPPING,
            (start, 3.0),
            None,
            &[],
            Effect::ErrorLogs {
                template: PRINTER_DOWN,
                per_second: 0.1,
            },
            "the two-hourly batch import: a few printer errors (6 a minute) for 3 minutes",
        );
    }
    add(
        "spike-disk",
        "single-spike",
        INVENTORY,
        (80.0, 1.0),
        None,
        &[],
        Effect::DiskLevel { level: 0.93 },
        "log rotation's temporary files: the disk at 93 % for one minute",
    );
    add(
        "spike-latency",
        "single-spike",
        CHECKOUT,
        (264.0, 0.17),
        None,
        &[],
        Effect::Latency { factor: 8.0 },
        "one latency point eight times the normal (a GC pause)",
    );
    add(
        "blip-errors",
        "single-spike",
        FRONTEND,
        (250.0, 1.0),
        None,
        &[],
        Effect::Errors { error_rate: 0.3 },
        "a deploy blip: 30 % of frontend requests fail for one minute",
    );
    add(
        "drift-memory",
        "slow-drift",
        FRONTEND,
        (0.0, 480.0),
        None,
        &[],
        Effect::Latency { factor: 1.0 },
        "frontend memory grows slowly by 40 % over the whole period (a cache warming up)",
    );
    episodes
}

// ── Generation ─────────────────────────────────────────────────────────────────────────────────

/// Writes the set to `out` (one OTLP/JSON request per line) and returns its labels as JSON
/// (`labels.json`) with the counts.
pub fn generate(options: &Options, out: &mut impl Write) -> io::Result<(Value, Counts)> {
    let mut random = Random(options.seed ^ 0x5EED_0F1A_B31E_D5AA);
    let mut episodes = schedule(options);
    let steps = ((options.hours * 3600.0) as i64 / STEP_SECONDS).max(1);
    let step_nanos = STEP_SECONDS * NANOS_PER_SECOND;
    let end_time = options.base_time_nanos + steps * step_nanos;
    let resources: Vec<Resource> = SERVICES
        .iter()
        .map(|&(service, host, _)| Resource {
            attributes: vec![
                string_attribute("service.name", service),
                string_attribute("host.name", host),
            ],
            ..Default::default()
        })
        .collect();
    let scope = InstrumentationScope {
        name: "shop.simulator".into(),
        version: "1".into(),
        ..Default::default()
    };
    let mut counts = Counts {
        first_time_nanos: i64::MAX,
        last_time_nanos: i64::MIN,
        ..Counts::default()
    };
    let mut next_id: u64 = 100_000;
    let mut settlement_due = options.base_time_nanos + 5 * 60 * NANOS_PER_SECOND;
    let mut line = Vec::with_capacity(64 * 1024);

    for step in 0..steps {
        let step_start = options.base_time_nanos + step * step_nanos;
        let step_end = step_start + step_nanos;
        let active: Vec<usize> = (0..episodes.len())
            .filter(|&index| {
                let episode = &episodes[index];
                episode.start < step_end && episode.end > step_start
            })
            .collect();

        // Metrics: one point per series at the step's start.
        let mut resource_metrics = Vec::new();
        for (service, resource) in resources.iter().enumerate() {
            let mut metrics = Vec::new();
            let mut latency_factor = 1.0;
            let mut queue_factor = 1.0;
            let mut disk_override = None;
            for &index in &active {
                let episode = &episodes[index];
                if episode.service != service
                    || step_start < episode.start
                    || step_start >= episode.end
                {
                    continue;
                }
                match episode.effect {
                    Effect::Latency { factor } => latency_factor *= factor,
                    Effect::QueueDepth { factor } => queue_factor *= factor,
                    Effect::DiskLevel { level } => disk_override = Some(level),
                    Effect::DiskFill {
                        from,
                        to,
                        ramp_share,
                    } => {
                        let progress = (step_start - episode.start) as f64
                            / ((episode.end - episode.start) as f64 * ramp_share);
                        disk_override = Some(from + (to - from) * progress.min(1.0));
                    }
                    _ => {}
                }
            }
            let latency =
                BASE_LATENCY[service] * latency_factor * (1.0 + 0.06 * random.normal()).max(0.5);
            metrics.push(gauge(LATENCY, "ms", step_start, latency, vec![]));
            if service == FRONTEND {
                let cpu = (0.25 + 0.04 * random.normal()).clamp(0.01, 1.0);
                metrics.push(gauge(CPU, "1", step_start, cpu, vec![]));
            }
            if service == FRONTEND {
                // Slow drift: +40 % over the whole period.
                let progress = (step_start - options.base_time_nanos) as f64
                    / (end_time - options.base_time_nanos) as f64;
                let memory = 512e6 * (1.0 + 0.4 * progress) * (1.0 + 0.01 * random.normal());
                metrics.push(gauge(MEMORY, "By", step_start, memory, vec![]));
            }
            if service == SHIPPING {
                let depth = (40.0 * queue_factor * (1.0 + 0.08 * random.normal())).max(0.0);
                metrics.push(gauge(
                    QUEUE_DEPTH,
                    "{message}",
                    step_start,
                    depth.round(),
                    vec![],
                ));
            }
            if matches!(service, CHECKOUT | INVENTORY | SHIPPING) {
                let (mountpoint, level) = match service {
                    INVENTORY => ("/var/lib/inventory", 0.72),
                    CHECKOUT => ("/", 0.85),
                    _ => ("/", 0.55),
                };
                let level = disk_override.unwrap_or(level) + 0.002 * random.normal();
                metrics.push(gauge(
                    DISK,
                    "1",
                    step_start,
                    level.clamp(0.0, 1.0),
                    vec![string_attribute("system.filesystem.mountpoint", mountpoint)],
                ));
                if service == INVENTORY && level > 0.9 {
                    mark_seen(&mut episodes, &active, service, step_start, |effect| {
                        matches!(effect, Effect::DiskFill { .. })
                    });
                }
            }
            if latency_factor > 1.0 {
                mark_seen(&mut episodes, &active, service, step_start, |effect| {
                    matches!(effect, Effect::Latency { .. })
                });
            }
            if queue_factor > 1.0 {
                mark_seen(&mut episodes, &active, service, step_start, |effect| {
                    matches!(effect, Effect::QueueDepth { .. })
                });
            }
            counts.metric_points += metrics.len() as u64;
            resource_metrics.push(ResourceMetrics {
                resource: Some(resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(scope.clone()),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        counts.first_time_nanos = counts.first_time_nanos.min(step_start);
        counts.last_time_nanos = counts.last_time_nanos.max(step_start);
        write_line(
            out,
            &mut line,
            &ExportMetricsServiceRequest { resource_metrics },
        )?;
        counts.lines += 1;

        // Spans (requests) and the logs of this step, per service.
        let mut logs_by_service: Vec<Vec<LogRecord>> = vec![Vec::new(); SERVICES.len()];
        let mut spans_by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES.len()];
        for service in 0..SERVICES.len() {
            let logs = &mut logs_by_service[service];
            // Normal traffic.
            let templates = TEMPLATES[service];
            let total_weight: u32 = templates.iter().map(|&(_, weight, _)| weight).sum();
            for _ in 0..random.poisson(LOG_RATE * STEP_SECONDS as f64) {
                let mut pick = random.below(u64::from(total_weight)) as u32;
                let &(severity, _, template) = templates
                    .iter()
                    .find(|&&(_, weight, _)| {
                        if pick < weight {
                            true
                        } else {
                            pick -= weight;
                            false
                        }
                    })
                    .unwrap_or(&templates[0]);
                let time = step_start + random.below(step_nanos as u64) as i64;
                let body = fill(template, &mut random, &mut next_id);
                logs.push(log_record(time, severity, body));
            }
            // Rare known errors: a few an hour. Each also shows once early on (with the error
            // line of a failed request), as in a service's history: they are known, not new.
            let rare = match service {
                FRONTEND => UPSTREAM_503,
                CHECKOUT => CARD_DECLINED,
                PAYMENTS => ACQUIRER_TIMEOUT,
                INVENTORY => "reservation for sku {id} conflicted, retried",
                _ => PRINTER_DOWN,
            };
            let history_at =
                options.base_time_nanos + (120 + 30 * service as i64) * NANOS_PER_SECOND;
            if random.chance(3.0 * STEP_SECONDS as f64 / 3600.0)
                || (step_start..step_end).contains(&history_at)
            {
                let time = step_start + random.below(step_nanos as u64) as i64;
                let body = fill(rare, &mut random, &mut next_id);
                logs.push(log_record(time, ERROR, body));
            }
            if (step_start..step_end).contains(&history_at) {
                let body = fill(REQUEST_FAILED, &mut random, &mut next_id);
                logs.push(log_record(history_at, ERROR, body));
            }
            if service == PAYMENTS && step_start >= settlement_due {
                let body = fill(SETTLEMENT_RETRY, &mut random, &mut next_id);
                logs.push(log_record(step_start + NANOS_PER_SECOND, WARN, body));
                settlement_due += (25 + random.below(10) as i64) * 60 * NANOS_PER_SECOND;
            }

            // Episodes of this service.
            let mut error_rate = BASE_ERROR_RATE;
            let mut latency_factor = 1.0;
            for &index in &active {
                let episode = &episodes[index];
                if episode.service != service {
                    continue;
                }
                let from = episode.start.max(step_start);
                let to = episode.end.min(step_end);
                let seconds = (to - from) as f64 / NANOS_PER_SECOND as f64;
                let (template, severity, per_second) = match episode.effect {
                    Effect::ErrorLogs {
                        template,
                        per_second,
                    } => (template, ERROR, per_second),
                    Effect::NewTemplate {
                        template,
                        severity,
                        per_second,
                    } => (template, severity, per_second),
                    Effect::Errors { error_rate: rate } => {
                        if step_start >= episode.start {
                            error_rate = rate;
                        }
                        continue;
                    }
                    Effect::Latency { factor } => {
                        if step_start >= episode.start && step_start < episode.end {
                            latency_factor *= factor;
                        }
                        continue;
                    }
                    _ => continue,
                };
                // Evenly spaced (with jitter) at the episode's rate, starting at its start.
                let interval = 1.0 / per_second;
                let first = ((from - episode.start) as f64 / NANOS_PER_SECOND as f64 / interval)
                    .ceil() as i64;
                let count = ((seconds / interval).ceil() as i64).max(1);
                let episode_start = episode.start;
                for k in first..first + count {
                    let offset = (k as f64 * interval + 0.3 * interval.min(1.0) * random.unit())
                        * NANOS_PER_SECOND as f64;
                    let time = episode_start + offset as i64;
                    if time < from || time >= to {
                        continue;
                    }
                    let body = fill(template, &mut random, &mut next_id);
                    logs.push(log_record(time, severity, body));
                    let episode = &mut episodes[index];
                    episode.seen_start.get_or_insert(time);
                    episode.seen_end = Some(time);
                }
            }

            // Requests: a server span each; a failed one also logs an ERROR.
            let (_, _, route) = SERVICES[service];
            let spans = &mut spans_by_service[service];
            for _ in 0..random.poisson(REQUEST_RATE * STEP_SECONDS as f64) {
                let start = step_start + random.below(step_nanos as u64) as i64;
                let millis = (BASE_LATENCY[service]
                    * latency_factor
                    * (1.0 + 0.3 * random.normal()).max(0.2))
                .max(1.0);
                let end = start + (millis * 1e6) as i64;
                let failed = random.chance(error_rate);
                let trace_id = random.bytes::<16>();
                spans.push(Span {
                    trace_id: trace_id.to_vec(),
                    span_id: random.bytes::<8>().to_vec(),
                    name: route.into(),
                    kind: span::SpanKind::Server as i32,
                    start_time_unix_nano: start as u64,
                    end_time_unix_nano: end as u64,
                    attributes: vec![int_attribute(
                        "http.response.status_code",
                        if failed { 500 } else { 200 },
                    )],
                    status: Some(Status {
                        code: if failed { 2 } else { 0 },
                        message: String::new(),
                    }),
                    ..Default::default()
                });
                if failed {
                    let body = fill(REQUEST_FAILED, &mut random, &mut next_id);
                    let mut record = log_record(end, ERROR, body);
                    record.trace_id = trace_id.to_vec();
                    logs.push(record);
                    if error_rate > BASE_ERROR_RATE {
                        mark_seen(&mut episodes, &active, service, start, |effect| {
                            matches!(effect, Effect::Errors { .. })
                        });
                    }
                }
            }
            logs.sort_by_key(|record| record.time_unix_nano);
            spans.sort_by_key(|span| span.start_time_unix_nano);
        }

        let resource_logs: Vec<ResourceLogs> = logs_by_service
            .into_iter()
            .zip(&resources)
            .filter(|(records, _)| !records.is_empty())
            .map(|(log_records, resource)| {
                counts.logs += log_records.len() as u64;
                if let (Some(first), Some(last)) = (log_records.first(), log_records.last()) {
                    counts.first_time_nanos =
                        counts.first_time_nanos.min(first.time_unix_nano as i64);
                    counts.last_time_nanos = counts.last_time_nanos.max(last.time_unix_nano as i64);
                }
                ResourceLogs {
                    resource: Some(resource.clone()),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(scope.clone()),
                        log_records,
                        ..Default::default()
                    }],
                    ..Default::default()
                }
            })
            .collect();
        if !resource_logs.is_empty() {
            write_line(out, &mut line, &ExportLogsServiceRequest { resource_logs })?;
            counts.lines += 1;
        }
        let resource_spans: Vec<ResourceSpans> = spans_by_service
            .into_iter()
            .zip(&resources)
            .filter(|(spans, _)| !spans.is_empty())
            .map(|(spans, resource)| {
                counts.spans += spans.len() as u64;
                if let Some(last) = spans.iter().map(|span| span.end_time_unix_nano).max() {
                    counts.last_time_nanos = counts.last_time_nanos.max(last as i64);
                }
                ResourceSpans {
                    resource: Some(resource.clone()),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(scope.clone()),
                        spans,
                        ..Default::default()
                    }],
                    ..Default::default()
                }
            })
            .collect();
        if !resource_spans.is_empty() {
            write_line(
                out,
                &mut line,
                &ExportTraceServiceRequest { resource_spans },
            )?;
            counts.lines += 1;
        }
    }
    out.flush()?;
    Ok((labels(options, &episodes, &counts), counts))
}

/// Notes that an incident of `service` whose effect `matches` showed at `time`.
fn mark_seen(
    episodes: &mut [Episode],
    active: &[usize],
    service: usize,
    time: i64,
    matches: impl Fn(&Effect) -> bool,
) {
    for &index in active {
        let episode = &mut episodes[index];
        if episode.service == service && episode.detector.is_some() && matches(&episode.effect) {
            episode.seen_start.get_or_insert(time);
            episode.seen_end = Some(time);
        }
    }
}

fn labels(options: &Options, episodes: &[Episode], counts: &Counts) -> Value {
    let scale = options.hours / 8.0;
    let warmup_end = options.base_time_nanos + (3600.0 * scale) as i64 * NANOS_PER_SECOND;
    let mut incidents = Vec::new();
    let mut noise = Vec::new();
    for episode in episodes {
        let (service, _, _) = SERVICES[episode.service];
        match episode.detector {
            Some(detector) => {
                // The incident as it showed in the data; the disk one starts when it passes 90 %.
                let start = match episode.effect {
                    Effect::ErrorLogs { .. }
                    | Effect::NewTemplate { .. }
                    | Effect::DiskFill { .. } => episode.seen_start.unwrap_or(episode.start),
                    _ => episode.start,
                };
                let end = episode.seen_end.map_or(episode.end, |seen| {
                    // A level shift or a burn lasts to the end of its last step.
                    match episode.effect {
                        Effect::ErrorLogs { .. } | Effect::NewTemplate { .. } => seen,
                        _ => episode.end,
                    }
                });
                incidents.push(json!({
                    "id": episode.id,
                    "kind": episode.kind,
                    "service": service,
                    "detector": detector,
                    "accepted_by": episode.accepted_by,
                    "start": rfc3339(start),
                    "end": rfc3339(end),
                    "start_unix_nano": start,
                    "onset": rfc3339(episode.start),
                    "onset_unix_nano": episode.start,
                    "end_unix_nano": end,
                    "description": episode.description,
                }));
            }
            None => {
                // Noise with two effects (the periodic burst) is listed once.
                if noise
                    .iter()
                    .any(|item: &Value| item["id"] == episode.id && item["service"] == service)
                {
                    continue;
                }
                noise.push(json!({
                    "id": episode.id,
                    "kind": episode.kind,
                    "service": service,
                    "start": rfc3339(episode.start),
                    "end": rfc3339(episode.end),
                    "start_unix_nano": episode.start,
                    "end_unix_nano": episode.end,
                    "description": episode.description,
                }));
            }
        }
    }
    json!({
        "format": "sluice incident set 1",
        "seed": options.seed,
        "hours": options.hours,
        "start": rfc3339(options.base_time_nanos),
        "warmup_end": rfc3339(warmup_end),
        "warmup_end_unix_nano": warmup_end,
        "grace_seconds": GRACE_SECONDS,
        "services": SERVICES.iter().map(|&(service, _, _)| service).collect::<Vec<_>>(),
        "counts": {
            "lines": counts.lines,
            "logs": counts.logs,
            "metric_points": counts.metric_points,
            "spans": counts.spans,
            "first_unix_nano": counts.first_time_nanos,
            "last_unix_nano": counts.last_time_nanos,
        },
        "incidents": incidents,
        "noise": noise,
    })
}

/// RFC 3339 in UTC with as many fractional digits as needed.
pub fn rfc3339(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos)
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Writes one request as a line, without the fields a protobuf JSON encoder (the Collector's)
/// leaves out when they hold their default.
fn write_line<T: serde::Serialize>(
    out: &mut impl Write,
    buffer: &mut Vec<u8>,
    request: &T,
) -> io::Result<()> {
    let mut value = serde_json::to_value(request)?;
    omit_defaults(&mut value);
    buffer.clear();
    serde_json::to_writer(&mut *buffer, &value)?;
    buffer.push(b'\n');
    out.write_all(buffer)
}

/// Fields left out when empty, zero or `""`. Never the members of an `AnyValue` or a data
/// point's value (a gauge at 0 keeps its `asDouble`).
const OMITTED_WHEN_DEFAULT: [&str; 18] = [
    "attributes",
    "droppedAttributesCount",
    "droppedEventsCount",
    "droppedLinksCount",
    "entityRefs",
    "schemaUrl",
    "description",
    "metadata",
    "exemplars",
    "flags",
    "startTimeUnixNano",
    "traceState",
    "parentSpanId",
    "events",
    "links",
    "message",
    "eventName",
    "traceId",
];

fn omit_defaults(value: &mut Value) {
    match value {
        Value::Object(object) => {
            object.retain(|key, field| {
                !(OMITTED_WHEN_DEFAULT.contains(&key.as_str())
                    && match field {
                        Value::Array(items) => items.is_empty(),
                        Value::String(text) => text.is_empty() || text == "0",
                        Value::Number(number) => number.as_f64() == Some(0.0),
                        Value::Null => true,
                        _ => false,
                    })
            });
            for field in object.values_mut() {
                omit_defaults(field);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(omit_defaults),
        _ => {}
    }
}

/// Replaces `{n}` by a number and `{id}` by an identifier.
fn fill(template: &str, random: &mut Random, next_id: &mut u64) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(position) = rest.find('{') {
        out.push_str(&rest[..position]);
        rest = &rest[position..];
        if let Some(after) = rest.strip_prefix("{n}") {
            out.push_str(&(1 + random.below(499)).to_string());
            rest = after;
        } else if let Some(after) = rest.strip_prefix("{id}") {
            *next_id += 1 + random.below(7);
            out.push_str(&format!("{:x}", *next_id * 2_654_435_761 % 0xFFF_FFFF));
            rest = after;
        } else {
            out.push('{');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

fn log_record(time: i64, severity: i32, body: String) -> LogRecord {
    LogRecord {
        time_unix_nano: time as u64,
        observed_time_unix_nano: time as u64 + 2_000_000,
        severity_number: severity,
        severity_text: match severity {
            ERROR => "ERROR",
            WARN => "WARN",
            _ => "INFO",
        }
        .into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body)),
        }),
        ..Default::default()
    }
}

fn gauge(name: &str, unit: &str, time: i64, value: f64, attributes: Vec<KeyValue>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                attributes,
                time_unix_nano: time as u64,
                value: Some(number_data_point::Value::AsDouble(value)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    }
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn int_attribute(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Options {
        Options {
            seed: 7,
            hours: 0.5,
            ..Options::default()
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_does_not() {
        let mut first = Vec::new();
        let mut second = Vec::new();
        let mut other = Vec::new();
        generate(&small(), &mut first).unwrap();
        generate(&small(), &mut second).unwrap();
        generate(&Options { seed: 8, ..small() }, &mut other).unwrap();
        assert_eq!(first, second);
        assert_ne!(first, other);
    }

    #[test]
    fn lines_are_otlp_json_requests_in_time_order_and_the_counts_add_up() {
        let mut out = Vec::new();
        let (labels, counts) = generate(&small(), &mut out).unwrap();
        let mut records = 0u64;
        let mut previous_first = 0i64;
        for line in out
            .split(|&byte| byte == b'\n')
            .filter(|line| !line.is_empty())
        {
            let value: Value = serde_json::from_slice(line).unwrap();
            let mut times = Vec::new();
            if value.get("resourceLogs").is_some() {
                let request: ExportLogsServiceRequest = serde_json::from_slice(line).unwrap();
                for resource in &request.resource_logs {
                    for scope in &resource.scope_logs {
                        records += scope.log_records.len() as u64;
                        times.extend(scope.log_records.iter().map(|r| r.time_unix_nano as i64));
                    }
                }
                // Ids are hex, times are strings.
                assert!(value.to_string().contains("\"timeUnixNano\":\""));
            } else if value.get("resourceMetrics").is_some() {
                let request: ExportMetricsServiceRequest = serde_json::from_slice(line).unwrap();
                for resource in &request.resource_metrics {
                    for scope in &resource.scope_metrics {
                        for metric in &scope.metrics {
                            if let Some(metric::Data::Gauge(gauge)) = &metric.data {
                                records += gauge.data_points.len() as u64;
                                times.extend(
                                    gauge.data_points.iter().map(|p| p.time_unix_nano as i64),
                                );
                            }
                        }
                    }
                }
            } else {
                let request: ExportTraceServiceRequest = serde_json::from_slice(line).unwrap();
                for resource in &request.resource_spans {
                    for scope in &resource.scope_spans {
                        records += scope.spans.len() as u64;
                        times.extend(scope.spans.iter().map(|s| s.start_time_unix_nano as i64));
                    }
                }
            }
            let first = times.iter().copied().min().unwrap();
            assert!(first >= previous_first - STEP_SECONDS * NANOS_PER_SECOND);
            previous_first = previous_first.max(first);
        }
        assert_eq!(records, counts.records());
        assert_eq!(labels["incidents"].as_array().unwrap().len(), 9);
        for incident in labels["incidents"].as_array().unwrap() {
            assert!(
                incident["start_unix_nano"].as_i64() < incident["end_unix_nano"].as_i64(),
                "{incident}"
            );
        }
    }
}
