//! Start-up checks of the log directory: every segment is scanned; a torn tail (a write the
//! process did not finish) is cut off; a damaged segment is moved aside into `damaged/` and
//! replaced by a copy of its valid records, so one bad sector costs the records it hit and
//! nothing else; nothing here stops the gateway from starting.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::cursors::{CURSORS_FILE, CursorFile};
use super::segment::{self, Damage, IndexEntry};

/// Where damaged segments are moved.
pub const DAMAGED_DIR: &str = "damaged";

/// A segment found whole (or made whole).
#[derive(Clone, Debug)]
pub struct FoundSegment {
    /// Sequence number its name stands for.
    pub first_seq: u64,
    /// Its path.
    pub path: PathBuf,
    /// Its records.
    pub entries: Vec<IndexEntry>,
    /// Its size.
    pub bytes: u64,
}

/// Something recovery repaired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repair {
    /// The last segment ended in an unfinished write, cut off.
    TornTailCut {
        /// The segment.
        segment: PathBuf,
        /// Bytes cut.
        bytes: u64,
    },
    /// A damaged segment was moved aside and replaced by its valid records.
    MovedAside {
        /// The segment.
        segment: PathBuf,
        /// Where the damaged original is now.
        moved_to: PathBuf,
        /// What was wrong.
        damage: String,
        /// Entries kept.
        kept_entries: usize,
        /// Bytes holding no valid record.
        damaged_bytes: u64,
    },
    /// An empty segment (created just before a crash) was removed.
    EmptyRemoved {
        /// The segment.
        segment: PathBuf,
    },
    /// The cursors file could not be read: every consumer starts at the oldest entry kept.
    CursorsUnreadable {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repair::TornTailCut { segment, bytes } => write!(
                f,
                "segment {}: cut an unfinished write of {bytes} bytes at its end",
                segment.display()
            ),
            Repair::MovedAside {
                segment,
                moved_to,
                damage,
                kept_entries,
                damaged_bytes,
            } => write!(
                f,
                "segment {}: {damage}; moved aside to {}, {kept_entries} valid entries kept, {damaged_bytes} damaged bytes lost",
                segment.display(),
                moved_to.display()
            ),
            Repair::EmptyRemoved { segment } => {
                write!(f, "segment {}: empty, removed", segment.display())
            }
            Repair::CursorsUnreadable { reason } => write!(
                f,
                "{reason}; every sink replays the whole log (duplicates possible, nothing lost)"
            ),
        }
    }
}

/// What recovery found and did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Segments in order.
    pub segments: Vec<FoundSegment>,
    /// Saved cursors.
    pub cursors: CursorFile,
    /// What was repaired.
    pub repairs: Vec<Repair>,
}

impl Recovery {
    /// Entries kept in all segments.
    pub fn entries(&self) -> usize {
        self.segments
            .iter()
            .map(|segment| segment.entries.len())
            .sum()
    }
}

/// Describes damage in words.
pub fn describe(damage: &Damage) -> String {
    match damage {
        Damage::BadHeader => "not a segment (bad header)".into(),
        Damage::TornTail { at } => format!("ends in an unfinished record at byte {at}"),
        Damage::Corrupt { ranges } => format!(
            "corrupt bytes at {}",
            ranges
                .iter()
                .map(|(start, end)| format!("{start}..{end}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Checks and repairs the log directory.
pub fn recover(dir: &Path) -> io::Result<Recovery> {
    let mut recovery = Recovery::default();
    let _ = std::fs::remove_file(dir.join(CURSORS_FILE).with_extension("json.tmp"));
    match CursorFile::load(&dir.join(CURSORS_FILE)) {
        Ok(cursors) => recovery.cursors = cursors,
        Err(reason) => recovery.repairs.push(Repair::CursorsUnreadable { reason }),
    }
    let files = segment::list(dir)?;
    let mut last_seq = 0;
    let count = files.len();
    for (position, (first_seq, path)) in files.into_iter().enumerate() {
        let is_last = position + 1 == count;
        let scan = segment::scan(&path, last_seq)?;
        let mut entries = scan.entries;
        let mut bytes = scan.file_len;
        match scan.damage {
            None => {}
            Some(Damage::TornTail { at }) if is_last => {
                let file = OpenOptions::new().write(true).open(&path)?;
                file.set_len(at)?;
                file.sync_all()?;
                recovery.repairs.push(Repair::TornTailCut {
                    segment: path.clone(),
                    bytes: scan.file_len - at,
                });
                bytes = at;
            }
            Some(damage) => {
                let moved_to = move_aside(dir, &path)?;
                bytes = rewrite(&path, &moved_to, &mut entries)?;
                let kept: u64 = entries.iter().map(|entry| entry.end() - entry.offset).sum();
                recovery.repairs.push(Repair::MovedAside {
                    segment: path.clone(),
                    moved_to,
                    damage: describe(&damage),
                    kept_entries: entries.len(),
                    damaged_bytes: scan.file_len.saturating_sub(kept + segment::HEADER_BYTES),
                });
            }
        }
        if entries.is_empty() {
            std::fs::remove_file(&path)?;
            segment::sync_directory(dir)?;
            if !recovery.repairs.iter().any(
                |repair| matches!(repair, Repair::MovedAside { segment, .. } if *segment == path),
            ) {
                recovery
                    .repairs
                    .push(Repair::EmptyRemoved { segment: path });
            }
            continue;
        }
        last_seq = entries.last().map_or(last_seq, |entry| entry.seq);
        recovery.segments.push(FoundSegment {
            first_seq,
            path,
            entries,
            bytes,
        });
    }
    Ok(recovery)
}

/// Renames a segment into `damaged/` (never overwriting an earlier one) and syncs both
/// directories.
fn move_aside(dir: &Path, path: &Path) -> io::Result<PathBuf> {
    let damaged = dir.join(DAMAGED_DIR);
    crate::durable_fs::create_dir_all_synced(&damaged)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut target = damaged.join(&*name);
    let mut attempt = 1;
    while target.exists() {
        target = damaged.join(format!("{name}.{attempt}"));
        attempt += 1;
    }
    std::fs::rename(path, &target)?;
    segment::sync_directory(&damaged)?;
    segment::sync_directory(dir)?;
    Ok(target)
}

/// Writes a fresh segment at `path` holding the valid records of `damaged`, and updates
/// `entries` to their new offsets. Returns the new file's size.
fn rewrite(path: &Path, damaged: &Path, entries: &mut [IndexEntry]) -> io::Result<u64> {
    if entries.is_empty() {
        return Ok(0);
    }
    let source = File::open(damaged)?;
    let mut bytes = segment::header().to_vec();
    for entry in entries.iter_mut() {
        let payload = segment::read_payload(&source, entry)?;
        entry.offset = bytes.len() as u64;
        segment::frame(entry.seq, &payload, &mut bytes);
    }
    let mut file = OpenOptions::new().create_new(true).write(true).open(path)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    segment::sync_directory(path.parent().unwrap_or(Path::new(".")))?;
    Ok(bytes.len() as u64)
}
