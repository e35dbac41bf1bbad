//! `sluice buffer inspect DIR`: what a log directory holds, read-only (safe on a running
//! gateway's directory): segments with their entries and any damage, consumers' cursors with
//! how far behind each is, and the segments moved aside earlier.

use std::fmt::Write as _;
use std::path::Path;

use super::cursors::{CURSORS_FILE, CursorFile};
use super::recovery::{DAMAGED_DIR, describe};
use super::segment::{self, IndexEntry};

/// What `inspect` found.
#[derive(Debug)]
pub struct Report {
    /// The readable report.
    pub text: String,
    /// True when a segment or the cursors file is damaged.
    pub damaged: bool,
}

/// A readable report of the log directory `dir`.
pub fn inspect(dir: &Path) -> anyhow::Result<Report> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let mut out = String::new();
    writeln!(out, "buffer {}", dir.display())?;
    let mut all: Vec<IndexEntry> = Vec::new();
    let mut lines = Vec::new();
    let mut total_bytes = 0;
    let mut damaged_segments = 0;
    let mut last_seq = 0;
    for (_, path) in segment::list(dir)? {
        let scan = segment::scan(&path, last_seq)?;
        total_bytes += scan.file_len;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let records: u64 = scan
            .entries
            .iter()
            .map(|entry| u64::from(entry.records))
            .sum();
        let range = match (scan.entries.first(), scan.entries.last()) {
            (Some(first), Some(last)) => format!("entries {}..={}", first.seq, last.seq),
            _ => "no entries".to_owned(),
        };
        let state = match &scan.damage {
            None => "ok".to_owned(),
            Some(damage) => {
                damaged_segments += 1;
                format!("DAMAGED: {}", describe(damage))
            }
        };
        lines.push(format!(
            "  {name}  {range}  records {records}  bytes {}  {state}",
            scan.file_len
        ));
        if let Some(last) = scan.entries.last() {
            last_seq = last.seq;
        }
        all.extend(scan.entries);
    }
    let records: u64 = all.iter().map(|entry| u64::from(entry.records)).sum();
    writeln!(
        out,
        "segments: {} ({total_bytes} bytes), {} entries, {records} records, {damaged_segments} damaged",
        lines.len(),
        all.len()
    )?;
    for line in lines {
        writeln!(out, "{line}")?;
    }
    match CursorFile::load(&dir.join(CURSORS_FILE)) {
        Ok(cursors) if cursors.consumers.is_empty() => {
            writeln!(out, "cursors: none saved")?;
        }
        Ok(cursors) => {
            writeln!(
                out,
                "cursors ({CURSORS_FILE}, highest sequence number committed {}):",
                cursors.next_seq_floor
            )?;
            for (name, &cursor) in &cursors.consumers {
                let behind: Vec<&IndexEntry> =
                    all.iter().filter(|entry| entry.seq > cursor).collect();
                let behind_records: u64 = behind.iter().map(|entry| u64::from(entry.records)).sum();
                writeln!(
                    out,
                    "  {name}  at {cursor}  behind: {} entries, {behind_records} records",
                    behind.len()
                )?;
            }
        }
        Err(reason) => {
            damaged_segments += 1;
            writeln!(out, "cursors: DAMAGED: {reason}")?;
        }
    }
    let damaged_dir = dir.join(DAMAGED_DIR);
    if damaged_dir.is_dir() {
        let mut moved: Vec<(String, u64)> = std::fs::read_dir(&damaged_dir)?
            .filter_map(Result::ok)
            .map(|entry| {
                let size = entry.metadata().map(|meta| meta.len()).unwrap_or(0);
                (entry.file_name().to_string_lossy().into_owned(), size)
            })
            .collect();
        moved.sort();
        writeln!(out, "moved aside ({DAMAGED_DIR}/): {}", moved.len())?;
        for (name, size) in moved {
            writeln!(out, "  {name}  bytes {size}")?;
        }
    }
    Ok(Report {
        text: out,
        damaged: damaged_segments > 0,
    })
}
