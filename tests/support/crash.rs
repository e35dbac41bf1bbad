//! The kill -9 crash harness of the durable intake, shared by the CI test
//! (`tests/durability_crash.rs`, a few iterations on the debug gateway) and the long run
//! (`benches/src/bin/crash.rs`, hundreds on the release one).
//!
//! One run, in one directory that keeps the gateway's data (log and archive) from start to end:
//! 1. senders (concurrent OTLP/gRPC exporters) send log records numbered `0, 1, 2, …` across the
//!    whole run, the number as the body; a record counts as acknowledged only when the `Export`
//!    call that carried it returned `Ok`. Any failure — connection refused while the gateway is
//!    down, `UNAVAILABLE`, `RESOURCE_EXHAUSTED`, a reset — is retried with the same records after
//!    a short backoff; they are not acknowledged until an attempt succeeds. The senders never
//!    pause: they keep sending through every kill and restart;
//! 2. each iteration starts (or restarts) `sluice run`, lets the load run for a random time
//!    (seeded), then kills the gateway with SIGKILL and waits for it to die;
//! 3. at the end it starts the gateway once more, stops the senders (a request in flight is
//!    awaited; a batch not yet acknowledged is abandoned, unacknowledged), waits until the
//!    archive stops growing, stops the gateway with SIGTERM (graceful drain) and reads the
//!    archive: every acknowledged number must be in it (at-least-once: 0 lost); a number found
//!    more than once is a duplicate, allowed and counted.
//!
//! The archive is tallied here with the `parquet` crate; [`duckdb_tally`] reads it again with
//! DuckDB (`tests/python/crash_tally.py`), the way a data team would.
//!
//! It is included with `#[path]` by the test and by the bench, whose root modules provide what it
//! uses of its parent: `gateway` (`tests/support/gateway.rs`), `python` and `workspace_root`.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use arrow::array::{Array as _, AsArray as _};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use super::gateway::{GatewayProcess, Ports, Stopped, archive_files, archive_rows};

/// The environment variable that fixes the seed of a run (kill moments); without it the seed
/// comes from the clock and is printed, so a failing run can be replayed.
pub const SEED_VARIABLE: &str = "SLUICE_CRASH_SEED";

/// First wait after a failed export; doubled on each further failure of the same batch.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// Longest wait between two attempts of one batch.
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// Longest an export may take before it counts as failed and is retried.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The archive counts as settled once its row count has not changed for this long.
const ARCHIVE_QUIET: Duration = Duration::from_millis(1500);

/// Longest wait for the archive to settle after the last restart.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// What a run does.
#[derive(Clone, Debug)]
pub struct CrashSettings {
    /// The directory of the run: config, the gateway's data (log, archive) and the tallies.
    pub dir: PathBuf,
    /// Kill-and-restart cycles.
    pub iterations: usize,
    /// Seed of the kill moments.
    pub seed: u64,
    /// Concurrent exporters, each with its own connection and one request in flight.
    pub senders: usize,
    /// Log records per `Export` request.
    pub records_per_request: usize,
    /// How long the gateway runs under load before SIGKILL, in milliseconds, drawn uniformly.
    pub kill_after_ms: RangeInclusive<u64>,
    /// The Parquet sink's `max_file_age`.
    pub max_file_age: Duration,
    /// `buffer.durability`: `"fsync"` (acknowledge after fsync) or `"os"` (after write(2); a
    /// process kill cannot tell the two apart, a power loss can).
    pub durability: String,
    /// Print a line per iteration on stderr.
    pub progress: bool,
}

impl CrashSettings {
    /// `iterations` cycles in `dir` with `seed`: 4 senders of 200 records per request, killed
    /// 100–600 ms after the gateway accepts, archive files completed after 200 ms.
    pub fn new(dir: &Path, iterations: usize, seed: u64) -> CrashSettings {
        CrashSettings {
            dir: dir.to_path_buf(),
            iterations,
            seed,
            senders: 4,
            records_per_request: 200,
            kill_after_ms: 100..=600,
            max_file_age: Duration::from_millis(200),
            durability: "fsync".to_owned(),
            progress: false,
        }
    }

    /// Where the Parquet sink writes.
    pub fn archive_dir(&self) -> PathBuf {
        self.dir.join("data/archive")
    }
}

/// The seed of [`SEED_VARIABLE`] when set (an error when it is not a number), else one from the
/// clock.
pub fn seed_from_environment() -> anyhow::Result<u64> {
    match std::env::var(SEED_VARIABLE) {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("{SEED_VARIABLE}={text:?} is not an unsigned integer")),
        Err(_) => Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_nanos() as u64)
            .unwrap_or(0)),
    }
}

/// What one gateway lifetime (start to SIGKILL) went through.
#[derive(Clone, Debug)]
pub struct Lifetime {
    /// The "N ms to start" the gateway reported.
    pub start_ms: u64,
    /// How long it ran under load before SIGKILL.
    pub killed_after: Duration,
    /// Records acknowledged during it.
    pub acknowledged: u64,
}

/// How the archive compares with what was acknowledged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Rows in the archive.
    pub archived_rows: u64,
    /// Acknowledged records whose number is not in the archive.
    pub lost: u64,
    /// Numbers in the archive more than once.
    pub duplicated: u64,
    /// Rows beyond the first of each number.
    pub duplicate_rows: u64,
    /// Numbers in the archive that were sent but never acknowledged (in flight at a kill).
    pub archived_unacknowledged: u64,
    /// Up to ten lost numbers, lowest first.
    pub first_lost: Vec<u64>,
}

/// The outcome of a run.
#[derive(Debug)]
pub struct CrashReport {
    /// The seed of the kill moments.
    pub seed: u64,
    /// Kill-and-restart cycles done.
    pub iterations: usize,
    /// Each cycle.
    pub lifetimes: Vec<Lifetime>,
    /// Records acknowledged (an `Export` returned `Ok`).
    pub acknowledged: u64,
    /// Requests acknowledged.
    pub acknowledged_requests: u64,
    /// Numbers handed to senders (acknowledged, abandoned at the end, or never sent).
    pub issued: u64,
    /// Failed export attempts by gRPC code (all retried).
    pub failures: BTreeMap<String, u64>,
    /// The acknowledged numbers, as ranges in no particular order.
    pub acknowledged_ranges: Vec<Range<u64>>,
    /// The archive read with the `parquet` crate.
    pub tally: Tally,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// What the gateway wrote on stderr in its last life, ended by SIGTERM.
    pub last_stderr: String,
}

impl CrashReport {
    /// The totals line: `iterations=N acknowledged=A lost=L duplicated=D seed=S`.
    pub fn totals(&self) -> String {
        format!(
            "iterations={} acknowledged={} lost={} duplicated={} seed={}",
            self.iterations, self.acknowledged, self.tally.lost, self.tally.duplicated, self.seed
        )
    }
}

impl fmt::Display for CrashReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(formatter, "{}", self.totals())?;
        let lost_ratio = self.tally.lost as f64 / self.acknowledged.max(1) as f64;
        let duplicate_ratio = self.tally.duplicate_rows as f64 / self.acknowledged.max(1) as f64;
        writeln!(
            formatter,
            "  {} requests acknowledged, {} numbers issued; archive: {} rows, {} duplicate rows ({:.4} % of acknowledged), {} archived but never acknowledged; lost {:.4} % of acknowledged",
            self.acknowledged_requests,
            self.issued,
            self.tally.archived_rows,
            self.tally.duplicate_rows,
            100.0 * duplicate_ratio,
            self.tally.archived_unacknowledged,
            100.0 * lost_ratio,
        )?;
        if !self.tally.first_lost.is_empty() {
            writeln!(
                formatter,
                "  first lost numbers: {:?}",
                self.tally.first_lost
            )?;
        }
        let failures: Vec<String> = self
            .failures
            .iter()
            .map(|(code, count)| format!("{code} {count}"))
            .collect();
        let starts: Vec<u64> = self.lifetimes.iter().map(|life| life.start_ms).collect();
        let median_start = median(starts);
        write!(
            formatter,
            "  {:.1} s wall, {:.0} acknowledged records/s, median start {median_start} ms, failed attempts (retried): {}",
            self.elapsed.as_secs_f64(),
            self.acknowledged as f64 / self.elapsed.as_secs_f64(),
            if failures.is_empty() {
                "none".to_owned()
            } else {
                failures.join(", ")
            }
        )?;
        if let Some(at) = self.last_stderr.find("sluice: stopped") {
            write!(formatter, "\n  the last life's stop summary:")?;
            for line in self.last_stderr[at..].lines().skip(1) {
                if !line.trim().is_empty() {
                    write!(formatter, "\n    {}", line.trim())?;
                }
            }
        }
        Ok(())
    }
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// The config of the run: OTLP/gRPC in, the durable intake log, a `logs` pipeline without
/// stages, the Parquet archive out; the log and the archive under `dir/data`.
pub fn gateway_config(settings: &CrashSettings, grpc: SocketAddr) -> String {
    format!(
        r#"# Written by the kill -9 crash harness (tests/support/crash.rs).
[buffer]
path = "./data/buffer"
durability = "{durability}"

[receivers.otlp]
type = "otlp"
grpc = "{grpc}"

[pipelines.logs]
receivers = ["otlp"]
signals = ["logs"]
sinks = ["archive"]

[sinks.archive]
type = "parquet"
path = "./data/archive"
max_file_age = "{max_file_age}ms"
"#,
        durability = settings.durability,
        max_file_age = settings.max_file_age.as_millis(),
    )
}

/// What the senders and the run share.
struct Shared {
    /// Where the gateway listens now.
    endpoint: Mutex<SocketAddr>,
    /// The next number to hand out.
    next_number: AtomicU64,
    /// No new batches, abandon unacknowledged ones.
    stop: AtomicBool,
    /// Records acknowledged so far.
    acknowledged: AtomicU64,
    /// Requests acknowledged so far.
    acknowledged_requests: AtomicU64,
    /// Acknowledged numbers.
    ranges: Mutex<Vec<Range<u64>>>,
    /// Failed attempts by code.
    failures: Mutex<BTreeMap<String, u64>>,
    /// An answer no retry can fix (the records are valid, so it is a gateway or harness bug).
    fatal: Mutex<Option<String>>,
}

impl Shared {
    fn endpoint(&self) -> SocketAddr {
        *self
            .endpoint
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn count_failure(&self, code: Code) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        *failures.entry(format!("{code:?}")).or_default() += 1;
    }

    fn fail(&self, reason: String) {
        self.stop.store(true, Ordering::SeqCst);
        self.fatal
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get_or_insert(reason);
    }
}

/// A request carrying the records numbered `numbers`, the number as the body.
fn numbered_request(numbers: Range<u64>, sender: usize) -> ExportLogsServiceRequest {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos() as u64)
        .unwrap_or(0);
    let string = |key: &str, value: String| KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..KeyValue::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", "crash-test".to_owned()),
                    string("sender", sender.to_string()),
                ],
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: numbers
                    .map(|number| LogRecord {
                        time_unix_nano: now,
                        observed_time_unix_nano: now,
                        severity_number: 9,
                        severity_text: "INFO".to_owned(),
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(number.to_string())),
                        }),
                        ..LogRecord::default()
                    })
                    .collect(),
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

/// A client of the current endpoint; it connects on first use, so it can be made while the
/// gateway is down.
fn client(shared: &Shared) -> anyhow::Result<LogsServiceClient<Channel>> {
    let endpoint = Endpoint::from_shared(format!("http://{}", shared.endpoint()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(EXPORT_TIMEOUT);
    Ok(LogsServiceClient::new(endpoint.connect_lazy()))
}

/// Whether no retry can make an export with this code succeed: the request itself is wrong.
fn is_fatal(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::Unimplemented
            | Code::Unauthenticated
    )
}

/// One exporter: numbered batches, each sent until an attempt succeeds or the run stops.
async fn sender(shared: Arc<Shared>, index: usize, records_per_request: u64) {
    let mut client = match client(&shared) {
        Ok(client) => client,
        Err(error) => return shared.fail(format!("sender {index}: no client: {error:#}")),
    };
    while !shared.stop.load(Ordering::SeqCst) {
        let first = shared
            .next_number
            .fetch_add(records_per_request, Ordering::SeqCst);
        let numbers = first..first + records_per_request;
        let request = numbered_request(numbers.clone(), index);
        let mut backoff = FIRST_BACKOFF;
        loop {
            match client.export(request.clone()).await {
                Ok(response) => {
                    let rejected = response
                        .get_ref()
                        .partial_success
                        .as_ref()
                        .map_or(0, |partial| partial.rejected_log_records);
                    if rejected != 0 {
                        return shared.fail(format!(
                            "sender {index}: the gateway rejected {rejected} valid records of {numbers:?}"
                        ));
                    }
                    shared
                        .acknowledged
                        .fetch_add(records_per_request, Ordering::SeqCst);
                    shared.acknowledged_requests.fetch_add(1, Ordering::SeqCst);
                    shared
                        .ranges
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner())
                        .push(numbers);
                    break;
                }
                Err(status) if is_fatal(status.code()) => {
                    return shared.fail(format!(
                        "sender {index}: export of {numbers:?} refused with {:?}: {}",
                        status.code(),
                        status.message()
                    ));
                }
                Err(status) => {
                    shared.count_failure(status.code());
                    if shared.stop.load(Ordering::SeqCst) {
                        // Never acknowledged: abandoned, and not counted.
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    // A fresh connection, to the endpoint of the gateway's current life.
                    client = match self::client(&shared) {
                        Ok(client) => client,
                        Err(error) => {
                            return shared.fail(format!("sender {index}: no client: {error:#}"));
                        }
                    };
                }
            }
        }
    }
}

/// Starts the gateway on `preferred` (the port of its previous life, so clients find it again)
/// or, when that is taken, on a fresh port; points the senders at it.
fn start_gateway(
    settings: &CrashSettings,
    shared: &Shared,
    preferred: Option<u16>,
) -> GatewayProcess {
    let preferred = Cell::new(preferred);
    let (gateway, address) = GatewayProcess::start(&settings.dir, |ports: &mut Ports| {
        let port = match preferred.take() {
            Some(port) => ports.fixed_tcp(port),
            None => ports.tcp(),
        };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        (gateway_config(settings, address), address)
    });
    *shared
        .endpoint
        .lock()
        .unwrap_or_else(|poison| poison.into_inner()) = address;
    gateway
}

/// SIGKILL: dropping a [`GatewayProcess`] kills it with `Child::kill` (SIGKILL on Unix) and
/// reaps it. Fails when the gateway had already exited on its own.
fn kill_9(mut gateway: GatewayProcess) -> anyhow::Result<()> {
    ensure!(
        gateway.is_running(),
        "the gateway exited on its own before SIGKILL:\n{}",
        gateway.stderr_so_far()
    );
    drop(gateway);
    Ok(())
}

/// Waits until the archive's row count has not changed for [`ARCHIVE_QUIET`].
fn wait_for_quiet_archive(archive: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut rows = archive_rows(archive, "logs");
    let mut since = Instant::now();
    while since.elapsed() < ARCHIVE_QUIET {
        ensure!(
            started.elapsed() < SETTLE_LIMIT,
            "the archive still grew {SETTLE_LIMIT:?} after the senders stopped"
        );
        std::thread::sleep(Duration::from_millis(100));
        let now = archive_rows(archive, "logs");
        if now != rows {
            rows = now;
            since = Instant::now();
        }
    }
    Ok(())
}

/// Runs the whole crash test: `settings.iterations` SIGKILLs under load, a last graceful stop,
/// the archive checked against what was acknowledged.
pub fn run(settings: &CrashSettings) -> anyhow::Result<CrashReport> {
    run_with(settings, &mut || Ok(()))
}

/// [`run`], calling `after_kill` after each SIGKILL, once the gateway is dead and before it is
/// restarted (the power-loss test drops the unsynced writes there).
pub fn run_with(
    settings: &CrashSettings,
    after_kill: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<CrashReport> {
    ensure!(settings.senders > 0 && settings.records_per_request > 0);
    std::fs::create_dir_all(&settings.dir)
        .with_context(|| format!("creating {}", settings.dir.display()))?;
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("a Tokio runtime for the senders")?;
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let shared = Arc::new(Shared {
        endpoint: Mutex::new(SocketAddr::from(([127, 0, 0, 1], 0))),
        next_number: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        acknowledged: AtomicU64::new(0),
        acknowledged_requests: AtomicU64::new(0),
        ranges: Mutex::new(Vec::new()),
        failures: Mutex::new(BTreeMap::new()),
        fatal: Mutex::new(None),
    });

    let mut gateway = start_gateway(settings, &shared, None);
    let senders: Vec<_> = (0..settings.senders)
        .map(|index| {
            runtime.spawn(sender(
                shared.clone(),
                index,
                settings.records_per_request as u64,
            ))
        })
        .collect();
    let mut lifetimes = Vec::with_capacity(settings.iterations);
    for iteration in 0..settings.iterations {
        let acknowledged_before = shared.acknowledged.load(Ordering::SeqCst);
        let killed_after = Duration::from_millis(rng.random_range(settings.kill_after_ms.clone()));
        std::thread::sleep(killed_after);
        let start_ms = gateway.start_ms();
        kill_9(gateway)?;
        let life = Lifetime {
            start_ms,
            killed_after,
            acknowledged: shared.acknowledged.load(Ordering::SeqCst) - acknowledged_before,
        };
        if settings.progress {
            eprintln!(
                "crash: iteration {}/{}: started in {} ms, SIGKILL after {} ms, {} records acknowledged in this life",
                iteration + 1,
                settings.iterations,
                life.start_ms,
                life.killed_after.as_millis(),
                life.acknowledged
            );
        }
        lifetimes.push(life);
        if let Some(reason) = shared
            .fatal
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
        {
            bail!("iteration {}: {reason}", iteration + 1);
        }
        after_kill().with_context(|| format!("after SIGKILL {}", iteration + 1))?;
        let port = shared.endpoint().port();
        gateway = start_gateway(settings, &shared, Some(port));
    }

    // The last life: let the senders get some records through, then stop them and drain.
    std::thread::sleep(Duration::from_millis(*settings.kill_after_ms.start()));
    shared.stop.store(true, Ordering::SeqCst);
    runtime.block_on(async {
        for sender in senders {
            let _ = sender.await;
        }
    });
    if let Some(reason) = shared
        .fatal
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .clone()
    {
        bail!("{reason}");
    }
    let archive = settings.archive_dir();
    wait_for_quiet_archive(&archive)?;
    let Stopped { stderr, .. } = gateway.stop();

    let ranges = std::mem::take(
        &mut *shared
            .ranges
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()),
    );
    let issued = shared.next_number.load(Ordering::SeqCst);
    let tally = parquet_tally(&archive, &ranges, issued)?;
    Ok(CrashReport {
        seed: settings.seed,
        iterations: settings.iterations,
        lifetimes,
        acknowledged: shared.acknowledged.load(Ordering::SeqCst),
        acknowledged_requests: shared.acknowledged_requests.load(Ordering::SeqCst),
        issued,
        failures: shared
            .failures
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone(),
        acknowledged_ranges: ranges,
        tally,
        elapsed: started.elapsed(),
        last_stderr: stderr,
    })
}

/// Reads the `body` column of every completed logs file of the archive with the `parquet`
/// crate and compares the numbers with the acknowledged ones; `issued` bounds the numbers sent.
pub fn parquet_tally(
    archive: &Path,
    acknowledged: &[Range<u64>],
    issued: u64,
) -> anyhow::Result<Tally> {
    let length = usize::try_from(issued).context("too many numbers for this machine")?;
    // How often each number is in the archive (saturating: only 0, 1 and "more" matter).
    let mut copies = vec![0u8; length];
    let mut archived_rows = 0u64;
    for path in archive_files(archive, "logs") {
        let file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("{} is not Parquet", path.display()))?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), ["body"]);
        let reader = builder
            .with_projection(mask)
            .build()
            .with_context(|| format!("reading {}", path.display()))?;
        for batch in reader {
            let batch = batch.with_context(|| format!("reading {}", path.display()))?;
            let bodies = batch
                .column(0)
                .as_string_opt::<i32>()
                .with_context(|| format!("{}: body is not a string column", path.display()))?;
            for row in 0..bodies.len() {
                let body = bodies.value(row);
                let number: u64 = body.parse().with_context(|| {
                    format!("{}: body {body:?} is not a number", path.display())
                })?;
                let slot = usize::try_from(number)
                    .ok()
                    .and_then(|index| copies.get_mut(index))
                    .with_context(|| {
                        format!(
                            "{}: number {number} was never sent (only {issued} were)",
                            path.display()
                        )
                    })?;
                *slot = slot.saturating_add(1);
                archived_rows += 1;
            }
        }
    }
    let mut tally = Tally {
        archived_rows,
        ..Tally::default()
    };
    let mut is_acknowledged = vec![false; length];
    for range in acknowledged {
        for number in range.clone() {
            is_acknowledged[number as usize] = true;
        }
    }
    for (number, (&count, &acknowledged)) in copies.iter().zip(&is_acknowledged).enumerate() {
        if acknowledged && count == 0 {
            tally.lost += 1;
            if tally.first_lost.len() < 10 {
                tally.first_lost.push(number as u64);
            }
        }
        if !acknowledged && count > 0 {
            tally.archived_unacknowledged += 1;
        }
        if count > 1 {
            tally.duplicated += 1;
        }
    }
    // Rows beyond the first of each number, exactly (the per-number counts saturate).
    let distinct = copies.iter().filter(|&&count| count > 0).count() as u64;
    tally.duplicate_rows = archived_rows - distinct;
    Ok(tally)
}

/// The same comparison done by DuckDB (`tests/python/crash_tally.py` with the project's Python
/// env): `read_parquet('…/signal=logs/**/*.parquet', hive_partitioning = 1)` against the
/// acknowledged ranges, written to `work_dir/acknowledged.csv`.
pub fn duckdb_tally(
    archive: &Path,
    acknowledged: &[Range<u64>],
    work_dir: &Path,
) -> anyhow::Result<Tally> {
    use std::io::Write as _;
    let csv_path = work_dir.join("acknowledged.csv");
    let mut csv = std::io::BufWriter::new(
        std::fs::File::create(&csv_path)
            .with_context(|| format!("creating {}", csv_path.display()))?,
    );
    writeln!(csv, "start,stop")?;
    for range in acknowledged {
        writeln!(csv, "{},{}", range.start, range.end)?;
    }
    csv.flush()?;
    drop(csv);
    let script = super::workspace_root().join("tests/python/crash_tally.py");
    let output = Command::new(super::python())
        .arg(&script)
        .arg(archive)
        .arg(&csv_path)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("crash_tally.py prints JSON")?;
    let count = |field: &str| {
        json[field]
            .as_u64()
            .with_context(|| format!("crash_tally.py printed no `{field}`: {json}"))
    };
    Ok(Tally {
        archived_rows: count("archived_rows")?,
        lost: count("lost")?,
        duplicated: count("duplicated")?,
        duplicate_rows: count("duplicate_rows")?,
        archived_unacknowledged: count("archived_unacknowledged")?,
        first_lost: json["first_lost"]
            .as_array()
            .context("crash_tally.py printed no `first_lost`")?
            .iter()
            .filter_map(serde_json::Value::as_u64)
            .collect(),
    })
}
