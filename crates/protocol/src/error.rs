//! Typed errors of the protocol layer. `kafka-protocol` reports failures as `anyhow`
//! errors; they are wrapped here as sources so callers can match on what went wrong.

use std::error::Error as StdError;

/// Boxed source error from the message codec.
pub type CodecError = Box<dyn StdError + Send + Sync + 'static>;

/// A request or response frame could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is shorter than the fixed request prefix.
    #[error("frame truncated before the request header")]
    Truncated,
    /// The API key is not one Kafka defines or this broker serves.
    #[error("unknown or unserved api key {api_key}")]
    UnknownApiKey {
        /// Raw API key.
        api_key: i16,
        /// Correlation id of the request.
        correlation_id: i32,
    },
    /// The API is served but not at this version.
    #[error("api key {api_key} version {version} is not supported")]
    UnsupportedVersion {
        /// Raw API key.
        api_key: i16,
        /// Requested version.
        version: i16,
        /// Correlation id of the request.
        correlation_id: i32,
    },
    /// Header or body bytes do not match the schema of that version.
    #[error("malformed api key {api_key} version {version}: {source}")]
    Malformed {
        /// Raw API key.
        api_key: i16,
        /// Version used.
        version: i16,
        /// Correlation id of the request.
        correlation_id: i32,
        /// What the codec reported.
        #[source]
        source: CodecError,
    },
}

/// A message could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The API key is not one Kafka defines.
    #[error("unknown api key {api_key}")]
    UnknownApiKey {
        /// Raw API key.
        api_key: i16,
    },
    /// A field cannot be represented at this version.
    #[error("cannot encode api key {api_key} version {version}: {source}")]
    Invalid {
        /// Raw API key.
        api_key: i16,
        /// Version requested.
        version: i16,
        /// What the codec reported.
        #[source]
        source: CodecError,
    },
    /// The encoded message does not fit an `i32` size prefix.
    #[error("encoded message of {size} bytes is too large")]
    TooLarge {
        /// Encoded size.
        size: usize,
    },
}
