//! The records of KIP-848 consumer groups, in Kafka 4.x's schemas
//! (`group-coordinator/src/main/resources/common/message/ConsumerGroup*.json`):
//!
//! ```text
//!   key version (record type) 3  ConsumerGroupMetadata            group        → epoch
//!                             4  ConsumerGroupPartitionMetadata   group        → subscribed topics' metadata
//!                             5  ConsumerGroupMemberMetadata      group,member → subscription, client
//!                             6  ConsumerGroupTargetAssignmentMetadata  group  → assignment epoch
//!                             7  ConsumerGroupTargetAssignmentMember group,member → target partitions
//!                             8  ConsumerGroupCurrentMemberAssignment group,member → epochs, state, owned
//! ```
//!
//! Keys are not flexible; every value is version 0 and flexible (compact strings and
//! arrays, tagged fields). Tagged fields added by later Kafka versions (the 4.1 metadata
//! hash, the classic member metadata of mixed groups) are skipped on read and not written.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use uuid::Uuid;

use super::wire::{Reader, Writer};
use super::{RecordDecodeError, RecordEncodeError, RecordType};

/// Partitions by topic id, as the consumer group records and APIs carry them.
pub type TopicPartitions = BTreeMap<Uuid, BTreeSet<i32>>;

/// The key of a consumer group record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConsumerKey {
    /// ConsumerGroupMetadataKey (type 3).
    Metadata {
        /// Group id.
        group: String,
    },
    /// ConsumerGroupPartitionMetadataKey (type 4).
    PartitionMetadata {
        /// Group id.
        group: String,
    },
    /// ConsumerGroupMemberMetadataKey (type 5).
    MemberMetadata {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
    /// ConsumerGroupTargetAssignmentMetadataKey (type 6).
    TargetAssignmentMetadata {
        /// Group id.
        group: String,
    },
    /// ConsumerGroupTargetAssignmentMemberKey (type 7).
    TargetAssignmentMember {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
    /// ConsumerGroupCurrentMemberAssignmentKey (type 8).
    CurrentMemberAssignment {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
}

impl ConsumerKey {
    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            Self::Metadata { group }
            | Self::PartitionMetadata { group }
            | Self::MemberMetadata { group, .. }
            | Self::TargetAssignmentMetadata { group }
            | Self::TargetAssignmentMember { group, .. }
            | Self::CurrentMemberAssignment { group, .. } => group,
        }
    }

    /// The record type, which is also the key version.
    pub fn record_type(&self) -> i16 {
        match self {
            Self::Metadata { .. } => 3,
            Self::PartitionMetadata { .. } => 4,
            Self::MemberMetadata { .. } => 5,
            Self::TargetAssignmentMetadata { .. } => 6,
            Self::TargetAssignmentMember { .. } => 7,
            Self::CurrentMemberAssignment { .. } => 8,
        }
    }

    pub(super) fn encode_fields(&self, w: &mut Writer) -> Result<(), RecordEncodeError> {
        w.string(self.group(), false, "group")?;
        match self {
            Self::MemberMetadata { member, .. }
            | Self::TargetAssignmentMember { member, .. }
            | Self::CurrentMemberAssignment { member, .. } => w.string(member, false, "member"),
            _ => Ok(()),
        }
    }

    /// Reads the fields of a key of type `record_type`; `None` for a type that is not a
    /// consumer group record.
    pub(super) fn decode_fields(
        record_type: i16,
        r: &mut Reader<'_>,
    ) -> Result<Option<Self>, RecordDecodeError> {
        let with_member = |r: &mut Reader<'_>| -> Result<(String, String), RecordDecodeError> {
            Ok((r.string(false, "group")?, r.string(false, "member")?))
        };
        Ok(Some(match record_type {
            3 => Self::Metadata {
                group: r.string(false, "group")?,
            },
            4 => Self::PartitionMetadata {
                group: r.string(false, "group")?,
            },
            5 => {
                let (group, member) = with_member(r)?;
                Self::MemberMetadata { group, member }
            }
            6 => Self::TargetAssignmentMetadata {
                group: r.string(false, "group")?,
            },
            7 => {
                let (group, member) = with_member(r)?;
                Self::TargetAssignmentMember { group, member }
            }
            8 => {
                let (group, member) = with_member(r)?;
                Self::CurrentMemberAssignment { group, member }
            }
            _ => return Ok(None),
        }))
    }
}

/// One topic of [`ConsumerValue::PartitionMetadata`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMetadataValue {
    /// Topic id.
    pub topic_id: Uuid,
    /// Topic name.
    pub topic_name: String,
    /// Partition count when the group epoch was computed.
    pub num_partitions: i32,
}

/// ConsumerGroupMemberMetadataValue: a member's subscription and client.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MemberMetadataValue {
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// Client id of the member's connection.
    pub client_id: String,
    /// Client host of the member's connection.
    pub client_host: String,
    /// Subscribed topic names.
    pub subscribed_topic_names: Vec<String>,
    /// Subscribed topic regular expression.
    pub subscribed_topic_regex: Option<String>,
    /// Rebalance timeout (-1 when unknown).
    pub rebalance_timeout_ms: i32,
    /// The server assignor the member asked for.
    pub server_assignor: Option<String>,
}

/// ConsumerGroupCurrentMemberAssignmentValue: where a member is in its reconciliation.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CurrentAssignmentValue {
    /// Epoch the member must heartbeat with.
    pub member_epoch: i32,
    /// The epoch before, accepted if the response bumping it was lost.
    pub previous_member_epoch: i32,
    /// MemberState: 0 stable, 1 unrevoked partitions, 2 unreleased partitions.
    pub state: i8,
    /// Partitions the member owns.
    pub assigned_partitions: TopicPartitions,
    /// Partitions the member must give up.
    pub partitions_pending_revocation: TopicPartitions,
}

/// A value of a consumer group record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsumerValue {
    /// ConsumerGroupMetadataValue: the group epoch.
    Metadata {
        /// Group epoch.
        epoch: i32,
    },
    /// ConsumerGroupPartitionMetadataValue: the subscribed topics the epoch was computed for.
    PartitionMetadata(Vec<TopicMetadataValue>),
    /// ConsumerGroupMemberMetadataValue.
    MemberMetadata(MemberMetadataValue),
    /// ConsumerGroupTargetAssignmentMetadataValue: the assignment epoch.
    TargetAssignmentMetadata {
        /// Epoch of the target assignment.
        assignment_epoch: i32,
    },
    /// ConsumerGroupTargetAssignmentMemberValue: one member's target partitions.
    TargetAssignmentMember(TopicPartitions),
    /// ConsumerGroupCurrentMemberAssignmentValue.
    CurrentMemberAssignment(CurrentAssignmentValue),
}

/// The only value version of these schemas.
const VALUE_VERSION: i16 = 0;

fn write_topic_partitions(
    w: &mut Writer,
    partitions: &TopicPartitions,
    field: &'static str,
) -> Result<(), RecordEncodeError> {
    w.array_len(partitions.len(), true, field)?;
    for (topic_id, indexes) in partitions {
        w.uuid(topic_id);
        w.array_len(indexes.len(), true, field)?;
        for index in indexes {
            w.i32(*index);
        }
        w.no_tagged_fields();
    }
    Ok(())
}

fn read_topic_partitions(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<TopicPartitions, RecordDecodeError> {
    let mut out = TopicPartitions::new();
    for _ in 0..r.array_len(true, field)? {
        let topic_id = r.uuid(field)?;
        let mut indexes = BTreeSet::new();
        for _ in 0..r.array_len(true, field)? {
            indexes.insert(r.i32(field)?);
        }
        r.skip_tagged_fields(field)?;
        if !indexes.is_empty() {
            out.entry(topic_id).or_default().extend(indexes);
        }
    }
    Ok(out)
}

impl ConsumerValue {
    /// Which key this value belongs under (ignoring the group and member).
    pub(super) fn matches(&self, key: &ConsumerKey) -> bool {
        matches!(
            (key, self),
            (ConsumerKey::Metadata { .. }, Self::Metadata { .. })
                | (
                    ConsumerKey::PartitionMetadata { .. },
                    Self::PartitionMetadata(_)
                )
                | (ConsumerKey::MemberMetadata { .. }, Self::MemberMetadata(_))
                | (
                    ConsumerKey::TargetAssignmentMetadata { .. },
                    Self::TargetAssignmentMetadata { .. }
                )
                | (
                    ConsumerKey::TargetAssignmentMember { .. },
                    Self::TargetAssignmentMember(_)
                )
                | (
                    ConsumerKey::CurrentMemberAssignment { .. },
                    Self::CurrentMemberAssignment(_)
                )
        )
    }

    /// Serializes the value (version 0).
    ///
    /// # Errors
    ///
    /// [`RecordEncodeError::TooLong`] if a field does not fit its encoding.
    pub fn encode(&self) -> Result<Bytes, RecordEncodeError> {
        let mut w = Writer::new();
        w.i16(VALUE_VERSION);
        match self {
            Self::Metadata { epoch } => w.i32(*epoch),
            Self::PartitionMetadata(topics) => {
                w.array_len(topics.len(), true, "topics")?;
                for topic in topics {
                    w.uuid(&topic.topic_id);
                    w.string(&topic.topic_name, true, "topic_name")?;
                    w.i32(topic.num_partitions);
                    // PartitionMetadata (racks) is unused since Kafka 4.0.
                    w.array_len(0, true, "partition_metadata")?;
                    w.no_tagged_fields();
                }
            }
            Self::MemberMetadata(m) => {
                w.nullable_string(m.instance_id.as_deref(), true, "instance_id")?;
                w.nullable_string(m.rack_id.as_deref(), true, "rack_id")?;
                w.string(&m.client_id, true, "client_id")?;
                w.string(&m.client_host, true, "client_host")?;
                w.array_len(
                    m.subscribed_topic_names.len(),
                    true,
                    "subscribed_topic_names",
                )?;
                for name in &m.subscribed_topic_names {
                    w.string(name, true, "subscribed_topic_names")?;
                }
                w.nullable_string(
                    m.subscribed_topic_regex.as_deref(),
                    true,
                    "subscribed_topic_regex",
                )?;
                w.i32(m.rebalance_timeout_ms);
                w.nullable_string(m.server_assignor.as_deref(), true, "server_assignor")?;
            }
            Self::TargetAssignmentMetadata { assignment_epoch } => w.i32(*assignment_epoch),
            Self::TargetAssignmentMember(partitions) => {
                write_topic_partitions(&mut w, partitions, "topic_partitions")?
            }
            Self::CurrentMemberAssignment(c) => {
                w.i32(c.member_epoch);
                w.i32(c.previous_member_epoch);
                w.i8(c.state);
                write_topic_partitions(&mut w, &c.assigned_partitions, "assigned_partitions")?;
                write_topic_partitions(
                    &mut w,
                    &c.partitions_pending_revocation,
                    "partitions_pending_revocation",
                )?;
            }
        }
        w.no_tagged_fields();
        Ok(w.finish())
    }

    /// Parses the value of a record under `key`.
    ///
    /// # Errors
    ///
    /// A [`RecordDecodeError`] naming the field that could not be read.
    pub fn decode(key: &ConsumerKey, input: &[u8]) -> Result<Self, RecordDecodeError> {
        let mut r = Reader::new(input);
        let version = r.i16("value version")?;
        if version != VALUE_VERSION {
            return Err(RecordDecodeError::UnsupportedValueVersion {
                record: RecordType::ConsumerGroup,
                version,
            });
        }
        let value = match key {
            ConsumerKey::Metadata { .. } => Self::Metadata {
                epoch: r.i32("epoch")?,
            },
            ConsumerKey::PartitionMetadata { .. } => {
                let count = r.array_len(true, "topics")?;
                let mut topics = Vec::with_capacity(count);
                for _ in 0..count {
                    let topic_id = r.uuid("topic_id")?;
                    let topic_name = r.string(true, "topic_name")?;
                    let num_partitions = r.i32("num_partitions")?;
                    for _ in 0..r.array_len(true, "partition_metadata")? {
                        r.i32("partition")?;
                        for _ in 0..r.array_len(true, "racks")? {
                            r.string(true, "racks")?;
                        }
                        r.skip_tagged_fields("partition_metadata")?;
                    }
                    r.skip_tagged_fields("topics")?;
                    topics.push(TopicMetadataValue {
                        topic_id,
                        topic_name,
                        num_partitions,
                    });
                }
                Self::PartitionMetadata(topics)
            }
            ConsumerKey::MemberMetadata { .. } => {
                let instance_id = r.nullable_string(true, "instance_id")?;
                let rack_id = r.nullable_string(true, "rack_id")?;
                let client_id = r.string(true, "client_id")?;
                let client_host = r.string(true, "client_host")?;
                let count = r.array_len(true, "subscribed_topic_names")?;
                let mut subscribed_topic_names = Vec::with_capacity(count);
                for _ in 0..count {
                    subscribed_topic_names.push(r.string(true, "subscribed_topic_names")?);
                }
                let subscribed_topic_regex = r.nullable_string(true, "subscribed_topic_regex")?;
                let rebalance_timeout_ms = r.i32("rebalance_timeout_ms")?;
                let server_assignor = r.nullable_string(true, "server_assignor")?;
                Self::MemberMetadata(MemberMetadataValue {
                    instance_id,
                    rack_id,
                    client_id,
                    client_host,
                    subscribed_topic_names,
                    subscribed_topic_regex,
                    rebalance_timeout_ms,
                    server_assignor,
                })
            }
            ConsumerKey::TargetAssignmentMetadata { .. } => Self::TargetAssignmentMetadata {
                assignment_epoch: r.i32("assignment_epoch")?,
            },
            ConsumerKey::TargetAssignmentMember { .. } => {
                Self::TargetAssignmentMember(read_topic_partitions(&mut r, "topic_partitions")?)
            }
            ConsumerKey::CurrentMemberAssignment { .. } => {
                Self::CurrentMemberAssignment(CurrentAssignmentValue {
                    member_epoch: r.i32("member_epoch")?,
                    previous_member_epoch: r.i32("previous_member_epoch")?,
                    state: r.i8("state")?,
                    assigned_partitions: read_topic_partitions(&mut r, "assigned_partitions")?,
                    partitions_pending_revocation: read_topic_partitions(
                        &mut r,
                        "partitions_pending_revocation",
                    )?,
                })
            }
        };
        r.skip_tagged_fields("tagged fields")?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn group_epoch_value_matches_kafka_layout() {
        let bytes = ConsumerValue::Metadata { epoch: 5 }.encode().unwrap();
        // version 0, int32 5, no tagged fields
        assert_eq!(hex(&bytes), "00000000000500");
    }

    #[test]
    fn a_4_1_metadata_hash_tag_is_skipped() {
        let key = ConsumerKey::Metadata { group: "g".into() };
        // version 0, epoch 7, one tagged field: tag 0, 8 bytes of hash
        let bytes = [0, 0, 0, 0, 0, 7, 1, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(
            ConsumerValue::decode(&key, &bytes).unwrap(),
            ConsumerValue::Metadata { epoch: 7 }
        );
    }

    #[test]
    fn current_assignment_round_trips() {
        let key = ConsumerKey::CurrentMemberAssignment {
            group: "g".into(),
            member: "m".into(),
        };
        let topic = Uuid::from_u128(7);
        let value = ConsumerValue::CurrentMemberAssignment(CurrentAssignmentValue {
            member_epoch: 3,
            previous_member_epoch: 2,
            state: 1,
            assigned_partitions: [(topic, [0, 2].into())].into(),
            partitions_pending_revocation: [(topic, [1].into())].into(),
        });
        let bytes = value.encode().unwrap();
        assert_eq!(ConsumerValue::decode(&key, &bytes).unwrap(), value);
    }
}
