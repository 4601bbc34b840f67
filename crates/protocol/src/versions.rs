//! Which APIs and versions this broker serves.
//!
//! Upper bounds come from the message definitions `kafka-protocol` was generated from
//! (Apache Kafka 4.1), so they follow the schemas we can decode. Lower bounds are those of
//! Kafka 4.x (KIP-896 removed the older ones), with one exception kept on purpose:
//! Produce is *advertised* from v0 while only v3+ is accepted, as Kafka does since
//! KAFKA-18659, because librdkafka decides whether the broker supports compression by
//! looking for Produce v0..v2 in ApiVersions.

use kafka_protocol::messages::{
    AlterConfigsRequest, ApiKey, ApiVersionsRequest, ConsumerGroupDescribeRequest,
    ConsumerGroupHeartbeatRequest, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteGroupsRequest, DeleteRecordsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    DescribeGroupsRequest, DescribeLogDirsRequest, FetchRequest, FindCoordinatorRequest,
    HeartbeatRequest, IncrementalAlterConfigsRequest, InitProducerIdRequest, JoinGroupRequest,
    LeaveGroupRequest, ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetDeleteRequest, OffsetFetchRequest, ProduceRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::Message;

/// An inclusive range of API versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// Lowest version.
    pub min: i16,
    /// Highest version.
    pub max: i16,
}

impl Versions {
    fn of<M: Message>(min: i16) -> Self {
        Self {
            min,
            max: M::VERSIONS.max,
        }
    }

    /// Whether `version` lies in the range.
    pub fn contains(self, version: i16) -> bool {
        (self.min..=self.max).contains(&version)
    }
}

/// Versions a request of `api_key` is decoded and answered at; `None` for an API this
/// broker does not serve.
pub fn accepted(api_key: ApiKey) -> Option<Versions> {
    Some(match api_key {
        ApiKey::Produce => Versions::of::<ProduceRequest>(3),
        ApiKey::Fetch => Versions::of::<FetchRequest>(4),
        ApiKey::ListOffsets => Versions::of::<ListOffsetsRequest>(1),
        ApiKey::Metadata => Versions::of::<MetadataRequest>(0),
        ApiKey::FindCoordinator => Versions::of::<FindCoordinatorRequest>(0),
        ApiKey::ApiVersions => Versions::of::<ApiVersionsRequest>(0),
        ApiKey::CreateTopics => Versions::of::<CreateTopicsRequest>(2),
        ApiKey::DeleteTopics => Versions::of::<DeleteTopicsRequest>(1),
        ApiKey::InitProducerId => Versions::of::<InitProducerIdRequest>(0),
        ApiKey::DescribeConfigs => Versions::of::<DescribeConfigsRequest>(1),
        ApiKey::AlterConfigs => Versions::of::<AlterConfigsRequest>(0),
        ApiKey::IncrementalAlterConfigs => Versions::of::<IncrementalAlterConfigsRequest>(0),
        ApiKey::CreatePartitions => Versions::of::<CreatePartitionsRequest>(0),
        ApiKey::DescribeLogDirs => Versions::of::<DescribeLogDirsRequest>(1),
        ApiKey::DeleteRecords => Versions::of::<DeleteRecordsRequest>(0),
        ApiKey::JoinGroup => Versions::of::<JoinGroupRequest>(2),
        ApiKey::SyncGroup => Versions::of::<SyncGroupRequest>(0),
        ApiKey::Heartbeat => Versions::of::<HeartbeatRequest>(0),
        ApiKey::LeaveGroup => Versions::of::<LeaveGroupRequest>(0),
        ApiKey::OffsetCommit => Versions::of::<OffsetCommitRequest>(2),
        ApiKey::OffsetFetch => Versions::of::<OffsetFetchRequest>(1),
        ApiKey::OffsetDelete => Versions::of::<OffsetDeleteRequest>(0),
        ApiKey::DescribeGroups => Versions::of::<DescribeGroupsRequest>(0),
        ApiKey::ListGroups => Versions::of::<ListGroupsRequest>(0),
        ApiKey::DeleteGroups => Versions::of::<DeleteGroupsRequest>(0),
        // KIP-848; Kafka 4.x serves v0-v1 of both (v1: regex subscriptions, KIP-1082
        // client-chosen member ids, KIP-1099 member types).
        ApiKey::ConsumerGroupHeartbeat => Versions::of::<ConsumerGroupHeartbeatRequest>(0),
        ApiKey::ConsumerGroupDescribe => Versions::of::<ConsumerGroupDescribeRequest>(0),
        _ => return None,
    })
}

/// Versions listed for `api_key` in an ApiVersions response (see the module doc for why
/// this can be wider than [`accepted`]).
pub fn advertised(api_key: ApiKey) -> Option<Versions> {
    let accepted = accepted(api_key)?;
    Some(match api_key {
        ApiKey::Produce => Versions { min: 0, ..accepted },
        _ => accepted,
    })
}

/// Every API this broker serves, in key order, with its advertised versions.
pub fn all_advertised() -> impl Iterator<Item = (ApiKey, Versions)> {
    ApiKey::iter().filter_map(|key| advertised(key).map(|v| (key, v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_is_advertised_from_v0_but_accepted_from_v3() {
        assert_eq!(advertised(ApiKey::Produce).map(|v| v.min), Some(0));
        assert!(!accepted(ApiKey::Produce).is_some_and(|v| v.contains(2)));
        assert!(accepted(ApiKey::Produce).is_some_and(|v| v.contains(3)));
    }

    #[test]
    fn unserved_api_has_no_versions() {
        assert_eq!(accepted(ApiKey::ShareGroupHeartbeat), None);
        assert!(all_advertised().all(|(k, _)| k != ApiKey::ShareGroupHeartbeat));
    }

    #[test]
    fn consumer_group_apis_are_served_at_v0_to_v1() {
        for key in [
            ApiKey::ConsumerGroupHeartbeat,
            ApiKey::ConsumerGroupDescribe,
        ] {
            assert_eq!(accepted(key), Some(Versions { min: 0, max: 1 }));
        }
    }
}
