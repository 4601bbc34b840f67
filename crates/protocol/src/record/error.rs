//! Errors from decoding and validating record batches.
//!
//! The variants follow the Kafka error each one becomes (the mapping to wire codes lives in
//! the broker): [`BatchError::TooLarge`] is MESSAGE_TOO_LARGE, [`BatchError::Corrupt`] is
//! CORRUPT_MESSAGE, [`BatchError::UnsupportedMagic`] is UNSUPPORTED_FOR_MESSAGE_FORMAT,
//! [`BatchError::InvalidRecord`] is INVALID_RECORD and [`BatchError::InvalidTimestamp`] is
//! INVALID_TIMESTAMP. Their `Display` texts are written for Kafka clients, which show them
//! as the produce response's error message.

use std::fmt;

use super::BatchHeaderError;
use super::compression::CompressionError;
use super::varint::VarintError;

/// Why a record batch was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The batch is larger than the topic's `max.message.bytes`.
    #[error(
        "The record batch size in the append is {size} bytes which exceeds the maximum \
         configured value of {max_message_bytes}."
    )]
    TooLarge {
        /// Size of the whole batch, log overhead included.
        size: usize,
        /// The configured maximum.
        max_message_bytes: usize,
    },
    /// The bytes are damaged: bad lengths, CRC mismatch, unknown codec, undecodable
    /// compressed data or records that do not parse.
    #[error("Record batch is corrupt: {reason}")]
    Corrupt {
        /// What is wrong.
        reason: Corruption,
    },
    /// A magic byte other than 2: message format v0/v1 is not supported.
    #[error("Record batch magic {magic} is not supported; only magic 2 is")]
    UnsupportedMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// The batch parses but breaks a rule of the record format or of produce.
    #[error("{message}")]
    InvalidRecord {
        /// Index of the offending record within the batch, `None` for the batch as a whole.
        batch_index: Option<usize>,
        /// Kafka-style explanation for the client.
        message: String,
    },
    /// A record timestamp the topic does not accept.
    #[error("{reason}")]
    InvalidTimestamp {
        /// Index of the offending record within the batch.
        batch_index: Option<usize>,
        /// What is wrong with it.
        reason: TimestampProblem,
    },
    /// The records decompress to more than the configured limit.
    #[error(
        "Record batch decompresses to more than {max_uncompressed_bytes} bytes ({codec} \
         compression)"
    )]
    UncompressedTooLarge {
        /// Codec of the batch.
        codec: super::Compression,
        /// The limit that was passed.
        max_uncompressed_bytes: usize,
    },
}

impl BatchError {
    /// Index of the record the error is about, when it is about one record.
    pub fn batch_index(&self) -> Option<usize> {
        match self {
            Self::InvalidRecord { batch_index, .. }
            | Self::InvalidTimestamp { batch_index, .. } => *batch_index,
            Self::Corrupt {
                reason:
                    Corruption::MalformedRecord { record_index, .. }
                    | Corruption::RecordTruncated { record_index, .. }
                    | Corruption::RecordSizeMismatch { record_index, .. },
            } => Some(*record_index),
            _ => None,
        }
    }

    pub(crate) fn corrupt(reason: Corruption) -> Self {
        Self::Corrupt { reason }
    }

    pub(crate) fn invalid_record(batch_index: Option<usize>, message: String) -> Self {
        Self::InvalidRecord {
            batch_index,
            message,
        }
    }
}

impl From<BatchHeaderError> for BatchError {
    fn from(err: BatchHeaderError) -> Self {
        match err {
            BatchHeaderError::Truncated { needed, available } => {
                Self::corrupt(Corruption::Truncated { needed, available })
            }
            BatchHeaderError::InvalidLength { batch_length } => {
                Self::corrupt(Corruption::InvalidLength { batch_length })
            }
            BatchHeaderError::UnsupportedMagic { magic } => Self::UnsupportedMagic { magic },
        }
    }
}

/// What is damaged in a corrupt batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// Fewer bytes than the header or `batchLength` needs.
    #[error("truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the batch needs.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// `batchLength` is below the minimum.
    #[error("invalid batch length {batch_length}")]
    InvalidLength {
        /// The announced length.
        batch_length: i32,
    },
    /// Bytes follow the batch where exactly one batch was expected.
    #[error("batch length {batch_len} bytes but {available} bytes given")]
    TrailingBytes {
        /// Whole-batch size from `batchLength`.
        batch_len: usize,
        /// Bytes given.
        available: usize,
    },
    /// The stored CRC-32C does not match the bytes.
    #[error("Record is corrupt (stored crc = {stored}, computed crc = {computed})")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// Attribute bits 0..=2 name no codec.
    #[error("unknown compression type id {codec_id}")]
    UnknownCompression {
        /// The codec id found.
        codec_id: u8,
    },
    /// The compressed records section does not decode.
    #[error("{source}")]
    Decompression {
        /// Decoder failure.
        #[source]
        source: CompressionError,
    },
    /// A record's bytes do not parse.
    #[error("record {record_index}: {field} {problem}")]
    MalformedRecord {
        /// Index of the record in the batch.
        record_index: usize,
        /// Field being read.
        field: RecordField,
        /// What went wrong reading it.
        problem: FieldProblem,
    },
    /// The records section ends inside a record.
    #[error(
        "record {record_index} declares {declared} bytes but only {available} remain in the batch"
    )]
    RecordTruncated {
        /// Index of the record in the batch.
        record_index: usize,
        /// The record's `length` field.
        declared: usize,
        /// Bytes left in the records section after the `length` field.
        available: usize,
    },
    /// A record's `length` differs from the bytes its fields occupy.
    #[error(
        "Invalid record size: expected to read {declared} bytes in record payload, but \
         instead read {actual} (record {record_index})"
    )]
    RecordSizeMismatch {
        /// Index of the record in the batch.
        record_index: usize,
        /// The record's `length` field.
        declared: usize,
        /// Bytes its fields occupy.
        actual: usize,
    },
}

/// A field of a record, to say where decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordField {
    /// The leading `length` varint.
    Length,
    /// `attributes` i8.
    Attributes,
    /// `timestampDelta` varlong.
    TimestampDelta,
    /// `offsetDelta` varint.
    OffsetDelta,
    /// `keyLength` varint.
    KeyLength,
    /// Key bytes.
    Key,
    /// `valueLength` varint.
    ValueLength,
    /// Value bytes.
    Value,
    /// Header count varint.
    HeaderCount,
    /// A header's key length varint.
    HeaderKeyLength,
    /// A header's key bytes.
    HeaderKey,
    /// A header's value length varint.
    HeaderValueLength,
    /// A header's value bytes.
    HeaderValue,
}

impl fmt::Display for RecordField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Length => "length",
            Self::Attributes => "attributes",
            Self::TimestampDelta => "timestampDelta",
            Self::OffsetDelta => "offsetDelta",
            Self::KeyLength => "keyLength",
            Self::Key => "key",
            Self::ValueLength => "valueLength",
            Self::Value => "value",
            Self::HeaderCount => "header count",
            Self::HeaderKeyLength => "header keyLength",
            Self::HeaderKey => "header key",
            Self::HeaderValueLength => "header valueLength",
            Self::HeaderValue => "header value",
        })
    }
}

/// What went wrong reading one record field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldProblem {
    /// The record's bytes end inside the field.
    Truncated,
    /// A varint that is too long or too wide.
    Varint(VarintError),
    /// A length or count that may not be negative.
    Negative(i32),
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("is truncated"),
            Self::Varint(err) => write!(f, "is not a valid varint: {err}"),
            Self::Negative(n) => write!(f, "is negative ({n})"),
        }
    }
}

/// Why a record's timestamp is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampProblem {
    /// Under CreateTime, the timestamp is outside
    /// `[now - message.timestamp.before.max.ms, now + message.timestamp.after.max.ms]`.
    #[error(
        "Timestamp {timestamp} of message with offset {offset} is out of range. The \
         timestamp should be within [{min_ms}, {max_ms}]"
    )]
    OutOfRange {
        /// The record's timestamp.
        timestamp: i64,
        /// The record's offset within the batch as sent (base offset 0).
        offset: i64,
        /// Earliest accepted timestamp.
        min_ms: i64,
        /// Latest accepted timestamp.
        max_ms: i64,
    },
    /// The producer set the LogAppendTime attribute, which only the broker may set.
    #[error(
        "Invalid timestamp type in message with offset {offset}. Producer should not set \
         timestamp type to LogAppendTime."
    )]
    LogAppendTimeFromProducer {
        /// The first record's offset within the batch.
        offset: i64,
    },
}
