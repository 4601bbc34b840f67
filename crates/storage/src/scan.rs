//! Forward scan of a segment file, batch header by batch header.
//!
//! Used by recovery (with CRC checks, to find the valid prefix of a segment) and by the
//! read paths that must walk from an index hit to the batch they want. Never trusts the
//! file: every length, magic and offset is checked before it is used.

use sluice_protocol::record::{BATCH_HEADER_LEN, BatchHeader, compute_crc};

use crate::error::{CorruptionKind, IoFailure};
use crate::segment_file::SegmentFile;

/// Read-ahead when only headers are needed: one default index interval plus a header,
/// so a walk from an index hit usually takes one small `pread` (big batches cost one
/// read each anyway).
const HEADER_READ_AHEAD: usize = 4096 + BATCH_HEADER_LEN;
/// Read-ahead when whole batches are checked.
const VERIFY_READ_AHEAD: usize = 1 << 20;

/// A batch found by the scan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScannedBatch {
    /// Byte position of the batch in the segment file.
    pub(crate) position: u64,
    /// Its parsed header.
    pub(crate) header: BatchHeader,
}

impl ScannedBatch {
    /// Whole batch size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.header.total_len() as u64
    }

    /// Last offset of the batch (checked not to overflow by the scanner).
    pub(crate) fn last_offset(&self) -> i64 {
        self.header.last_offset()
    }
}

/// Why a scan stopped before the end of the file.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// Reading failed.
    Io(IoFailure),
    /// The bytes at `position` are not a valid next batch.
    Corrupt { position: u64, kind: CorruptionKind },
}

impl From<IoFailure> for ScanError {
    fn from(e: IoFailure) -> Self {
        Self::Io(e)
    }
}

/// Walks the batches of one segment file from a batch boundary.
pub(crate) struct BatchScanner<'a> {
    file: &'a SegmentFile,
    segment_base: i64,
    verify_crc: bool,
    read_ahead: usize,
    buf: Vec<u8>,
    buf_start: u64,
    buf_filled: usize,
    position: u64,
    min_base_offset: i64,
}

impl<'a> BatchScanner<'a> {
    /// A scanner starting at `position`, which must be a batch boundary whose batch has
    /// base offset `>= min_base_offset`. With `verify_crc`, each batch's CRC-32C is
    /// checked (the whole batch is read); otherwise only headers are read.
    pub(crate) fn new(
        file: &'a SegmentFile,
        segment_base: i64,
        position: u64,
        min_base_offset: i64,
        verify_crc: bool,
    ) -> Self {
        Self {
            file,
            segment_base,
            verify_crc,
            read_ahead: if verify_crc {
                VERIFY_READ_AHEAD
            } else {
                HEADER_READ_AHEAD
            },
            buf: Vec::new(),
            buf_start: 0,
            buf_filled: 0,
            position,
            min_base_offset: min_base_offset.max(segment_base),
        }
    }

    /// Position of the next batch (the end of the valid prefix once the scan stops).
    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    /// Bytes `[position, position + len)` of the file, which the caller has checked to
    /// lie inside it, through the read-ahead buffer.
    fn bytes(&mut self, position: u64, len: usize) -> Result<&[u8], IoFailure> {
        let cached = position
            .checked_sub(self.buf_start)
            .and_then(|off| usize::try_from(off).ok())
            .filter(|off| off.saturating_add(len) <= self.buf_filled);
        let off = match cached {
            Some(off) => off,
            None => {
                let available = self.file.len().saturating_sub(position);
                let want = usize::try_from(available)
                    .unwrap_or(usize::MAX)
                    .min(len.max(self.read_ahead));
                if self.buf.len() < want {
                    self.buf.resize(want, 0);
                }
                let dst = self.buf.get_mut(..want).unwrap_or_default();
                self.file.read_at(position, dst)?;
                self.buf_start = position;
                self.buf_filled = want;
                0
            }
        };
        Ok(self
            .buf
            .get(off..off.saturating_add(len))
            .unwrap_or_default())
    }

    /// The next batch, `Ok(None)` at the exact end of the file, or why the bytes at the
    /// current position are not a valid batch.
    pub(crate) fn next_batch(&mut self) -> Result<Option<ScannedBatch>, ScanError> {
        let position = self.position;
        let file_len = self.file.len();
        let available = file_len.saturating_sub(position);
        if available == 0 {
            return Ok(None);
        }
        let corrupt = |kind| ScanError::Corrupt { position, kind };
        let head_len = usize::try_from(available)
            .unwrap_or(usize::MAX)
            .min(BATCH_HEADER_LEN);
        let header = BatchHeader::parse(self.bytes(position, head_len)?)
            .map_err(|e| corrupt(CorruptionKind::Header(e)))?;
        let size = header.total_len() as u64;
        if size > available {
            return Err(corrupt(CorruptionKind::PastEnd {
                batch_len: size,
                available,
            }));
        }
        if header.base_offset < self.min_base_offset {
            return Err(corrupt(CorruptionKind::OffsetNotIncreasing {
                base_offset: header.base_offset,
                expected: self.min_base_offset,
            }));
        }
        let next_offset = (header.last_offset_delta >= 0)
            .then(|| {
                header
                    .base_offset
                    .checked_add(i64::from(header.last_offset_delta))
            })
            .flatten()
            .and_then(|last| last.checked_add(1));
        let rel_fits = header
            .base_offset
            .checked_sub(self.segment_base)
            .is_some_and(|rel| u32::try_from(rel).is_ok());
        let Some(next_offset) = next_offset.filter(|_| rel_fits) else {
            return Err(corrupt(CorruptionKind::InvalidOffsetRange {
                base_offset: header.base_offset,
            }));
        };
        if self.verify_crc {
            // `size` <= `available`, itself a file length: fits usize on 64-bit.
            let batch = self.bytes(position, usize::try_from(size).unwrap_or(usize::MAX))?;
            let actual = compute_crc(batch);
            if actual != header.crc {
                return Err(corrupt(CorruptionKind::ChecksumMismatch {
                    expected: header.crc,
                    actual,
                }));
            }
        }
        self.position = position.saturating_add(size);
        self.min_base_offset = next_offset;
        Ok(Some(ScannedBatch { position, header }))
    }
}
