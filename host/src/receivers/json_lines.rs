//! JSON lines receiver: one JSON value per line, over TCP or HTTP `POST`. Each line is checked to
//! be valid JSON (without building it) and handed on as raw text in a [`LineBatch`]; a
//! pipeline's parser plugin (`json-parser`) turns the lines into records.
//!
//! HTTP (`POST /` or `POST /v1/jsonl`; `Content-Type` `application/x-ndjson`,
//! `application/jsonl`, `application/json` or `text/plain`, or none; optionally
//! `Content-Encoding: gzip`): a request is one batch, taken or refused whole. The answer is
//! `200 {"accepted": N, "rejected": []}` when every line was valid JSON, and
//! `400 {"accepted": N, "rejected": [{"line": 3, "error": "..."}], "message": "..."}` when some
//! were not: the valid lines *were* accepted and must not be sent again; only the listed lines
//! (1-based) were refused. `413` for a body over `max_request_bytes` (compressed or not), `415`
//! for another content type or encoding, `503` with `Retry-After` when the gateway cannot take
//! the batch now (nothing was accepted: retry the whole request). Blank lines are skipped.
//! Delivery is at-least-once for a client that retries on 503.
//!
//! TCP: newline-delimited, batched per connection (`batch_size` lines or `flush_ms` of age).
//! There is no reply channel: invalid and oversized lines are counted as malformed and logged,
//! their neighbours kept. When the intake is overloaded the connection is not read until it
//! takes the batch, so flow control slows the sender. Best-effort: lines buffered in memory are
//! flushed on shutdown but lost on a crash.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::framing::{Drain, LineEvent, LineSplitter, PendingLines, submit_until_taken};
use super::http_body::status_of;
use super::http_body::{BodyError, read_bounded};
use super::{ReceiverContext, ReceiverStats};
use crate::model::{Batch, LineBatch, Resource, StringColumn};

/// `type = "json_lines"` receiver settings. At least one of `tcp` and `http` is required.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonLinesReceiverConfig {
    /// TCP listen address, e.g. `127.0.0.1:5170`: newline-delimited JSON.
    #[serde(default)]
    pub tcp: Option<SocketAddr>,
    /// HTTP listen address, e.g. `127.0.0.1:8088`: `POST /` or `POST /v1/jsonl`.
    #[serde(default)]
    pub http: Option<SocketAddr>,
    /// Longest line accepted, in bytes; a longer one is refused (its neighbours are kept).
    /// Default 1048576 (1 MiB).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Largest HTTP request body, in bytes, both as sent and after gzip decoding; a larger one
    /// is answered 413. Default 8388608 (8 MiB).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// TCP: lines per batch handed to the intake. Default 1024. (An HTTP request is one batch.)
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// TCP: a batch that is not full goes to the intake this many milliseconds after its first
    /// line arrived. Default 100.
    #[serde(default = "default_flush_ms")]
    pub flush_ms: u64,
}

fn default_max_line_bytes() -> usize {
    1024 * 1024
}

fn default_max_request_bytes() -> usize {
    8 * 1024 * 1024
}

fn default_batch_size() -> usize {
    1024
}

fn default_flush_ms() -> u64 {
    100
}

impl JsonLinesReceiverConfig {
    /// Checks what serde cannot.
    pub fn check(&self, at: &str, problems: &mut Vec<String>) {
        if self.tcp.is_none() && self.http.is_none() {
            problems.push(format!(
                "{at}: set `tcp` or `http` (or both) to the address to listen on"
            ));
        }
        if self.max_line_bytes == 0 {
            problems.push(format!("{at}.max_line_bytes: must be at least 1"));
        }
        if self.max_request_bytes == 0 {
            problems.push(format!("{at}.max_request_bytes: must be at least 1"));
        }
        if self.batch_size == 0 {
            problems.push(format!("{at}.batch_size: must be at least 1"));
        }
    }
}

/// Binds the listeners (an error here means nothing started) and spawns the TCP acceptor and
/// the HTTP server.
pub async fn start(
    config: &JsonLinesReceiverConfig,
    context: ReceiverContext,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut problems = Vec::new();
    config.check(&format!("receivers.{}", context.name), &mut problems);
    if !problems.is_empty() {
        anyhow::bail!(problems.join("; "));
    }
    let bind = |address: SocketAddr, what: &'static str| {
        let name = context.name.clone();
        async move {
            TcpListener::bind(address).await.map_err(|error| {
                anyhow::anyhow!("receiver `{name}`: cannot listen on {what} {address}: {error}")
            })
        }
    };
    let tcp = match config.tcp {
        Some(address) => Some(bind(address, "TCP").await?),
        None => None,
    };
    let http = match config.http {
        Some(address) => Some(bind(address, "HTTP").await?),
        None => None,
    };
    let settings = Arc::new(Settings {
        max_line_bytes: config.max_line_bytes,
        max_request_bytes: config.max_request_bytes,
        batch_size: config.batch_size,
        flush_after: Duration::from_millis(config.flush_ms.max(1)),
        resource: Arc::new(Resource::default()),
        context,
    });
    let mut tasks = Vec::new();
    if let Some(listener) = tcp {
        tasks.push(tokio::spawn(accept_connections(listener, settings.clone())));
    }
    if let Some(listener) = http {
        tasks.push(tokio::spawn(serve_http(listener, settings)));
    }
    Ok(tasks)
}

/// What the listeners share.
struct Settings {
    max_line_bytes: usize,
    max_request_bytes: usize,
    batch_size: usize,
    flush_after: Duration,
    resource: Arc<Resource>,
    context: ReceiverContext,
}

/// Why a line was refused.
fn check_line(line: &[u8], max_line_bytes: usize) -> Result<&str, String> {
    if line.len() > max_line_bytes {
        return Err(format!(
            "line of {} bytes is longer than max_line_bytes ({max_line_bytes})",
            line.len()
        ));
    }
    let text = std::str::from_utf8(line).map_err(|error| format!("not UTF-8: {error}"))?;
    serde_json::from_str::<IgnoredAny>(text).map_err(|error| format!("invalid JSON: {error}"))?;
    Ok(text)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

// ---------------------------------------------------------------------------------------------
// TCP

/// Accepts connections until shutdown, then waits for each connection to hand on the lines it
/// holds, so that the receiver's task ends only when nothing is left in memory.
async fn accept_connections(listener: TcpListener, settings: Arc<Settings>) {
    let context = &settings.context;
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = context.shutdown.cancelled() => break,
            // Reap finished connections as they end.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                connections.spawn(serve_connection(stream, peer, settings.clone()));
            }
            Err(error) => {
                tracing::warn!(receiver = %context.name, %error, "JSON lines TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Counts of a connection's refused lines, logged in full for the first and summed at the end.
#[derive(Default)]
struct Refusals {
    count: u64,
}

impl Refusals {
    fn refuse(&mut self, settings: &Settings, peer: SocketAddr, line: u64, why: &str) {
        ReceiverStats::add(&settings.context.stats.records_malformed, 1);
        self.count += 1;
        if self.count == 1 {
            tracing::warn!(
                receiver = %settings.context.name,
                %peer,
                line,
                "JSON line refused: {why} (further refusals on this connection are summed up when it ends)"
            );
        }
    }
}

async fn serve_connection(mut stream: TcpStream, peer: SocketAddr, settings: Arc<Settings>) {
    let context = &settings.context;
    let source = peer.to_string();
    let mut splitter = LineSplitter::new(settings.max_line_bytes);
    let mut pending = PendingLines::new(settings.batch_size, settings.flush_after);
    let mut ready: Vec<Batch> = Vec::new();
    let mut refusals = Refusals::default();
    let mut line_number: u64 = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut open = true;
    let mut drain: Option<Drain> = None;
    while open {
        let due = pending.deadline().map(tokio::time::Instant::from_std);
        let read = match drain {
            // Shutting down: read what the client sent before, until it goes quiet; a last
            // line without its newline then counts as complete, as at end of stream.
            Some(drain) => Some(drain.read(stream.read(&mut buffer)).await.unwrap_or(Ok(0))),
            None => tokio::select! {
                () = context.shutdown.cancelled() => {
                    drain = Some(Drain::start());
                    continue;
                }
                () = sleep_until_due(due) => None,
                read = stream.read(&mut buffer) => Some(read),
            },
        };
        let mut take_line = |event: LineEvent<'_>| {
            line_number += 1;
            match event {
                LineEvent::Line(line) if is_blank(line) => {}
                LineEvent::Line(line) => match check_line(line, settings.max_line_bytes) {
                    Ok(text) => {
                        pending.push(text);
                        if pending.is_full() {
                            ready.push(pending.take(&source, &settings.resource));
                        }
                    }
                    Err(why) => refusals.refuse(&settings, peer, line_number, &why),
                },
                LineEvent::TooLong(length) => refusals.refuse(
                    &settings,
                    peer,
                    line_number,
                    &format!(
                        "line of {length} bytes is longer than max_line_bytes ({})",
                        settings.max_line_bytes
                    ),
                ),
            }
        };
        match read {
            // Due: the pending lines go now.
            None => {}
            Some(Ok(0)) => {
                splitter.finish(&mut take_line);
                open = false;
            }
            Some(Ok(length)) => {
                ReceiverStats::add(&context.stats.requests, 1);
                splitter.push(&buffer[..length], |event, _| take_line(event));
            }
            Some(Err(error)) => {
                tracing::warn!(receiver = %context.name, %peer, %error, "JSON lines TCP read failed");
                open = false;
            }
        }
        let due_now = pending
            .deadline()
            .is_some_and(|deadline| deadline <= std::time::Instant::now());
        if (due_now || !open) && !pending.is_empty() {
            ready.push(pending.take(&source, &settings.resource));
        }
        for batch in ready.drain(..) {
            if let Err(lost) = submit_until_taken(context, batch).await {
                tracing::error!(
                    receiver = %context.name,
                    %peer,
                    lines = lost,
                    "JSON lines lost: the intake is shutting down"
                );
                open = false;
            }
        }
    }
    if !pending.is_empty() {
        let batch = pending.take(&source, &settings.resource);
        if let Err(lost) = submit_until_taken(context, batch).await {
            tracing::error!(receiver = %context.name, %peer, lines = lost, "JSON lines lost: the intake is shutting down");
        }
    }
    if refusals.count > 1 {
        tracing::warn!(
            receiver = %context.name,
            %peer,
            refused = refusals.count,
            "JSON lines refused on this connection"
        );
    }
}

async fn sleep_until_due(due: Option<tokio::time::Instant>) {
    match due {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

async fn serve_http(listener: TcpListener, settings: Arc<Settings>) {
    let shutdown = settings.context.shutdown.clone();
    let name = settings.context.name.clone();
    let app = Router::new()
        .route("/", post(receive_request))
        .route("/v1/jsonl", post(receive_request))
        .layer(DefaultBodyLimit::disable())
        .with_state(settings);
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await;
    if let Err(error) = served {
        tracing::error!(receiver = %name, %error, "JSON lines HTTP server failed");
    }
}

/// Content types a JSON lines body may be declared as.
const ACCEPTED_CONTENT_TYPES: [&str; 5] = [
    "application/x-ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/json",
    "text/plain",
];

/// Most refused lines listed one by one in an answer (all are counted).
const MAX_LISTED_REFUSALS: usize = 100;

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    json_response(status, json!({ "error": message.into() }))
}

async fn receive_request(
    State(settings): State<Arc<Settings>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let context = &settings.context;
    ReceiverStats::add(&context.stats.requests, 1);
    let body = match read_bounded(&headers, body, settings.max_request_bytes).await {
        Ok(body) => body,
        Err(error) => {
            ReceiverStats::add(&context.stats.records_malformed, 1);
            return match error {
                BodyError::TooLarge => error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the body is larger than max_request_bytes ({})",
                        settings.max_request_bytes
                    ),
                ),
                BodyError::Read(error) => error_response(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {error}"),
                ),
            };
        }
    };
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !ACCEPTED_CONTENT_TYPES.contains(&essence.as_str()) {
            ReceiverStats::add(&context.stats.records_malformed, 1);
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type `{essence}` is not JSON lines; send one of {}",
                    ACCEPTED_CONTENT_TYPES.join(", ")
                ),
            );
        }
    }
    let decoded = match decode_body(&headers, body, settings.max_request_bytes) {
        Ok(decoded) => decoded,
        Err((status, message)) => {
            ReceiverStats::add(&context.stats.records_malformed, 1);
            return error_response(status, message);
        }
    };

    let mut lines = StringColumn::default();
    let mut refused = Vec::new();
    let mut refused_count = 0usize;
    for (index, line) in decoded.split(|&byte| byte == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if is_blank(line) {
            continue;
        }
        match check_line(line, settings.max_line_bytes) {
            Ok(text) => lines.push(text),
            Err(error) => {
                refused_count += 1;
                if refused.len() < MAX_LISTED_REFUSALS {
                    refused.push(json!({ "line": index + 1, "error": error }));
                }
            }
        }
    }
    ReceiverStats::add(&context.stats.records_malformed, refused_count);
    let accepted = lines.len();
    if accepted > 0 {
        let batch = Batch::Lines(LineBatch {
            lines,
            source: peer.to_string(),
            resource: settings.resource.clone(),
        });
        if let Err(error) = context.submit(batch).await {
            let retry_after = error.retry_after_seconds();
            let mut response = error_response(
                status_of(&error),
                format!("{error}; nothing of this request was accepted, send it again"),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return response;
        }
    }
    if refused_count == 0 {
        return json_response(
            StatusCode::OK,
            json!({ "accepted": accepted, "rejected": [] }),
        );
    }
    tracing::debug!(receiver = %context.name, %peer, accepted, refused = refused_count, "JSON lines refused");
    let listed = if refused_count > refused.len() {
        format!(" (the first {} are listed)", refused.len())
    } else {
        String::new()
    };
    json_response(
        StatusCode::BAD_REQUEST,
        json!({
            "accepted": accepted,
            "rejected": refused,
            "rejected_count": refused_count,
            "message": format!(
                "{refused_count} line(s) were not valid JSON and were rejected{listed}; \
                 the other {accepted} line(s) were accepted: do not send them again"
            ),
        }),
    )
}

/// The body as sent or gunzipped, bounded by `limit`; the error answer's status and message
/// otherwise.
fn decode_body(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, (StatusCode, String)> {
    let encoding = headers.get(header::CONTENT_ENCODING).map(|value| {
        value
            .to_str()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(body),
        Some("gzip") | Some("x-gzip") => {
            let mut decoded = Vec::new();
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut decoded)
                .map_err(|error| {
                    (
                        StatusCode::BAD_REQUEST,
                        format!("the gzip body cannot be decoded: {error}"),
                    )
                })?;
            if decoded.len() > limit {
                return Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the decoded body is larger than max_request_bytes ({limit})"),
                ));
            }
            Ok(Bytes::from(decoded))
        }
        Some(other) => Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding `{other}` is not supported; send gzip or no encoding"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_checked_without_building_them() {
        assert_eq!(check_line(br#"{"a": [1, 2]}"#, 100), Ok(r#"{"a": [1, 2]}"#));
        assert!(check_line(b"\"text\"", 100).is_ok());
        assert!(
            check_line(br#"{"a": 1"#, 100)
                .unwrap_err()
                .starts_with("invalid JSON")
        );
        assert!(check_line(br#"{"a": 1} x"#, 100).is_err());
        assert!(
            check_line(b"\"\xff\"", 100)
                .unwrap_err()
                .starts_with("not UTF-8")
        );
        assert!(
            check_line(br#"{"a": 1}"#, 4)
                .unwrap_err()
                .contains("max_line_bytes")
        );
    }
}
