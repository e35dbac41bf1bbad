//! Segment files of the intake log: the on-disk format, and the scan that checks a segment on
//! start-up.
//!
//! A segment is named after the sequence number of its first record (`00000000000000000001.log`)
//! and holds a 16-byte header (`SLUICELG`, format version, reserved) followed by records:
//!
//! ```text
//! payload length u32 LE | crc32c u32 LE | sequence number u64 LE | payload
//! ```
//!
//! The checksum covers the sequence number and the payload. The payload is the receiver's name
//! (u16 LE length, UTF-8), the record count (u32 LE) and the batch (`model::codec`).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::Batch;
use crate::model::codec::{decode_batch, encode_batch};

/// First bytes of every segment.
pub const MAGIC: &[u8; 8] = b"SLUICELG";
/// Format version written in the header.
pub const VERSION: u32 = 1;
/// Size of the segment header.
pub const HEADER_BYTES: u64 = 16;
/// Size of a record's header (length, checksum, sequence number).
pub const RECORD_HEADER_BYTES: u64 = 16;
/// Largest payload a record may have: anything larger read from disk is damage.
pub const MAX_PAYLOAD_BYTES: u32 = 1 << 30;

/// The file name of the segment starting at `first_seq`.
pub fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.log")
}

/// The first sequence number a segment file name stands for.
pub fn first_seq_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 {
        return None;
    }
    digits.parse().ok()
}

/// The segment header bytes.
pub fn header() -> [u8; HEADER_BYTES as usize] {
    let mut header = [0u8; HEADER_BYTES as usize];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&VERSION.to_le_bytes());
    header
}

/// Where one record sits in its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Its sequence number.
    pub seq: u64,
    /// Offset of its record header in the file.
    pub offset: u64,
    /// Length of its payload.
    pub len: u32,
    /// Records (log records, points, spans, lines) its batch holds.
    pub records: u32,
}

impl IndexEntry {
    /// Offset just past the record.
    pub fn end(&self) -> u64 {
        self.offset + RECORD_HEADER_BYTES + u64::from(self.len)
    }
}

/// Encodes one record's payload: receiver name, record count, batch.
pub fn encode_payload(receiver: &str, batch: &Batch, out: &mut Vec<u8>) {
    let name = receiver.as_bytes();
    let name_len = u16::try_from(name.len()).expect("receiver names are short");
    out.extend_from_slice(&name_len.to_le_bytes());
    out.extend_from_slice(name);
    let records = u32::try_from(batch.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&records.to_le_bytes());
    encode_batch(batch, out);
}

/// A payload read back.
#[derive(Debug)]
pub struct Payload {
    /// The receiver the batch came from.
    pub receiver: Arc<str>,
    /// The batch.
    pub batch: Batch,
}

/// Decodes what [`encode_payload`] wrote.
pub fn decode_payload(bytes: &[u8]) -> Result<Payload, String> {
    let (name_len, rest) = bytes
        .split_first_chunk::<2>()
        .ok_or("payload shorter than its header")?;
    let name_len = u16::from_le_bytes(*name_len) as usize;
    if rest.len() < name_len + 4 {
        return Err("payload shorter than its header".into());
    }
    let receiver = std::str::from_utf8(&rest[..name_len])
        .map_err(|_| "receiver name is not UTF-8".to_string())?;
    let batch = decode_batch(&rest[name_len + 4..]).map_err(|error| error.to_string())?;
    Ok(Payload {
        receiver: receiver.into(),
        batch,
    })
}

/// The record count stored in a payload, without decoding the batch.
fn records_of(payload: &[u8]) -> u32 {
    let name_len = payload
        .first_chunk::<2>()
        .map(|len| u16::from_le_bytes(*len) as usize)
        .unwrap_or(0);
    payload
        .get(2 + name_len..6 + name_len)
        .map(|count| u32::from_le_bytes(count.try_into().expect("4 bytes")))
        .unwrap_or(0)
}

/// Checksum of a record: its sequence number and payload.
pub fn checksum(seq: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&seq.to_le_bytes()), payload)
}

/// Appends a whole record (header and payload) to `out`.
pub fn frame(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("payloads are under 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(seq, payload).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Reads and checks the payload of one indexed record.
pub fn read_payload(file: &File, entry: &IndexEntry) -> io::Result<Vec<u8>> {
    let mut record = vec![0u8; (RECORD_HEADER_BYTES + u64::from(entry.len)) as usize];
    file.read_exact_at(&mut record, entry.offset)?;
    let (header, payload) = record.split_at(RECORD_HEADER_BYTES as usize);
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    let seq = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    if seq != entry.seq || crc != checksum(seq, payload) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("record {} fails its checksum", entry.seq),
        ));
    }
    Ok(payload.to_vec())
}

/// What is wrong with a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The header is missing or not ours.
    BadHeader,
    /// The file ends inside a record, or its last bytes do not form a valid record, and no valid
    /// record follows: a write the process did not finish. Safe to cut at `at`.
    TornTail {
        /// Offset of the first byte that is not part of a valid record.
        at: u64,
    },
    /// Invalid bytes with valid records after them: damage of the medium or of a hand.
    Corrupt {
        /// Byte ranges holding no valid record.
        ranges: Vec<(u64, u64)>,
    },
}

/// What a segment holds.
#[derive(Debug)]
pub struct Scan {
    /// The valid records, in order.
    pub entries: Vec<IndexEntry>,
    /// The file's length.
    pub file_len: u64,
    /// What is wrong with it, if anything.
    pub damage: Option<Damage>,
}

/// Reads a whole segment and checks each record. `after` is the sequence number the previous
/// segment ended with: records must follow it in increasing order.
pub fn scan(path: &Path, after: u64) -> io::Result<Scan> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let file_len = bytes.len() as u64;
    if bytes.len() < HEADER_BYTES as usize
        || &bytes[..8] != MAGIC
        || u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) != VERSION
    {
        return Ok(Scan {
            entries: Vec::new(),
            file_len,
            damage: Some(Damage::BadHeader),
        });
    }
    let mut entries = Vec::new();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut offset = HEADER_BYTES as usize;
    let mut last_seq = after;
    while offset < bytes.len() {
        match record_at(&bytes, offset, last_seq) {
            Some(entry) => {
                offset = entry.end() as usize;
                last_seq = entry.seq;
                entries.push(entry);
            }
            None => {
                // Look for the next valid record: if there is one, this is corruption.
                let resume = (offset + 1..bytes.len())
                    .find(|&candidate| record_at(&bytes, candidate, last_seq).is_some());
                match resume {
                    Some(next) => {
                        ranges.push((offset as u64, next as u64));
                        offset = next;
                    }
                    None => {
                        let damage = if ranges.is_empty() {
                            Damage::TornTail { at: offset as u64 }
                        } else {
                            ranges.push((offset as u64, file_len));
                            Damage::Corrupt { ranges }
                        };
                        return Ok(Scan {
                            entries,
                            file_len,
                            damage: Some(damage),
                        });
                    }
                }
            }
        }
    }
    let damage = (!ranges.is_empty()).then_some(Damage::Corrupt { ranges });
    Ok(Scan {
        entries,
        file_len,
        damage,
    })
}

/// The valid record starting at `offset`, if there is one with a sequence number after `after`.
fn record_at(bytes: &[u8], offset: usize, after: u64) -> Option<IndexEntry> {
    let header = bytes.get(offset..offset + RECORD_HEADER_BYTES as usize)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?);
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let seq = u64::from_le_bytes(header[8..16].try_into().ok()?);
    if len > MAX_PAYLOAD_BYTES || seq <= after {
        return None;
    }
    let start = offset + RECORD_HEADER_BYTES as usize;
    let payload = bytes.get(start..start + len as usize)?;
    if checksum(seq, payload) != crc {
        return None;
    }
    Some(IndexEntry {
        seq,
        offset: offset as u64,
        len,
        records: records_of(payload),
    })
}

/// Segment files in `dir`, by first sequence number.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if let Some(first) = first_seq_of(&path) {
            segments.push((first, path));
        }
    }
    segments.sort();
    Ok(segments)
}

pub use crate::durable_fs::sync_directory;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LineBatch, StringColumn};

    fn lines(text: &str) -> Batch {
        let mut lines = StringColumn::default();
        lines.push(text);
        Batch::Lines(LineBatch {
            lines,
            ..LineBatch::default()
        })
    }

    fn segment_with(records: &[(u64, &str)]) -> Vec<u8> {
        let mut bytes = header().to_vec();
        for &(seq, text) in records {
            let mut payload = Vec::new();
            encode_payload("rx", &lines(text), &mut payload);
            frame(seq, &payload, &mut bytes);
        }
        bytes
    }

    fn scan_bytes(bytes: &[u8], after: u64) -> Scan {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(1));
        std::fs::write(&path, bytes).unwrap();
        scan(&path, after).unwrap()
    }

    #[test]
    fn a_clean_segment_scans_whole() {
        let bytes = segment_with(&[(1, "a"), (2, "b"), (3, "c")]);
        let scan = scan_bytes(&bytes, 0);
        assert_eq!(scan.damage, None);
        assert_eq!(
            scan.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(scan.entries.iter().all(|entry| entry.records == 1));
        assert_eq!(scan.entries[2].end(), bytes.len() as u64);
    }

    #[test]
    fn a_cut_inside_the_last_record_is_a_torn_tail() {
        let bytes = segment_with(&[(1, "a"), (2, "b"), (3, "c")]);
        let whole = scan_bytes(&bytes, 0);
        for cut in whole.entries[2].offset as usize + 1..bytes.len() {
            let scan = scan_bytes(&bytes[..cut], 0);
            assert_eq!(
                scan.damage,
                Some(Damage::TornTail {
                    at: whole.entries[2].offset
                }),
                "cut at {cut}"
            );
            assert_eq!(scan.entries.len(), 2);
        }
        // Zeros after the last record (a file extended but not written) are a torn tail too.
        let mut zeros = bytes.clone();
        zeros.extend_from_slice(&[0; 300]);
        let scan = scan_bytes(&zeros, 0);
        assert_eq!(
            scan.damage,
            Some(Damage::TornTail {
                at: bytes.len() as u64
            })
        );
        assert_eq!(scan.entries.len(), 3);
    }

    #[test]
    fn flipped_bytes_in_the_middle_are_corruption_and_the_rest_is_kept() {
        let bytes = segment_with(&[(1, "first"), (2, "second"), (3, "third")]);
        let whole = scan_bytes(&bytes, 0);
        let mut damaged = bytes.clone();
        let middle = whole.entries[1].offset as usize + 20;
        damaged[middle] ^= 0xff;
        let scan = scan_bytes(&damaged, 0);
        assert_eq!(
            scan.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 3]
        );
        assert_eq!(
            scan.damage,
            Some(Damage::Corrupt {
                ranges: vec![(whole.entries[1].offset, whole.entries[2].offset)]
            })
        );
    }

    #[test]
    fn a_foreign_file_has_a_bad_header() {
        let scan = scan_bytes(b"not a segment at all", 0);
        assert_eq!(scan.damage, Some(Damage::BadHeader));
    }

    #[test]
    fn payloads_round_trip_and_keep_their_count() {
        let batch = lines("hello");
        let mut payload = Vec::new();
        encode_payload("syslog", &batch, &mut payload);
        assert_eq!(records_of(&payload), 1);
        let decoded = decode_payload(&payload).unwrap();
        assert_eq!(&*decoded.receiver, "syslog");
        assert_eq!(decoded.batch, batch);
    }
}
