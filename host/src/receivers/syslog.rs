//! Syslog receiver: RFC 5424 and RFC 3164 messages over UDP (one message per datagram) and TCP
//! (RFC 6587 octet counting, `LEN SP MSG`, or one message per line, detected frame by frame),
//! parsed into log records.
//!
//! Frames from every socket are parsed where they arrive and coalesced by one task into batches
//! of `batch_size` records or `flush_ms` of age before they go to the intake. Syslog has no
//! acknowledgement, so delivery is best-effort: UDP datagrams that arrive while the gateway is
//! overloaded are dropped by the kernel, while a TCP sender is slowed down by flow control (the
//! receiver stops reading until the intake takes the batch). Records buffered in memory are
//! flushed on shutdown, but lost on a crash.
//!
//! Each message becomes one record:
//!
//! | record field | from |
//! |---|---|
//! | `timestamp` | the message's timestamp (RFC 3164: the gateway's local time zone; a year-less date takes the current year, December in January the previous), 0 when absent |
//! | `severity_number`, `severity_text` | the PRI's severity, mapped by [`otel_severity`] |
//! | `body` | the message text (MSG) |
//! | attribute `syslog.facility` | facility name: `kern`, `user`, … `local7` |
//! | attributes `syslog.hostname`, `syslog.appname`, `syslog.procid`, `syslog.msgid` | the header fields present |
//! | attribute `syslog.sd.<SD-ID>.<PARAM-NAME>` | each structured-data parameter (RFC 5424) |
//! | attributes `network.peer.address`, `network.peer.port` | the sender |
//!
//! A frame that is not syslog (no PRI and no recognisable header) is kept as a record with the
//! raw text as body and the attribute `sluice.parse_error`, and counted as malformed. A bare
//! `<PRI>text` frame, which several libraries send (Python's `SysLogHandler`), is syslog with
//! only a severity and facility. A TCP frame longer than `max_frame_bytes` or a bad octet count
//! closes that connection (the frames before it are kept); an oversized UDP datagram is dropped.
//! Both are counted as malformed and logged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Datelike;
use serde::Deserialize;
use syslog_loose::{SyslogFacility, SyslogSeverity, Variant};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::framing::{Drain, submit_until_taken};
use super::{ReceiverContext, ReceiverStats};
use crate::model::{AttributeValue, Batch, LogBatch, Resource};

/// Attribute set on a record whose frame is not a syslog message; its value says why.
pub const PARSE_ERROR_ATTRIBUTE: &str = "sluice.parse_error";

/// `type = "syslog"` receiver settings. At least one of `udp` and `tcp` is required.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogReceiverConfig {
    /// UDP listen address, e.g. `127.0.0.1:5514`: one message per datagram.
    #[serde(default)]
    pub udp: Option<SocketAddr>,
    /// TCP listen address, e.g. `127.0.0.1:5514`: octet-counted (RFC 6587) or newline-framed
    /// messages, told apart frame by frame.
    #[serde(default)]
    pub tcp: Option<SocketAddr>,
    /// Longest message accepted, in bytes. A longer TCP frame closes its connection; a longer
    /// datagram is dropped. Default 65536.
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: usize,
    /// Records per batch handed to the intake. Default 1024.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// A batch that is not full goes to the intake this many milliseconds after its first
    /// record arrived. Default 100.
    #[serde(default = "default_flush_ms")]
    pub flush_ms: u64,
}

fn default_max_frame_bytes() -> usize {
    64 * 1024
}

fn default_batch_size() -> usize {
    1024
}

fn default_flush_ms() -> u64 {
    100
}

impl SyslogReceiverConfig {
    /// Checks what serde cannot.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        if self.udp.is_none() && self.tcp.is_none() {
            problems.push(format!(
                "{at}: set `udp` or `tcp` (or both) to the address to listen on"
            ));
        }
        if self.max_frame_bytes < 64 {
            problems.push(format!(
                "{at}.max_frame_bytes: {} is too small (at least 64)",
                self.max_frame_bytes
            ));
        }
        if self.batch_size == 0 {
            problems.push(format!("{at}.batch_size: must be at least 1"));
        }
    }
}

/// Maps a syslog severity to an OpenTelemetry severity number. Every syslog level keeps a
/// distinct number and the order is preserved:
///
/// | syslog | code | OpenTelemetry |
/// |---|---|---|
/// | emerg | 0 | FATAL4 (24) |
/// | alert | 1 | FATAL2 (22) |
/// | crit | 2 | FATAL (21) |
/// | err | 3 | ERROR (17) |
/// | warning | 4 | WARN (13) |
/// | notice | 5 | INFO2 (10) |
/// | info | 6 | INFO (9) |
/// | debug | 7 | DEBUG (5) |
///
/// The severity text is the syslog keyword (`emerg` … `debug`).
pub fn otel_severity(severity: SyslogSeverity) -> u8 {
    match severity {
        SyslogSeverity::SEV_EMERG => 24,
        SyslogSeverity::SEV_ALERT => 22,
        SyslogSeverity::SEV_CRIT => 21,
        SyslogSeverity::SEV_ERR => 17,
        SyslogSeverity::SEV_WARNING => 13,
        SyslogSeverity::SEV_NOTICE => 10,
        SyslogSeverity::SEV_INFO => 9,
        SyslogSeverity::SEV_DEBUG => 5,
    }
}

/// Binds the sockets (an error here means nothing started) and spawns the UDP reader, the TCP
/// acceptor and the batching task.
pub async fn start(
    config: &SyslogReceiverConfig,
    context: ReceiverContext,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut problems = Vec::new();
    config.check(&format!("receivers.{}", context.name), &mut problems);
    if !problems.is_empty() {
        anyhow::bail!(problems.join("; "));
    }
    let udp = match config.udp {
        Some(address) => Some(UdpSocket::bind(address).await.map_err(|error| {
            anyhow::anyhow!(
                "receiver `{}`: cannot listen on UDP {address}: {error}",
                context.name
            )
        })?),
        None => None,
    };
    let tcp = match config.tcp {
        Some(address) => Some(TcpListener::bind(address).await.map_err(|error| {
            anyhow::anyhow!(
                "receiver `{}`: cannot listen on TCP {address}: {error}",
                context.name
            )
        })?),
        None => None,
    };

    // Parsed chunks from every socket go to one batching task; the bound pushes back on the
    // readers when the intake is slow.
    let (chunks, chunks_in) = mpsc::channel::<LogBatch>(64);
    let settings = Arc::new(Settings {
        max_frame_bytes: config.max_frame_bytes,
        resource: Arc::new(Resource::default()),
    });
    let mut tasks = vec![tokio::spawn(coalesce(
        chunks_in,
        context.clone(),
        config.batch_size.max(1),
        Duration::from_millis(config.flush_ms.max(1)),
    ))];
    if let Some(socket) = udp {
        tasks.push(tokio::spawn(read_datagrams(
            socket,
            settings.clone(),
            chunks.clone(),
            context.clone(),
        )));
    }
    if let Some(listener) = tcp {
        tasks.push(tokio::spawn(accept_connections(
            listener, settings, chunks, context,
        )));
    }
    Ok(tasks)
}

/// What every reader task needs.
struct Settings {
    max_frame_bytes: usize,
    resource: Arc<Resource>,
}

/// Gathers parsed chunks into batches and submits them; ends (after a last flush) when every
/// reader has ended.
async fn coalesce(
    mut chunks: mpsc::Receiver<LogBatch>,
    context: ReceiverContext,
    batch_size: usize,
    flush_after: Duration,
) {
    let mut pending = LogBatch::new();
    let mut due: Option<tokio::time::Instant> = None;
    loop {
        let next = match due {
            Some(deadline) => tokio::select! {
                chunk = chunks.recv() => chunk.map(Some),
                () = tokio::time::sleep_until(deadline) => Some(None),
            },
            None => chunks.recv().await.map(Some),
        };
        match next {
            // Every reader is gone.
            None => break,
            Some(Some(chunk)) => {
                if pending.is_empty() {
                    pending = chunk;
                    due = Some(tokio::time::Instant::now() + flush_after);
                } else {
                    pending.extend_from(&chunk);
                }
                if pending.len() >= batch_size {
                    flush(&context, &mut pending).await;
                    due = None;
                }
            }
            // The oldest record has waited long enough.
            Some(None) => {
                flush(&context, &mut pending).await;
                due = None;
            }
        }
    }
    flush(&context, &mut pending).await;
}

async fn flush(context: &ReceiverContext, pending: &mut LogBatch) {
    if pending.is_empty() {
        return;
    }
    let batch = std::mem::replace(pending, LogBatch::new());
    if let Err(lost) = submit_until_taken(context, Batch::Logs(batch)).await {
        tracing::error!(
            receiver = %context.name,
            records = lost,
            "syslog records lost: the intake is shutting down"
        );
    }
}

/// Reads datagrams, one message each, until shutdown.
async fn read_datagrams(
    socket: UdpSocket,
    settings: Arc<Settings>,
    chunks: mpsc::Sender<LogBatch>,
    context: ReceiverContext,
) {
    // Datagrams wait in the socket buffer while a chunk is sent on: gather up to this many
    // per chunk so that a burst costs few channel sends.
    const DATAGRAMS_PER_CHUNK: usize = 256;
    // One byte more than allowed, to tell an oversized datagram from one exactly at the limit.
    let mut buffer = vec![0u8; settings.max_frame_bytes.min(65_535) + 1];
    let mut drain: Option<Drain> = None;
    loop {
        let received = match drain {
            // Shutting down: take the datagrams already sent, until the senders go quiet.
            Some(drain) => match drain.read(socket.recv_from(&mut buffer)).await {
                Some(received) => received,
                None => break,
            },
            None => tokio::select! {
                () = context.shutdown.cancelled() => {
                    drain = Some(Drain::start());
                    continue;
                }
                received = socket.recv_from(&mut buffer) => received,
            },
        };
        let mut chunk = LogBatch::new();
        let observed = now_nanos();
        let mut next = received;
        let mut count = 0;
        loop {
            match next {
                Ok((length, peer)) => {
                    ReceiverStats::add(&context.stats.requests, 1);
                    if length > settings.max_frame_bytes {
                        ReceiverStats::add(&context.stats.records_malformed, 1);
                        tracing::warn!(
                            receiver = %context.name,
                            %peer,
                            max_frame_bytes = settings.max_frame_bytes,
                            "syslog datagram longer than max_frame_bytes dropped"
                        );
                    } else {
                        let peer = Peer::new(peer);
                        push_message(
                            &mut chunk,
                            &buffer[..length],
                            &peer,
                            observed,
                            &settings.resource,
                            &context.stats,
                        );
                    }
                }
                Err(error) => {
                    tracing::warn!(receiver = %context.name, %error, "syslog UDP receive failed");
                }
            }
            count += 1;
            if count >= DATAGRAMS_PER_CHUNK {
                break;
            }
            next = match socket.try_recv_from(&mut buffer) {
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                other => other,
            };
        }
        if !chunk.is_empty() && chunks.send(chunk).await.is_err() {
            break;
        }
    }
}

/// Accepts TCP connections until shutdown; each is served by its own task.
async fn accept_connections(
    listener: TcpListener,
    settings: Arc<Settings>,
    chunks: mpsc::Sender<LogBatch>,
    context: ReceiverContext,
) {
    loop {
        let accepted = tokio::select! {
            () = context.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(serve_connection(
                    stream,
                    peer,
                    settings.clone(),
                    chunks.clone(),
                    context.clone(),
                ));
            }
            Err(error) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(receiver = %context.name, %error, "syslog TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads frames from one connection until it closes, fails or the gateway shuts down.
async fn serve_connection(
    mut stream: TcpStream,
    peer_address: SocketAddr,
    settings: Arc<Settings>,
    chunks: mpsc::Sender<LogBatch>,
    context: ReceiverContext,
) {
    let peer = Peer::new(peer_address);
    let max = settings.max_frame_bytes;
    let mut buffer: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut drain: Option<Drain> = None;
    loop {
        if buffer.capacity() - buffer.len() < 4096 {
            buffer.reserve(64 * 1024);
        }
        let read = match drain {
            // Shutting down: read what the client sent before, until it goes quiet.
            Some(drain) => match drain.read(stream.read_buf(&mut buffer)).await {
                Some(read) => read,
                None => Ok(0),
            },
            None => tokio::select! {
                () = context.shutdown.cancelled() => {
                    drain = Some(Drain::start());
                    continue;
                }
                read = stream.read_buf(&mut buffer) => read,
            },
        };
        let at_end = match read {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => {
                tracing::warn!(receiver = %context.name, peer = %peer_address, %error, "syslog TCP read failed");
                true
            }
        };
        let observed = now_nanos();
        let mut chunk = LogBatch::new();
        let mut start = 0;
        let mut close_because: Option<String> = None;
        loop {
            match next_frame(&buffer[start..], max) {
                FrameParse::Frame { frame, consumed } => {
                    if !frame.is_empty() {
                        ReceiverStats::add(&context.stats.requests, 1);
                        push_message(
                            &mut chunk,
                            frame,
                            &peer,
                            observed,
                            &settings.resource,
                            &context.stats,
                        );
                    }
                    start += consumed;
                }
                FrameParse::Incomplete => break,
                FrameParse::TooLong(length) => {
                    close_because = Some(format!(
                        "a frame of {length} bytes or more is longer than max_frame_bytes ({max})"
                    ));
                    break;
                }
                FrameParse::BadOctetCount(why) => {
                    close_because = Some(why);
                    break;
                }
            }
        }
        buffer.drain(..start);
        if at_end && close_because.is_none() && !buffer.is_empty() {
            // The last frame, ended by the connection rather than a newline.
            if octet_count_prefix(&buffer).is_some() {
                close_because = Some(format!(
                    "the connection ended {} bytes into an octet-counted frame",
                    buffer.len()
                ));
            } else {
                ReceiverStats::add(&context.stats.requests, 1);
                push_message(
                    &mut chunk,
                    &buffer,
                    &peer,
                    observed,
                    &settings.resource,
                    &context.stats,
                );
            }
        }
        if let Some(reason) = &close_because {
            ReceiverStats::add(&context.stats.records_malformed, 1);
            tracing::warn!(
                receiver = %context.name,
                peer = %peer_address,
                "closing syslog connection: {reason}; the frames before it were kept"
            );
        }
        if !chunk.is_empty() && chunks.send(chunk).await.is_err() {
            break;
        }
        if at_end || close_because.is_some() {
            break;
        }
    }
}

/// What [`next_frame`] found at the start of the buffered bytes.
#[derive(Debug, PartialEq, Eq)]
enum FrameParse<'a> {
    /// A whole frame (without its length prefix or newline) and the bytes it took.
    Frame { frame: &'a [u8], consumed: usize },
    /// More bytes are needed.
    Incomplete,
    /// The frame is longer than allowed (at least this many bytes).
    TooLong(usize),
    /// An octet count that cannot be right.
    BadOctetCount(String),
}

/// Most digits an octet count may have (more would not fit any frame we accept).
const MAX_OCTET_COUNT_DIGITS: usize = 10;

/// The octet count and its prefix length when `data` starts with `DIGITS SP`.
fn octet_count_prefix(data: &[u8]) -> Option<(&[u8], usize)> {
    let digits = data.iter().take_while(|byte| byte.is_ascii_digit()).count();
    if digits == 0 || digits > MAX_OCTET_COUNT_DIGITS || data.get(digits) != Some(&b' ') {
        return None;
    }
    Some((&data[..digits], digits + 1))
}

/// Finds the next frame: octet-counted (RFC 6587 3.4.1) when the data starts with digits and a
/// space, newline-terminated (3.4.2) otherwise. A frame that starts with a digit but whose
/// digits are not followed by a space is taken as newline-framed.
fn next_frame(data: &[u8], max_frame_bytes: usize) -> FrameParse<'_> {
    if data.is_empty() {
        return FrameParse::Incomplete;
    }
    if let Some((digits, prefix)) = octet_count_prefix(data) {
        if digits[0] == b'0' {
            return FrameParse::BadOctetCount(format!(
                "bad octet count `{}` (must start with a non-zero digit)",
                String::from_utf8_lossy(digits)
            ));
        }
        // At most ten digits, so this parses; a count over the limit is refused below.
        let count: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(usize::MAX);
        if count > max_frame_bytes {
            return FrameParse::TooLong(count);
        }
        return match data.get(prefix..prefix + count) {
            Some(frame) => FrameParse::Frame {
                frame,
                consumed: prefix + count,
            },
            None => FrameParse::Incomplete,
        };
    }
    // A lone run of digits may still become an octet count.
    let all_digits = data.len() <= MAX_OCTET_COUNT_DIGITS && data.iter().all(u8::is_ascii_digit);
    let searched = &data[..data.len().min(max_frame_bytes + 2)];
    match searched.iter().position(|&byte| byte == b'\n') {
        Some(newline) => {
            let frame = &data[..newline];
            let frame = frame.strip_suffix(b"\r").unwrap_or(frame);
            if frame.len() > max_frame_bytes {
                FrameParse::TooLong(frame.len())
            } else {
                FrameParse::Frame {
                    frame,
                    consumed: newline + 1,
                }
            }
        }
        None if !all_digits && data.len() > max_frame_bytes + 1 => FrameParse::TooLong(data.len()),
        None => FrameParse::Incomplete,
    }
}

/// The sender, as the attributes every one of its records carries.
struct Peer {
    address: String,
    port: i64,
}

impl Peer {
    fn new(address: SocketAddr) -> Peer {
        Peer {
            address: address.ip().to_string(),
            port: i64::from(address.port()),
        }
    }

    fn push_attributes(&self, batch: &mut LogBatch) {
        batch.push_attribute(
            "network.peer.address",
            AttributeValue::Str(self.address.clone()),
        );
        batch.push_attribute("network.peer.port", AttributeValue::Int(self.port));
    }
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// The year of an RFC 3164 date, which has none: this year, except that a December date seen in
/// January is from last year.
fn year_of(date: syslog_loose::IncompleteDate) -> i32 {
    let now = chrono::Local::now();
    let (month, ..) = date;
    if month == 12 && now.month() == 1 {
        now.year() - 1
    } else {
        now.year()
    }
}

/// Parses one frame and appends its record (a parse-error record when it is not syslog).
fn push_message(
    batch: &mut LogBatch,
    raw: &[u8],
    peer: &Peer,
    observed: i64,
    resource: &Arc<Resource>,
    stats: &ReceiverStats,
) {
    let decoded = String::from_utf8_lossy(raw);
    // Some senders end a message with NUL (Python's SysLogHandler) or a line break.
    let text = decoded.trim_end_matches(['\0', '\n', '\r']);
    if text.trim().is_empty() {
        return;
    }
    match syslog_loose::parse_message_with_year_exact(text, year_of, Variant::Either) {
        Ok(message) => push_parsed(batch, &message, peer, observed, resource),
        Err(_) => match bare_priority(text) {
            Some((facility, severity, body)) => {
                push_header(batch, None, Some(severity), body, observed, resource);
                if let Some(facility) = facility {
                    batch
                        .push_attribute("syslog.facility", AttributeValue::from(facility.as_str()));
                }
                peer.push_attributes(batch);
            }
            None => {
                ReceiverStats::add(&stats.records_malformed, 1);
                push_header(batch, None, None, text, observed, resource);
                batch.push_attribute(
                    PARSE_ERROR_ATTRIBUTE,
                    AttributeValue::from(
                        "not a syslog message: no <PRI> and no RFC 5424 or RFC 3164 header",
                    ),
                );
                peer.push_attributes(batch);
            }
        },
    }
}

/// `<PRI>text` with nothing else recognisable: a facility, a severity and a body.
fn bare_priority(text: &str) -> Option<(Option<SyslogFacility>, SyslogSeverity, &str)> {
    let rest = text.strip_prefix('<')?;
    let close = rest.find('>')?;
    let digits = &rest[..close];
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let priority: u8 = digits.parse().ok().filter(|&priority| priority <= 191)?;
    let (facility, severity) = syslog_loose::decompose_pri(priority);
    Some((facility, severity?, &rest[close + 1..]))
}

fn push_header(
    batch: &mut LogBatch,
    timestamp: Option<i64>,
    severity: Option<SyslogSeverity>,
    body: &str,
    observed: i64,
    resource: &Arc<Resource>,
) {
    let (number, text) = match severity {
        Some(severity) => (otel_severity(severity), severity.as_str()),
        None => (0, ""),
    };
    batch.push_fields(
        timestamp.unwrap_or(0),
        observed,
        number,
        text,
        body,
        &[0; 16],
        &[0; 8],
        resource,
    );
}

fn push_parsed(
    batch: &mut LogBatch,
    message: &syslog_loose::Message<&str>,
    peer: &Peer,
    observed: i64,
    resource: &Arc<Resource>,
) {
    let timestamp = message
        .timestamp
        .and_then(|time| time.timestamp_nanos_opt());
    // RFC 5424 allows a byte-order mark before a UTF-8 MSG.
    let body = message.msg.strip_prefix('\u{feff}').unwrap_or(message.msg);
    push_header(batch, timestamp, message.severity, body, observed, resource);
    if let Some(facility) = message.facility {
        batch.push_attribute("syslog.facility", AttributeValue::from(facility.as_str()));
    }
    if let Some(hostname) = message.hostname {
        batch.push_attribute("syslog.hostname", AttributeValue::from(hostname));
    }
    if let Some(appname) = message.appname {
        batch.push_attribute("syslog.appname", AttributeValue::from(appname));
    }
    if let Some(procid) = &message.procid {
        batch.push_attribute("syslog.procid", AttributeValue::Str(procid.to_string()));
    }
    if let Some(msgid) = message.msgid {
        batch.push_attribute("syslog.msgid", AttributeValue::from(msgid));
    }
    for element in &message.structured_data {
        for (name, value) in element.params() {
            batch.push_attribute(
                &format!("syslog.sd.{}.{}", element.id, name),
                AttributeValue::Str(value),
            );
        }
    }
    peer.push_attributes(batch);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> crate::model::LogRecord {
        let mut batch = LogBatch::new();
        let stats = ReceiverStats::default();
        let peer = Peer::new("192.0.2.1:514".parse().unwrap());
        push_message(
            &mut batch,
            text.as_bytes(),
            &peer,
            1,
            &Arc::new(Resource::default()),
            &stats,
        );
        assert_eq!(batch.len(), 1, "one record from {text:?}");
        batch.record(0)
    }

    fn attribute<'r>(record: &'r crate::model::LogRecord, key: &str) -> Option<&'r str> {
        record
            .attributes
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, value)| value.as_str())
    }

    #[test]
    fn parses_rfc5424_with_structured_data() {
        let record = parse(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 \
             [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] An application event",
        );
        assert_eq!(record.timestamp, 1_065_910_455_003_000_000);
        assert_eq!(record.severity_number, 10);
        assert_eq!(record.severity_text, "notice");
        assert_eq!(record.body, "An application event");
        assert_eq!(attribute(&record, "syslog.facility"), Some("local4"));
        assert_eq!(
            attribute(&record, "syslog.hostname"),
            Some("mymachine.example.com")
        );
        assert_eq!(attribute(&record, "syslog.appname"), Some("evntslog"));
        assert_eq!(attribute(&record, "syslog.procid"), Some("1234"));
        assert_eq!(attribute(&record, "syslog.msgid"), Some("ID47"));
        assert_eq!(
            attribute(&record, "syslog.sd.exampleSDID@32473.eventSource"),
            Some("Application")
        );
        assert_eq!(
            attribute(&record, "network.peer.address"),
            Some("192.0.2.1")
        );
        assert_eq!(attribute(&record, PARSE_ERROR_ATTRIBUTE), None);
    }

    #[test]
    fn parses_rfc3164() {
        let record = parse("<34>Oct 11 22:14:15 mymachine su[42]: 'su root' failed");
        assert_eq!(record.severity_number, 21);
        assert_eq!(record.severity_text, "crit");
        assert_eq!(record.body, "'su root' failed");
        assert_eq!(attribute(&record, "syslog.facility"), Some("auth"));
        assert_eq!(attribute(&record, "syslog.hostname"), Some("mymachine"));
        assert_eq!(attribute(&record, "syslog.appname"), Some("su"));
        assert_eq!(attribute(&record, "syslog.procid"), Some("42"));
        assert_ne!(record.timestamp, 0);
    }

    #[test]
    fn a_bare_priority_is_syslog_and_plain_text_is_a_parse_error() {
        let record = parse("<11>hello from python\0");
        assert_eq!(record.severity_text, "err");
        assert_eq!(record.body, "hello from python");
        assert_eq!(attribute(&record, "syslog.facility"), Some("user"));

        let record = parse("this is not syslog at all");
        assert_eq!(record.body, "this is not syslog at all");
        assert_eq!(record.severity_number, 0);
        assert!(attribute(&record, PARSE_ERROR_ATTRIBUTE).is_some());
    }

    #[test]
    fn every_severity_maps_to_a_distinct_increasing_number() {
        let numbers: Vec<u8> = (0..8)
            .map(|code| otel_severity(syslog_loose::decompose_pri(code).1.unwrap()))
            .collect();
        assert_eq!(numbers, [24, 22, 21, 17, 13, 10, 9, 5]);
    }

    #[test]
    fn frames_octet_counted_and_newline_framed() {
        assert_eq!(
            next_frame(b"5 hello3 abc", 100),
            FrameParse::Frame {
                frame: b"hello",
                consumed: 7
            }
        );
        assert_eq!(next_frame(b"5 hel", 100), FrameParse::Incomplete);
        assert_eq!(next_frame(b"12", 100), FrameParse::Incomplete);
        assert_eq!(
            next_frame(b"<13>hi\r\nrest", 100),
            FrameParse::Frame {
                frame: b"<13>hi",
                consumed: 8
            }
        );
        assert_eq!(
            next_frame(b"2024-01-01 no pri\n", 100),
            FrameParse::Frame {
                frame: b"2024-01-01 no pri",
                consumed: 18
            }
        );
        assert_eq!(next_frame(b"101 x", 100), FrameParse::TooLong(101));
        assert!(matches!(
            next_frame(b"0 x", 100),
            FrameParse::BadOctetCount(_)
        ));
        assert_eq!(next_frame(&[b'a'; 102], 100), FrameParse::TooLong(102));
        assert_eq!(next_frame(&[b'a'; 101], 100), FrameParse::Incomplete);
    }
}
