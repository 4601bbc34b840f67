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

//!
//! Modules: [`header`](BatchHeader) parsing, [`compression`] codecs, [`varint`]s, record
//! decoding ([`decode_records`]), produce-time validation ([`validate_batch`],
//! [`split_batches`]), timestamp rewrites ([`set_log_append_time`]) and
//! [`RecordBatchBuilder`].

mod builder;
pub mod compression;
mod error;
mod header;
mod recompress;
mod records;
mod timestamp;
mod validate;
pub mod varint;

pub use builder::{BuildError, MAX_RECORDS_BYTES, RecordBatchBuilder};
pub use compression::{CompressionError, compress, decompress, try_compress};
pub use error::{BatchError, Corruption, FieldProblem, RecordField, TimestampProblem};
pub use header::{
    BATCH_HEADER_LEN, BatchHeader, BatchHeaderError, Compression, LOG_OVERHEAD, TimestampType,
    compute_crc, crc_matches, set_base_offset, set_partition_leader_epoch,
};
pub use recompress::recompress;
pub use records::{Record, RecordIter, decode_records, record_iter};
pub use timestamp::{set_log_append_time, set_max_timestamp};
pub use validate::{
    BatchSummary, NO_TIMESTAMP, SplitBatches, ValidationLimits, split_batches, validate_batch,
};
pub use varint::{VarintError, read_varint, read_varlong, write_varint, write_varlong};
