//! Kafka wire protocol for Sluice: framing, request and response headers, API dispatch
//! and version tables, the RecordBatch v2 zero-copy view with CRC-32C, and compression.
//!
//! Owns: everything between bytes on a socket and typed Kafka messages.
//! Must not know: sockets, files, clocks, runtimes. Bytes in, structs out.
//!
//! ```text
//!   socket bytes ─▶ frame::check ─▶ request::decode ─▶ typed request
//!   typed response ─▶ response::encode ─▶ length-prefixed bytes
//!   record batch bytes ─▶ record::BatchHeader / record::validate ─▶ offsets assigned in place
//! ```
//!
//! Invariants: decoding never panics on any input; a length prefix is checked against the
//! configured maximum before anything is allocated for it.

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod error;
pub mod frame;
pub mod partitioner;
pub mod record;
pub mod request;
pub mod response;
pub mod versions;

pub use error::{DecodeError, EncodeError};
pub use request::{Request, RequestPrefix, decode_request, encode_request};
pub use response::{decode_response, encode_response};

pub use kafka_protocol;
pub use kafka_protocol::error::ResponseError;
