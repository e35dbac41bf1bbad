//! Detector checkpoints: the state of a pipeline's detectors, saved together with the log
//! position they had seen when it was taken, so a restart (even after `kill -9`) resumes their
//! windows where the checkpoint left them and shows them every entry after it exactly once.
//!
//! - One file per pipeline, `<buffer>/detectors/<pipeline>.ckpt`, replaced atomically and
//!   durably (temporary file, fsync, rename, directory fsync).
//! - Format: `SLUICEDC` | version u32 | seq u64 | count u32 | per detector (name length u32,
//!   name, state length u32, state) | crc32c u32 of everything before it. All integers LE.
//! - The log keeps every entry after the checkpoint: the detectors hold a consumer on it
//!   (`pipeline→#detectors`) whose durable point is the checkpoint's sequence number.
//! - A detector whose snapshot fails or is larger than its `limits.max_state_bytes` is left out
//!   (it starts afresh after a restart), counted, and logged; the others are saved.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::durable_fs::{create_dir_all_synced, replace_file};
use crate::intake::{Consumer, Log, Ticket, WhenFull};
use crate::runtime::Sandbox;

const MAGIC: &[u8; 8] = b"SLUICEDC";
const VERSION: u32 = 1;

/// The sink name of the detectors' consumer on the log.
pub const DETECTORS_CONSUMER: &str = "#detectors";

/// What a checkpoint holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// The detectors have seen every log entry up to this sequence number.
    pub seq: u64,
    /// Each detector's state, by plugin name.
    pub states: Vec<(String, Vec<u8>)>,
}

impl Checkpoint {
    fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .states
            .iter()
            .map(|(name, state)| 8 + name.len() + state.len())
            .sum();
        let mut bytes = Vec::with_capacity(28 + size);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&self.seq.to_le_bytes());
        bytes.extend_from_slice(&(self.states.len() as u32).to_le_bytes());
        for (name, state) in &self.states {
            bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
            bytes.extend_from_slice(name.as_bytes());
            bytes.extend_from_slice(&(state.len() as u32).to_le_bytes());
            bytes.extend_from_slice(state);
        }
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
        let Some((body, crc)) = bytes.split_last_chunk::<4>() else {
            return Err("too short".into());
        };
        if crc32c::crc32c(body) != u32::from_le_bytes(*crc) {
            return Err("checksum mismatch".into());
        }
        let mut reader = Reader { bytes: body };
        if reader.take(8)? != MAGIC {
            return Err("not a detector checkpoint".into());
        }
        let version = reader.u32()?;
        if version != VERSION {
            return Err(format!("unknown version {version}"));
        }
        let seq = u64::from_le_bytes(reader.take(8)?.try_into().unwrap_or_default());
        let count = reader.u32()?;
        let mut states = Vec::new();
        for _ in 0..count {
            let length = reader.u32()? as usize;
            let name = String::from_utf8(reader.take(length)?.to_vec())
                .map_err(|_| "a detector name is not UTF-8".to_string())?;
            let length = reader.u32()? as usize;
            states.push((name, reader.take(length)?.to_vec()));
        }
        Ok(Checkpoint { seq, states })
    }

    /// Reads a checkpoint file: `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<Checkpoint>, String> {
        match std::fs::read(path) {
            Ok(bytes) => Checkpoint::decode(&bytes)
                .map(Some)
                .map_err(|error| format!("{}: {error}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(format!("cannot read {}: {error}", path.display())),
        }
    }

    /// Replaces the checkpoint file atomically and durably.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        replace_file(path, &self.encode())
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < count {
            return Err("truncated".into());
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
}

/// The checkpoint file of a pipeline under the log directory `buffer`.
pub fn checkpoint_path(buffer: &Path, pipeline: &str) -> PathBuf {
    let name: String = pipeline
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c.to_string(),
            other => format!("%{:x}", other as u32),
        })
        .collect();
    buffer.join("detectors").join(format!("{name}.ckpt"))
}

/// Takes a pipeline's detector checkpoints at its interval and holds the log past the last one.
pub struct Checkpointer {
    pipeline: Arc<str>,
    path: PathBuf,
    every: Duration,
    last: Instant,
    consumer: Arc<Consumer>,
    /// A ticket at the entry after the last checkpoint: the log keeps what follows it.
    held: Option<Ticket>,
    /// The position of the last checkpoint.
    saved: u64,
}

impl Checkpointer {
    /// Loads the pipeline's checkpoint and restores each detector's state from it. Returns the
    /// checkpointer and the sequence number the detectors have seen (`None` without a usable
    /// checkpoint: they start afresh).
    pub fn open(
        log: &Log,
        pipeline: &str,
        detectors: &mut [Sandbox],
        every: Duration,
    ) -> (Checkpointer, Option<u64>) {
        let path = checkpoint_path(log.dir(), pipeline);
        let checkpoint = match Checkpoint::load(&path) {
            Ok(checkpoint) => checkpoint,
            Err(error) => {
                tracing::error!(
                    pipeline,
                    "detector checkpoint unusable, detectors start afresh: {error}"
                );
                None
            }
        };
        if let Some(checkpoint) = &checkpoint {
            for detector in detectors.iter_mut() {
                let name = detector.plugin().spec.name.clone();
                let Some((_, state)) = checkpoint.states.iter().find(|(n, _)| *n == name) else {
                    tracing::info!(pipeline, plugin = %name, "no checkpointed state: the detector starts afresh");
                    continue;
                };
                match detector.restore(state.clone()) {
                    Ok(()) => {
                        tracing::info!(pipeline, plugin = %name, bytes = state.len(), seq = checkpoint.seq, "detector state restored")
                    }
                    Err(fault) => {
                        tracing::warn!(pipeline, plugin = %name, "detector refused its checkpointed state, it starts afresh: {fault}")
                    }
                }
            }
        }
        let consumer = log.consumer(pipeline, DETECTORS_CONSUMER, WhenFull::Block);
        let seen = checkpoint.as_ref().map(|checkpoint| checkpoint.seq);
        let saved = seen.unwrap_or(0);
        let checkpointer = Checkpointer {
            pipeline: pipeline.into(),
            path,
            every,
            last: Instant::now(),
            held: None,
            consumer,
            saved,
        };
        (checkpointer, seen)
    }

    /// Starts holding the log after `seen`, the position the detectors start from.
    pub fn hold_from(&mut self, seen: u64) {
        self.saved = seen;
        self.consumer.advance(seen + 1);
        self.held = Some(self.consumer.ticket(seen + 1));
    }

    /// The detectors have seen entry `seq`.
    pub fn seen(&self, seq: u64) {
        self.consumer.advance(seq + 1);
    }

    /// True when the interval since the last checkpoint has passed.
    pub fn due(&self) -> bool {
        self.last.elapsed() >= self.every
    }

    /// Takes a checkpoint at `seen` (the detectors have seen every entry up to it) and lets the
    /// log go of what comes before it. A failed write keeps the previous checkpoint and the log.
    pub fn save(&mut self, seen: u64, detectors: &mut [Sandbox]) {
        self.last = Instant::now();
        if seen == self.saved && self.held.is_some() {
            return;
        }
        let pipeline = &*self.pipeline;
        let mut checkpoint = Checkpoint {
            seq: seen,
            states: Vec::with_capacity(detectors.len()),
        };
        for detector in detectors.iter_mut() {
            let name = detector.plugin().spec.name.clone();
            match detector.checkpoint_state() {
                Ok(state) => checkpoint.states.push((name, state)),
                Err(fault) => {
                    tracing::error!(pipeline, plugin = %name, "detector state not checkpointed: {fault}")
                }
            }
        }
        let written = self
            .path
            .parent()
            .map_or(Ok(()), create_dir_all_synced)
            .and_then(|()| checkpoint.save(&self.path));
        if let Err(error) = written {
            tracing::error!(pipeline, path = %self.path.display(), "cannot save the detectors' checkpoint (the previous one stays): {error}");
            for detector in detectors.iter() {
                detector.stats().add_checkpoint_failure();
            }
            return;
        }
        let next = self.consumer.ticket(seen + 1);
        if let Some(previous) = self.held.replace(next) {
            previous.done();
        }
        self.saved = seen;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = checkpoint_path(dir.path(), "logs");
        create_dir_all_synced(path.parent().unwrap()).unwrap();
        let checkpoint = Checkpoint {
            seq: 42,
            states: vec![
                ("burst".into(), vec![1, 2, 3]),
                ("novelty".into(), Vec::new()),
            ],
        };
        checkpoint.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), Some(checkpoint));
    }

    #[test]
    fn a_damaged_checkpoint_is_refused_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.ckpt");
        let mut bytes = Checkpoint {
            seq: 7,
            states: vec![("d".into(), vec![9; 100])],
        }
        .encode();
        bytes[30] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let error = Checkpoint::load(&path).unwrap_err();
        assert!(error.contains("checksum mismatch"), "{error}");
        std::fs::write(&path, &bytes[..10]).unwrap();
        assert!(Checkpoint::load(&path).is_err());
        assert_eq!(
            Checkpoint::load(&dir.path().join("missing.ckpt")).unwrap(),
            None
        );
    }

    #[test]
    fn pipeline_names_become_safe_file_names() {
        let path = checkpoint_path(Path::new("/b"), "a/../b c");
        assert_eq!(path, Path::new("/b/detectors/a%2f..%2fb%20c.ckpt"));
    }
}
