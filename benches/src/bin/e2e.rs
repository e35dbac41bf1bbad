//! `e2e`: the end-to-end benchmark. OTLP/gRPC logs → one WASM filter → Parquet archive, through a
//! real `sluice run` process, loaded by `loadgen` flat out.
//!
//! It builds nothing itself; build first (release):
//!
//! ```sh
//! bash scripts/build-plugins
//! cargo build --release -p sluice -p sluice-benches
//! target/release/e2e --duration 10s
//! ```
//!
//! What it does:
//! 1. copies `benches/conf/e2e.toml` into a temporary directory with a free port for the OTLP/gRPC
//!    receiver and an archive directory of its own, and starts `target/release/sluice run` on it;
//!    (`sluice validate` first fills a plugin compile cache of its own, so the gateway starts from
//!    a warm cache); the buffer (`--durability fsync|os`) goes in the same directory;
//! 2. waits for the port, notes the gateway's idle RSS, runs `loadgen` for `--warmup`;
//! 3. waits for the gateway to go idle, reads its CPU time (utime + stime of every thread, from
//!    `/proc/PID/stat`), runs `loadgen` flat out (or at `--rate`) for `--duration`, waits until the gateway is idle
//!    again (everything accepted has gone through the filter to the sink) and reads its CPU time
//!    and peak RSS (`VmHWM`) once more;
//! 4. sends SIGTERM, follows the drain until the process has exited (its CPU time is read from the
//!    zombie, before it is reaped), and counts the rows of the Parquet files written;
//! 5. reports records/s accepted, records per gateway CPU-second, peak RSS, CPU per thread, and
//!    checks that the archive holds exactly the accepted records the filter keeps (loadgen reports
//!    the accepted records by severity number). A mismatch makes the exit status 1.
//!
//! `--perf FILE` also runs `perf record` on the gateway during the measured run.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use clap::Parser;

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Command-line arguments.
#[derive(Parser, Debug)]
#[command(about = "End-to-end benchmark: OTLP/gRPC → WASM filter → Parquet through `sluice run`")]
struct Args {
    /// Length of the measured run, e.g. `10s`.
    #[arg(long, default_value = "10s")]
    duration: String,
    /// Length of the warm-up run before it.
    #[arg(long, default_value = "3s")]
    warmup: String,
    /// Records per request.
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// Concurrent requests in flight.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Records per second loadgen offers in the measured run, 0 = flat out.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// When the gateway acknowledges: `fsync` (the default, after the buffer's fsync) or `os`
    /// (after the write, no fsync).
    #[arg(long, default_value = "fsync")]
    durability: String,
    /// Threads of loadgen's runtime.
    #[arg(long, default_value_t = 1)]
    loadgen_threads: usize,
    /// Services (resources) in the generated records.
    #[arg(long, default_value_t = 5)]
    services: usize,
    /// Seed of the generated records.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Gateway config template. Default: `benches/conf/e2e.toml` of the workspace.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The gateway binary. Default: `sluice` next to this binary (`target/release/sluice`).
    #[arg(long)]
    sluice: Option<PathBuf>,
    /// The load generator. Default: `loadgen` next to this binary.
    #[arg(long)]
    loadgen: Option<PathBuf>,
    /// Keep the config, gateway log and archive in this directory (created; must be empty)
    /// instead of a temporary directory removed at the end.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Run `perf record` on the gateway during the measured run, writing this file.
    #[arg(long)]
    perf: Option<PathBuf>,
    /// `perf record --call-graph` mode with `--perf`.
    #[arg(long, default_value = "dwarf,32768")]
    perf_call_graph: String,
    /// `perf record -F` frequency with `--perf`.
    #[arg(long, default_value_t = 499)]
    perf_frequency: u32,
}

/// What `/proc/PID/stat` says of a process or thread.
#[derive(Clone, Debug)]
struct Stat {
    /// Thread (or process) name.
    name: String,
    /// State letter (`R`, `S`, `Z`, …).
    state: char,
    /// utime + stime, in clock ticks.
    ticks: u64,
}

fn read_stat(path: &Path) -> Option<Stat> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text[open + 1..close].to_owned();
    let fields: Vec<&str> = text[close + 2..].split_whitespace().collect();
    // stat(5): field 3 is the state, 14 utime and 15 stime; `fields` starts at field 3.
    let state = fields.first()?.chars().next()?;
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Stat { name, state, ticks })
}

fn process_stat(pid: u32) -> Option<Stat> {
    read_stat(&PathBuf::from(format!("/proc/{pid}/stat")))
}

/// Per thread id: its stat.
fn thread_stats(pid: u32) -> BTreeMap<u32, Stat> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let tid = entry.file_name().to_str()?.parse().ok()?;
            Some((tid, read_stat(&entry.path().join("stat"))?))
        })
        .collect()
}

/// A `/proc/PID/status` field in kB (`VmHWM`, `VmRSS`).
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn seconds(ticks: u64) -> f64 {
    ticks as f64 / TICKS_PER_SECOND
}

/// Waits until the process uses less than 10 % of a core over half a second (the epoch ticker
/// and the sink's timer never let it reach zero), at most `limit`.
fn wait_idle(pid: u32, limit: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut last = process_stat(pid).context("gateway gone")?.ticks;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = process_stat(pid).context("gateway gone")?.ticks;
        if now - last < 5 {
            return Ok(started.elapsed());
        }
        ensure!(
            started.elapsed() < limit,
            "the gateway stayed busy for {limit:?} after the load stopped"
        );
        last = now;
    }
}

/// Sends a signal with `kill(1)`.
fn signal(pid: u32, name: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .context("running kill")?;
    ensure!(status.success(), "kill -{name} {pid} failed");
    Ok(())
}

/// A free TCP port on 127.0.0.1 (bound, then released for the gateway).
fn free_address() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// The bench config: the template with the free address and the archive directory put in, and
/// whether it has the archive sink (a template without `[sinks.archive]` measures the gateway
/// without a sink: records end unrouted).
fn bench_config(
    template: &str,
    grpc: SocketAddr,
    archive: &Path,
    buffer: &Path,
    durability: &str,
) -> anyhow::Result<(String, bool)> {
    let mut config: toml::Table = toml::from_str(template).context("parsing the template")?;
    let buffer_table = config
        .entry("buffer")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .context("[buffer] must be a table")?;
    buffer_table.insert("path".into(), buffer.display().to_string().into());
    buffer_table.insert("durability".into(), durability.into());
    let otlp = config
        .get_mut("receivers")
        .and_then(|receivers| receivers.get_mut("otlp"))
        .and_then(|otlp| otlp.as_table_mut())
        .context("the template needs a [receivers.otlp] table")?;
    otlp.insert("grpc".into(), grpc.to_string().into());
    let sink = config
        .get_mut("sinks")
        .and_then(|sinks| sinks.get_mut("archive"))
        .and_then(|archive| archive.as_table_mut());
    let has_archive = sink.is_some();
    if let Some(sink) = sink {
        sink.insert("path".into(), archive.display().to_string().into());
    }
    Ok((toml::to_string(&config)?, has_archive))
}

/// The lowest severity number the template's severity-filter keeps (`None`: no such filter,
/// everything is kept), and whether it keeps unspecified severities.
fn kept_severities(template: &str) -> anyhow::Result<Option<(u8, bool)>> {
    let config: toml::Table = toml::from_str(template)?;
    let Some(filter) = config
        .get("plugins")
        .and_then(|plugins| plugins.get("severity-filter"))
    else {
        return Ok(None);
    };
    let plugin_config = filter.get("config");
    let min = match plugin_config.and_then(|config| config.get("min_severity")) {
        None => 9,
        Some(toml::Value::Integer(number)) => u8::try_from(*number)?,
        Some(toml::Value::String(name)) => sluice::config::severity_from_name(name)
            .with_context(|| format!("min_severity `{name}`"))?,
        Some(other) => bail!("min_severity {other} is neither a number nor a name"),
    };
    let keep_unspecified = plugin_config
        .and_then(|config| config.get("keep_unspecified"))
        .and_then(toml::Value::as_bool)
        .unwrap_or(true);
    Ok(Some((min, keep_unspecified)))
}

/// Rows and bytes of the complete (visible) Parquet files under `dir`.
fn archive_rows(dir: &Path) -> anyhow::Result<(u64, u64, usize)> {
    use parquet::file::reader::{FileReader as _, SerializedFileReader};
    let (mut rows, mut bytes, mut files) = (0u64, 0u64, 0usize);
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                pending.push(path);
            } else if name.ends_with(".parquet") && !name.starts_with('.') {
                let file = std::fs::File::open(&path)?;
                bytes += file.metadata()?.len();
                let reader = SerializedFileReader::new(file)
                    .with_context(|| format!("reading {}", path.display()))?;
                rows += reader.metadata().file_metadata().num_rows() as u64;
                files += 1;
            }
        }
    }
    Ok((rows, bytes, files))
}

/// What loadgen reported (its `--json` object).
struct LoadReport {
    json: serde_json::Value,
}

impl LoadReport {
    fn number(&self, field: &str) -> f64 {
        self.json[field].as_f64().unwrap_or(f64::NAN)
    }

    fn count(&self, field: &str) -> u64 {
        self.json[field].as_u64().unwrap_or(0)
    }

    /// Accepted records the filter keeps; `None` when partial successes hide which were taken.
    fn kept(&self, filter: Option<(u8, bool)>) -> Option<u64> {
        if self.count("partially_rejected_requests") > 0 {
            return None;
        }
        let by_severity = self.json["accepted_by_severity"].as_array()?;
        Some(
            by_severity
                .iter()
                .enumerate()
                .filter(|(number, _)| match filter {
                    None => true,
                    Some((min, keep_unspecified)) => {
                        *number >= usize::from(min) || (*number == 0 && keep_unspecified)
                    }
                })
                .map(|(_, count)| count.as_u64().unwrap_or(0))
                .sum(),
        )
    }
}

/// Runs loadgen to completion and parses its report.
fn run_loadgen(
    args: &Args,
    loadgen: &Path,
    grpc: SocketAddr,
    duration: &str,
    rate: u64,
) -> anyhow::Result<LoadReport> {
    let output = Command::new(loadgen)
        .args(["--endpoint", &format!("http://{grpc}")])
        .args(["--rate", &rate.to_string(), "--duration", duration])
        .args(["--batch", &args.batch.to_string()])
        .args(["--connections", &args.connections.to_string()])
        .args(["--threads", &args.loadgen_threads.to_string()])
        .args(["--services", &args.services.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .arg("--json")
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", loadgen.display()))?;
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "loadgen exited with {} and printed no report: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        )
    })?;
    ensure!(
        output.status.success(),
        "loadgen exited with {}: {} errors, first: {}",
        output.status,
        json["errors"],
        json["first_error"]
    );
    Ok(LoadReport { json })
}

/// The gateway child, killed if the bench bails out early.
struct Gateway {
    child: Child,
    log: PathBuf,
}

impl Gateway {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_for_port(gateway: &mut Gateway, address: SocketAddr) -> anyhow::Result<()> {
    let started = Instant::now();
    while TcpStream::connect(address).is_err() {
        if let Some(status) = gateway.child.try_wait()? {
            bail!("the gateway exited with {status}:\n{}", gateway.log_tail());
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the gateway did not listen on {address} within 60 s:\n{}",
            gateway.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn next_to_this_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("this binary has no directory")?;
    Ok(dir.join(name))
}

fn run(args: Args) -> anyhow::Result<bool> {
    let sluice = match &args.sluice {
        Some(path) => path.clone(),
        None => next_to_this_binary("sluice")?,
    };
    let loadgen = match &args.loadgen {
        Some(path) => path.clone(),
        None => next_to_this_binary("loadgen")?,
    };
    for binary in [&sluice, &loadgen] {
        ensure!(
            binary.exists(),
            "{} is missing: build it first with `cargo build --release -p sluice -p sluice-benches`",
            binary.display()
        );
    }
    let template_path = args
        .config
        .clone()
        .unwrap_or_else(|| sluice_benches::workspace_root().join("benches/conf/e2e.toml"));
    let template = std::fs::read_to_string(&template_path)
        .with_context(|| format!("reading {}", template_path.display()))?;
    let filter = kept_severities(&template)?;

    let temporary;
    let work_dir = match &args.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            ensure!(
                std::fs::read_dir(dir)?.next().is_none(),
                "--work-dir {} is not empty",
                dir.display()
            );
            dir.clone()
        }
        None => {
            temporary = tempfile::tempdir()?;
            temporary.path().to_path_buf()
        }
    };
    let archive = work_dir.join("archive");
    let grpc = free_address()?;
    let config_path = work_dir.join("e2e.toml");
    let (config_text, has_archive) = bench_config(
        &template,
        grpc,
        &archive,
        &work_dir.join("buffer"),
        &args.durability,
    )?;
    std::fs::write(&config_path, config_text)?;

    // A plugin compile cache of its own, warmed by `sluice validate`: the gateway then starts
    // the way it does in production, from the cache (a compile in the process would leave
    // ≈ 14 MiB of allocator arenas behind and blur the idle RSS).
    let cache = work_dir.join("plugin-cache");
    let validate = Command::new(&sluice)
        .arg("validate")
        .arg(&config_path)
        .env("SLUICE_CACHE_DIR", &cache)
        .output()
        .with_context(|| format!("running {} validate", sluice.display()))?;
    ensure!(
        validate.status.success(),
        "sluice validate refused the bench config:\n{}",
        String::from_utf8_lossy(&validate.stderr)
    );

    let log = work_dir.join("gateway.log");
    let child = Command::new(&sluice)
        .arg("run")
        .arg(&config_path)
        .env("SLUICE_CACHE_DIR", &cache)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(work_dir.join("gateway.out"))?)
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("starting {}", sluice.display()))?;
    let mut gateway = Gateway { child, log };
    let pid = gateway.pid();
    let launched = Instant::now();
    wait_for_port(&mut gateway, grpc)?;
    let startup = launched.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let idle_rss = status_kb(pid, "VmRSS").unwrap_or(0);
    let threads_at_start = thread_stats(pid);
    eprintln!(
        "e2e: gateway pid {pid} listening on {grpc} after {:.0} ms, idle RSS {:.1} MiB",
        startup.as_secs_f64() * 1000.0,
        mib(idle_rss)
    );

    eprintln!("e2e: warm-up {}", args.warmup);
    let warmup = run_loadgen(&args, &loadgen, grpc, &args.warmup, args.rate)?;
    wait_idle(pid, Duration::from_secs(60))?;

    let before = process_stat(pid).context("gateway gone")?;
    let threads_before = thread_stats(pid);
    let perf = match &args.perf {
        Some(file) => Some(
            Command::new("perf")
                .args(["record", "-F", &args.perf_frequency.to_string()])
                .args(["--call-graph", &args.perf_call_graph])
                .args(["-p", &pid.to_string(), "-o"])
                .arg(file)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(work_dir.join("perf.log"))?)
                .spawn()
                .context("starting perf record")?,
        ),
        None => None,
    };
    eprintln!("e2e: measured run {}, flat out", args.duration);
    let measured_started = Instant::now();
    let measured = run_loadgen(&args, &loadgen, grpc, &args.duration, args.rate)?;
    let load_wall = measured_started.elapsed();
    let catch_up = wait_idle(pid, Duration::from_secs(120))?;
    let after = process_stat(pid).context("gateway gone")?;
    let threads_after = thread_stats(pid);
    let peak_rss_loaded = status_kb(pid, "VmHWM").unwrap_or(0);
    let rss_loaded = status_kb(pid, "VmRSS").unwrap_or(0);
    if let Some(mut perf) = perf {
        signal(perf.id(), "INT")?;
        perf.wait()?;
    }

    eprintln!("e2e: SIGTERM, draining");
    let stopping = Instant::now();
    signal(pid, "TERM")?;
    let mut peak_rss = peak_rss_loaded;
    let last = loop {
        let stat = process_stat(pid).context("the gateway was reaped early")?;
        if stat.state == 'Z' {
            break stat;
        }
        if let Some(hwm) = status_kb(pid, "VmHWM") {
            peak_rss = peak_rss.max(hwm);
        }
        ensure!(
            stopping.elapsed() < Duration::from_secs(60),
            "the gateway did not exit within 60 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let drain = stopping.elapsed();
    let status = gateway.child.wait()?;
    ensure!(
        status.success(),
        "the gateway exited with {status}:\n{}",
        gateway.log_tail()
    );

    let (rows, bytes, files) = archive_rows(&archive)?;
    let window_ticks = after.ticks - before.ticks;
    let accepted = measured.count("records_accepted");
    let all_accepted = accepted + warmup.count("records_accepted");
    let expected = match (warmup.kept(filter), measured.kept(filter)) {
        (Some(warm), Some(load)) => Some(warm + load),
        _ => None,
    };

    println!("OTLP/gRPC → severity-filter (WASM) → Parquet, through `sluice run`");
    println!(
        "  load: batch {}, {} connections, loadgen {} thread(s), {:.0} B/record encoded, {} flat out",
        args.batch,
        args.connections,
        args.loadgen_threads,
        measured.number("bytes_per_record"),
        args.duration
    );
    println!(
        "  accepted           {accepted} records in {:.2} s = {:.0} records/s ({} requests, {} retryable refusals, p50 {:.1} ms, p99 {:.1} ms)",
        measured.number("elapsed_seconds"),
        measured.number("records_per_second"),
        measured.count("requests"),
        measured.count("retryable_refusals"),
        measured.number("latency_p50_us") / 1000.0,
        measured.number("latency_p99_us") / 1000.0,
    );
    println!(
        "  gateway CPU        {:.2} s over {:.2} s (load {:.2} s + catch-up {:.2} s) = {:.2} cores busy",
        seconds(window_ticks),
        (load_wall + catch_up).as_secs_f64(),
        load_wall.as_secs_f64(),
        catch_up.as_secs_f64(),
        seconds(window_ticks) / (load_wall + catch_up).as_secs_f64()
    );
    println!(
        "  per core           {:.0} records per gateway CPU-second",
        accepted as f64 / seconds(window_ticks)
    );
    println!(
        "  whole life         {all_accepted} records / {:.2} CPU-s (start, warm-up, load, drain) = {:.0} records per CPU-second",
        seconds(last.ticks),
        all_accepted as f64 / seconds(last.ticks)
    );
    println!(
        "  loadgen CPU        {:.2} s",
        measured.number("loadgen_cpu_seconds")
    );
    println!(
        "  RSS                idle {:.1} MiB, after the load {:.1} MiB, peak (VmHWM) {:.1} MiB under load, {:.1} MiB at exit",
        mib(idle_rss),
        mib(rss_loaded),
        mib(peak_rss_loaded),
        mib(peak_rss)
    );
    println!(
        "  drain              {:.2} s from SIGTERM to exit",
        drain.as_secs_f64()
    );

    println!("  CPU by thread during the measured window (* = present before any load):");
    let mut by_thread: Vec<(u32, &Stat, u64)> = threads_after
        .iter()
        .map(|(tid, stat)| {
            let before = threads_before.get(tid).map_or(0, |stat| stat.ticks);
            (*tid, stat, stat.ticks - before)
        })
        .filter(|(_, _, ticks)| *ticks > 0)
        .collect();
    by_thread.sort_by_key(|(_, _, ticks)| std::cmp::Reverse(*ticks));
    let listed: u64 = by_thread.iter().map(|(_, _, ticks)| ticks).sum();
    for (tid, stat, ticks) in &by_thread {
        println!(
            "    {:>7} {:<16} {}{:>7.2} s  {:>5.1} %",
            tid,
            stat.name,
            if threads_at_start.contains_key(tid) {
                "*"
            } else {
                " "
            },
            seconds(*ticks),
            100.0 * *ticks as f64 / window_ticks as f64
        );
    }
    if window_ticks > listed {
        println!(
            "    {:>7} {:<16}  {:>7.2} s  {:>5.1} %",
            "",
            "(exited threads)",
            seconds(window_ticks - listed),
            100.0 * (window_ticks - listed) as f64 / window_ticks as f64
        );
    }

    let summary = std::fs::read_to_string(&gateway.log).unwrap_or_default();
    if let Some(at) = summary.find("sluice: stopped") {
        println!("  gateway summary:");
        for line in summary[at..].lines().skip(1) {
            if !line.trim().is_empty() {
                println!("    {}", line.trim());
            }
        }
    }

    if has_archive {
        println!(
            "  archive            {rows} rows in {files} files, {:.1} MiB, {:.1} B/row",
            bytes as f64 / 1048576.0,
            bytes as f64 / rows.max(1) as f64
        );
    }
    let matches = match expected {
        _ if !has_archive => {
            println!("  check              skipped: the config has no [sinks.archive]");
            true
        }
        Some(expected) => {
            println!(
                "  check              {all_accepted} accepted (warm-up + measured), {expected} kept by the filter, {rows} rows: {}",
                if rows == expected { "OK" } else { "MISMATCH" }
            );
            rows == expected
        }
        None => {
            println!(
                "  check              skipped: some requests were partly rejected, so which records were taken is unknown"
            );
            true
        }
    };
    if args.work_dir.is_some() {
        println!("  kept in            {}", work_dir.display());
    }
    Ok(matches)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("e2e: {error:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = include_str!("../../conf/e2e.toml");

    #[test]
    fn the_template_gets_the_address_and_archive_and_stays_valid() {
        let address: SocketAddr = "127.0.0.1:45678".parse().unwrap();
        let (text, has_archive) = bench_config(
            TEMPLATE,
            address,
            Path::new("/tmp/e2e-archive"),
            Path::new("/tmp/e2e-buffer"),
            "os",
        )
        .unwrap();
        assert!(has_archive);
        let config = sluice::config::GatewayConfig::parse(&text, "e2e").unwrap();
        assert_eq!(config.pipelines["logs"].stages, ["severity-filter"]);
        assert_eq!(config.buffer.path, Path::new("/tmp/e2e-buffer"));
        assert_eq!(config.buffer.durability, sluice::intake::Durability::Os);
        assert!(text.contains("127.0.0.1:45678"), "{text}");
        assert!(text.contains("/tmp/e2e-archive"), "{text}");
    }

    #[test]
    fn kept_severities_read_the_filter_config() {
        assert_eq!(kept_severities(TEMPLATE).unwrap(), Some((9, true)));
        assert_eq!(kept_severities("").unwrap(), None);
        let report = LoadReport {
            json: serde_json::json!({
                "partially_rejected_requests": 0,
                "accepted_by_severity": [1, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5],
            }),
        };
        assert_eq!(report.kept(Some((9, true))), Some(1 + 4 + 5));
        assert_eq!(report.kept(Some((9, false))), Some(4 + 5));
        assert_eq!(report.kept(None), Some(15));
    }

    #[test]
    fn stat_lines_parse_with_spaces_and_parentheses_in_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat");
        std::fs::write(
            &path,
            "4242 (pipeline-(a) b) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 3 0 100 0 0\n",
        )
        .unwrap();
        let stat = read_stat(&path).unwrap();
        assert_eq!(stat.name, "pipeline-(a) b");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ticks, 325);
        assert!(process_stat(std::process::id()).is_some());
        assert!(!thread_stats(std::process::id()).is_empty());
        assert!(status_kb(std::process::id(), "VmHWM").unwrap() > 0);
    }
}
