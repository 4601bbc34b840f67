//! Sparse offset and time indexes of one segment.
//!
//! File formats (big-endian, fixed-size entries, sorted):
//!
//! ```text
//! .index      [ relative offset u32 | file position u32 ]  8 bytes per entry
//! .timeindex  [ timestamp i64       | relative offset u32 ] 12 bytes per entry
//! ```
//!
//! The relative offset in both is the *base* offset of a batch minus the segment's base
//! offset, so an offset-index hit is the start of the batch that may contain the target
//! offset. A time entry `(t, r)` says: the batch at relative offset `r` raised the
//! segment's maximum timestamp to `t`, and every batch before it has a smaller maximum.
//!
//! The active segment's entries live in a `Vec<u8>` in exactly the file format; sealing
//! writes that buffer out and maps the file read-only. Lookups are pure functions over
//! `&[u8]`, the same for both, and never trust the bytes: a short or odd-length buffer
//! just yields fewer entries.
//!
//! This module holds the crate's calls of [`BackendFile::map`] (an `unsafe fn`: the
//! mmap of real files); see `UNSAFE.md`.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::backend::{BackendFile, FileBackend};
use crate::error::{IoFailure, IoOp};
use crate::segment_file::SegmentFile;

/// Bytes of one `.index` entry.
pub(crate) const OFFSET_ENTRY_LEN: usize = 8;
/// Bytes of one `.timeindex` entry.
pub(crate) const TIME_ENTRY_LEN: usize = 12;

/// One `.index` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    /// Batch base offset minus the segment base offset.
    pub(crate) rel_offset: u32,
    /// Byte position of the batch in the `.log` file.
    pub(crate) position: u32,
}

/// One `.timeindex` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    /// The segment's maximum timestamp up to and including this batch.
    pub(crate) timestamp: i64,
    /// Base offset of the batch holding it, relative to the segment base.
    pub(crate) rel_offset: u32,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(raw))
}

fn i64_at(bytes: &[u8], at: usize) -> Option<i64> {
    let raw: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(i64::from_be_bytes(raw))
}

/// Entry `i` of an offset index buffer.
pub(crate) fn offset_entry(entries: &[u8], i: usize) -> Option<OffsetEntry> {
    let at = i.checked_mul(OFFSET_ENTRY_LEN)?;
    Some(OffsetEntry {
        rel_offset: u32_at(entries, at)?,
        position: u32_at(entries, at.checked_add(4)?)?,
    })
}

/// Entry `i` of a time index buffer.
pub(crate) fn time_entry(entries: &[u8], i: usize) -> Option<TimeEntry> {
    let at = i.checked_mul(TIME_ENTRY_LEN)?;
    Some(TimeEntry {
        timestamp: i64_at(entries, at)?,
        rel_offset: u32_at(entries, at.checked_add(8)?)?,
    })
}

/// Binary search: the number of entries `i` in `0..n` for which `below(i)` holds, given
/// that `below` is true for a prefix. Missing entries count as not below.
fn partition_point(n: usize, below: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if below(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The last offset-index entry whose relative offset is `<= rel_offset`: the closest
/// indexed batch start at or before the batch holding `rel_offset`.
pub(crate) fn lookup_offset(entries: &[u8], rel_offset: u32) -> Option<OffsetEntry> {
    let n = entries.len() / OFFSET_ENTRY_LEN;
    let count = partition_point(n, |i| {
        offset_entry(entries, i).is_some_and(|e| e.rel_offset <= rel_offset)
    });
    offset_entry(entries, count.checked_sub(1)?)
}

/// The last time-index entry whose timestamp is `< timestamp`. Every batch up to and
/// including the one it names has a maximum timestamp below `timestamp`, so a search for
/// the first batch with maximum timestamp `>= timestamp` may start there.
pub(crate) fn lookup_time_below(entries: &[u8], timestamp: i64) -> Option<TimeEntry> {
    let n = entries.len() / TIME_ENTRY_LEN;
    let count = partition_point(n, |i| {
        time_entry(entries, i).is_some_and(|e| e.timestamp < timestamp)
    });
    time_entry(entries, count.checked_sub(1)?)
}

/// Appends an offset-index entry to an in-memory buffer.
pub(crate) fn push_offset_entry(entries: &mut Vec<u8>, entry: OffsetEntry) {
    entries.extend_from_slice(&entry.rel_offset.to_be_bytes());
    entries.extend_from_slice(&entry.position.to_be_bytes());
}

/// Appends a time-index entry to an in-memory buffer.
pub(crate) fn push_time_entry(entries: &mut Vec<u8>, entry: TimeEntry) {
    entries.extend_from_slice(&entry.timestamp.to_be_bytes());
    entries.extend_from_slice(&entry.rel_offset.to_be_bytes());
}

/// The entries of one index: in memory for the active segment, mapped for a sealed one.
#[derive(Debug)]
pub(crate) enum IndexBytes {
    /// Active segment (or an empty file, which cannot be mapped).
    Memory(Vec<u8>),
    /// Sealed segment: the file, mapped read-only ([`BackendFile::map`]).
    Mapped(Bytes),
}

/// Maps a sealed segment's `.log` file read-only, for reads that return slices of it
/// (a fetch's bytes point straight into the page cache); `None` for an empty file. The
/// caller promises the file is sealed: never written or truncated again while a
/// mapping lives (see `UNSAFE.md`).
#[allow(unsafe_code)]
pub(crate) fn map_sealed_log(file: &SegmentFile) -> Result<Option<Bytes>, IoFailure> {
    // SAFETY: the mapped bytes could only change or fault if the file were written
    // or truncated while mapped. Only sealed segments are mapped, a sealed `.log` is
    // never written again, and it is removed by unlink or replaced by rename (both
    // keep the mapped inode intact); see UNSAFE.md.
    let map =
        unsafe { file.shared().map() }.map_err(|e| IoFailure::new(IoOp::Map, file.path(), e))?;
    Ok((!map.is_empty()).then_some(map))
}

impl Default for IndexBytes {
    fn default() -> Self {
        Self::Memory(Vec::new())
    }
}

impl IndexBytes {
    /// The raw entries.
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Self::Memory(v) => v,
            Self::Mapped(m) => m,
        }
    }

    /// The growable buffer, `None` once sealed.
    pub(crate) fn as_memory_mut(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            Self::Memory(v) => Some(v),
            Self::Mapped(_) => None,
        }
    }

    /// Maps an index file read-only. The caller promises the file is complete (written
    /// and not to be written again while this mapping lives; see `UNSAFE.md`).
    pub(crate) fn map(backend: &dyn FileBackend, path: &Path) -> Result<Self, IoFailure> {
        let file = backend
            .open(path, false)
            .map_err(|e| IoFailure::new(IoOp::Open, path, e))?;
        Self::map_file(file.as_ref(), path)
    }

    /// [`map`](Self::map) of a file already open (read-only).
    #[allow(unsafe_code)]
    pub(crate) fn map_file(file: &dyn BackendFile, path: &Path) -> Result<Self, IoFailure> {
        // SAFETY: `BackendFile::map` is unsafe because the mapped bytes change (or
        // fault with SIGBUS) if the file is written or truncated while mapped. Index
        // files are mapped only once their segment is sealed; from then on this process
        // never opens them for writing and never truncates them (a sealed segment's
        // indexes are written exactly once, before this call, and a segment is only
        // deleted by unlinking, which leaves the mapped inode alive). The partition
        // directory is owned by this broker alone. The bytes are read as untrusted data
        // (all lookups are bounds-checked), so even foreign writes cannot cause
        // out-of-bounds access.
        let map = unsafe { file.map() }.map_err(|e| IoFailure::new(IoOp::Map, path, e))?;
        if map.is_empty() {
            // Nothing to map (a zero-length mapping is an error on Linux).
            return Ok(Self::Memory(Vec::new()));
        }
        Ok(Self::Mapped(map))
    }
}

/// Writes `bytes` as the whole content of the index file at `path` (created or cut
/// to zero first) and returns the open file so that the caller can sync it later.
///
/// Must not be called on a file that is currently mapped (see `UNSAFE.md`): only the
/// active segment's indexes, which live in memory, are written.
pub(crate) fn write_index_file(
    backend: &dyn FileBackend,
    path: &Path,
    bytes: &[u8],
) -> Result<Arc<dyn BackendFile>, IoFailure> {
    let file = backend
        .create(path)
        .map_err(|e| IoFailure::new(IoOp::Create, path, e))?;
    file.write_all_at(bytes, 0)
        .map_err(|e| IoFailure::new(IoOp::Write, path, e))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(entries: &[(u32, u32)]) -> Vec<u8> {
        let mut v = Vec::new();
        for &(rel_offset, position) in entries {
            push_offset_entry(
                &mut v,
                OffsetEntry {
                    rel_offset,
                    position,
                },
            );
        }
        v
    }

    #[test]
    fn offset_lookup_finds_last_entry_at_or_below() {
        let idx = offsets(&[(0, 0), (10, 4096), (25, 8200), (40, 12300)]);
        assert_eq!(lookup_offset(&idx, 0).map(|e| e.position), Some(0));
        assert_eq!(lookup_offset(&idx, 9).map(|e| e.position), Some(0));
        assert_eq!(lookup_offset(&idx, 10).map(|e| e.position), Some(4096));
        assert_eq!(lookup_offset(&idx, 39).map(|e| e.position), Some(8200));
        assert_eq!(
            lookup_offset(&idx, u32::MAX).map(|e| e.position),
            Some(12300)
        );
        let idx = offsets(&[(5, 100)]);
        assert_eq!(lookup_offset(&idx, 4), None);
        assert_eq!(lookup_offset(&[], 4), None);
    }

    #[test]
    fn lookups_tolerate_odd_lengths_and_garbage() {
        let mut idx = offsets(&[(0, 0), (10, 4096)]);
        idx.extend_from_slice(&[1, 2, 3]);
        assert_eq!(lookup_offset(&idx, 11).map(|e| e.position), Some(4096));
        let garbage = [0xffu8; 37];
        let _ = lookup_offset(&garbage, 7);
        let _ = lookup_time_below(&garbage, 7);
    }

    #[test]
    fn time_lookup_finds_last_entry_strictly_below() {
        let mut idx = Vec::new();
        for (timestamp, rel_offset) in [(100, 0), (200, 5), (300, 9)] {
            push_time_entry(
                &mut idx,
                TimeEntry {
                    timestamp,
                    rel_offset,
                },
            );
        }
        assert_eq!(lookup_time_below(&idx, 100), None);
        assert_eq!(lookup_time_below(&idx, 101).map(|e| e.rel_offset), Some(0));
        assert_eq!(lookup_time_below(&idx, 200).map(|e| e.rel_offset), Some(0));
        assert_eq!(lookup_time_below(&idx, 201).map(|e| e.rel_offset), Some(5));
        assert_eq!(
            lookup_time_below(&idx, i64::MAX).map(|e| e.rel_offset),
            Some(9)
        );
        assert_eq!(time_entry(&idx, 3), None);
    }

    #[test]
    fn mapped_file_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let memory = crate::backend::MemoryBackend::new();
        memory.create_dir_all(dir.path()).unwrap();
        for backend in [&crate::backend::StdBackend as &dyn FileBackend, &memory] {
            let path = dir.path().join("00000000000000000000.index");
            let idx = offsets(&[(0, 0), (3, 77)]);
            write_index_file(backend, &path, &idx).unwrap();
            let mapped = IndexBytes::map(backend, &path).unwrap();
            assert!(matches!(mapped, IndexBytes::Mapped(_)));
            assert_eq!(mapped.as_slice(), &idx[..]);
            write_index_file(backend, &dir.path().join("empty.index"), &[]).unwrap();
            let empty = IndexBytes::map(backend, &dir.path().join("empty.index")).unwrap();
            assert!(empty.as_slice().is_empty());
        }
    }
}
