//! The one place where Sluice's typed errors become Kafka error codes.

use sluice_protocol::ResponseError;
use sluice_protocol::record::BatchError;
use sluice_storage::ReadError;

/// Kafka's answer to a produce batch that failed validation.
pub(crate) fn batch_error(error: &BatchError) -> ResponseError {
    match error {
        BatchError::TooLarge { .. } | BatchError::UncompressedTooLarge { .. } => {
            ResponseError::MessageTooLarge
        }
        BatchError::Corrupt { .. } => ResponseError::CorruptMessage,
        BatchError::UnsupportedMagic { .. } => ResponseError::UnsupportedForMessageFormat,
        BatchError::InvalidRecord { .. } => ResponseError::InvalidRecord,
        BatchError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp,
        _ => ResponseError::CorruptMessage,
    }
}

/// Kafka's answer to a failed read.
pub(crate) fn read_error(error: &ReadError) -> ResponseError {
    match error {
        ReadError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        _ => ResponseError::KafkaStorageError,
    }
}
