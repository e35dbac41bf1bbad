//! Consumers of the log: one per pipeline-to-sink edge, each with its own cursor.
//!
//! A pipeline reads the log and moves a consumer's `next` past each entry it has handled for
//! that sink; every batch it hands the sink carries a [`Ticket`] that stays pending until the
//! sink has made the batch durable (a Parquet file completed, an export answered). The
//! consumer's durable point is the sequence number below which nothing is pending: the log
//! persists it as the cursor, replays from it after a restart, and deletes a segment once every
//! consumer's durable point is past it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::config::WhenFull;

/// One pipeline → sink edge.
pub struct Consumer {
    name: String,
    sink: String,
    when_full: WhenFull,
    state: Mutex<Position>,
    dropped_records: AtomicU64,
}

#[derive(Debug)]
struct Position {
    /// Next sequence number the pipeline will read for this edge.
    next: u64,
    /// Sequence numbers of batches handed to the sink and not yet durable, with how many.
    pending: BTreeMap<u64, u32>,
    /// Everything up to here was given up (drop-oldest); pending tickets at or below it no
    /// longer hold the cursor back.
    skipped_to: u64,
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name)
            .field("durable", &self.durable())
            .finish()
    }
}

impl Consumer {
    /// A consumer named `pipeline→sink` that starts reading at `next`.
    pub fn new(pipeline: &str, sink: &str, when_full: WhenFull, next: u64) -> Consumer {
        Consumer {
            name: consumer_name(pipeline, sink),
            sink: sink.to_owned(),
            when_full,
            state: Mutex::new(Position {
                next,
                pending: BTreeMap::new(),
                skipped_to: next.saturating_sub(1),
            }),
            dropped_records: AtomicU64::new(0),
        }
    }

    /// `pipeline→sink`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The sink's name.
    pub fn sink(&self) -> &str {
        &self.sink
    }

    /// What the sink does when the log is full.
    pub fn when_full(&self) -> WhenFull {
        self.when_full
    }

    /// Records given up by drop-oldest.
    pub fn dropped_records(&self) -> u64 {
        self.dropped_records.load(Ordering::Relaxed)
    }

    fn position(&self) -> std::sync::MutexGuard<'_, Position> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next sequence number to read (past anything given up).
    pub fn next(&self) -> u64 {
        let position = self.position();
        position.next.max(position.skipped_to + 1)
    }

    /// The pipeline is done reading everything below `next` for this edge.
    pub fn advance(&self, next: u64) {
        let mut position = self.position();
        position.next = position.next.max(next);
    }

    /// A ticket for a batch of entry `seq` handed to the sink.
    pub fn ticket(self: &Arc<Self>, seq: u64) -> Ticket {
        *self.position().pending.entry(seq).or_default() += 1;
        Ticket {
            consumer: self.clone(),
            seq,
            failed: AtomicBool::new(false),
        }
    }

    /// Everything up to this sequence number is durable in the sink (or given up).
    pub fn durable(&self) -> u64 {
        let position = self.position();
        let read = position.next.saturating_sub(1);
        let waiting = position
            .pending
            .range(position.skipped_to + 1..)
            .next()
            .map(|(&seq, _)| seq - 1);
        waiting
            .map_or(read, |waiting| waiting.min(read))
            .max(position.skipped_to)
    }

    /// Gives up everything up to `seq` (drop-oldest), counting `records` as dropped.
    pub fn skip_to(&self, seq: u64, records: u64) {
        let mut position = self.position();
        if seq > position.skipped_to {
            position.skipped_to = seq;
            let kept = position.pending.split_off(&(seq + 1));
            position.pending = kept;
            self.dropped_records.fetch_add(records, Ordering::Relaxed);
        }
    }

    fn done(&self, seq: u64) {
        let mut position = self.position();
        release(&mut position.pending, seq);
    }

    /// The sink failed to make entry `seq` durable: the pipeline reads the log again from there.
    fn rewind(&self, seq: u64) {
        let mut position = self.position();
        release(&mut position.pending, seq);
        if seq > position.skipped_to {
            position.next = position.next.min(seq);
        }
    }
}

fn release(pending: &mut BTreeMap<u64, u32>, seq: u64) {
    if let Some(count) = pending.get_mut(&seq) {
        *count -= 1;
        if *count == 0 {
            pending.remove(&seq);
        }
    }
}

/// The name a consumer's cursor is stored under.
pub fn consumer_name(pipeline: &str, sink: &str) -> String {
    format!("{pipeline}→{sink}")
}

/// A batch handed to a sink, pending until the sink calls [`done`](Ticket::done). A ticket
/// dropped without `done` (a sink that stopped before finishing) stays pending: its entry is
/// replayed after a restart, never lost.
#[derive(Debug)]
pub struct Ticket {
    consumer: Arc<Consumer>,
    seq: u64,
    failed: AtomicBool,
}

impl Ticket {
    /// The batch is durable in the sink (or deliberately given up and counted as such).
    pub fn done(self) {
        self.consumer.done(self.seq);
    }

    /// The sink could not make the batch durable and wants it again: the pipeline reads the log
    /// again from this entry (what other sinks already have is not sent to them twice; this
    /// sink may get some of its batches twice).
    pub fn retry(self) {
        self.consumer.rewind(self.seq);
    }

    /// `done` for a ticket several holders share (batches of one entry in several files): the
    /// last holder to let go completes it, or has it retried when any holder failed.
    pub fn done_shared(ticket: Arc<Ticket>) {
        if let Some(ticket) = Arc::into_inner(ticket) {
            ticket.finish();
        }
    }

    /// Marks a shared ticket failed: when its last holder lets go, it is retried.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    /// `retry` for a shared ticket: marks it failed; the last holder to let go has it retried.
    pub fn retry_shared(ticket: Arc<Ticket>) {
        ticket.fail();
        Ticket::done_shared(ticket);
    }

    fn finish(self) {
        if self.failed.load(Ordering::Relaxed) {
            self.retry();
        } else {
            self.done();
        }
    }

    /// The log entry the batch came from.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_durable_point_waits_for_the_oldest_pending_ticket() {
        let consumer = Arc::new(Consumer::new("logs", "archive", WhenFull::Block, 1));
        assert_eq!(consumer.durable(), 0);
        let first = consumer.ticket(1);
        consumer.advance(2);
        consumer.advance(3); // entry 2 had nothing for this sink
        let third = consumer.ticket(3);
        consumer.advance(4);
        assert_eq!(consumer.durable(), 0);
        third.done();
        assert_eq!(consumer.durable(), 0, "entry 1 is still pending");
        first.done();
        assert_eq!(consumer.durable(), 3);
    }

    #[test]
    fn a_dropped_ticket_stays_pending() {
        let consumer = Arc::new(Consumer::new("logs", "archive", WhenFull::Block, 5));
        drop(consumer.ticket(5));
        consumer.advance(6);
        assert_eq!(consumer.durable(), 4);
    }

    #[test]
    fn a_shared_ticket_completes_with_its_last_holder() {
        let consumer = Arc::new(Consumer::new("logs", "archive", WhenFull::Block, 1));
        let ticket = Arc::new(consumer.ticket(1));
        consumer.advance(2);
        let other = ticket.clone();
        Ticket::done_shared(ticket);
        assert_eq!(consumer.durable(), 0);
        Ticket::done_shared(other);
        assert_eq!(consumer.durable(), 1);
    }

    #[test]
    fn a_failed_shared_ticket_rewinds_the_reader() {
        let consumer = Arc::new(Consumer::new("logs", "archive", WhenFull::Block, 1));
        for seq in 1..=3 {
            drop(consumer.ticket(seq));
            consumer.advance(seq + 1);
        }
        let ticket = Arc::new(consumer.ticket(4));
        consumer.advance(5);
        let other = ticket.clone();
        Ticket::retry_shared(other);
        assert_eq!(consumer.next(), 5, "another holder still has it");
        Ticket::done_shared(ticket);
        assert_eq!(consumer.next(), 4, "read again from the failed entry");
        assert_eq!(consumer.durable(), 0, "entries 1 to 3 are still pending");
    }

    #[test]
    fn skipping_gives_up_pending_tickets_and_counts_records() {
        let consumer = Arc::new(Consumer::new("logs", "exporter", WhenFull::DropOldest, 1));
        let _stuck = consumer.ticket(1);
        consumer.advance(2);
        let _later = consumer.ticket(7);
        consumer.advance(8);
        consumer.skip_to(4, 100);
        assert_eq!(consumer.durable(), 6);
        assert_eq!(consumer.next(), 8);
        assert_eq!(consumer.dropped_records(), 100);
        let fresh = Arc::new(Consumer::new("logs", "exporter", WhenFull::DropOldest, 1));
        fresh.skip_to(10, 5);
        assert_eq!(fresh.next(), 11);
        assert_eq!(fresh.durable(), 10);
    }
}
