//! In-place rewrites of a batch's timestamp fields, as the broker does after validation
//! (Kafka's `DefaultRecordBatch.setMaxTimestamp`). Both fields are inside the CRC, so the
//! CRC is recomputed.

use super::{BATCH_HEADER_LEN, TimestampType, compute_crc};

const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const MAX_TIMESTAMP_OFFSET: usize = 35;
/// Attribute bit 3: LogAppendTime.
const TIMESTAMP_TYPE_BIT: u8 = 0x08;

/// Sets the timestamp type (attribute bit 3) and `maxTimestamp`, then recomputes the CRC
/// over bytes 21..end. `batch` must be exactly one batch; a slice shorter than the batch
/// header is left unchanged. Returns whether the batch was rewritten.
pub fn set_max_timestamp(
    batch: &mut [u8],
    timestamp_type: TimestampType,
    max_timestamp: i64,
) -> bool {
    if batch.len() < BATCH_HEADER_LEN {
        return false;
    }
    // attributes is a big-endian i16: bit 3 is in its second byte.
    if let Some(low) = batch.get_mut(ATTRIBUTES_OFFSET + 1) {
        match timestamp_type {
            TimestampType::LogAppendTime => *low |= TIMESTAMP_TYPE_BIT,
            TimestampType::CreateTime => *low &= !TIMESTAMP_TYPE_BIT,
        }
    }
    if let Some(dst) = batch.get_mut(MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8) {
        dst.copy_from_slice(&max_timestamp.to_be_bytes());
    }
    let crc = compute_crc(batch);
    if let Some(dst) = batch.get_mut(CRC_OFFSET..CRC_OFFSET + 4) {
        dst.copy_from_slice(&crc.to_be_bytes());
    }
    true
}

/// Marks the batch LogAppendTime with `append_time_ms` as its `maxTimestamp` (which
/// readers then use as every record's timestamp) and recomputes the CRC. As
/// [`set_max_timestamp`]: `batch` must be exactly one batch; a slice shorter than the
/// header is left unchanged.
pub fn set_log_append_time(batch: &mut [u8], append_time_ms: i64) {
    set_max_timestamp(batch, TimestampType::LogAppendTime, append_time_ms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchHeader, Compression, RecordBatchBuilder, crc_matches};

    #[test]
    fn log_append_time_sets_bit_timestamp_and_crc() {
        let mut b = RecordBatchBuilder::new(Compression::Lz4);
        b.push(Some(b"k"), Some(b"v"), &[], 1_000);
        let mut batch = b.build().to_vec();
        set_log_append_time(&mut batch, 5_000);
        let header = BatchHeader::parse(&batch).unwrap();
        assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(header.max_timestamp, 5_000);
        assert_eq!(header.base_timestamp, 1_000);
        assert_eq!(header.compression(), Some(Compression::Lz4));
        assert!(crc_matches(&header, &batch));
    }

    #[test]
    fn short_slices_are_left_alone() {
        let mut short = vec![0u8; BATCH_HEADER_LEN - 1];
        assert!(!set_max_timestamp(
            &mut short,
            TimestampType::LogAppendTime,
            1
        ));
        assert!(short.iter().all(|b| *b == 0));
    }
}
