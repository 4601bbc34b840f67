//! [`Log`]: the segmented log of one partition.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use sluice_protocol::record::{BATCH_HEADER_LEN, BatchHeader, set_base_offset};

use crate::config::LogConfig;
use crate::error::{AppendError, IoFailure, IoOp, OpenError, ReadError, SyncError};
use crate::recovery;
use crate::segment::{self, Segment};
use crate::segment_file::SegmentFile;

/// Where an appended batch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the batch's first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// Log end offset after the append (`last_offset + 1`).
    pub log_end_offset: i64,
    /// Base offset of the segment the batch went into.
    pub segment_base_offset: i64,
    /// Byte position of the batch in that segment's `.log` file.
    pub position: u64,
}

/// Bytes of whole record batches returned by [`Log::read`], exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSlice {
    /// Zero or more whole batches.
    pub bytes: Bytes,
    /// Base offset of the first batch; it may be below the offset asked for (the batch
    /// that contains it is returned whole, and the consumer skips the records before
    /// its position, as in Kafka). The requested offset when `bytes` is empty.
    pub base_offset: i64,
    /// Offset after the last batch returned: where the next read continues. The
    /// requested offset when `bytes` is empty.
    pub next_offset: i64,
}

impl ReadSlice {
    fn empty(offset: i64) -> Self {
        Self {
            bytes: Bytes::new(),
            base_offset: offset,
            next_offset: offset,
        }
    }

    /// Whether no batch was returned.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// One whole batch found by a timestamp or offset search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchAt {
    /// Base offset of the batch.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// The batch's `maxTimestamp`.
    pub max_timestamp: i64,
    /// The batch, as stored.
    pub bytes: Bytes,
}

/// Where the batch holding an offset sits on disk (see [`Log::locate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLocation {
    /// Base offset of the segment.
    pub segment_base_offset: i64,
    /// Byte position of the batch in the segment's `.log` file.
    pub position: u64,
    /// Size of the batch in bytes.
    pub size: u64,
    /// Base offset of the batch.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
}

/// A file (or directory) that must be synced before some offsets are durable.
#[derive(Debug, Clone)]
struct PendingSync {
    seq: u64,
    file: Arc<File>,
    path: PathBuf,
    is_dir: bool,
}

/// A snapshot of what must be synced to make offsets below
/// [`up_to_offset`](SyncHandle::up_to_offset) durable, to run off the owning thread.
///
/// ```no_run
/// # fn demo(log: &mut sluice_storage::Log) -> Result<(), sluice_storage::SyncError> {
/// let handle = log.sync_handle();
/// // ... on an I/O thread:
/// handle.run()?;
/// // ... back on the owner:
/// log.mark_synced(&handle);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SyncHandle {
    files: Vec<PendingSync>,
    up_to_offset: i64,
    seq: u64,
}

impl SyncHandle {
    /// Offsets below this are durable once [`run`](Self::run) succeeds.
    pub fn up_to_offset(&self) -> i64 {
        self.up_to_offset
    }

    /// `fdatasync`s the segment files (older sealed ones first) and `fsync`s the
    /// directory if segments were created or removed. Blocking; thread-safe.
    ///
    /// # Errors
    /// [`SyncError::Io`] for the first failed sync. Treat it as fatal for the
    /// partition: after a failed `fsync` the kernel may have dropped the dirty pages.
    pub fn run(&self) -> Result<(), SyncError> {
        for p in &self.files {
            let result = if p.is_dir {
                p.file.sync_all()
            } else {
                p.file.sync_data()
            };
            result.map_err(|e| IoFailure::new(IoOp::Sync, &p.path, e))?;
        }
        Ok(())
    }
}

/// The segmented log of one partition.
///
/// Owned by one thread (the partition's shard); it takes `&mut self` to write and
/// `&self` to read, and holds no locks.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    dir_file: Arc<File>,
    config: LogConfig,
    /// Oldest first, never empty; the last is the active segment.
    segments: Vec<Segment>,
    size_bytes: u64,
    synced_offset: i64,
    /// Sealed segment files and directory changes not yet covered by a sync.
    pending: Vec<PendingSync>,
    next_seq: u64,
}

impl Log {
    /// Opens the log in `dir` (created if missing; an empty directory is an empty log
    /// starting at offset 0) and recovers it: the last segment is checked batch by
    /// batch (length, magic, CRC-32C, increasing offsets) and cut at the first torn
    /// or corrupt batch; missing or malformed indexes of sealed segments are rebuilt.
    ///
    /// # Errors
    /// [`OpenError::InvalidConfig`] for a bad `config`, [`OpenError::Io`] when the
    /// directory or a file cannot be read, written or created.
    pub fn open(dir: &Path, config: LogConfig) -> Result<Self, OpenError> {
        config.validate()?;
        fs::create_dir_all(dir).map_err(|e| IoFailure::new(IoOp::CreateDir, dir, e))?;
        let dir_file = Arc::new(File::open(dir).map_err(|e| IoFailure::new(IoOp::Open, dir, e))?);
        let loaded = recovery::load(dir, &config)?;
        let size_bytes = loaded.segments.iter().map(|s| s.file.len()).sum();
        let mut log = Self {
            dir: dir.to_path_buf(),
            dir_file,
            config,
            segments: loaded.segments,
            size_bytes,
            synced_offset: 0,
            pending: Vec::new(),
            next_seq: 0,
        };
        log.synced_offset = log.log_start_offset();
        // What the previous process wrote may still sit in the page cache: nothing is
        // known durable until the first sync, which covers every segment.
        let sealed: Vec<_> = log
            .segments
            .iter()
            .rev()
            .skip(1)
            .rev()
            .map(|s| (s.file.shared(), s.path().to_path_buf()))
            .collect();
        for (file, path) in sealed {
            log.push_pending(file, path, false);
        }
        if loaded.changed {
            log.push_dir_pending();
        }
        tracing::debug!(dir = %log.dir.display(), segments = log.segments.len(),
            log_start_offset = log.log_start_offset(), log_end_offset = log.log_end_offset(),
            "opened log");
        Ok(log)
    }

    fn push_pending(&mut self, file: Arc<File>, path: PathBuf, is_dir: bool) {
        self.next_seq = self.next_seq.saturating_add(1);
        self.pending.push(PendingSync {
            seq: self.next_seq,
            file,
            path,
            is_dir,
        });
    }

    fn push_dir_pending(&mut self) {
        let (file, path) = (Arc::clone(&self.dir_file), self.dir.clone());
        self.push_pending(file, path, true);
    }

    fn active(&self) -> &Segment {
        // `segments` is never empty (open creates a segment, nothing removes the last).
        debug_assert!(!self.segments.is_empty());
        match self.segments.last() {
            Some(s) => s,
            None => unreachable_empty(),
        }
    }

    fn active_mut(&mut self) -> &mut Segment {
        match self.segments.last_mut() {
            Some(s) => s,
            None => unreachable_empty(),
        }
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// First offset in the log (the base offset of the oldest segment).
    pub fn log_start_offset(&self) -> i64 {
        self.segments.first().map_or(0, |s| s.base_offset)
    }

    /// Offset the next appended record gets: the last batch's last offset + 1.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// Offsets below this are known to be on stable storage.
    pub fn synced_offset(&self) -> i64 {
        self.synced_offset
    }

    /// Bytes of batches in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> impl Iterator<Item = i64> + '_ {
        self.segments.iter().map(|s| s.base_offset)
    }

    /// Appends one RecordBatch v2, already validated by the caller, at the log end.
    ///
    /// The batch's `baseOffset` is rewritten in place to the log end offset (the field
    /// is outside the CRC); the bytes are then written unchanged in one write at the
    /// end of the active segment, after rolling to a new segment if the active one is
    /// non-empty and the batch would take it past `segment_bytes` or its indexes are
    /// full. `max_timestamp` is the batch's maximum timestamp as the broker settled it
    /// (the `maxTimestamp` field); it feeds the time index. No fsync: see
    /// [`sync`](Self::sync).
    ///
    /// # Errors
    /// [`AppendError::InvalidBatch`], [`AppendError::LengthMismatch`] or
    /// [`AppendError::InvalidLastOffsetDelta`] when `batch` is not exactly one batch,
    /// [`AppendError::OffsetOverflow`] at the end of the offset space, and
    /// [`AppendError::Io`] when rolling or writing fails (nothing is appended then).
    pub fn append(
        &mut self,
        batch: &mut [u8],
        max_timestamp: i64,
    ) -> Result<AppendInfo, AppendError> {
        let split = batch.len().min(BATCH_HEADER_LEN);
        let (head, tail) = batch.split_at_mut(split);
        self.append_parts(head, tail, max_timestamp)
    }

    /// [`append`](Self::append) for a batch held in two pieces: `head` (at least the
    /// fixed header, rewritten in place with the base offset) and `tail` (the rest,
    /// written as it is). Lets a caller patch the header without copying the records.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub fn append_parts(
        &mut self,
        head: &mut [u8],
        tail: &[u8],
        max_timestamp: i64,
    ) -> Result<AppendInfo, AppendError> {
        let header = BatchHeader::parse(head)?;
        let batch_len = head.len().saturating_add(tail.len());
        if header.total_len() != batch_len {
            return Err(AppendError::LengthMismatch {
                batch_len: header.total_len(),
                buffer_len: batch_len,
            });
        }
        if header.last_offset_delta < 0 {
            return Err(AppendError::InvalidLastOffsetDelta {
                last_offset_delta: header.last_offset_delta,
            });
        }
        let base_offset = self.log_end_offset();
        let overflow = AppendError::OffsetOverflow {
            log_end_offset: base_offset,
        };
        let last_offset = base_offset
            .checked_add(i64::from(header.last_offset_delta))
            .ok_or(overflow)?;
        let next_offset = last_offset
            .checked_add(1)
            .ok_or(AppendError::OffsetOverflow {
                log_end_offset: base_offset,
            })?;
        let size = batch_len as u64;
        if self.needs_roll(size, last_offset) {
            self.roll()?;
        }
        set_base_offset(head, base_offset);
        let interval = self.config.index_interval_bytes;
        let active = self.active_mut();
        let position = active.file.append_parts(head, tail)?;
        active.index.track_batch(
            interval,
            position,
            size,
            base_offset,
            next_offset,
            max_timestamp,
        );
        let segment_base_offset = active.base_offset;
        self.size_bytes = self.size_bytes.saturating_add(size);
        tracing::trace!(base_offset, last_offset, position, size, "appended batch");
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_end_offset: next_offset,
            segment_base_offset,
            position,
        })
    }

    /// Appends several batches (each as [`append`](Self::append) takes it), stopping
    /// at the first error; returns the info of each batch appended.
    ///
    /// # Errors
    /// As [`append`](Self::append); the batches before the failing one stay appended.
    pub fn append_many<'b>(
        &mut self,
        batches: impl IntoIterator<Item = (&'b mut [u8], i64)>,
    ) -> Result<Vec<AppendInfo>, AppendError> {
        batches
            .into_iter()
            .map(|(batch, max_timestamp)| self.append(batch, max_timestamp))
            .collect()
    }

    fn needs_roll(&self, size: u64, last_offset: i64) -> bool {
        let active = self.active();
        if active.is_empty() {
            return false;
        }
        active.file.len().saturating_add(size) > self.config.segment_bytes
            || active.indexes_full(&self.config)
            || active.relative(last_offset).is_none()
    }

    /// Seals the active segment (writes and maps its indexes) and starts a new one at
    /// the log end offset. Does nothing when the active segment is empty.
    ///
    /// # Errors
    /// [`AppendError::Io`] when the new file cannot be created or the indexes cannot
    /// be written; the log is unchanged then.
    pub fn roll(&mut self) -> Result<(), AppendError> {
        if self.active().is_empty() {
            return Ok(());
        }
        let base_offset = self.log_end_offset();
        let path = segment::log_path(&self.dir, base_offset);
        let file = SegmentFile::create(&path)?;
        let sealed = match self.active_mut().write_indexes(true) {
            Ok(files) => files,
            Err(e) => {
                drop(file);
                if let Err(rm) = fs::remove_file(&path) {
                    tracing::error!(path = %path.display(), error = %rm,
                        "cannot remove new segment after a failed roll");
                }
                return Err(e.into());
            }
        };
        let old = self.active();
        let (old_file, old_path) = (old.file.shared(), old.path().to_path_buf());
        let [index_file, time_file] = sealed;
        self.push_pending(old_file, old_path.clone(), false);
        self.push_pending(index_file, segment::index_path(&old_path), false);
        self.push_pending(time_file, segment::time_index_path(&old_path), false);
        self.push_dir_pending();
        self.segments.push(Segment::new_active(base_offset, file));
        tracing::info!(dir = %self.dir.display(), base_offset, "rolled to new segment");
        Ok(())
    }

    /// What must be synced to make everything appended so far durable. Run it with
    /// [`SyncHandle::run`] (on any thread) and report back with
    /// [`mark_synced`](Self::mark_synced).
    pub fn sync_handle(&self) -> SyncHandle {
        let active = self.active();
        let mut files = self.pending.clone();
        files.push(PendingSync {
            seq: self.next_seq,
            file: active.file.shared(),
            path: active.path().to_path_buf(),
            is_dir: false,
        });
        SyncHandle {
            files,
            up_to_offset: self.log_end_offset(),
            seq: self.next_seq,
        }
    }

    /// Records that `handle` ran successfully: offsets below its
    /// [`up_to_offset`](SyncHandle::up_to_offset) are durable.
    pub fn mark_synced(&mut self, handle: &SyncHandle) {
        self.synced_offset = self.synced_offset.max(handle.up_to_offset);
        self.pending.retain(|p| p.seq > handle.seq);
    }

    /// Syncs on this thread: `fdatasync` of the active segment (and of segments sealed
    /// since the last sync), `fsync` of the directory after segments were created.
    ///
    /// # Errors
    /// [`SyncError::Io`]; fatal for the partition (see [`SyncHandle::run`]).
    pub fn sync(&mut self) -> Result<(), SyncError> {
        let handle = self.sync_handle();
        handle.run()?;
        self.mark_synced(&handle);
        Ok(())
    }

    fn check_range(&self, offset: i64) -> Result<(), ReadError> {
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        if offset < start || offset > end {
            return Err(ReadError::OffsetOutOfRange {
                requested: offset,
                log_start_offset: start,
                log_end_offset: end,
            });
        }
        Ok(())
    }

    /// Index of the segment whose range holds `offset` (the last with base <= offset).
    fn segment_index(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1)
    }

    /// Reads whole batches starting with the one that contains `offset`, as stored.
    ///
    /// Batches are added while the total stays within `max_bytes`; when the first
    /// batch alone is larger, it is returned whole if `min_one_batch` (Kafka KIP-74,
    /// so a consumer always makes progress) and nothing is returned otherwise. A read
    /// stays within one segment; continue from [`ReadSlice::next_offset`]. Reading at
    /// the log end offset returns an empty slice.
    ///
    /// # Errors
    /// [`ReadError::OffsetOutOfRange`] when `offset` is below the log start or above
    /// the log end; [`ReadError::Io`] or [`ReadError::Corrupt`] when the file cannot be
    /// read or no longer holds valid batches.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<ReadSlice, ReadError> {
        self.check_range(offset)?;
        if offset == self.log_end_offset() {
            return Ok(ReadSlice::empty(offset));
        }
        let interval = self.config.index_interval_bytes;
        for segment in self.segments.iter().skip(self.segment_index(offset)) {
            if let Some(read) = segment.read(offset, max_bytes, min_one_batch, interval)? {
                return Ok(ReadSlice {
                    bytes: read.bytes,
                    base_offset: read.base_offset,
                    next_offset: read.next_offset,
                });
            }
        }
        Ok(ReadSlice::empty(offset))
    }

    /// Finds the batch that contains `offset` (index lookup, then a header scan) without
    /// reading its records.
    ///
    /// # Errors
    /// As [`read`](Self::read); `offset` must be below the log end offset.
    pub fn locate(&self, offset: i64) -> Result<BatchLocation, ReadError> {
        self.check_range(offset)?;
        let out_of_range = || ReadError::OffsetOutOfRange {
            requested: offset,
            log_start_offset: self.log_start_offset(),
            log_end_offset: self.log_end_offset(),
        };
        for segment in self.segments.iter().skip(self.segment_index(offset)) {
            if let Some(b) = segment.find_batch(offset)? {
                return Ok(BatchLocation {
                    segment_base_offset: segment.base_offset,
                    position: b.position,
                    size: b.size(),
                    base_offset: b.header.base_offset,
                    last_offset: b.last_offset(),
                });
            }
        }
        Err(out_of_range())
    }

    /// The first batch whose max timestamp is `>= timestamp` (ListOffsets by time):
    /// segments whose maximum is below it are skipped, then the time index narrows the
    /// scan. The broker looks inside the batch for the exact record. `None` if no
    /// batch is that recent.
    ///
    /// # Errors
    /// [`ReadError::Io`] or [`ReadError::Corrupt`].
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<BatchAt>, ReadError> {
        for segment in &self.segments {
            if segment.is_empty() || segment.max_timestamp() < timestamp {
                continue;
            }
            if let Some(b) = segment.find_timestamp(timestamp)? {
                return Ok(Some(BatchAt {
                    base_offset: b.header.base_offset,
                    last_offset: b.last_offset(),
                    max_timestamp: b.header.max_timestamp,
                    bytes: segment.batch_bytes(&b)?,
                }));
            }
        }
        Ok(None)
    }

    /// The first batch carrying the largest max timestamp in the log (ListOffsets
    /// `MAX_TIMESTAMP`, -3), or `None` for an empty log.
    ///
    /// # Errors
    /// [`ReadError::Io`] or [`ReadError::Corrupt`].
    pub fn max_timestamp_batch(&self) -> Result<Option<BatchAt>, ReadError> {
        let mut best: Option<&Segment> = None;
        for s in self.segments.iter().filter(|s| !s.is_empty()) {
            if best.is_none_or(|b| s.max_timestamp() > b.max_timestamp()) {
                best = Some(s);
            }
        }
        let Some(segment) = best else {
            return Ok(None);
        };
        let Some(b) = segment.find_batch(segment.offset_of_max_timestamp())? else {
            return Ok(None);
        };
        Ok(Some(BatchAt {
            base_offset: b.header.base_offset,
            last_offset: b.last_offset(),
            max_timestamp: b.header.max_timestamp,
            bytes: segment.batch_bytes(&b)?,
        }))
    }

    /// Clean shutdown: writes the active segment's indexes and syncs everything.
    ///
    /// # Errors
    /// [`SyncError::Io`] when writing an index or a sync fails.
    pub fn close(mut self) -> Result<(), SyncError> {
        let active = self.active_mut();
        let path = active.path().to_path_buf();
        let [index_file, time_file] = active.write_indexes(false)?;
        self.push_pending(index_file, segment::index_path(&path), false);
        self.push_pending(time_file, segment::time_index_path(&path), false);
        self.push_dir_pending();
        self.sync()?;
        tracing::debug!(dir = %self.dir.display(), "closed log");
        Ok(())
    }

    /// Removes the partition directory and everything in it.
    ///
    /// # Errors
    /// [`SyncError::Io`] when the directory cannot be removed.
    pub fn delete(self) -> Result<(), SyncError> {
        let dir = self.dir.clone();
        // Unmap and close everything first.
        drop(self);
        fs::remove_dir_all(&dir).map_err(|e| IoFailure::new(IoOp::Remove, &dir, e))?;
        Ok(())
    }
}

#[cold]
fn unreachable_empty() -> ! {
    // `Log::segments` always holds the active segment; reaching this is a Sluice bug.
    unreachable!("log has no active segment")
}
