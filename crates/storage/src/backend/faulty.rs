//! [`Faulty`]: a [`MemoryBackend`] that fails on command, then crashes.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::memory::{Crash, MemoryBackend};
use super::{BackendFile, FileBackend};

/// A fault-injecting file system for crash tests: a [`MemoryBackend`] plus faults
/// armed on it, and crashes that keep what a real disk could have kept.
///
/// - [`fail_sync`](Self::fail_sync): the n-th sync from now returns `EIO`; a file's
///   pages it did not write are lost (not written by later syncs either), as on Linux.
/// - [`power_cut_after`](Self::power_cut_after): after n more mutating operations
///   (writes, cuts, creates, renames, removes, directory creations, syncs) every
///   operation fails, reads included: the machine is off. Then
///   [`crash`](Self::crash) gives the disk as found after reboot.
///
/// Clones share the file system and the faults.
#[derive(Debug, Clone, Default)]
pub struct Faulty {
    inner: MemoryBackend,
}

impl Faulty {
    /// An empty file system with no fault armed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Faults over an existing file system (shared with `inner`).
    pub fn wrap(inner: MemoryBackend) -> Self {
        Self { inner }
    }

    /// The backend as a shareable trait object (sharing this file system and faults).
    pub fn shared(&self) -> Arc<dyn FileBackend> {
        Arc::new(self.clone())
    }

    /// The file system without fault injection (the same files).
    pub fn memory(&self) -> &MemoryBackend {
        &self.inner
    }

    /// Makes the `nth` sync from now (1 = the next one) fail with `EIO`.
    pub fn fail_sync(&self, nth: u64) {
        let mut s = self.inner.lock();
        s.faults.fail_sync_at = Some(s.faults.syncs.saturating_add(nth.max(1)));
    }

    /// Cuts the power after `ops` more mutating operations succeed.
    pub fn power_cut_after(&self, ops: u64) {
        let mut s = self.inner.lock();
        s.faults.cut_after = Some(s.faults.mutations.saturating_add(ops));
    }

    /// Mutating operations so far.
    pub fn mutations(&self) -> u64 {
        self.inner.lock().faults.mutations
    }

    /// Syncs so far (failed ones included).
    pub fn syncs(&self) -> u64 {
        self.inner.lock().faults.syncs
    }

    /// Whether the armed failing sync has happened.
    pub fn sync_failed(&self) -> bool {
        let s = self.inner.lock();
        s.faults.fail_sync_at.is_some_and(|n| s.faults.syncs >= n)
    }

    /// Whether the power is cut.
    pub fn is_cut(&self) -> bool {
        self.inner.lock().faults.cut
    }

    /// Power loss: a new file system holding only what was durable.
    pub fn crash(&self) -> MemoryBackend {
        self.inner.crash(Crash::DropUnsynced)
    }

    /// A new file system after the crash `how` (see [`Crash`]), without faults.
    pub fn crash_with(&self, how: Crash) -> MemoryBackend {
        self.inner.crash(how)
    }
}

impl FileBackend for Faulty {
    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn BackendFile>> {
        self.inner.open(path, writable)
    }

    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn BackendFile>> {
        self.inner.create_new(path)
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn BackendFile>> {
        self.inner.create(path)
    }

    fn open_dir(&self, path: &Path) -> io::Result<Arc<dyn BackendFile>> {
        self.inner.open_dir(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        self.inner.list_dir(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir_all(path)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn setup() -> (Faulty, PathBuf) {
        let f = Faulty::new();
        let dir = PathBuf::from("/d");
        f.create_dir_all(&dir).unwrap();
        f.open_dir(Path::new("/")).unwrap().sync().unwrap();
        (f, dir)
    }

    fn content(b: &MemoryBackend, path: &Path) -> Vec<u8> {
        let f = b.open(path, false).unwrap();
        let mut buf = vec![0; f.len().unwrap() as usize];
        f.read_exact_at(&mut buf, 0).unwrap();
        buf
    }

    #[test]
    fn nth_sync_fails_and_its_pages_are_lost_for_good() {
        let (f, dir) = setup();
        let path = dir.join("seg");
        let file = f.create_new(&path).unwrap();
        f.open_dir(&dir).unwrap().sync().unwrap();
        file.write_all_at(b"aaaa", 0).unwrap();
        file.sync().unwrap();
        f.fail_sync(2);
        file.write_all_at(b"bbbb", 4).unwrap();
        file.sync().unwrap();
        assert!(!f.sync_failed());
        file.write_all_at(b"cccc", 8).unwrap();
        let err = file.sync().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(5));
        assert!(f.sync_failed());
        // Reads still see the bytes (page cache)...
        assert_eq!(content(f.memory(), &path), b"aaaabbbbcccc");
        file.write_all_at(b"dddd", 12).unwrap();
        // ...and a later sync succeeds, but without the pages the failed one dropped.
        file.sync().unwrap();
        assert_eq!(content(&f.crash(), &path), b"aaaabbbb\0\0\0\0dddd");
    }

    #[test]
    fn power_cut_stops_everything_and_crash_keeps_the_durable_state() {
        let (f, dir) = setup();
        let path = dir.join("seg");
        let file = f.create_new(&path).unwrap();
        file.write_all_at(b"xy", 0).unwrap();
        file.sync().unwrap();
        f.open_dir(&dir).unwrap().sync().unwrap();
        f.power_cut_after(2);
        file.write_all_at(b"z", 2).unwrap();
        f.rename(&path, &dir.join("moved")).unwrap();
        assert!(!f.is_cut());
        assert!(file.write_all_at(b"w", 3).is_err());
        assert!(f.is_cut());
        assert!(file.read_exact_at(&mut [0u8; 1], 0).is_err());
        assert!(f.exists(&path).is_err());
        assert!(file.sync().is_err());
        let after = f.crash();
        assert_eq!(content(&after, &path), b"xy");
        assert!(!after.exists(&dir.join("moved")).unwrap());
        // The crashed file system works normally.
        after.create_new(&dir.join("new")).unwrap();
        let torn = f.crash_with(Crash::ProcessOnly);
        assert_eq!(content(&torn, &dir.join("moved")), b"xyz");
    }
}
