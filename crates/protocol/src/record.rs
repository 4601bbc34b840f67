//! RecordBatch v2 (magic 2): the on-wire and on-disk unit of Kafka data.
//!
//! Layout (big-endian), as the Kafka protocol guide defines it:
//!
//! ```text
//! 0  baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8
//! 17 crc u32 (CRC-32C of bytes 21..end) | 21 attributes i16 | 23 lastOffsetDelta i32
//! 27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64 | 51 producerEpoch i16
//! 53 baseSequence i32 | 57 recordCount i32 | 61 records...
//! ```
//!
//! baseOffset and partitionLeaderEpoch sit outside the CRC, so the broker assigns offsets
//! and stamps the epoch without recomputing it.

mod header;

pub use header::{
    BATCH_HEADER_LEN, BatchHeader, BatchHeaderError, Compression, LOG_OVERHEAD, TimestampType,
    compute_crc, crc_matches, set_base_offset, set_partition_leader_epoch,
};
