//! The consumers' cursors on disk: `cursors.json` in the log's directory, replaced atomically
//! (written to a temporary file, synced, renamed, directory synced).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::durable_fs::replace_file;

/// The cursors file's name.
pub const CURSORS_FILE: &str = "cursors.json";

/// What `cursors.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorFile {
    /// Per consumer (`pipeline→sink`): every entry up to this sequence number is durable in
    /// the sink.
    pub consumers: BTreeMap<String, u64>,
    /// The highest sequence number ever committed when the file was written: new entries are
    /// numbered above it even if every segment is gone.
    pub next_seq_floor: u64,
}

impl CursorFile {
    /// Reads the file; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<CursorFile, String> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|error| format!("{} is not a cursors file: {error}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(CursorFile::default()),
            Err(error) => Err(format!("cannot read {}: {error}", path.display())),
        }
    }

    /// Replaces the file atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        replace_file(path, &bytes)
    }

    /// The highest sequence number the file names.
    pub fn highest(&self) -> u64 {
        self.consumers
            .values()
            .copied()
            .max()
            .unwrap_or(0)
            .max(self.next_seq_floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_survive_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CURSORS_FILE);
        assert_eq!(CursorFile::load(&path).unwrap(), CursorFile::default());
        let cursors = CursorFile {
            consumers: BTreeMap::from([("logs→archive".to_owned(), 42)]),
            next_seq_floor: 50,
        };
        cursors.save(&path).unwrap();
        assert_eq!(CursorFile::load(&path).unwrap(), cursors);
        assert_eq!(cursors.highest(), 50);
        std::fs::write(&path, b"{ nonsense").unwrap();
        assert!(
            CursorFile::load(&path)
                .unwrap_err()
                .contains("not a cursors file")
        );
    }
}
