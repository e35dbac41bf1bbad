//! Debug sinks: records and alerts as JSON lines, on standard output or appended to a file.
//!
//! Each line is one object with a `signal` key: `logs` (one line per record, in the record JSON
//! form of `sluice plugin test`), `metrics` and `traces` (one line per resource, in the OTLP JSON
//! encoding), or `alert`.

use std::io::Write;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{SinkContext, SinkItem, SinkStats};
use crate::model::Batch;

/// `type = "stdout"` sink settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {}

/// `type = "file"` sink settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
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
        while let Some(item) = context.items.blocking_recv() {
            let lines = item_lines(&item);
            let written = lines
                .iter()
                .try_for_each(|line| writeln!(out, "{line}"))
                .and_then(|()| {
                    if context.items.is_empty() {
                        out.flush()
                    } else {
                        Ok(())
                    }
                });
            match written {
                Ok(()) => match &item {
                    SinkItem::Batch(batch) => {
                        SinkStats::add(&context.stats.records_written, batch.len())
                    }
                    SinkItem::Alert(_) => SinkStats::add(&context.stats.alerts_delivered, 1),
                },
                Err(error) => {
                    SinkStats::add(&context.stats.write_errors, 1);
                    tracing::error!(sink = %context.name, %error, "write failed");
                }
            }
        }
        let _ = out.flush();
    })
}

/// The JSON lines of one item.
pub fn item_lines(item: &SinkItem) -> Vec<Value> {
    match item {
        SinkItem::Alert(alert) => {
            let mut value = serde_json::to_value(alert.as_ref()).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut value {
                map.insert("signal".into(), "alert".into());
            }
            vec![value]
        }
        SinkItem::Batch(batch) => match batch.as_ref() {
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
        },
    }
}
