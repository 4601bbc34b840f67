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
    let body = RequestKind::decode(api_key, &mut frame, prefix.api_version).map_err(malformed)?;
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
    let api_key =
        ApiKey::try_from(header.request_api_key).map_err(|()| EncodeError::UnknownApiKey {
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

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{
        ApiVersionsRequest, FetchRequest, MetadataRequest, ProduceRequest, RequestHeader,
        RequestKind,
    };
    use kafka_protocol::protocol::StrBytes;
    use proptest::prelude::*;

    use super::*;

    fn default_body(api_key: ApiKey) -> Option<RequestKind> {
        Some(match api_key {
            ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
            ApiKey::Metadata => RequestKind::Metadata(MetadataRequest::default()),
            ApiKey::Produce => RequestKind::Produce(ProduceRequest::default()),
            ApiKey::Fetch => RequestKind::Fetch(FetchRequest::default()),
            _ => return None,
        })
    }

    fn encoded(
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
        client_id: Option<&str>,
    ) -> Option<Bytes> {
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(client_id.map(|c| StrBytes::from_string(c.to_owned())));
        let mut out = BytesMut::new();
        encode_request(&header, &default_body(api_key)?, &mut out).ok()?;
        Some(out.freeze().slice(4..))
    }

    #[test]
    fn every_accepted_version_round_trips() {
        for api_key in [
            ApiKey::ApiVersions,
            ApiKey::Metadata,
            ApiKey::Produce,
            ApiKey::Fetch,
        ] {
            let versions = versions::accepted(api_key).unwrap();
            for version in versions.min..=versions.max {
                let frame = encoded(api_key, version, 42, Some("client")).unwrap();
                let request = decode_request(frame).unwrap();
                assert_eq!(request.api_key, api_key);
                assert_eq!(request.api_version, version);
                assert_eq!(request.header.correlation_id, 42);
                assert_eq!(request.header.client_id.as_deref(), Some("client"));
            }
        }
    }

    #[test]
    fn unknown_key_and_version_are_typed_errors() {
        let mut frame = encoded(ApiKey::Metadata, 1, 7, None).unwrap().to_vec();
        frame[0..2].copy_from_slice(&999i16.to_be_bytes());
        assert!(matches!(
            decode_request(Bytes::from(frame.clone())),
            Err(DecodeError::UnknownApiKey {
                api_key: 999,
                correlation_id: 7
            })
        ));
        frame[0..2].copy_from_slice(&(ApiKey::Produce as i16).to_be_bytes());
        frame[2..4].copy_from_slice(&2i16.to_be_bytes());
        assert!(matches!(
            decode_request(Bytes::from(frame)),
            Err(DecodeError::UnsupportedVersion { version: 2, .. })
        ));
    }

    #[test]
    fn huge_array_count_fails_without_allocating() {
        // Metadata v1: header, then topics array count i32::MAX with nothing after it.
        let mut frame = encoded(ApiKey::Metadata, 1, 1, None).unwrap().to_vec();
        let body_at = frame.len() - 4;
        frame.truncate(body_at);
        frame.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            decode_request(Bytes::from(frame)),
            Err(DecodeError::Malformed { .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_request(Bytes::from(bytes));
        }

        #[test]
        fn truncated_requests_are_errors(cut in 0usize..64, version in 4i16..=12) {
            let frame = encoded(ApiKey::Fetch, version, 1, Some("c")).unwrap();
            let cut = cut.min(frame.len().saturating_sub(1));
            prop_assert!(decode_request(frame.slice(..cut)).is_err());
        }

        #[test]
        fn flipped_bits_never_panic(at in 0usize..64, bit in 0u8..8, version in 0i16..=13) {
            let mut frame = encoded(ApiKey::Metadata, version, 1, Some("c")).unwrap().to_vec();
            let at = at % frame.len();
            frame[at] ^= 1 << bit;
            let _ = decode_request(Bytes::from(frame));
        }
    }
}
