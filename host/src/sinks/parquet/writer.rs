//! The archive on disk: one open Parquet file per signal and hour partition, written under a
//! hidden temporary name and renamed to its final name once complete and synced.
//!
//! Layout: `<root>/signal=<signal>/date=YYYY-MM-DD/hour=HH/part-<uuid>.parquet`, partitioned by
//! each row's event time in UTC. The uuid is a version 7 uuid (creation time first), so names
//! sort by creation and never collide between gateways or restarts. A file in progress is
//! `.part-<uuid>.parquet.tmp` in the same directory: readers skip dot-files, and the rename
//! publishes a complete file atomically. Each signal's directory is laid out as a Delta Lake
//! table with partition columns `date` and `hour`, so the later move to Delta adds a commit
//! step, not a new layout.
//!
//! Everything here blocks (file I/O, encoding): the sink calls it from blocking threads only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::UInt32Array;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::durable_fs::{create_dir_all_synced, sync_directory};
use crate::intake::Ticket;
use crate::model::Signal;
use crate::sinks::SinkStats;

/// Nanoseconds in an hour: the partition width.
const NANOS_PER_HOUR: i64 = 3_600_000_000_000;

/// At most this many files are open at once; opening one more first completes the oldest.
/// Each holds up to a row group in memory, and data spanning many hours (a backfill) must not
/// hold one per hour.
const MAX_OPEN_FILES: usize = 32;

/// Rows of one signal ready to archive.
pub struct Rows {
    /// The rows, in the signal's schema.
    pub batch: RecordBatch,
    /// For each row, the Unix-nanosecond time that picks its partition.
    pub partition_times: Vec<i64>,
}

/// How one signal's files are written.
#[derive(Clone, Debug)]
pub struct SignalFormat {
    /// The schema of its files.
    pub schema: SchemaRef,
    /// Parquet settings.
    pub properties: WriterProperties,
}

/// When files are completed.
#[derive(Clone, Copy, Debug)]
pub struct RollPolicy {
    /// Complete a file once its estimated size reaches this many bytes.
    pub max_file_bytes: u64,
    /// Complete a file this long after it was opened, whether or not data keeps coming.
    pub max_file_age: Duration,
}

/// A partition: one signal, one hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct PartitionKey {
    signal: Signal,
    /// Hours since the Unix epoch (UTC).
    hour: i64,
}

impl PartitionKey {
    /// `signal=…/date=YYYY-MM-DD/hour=HH`, relative to the archive root.
    fn directory(&self) -> PathBuf {
        let time =
            chrono::DateTime::from_timestamp(self.hour.saturating_mul(3600), 0).unwrap_or_default();
        PathBuf::from(format!("signal={}", self.signal.as_str()))
            .join(format!("date={}", time.format("%Y-%m-%d")))
            .join(format!("hour={}", time.format("%H")))
    }
}

/// A file being written.
struct OpenFile {
    writer: ArrowWriter<File>,
    temporary: PathBuf,
    complete: PathBuf,
    opened_at: Instant,
    rows: usize,
    /// Tickets of the log entries whose rows the file holds: completed with the file.
    tickets: Vec<Arc<Ticket>>,
}

/// The archive's writing side.
pub struct Archive {
    root: PathBuf,
    sink: Arc<str>,
    stats: Arc<SinkStats>,
    roll: RollPolicy,
    formats: HashMap<Signal, SignalFormat>,
    open: HashMap<PartitionKey, OpenFile>,
    /// Directories known to exist with their entry synced in their parent.
    synced_directories: HashSet<PathBuf>,
    /// Set when a write or a completion failed since the last [`take_failure`](Self::take_failure).
    failed: bool,
}

impl Archive {
    /// An archive under `root` (which must exist), writing each signal in its format.
    pub fn new(
        root: PathBuf,
        sink: Arc<str>,
        stats: Arc<SinkStats>,
        roll: RollPolicy,
        formats: HashMap<Signal, SignalFormat>,
    ) -> Self {
        Archive {
            root,
            sink,
            stats,
            roll,
            formats,
            open: HashMap::new(),
            synced_directories: HashSet::new(),
            failed: false,
        }
    }

    /// True when some file is open.
    pub fn has_open_files(&self) -> bool {
        !self.open.is_empty()
    }

    /// Counts `records` of `signal` that could not be turned into rows, with the reason.
    pub fn count_dropped(&self, signal: Signal, records: usize, reason: &str) {
        SinkStats::add(&self.stats.write_errors, 1);
        SinkStats::add(&self.stats.items_dropped, records);
        tracing::error!(sink = %self.sink, %signal, records, reason, "records not archived");
    }

    /// How old an unfinished file must be before it is surely nobody's: twice the age limit
    /// (a writer completes its files within it), and at least a minute.
    pub fn abandoned_after(&self) -> Duration {
        (self.roll.max_file_age * 2).max(Duration::from_secs(60))
    }

    /// Removes unfinished files (`.part-*.tmp`) under the root older than
    /// [`abandoned_after`](Self::abandoned_after) that are not this writer's: left by a process
    /// that died, their rows come again from the buffer.
    pub fn remove_abandoned_temporaries(&self) {
        let ours: HashSet<&Path> = self
            .open
            .values()
            .map(|file| file.temporary.as_path())
            .collect();
        let limit = self.abandoned_after();
        let mut directories = vec![self.root.clone()];
        let mut removed = 0;
        while let Some(directory) = directories.pop() {
            let Ok(entries) = std::fs::read_dir(&directory) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    directories.push(path);
                    continue;
                }
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let stale = meta
                    .modified()
                    .ok()
                    .and_then(|modified| modified.elapsed().ok())
                    .is_some_and(|age| age >= limit);
                if name.starts_with(".part-")
                    && name.ends_with(".tmp")
                    && stale
                    && !ours.contains(path.as_path())
                    && std::fs::remove_file(&path).is_ok()
                {
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            tracing::info!(sink = %self.sink, removed, "removed unfinished archive files left by an earlier process");
        }
    }

    /// True (once) when a write or a completion failed since the last call: the sink backs off.
    pub fn take_failure(&mut self) -> bool {
        std::mem::take(&mut self.failed)
    }

    /// Writes `rows` of `signal` into their partitions' open files, completing each file that
    /// reaches its size; each file holds on to `ticket` until it is complete. A failure is
    /// counted and logged; the rows it concerns are written again when the ticket's entry is
    /// replayed from the log (untracked rows are dropped, counted).
    pub fn write(&mut self, signal: Signal, rows: Rows, ticket: Option<&Arc<Ticket>>) {
        let count = rows.batch.num_rows();
        if count == 0 {
            return;
        }
        for (hour, part) in split_by_hour(rows) {
            let key = PartitionKey { signal, hour };
            let part_rows = part.num_rows();
            if let Err(error) = self.write_partition(key, &part, ticket) {
                self.failed = true;
                SinkStats::add(&self.stats.write_errors, 1);
                match ticket {
                    Some(ticket) => {
                        ticket.fail();
                        tracing::error!(
                            sink = %self.sink,
                            partition = %key.directory().display(),
                            %error,
                            rows = part_rows,
                            "archive write failed; the rows will be written again from the buffer"
                        );
                    }
                    None => {
                        SinkStats::add(&self.stats.items_dropped, part_rows);
                        tracing::error!(
                            sink = %self.sink,
                            partition = %key.directory().display(),
                            %error,
                            rows = part_rows,
                            "archive write failed; rows dropped"
                        );
                    }
                }
            }
        }
    }

    fn write_partition(
        &mut self,
        key: PartitionKey,
        batch: &RecordBatch,
        ticket: Option<&Arc<Ticket>>,
    ) -> io::Result<()> {
        if !self.open.contains_key(&key) {
            if self.open.len() >= MAX_OPEN_FILES
                && let Some(oldest) = self
                    .open
                    .iter()
                    .min_by_key(|(_, file)| file.opened_at)
                    .map(|(key, _)| *key)
            {
                self.complete(oldest);
            }
            let file = self.open_file(key)?;
            self.open.insert(key, file);
        }
        let Some(file) = self.open.get_mut(&key) else {
            return Ok(());
        };
        if let Err(error) = file.writer.write(batch) {
            // The writer's state is unknown after a failure: abandon the file, with the rows it
            // held, rather than risk a corrupt one.
            if let Some(file) = self.open.remove(&key) {
                self.abandon(file);
            }
            return Err(io::Error::other(error));
        }
        file.rows += batch.num_rows();
        if let Some(ticket) = ticket
            && !file
                .tickets
                .last()
                .is_some_and(|last| Arc::ptr_eq(last, ticket))
        {
            file.tickets.push(ticket.clone());
        }
        let size = file.writer.bytes_written() + file.writer.in_progress_size();
        if size as u64 >= self.roll.max_file_bytes {
            self.complete(key);
        }
        Ok(())
    }

    fn open_file(&mut self, key: PartitionKey) -> io::Result<OpenFile> {
        let directory = self.root.join(key.directory());
        self.ensure_directory(&directory)?;
        let format = self
            .formats
            .get(&key.signal)
            .ok_or_else(|| io::Error::other(format!("no format for {}", key.signal)))?;
        let name = format!("part-{}.parquet", uuid_v7());
        let temporary = directory.join(format!(".{name}.tmp"));
        let complete = directory.join(name);
        let file = File::create(&temporary)?;
        let writer =
            ArrowWriter::try_new(file, format.schema.clone(), Some(format.properties.clone()))
                .map_err(io::Error::other)?;
        Ok(OpenFile {
            writer,
            temporary,
            complete,
            opened_at: Instant::now(),
            rows: 0,
            tickets: Vec::new(),
        })
    }

    /// Creates `directory` and any missing parent under the root, syncing each new entry into
    /// its parent so that a crash cannot lose a directory holding a completed file.
    fn ensure_directory(&mut self, directory: &Path) -> io::Result<()> {
        if self.synced_directories.contains(directory) {
            return Ok(());
        }
        create_dir_all_synced(directory)?;
        self.synced_directories.insert(directory.to_path_buf());
        Ok(())
    }

    /// Completes every file opened `max_file_age` ago or earlier.
    pub fn complete_expired(&mut self, now: Instant) {
        let expired: Vec<PartitionKey> = self
            .open
            .iter()
            .filter(|(_, file)| now.duration_since(file.opened_at) >= self.roll.max_file_age)
            .map(|(key, _)| *key)
            .collect();
        for key in expired {
            self.complete(key);
        }
    }

    /// Completes every open file (the queue has closed).
    pub fn complete_all(&mut self) {
        let mut keys: Vec<PartitionKey> = self.open.keys().copied().collect();
        keys.sort();
        for key in keys {
            self.complete(key);
        }
    }

    /// Finishes the file of `key`: footer, fsync, rename to its final name, fsync of the
    /// directory. On failure the temporary file is removed and its rows counted as dropped.
    fn complete(&mut self, key: PartitionKey) {
        let Some(mut file) = self.open.remove(&key) else {
            return;
        };
        let finished = file
            .writer
            .finish()
            .map_err(io::Error::other)
            .and_then(|_| file.writer.inner_mut().sync_all())
            .and_then(|()| std::fs::rename(&file.temporary, &file.complete))
            .and_then(|()| match file.complete.parent() {
                Some(directory) => sync_directory(directory),
                None => Ok(()),
            });
        match finished {
            Ok(()) => {
                SinkStats::add(&self.stats.records_written, file.rows);
                file.tickets.drain(..).for_each(Ticket::done_shared);
                tracing::debug!(
                    sink = %self.sink,
                    file = %file.complete.display(),
                    rows = file.rows,
                    "archive file complete"
                );
            }
            Err(error) => {
                SinkStats::add(&self.stats.write_errors, 1);
                self.failed = true;
                tracing::error!(
                    sink = %self.sink,
                    file = %file.complete.display(),
                    %error,
                    rows = file.rows,
                    "cannot complete archive file"
                );
                self.abandon(file);
            }
        }
    }

    /// Throws away an unfinished file. Rows that came from the log are written again when their
    /// entries are replayed; others are counted as dropped.
    fn abandon(&mut self, mut file: OpenFile) {
        if file.tickets.is_empty() {
            SinkStats::add(&self.stats.items_dropped, file.rows);
        } else {
            tracing::warn!(sink = %self.sink, rows = file.rows, "an unfinished archive file is thrown away; its rows will be written again from the buffer");
            file.tickets.drain(..).for_each(Ticket::retry_shared);
        }
        let temporary = file.temporary.clone();
        drop(file);
        let _ = std::fs::remove_file(temporary);
    }
}

/// Splits rows by the hour of their partition time, keeping each hour's rows in order. The
/// whole batch is returned as it is when it falls in one hour (the usual case).
fn split_by_hour(rows: Rows) -> Vec<(i64, RecordBatch)> {
    let hour_of = |nanos: i64| nanos.div_euclid(NANOS_PER_HOUR);
    let Some(&first) = rows.partition_times.first() else {
        return Vec::new();
    };
    let first_hour = hour_of(first);
    if rows
        .partition_times
        .iter()
        .all(|&t| hour_of(t) == first_hour)
    {
        return vec![(first_hour, rows.batch)];
    }
    let mut by_hour: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (index, &time) in rows.partition_times.iter().enumerate() {
        by_hour.entry(hour_of(time)).or_default().push(index as u32);
    }
    by_hour
        .into_iter()
        .filter_map(|(hour, indices)| {
            let indices = UInt32Array::from(indices);
            // `take` with in-range indices cannot fail.
            arrow::compute::take_record_batch(&rows.batch, &indices)
                .ok()
                .map(|part| (hour, part))
        })
        .collect()
}

/// A version 7 uuid: 48 bits of Unix milliseconds, then random bits.
fn uuid_v7() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or_default();
    let random: u128 = rand::random();
    let mut value = (u128::from(millis) & 0xffff_ffff_ffff) << 80;
    value |= random & ((1u128 << 80) - 1);
    // Version 7 in bits 76..80, variant 0b10 in bits 62..64.
    value = (value & !(0xf << 76)) | (0x7 << 76);
    value = (value & !(0x3 << 62)) | (0x2 << 62);
    let hex = format!("{value:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_directory_is_hive_style_in_utc() {
        let key = PartitionKey {
            signal: Signal::Logs,
            hour: 1_795_428_000 / 3600,
        };
        assert_eq!(
            key.directory(),
            PathBuf::from("signal=logs/date=2026-11-23/hour=10")
        );
    }

    #[test]
    fn uuid_v7_has_version_and_variant() {
        let id = uuid_v7();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "7");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(uuid_v7(), uuid_v7());
    }
}
