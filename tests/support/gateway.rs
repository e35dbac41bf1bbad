//! `sluice run` as a process, driven the way an operator drives it: a config file written to a
//! directory, the binary started on it, ready once it says it is running and its TCP ports
//! accept, stopped with SIGTERM, its stderr summary read back. Also the readers of what it
//! leaves behind: Parquet archives (row counts from the files' footers while it runs, pyarrow
//! and DuckDB after) and JSON-lines file sinks.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{python, sluice_binary, workspace_root};

/// How long a gateway may take to say it is running: on a cold, loaded CI machine its first
/// start compiles the plugins it loads (a few seconds each), several tests at a time.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a gateway may take to drain and exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// `sluice` with the test plugin cache, so compiled plugins are shared between tests and runs.
pub fn sluice_command() -> Command {
    let mut command = Command::new(sluice_binary());
    command.env(
        "SLUICE_CACHE_DIR",
        workspace_root().join("target/test-plugin-cache"),
    );
    command
}

/// Free ports handed to a config as it is written, each distinct; TCP ones are checked to
/// accept connections before the gateway counts as ready.
#[derive(Debug, Default)]
pub struct Ports {
    taken: BTreeSet<u16>,
    tcp: Vec<u16>,
}

impl Ports {
    /// A free TCP port on 127.0.0.1 (a TCP listener of the gateway will bind it).
    pub fn tcp(&mut self) -> u16 {
        let port = self.distinct(super::free_port);
        self.tcp.push(port);
        port
    }

    /// A free UDP port on 127.0.0.1.
    pub fn udp(&mut self) -> u16 {
        self.distinct(|| {
            UdpSocket::bind("127.0.0.1:0")
                .and_then(|socket| socket.local_addr())
                .map(|address| address.port())
                .expect("no free UDP port on 127.0.0.1")
        })
    }

    /// A port the gateway listens on over TCP that the config names itself (a fixed port).
    pub fn fixed_tcp(&mut self, port: u16) -> u16 {
        self.taken.insert(port);
        self.tcp.push(port);
        port
    }

    fn distinct(&mut self, mut find: impl FnMut() -> u16) -> u16 {
        loop {
            let port = find();
            if self.taken.insert(port) {
                return port;
            }
        }
    }
}

/// A running `sluice run`. Killed (SIGKILL) when dropped without [`stop`](Self::stop), so a
/// failing test leaves no gateway behind.
pub struct GatewayProcess {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    start_ms: u64,
}

/// A gateway after it exited.
#[derive(Debug)]
pub struct Stopped {
    /// Everything it wrote on stderr.
    pub stderr: String,
    /// How it exited.
    pub status: ExitStatus,
}

/// Why a start failed: the process ended (or timed out) before it said it was running.
#[derive(Debug)]
pub struct StartFailed {
    /// What it wrote on stderr.
    pub stderr: String,
}

impl GatewayProcess {
    /// Writes the config `render` makes to `dir/sluice.toml` and runs `sluice run` on it, in
    /// `dir`. `render` takes its ports from the [`Ports`] it is given and returns the config
    /// and whatever the test needs to reach the gateway; when a port was taken meanwhile (the
    /// gateway refuses to start with "in use"), it is called again with fresh ports.
    pub fn start<T>(dir: &Path, render: impl Fn(&mut Ports) -> (String, T)) -> (GatewayProcess, T) {
        let config_path = dir.join("sluice.toml");
        let mut last_failure = String::new();
        for _ in 0..4 {
            let mut ports = Ports::default();
            let (config, reach) = render(&mut ports);
            std::fs::write(&config_path, &config).expect("config written");
            let mut command = sluice_command();
            command.arg("run").arg(&config_path).current_dir(dir);
            match GatewayProcess::spawn(command, &ports.tcp) {
                Ok(gateway) => return (gateway, reach),
                Err(failed) if failed.stderr.contains("in use") => last_failure = failed.stderr,
                Err(failed) => panic!(
                    "sluice run did not start:\n{}\nconfig:\n{config}",
                    failed.stderr
                ),
            }
        }
        panic!("sluice run found its ports taken four times; last time:\n{last_failure}");
    }

    /// Spawns `command` (a `sluice run …`) and waits until it says it is running and every
    /// port of `tcp_ports` accepts a connection.
    pub fn spawn(mut command: Command, tcp_ports: &[u16]) -> Result<GatewayProcess, StartFailed> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sluice binary starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (lines, line_arrived) = mpsc::channel::<()>();
        let pipe = child.stderr.take().expect("stderr is piped");
        let reader = {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut text = stderr.lock().unwrap_or_else(|poison| poison.into_inner());
                    text.push_str(&line);
                    text.push('\n');
                    drop(text);
                    let _ = lines.send(());
                }
            })
        };
        let mut gateway = GatewayProcess {
            child,
            stderr,
            reader: Some(reader),
            start_ms: 0,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(start_ms) = reported_start_ms(&gateway.stderr_so_far()) {
                gateway.start_ms = start_ms;
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match line_arrived.recv_timeout(left) {
                Ok(()) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Stderr closed: the process is ending.
                    let stopped = gateway.wait_for_exit();
                    return Err(StartFailed {
                        stderr: stopped.stderr,
                    });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = gateway.child.kill();
                    let stopped = gateway.wait_for_exit();
                    return Err(StartFailed {
                        stderr: format!(
                            "not running after {START_TIMEOUT:?}; stderr:\n{}",
                            stopped.stderr
                        ),
                    });
                }
            }
        }
        for &port in tcp_ports {
            wait_until_accepting(port, deadline);
        }
        Ok(gateway)
    }

    /// The "N ms to start" the gateway reported.
    pub fn start_ms(&self) -> u64 {
        self.start_ms
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it has written on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits for the gateway to drain and exit; panics when it does not exit
    /// in time or exits with a failure.
    pub fn stop(mut self) -> Stopped {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
        let stopped = self.wait_for_exit();
        assert!(
            stopped.status.success(),
            "sluice run exited with {} after SIGTERM:\n{}",
            stopped.status,
            stopped.stderr
        );
        assert!(
            stopped.stderr.contains("sluice: stopped"),
            "no summary after SIGTERM:\n{}",
            stopped.stderr
        );
        stopped
    }

    fn wait_for_exit(&mut self) -> Stopped {
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            match self.child.try_wait().expect("the child can be waited for") {
                Some(status) => break status,
                None if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    panic!(
                        "sluice run did not exit within {STOP_TIMEOUT:?}:\n{}",
                        self.stderr_so_far()
                    );
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        Stopped {
            stderr: self.stderr_so_far(),
            status,
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `N` of "sluice: running (N ms to start)", once printed.
fn reported_start_ms(stderr: &str) -> Option<u64> {
    let line = stderr
        .lines()
        .find(|line| line.starts_with("sluice: running ("))?;
    let rest = line.strip_prefix("sluice: running (")?;
    rest.split_once(" ms to start")?.0.parse().ok()
}

fn wait_until_accepting(port: u16, deadline: Instant) {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        match TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
            Ok(_) => return,
            Err(error) if Instant::now() >= deadline => {
                panic!("the gateway said it runs, but {address} does not accept: {error}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Counters of one receiver in the stop summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiverSummary {
    /// Records handed to the intake.
    pub accepted: u64,
    /// Records or requests refused as malformed.
    pub malformed: u64,
    /// Requests refused because the intake was full.
    pub refused: u64,
}

/// Counters of one pipeline in the stop summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineSummary {
    /// Records in.
    pub records_in: u64,
    /// Records out of the stages.
    pub records_out: u64,
    /// Dropped by filters.
    pub dropped: u64,
    /// Sent to the dead-letter sink.
    pub dead_lettered: u64,
    /// Taken by no route.
    pub unrouted: u64,
    /// Alerts raised.
    pub alerts: u64,
}

/// Counters of one sink in the stop summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkSummary {
    /// Records written.
    pub written: u64,
    /// Alerts delivered.
    pub alerts: u64,
    /// Failed attempts.
    pub errors: u64,
    /// Items given up on.
    pub dropped: u64,
}

impl Stopped {
    /// The numbers on the summary line of `kind` (`receiver`, `pipeline`, `sink`) `name`, in
    /// order.
    pub fn counters(&self, kind: &str, name: &str) -> Vec<u64> {
        let prefix = format!("  {kind} {name}: ");
        let line = self
            .stderr
            .lines()
            .find(|line| line.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no `{kind} {name}` line in the summary:\n{}", self.stderr));
        line[prefix.len()..]
            .split(", ")
            .map(|part| {
                part.split(' ')
                    .next()
                    .and_then(|number| number.parse().ok())
                    .unwrap_or_else(|| panic!("unreadable summary line {line:?}"))
            })
            .collect()
    }

    /// The counters of receiver `name`.
    pub fn receiver(&self, name: &str) -> ReceiverSummary {
        let numbers = self.counters("receiver", name);
        ReceiverSummary {
            accepted: numbers[0],
            malformed: numbers[1],
            refused: numbers[2],
        }
    }

    /// The counters of pipeline `name`.
    pub fn pipeline(&self, name: &str) -> PipelineSummary {
        let numbers = self.counters("pipeline", name);
        PipelineSummary {
            records_in: numbers[0],
            records_out: numbers[1],
            dropped: numbers[2],
            dead_lettered: numbers[3],
            unrouted: numbers[4],
            alerts: numbers[5],
        }
    }

    /// The counters of sink `name`.
    pub fn sink(&self, name: &str) -> SinkSummary {
        let numbers = self.counters("sink", name);
        SinkSummary {
            written: numbers[0],
            alerts: numbers[1],
            errors: numbers[2],
            dropped: numbers[3],
        }
    }
}

/// The completed Parquet files of one signal of an archive (temporary files are dot-files and
/// end in `.tmp`, so they are not among them).
pub fn archive_files(root: &Path, signal: &str) -> Vec<PathBuf> {
    fn walk(directory: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(directory) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path
                .extension()
                .is_some_and(|extension| extension == "parquet")
                && !entry.file_name().to_string_lossy().starts_with('.')
            {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&root.join(format!("signal={signal}")), &mut found);
    found.sort();
    found
}

/// Rows in the completed files of one signal, from their footers.
pub fn archive_rows(root: &Path, signal: &str) -> i64 {
    archive_files(root, signal)
        .iter()
        .map(|path| {
            let file = std::fs::File::open(path).expect("archive file opens");
            let reader = parquet::file::reader::SerializedFileReader::new(file)
                .unwrap_or_else(|error| panic!("{} is not Parquet: {error}", path.display()));
            parquet::file::reader::FileReader::metadata(&reader)
                .file_metadata()
                .num_rows()
        })
        .sum()
}

/// Waits until the completed files of `signal` hold at least `rows` rows (the sink completes
/// files at `max_file_age`). Returns what it found instead when `timeout` passes first, for the
/// test to report (the archive read after the gateway stops tells exactly what is missing).
pub fn wait_for_archive_rows(
    root: &Path,
    signal: &str,
    rows: i64,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let found = archive_rows(root, signal);
        if found >= rows {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{signal}: {found} rows in the archive at {} after {timeout:?}, expected {rows}",
                root.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads an archive with `tests/python/read_archive.py` (pyarrow and DuckDB); `queries` maps
/// names to DuckDB SQL over `{logs}`, `{metrics}`, `{traces}`.
pub fn read_archive(root: &Path, queries: serde_json::Value) -> serde_json::Value {
    use std::io::Write;
    let mut child = Command::new(python())
        .arg(workspace_root().join("tests/python/read_archive.py"))
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(
            serde_json::json!({ "queries": queries })
                .to_string()
                .as_bytes(),
        )
        .expect("queries written");
    let output = child.wait_with_output().expect("read_archive.py ends");
    assert!(
        output.status.success(),
        "read_archive.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("read_archive.py prints JSON")
}

/// The JSON lines of a file sink's output (none when it does not exist yet).
pub fn read_json_lines(path: &Path) -> Vec<serde_json::Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|error| {
                panic!("{}: bad JSON line {line:?}: {error}", path.display())
            })
        })
        .collect()
}
