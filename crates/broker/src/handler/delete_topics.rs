//! DeleteTopics, by name (all versions) or by topic id (v6+).

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use sluice_protocol::{ResponseError, kafka_protocol};

use super::admin::{self, AdminError};
use super::{RequestContext, str_bytes};

pub(super) async fn handle(ctx: &RequestContext, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut targets: Vec<(Option<String>, uuid::Uuid)> = req
        .topic_names
        .iter()
        .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
        .collect();
    targets.extend(
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)),
    );
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let result = DeletableTopicResult::default();
        let resolved = match &name {
            Some(name) => Ok(name.clone()),
            None => ctx
                .node()
                .catalog()
                .get_by_id(&id)
                .map(|t| t.name.to_string())
                .ok_or_else(|| {
                    AdminError::new(
                        ResponseError::UnknownTopicId,
                        "This server does not host this topic ID.",
                    )
                }),
        };
        let outcome = match resolved {
            Ok(name) => admin::delete_topic(ctx, &name).await,
            Err(e) => Err(e),
        };
        responses.push(match outcome {
            Ok(topic) => result
                .with_name(Some(TopicName(str_bytes(topic.name.to_string()))))
                .with_topic_id(topic.id),
            Err(e) => result
                .with_name(name.map(|n| TopicName(str_bytes(n))))
                .with_topic_id(id)
                .with_error_code(e.code.code())
                .with_error_message(Some(str_bytes(e.message))),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
