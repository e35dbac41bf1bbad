//! The JSON lines receiver over real sockets: newline-delimited JSON over TCP, and HTTP POSTs
//! from a real HTTP client (reqwest), with malformed lines among good ones. Each test checks that
//! exactly the valid lines reach the intake, in order, and what the client is told.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice::intake::{Envelope, Intake};
use sluice::model::{Batch, LineBatch};
use sluice::receivers::{ReceiverConfig, ReceiverContext, ReceiverStats};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Running {
    batches: mpsc::Receiver<Envelope>,
    context: ReceiverContext,
    tasks: Vec<JoinHandle<()>>,
    tcp: SocketAddr,
    http: SocketAddr,
}

async fn start(extra: &str, intake: (Intake, mpsc::Receiver<Envelope>)) -> Running {
    let (intake, batches) = intake;
    let context = ReceiverContext {
        name: Arc::from("jsonl"),
        intake,
        shutdown: CancellationToken::new(),
        stats: Arc::new(ReceiverStats::default()),
    };
    // A port found free may be taken before the receiver binds it (by another test's client
    // connection): try other ports then.
    for _ in 0..5 {
        let tcp: SocketAddr = format!("127.0.0.1:{}", support::free_port())
            .parse()
            .unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", support::free_port())
            .parse()
            .unwrap();
        let config: ReceiverConfig = toml::from_str(&format!(
            "type = \"json_lines\"\ntcp = \"{tcp}\"\nhttp = \"{http}\"\n{extra}"
        ))
        .unwrap();
        match sluice::receivers::start(&config, context.clone()).await {
            Ok(tasks) => {
                return Running {
                    batches,
                    context,
                    tasks,
                    tcp,
                    http,
                };
            }
            Err(error) if error.to_string().contains("in use") => continue,
            Err(error) => panic!("{error:#}"),
        }
    }
    panic!("no free ports");
}

fn default_intake() -> (Intake, mpsc::Receiver<Envelope>) {
    Intake::new(64, Duration::from_secs(1))
}

/// Receives line batches until `count` lines arrived, then checks that nothing more comes.
async fn collect(batches: &mut mpsc::Receiver<Envelope>, count: usize) -> Vec<LineBatch> {
    let mut out: Vec<LineBatch> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    while out.iter().map(|batch| batch.lines.len()).sum::<usize>() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let envelope = tokio::time::timeout(left, batches.recv())
            .await
            .unwrap_or_else(|_| panic!("not all {count} lines arrived: {out:#?}"))
            .expect("intake closed");
        assert_eq!(&*envelope.receiver, "jsonl");
        let Batch::Lines(batch) = envelope.batch else {
            panic!("JSON lines must produce line batches");
        };
        out.push(batch);
    }
    let extra = tokio::time::timeout(Duration::from_millis(300), batches.recv()).await;
    assert!(extra.is_err(), "more lines than sent: {extra:?}");
    out
}

fn lines_of(batches: &[LineBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|batch| batch.lines.iter().map(str::to_owned))
        .collect()
}

async fn stop(running: Running) {
    running.context.shutdown.cancel();
    for task in running.tasks {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("receiver tasks end on shutdown")
            .unwrap();
    }
}

fn malformed(running: &Running) -> u64 {
    running
        .context
        .stats
        .records_malformed
        .load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_keeps_valid_lines_around_malformed_ones() {
    let mut running = start("max_line_bytes = 64\nflush_ms = 20", default_intake()).await;
    let mut stream = TcpStream::connect(running.tcp).unwrap();
    let client = stream.local_addr().unwrap();
    let mut payload = Vec::new();
    payload.extend_from_slice(b"{\"n\": 1, \"msg\": \"first\"}\n");
    payload.extend_from_slice(b"{\"n\": 2, broken\n");
    payload.extend_from_slice(b"\n   \n");
    payload.extend_from_slice(b"[\"arrays\", \"are\", \"JSON\"]\r\n");
    payload.extend_from_slice(format!("{{\"big\": \"{}\"}}\n", "x".repeat(100)).as_bytes());
    payload.extend_from_slice(b"{\"bytes\": \"\xff\xfe\"}\n");
    payload.extend_from_slice(b"{\"n\": 3, \"unicode\": \"h\xc3\xa9\"}\n");
    payload.extend_from_slice(b"{\"n\": 4, \"last\": \"no newline\"}");
    // Sent in small pieces so that lines straddle reads.
    for piece in payload.chunks(7) {
        stream.write_all(piece).unwrap();
    }
    drop(stream);

    let batches = collect(&mut running.batches, 4).await;
    assert_eq!(
        lines_of(&batches),
        [
            r#"{"n": 1, "msg": "first"}"#,
            r#"["arrays", "are", "JSON"]"#,
            r#"{"n": 3, "unicode": "hé"}"#,
            r#"{"n": 4, "last": "no newline"}"#,
        ]
    );
    assert!(
        batches
            .iter()
            .all(|batch| batch.source == client.to_string())
    );
    // Broken JSON, the oversized line, invalid UTF-8.
    assert_eq!(malformed(&running), 3);
    assert_eq!(
        running
            .context
            .stats
            .records_accepted
            .load(Ordering::Relaxed),
        4
    );
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_lines_are_batched_by_size_and_age() {
    let mut running = start("batch_size = 10\nflush_ms = 200", default_intake()).await;
    let mut stream = TcpStream::connect(running.tcp).unwrap();
    let sent: Vec<String> = (0..25).map(|n| json!({ "n": n }).to_string()).collect();
    stream
        .write_all(format!("{}\n", sent.join("\n")).as_bytes())
        .unwrap();
    // The connection stays open: the last 5 lines go when they are 200 ms old.
    let started = Instant::now();
    let batches = collect(&mut running.batches, 25).await;
    let sizes: Vec<usize> = batches.iter().map(|batch| batch.lines.len()).collect();
    assert_eq!(sizes, [10, 10, 5]);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(lines_of(&batches), sent);

    // Lines still waiting for their age are flushed on shutdown.
    stream.write_all(b"{\"late\": true}\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while running.context.stats.requests.load(Ordering::Relaxed) < 2 {
        assert!(Instant::now() < deadline, "second write not read");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let Running {
        mut batches,
        context,
        tasks,
        ..
    } = running;
    context.shutdown.cancel();
    for task in tasks {
        task.await.unwrap();
    }
    // The receiver's task ends only once its connections handed on what they held.
    let envelope = batches
        .try_recv()
        .expect("buffered lines flushed on shutdown");
    let Batch::Lines(batch) = envelope.batch else {
        panic!("lines expected")
    };
    assert_eq!(
        batch.lines.iter().collect::<Vec<_>>(),
        [r#"{"late": true}"#]
    );
}

fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_what_was_accepted_and_what_was_not() {
    let mut running = start(
        "max_line_bytes = 100\nmax_request_bytes = 2048",
        default_intake(),
    )
    .await;
    let client = http_client();
    let url = format!("http://{}/", running.http);

    // All valid.
    let response = client
        .post(&url)
        .header("content-type", "application/x-ndjson")
        .body("{\"a\": 1}\n{\"a\": 2}\n\n{\"a\": 3}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "accepted": 3, "rejected": [] }));
    let batches = collect(&mut running.batches, 3).await;
    assert_eq!(
        lines_of(&batches),
        [r#"{"a": 1}"#, r#"{"a": 2}"#, r#"{"a": 3}"#]
    );
    assert!(batches[0].source.starts_with("127.0.0.1:"));

    // Lines 2 and 4 are bad: 400 lists them, and the good ones are accepted all the same.
    let long = format!("{{\"long\": \"{}\"}}", "y".repeat(200));
    let response = client
        .post(format!("http://{}/v1/jsonl", running.http))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"b\": 1}}\n{{\"b\": \n{{\"b\": 3}}\r\n{long}\n{{\"b\": 5}}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 3);
    assert_eq!(body["rejected_count"], 2);
    let rejected = body["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0]["line"], 2);
    assert!(
        rejected[0]["error"]
            .as_str()
            .unwrap()
            .contains("invalid JSON")
    );
    assert_eq!(rejected[1]["line"], 4);
    assert!(
        rejected[1]["error"]
            .as_str()
            .unwrap()
            .contains("max_line_bytes")
    );
    assert!(body["message"].as_str().unwrap().contains("accepted"));
    let batches = collect(&mut running.batches, 3).await;
    assert_eq!(
        lines_of(&batches),
        [r#"{"b": 1}"#, r#"{"b": 3}"#, r#"{"b": 5}"#]
    );

    // gzip.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(b"{\"z\": 1}\n{\"z\": 2}\n").unwrap();
    let response = client
        .post(&url)
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(encoder.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let batches = collect(&mut running.batches, 2).await;
    assert_eq!(lines_of(&batches), [r#"{"z": 1}"#, r#"{"z": 2}"#]);

    // Too large as sent, and too large once decoded (a small gzip of many zeros).
    let response = client
        .post(&url)
        .body(format!("{}\n", "1\n".repeat(2000)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("max_request_bytes")
    );
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![b' '; 1 << 20]).unwrap();
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 2048);
    let response = client
        .post(&url)
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    // Neither JSON lines nor a known encoding.
    let response = client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("{\"a\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let response = client
        .post(&url)
        .header("content-encoding", "br")
        .body("{\"a\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    let extra = tokio::time::timeout(Duration::from_millis(200), running.batches.recv()).await;
    assert!(extra.is_err(), "refused requests must not reach the intake");
    // Two bad lines, two bodies too large, two of the wrong type or encoding.
    assert_eq!(malformed(&running), 6);
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_says_retry_later_with_429_when_the_intake_is_full() {
    // Room for one batch, and nobody drains it.
    let mut running = start("", Intake::new(1, Duration::from_millis(50))).await;
    let client = http_client();
    let url = format!("http://{}/", running.http);
    let first = client.post(&url).body("{\"a\": 1}").send().await.unwrap();
    assert_eq!(first.status(), 200);
    let second = client.post(&url).body("{\"a\": 2}").send().await.unwrap();
    // Full (not failing): 429, retryable after the delay.
    assert_eq!(second.status(), 429);
    assert_eq!(second.headers()["retry-after"], "1");
    let body: Value = second.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("send it again"));
    assert_eq!(
        running
            .context
            .stats
            .requests_refused
            .load(Ordering::Relaxed),
        1
    );

    // Once there is room, the retry is taken; only what was answered 200 is in the intake.
    let batches = collect(&mut running.batches, 1).await;
    assert_eq!(lines_of(&batches), [r#"{"a": 1}"#]);
    let retry = client.post(&url).body("{\"a\": 2}").send().await.unwrap();
    assert_eq!(retry.status(), 200);
    let batches = collect(&mut running.batches, 1).await;
    assert_eq!(lines_of(&batches), [r#"{"a": 2}"#]);
    stop(running).await;
}
