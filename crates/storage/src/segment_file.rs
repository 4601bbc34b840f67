//! The one place that touches a segment's `.log` file, through the
//! [`FileBackend`](crate::backend::FileBackend): `read_at`, `append`, `sync`,
//! `truncate` and `len`, each turning an I/O error into an [`IoFailure`] naming the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::{BackendFile, FileBackend};
use crate::error::{IoFailure, IoOp};

/// A segment's `.log` file and its length as this process knows it.
///
/// The length is tracked here rather than asked of the OS: the log's single owner is
/// the only writer, so the two agree, and the read path saves a `stat` per call.
#[derive(Debug)]
pub(crate) struct SegmentFile {
    /// Shared so that a [`SyncHandle`](crate::SyncHandle) can `fdatasync` it on
    /// another thread while the owner keeps appending.
    file: Arc<dyn BackendFile>,
    path: PathBuf,
    len: u64,
}

impl SegmentFile {
    /// Opens an existing segment file for reading and writing.
    pub(crate) fn open(backend: &dyn FileBackend, path: &Path) -> Result<Self, IoFailure> {
        let file = backend
            .open(path, true)
            .map_err(|e| IoFailure::new(IoOp::Open, path, e))?;
        let len = file
            .len()
            .map_err(|e| IoFailure::new(IoOp::Metadata, path, e))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            len,
        })
    }

    /// Creates a new, empty segment file; fails if it exists.
    pub(crate) fn create(backend: &dyn FileBackend, path: &Path) -> Result<Self, IoFailure> {
        let file = backend
            .create_new(path)
            .map_err(|e| IoFailure::new(IoOp::Create, path, e))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            len: 0,
        })
    }

    /// Path of the file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file to `to` (the handle keeps pointing at the same inode).
    pub(crate) fn rename_to(
        &mut self,
        backend: &dyn FileBackend,
        to: &Path,
    ) -> Result<(), IoFailure> {
        backend
            .rename(&self.path, to)
            .map_err(|e| IoFailure::new(IoOp::Rename, &self.path, e))?;
        self.path = to.to_path_buf();
        Ok(())
    }

    /// Bytes in the file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The shared handle, for syncing elsewhere.
    pub(crate) fn shared(&self) -> Arc<dyn BackendFile> {
        Arc::clone(&self.file)
    }

    /// The file's modification time in milliseconds since the Unix epoch; `None` if the
    /// platform does not report one or it is out of range.
    pub(crate) fn modified_ms(&self) -> Result<Option<i64>, IoFailure> {
        let modified = match self.file.modified() {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => None,
            Err(e) => return Err(IoFailure::new(IoOp::Metadata, &self.path, e)),
        };
        Ok(modified
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok()))
    }

    /// Fills `buf` from `position`. Fails with `UnexpectedEof` if the file is shorter.
    pub(crate) fn read_at(&self, position: u64, buf: &mut [u8]) -> Result<(), IoFailure> {
        self.file
            .read_exact_at(buf, position)
            .map_err(|e| IoFailure::new(IoOp::Read, &self.path, e))
    }

    /// Writes `head` then `tail` at the end and returns the position they start at.
    /// On failure the file is cut back to its previous length (best effort), so a
    /// half-written batch is not left for the next append to follow.
    pub(crate) fn append_parts(&mut self, head: &[u8], tail: &[u8]) -> Result<u64, IoFailure> {
        let position = self.len;
        // usize always fits u64 on supported targets.
        let tail_at = position.saturating_add(head.len() as u64);
        let written = self
            .file
            .write_all_at(head, position)
            .and_then(|()| self.file.write_all_at(tail, tail_at));
        if let Err(e) = written {
            if let Err(cut) = self.file.set_len(position) {
                tracing::error!(path = %self.path.display(), position, error = %cut,
                    "cannot cut segment back after a failed write");
            }
            return Err(IoFailure::new(IoOp::Write, &self.path, e));
        }
        self.len = tail_at.saturating_add(tail.len() as u64);
        Ok(position)
    }

    /// `fdatasync`: the data written so far survives a crash once this returns.
    pub(crate) fn sync(&self) -> Result<(), IoFailure> {
        self.file
            .sync()
            .map_err(|e| IoFailure::new(IoOp::Sync, &self.path, e))
    }

    /// Cuts the file to `len` bytes.
    pub(crate) fn truncate(&mut self, len: u64) -> Result<(), IoFailure> {
        self.file
            .set_len(len)
            .map_err(|e| IoFailure::new(IoOp::Truncate, &self.path, e))?;
        self.len = len;
        Ok(())
    }
}
