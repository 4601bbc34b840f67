//! One segment: a `.log` file of whole batches plus its sparse `.index` and
//! `.timeindex`, and the per-segment read paths.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use sluice_protocol::record::{BATCH_HEADER_LEN, BatchHeader};

use crate::backend::{BackendFile, FileBackend};
use crate::config::LogConfig;
use crate::error::{CorruptionKind, IoFailure, ReadError};
use crate::index::{self, IndexBytes, OffsetEntry, TimeEntry, lookup_offset, lookup_time_below};
use crate::scan::{BatchScanner, ScanError, ScannedBatch};
use crate::segment_file::SegmentFile;

/// `max_timestamp` of a segment that holds no batch yet.
pub(crate) const NO_TIMESTAMP_YET: i64 = i64::MIN;

/// File name stem of the segment starting at `base_offset`: 20 digits, zero-padded.
pub(crate) fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// Path of the `.log` file of the segment at `base_offset`.
pub(crate) fn log_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}.log", file_stem(base_offset)))
}

/// Path of the `.index` file beside a `.log` path.
pub(crate) fn index_path(log_path: &Path) -> PathBuf {
    log_path.with_extension("index")
}

/// Path of the `.timeindex` file beside a `.log` path.
pub(crate) fn time_index_path(log_path: &Path) -> PathBuf {
    log_path.with_extension("timeindex")
}

/// Whole batches read from one segment.
#[derive(Debug)]
pub(crate) struct SegmentRead {
    pub(crate) bytes: Bytes,
    pub(crate) base_offset: i64,
    pub(crate) next_offset: i64,
}

/// What the log keeps in memory about a segment: its indexes and summary.
///
/// Separate from the file so that recovery can scan the file while feeding this.
#[derive(Debug)]
pub(crate) struct SegmentIndex {
    base_offset: i64,
    offsets: IndexBytes,
    times: IndexBytes,
    /// Last offset + 1 of the last batch; `base_offset` while empty.
    pub(crate) next_offset: i64,
    /// Largest batch max timestamp, [`NO_TIMESTAMP_YET`] while empty.
    pub(crate) max_timestamp: i64,
    /// Base offset of the first batch carrying `max_timestamp`.
    pub(crate) offset_of_max_timestamp: i64,
    /// Batch bytes appended since the last offset-index entry (active segment only).
    bytes_since_index_entry: u64,
}

/// One segment: its `.log` file and its indexes.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    pub(crate) file: SegmentFile,
    pub(crate) index: SegmentIndex,
    /// When the log first saw the segment hold a batch (ms since the epoch, from the
    /// caller's clock via `Log::roll_if_due`, or the file's mtime after a reopen);
    /// `segment.ms` counts from here. `None` until then.
    pub(crate) first_seen_ms: Option<i64>,
    /// The `.log` file mapped for reads, once the segment is sealed and first read;
    /// `Some(None)` when mapping failed (reads fall back to `pread`). Reads return
    /// slices of it, which keep the mapping alive.
    mapped: std::cell::OnceCell<Option<Bytes>>,
}

fn corrupt(path: &Path, position: u64, kind: CorruptionKind) -> ReadError {
    ReadError::Corrupt {
        path: path.to_path_buf(),
        position,
        kind,
    }
}

fn scan_to_read(path: &Path, e: ScanError) -> ReadError {
    match e {
        ScanError::Io(io) => io.into(),
        ScanError::Corrupt { position, kind } => corrupt(path, position, kind),
    }
}

impl SegmentIndex {
    /// Indexes of a segment with no batch tracked yet.
    pub(crate) fn empty(base_offset: i64) -> Self {
        Self {
            base_offset,
            offsets: IndexBytes::default(),
            times: IndexBytes::default(),
            next_offset: base_offset,
            max_timestamp: NO_TIMESTAMP_YET,
            offset_of_max_timestamp: base_offset,
            bytes_since_index_entry: 0,
        }
    }

    /// Indexes of a sealed segment, loaded (mapped) and checked.
    pub(crate) fn sealed(
        base_offset: i64,
        offsets: IndexBytes,
        times: IndexBytes,
        next_offset: i64,
    ) -> Self {
        let last_time = (times.as_slice().len() / index::TIME_ENTRY_LEN)
            .checked_sub(1)
            .and_then(|i| index::time_entry(times.as_slice(), i));
        let (max_timestamp, offset_of_max_timestamp) = match last_time {
            Some(e) => (
                e.timestamp,
                base_offset.saturating_add(i64::from(e.rel_offset)),
            ),
            None => (NO_TIMESTAMP_YET, base_offset),
        };
        Self {
            base_offset,
            offsets,
            times,
            next_offset,
            max_timestamp,
            offset_of_max_timestamp,
            bytes_since_index_entry: 0,
        }
    }

    /// `offset` relative to the segment base, if it fits an index entry.
    pub(crate) fn relative(&self, offset: i64) -> Option<u32> {
        offset
            .checked_sub(self.base_offset)
            .and_then(|r| u32::try_from(r).ok())
    }

    /// Whether the in-memory indexes cannot take the entries one more batch may add
    /// (one offset entry, one time entry, plus the time entry written at seal).
    pub(crate) fn indexes_full(&self, config: &LogConfig) -> bool {
        let offsets = self.offsets.as_slice().len() / index::OFFSET_ENTRY_LEN;
        let times = self.times.as_slice().len() / index::TIME_ENTRY_LEN;
        offsets.saturating_add(1) > config.max_index_entries()
            || times.saturating_add(2) > config.max_time_index_entries()
    }

    /// Records a batch just written at `position` in the in-memory indexes: an offset
    /// entry (and a time entry for the maximum so far) once `index_interval_bytes` of
    /// batches have gone by since the last one, as Kafka's `LogSegment.append` does.
    pub(crate) fn track_batch(
        &mut self,
        index_interval_bytes: u32,
        position: u64,
        size: u64,
        base_offset: i64,
        next_offset: i64,
        max_timestamp: i64,
    ) {
        if max_timestamp > self.max_timestamp {
            self.max_timestamp = max_timestamp;
            self.offset_of_max_timestamp = base_offset;
        }
        if self.bytes_since_index_entry >= u64::from(index_interval_bytes) {
            // Positions stay below segment_bytes <= i32::MAX and relative offsets are
            // checked by the caller; a failed conversion just skips the entry.
            if let (Some(rel_offset), Ok(position)) =
                (self.relative(base_offset), u32::try_from(position))
                && let Some(entries) = self.offsets.as_memory_mut()
            {
                index::push_offset_entry(
                    entries,
                    OffsetEntry {
                        rel_offset,
                        position,
                    },
                );
            }
            self.maybe_push_time_entry();
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry = self.bytes_since_index_entry.saturating_add(size);
        self.next_offset = next_offset;
    }

    /// Adds `(max timestamp so far, its batch)` to the time index if it is larger than
    /// the last entry, keeping the time index strictly increasing.
    pub(crate) fn maybe_push_time_entry(&mut self) {
        if self.max_timestamp == NO_TIMESTAMP_YET {
            return;
        }
        let Some(rel_offset) = self.relative(self.offset_of_max_timestamp) else {
            return;
        };
        let n = self.times.as_slice().len() / index::TIME_ENTRY_LEN;
        let last = n
            .checked_sub(1)
            .and_then(|i| index::time_entry(self.times.as_slice(), i));
        if last.is_some_and(|e| e.timestamp >= self.max_timestamp) {
            return;
        }
        if let Some(entries) = self.times.as_memory_mut() {
            index::push_time_entry(
                entries,
                TimeEntry {
                    timestamp: self.max_timestamp,
                    rel_offset,
                },
            );
        }
    }

    /// Position of the closest indexed batch at or before the batch holding `offset`,
    /// with that batch's base offset.
    fn indexed_position(&self, offset: i64, file_len: u64) -> (u64, i64) {
        let rel = match offset.checked_sub(self.base_offset) {
            Some(r) if r < 0 => return (0, self.base_offset),
            Some(r) => u32::try_from(r).unwrap_or(u32::MAX),
            None => return (0, self.base_offset),
        };
        match lookup_offset(self.offsets.as_slice(), rel) {
            Some(e) if u64::from(e.position) < file_len => (
                u64::from(e.position),
                self.base_offset.saturating_add(i64::from(e.rel_offset)),
            ),
            _ => (0, self.base_offset),
        }
    }
}

impl Segment {
    /// An active segment over `file` with no batch tracked yet (recovery then feeds
    /// it the batches it finds).
    pub(crate) fn new_active(base_offset: i64, file: SegmentFile) -> Self {
        Self {
            base_offset,
            file,
            index: SegmentIndex::empty(base_offset),
            first_seen_ms: None,
            mapped: std::cell::OnceCell::new(),
        }
    }

    /// A sealed segment over `file` with its loaded indexes.
    pub(crate) fn sealed(base_offset: i64, file: SegmentFile, index: SegmentIndex) -> Self {
        Self {
            base_offset,
            file,
            index,
            first_seen_ms: None,
            mapped: std::cell::OnceCell::new(),
        }
    }

    /// Walks the file's batches from the start (headers only, or whole batches with
    /// their CRC-32C when `verify_crc`), tracking each in the in-memory indexes, which
    /// must be empty. Stops at the end of the file or at the first torn or corrupt
    /// batch: returns the end of the valid prefix and, if it stopped early, where and
    /// why. The file is not changed.
    pub(crate) fn index_by_scan(
        &mut self,
        index_interval_bytes: u32,
        verify_crc: bool,
    ) -> Result<(u64, Option<(u64, CorruptionKind)>), IoFailure> {
        let base = self.base_offset;
        let mut scanner = BatchScanner::new(&self.file, base, 0, base, verify_crc);
        let stop = loop {
            match scanner.next_batch() {
                Ok(Some(b)) => self.index.track_batch(
                    index_interval_bytes,
                    b.position,
                    b.size(),
                    b.header.base_offset,
                    b.last_offset().saturating_add(1),
                    b.header.max_timestamp,
                ),
                Ok(None) => break None,
                Err(ScanError::Io(e)) => return Err(e),
                Err(ScanError::Corrupt { position, kind }) => break Some((position, kind)),
            }
        };
        Ok((scanner.position(), stop))
    }

    /// Offset after the last batch; the base offset while empty.
    pub(crate) fn next_offset(&self) -> i64 {
        self.index.next_offset
    }

    /// Largest max timestamp of the segment's batches.
    pub(crate) fn max_timestamp(&self) -> i64 {
        self.index.max_timestamp
    }

    /// Base offset of the first batch carrying [`max_timestamp`](Self::max_timestamp).
    pub(crate) fn offset_of_max_timestamp(&self) -> i64 {
        self.index.offset_of_max_timestamp
    }

    /// `offset` relative to the segment base, if it fits an index entry.
    pub(crate) fn relative(&self, offset: i64) -> Option<u32> {
        self.index.relative(offset)
    }

    /// See [`SegmentIndex::indexes_full`].
    pub(crate) fn indexes_full(&self, config: &LogConfig) -> bool {
        self.index.indexes_full(config)
    }

    fn indexed_position(&self, offset: i64) -> (u64, i64) {
        self.index.indexed_position(offset, self.file.len())
    }

    /// Whether the segment holds no batch.
    pub(crate) fn is_empty(&self) -> bool {
        self.file.len() == 0
    }

    /// Path of the `.log` file.
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    /// Writes the in-memory indexes to their files (with the final time entry, so the
    /// last time entry of a sealed segment is its maximum timestamp) and returns the
    /// files for a later sync. With `map`, the segment switches to the mapped files:
    /// from then on it is sealed and its indexes are never written again.
    pub(crate) fn write_indexes(
        &mut self,
        backend: &dyn FileBackend,
        map: bool,
    ) -> Result<[Arc<dyn BackendFile>; 2], IoFailure> {
        self.index.maybe_push_time_entry();
        let index_path = index_path(self.path());
        let time_path = time_index_path(self.path());
        let a = index::write_index_file(backend, &index_path, self.index.offsets.as_slice())?;
        let b = index::write_index_file(backend, &time_path, self.index.times.as_slice())?;
        if map {
            let offsets = IndexBytes::map(backend, &index_path)?;
            let times = IndexBytes::map(backend, &time_path)?;
            self.index.offsets = offsets;
            self.index.times = times;
        }
        Ok([a, b])
    }

    /// The batch holding `offset`, or the first batch after it; `None` if every batch
    /// of the segment ends before `offset`.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<ScannedBatch>, ReadError> {
        let (position, min_base) = self.indexed_position(offset);
        let mut scanner =
            BatchScanner::new(&self.file, self.base_offset, position, min_base, false);
        while let Some(batch) = scanner
            .next_batch()
            .map_err(|e| scan_to_read(self.path(), e))?
        {
            if batch.last_offset() >= offset {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }

    /// The first batch with the largest max timestamp among those that end at or
    /// above `min_offset` (a full header walk from there).
    pub(crate) fn max_timestamp_batch_from(
        &self,
        min_offset: i64,
    ) -> Result<Option<ScannedBatch>, ReadError> {
        let (position, min_base) = self.indexed_position(min_offset);
        let mut scanner =
            BatchScanner::new(&self.file, self.base_offset, position, min_base, false);
        let mut best: Option<ScannedBatch> = None;
        while let Some(batch) = scanner
            .next_batch()
            .map_err(|e| scan_to_read(self.path(), e))?
        {
            let better = best
                .as_ref()
                .is_none_or(|b| batch.header.max_timestamp > b.header.max_timestamp);
            if batch.last_offset() >= min_offset && better {
                best = Some(batch);
            }
        }
        Ok(best)
    }

    /// The first batch whose max timestamp is `>= timestamp`, skipping with the time
    /// index.
    /// Batches that end below `min_offset` (the log start) are skipped.
    pub(crate) fn find_timestamp(
        &self,
        timestamp: i64,
        min_offset: i64,
    ) -> Result<Option<ScannedBatch>, ReadError> {
        let start = lookup_time_below(self.index.times.as_slice(), timestamp)
            .map_or(self.base_offset, |e| {
                self.base_offset.saturating_add(i64::from(e.rel_offset))
            });
        let (position, min_base) = self.indexed_position(start);
        let mut scanner =
            BatchScanner::new(&self.file, self.base_offset, position, min_base, false);
        while let Some(batch) = scanner
            .next_batch()
            .map_err(|e| scan_to_read(self.path(), e))?
        {
            if batch.header.max_timestamp >= timestamp && batch.last_offset() >= min_offset {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }

    /// The bytes of one batch found by a scan.
    pub(crate) fn batch_bytes(&self, batch: &ScannedBatch) -> Result<Bytes, ReadError> {
        let mut buf = vec![0u8; batch.header.total_len()];
        self.file.read_at(batch.position, &mut buf)?;
        Ok(Bytes::from(buf))
    }

    /// Whole batches starting with the one holding `offset` (or the first after it),
    /// at most `max_bytes` of them unless `min_one_batch` lets an oversized first batch
    /// through (KIP-74). `None` if every batch of the segment ends before `offset`.
    ///
    /// One `pread` of `index_interval_bytes + max_bytes` from the index hit normally
    /// covers the walk to the first batch and the batches returned; the buffer then
    /// becomes the returned `Bytes` without a copy. A second read happens only when the
    /// first batch does not fit that window.
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        index_interval_bytes: u32,
    ) -> Result<Option<SegmentRead>, ReadError> {
        if let Some(mapped) = self.mapped_log() {
            return self.read_mapped(mapped, offset, max_bytes, min_one_batch);
        }
        let file_len = self.file.len();
        let (mut window_start, mut min_base) = self.indexed_position(offset);
        let window = (index_interval_bytes as usize)
            .saturating_add(max_bytes)
            .max(BATCH_HEADER_LEN);
        'window: loop {
            let remaining = file_len.saturating_sub(window_start);
            if remaining == 0 {
                return Ok(None);
            }
            let len = usize::try_from(remaining).unwrap_or(usize::MAX).min(window);
            let mut buf = vec![0u8; len];
            self.file.read_at(window_start, &mut buf)?;

            // Walk to the batch holding `offset`.
            let mut at = 0usize;
            let first = loop {
                let position = window_start.saturating_add(at as u64);
                if position >= file_len {
                    return Ok(None);
                }
                let Some(head) = buf.get(at..at.saturating_add(BATCH_HEADER_LEN)) else {
                    // The walk left the window (a sparse index gap larger than
                    // expected): read a new window from this batch boundary.
                    window_start = position;
                    continue 'window;
                };
                let header = self.check_header(head, position, min_base)?;
                if header.last_offset() >= offset {
                    break header;
                }
                min_base = header.last_offset().saturating_add(1);
                at = at.saturating_add(header.total_len());
            };

            // Take whole batches while they fit in `max_bytes`.
            let first_at = at;
            let first_len = first.total_len();
            if first_len > max_bytes && !min_one_batch {
                return Ok(Some(SegmentRead {
                    bytes: Bytes::new(),
                    base_offset: offset,
                    next_offset: offset,
                }));
            }
            if first_at.saturating_add(first_len) > buf.len() {
                // The first batch alone is larger than the window: read exactly it.
                let position = window_start.saturating_add(first_at as u64);
                let mut one = vec![0u8; first_len];
                self.file.read_at(position, &mut one)?;
                return Ok(Some(SegmentRead {
                    bytes: Bytes::from(one),
                    base_offset: first.base_offset,
                    next_offset: first.last_offset().saturating_add(1),
                }));
            }
            let (end, next_offset) =
                self.take_batches(&buf, window_start, first_at, &first, max_bytes)?;
            let bytes = Bytes::from(buf).slice(first_at..end);
            return Ok(Some(SegmentRead {
                bytes,
                base_offset: first.base_offset,
                next_offset,
            }));
        }
    }

    /// The mapping of a sealed segment's `.log` (made on first use), `None` for the
    /// active segment or when mapping failed. Sealed means the time index is mapped: a
    /// segment's indexes are mapped exactly when it is sealed.
    fn mapped_log(&self) -> Option<&Bytes> {
        if !matches!(self.index.times, IndexBytes::Mapped(_)) {
            return None;
        }
        self.mapped
            .get_or_init(|| index::map_sealed_log(&self.file).ok().flatten())
            .as_ref()
    }

    /// [`read`](Self::read) over the mapped file of a sealed segment: the returned bytes
    /// are a slice of the mapping, with no copy. Measured faster than `pread`
    /// (`benches/read_path.rs`).
    fn read_mapped(
        &self,
        mapped: &Bytes,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<Option<SegmentRead>, ReadError> {
        let data: &[u8] = mapped;
        let len = usize::try_from(self.file.len())
            .unwrap_or(usize::MAX)
            .min(data.len());
        let (position, mut min_base) = self.indexed_position(offset);
        let mut at = usize::try_from(position).unwrap_or(usize::MAX);
        let first = loop {
            if at >= len {
                return Ok(None);
            }
            let head = data
                .get(at..at.saturating_add(BATCH_HEADER_LEN))
                .unwrap_or(&[]);
            let header = self.check_header(head, at as u64, min_base)?;
            if header.last_offset() >= offset {
                break header;
            }
            min_base = header.last_offset().saturating_add(1);
            at = at.saturating_add(header.total_len());
        };
        let first_at = at;
        let first_len = first.total_len();
        if first_len > max_bytes && !min_one_batch {
            return Ok(Some(SegmentRead {
                bytes: Bytes::new(),
                base_offset: offset,
                next_offset: offset,
            }));
        }
        let data = data.get(..len).unwrap_or(data);
        let (end, next_offset) = self.take_batches(data, 0, first_at, &first, max_bytes)?;
        if end > len {
            // check_header bounds every batch by the file length; the mapping covers
            // the whole sealed file, so this only guards Bytes::slice.
            return Err(corrupt(
                self.path(),
                first_at as u64,
                CorruptionKind::PastEnd {
                    batch_len: (end - first_at) as u64,
                    available: (len.saturating_sub(first_at)) as u64,
                },
            ));
        }
        let bytes = mapped.slice(first_at..end);
        Ok(Some(SegmentRead {
            bytes,
            base_offset: first.base_offset,
            next_offset,
        }))
    }

    /// From the first batch at `first_at` of `data` (file bytes starting at file
    /// position `data_position`), takes whole batches while they stay within
    /// `max_bytes` and within `data`; returns the end index in `data` and the offset
    /// after the last batch taken. Shared by the pread and the mapped read paths.
    fn take_batches(
        &self,
        data: &[u8],
        data_position: u64,
        first_at: usize,
        first: &BatchHeader,
        max_bytes: usize,
    ) -> Result<(usize, i64), ReadError> {
        let mut end = first_at.saturating_add(first.total_len());
        let mut next_offset = first.last_offset().saturating_add(1);
        while let Some(head) = data.get(end..end.saturating_add(BATCH_HEADER_LEN)) {
            let position = data_position.saturating_add(end as u64);
            let header = self.check_header(head, position, next_offset)?;
            let new_end = end.saturating_add(header.total_len());
            if new_end.saturating_sub(first_at) > max_bytes || new_end > data.len() {
                break;
            }
            end = new_end;
            next_offset = header.last_offset().saturating_add(1);
        }
        Ok((end, next_offset))
    }

    /// Parses a header met on the read path and checks it against the file: these
    /// bytes passed recovery, so a failure means corruption after open.
    fn check_header(
        &self,
        head: &[u8],
        position: u64,
        min_base: i64,
    ) -> Result<BatchHeader, ReadError> {
        let header = BatchHeader::parse(head)
            .map_err(|e| corrupt(self.path(), position, CorruptionKind::Header(e)))?;
        let available = self.file.len().saturating_sub(position);
        let size = header.total_len() as u64;
        if size > available {
            return Err(corrupt(
                self.path(),
                position,
                CorruptionKind::PastEnd {
                    batch_len: size,
                    available,
                },
            ));
        }
        if header.base_offset < min_base || header.last_offset_delta < 0 {
            return Err(corrupt(
                self.path(),
                position,
                CorruptionKind::OffsetNotIncreasing {
                    base_offset: header.base_offset,
                    expected: min_base,
                },
            ));
        }
        Ok(header)
    }
}
