//! lossyfs: a FUSE filesystem for power-loss tests that keeps what was synced apart from what
//! was merely written, and forgets the latter on command ([`LossyFs::drop_unsynced`]).
//!
//! Everything passes through to a backing directory (`<backing>/live`), so a program on the
//! mount sees an ordinary filesystem. Beside it, the [`Model`] keeps the durable state, the one a
//! power loss would leave:
//! - a file's durable content is its content as of its last `fsync`/`fdatasync` (or, for a file
//!   created on the mount, empty). It is kept as a rollback journal: the length at the last sync,
//!   and the old bytes of every write or truncation that changed something below that length
//!   (appends cost nothing). Rolling back replays the old bytes newest first and cuts the file to
//!   the synced length;
//! - a directory's durable entries are its entries (name → inode) as of its last `fsync`
//!   (`FSYNCDIR`). A create, mkdir, rename or unlink is durable only once the directory it
//!   changed is synced. An unlinked (or renamed-over) file that a durable entry still names is
//!   kept in `<backing>/attic` until no durable entry names it;
//! - what was in the backing directory before the mount is durable.
//!
//! [`LossyFs::drop_unsynced`] (to be called when no file on the mount is open, e.g. after the
//! program was killed with SIGKILL) rolls every file back and rebuilds the tree from the durable
//! entries, starting at the root: files and directories not reachable that way vanish, an
//! unsynced unlink or rename is undone, a file renamed-over comes back from the attic.
//!
//! Limits of the model (none matters to a program that syncs the way POSIX asks):
//! - it is stricter than ext4/xfs in one way: `fsync` of a new file does not make its name
//!   durable (those journal the name with it; POSIX does not promise it), and a directory not
//!   synced into its parent vanishes with everything in it;
//! - it is kinder than a disk: a write is all or nothing (no torn sectors), and nothing is
//!   reordered within the unsynced part — the unsynced part is dropped whole;
//! - metadata other than size (mode, owner, times) is not rolled back; a directory rebuilt from
//!   durable entries gets default permissions;
//! - a file moved to another directory with only one of the two directories synced would be
//!   durable under two names; that is refused (`drop_unsynced` fails) rather than modelled;
//! - `statfs` reports a fixed 64 GiB, all free;
//! - no hard links, symlinks, special files, xattrs or `rmdir` (refused with `ENOSYS`/`EPERM`);
//! - the page cache is bypassed (`FOPEN_DIRECT_IO`, zero TTLs) so the kernel never shows stale
//!   data after a rollback; `mmap` of a file on the mount is therefore refused by the kernel.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation,
    INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
    WriteFlags,
};

/// The inode number of the mount's root.
const ROOT: u64 = 1;

/// How long the kernel may cache an entry or attributes: not at all, so a rollback is seen.
const NO_CACHE: Duration = Duration::ZERO;

/// Longest wait in [`LossyFs::drop_unsynced`] for the kernel to release the files of a killed
/// process (it sends `RELEASE` asynchronously after the process is gone).
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// What an inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    File,
    Directory,
}

/// Where an inode's backing file is now.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Location {
    /// `name` in the directory `parent`.
    Live { parent: u64, name: OsString },
    /// Unlinked but still named by a durable entry: `<backing>/attic/<ino>`.
    Attic,
}

/// One inode of the mount.
#[derive(Debug)]
struct Node {
    kind: Kind,
    location: Location,
    /// Directories: the entries now.
    entries: BTreeMap<OsString, u64>,
    /// Directories: the entries as of the last directory sync.
    durable_entries: BTreeMap<OsString, u64>,
    /// Files: the length as of the last sync.
    durable_len: u64,
    /// Files: `(offset, old bytes)` of every change below `durable_len` since, oldest first.
    undo: Vec<(u64, Vec<u8>)>,
}

impl Node {
    fn new(kind: Kind, location: Location, durable_len: u64) -> Node {
        Node {
            kind,
            location,
            entries: BTreeMap::new(),
            durable_entries: BTreeMap::new(),
            durable_len,
            undo: Vec::new(),
        }
    }
}

/// What one [`Model::drop_unsynced`] threw away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Bytes written (or cut) since the last sync of their file, in files that stay.
    pub bytes: u64,
    /// Directory entries not synced: a name added or removed counts one, a rename two.
    pub entries: u64,
}

/// An open file of the mount.
#[derive(Debug)]
struct Handle {
    ino: u64,
    file: File,
    append: bool,
}

/// The state machine behind the mount: the live tree in `<backing>/live`, the durable state
/// beside it (see the module doc). Usable without FUSE, which is how its tests drive it.
#[derive(Debug)]
pub struct Model {
    live: PathBuf,
    attic: PathBuf,
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    handles: HashMap<u64, Handle>,
    next_handle: u64,
}

/// An `io::Error` from an errno.
fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl Model {
    /// A model over `backing` (created when missing): what is already in `backing/live` is
    /// durable.
    pub fn new(backing: &Path) -> io::Result<Model> {
        let live = backing.join("live");
        let attic = backing.join("attic");
        std::fs::create_dir_all(&live)?;
        std::fs::create_dir_all(&attic)?;
        let mut model = Model {
            live,
            attic,
            nodes: HashMap::new(),
            next_ino: ROOT + 1,
            handles: HashMap::new(),
            next_handle: 1,
        };
        model.nodes.insert(
            ROOT,
            Node::new(
                Kind::Directory,
                Location::Live {
                    parent: ROOT,
                    name: OsString::new(),
                },
                0,
            ),
        );
        model.adopt(ROOT)?;
        Ok(model)
    }

    /// The live directory the mount shows.
    pub fn live_dir(&self) -> &Path {
        &self.live
    }

    /// Registers what is in the directory `ino` as durable, recursively.
    fn adopt(&mut self, ino: u64) -> io::Result<()> {
        for entry in std::fs::read_dir(self.backing_path(ino)?)? {
            let entry = entry?;
            let metadata = entry.metadata()?;
            let kind = if metadata.is_dir() {
                Kind::Directory
            } else if metadata.is_file() {
                Kind::File
            } else {
                continue;
            };
            let child = self.insert(
                kind,
                Location::Live {
                    parent: ino,
                    name: entry.file_name(),
                },
                metadata.len(),
            );
            let node = self.node_mut(ino)?;
            node.entries.insert(entry.file_name(), child);
            node.durable_entries.insert(entry.file_name(), child);
            if kind == Kind::Directory {
                self.adopt(child)?;
            }
        }
        Ok(())
    }

    fn insert(&mut self, kind: Kind, location: Location, durable_len: u64) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes
            .insert(ino, Node::new(kind, location, durable_len));
        ino
    }

    fn node(&self, ino: u64) -> io::Result<&Node> {
        self.nodes.get(&ino).ok_or_else(|| errno(libc::ENOENT))
    }

    fn node_mut(&mut self, ino: u64) -> io::Result<&mut Node> {
        self.nodes.get_mut(&ino).ok_or_else(|| errno(libc::ENOENT))
    }

    fn directory(&self, ino: u64) -> io::Result<&Node> {
        let node = self.node(ino)?;
        if node.kind != Kind::Directory {
            return Err(errno(libc::ENOTDIR));
        }
        Ok(node)
    }

    /// The backing path of `ino` now.
    pub fn backing_path(&self, ino: u64) -> io::Result<PathBuf> {
        if ino == ROOT {
            return Ok(self.live.clone());
        }
        match &self.node(ino)?.location {
            Location::Live { parent, name } => Ok(self.backing_path(*parent)?.join(name)),
            Location::Attic => Ok(self.attic.join(ino.to_string())),
        }
    }

    /// The inode named `name` in the directory `parent`.
    pub fn lookup(&self, parent: u64, name: &OsStr) -> io::Result<u64> {
        self.directory(parent)?
            .entries
            .get(name)
            .copied()
            .ok_or_else(|| errno(libc::ENOENT))
    }

    /// The attributes of `ino`.
    pub fn attributes(&self, ino: u64) -> io::Result<FileAttr> {
        let metadata = std::fs::symlink_metadata(self.backing_path(ino)?)?;
        let time = |seconds: i64, nanoseconds: i64| {
            UNIX_EPOCH + Duration::new(seconds.max(0) as u64, nanoseconds.max(0) as u32)
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size: metadata.len(),
            blocks: metadata.blocks(),
            atime: time(metadata.atime(), metadata.atime_nsec()),
            mtime: time(metadata.mtime(), metadata.mtime_nsec()),
            ctime: time(metadata.ctime(), metadata.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind: match self.node(ino)?.kind {
                Kind::File => FileType::RegularFile,
                Kind::Directory => FileType::Directory,
            },
            perm: (metadata.mode() & 0o7777) as u16,
            nlink: metadata.nlink() as u32,
            uid: metadata.uid(),
            gid: metadata.gid(),
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn check_new_name(&self, parent: u64, name: &OsStr) -> io::Result<()> {
        if self.directory(parent)?.entries.contains_key(name) {
            return Err(errno(libc::EEXIST));
        }
        Ok(())
    }

    /// Creates the file `name` in `parent` (not durable until `parent` is synced) and opens it.
    /// Returns the inode and the handle.
    pub fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> io::Result<(u64, u64)> {
        self.check_new_name(parent, name)?;
        let path = self.backing_path(parent)?.join(name);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)?;
        let ino = self.insert(
            Kind::File,
            Location::Live {
                parent,
                name: name.to_owned(),
            },
            0,
        );
        self.node_mut(parent)?.entries.insert(name.to_owned(), ino);
        let handle = self.open(ino, flags)?;
        Ok((ino, handle))
    }

    /// Creates the directory `name` in `parent` (not durable until `parent` is synced).
    pub fn mkdir(&mut self, parent: u64, name: &OsStr, mode: u32) -> io::Result<u64> {
        self.check_new_name(parent, name)?;
        let path = self.backing_path(parent)?.join(name);
        std::fs::DirBuilder::new().mode(mode).create(&path)?;
        let ino = self.insert(
            Kind::Directory,
            Location::Live {
                parent,
                name: name.to_owned(),
            },
            0,
        );
        self.node_mut(parent)?.entries.insert(name.to_owned(), ino);
        Ok(ino)
    }

    /// Opens the file `ino` with the `open(2)` flags `flags`; returns the handle.
    pub fn open(&mut self, ino: u64, flags: i32) -> io::Result<u64> {
        if self.node(ino)?.kind != Kind::File {
            return Err(errno(libc::EISDIR));
        }
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        let append = flags & libc::O_APPEND != 0;
        // Always readable: a write below the synced length reads the old bytes first.
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .append(append)
            .open(self.backing_path(ino)?)?;
        let handle = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(handle, Handle { ino, file, append });
        if flags & libc::O_TRUNC != 0 && writable {
            self.truncate(ino, 0)?;
        }
        Ok(handle)
    }

    fn handle(&self, handle: u64) -> io::Result<&Handle> {
        self.handles.get(&handle).ok_or_else(|| errno(libc::EBADF))
    }

    /// Closes a handle.
    pub fn release(&mut self, handle: u64) {
        self.handles.remove(&handle);
        self.collect_attic();
    }

    /// Open handles.
    pub fn open_handles(&self) -> usize {
        self.handles.len()
    }

    /// Reads up to `size` bytes at `offset`.
    pub fn read(&self, handle: u64, offset: u64, size: usize) -> io::Result<Vec<u8>> {
        let file = &self.handle(handle)?.file;
        let mut buffer = vec![0; size];
        let mut filled = 0;
        while filled < size {
            match file.read_at(&mut buffer[filled..], offset + filled as u64)? {
                0 => break,
                read => filled += read,
            }
        }
        buffer.truncate(filled);
        Ok(buffer)
    }

    /// Keeps the old bytes of `[offset, offset + len)` that lie below the synced length.
    fn save_old_bytes(&mut self, ino: u64, file: &File, offset: u64, len: u64) -> io::Result<()> {
        let node = self.node_mut(ino)?;
        let end = (offset + len).min(node.durable_len);
        if offset >= end {
            return Ok(());
        }
        let mut old = vec![0; (end - offset) as usize];
        let mut filled = 0;
        while filled < old.len() {
            match file.read_at(&mut old[filled..], offset + filled as u64)? {
                0 => break,
                read => filled += read,
            }
        }
        // Bytes past the end now were cut by a truncation, whose own record restores them.
        old.truncate(filled);
        node.undo.push((offset, old));
        Ok(())
    }

    /// Writes `data` at `offset` (at the end for a handle opened with `O_APPEND`).
    pub fn write(&mut self, handle: u64, offset: u64, data: &[u8]) -> io::Result<usize> {
        let Handle { ino, file, append } = self.handle(handle)?;
        let (ino, append) = (*ino, *append);
        let file = file.try_clone()?;
        let offset = if append {
            file.metadata()?.len()
        } else {
            offset
        };
        self.save_old_bytes(ino, &file, offset, data.len() as u64)?;
        // With O_APPEND, Linux appends whatever the offset.
        file.write_all_at(data, offset)?;
        Ok(data.len())
    }

    /// Sets the length of `ino`.
    pub fn truncate(&mut self, ino: u64, len: u64) -> io::Result<()> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.backing_path(ino)?)?;
        let current = file.metadata()?.len();
        if len < current {
            self.save_old_bytes(ino, &file, len, current - len)?;
        }
        file.set_len(len)
    }

    /// `fsync`/`fdatasync` of a file: its content now is durable.
    pub fn sync_file(&mut self, ino: u64) -> io::Result<()> {
        let len = std::fs::metadata(self.backing_path(ino)?)?.len();
        let node = self.node_mut(ino)?;
        if node.kind == Kind::File {
            node.durable_len = len;
            node.undo.clear();
        }
        Ok(())
    }

    /// `fsync` of a directory: its entries now are durable.
    pub fn sync_directory(&mut self, ino: u64) -> io::Result<()> {
        let node = self.node_mut(ino)?;
        if node.kind == Kind::Directory {
            node.durable_entries = node.entries.clone();
        }
        self.collect_attic();
        Ok(())
    }

    /// The names in the directory `ino`, with their inodes and kinds.
    pub fn list(&self, ino: u64) -> io::Result<Vec<(OsString, u64, FileType)>> {
        Ok(self
            .directory(ino)?
            .entries
            .iter()
            .map(|(name, &child)| {
                let kind = match self.nodes.get(&child).map(|node| node.kind) {
                    Some(Kind::Directory) => FileType::Directory,
                    _ => FileType::RegularFile,
                };
                (name.clone(), child, kind)
            })
            .collect())
    }

    /// Whether a durable entry names `ino`.
    fn durably_named(&self, ino: u64) -> bool {
        self.nodes
            .values()
            .any(|node| node.durable_entries.values().any(|&child| child == ino))
    }

    /// Takes the entry `name` out of `parent`; the file goes to the attic (until no durable
    /// entry names it and nothing has it open).
    pub fn unlink(&mut self, parent: u64, name: &OsStr) -> io::Result<()> {
        let ino = self.lookup(parent, name)?;
        if self.node(ino)?.kind == Kind::Directory {
            return Err(errno(libc::EISDIR));
        }
        std::fs::rename(self.backing_path(ino)?, self.attic.join(ino.to_string()))?;
        self.node_mut(parent)?.entries.remove(name);
        self.node_mut(ino)?.location = Location::Attic;
        self.collect_attic();
        Ok(())
    }

    /// Renames `parent/name` to `new_parent/new_name`, replacing a file there.
    pub fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
    ) -> io::Result<()> {
        let ino = self.lookup(parent, name)?;
        self.directory(new_parent)?;
        if let Ok(replaced) = self.lookup(new_parent, new_name) {
            if replaced == ino {
                return Ok(());
            }
            if self.node(replaced)?.kind == Kind::Directory {
                return Err(errno(libc::EISDIR));
            }
            self.unlink(new_parent, new_name)?;
        }
        std::fs::rename(
            self.backing_path(ino)?,
            self.backing_path(new_parent)?.join(new_name),
        )?;
        self.node_mut(parent)?.entries.remove(name);
        self.node_mut(new_parent)?
            .entries
            .insert(new_name.to_owned(), ino);
        self.node_mut(ino)?.location = Location::Live {
            parent: new_parent,
            name: new_name.to_owned(),
        };
        Ok(())
    }

    /// Deletes attic files that no durable entry names and nothing has open.
    fn collect_attic(&mut self) {
        let open: HashSet<u64> = self.handles.values().map(|handle| handle.ino).collect();
        let gone: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(ino, node)| node.location == Location::Attic && !open.contains(ino))
            .map(|(&ino, _)| ino)
            .filter(|&ino| !self.durably_named(ino))
            .collect();
        for ino in gone {
            let _ = std::fs::remove_file(self.attic.join(ino.to_string()));
            self.nodes.remove(&ino);
        }
    }

    /// The power loss: every file back to its synced content, every directory back to its
    /// synced entries (see the module doc). Fails when a file is open.
    pub fn drop_unsynced(&mut self) -> io::Result<Dropped> {
        if !self.handles.is_empty() {
            return Err(io::Error::other(format!(
                "{} files are open on the mount",
                self.handles.len()
            )));
        }
        // Where each inode goes: walk the durable entries from the root.
        let mut target: HashMap<u64, (u64, OsString)> = HashMap::new();
        let mut queue = VecDeque::from([ROOT]);
        while let Some(directory) = queue.pop_front() {
            for (name, &child) in &self.node(directory)?.durable_entries {
                if target.insert(child, (directory, name.clone())).is_some() {
                    return Err(io::Error::other(format!(
                        "inode {child} is durable under two names (a move between directories \
                         synced on one side only): not modelled"
                    )));
                }
                if self.node(child)?.kind == Kind::Directory {
                    queue.push_back(child);
                }
            }
        }
        let old_paths = self
            .nodes
            .keys()
            .map(|&ino| Ok((ino, self.backing_path(ino)?)))
            .collect::<io::Result<HashMap<u64, PathBuf>>>()?;
        let mut dropped = Dropped::default();
        // Files back to their synced content.
        for (ino, node) in &mut self.nodes {
            if node.kind == Kind::File && target.contains_key(ino) {
                dropped.bytes += roll_back(&old_paths[ino], node)?;
            }
            let differ = |one: &BTreeMap<OsString, u64>, other: &BTreeMap<OsString, u64>| {
                one.iter()
                    .filter(|(name, ino)| other.get(*name) != Some(*ino))
                    .count() as u64
            };
            dropped.entries += differ(&node.entries, &node.durable_entries)
                + differ(&node.durable_entries, &node.entries);
        }
        // The tree of durable entries, built beside the live one (parents before children),
        // then put in its place; what it leaves behind was never durable.
        let next = self.live.with_file_name("next");
        if next.exists() {
            std::fs::remove_dir_all(&next)?;
        }
        std::fs::create_dir(&next)?;
        let mut new_paths = HashMap::from([(ROOT, next.clone())]);
        let mut queue = VecDeque::from([ROOT]);
        while let Some(directory) = queue.pop_front() {
            for (name, &child) in &self.node(directory)?.durable_entries {
                let path = new_paths[&directory].join(name);
                if self.node(child)?.kind == Kind::Directory {
                    std::fs::create_dir(&path)?;
                    queue.push_back(child);
                } else {
                    std::fs::rename(&old_paths[&child], &path)?;
                }
                new_paths.insert(child, path);
            }
        }
        std::fs::remove_dir_all(&self.live)?;
        std::fs::remove_dir_all(&self.attic)?;
        std::fs::rename(&next, &self.live)?;
        std::fs::create_dir(&self.attic)?;
        self.nodes
            .retain(|ino, _| *ino == ROOT || target.contains_key(ino));
        for (ino, node) in &mut self.nodes {
            if let Some((parent, name)) = target.remove(ino) {
                node.location = Location::Live { parent, name };
            }
            node.entries = node.durable_entries.clone();
        }
        Ok(dropped)
    }
}

/// Restores the synced content of the file at `path`: old bytes newest first, synced length.
/// Returns the bytes that differed.
fn roll_back(path: &Path, node: &mut Node) -> io::Result<u64> {
    let file = OpenOptions::new().write(true).open(path)?;
    let mut bytes = file.metadata()?.len().saturating_sub(node.durable_len);
    for (offset, old) in node.undo.drain(..).rev() {
        file.write_all_at(&old, offset)?;
        bytes += old.len() as u64;
    }
    file.set_len(node.durable_len)?;
    Ok(bytes)
}

/// A [`Model`] mounted with FUSE, served from a background thread; unmounted on drop.
pub struct LossyFs {
    model: Arc<Mutex<Model>>,
    mountpoint: PathBuf,
    session: Option<BackgroundSession>,
}

impl LossyFs {
    /// Mounts a lossyfs over `backing` (its `live` directory is what the mount shows) on
    /// `mountpoint`, an empty directory. Needs `/dev/fuse` and root (the mount syscall) or
    /// `fusermount3`.
    pub fn mount(backing: &Path, mountpoint: &Path) -> io::Result<LossyFs> {
        let model = Arc::new(Mutex::new(Model::new(backing)?));
        let mut config = Config::default();
        config.mount_options = vec![MountOption::FSName("lossyfs".to_owned())];
        let session = fuser::spawn_mount(
            LossyFilesystem {
                model: model.clone(),
            },
            mountpoint,
            &config,
        )?;
        Ok(LossyFs {
            model,
            mountpoint: mountpoint.to_path_buf(),
            session: Some(session),
        })
    }

    /// The power loss (see the module doc): waits for the kernel to release the files of a
    /// killed process, then drops everything not synced. Fails if files stay open.
    pub fn drop_unsynced(&self) -> io::Result<Dropped> {
        let started = Instant::now();
        loop {
            let mut model = lock(&self.model);
            if model.open_handles() == 0 || started.elapsed() > RELEASE_WAIT {
                return model.drop_unsynced();
            }
            drop(model);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for LossyFs {
    fn drop(&mut self) {
        if let Some(session) = self.session.take()
            && let Err(error) = session.umount_and_join()
        {
            eprintln!(
                "lossyfs: unmounting {} failed: {error}",
                self.mountpoint.display()
            );
        }
    }
}

fn lock(model: &Mutex<Model>) -> MutexGuard<'_, Model> {
    model.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// The FUSE face of a [`Model`].
struct LossyFilesystem {
    model: Arc<Mutex<Model>>,
}

impl LossyFilesystem {
    fn model(&self) -> MutexGuard<'_, Model> {
        lock(&self.model)
    }

    fn reply_entry(model: &Model, ino: io::Result<u64>, reply: ReplyEntry) {
        match ino.and_then(|ino| model.attributes(ino)) {
            Ok(attributes) => reply.entry(&NO_CACHE, &attributes, Generation(0)),
            Err(error) => reply.error(Errno::from(error)),
        }
    }
}

fn reply_empty(result: io::Result<()>, reply: ReplyEmpty) {
    match result {
        Ok(()) => reply.ok(),
        Err(error) => reply.error(Errno::from(error)),
    }
}

impl fuser::Filesystem for LossyFilesystem {
    fn lookup(&self, _request: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let model = self.model();
        let ino = model.lookup(parent.0, name);
        Self::reply_entry(&model, ino, reply);
    }

    fn getattr(&self, _request: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.model().attributes(ino.0) {
            Ok(attributes) => reply.attr(&NO_CACHE, &attributes),
            Err(error) => reply.error(Errno::from(error)),
        }
    }

    fn setattr(
        &self,
        _request: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut model = self.model();
        let result = (|| {
            if let Some(size) = size {
                model.truncate(ino.0, size)?;
            }
            if let Some(mode) = mode {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(
                    model.backing_path(ino.0)?,
                    std::fs::Permissions::from_mode(mode & 0o7777),
                )?;
            }
            model.attributes(ino.0)
        })();
        match result {
            Ok(attributes) => reply.attr(&NO_CACHE, &attributes),
            Err(error) => reply.error(Errno::from(error)),
        }
    }

    fn mkdir(
        &self,
        _request: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut model = self.model();
        let ino = model.mkdir(parent.0, name, mode & !umask);
        Self::reply_entry(&model, ino, reply);
    }

    fn unlink(&self, _request: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(self.model().unlink(parent.0, name), reply);
    }

    fn rename(
        &self,
        _request: &Request,
        parent: INodeNo,
        name: &OsStr,
        new_parent: INodeNo,
        new_name: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            return reply.error(Errno::from(errno(libc::EINVAL)));
        }
        reply_empty(
            self.model().rename(parent.0, name, new_parent.0, new_name),
            reply,
        );
    }

    fn open(&self, _request: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.model().open(ino.0, flags.0) {
            Ok(handle) => reply.opened(FileHandle(handle), FopenFlags::FOPEN_DIRECT_IO),
            Err(error) => reply.error(Errno::from(error)),
        }
    }

    fn create(
        &self,
        _request: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut model = self.model();
        let created = model
            .create(parent.0, name, mode & !umask, flags)
            .and_then(|(ino, handle)| Ok((model.attributes(ino)?, handle)));
        match created {
            Ok((attributes, handle)) => reply.created(
                &NO_CACHE,
                &attributes,
                Generation(0),
                FileHandle(handle),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(error) => reply.error(Errno::from(error)),
        }
    }

    fn read(
        &self,
        _request: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.model().read(fh.0, offset, size as usize) {
            Ok(data) => reply.data(&data),
            Err(error) => reply.error(Errno::from(error)),
        }
    }

    fn write(
        &self,
        _request: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.model().write(fh.0, offset, data) {
            Ok(written) => reply.written(written as u32),
            Err(error) => reply.error(Errno::from(error)),
        }
    }

    fn flush(
        &self,
        _request: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _request: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.model().release(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _request: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(self.model().sync_file(ino.0), reply);
    }

    fn opendir(&self, _request: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.model().directory(ino.0) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(error) => reply.error(Errno::from(error)),
        }
    }

    fn readdir(
        &self,
        _request: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let model = self.model();
        let entries = match model.list(ino.0) {
            Ok(entries) => entries,
            Err(error) => return reply.error(Errno::from(error)),
        };
        let parent = match model.node(ino.0).map(|node| &node.location) {
            Ok(Location::Live { parent, .. }) => *parent,
            _ => ROOT,
        };
        let dots = [
            (OsString::from("."), ino.0, FileType::Directory),
            (OsString::from(".."), parent, FileType::Directory),
        ];
        for (index, (name, child, kind)) in dots
            .into_iter()
            .chain(entries)
            .enumerate()
            .skip(offset as usize)
        {
            if reply.add(INodeNo(child), index as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _request: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _request: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(self.model().sync_directory(ino.0), reply);
    }

    fn statfs(&self, _request: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // A fixed 64 GiB, all free: the model keeps no quota.
        let blocks = 16 << 20;
        reply.statfs(blocks, blocks, blocks, 1 << 20, 1 << 20, 4096, 255, 4096);
    }
}

/// The message of a failed mount, naming the fix.
pub fn mount_failure(error: &io::Error) -> String {
    format!(
        "mounting the lossyfs FUSE test filesystem failed: {error}. The power-loss test needs \
         /dev/fuse (`modprobe fuse`; in a container, `--device /dev/fuse --cap-add SYS_ADMIN`) \
         and either root (the mount syscall) or the setuid `fusermount3` helper \
         (Debian: `apt-get install fuse3`)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RW: i32 = libc::O_RDWR;

    fn name(text: &str) -> &OsStr {
        OsStr::new(text)
    }

    fn content(model: &Model, path: &str) -> Option<String> {
        std::fs::read_to_string(model.live_dir().join(path)).ok()
    }

    /// A file `f` in the root, created, named durably, with `text` synced; handle closed.
    fn synced_file(model: &mut Model, file: &str, text: &str) -> u64 {
        let (ino, handle) = model.create(ROOT, name(file), 0o644, RW).unwrap();
        model.write(handle, 0, text.as_bytes()).unwrap();
        model.sync_file(ino).unwrap();
        model.sync_directory(ROOT).unwrap();
        model.release(handle);
        ino
    }

    #[test]
    fn unsynced_writes_are_dropped_and_synced_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::new(dir.path()).unwrap();
        let ino = synced_file(&mut model, "f", "abc");
        let handle = model.open(ino, RW | libc::O_APPEND).unwrap();
        model.write(handle, 0, b"def").unwrap();
        assert_eq!(content(&model, "f").as_deref(), Some("abcdef"));
        model.release(handle);
        let dropped = model.drop_unsynced().unwrap();
        assert_eq!(
            dropped,
            Dropped {
                bytes: 3,
                entries: 0
            }
        );
        assert_eq!(content(&model, "f").as_deref(), Some("abc"));

        let handle = model.open(ino, RW).unwrap();
        model.write(handle, 3, b"ghi").unwrap();
        model.sync_file(ino).unwrap();
        // Overwrites and truncations below the synced length are rolled back too.
        model.write(handle, 1, b"XYZW").unwrap();
        model.truncate(ino, 2).unwrap();
        model.write(handle, 4, b"__").unwrap();
        model.release(handle);
        model.drop_unsynced().unwrap();
        assert_eq!(content(&model, "f").as_deref(), Some("abcghi"));
    }

    #[test]
    fn a_name_is_durable_only_once_its_directory_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::new(dir.path()).unwrap();
        let (ino, handle) = model.create(ROOT, name("new"), 0o644, RW).unwrap();
        model.write(handle, 0, b"data").unwrap();
        model.sync_file(ino).unwrap();
        let sub = model.mkdir(ROOT, name("sub"), 0o755).unwrap();
        let (_, inner) = model.create(sub, name("inner"), 0o644, RW).unwrap();
        model.sync_directory(sub).unwrap();
        model.release(handle);
        model.release(inner);
        model.drop_unsynced().unwrap();
        assert_eq!(content(&model, "new"), None);
        assert!(!model.live_dir().join("sub").exists());
        assert!(model.lookup(ROOT, name("new")).is_err());

        // Synced into its directory but its content never synced: there, empty.
        let (_, handle) = model.create(ROOT, name("empty"), 0o644, RW).unwrap();
        model.write(handle, 0, b"lost").unwrap();
        model.sync_directory(ROOT).unwrap();
        model.release(handle);
        model.drop_unsynced().unwrap();
        assert_eq!(content(&model, "empty").as_deref(), Some(""));
    }

    #[test]
    fn an_unsynced_rename_over_a_file_and_an_unsynced_unlink_are_undone() {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::new(dir.path()).unwrap();
        synced_file(&mut model, "cursors.json", "old");
        synced_file(&mut model, "segment", "records");
        // The cursors file's replacement: write a temporary, sync it, rename it over.
        let (ino, handle) = model.create(ROOT, name("cursors.tmp"), 0o644, RW).unwrap();
        model.write(handle, 0, b"new").unwrap();
        model.sync_file(ino).unwrap();
        model.release(handle);
        model
            .rename(ROOT, name("cursors.tmp"), ROOT, name("cursors.json"))
            .unwrap();
        model.unlink(ROOT, name("segment")).unwrap();
        assert_eq!(content(&model, "cursors.json").as_deref(), Some("new"));
        assert_eq!(content(&model, "segment"), None);
        // cursors.json names another inode, segment is gone: three entries differ.
        assert_eq!(model.drop_unsynced().unwrap().entries, 3);
        assert_eq!(content(&model, "cursors.json").as_deref(), Some("old"));
        assert_eq!(content(&model, "segment").as_deref(), Some("records"));
        assert_eq!(content(&model, "cursors.tmp"), None);

        // The same, then the directory synced: the new state is durable.
        let (ino, handle) = model.create(ROOT, name("cursors.tmp"), 0o644, RW).unwrap();
        model.write(handle, 0, b"new").unwrap();
        model.sync_file(ino).unwrap();
        model.release(handle);
        model
            .rename(ROOT, name("cursors.tmp"), ROOT, name("cursors.json"))
            .unwrap();
        model.unlink(ROOT, name("segment")).unwrap();
        model.sync_directory(ROOT).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("attic")).unwrap().count(),
            0
        );
        model.drop_unsynced().unwrap();
        assert_eq!(content(&model, "cursors.json").as_deref(), Some("new"));
        assert_eq!(content(&model, "segment"), None);
    }

    #[test]
    fn what_was_there_before_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("live/buffer")).unwrap();
        std::fs::write(dir.path().join("live/buffer/kept"), "kept").unwrap();
        let mut model = Model::new(dir.path()).unwrap();
        let buffer = model.lookup(ROOT, name("buffer")).unwrap();
        model
            .create(ROOT, name("lock"), 0o644, RW)
            .map(|(_, handle)| model.release(handle))
            .unwrap();
        model.unlink(buffer, name("kept")).unwrap();
        model.drop_unsynced().unwrap();
        assert_eq!(content(&model, "buffer/kept").as_deref(), Some("kept"));
        assert_eq!(content(&model, "lock"), None);
    }

    #[test]
    fn an_open_file_refuses_the_power_loss() {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::new(dir.path()).unwrap();
        let (_, _handle) = model.create(ROOT, name("open"), 0o644, RW).unwrap();
        assert!(model.drop_unsynced().is_err());
    }

    /// Through the kernel: `fsync`, `fdatasync` and a directory `fsync` reach the model.
    #[test]
    fn mounted_smoke_test() {
        let dir = tempfile::tempdir().unwrap();
        let mountpoint = dir.path().join("mnt");
        std::fs::create_dir(&mountpoint).unwrap();
        let fs = LossyFs::mount(&dir.path().join("backing"), &mountpoint)
            .unwrap_or_else(|error| panic!("{}", mount_failure(&error)));
        use std::io::Write as _;
        let durable = mountpoint.join("durable");
        let mut file = File::create(&durable).unwrap();
        file.write_all(b"synced").unwrap();
        file.sync_data().unwrap();
        File::open(&mountpoint).unwrap().sync_all().unwrap();
        file.write_all(b" unsynced").unwrap();
        drop(file);
        std::fs::write(mountpoint.join("never-named"), "x").unwrap();
        std::fs::create_dir(mountpoint.join("dir")).unwrap();
        assert_eq!(
            std::fs::read_to_string(&durable).unwrap(),
            "synced unsynced"
        );
        fs.drop_unsynced().unwrap();
        assert_eq!(std::fs::read_to_string(&durable).unwrap(), "synced");
        let names: Vec<_> = std::fs::read_dir(&mountpoint)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["durable"]);
        drop(fs);
        assert_eq!(
            std::fs::read_dir(&mountpoint).unwrap().count(),
            0,
            "unmounted"
        );
    }
}
