//! Response encoding (broker side) and decoding (client side).

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::error::{DecodeError, EncodeError};

/// Appends a size-prefixed response (header + body) for a request of `api_key` at
/// `version` to `out`. The header version follows the API's rules (ApiVersions always
/// answers with header v0 so any client can read the error).
///
/// # Errors
/// [`EncodeError::Invalid`] when a field cannot be represented at `version`.
pub fn encode_response(
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    body: &ResponseKind,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    out.reserve(size_hint(body));
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let failed = |source: anyhow::Error| EncodeError::Invalid {
        api_key: api_key as i16,
        version,
        source: source.into(),
    };
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(out, api_key.response_header_version(version))
        .map_err(failed)?;
    body.encode(out, version).map_err(failed)?;
    patch_size_prefix(out, start)
}

/// Roughly how many bytes `body` encodes to, so a large fetch response is allocated
/// once instead of grown by doubling (each growth copies every record byte again).
fn size_hint(body: &ResponseKind) -> usize {
    const OVERHEAD: usize = 256;
    match body {
        ResponseKind::Fetch(fetch) => fetch
            .responses
            .iter()
            .flat_map(|topic| &topic.partitions)
            .map(|p| {
                p.records
                    .as_ref()
                    .map_or(0, Bytes::len)
                    .saturating_add(OVERHEAD)
            })
            .fold(OVERHEAD, usize::saturating_add),
        _ => OVERHEAD,
    }
}

/// Writes the size of everything after `start + 4` into the four bytes at `start`.
pub(crate) fn patch_size_prefix(out: &mut BytesMut, start: usize) -> Result<(), EncodeError> {
    let body_len = out.len().saturating_sub(start + 4);
    let size = i32::try_from(body_len).map_err(|_| EncodeError::TooLarge { size: body_len })?;
    if let Some(prefix) = out.get_mut(start..start + 4) {
        prefix.copy_from_slice(&size.to_be_bytes());
    }
    Ok(())
}

/// Client side: decodes a response body (after the size prefix) for a request of
/// `api_key` at `version`. Returns the correlation id and the typed body.
///
/// # Errors
/// [`DecodeError::Truncated`] or [`DecodeError::Malformed`].
pub fn decode_response(
    api_key: ApiKey,
    version: i16,
    mut frame: Bytes,
) -> Result<(i32, ResponseKind), DecodeError> {
    if frame.len() < 4 {
        return Err(DecodeError::Truncated);
    }
    let correlation_id = frame.clone().get_i32();
    let malformed = |source: anyhow::Error| DecodeError::Malformed {
        api_key: api_key as i16,
        version,
        correlation_id,
        source: source.into(),
    };
    let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version))
        .map_err(malformed)?;
    let body = ResponseKind::decode(api_key, &mut frame, version).map_err(malformed)?;
    Ok((header.correlation_id, body))
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{ApiVersionsResponse, MetadataResponse};

    use super::*;

    #[test]
    fn responses_round_trip_with_the_right_header() {
        // controller_id exists from v1.
        for version in 1..=13 {
            let mut out = BytesMut::new();
            let body =
                ResponseKind::Metadata(MetadataResponse::default().with_controller_id(3.into()));
            encode_response(9, ApiKey::Metadata, version, &body, &mut out).unwrap();
            let size = i32::from_be_bytes(out[..4].try_into().unwrap());
            assert_eq!(size as usize, out.len() - 4);
            let (correlation_id, decoded) =
                decode_response(ApiKey::Metadata, version, out.freeze().slice(4..)).unwrap();
            assert_eq!(correlation_id, 9);
            let ResponseKind::Metadata(decoded) = decoded else {
                panic!("wrong kind")
            };
            assert_eq!(decoded.controller_id.0, 3);
        }
    }

    #[test]
    fn api_versions_always_uses_header_v0() {
        // Header v0 is just the correlation id: the error code follows at byte 8.
        let mut out = BytesMut::new();
        let body = ResponseKind::ApiVersions(ApiVersionsResponse::default().with_error_code(35));
        encode_response(5, ApiKey::ApiVersions, 3, &body, &mut out).unwrap();
        assert_eq!(&out[4..8], &5i32.to_be_bytes());
        assert_eq!(&out[8..10], &35i16.to_be_bytes());
    }
}
