//! Filesystem steps that survive a power loss: a new directory or a new, renamed or removed
//! file name is durable only once its parent directory is synced.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Makes a directory's entries (new, renamed, removed names) durable.
pub fn sync_directory(directory: &Path) -> io::Result<()> {
    File::open(directory)?.sync_all()
}

/// Replaces the file at `path` with `bytes` atomically and durably: written to a temporary file
/// beside it, synced, renamed over it, and the directory synced.
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = File::create(&temporary)?;
    io::Write::write_all(&mut file, bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    sync_directory(path.parent().unwrap_or(Path::new(".")))
}

/// Creates `directory` and any missing parent, syncing each new entry into its parent.
pub fn create_dir_all_synced(directory: &Path) -> io::Result<()> {
    let mut missing: Vec<PathBuf> = Vec::new();
    let mut current = Some(directory);
    while let Some(path) = current
        && !path.as_os_str().is_empty()
        && !path.is_dir()
    {
        missing.push(path.to_path_buf());
        current = path.parent();
    }
    std::fs::create_dir_all(directory)?;
    for created in missing.iter().rev() {
        let parent = created
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        sync_directory(parent)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_directories_are_created() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b/c");
        create_dir_all_synced(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_all_synced(&deep).unwrap();
    }
}
