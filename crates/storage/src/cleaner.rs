//! Log compaction (Kafka `cleanup.policy=compact`), in three steps so that the shard
//! thread never waits for it:
//!
//! ```text
//!  owner thread                     any thread                         owner thread
//!  Log::cleanable(now, lag) ──▶ cleaner::clean(&plan, ...) ──▶ Log::install_cleaned(done)
//!  (which sealed segments,       pass 1: key map over the dirty   rename <base>.log.cleaned
//!   dirty ratio, shared file      range (bounded; stops early      over <base>.log, rebuild
//!   handles)                      when full)                       indexes, cleaner-offset
//!                                 pass 2: rewrite each segment
//!                                 into <base>.log.cleaned, fsync
//! ```
//!
//! **Clean and dirty.** `cleaner-offset` (a checkpoint in the partition directory)
//! holds the offset up to which the log has been compacted. Sealed segments from the
//! log start up to the first segment newer than `min.compaction.lag.ms` are
//! *cleanable*; the part of them at or above the cleaner offset is *dirty*. The dirty
//! ratio (dirty bytes / cleanable bytes, whole segments, as Kafka counts them) is
//! for the caller to compare with `min.cleanable.dirty.ratio`.
//!
//! **Key map.** Pass 1 maps a 64-bit hash of each key in the dirty range to the
//! offset of its latest record. It holds at most `key_map_capacity` keys: at the first
//! new key that does not fit, the map stops there (`map_end`), and only records below
//! `map_end` can be removed this round; the next round starts there. A hash collision
//! between two keys (about 2^-64 per pair) would drop a record of one of them, as with
//! Kafka's MD5-based map.
//!
//! **Rewrite.** Pass 2 rewrites every cleanable segment that starts below `map_end`.
//! A record with offset below `map_end` is removed when the map holds a later offset
//! for its key, or when it is a tombstone (null value) that is the latest for its key
//! and its batch's `maxTimestamp` is more than `delete.retention.ms` old. Records
//! without a key, records at or above `map_end` and control batches are kept as they
//! are. A batch keeps its header (base offset, `lastOffsetDelta`, timestamps,
//! producer id/epoch/sequence, attributes, codec) and its kept records byte for byte;
//! only the record count, length and CRC change (the records section is compressed
//! again with the same codec). A batch with no record left is dropped, except the last
//! batch of a segment, which stays as an empty batch (no records, codec bits none) so
//! that each segment still ends where the next begins: offsets never move and the log
//! end offset never changes.
//!
//! **Install.** See [`Log::install_cleaned`](crate::Log::install_cleaned). A crash
//! leaves at most `.cleaned` files behind, which [`Log::open`](crate::Log::open)
//! removes; a `.log` is only ever replaced by a complete, synced file (rename).
//!
//! Cleaning runs only when something is dirty: tombstones in the clean part expire
//! at the next clean after their deadline, which needs new dirty segments (as in
//! Kafka, where the dirty ratio triggers a clean).
//!
//! Not done: aborted transactional records are not removed, and empty batches are
//! not kept to preserve producer state (Kafka keeps the last batch of each producer).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use sluice_protocol::record::{
    BATCH_HEADER_LEN, BatchHeader, Compression, CompressionError, LOG_OVERHEAD, compute_crc,
    decompress, read_varint, read_varlong, try_compress,
};

use crate::backend::{BackendFile, FileBackend, remove_if_exists};
use crate::error::{CorruptionKind, IoFailure, IoOp};

/// Suffix of a rewritten segment before it is installed: `<base>.log.cleaned`.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";

/// Largest records section the cleaner decompresses for one batch.
pub const MAX_UNCOMPRESSED_BATCH: usize = 256 << 20;

/// Read-ahead of the segment reader.
const READ_AHEAD: usize = 1 << 20;

/// Attribute bits that name the codec.
const CODEC_MASK: i16 = 0x07;

/// Why a clean failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CleanError {
    /// A file could not be read, written, synced, renamed or removed.
    #[error("cannot {op} {path}: {source}", path = .path.display())]
    Io {
        /// What was being done.
        op: IoOp,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A segment no longer holds valid batches at `position`.
    #[error("corrupt segment {path} at position {position}: {kind}", path = .path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the batch.
        position: u64,
        /// What is wrong.
        kind: CorruptionKind,
    },
    /// The records section of the batch at `position` does not decode (malformed
    /// record, wrong record count, unknown codec).
    #[error("malformed records in batch at offset {base_offset} of {path} (position {position})",
        path = .path.display())]
    MalformedRecords {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the batch.
        position: u64,
        /// Base offset of the batch.
        base_offset: i64,
    },
    /// The records section of the batch at `position` does not decompress, or
    /// compressing the kept records failed.
    #[error("cannot (de)compress batch at position {position} of {path}", path = .path.display())]
    Compression {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the batch.
        position: u64,
        /// What the codec reported.
        #[source]
        source: CompressionError,
    },
    /// `key_map_capacity` was 0: no progress is possible.
    #[error("key map capacity must be at least 1")]
    ZeroKeyMapCapacity,
    /// A sync of the log failed earlier (see
    /// [`SyncError::EarlierSyncFailed`](crate::SyncError::EarlierSyncFailed)): what
    /// the segments hold may not be durable, so nothing is compacted on top of it.
    #[error("an earlier sync of the log in {dir} failed", dir = .dir.display())]
    EarlierSyncFailed {
        /// The partition directory.
        dir: PathBuf,
    },
}

impl From<IoFailure> for CleanError {
    fn from(e: IoFailure) -> Self {
        Self::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        }
    }
}

/// A sealed segment a [`CleanPlan`] may read.
#[derive(Debug, Clone)]
pub(crate) struct PlannedSegment {
    pub(crate) base_offset: i64,
    pub(crate) next_offset: i64,
    pub(crate) size: u64,
    /// The `.log` file as it was when planned: reading it stays valid even if the log
    /// replaces or removes the path meanwhile.
    pub(crate) file: Arc<dyn BackendFile>,
    pub(crate) path: PathBuf,
}

/// What [`clean`] needs, taken from a [`Log`](crate::Log) by
/// [`Log::cleanable`](crate::Log::cleanable); `Send`, for another thread.
#[derive(Debug, Clone)]
pub struct CleanPlan {
    /// The log's file system.
    pub(crate) backend: Arc<dyn FileBackend>,
    /// The log's failed-sync flag (see [`SyncHandle::run`](crate::SyncHandle::run)).
    pub(crate) sync_failed: Arc<AtomicBool>,
    pub(crate) dir: PathBuf,
    /// Cleanable segments, oldest first (sealed, older than the compaction lag).
    pub(crate) segments: Vec<PlannedSegment>,
    /// Offsets below this were compacted already.
    pub(crate) first_dirty_offset: i64,
    pub(crate) clean_bytes: u64,
    pub(crate) dirty_bytes: u64,
}

impl CleanPlan {
    /// Dirty bytes / cleanable bytes, in `(0, 1]` (compare with Kafka's
    /// `min.cleanable.dirty.ratio`).
    #[allow(clippy::cast_precision_loss)]
    pub fn dirty_ratio(&self) -> f64 {
        let total = self.clean_bytes.saturating_add(self.dirty_bytes);
        if total == 0 {
            return 0.0;
        }
        self.dirty_bytes as f64 / total as f64
    }

    /// Bytes of cleanable segments wholly below the cleaner offset.
    pub fn clean_bytes(&self) -> u64 {
        self.clean_bytes
    }

    /// Bytes of cleanable segments at or above the cleaner offset.
    pub fn dirty_bytes(&self) -> u64 {
        self.dirty_bytes
    }

    /// First offset not compacted yet (the cleaner offset, at least the log start).
    pub fn first_dirty_offset(&self) -> i64 {
        self.first_dirty_offset
    }

    /// First offset the plan does not cover (the end of the last cleanable segment).
    pub fn end_offset(&self) -> i64 {
        self.segments
            .last()
            .map_or(self.first_dirty_offset, |s| s.next_offset)
    }

    /// Number of cleanable segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

/// One rewritten segment, waiting in `<base>.log.cleaned`.
#[derive(Debug)]
pub(crate) struct CleanedSegment {
    pub(crate) base_offset: i64,
    pub(crate) next_offset: i64,
    /// The file the rewrite was made from: install only replaces that very file.
    pub(crate) source: Arc<dyn BackendFile>,
    pub(crate) cleaned_path: PathBuf,
    pub(crate) cleaned_size: u64,
}

/// Counters of one [`clean`] run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Segments read in pass 2.
    pub segments_read: usize,
    /// Segments that changed and were written to a `.cleaned` file.
    pub segments_rewritten: usize,
    /// Bytes read in pass 2.
    pub bytes_read: u64,
    /// Bytes of the segments read in pass 2 after the rewrite.
    pub bytes_written: u64,
    /// Records looked at in pass 2.
    pub records_read: u64,
    /// Records removed (superseded or expired tombstones).
    pub records_removed: u64,
    /// Of those, tombstones removed because `delete.retention.ms` passed.
    pub tombstones_removed: u64,
    /// Batches dropped because no record was left.
    pub batches_removed: u64,
    /// Distinct keys in the key map.
    pub keys_mapped: usize,
}

/// The result of [`clean`]: rewritten segment files, to hand to
/// [`Log::install_cleaned`](crate::Log::install_cleaned) on the owner thread.
/// Dropping it without installing removes the files.
#[derive(Debug)]
pub struct CleanedSegments {
    /// The file system the files are on (to remove them when dropped).
    pub(crate) backend: Arc<dyn FileBackend>,
    pub(crate) segments: Vec<CleanedSegment>,
    /// Offsets below this are compacted once the segments are installed.
    pub(crate) cleaned_up_to: i64,
    pub(crate) stats: CleanStats,
}

impl CleanedSegments {
    /// What the run did.
    pub fn stats(&self) -> CleanStats {
        self.stats
    }

    /// Offsets below this count as compacted once installed (the key map's end).
    pub fn cleaned_up_to(&self) -> i64 {
        self.cleaned_up_to
    }

    /// Base offsets of the rewritten segments.
    pub fn base_offsets(&self) -> impl Iterator<Item = i64> + '_ {
        self.segments.iter().map(|s| s.base_offset)
    }
}

impl Drop for CleanedSegments {
    fn drop(&mut self) {
        for s in &self.segments {
            remove_quietly(self.backend.as_ref(), &s.cleaned_path);
        }
    }
}

pub(crate) fn remove_quietly(backend: &dyn FileBackend, path: &Path) {
    if let Err(e) = remove_if_exists(backend, path) {
        tracing::warn!(path = %path.display(), error = %e,
            "cannot remove cleaned segment file");
    }
}

/// Path of the rewritten file of the segment at `log_path`.
pub(crate) fn cleaned_path(log_path: &Path) -> PathBuf {
    let mut name = log_path.as_os_str().to_os_string();
    name.push(CLEANED_SUFFIX);
    PathBuf::from(name)
}

/// Removes `*.cleaned` files left in `dir` by a crash during a clean or an install,
/// and `*.truncated` ones left by a crash during [`Log::truncate_to`](crate::Log::truncate_to).
pub(crate) fn remove_leftovers(backend: &dyn FileBackend, dir: &Path) -> Result<(), IoFailure> {
    let names = backend
        .list_dir(dir)
        .map_err(|e| IoFailure::new(IoOp::ReadDir, dir, e))?;
    for name in names {
        if name.to_str().is_some_and(|n| {
            n.ends_with(CLEANED_SUFFIX) || n.ends_with(crate::log::TRUNCATED_SUFFIX)
        }) {
            let path = dir.join(name);
            tracing::info!(path = %path.display(), "removing leftover cleaned segment");
            remove_if_exists(backend, &path).map_err(|e| IoFailure::new(IoOp::Remove, &path, e))?;
        }
    }
    Ok(())
}

/// `io::Write` at the end of a backend file (positional writes), for the cleaner's
/// buffered output.
struct FileWriter {
    file: Arc<dyn BackendFile>,
    position: u64,
}

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all_at(buf, self.position)?;
        self.position = self.position.saturating_add(buf.len() as u64);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Identity hasher: keys are already 64-bit hashes.
#[derive(Default)]
struct KeyHashHasher(u64);

impl Hasher for KeyHashHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type KeyMap = HashMap<u64, i64, BuildHasherDefault<KeyHashHasher>>;

/// 64-bit hash of a record key: SipHash-1-3 with fixed keys (std's `DefaultHasher::new`).
fn key_hash(key: &[u8]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(key);
    h.finish()
}

/// One record in a records section.
#[derive(Debug, Clone)]
struct RawRecord {
    /// The whole record (length prefix included) in the section.
    start: usize,
    end: usize,
    offset_delta: i32,
    key: Option<(usize, usize)>,
    tombstone: bool,
}

/// Splits a records section into `count` records; `None` if it is malformed.
fn parse_records(section: &[u8], count: i32, out: &mut Vec<RawRecord>) -> Option<()> {
    out.clear();
    let mut at = 0usize;
    for _ in 0..count {
        let start = at;
        let (len, n) = read_varint(section.get(at..)?).ok()?;
        let body_start = at.checked_add(n)?;
        let end = body_start.checked_add(usize::try_from(len).ok()?)?;
        let body = section.get(body_start..end)?;
        // attributes
        let mut p = 1usize;
        let (_ts_delta, n) = read_varlong(body.get(p..)?).ok()?;
        p = p.checked_add(n)?;
        let (offset_delta, n) = read_varint(body.get(p..)?).ok()?;
        p = p.checked_add(n)?;
        let (key_len, n) = read_varint(body.get(p..)?).ok()?;
        p = p.checked_add(n)?;
        let key = if key_len < 0 {
            None
        } else {
            let k_end = p.checked_add(usize::try_from(key_len).ok()?)?;
            body.get(p..k_end)?;
            let k = (body_start.checked_add(p)?, body_start.checked_add(k_end)?);
            p = k_end;
            Some(k)
        };
        let (value_len, _) = read_varint(body.get(p..)?).ok()?;
        out.push(RawRecord {
            start,
            end,
            offset_delta,
            key,
            tombstone: value_len < 0,
        });
        at = end;
    }
    (at == section.len()).then_some(())
}

/// A batch read from a planned segment.
struct ReadBatch {
    position: u64,
    header: BatchHeader,
    bytes: Bytes,
}

/// Sequential reader of whole batches of one planned segment, through a read-ahead
/// buffer (positional reads on the shared handle; the file cursor is not used).
struct SegmentReader<'a> {
    seg: &'a PlannedSegment,
    position: u64,
    buf: Bytes,
    buf_start: u64,
}

impl<'a> SegmentReader<'a> {
    fn new(seg: &'a PlannedSegment) -> Self {
        Self {
            seg,
            position: 0,
            buf: Bytes::new(),
            buf_start: 0,
        }
    }

    fn corrupt(&self, kind: CorruptionKind) -> CleanError {
        CleanError::Corrupt {
            path: self.seg.path.clone(),
            position: self.position,
            kind,
        }
    }

    /// `len` bytes at `position` (inside the planned size).
    fn bytes(&mut self, position: u64, len: usize) -> Result<Bytes, CleanError> {
        let off = position
            .checked_sub(self.buf_start)
            .and_then(|o| usize::try_from(o).ok())
            .filter(|o| o.saturating_add(len) <= self.buf.len());
        let off = match off {
            Some(o) => o,
            None => {
                let available = self.seg.size.saturating_sub(position);
                let want = usize::try_from(available)
                    .unwrap_or(usize::MAX)
                    .min(len.max(READ_AHEAD));
                let mut buf = vec![0u8; want];
                self.seg
                    .file
                    .read_exact_at(&mut buf, position)
                    .map_err(|e| IoFailure::new(IoOp::Read, &self.seg.path, e))?;
                self.buf = Bytes::from(buf);
                self.buf_start = position;
                0
            }
        };
        let end = off.saturating_add(len);
        if end > self.buf.len() {
            return Err(self.corrupt(CorruptionKind::PastEnd {
                batch_len: len as u64,
                available: self.seg.size.saturating_sub(position),
            }));
        }
        Ok(self.buf.slice(off..end))
    }

    fn next_batch(&mut self) -> Result<Option<ReadBatch>, CleanError> {
        let position = self.position;
        let available = self.seg.size.saturating_sub(position);
        if available == 0 {
            return Ok(None);
        }
        let head_len = usize::try_from(available)
            .unwrap_or(usize::MAX)
            .min(BATCH_HEADER_LEN);
        let head = self.bytes(position, head_len)?;
        let header =
            BatchHeader::parse(&head).map_err(|e| self.corrupt(CorruptionKind::Header(e)))?;
        let size = header.total_len();
        if size as u64 > available {
            return Err(self.corrupt(CorruptionKind::PastEnd {
                batch_len: size as u64,
                available,
            }));
        }
        let bytes = self.bytes(position, size)?;
        let actual = compute_crc(&bytes);
        if actual != header.crc {
            return Err(self.corrupt(CorruptionKind::ChecksumMismatch {
                expected: header.crc,
                actual,
            }));
        }
        self.position = position.saturating_add(size as u64);
        Ok(Some(ReadBatch {
            position,
            header,
            bytes,
        }))
    }
}

/// The decompressed (or borrowed) records section of a batch and its codec.
fn records_section(
    seg: &PlannedSegment,
    b: &ReadBatch,
) -> Result<(Compression, Bytes), CleanError> {
    let malformed = || CleanError::MalformedRecords {
        path: seg.path.clone(),
        position: b.position,
        base_offset: b.header.base_offset,
    };
    let codec = b.header.compression().ok_or_else(malformed)?;
    let section = b.bytes.slice(BATCH_HEADER_LEN.min(b.bytes.len())..);
    match codec {
        Compression::None => Ok((codec, section)),
        other => decompress(other, &section, MAX_UNCOMPRESSED_BATCH)
            .map(|v| (codec, Bytes::from(v)))
            .map_err(|source| CleanError::Compression {
                path: seg.path.clone(),
                position: b.position,
                source,
            }),
    }
}

fn record_offset(header: &BatchHeader, r: &RawRecord) -> i64 {
    header.base_offset.saturating_add(i64::from(r.offset_delta))
}

/// Pass 1: the latest offset of each key in `[first_dirty, end)`, up to `capacity`
/// keys. Returns the map and its end (the offset of the first record left out).
fn build_key_map(
    plan: &CleanPlan,
    capacity: usize,
    records: &mut Vec<RawRecord>,
) -> Result<(KeyMap, i64), CleanError> {
    let mut map = KeyMap::with_capacity_and_hasher(capacity.min(1 << 20), Default::default());
    let first_dirty = plan.first_dirty_offset;
    for seg in plan.segments.iter().filter(|s| s.next_offset > first_dirty) {
        let mut reader = SegmentReader::new(seg);
        while let Some(b) = reader.next_batch()? {
            if b.header.last_offset() < first_dirty || b.header.is_control() {
                continue;
            }
            let (_, section) = records_section(seg, &b)?;
            parse_records(&section, b.header.record_count, records).ok_or_else(|| {
                CleanError::MalformedRecords {
                    path: seg.path.clone(),
                    position: b.position,
                    base_offset: b.header.base_offset,
                }
            })?;
            for r in records.iter() {
                let offset = record_offset(&b.header, r);
                let Some((ks, ke)) = r.key else { continue };
                if offset < first_dirty {
                    continue;
                }
                let h = key_hash(section.get(ks..ke).unwrap_or_default());
                if map.len() >= capacity && !map.contains_key(&h) {
                    return Ok((map, offset));
                }
                map.insert(h, offset);
            }
        }
    }
    Ok((map, plan.end_offset()))
}

/// A batch rebuilt around `records` (raw record bytes) with `header`'s fields.
fn rebuild_batch(
    header: &BatchHeader,
    codec: Compression,
    records: &[u8],
    count: i32,
) -> Result<Bytes, CompressionError> {
    let (codec, body) = match codec {
        _ if count == 0 => (Compression::None, Vec::new()),
        Compression::None => (codec, records.to_vec()),
        other => (other, try_compress(other, records)?),
    };
    let batch_length = BATCH_HEADER_LEN
        .saturating_sub(LOG_OVERHEAD)
        .saturating_add(body.len());
    let batch_length = i32::try_from(batch_length).unwrap_or(i32::MAX);
    let attributes = (header.attributes & !CODEC_MASK) | i16::from(codec.id());
    let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN.saturating_add(body.len()));
    out.put_i64(header.base_offset);
    out.put_i32(batch_length);
    out.put_i32(header.partition_leader_epoch);
    out.put_i8(header.magic);
    out.put_u32(0); // CRC, below
    out.put_i16(attributes);
    out.put_i32(header.last_offset_delta);
    out.put_i64(header.base_timestamp);
    out.put_i64(header.max_timestamp);
    out.put_i64(header.producer_id);
    out.put_i16(header.producer_epoch);
    out.put_i32(header.base_sequence);
    out.put_i32(count);
    out.put_slice(&body);
    let crc = compute_crc(&out);
    if let Some(field) = out.get_mut(17..21) {
        field.copy_from_slice(&crc.to_be_bytes());
    }
    Ok(out.freeze())
}

/// Pass 2 for one segment: writes `<base>.log.cleaned`; `None` (and no file) when
/// nothing would change.
#[allow(clippy::too_many_arguments)]
fn rewrite_segment(
    backend: &dyn FileBackend,
    seg: &PlannedSegment,
    map: &KeyMap,
    map_end: i64,
    tombstone_deadline: i64,
    stats: &mut CleanStats,
    records: &mut Vec<RawRecord>,
) -> Result<Option<CleanedSegment>, CleanError> {
    let out_path = cleaned_path(&seg.path);
    let file = backend
        .create(&out_path)
        .map_err(|e| IoFailure::new(IoOp::Create, &out_path, e))?;
    let write_err = |e| CleanError::from(IoFailure::new(IoOp::Write, &out_path, e));
    let mut out = BufWriter::with_capacity(READ_AHEAD, FileWriter { file, position: 0 });
    let mut written = 0u64;
    let mut changed = false;
    let mut kept_bytes = Vec::new();
    let mut reader = SegmentReader::new(seg);
    let mut pending = reader.next_batch()?;
    while let Some(b) = pending {
        let next = reader.next_batch()?;
        let is_last = next.is_none();
        stats.bytes_read = stats.bytes_read.saturating_add(b.bytes.len() as u64);
        let keep_whole = b.header.is_control() || b.header.base_offset >= map_end;
        let rebuilt = if keep_whole {
            stats.records_read = stats
                .records_read
                .saturating_add(u64::try_from(b.header.record_count).unwrap_or(0));
            None
        } else {
            let (codec, section) = records_section(seg, &b)?;
            parse_records(&section, b.header.record_count, records).ok_or_else(|| {
                CleanError::MalformedRecords {
                    path: seg.path.clone(),
                    position: b.position,
                    base_offset: b.header.base_offset,
                }
            })?;
            stats.records_read = stats.records_read.saturating_add(records.len() as u64);
            kept_bytes.clear();
            let mut kept = 0i32;
            let expired = b.header.max_timestamp < tombstone_deadline;
            for r in records.iter() {
                let offset = record_offset(&b.header, r);
                let keep = match r.key {
                    None => true,
                    Some(_) if offset >= map_end => true,
                    Some((ks, ke)) => {
                        let h = key_hash(section.get(ks..ke).unwrap_or_default());
                        let latest = map.get(&h).is_none_or(|&l| l <= offset);
                        if latest && r.tombstone && expired {
                            stats.tombstones_removed = stats.tombstones_removed.saturating_add(1);
                        }
                        latest && !(r.tombstone && expired)
                    }
                };
                if keep {
                    kept = kept.saturating_add(1);
                    kept_bytes.extend_from_slice(section.get(r.start..r.end).unwrap_or_default());
                } else {
                    stats.records_removed = stats.records_removed.saturating_add(1);
                }
            }
            if kept == b.header.record_count {
                None
            } else if kept == 0 && !is_last {
                stats.batches_removed = stats.batches_removed.saturating_add(1);
                Some(Bytes::new())
            } else {
                let batch =
                    rebuild_batch(&b.header, codec, &kept_bytes, kept).map_err(|source| {
                        CleanError::Compression {
                            path: seg.path.clone(),
                            position: b.position,
                            source,
                        }
                    })?;
                Some(batch)
            }
        };
        let bytes = match rebuilt {
            Some(new) => {
                changed = true;
                new
            }
            None => b.bytes,
        };
        out.write_all(&bytes).map_err(write_err)?;
        written = written.saturating_add(bytes.len() as u64);
        pending = next;
    }
    stats.segments_read = stats.segments_read.saturating_add(1);
    stats.bytes_written = stats.bytes_written.saturating_add(written);
    if !changed {
        drop(out);
        remove_quietly(backend, &out_path);
        return Ok(None);
    }
    let writer = out
        .into_inner()
        .map_err(|e| IoFailure::new(IoOp::Write, &out_path, e.into_error()))?;
    writer
        .file
        .sync()
        .map_err(|e| IoFailure::new(IoOp::Sync, &out_path, e))?;
    stats.segments_rewritten = stats.segments_rewritten.saturating_add(1);
    Ok(Some(CleanedSegment {
        base_offset: seg.base_offset,
        next_offset: seg.next_offset,
        source: Arc::clone(&seg.file),
        cleaned_path: out_path,
        cleaned_size: written,
    }))
}

/// Makes the segments the key map covers durable before anything is removed because
/// of them: a record goes when a later one of its key exists, and a crash must not
/// keep the rewrite while losing what superseded it (the segments may not have been
/// synced yet; for those that were, this is cheap). A failed sync counts as a failed
/// sync of the log.
fn sync_sources(plan: &CleanPlan, map_end: i64) -> Result<(), CleanError> {
    let earlier = || CleanError::EarlierSyncFailed {
        dir: plan.dir.clone(),
    };
    if plan.sync_failed.load(Ordering::SeqCst) {
        return Err(earlier());
    }
    for seg in plan.segments.iter().filter(|s| s.base_offset < map_end) {
        if let Err(e) = seg.file.sync() {
            plan.sync_failed.store(true, Ordering::SeqCst);
            return Err(IoFailure::new(IoOp::Sync, &seg.path, e).into());
        }
    }
    Ok(())
}

/// Compacts the segments of `plan` into `.cleaned` files beside them: pure file work
/// on the plan's shared handles, for any thread. Memory: the key map (at most
/// `key_map_capacity` entries of 16 bytes plus hash-table overhead) and one batch (plus
/// a 1 MiB read-ahead and write buffer).
///
/// Tombstones are removed when their batch's `maxTimestamp` is below
/// `now_ms - delete_retention_ms` (Kafka counts from when the segment was first
/// cleaned; the batch time is an approximation that never removes one earlier than
/// Kafka's rule would on a log cleaned promptly). The segments the key map covers are
/// synced before anything is rewritten, and the written files before this returns.
/// Only one clean per log at a time.
///
/// # Errors
/// [`CleanError::ZeroKeyMapCapacity`]; [`CleanError::EarlierSyncFailed`] after a failed
/// sync of the log; [`CleanError::Io`] when reading, writing or syncing fails (a failed
/// sync of a segment fails every later sync of the log); [`CleanError::Corrupt`],
/// [`CleanError::MalformedRecords`] or
/// [`CleanError::Compression`] for a batch that cannot be decoded. Files written so
/// far are removed.
pub fn clean(
    plan: &CleanPlan,
    now_ms: i64,
    delete_retention_ms: i64,
    key_map_capacity: usize,
) -> Result<CleanedSegments, CleanError> {
    if key_map_capacity == 0 {
        return Err(CleanError::ZeroKeyMapCapacity);
    }
    let mut records = Vec::new();
    let (map, map_end) = build_key_map(plan, key_map_capacity, &mut records)?;
    sync_sources(plan, map_end)?;
    let tombstone_deadline = if delete_retention_ms < 0 {
        i64::MIN
    } else {
        now_ms.saturating_sub(delete_retention_ms)
    };
    let mut done = CleanedSegments {
        backend: Arc::clone(&plan.backend),
        segments: Vec::new(),
        cleaned_up_to: map_end,
        stats: CleanStats {
            keys_mapped: map.len(),
            ..CleanStats::default()
        },
    };
    for seg in plan.segments.iter().filter(|s| s.base_offset < map_end) {
        let result = rewrite_segment(
            plan.backend.as_ref(),
            seg,
            &map,
            map_end,
            tombstone_deadline,
            &mut done.stats,
            &mut records,
        );
        match result {
            Ok(Some(c)) => done.segments.push(c),
            Ok(None) => {}
            Err(e) => {
                remove_quietly(plan.backend.as_ref(), &cleaned_path(&seg.path));
                return Err(e);
            }
        }
    }
    tracing::debug!(dir = %plan.dir.display(), cleaned_up_to = map_end, stats = ?done.stats,
        "cleaned segments");
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_and_cleaned_are_send() {
        fn is_send<T: Send>() {}
        is_send::<CleanPlan>();
        is_send::<CleanedSegments>();
    }

    #[test]
    fn cleaned_path_appends_suffix() {
        assert_eq!(
            cleaned_path(Path::new("/d/00000000000000000042.log")),
            PathBuf::from("/d/00000000000000000042.log.cleaned")
        );
    }

    #[test]
    fn malformed_sections_are_rejected() {
        let mut out = Vec::new();
        assert!(parse_records(&[], 0, &mut out).is_some());
        assert!(parse_records(&[], 1, &mut out).is_none());
        assert!(parse_records(&[0x02, 0x00], 1, &mut out).is_none());
        assert!(parse_records(&[0xff; 16], 1, &mut out).is_none());
    }
}
