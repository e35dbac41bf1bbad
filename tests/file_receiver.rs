//! The file tail receiver on real files in a temporary directory: growth, rotation by rename and
//! create (with a late write through the writer's old handle), copytruncate, a restart from the
//! checkpoint with lines appended while stopped, partial and oversized lines. Each test checks
//! that every line written arrives exactly once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sluice::intake::{Envelope, Intake};
use sluice::model::{AttributeValue, Batch};
use sluice::receivers::{ReceiverConfig, ReceiverContext, ReceiverStats};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Running {
    lines: mpsc::Receiver<Envelope>,
    context: ReceiverContext,
    tasks: Vec<JoinHandle<()>>,
}

async fn start(dir: &Path, extra: &str) -> Running {
    let config: ReceiverConfig = toml::from_str(&format!(
        "type = \"file\"\npaths = [\"{}/*.log\"]\ncheckpoint = \"{}\"\npoll_ms = 20\n{extra}",
        dir.display(),
        dir.join("state/checkpoint.json").display()
    ))
    .unwrap();
    let (intake, lines) = Intake::new(64, Duration::from_secs(1));
    let context = ReceiverContext {
        name: Arc::from("files"),
        intake,
        shutdown: CancellationToken::new(),
        stats: Arc::new(ReceiverStats::default()),
    };
    let tasks = sluice::receivers::start(&config, context.clone())
        .await
        .unwrap();
    Running {
        lines,
        context,
        tasks,
    }
}

async fn stop(running: Running) -> mpsc::Receiver<Envelope> {
    running.context.shutdown.cancel();
    for task in running.tasks {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the receiver ends on shutdown")
            .unwrap();
    }
    running.lines
}

/// A delivered line: (file path, text).
type Line = (String, String);

/// Receives until `count` lines arrived, then checks that no more come for a few polls.
async fn collect(lines: &mut mpsc::Receiver<Envelope>, count: usize) -> Vec<Line> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let envelope = tokio::time::timeout(left, lines.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} lines arrived: {out:?}", out.len()))
            .expect("intake closed");
        out.extend(lines_of(envelope));
    }
    let extra = tokio::time::timeout(Duration::from_millis(300), lines.recv()).await;
    assert!(
        extra.is_err(),
        "more lines than written: {:?}",
        extra.ok().flatten().map(lines_of)
    );
    out
}

fn lines_of(envelope: Envelope) -> Vec<Line> {
    assert_eq!(&*envelope.receiver, "files");
    let Batch::Lines(batch) = envelope.batch else {
        panic!("the file receiver produces line batches");
    };
    let path = batch.resource.attribute("log.file.path").cloned();
    assert_eq!(path, Some(AttributeValue::Str(batch.source.clone())));
    let name = Path::new(&batch.source)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(
        batch.resource.attribute("log.file.name"),
        Some(&AttributeValue::Str(name))
    );
    batch
        .lines
        .iter()
        .map(|line| (batch.source.clone(), line.to_owned()))
        .collect()
}

fn texts(lines: &[Line]) -> Vec<&str> {
    lines.iter().map(|(_, text)| text.as_str()).collect()
}

fn append(path: &Path, text: impl AsRef<[u8]>) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_ref()).unwrap();
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_growth_rotation_and_new_files() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut writer = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    writer.write_all(b"a1\na2\n").unwrap();
    let mut running = start(dir.path(), "rotate_wait_ms = 500").await;
    let lines = collect(&mut running.lines, 2).await;
    assert_eq!(
        lines,
        [
            (path_text(&log), "a1".into()),
            (path_text(&log), "a2".into())
        ]
    );

    // Growth.
    writer.write_all(b"a3\n").unwrap();
    assert_eq!(texts(&collect(&mut running.lines, 1).await), ["a3"]);

    // Rotation: lines written just before the rename, the rename (to a name the pattern does
    // not match), a late write through the writer's old handle, then the new file.
    writer.write_all(b"a4\na5\n").unwrap();
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    writer.write_all(b"a6 late\n").unwrap();
    let mut new_writer = File::create(&log).unwrap();
    new_writer.write_all(b"b1\nb2\n").unwrap();
    // A new file matching the pattern.
    let other = dir.path().join("other.log");
    append(&other, "o1\n");

    let lines = collect(&mut running.lines, 6).await;
    let old: Vec<&str> = texts(&lines)
        .into_iter()
        .filter(|text| text.starts_with('a'))
        .collect();
    let new: Vec<&str> = texts(&lines)
        .into_iter()
        .filter(|text| text.starts_with('b'))
        .collect();
    assert_eq!(old, ["a4", "a5", "a6 late"]);
    assert_eq!(new, ["b1", "b2"]);
    assert!(lines.contains(&(path_text(&other), "o1".into())));
    assert!(
        lines
            .iter()
            .filter(|(_, text)| !text.starts_with('o'))
            .all(|(source, _)| *source == path_text(&log))
    );

    // After the rotation wait the old file is closed; the new one is still followed.
    new_writer.write_all(b"b3\n").unwrap();
    assert_eq!(texts(&collect(&mut running.lines, 1).await), ["b3"]);
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_restarts_from_the_beginning() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "c1\nc2\nc3\n");
    let mut running = start(dir.path(), "").await;
    assert_eq!(
        texts(&collect(&mut running.lines, 3).await),
        ["c1", "c2", "c3"]
    );

    // logrotate's copytruncate: copy away, truncate in place, the writer goes on (shorter).
    std::fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, "d1\n");
    assert_eq!(texts(&collect(&mut running.lines, 1).await), ["d1"]);

    // Truncated and rewritten past the old position before the receiver looks, so that it
    // never sees the file shorter: told by the fingerprint of the first bytes. (Written over in
    // place, so the size never drops, whatever the timing.)
    let rewritten: Vec<String> = (1..=5).map(|n| format!("rewritten line {n}")).collect();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .write_all(format!("{}\n", rewritten.join("\n")).as_bytes())
        .unwrap();
    assert_eq!(texts(&collect(&mut running.lines, 5).await), rewritten);
    stop(running).await;
}

fn checkpoint_offsets(dir: &Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(dir.join("state/checkpoint.json")).unwrap();
    let document: serde_json::Value = serde_json::from_str(&text).unwrap();
    document["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["path"].as_str().unwrap().to_owned(),
                entry["offset"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "r1\nr2\nr3\npart");
    let mut running = start(dir.path(), "").await;
    assert_eq!(
        texts(&collect(&mut running.lines, 3).await),
        ["r1", "r2", "r3"]
    );
    let stats = running.context.stats.clone();
    stop(running).await;
    assert_eq!(stats.records_accepted.load(Ordering::Relaxed), 3);
    // The checkpoint stops before the unfinished line.
    assert_eq!(checkpoint_offsets(dir.path()), [(path_text(&log), 9)]);

    // Written while the gateway is stopped: the rest of the unfinished line, new lines, a new
    // file.
    append(&log, "ial r4\nr5\n");
    let later = dir.path().join("later.log");
    append(&later, "l1\n");

    let mut running = start(dir.path(), "").await;
    let mut lines = collect(&mut running.lines, 3).await;
    lines.sort();
    assert_eq!(
        lines,
        [
            (path_text(&log), "partial r4".into()),
            (path_text(&log), "r5".into()),
            (path_text(&later), "l1".into()),
        ]
    );
    stop(running).await;
    let mut offsets = checkpoint_offsets(dir.path());
    offsets.sort();
    assert_eq!(offsets, [(path_text(&log), 23), (path_text(&later), 3)]);

    // A third start with nothing new reads nothing.
    let mut running = start(dir.path(), "").await;
    let nothing = tokio::time::timeout(Duration::from_millis(300), running.lines.recv()).await;
    assert!(nothing.is_err(), "nothing is read twice");
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_lines_wait_and_long_lines_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let log: PathBuf = dir.path().join("app.log");
    append(&log, "");
    let mut running = start(
        dir.path(),
        "partial_line_wait_ms = 400\nmax_line_bytes = 16",
    )
    .await;

    // Completed before the wait is over: one line.
    append(&log, "abc");
    let early = tokio::time::timeout(Duration::from_millis(150), running.lines.recv()).await;
    assert!(early.is_err(), "a partial line waits for its newline");
    append(&log, "def\n");
    assert_eq!(texts(&collect(&mut running.lines, 1).await), ["abcdef"]);

    // Never completed: handed on after the wait.
    let started = Instant::now();
    append(&log, "no newline");
    assert_eq!(texts(&collect(&mut running.lines, 1).await), ["no newline"]);
    assert!(started.elapsed() >= Duration::from_millis(350));

    // A line over max_line_bytes is skipped, its neighbours kept; CRLF and bad UTF-8 handled.
    append(
        &log,
        b"\nbefore\r\nthis line is far too long to keep\nafter \xff\n",
    );
    assert_eq!(
        texts(&collect(&mut running.lines, 3).await),
        ["", "before", "after \u{fffd}"]
    );
    assert_eq!(
        running
            .context
            .stats
            .records_malformed
            .load(Ordering::Relaxed),
        1
    );
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_end_reads_only_what_comes_next() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "old 1\nold 2\n");
    let mut running = start(dir.path(), "start_at = \"end\"").await;
    // The first scan is done when the checkpoint is first written.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dir.path().join("state/checkpoint.json").exists() {
        assert!(Instant::now() < deadline, "no checkpoint written");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A file created after the start is read whole, whatever start_at says.
    let fresh = dir.path().join("fresh.log");
    append(&fresh, "fresh 1\n");
    assert_eq!(texts(&collect(&mut running.lines, 1).await), ["fresh 1"]);
    append(&log, "new 1\n");
    assert_eq!(texts(&collect(&mut running.lines, 1).await), ["new 1"]);
    stop(running).await;
}
