//! Produce-time validation of client batches, after Apache Kafka's `LogValidator` and
//! `UnifiedLog.analyzeAndValidateRecords`.
//!
//! [`split_batches`] cuts a produce request's `records` field into batches;
//! [`validate_batch`] checks one of them. Checks run in Kafka's order where it has one:
//!
//! 1. magic 2 (v0/v1 message sets are not supported) — [`BatchError::UnsupportedMagic`];
//! 2. header and `batchLength` consistent with the bytes — [`BatchError::Corrupt`];
//! 3. `baseOffset` is 0 — [`BatchError::InvalidRecord`];
//! 4. size within `max.message.bytes` — [`BatchError::TooLarge`];
//! 5. CRC-32C, then a defined codec — [`BatchError::Corrupt`];
//! 6. offset range, record count, no control batch, a sequence when there is a producer
//!    id — [`BatchError::InvalidRecord`];
//! 7. the producer did not set LogAppendTime — [`BatchError::InvalidTimestamp`];
//! 8. decompression within `max_uncompressed_bytes` — [`BatchError::UncompressedTooLarge`];
//! 9. each record parses ([`BatchError::Corrupt`]), offset deltas run 0..n-1 and keys are
//!    present on compacted topics ([`BatchError::InvalidRecord`]), and under CreateTime its
//!    timestamp is in range ([`BatchError::InvalidTimestamp`]); the count matches the
//!    records present ([`BatchError::InvalidRecord`]).
//!
//! Kafka reports every bad record of a batch; we stop at the first.

use bytes::Bytes;

use super::error::{BatchError, Corruption, TimestampProblem};
use super::records::{check_crc, check_length, codec, records_section, scan_records};
use super::{BatchHeader, Compression, LOG_OVERHEAD, TimestampType};

/// Byte offset of the magic in every Kafka message format.
const MAGIC_OFFSET: usize = 16;
/// A record without a timestamp (Kafka's `RecordBatch.NO_TIMESTAMP`).
pub const NO_TIMESTAMP: i64 = -1;
/// Smallest `batchLength` Kafka reads (the v0 message overhead after the length field).
const MIN_BATCH_LENGTH: i32 = 14;

/// Topic configuration and the clock, for [`validate_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationLimits {
    /// `max.message.bytes`: largest batch accepted, log overhead included.
    pub max_message_bytes: usize,
    /// Broker time when the produce request is handled, in ms since the epoch.
    pub now_ms: i64,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime timestamp may be.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime timestamp may be.
    pub timestamp_after_max_ms: i64,
    /// `message.timestamp.type` of the topic. Timestamps are range-checked only under
    /// CreateTime.
    pub timestamp_type: TimestampType,
    /// Most bytes a compressed records section may expand to.
    pub max_uncompressed_bytes: usize,
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub compacted: bool,
}

impl ValidationLimits {
    /// Kafka's topic defaults at time `now_ms`: 1 MiB + 12 bytes `max.message.bytes`,
    /// CreateTime with unbounded timestamps, not compacted, and a 64 MiB decompression cap.
    pub fn kafka_defaults(now_ms: i64) -> Self {
        Self {
            max_message_bytes: 1_048_588,
            now_ms,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            timestamp_type: TimestampType::CreateTime,
            max_uncompressed_bytes: 64 * 1024 * 1024,
            compacted: false,
        }
    }
}

/// What [`validate_batch`] learned about a valid batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    /// The batch header as sent.
    pub header: BatchHeader,
    /// Codec of the records section.
    pub compression: Compression,
    /// Number of records (equal to the header's count).
    pub record_count: usize,
    /// Largest record timestamp, [`NO_TIMESTAMP`] when no record has one. The header's
    /// `maxTimestamp` is not trusted: Kafka rewrites it with this value.
    pub max_timestamp: i64,
    /// Offset delta of the first record holding `max_timestamp`, -1 when none does.
    pub offset_delta_of_max_timestamp: i32,
    /// Size of the records section once decompressed.
    pub uncompressed_bytes: usize,
}

/// Checks one client batch for produce, as described in the module documentation.
/// `batch` must be exactly one batch, as [`split_batches`] yields them.
///
/// # Errors
/// The first problem found, as a [`BatchError`].
pub fn validate_batch(
    batch: &Bytes,
    limits: &ValidationLimits,
) -> Result<BatchSummary, BatchError> {
    if let Some(&magic) = batch.get(MAGIC_OFFSET)
        && magic != 2
    {
        return Err(BatchError::UnsupportedMagic { magic: magic as i8 });
    }
    let header = BatchHeader::parse(batch)?;
    check_length(&header, batch)?;
    if header.base_offset != 0 {
        return Err(BatchError::invalid_record(
            None,
            format!(
                "The baseOffset of the record batch in the append should be 0, but it is {}",
                header.base_offset
            ),
        ));
    }
    if batch.len() > limits.max_message_bytes {
        return Err(BatchError::TooLarge {
            size: batch.len(),
            max_message_bytes: limits.max_message_bytes,
        });
    }
    check_crc(&header, batch)?;
    let compression = codec(&header)?;
    check_batch_fields(&header)?;
    if header.timestamp_type() == TimestampType::LogAppendTime {
        return Err(BatchError::InvalidTimestamp {
            batch_index: Some(0),
            reason: TimestampProblem::LogAppendTimeFromProducer { offset: 0 },
        });
    }

    let section = records_section(&header, batch, limits.max_uncompressed_bytes)?;
    let uncompressed_bytes = section.len();
    let range = TimestampRange::new(limits);
    let mut max_timestamp = NO_TIMESTAMP;
    let mut offset_delta_of_max_timestamp = -1;
    let mut record_count = 0usize;
    for (index, record) in scan_records(&section, header.record_count).enumerate() {
        let record = record?;
        if i64::from(record.offset_delta) != i64::try_from(index).unwrap_or(i64::MAX) {
            return Err(BatchError::invalid_record(
                Some(index),
                format!(
                    "Inner record at index {index} has offset delta {}, expected {index}: \
                     offset deltas must be continuous from 0",
                    record.offset_delta
                ),
            ));
        }
        if limits.compacted && record.key.is_none() {
            return Err(BatchError::invalid_record(
                Some(index),
                "Compacted topic cannot accept message without key.".to_owned(),
            ));
        }
        let timestamp = header.base_timestamp.wrapping_add(record.timestamp_delta);
        if limits.timestamp_type == TimestampType::CreateTime && timestamp != NO_TIMESTAMP {
            range.check(timestamp, record.offset_delta, index)?;
        }
        if timestamp > max_timestamp {
            max_timestamp = timestamp;
            offset_delta_of_max_timestamp = record.offset_delta;
        }
        record_count = index + 1;
    }
    Ok(BatchSummary {
        header,
        compression,
        record_count,
        max_timestamp,
        offset_delta_of_max_timestamp,
        uncompressed_bytes,
    })
}

/// Kafka's batch-level checks on a client batch (`LogValidator.validateBatch`).
fn check_batch_fields(header: &BatchHeader) -> Result<(), BatchError> {
    let count_from_offsets = i64::from(header.last_offset_delta) + 1;
    if count_from_offsets <= 0 {
        return Err(BatchError::invalid_record(
            None,
            format!(
                "Batch has an invalid offset range: [{}, {}].",
                header.base_offset,
                header.last_offset()
            ),
        ));
    }
    if header.record_count <= 0 {
        return Err(BatchError::invalid_record(
            None,
            format!(
                "Invalid reported count for record batch: {}.",
                header.record_count
            ),
        ));
    }
    if count_from_offsets != i64::from(header.record_count) {
        return Err(BatchError::invalid_record(
            None,
            format!(
                "Inconsistent batch offset range [{}, {}] and count of records {}.",
                header.base_offset,
                header.last_offset(),
                header.record_count
            ),
        ));
    }
    if header.is_control() {
        return Err(BatchError::invalid_record(
            None,
            "Clients are not allowed to write control records.".to_owned(),
        ));
    }
    if header.producer_id >= 0 && header.base_sequence < 0 {
        return Err(BatchError::invalid_record(
            None,
            format!(
                "Invalid sequence number {} in record batch with producerId {}.",
                header.base_sequence, header.producer_id
            ),
        ));
    }
    Ok(())
}

/// `[now - before, now + after]`, computed without overflow.
struct TimestampRange {
    now_ms: i64,
    before_ms: i64,
    after_ms: i64,
}

impl TimestampRange {
    fn new(limits: &ValidationLimits) -> Self {
        Self {
            now_ms: limits.now_ms,
            before_ms: limits.timestamp_before_max_ms,
            after_ms: limits.timestamp_after_max_ms,
        }
    }

    fn check(&self, timestamp: i64, offset_delta: i32, index: usize) -> Result<(), BatchError> {
        // i128 so that extreme timestamps and limits (Long.MAX_VALUE defaults) compare
        // exactly.
        let ts = i128::from(timestamp);
        let now = i128::from(self.now_ms);
        if ts - now > i128::from(self.after_ms) || now - ts > i128::from(self.before_ms) {
            return Err(BatchError::InvalidTimestamp {
                batch_index: Some(index),
                reason: TimestampProblem::OutOfRange {
                    timestamp,
                    offset: i64::from(offset_delta),
                    min_ms: self.now_ms.saturating_sub(self.before_ms),
                    max_ms: self.now_ms.saturating_add(self.after_ms),
                },
            });
        }
        Ok(())
    }
}

/// Cuts a produce request's `records` bytes into whole batches using each batch's
/// `batchLength`. Yields each batch's bytes (use `Bytes::slice_ref` for an owned view);
/// a trailing partial batch or a length below Kafka's minimum yields an error, after
/// which the iterator ends.
pub fn split_batches(records: &[u8]) -> SplitBatches<'_> {
    SplitBatches {
        rest: records,
        done: false,
    }
}

/// Iterator returned by [`split_batches`].
#[derive(Debug, Clone)]
pub struct SplitBatches<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> SplitBatches<'a> {
    fn next_batch(&mut self) -> Result<&'a [u8], BatchError> {
        let rest = self.rest;
        let length_field = rest
            .get(LOG_OVERHEAD - 4..LOG_OVERHEAD)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .ok_or(BatchError::corrupt(Corruption::Truncated {
                needed: LOG_OVERHEAD,
                available: rest.len(),
            }))?;
        let batch_length = i32::from_be_bytes(length_field);
        if batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::corrupt(Corruption::InvalidLength {
                batch_length,
            }));
        }
        let total = usize::try_from(batch_length)
            .ok()
            .and_then(|len| len.checked_add(LOG_OVERHEAD))
            .ok_or(BatchError::corrupt(Corruption::InvalidLength {
                batch_length,
            }))?;
        let (batch, tail) =
            rest.split_at_checked(total)
                .ok_or(BatchError::corrupt(Corruption::Truncated {
                    needed: total,
                    available: rest.len(),
                }))?;
        self.rest = tail;
        Ok(batch)
    }
}

impl<'a> Iterator for SplitBatches<'a> {
    type Item = Result<&'a [u8], BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let item = self.next_batch();
        if item.is_err() {
            self.done = true;
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{
        BATCH_HEADER_LEN, RecordBatchBuilder, compute_crc, set_base_offset, set_log_append_time,
    };

    const NOW: i64 = 1_700_000_000_000;

    fn limits() -> ValidationLimits {
        ValidationLimits {
            max_message_bytes: 1 << 20,
            now_ms: NOW,
            timestamp_before_max_ms: 60_000,
            timestamp_after_max_ms: 60_000,
            timestamp_type: TimestampType::CreateTime,
            max_uncompressed_bytes: 1 << 20,
            compacted: false,
        }
    }

    /// Three small uncompressed records with no key, value "x", all at `NOW`: each record
    /// is 8 bytes `[14, 0, 0, offsetDelta*2, 1, 2, 'x', 0]`.
    fn three_records() -> Bytes {
        let mut b = RecordBatchBuilder::new(Compression::None);
        for _ in 0..3 {
            b.push(None, Some(b"x"), &[], NOW);
        }
        b.build()
    }

    /// Applies `edit` to a copy of `batch` and fixes the CRC.
    fn edited(batch: &Bytes, edit: impl FnOnce(&mut Vec<u8>)) -> Bytes {
        let mut bytes = batch.to_vec();
        edit(&mut bytes);
        let crc = compute_crc(&bytes);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(bytes)
    }

    fn invalid_record(result: Result<BatchSummary, BatchError>) -> (Option<usize>, String) {
        match result {
            Err(BatchError::InvalidRecord {
                batch_index,
                message,
            }) => (batch_index, message),
            other => panic!("expected InvalidRecord, got {other:?}"),
        }
    }

    #[test]
    fn summarises_a_valid_batch() {
        let batch = RecordBatchBuilder::new(Compression::Snappy)
            .push(Some(b"a"), Some(b"1"), &[], NOW - 5)
            .push(Some(b"b"), Some(b"2"), &[], NOW + 7)
            .push(Some(b"c"), Some(b"3"), &[], NOW + 7)
            .push(Some(b"d"), Some(b"4"), &[], NOW)
            .build();
        let summary = validate_batch(&batch, &limits()).unwrap();
        assert_eq!(summary.record_count, 4);
        assert_eq!(summary.compression, Compression::Snappy);
        assert_eq!(summary.max_timestamp, NOW + 7);
        assert_eq!(summary.offset_delta_of_max_timestamp, 1);
        assert_eq!(summary.header.base_timestamp, NOW - 5);
    }

    #[test]
    fn rejects_v0_and_v1_message_sets_by_magic() {
        let mut legacy = vec![0u8; 30];
        legacy[11] = 18;
        legacy[16] = 1;
        assert!(matches!(
            validate_batch(&Bytes::from(legacy), &limits()),
            Err(BatchError::UnsupportedMagic { magic: 1 })
        ));
    }

    #[test]
    fn rejects_a_non_zero_base_offset() {
        let mut bytes = three_records().to_vec();
        set_base_offset(&mut bytes, 5);
        let (index, message) = invalid_record(validate_batch(&Bytes::from(bytes), &limits()));
        assert_eq!(index, None);
        assert!(message.contains("should be 0, but it is 5"), "{message}");
    }

    #[test]
    fn rejects_a_batch_over_max_message_bytes() {
        let batch = three_records();
        let limits = ValidationLimits {
            max_message_bytes: batch.len() - 1,
            ..limits()
        };
        assert!(matches!(
            validate_batch(&batch, &limits),
            Err(BatchError::TooLarge { size, max_message_bytes })
                if size == batch.len() && max_message_bytes == batch.len() - 1
        ));
    }

    #[test]
    fn rejects_a_crc_mismatch_and_length_problems_as_corrupt() {
        let mut bytes = three_records().to_vec();
        *bytes.last_mut().unwrap() ^= 1;
        assert!(matches!(
            validate_batch(&Bytes::from(bytes), &limits()),
            Err(BatchError::Corrupt {
                reason: Corruption::CrcMismatch { .. }
            })
        ));
        let batch = three_records();
        assert!(matches!(
            validate_batch(&batch.slice(..batch.len() - 1), &limits()),
            Err(BatchError::Corrupt {
                reason: Corruption::Truncated { .. }
            })
        ));
        let mut longer = batch.to_vec();
        longer.push(0);
        assert!(matches!(
            validate_batch(&Bytes::from(longer), &limits()),
            Err(BatchError::Corrupt {
                reason: Corruption::TrailingBytes { .. }
            })
        ));
    }

    #[test]
    fn rejects_an_undefined_codec_as_corrupt() {
        let batch = edited(&three_records(), |b| b[22] |= 0x05);
        assert!(matches!(
            validate_batch(&batch, &limits()),
            Err(BatchError::Corrupt {
                reason: Corruption::UnknownCompression { codec_id: 5 }
            })
        ));
    }

    #[test]
    fn rejects_an_empty_batch() {
        let batch = RecordBatchBuilder::new(Compression::None).build();
        let (_, message) = invalid_record(validate_batch(&batch, &limits()));
        assert_eq!(message, "Batch has an invalid offset range: [0, -1].");
    }

    #[test]
    fn rejects_inconsistent_last_offset_delta_and_count() {
        let batch = edited(&three_records(), |b| {
            b[23..27].copy_from_slice(&5i32.to_be_bytes())
        });
        let (_, message) = invalid_record(validate_batch(&batch, &limits()));
        assert!(
            message.starts_with("Inconsistent batch offset range [0, 5]"),
            "{message}"
        );

        let batch = edited(&three_records(), |b| {
            b[57..61].copy_from_slice(&0i32.to_be_bytes())
        });
        let (_, message) = invalid_record(validate_batch(&batch, &limits()));
        assert_eq!(message, "Invalid reported count for record batch: 0.");
    }

    #[test]
    fn rejects_a_count_the_records_do_not_match() {
        // Header says 4 records (and lastOffsetDelta 3), only 3 are present.
        let batch = edited(&three_records(), |b| {
            b[23..27].copy_from_slice(&3i32.to_be_bytes());
            b[57..61].copy_from_slice(&4i32.to_be_bytes());
        });
        let (_, message) = invalid_record(validate_batch(&batch, &limits()));
        assert!(
            message.contains("declares 4 records but contains only 3"),
            "{message}"
        );

        // Header says 2: the third record is left over.
        let batch = edited(&three_records(), |b| {
            b[23..27].copy_from_slice(&1i32.to_be_bytes());
            b[57..61].copy_from_slice(&2i32.to_be_bytes());
        });
        let (_, message) = invalid_record(validate_batch(&batch, &limits()));
        assert!(message.contains("8 bytes left"), "{message}");
    }

    #[test]
    fn rejects_offset_deltas_that_are_not_continuous() {
        let batch = edited(&three_records(), |b| b[BATCH_HEADER_LEN + 8 + 3] = 4);
        let (index, message) = invalid_record(validate_batch(&batch, &limits()));
        assert_eq!(index, Some(1));
        assert!(message.contains("offset delta 2, expected 1"), "{message}");
    }

    #[test]
    fn rejects_a_record_whose_length_disagrees_with_its_fields() {
        let batch = edited(&three_records(), |b| b[BATCH_HEADER_LEN] = 16);
        assert!(matches!(
            validate_batch(&batch, &limits()),
            Err(BatchError::Corrupt {
                reason: Corruption::RecordSizeMismatch {
                    record_index: 0,
                    declared: 8,
                    actual: 7
                }
            })
        ));
    }

    #[test]
    fn rejects_control_batches_from_clients() {
        let batch = RecordBatchBuilder::new(Compression::None)
            .control(true)
            .push(Some(b"k"), Some(b"v"), &[], NOW)
            .build();
        let (_, message) = invalid_record(validate_batch(&batch, &limits()));
        assert_eq!(message, "Clients are not allowed to write control records.");
    }

    #[test]
    fn rejects_a_producer_id_without_sequence() {
        let batch = RecordBatchBuilder::new(Compression::None)
            .producer(9, 0, -1)
            .push(None, Some(b"v"), &[], NOW)
            .build();
        let (_, message) = invalid_record(validate_batch(&batch, &limits()));
        assert_eq!(
            message,
            "Invalid sequence number -1 in record batch with producerId 9."
        );
    }

    #[test]
    fn rejects_log_append_time_set_by_the_producer() {
        let mut bytes = three_records().to_vec();
        set_log_append_time(&mut bytes, NOW);
        assert!(matches!(
            validate_batch(&Bytes::from(bytes), &limits()),
            Err(BatchError::InvalidTimestamp {
                batch_index: Some(0),
                reason: TimestampProblem::LogAppendTimeFromProducer { .. }
            })
        ));
    }

    #[test]
    fn rejects_create_time_outside_the_window() {
        for (late, early) in [(NOW + 60_001, NOW), (NOW, NOW - 60_001)] {
            let batch = RecordBatchBuilder::new(Compression::Lz4)
                .push(None, Some(b"ok"), &[], NOW)
                .push(
                    None,
                    Some(b"bad"),
                    &[],
                    if late > NOW { late } else { early },
                )
                .build();
            let err = validate_batch(&batch, &limits()).unwrap_err();
            assert_eq!(err.batch_index(), Some(1));
            let text = err.to_string();
            assert!(
                text.contains("of message with offset 1 is out of range")
                    && text.contains(&format!("[{}, {}]", NOW - 60_000, NOW + 60_000)),
                "{text}"
            );
        }
        // At the edges is fine.
        let batch = RecordBatchBuilder::new(Compression::None)
            .push(None, Some(b"a"), &[], NOW - 60_000)
            .push(None, Some(b"b"), &[], NOW + 60_000)
            .build();
        assert!(validate_batch(&batch, &limits()).is_ok());
    }

    #[test]
    fn log_append_time_topics_and_missing_timestamps_skip_the_window() {
        let batch = RecordBatchBuilder::new(Compression::None)
            .push(None, Some(b"old"), &[], 0)
            .build();
        let topic = ValidationLimits {
            timestamp_type: TimestampType::LogAppendTime,
            ..limits()
        };
        assert!(validate_batch(&batch, &topic).is_ok());

        let batch = RecordBatchBuilder::new(Compression::None)
            .push(None, Some(b"none"), &[], NO_TIMESTAMP)
            .build();
        let summary = validate_batch(&batch, &limits()).unwrap();
        assert_eq!(summary.max_timestamp, NO_TIMESTAMP);
        assert_eq!(summary.offset_delta_of_max_timestamp, -1);
    }

    #[test]
    fn compacted_topics_need_keys() {
        let compacted = ValidationLimits {
            compacted: true,
            ..limits()
        };
        let (index, message) = invalid_record(validate_batch(&three_records(), &compacted));
        assert_eq!(index, Some(0));
        assert!(message.starts_with("Compacted topic cannot accept message without key"));
    }

    #[test]
    fn caps_decompressed_size() {
        let big = vec![0u8; 100_000];
        let batch = RecordBatchBuilder::new(Compression::Zstd)
            .push(None, Some(&big), &[], NOW)
            .build();
        let small = ValidationLimits {
            max_uncompressed_bytes: 50_000,
            ..limits()
        };
        assert!(matches!(
            validate_batch(&batch, &small),
            Err(BatchError::UncompressedTooLarge {
                codec: Compression::Zstd,
                max_uncompressed_bytes: 50_000
            })
        ));
    }

    #[test]
    fn splits_batches_and_reports_a_truncated_tail() {
        let a = three_records();
        let b = RecordBatchBuilder::new(Compression::Gzip)
            .push(None, Some(b"y"), &[], NOW)
            .build();
        let mut all = [&a[..], &b[..]].concat();
        let parts: Vec<_> = split_batches(&all).collect::<Result<_, _>>().unwrap();
        assert_eq!(parts, vec![&a[..], &b[..]]);

        all.extend_from_slice(&a[..20]);
        let results: Vec<_> = split_batches(&all).collect();
        assert_eq!(results.len(), 3);
        assert!(matches!(
            results[2],
            Err(BatchError::Corrupt {
                reason: Corruption::Truncated { needed, available: 20 }
            }) if needed == a.len()
        ));

        let short = &a[..7];
        let results: Vec<_> = split_batches(short).collect();
        assert!(matches!(
            results[..],
            [Err(BatchError::Corrupt {
                reason: Corruption::Truncated {
                    needed: 12,
                    available: 7
                }
            })]
        ));
        assert_eq!(split_batches(&[]).count(), 0);
    }
}
