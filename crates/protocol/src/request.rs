//! Request decoding: header, version gate, body.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::error::{DecodeError, EncodeError};
use crate::versions;

/// A decoded request: its header and typed body.
#[derive(Debug)]
pub struct Request {
    /// The request header (correlation id, client id, ...).
    pub header: RequestHeader,
    /// The API this request calls.
    pub api_key: ApiKey,
    /// The version the client used; the response must use it too.
    pub api_version: i16,
    /// The typed body.
    pub body: RequestKind,
}

/// The fixed fields every request starts with, readable before anything else is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrefix {
    /// Raw API key.
    pub api_key: i16,
    /// Raw API version.
    pub api_version: i16,
    /// Correlation id to echo in the response.
    pub correlation_id: i32,
}

impl RequestPrefix {
    /// Reads the first eight bytes of a request body.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] when fewer than eight bytes are present.
    pub fn parse(frame: &[u8]) -> Result<Self, DecodeError> {
        let mut head = frame.get(..8).ok_or(DecodeError::Truncated)?;
        Ok(Self {
            api_key: head.get_i16(),
            api_version: head.get_i16(),
            correlation_id: head.get_i32(),
        })
    }
}

/// Decodes one request body (the bytes after the size prefix).
///
/// # Errors
/// - [`DecodeError::UnknownApiKey`] for an API key Kafka does not define or we do not serve;
/// - [`DecodeError::UnsupportedVersion`] for a version outside [`versions::accepted`]
///   (for ApiVersions the caller answers UNSUPPORTED_VERSION; otherwise it closes);
/// - [`DecodeError::Malformed`] when the header or body does not decode.
pub fn decode_request(mut frame: Bytes) -> Result<Request, DecodeError> {
    let prefix = RequestPrefix::parse(&frame)?;
    let api_key = ApiKey::try_from(prefix.api_key).map_err(|()| DecodeError::UnknownApiKey {
        api_key: prefix.api_key,
        correlation_id: prefix.correlation_id,
    })?;
    let accepted = versions::accepted(api_key).ok_or(DecodeError::UnknownApiKey {
        api_key: prefix.api_key,
        correlation_id: prefix.correlation_id,
    })?;
    if !accepted.contains(prefix.api_version) {
        return Err(DecodeError::UnsupportedVersion {
            api_key: prefix.api_key,
            version: prefix.api_version,
            correlation_id: prefix.correlation_id,
        });
    }
    let malformed = |source: anyhow::Error| DecodeError::Malformed {
        api_key: prefix.api_key,
        version: prefix.api_version,
        correlation_id: prefix.correlation_id,
        source: source.into(),
    };
    let header_version = api_key.request_header_version(prefix.api_version);
    let header = RequestHeader::decode(&mut frame, header_version).map_err(malformed)?;
    let body =
        RequestKind::decode(api_key, &mut frame, prefix.api_version).map_err(malformed)?;
    Ok(Request {
        header,
        api_key,
        api_version: prefix.api_version,
        body,
    })
}

/// Client side: appends a size-prefixed request (header + body) to `out`.
///
/// # Errors
/// [`EncodeError`] when the header names an unknown API or a field does not fit the
/// version.
pub fn encode_request(
    header: &RequestHeader,
    body: &RequestKind,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let api_key = ApiKey::try_from(header.request_api_key).map_err(|()| EncodeError::UnknownApiKey {
        api_key: header.request_api_key,
    })?;
    let version = header.request_api_version;
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let failed = |source: anyhow::Error| EncodeError::Invalid {
        api_key: header.request_api_key,
        version,
        source: source.into(),
    };
    header
        .encode(out, api_key.request_header_version(version))
        .map_err(failed)?;
    body.encode(out, version).map_err(failed)?;
    crate::response::patch_size_prefix(out, start)
}

