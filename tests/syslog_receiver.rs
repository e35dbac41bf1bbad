//! The syslog receiver driven over real sockets: util-linux `logger` (a real syslog client) in
//! RFC 5424 and RFC 3164 over UDP and TCP with both framings, then hand-made frames for the
//! malformed cases. Each test checks that exactly what was sent reaches the intake.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sluice::intake::{Envelope, Intake};
use sluice::model::{AttributeValue, Batch, LogRecord};
use sluice::receivers::syslog::PARSE_ERROR_ATTRIBUTE;
use sluice::receivers::{ReceiverConfig, ReceiverContext, ReceiverStats};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Running {
    records: mpsc::Receiver<Envelope>,
    context: ReceiverContext,
    tasks: Vec<JoinHandle<()>>,
    udp: SocketAddr,
    tcp: SocketAddr,
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .map(|address| address.port())
        .expect("no free UDP port")
}

async fn start(extra: &str) -> Running {
    let (intake, records) = Intake::new(64, Duration::from_secs(1));
    let context = ReceiverContext {
        name: Arc::from("syslog"),
        intake,
        shutdown: CancellationToken::new(),
        stats: Arc::new(ReceiverStats::default()),
    };
    // A port found free may be taken before the receiver binds it (by another test's client
    // connection): try other ports then.
    for _ in 0..5 {
        let udp: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let tcp: SocketAddr = format!("127.0.0.1:{}", support::free_port())
            .parse()
            .unwrap();
        let config: ReceiverConfig = toml::from_str(&format!(
            "type = \"syslog\"\nudp = \"{udp}\"\ntcp = \"{tcp}\"\n{extra}"
        ))
        .unwrap();
        match sluice::receivers::start(&config, context.clone()).await {
            Ok(tasks) => {
                return Running {
                    records,
                    context,
                    tasks,
                    udp,
                    tcp,
                };
            }
            Err(error) if error.to_string().contains("in use") => continue,
            Err(error) => panic!("{error:#}"),
        }
    }
    panic!("no free ports");
}

/// Receives batches until `count` records arrived (failing after a few seconds), then checks
/// that nothing more comes.
async fn collect(records: &mut mpsc::Receiver<Envelope>, count: usize) -> Vec<LogRecord> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let envelope = tokio::time::timeout(left, records.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} records arrived: {out:#?}", out.len()))
            .expect("intake closed");
        assert_eq!(&*envelope.receiver, "syslog");
        let Batch::Logs(batch) = envelope.batch else {
            panic!("syslog must produce log batches");
        };
        out.extend(batch.records());
    }
    let extra = tokio::time::timeout(Duration::from_millis(300), records.recv()).await;
    assert!(extra.is_err(), "more records than sent: {extra:?}");
    out
}

fn attribute<'r>(record: &'r LogRecord, key: &str) -> Option<&'r AttributeValue> {
    record
        .attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, value)| value)
}

fn text<'r>(record: &'r LogRecord, key: &str) -> Option<&'r str> {
    attribute(record, key).and_then(AttributeValue::as_str)
}

fn logger(args: &[&str], port: u16, message: &str) {
    let status = Command::new("logger")
        .args(["--server", "127.0.0.1", "--port", &port.to_string()])
        .args(args)
        .arg(message)
        .status()
        .expect("util-linux `logger` runs");
    assert!(status.success(), "logger {args:?} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logger_messages_over_udp_and_tcp_arrive_parsed() {
    let mut running = start("flush_ms = 20").await;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default();
    let before = chrono::Utc::now().timestamp_nanos_opt().unwrap() - 2_000_000_000;

    // One at a time, so that the order of arrival is the order of sending.
    logger(
        &[
            "--udp",
            "--rfc5424",
            "--tag",
            "billing",
            "--msgid",
            "ID7",
            "--sd-id",
            "order@32473",
            "--sd-param",
            "id=\"42\"",
            "-p",
            "local3.err",
        ],
        running.udp.port(),
        "payment failed",
    );
    let first = collect(&mut running.records, 1).await;
    logger(
        &[
            "--tcp",
            "--octet-count",
            "--rfc3164",
            "-t",
            "cron",
            "-p",
            "cron.warning",
        ],
        running.tcp.port(),
        "job overran",
    );
    let second = collect(&mut running.records, 1).await;
    logger(
        &["--tcp", "--rfc5424=notq", "-t", "app", "-p", "user.debug"],
        running.tcp.port(),
        "newline framed",
    );
    let third = collect(&mut running.records, 1).await;

    let record = &first[0];
    assert_eq!(record.body, "payment failed");
    assert_eq!(record.severity_number, 17);
    assert_eq!(record.severity_text, "err");
    assert!(record.timestamp >= before, "timestamp {}", record.timestamp);
    assert_eq!(text(record, "syslog.facility"), Some("local3"));
    assert_eq!(text(record, "syslog.hostname"), Some(hostname.as_str()));
    assert_eq!(text(record, "syslog.appname"), Some("billing"));
    assert_eq!(text(record, "syslog.msgid"), Some("ID7"));
    assert_eq!(text(record, "syslog.sd.order@32473.id"), Some("42"));
    assert_eq!(text(record, "syslog.sd.timeQuality.tzKnown"), Some("1"));
    assert_eq!(text(record, "network.peer.address"), Some("127.0.0.1"));
    assert!(matches!(
        attribute(record, "network.peer.port"),
        Some(AttributeValue::Int(port)) if *port > 0
    ));
    assert_eq!(attribute(record, PARSE_ERROR_ATTRIBUTE), None);

    let record = &second[0];
    assert_eq!(record.body, "job overran");
    assert_eq!(record.severity_number, 13);
    assert_eq!(record.severity_text, "warning");
    assert_eq!(text(record, "syslog.facility"), Some("cron"));
    assert_eq!(text(record, "syslog.appname"), Some("cron"));
    assert_eq!(text(record, "syslog.hostname"), Some(hostname.as_str()));
    // RFC 3164 carries a local time to the second, without a year or zone.
    assert!((record.timestamp - before).abs() < 10_000_000_000);

    let record = &third[0];
    assert_eq!(record.body, "newline framed");
    assert_eq!(record.severity_number, 5);
    assert_eq!(record.severity_text, "debug");
    assert_eq!(text(record, "syslog.appname"), Some("app"));

    assert_eq!(
        running
            .context
            .stats
            .records_malformed
            .load(Ordering::Relaxed),
        0
    );
    assert_eq!(
        running
            .context
            .stats
            .records_accepted
            .load(Ordering::Relaxed),
        3
    );
    running.context.shutdown.cancel();
    for task in running.tasks {
        task.await.unwrap();
    }
}

fn octet_counted(message: &str) -> String {
    format!("{} {message}", message.len())
}

/// Reads until the peer closes the connection; true when it did within a few seconds (a reset
/// counts: the receiver closed with bytes still unread).
fn closed_by_peer(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buffer = [0u8; 64];
    match stream.read(&mut buffer) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => !matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_never_take_their_neighbours_down() {
    let mut running = start("max_frame_bytes = 200\nflush_ms = 20").await;
    let tcp = running.tcp;

    // Both framings mixed on one connection, a frame that is not syslog in the middle, then an
    // oversized frame: the connection is closed and the frame after it never read.
    let mut stream = TcpStream::connect(tcp).unwrap();
    let payload = format!(
        "{}{}not syslog at all\n{}\n<14>bare priority\n{}\n<13>after the oversized frame\n",
        octet_counted("<13>1 2024-05-01T10:00:00Z host app 7 - - first"),
        "<13>1 2024-05-01T10:00:01Z host app 7 - - second\n",
        octet_counted("<11>May  1 10:00:02 host app[7]: third"),
        "x".repeat(300),
    );
    stream.write_all(payload.as_bytes()).unwrap();
    assert!(
        closed_by_peer(&mut stream),
        "an oversized frame closes the connection"
    );
    let records = collect(&mut running.records, 5).await;
    let bodies: Vec<&str> = records.iter().map(|record| record.body.as_str()).collect();
    assert_eq!(
        bodies,
        [
            "first",
            "second",
            "not syslog at all",
            "third",
            "bare priority"
        ]
    );
    assert_eq!(records[0].timestamp, 1_714_557_600_000_000_000);
    assert_eq!(text(&records[1], "syslog.procid"), Some("7"));
    assert!(text(&records[2], PARSE_ERROR_ATTRIBUTE).is_some());
    assert_eq!(records[2].severity_number, 0);
    assert_eq!(text(&records[2], "network.peer.address"), Some("127.0.0.1"));
    assert_eq!(text(&records[3], "syslog.appname"), Some("app"));
    assert_eq!(records[4].severity_text, "info");
    assert!(records.iter().enumerate().all(|(index, record)| {
        index == 2 || attribute(record, PARSE_ERROR_ATTRIBUTE).is_none()
    }));
    // The parse error and the oversized frame.
    assert_eq!(
        running
            .context
            .stats
            .records_malformed
            .load(Ordering::Relaxed),
        2
    );

    // A bad octet count closes the connection too; what came before it is kept.
    let mut stream = TcpStream::connect(tcp).unwrap();
    stream
        .write_all(format!("{}0 <13>oops\n", octet_counted("<13>before the bad count")).as_bytes())
        .unwrap();
    assert!(
        closed_by_peer(&mut stream),
        "a bad octet count closes the connection"
    );
    let records = collect(&mut running.records, 1).await;
    assert_eq!(records[0].body, "before the bad count");

    // A count larger than max_frame_bytes, and a connection cut inside a counted frame.
    let mut stream = TcpStream::connect(tcp).unwrap();
    stream.write_all(b"<13>kept\n999999 <13>x").unwrap();
    assert!(closed_by_peer(&mut stream));
    let mut stream = TcpStream::connect(tcp).unwrap();
    stream
        .write_all(b"<13>also kept\n50 <13>cut short")
        .unwrap();
    drop(stream);
    let mut records = collect(&mut running.records, 2).await;
    records.sort_by(|a, b| a.body.cmp(&b.body));
    assert_eq!(records[0].body, "also kept");
    assert_eq!(records[1].body, "kept");
    assert_eq!(
        running
            .context
            .stats
            .records_malformed
            .load(Ordering::Relaxed),
        5
    );

    // Over UDP, an oversized datagram is dropped and its neighbours kept.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(b"<13>udp one", running.udp).unwrap();
    socket
        .send_to("y".repeat(201).as_bytes(), running.udp)
        .unwrap();
    socket.send_to(b"just text", running.udp).unwrap();
    socket.send_to(b"<13>udp two", running.udp).unwrap();
    let records = collect(&mut running.records, 3).await;
    let bodies: Vec<&str> = records.iter().map(|record| record.body.as_str()).collect();
    assert_eq!(bodies, ["udp one", "just text", "udp two"]);
    assert!(text(&records[1], PARSE_ERROR_ATTRIBUTE).is_some());
    assert_eq!(
        running
            .context
            .stats
            .records_malformed
            .load(Ordering::Relaxed),
        7
    );

    running.context.shutdown.cancel();
    for task in running.tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_coalesced_into_batches_and_flushed_on_shutdown() {
    let mut running = start("batch_size = 100\nflush_ms = 60000").await;

    // 250 messages over several connections: two full batches go out at once, the other 50
    // wait for flush_ms (a minute) and are flushed when the receiver shuts down.
    let mut sent = Vec::new();
    for connection in 0..5 {
        let mut stream = TcpStream::connect(running.tcp).unwrap();
        let mut payload = String::new();
        for index in 0..50 {
            let body = format!("connection {connection} message {index}");
            payload.push_str(&octet_counted(&format!("<14>1 - host app - - - {body}")));
            sent.push(body);
        }
        stream.write_all(payload.as_bytes()).unwrap();
    }
    let mut received = Vec::new();
    for _ in 0..2 {
        let envelope = tokio::time::timeout(Duration::from_secs(5), running.records.recv())
            .await
            .expect("a full batch goes at once")
            .unwrap();
        assert!(
            envelope.batch.len() >= 100,
            "batch of {}",
            envelope.batch.len()
        );
        let Batch::Logs(batch) = envelope.batch else {
            panic!("logs expected")
        };
        received.extend(batch.records().map(|record| record.body));
    }
    // Every frame read (the counter is bumped before the frame goes to the batcher).
    let deadline = Instant::now() + Duration::from_secs(5);
    while running.context.stats.requests.load(Ordering::Relaxed) < 250 {
        assert!(Instant::now() < deadline, "frames not read");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.context.shutdown.cancel();
    for task in running.tasks {
        task.await.unwrap();
    }
    while let Ok(envelope) = running.records.try_recv() {
        let Batch::Logs(batch) = envelope.batch else {
            panic!("logs expected")
        };
        received.extend(batch.records().map(|record| record.body));
    }
    received.sort();
    sent.sort();
    assert_eq!(received, sent);
}
