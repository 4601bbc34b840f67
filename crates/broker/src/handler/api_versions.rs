//! ApiVersions: the APIs and versions this broker serves.

use bytes::BytesMut;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseKind};
use sluice_protocol::{ResponseError, kafka_protocol, versions};

use super::RequestContext;

fn api_keys() -> Vec<ApiVersion> {
    versions::all_advertised()
        .map(|(key, v)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(v.min)
                .with_max_version(v.max)
        })
        .collect()
}

pub(super) fn handle(_ctx: &RequestContext) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_api_keys(api_keys())
        .with_finalized_features_epoch(-1)
}

/// The answer to an ApiVersions request at a version we do not know: a v0 response
/// with UNSUPPORTED_VERSION and our version list, so the client can retry with a version
/// both sides speak (KIP-511).
pub(crate) fn unsupported_version_response(correlation_id: i32) -> Option<BytesMut> {
    let body = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys());
    let mut out = BytesMut::new();
    sluice_protocol::encode_response(
        correlation_id,
        ApiKey::ApiVersions,
        0,
        &ResponseKind::ApiVersions(body),
        &mut out,
    )
    .ok()?;
    Some(out)
}
