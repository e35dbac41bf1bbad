//! Parquet archive sink: logs, metrics and spans as Parquet files (zstd), one schema per signal,
//! in Hive-style partitions `signal=<signal>/date=YYYY-MM-DD/hour=HH/` by each record's event
//! time in UTC.
//!
//! The async task only receives; converting to Arrow, encoding and file I/O run on blocking
//! threads, one call at a time, so the runtime never blocks and the archive has a single owner.
//! A timer completes files that reach their age even when no data comes.
//!
//! Delivery: a file becomes visible (renamed from its hidden temporary name) only once complete
//! and synced to disk; records still in open files when the process dies are lost until the
//! durable intake log replays them. A record counts as written when its file is complete.
//! The schemas are documented in `docs/archive.md`.

mod logs;
mod metrics;
mod schema;
mod traces;
mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde::Deserialize;
use tokio::task::JoinHandle;

use super::{SinkContext, SinkItem, SinkStats};
use crate::intake::Ticket;
use crate::model::{Batch, Signal};
use schema::ColumnTuning;
use writer::{Archive, RollPolicy, SignalFormat};

/// At most this many queued batches are written per hop to a blocking thread.
const BATCHES_PER_HOP: usize = 64;

/// `type = "parquet"` sink settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSinkConfig {
    /// When the buffer is full and this sink holds its oldest data: `"block"` (default: keep
    /// everything, receivers push back on clients) or `"drop_oldest"` (give it up, counted).
    #[serde(default)]
    pub when_full: crate::intake::WhenFull,
    /// Root directory of the archive (created when missing); each signal gets its own
    /// `signal=<name>` directory under it.
    pub path: PathBuf,
    /// zstd compression level, 1 (fastest) to 22. Default 1: measured, level 3 buys nothing here.
    #[serde(default = "default_compression_level")]
    pub compression_level: i32,
    /// A file is completed once its estimated size reaches this many bytes (it may pass it by up
    /// to one batch). Default 134217728 (128 MiB).
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// A file is completed this long after it was opened, even when no more data comes, such as
    /// `"60s"` or `"5m"`. Default `"60s"`.
    #[serde(
        default = "default_max_file_age",
        deserialize_with = "crate::config::deserialize_duration"
    )]
    pub max_file_age: Duration,
    /// Rows per Parquet row group. Default 131072: readers scan large row groups fastest, and
    /// smaller ones cost about 10 % in write speed.
    #[serde(default = "default_row_group_rows")]
    pub row_group_rows: usize,
}

fn default_compression_level() -> i32 {
    1
}

fn default_max_file_bytes() -> u64 {
    128 * 1024 * 1024
}

fn default_max_file_age() -> Duration {
    Duration::from_secs(60)
}

fn default_row_group_rows() -> usize {
    131_072
}

impl ParquetSinkConfig {
    /// Checks what serde cannot.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        if self.path.as_os_str().is_empty() {
            problems.push(format!("{at}.path: must not be empty"));
        }
        if !(1..=22).contains(&self.compression_level) {
            problems.push(format!(
                "{at}.compression_level: {} is not a zstd level (1 to 22)",
                self.compression_level
            ));
        }
        if self.max_file_bytes == 0 {
            problems.push(format!("{at}.max_file_bytes: must be above 0"));
        }
        if self.max_file_age.is_zero() {
            problems.push(format!("{at}.max_file_age: must be above 0"));
        }
        if self.row_group_rows == 0 {
            problems.push(format!("{at}.row_group_rows: must be above 0"));
        }
    }

    fn formats(&self) -> anyhow::Result<HashMap<Signal, SignalFormat>> {
        let format = |signal: Signal, schema, tuning: ColumnTuning| -> anyhow::Result<_> {
            let properties = schema::writer_properties(
                signal.as_str(),
                tuning,
                self.compression_level,
                self.row_group_rows,
            )
            .with_context(|| format!("compression_level {}", self.compression_level))?;
            Ok((signal, SignalFormat { schema, properties }))
        };
        Ok(HashMap::from([
            format(Signal::Logs, logs::schema(), logs::TUNING)?,
            format(Signal::Metrics, metrics::schema(), metrics::TUNING)?,
            format(Signal::Traces, traces::schema(), traces::TUNING)?,
        ]))
    }
}

/// Creates the archive root and spawns the sink; a bad setting or an unusable root refuses the
/// start.
pub async fn start(
    config: &ParquetSinkConfig,
    context: SinkContext,
) -> anyhow::Result<JoinHandle<()>> {
    let mut problems = Vec::new();
    config.check(&format!("sinks.{}", context.name), &mut problems);
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("; "));
    }
    let formats = config.formats()?;
    let root = config.path.clone();
    tokio::task::spawn_blocking(move || crate::durable_fs::create_dir_all_synced(&root))
        .await
        .map_err(std::io::Error::other)
        .and_then(|created| created)
        .with_context(|| {
            format!(
                "sink `{}`: cannot create the archive directory {}",
                context.name,
                config.path.display()
            )
        })?;
    let archive = Archive::new(
        config.path.clone(),
        context.name.clone(),
        context.stats.clone(),
        RollPolicy {
            max_file_bytes: config.max_file_bytes,
            max_file_age: config.max_file_age,
        },
        formats,
    );
    // Check age often enough that a file is completed within a quarter of its age limit.
    let check_every =
        (config.max_file_age / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    Ok(tokio::spawn(run(archive, context, check_every)))
}

async fn run(mut archive: Archive, mut context: SinkContext, check_every: Duration) {
    let mut backoff = Backoff::default();
    // Unfinished files of a process that died (their records are replayed from the buffer) are
    // removed once no live writer can still own them: a writer completes its files within
    // `max_file_age`.
    let sweep_at = tokio::time::Instant::now() + archive.abandoned_after();
    let mut swept = false;
    let mut age_check = tokio::time::interval(check_every);
    age_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            item = context.items.recv() => {
                let Some(item) = item else { break };
                let mut deliveries = Vec::new();
                collect(item, &mut deliveries, &context);
                while deliveries.len() < BATCHES_PER_HOP {
                    match context.items.try_recv() {
                        Ok(item) => collect(item, &mut deliveries, &context),
                        Err(_) => break,
                    }
                }
                let Some(next) = on_blocking_thread(archive, &context, move |archive| {
                    for (batches, ticket) in deliveries {
                        for batch in batches {
                            write_batch(archive, &batch, ticket.as_ref());
                        }
                        // Files holding the ticket complete it; if none took any row, it is
                        // complete now.
                        if let Some(ticket) = ticket {
                            Ticket::done_shared(ticket);
                        }
                    }
                })
                .await else {
                    return;
                };
                archive = next;
                backoff.after(archive.take_failure(), &context).await;
            }
            () = tokio::time::sleep_until(sweep_at), if !swept => {
                swept = true;
                let Some(next) = on_blocking_thread(archive, &context, |archive| {
                    archive.remove_abandoned_temporaries();
                })
                .await else {
                    return;
                };
                archive = next;
            }
            _ = age_check.tick(), if archive.has_open_files() => {
                let Some(next) = on_blocking_thread(archive, &context, |archive| {
                    archive.complete_expired(Instant::now())
                })
                .await else {
                    return;
                };
                archive = next;
            }
        }
    }
    on_blocking_thread(archive, &context, Archive::complete_all).await;
}

/// The batches of one item, with its ticket shared between the files its rows go to.
type Pending = (Vec<Arc<Batch>>, Option<Arc<Ticket>>);

fn collect(item: SinkItem, deliveries: &mut Vec<Pending>, context: &SinkContext) {
    match item.into_batches() {
        Ok((batches, ticket)) => deliveries.push((batches, ticket.map(Arc::new))),
        Err(alert) => {
            SinkStats::add(&context.stats.items_dropped, 1);
            tracing::warn!(sink = %context.name, alert = %alert.name, "the archive takes no alerts; dropped");
        }
    }
}

/// Exponential backoff with jitter after failed writes (a full or failing disk): the sink
/// stops taking batches for a while, so only its own queue fills; its data waits in the log.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(200);
    const LONGEST: Duration = Duration::from_secs(30);

    async fn after(&mut self, failed: bool, context: &SinkContext) {
        if !failed {
            self.failures = 0;
            context.stats.failing.store(false, Ordering::Relaxed);
            return;
        }
        self.failures += 1;
        context.stats.failing.store(true, Ordering::Relaxed);
        let delay = Self::FIRST
            .saturating_mul(1 << self.failures.min(8))
            .min(Self::LONGEST);
        let delay = delay.mul_f64(rand::Rng::random_range(&mut rand::rng(), 0.5..=1.0));
        tracing::warn!(sink = %context.name, failures = self.failures, retry_in = ?delay, "archive writes failing; backing off");
        tokio::time::sleep(delay).await;
    }
}

/// Runs `work` on the archive on a blocking thread and hands the archive back; `None` when the
/// work panicked (a bug: the open files are lost and the sink stops).
async fn on_blocking_thread(
    mut archive: Archive,
    context: &SinkContext,
    work: impl FnOnce(&mut Archive) + Send + 'static,
) -> Option<Archive> {
    match tokio::task::spawn_blocking(move || {
        work(&mut archive);
        archive
    })
    .await
    {
        Ok(archive) => Some(archive),
        Err(error) => {
            tracing::error!(sink = %context.name, %error, "archive writer failed; sink stopped");
            None
        }
    }
}

/// Unix nanoseconds now: the partition time of records that carry no time at all.
fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

fn write_batch(archive: &mut Archive, batch: &Batch, ticket: Option<&Arc<Ticket>>) {
    let received_at = now_nanos();
    let (signal, rows) = match batch {
        Batch::Logs(logs) => (Signal::Logs, logs::rows(logs, received_at)),
        Batch::Lines(lines) => (
            Signal::Logs,
            logs::rows(&logs::lines_as_logs(lines, received_at), received_at),
        ),
        Batch::Metrics(metrics) => (Signal::Metrics, metrics::rows(metrics, received_at)),
        Batch::Spans(spans) => (Signal::Traces, traces::rows(spans, received_at)),
    };
    match rows {
        Ok(rows) => archive.write(signal, rows, ticket),
        Err(error) => archive.count_dropped(signal, batch.len(), &error.to_string()),
    }
}
