//! [`Log`]: the segmented log of one partition.

mod truncate;

pub(crate) use truncate::TRUNCATED_SUFFIX;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use sluice_protocol::record::{BATCH_HEADER_LEN, BatchHeader, set_base_offset};

use crate::backend::{BackendFile, FileBackend, StdBackend, remove_if_exists};
use crate::checkpoint::{self, CLEANER_OFFSET, LOG_START_OFFSET, RECOVERY_POINT};
use crate::cleaner::{self, CleanError, CleanPlan, CleanedSegments, PlannedSegment};
use crate::config::LogConfig;
use crate::error::{
    AppendError, DeleteRecordsError, IoFailure, IoOp, OpenError, ReadError, RetentionError,
    SyncError,
};
use crate::recovery;
use crate::retention::{self, SegmentMeta};
use crate::scan::ScannedBatch;
use crate::segment::{self, Segment};
use crate::segment_file::SegmentFile;

/// What [`Log::enforce_retention`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub segments_deleted: usize,
    /// Bytes of batches in them.
    pub bytes_deleted: u64,
    /// The log start offset afterwards.
    pub log_start_offset: i64,
}

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
    file: Arc<dyn BackendFile>,
    path: PathBuf,
    is_dir: bool,
}

/// A recovery point checkpoint to write once the files of a [`SyncHandle`] are synced.
#[derive(Debug, Clone)]
struct RecoveryCheckpoint {
    backend: Arc<dyn FileBackend>,
    dir: PathBuf,
    dir_file: Arc<dyn BackendFile>,
    value: i64,
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
    /// Set when the active segment starts above the persisted recovery point: once
    /// everything below it is synced, the recovery point moves up to it.
    checkpoint: Option<RecoveryCheckpoint>,
    /// Shared with the log and all its handles: set by the first failed sync.
    failed: Arc<AtomicBool>,
    dir: PathBuf,
}

impl SyncHandle {
    /// Offsets below this are durable once [`run`](Self::run) succeeds.
    pub fn up_to_offset(&self) -> i64 {
        self.up_to_offset
    }

    /// `fdatasync`s the segment files (older sealed ones first) and `fsync`s the
    /// directory if segments were created or removed; then, at most once per segment,
    /// moves the recovery point checkpoint up to the active segment's base offset
    /// (a 24-byte file replaced by rename, two more `fsync`s). Blocking; thread-safe.
    ///
    /// # Errors
    /// [`SyncError::Io`] for the first failed sync, and
    /// [`SyncError::EarlierSyncFailed`] for every sync of the log after that: after a
    /// failed `fsync` the kernel may have dropped the dirty pages and marked them
    /// clean, so a later `fsync` that succeeds proves nothing. Fatal for the
    /// partition; reopening the log in the same boot does not help either (the page
    /// cache still looks right), only recovery after a reboot does.
    pub fn run(&self) -> Result<(), SyncError> {
        self.check()?;
        for p in &self.files {
            if let Err(e) = p.file.sync() {
                self.mark_failed();
                return Err(IoFailure::new(IoOp::Sync, &p.path, e).into());
            }
        }
        self.finish()
    }

    /// Records that a sync of one of [`files`](Self::files) failed, for callers that
    /// sync them themselves: from now on every sync of the log fails.
    pub fn mark_failed(&self) {
        self.failed.store(true, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), SyncError> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(SyncError::EarlierSyncFailed {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// The files [`run`](Self::run) syncs, in order, each with whether it is a
    /// directory (`fsync`) rather than a file (`fdatasync`): for callers that issue the
    /// syncs themselves (through io_uring on [`BackendFile::as_fd`], or
    /// [`BackendFile::sync`] for files without a descriptor), then call
    /// [`finish`](Self::finish).
    pub fn files(&self) -> impl Iterator<Item = (&Arc<dyn BackendFile>, bool)> + '_ {
        self.files.iter().map(|p| (&p.file, p.is_dir))
    }

    /// The rest of [`run`](Self::run) once every file of [`files`](Self::files) is
    /// synced: moves the recovery point checkpoint when this sync covers a new segment
    /// (rare: at most once per segment; blocking, else just a check).
    ///
    /// # Errors
    /// [`SyncError::EarlierSyncFailed`] when a sync of the log failed before (this one
    /// does not count then); [`SyncError::Io`] when the checkpoint cannot be written.
    pub fn finish(&self) -> Result<(), SyncError> {
        self.check()?;
        if let Some(c) = &self.checkpoint {
            let written = checkpoint::write(
                c.backend.as_ref(),
                &c.dir,
                c.dir_file.as_ref(),
                RECOVERY_POINT,
                checkpoint::next_tag(),
                c.value,
            );
            if written.is_err() {
                self.mark_failed();
            }
            written?;
        }
        Ok(())
    }

    /// Whether [`finish`](Self::finish) has a checkpoint to write.
    pub fn has_checkpoint(&self) -> bool {
        self.checkpoint.is_some()
    }
}

/// The segmented log of one partition.
///
/// Owned by one thread (the partition's shard); it takes `&mut self` to write and
/// `&self` to read, and holds no locks.
#[derive(Debug)]
pub struct Log {
    backend: Arc<dyn FileBackend>,
    dir: PathBuf,
    dir_file: Arc<dyn BackendFile>,
    config: LogConfig,
    /// Oldest first, never empty; the last is the active segment.
    segments: Vec<Segment>,
    size_bytes: u64,
    /// First offset readable: at least the first segment's base offset, higher after
    /// [`Log::delete_records`]; persisted in `log-start-offset`.
    log_start: i64,
    /// Value of the `recovery-point` checkpoint on disk (as far as this process knows):
    /// every segment below it was synced.
    recovery_point: i64,
    synced_offset: i64,
    /// Sealed segment files and directory changes not yet covered by a sync.
    pending: Vec<PendingSync>,
    next_seq: u64,
    /// Offsets below this were compacted (`cleaner-offset` checkpoint; 0 if none).
    cleaned_up_to: i64,
    /// Set by the first failed sync (see [`SyncHandle::run`]); shared with the
    /// handles, which may run on other threads.
    sync_failed: Arc<AtomicBool>,
}

/// What [`Log::install_cleaned`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallOutcome {
    /// Segments replaced by their cleaned file.
    pub segments_installed: usize,
    /// Cleaned files dropped because their segment was removed or changed meanwhile.
    pub segments_skipped: usize,
    /// Bytes of the replaced segments before.
    pub bytes_before: u64,
    /// Bytes of the replaced segments after.
    pub bytes_after: u64,
    /// The cleaner offset afterwards.
    pub cleaned_up_to: i64,
}

impl Log {
    /// Opens the log in `dir` (created if missing; an empty directory is an empty log
    /// starting at offset 0) and recovers it.
    ///
    /// After a clean shutdown ([`close`](Self::close) left its marker) the last segment
    /// is checked batch by batch (length, magic, CRC-32C, increasing offsets) and cut
    /// at the first torn or corrupt batch; missing or malformed indexes of sealed
    /// segments are rebuilt. After an unclean one, every segment from the persisted
    /// recovery point on (all of them without a readable checkpoint) gets that full
    /// check and its indexes rebuilt; the first bad batch cuts the log there and the
    /// later segments are removed.
    ///
    /// The log start offset is restored from its checkpoint (segments wholly below it
    /// are removed). If it lies past the recovered log end (records deleted up to data
    /// that a crash then lost) the log restarts empty at the log start offset, as Kafka
    /// does, so that offsets are not handed out twice.
    ///
    /// # Errors
    /// [`OpenError::InvalidConfig`] for a bad `config`, [`OpenError::Io`] when the
    /// directory or a file cannot be read, written or created.
    pub fn open(dir: &Path, config: LogConfig) -> Result<Self, OpenError> {
        Self::open_with(dir, config, StdBackend::shared())
    }

    /// [`open`](Self::open) on the file system `backend` ([`StdBackend`] for real
    /// files; an in-memory or fault-injecting one in tests). Every file operation of
    /// the log, its [`SyncHandle`]s and its cleaner goes through it.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(
        dir: &Path,
        config: LogConfig,
        backend: Arc<dyn FileBackend>,
    ) -> Result<Self, OpenError> {
        config.validate()?;
        let b = backend.as_ref();
        create_dir_durably(b, dir)?;
        let dir_file = b
            .open_dir(dir)
            .map_err(|e| IoFailure::new(IoOp::Open, dir, e))?;
        checkpoint::remove_temporaries(b, dir)?;
        cleaner::remove_leftovers(b, dir)?;
        let cleaned_up_to = checkpoint::read(b, dir, CLEANER_OFFSET)?.unwrap_or(0);
        let clean = checkpoint::clean_marker_exists(b, dir)?;
        let recovery_point = checkpoint::read(b, dir, RECOVERY_POINT)?;
        let saved_log_start = checkpoint::read(b, dir, LOG_START_OFFSET)?;
        let full_scan_from = if clean {
            i64::MAX
        } else {
            recovery_point.unwrap_or(0)
        };
        if !clean {
            tracing::info!(dir = %dir.display(), full_scan_from,
                "no clean shutdown: checking every segment from the recovery point");
        }
        let loaded = recovery::load(b, dir, &config, full_scan_from)?;
        let size_bytes = loaded.segments.iter().map(|s| s.file.len()).sum();
        let mut log = Self {
            backend,
            dir: dir.to_path_buf(),
            dir_file,
            config,
            segments: loaded.segments,
            size_bytes,
            log_start: 0,
            recovery_point: recovery_point.unwrap_or(0),
            synced_offset: 0,
            pending: Vec::new(),
            next_seq: 0,
            cleaned_up_to,
            sync_failed: Arc::new(AtomicBool::new(false)),
        };
        log.log_start = log.first_segment_base();
        let active = log.active_mut();
        if !active.is_empty() {
            active.first_seen_ms = active.file.modified_ms()?;
        }
        // What the previous process wrote may still sit in the page cache: nothing is
        // known durable until the first sync, which covers every segment, and the
        // directory after an unclean shutdown (the segments it created may never have
        // had their names synced) or when recovery changed files.
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
        for (file, path) in loaded.index_files {
            log.push_pending(file, path, false);
        }
        if loaded.changed || !clean {
            log.push_dir_pending();
        }
        // From here on a crash must be seen as unclean.
        if clean {
            checkpoint::remove_clean_marker(log.backend.as_ref(), &log.dir, log.dir_file.as_ref())?;
        }
        if let Some(saved) = saved_log_start {
            log.restore_log_start(saved)?;
        }
        // Recovery cut the log below the recovery point (synced data was damaged):
        // the segments written from here on are not synced, lower the checkpoint.
        log.lower_recovery_point_to_active()?;
        log.synced_offset = log.log_start_offset();
        tracing::debug!(dir = %log.dir.display(), segments = log.segments.len(), clean,
            log_start_offset = log.log_start_offset(), log_end_offset = log.log_end_offset(),
            recovery_point = log.recovery_point, "opened log");
        Ok(log)
    }

    /// Applies the log start offset read from its checkpoint.
    fn restore_log_start(&mut self, saved: i64) -> Result<(), IoFailure> {
        let leo = self.log_end_offset();
        if saved > leo {
            tracing::warn!(dir = %self.dir.display(), log_start_offset = saved,
                log_end_offset = leo,
                "log start offset is past the recovered log end; restarting the log empty there");
            let file =
                SegmentFile::create(self.backend.as_ref(), &segment::log_path(&self.dir, saved))?;
            let old = std::mem::replace(&mut self.segments, vec![Segment::new_active(saved, file)]);
            let bases: Vec<i64> = old.iter().map(|s| s.base_offset).collect();
            // Unmap and close before unlinking.
            drop(old);
            self.pending.clear();
            self.size_bytes = 0;
            self.log_start = saved;
            self.push_dir_pending();
            for base in bases {
                recovery::remove_segment_files(self.backend.as_ref(), &self.dir, base)?;
            }
        } else if saved > self.log_start {
            self.log_start = saved;
            self.delete_below_log_start()?;
        }
        Ok(())
    }

    /// Every segment below the recovery point was synced: when the log was cut below
    /// it (recovery found damage, or a truncation), the segments from the active one on
    /// are not, so the checkpoint comes down to the active segment's base.
    fn lower_recovery_point_to_active(&mut self) -> Result<(), IoFailure> {
        let active_base = self.active().base_offset;
        if self.recovery_point > active_base {
            checkpoint::write(
                self.backend.as_ref(),
                &self.dir,
                self.dir_file.as_ref(),
                RECOVERY_POINT,
                checkpoint::next_tag(),
                active_base,
            )?;
            self.recovery_point = active_base;
        }
        Ok(())
    }

    fn push_pending(&mut self, file: Arc<dyn BackendFile>, path: PathBuf, is_dir: bool) {
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

    /// Applies changed settings (a topic's `segment.bytes`, `index.interval.bytes`,
    /// `segment.index.bytes` altered at run time). They take effect from the next append:
    /// the active segment rolls by the new size, existing segments are left as they are.
    ///
    /// # Errors
    /// [`ConfigError`](crate::ConfigError) when the new config is unusable; the old one
    /// stays.
    pub fn set_config(&mut self, config: LogConfig) -> Result<(), crate::ConfigError> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// First offset in the log: the base offset of the oldest segment, or higher after
    /// [`delete_records`](Self::delete_records) (it may then fall inside a batch).
    pub fn log_start_offset(&self) -> i64 {
        self.log_start
    }

    fn first_segment_base(&self) -> i64 {
        self.segments.first().map_or(0, |s| s.base_offset)
    }

    /// The persisted recovery point: every segment below it was synced, so after an
    /// unclean shutdown only the segments from it on are scanned in full.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// Offset the next appended record gets: the last batch's last offset + 1.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// Whether sealed segments, their indexes or directory changes wait for a sync
    /// (after a roll, a retention pass, or an unclean open). Kafka flushes a rolled
    /// segment in the background; callers use this to do the same. False once a sync
    /// has failed (no later sync can succeed).
    pub fn has_unsynced_sealed(&self) -> bool {
        !self.pending.is_empty() && !self.sync_failed.load(Ordering::SeqCst)
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
        Ok(self.roll_inner()?)
    }

    fn roll_inner(&mut self) -> Result<(), IoFailure> {
        if self.active().is_empty() {
            return Ok(());
        }
        let base_offset = self.log_end_offset();
        let path = segment::log_path(&self.dir, base_offset);
        let backend = Arc::clone(&self.backend);
        let file = SegmentFile::create(backend.as_ref(), &path)?;
        let sealed = match self.active_mut().write_indexes(backend.as_ref(), true) {
            Ok(files) => files,
            Err(e) => {
                drop(file);
                if let Err(rm) = backend.remove_file(&path) {
                    tracing::error!(path = %path.display(), error = %rm,
                        "cannot remove new segment after a failed roll");
                }
                return Err(e);
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
        let checkpoint = (active.base_offset > self.recovery_point).then(|| RecoveryCheckpoint {
            backend: Arc::clone(&self.backend),
            dir: self.dir.clone(),
            dir_file: Arc::clone(&self.dir_file),
            value: active.base_offset,
        });
        SyncHandle {
            files,
            up_to_offset: self.log_end_offset(),
            seq: self.next_seq,
            checkpoint,
            failed: Arc::clone(&self.sync_failed),
            dir: self.dir.clone(),
        }
    }

    /// Records that `handle` ran successfully: offsets below its
    /// [`up_to_offset`](SyncHandle::up_to_offset) are durable.
    pub fn mark_synced(&mut self, handle: &SyncHandle) {
        self.synced_offset = self.synced_offset.max(handle.up_to_offset);
        self.pending.retain(|p| p.seq > handle.seq);
        if let Some(c) = &handle.checkpoint {
            self.recovery_point = self.recovery_point.max(c.value);
        }
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
    /// scan; batches that end below the log start offset are skipped. The broker looks
    /// inside the batch for the exact record (at or above the log start offset). `None`
    /// if no batch is that recent.
    ///
    /// # Errors
    /// [`ReadError::Io`] or [`ReadError::Corrupt`].
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<BatchAt>, ReadError> {
        for segment in &self.segments {
            if segment.is_empty()
                || segment.max_timestamp() < timestamp
                || segment.next_offset() <= self.log_start
            {
                continue;
            }
            if let Some(b) = segment.find_timestamp(timestamp, self.log_start)? {
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
        let mut best: Option<(&Segment, ScannedBatch)> = None;
        for s in self.segments.iter().filter(|s| !s.is_empty()) {
            if best
                .as_ref()
                .is_some_and(|(_, b)| s.max_timestamp() <= b.header.max_timestamp)
            {
                continue;
            }
            let found = if s.base_offset < self.log_start {
                // DeleteRecords may have cut into this segment: its recorded maximum
                // can lie below the log start, so look at the batches still readable.
                s.max_timestamp_batch_from(self.log_start)?
            } else {
                s.find_batch(s.offset_of_max_timestamp())?
            };
            if let Some(b) = found
                && best
                    .as_ref()
                    .is_none_or(|(_, x)| b.header.max_timestamp > x.header.max_timestamp)
            {
                best = Some((s, b));
            }
        }
        let Some((segment, b)) = best else {
            return Ok(None);
        };
        Ok(Some(BatchAt {
            base_offset: b.header.base_offset,
            last_offset: b.last_offset(),
            max_timestamp: b.header.max_timestamp,
            bytes: segment.batch_bytes(&b)?,
        }))
    }

    /// Kafka DeleteRecords: moves the log start offset up to `new_log_start` and
    /// removes every segment that lies wholly below it. Returns the new log start.
    ///
    /// `new_log_start` must lie in `[log_start_offset, log_end_offset]`; asking for the
    /// current log start changes nothing. The new value is made durable (the
    /// `log-start-offset` checkpoint: temporary file, `fsync`, rename, directory
    /// `fsync`) before any segment is removed, so a reopen restores it. Reads below it
    /// then fail with [`ReadError::OffsetOutOfRange`]; a read at it returns the batch
    /// holding it whole (the consumer skips the records before its offset). The active
    /// segment is never removed: when everything lies below `new_log_start` (it equals
    /// the log end), the log first rolls to an empty segment at the log end.
    ///
    /// # Errors
    /// [`DeleteRecordsError::OffsetOutOfRange`] for an offset outside the range
    /// (nothing changes); [`DeleteRecordsError::Io`] when rolling, the checkpoint or
    /// removing files fails.
    pub fn delete_records(&mut self, new_log_start: i64) -> Result<i64, DeleteRecordsError> {
        let (start, end) = (self.log_start, self.log_end_offset());
        if new_log_start < start || new_log_start > end {
            return Err(DeleteRecordsError::OffsetOutOfRange {
                requested: new_log_start,
                log_start_offset: start,
                log_end_offset: end,
            });
        }
        if new_log_start == start {
            return Ok(start);
        }
        if new_log_start == end {
            self.roll_inner()?;
        }
        self.persist_log_start(new_log_start)?;
        let (segments, bytes) = self.delete_below_log_start()?;
        tracing::info!(dir = %self.dir.display(), log_start_offset = new_log_start,
            segments_deleted = segments, bytes_deleted = bytes, "deleted records");
        Ok(new_log_start)
    }

    /// Kafka retention (`retention.ms`, `retention.bytes`, both `-1` for none): deletes
    /// whole segments from the oldest, first while the segment's largest timestamp is
    /// more than `retention_ms` before `now_ms`, then while the log's size without the
    /// segment stays at or above `retention_bytes`, then while the segment lies wholly
    /// below the log start offset. Each rule stops at the first segment it keeps.
    ///
    /// A segment's largest timestamp is the largest `maxTimestamp` of its batches (the
    /// file's modification time if none is `>= 0`, as Kafka does). An empty active
    /// segment is never deleted; when every segment is due, the non-empty active one
    /// included, the log rolls first and deletes them all (the log then holds one
    /// empty segment at the log end). The log start offset moves up to the first
    /// remaining segment's base offset and is made durable before files are removed.
    ///
    /// Retention does not know the high watermark: the caller must not ask for it
    /// (for instance with `retention_bytes == 0`) where that would delete records that
    /// are not committed yet.
    ///
    /// # Errors
    /// [`RetentionError::Io`] when reading a file's time, rolling, the checkpoint or
    /// removing files fails.
    pub fn enforce_retention(
        &mut self,
        now_ms: i64,
        retention_ms: i64,
        retention_bytes: i64,
    ) -> Result<RetentionOutcome, RetentionError> {
        let metas = self.segment_metas()?;
        let n = retention::deletable(
            &metas,
            now_ms,
            retention_ms,
            retention_bytes,
            self.log_start,
        );
        if n == 0 {
            return Ok(RetentionOutcome {
                segments_deleted: 0,
                bytes_deleted: 0,
                log_start_offset: self.log_start,
            });
        }
        if n >= self.segments.len() {
            // `deletable` counts the active segment only when it is non-empty.
            self.roll_inner()?;
        }
        let first_kept = self
            .segments
            .get(n)
            .map_or(self.log_start, |s| s.base_offset);
        if first_kept > self.log_start {
            self.persist_log_start(first_kept)?;
        }
        let (segments_deleted, bytes_deleted) = self.delete_oldest(n)?;
        tracing::info!(dir = %self.dir.display(), segments_deleted, bytes_deleted,
            log_start_offset = self.log_start, "retention deleted segments");
        Ok(RetentionOutcome {
            segments_deleted,
            bytes_deleted,
            log_start_offset: self.log_start,
        })
    }

    /// Kafka `segment.ms`: rolls the active segment if it holds a batch and was first
    /// seen holding one more than `segment_ms` before `now_ms`. Returns whether it
    /// rolled. A negative `segment_ms` never rolls.
    ///
    /// The log reads no clock: a segment's age counts from the first call that sees
    /// it non-empty (so call this periodically, as Kafka's roll check runs on every
    /// append), or from the file's modification time for the active segment found by
    /// [`open`](Self::open) (later than its first append: a reopened segment rolls a
    /// little late, never early).
    ///
    /// # Errors
    /// As [`roll`](Self::roll).
    pub fn roll_if_due(&mut self, now_ms: i64, segment_ms: i64) -> Result<bool, AppendError> {
        let active = self.active_mut();
        if active.is_empty() {
            return Ok(false);
        }
        let since = *active.first_seen_ms.get_or_insert(now_ms);
        if segment_ms < 0 || now_ms.saturating_sub(since) <= segment_ms {
            return Ok(false);
        }
        self.roll_inner()?;
        Ok(true)
    }

    /// Retention's view of the segments.
    fn segment_metas(&self) -> Result<Vec<SegmentMeta>, IoFailure> {
        self.segments
            .iter()
            .map(|s| {
                let largest_timestamp = if s.max_timestamp() >= 0 || s.is_empty() {
                    s.max_timestamp()
                } else {
                    // No mtime: treat the segment as new rather than delete it.
                    s.file.modified_ms()?.unwrap_or(i64::MAX)
                };
                Ok(SegmentMeta {
                    base_offset: s.base_offset,
                    next_offset: s.next_offset(),
                    size: s.file.len(),
                    largest_timestamp,
                })
            })
            .collect()
    }

    /// Makes `log_start` durable in its checkpoint, then adopts it.
    fn persist_log_start(&mut self, log_start: i64) -> Result<(), IoFailure> {
        checkpoint::write(
            self.backend.as_ref(),
            &self.dir,
            self.dir_file.as_ref(),
            LOG_START_OFFSET,
            checkpoint::next_tag(),
            log_start,
        )?;
        self.log_start = self.log_start.max(log_start);
        Ok(())
    }

    /// Removes the sealed segments that lie wholly below the log start offset, rolling
    /// first if the active segment does too. Returns (segments, bytes) removed.
    fn delete_below_log_start(&mut self) -> Result<(usize, u64), IoFailure> {
        let active = self.active();
        if !active.is_empty() && active.next_offset() <= self.log_start {
            self.roll_inner()?;
        }
        let sealed = self.segments.len().saturating_sub(1);
        let n = self
            .segments
            .iter()
            .take(sealed)
            .take_while(|s| s.next_offset() <= self.log_start)
            .count();
        self.delete_oldest(n)
    }

    /// Removes the `n` oldest segments (never the active one): drops them (unmapping
    /// their indexes and closing their files) and unlinks their files. A
    /// [`SyncHandle`] taken earlier may still hold a sealed file open; syncing an
    /// unlinked file is harmless. Returns (segments, bytes) removed.
    fn delete_oldest(&mut self, n: usize) -> Result<(usize, u64), IoFailure> {
        let n = n.min(self.segments.len().saturating_sub(1));
        if n == 0 {
            return Ok((0, 0));
        }
        let removed: Vec<Segment> = self.segments.drain(..n).collect();
        let mut bytes = 0u64;
        let mut first_error = None;
        for seg in removed {
            let base = seg.base_offset;
            let log_path = seg.path().to_path_buf();
            bytes = bytes.saturating_add(seg.file.len());
            drop(seg);
            self.pending
                .retain(|p| p.is_dir || p.path.with_extension("log") != log_path);
            // Keep removing the others; the first failure is returned. Files left
            // behind lie below the log start and are removed by the next open.
            if let Err(e) = recovery::remove_segment_files(self.backend.as_ref(), &self.dir, base) {
                first_error.get_or_insert(e);
            }
        }
        self.size_bytes = self.size_bytes.saturating_sub(bytes);
        self.log_start = self.log_start.max(self.first_segment_base());
        self.push_dir_pending();
        match first_error {
            Some(e) => Err(e),
            None => Ok((n, bytes)),
        }
    }

    /// Offsets below this have been compacted (the `cleaner-offset` checkpoint; 0 when
    /// the log was never cleaned).
    pub fn cleaned_up_to(&self) -> i64 {
        self.cleaned_up_to
    }

    /// What log compaction could clean now, or `None` when nothing is dirty.
    ///
    /// The cleanable segments are the sealed ones from the oldest on, up to (not
    /// including) the first whose largest timestamp is later than
    /// `now_ms - min_compaction_lag_ms` (its file's modification time when it has no
    /// timestamp); the active segment never is. Of those, the segments that end at or
    /// below the cleaner offset ([`cleaned_up_to`](Self::cleaned_up_to), at least the
    /// log start offset) are clean, the others dirty; [`CleanPlan::dirty_ratio`] is
    /// Kafka's dirty ratio over them. The plan holds shared handles of the segment
    /// files, so [`cleaner::clean`] reads the files as they were even if the log
    /// changes meanwhile. No I/O except the modification time of segments without
    /// timestamps.
    pub fn cleanable(&self, now_ms: i64, min_compaction_lag_ms: i64) -> Option<CleanPlan> {
        let first_dirty = self.cleaned_up_to.max(self.log_start);
        let lag_limit = now_ms.saturating_sub(min_compaction_lag_ms.max(0));
        let sealed = self.segments.len().saturating_sub(1);
        let mut segments = Vec::new();
        let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
        for s in self.segments.iter().take(sealed) {
            if s.is_empty() {
                continue;
            }
            let largest = if s.max_timestamp() >= 0 {
                s.max_timestamp()
            } else {
                s.file.modified_ms().ok().flatten().unwrap_or(i64::MAX)
            };
            if largest > lag_limit {
                break;
            }
            let size = s.file.len();
            if s.next_offset() <= first_dirty {
                clean_bytes = clean_bytes.saturating_add(size);
            } else {
                dirty_bytes = dirty_bytes.saturating_add(size);
            }
            segments.push(PlannedSegment {
                base_offset: s.base_offset,
                next_offset: s.next_offset(),
                size,
                file: s.file.shared(),
                path: s.path().to_path_buf(),
            });
        }
        if dirty_bytes == 0 {
            return None;
        }
        Some(CleanPlan {
            backend: Arc::clone(&self.backend),
            sync_failed: Arc::clone(&self.sync_failed),
            dir: self.dir.clone(),
            segments,
            first_dirty_offset: first_dirty,
            clean_bytes,
            dirty_bytes,
        })
    }

    /// Swaps the segments rewritten by [`cleaner::clean`] in, on the owner thread, then
    /// moves the cleaner offset up to [`CleanedSegments::cleaned_up_to`] (durably).
    ///
    /// A cleaned file replaces its segment only if the log still holds that very
    /// segment file, sealed; otherwise (retention or DeleteRecords removed it, or the
    /// log was reopened) it is deleted and counted as skipped. For each segment: the
    /// cleaned file (synced by `clean`) is scanned to build its indexes in memory and
    /// must end at the same offset; the old index files are unlinked (their mappings
    /// stay valid: nothing truncates a mapped file), the cleaned file is renamed over
    /// the `.log` and the directory synced; the new index files are written, synced and
    /// mapped; only then is the old segment dropped (unmapping its indexes, closing its
    /// handle). A crash at any point leaves either the old or the new complete `.log`,
    /// possibly without index files, which [`open`](Self::open) rebuilds; leftover
    /// `.cleaned` files are removed by `open`. Offsets, the log start and end offsets
    /// and segment boundaries do not change; a [`ReadSlice`] or [`SyncHandle`] taken
    /// before keeps its bytes or old handle.
    ///
    /// # Errors
    /// [`CleanError::Io`] when a rename, write or sync fails; segments installed
    /// before the failure stay installed, the cleaner offset is not moved, and the
    /// remaining cleaned files are removed.
    pub fn install_cleaned(
        &mut self,
        mut cleaned: CleanedSegments,
    ) -> Result<InstallOutcome, CleanError> {
        let pending = std::mem::take(&mut cleaned.segments);
        let mut outcome = InstallOutcome {
            segments_installed: 0,
            segments_skipped: 0,
            bytes_before: 0,
            bytes_after: 0,
            cleaned_up_to: self.cleaned_up_to,
        };
        let mut changed_meanwhile = false;
        let mut rest = pending.into_iter();
        while let Some(c) = rest.next() {
            let sealed = self.segments.len().saturating_sub(1);
            let found = self
                .segments
                .iter()
                .take(sealed)
                .position(|s| s.base_offset == c.base_offset);
            let same = found.filter(|&i| {
                self.segments.get(i).is_some_and(|s| {
                    Arc::ptr_eq(&s.file.shared(), &c.source) && s.next_offset() == c.next_offset
                })
            });
            // After a segment that changed (not just removed) nothing later is
            // installed: a later rewrite may have dropped a tombstone whose older
            // values live in the segment left as it was.
            let same = same.filter(|_| !changed_meanwhile);
            let Some(i) = same else {
                changed_meanwhile |= found.is_some()
                    || self
                        .segments
                        .last()
                        .is_some_and(|s| s.base_offset == c.base_offset);
                cleaner::remove_quietly(self.backend.as_ref(), &c.cleaned_path);
                outcome.segments_skipped = outcome.segments_skipped.saturating_add(1);
                continue;
            };
            match self.install_one(i, &c) {
                Ok(Some((before, after))) => {
                    outcome.segments_installed = outcome.segments_installed.saturating_add(1);
                    outcome.bytes_before = outcome.bytes_before.saturating_add(before);
                    outcome.bytes_after = outcome.bytes_after.saturating_add(after);
                }
                Ok(None) => {
                    cleaner::remove_quietly(self.backend.as_ref(), &c.cleaned_path);
                    changed_meanwhile = true;
                    outcome.segments_skipped = outcome.segments_skipped.saturating_add(1);
                }
                Err(e) => {
                    cleaner::remove_quietly(self.backend.as_ref(), &c.cleaned_path);
                    // `cleaned`'s drop removes the files not installed.
                    cleaned.segments = rest.collect();
                    return Err(e);
                }
            }
        }
        if !changed_meanwhile && cleaned.cleaned_up_to > self.cleaned_up_to {
            checkpoint::write(
                self.backend.as_ref(),
                &self.dir,
                self.dir_file.as_ref(),
                CLEANER_OFFSET,
                checkpoint::next_tag(),
                cleaned.cleaned_up_to,
            )?;
            self.cleaned_up_to = cleaned.cleaned_up_to;
        }
        outcome.cleaned_up_to = self.cleaned_up_to;
        tracing::info!(dir = %self.dir.display(), installed = outcome.segments_installed,
            skipped = outcome.segments_skipped, bytes_before = outcome.bytes_before,
            bytes_after = outcome.bytes_after, cleaned_up_to = self.cleaned_up_to,
            "installed cleaned segments");
        Ok(outcome)
    }

    /// Installs one cleaned file over sealed segment `i`. `Ok(None)` when the file does
    /// not hold what the clean promised (nothing changed then). Returns the sizes
    /// before and after.
    fn install_one(
        &mut self,
        i: usize,
        c: &cleaner::CleanedSegment,
    ) -> Result<Option<(u64, u64)>, CleanError> {
        let Some(old) = self.segments.get(i) else {
            return Ok(None);
        };
        let log_path = old.path().to_path_buf();
        let first_seen_ms = old.first_seen_ms;
        let before = old.file.len();
        let backend = Arc::clone(&self.backend);
        let file = SegmentFile::open(backend.as_ref(), &c.cleaned_path)?;
        if file.len() != c.cleaned_size || file.len() == 0 {
            return Ok(None);
        }
        let base = c.base_offset;
        let mut seg = Segment::new_active(base, file);
        let (_, stop) = seg.index_by_scan(self.config.index_interval_bytes, false)?;
        if let Some((position, kind)) = stop {
            tracing::warn!(path = %c.cleaned_path.display(), position, reason = %kind,
                "cleaned segment does not scan; not installed");
            return Ok(None);
        }
        if seg.next_offset() != c.next_offset {
            return Ok(None);
        }
        seg.first_seen_ms = first_seen_ms;
        // The old index files may be mapped: unlink them, never truncate them. Until
        // the new ones exist, open rebuilds missing index files.
        for path in [
            segment::index_path(&log_path),
            segment::time_index_path(&log_path),
        ] {
            remove_if_exists(backend.as_ref(), &path)
                .map_err(|e| IoFailure::new(IoOp::Remove, &path, e))?;
        }
        seg.file.rename_to(backend.as_ref(), &log_path)?;
        self.dir_file
            .sync()
            .map_err(|e| IoFailure::new(IoOp::Sync, &self.dir, e))?;
        let written = seg.write_indexes(backend.as_ref(), true)?;
        for (f, path) in written.iter().zip([
            segment::index_path(&log_path),
            segment::time_index_path(&log_path),
        ]) {
            f.sync().map_err(|e| IoFailure::new(IoOp::Sync, &path, e))?;
        }
        self.dir_file
            .sync()
            .map_err(|e| IoFailure::new(IoOp::Sync, &self.dir, e))?;
        let after = seg.file.len();
        let Some(slot) = self.segments.get_mut(i) else {
            return Ok(None);
        };
        // Drops the old segment: unmaps its indexes, closes its handle.
        drop(std::mem::replace(slot, seg));
        self.size_bytes = self.size_bytes.saturating_sub(before).saturating_add(after);
        Ok(Some((before, after)))
    }

    /// Clean shutdown: writes the active segment's indexes, syncs everything (moving
    /// the recovery point up to the active segment) and leaves the clean-shutdown
    /// marker, so the next [`open`](Self::open) checks only the active segment.
    ///
    /// # Errors
    /// [`SyncError::Io`] when writing an index or the marker or a sync fails (no
    /// marker then: the next open does the unclean-shutdown checks).
    pub fn close(mut self) -> Result<(), SyncError> {
        let backend = Arc::clone(&self.backend);
        let active = self.active_mut();
        let path = active.path().to_path_buf();
        let [index_file, time_file] = active.write_indexes(backend.as_ref(), false)?;
        self.push_pending(index_file, segment::index_path(&path), false);
        self.push_pending(time_file, segment::time_index_path(&path), false);
        self.push_dir_pending();
        self.sync()?;
        checkpoint::write_clean_marker(self.backend.as_ref(), &self.dir, self.dir_file.as_ref())?;
        tracing::debug!(dir = %self.dir.display(), "closed log");
        Ok(())
    }

    /// Removes the partition directory and everything in it.
    ///
    /// # Errors
    /// [`SyncError::Io`] when the directory cannot be removed.
    pub fn delete(self) -> Result<(), SyncError> {
        let dir = self.dir.clone();
        let backend = Arc::clone(&self.backend);
        // Unmap and close everything first.
        drop(self);
        backend
            .remove_dir_all(&dir)
            .map_err(|e| IoFailure::new(IoOp::Remove, &dir, e))?;
        Ok(())
    }
}

/// Creates `dir` (and missing parents) so that it survives a crash: each directory
/// created is made durable by syncing its parent, as a file's name is by syncing its
/// directory. An existing directory costs one `stat`.
fn create_dir_durably(backend: &dyn FileBackend, dir: &Path) -> Result<(), IoFailure> {
    let exists = |p: &Path| {
        backend
            .exists(p)
            .map_err(|e| IoFailure::new(IoOp::Metadata, p, e))
    };
    let mut created = Vec::new();
    for d in dir.ancestors().filter(|d| !d.as_os_str().is_empty()) {
        if exists(d)? {
            break;
        }
        created.push(d);
    }
    if created.is_empty() {
        return Ok(());
    }
    backend
        .create_dir_all(dir)
        .map_err(|e| IoFailure::new(IoOp::CreateDir, dir, e))?;
    for d in created {
        let parent = match d.parent() {
            Some(p) if p.as_os_str().is_empty() => Path::new("."),
            Some(p) => p,
            None => continue,
        };
        backend
            .open_dir(parent)
            .and_then(|f| f.sync())
            .map_err(|e| IoFailure::new(IoOp::Sync, parent, e))?;
    }
    Ok(())
}

#[cold]
fn unreachable_empty() -> ! {
    // `Log::segments` always holds the active segment; reaching this is a Sluice bug.
    unreachable!("log has no active segment")
}
