//! Debug sinks: records and alerts as JSON lines, on standard output or appended to a file.
//!
//! Each line is one object with a `signal` key: `logs` (one line per record, in the record JSON
//! form of `sluice plugin test`), `metrics` and `traces` (one line per resource, in the OTLP JSON
//! encoding), or `alert`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{SinkContext, SinkStats};
use crate::alerts::Alert;
use crate::intake::Ticket;
use crate::model::Batch;

/// `type = "stdout"` sink settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {
    /// When the buffer is full and this sink holds its oldest data: `"block"` (default: keep
    /// everything, receivers push back on clients) or `"drop_oldest"` (give it up, counted).
    #[serde(default)]
    pub when_full: crate::intake::WhenFull,
}

/// `type = "file"` sink settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// When the buffer is full and this sink holds its oldest data: `"block"` (default: keep
    /// everything, receivers push back on clients) or `"drop_oldest"` (give it up, counted).
    #[serde(default)]
    pub when_full: crate::intake::WhenFull,
    /// File the JSON lines are appended to (created with its directory when missing).
    pub path: PathBuf,
}

impl FileSinkConfig {
    /// Checks what serde cannot.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        if self.path.as_os_str().is_empty() {
            problems.push(format!("{at}.path: must not be empty"));
        }
    }
}

/// Starts a sink writing to standard output.
pub async fn start_stdout(
    _config: &StdoutSinkConfig,
    context: SinkContext,
) -> anyhow::Result<JoinHandle<()>> {
    Ok(spawn_writer(context, || Ok(Box::new(std::io::stdout()))))
}

/// Starts a sink appending to a file; the file is opened (and its directory created) now, so a
/// bad path refuses the start.
pub async fn start_file(
    config: &FileSinkConfig,
    context: SinkContext,
) -> anyhow::Result<JoinHandle<()>> {
    let open = {
        let path = config.path.clone();
        move || -> std::io::Result<Box<dyn Write + Send>> {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            Ok(Box::new(file))
        }
    };
    open().map_err(|error| {
        anyhow::anyhow!(
            "sink `{}`: cannot open {}: {error}",
            context.name,
            config.path.display()
        )
    })?;
    Ok(spawn_writer(context, open))
}

fn spawn_writer(
    mut context: SinkContext,
    open: impl FnOnce() -> std::io::Result<Box<dyn Write + Send>> + Send + 'static,
) -> JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        let mut out = match open() {
            Ok(out) => std::io::BufWriter::new(out),
            Err(error) => {
                tracing::error!(sink = %context.name, %error, "cannot open output");
                return;
            }
        };
        // Tickets complete once their lines are flushed to the output.
        let mut flushed_pending = Vec::new();
        while let Some(item) = context.items.blocking_recv() {
            let (lines, records, ticket) = match item.into_batches() {
                Ok((batches, ticket)) => (
                    batches
                        .iter()
                        .flat_map(|batch| batch_lines(batch))
                        .collect(),
                    batches.iter().map(|batch| batch.len()).sum(),
                    ticket,
                ),
                Err(alert) => (vec![alert_line(&alert)], 0, None),
            };
            flushed_pending.extend(ticket);
            let mut written = write_lines(&mut out, &lines, context.items.is_empty());
            let mut pause = Duration::from_millis(100);
            for _ in 1..WRITE_ATTEMPTS {
                let Err(error) = &written else { break };
                SinkStats::add(&context.stats.write_errors, 1);
                tracing::error!(sink = %context.name, %error, "write failed; retrying");
                std::thread::sleep(pause);
                pause = (pause * 4).min(Duration::from_secs(10));
                written = write_lines(&mut out, &lines, true);
            }
            match written {
                Ok(()) if records > 0 => SinkStats::add(&context.stats.records_written, records),
                Ok(()) => SinkStats::add(&context.stats.alerts_delivered, 1),
                Err(error) => {
                    SinkStats::add(&context.stats.items_dropped, records.max(1));
                    tracing::error!(sink = %context.name, %error, records, "write failed after retries; given up");
                }
            }
            if context.items.is_empty() {
                flushed_pending.drain(..).for_each(Ticket::done);
            }
        }
        let _ = out.flush();
        flushed_pending.drain(..).for_each(Ticket::done);
    })
}

/// Attempts per write before the lines are given up (a debug output, not an archive).
const WRITE_ATTEMPTS: u32 = 5;

/// Writes lines, flushing when asked.
fn write_lines(out: &mut impl Write, lines: &[Value], flush: bool) -> std::io::Result<()> {
    lines.iter().try_for_each(|line| writeln!(out, "{line}"))?;
    if flush { out.flush() } else { Ok(()) }
}

/// The JSON line of an alert.
pub fn alert_line(alert: &Alert) -> Value {
    let mut value = serde_json::to_value(alert).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("signal".into(), "alert".into());
    }
    value
}

/// The JSON lines of one batch.
pub fn batch_lines(batch: &Batch) -> Vec<Value> {
    match batch {
        Batch::Logs(logs) => logs
            .records()
            .map(|record| {
                let mut value = record.to_json();
                if let Value::Object(map) = &mut value {
                    map.insert("signal".into(), "logs".into());
                }
                value
            })
            .collect(),
        Batch::Metrics(metrics) => metrics
            .resource_metrics
            .iter()
            .map(|resource| json!({"signal": "metrics", "resourceMetrics": resource}))
            .collect(),
        Batch::Spans(spans) => spans
            .resource_spans
            .iter()
            .map(|resource| json!({"signal": "traces", "resourceSpans": resource}))
            .collect(),
        Batch::Lines(lines) => lines
            .lines
            .iter()
            .map(|line| json!({"signal": "logs", "body": line, "source": lines.source}))
            .collect(),
    }
}
