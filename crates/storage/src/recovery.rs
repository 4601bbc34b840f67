//! Opening a partition directory: find the segments, check or rebuild their indexes,
//! and cut the log back to its longest valid prefix.
//!
//! Per segment, oldest first:
//!
//! ```text
//! empty .log, first but not last ──────▶ kept as the last; the later ones are removed
//! empty .log, neither first nor last ───▶ removed with its indexes
//! .index/.timeindex without a .log ─────▶ removed
//! sealed (not last):
//!   index files sane? ── yes ─▶ scan headers from the last index entry to the end
//!          │ no                 (must end exactly at the file length and at the
//!          ▼                     next segment's base offset)
//!   scan all headers, rewrite both index files, same end checks
//!   any check fails ──▶ "broken": treated as the last segment from here on, and every
//!                        later segment is removed (data after a hole is not the log)
//! last (active) segment:
//!   scan every batch with its CRC-32C; cut the file at the first torn or corrupt batch;
//!   its indexes are rebuilt in memory
//! ```
//!
//! Sealed segments are checked cheaply because `Log::sync` makes a sealed segment
//! durable no later than the data of the segment after it (the sealed files are synced
//! first); a crash therefore tears at most the tail of the log, which the full scan of
//! the last segment (or of the first broken one) handles.
//!
//! That holds for the part of the log known to be synced. After an unclean shutdown
//! (no clean-shutdown marker) every sealed segment that is not wholly below the
//! *recovery point* (the persisted offset below which everything was synced) is
//! scanned like the last one: every batch with its CRC-32C, its index files rebuilt
//! from the scan; the first bad batch cuts the log there and drops every later
//! segment. Pages the kernel never wrote can hold anything, not only a torn tail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::{BackendFile, FileBackend, remove_if_exists};
use crate::config::LogConfig;
use crate::error::{IoFailure, IoOp, OpenError};
use crate::index::{self, IndexBytes, OFFSET_ENTRY_LEN, TIME_ENTRY_LEN};
use crate::scan::{BatchScanner, ScanError};
use crate::segment::{self, Segment, SegmentIndex};
use crate::segment_file::SegmentFile;

/// Which files of one base offset exist.
#[derive(Debug, Default, Clone, Copy)]
struct Found {
    log: bool,
    index: bool,
    time_index: bool,
}

/// What [`load`] found and did.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The segments, oldest first; never empty, the last is active.
    pub(crate) segments: Vec<Segment>,
    /// Whether files were created, removed or cut (the directory and the cut file need
    /// a sync before the log's contents count as durable).
    pub(crate) changed: bool,
    /// Index files (re)written by recovery, to be synced with the next sync.
    pub(crate) index_files: Vec<(Arc<dyn BackendFile>, PathBuf)>,
}

/// An index file written by recovery, to sync later.
type IndexFile = (Arc<dyn BackendFile>, PathBuf);

fn push_index_files(out: &mut Vec<IndexFile>, log: &Path, files: [Arc<dyn BackendFile>; 2]) {
    let [index, time] = files;
    out.push((index, segment::index_path(log)));
    out.push((time, segment::time_index_path(log)));
}

/// Parses `00000000000000000042.log` into `(42, "log")`.
fn parse_name(name: &str) -> Option<(i64, &str)> {
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, ext))
}

/// Removes `path` if it exists; returns whether it did.
fn remove_file(backend: &dyn FileBackend, path: &Path) -> Result<bool, IoFailure> {
    remove_if_exists(backend, path).map_err(|e| IoFailure::new(IoOp::Remove, path, e))
}

/// Removes the `.log` of `base_offset` and its index files.
pub(crate) fn remove_segment_files(
    backend: &dyn FileBackend,
    dir: &Path,
    base_offset: i64,
) -> Result<(), IoFailure> {
    let log = segment::log_path(dir, base_offset);
    remove_file(backend, &segment::index_path(&log))?;
    remove_file(backend, &segment::time_index_path(&log))?;
    remove_file(backend, &log)?;
    Ok(())
}

/// Loads (or creates) the log in `dir`, which exists. Sealed segments that hold any
/// offset at or above `full_scan_from` are scanned in full (`i64::MAX` after a clean
/// shutdown: only the last segment is).
pub(crate) fn load(
    backend: &dyn FileBackend,
    dir: &Path,
    config: &LogConfig,
    full_scan_from: i64,
) -> Result<Loaded, OpenError> {
    let mut found: BTreeMap<i64, Found> = BTreeMap::new();
    let names = backend
        .list_dir(dir)
        .map_err(|e| IoFailure::new(IoOp::ReadDir, dir, e))?;
    for name in names {
        let Some((base, ext)) = name.to_str().and_then(parse_name) else {
            tracing::debug!(dir = %dir.display(), file = ?name, "ignoring unknown file");
            continue;
        };
        let slot = found.entry(base).or_default();
        match ext {
            "log" => slot.log = true,
            "index" => slot.index = true,
            "timeindex" => slot.time_index = true,
            _ => tracing::debug!(dir = %dir.display(), file = ?name, "ignoring unknown file"),
        }
    }

    let mut changed = false;
    let mut bases = Vec::new();
    for (&base, f) in &found {
        if f.log {
            bases.push(base);
        } else if f.index || f.time_index {
            tracing::info!(dir = %dir.display(), base_offset = base, "removing orphan index files");
            remove_segment_files(backend, dir, base)?;
            changed = true;
        }
    }

    let mut files = Vec::with_capacity(bases.len());
    let mut rest = bases.iter().copied();
    while let Some(base) = rest.next() {
        let file = SegmentFile::open(backend, &segment::log_path(dir, base))?;
        if file.len() > 0 || rest.len() == 0 {
            files.push((base, file));
        } else if files.is_empty() {
            // Only the active segment is ever empty (a roll never seals an empty one):
            // an empty first segment followed by others lost its bytes in a crash
            // while its name survived. What follows it is not a prefix of the log;
            // dropping it keeps the log start where it was (a torn sealed segment is
            // handled the same way below).
            tracing::warn!(dir = %dir.display(), base_offset = base,
                "first segment is empty; dropping the segments after it");
            files.push((base, file));
            for later in rest.by_ref() {
                remove_segment_files(backend, dir, later)?;
            }
            changed = true;
        } else {
            // Inside the log: if it was a real segment, the previous one now ends
            // short of the next and is treated as torn below.
            tracing::info!(dir = %dir.display(), base_offset = base, "removing empty segment");
            drop(file);
            remove_segment_files(backend, dir, base)?;
            changed = true;
        }
    }

    if files.is_empty() {
        let file = SegmentFile::create(backend, &segment::log_path(dir, 0))?;
        changed = true;
        return Ok(Loaded {
            segments: vec![Segment::new_active(0, file)],
            changed,
            index_files: Vec::new(),
        });
    }

    let mut segments = Vec::with_capacity(files.len());
    let mut index_files = Vec::new();
    let mut files = files.into_iter().peekable();
    while let Some((base, file)) = files.next() {
        let Some(&(next_base, _)) = files.peek() else {
            let (segment, cut) = recover_active(backend, base, file, config)?;
            changed |= cut;
            segments.push(segment);
            break;
        };
        let loaded = if next_base > full_scan_from {
            rebuild_sealed(backend, base, file, next_base, config, true)?.map(|(s, f)| (s, Some(f)))
        } else {
            load_sealed(backend, base, file, next_base, config)?
        };
        match loaded {
            Ok((segment, written)) => {
                if let Some(written) = written {
                    push_index_files(&mut index_files, segment.path(), written);
                    changed = true;
                }
                segments.push(segment);
            }
            Err(file) => {
                tracing::warn!(dir = %dir.display(), base_offset = base,
                    "sealed segment is torn or does not reach the next segment; \
                     recovering it and dropping the segments after it");
                for (later, later_file) in files.by_ref() {
                    drop(later_file);
                    remove_segment_files(backend, dir, later)?;
                }
                let (segment, _) = recover_active(backend, base, file, config)?;
                changed = true;
                segments.push(segment);
                break;
            }
        }
    }
    Ok(Loaded {
        segments,
        changed,
        index_files,
    })
}

/// Full CRC-checked scan of the segment that becomes the active one; cuts the file at
/// the first torn or corrupt batch. Returns whether the file was cut.
///
/// Index files left on disk for it (by `close`, or by an earlier life as a sealed
/// segment) are removed: its indexes now live in memory, and a stale file must not be
/// mistaken for a sealed segment's index if a crash interrupts the next roll.
fn recover_active(
    backend: &dyn FileBackend,
    base: i64,
    file: SegmentFile,
    config: &LogConfig,
) -> Result<(Segment, bool), OpenError> {
    let log = file.path().to_path_buf();
    let mut removed = false;
    for path in [segment::index_path(&log), segment::time_index_path(&log)] {
        removed |= remove_file(backend, &path)?;
    }
    let (segment, cut) = recover_active_log(base, file, config)?;
    Ok((segment, cut || removed))
}

fn recover_active_log(
    base: i64,
    file: SegmentFile,
    config: &LogConfig,
) -> Result<(Segment, bool), OpenError> {
    let mut segment = Segment::new_active(base, file);
    let (valid_len, stop) = segment.index_by_scan(config.index_interval_bytes, true)?;
    let Some((position, kind)) = stop else {
        return Ok((segment, false));
    };
    tracing::warn!(segment = %segment.path().display(), position, reason = %kind,
        cut_bytes = segment.file.len().saturating_sub(valid_len),
        "truncating segment at the first torn or corrupt batch");
    segment.file.truncate(valid_len)?;
    segment.file.sync()?;
    Ok((segment, true))
}

/// A sealed segment and the index files written for it, if any; `Err(file)` when the
/// segment is torn or does not end where the next one starts.
type SealedLoad = Result<(Segment, Option<[Arc<dyn BackendFile>; 2]>), SegmentFile>;

/// A rebuilt sealed segment and its freshly written index files.
type Rebuilt = (Segment, [Arc<dyn BackendFile>; 2]);

/// Loads a sealed segment, using its index files when they look right and rebuilding
/// them otherwise. `Err(file)` when the segment itself is torn or does not end where
/// the next one starts.
fn load_sealed(
    backend: &dyn FileBackend,
    base: i64,
    file: SegmentFile,
    next_base: i64,
    config: &LogConfig,
) -> Result<SealedLoad, OpenError> {
    let log = file.path().to_path_buf();
    let offsets = load_index(
        backend,
        &segment::index_path(&log),
        OFFSET_ENTRY_LEN,
        config,
    )?;
    let times = load_index(
        backend,
        &segment::time_index_path(&log),
        TIME_ENTRY_LEN,
        config,
    )?;
    if let (Some(offsets), Some(times)) = (offsets, times) {
        let n = offsets.as_slice().len() / OFFSET_ENTRY_LEN;
        let last = n
            .checked_sub(1)
            .and_then(|i| index::offset_entry(offsets.as_slice(), i));
        let (start, min_base) = last.map_or((0, base), |e| {
            (
                u64::from(e.position),
                base.saturating_add(i64::from(e.rel_offset)),
            )
        });
        // A sealed segment's last time entry is its maximum timestamp (written at
        // seal), so no batch of the tail may exceed it; an empty time index is stale.
        let max_timestamp = (times.as_slice().len() / TIME_ENTRY_LEN)
            .checked_sub(1)
            .and_then(|i| index::time_entry(times.as_slice(), i))
            .map(|e| e.timestamp);
        match tail_end(&file, base, start, min_base)? {
            Some((end, tail_max))
                if end == next_base && max_timestamp.is_some_and(|m| m >= tail_max) =>
            {
                return Ok(Ok((
                    Segment::sealed(base, file, SegmentIndex::sealed(base, offsets, times, end)),
                    None,
                )));
            }
            _ => {}
        }
    }
    tracing::info!(segment = %log.display(), "rebuilding index files of sealed segment");
    Ok(rebuild_sealed(backend, base, file, next_base, config, false)?.map(|(s, f)| (s, Some(f))))
}

/// Scans a sealed segment from its start (with `verify_crc`, every batch's CRC-32C
/// too), rewrites both index files from the scan and maps them. `Err(file)` when a
/// batch is bad or the segment does not end where the next one starts.
///
/// The segment's index files must not be mapped (they are about to be rewritten).
fn rebuild_sealed(
    backend: &dyn FileBackend,
    base: i64,
    file: SegmentFile,
    next_base: i64,
    config: &LogConfig,
    verify_crc: bool,
) -> Result<Result<Rebuilt, SegmentFile>, OpenError> {
    let mut segment = Segment::new_active(base, file);
    let (_, stop) = segment.index_by_scan(config.index_interval_bytes, verify_crc)?;
    if let Some((position, kind)) = stop {
        tracing::warn!(segment = %segment.path().display(), position, reason = %kind,
            "bad batch in sealed segment");
        return Ok(Err(segment.file));
    }
    if segment.next_offset() != next_base {
        return Ok(Err(segment.file));
    }
    let written = segment.write_indexes(backend, true)?;
    Ok(Ok((segment, written)))
}

/// Scans headers from a batch boundary to the end of the file. If the scan ends
/// exactly at the file length: the offset after the last batch and the largest max
/// timestamp seen; `None` if it does not.
fn tail_end(
    file: &SegmentFile,
    base: i64,
    start: u64,
    min_base: i64,
) -> Result<Option<(i64, i64)>, OpenError> {
    if start >= file.len() {
        return Ok(None);
    }
    let mut scanner = BatchScanner::new(file, base, start, min_base, false);
    let mut next = None;
    let mut max_timestamp = i64::MIN;
    loop {
        match scanner.next_batch() {
            Ok(Some(b)) => {
                if next.is_none() && b.header.base_offset != min_base {
                    // The last index entry does not name the batch at its position.
                    return Ok(None);
                }
                next = Some(b.last_offset().saturating_add(1));
                max_timestamp = max_timestamp.max(b.header.max_timestamp);
            }
            Ok(None) => return Ok(next.map(|n| (n, max_timestamp))),
            Err(ScanError::Io(e)) => return Err(e.into()),
            Err(ScanError::Corrupt { .. }) => return Ok(None),
        }
    }
}

/// Maps an index file if its size is plausible: a whole number of entries, within
/// `segment_index_bytes`. `None` when missing or implausible (rebuild it).
fn load_index(
    backend: &dyn FileBackend,
    path: &Path,
    entry_len: usize,
    config: &LogConfig,
) -> Result<Option<IndexBytes>, OpenError> {
    let file = match backend.open(path, false) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(IoFailure::new(IoOp::Open, path, e).into()),
    };
    let len = file
        .len()
        .map_err(|e| IoFailure::new(IoOp::Metadata, path, e))?;
    let max = u64::from(config.segment_index_bytes);
    if len % entry_len as u64 != 0 || len > max {
        return Ok(None);
    }
    Ok(Some(IndexBytes::map_file(file.as_ref(), path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_segment_file_names() {
        assert_eq!(parse_name("00000000000000000042.log"), Some((42, "log")));
        assert_eq!(
            parse_name("00000000000000001000.timeindex"),
            Some((1000, "timeindex"))
        );
        assert_eq!(parse_name("42.log"), None);
        assert_eq!(parse_name("0000000000000000004x.log"), None);
        assert_eq!(parse_name("99999999999999999999.log"), None);
        assert_eq!(parse_name("leader-epoch-checkpoint"), None);
    }
}
