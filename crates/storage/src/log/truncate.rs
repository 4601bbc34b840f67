//! [`Log::truncate_to`]: removing the log's tail, as a replica does when its log
//! diverged from the leader's (Kafka's `truncateTo`, Raft's conflicting-suffix
//! removal).
//!
//! ```text
//!  segments: [0..100) [100..250) [250..300 active)      truncate_to(180)
//!   1. remove [250..) newest first, dir fsync after each  → always a prefix on disk
//!   2. segment holding 180: active → cut the file in place;
//!                           sealed → copy the kept prefix to <base>.log.truncated,
//!                                    fsync, rename over <base>.log, dir fsync
//!   3. it becomes the active segment (indexes rebuilt in memory)
//! ```
//!
//! A sealed segment is never cut in place: its file may be mapped, and a fetch still
//! holding a slice of the mapping must not fault on pages past a new end of file.

use std::path::{Path, PathBuf};

use crate::backend::{FileBackend, remove_if_exists};
use crate::checkpoint::{self, CLEANER_OFFSET};
use crate::config::LogConfig;
use crate::error::{IoFailure, IoOp, TruncateError};
use crate::recovery;
use crate::segment::{self, Segment};
use crate::segment_file::SegmentFile;

use super::Log;

/// Suffix of a sealed segment's kept prefix before it replaces the segment:
/// `<base>.log.truncated`. [`Log::open`] removes leftovers.
pub(crate) const TRUNCATED_SUFFIX: &str = ".truncated";

/// How much of a sealed segment is copied per read while truncating it.
const COPY_CHUNK: u64 = 1 << 20;

impl Log {
    /// Removes every batch whose last offset is at or above `offset`: the log then ends
    /// at the base offset of the batch holding `offset` (at `offset` itself when it is a
    /// batch boundary), which is returned. Nothing happens when `offset` is at or above
    /// the log end.
    ///
    /// Segments wholly above the cut are removed newest first, each removal made
    /// durable before the next, so a crash leaves a prefix of the old log; the segment
    /// holding the cut becomes the active one. The truncation is durable when this
    /// returns `Ok`. The synced offset, the cleaner offset
    /// and the recovery point come down with the log end. Reads and appends continue at
    /// the new log end; a [`ReadSlice`](super::ReadSlice) taken before keeps its bytes.
    ///
    /// # Errors
    /// [`TruncateError::BelowLogStart`] when the cut would fall below the log start
    /// offset; [`TruncateError::Read`] when the segment cannot be scanned for the
    /// cut; [`TruncateError::Io`] when removing, copying, renaming or syncing fails.
    pub fn truncate_to(&mut self, offset: i64) -> Result<i64, TruncateError> {
        let leo = self.log_end_offset();
        if offset >= leo {
            return Ok(leo);
        }
        let below_start = TruncateError::BelowLogStart {
            requested: offset,
            log_start_offset: self.log_start,
        };
        if offset < self.log_start {
            return Err(below_start);
        }
        let i = self.segment_index(offset);
        let Some(holding) = self.segments.get(i) else {
            return Ok(leo);
        };
        let (cut_position, new_leo) = match holding.find_batch(offset)? {
            Some(batch) => (batch.position, batch.header.base_offset),
            None => (holding.file.len(), holding.next_offset()),
        };
        if new_leo < self.log_start {
            return Err(below_start);
        }
        let is_active = i + 1 == self.segments.len();
        self.remove_segments_above(i)?;
        let Some(old) = self.segments.pop() else {
            return Ok(leo);
        };
        let base = old.base_offset;
        let old_size = old.file.len();
        let first_seen_ms = old.first_seen_ms;
        let log_path = old.path().to_path_buf();
        let file = if is_active {
            let mut file = old.file;
            file.truncate(cut_position)?;
            // Durable before anything is appended at the new end: a crash must not
            // bring back records the caller was told are gone.
            file.sync()?;
            file
        } else {
            let file = copy_prefix(self.backend.as_ref(), &old.file, cut_position, &log_path)?;
            // Unmaps the old segment's indexes and file; the paths are reused below.
            drop(old);
            self.install_prefix(file, &log_path)?
        };
        let mut active = rebuild_active(base, file, &self.config)?;
        // `segment.ms` counts a re-opened sealed segment, or an emptied one, from the
        // next roll check: late, never early.
        active.first_seen_ms = first_seen_ms.filter(|_| is_active && !active.is_empty());
        self.size_bytes = self
            .size_bytes
            .saturating_sub(old_size)
            .saturating_add(active.file.len());
        self.segments.push(active);
        debug_assert_eq!(self.log_end_offset(), new_leo);
        if new_leo == self.log_start {
            // Only batches below the log start are left: drop them as DeleteRecords to
            // the log end does (roll to an empty segment, remove the rest).
            self.delete_below_log_start()?;
        }
        self.synced_offset = self.synced_offset.min(new_leo);
        self.lower_recovery_point_to_active()?;
        if self.cleaned_up_to > new_leo {
            checkpoint::write(
                self.backend.as_ref(),
                &self.dir,
                self.dir_file.as_ref(),
                CLEANER_OFFSET,
                checkpoint::next_tag(),
                new_leo,
            )?;
            self.cleaned_up_to = new_leo;
        }
        tracing::info!(dir = %self.dir.display(), requested = offset, log_end_offset = new_leo,
            "truncated log");
        Ok(new_leo)
    }

    /// Removes the segments after index `i`, newest first, syncing the directory after
    /// each removal.
    fn remove_segments_above(&mut self, i: usize) -> Result<(), IoFailure> {
        while self.segments.len() > i + 1 {
            let Some(seg) = self.segments.pop() else {
                break;
            };
            let base = seg.base_offset;
            let log_path = seg.path().to_path_buf();
            self.size_bytes = self.size_bytes.saturating_sub(seg.file.len());
            drop(seg);
            self.pending
                .retain(|p| p.is_dir || p.path.with_extension("log") != log_path);
            recovery::remove_segment_files(self.backend.as_ref(), &self.dir, base)?;
            self.sync_dir()?;
        }
        Ok(())
    }

    /// Puts a synced prefix copy in place of the segment at `log_path`: the old index
    /// files are unlinked (their mappings stay valid), the copy renamed over the `.log`
    /// and the directory synced.
    fn install_prefix(
        &mut self,
        mut file: SegmentFile,
        log_path: &Path,
    ) -> Result<SegmentFile, IoFailure> {
        for path in [
            segment::index_path(log_path),
            segment::time_index_path(log_path),
        ] {
            remove_if_exists(self.backend.as_ref(), &path)
                .map_err(|e| IoFailure::new(IoOp::Remove, &path, e))?;
        }
        self.pending
            .retain(|p| p.is_dir || p.path.with_extension("log") != log_path);
        file.rename_to(self.backend.as_ref(), log_path)?;
        self.sync_dir()?;
        Ok(file)
    }

    fn sync_dir(&self) -> Result<(), IoFailure> {
        self.dir_file
            .sync()
            .map_err(|e| IoFailure::new(IoOp::Sync, &self.dir, e))
    }
}

/// Path of the kept prefix of the segment at `log_path`.
fn truncated_path(log_path: &Path) -> PathBuf {
    let mut name = log_path.as_os_str().to_os_string();
    name.push(TRUNCATED_SUFFIX);
    PathBuf::from(name)
}

/// Copies the first `len` bytes of `source` into a new `<log>.truncated` file and
/// syncs it.
fn copy_prefix(
    backend: &dyn FileBackend,
    source: &SegmentFile,
    len: u64,
    log_path: &Path,
) -> Result<SegmentFile, IoFailure> {
    let path = truncated_path(log_path);
    // A leftover of an earlier, interrupted truncation.
    remove_if_exists(backend, &path).map_err(|e| IoFailure::new(IoOp::Remove, &path, e))?;
    let mut copy = SegmentFile::create(backend, &path)?;
    let mut buf = Vec::new();
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(COPY_CHUNK);
        // n <= COPY_CHUNK, which fits usize.
        buf.resize(n as usize, 0);
        source.read_at(at, &mut buf)?;
        copy.append_parts(&buf, &[])?;
        at += n;
    }
    copy.sync()?;
    Ok(copy)
}

/// The active segment over `file`, its in-memory indexes rebuilt by walking its
/// batches (headers only: every byte kept was already accepted by the log).
fn rebuild_active(
    base: i64,
    file: SegmentFile,
    config: &LogConfig,
) -> Result<Segment, TruncateError> {
    let mut segment = Segment::new_active(base, file);
    let (_, stop) = segment.index_by_scan(config.index_interval_bytes, false)?;
    if let Some((position, kind)) = stop {
        return Err(crate::error::ReadError::Corrupt {
            path: segment.path().to_path_buf(),
            position,
            kind,
        }
        .into());
    }
    Ok(segment)
}
