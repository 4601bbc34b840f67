//! Records of the `__consumer_offsets` topic in Apache Kafka's own schemas, so tools that
//! read that topic (`kafka-console-consumer --formatter ...GroupMetadataMessageFormatter`,
//! `kafka-dump-log --offsets-decoder`) understand what Sluice writes.
//!
//! ```text
//!   key   = int16 record type (the key version) + key fields
//!   value = int16 value version + value fields          (absent: tombstone)
//!
//!   key version 0|1  OffsetCommitKey     group, topic, partition
//!   key version 2    GroupMetadataKey    group
//!   OffsetCommitValue   v0-v4 (v4 flexible); Sluice writes v3, or v1 with an expire timestamp
//!   GroupMetadataValue  v0-v4 (v4 flexible); Sluice writes v3
//!   key version 3-8  KIP-848 consumer group records, see [`consumer`]
//! ```
//!
//! Schemas: `group-coordinator/src/main/resources/common/message/{OffsetCommitKey,
//! OffsetCommitValue,GroupMetadataKey,GroupMetadataValue,ConsumerGroup*}.json` in
//! apache/kafka. Kafka 4.x also stores the records of share and streams groups (and the
//! resolved regular expressions of consumer groups, type 16) under other key versions; they
//! decode to [`RecordDecodeError::UnknownRecordType`], and the loader skips them.

pub mod consumer;
mod wire;

use bytes::Bytes;

pub use consumer::{ConsumerKey, ConsumerValue};

use wire::{Reader, Writer};

/// One record of `__consumer_offsets` as the broker appends it: a key and, unless this is a
/// tombstone, a value. The broker writes the records of one `Append` as one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetsRecord {
    /// Serialized key (version-prefixed).
    pub key: Bytes,
    /// Serialized value (version-prefixed); `None` deletes the key.
    pub value: Option<Bytes>,
}

/// Key version of offset commit records written by Kafka since 0.9.
pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version (record type) of classic group metadata records.
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// Offset commit value version Kafka writes (no expire timestamp).
pub const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// Offset commit value version Kafka writes when the commit carries an explicit retention
/// (OffsetCommit v2-v4 `retention_time_ms`): the only version with an expire timestamp.
pub const EXPIRING_OFFSET_COMMIT_VALUE_VERSION: i16 = 1;
/// Group metadata value version Kafka writes.
pub const GROUP_METADATA_VALUE_VERSION: i16 = 3;
/// Highest value version of both schemas that can be read (v4 is the first flexible one).
pub const MAX_VALUE_VERSION: i16 = 4;

/// The key of a `__consumer_offsets` record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKey {
    /// OffsetCommitKey: the committed offset of one partition for one group.
    OffsetCommit {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// GroupMetadataKey: the membership and assignment of one classic group.
    GroupMetadata {
        /// Group id.
        group: String,
    },
    /// One of the records of a KIP-848 consumer group (types 3-8).
    Consumer(ConsumerKey),
}

impl RecordKey {
    /// The group this record belongs to.
    pub fn group(&self) -> &str {
        match self {
            Self::OffsetCommit { group, .. } | Self::GroupMetadata { group } => group,
            Self::Consumer(key) => key.group(),
        }
    }

    /// Serializes the key in the version Kafka writes.
    ///
    /// # Errors
    ///
    /// [`RecordEncodeError::TooLong`] if a string does not fit Kafka's `int16` length.
    pub fn encode(&self) -> Result<Bytes, RecordEncodeError> {
        let mut w = Writer::new();
        match self {
            Self::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                w.i16(OFFSET_COMMIT_KEY_VERSION);
                w.string(group, false, "group")?;
                w.string(topic, false, "topic")?;
                w.i32(*partition);
            }
            Self::GroupMetadata { group } => {
                w.i16(GROUP_METADATA_KEY_VERSION);
                w.string(group, false, "group")?;
            }
            Self::Consumer(key) => {
                w.i16(key.record_type());
                key.encode_fields(&mut w)?;
            }
        }
        Ok(w.finish())
    }

    /// Parses a key.
    ///
    /// # Errors
    ///
    /// [`RecordDecodeError::UnknownRecordType`] for the record types of other group kinds;
    /// any other variant for bytes that do not follow the schema.
    pub fn decode(input: &[u8]) -> Result<Self, RecordDecodeError> {
        let mut r = Reader::new(input);
        match r.i16("key version")? {
            0 | 1 => Ok(Self::OffsetCommit {
                group: r.string(false, "group")?,
                topic: r.string(false, "topic")?,
                partition: r.i32("partition")?,
            }),
            2 => Ok(Self::GroupMetadata {
                group: r.string(false, "group")?,
            }),
            key_version => match ConsumerKey::decode_fields(key_version, &mut r)? {
                Some(key) => Ok(Self::Consumer(key)),
                None => Err(RecordDecodeError::UnknownRecordType { key_version }),
            },
        }
    }
}

/// OffsetCommitValue: one committed offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitValue {
    /// The committed offset.
    pub offset: i64,
    /// Leader epoch of the committed offset, -1 if unknown (v3+).
    pub leader_epoch: i32,
    /// Client-supplied metadata string.
    pub metadata: String,
    /// When the commit was accepted, in ms since the epoch.
    pub commit_timestamp_ms: i64,
    /// Explicit expiry (v1 only), -1 if none: retention then counts from the group state.
    pub expire_timestamp_ms: i64,
}

impl OffsetCommitValue {
    /// The version Kafka writes for this value.
    pub fn write_version(&self) -> i16 {
        if self.expire_timestamp_ms == -1 {
            OFFSET_COMMIT_VALUE_VERSION
        } else {
            EXPIRING_OFFSET_COMMIT_VALUE_VERSION
        }
    }

    /// Serializes the value at `version` (0-4). Fields the version lacks are left out.
    ///
    /// # Errors
    ///
    /// [`RecordEncodeError::UnsupportedVersion`] outside 0-4; [`RecordEncodeError::TooLong`]
    /// if the metadata does not fit the encoding.
    pub fn encode(&self, version: i16) -> Result<Bytes, RecordEncodeError> {
        if !(0..=MAX_VALUE_VERSION).contains(&version) {
            return Err(RecordEncodeError::UnsupportedVersion { version });
        }
        let flexible = version >= 4;
        let mut w = Writer::new();
        w.i16(version);
        w.i64(self.offset);
        if version >= 3 {
            w.i32(self.leader_epoch);
        }
        w.string(&self.metadata, flexible, "metadata")?;
        w.i64(self.commit_timestamp_ms);
        if version == 1 {
            w.i64(self.expire_timestamp_ms);
        }
        if flexible {
            w.no_tagged_fields();
        }
        Ok(w.finish())
    }

    /// Parses a value of any version 0-4.
    ///
    /// # Errors
    ///
    /// A [`RecordDecodeError`] naming the field that could not be read.
    pub fn decode(input: &[u8]) -> Result<Self, RecordDecodeError> {
        let mut r = Reader::new(input);
        let version = r.i16("value version")?;
        if !(0..=MAX_VALUE_VERSION).contains(&version) {
            return Err(RecordDecodeError::UnsupportedValueVersion {
                record: RecordType::OffsetCommit,
                version,
            });
        }
        let flexible = version >= 4;
        let offset = r.i64("offset")?;
        let leader_epoch = if version >= 3 {
            r.i32("leader_epoch")?
        } else {
            -1
        };
        let metadata = r.string(flexible, "metadata")?;
        let commit_timestamp_ms = r.i64("commit_timestamp")?;
        let expire_timestamp_ms = if version == 1 {
            r.i64("expire_timestamp")?
        } else {
            -1
        };
        if flexible {
            r.skip_tagged_fields("tagged fields")?;
        }
        Ok(Self {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp_ms,
            expire_timestamp_ms,
        })
    }
}

/// GroupMetadataValue: a classic group as of its last persisted state change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// Protocol type ("consumer", "connect", ...); empty for a group that never had members.
    pub protocol_type: String,
    /// Generation id.
    pub generation: i32,
    /// Selected protocol (assignor) name; `None` when the group has no members.
    pub protocol: Option<String>,
    /// Leader member id; `None` when the group has no members.
    pub leader: Option<String>,
    /// When the group entered its current state, in ms since the epoch; -1 if unknown (v2+).
    pub current_state_timestamp_ms: i64,
    /// Members with their subscription and assignment.
    pub members: Vec<MemberMetadata>,
}

/// One member inside [`GroupMetadataValue`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberMetadata {
    /// Member id.
    pub member_id: String,
    /// Static membership id (KIP-345), v3+.
    pub group_instance_id: Option<String>,
    /// Client id of the member's connection.
    pub client_id: String,
    /// Client host of the member's connection.
    pub client_host: String,
    /// Rebalance timeout, -1 in v0 (then the session timeout stands in).
    pub rebalance_timeout_ms: i32,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// The member's metadata for the selected protocol (for "consumer": its subscription).
    pub subscription: Bytes,
    /// The assignment the leader gave this member.
    pub assignment: Bytes,
}

impl GroupMetadataValue {
    /// Serializes the value at `version` (0-4). Fields the version lacks are left out.
    ///
    /// # Errors
    ///
    /// [`RecordEncodeError::UnsupportedVersion`] outside 0-4; [`RecordEncodeError::TooLong`]
    /// if a string or byte field does not fit the encoding.
    pub fn encode(&self, version: i16) -> Result<Bytes, RecordEncodeError> {
        if !(0..=MAX_VALUE_VERSION).contains(&version) {
            return Err(RecordEncodeError::UnsupportedVersion { version });
        }
        let flexible = version >= 4;
        let mut w = Writer::new();
        w.i16(version);
        w.string(&self.protocol_type, flexible, "protocol_type")?;
        w.i32(self.generation);
        w.nullable_string(self.protocol.as_deref(), flexible, "protocol")?;
        w.nullable_string(self.leader.as_deref(), flexible, "leader")?;
        if version >= 2 {
            w.i64(self.current_state_timestamp_ms);
        }
        w.array_len(self.members.len(), flexible, "members")?;
        for member in &self.members {
            w.string(&member.member_id, flexible, "member_id")?;
            if version >= 3 {
                w.nullable_string(
                    member.group_instance_id.as_deref(),
                    flexible,
                    "group_instance_id",
                )?;
            }
            w.string(&member.client_id, flexible, "client_id")?;
            w.string(&member.client_host, flexible, "client_host")?;
            if version >= 1 {
                w.i32(member.rebalance_timeout_ms);
            }
            w.i32(member.session_timeout_ms);
            w.bytes(&member.subscription, flexible, "subscription")?;
            w.bytes(&member.assignment, flexible, "assignment")?;
            if flexible {
                w.no_tagged_fields();
            }
        }
        if flexible {
            w.no_tagged_fields();
        }
        Ok(w.finish())
    }

    /// Parses a value of any version 0-4.
    ///
    /// # Errors
    ///
    /// A [`RecordDecodeError`] naming the field that could not be read.
    pub fn decode(input: &[u8]) -> Result<Self, RecordDecodeError> {
        let mut r = Reader::new(input);
        let version = r.i16("value version")?;
        if !(0..=MAX_VALUE_VERSION).contains(&version) {
            return Err(RecordDecodeError::UnsupportedValueVersion {
                record: RecordType::GroupMetadata,
                version,
            });
        }
        let flexible = version >= 4;
        let protocol_type = r.string(flexible, "protocol_type")?;
        let generation = r.i32("generation")?;
        let protocol = r.nullable_string(flexible, "protocol")?;
        let leader = r.nullable_string(flexible, "leader")?;
        let current_state_timestamp_ms = if version >= 2 {
            r.i64("current_state_timestamp")?
        } else {
            -1
        };
        let count = r.array_len(flexible, "members")?;
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            let member_id = r.string(flexible, "member_id")?;
            let group_instance_id = if version >= 3 {
                r.nullable_string(flexible, "group_instance_id")?
            } else {
                None
            };
            let client_id = r.string(flexible, "client_id")?;
            let client_host = r.string(flexible, "client_host")?;
            let rebalance_timeout_ms = if version >= 1 {
                r.i32("rebalance_timeout")?
            } else {
                -1
            };
            let session_timeout_ms = r.i32("session_timeout")?;
            let subscription = r.bytes(flexible, "subscription")?;
            let assignment = r.bytes(flexible, "assignment")?;
            if flexible {
                r.skip_tagged_fields("member tagged fields")?;
            }
            members.push(MemberMetadata {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms,
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        if flexible {
            r.skip_tagged_fields("tagged fields")?;
        }
        Ok(Self {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp_ms,
            members,
        })
    }
}

/// Which schema a record follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordType {
    /// OffsetCommitKey / OffsetCommitValue.
    OffsetCommit,
    /// GroupMetadataKey / GroupMetadataValue.
    GroupMetadata,
    /// The records of consumer groups (types 3-8).
    ConsumerGroup,
}

/// A value of either schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordValue {
    /// A committed offset.
    OffsetCommit(OffsetCommitValue),
    /// A group's metadata.
    GroupMetadata(GroupMetadataValue),
    /// A consumer group record's value.
    Consumer(ConsumerValue),
}

/// A decoded `__consumer_offsets` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorRecord {
    /// What the record is about.
    pub key: RecordKey,
    /// Its new value; `None` is a tombstone.
    pub value: Option<RecordValue>,
}

impl CoordinatorRecord {
    /// Decodes a key and optional value.
    ///
    /// # Errors
    ///
    /// [`RecordDecodeError::UnknownRecordType`] for record types of other group kinds;
    /// another variant when the bytes do not follow the schema.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Self, RecordDecodeError> {
        let key = RecordKey::decode(key)?;
        let value = match (value, &key) {
            (None, _) => None,
            (Some(bytes), RecordKey::OffsetCommit { .. }) => {
                Some(RecordValue::OffsetCommit(OffsetCommitValue::decode(bytes)?))
            }
            (Some(bytes), RecordKey::GroupMetadata { .. }) => Some(RecordValue::GroupMetadata(
                GroupMetadataValue::decode(bytes)?,
            )),
            (Some(bytes), RecordKey::Consumer(key)) => {
                Some(RecordValue::Consumer(ConsumerValue::decode(key, bytes)?))
            }
        };
        Ok(Self { key, value })
    }

    /// Encodes the record in the versions Kafka writes.
    ///
    /// # Errors
    ///
    /// [`RecordEncodeError::TooLong`] if a field does not fit its encoding;
    /// [`RecordEncodeError::MismatchedValue`] if the value belongs to the other schema.
    pub fn encode(&self) -> Result<OffsetsRecord, RecordEncodeError> {
        let value = match (&self.key, &self.value) {
            (_, None) => None,
            (RecordKey::OffsetCommit { .. }, Some(RecordValue::OffsetCommit(v))) => {
                Some(v.encode(v.write_version())?)
            }
            (RecordKey::GroupMetadata { .. }, Some(RecordValue::GroupMetadata(v))) => {
                Some(v.encode(GROUP_METADATA_VALUE_VERSION)?)
            }
            (RecordKey::Consumer(key), Some(RecordValue::Consumer(v))) if v.matches(key) => {
                Some(v.encode()?)
            }
            _ => return Err(RecordEncodeError::MismatchedValue),
        };
        Ok(OffsetsRecord {
            key: self.key.encode()?,
            value,
        })
    }
}

impl OffsetsRecord {
    /// Decodes this record.
    ///
    /// # Errors
    ///
    /// As [`CoordinatorRecord::decode`].
    pub fn decode(&self) -> Result<CoordinatorRecord, RecordDecodeError> {
        CoordinatorRecord::decode(&self.key, self.value.as_deref())
    }
}

/// A key or value of `__consumer_offsets` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordDecodeError {
    /// The key version names a record type this coordinator does not own (consumer, share
    /// or streams group records of Kafka 4.x). Not corruption.
    #[error("record type {key_version} is not a classic group or offset commit record")]
    UnknownRecordType {
        /// The key version read.
        key_version: i16,
    },
    /// The value version is outside what the schema defines.
    #[error("{record:?} value version {version} is not supported")]
    UnsupportedValueVersion {
        /// Which schema.
        record: RecordType,
        /// The version read.
        version: i16,
    },
    /// The input ended inside a field.
    #[error("record truncated in field {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A length prefix is negative (other than the null marker) or does not fit memory.
    #[error("invalid length {length} for field {field}")]
    InvalidLength {
        /// The field being read.
        field: &'static str,
        /// The length read.
        length: i64,
    },
    /// A non-nullable field holds the null marker.
    #[error("field {field} is null but may not be")]
    UnexpectedNull {
        /// The field being read.
        field: &'static str,
    },
    /// A string field is not UTF-8.
    #[error("field {field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// A varint runs past 32 bits.
    #[error("varint in field {field} overflows 32 bits")]
    VarintOverflow {
        /// The field being read.
        field: &'static str,
    },
}

/// A record could not be serialized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordEncodeError {
    /// A string or byte field is longer than its length prefix can say (`int16` for
    /// strings in the non-flexible versions Kafka writes).
    #[error("field {field} is {len} bytes, too long for its encoding")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The requested value version is not 0-4.
    #[error("value version {version} is not supported")]
    UnsupportedVersion {
        /// The version asked for.
        version: i16,
    },
    /// The value belongs to the other schema than the key.
    #[error("record value does not match its key")]
    MismatchedValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn offset_commit_key_matches_kafka_layout() {
        let key = RecordKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        // int16 version 1, "g", "t", int32 3
        assert_eq!(hex(&key.encode().unwrap()), "000100016700017400000003");
    }

    #[test]
    fn group_metadata_key_matches_kafka_layout() {
        let key = RecordKey::GroupMetadata { group: "ab".into() };
        assert_eq!(hex(&key.encode().unwrap()), "000200026162");
    }

    #[test]
    fn offset_commit_value_v3_matches_kafka_layout() {
        let value = OffsetCommitValue {
            offset: 5,
            leader_epoch: 2,
            metadata: "m".into(),
            commit_timestamp_ms: 7,
            expire_timestamp_ms: -1,
        };
        assert_eq!(value.write_version(), 3);
        assert_eq!(
            hex(&value.encode(3).unwrap()),
            concat!(
                "0003",
                "0000000000000005",
                "00000002",
                "00016d",
                "0000000000000007"
            )
        );
    }

    #[test]
    fn offset_commit_key_version_zero_reads_as_the_same_key() {
        let mut bytes = RecordKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
        }
        .encode()
        .unwrap()
        .to_vec();
        bytes[1] = 0;
        assert!(matches!(
            RecordKey::decode(&bytes),
            Ok(RecordKey::OffsetCommit { .. })
        ));
    }

    #[test]
    fn share_and_streams_record_types_are_unknown_not_malformed() {
        assert_eq!(
            RecordKey::decode(&[0, 9, 0, 1, b'g']),
            Err(RecordDecodeError::UnknownRecordType { key_version: 9 })
        );
    }

    #[test]
    fn consumer_group_keys_match_kafka_layout() {
        let key = RecordKey::Consumer(ConsumerKey::MemberMetadata {
            group: "g".into(),
            member: "m".into(),
        });
        assert_eq!(hex(&key.encode().unwrap()), "000500016700016d");
        assert_eq!(RecordKey::decode(&key.encode().unwrap()).unwrap(), key);
    }

    #[test]
    fn null_group_is_rejected() {
        assert!(matches!(
            RecordKey::decode(&[0, 2, 0xff, 0xff]),
            Err(RecordDecodeError::UnexpectedNull { .. })
        ));
    }

    #[test]
    fn flexible_value_with_tagged_fields_is_read() {
        let value = OffsetCommitValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 2,
            expire_timestamp_ms: -1,
        };
        let mut bytes = value.encode(4).unwrap().to_vec();
        // Replace the empty tag section with one unknown tag (tag 9, two bytes).
        bytes.pop();
        bytes.extend_from_slice(&[1, 9, 2, 0xaa, 0xbb]);
        assert_eq!(OffsetCommitValue::decode(&bytes).unwrap(), value);
    }
}
