//! The tailing loop: finds the files, reads what they gained, hands complete lines to the
//! intake and moves the checkpoint past them. Runs on a blocking thread (file reads block),
//! reaching the async intake through the runtime handle.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use super::checkpoint::{CheckpointStore, FINGERPRINT_BYTES, FileCheckpoint, Fingerprint};
use super::{FileReceiverConfig, StartAt};
use crate::model::{AttributeValue, Batch, Resource};
use crate::receivers::framing::{LineEvent, LineSplitter, PendingLines, submit_until_taken};
use crate::receivers::{ReceiverContext, ReceiverStats};

/// Bytes read from one file before the others get their turn.
const READ_BUDGET_PER_FILE: u64 = 4 * 1024 * 1024;
/// Size of one read.
const READ_CHUNK: usize = 64 * 1024;

/// A file is its device and inode while it is open (an inode cannot be reused while a handle
/// holds it); the fingerprint covers the time it is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
}

#[cfg(unix)]
fn identity(metadata: &std::fs::Metadata) -> FileIdentity {
    use std::os::unix::fs::MetadataExt;
    FileIdentity {
        device: metadata.dev(),
        inode: metadata.ino(),
    }
}

#[cfg(unix)]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    file.read_at(buffer, offset)
}

/// One followed file.
struct TrackedFile {
    /// Where it was found when first opened (kept across a rename: its lines were written as
    /// this file's).
    path: String,
    identity: FileIdentity,
    file: File,
    fingerprint: Fingerprint,
    /// Next byte to read.
    read_offset: u64,
    /// Just after the last complete (or skipped) line read.
    boundary: u64,
    /// Just after the last line the intake took: what the checkpoint records.
    committed: u64,
    splitter: LineSplitter,
    pending: PendingLines,
    /// Size seen at the last poll, to notice change.
    last_size: u64,
    /// When a read last returned bytes.
    last_growth: Instant,
    /// Since when its path no longer leads to it (rotated away or deleted).
    gone_since: Option<Instant>,
    /// Read to the end after its rotation wait: to be closed.
    done: bool,
    resource: Arc<Resource>,
}

impl TrackedFile {
    /// Starts over at byte 0 (truncated or rewritten in place).
    fn restart(&mut self, size: u64) {
        self.read_offset = 0;
        self.boundary = 0;
        self.committed = 0;
        self.splitter.reset();
        self.last_growth = Instant::now();
        match Fingerprint::of(&self.file, size) {
            Ok(fingerprint) => self.fingerprint = fingerprint,
            Err(error) => {
                tracing::warn!(path = %self.path, %error, "cannot read the start of the file")
            }
        }
    }

    fn checkpoint(&self) -> FileCheckpoint {
        FileCheckpoint {
            path: self.path.clone(),
            device: self.identity.device,
            inode: self.identity.inode,
            fingerprint_length: self.fingerprint.length,
            fingerprint_sha256: hex::encode(self.fingerprint.sha256),
            offset: self.committed,
        }
    }
}

/// The intake is shutting down: stop reading.
struct Stopped;

/// The state of one file receiver.
pub(super) struct Tailer {
    config: FileReceiverConfig,
    context: ReceiverContext,
    runtime: Handle,
    store: CheckpointStore,
    /// Positions from the checkpoint, matched to files at the first scan.
    remembered: Vec<FileCheckpoint>,
    files: Vec<TrackedFile>,
    first_scan: bool,
    checkpoint_dirty: bool,
    buffer: Vec<u8>,
}

impl Tailer {
    pub(super) fn new(
        config: FileReceiverConfig,
        context: ReceiverContext,
        runtime: Handle,
        store: CheckpointStore,
        remembered: Vec<FileCheckpoint>,
    ) -> Tailer {
        Tailer {
            config,
            context,
            runtime,
            store,
            remembered,
            files: Vec::new(),
            first_scan: true,
            checkpoint_dirty: false,
            buffer: vec![0; READ_CHUNK],
        }
    }

    /// Polls until shutdown.
    pub(super) fn run(mut self) {
        let poll = Duration::from_millis(self.config.poll_ms.max(1));
        while !self.context.shutdown.is_cancelled() {
            self.scan();
            // Rotated-away files first: an old file's last lines come before its successor's.
            let order: Vec<usize> = (0..self.files.len())
                .filter(|&index| self.files[index].gone_since.is_some())
                .chain(
                    (0..self.files.len()).filter(|&index| self.files[index].gone_since.is_none()),
                )
                .collect();
            let mut more = false;
            let mut stopped = false;
            for index in order {
                match self.pump(index) {
                    Ok(has_more) => more |= has_more,
                    Err(Stopped) => {
                        stopped = true;
                        break;
                    }
                }
            }
            let before = self.files.len();
            self.files.retain(|file| {
                if file.done {
                    tracing::debug!(path = %file.path, "rotated file read to its end and closed");
                }
                !file.done
            });
            self.checkpoint_dirty |= self.files.len() != before;
            self.save_checkpoint();
            if stopped {
                break;
            }
            if !more {
                let shutdown = self.context.shutdown.clone();
                self.runtime.block_on(async move {
                    tokio::select! {
                        () = tokio::time::sleep(poll) => {}
                        () = shutdown.cancelled() => {}
                    }
                });
            }
        }
        self.save_checkpoint();
    }

    fn save_checkpoint(&mut self) {
        if !self.checkpoint_dirty {
            return;
        }
        let entries: Vec<FileCheckpoint> = self.files.iter().map(TrackedFile::checkpoint).collect();
        match self.store.save(&entries) {
            Ok(()) => self.checkpoint_dirty = false,
            Err(error) => tracing::error!(
                receiver = %self.context.name,
                %error,
                "cannot write the file checkpoint; retrying at the next poll"
            ),
        }
    }

    /// Finds the files matching the patterns: opens new ones, marks followed ones whose path
    /// no longer leads to them.
    fn scan(&mut self) {
        let mut found: Vec<(PathBuf, FileIdentity)> = Vec::new();
        for pattern in &self.config.paths {
            let Ok(paths) = glob::glob(pattern) else {
                continue;
            };
            for entry in paths {
                let path = match entry {
                    Ok(path) => path,
                    Err(error) => {
                        tracing::debug!(receiver = %self.context.name, %error, "glob entry skipped");
                        continue;
                    }
                };
                let Ok(metadata) = std::fs::metadata(&path) else {
                    continue;
                };
                if !metadata.is_file() {
                    continue;
                }
                let id = identity(&metadata);
                if !found.iter().any(|(_, known)| *known == id) {
                    found.push((path, id));
                }
            }
        }
        let now = Instant::now();
        for file in &mut self.files {
            if found.iter().any(|(_, id)| *id == file.identity) {
                file.gone_since = None;
            } else if file.gone_since.is_none() {
                tracing::debug!(path = %file.path, "file rotated away or deleted; reading it to its end");
                file.gone_since = Some(now);
            }
        }
        for (path, id) in found {
            if !self.files.iter().any(|file| file.identity == id) {
                self.open(&path);
            }
        }
        if self.first_scan {
            for entry in self.remembered.drain(..) {
                tracing::info!(
                    receiver = %self.context.name,
                    path = %entry.path,
                    "a file in the checkpoint is no longer found; forgetting it"
                );
                self.checkpoint_dirty = true;
            }
            self.first_scan = false;
        }
    }

    fn open(&mut self, path: &Path) {
        let opened = File::open(path).and_then(|file| {
            let metadata = file.metadata()?;
            let fingerprint = Fingerprint::of(&file, metadata.len())?;
            Ok((file, metadata, fingerprint))
        });
        let (file, metadata, fingerprint) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                tracing::warn!(receiver = %self.context.name, path = %path.display(), %error, "cannot open file");
                return;
            }
        };
        // The path may have been replaced between the scan and the open: trust the handle.
        let id = identity(&metadata);
        if self.files.iter().any(|tracked| tracked.identity == id) {
            return;
        }
        let size = metadata.len();
        let remembered = self.remembered.iter().position(|entry| {
            entry.device == id.device
                && entry.inode == id.inode
                && entry
                    .fingerprint()
                    .is_some_and(|known| known.matches(&file, size).unwrap_or(false))
        });
        let path_text = path.display().to_string();
        let start = match remembered {
            Some(index) => {
                let entry = self.remembered.swap_remove(index);
                if entry.offset > size {
                    tracing::warn!(path = %path_text, "file shorter than its checkpoint (truncated while stopped); reading it from the start");
                    0
                } else {
                    entry.offset
                }
            }
            None if self.first_scan && self.config.start_at == StartAt::End => size,
            None => 0,
        };
        tracing::debug!(receiver = %self.context.name, path = %path_text, start, "following file");
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let resource = Arc::new(Resource::with_attributes(vec![
            (
                "log.file.path".into(),
                AttributeValue::Str(path_text.clone()),
            ),
            ("log.file.name".into(), AttributeValue::Str(name)),
        ]));
        self.files.push(TrackedFile {
            path: path_text,
            identity: id,
            file,
            fingerprint,
            read_offset: start,
            boundary: start,
            committed: start,
            splitter: LineSplitter::new(self.config.max_line_bytes),
            // Lines go at each end of file, not by age.
            pending: PendingLines::new(self.config.batch_size, Duration::MAX),
            last_size: size,
            last_growth: Instant::now(),
            gone_since: None,
            done: false,
            resource,
        });
        self.checkpoint_dirty = true;
    }

    /// Reads what file `index` gained and hands its complete lines on. True when it has more
    /// to read than this turn's budget.
    fn pump(&mut self, index: usize) -> Result<bool, Stopped> {
        let Tailer {
            config,
            context,
            runtime,
            files,
            buffer,
            checkpoint_dirty,
            ..
        } = self;
        let file = &mut files[index];
        let size = match file.file.metadata() {
            Ok(metadata) => metadata.len(),
            Err(error) => {
                tracing::warn!(path = %file.path, %error, "cannot stat file");
                return Ok(false);
            }
        };
        if size < file.read_offset {
            tracing::info!(path = %file.path, size, position = file.read_offset, "file truncated; reading it from the start");
            file.restart(size);
            *checkpoint_dirty = true;
        } else if size != file.last_size {
            match file.fingerprint.matches(&file.file, size) {
                Ok(true) => {
                    if file.fingerprint.length < FINGERPRINT_BYTES
                        && size > file.fingerprint.length
                        && let Ok(longer) = Fingerprint::of(&file.file, size)
                    {
                        file.fingerprint = longer;
                        *checkpoint_dirty = true;
                    }
                }
                Ok(false) => {
                    tracing::info!(path = %file.path, "file rewritten from its start (truncated, then written past the old position); reading it from the start");
                    file.restart(size);
                    *checkpoint_dirty = true;
                }
                Err(error) => {
                    tracing::warn!(path = %file.path, %error, "cannot read the start of the file")
                }
            }
        }
        file.last_size = size;

        let partial_wait = Duration::from_millis(config.partial_line_wait_ms);
        let rotate_wait = Duration::from_millis(config.rotate_wait_ms);
        let mut read = 0u64;
        let mut more = false;
        loop {
            if context.shutdown.is_cancelled() {
                break;
            }
            if read >= READ_BUDGET_PER_FILE {
                more = true;
                break;
            }
            let length = match read_at(&file.file, buffer, file.read_offset) {
                Ok(0) => break,
                Ok(length) => length,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    tracing::warn!(path = %file.path, %error, "read failed; retrying at the next poll");
                    break;
                }
            };
            ReceiverStats::add(&context.stats.requests, 1);
            let chunk_start = file.read_offset;
            file.read_offset += length as u64;
            read += length as u64;
            file.last_growth = Instant::now();
            let mut ready = Vec::new();
            let TrackedFile {
                splitter,
                pending,
                boundary,
                path,
                resource,
                ..
            } = file;
            splitter.push(&buffer[..length], |event, consumed| {
                let end = chunk_start + consumed as u64;
                take_line(event, pending, path, context, config.max_line_bytes);
                if pending.is_full() {
                    ready.push((pending.take(path, resource), end));
                }
                *boundary = end;
            });
            for (batch, end) in ready {
                submit(runtime, context, batch)?;
                file.committed = end;
                *checkpoint_dirty = true;
            }
        }

        if !more && file.splitter.has_partial() {
            let rotated_long_ago = file
                .gone_since
                .is_some_and(|since| since.elapsed() >= rotate_wait);
            if rotated_long_ago || file.last_growth.elapsed() >= partial_wait {
                let TrackedFile {
                    splitter,
                    pending,
                    path,
                    ..
                } = file;
                splitter.finish(|event| {
                    take_line(event, pending, path, context, config.max_line_bytes)
                });
                file.boundary = file.read_offset;
            }
        }
        if !file.pending.is_empty() {
            let batch = file.pending.take(&file.path, &file.resource);
            submit(runtime, context, batch)?;
        }
        if file.committed != file.boundary {
            file.committed = file.boundary;
            *checkpoint_dirty = true;
        }
        if !more
            && !file.splitter.has_partial()
            && file
                .gone_since
                .is_some_and(|since| since.elapsed() >= rotate_wait)
        {
            file.done = true;
        }
        Ok(more)
    }
}

fn take_line(
    event: LineEvent<'_>,
    pending: &mut PendingLines,
    path: &str,
    context: &ReceiverContext,
    max_line_bytes: usize,
) {
    match event {
        LineEvent::Line(line) => pending.push_bytes(line),
        LineEvent::TooLong(length) => {
            ReceiverStats::add(&context.stats.records_malformed, 1);
            tracing::warn!(
                receiver = %context.name,
                path,
                length,
                max_line_bytes,
                "line longer than max_line_bytes skipped"
            );
        }
    }
}

fn submit(runtime: &Handle, context: &ReceiverContext, batch: Batch) -> Result<(), Stopped> {
    runtime
        .block_on(submit_until_taken(context, batch))
        .map_err(|lost| {
            tracing::error!(
                receiver = %context.name,
                lines = lost,
                "file lines not taken: the intake is shutting down (they are read again after a restart)"
            );
            Stopped
        })
}
