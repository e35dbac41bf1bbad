//! The gateway's own telemetry: its counters in the Prometheus text format, served with health
//! checks on the admin address (`[admin] address`).
//!
//! `GET /metrics` (Prometheus text format 0.0.4), `GET /healthz` (the process answers),
//! `GET /readyz` (receivers started), and the alert silences: `GET /api/silences`,
//! `POST /api/silences`, `DELETE /api/silences/{id}` (see [`silences`] and `docs/alerts.md`).

mod silences;

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::alerts::silences::SilenceStore;
use crate::gateway::GatewayStats;
use crate::intake::{Log, Repair};

/// `[admin]`: where the gateway serves its metrics and health checks.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Listen address, e.g. `127.0.0.1:9464`.
    pub address: SocketAddr,
}

/// Binds the admin address and serves until `shutdown`.
pub async fn serve(
    config: &AdminConfig,
    stats: Arc<GatewayStats>,
    ready: Arc<AtomicBool>,
    silence_store: Arc<SilenceStore>,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(config.address)
        .await
        .map_err(|error| {
            anyhow::anyhow!(
                "cannot listen for the admin endpoint on {}: {error}",
                config.address
            )
        })?;
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let stats = stats.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        render(&stats),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/silences", get(silences::list).post(silences::create))
        .route("/api/silences/{id}", delete(silences::remove))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.load(Ordering::Relaxed);
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n").into_response()
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
                    }
                }
            }),
        )
        .with_state(silence_store);
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "admin endpoint failed");
        }
    }))
}

/// One metric family being written.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn start<'o>(out: &'o mut String, name: &str, kind: &str, help: &str) -> Family<'o> {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (index, (key, label)) in labels.iter().enumerate() {
                if index > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape(label));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Escapes a label value as the text format asks (backslash, quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn read(counter: &AtomicU64) -> f64 {
    counter.load(Ordering::Relaxed) as f64
}

/// Writes a counter family over `parts` (name → stats), one sample each.
fn counters<T>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    parts: &std::collections::BTreeMap<String, Arc<T>>,
    value: impl Fn(&T) -> f64,
) {
    let mut family = Family::start(out, name, "counter", help);
    for (part, stats) in parts {
        family.sample(name, &[(label, part)], value(stats));
    }
}

/// Every counter of the gateway in the Prometheus text format.
pub fn render(stats: &GatewayStats) -> String {
    let mut out = String::new();
    let receivers = &stats.receivers;
    counters(
        &mut out,
        "sluice_receiver_requests_total",
        "Requests, datagrams, frames or reads handled.",
        "receiver",
        receivers,
        |s| read(&s.requests),
    );
    counters(
        &mut out,
        "sluice_receiver_records_accepted_total",
        "Records, points or spans handed to the intake.",
        "receiver",
        receivers,
        |s| read(&s.records_accepted),
    );
    counters(
        &mut out,
        "sluice_receiver_records_malformed_total",
        "Records or requests refused as malformed or too large.",
        "receiver",
        receivers,
        |s| read(&s.records_malformed),
    );
    counters(
        &mut out,
        "sluice_receiver_requests_refused_total",
        "Requests answered with a retryable error.",
        "receiver",
        receivers,
        |s| read(&s.requests_refused),
    );

    let pipelines = &stats.pipelines;
    counters(
        &mut out,
        "sluice_pipeline_batches_total",
        "Batches taken in.",
        "pipeline",
        pipelines,
        |s| read(&s.batches_in),
    );
    counters(
        &mut out,
        "sluice_pipeline_records_in_total",
        "Records, points, spans or lines taken in.",
        "pipeline",
        pipelines,
        |s| read(&s.records_in),
    );
    counters(
        &mut out,
        "sluice_pipeline_records_out_total",
        "Records that came out of the stages.",
        "pipeline",
        pipelines,
        |s| read(&s.records_out),
    );
    counters(
        &mut out,
        "sluice_pipeline_records_dropped_total",
        "Records dropped by filters or fault policies.",
        "pipeline",
        pipelines,
        |s| read(&s.records_dropped),
    );
    counters(
        &mut out,
        "sluice_pipeline_records_dead_lettered_total",
        "Records dead-lettered after a plugin fault.",
        "pipeline",
        pipelines,
        |s| read(&s.records_dead_lettered),
    );
    counters(
        &mut out,
        "sluice_pipeline_records_unrouted_total",
        "Records no route took.",
        "pipeline",
        pipelines,
        |s| read(&s.records_unrouted),
    );
    counters(
        &mut out,
        "sluice_pipeline_alerts_total",
        "Alerts raised.",
        "pipeline",
        pipelines,
        |s| read(&s.alerts),
    );

    let sinks = &stats.sinks;
    counters(
        &mut out,
        "sluice_sink_records_written_total",
        "Records, points or spans written.",
        "sink",
        sinks,
        |s| read(&s.records_written),
    );
    counters(
        &mut out,
        "sluice_sink_alerts_delivered_total",
        "Alerts delivered.",
        "sink",
        sinks,
        |s| read(&s.alerts_delivered),
    );
    counters(
        &mut out,
        "sluice_sink_write_errors_total",
        "Failed attempts, each retry counted.",
        "sink",
        sinks,
        |s| read(&s.write_errors),
    );
    counters(
        &mut out,
        "sluice_sink_items_dropped_total",
        "Items given up on after the last retry.",
        "sink",
        sinks,
        |s| read(&s.items_dropped),
    );

    {
        let mut family = Family::start(
            &mut out,
            "sluice_sink_failing",
            "gauge",
            "1 while the sink's last attempt failed and it backs off.",
        );
        for (sink, s) in sinks {
            family.sample(
                "sluice_sink_failing",
                &[("sink", sink)],
                f64::from(u8::from(s.failing.load(Ordering::Relaxed))),
            );
        }
    }
    alert_metrics(&mut out, sinks);
    if let Some(log) = &stats.log {
        buffer_metrics(&mut out, log, &stats.repairs);
    }

    let plugins: Vec<_> = stats
        .plugins
        .iter()
        .map(|((pipeline, plugin), stats)| (pipeline.as_str(), plugin.as_str(), stats.snapshot()))
        .collect();
    let plugin_family =
        |out: &mut String,
         name: &str,
         kind: &str,
         help: &str,
         value: &dyn Fn(&crate::runtime::PluginStatsSnapshot) -> f64| {
            let mut family = Family::start(out, name, kind, help);
            for (pipeline, plugin, snapshot) in &plugins {
                family.sample(
                    name,
                    &[("pipeline", pipeline), ("plugin", plugin)],
                    value(snapshot),
                );
            }
        };
    plugin_family(
        &mut out,
        "sluice_plugin_calls_total",
        "counter",
        "Calls into the plugin.",
        &|s| s.calls as f64,
    );
    plugin_family(
        &mut out,
        "sluice_plugin_records_in_total",
        "counter",
        "Records handed to the plugin.",
        &|s| s.records_in as f64,
    );
    plugin_family(
        &mut out,
        "sluice_plugin_records_out_total",
        "counter",
        "Records the plugin passed on.",
        &|s| s.records_out as f64,
    );
    plugin_family(
        &mut out,
        "sluice_plugin_call_seconds_total",
        "counter",
        "Time spent in calls.",
        &|s| s.call_nanos as f64 / 1e9,
    );
    plugin_family(
        &mut out,
        "sluice_plugin_instances_created_total",
        "counter",
        "Instances made (first, after faults, recycling).",
        &|s| s.instances_created as f64,
    );
    plugin_family(
        &mut out,
        "sluice_plugin_memory_high_water_bytes",
        "gauge",
        "Largest linear memory seen.",
        &|s| s.memory_high_water_bytes as f64,
    );
    plugin_family(
        &mut out,
        "sluice_plugin_quarantined",
        "gauge",
        "1 while the plugin is quarantined.",
        &|s| f64::from(u8::from(s.quarantined)),
    );
    plugin_family(
        &mut out,
        "sluice_plugin_parse_errors_total",
        "counter",
        "Lines a parser flagged as parse errors.",
        &|s| s.parse_errors as f64,
    );
    plugin_family(
        &mut out,
        "sluice_plugin_state_bytes",
        "gauge",
        "Size of a detector's last checkpointed (or restored) state.",
        &|s| s.state_bytes as f64,
    );
    {
        let name = "sluice_plugin_checkpoints_total";
        let help = "Detector state checkpoints, by outcome.";
        let mut family = Family::start(&mut out, name, "counter", help);
        for (pipeline, plugin, s) in &plugins {
            for (outcome, value) in [
                ("saved", s.checkpoints),
                ("write_failed", s.checkpoint_failures),
                ("state_too_large", s.states_refused),
                ("restored", s.restores),
                ("restore_refused", s.restore_failures),
            ] {
                family.sample(
                    name,
                    &[
                        ("pipeline", *pipeline),
                        ("plugin", *plugin),
                        ("outcome", outcome),
                    ],
                    value as f64,
                );
            }
        }
    }
    {
        let name = "sluice_plugin_faults_total";
        let mut family = Family::start(&mut out, name, "counter", "Faults by kind.");
        for (pipeline, plugin, s) in &plugins {
            for (kind, value) in [
                ("trap", s.traps),
                ("deadline", s.deadline_hits),
                ("memory_cap", s.memory_cap_hits),
                ("output_bound", s.output_bound_hits),
                ("invalid_output", s.invalid_outputs),
            ] {
                family.sample(
                    name,
                    &[("pipeline", *pipeline), ("plugin", *plugin), ("kind", kind)],
                    value as f64,
                );
            }
        }
    }
    {
        let name = "sluice_plugin_custom_total";
        let mut family = Family::start(
            &mut out,
            name,
            "counter",
            "Counters the plugins keep themselves (host counter-add).",
        );
        for (pipeline, plugin, s) in &plugins {
            for (counter, value) in &s.plugin_counters {
                family.sample(
                    name,
                    &[
                        ("pipeline", *pipeline),
                        ("plugin", *plugin),
                        ("name", counter.as_str()),
                    ],
                    *value as f64,
                );
            }
        }
    }
    if let Some(bytes) = resident_bytes() {
        Family::start(
            &mut out,
            "sluice_process_resident_memory_bytes",
            "gauge",
            "Resident memory of the gateway process.",
        )
        .sample("sluice_process_resident_memory_bytes", &[], bytes as f64);
    }
    out
}

/// The alert sinks' routers: notifications by outcome, alerts held back by reason.
fn alert_metrics(
    out: &mut String,
    sinks: &std::collections::BTreeMap<String, Arc<crate::sinks::SinkStats>>,
) {
    let alert_sinks: Vec<(&String, &crate::alerts::RouterStats)> = sinks
        .iter()
        .filter(|(_, stats)| stats.router.active.load(Ordering::Relaxed))
        .map(|(name, stats)| (name, &stats.router))
        .collect();
    {
        let name = "sluice_alert_notifications_total";
        let mut family = Family::start(
            out,
            name,
            "counter",
            "Notifications (requests) of an alert sink, by outcome: sent (accepted), failed (given up), rate_limited (had to wait for the rate limit).",
        );
        for (sink, router) in &alert_sinks {
            for (outcome, counter) in [
                ("sent", &router.notifications_sent),
                ("failed", &router.notifications_failed),
                ("rate_limited", &router.notifications_rate_limited),
            ] {
                family.sample(name, &[("sink", sink), ("outcome", outcome)], read(counter));
            }
        }
    }
    {
        let name = "sluice_alert_suppressed_total";
        let mut family = Family::start(
            out,
            name,
            "counter",
            "Alerts an alert sink did not send, by reason: deduplicated (already notified or never fired), silenced, dropped_waiting (rate_limit.max_waiting reached).",
        );
        for (sink, router) in &alert_sinks {
            for (reason, counter) in [
                ("deduplicated", &router.alerts_deduplicated),
                ("silenced", &router.alerts_silenced),
                ("dropped_waiting", &router.alerts_dropped_waiting),
            ] {
                family.sample(name, &[("sink", sink), ("reason", reason)], read(counter));
            }
        }
    }
}

/// Resident set size from `/proc/self/statm` (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The durable intake log's sizes, counters and each consumer's position.
fn buffer_metrics(out: &mut String, log: &Log, repairs: &[Repair]) {
    let gauges = log.gauges();
    let stats = log.stats();
    let gauge = |out: &mut String, name: &str, help: &str, value: f64| {
        Family::start(out, name, "gauge", help).sample(name, &[], value);
    };
    let counter = |out: &mut String, name: &str, help: &str, value: &AtomicU64| {
        Family::start(out, name, "counter", help).sample(name, &[], read(value));
    };
    gauge(
        out,
        "sluice_buffer_bytes",
        "Bytes of the log's segment files.",
        gauges.disk_bytes as f64,
    );
    gauge(
        out,
        "sluice_buffer_max_bytes",
        "The log's size limit.",
        gauges.max_bytes as f64,
    );
    gauge(
        out,
        "sluice_buffer_pending_bytes",
        "Bytes accepted and not yet written.",
        gauges.pending_bytes as f64,
    );
    gauge(
        out,
        "sluice_buffer_memory_bytes",
        "Bytes of recent entries kept in memory for the pipelines.",
        gauges.memory_bytes as f64,
    );
    gauge(
        out,
        "sluice_buffer_segments",
        "Segment files.",
        gauges.segments as f64,
    );
    gauge(
        out,
        "sluice_buffer_committed_sequence",
        "Sequence number of the last durable entry.",
        gauges.committed as f64,
    );
    gauge(
        out,
        "sluice_buffer_repairs",
        "Repairs made when the log was opened (torn tails cut, damaged segments moved aside).",
        repairs.len() as f64,
    );
    counter(
        out,
        "sluice_buffer_appends_total",
        "Batches made durable.",
        &stats.appends,
    );
    counter(
        out,
        "sluice_buffer_records_total",
        "Records in them.",
        &stats.records,
    );
    counter(
        out,
        "sluice_buffer_written_bytes_total",
        "Bytes written, record headers included.",
        &stats.bytes_written,
    );
    counter(
        out,
        "sluice_buffer_commits_total",
        "Group commits (one write and one fsync each).",
        &stats.commits,
    );
    Family::start(
        out,
        "sluice_buffer_fsync_seconds_total",
        "counter",
        "Time spent in fsync.",
    )
    .sample(
        "sluice_buffer_fsync_seconds_total",
        &[],
        read(&stats.sync_micros) / 1e6,
    );
    {
        let name = "sluice_buffer_refused_total";
        let mut family = Family::start(
            out,
            name,
            "counter",
            "Appends refused with a retryable error, by reason.",
        );
        family.sample(name, &[("reason", "full")], read(&stats.refused_full));
        family.sample(name, &[("reason", "memory")], read(&stats.refused_memory));
        family.sample(
            name,
            &[("reason", "write_error")],
            read(&stats.write_errors),
        );
    }
    counter(
        out,
        "sluice_buffer_read_errors_total",
        "Entries that could not be read back (skipped).",
        &stats.read_errors,
    );
    counter(
        out,
        "sluice_buffer_segments_removed_total",
        "Segments removed once every sink was past them.",
        &stats.segments_removed,
    );
    let consumers = log.consumers();
    {
        let name = "sluice_buffer_consumer_lag_entries";
        let mut family = Family::start(
            out,
            name,
            "gauge",
            "Entries in the log a pipeline-to-sink edge has not yet made durable.",
        );
        for consumer in &consumers {
            family.sample(
                name,
                &[("consumer", consumer.name()), ("sink", consumer.sink())],
                gauges.committed.saturating_sub(consumer.durable()) as f64,
            );
        }
    }
    {
        let name = "sluice_buffer_consumer_dropped_records_total";
        let mut family = Family::start(
            out,
            name,
            "counter",
            "Records a drop-oldest sink gave up because the log was full.",
        );
        for consumer in &consumers {
            family.sample(
                name,
                &[("consumer", consumer.name()), ("sink", consumer.sink())],
                consumer.dropped_records() as f64,
            );
        }
    }
}
