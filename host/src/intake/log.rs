//! The durable intake log: segment files written by one thread with group commit, read by the
//! pipelines, trimmed as every consumer's cursor passes a segment.
//!
//! An append is encoded on the caller's task, queued to the writer thread, and answered once
//! the writer has written it (with every other append that queued meanwhile, in one write) and
//! fsynced the file. Only then is the entry visible to readers and is the client acknowledged,
//! so nothing a sink delivers or a cursor passes can vanish in a crash.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc as channel;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::oneshot;

use super::IntakeError;
use super::config::{BufferConfig, Durability, WhenFull};
use super::consumer::Consumer;
use super::cursors::{CURSORS_FILE, CursorFile};
use super::recovery::{self, Recovery};
use super::segment::{self, IndexEntry};
use crate::model::Batch;

/// At most this many payload bytes are written per group.
const GROUP_BYTES: usize = 16 << 20;
/// How long a client is told to wait when the log is full.
const RETRY_WHEN_FULL: Duration = Duration::from_secs(1);
/// How often cursors are saved and consumed segments removed.
const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(200);

/// One batch in the log.
#[derive(Debug)]
pub struct Entry {
    /// Its sequence number: 1, 2, … in append order, never reused.
    pub seq: u64,
    /// The receiver that took it.
    pub receiver: Arc<str>,
    /// The batch.
    pub batch: Arc<Batch>,
}

/// Counters of the log.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Batches appended (durable).
    pub appends: AtomicU64,
    /// Records in them.
    pub records: AtomicU64,
    /// Bytes written, headers included.
    pub bytes_written: AtomicU64,
    /// Group commits (one write and one fsync each).
    pub commits: AtomicU64,
    /// Time spent in fsync, in microseconds.
    pub sync_micros: AtomicU64,
    /// Appends refused because the log was at its size limit.
    pub refused_full: AtomicU64,
    /// Appends refused because too much was waiting in memory.
    pub refused_memory: AtomicU64,
    /// Appends that failed to write (disk errors).
    pub write_errors: AtomicU64,
    /// Entries that could not be read back (damage found after start-up).
    pub read_errors: AtomicU64,
    /// Segments removed once consumed.
    pub segments_removed: AtomicU64,
}

/// A segment known to the log.
struct Segment {
    path: PathBuf,
    file: Arc<File>,
    entries: Vec<IndexEntry>,
    bytes: u64,
}

impl Segment {
    fn last_seq(&self) -> Option<u64> {
        self.entries.last().map(|entry| entry.seq)
    }
}

struct State {
    /// Oldest first; while the writer runs, the last one is being appended to.
    segments: VecDeque<Segment>,
    /// Last durable sequence number (0: none yet).
    committed: u64,
    /// The newest durable entries, contiguous, for readers that keep up.
    recent: VecDeque<(Arc<Entry>, u64)>,
    recent_bytes: u64,
    /// Bytes of all segment files.
    disk_bytes: u64,
    /// Bytes accepted but not yet written.
    pending_bytes: u64,
    closed: bool,
}

struct Shared {
    dir: PathBuf,
    config: BufferConfig,
    state: Mutex<State>,
    committed: Condvar,
    consumers: Mutex<Vec<Arc<Consumer>>>,
    cursors: Mutex<CursorFile>,
    stats: Arc<LogStats>,
    housekeeping_stop: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct Append {
    receiver: Arc<str>,
    batch: Arc<Batch>,
    payload: Vec<u8>,
    done: oneshot::Sender<Result<(), IntakeError>>,
}

/// The durable intake log.
pub struct Log {
    shared: Arc<Shared>,
    appends: Mutex<Option<channel::Sender<Append>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    housekeeper: Mutex<Option<std::thread::JoinHandle<()>>>,
    _lock: File,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.shared.dir)
            .finish()
    }
}

impl Log {
    /// Opens (creating when missing) the log in `config.path`: checks every segment, cuts a torn
    /// tail, moves damaged segments aside into `damaged/` keeping their valid records, and
    /// starts the writer. Returns what recovery found. Refuses a directory another gateway holds.
    pub fn open(config: &BufferConfig) -> anyhow::Result<(Arc<Log>, Recovery)> {
        let dir = config.path.clone();
        crate::durable_fs::create_dir_all_synced(&dir)
            .with_context(|| format!("cannot create the buffer directory {}", dir.display()))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .with_context(|| format!("cannot open {}", dir.join("lock").display()))?;
        if lock.try_lock().is_err() {
            anyhow::bail!(
                "the buffer directory {} is in use by another sluice process",
                dir.display()
            );
        }
        let recovery = recovery::recover(&dir)
            .with_context(|| format!("cannot read the buffer directory {}", dir.display()))?;
        let cursors = recovery.cursors.clone();
        let mut segments = VecDeque::new();
        let mut disk_bytes = 0;
        for found in &recovery.segments {
            let file = File::open(&found.path)
                .with_context(|| format!("cannot open {}", found.path.display()))?;
            disk_bytes += found.bytes;
            segments.push_back(Segment {
                path: found.path.clone(),
                file: Arc::new(file),
                entries: found.entries.clone(),
                bytes: found.bytes,
            });
        }
        let last_seq = segments
            .iter()
            .rev()
            .find_map(Segment::last_seq)
            .unwrap_or(0);
        let next_seq = last_seq.max(cursors.highest()) + 1;
        let stats = Arc::new(LogStats::default());
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            config: config.clone(),
            state: Mutex::new(State {
                segments,
                committed: next_seq - 1,
                recent: VecDeque::new(),
                recent_bytes: 0,
                disk_bytes,
                pending_bytes: 0,
                closed: false,
            }),
            committed: Condvar::new(),
            consumers: Mutex::new(Vec::new()),
            cursors: Mutex::new(cursors),
            stats,
            housekeeping_stop: AtomicBool::new(false),
        });
        let (sender, receiver) = channel::channel();
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("buffer-writer".into())
                .spawn(move || write_loop(&shared, &receiver, next_seq))
                .context("cannot start the buffer writer thread")?
        };
        let housekeeper = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("buffer-housekeeper".into())
                .spawn(move || {
                    while !shared.housekeeping_stop.load(Ordering::Relaxed) {
                        std::thread::sleep(HOUSEKEEPING_EVERY);
                        housekeeping(&shared);
                    }
                })
                .context("cannot start the buffer housekeeping thread")?
        };
        let log = Arc::new(Log {
            shared,
            appends: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
            housekeeper: Mutex::new(Some(housekeeper)),
            _lock: lock,
        });
        Ok((log, recovery))
    }

    /// The log's counters.
    pub fn stats(&self) -> Arc<LogStats> {
        self.shared.stats.clone()
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// A consumer for the edge `pipeline → sink`, starting after its saved cursor (or at the
    /// oldest entry kept when it has none).
    pub fn consumer(&self, pipeline: &str, sink: &str, when_full: WhenFull) -> Arc<Consumer> {
        let first_kept = {
            let state = self.shared.state();
            state
                .segments
                .iter()
                .find_map(|segment| segment.entries.first().map(|entry| entry.seq))
                .unwrap_or(state.committed + 1)
        };
        let name = super::consumer::consumer_name(pipeline, sink);
        let saved = self
            .shared
            .cursors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .consumers
            .get(&name)
            .copied();
        let next = saved.map_or(first_kept, |cursor| (cursor + 1).max(first_kept));
        let consumer = Arc::new(Consumer::new(pipeline, sink, when_full, next));
        self.shared
            .consumers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(consumer.clone());
        consumer
    }

    /// Every consumer.
    pub fn consumers(&self) -> Vec<Arc<Consumer>> {
        self.shared
            .consumers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Appends a batch; resolves once it is durable (or refused: every error is retryable).
    pub async fn append(&self, receiver: &Arc<str>, batch: Batch) -> Result<(), IntakeError> {
        let mut payload =
            Vec::with_capacity(crate::model::codec::encoded_len_hint(&batch) + receiver.len() + 6);
        segment::encode_payload(receiver, &batch, &mut payload);
        let size = payload.len() as u64;
        let config = &self.shared.config;
        {
            let mut state = self.shared.state();
            if state.closed {
                return Err(IntakeError::ShuttingDown);
            }
            if state.disk_bytes + state.pending_bytes + size > config.max_bytes {
                self.shared
                    .stats
                    .refused_full
                    .fetch_add(1, Ordering::Relaxed);
                return Err(IntakeError::Overloaded {
                    retry_after: RETRY_WHEN_FULL,
                });
            }
            if state.pending_bytes > 0 && state.pending_bytes + size > config.memory_bytes / 2 {
                self.shared
                    .stats
                    .refused_memory
                    .fetch_add(1, Ordering::Relaxed);
                return Err(IntakeError::Overloaded {
                    retry_after: RETRY_WHEN_FULL,
                });
            }
            state.pending_bytes += size;
        }
        let (done, answer) = oneshot::channel();
        let append = Append {
            receiver: receiver.clone(),
            batch: Arc::new(batch),
            payload,
            done,
        };
        let sent = self
            .appends
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .map(|appends| appends.send(append).is_ok())
            .unwrap_or(false);
        if !sent {
            self.shared.state().pending_bytes -= size;
            return Err(IntakeError::ShuttingDown);
        }
        answer.await.unwrap_or(Err(IntakeError::ShuttingDown))
    }

    /// The last durable sequence number.
    pub fn committed(&self) -> u64 {
        self.shared.state().committed
    }

    /// True once the log takes no more appends and everything taken is written.
    pub fn is_closed(&self) -> bool {
        self.shared.state().closed && self.writer.lock().map(|w| w.is_none()).unwrap_or(true)
    }

    /// Waits until an entry after `seq` is durable, the log is closed, or `timeout` passes.
    pub fn wait_past(&self, seq: u64, timeout: Duration) {
        let state = self.shared.state();
        let _ = self
            .shared
            .committed
            .wait_timeout_while(state, timeout, |state| {
                state.committed <= seq && !state.closed
            });
    }

    /// The first durable entry with a sequence number of `from` or more, if any. Entries that
    /// no longer exist (removed, or lost to damage) are skipped.
    pub fn next_entry(&self, from: u64) -> Option<Arc<Entry>> {
        let mut from = from;
        loop {
            let (file, index) = {
                let state = self.shared.state();
                if from > state.committed {
                    return None;
                }
                if let Some((front, _)) = state.recent.front()
                    && front.seq <= from
                {
                    let offset = (from - front.seq) as usize;
                    return state.recent.get(offset).map(|(entry, _)| entry.clone());
                }
                state.segments.iter().find_map(|segment| {
                    let at = segment.entries.partition_point(|entry| entry.seq < from);
                    segment
                        .entries
                        .get(at)
                        .map(|entry| (segment.file.clone(), *entry))
                })?
            };
            match segment::read_payload(&file, &index).and_then(|payload| {
                segment::decode_payload(&payload)
                    .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
            }) {
                Ok(payload) => {
                    return Some(Arc::new(Entry {
                        seq: index.seq,
                        receiver: payload.receiver,
                        batch: Arc::new(payload.batch),
                    }));
                }
                Err(error) => {
                    self.shared
                        .stats
                        .read_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(dir = %self.shared.dir.display(), seq = index.seq, %error, "a log entry cannot be read back; skipped");
                    from = index.seq + 1;
                }
            }
        }
    }

    /// Takes no more appends; waits until everything taken is durable.
    pub fn close(&self) {
        self.shared.state().closed = true;
        self.appends
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        self.shared.committed.notify_all();
    }

    /// Closes the log, saves every consumer's cursor and removes what all have consumed.
    pub fn shutdown(&self) {
        self.close();
        self.shared.housekeeping_stop.store(true, Ordering::Relaxed);
        let housekeeper = self
            .housekeeper
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(housekeeper) = housekeeper {
            let _ = housekeeper.join();
        }
        housekeeping(&self.shared);
    }

    /// Sizes for the gateway's metrics.
    pub fn gauges(&self) -> LogGauges {
        let state = self.shared.state();
        LogGauges {
            disk_bytes: state.disk_bytes,
            max_bytes: self.shared.config.max_bytes,
            pending_bytes: state.pending_bytes,
            memory_bytes: state.recent_bytes,
            segments: state.segments.len() as u64,
            committed: state.committed,
        }
    }
}

/// Sizes of the log at one moment.
#[derive(Clone, Copy, Debug)]
pub struct LogGauges {
    /// Bytes of segment files.
    pub disk_bytes: u64,
    /// The configured size limit.
    pub max_bytes: u64,
    /// Bytes accepted, not yet written.
    pub pending_bytes: u64,
    /// Bytes of recent entries held in memory for readers.
    pub memory_bytes: u64,
    /// Segment files.
    pub segments: u64,
    /// Last durable sequence number.
    pub committed: u64,
}

/// The segment being appended to.
struct Active {
    file: File,
    len: u64,
    records: usize,
}

/// The writer thread: takes every append waiting, writes them in one go, syncs, publishes,
/// answers. Ends when every sender is gone and the queue is empty.
fn write_loop(shared: &Shared, appends: &channel::Receiver<Append>, mut next_seq: u64) {
    let mut active: Option<Active> = None;
    let mut buffer = Vec::new();
    while let Ok(first) = appends.recv() {
        let mut group_bytes = first.payload.len();
        let mut group = vec![first];
        while group_bytes < GROUP_BYTES {
            match appends.try_recv() {
                Ok(append) => {
                    group_bytes += append.payload.len();
                    group.push(append);
                }
                Err(_) => break,
            }
        }
        let result = write_group(shared, &mut active, &mut buffer, next_seq, &group);
        let pending: u64 = group.iter().map(|append| append.payload.len() as u64).sum();
        match result {
            Ok(entries) => {
                next_seq += group.len() as u64;
                publish(shared, entries, &group, pending, buffer.len() as u64);
                for append in group {
                    let _ = append.done.send(Ok(()));
                }
            }
            Err(error) => {
                shared.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(dir = %shared.dir.display(), %error, "cannot write to the buffer; clients are told to retry");
                shared.state().pending_bytes -= pending;
                let refusal = IntakeError::Unavailable {
                    retry_after: RETRY_WHEN_FULL,
                    reason: format!("the buffer cannot be written: {error}"),
                };
                for append in group {
                    let _ = append.done.send(Err(refusal.clone()));
                }
            }
        }
    }
}

/// Writes one group at the end of the active segment (starting a new one when needed) and
/// syncs it. On failure the segment is cut back to where it was.
fn write_group(
    shared: &Shared,
    active: &mut Option<Active>,
    buffer: &mut Vec<u8>,
    first_seq: u64,
    group: &[Append],
) -> io::Result<Vec<IndexEntry>> {
    let group_bytes: u64 = group
        .iter()
        .map(|append| append.payload.len() as u64 + segment::RECORD_HEADER_BYTES)
        .sum();
    if let Some(current) = active
        && current.records > 0
        && current.len + group_bytes > shared.config.segment_bytes
    {
        *active = None;
    }
    if active.is_none() {
        *active = Some(start_segment(shared, first_seq)?);
    }
    let current = active.as_mut().expect("just started");
    buffer.clear();
    let mut entries = Vec::with_capacity(group.len());
    for (seq, append) in (first_seq..).zip(group) {
        let offset = current.len + buffer.len() as u64;
        segment::frame(seq, &append.payload, buffer);
        entries.push(IndexEntry {
            seq,
            offset,
            len: append.payload.len() as u32,
            records: u32::try_from(append.batch.len()).unwrap_or(u32::MAX),
        });
    }
    let written = current.file.write_all(buffer).and_then(|()| {
        if shared.config.durability == Durability::Fsync {
            let started = Instant::now();
            current.file.sync_data()?;
            shared
                .stats
                .sync_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(error) = written {
        if current.file.set_len(current.len).is_err() {
            // The segment's end is unknown now: leave it, start a new one for the next group.
            *active = None;
        }
        return Err(error);
    }
    current.len += buffer.len() as u64;
    current.records += group.len();
    Ok(entries)
}

/// Creates the segment starting at `first_seq`, syncs it and its directory, and registers it.
fn start_segment(shared: &Shared, first_seq: u64) -> io::Result<Active> {
    let path = shared.dir.join(segment::file_name(first_seq));
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)?;
    file.write_all(&segment::header())?;
    file.sync_all()?;
    segment::sync_directory(&shared.dir)?;
    let reader = File::open(&path)?;
    let mut state = shared.state();
    state.disk_bytes += segment::HEADER_BYTES;
    state.segments.push_back(Segment {
        path,
        file: Arc::new(reader),
        entries: Vec::new(),
        bytes: segment::HEADER_BYTES,
    });
    Ok(Active {
        file,
        len: segment::HEADER_BYTES,
        records: 0,
    })
}

/// Makes a written group visible to readers and accounts for it.
fn publish(
    shared: &Shared,
    entries: Vec<IndexEntry>,
    group: &[Append],
    pending: u64,
    written: u64,
) {
    let records: usize = group.iter().map(|append| append.batch.len()).sum();
    let stats = &shared.stats;
    stats
        .appends
        .fetch_add(group.len() as u64, Ordering::Relaxed);
    stats.records.fetch_add(records as u64, Ordering::Relaxed);
    stats.bytes_written.fetch_add(written, Ordering::Relaxed);
    stats.commits.fetch_add(1, Ordering::Relaxed);
    let recent_limit = shared.config.memory_bytes / 2;
    let mut state = shared.state();
    state.pending_bytes -= pending;
    state.disk_bytes += written;
    if let Some(last) = entries.last() {
        state.committed = last.seq;
    }
    for (entry, append) in entries.iter().zip(group) {
        let size = append.payload.len() as u64;
        state.recent.push_back((
            Arc::new(Entry {
                seq: entry.seq,
                receiver: append.receiver.clone(),
                batch: append.batch.clone(),
            }),
            size,
        ));
        state.recent_bytes += size;
    }
    while state.recent_bytes > recent_limit
        && let Some((_, size)) = state.recent.pop_front()
    {
        state.recent_bytes -= size;
    }
    let segment = state
        .segments
        .back_mut()
        .expect("the writer registered its segment");
    segment.bytes += written;
    segment.entries.extend(entries);
    drop(state);
    shared.committed.notify_all();
}

/// Saves cursors, gives up the oldest data of drop-oldest consumers when the log is full, and
/// removes segments every consumer is past.
fn housekeeping(shared: &Shared) {
    let consumers = shared
        .consumers
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    make_room(shared, &consumers);
    let durable: BTreeMap<String, u64> = consumers
        .iter()
        .map(|consumer| (consumer.name().to_owned(), consumer.durable()))
        .collect();
    let committed = shared.state().committed;
    {
        let mut cursors = shared
            .cursors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if cursors.consumers != durable || cursors.next_seq_floor < committed {
            let updated = CursorFile {
                consumers: durable.clone(),
                next_seq_floor: committed,
            };
            match updated.save(&shared.dir.join(CURSORS_FILE)) {
                Ok(()) => *cursors = updated,
                Err(error) => {
                    tracing::error!(dir = %shared.dir.display(), %error, "cannot save the consumers' cursors");
                    return;
                }
            }
        }
    }
    // Without consumers nothing needs the log once it is written.
    let consumed = durable.values().copied().min().unwrap_or(committed);
    remove_consumed(shared, consumed);
}

/// Removes every segment but the one being written whose entries are all at or below
/// `consumed`.
fn remove_consumed(shared: &Shared, consumed: u64) {
    let removed: Vec<PathBuf> = {
        let mut state = shared.state();
        let mut removed = Vec::new();
        while state.segments.len() > 1
            && state.segments[0]
                .last_seq()
                .is_none_or(|last| last <= consumed)
        {
            let segment = state.segments.pop_front().expect("checked");
            state.disk_bytes -= segment.bytes;
            removed.push(segment.path);
        }
        removed
    };
    if removed.is_empty() {
        return;
    }
    for path in &removed {
        if let Err(error) = std::fs::remove_file(path) {
            tracing::error!(path = %path.display(), %error, "cannot remove a consumed segment");
        }
    }
    shared
        .stats
        .segments_removed
        .fetch_add(removed.len() as u64, Ordering::Relaxed);
    if let Err(error) = segment::sync_directory(&shared.dir) {
        tracing::warn!(dir = %shared.dir.display(), %error, "cannot sync the buffer directory");
    }
}

/// When the log is near its limit and only drop-oldest consumers hold its oldest segment, moves
/// them past it (counting what they lose) so it can go.
fn make_room(shared: &Shared, consumers: &[Arc<Consumer>]) {
    let threshold = shared
        .config
        .max_bytes
        .saturating_sub(shared.config.segment_bytes);
    loop {
        let (last, records_after) = {
            let state = shared.state();
            if state.disk_bytes + state.pending_bytes <= threshold || state.segments.len() < 2 {
                return;
            }
            let oldest = &state.segments[0];
            let Some(last) = oldest.last_seq() else {
                return;
            };
            let records: Vec<(u64, u32)> = oldest
                .entries
                .iter()
                .map(|entry| (entry.seq, entry.records))
                .collect();
            (last, records)
        };
        let holders: Vec<&Arc<Consumer>> = consumers
            .iter()
            .filter(|consumer| consumer.durable() < last)
            .collect();
        if holders
            .iter()
            .any(|consumer| consumer.when_full() == WhenFull::Block)
        {
            return;
        }
        for consumer in holders {
            let from = consumer.durable();
            let lost: u64 = records_after
                .iter()
                .filter(|(seq, _)| *seq > from)
                .map(|(_, records)| u64::from(*records))
                .sum();
            tracing::warn!(
                consumer = consumer.name(),
                records = lost,
                "the buffer is full: dropping this sink's oldest data"
            );
            consumer.skip_to(last, lost);
        }
        remove_consumed(
            shared,
            consumers
                .iter()
                .map(|consumer| consumer.durable())
                .min()
                .unwrap_or(last),
        );
        let state = shared.state();
        if state.segments.front().and_then(Segment::last_seq) == Some(last) {
            // Could not remove it (only segment left): nothing more to do now.
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LineBatch, StringColumn};

    fn lines(count: usize, text: &str) -> Batch {
        let mut lines = StringColumn::default();
        for index in 0..count {
            lines.push(&format!("{text} {index}"));
        }
        Batch::Lines(LineBatch {
            lines,
            ..LineBatch::default()
        })
    }

    fn config(dir: &Path) -> BufferConfig {
        BufferConfig {
            path: dir.to_path_buf(),
            segment_bytes: 4096,
            max_bytes: 64 * 1024,
            ..BufferConfig::default()
        }
    }

    fn text_of(entry: &Entry) -> String {
        match entry.batch.as_ref() {
            Batch::Lines(lines) => lines.lines.get(0).to_owned(),
            other => panic!("not lines: {other:?}"),
        }
    }

    #[tokio::test]
    async fn appended_batches_are_read_back_after_a_restart_from_the_saved_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let receiver: Arc<str> = "rx".into();
        {
            let (log, recovery) = Log::open(&config(dir.path())).unwrap();
            assert!(recovery.repairs.is_empty());
            let consumer = log.consumer("logs", "archive", WhenFull::Block);
            for index in 0..40 {
                log.append(&receiver, lines(20, &format!("batch {index}")))
                    .await
                    .unwrap();
            }
            assert_eq!(log.committed(), 40);
            let segments = log.gauges().segments;
            assert!(segments > 2, "small segments roll over: {segments}");
            // The sink made the first 25 durable.
            for seq in 1..=25 {
                let entry = log.next_entry(seq).unwrap();
                assert_eq!(entry.seq, seq);
                assert_eq!(text_of(&entry), format!("batch {} 0", seq - 1));
                consumer.ticket(seq).done();
                consumer.advance(seq + 1);
            }
            log.shutdown();
            assert!(
                log.gauges().segments < segments,
                "consumed segments are removed"
            );
        }
        let (log, recovery) = Log::open(&config(dir.path())).unwrap();
        assert!(recovery.repairs.is_empty(), "{:?}", recovery.repairs);
        let consumer = log.consumer("logs", "archive", WhenFull::Block);
        assert_eq!(consumer.next(), 26, "replay starts after the cursor");
        let entry = log.next_entry(26).unwrap();
        assert_eq!(text_of(&entry), "batch 25 0", "read from disk");
        let later = log.consumer("logs", "new-sink", WhenFull::Block);
        assert!(
            later.next() <= 26,
            "a new sink starts at the oldest entry kept"
        );
        log.append(&receiver, lines(1, "after restart"))
            .await
            .unwrap();
        assert_eq!(log.committed(), 41, "numbering goes on");
        log.shutdown();
    }

    #[tokio::test]
    async fn a_full_log_refuses_with_a_retry_delay_until_drop_oldest_makes_room() {
        let dir = tempfile::tempdir().unwrap();
        let receiver: Arc<str> = "rx".into();
        let (log, _) = Log::open(&config(dir.path())).unwrap();
        let blocking = log.consumer("logs", "archive", WhenFull::Block);
        let dropping = log.consumer("logs", "exporter", WhenFull::DropOldest);
        let mut refused = None;
        for index in 0..1000 {
            if let Err(error) = log.append(&receiver, lines(20, &format!("b{index}"))).await {
                refused = Some(error);
                break;
            }
        }
        let refused = refused.expect("the log fills up");
        assert!(refused.is_overload(), "{refused:?}");
        assert!(refused.retry_after() >= Duration::from_secs(1));
        // The blocking sink holds the oldest data: nothing is given up.
        housekeeping(&log.shared);
        assert_eq!(dropping.dropped_records(), 0);
        assert!(
            log.append(&receiver, lines(20, "still full"))
                .await
                .is_err()
        );
        // Once the blocking sink has everything durable, only the drop-oldest one holds the
        // oldest segments: they go, counted.
        let committed = log.committed();
        for seq in 1..=committed {
            blocking.ticket(seq).done();
        }
        blocking.advance(committed + 1);
        housekeeping(&log.shared);
        assert!(dropping.dropped_records() > 0);
        assert!(dropping.next() > 1);
        log.append(&receiver, lines(20, "room again"))
            .await
            .unwrap();
        log.shutdown();
    }
}
