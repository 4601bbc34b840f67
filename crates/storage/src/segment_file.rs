//! The one place that touches a segment's `.log` file.
//!
//! Kept to the five calls a file backend has to provide (`read_at`, `append`, `sync`,
//! `truncate`, `len`) so that an io_uring backend can later replace it behind a trait
//! without touching the log, recovery or the read path.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{IoFailure, IoOp};

/// A segment's `.log` file and its length as this process knows it.
///
/// The length is tracked here rather than asked of the OS: the log's single owner is
/// the only writer, so the two agree, and the read path saves a `stat` per call.
#[derive(Debug)]
pub(crate) struct SegmentFile {
    /// Shared so that a [`SyncHandle`](crate::SyncHandle) can `fdatasync` it on
    /// another thread while the owner keeps appending.
    file: Arc<File>,
    path: PathBuf,
    len: u64,
}

impl SegmentFile {
    /// Opens an existing segment file for reading and writing.
    pub(crate) fn open(path: &Path) -> Result<Self, IoFailure> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| IoFailure::new(IoOp::Open, path, e))?;
        let len = file
            .metadata()
            .map_err(|e| IoFailure::new(IoOp::Metadata, path, e))?
            .len();
        Ok(Self {
            file: Arc::new(file),
            path: path.to_path_buf(),
            len,
        })
    }

    /// Creates a new, empty segment file; fails if it exists.
    pub(crate) fn create(path: &Path) -> Result<Self, IoFailure> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| IoFailure::new(IoOp::Create, path, e))?;
        Ok(Self {
            file: Arc::new(file),
            path: path.to_path_buf(),
            len: 0,
        })
    }

    /// Path of the file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file to `to` (the handle keeps pointing at the same inode).
    pub(crate) fn rename_to(&mut self, to: &Path) -> Result<(), IoFailure> {
        std::fs::rename(&self.path, to).map_err(|e| IoFailure::new(IoOp::Rename, &self.path, e))?;
        self.path = to.to_path_buf();
        Ok(())
    }

    /// Bytes in the file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The shared handle, for syncing elsewhere.
    pub(crate) fn shared(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    /// The file's modification time in milliseconds since the Unix epoch; `None` if the
    /// platform does not report one or it is out of range.
    pub(crate) fn modified_ms(&self) -> Result<Option<i64>, IoFailure> {
        let modified = self
            .file
            .metadata()
            .map_err(|e| IoFailure::new(IoOp::Metadata, &self.path, e))?
            .modified()
            .ok();
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
            .sync_data()
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
