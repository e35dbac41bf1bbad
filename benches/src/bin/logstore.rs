//! `logstore`: measures the candidate back-ends of Sluice's durable intake log under one
//! group-commit workload, so the choice between an embedded store and a segment log of our own is
//! made on figures.
//!
//! ```sh
//! cargo build --release -p sluice-benches --bin logstore
//! target/release/logstore --backend all                 # 100 K records/s offered, 10 s each
//! target/release/logstore --backend all --rate 0        # flat out
//! target/release/logstore --backend all --crash         # abort after the acks, then recover
//! ```
//!
//! Back-ends, each fed by one writer thread that drains a channel of pending appends, makes them
//! durable as one group and then completes every waiter of the group:
//!
//! - `segment`: append-only segment files of at most 64 MiB; a record is
//!   `[len u32 LE][crc32c u32 LE][seq u64 LE][payload]` (the CRC covers seq and payload); a group
//!   is one `write_all` and one `fdatasync`; a new segment file fsyncs the directory.
//! - `redb`: one table `seq u64 → bytes`; a group is one write transaction committed with
//!   `Durability::Immediate` (redb's default).
//! - `fjall`: one keyspace `seq (u64 big-endian) → bytes` with fjall's default options; a group
//!   is one write batch committed with `PersistMode::SyncData`.
//! - `fjall-blob`: the same with key-value separation on (values go to blob files, the LSM tree
//!   keeps only keys and pointers): what fjall advises for large values such as ours.
//!
//! Workload: `--producers` threads each submit one append (a client batch: `--batch-records`
//! records of `--record-bytes` ± 1/6 each, ≈ 150 KiB, cut from a 64 MiB pool of random bytes so
//! nothing compresses) and wait until it is durable before submitting the next. With `--rate`
//! above 0 each producer's submissions are a Poisson process whose rates add up to the offered
//! records/s; a producer that falls behind submits at once. An append's latency runs from its
//! submission to its acknowledgement ("p99 from schedule" runs from when it should have been
//! submitted, so a back-end that falls behind cannot hide it). The CPU figure is `getrusage` of
//! the whole process (producers, writer and the store's own threads) over the write phase.
//!
//! After the write phase each run closes the store, drops its files from the page cache
//! (`posix_fadvise(DONTNEED)`), reopens it (timed), reads every record back in order (timed, and
//! checked: every sequence number present once, in order), deletes the oldest half (timed, then
//! the space allocated on disk), and runs the store's own step to give the space back (redb's
//! `compact`, fjall's memtable flush + major compaction; nothing for segment files, whose space
//! comes back at the unlink).
//!
//! `--backend all` runs each back-end in a child process of its own, so one back-end's background
//! threads and memory do not count against the next.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::io::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use rand::rngs::StdRng;
use rand::{Rng as _, RngCore as _, SeedableRng as _};
use redb::{ReadableDatabase as _, ReadableTable as _};

/// Size at which the segment log starts a new segment file.
const SEGMENT_BYTES: u64 = 64 << 20;

/// `[len u32][crc32c u32][seq u64]` in front of every segment-log record.
const RECORD_HEADER_BYTES: usize = 16;

/// Random bytes that payloads are cut from.
const PAYLOAD_POOL_BYTES: usize = 64 << 20;

/// The redb table that holds the log.
const REDB_LOG_TABLE: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("log");

/// Command-line arguments.
#[derive(Parser, Debug, Clone)]
#[command(about = "Compare durable-log back-ends (segment files, redb, fjall) under group commit")]
struct Args {
    /// Back-end to measure; `all` runs each in a child process.
    #[arg(long, value_enum, default_value_t = BackendChoice::All)]
    backend: BackendChoice,
    /// Records per second offered by all producers together; 0 = flat out.
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Length of the write phase, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Producer threads, each with one append in flight.
    #[arg(long, default_value_t = 8)]
    producers: usize,
    /// Records in one append (one client batch).
    #[arg(long, default_value_t = 512)]
    batch_records: usize,
    /// Mean size of a record in bytes; each is drawn uniformly from 5/6 to 7/6 of it.
    #[arg(long, default_value_t = 300)]
    record_bytes: usize,
    /// Directory under which each run makes its own temporary data directory
    /// (default: the cargo target directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Seed of the payload bytes and of the arrival times.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Instead of the full measurement: write at `--rate` for `--seconds` in a child process that
    /// is killed (SIGABRT, no clean close) right after the last acknowledgement, then reopen the
    /// store and check that every acknowledged append is there. For `segment`, also cut the last
    /// record in half first (a torn write) and check that recovery keeps every record before it.
    #[arg(long)]
    crash: bool,
    /// Do not print the table header (the child processes of `--backend all` leave it out).
    #[arg(long, hide = true)]
    no_header: bool,
    /// Internal: the child half of `--crash`, writing into this exact directory.
    #[arg(long, hide = true)]
    crash_child_dir: Option<PathBuf>,
}

/// Which back-end(s) to run.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum BackendChoice {
    Segment,
    Redb,
    Fjall,
    FjallBlob,
    All,
}

/// One back-end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Segment,
    Redb,
    Fjall,
    FjallBlob,
}

impl Backend {
    const ALL: [Backend; 4] = [
        Backend::Segment,
        Backend::Redb,
        Backend::Fjall,
        Backend::FjallBlob,
    ];

    fn name(self) -> &'static str {
        match self {
            Backend::Segment => "segment",
            Backend::Redb => "redb",
            Backend::Fjall => "fjall",
            Backend::FjallBlob => "fjall-blob",
        }
    }

    fn open(self, dir: &Path) -> anyhow::Result<Box<dyn LogStore>> {
        Ok(match self {
            Backend::Segment => Box::new(SegmentLog::open(dir)?),
            Backend::Redb => Box::new(RedbLog::open(dir)?),
            Backend::Fjall => Box::new(FjallLog::open(dir, false)?),
            Backend::FjallBlob => Box::new(FjallLog::open(dir, true)?),
        })
    }
}

/// What every back-end offers the benchmark.
trait LogStore: Send {
    /// Stores `payloads` as records `first_seq, first_seq + 1, …` and returns once they are
    /// durable.
    fn append_group(&mut self, first_seq: u64, payloads: &[&[u8]]) -> anyhow::Result<()>;
    /// Reads every record in sequence order, checking that the sequence numbers run on without
    /// a gap.
    fn read_all(&mut self) -> anyhow::Result<ReadTotals>;
    /// Deletes the records below `cutoff` (all of them, or for the segment log the whole segments
    /// below it), durably.
    fn delete_before(&mut self, cutoff: u64) -> anyhow::Result<()>;
    /// Runs the store's own step that gives the deleted records' space back, if it needs one.
    fn reclaim(&mut self) -> anyhow::Result<()>;
}

/// What a read of the whole log found.
#[derive(Debug, Default, Clone, Copy)]
struct ReadTotals {
    records: u64,
    payload_bytes: u64,
    first_seq: Option<u64>,
    /// Bytes after the last whole, checksummed record (segment log only): a torn write.
    torn_tail_bytes: u64,
}

impl ReadTotals {
    /// Counts one record, failing if `seq` does not follow the previous one.
    fn add(&mut self, seq: u64, payload_len: usize) -> anyhow::Result<()> {
        match self.first_seq {
            None => self.first_seq = Some(seq),
            Some(first) => ensure!(
                seq == first + self.records,
                "record {seq} follows record {}",
                first + self.records - 1
            ),
        }
        self.records += 1;
        self.payload_bytes += payload_len as u64;
        Ok(())
    }

    fn end_seq(&self) -> u64 {
        self.first_seq.unwrap_or(0) + self.records
    }
}

// ---------------------------------------------------------------------------------------------
// segment log

/// A segment file and the sequence number of its first record (also its name).
struct Segment {
    first_seq: u64,
    path: PathBuf,
}

/// The minimal segment log: what `host/src/intake/` is to be, without its recovery and API.
struct SegmentLog {
    dir: PathBuf,
    segments: Vec<Segment>,
    active: File,
    active_len: u64,
    group_buffer: Vec<u8>,
    read_buffer: Vec<u8>,
}

impl SegmentLog {
    fn open(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(first_seq) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(".seg"))
                .and_then(|stem| stem.parse::<u64>().ok())
            else {
                continue;
            };
            segments.push(Segment { first_seq, path });
        }
        segments.sort_by_key(|segment| segment.first_seq);
        let (active, active_len) = match segments.last() {
            Some(last) => {
                let file = OpenOptions::new().append(true).open(&last.path)?;
                let len = file.metadata()?.len();
                (file, len)
            }
            None => {
                let path = segment_path(dir, 0);
                let file = create_segment_file(dir, &path)?;
                segments.push(Segment { first_seq: 0, path });
                (file, 0)
            }
        };
        Ok(SegmentLog {
            dir: dir.to_path_buf(),
            segments,
            active,
            active_len,
            group_buffer: Vec::new(),
            read_buffer: Vec::new(),
        })
    }
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

/// Creates a segment file and fsyncs the directory, so the file survives a power cut.
fn create_segment_file(dir: &Path, path: &Path) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}

fn record_crc(seq: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&seq.to_le_bytes()), payload)
}

impl LogStore for SegmentLog {
    fn append_group(&mut self, first_seq: u64, payloads: &[&[u8]]) -> anyhow::Result<()> {
        let group_bytes: usize = payloads.iter().map(|p| RECORD_HEADER_BYTES + p.len()).sum();
        if self.active_len > 0 && self.active_len + group_bytes as u64 > SEGMENT_BYTES {
            let path = segment_path(&self.dir, first_seq);
            self.active = create_segment_file(&self.dir, &path)?;
            self.active_len = 0;
            self.segments.push(Segment { first_seq, path });
        }
        self.group_buffer.clear();
        for (seq, payload) in (first_seq..).zip(payloads) {
            let len = u32::try_from(payload.len()).context("payload over 4 GiB")?;
            self.group_buffer.extend_from_slice(&len.to_le_bytes());
            self.group_buffer
                .extend_from_slice(&record_crc(seq, payload).to_le_bytes());
            self.group_buffer.extend_from_slice(&seq.to_le_bytes());
            self.group_buffer.extend_from_slice(payload);
        }
        self.active.write_all(&self.group_buffer)?;
        self.active.sync_data()?;
        self.active_len += group_bytes as u64;
        Ok(())
    }

    fn read_all(&mut self) -> anyhow::Result<ReadTotals> {
        let mut totals = ReadTotals::default();
        let last_index = self.segments.len().saturating_sub(1);
        for (index, segment) in self.segments.iter().enumerate() {
            self.read_buffer.clear();
            File::open(&segment.path)?.read_to_end(&mut self.read_buffer)?;
            let mut rest = &self.read_buffer[..];
            while rest.len() >= RECORD_HEADER_BYTES {
                let len = u32::from_le_bytes(rest[0..4].try_into()?) as usize;
                let crc = u32::from_le_bytes(rest[4..8].try_into()?);
                let seq = u64::from_le_bytes(rest[8..16].try_into()?);
                let Some(payload) = rest.get(RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len) else {
                    break;
                };
                if record_crc(seq, payload) != crc {
                    break;
                }
                totals.add(seq, len)?;
                rest = &rest[RECORD_HEADER_BYTES + len..];
            }
            // Only the active segment may end in a torn write: the others were complete and
            // fsynced before the next was created.
            ensure!(
                rest.is_empty() || index == last_index,
                "{} has {} bytes of damage before its end",
                segment.path.display(),
                rest.len()
            );
            totals.torn_tail_bytes = rest.len() as u64;
        }
        Ok(totals)
    }

    fn delete_before(&mut self, cutoff: u64) -> anyhow::Result<()> {
        // A segment may go once the next one starts at or below the cutoff; the active one stays.
        let deletable = self
            .segments
            .windows(2)
            .take_while(|pair| pair[1].first_seq <= cutoff)
            .count();
        for segment in self.segments.drain(..deletable) {
            fs::remove_file(&segment.path)
                .with_context(|| format!("deleting {}", segment.path.display()))?;
        }
        File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    fn reclaim(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// redb

/// The log as one redb table.
struct RedbLog {
    db: redb::Database,
}

impl RedbLog {
    fn open(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir)?;
        let db = redb::Database::create(dir.join("log.redb"))?;
        Ok(RedbLog { db })
    }
}

impl LogStore for RedbLog {
    fn append_group(&mut self, first_seq: u64, payloads: &[&[u8]]) -> anyhow::Result<()> {
        let transaction = self.db.begin_write()?;
        {
            let mut table = transaction.open_table(REDB_LOG_TABLE)?;
            for (seq, payload) in (first_seq..).zip(payloads) {
                table.insert(seq, *payload)?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    fn read_all(&mut self) -> anyhow::Result<ReadTotals> {
        let mut totals = ReadTotals::default();
        let transaction = self.db.begin_read()?;
        let table = transaction.open_table(REDB_LOG_TABLE)?;
        for entry in table.iter()? {
            let (seq, payload) = entry?;
            totals.add(seq.value(), payload.value().len())?;
        }
        Ok(totals)
    }

    fn delete_before(&mut self, cutoff: u64) -> anyhow::Result<()> {
        let transaction = self.db.begin_write()?;
        {
            let mut table = transaction.open_table(REDB_LOG_TABLE)?;
            table.retain_in(..cutoff, |_, _| false)?;
        }
        transaction.commit()?;
        Ok(())
    }

    fn reclaim(&mut self) -> anyhow::Result<()> {
        // `compact` moves pages down and truncates the file; it says when it can do no more.
        for _ in 0..1000 {
            if !self.db.compact()? {
                return Ok(());
            }
        }
        bail!("redb compact still finding work after 1000 passes")
    }
}

// ---------------------------------------------------------------------------------------------
// fjall

/// The log as one fjall keyspace.
struct FjallLog {
    db: fjall::Database,
    log: fjall::Keyspace,
}

impl FjallLog {
    fn open(dir: &Path, kv_separation: bool) -> anyhow::Result<Self> {
        let db = fjall::Database::builder(dir).open()?;
        let log = db.keyspace("log", || {
            let options = fjall::KeyspaceCreateOptions::default();
            if kv_separation {
                options.with_kv_separation(Some(fjall::KvSeparationOptions::default()))
            } else {
                options
            }
        })?;
        Ok(FjallLog { db, log })
    }
}

impl LogStore for FjallLog {
    fn append_group(&mut self, first_seq: u64, payloads: &[&[u8]]) -> anyhow::Result<()> {
        let mut batch = self
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncData));
        for (seq, payload) in (first_seq..).zip(payloads) {
            batch.insert(&self.log, seq.to_be_bytes(), *payload);
        }
        batch.commit()?;
        Ok(())
    }

    fn read_all(&mut self) -> anyhow::Result<ReadTotals> {
        let mut totals = ReadTotals::default();
        for guard in self.log.iter() {
            let (key, value) = guard.into_inner()?;
            let seq = u64::from_be_bytes(key[..].try_into().context("key is not 8 bytes")?);
            totals.add(seq, value.len())?;
        }
        Ok(totals)
    }

    fn delete_before(&mut self, cutoff: u64) -> anyhow::Result<()> {
        let first = match self.log.first_key_value() {
            Some(guard) => u64::from_be_bytes(guard.key()?[..].try_into()?),
            None => return Ok(()),
        };
        let mut batch = self
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncData));
        for seq in first..cutoff {
            batch.remove(&self.log, seq.to_be_bytes());
        }
        batch.commit()?;
        Ok(())
    }

    fn reclaim(&mut self) -> anyhow::Result<()> {
        self.log.rotate_memtable_and_wait()?;
        self.log.major_compact()?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// workload

/// One append waiting for the writer thread.
struct PendingAppend {
    payload: Bytes,
    /// Gets the append's sequence number once it is durable.
    durable: mpsc::SyncSender<Result<u64, String>>,
}

/// What the writer thread did.
#[derive(Debug, Default)]
struct WriterTotals {
    groups: u64,
    appends: u64,
    /// Time inside the store per group (write + sync), in microseconds.
    commit_latencies_us: Vec<u64>,
}

/// The group-commit writer: takes every pending append, makes them durable together, answers
/// every waiter, and starts again; stops when every producer has hung up.
fn run_writer(
    store: &mut dyn LogStore,
    pending: mpsc::Receiver<PendingAppend>,
) -> anyhow::Result<WriterTotals> {
    let mut totals = WriterTotals::default();
    let mut group = Vec::new();
    let mut next_seq = 0u64;
    while let Ok(first) = pending.recv() {
        group.push(first);
        group.extend(pending.try_iter());
        let count = group.len() as u64;
        let payloads: Vec<&[u8]> = group.iter().map(|append| &append.payload[..]).collect();
        let commit_start = Instant::now();
        let outcome = store.append_group(next_seq, &payloads);
        totals
            .commit_latencies_us
            .push(commit_start.elapsed().as_micros() as u64);
        drop(payloads);
        let failure = outcome.as_ref().err().map(|error| format!("{error:#}"));
        for (seq, append) in (next_seq..).zip(group.drain(..)) {
            let answer = match &failure {
                None => Ok(seq),
                Some(error) => Err(error.clone()),
            };
            // A producer that has gone away no longer needs its answer.
            let _ = append.durable.send(answer);
        }
        outcome?;
        totals.groups += 1;
        totals.appends += count;
        next_seq += count;
    }
    Ok(totals)
}

/// What one producer measured.
#[derive(Debug, Default)]
struct ProducerTotals {
    /// Submission → durable, in microseconds, one per append.
    latencies_us: Vec<u64>,
    /// Intended submission time → durable, in microseconds.
    schedule_latencies_us: Vec<u64>,
    records: u64,
    payload_bytes: u64,
    last_acknowledged: Option<Instant>,
}

/// How producers make their appends.
#[derive(Debug, Clone, Copy)]
struct ProducerPlan {
    batch_records: usize,
    record_bytes: usize,
    /// Mean gap between one producer's submissions; zero = flat out.
    mean_gap: Duration,
    start: Instant,
    deadline: Instant,
    seed: u64,
}

fn run_producer(
    plan: ProducerPlan,
    pool: Bytes,
    submit: mpsc::Sender<PendingAppend>,
) -> anyhow::Result<ProducerTotals> {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let (durable_sender, durable) = mpsc::sync_channel(1);
    let mut totals = ProducerTotals::default();
    let low = plan.record_bytes * 5 / 6;
    let high = plan.record_bytes * 7 / 6;
    let mut intended = plan.start + exponential_gap(&mut rng, plan.mean_gap);
    loop {
        if intended >= plan.deadline {
            break;
        }
        if !plan.mean_gap.is_zero() {
            let now = Instant::now();
            if intended > now {
                thread::sleep(intended - now);
            }
        }
        let submitted = Instant::now();
        if submitted >= plan.deadline {
            break;
        }
        if plan.mean_gap.is_zero() {
            intended = submitted;
        }
        let payload_len: usize = (0..plan.batch_records)
            .map(|_| rng.random_range(low..=high))
            .sum();
        let offset = rng.random_range(0..pool.len() - payload_len);
        let payload = pool.slice(offset..offset + payload_len);
        submit
            .send(PendingAppend {
                payload,
                durable: durable_sender.clone(),
            })
            .context("the writer thread has stopped")?;
        durable
            .recv()
            .context("the writer thread dropped an append")?
            .map_err(|error| anyhow::anyhow!("append failed: {error}"))?;
        let acknowledged = Instant::now();
        totals.last_acknowledged = Some(acknowledged);
        totals
            .latencies_us
            .push((acknowledged - submitted).as_micros() as u64);
        totals
            .schedule_latencies_us
            .push((acknowledged - intended).as_micros() as u64);
        totals.records += plan.batch_records as u64;
        totals.payload_bytes += payload_len as u64;
        intended += exponential_gap(&mut rng, plan.mean_gap);
    }
    Ok(totals)
}

/// A gap of a Poisson process with the given mean.
fn exponential_gap(rng: &mut StdRng, mean: Duration) -> Duration {
    let uniform: f64 = rng.random_range(f64::EPSILON..1.0);
    mean.mul_f64(-uniform.ln())
}

/// What the write phase measured.
struct WritePhase {
    elapsed: Duration,
    records: u64,
    appends: u64,
    payload_bytes: u64,
    groups: u64,
    latencies_us: Vec<u64>,
    schedule_latencies_us: Vec<u64>,
    commit_latencies_us: Vec<u64>,
    cpu: Duration,
}

/// Runs producers against `store` for `--seconds`, through one group-commit writer thread.
fn write_phase(args: &Args, store: &mut dyn LogStore) -> anyhow::Result<WritePhase> {
    let mut pool = vec![0u8; PAYLOAD_POOL_BYTES];
    StdRng::seed_from_u64(args.seed).fill_bytes(&mut pool);
    let pool = Bytes::from(pool);
    let mean_batch_bytes = args.batch_records * args.record_bytes;
    ensure!(
        mean_batch_bytes * 7 / 6 < PAYLOAD_POOL_BYTES,
        "a batch of {mean_batch_bytes} bytes does not fit the payload pool"
    );
    let mean_gap = if args.rate == 0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64((args.producers * args.batch_records) as f64 / args.rate as f64)
    };
    let cpu_before = process_cpu_time()?;
    let start = Instant::now();
    let plan = ProducerPlan {
        batch_records: args.batch_records,
        record_bytes: args.record_bytes,
        mean_gap,
        start,
        deadline: start + Duration::from_secs(args.seconds),
        seed: args.seed,
    };
    let (submit, pending) = mpsc::channel();
    let (producer_results, writer_result) = thread::scope(|scope| {
        let writer = scope.spawn(move || run_writer(store, pending));
        let producers: Vec<_> = (0..args.producers)
            .map(|index| {
                let plan = ProducerPlan {
                    seed: args.seed.wrapping_mul(1_000_003) + index as u64 + 1,
                    ..plan
                };
                let pool = pool.clone();
                let submit = submit.clone();
                scope.spawn(move || run_producer(plan, pool, submit))
            })
            .collect();
        drop(submit);
        let producer_results: Vec<_> = producers.into_iter().map(|p| p.join()).collect();
        (producer_results, writer.join())
    });
    let cpu = process_cpu_time()? - cpu_before;
    let mut writer = writer_result
        .map_err(|_| anyhow::anyhow!("writer thread panicked"))?
        .context("writer")?;
    writer.commit_latencies_us.sort_unstable();
    let mut phase = WritePhase {
        elapsed: Duration::ZERO,
        records: 0,
        appends: 0,
        payload_bytes: 0,
        groups: writer.groups,
        latencies_us: Vec::new(),
        schedule_latencies_us: Vec::new(),
        commit_latencies_us: std::mem::take(&mut writer.commit_latencies_us),
        cpu,
    };
    for result in producer_results {
        let totals = result.map_err(|_| anyhow::anyhow!("producer thread panicked"))??;
        phase.records += totals.records;
        phase.appends += totals.latencies_us.len() as u64;
        phase.payload_bytes += totals.payload_bytes;
        if let Some(last) = totals.last_acknowledged {
            phase.elapsed = phase.elapsed.max(last - start);
        }
        phase.latencies_us.extend(totals.latencies_us);
        phase
            .schedule_latencies_us
            .extend(totals.schedule_latencies_us);
    }
    ensure!(
        phase.appends == writer.appends,
        "producers saw {} appends acknowledged, the writer made {} durable",
        phase.appends,
        writer.appends
    );
    phase.latencies_us.sort_unstable();
    phase.schedule_latencies_us.sort_unstable();
    Ok(phase)
}

// ---------------------------------------------------------------------------------------------
// measurements around the write phase

/// User + system CPU time of the whole process so far.
fn process_cpu_time() -> anyhow::Result<Duration> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; getrusage only writes into it.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    ensure!(
        status == 0,
        "getrusage: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: getrusage succeeded, so it filled the struct (and it was zeroed before).
    let usage = unsafe { usage.assume_init() };
    let seconds = |time: libc::timeval| {
        Duration::from_secs(time.tv_sec as u64) + Duration::from_micros(time.tv_usec as u64)
    };
    Ok(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut directories = vec![dir.to_path_buf()];
    while let Some(directory) = directories.pop() {
        for entry in fs::read_dir(&directory)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                directories.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    Ok(files)
}

/// Bytes allocated on disk to the files under `dir`.
fn allocated_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for path in files_under(dir)? {
        // A store may delete a file between the listing and the stat.
        if let Ok(metadata) = fs::metadata(&path) {
            total += metadata.blocks() * 512;
        }
    }
    Ok(total)
}

/// Writes back and drops the page cache of every file under `dir`, so the next read comes from
/// the disk.
fn drop_page_cache(dir: &Path) -> anyhow::Result<()> {
    for path in files_under(dir)? {
        let file = File::open(&path)?;
        file.sync_all()?;
        // SAFETY: the descriptor is open for the duration of the call.
        let status =
            unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        ensure!(
            status == 0,
            "posix_fadvise {}: error {status}",
            path.display()
        );
    }
    Ok(())
}

/// The figures of one back-end's run.
struct RunReport {
    write: WritePhase,
    disk_after_write: u64,
    reopen: Duration,
    read: Duration,
    read_bytes: u64,
    delete: Duration,
    disk_after_delete: u64,
    reclaim: Duration,
    disk_after_reclaim: u64,
    /// After the reclaim, closing and reopening the store.
    disk_after_reopen: u64,
}

fn measure(args: &Args, backend: Backend, dir: &Path) -> anyhow::Result<RunReport> {
    let mut store = backend.open(dir)?;
    let write = write_phase(args, store.as_mut())?;
    let disk_after_write = allocated_bytes(dir)?;
    drop(store);
    drop_page_cache(dir)?;

    let reopen_start = Instant::now();
    let mut store = backend.open(dir)?;
    let reopen = reopen_start.elapsed();
    let read_start = Instant::now();
    let totals = store.read_all()?;
    let read = read_start.elapsed();
    ensure!(
        totals.first_seq.unwrap_or(0) == 0 && totals.records == write.appends,
        "read back {} appends from {:?}, wrote {}",
        totals.records,
        totals.first_seq,
        write.appends
    );
    ensure!(
        totals.payload_bytes == write.payload_bytes,
        "read back {} payload bytes, wrote {}",
        totals.payload_bytes,
        write.payload_bytes
    );

    let cutoff = write.appends / 2;
    let delete_start = Instant::now();
    store.delete_before(cutoff)?;
    let delete = delete_start.elapsed();
    let disk_after_delete = allocated_bytes(dir)?;
    let reclaim_start = Instant::now();
    store.reclaim()?;
    let reclaim = reclaim_start.elapsed();
    let disk_after_reclaim = allocated_bytes(dir)?;

    let remaining = store.read_all()?;
    let first_left = remaining.first_seq.unwrap_or(write.appends);
    ensure!(
        remaining.end_seq() == write.appends
            && first_left <= cutoff
            && (backend == Backend::Segment || first_left == cutoff),
        "after deleting below {cutoff}, records {first_left}..{} are left",
        remaining.end_seq()
    );
    // fjall unlinks a compacted-away table once no version refers to it, which in a store that
    // takes no more writes happens at the next open.
    drop(store);
    let store = backend.open(dir)?;
    let disk_after_reopen = allocated_bytes(dir)?;
    drop(store);
    Ok(RunReport {
        write,
        disk_after_write,
        reopen,
        read,
        read_bytes: totals.payload_bytes,
        delete,
        disk_after_delete,
        reclaim,
        disk_after_reclaim,
        disk_after_reopen,
    })
}

/// The `--crash` check, parent side: a child writes flat out and aborts right after the last
/// acknowledgement; then the store must hold every acknowledged append.
fn crash_check(args: &Args, backend: Backend, dir: &Path) -> anyhow::Result<String> {
    let output = Command::new(std::env::current_exe()?)
        .args(child_args(args, backend))
        .arg("--crash-child-dir")
        .arg(dir)
        .output()
        .context("running the crash child")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let acknowledged: u64 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("acknowledged "))
        .with_context(|| {
            format!(
                "the crash child printed no count ({}); stderr: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        })?
        .trim()
        .parse()?;
    ensure!(
        !output.status.success(),
        "the crash child exited cleanly instead of aborting"
    );

    let mut torn_note = String::from("—");
    if backend == Backend::Segment {
        // Cut the last record in half, as a write torn by a power cut would leave it.
        let last = segment_files(dir)?
            .pop()
            .context("no segment file after the crash")?;
        let file = OpenOptions::new().write(true).open(&last)?;
        let len = file.metadata()?.len();
        let cut = (args.batch_records * args.record_bytes / 2) as u64;
        file.set_len(len.saturating_sub(cut))?;
        torn_note = format!("cut {cut} B off the last record");
    }

    let reopen_start = Instant::now();
    let mut store = backend.open(dir)?;
    let reopen = reopen_start.elapsed();
    let read_start = Instant::now();
    let totals = store.read_all()?;
    let read = read_start.elapsed();
    let expected = if backend == Backend::Segment {
        acknowledged - 1
    } else {
        acknowledged
    };
    ensure!(
        totals.first_seq.unwrap_or(0) == 0 && totals.records >= expected,
        "{}: {} appends acknowledged before the kill, {} recovered",
        backend.name(),
        acknowledged,
        totals.records
    );
    if backend == Backend::Segment {
        ensure!(
            totals.records == expected && totals.torn_tail_bytes > 0,
            "segment: the torn record was not cut off ({} records, {} torn bytes)",
            totals.records,
            totals.torn_tail_bytes
        );
        torn_note.push_str(&format!("; {} torn bytes skipped", totals.torn_tail_bytes));
    }
    Ok(format!(
        "| {} | {} | {} | {:.0} | {:.0} | {} |",
        backend.name(),
        acknowledged,
        totals.records,
        reopen.as_secs_f64() * 1e3,
        read.as_secs_f64() * 1e3,
        torn_note
    ))
}

fn segment_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "seg"));
    files.sort();
    Ok(files)
}

/// The `--crash` check, child side: write, report, abort without closing anything.
fn crash_child(args: &Args, backend: Backend, dir: &Path) -> anyhow::Result<()> {
    let mut store = backend.open(dir)?;
    let write = write_phase(args, store.as_mut())?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "acknowledged {}", write.appends)?;
    stdout.flush()?;
    std::process::abort();
}

// ---------------------------------------------------------------------------------------------
// report

fn percentile_ms(sorted_us: &[u64], fraction: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((fraction * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1e3
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

const HEADER: &str = "| backend | offered rec/s | achieved rec/s | MB/s | appends/fsync | p50 ms | p99 ms | max ms | p99 from schedule ms | group commit p99 / max ms | CPU s per M rec | disk after write MiB (× payload) | reopen ms | reopen + read all MB/s | delete half ms | disk after delete MiB | reclaim ms | disk after reclaim MiB (after reopen) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

fn report_row(args: &Args, backend: Backend, report: &RunReport) -> String {
    let write = &report.write;
    let seconds = write.elapsed.as_secs_f64();
    format!(
        "| {} | {} | {:.0} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} / {:.0} | {:.2} | {:.0} ({:.2}) | {:.0} | {:.0} | {:.1} | {:.0} | {:.0} | {:.0} ({:.0}) |",
        backend.name(),
        if args.rate == 0 {
            "flat out".to_string()
        } else {
            args.rate.to_string()
        },
        write.records as f64 / seconds,
        write.payload_bytes as f64 / seconds / 1e6,
        write.appends as f64 / write.groups.max(1) as f64,
        percentile_ms(&write.latencies_us, 0.50),
        percentile_ms(&write.latencies_us, 0.99),
        percentile_ms(&write.latencies_us, 1.0),
        percentile_ms(&write.schedule_latencies_us, 0.99),
        percentile_ms(&write.commit_latencies_us, 0.99),
        percentile_ms(&write.commit_latencies_us, 1.0),
        write.cpu.as_secs_f64() / (write.records as f64 / 1e6),
        mib(report.disk_after_write),
        report.disk_after_write as f64 / write.payload_bytes.max(1) as f64,
        report.reopen.as_secs_f64() * 1e3,
        report.read_bytes as f64 / (report.reopen + report.read).as_secs_f64() / 1e6,
        report.delete.as_secs_f64() * 1e3,
        mib(report.disk_after_delete),
        report.reclaim.as_secs_f64() * 1e3,
        mib(report.disk_after_reclaim),
        mib(report.disk_after_reopen),
    )
}

const CRASH_HEADER: &str = "| backend | appends acknowledged before kill | recovered | reopen ms | read ms | torn write |\n|---|---|---|---|---|---|";

/// The arguments a child process gets to run one back-end with the same workload.
fn child_args(args: &Args, backend: Backend) -> Vec<String> {
    let mut child = vec![
        "--backend".to_string(),
        backend.name().to_string(),
        "--rate".to_string(),
        args.rate.to_string(),
        "--seconds".to_string(),
        args.seconds.to_string(),
        "--producers".to_string(),
        args.producers.to_string(),
        "--batch-records".to_string(),
        args.batch_records.to_string(),
        "--record-bytes".to_string(),
        args.record_bytes.to_string(),
        "--seed".to_string(),
        args.seed.to_string(),
        "--no-header".to_string(),
    ];
    if let Some(dir) = &args.dir {
        child.push("--dir".to_string());
        child.push(dir.display().to_string());
    }
    child
}

/// Where runs make their data directories: `--dir`, else the cargo target directory.
fn base_dir(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &args.dir {
        return Ok(dir.clone());
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Ok(PathBuf::from(dir));
    }
    // target/release/logstore → target
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .context("the executable has no grandparent directory to put data in; pass --dir")
}

fn run_one(args: &Args, backend: Backend) -> anyhow::Result<()> {
    if let Some(dir) = &args.crash_child_dir {
        return crash_child(args, backend, dir);
    }
    let base = base_dir(args)?;
    fs::create_dir_all(&base)?;
    let data = tempfile::Builder::new()
        .prefix(&format!("logstore-{}-", backend.name()))
        .tempdir_in(&base)
        .with_context(|| format!("making a data directory under {}", base.display()))?;
    let row = if args.crash {
        crash_check(args, backend, data.path())?
    } else {
        report_row(args, backend, &measure(args, backend, data.path())?)
    };
    println!("{row}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.producers > 0, "--producers must be at least 1");
    ensure!(args.batch_records > 0, "--batch-records must be at least 1");
    ensure!(args.record_bytes >= 6, "--record-bytes must be at least 6");
    if !args.no_header {
        println!("{}", if args.crash { CRASH_HEADER } else { HEADER });
    }
    let backend = match args.backend {
        BackendChoice::Segment => Backend::Segment,
        BackendChoice::Redb => Backend::Redb,
        BackendChoice::Fjall => Backend::Fjall,
        BackendChoice::FjallBlob => Backend::FjallBlob,
        BackendChoice::All => {
            let mut failures = Vec::new();
            for backend in Backend::ALL {
                let mut command = Command::new(std::env::current_exe()?);
                command.args(child_args(&args, backend));
                if args.crash {
                    command.arg("--crash");
                }
                let status = command.status()?;
                if !status.success() {
                    failures.push(format!("{} ({status})", backend.name()));
                }
            }
            if !failures.is_empty() {
                bail!("runs failed: {}", failures.join(", "));
            }
            return Ok(());
        }
    };
    run_one(&args, backend)
}
