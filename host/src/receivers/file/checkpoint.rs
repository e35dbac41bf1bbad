//! The file receiver's checkpoint: for each followed file, its identity and the position up to
//! which its lines are in the intake. Written atomically (temporary file, fsync, rename, fsync of
//! the directory), so a crash leaves either the old checkpoint or the new one, never a mix.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How many leading bytes of a file its fingerprint covers at most.
pub const FINGERPRINT_BYTES: u64 = 256;

/// A file's first bytes (up to [`FINGERPRINT_BYTES`]), hashed: with the device and inode it
/// tells a file from a later one that reuses its inode, or from itself rewritten after a
/// truncation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// How many leading bytes are covered (fewer than the maximum while the file is short).
    pub length: u64,
    /// SHA-256 of those bytes.
    pub sha256: [u8; 32],
}

impl Fingerprint {
    /// The fingerprint of `file`'s first `min(size, FINGERPRINT_BYTES)` bytes.
    pub fn of(file: &File, size: u64) -> std::io::Result<Fingerprint> {
        let length = size.min(FINGERPRINT_BYTES);
        let mut head = vec![0u8; length as usize];
        read_exact_at(file, &mut head, 0)?;
        Ok(Fingerprint {
            length,
            sha256: Sha256::digest(&head).into(),
        })
    }

    /// True when `file` (of `size` bytes) still starts with the bytes this fingerprint covers.
    pub fn matches(&self, file: &File, size: u64) -> std::io::Result<bool> {
        if size < self.length {
            return Ok(false);
        }
        let mut head = vec![0u8; self.length as usize];
        read_exact_at(file, &mut head, 0)?;
        Ok(<[u8; 32]>::from(Sha256::digest(&head)) == self.sha256)
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buffer, offset)
}

/// One file's entry in the checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheckpoint {
    /// Where the file was found (for people reading the checkpoint; files are matched by
    /// identity).
    pub path: String,
    /// Device number.
    pub device: u64,
    /// Inode number.
    pub inode: u64,
    /// Bytes the fingerprint covers.
    pub fingerprint_length: u64,
    /// SHA-256 of those bytes, in hex.
    pub fingerprint_sha256: String,
    /// Byte offset just after the last line handed to the intake.
    pub offset: u64,
}

impl FileCheckpoint {
    /// The fingerprint this entry records, if its hex is well-formed.
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        let bytes = hex::decode(&self.fingerprint_sha256).ok()?;
        Some(Fingerprint {
            length: self.fingerprint_length,
            sha256: bytes.try_into().ok()?,
        })
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CheckpointDocument {
    version: u32,
    files: Vec<FileCheckpoint>,
}

const CHECKPOINT_VERSION: u32 = 1;

/// Where the checkpoint lives.
#[derive(Debug)]
pub struct CheckpointStore {
    path: PathBuf,
}

impl CheckpointStore {
    /// Opens the checkpoint at `path` (creating its directory), returning what it holds. A
    /// checkpoint that cannot be parsed is moved aside (`<path>.corrupt-<unix seconds>`) with a
    /// warning and the receiver starts as if it had none, rather than refusing to start.
    pub fn open(path: &Path) -> anyhow::Result<(CheckpointStore, Vec<FileCheckpoint>)> {
        if let Some(directory) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(directory).map_err(|error| {
                anyhow::anyhow!(
                    "cannot create the checkpoint directory {}: {error}",
                    directory.display()
                )
            })?;
        }
        let store = CheckpointStore {
            path: path.to_owned(),
        };
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok((store, Vec::new()));
            }
            Err(error) => {
                anyhow::bail!("cannot read the checkpoint {}: {error}", path.display())
            }
        };
        match serde_json::from_slice::<CheckpointDocument>(&text) {
            Ok(document) if document.version == CHECKPOINT_VERSION => Ok((store, document.files)),
            Ok(document) => anyhow::bail!(
                "the checkpoint {} has version {}, this gateway reads version {CHECKPOINT_VERSION}",
                path.display(),
                document.version
            ),
            Err(error) => {
                let seconds = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|elapsed| elapsed.as_secs())
                    .unwrap_or(0);
                let aside = PathBuf::from(format!("{}.corrupt-{seconds}", path.display()));
                std::fs::rename(path, &aside).map_err(|rename_error| {
                    anyhow::anyhow!(
                        "the checkpoint {} is corrupt ({error}) and cannot be moved aside: {rename_error}",
                        path.display()
                    )
                })?;
                tracing::warn!(
                    checkpoint = %path.display(),
                    moved_to = %aside.display(),
                    %error,
                    "corrupt checkpoint moved aside; files are read as never seen"
                );
                Ok((store, Vec::new()))
            }
        }
    }

    /// Replaces the checkpoint with `files`, durably.
    pub fn save(&self, files: &[FileCheckpoint]) -> std::io::Result<()> {
        let document = CheckpointDocument {
            version: CHECKPOINT_VERSION,
            files: files.to_vec(),
        };
        let bytes = serde_json::to_vec_pretty(&document).map_err(std::io::Error::other)?;
        let temporary = PathBuf::from(format!("{}.tmp", self.path.display()));
        {
            let mut file = File::create(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&temporary, &self.path)?;
        // The rename is durable only once the directory is.
        let directory = match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        File::open(directory)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64) -> FileCheckpoint {
        FileCheckpoint {
            path: "/var/log/app.log".into(),
            device: 1,
            inode: 2,
            fingerprint_length: 3,
            fingerprint_sha256: hex::encode([7u8; 32]),
            offset,
        }
    }

    #[test]
    fn saves_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/app.json");
        let (store, files) = CheckpointStore::open(&path).unwrap();
        assert!(files.is_empty());
        store.save(&[entry(10)]).unwrap();
        store.save(&[entry(20)]).unwrap();
        let (_, files) = CheckpointStore::open(&path).unwrap();
        assert_eq!(files, [entry(20)]);
        assert_eq!(files[0].fingerprint().unwrap().sha256, [7u8; 32]);
        assert!(!dir.path().join("nested/app.json.tmp").exists());
    }

    #[test]
    fn a_corrupt_checkpoint_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.json");
        std::fs::write(&path, b"{\"version\": 1, \"files\": [").unwrap();
        let (_, files) = CheckpointStore::open(&path).unwrap();
        assert!(files.is_empty());
        assert!(!path.exists());
        let moved = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(moved, 1);
    }

    #[test]
    fn a_fingerprint_tells_rewritten_files_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello\n").unwrap();
        let file = File::open(&path).unwrap();
        let fingerprint = Fingerprint::of(&file, 6).unwrap();
        assert_eq!(fingerprint.length, 6);
        assert!(fingerprint.matches(&file, 6).unwrap());
        std::fs::write(&path, b"HELLO\nmore\n").unwrap();
        assert!(!fingerprint.matches(&file, 11).unwrap());
        assert!(!fingerprint.matches(&file, 3).unwrap());
    }
}
