//! AlterConfigs (the legacy, non-incremental form): the configs given replace every
//! override of the topic.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use sluice_protocol::{ResponseError, kafka_protocol};

use super::admin::{self, AdminError};
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{RequestContext, str_bytes};

/// The refusal for a resource that is not a topic, shared with IncrementalAlterConfigs:
/// broker configs are static here, other types are not configurable.
pub(super) fn non_topic_resource(resource_type: i8) -> AdminError {
    if resource_type == RESOURCE_BROKER {
        AdminError::new(
            ResponseError::InvalidRequest,
            "AlterConfigs on a broker is not supported: use IncrementalAlterConfigs \
             (cluster-wide topic defaults such as log.retention.ms)",
        )
    } else {
        AdminError::new(
            ResponseError::InvalidRequest,
            format!("Unsupported resource type {resource_type}"),
        )
    }
}

pub(super) async fn handle(ctx: &RequestContext, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for resource in req.resources {
        let name = resource.resource_name.to_string();
        let outcome = match resource.resource_type {
            RESOURCE_TOPIC => {
                let mut overrides = BTreeMap::new();
                let mut seen = HashSet::new();
                let mut bad = None;
                for config in &resource.configs {
                    let key = config.name.to_string();
                    if !seen.insert(key.clone()) {
                        bad = Some(AdminError::new(
                            ResponseError::InvalidRequest,
                            "Error due to duplicate config keys",
                        ));
                        break;
                    }
                    match &config.value {
                        Some(value) => {
                            overrides.insert(key, value.to_string());
                        }
                        None => {
                            bad = Some(AdminError::new(
                                ResponseError::InvalidRequest,
                                format!("Null value not supported for : {key}"),
                            ));
                            break;
                        }
                    }
                }
                match bad {
                    Some(e) => Err(e),
                    None => {
                        admin::alter_topic_config(ctx, &name, overrides, req.validate_only).await
                    }
                }
            }
            other => Err(non_topic_resource(other)),
        };
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        responses.push(match outcome {
            Ok(()) => response,
            Err(e) => response
                .with_error_code(e.code.code())
                .with_error_message(Some(str_bytes(e.message))),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}
