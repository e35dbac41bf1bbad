//! What the plain-input receivers (syslog, JSON lines, file tail) share: splitting a byte stream
//! into lines with a length bound, coalescing lines into a [`LineBatch`] up to a size or an age,
//! and handing a batch to the intake when there is no client to answer (TCP streams, files),
//! where overload is met by waiting rather than by an error reply.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::intake::IntakeError;
use crate::model::{Batch, LineBatch, Resource, StringColumn};

use super::ReceiverContext;

/// One event of a [`LineSplitter`].
#[derive(Debug, PartialEq, Eq)]
pub enum LineEvent<'a> {
    /// A complete line, without its `\n` (nor a `\r` before it).
    Line(&'a [u8]),
    /// A line longer than the bound was skipped; its length in bytes (without the `\n`).
    TooLong(usize),
}

/// Splits a byte stream at `\n` into lines of at most `max_line_bytes` bytes. A longer line is
/// skipped up to its newline (reported once, as [`LineEvent::TooLong`]) so that its neighbours
/// survive, and memory stays bounded by the limit whatever the input.
#[derive(Debug)]
pub struct LineSplitter {
    max_line_bytes: usize,
    partial: Vec<u8>,
    /// Bytes of the oversized line being skipped, when one is.
    skipping: Option<usize>,
}

impl LineSplitter {
    /// A splitter accepting lines of up to `max_line_bytes` bytes.
    pub fn new(max_line_bytes: usize) -> LineSplitter {
        LineSplitter {
            max_line_bytes: max_line_bytes.max(1),
            partial: Vec::new(),
            skipping: None,
        }
    }

    /// Feeds `data`; `emit` gets each line completed by it, with the number of bytes of `data`
    /// consumed up to and including that line's `\n` (so a caller knows the stream offset just
    /// after the line).
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(LineEvent<'_>, usize)) {
        let mut rest = data;
        while let Some(newline) = rest.iter().position(|&byte| byte == b'\n') {
            let piece = &rest[..newline];
            rest = &rest[newline + 1..];
            let consumed = data.len() - rest.len();
            if let Some(skipped) = self.skipping.take() {
                emit(LineEvent::TooLong(skipped + piece.len()), consumed);
            } else if self.partial.is_empty() {
                let line = strip_carriage_return(piece);
                if line.len() > self.max_line_bytes {
                    emit(LineEvent::TooLong(piece.len()), consumed);
                } else {
                    emit(LineEvent::Line(line), consumed);
                }
            } else {
                let total = self.partial.len() + piece.len();
                if strip_carriage_return_len(&self.partial, piece) > self.max_line_bytes {
                    emit(LineEvent::TooLong(total), consumed);
                } else {
                    self.partial.extend_from_slice(piece);
                    emit(
                        LineEvent::Line(strip_carriage_return(&self.partial)),
                        consumed,
                    );
                }
                self.partial.clear();
            }
        }
        if rest.is_empty() {
            return;
        }
        match &mut self.skipping {
            Some(skipped) => *skipped += rest.len(),
            None if self.partial.len() + rest.len() > self.max_line_bytes + 1 => {
                // One byte of slack: a `\r` that the coming `\n` would strip.
                self.skipping = Some(self.partial.len() + rest.len());
                self.partial = Vec::new();
            }
            None => self.partial.extend_from_slice(rest),
        }
    }

    /// True when bytes of an unfinished line are held (or an oversized one is being skipped).
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty() || self.skipping.is_some()
    }

    /// Ends the stream: the unfinished last line, if any, is emitted as a line (or as too long).
    pub fn finish(&mut self, mut emit: impl FnMut(LineEvent<'_>)) {
        if let Some(skipped) = self.skipping.take() {
            emit(LineEvent::TooLong(skipped));
        } else if !self.partial.is_empty() {
            let line = strip_carriage_return(&self.partial);
            if line.len() > self.max_line_bytes {
                emit(LineEvent::TooLong(self.partial.len()));
            } else {
                emit(LineEvent::Line(line));
            }
        }
        self.partial.clear();
    }

    /// Forgets any unfinished line (the stream restarts elsewhere).
    pub fn reset(&mut self) {
        self.partial.clear();
        self.skipping = None;
    }
}

fn strip_carriage_return(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn strip_carriage_return_len(head: &[u8], tail: &[u8]) -> usize {
    let ends_in_carriage_return = match tail.last() {
        Some(&byte) => byte == b'\r',
        None => head.last() == Some(&b'\r'),
    };
    head.len() + tail.len() - usize::from(ends_in_carriage_return)
}

/// Lines waiting to be submitted: full at `batch_size` lines, due `flush_after` after the first
/// line went in.
#[derive(Debug)]
pub struct PendingLines {
    lines: StringColumn,
    first_at: Option<Instant>,
    batch_size: usize,
    flush_after: Duration,
}

impl PendingLines {
    /// An empty set with these bounds.
    pub fn new(batch_size: usize, flush_after: Duration) -> PendingLines {
        PendingLines {
            lines: StringColumn::default(),
            first_at: None,
            batch_size: batch_size.max(1),
            flush_after,
        }
    }

    /// Adds a line, replacing invalid UTF-8 with U+FFFD (a column holds text).
    pub fn push_bytes(&mut self, line: &[u8]) {
        match std::str::from_utf8(line) {
            Ok(text) => self.push(text),
            Err(_) => self.push(&String::from_utf8_lossy(line)),
        }
    }

    /// Adds a line.
    pub fn push(&mut self, line: &str) {
        if self.lines.is_empty() {
            self.first_at = Some(Instant::now());
        }
        self.lines.push(line);
    }

    /// Number of lines held.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True when no line is held.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// True when the batch should go now because it is full.
    pub fn is_full(&self) -> bool {
        self.lines.len() >= self.batch_size
    }

    /// When the held lines are due, if any are held.
    pub fn deadline(&self) -> Option<Instant> {
        self.first_at
            .and_then(|first| first.checked_add(self.flush_after))
    }

    /// Takes the held lines as a batch.
    pub fn take(&mut self, source: &str, resource: &Arc<Resource>) -> Batch {
        self.first_at = None;
        Batch::Lines(LineBatch {
            lines: std::mem::take(&mut self.lines),
            source: source.to_owned(),
            resource: resource.clone(),
        })
    }
}

/// Submits a batch for a client that cannot be answered (a TCP stream, a file): while the intake
/// is overloaded, waits and tries again, which pushes back on the sender through TCP flow
/// control or simply leaves the file unread. Gives up when the intake shuts down, or after a
/// few more tries once the receiver is told to stop. Returns the number of records lost when it
/// gives up.
pub async fn submit_until_taken(context: &ReceiverContext, batch: Batch) -> Result<(), usize> {
    const TRIES_AFTER_SHUTDOWN: u32 = 3;
    let count = batch.len();
    let mut pause = Duration::from_millis(20);
    let mut tries_after_shutdown = 0;
    loop {
        // The intake consumes what it is given: keep the batch for another try.
        match context.submit(batch.clone()).await {
            Ok(()) => return Ok(()),
            Err(IntakeError::ShuttingDown) => return Err(count),
            Err(IntakeError::Overloaded { .. } | IntakeError::Unavailable { .. }) => {}
        }
        if context.shutdown.is_cancelled() {
            tries_after_shutdown += 1;
            if tries_after_shutdown >= TRIES_AFTER_SHUTDOWN {
                return Err(count);
            }
        }
        tracing::debug!(receiver = %context.name, records = count, "intake overloaded; retrying");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<(String, usize)> {
        let mut splitter = LineSplitter::new(max);
        let mut out = Vec::new();
        let mut offset = 0;
        for chunk in chunks {
            splitter.push(chunk, |event, consumed| {
                let text = match event {
                    LineEvent::Line(line) => String::from_utf8_lossy(line).into_owned(),
                    LineEvent::TooLong(length) => format!("<too long: {length}>"),
                };
                out.push((text, offset + consumed));
            });
            offset += chunk.len();
        }
        splitter.finish(|event| {
            let text = match event {
                LineEvent::Line(line) => String::from_utf8_lossy(line).into_owned(),
                LineEvent::TooLong(length) => format!("<too long: {length}>"),
            };
            out.push((text, offset));
        });
        out
    }

    #[test]
    fn splits_across_chunks_and_reports_offsets() {
        let lines = split(100, &[b"ab", b"c\nde\r\n", b"\nf"]);
        assert_eq!(
            lines,
            vec![
                ("abc".into(), 4),
                ("de".into(), 8),
                ("".into(), 9),
                ("f".into(), 10),
            ]
        );
    }

    #[test]
    fn skips_an_oversized_line_and_keeps_its_neighbours() {
        let lines = split(4, &[b"ok\n12345", b"6789\nfine\n", b"toolong\n"]);
        assert_eq!(
            lines,
            vec![
                ("ok".into(), 3),
                ("<too long: 9>".into(), 13),
                ("fine".into(), 18),
                ("<too long: 7>".into(), 26),
            ]
        );
    }

    #[test]
    fn a_line_exactly_at_the_bound_passes_even_with_crlf() {
        let lines = split(4, &[b"abcd\r", b"\nabcd\r\nabcde\n"]);
        assert_eq!(
            lines,
            vec![
                ("abcd".into(), 6),
                ("abcd".into(), 12),
                ("<too long: 5>".into(), 18),
            ]
        );
    }

    #[test]
    fn pending_lines_are_full_at_the_batch_size() {
        let mut pending = PendingLines::new(2, Duration::from_millis(10));
        assert!(pending.deadline().is_none());
        pending.push("a");
        assert!(!pending.is_full());
        pending.push_bytes(b"b\xff");
        assert!(pending.is_full());
        let Batch::Lines(batch) = pending.take("here", &Arc::new(Resource::default())) else {
            panic!("lines expected");
        };
        assert_eq!(batch.lines.iter().collect::<Vec<_>>(), ["a", "b\u{fffd}"]);
        assert!(pending.is_empty() && pending.deadline().is_none());
    }
}

/// How long a connection may stay quiet while the gateway shuts down before it is closed.
pub const DRAIN_IDLE: Duration = Duration::from_millis(200);
/// The longest a connection is still read after shutdown began.
pub const DRAIN_MAX: Duration = Duration::from_secs(2);

/// Reading a connection after shutdown began: what its client sent before the shutdown (still
/// in flight or in the socket buffer) is read and handed on, until the client has been quiet for
/// [`DRAIN_IDLE`] or [`DRAIN_MAX`] has passed.
#[derive(Clone, Copy, Debug)]
pub struct Drain {
    until: tokio::time::Instant,
}

impl Drain {
    /// Starts draining now.
    pub fn start() -> Drain {
        Drain {
            until: tokio::time::Instant::now() + DRAIN_MAX,
        }
    }

    /// Runs one read; `None` when the connection is done (quiet, or out of time).
    pub async fn read<T>(&self, read: impl std::future::Future<Output = T>) -> Option<T> {
        let quiet = tokio::time::Instant::now() + DRAIN_IDLE;
        tokio::time::timeout_at(quiet.min(self.until), read)
            .await
            .ok()
    }
}
