//! The file system as the log sees it: a narrow backend trait, so that the real
//! [`Log`](crate::Log) code runs on real files in production and on an in-memory,
//! fault-injecting file system in tests.
//!
//! ```text
//!  Log, recovery, checkpoints, cleaner ──▶ dyn FileBackend ──▶ StdBackend (std::fs, pread/pwrite,
//!        │                                  (directories)       mmap, fdatasync)
//!        └──────────────────────────────▶ dyn BackendFile  ──▶ MemoryBackend / Faulty (feature
//!                                           (one open file)      `testing`: byte vectors, durable
//!                                                                vs written state, crashes)
//! ```
//!
//! The traits hold only what the crate calls: [`FileBackend`] opens, creates, renames,
//! removes and lists; [`BackendFile`] reads, writes, cuts, syncs and maps one open file
//! (or syncs one open directory). Paths are whole paths (the partition directory joined
//! with a file name), as with `std::fs`.
//!
//! Durability follows POSIX as Linux implements it, and the in-memory backend holds the
//! crate to it: bytes written to a file survive a crash only once that file is synced;
//! a file's existence, a rename or a removal only once its directory is synced.

use std::ffi::OsString;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

#[cfg(any(test, feature = "testing"))]
mod faulty;
#[cfg(any(test, feature = "testing"))]
mod memory;

#[cfg(any(test, feature = "testing"))]
pub use faulty::Faulty;
#[cfg(any(test, feature = "testing"))]
pub use memory::{Crash, MemoryBackend};

/// Directory-level operations on the file system holding partition directories.
///
/// Implementations are shared between the owner thread of a [`Log`](crate::Log), the
/// threads that run its [`SyncHandle`](crate::SyncHandle)s and the cleaner.
pub trait FileBackend: Send + Sync + Debug + 'static {
    /// Opens an existing file, for reading and writing when `writable`, else read-only.
    ///
    /// # Errors
    /// `NotFound` when it does not exist, or any other I/O error.
    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn BackendFile>>;

    /// Creates a new, empty file for reading and writing.
    ///
    /// # Errors
    /// `AlreadyExists` when the path exists, or any other I/O error.
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn BackendFile>>;

    /// Creates a file for reading and writing, or cuts an existing one to zero length.
    ///
    /// # Errors
    /// Any I/O error.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn BackendFile>>;

    /// Opens a directory so that it can be synced ([`BackendFile::sync`]: `fsync`,
    /// which makes the creates, renames and removes in it durable).
    ///
    /// # Errors
    /// Any I/O error.
    fn open_dir(&self, path: &Path) -> io::Result<Arc<dyn BackendFile>>;

    /// Renames `from` to `to`, replacing `to` atomically if it exists. Open handles keep
    /// pointing at the same file.
    ///
    /// # Errors
    /// Any I/O error.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes (unlinks) a file. Open handles and mappings of it stay valid.
    ///
    /// # Errors
    /// `NotFound` when it does not exist, or any other I/O error.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Whether a file or directory exists at `path`.
    ///
    /// # Errors
    /// Any I/O error other than "not found".
    fn exists(&self, path: &Path) -> io::Result<bool>;

    /// The names of the entries of a directory, in no particular order.
    ///
    /// # Errors
    /// Any I/O error.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;

    /// Creates a directory and any missing parents.
    ///
    /// # Errors
    /// Any I/O error.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Removes a directory and everything in it.
    ///
    /// # Errors
    /// Any I/O error.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
}

/// One open file (or directory, for [`sync`](Self::sync) only).
pub trait BackendFile: Send + Sync + Debug {
    /// The file's length in bytes.
    ///
    /// # Errors
    /// Any I/O error.
    fn len(&self) -> io::Result<u64>;

    /// Whether the file is empty.
    ///
    /// # Errors
    /// Any I/O error.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The file's last modification time.
    ///
    /// # Errors
    /// Any I/O error, or `Unsupported` where there is none.
    fn modified(&self) -> io::Result<SystemTime>;

    /// Fills `buf` from `position` (`pread`).
    ///
    /// # Errors
    /// `UnexpectedEof` when the file ends first, or any other I/O error.
    fn read_exact_at(&self, buf: &mut [u8], position: u64) -> io::Result<()>;

    /// Writes all of `buf` at `position` (`pwrite`), growing the file if needed.
    ///
    /// # Errors
    /// Any I/O error; part of `buf` may have been written.
    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()>;

    /// Cuts or extends (with zeros) the file to `len` bytes.
    ///
    /// # Errors
    /// Any I/O error.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Makes what was written durable: `fdatasync` for a file (it covers the length
    /// too), `fsync` for a directory (its entries).
    ///
    /// # Errors
    /// Any I/O error. After a failed sync the written data may be lost even if a later
    /// sync succeeds (Linux drops the dirty pages): the caller must treat it as fatal.
    fn sync(&self) -> io::Result<()>;

    /// The whole file as read-only bytes: a memory mapping for real files (no copy),
    /// a copy for in-memory ones. Empty for an empty file.
    ///
    /// # Safety
    /// The file must not be written, cut or extended, by this process, while the
    /// returned bytes (or any slice of them) live: a mapping would change under a
    /// `&[u8]`, or fault (`SIGBUS`) past a cut. Sluice maps only sealed segments and
    /// their indexes; `UNSAFE.md` says why they are never written again.
    ///
    /// # Errors
    /// Any I/O error.
    #[allow(unsafe_code)]
    unsafe fn map(&self) -> io::Result<Bytes>;

    /// The file descriptor, for callers that issue I/O themselves (the broker's
    /// io_uring fsyncs); `None` when the file has none (in-memory backends), in which
    /// case they call [`sync`](Self::sync).
    fn as_fd(&self) -> Option<BorrowedFd<'_>>;
}

/// Real files through `std::fs`: `pread`/`pwrite`, `mmap` of sealed files,
/// `fdatasync`. What production uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdBackend;

impl StdBackend {
    /// The backend as a shareable trait object.
    pub fn shared() -> Arc<dyn FileBackend> {
        Arc::new(Self)
    }
}

/// A file or directory opened by [`StdBackend`].
#[derive(Debug)]
struct StdFile {
    file: File,
    is_dir: bool,
}

impl StdFile {
    fn shared(file: File, is_dir: bool) -> Arc<dyn BackendFile> {
        Arc::new(Self { file, is_dir })
    }
}

impl FileBackend for StdBackend {
    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn BackendFile>> {
        let file = OpenOptions::new().read(true).write(writable).open(path)?;
        Ok(StdFile::shared(file, false))
    }

    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn BackendFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(StdFile::shared(file, false))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn BackendFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(StdFile::shared(file, false))
    }

    fn open_dir(&self, path: &Path) -> io::Result<Arc<dyn BackendFile>> {
        Ok(StdFile::shared(File::open(path)?, true))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        match fs::symlink_metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        fs::read_dir(path)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect()
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }
}

impl BackendFile for StdFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn modified(&self) -> io::Result<SystemTime> {
        self.file.metadata()?.modified()
    }

    fn read_exact_at(&self, buf: &mut [u8], position: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, position)
    }

    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()> {
        self.file.write_all_at(buf, position)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync(&self) -> io::Result<()> {
        if self.is_dir {
            self.file.sync_all()
        } else {
            self.file.sync_data()
        }
    }

    #[allow(unsafe_code)]
    unsafe fn map(&self) -> io::Result<Bytes> {
        if self.len()? == 0 {
            // A zero-length mapping is an error on Linux; nothing to map anyway.
            return Ok(Bytes::new());
        }
        // SAFETY: `Mmap::map` is unsafe because the mapped bytes change (or fault with
        // SIGBUS) if the file is written or truncated while mapped. The caller of this
        // `unsafe fn` promises that this process does neither while the returned bytes
        // live (see `BackendFile::map` and `UNSAFE.md`); the partition directory is
        // owned by this broker alone. The owner keeps the mapping alive for as long as
        // any slice of the `Bytes` exists.
        let map = unsafe { memmap2::Mmap::map(&self.file) }?;
        Ok(Bytes::from_owner(map))
    }

    fn as_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.file.as_fd())
    }
}

/// Removes `path`; a file that is already gone is not an error.
pub(crate) fn remove_if_exists(backend: &dyn FileBackend, path: &Path) -> io::Result<bool> {
    match backend.remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_backend_round_trips_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let b = StdBackend;
        let path = tmp.path().join("a");
        let f = b.create_new(&path).unwrap();
        assert!(b.create_new(&path).is_err());
        f.write_all_at(b"hello", 0).unwrap();
        f.write_all_at(b" world", 5).unwrap();
        f.sync().unwrap();
        assert_eq!(f.len().unwrap(), 11);
        let mut buf = [0u8; 5];
        f.read_exact_at(&mut buf, 6).unwrap();
        assert_eq!(&buf, b"world");
        // SAFETY: nothing writes the file while the mapping lives.
        #[allow(unsafe_code)]
        let mapped = unsafe { b.open(&path, false).unwrap().map() }.unwrap();
        assert_eq!(&mapped[..], b"hello world");
        b.rename(&path, &tmp.path().join("b")).unwrap();
        assert!(!b.exists(&path).unwrap());
        assert_eq!(b.list_dir(tmp.path()).unwrap(), vec![OsString::from("b")]);
        b.open_dir(tmp.path()).unwrap().sync().unwrap();
        assert!(remove_if_exists(&b, &tmp.path().join("b")).unwrap());
        assert!(!remove_if_exists(&b, &tmp.path().join("b")).unwrap());
        // The mapping outlives the unlink.
        assert_eq!(&mapped[..], b"hello world");
        // SAFETY: as above.
        #[allow(unsafe_code)]
        let empty = unsafe { b.create(&path).unwrap().map() }.unwrap();
        assert!(empty.is_empty());
        assert!(f.as_fd().is_some());
    }
}
