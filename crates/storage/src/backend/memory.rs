//! An in-memory file system that remembers what is durable, so that tests can crash it.
//!
//! Every file (inode) holds the bytes written to it and, separately, the bytes that a
//! sync made durable, plus the ranges written since the last sync. Every directory
//! holds its current entries, the entries a directory sync made durable, and the
//! changes since (creates, renames, removes, in order). A [`Crash`] builds a new file
//! system from that: only durable state by default, with variants that let part of the
//! unsynced state through, as a disk may have written it back before power went.
//!
//! This is stricter than ext4 with default options (whose journal commits directory
//! changes in order, and whose `auto_da_alloc` flushes a file renamed over another):
//! code that survives it relies only on what POSIX promises.
//!
//! A failed sync behaves as on Linux since 4.13: it reports the error once, and the
//! pages it failed to write are marked clean, so a later successful sync does not
//! write them: what was written before the failed sync is lost unless already durable.
//!
//! Faults ([`Faulty`](super::Faulty)) live in the shared state too, so that files opened
//! before a fault is armed see it.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use bytes::Bytes;

use super::{BackendFile, FileBackend};

/// How a [`MemoryBackend`] crashes: which unsynced state reaches the new file system.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Crash {
    /// Power loss: only what was synced survives (file bytes synced by a file sync,
    /// directory entries by a directory sync).
    DropUnsynced,
    /// Power loss while the last write was on its way to the disk: as
    /// [`DropUnsynced`](Self::DropUnsynced), but the file written last keeps its
    /// unsynced bytes up to `keep` (0.0 to 1.0) of the way from the first unsynced byte
    /// to its end.
    TearLastWrite {
        /// Fraction of the unsynced span kept.
        keep: f64,
    },
    /// Power loss after the disk wrote back part of the unsynced state: every file
    /// keeps its unsynced bytes up to a random point, every directory a random prefix
    /// of its unsynced changes (each directory's own order kept), chosen by `seed`.
    Partial {
        /// Seed of the choices.
        seed: u64,
    },
    /// The process died, not the machine: everything written survives, durable or not
    /// (what a `kill -9` leaves in the page cache).
    ProcessOnly,
}

/// An in-memory file system with crash semantics; see the module docs. Clones share
/// the same file system.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("MemoryBackend")
            .field("dirs", &s.dirs.len())
            .field("inodes", &s.inodes.len())
            .finish()
    }
}

/// A directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File(u64),
    Dir,
}

/// A change to a directory's entries, not yet durable.
#[derive(Debug, Clone)]
enum DirOp {
    Set(OsString, Node),
    Remove(OsString),
    Rename(OsString, OsString),
}

fn apply(entries: &mut BTreeMap<OsString, Node>, op: &DirOp) {
    match op {
        DirOp::Set(name, node) => {
            entries.insert(name.clone(), *node);
        }
        DirOp::Remove(name) => {
            entries.remove(name);
        }
        DirOp::Rename(from, to) => {
            if let Some(node) = entries.remove(from) {
                entries.insert(to.clone(), node);
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Dir {
    entries: BTreeMap<OsString, Node>,
    durable: BTreeMap<OsString, Node>,
    pending: Vec<DirOp>,
}

impl Dir {
    fn change(&mut self, op: DirOp) {
        apply(&mut self.entries, &op);
        self.pending.push(op);
    }

    /// The entries after a crash that wrote back the first `n` pending changes.
    fn after_crash(&self, n: usize) -> BTreeMap<OsString, Node> {
        let mut entries = self.durable.clone();
        for op in self.pending.iter().take(n) {
            apply(&mut entries, op);
        }
        entries
    }
}

#[derive(Debug, Clone)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// Byte ranges written since the last sync (successful or not).
    dirty: Vec<(u64, u64)>,
    modified: SystemTime,
}

impl Inode {
    fn new() -> Self {
        Self {
            data: Vec::new(),
            durable: Vec::new(),
            dirty: Vec::new(),
            modified: SystemTime::now(),
        }
    }

    fn mark_dirty(&mut self, start: u64, end: u64) {
        match self.dirty.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => self.dirty.push((start, end)),
        }
        self.modified = SystemTime::now();
    }

    fn write(&mut self, buf: &[u8], position: u64) -> io::Result<()> {
        let start = to_usize(position)?;
        let end = start
            .checked_add(buf.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        if let Some(dst) = self.data.get_mut(start..end) {
            dst.copy_from_slice(buf);
        }
        self.mark_dirty(position, position.saturating_add(buf.len() as u64));
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let old = self.data.len() as u64;
        self.data.resize(to_usize(len)?, 0);
        self.mark_dirty(old.min(len), old.max(len));
        Ok(())
    }

    /// A successful sync: the written ranges and the length become durable.
    fn sync(&mut self) {
        let content = self.content_up_to(u64::MAX);
        self.durable = content;
        self.dirty.clear();
    }

    /// The first unsynced byte, `None` when nothing was written since the last sync.
    fn first_dirty(&self) -> Option<u64> {
        self.dirty.iter().map(|r| r.0).min()
    }

    /// The file's bytes if the disk wrote back the unsynced ranges below `cut` (and the
    /// length as far as `cut` reaches) on top of the durable bytes.
    fn content_up_to(&self, cut: u64) -> Vec<u8> {
        if self.dirty.is_empty() {
            return self.durable.clone();
        }
        let data_len = self.data.len();
        let cut = usize::try_from(cut).unwrap_or(usize::MAX);
        let len = if cut >= data_len {
            data_len
        } else {
            self.durable.len().min(data_len).max(cut)
        };
        let mut out = self.durable.clone();
        out.resize(len, 0);
        for &(start, end) in &self.dirty {
            let start = usize::try_from(start).unwrap_or(usize::MAX);
            let end = usize::try_from(end).unwrap_or(usize::MAX).min(cut).min(len);
            if let (Some(dst), Some(src)) = (out.get_mut(start..end), self.data.get(start..end)) {
                dst.copy_from_slice(src);
            }
        }
        out
    }

    /// Content after a crash that cut the unsynced span at `fraction` of its length.
    fn torn(&self, fraction: f64) -> Vec<u8> {
        let Some(first) = self.first_dirty() else {
            return self.durable.clone();
        };
        let end = self.data.len() as u64;
        let span = end.saturating_sub(first);
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let keep = (span as f64 * fraction.clamp(0.0, 1.0)) as u64;
        self.content_up_to(first.saturating_add(keep))
    }

    /// An inode holding `content`, all of it durable.
    fn durable_copy(&self, content: Vec<u8>) -> Self {
        Self {
            durable: content.clone(),
            data: content,
            dirty: Vec::new(),
            modified: self.modified,
        }
    }
}

fn to_usize(v: u64) -> io::Result<usize> {
    usize::try_from(v).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Armed faults and the counters they fire on.
#[derive(Debug, Clone, Default)]
pub(super) struct Faults {
    /// Mutating operations so far (writes, cuts, creates, renames, removes, syncs).
    pub(super) mutations: u64,
    /// Syncs so far (failed ones included).
    pub(super) syncs: u64,
    /// The sync (by count) that fails.
    pub(super) fail_sync_at: Option<u64>,
    /// After this many mutations, every operation fails.
    pub(super) cut_after: Option<u64>,
    /// The power is cut.
    pub(super) cut: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Mutate,
    Sync,
}

/// A fault that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    PowerCut,
    SyncFailed,
}

impl From<Fault> for io::Error {
    fn from(f: Fault) -> Self {
        match f {
            Fault::PowerCut => io::Error::other("power cut (simulated)"),
            // `EIO`, as a failed `fsync` reports it.
            Fault::SyncFailed => io::Error::from_raw_os_error(5),
        }
    }
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

#[derive(Debug, Default)]
pub(super) struct State {
    inodes: BTreeMap<u64, Inode>,
    next_ino: u64,
    dirs: BTreeMap<PathBuf, Dir>,
    /// The inode written (or cut) last.
    last_written: Option<u64>,
    pub(super) faults: Faults,
}

/// `(parent, name)` of a path; `None` for a root (`/`, or the empty path).
fn split(path: &Path) -> Option<(&Path, &OsStr)> {
    Some((path.parent()?, path.file_name()?))
}

/// One step of splitmix64, for [`Crash::Partial`].
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl State {
    /// Counts the operation against the armed faults; `Err` when one fires.
    fn begin(&mut self, op: Op) -> Result<(), Fault> {
        if self.faults.cut {
            return Err(Fault::PowerCut);
        }
        if op == Op::Read {
            return Ok(());
        }
        if self
            .faults
            .cut_after
            .is_some_and(|n| self.faults.mutations >= n)
        {
            self.faults.cut = true;
            return Err(Fault::PowerCut);
        }
        self.faults.mutations = self.faults.mutations.saturating_add(1);
        if op == Op::Sync {
            self.faults.syncs = self.faults.syncs.saturating_add(1);
            if self.faults.fail_sync_at == Some(self.faults.syncs) {
                return Err(Fault::SyncFailed);
            }
        }
        Ok(())
    }

    fn is_dir(&self, path: &Path) -> bool {
        match split(path) {
            None => true,
            Some((parent, name)) => {
                self.is_dir(parent)
                    && self
                        .dirs
                        .get(parent)
                        .and_then(|d| d.entries.get(name))
                        .is_some_and(|n| *n == Node::Dir)
            }
        }
    }

    /// The directory holding `path` (which must exist) and the entry name.
    fn parent_mut<'a>(&mut self, path: &'a Path) -> io::Result<(&mut Dir, &'a OsStr)> {
        let (parent, name) =
            split(path).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        if !self.is_dir(parent) {
            return Err(not_found());
        }
        Ok((self.dirs.entry(parent.to_path_buf()).or_default(), name))
    }

    fn lookup(&self, path: &Path) -> io::Result<Node> {
        let Some((parent, name)) = split(path) else {
            return Ok(Node::Dir);
        };
        if !self.is_dir(parent) {
            return Err(not_found());
        }
        self.dirs
            .get(parent)
            .and_then(|d| d.entries.get(name))
            .copied()
            .ok_or_else(not_found)
    }

    fn lookup_file(&self, path: &Path) -> io::Result<u64> {
        match self.lookup(path)? {
            Node::File(ino) => Ok(ino),
            Node::Dir => Err(io::Error::from(io::ErrorKind::IsADirectory)),
        }
    }

    fn inode(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or_else(not_found)
    }

    fn create_new(&mut self, path: &Path) -> io::Result<u64> {
        let ino = self.next_ino;
        let (dir, name) = self.parent_mut(path)?;
        if dir.entries.contains_key(name) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        dir.change(DirOp::Set(name.to_os_string(), Node::File(ino)));
        self.next_ino = ino.saturating_add(1);
        self.inodes.insert(ino, Inode::new());
        Ok(ino)
    }

    fn remove_tree(&mut self, path: &Path) {
        let names: Vec<(OsString, Node)> = self
            .dirs
            .get(path)
            .map(|d| d.entries.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        for (name, node) in names {
            if node == Node::Dir {
                self.remove_tree(&path.join(&name));
            }
            if let Some(d) = self.dirs.get_mut(path) {
                d.change(DirOp::Remove(name));
            }
        }
    }

    /// The file system after a crash.
    fn crash(&self, how: Crash) -> Self {
        if how == Crash::ProcessOnly {
            return Self {
                inodes: self.inodes.clone(),
                next_ino: self.next_ino,
                dirs: self.dirs.clone(),
                last_written: self.last_written,
                faults: Faults::default(),
            };
        }
        let mut rng = match how {
            Crash::Partial { seed } => seed,
            _ => 0,
        };
        let entries: BTreeMap<&PathBuf, BTreeMap<OsString, Node>> = self
            .dirs
            .iter()
            .map(|(path, dir)| {
                let n = match how {
                    Crash::Partial { .. } => {
                        let choices = (dir.pending.len() as u64).saturating_add(1);
                        usize::try_from(next_random(&mut rng) % choices).unwrap_or(0)
                    }
                    _ => 0,
                };
                (path, dir.after_crash(n))
            })
            .collect();
        let mut out = Self {
            next_ino: self.next_ino,
            ..Self::default()
        };
        // Walk the surviving tree from the roots: an entry lives only if its directory
        // does.
        let mut live: Vec<&PathBuf> = entries
            .keys()
            .copied()
            .filter(|p| split(p).is_none())
            .collect();
        while let Some(path) = live.pop() {
            let Some(dir_entries) = entries.get(path) else {
                continue;
            };
            for (name, node) in dir_entries {
                match node {
                    Node::Dir => {
                        if let Some((child, _)) = entries.get_key_value(&path.join(name)) {
                            live.push(child);
                        }
                    }
                    Node::File(ino) => {
                        if out.inodes.contains_key(ino) {
                            continue;
                        }
                        let Some(inode) = self.inodes.get(ino) else {
                            continue;
                        };
                        let content = match how {
                            Crash::TearLastWrite { keep } if self.last_written == Some(*ino) => {
                                inode.torn(keep)
                            }
                            Crash::Partial { .. } => {
                                #[allow(clippy::cast_precision_loss)]
                                let fraction = next_random(&mut rng) as f64 / u64::MAX as f64;
                                inode.torn(fraction)
                            }
                            _ => inode.durable.clone(),
                        };
                        out.inodes.insert(*ino, inode.durable_copy(content));
                    }
                }
            }
            out.dirs.insert(
                path.clone(),
                Dir {
                    entries: dir_entries.clone(),
                    durable: dir_entries.clone(),
                    pending: Vec::new(),
                },
            );
        }
        out
    }
}

impl MemoryBackend {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// The backend as a shareable trait object (sharing this file system).
    pub fn shared(&self) -> Arc<dyn FileBackend> {
        Arc::new(self.clone())
    }

    /// A new file system holding what survives `how` (see [`Crash`]). This one is left
    /// as it is; handles opened on it keep working on it, not on the new one.
    pub fn crash(&self, how: Crash) -> Self {
        let crashed = self.lock().crash(how);
        Self {
            state: Arc::new(Mutex::new(crashed)),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock (a failed test) leaves consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn file(&self, ino: u64, writable: bool) -> Arc<dyn BackendFile> {
        Arc::new(MemoryFile {
            state: Arc::clone(&self.state),
            handle: Handle::File { ino, writable },
        })
    }
}

impl FileBackend for MemoryBackend {
    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn BackendFile>> {
        let mut s = self.lock();
        s.begin(Op::Read)?;
        let ino = s.lookup_file(path)?;
        Ok(self.file(ino, writable))
    }

    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn BackendFile>> {
        let mut s = self.lock();
        s.begin(Op::Mutate)?;
        let ino = s.create_new(path)?;
        Ok(self.file(ino, true))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn BackendFile>> {
        let mut s = self.lock();
        s.begin(Op::Mutate)?;
        let ino = match s.lookup_file(path) {
            Ok(ino) => {
                s.inode(ino)?.set_len(0)?;
                s.last_written = Some(ino);
                ino
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => s.create_new(path)?,
            Err(e) => return Err(e),
        };
        Ok(self.file(ino, true))
    }

    fn open_dir(&self, path: &Path) -> io::Result<Arc<dyn BackendFile>> {
        let mut s = self.lock();
        s.begin(Op::Read)?;
        if !s.is_dir(path) {
            return Err(not_found());
        }
        Ok(Arc::new(MemoryFile {
            state: Arc::clone(&self.state),
            handle: Handle::Dir(path.to_path_buf()),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.begin(Op::Mutate)?;
        let node = s.lookup_file(from).map(Node::File)?;
        let (to_parent, to_name) =
            split(to).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        if !s.is_dir(to_parent) {
            return Err(not_found());
        }
        if s.lookup(to).is_ok_and(|n| n == Node::Dir) {
            return Err(io::Error::from(io::ErrorKind::IsADirectory));
        }
        let (from_dir, from_name) = s.parent_mut(from)?;
        if from.parent() == Some(to_parent) {
            from_dir.change(DirOp::Rename(
                from_name.to_os_string(),
                to_name.to_os_string(),
            ));
        } else {
            from_dir.change(DirOp::Remove(from_name.to_os_string()));
            let (to_dir, _) = s.parent_mut(to)?;
            to_dir.change(DirOp::Set(to_name.to_os_string(), node));
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.begin(Op::Mutate)?;
        s.lookup_file(path)?;
        let (dir, name) = s.parent_mut(path)?;
        dir.change(DirOp::Remove(name.to_os_string()));
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let mut s = self.lock();
        s.begin(Op::Read)?;
        match s.lookup(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let mut s = self.lock();
        s.begin(Op::Read)?;
        if !s.is_dir(path) {
            return Err(not_found());
        }
        Ok(s.dirs
            .get(path)
            .map(|d| d.entries.keys().cloned().collect())
            .unwrap_or_default())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.begin(Op::Mutate)?;
        let mut missing: Vec<&Path> = path
            .ancestors()
            .take_while(|p| split(p).is_some() && !s.is_dir(p))
            .collect();
        missing.reverse();
        for dir in missing {
            let (parent, name) = s.parent_mut(dir)?;
            if parent.entries.contains_key(name) {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            parent.change(DirOp::Set(name.to_os_string(), Node::Dir));
            s.dirs.entry(dir.to_path_buf()).or_default();
        }
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.begin(Op::Mutate)?;
        if s.lookup(path)? != Node::Dir {
            return Err(io::Error::from(io::ErrorKind::NotADirectory));
        }
        s.remove_tree(path);
        let (parent, name) = s.parent_mut(path)?;
        parent.change(DirOp::Remove(name.to_os_string()));
        Ok(())
    }
}

#[derive(Debug)]
enum Handle {
    File { ino: u64, writable: bool },
    Dir(PathBuf),
}

/// A file or directory opened on a [`MemoryBackend`].
struct MemoryFile {
    state: Arc<Mutex<State>>,
    handle: Handle,
}

impl fmt::Debug for MemoryFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MemoryFile").field(&self.handle).finish()
    }
}

impl MemoryFile {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ino(&self) -> io::Result<u64> {
        match self.handle {
            Handle::File { ino, .. } => Ok(ino),
            Handle::Dir(_) => Err(io::Error::from(io::ErrorKind::IsADirectory)),
        }
    }

    fn writable_ino(&self) -> io::Result<u64> {
        match self.handle {
            Handle::File {
                ino,
                writable: true,
            } => Ok(ino),
            Handle::File { .. } => Err(io::Error::from(io::ErrorKind::PermissionDenied)),
            Handle::Dir(_) => Err(io::Error::from(io::ErrorKind::IsADirectory)),
        }
    }
}

impl BackendFile for MemoryFile {
    fn len(&self) -> io::Result<u64> {
        let mut s = self.lock();
        s.begin(Op::Read)?;
        match self.handle {
            Handle::File { ino, .. } => Ok(s.inode(ino)?.data.len() as u64),
            Handle::Dir(_) => Ok(0),
        }
    }

    fn modified(&self) -> io::Result<SystemTime> {
        let mut s = self.lock();
        s.begin(Op::Read)?;
        match self.handle {
            Handle::File { ino, .. } => Ok(s.inode(ino)?.modified),
            Handle::Dir(_) => Ok(SystemTime::now()),
        }
    }

    fn read_exact_at(&self, buf: &mut [u8], position: u64) -> io::Result<()> {
        let ino = self.ino()?;
        let mut s = self.lock();
        s.begin(Op::Read)?;
        let data = &s.inode(ino)?.data;
        let start = to_usize(position)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| data.get(start..end))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()> {
        let ino = self.writable_ino()?;
        let mut s = self.lock();
        s.begin(Op::Mutate)?;
        s.inode(ino)?.write(buf, position)?;
        s.last_written = Some(ino);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let ino = self.writable_ino()?;
        let mut s = self.lock();
        s.begin(Op::Mutate)?;
        s.inode(ino)?.set_len(len)?;
        s.last_written = Some(ino);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut s = self.lock();
        let result = s.begin(Op::Sync);
        match (&self.handle, result) {
            (Handle::File { ino, .. }, Ok(())) => s.inode(*ino)?.sync(),
            (Handle::File { ino, .. }, Err(Fault::SyncFailed)) => {
                // The kernel marks the pages it could not write clean: a later sync
                // does not write them either.
                s.inode(*ino)?.dirty.clear();
            }
            (Handle::Dir(path), Ok(())) => {
                if let Some(dir) = s.dirs.get_mut(path) {
                    dir.durable = dir.entries.clone();
                    dir.pending.clear();
                }
            }
            (Handle::Dir(_), Err(Fault::SyncFailed)) | (_, Err(Fault::PowerCut)) => {}
        }
        Ok(result?)
    }

    #[allow(unsafe_code)]
    unsafe fn map(&self) -> io::Result<Bytes> {
        let ino = self.ino()?;
        let mut s = self.lock();
        s.begin(Op::Read)?;
        Ok(Bytes::copy_from_slice(&s.inode(ino)?.data))
    }

    fn as_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> (MemoryBackend, PathBuf) {
        let b = MemoryBackend::new();
        let dir = PathBuf::from("/data/t-0");
        b.create_dir_all(&dir).unwrap();
        // Make the directory itself durable.
        b.open_dir(Path::new("/data")).unwrap().sync().unwrap();
        b.open_dir(Path::new("/")).unwrap().sync().unwrap();
        (b, dir)
    }

    fn read(b: &MemoryBackend, path: &Path) -> Option<Vec<u8>> {
        let f = b.open(path, false).ok()?;
        let mut buf = vec![0; f.len().unwrap() as usize];
        f.read_exact_at(&mut buf, 0).unwrap();
        Some(buf)
    }

    #[test]
    fn unsynced_bytes_and_entries_vanish_on_crash() {
        let (b, dir) = backend();
        let a = dir.join("a");
        let f = b.create_new(&a).unwrap();
        f.write_all_at(b"synced", 0).unwrap();
        f.sync().unwrap();
        // The file's bytes are durable, its name is not.
        assert_eq!(read(&b.crash(Crash::DropUnsynced), &a), None);
        b.open_dir(&dir).unwrap().sync().unwrap();
        f.write_all_at(b" and not", 6).unwrap();
        let crashed = b.crash(Crash::DropUnsynced);
        assert_eq!(read(&crashed, &a).unwrap(), b"synced");
        assert_eq!(
            read(&b.crash(Crash::ProcessOnly), &a).unwrap(),
            b"synced and not"
        );
        // The crashed file system is independent and all durable.
        let again = crashed.crash(Crash::DropUnsynced);
        assert_eq!(read(&again, &a).unwrap(), b"synced");
    }

    #[test]
    fn renames_and_removes_need_a_directory_sync() {
        let (b, dir) = backend();
        let (tmp, target) = (dir.join("x.tmp"), dir.join("x"));
        for (path, content) in [(&target, b"old"), (&tmp, b"new")] {
            let f = b.create_new(path).unwrap();
            f.write_all_at(content, 0).unwrap();
            f.sync().unwrap();
        }
        b.open_dir(&dir).unwrap().sync().unwrap();
        b.rename(&tmp, &target).unwrap();
        b.remove_file(&dir.join("x.tmp")).unwrap_err();
        assert_eq!(read(&b, &target).unwrap(), b"new");
        let crashed = b.crash(Crash::DropUnsynced);
        assert_eq!(read(&crashed, &target).unwrap(), b"old");
        assert_eq!(read(&crashed, &tmp).unwrap(), b"new");
        b.open_dir(&dir).unwrap().sync().unwrap();
        let crashed = b.crash(Crash::DropUnsynced);
        assert_eq!(read(&crashed, &target).unwrap(), b"new");
        assert_eq!(read(&crashed, &tmp), None);

        // A removed file comes back, with its durable bytes, until the directory sync.
        b.remove_file(&target).unwrap();
        assert!(!b.exists(&target).unwrap());
        assert_eq!(
            read(&b.crash(Crash::DropUnsynced), &target).unwrap(),
            b"new"
        );
        b.open_dir(&dir).unwrap().sync().unwrap();
        assert_eq!(read(&b.crash(Crash::DropUnsynced), &target), None);
    }

    #[test]
    fn a_new_directory_needs_its_parent_synced() {
        let b = MemoryBackend::new();
        b.create_dir_all(Path::new("/a/b")).unwrap();
        let f = b.create_new(Path::new("/a/b/f")).unwrap();
        f.sync().unwrap();
        b.open_dir(Path::new("/a/b")).unwrap().sync().unwrap();
        let crashed = b.crash(Crash::DropUnsynced);
        assert!(!crashed.exists(Path::new("/a")).unwrap());
        b.open_dir(Path::new("/")).unwrap().sync().unwrap();
        b.open_dir(Path::new("/a")).unwrap().sync().unwrap();
        let crashed = b.crash(Crash::DropUnsynced);
        assert!(crashed.exists(Path::new("/a/b/f")).unwrap());
        assert_eq!(
            crashed.list_dir(Path::new("/a")).unwrap(),
            vec![OsString::from("b")]
        );
        b.remove_dir_all(Path::new("/a")).unwrap();
        assert!(!b.exists(Path::new("/a/b/f")).unwrap());
        assert!(
            b.crash(Crash::DropUnsynced)
                .exists(Path::new("/a/b/f"))
                .unwrap()
        );
    }

    #[test]
    fn tearing_keeps_a_prefix_of_the_last_write() {
        let (b, dir) = backend();
        let path = dir.join("seg");
        let f = b.create_new(&path).unwrap();
        f.write_all_at(&[1; 10], 0).unwrap();
        f.sync().unwrap();
        b.open_dir(&dir).unwrap().sync().unwrap();
        f.write_all_at(&[2; 10], 10).unwrap();
        f.write_all_at(&[3; 10], 20).unwrap();
        let other = b.create_new(&dir.join("other")).unwrap();
        other.write_all_at(b"x", 0).unwrap();
        // `other` is not durable (no directory sync): tearing the last write does not
        // bring it back, and `seg`, not written last, loses its unsynced bytes.
        let crashed = b.crash(Crash::TearLastWrite { keep: 0.5 });
        assert_eq!(read(&crashed, &path).unwrap(), vec![1; 10]);
        f.write_all_at(&[4; 10], 30).unwrap();
        for (keep, len) in [(0.0, 10), (0.2, 16), (0.5, 25), (1.0, 40)] {
            let torn = read(&b.crash(Crash::TearLastWrite { keep }), &path).unwrap();
            assert_eq!(torn.len(), len, "{keep}");
            assert_eq!(&torn[..], &read(&b, &path).unwrap()[..len]);
        }
        // Partial crashes keep durable bytes and some prefix of the rest.
        for seed in 0..20 {
            let got = read(&b.crash(Crash::Partial { seed }), &path).unwrap();
            assert!(got.len() >= 10);
            assert_eq!(&got[..], &read(&b, &path).unwrap()[..got.len()]);
        }
    }

    #[test]
    fn partial_crash_keeps_a_prefix_of_directory_changes() {
        let (b, dir) = backend();
        for name in ["a", "b", "c"] {
            let f = b.create_new(&dir.join(name)).unwrap();
            f.sync().unwrap();
        }
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let names = b.crash(Crash::Partial { seed }).list_dir(&dir).unwrap();
            let names: Vec<_> = names.iter().map(|n| n.to_str().unwrap()).collect();
            let prefix = ["a", "b", "c"][..names.len()].to_vec();
            assert_eq!(names, prefix);
            seen.insert(names.len());
        }
        assert_eq!(seen.len(), 4, "every prefix happens");
    }

    #[test]
    fn truncation_and_create_over_existing_are_not_durable_without_sync() {
        let (b, dir) = backend();
        let path = dir.join("idx");
        let f = b.create_new(&path).unwrap();
        f.write_all_at(b"0123456789", 0).unwrap();
        f.sync().unwrap();
        b.open_dir(&dir).unwrap().sync().unwrap();
        f.set_len(4).unwrap();
        assert_eq!(read(&b, &path).unwrap(), b"0123");
        assert_eq!(
            read(&b.crash(Crash::DropUnsynced), &path).unwrap(),
            b"0123456789"
        );
        let g = b.create(&path).unwrap();
        g.write_all_at(b"ab", 0).unwrap();
        assert_eq!(read(&b, &path).unwrap(), b"ab");
        assert_eq!(
            read(&b.crash(Crash::DropUnsynced), &path).unwrap(),
            b"0123456789"
        );
        g.sync().unwrap();
        assert_eq!(read(&b.crash(Crash::DropUnsynced), &path).unwrap(), b"ab");
        // SAFETY: an in-memory map is a copy.
        #[allow(unsafe_code)]
        let mapped = unsafe { g.map() }.unwrap();
        assert_eq!(&mapped[..], b"ab");
    }

    #[test]
    fn read_only_handles_refuse_writes_and_directories_refuse_reads() {
        let (b, dir) = backend();
        b.create_new(&dir.join("f")).unwrap();
        let ro = b.open(&dir.join("f"), false).unwrap();
        assert!(ro.write_all_at(b"x", 0).is_err());
        let d = b.open_dir(&dir).unwrap();
        assert!(d.read_exact_at(&mut [0u8; 1], 0).is_err());
        assert!(b.open(&dir, false).is_err());
        assert!(b.create_new(&dir.join("f")).is_err());
        assert!(b.create_new(Path::new("/nope/f")).is_err());
        assert!(ro.as_fd().is_none());
    }
}
