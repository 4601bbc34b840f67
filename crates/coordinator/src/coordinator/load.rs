//! Rebuilding the groups of a partition from its records (Kafka's replay of
//! `__consumer_offsets` on becoming leader).
//!
//! The latest value of each key wins and a tombstone deletes it. Groups with persisted
//! metadata come back Stable (with members) or Empty; offsets of a group without metadata
//! make a simple group. Records of other group kinds, and records that do not parse or
//! describe an impossible group, are counted and skipped. Consumer group records keep
//! their latest value per key; the coordinator rebuilds those groups from them.

use std::collections::{BTreeMap, BTreeSet};

use crate::group::ClassicGroup;
use crate::offsets::OffsetStore;
use crate::record::{
    ConsumerKey, ConsumerValue, GroupMetadataValue, OffsetsRecord, RecordDecodeError, RecordKey,
    RecordValue,
};

/// Whether a decoded group could have been written by a coordinator: member ids and
/// instance ids unique, and a group with members has a protocol and a leader among them.
fn is_consistent(value: &GroupMetadataValue) -> bool {
    let mut member_ids = BTreeSet::new();
    let mut instance_ids = BTreeSet::new();
    for member in &value.members {
        if !member_ids.insert(member.member_id.as_str()) {
            return false;
        }
        if let Some(instance_id) = &member.group_instance_id
            && !instance_ids.insert(instance_id.as_str())
        {
            return false;
        }
    }
    value.members.is_empty()
        || (value.protocol.is_some()
            && value
                .leader
                .as_deref()
                .is_some_and(|leader| member_ids.contains(leader)))
}

/// What a load found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Records read.
    pub records: usize,
    /// Records of group kinds this coordinator does not own (Kafka 4.x share and streams
    /// groups, resolved regular expressions), skipped.
    pub skipped_other_types: usize,
    /// Records that did not parse, skipped.
    pub skipped_malformed: usize,
    /// Groups rebuilt.
    pub groups: usize,
    /// Committed offsets rebuilt.
    pub offsets: usize,
}

pub(super) struct Loaded {
    pub(super) groups: BTreeMap<String, ClassicGroup>,
    pub(super) offsets: OffsetStore,
    pub(super) consumer_durable: BTreeMap<ConsumerKey, ConsumerValue>,
    pub(super) report: LoadReport,
}

pub(super) fn replay(records: impl IntoIterator<Item = OffsetsRecord>, now_ms: i64) -> Loaded {
    let mut report = LoadReport::default();
    let mut latest: BTreeMap<RecordKey, Option<RecordValue>> = BTreeMap::new();
    for record in records {
        report.records += 1;
        match record.decode() {
            Ok(decoded) => match &decoded.value {
                Some(RecordValue::GroupMetadata(value)) if !is_consistent(value) => {
                    report.skipped_malformed += 1
                }
                _ => {
                    latest.insert(decoded.key, decoded.value);
                }
            },
            Err(RecordDecodeError::UnknownRecordType { .. }) => report.skipped_other_types += 1,
            Err(_) => report.skipped_malformed += 1,
        }
    }
    let mut groups = BTreeMap::new();
    let mut offsets = OffsetStore::default();
    let mut consumer_durable = BTreeMap::new();
    for (key, value) in latest {
        match (key, value) {
            (RecordKey::GroupMetadata { group }, Some(RecordValue::GroupMetadata(value))) => {
                groups.insert(group.clone(), ClassicGroup::from_persisted(group, value));
            }
            (
                RecordKey::OffsetCommit {
                    group,
                    topic,
                    partition,
                },
                Some(RecordValue::OffsetCommit(value)),
            ) => {
                offsets.put(&group, &topic, partition, value);
            }
            (RecordKey::Consumer(key), Some(RecordValue::Consumer(value))) => {
                consumer_durable.insert(key, value);
            }
            // Tombstones: the key is gone. Mismatched pairs cannot come out of decode.
            _ => {}
        }
    }
    let consumer_groups: BTreeSet<&str> = consumer_durable.keys().map(ConsumerKey::group).collect();
    // A consumer group replaced a classic group of the same id only after the classic
    // group's tombstone; should both survive anyway, the consumer group wins.
    groups.retain(|id: &String, _| !consumer_groups.contains(id.as_str()));
    for group in offsets.groups() {
        if !groups.contains_key(group) && !consumer_groups.contains(group) {
            groups.insert(
                group.to_string(),
                ClassicGroup::new(group.to_string(), now_ms),
            );
        }
    }
    report.groups = groups.len() + consumer_groups.len();
    report.offsets = offsets.len();
    Loaded {
        groups,
        offsets,
        consumer_durable,
        report,
    }
}
