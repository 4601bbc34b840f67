//! Decoding the records inside one RecordBatch v2.
//!
//! Each record is, in order (varints are zigzag, see [`super::varint`]):
//!
//! ```text
//! length varint | attributes i8 | timestampDelta varlong | offsetDelta varint
//! keyLength varint (-1 = null) | key | valueLength varint (-1 = null) | value
//! headerCount varint | headers: [keyLength varint | key | valueLength varint (-1 = null) | value]
//! ```
//!
//! `length` counts the bytes after itself and must equal what the fields occupy.
//! Uncompressed batches are decoded without copying: keys, values and headers are
//! [`Bytes`] slices of the input. Compressed batches are decompressed once (up to a
//! caller-given limit) and the records slice that buffer.

use std::ops::Range;

use bytes::Bytes;

use super::error::{BatchError, Corruption, FieldProblem, RecordField};
use super::varint::{read_varint, read_varlong};
use super::{BATCH_HEADER_LEN, BatchHeader, Compression, TimestampType, compression};

/// Smallest encoded record: a one-byte length, then seven one-byte fields
/// (attributes, timestampDelta, offsetDelta, keyLength, valueLength, header count).
const MIN_RECORD_LEN: usize = 7;

/// One record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Record attributes; unused by Kafka so far, kept as sent.
    pub attributes: i8,
    /// Timestamp relative to the batch's `baseTimestamp`.
    pub timestamp_delta: i64,
    /// Offset relative to the batch's `baseOffset`.
    pub offset_delta: i32,
    /// Key, `None` when null.
    pub key: Option<Bytes>,
    /// Value, `None` when null (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers in order: key bytes (UTF-8 by convention, not checked, as in Kafka) and
    /// value, `None` when null.
    pub headers: Vec<(Bytes, Option<Bytes>)>,
}

impl Record {
    /// The record's timestamp: `maxTimestamp` under LogAppendTime, else
    /// `baseTimestamp + timestampDelta` (wrapping, like Kafka's Java arithmetic).
    pub fn timestamp(&self, header: &BatchHeader) -> i64 {
        match header.timestamp_type() {
            TimestampType::LogAppendTime => header.max_timestamp,
            TimestampType::CreateTime => header.base_timestamp.wrapping_add(self.timestamp_delta),
        }
    }

    /// The record's offset: `baseOffset + offsetDelta`, saturating.
    pub fn offset(&self, header: &BatchHeader) -> i64 {
        header
            .base_offset
            .saturating_add(i64::from(self.offset_delta))
    }
}

/// Decodes every record of `batch`, which must be exactly one RecordBatch v2.
///
/// Checks the header, that the length matches `batch`, the CRC-32C and the codec; then
/// decompresses (at most `max_uncompressed` bytes) and decodes `recordCount` records.
/// Uncompressed records slice `batch` without copying.
///
/// # Errors
/// [`BatchError::Corrupt`] for damaged bytes, [`BatchError::UnsupportedMagic`],
/// [`BatchError::UncompressedTooLarge`], and [`BatchError::InvalidRecord`] when the
/// record count does not match the records present.
pub fn decode_records(batch: &Bytes, max_uncompressed: usize) -> Result<Vec<Record>, BatchError> {
    let iter = record_iter(batch, max_uncompressed)?;
    let mut records = Vec::with_capacity(iter.size_hint().0);
    for record in iter {
        records.push(record?);
    }
    Ok(records)
}

/// Like [`decode_records`], but yields the records one by one. The integrity checks and
/// decompression happen here; the iterator reports record-level problems as it meets them
/// and ends after the first error.
///
/// # Errors
/// As [`decode_records`], for problems found before the first record.
pub fn record_iter(batch: &Bytes, max_uncompressed: usize) -> Result<RecordIter, BatchError> {
    let header = check_batch(batch)?;
    if header.record_count < 0 {
        return Err(BatchError::invalid_record(
            None,
            format!(
                "Found invalid record count {} in magic v2 batch",
                header.record_count
            ),
        ));
    }
    let section = records_section(&header, batch, max_uncompressed)?;
    Ok(RecordIter::new(section, header.record_count))
}

/// Parses the header of `batch` and checks that `batch` is exactly that batch and that
/// its CRC-32C matches.
pub(crate) fn check_batch(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    check_length(&header, batch)?;
    check_crc(&header, batch)?;
    Ok(header)
}

/// `batch` must hold exactly the bytes `batchLength` announces.
pub(crate) fn check_length(header: &BatchHeader, batch: &[u8]) -> Result<(), BatchError> {
    let batch_len = header.total_len();
    if batch.len() < batch_len {
        return Err(BatchError::corrupt(Corruption::Truncated {
            needed: batch_len,
            available: batch.len(),
        }));
    }
    if batch.len() > batch_len {
        return Err(BatchError::corrupt(Corruption::TrailingBytes {
            batch_len,
            available: batch.len(),
        }));
    }
    Ok(())
}

/// The stored CRC-32C must match bytes 21..end.
pub(crate) fn check_crc(header: &BatchHeader, batch: &[u8]) -> Result<(), BatchError> {
    let computed = super::compute_crc(batch);
    if computed != header.crc {
        return Err(BatchError::corrupt(Corruption::CrcMismatch {
            stored: header.crc,
            computed,
        }));
    }
    Ok(())
}

/// The codec named by the header, or [`Corruption::UnknownCompression`].
pub(crate) fn codec(header: &BatchHeader) -> Result<Compression, BatchError> {
    header.compression().ok_or_else(|| {
        BatchError::corrupt(Corruption::UnknownCompression {
            codec_id: (header.attributes & 0x07) as u8,
        })
    })
}

/// The records section, decompressed when the batch is compressed. `batch` has been
/// checked to be exactly one batch.
pub(crate) fn records_section(
    header: &BatchHeader,
    batch: &Bytes,
    max_uncompressed: usize,
) -> Result<Bytes, BatchError> {
    let codec = codec(header)?;
    let raw = batch.get(BATCH_HEADER_LEN..).unwrap_or_default();
    match codec {
        Compression::None => Ok(batch.slice_ref(raw)),
        _ => match compression::decompress(codec, raw, max_uncompressed) {
            Ok(section) => Ok(Bytes::from(section)),
            Err(compression::CompressionError::OutputTooLarge { .. }) => {
                Err(BatchError::UncompressedTooLarge {
                    codec,
                    max_uncompressed_bytes: max_uncompressed,
                })
            }
            Err(source) => Err(BatchError::corrupt(Corruption::Decompression { source })),
        },
    }
}

/// Iterator over the records of one batch's (decompressed) records section.
///
/// Made by [`record_iter`]. Yields `recordCount` records, then an
/// [`BatchError::InvalidRecord`] if bytes are left over; ends after the first error.
#[derive(Debug, Clone)]
pub struct RecordIter {
    section: Bytes,
    walk: Walk,
}

impl RecordIter {
    /// Iterates `record_count` records over an uncompressed records section.
    /// A negative count yields no records and then the leftover-bytes error, if any.
    pub fn new(section: Bytes, record_count: i32) -> Self {
        Self {
            section,
            walk: Walk::new(record_count),
        }
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        let section = &self.section;
        self.walk
            .next_with(section, |pos, index| decode_record(section, pos, index))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.walk.size_hint(self.section.len())
    }
}

/// Walks `recordCount` records over a records section and checks that the count matches
/// the bytes: shared by [`RecordIter`] and the allocation-free scan that validation uses.
#[derive(Debug, Clone)]
pub(crate) struct Walk {
    pos: usize,
    index: usize,
    count: usize,
    done: bool,
}

impl Walk {
    pub(crate) fn new(record_count: i32) -> Self {
        Self {
            pos: 0,
            index: 0,
            count: usize::try_from(record_count).unwrap_or(0),
            done: false,
        }
    }

    /// The next item from `decode(pos, index)`, which returns it and the next position.
    pub(crate) fn next_with<T>(
        &mut self,
        section: &[u8],
        decode: impl FnOnce(usize, usize) -> Result<(T, usize), BatchError>,
    ) -> Option<Result<T, BatchError>> {
        if self.done {
            return None;
        }
        let left = section.len().saturating_sub(self.pos);
        if self.index == self.count {
            self.done = true;
            if left == 0 {
                return None;
            }
            return Some(Err(BatchError::invalid_record(
                None,
                format!(
                    "Record batch declares {} records but has {left} bytes left after them",
                    self.count
                ),
            )));
        }
        if left == 0 {
            self.done = true;
            return Some(Err(BatchError::invalid_record(
                None,
                format!(
                    "Record batch declares {} records but contains only {}",
                    self.count, self.index
                ),
            )));
        }
        match decode(self.pos, self.index) {
            Ok((item, next)) => {
                self.pos = next;
                self.index += 1;
                Some(Ok(item))
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }

    fn size_hint(&self, section_len: usize) -> (usize, Option<usize>) {
        if self.done {
            return (0, Some(0));
        }
        let left = self.count.saturating_sub(self.index);
        let fit = section_len.saturating_sub(self.pos) / MIN_RECORD_LEN;
        // Lower bound is only a capacity hint; an error may end the iteration early.
        (left.min(fit), Some(left.saturating_add(1)))
    }
}

/// The fixed fields of a record, with key and value as ranges of the records section.
#[derive(Debug, Clone)]
pub(crate) struct RecordFields {
    pub(crate) attributes: i8,
    pub(crate) timestamp_delta: i64,
    pub(crate) offset_delta: i32,
    pub(crate) key: Option<Range<usize>>,
    pub(crate) value: Option<Range<usize>>,
}

/// Iterates the records of a section without building [`Record`]s: every field is parsed
/// and checked as by [`RecordIter`], but headers are only walked.
pub(crate) fn scan_records(
    section: &[u8],
    record_count: i32,
) -> impl Iterator<Item = Result<RecordFields, BatchError>> + '_ {
    let mut walk = Walk::new(record_count);
    std::iter::from_fn(move || {
        walk.next_with(section, |pos, index| {
            parse_record(section, pos, index, |_, _| {})
        })
    })
}

/// Reads one record's fields from a byte range that holds exactly that record's body.
struct FieldReader<'a> {
    body: &'a [u8],
    pos: usize,
    record_index: usize,
}

impl FieldReader<'_> {
    fn malformed(&self, field: RecordField, problem: FieldProblem) -> BatchError {
        BatchError::corrupt(Corruption::MalformedRecord {
            record_index: self.record_index,
            field,
            problem,
        })
    }

    fn rest(&self) -> &[u8] {
        self.body.get(self.pos..).unwrap_or_default()
    }

    fn i8(&mut self, field: RecordField) -> Result<i8, BatchError> {
        let byte = self
            .rest()
            .first()
            .copied()
            .ok_or_else(|| self.malformed(field, FieldProblem::Truncated))?;
        self.pos += 1;
        Ok(byte as i8)
    }

    fn varint(&mut self, field: RecordField) -> Result<i32, BatchError> {
        let (value, len) =
            read_varint(self.rest()).map_err(|e| self.malformed(field, varint_problem(e)))?;
        self.pos += len;
        Ok(value)
    }

    fn varlong(&mut self, field: RecordField) -> Result<i64, BatchError> {
        let (value, len) =
            read_varlong(self.rest()).map_err(|e| self.malformed(field, varint_problem(e)))?;
        self.pos += len;
        Ok(value)
    }

    /// The next `len` bytes as a range of the body.
    fn take(&mut self, len: usize, field: RecordField) -> Result<Range<usize>, BatchError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.body.len())
            .ok_or_else(|| self.malformed(field, FieldProblem::Truncated))?;
        let range = self.pos..end;
        self.pos = end;
        Ok(range)
    }

    /// Nullable bytes: a negative length is null (Kafka treats every negative length so).
    fn nullable(
        &mut self,
        len_field: RecordField,
        field: RecordField,
    ) -> Result<Option<Range<usize>>, BatchError> {
        let len = self.varint(len_field)?;
        match usize::try_from(len) {
            Ok(len) => self.take(len, field).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// A count or length that may not be negative.
    fn non_negative(&mut self, field: RecordField) -> Result<usize, BatchError> {
        let value = self.varint(field)?;
        usize::try_from(value).map_err(|_| self.malformed(field, FieldProblem::Negative(value)))
    }
}

fn varint_problem(err: super::varint::VarintError) -> FieldProblem {
    match err {
        super::varint::VarintError::Truncated { .. } => FieldProblem::Truncated,
        other => FieldProblem::Varint(other),
    }
}

/// Decodes the record starting at `pos` of `section`; returns it and where the next
/// record starts.
fn decode_record(
    section: &Bytes,
    pos: usize,
    record_index: usize,
) -> Result<(Record, usize), BatchError> {
    let mut headers = Vec::new();
    let (fields, next) = parse_record(section, pos, record_index, |key, value| {
        headers.push((
            slice_checked(section, key),
            value.map(|v| slice_checked(section, v)),
        ));
    })?;
    let record = Record {
        attributes: fields.attributes,
        timestamp_delta: fields.timestamp_delta,
        offset_delta: fields.offset_delta,
        key: fields.key.map(|r| slice_checked(section, r)),
        value: fields.value.map(|r| slice_checked(section, r)),
        headers,
    };
    Ok((record, next))
}

/// Parses the record starting at `pos` of `section`, handing each header's key and value
/// ranges to `on_header`. Returns the fixed fields (ranges relative to `section`) and
/// where the next record starts.
fn parse_record(
    section: &[u8],
    pos: usize,
    record_index: usize,
    mut on_header: impl FnMut(Range<usize>, Option<Range<usize>>),
) -> Result<(RecordFields, usize), BatchError> {
    let mut prefix = FieldReader {
        body: section.get(pos..).unwrap_or_default(),
        pos: 0,
        record_index,
    };
    let declared = prefix.non_negative(RecordField::Length)?;
    let body_start = pos.saturating_add(prefix.pos);
    let available = section.len().saturating_sub(body_start);
    let body_end = body_start
        .checked_add(declared)
        .filter(|end| *end <= section.len())
        .ok_or_else(|| {
            BatchError::corrupt(Corruption::RecordTruncated {
                record_index,
                declared,
                available,
            })
        })?;
    let mut r = FieldReader {
        body: section.get(body_start..body_end).unwrap_or_default(),
        pos: 0,
        record_index,
    };
    // Ranges are relative to the body; shift them into the section (both ends are within
    // the body, so no overflow).
    let shift = |range: Range<usize>| body_start + range.start..body_start + range.end;

    let attributes = r.i8(RecordField::Attributes)?;
    let timestamp_delta = r.varlong(RecordField::TimestampDelta)?;
    let offset_delta = r.varint(RecordField::OffsetDelta)?;
    let key = r
        .nullable(RecordField::KeyLength, RecordField::Key)?
        .map(shift);
    let value = r
        .nullable(RecordField::ValueLength, RecordField::Value)?
        .map(shift);
    // Each header takes at least two bytes, so a huge count fails on the bytes, quickly.
    let header_count = r.non_negative(RecordField::HeaderCount)?;
    for _ in 0..header_count {
        let key_len = r.non_negative(RecordField::HeaderKeyLength)?;
        let key = shift(r.take(key_len, RecordField::HeaderKey)?);
        let value = r
            .nullable(RecordField::HeaderValueLength, RecordField::HeaderValue)?
            .map(shift);
        on_header(key, value);
    }
    if r.pos != declared {
        return Err(BatchError::corrupt(Corruption::RecordSizeMismatch {
            record_index,
            declared,
            actual: r.pos,
        }));
    }
    let fields = RecordFields {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
    };
    Ok((fields, body_end))
}

/// `Bytes::slice` panics on a bad range; the ranges here come from checked reads, but
/// out-of-range input must never panic, so check again.
fn slice_checked(bytes: &Bytes, range: Range<usize>) -> Bytes {
    let in_bounds = range.start <= range.end && range.end <= bytes.len();
    debug_assert!(in_bounds, "record field range {range:?} outside section");
    if in_bounds {
        bytes.slice(range)
    } else {
        Bytes::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordBatchBuilder;

    #[test]
    fn uncompressed_fields_slice_the_input_without_copying() {
        let batch = RecordBatchBuilder::new(Compression::None)
            .push(Some(b"key"), Some(b"value"), &[("h", Some(b"hv"))], 1)
            .build();
        let records = decode_records(&batch, 0).unwrap();
        let inside = |b: &Bytes| {
            let start = batch.as_ptr() as usize;
            let p = b.as_ptr() as usize;
            p >= start && p + b.len() <= start + batch.len()
        };
        let r = &records[0];
        assert!(inside(r.key.as_ref().unwrap()));
        assert!(inside(r.value.as_ref().unwrap()));
        assert!(inside(&r.headers[0].0));
        assert!(inside(r.headers[0].1.as_ref().unwrap()));
    }

    #[test]
    fn negative_header_count_and_key_length_are_corrupt() {
        // record: len, attrs, ts, off, key -1, value -1, header count -1
        let section = Bytes::from_static(&[12, 0, 0, 0, 1, 1, 1]);
        let err = RecordIter::new(section, 1).next().unwrap().unwrap_err();
        assert!(matches!(
            err,
            BatchError::Corrupt {
                reason: Corruption::MalformedRecord {
                    field: RecordField::HeaderCount,
                    problem: FieldProblem::Negative(-1),
                    ..
                }
            }
        ));
        // one header whose key length is -1
        let section = Bytes::from_static(&[16, 0, 0, 0, 1, 1, 2, 1, 1]);
        let err = RecordIter::new(section, 1).next().unwrap().unwrap_err();
        assert!(matches!(
            err,
            BatchError::Corrupt {
                reason: Corruption::MalformedRecord {
                    field: RecordField::HeaderKeyLength,
                    ..
                }
            }
        ));
    }

    #[test]
    fn a_record_running_past_the_section_is_corrupt() {
        let section = Bytes::from_static(&[40, 0, 0]);
        let err = RecordIter::new(section, 1).next().unwrap().unwrap_err();
        assert!(matches!(
            err,
            BatchError::Corrupt {
                reason: Corruption::RecordTruncated {
                    record_index: 0,
                    declared: 20,
                    available: 2
                }
            }
        ));
    }

    #[test]
    fn a_huge_header_count_fails_without_allocating_for_it() {
        // header count i32::MAX in a 10-byte body
        let section = Bytes::from_static(&[20, 0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f]);
        let err = RecordIter::new(section, 1).next().unwrap().unwrap_err();
        assert!(matches!(
            err,
            BatchError::Corrupt {
                reason: Corruption::MalformedRecord {
                    field: RecordField::HeaderKeyLength,
                    problem: FieldProblem::Truncated,
                    ..
                }
            }
        ));
    }

    #[test]
    fn iteration_stops_after_an_error() {
        let mut iter = RecordIter::new(Bytes::from_static(&[0x80]), 3);
        assert!(iter.next().unwrap().is_err());
        assert!(iter.next().is_none());
    }
}
