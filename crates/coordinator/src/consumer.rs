//! KIP-848 consumer groups (`group.protocol=consumer`): the group and member model, and
//! how records change it (Kafka's `ConsumerGroup`, `ConsumerGroupMember` and the
//! `replay` methods of `GroupMetadataManager`).
//!
//! The in-memory state only ever changes by replaying records: a heartbeat computes the
//! records that describe its outcome, and the same `replay` that rebuilds a group on load
//! applies them at once. So a group in memory is, by construction, what the durable records
//! plus those still being appended would rebuild.
//!
//! ```text
//!   group epoch ──(bumped by membership, subscription or topic metadata changes)──┐
//!   assignment epoch ◀── the assignor's target for that epoch ◀────────────────────┘
//!   member epoch ──▶ reaches the assignment epoch as the member reconciles (reconcile.rs)
//! ```

pub(crate) mod assignor;
pub(crate) mod reconcile;

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use uuid::Uuid;

use crate::record::consumer::{
    CurrentAssignmentValue, MemberMetadataValue, TopicMetadataValue, TopicPartitions,
};
use crate::record::{ConsumerKey, ConsumerValue, CoordinatorRecord, RecordKey, RecordValue};
use crate::topics::TopicsImage;

/// A member leaving for good sends this epoch.
pub(crate) const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// A static member leaving for now (it will come back with its instance id) sends this.
pub(crate) const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// The state of a consumer group, with Kafka's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumerGroupState {
    /// No members.
    Empty,
    /// The group epoch is ahead of the target assignment: a new one must be computed.
    Assigning,
    /// Some members have not reached the target assignment.
    Reconciling,
    /// Every member has its target assignment.
    Stable,
}

impl ConsumerGroupState {
    /// The name Kafka shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Assigning => "Assigning",
            Self::Reconciling => "Reconciling",
            Self::Stable => "Stable",
        }
    }
}

/// Where a member is in its reconciliation (Kafka's `MemberState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MemberState {
    /// Owns its target assignment (at its epoch).
    #[default]
    Stable,
    /// Must give partitions up before it can move on.
    UnrevokedPartitions,
    /// Waits for partitions other members still own.
    UnreleasedPartitions,
    /// A state written by a newer coordinator.
    Unknown,
}

impl MemberState {
    /// The value stored in ConsumerGroupCurrentMemberAssignmentValue.
    pub fn as_i8(self) -> i8 {
        match self {
            Self::Stable => 0,
            Self::UnrevokedPartitions => 1,
            Self::UnreleasedPartitions => 2,
            Self::Unknown => 127,
        }
    }

    fn from_i8(value: i8) -> Self {
        match value {
            0 => Self::Stable,
            1 => Self::UnrevokedPartitions,
            2 => Self::UnreleasedPartitions,
            _ => Self::Unknown,
        }
    }
}

/// A consumer group member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerMember {
    /// Member id (chosen by the client since KIP-1082).
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// Client id of its last heartbeat.
    pub client_id: String,
    /// Client host of its last heartbeat.
    pub client_host: String,
    /// Subscribed topic names.
    pub subscribed_topic_names: BTreeSet<String>,
    /// Subscribed regular expression; empty means none (librdkafka sends "").
    pub subscribed_topic_regex: Option<String>,
    /// How long it may take to revoke partitions.
    pub rebalance_timeout_ms: i32,
    /// The server assignor it asked for.
    pub server_assignor: Option<String>,
    /// Its epoch.
    pub member_epoch: i32,
    /// Its epoch before the last bump.
    pub previous_member_epoch: i32,
    /// Reconciliation state.
    pub state: MemberState,
    /// Partitions it owns.
    pub assigned: TopicPartitions,
    /// Partitions it must give up.
    pub pending_revocation: TopicPartitions,
}

impl ConsumerMember {
    /// A member as first created (Kafka's defaults: epoch 0, rebalance timeout -1).
    pub(crate) fn new(member_id: String) -> Self {
        Self {
            member_id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: BTreeSet::new(),
            subscribed_topic_regex: None,
            rebalance_timeout_ms: -1,
            server_assignor: None,
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            assigned: TopicPartitions::new(),
            pending_revocation: TopicPartitions::new(),
        }
    }

    /// The regex, if one is set.
    pub(crate) fn regex(&self) -> Option<&str> {
        self.subscribed_topic_regex
            .as_deref()
            .filter(|regex| !regex.is_empty())
    }

    /// Moves to `epoch`, remembering the one before.
    pub(crate) fn set_epoch(&mut self, epoch: i32) {
        self.previous_member_epoch = self.member_epoch;
        self.member_epoch = epoch;
    }

    /// Stable at the target assignment's epoch.
    pub(crate) fn is_reconciled_to(&self, epoch: i32) -> bool {
        self.state == MemberState::Stable && self.member_epoch == epoch
    }

    pub(crate) fn metadata_value(&self) -> MemberMetadataValue {
        MemberMetadataValue {
            instance_id: self.instance_id.clone(),
            rack_id: self.rack_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            subscribed_topic_names: self.subscribed_topic_names.iter().cloned().collect(),
            subscribed_topic_regex: self.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            server_assignor: self.server_assignor.clone(),
        }
    }

    pub(crate) fn assignment_value(&self) -> CurrentAssignmentValue {
        CurrentAssignmentValue {
            member_epoch: self.member_epoch,
            previous_member_epoch: self.previous_member_epoch,
            state: self.state.as_i8(),
            assigned_partitions: self.assigned.clone(),
            partitions_pending_revocation: self.pending_revocation.clone(),
        }
    }

    /// The subscription-related fields differ.
    pub(crate) fn same_metadata(&self, other: &Self) -> bool {
        self.metadata_value() == other.metadata_value()
    }
}

/// The metadata of a subscribed topic when the group epoch was last computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribedTopic {
    /// Topic id.
    pub id: Uuid,
    /// Partition count.
    pub partitions: i32,
}

/// A consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerGroup {
    /// Group id.
    pub group_id: String,
    /// Bumped on every change that calls for a new assignment.
    pub group_epoch: i32,
    /// The epoch the target assignment was computed for.
    pub assignment_epoch: i32,
    /// Subscribed topics (by name) as of the group epoch.
    pub subscription_metadata: BTreeMap<String, SubscribedTopic>,
    /// Members by id.
    pub members: BTreeMap<String, ConsumerMember>,
    /// Target assignment by member id.
    pub target: BTreeMap<String, TopicPartitions>,
    /// Instance id → member id of static members.
    static_members: BTreeMap<String, String>,
    /// Who owns each partition (assigned or revoking), at which epoch.
    owners: BTreeMap<(Uuid, i32), (String, i32)>,
}

impl ConsumerGroup {
    pub(crate) fn new(group_id: String) -> Self {
        Self {
            group_id,
            group_epoch: 0,
            assignment_epoch: 0,
            subscription_metadata: BTreeMap::new(),
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            static_members: BTreeMap::new(),
            owners: BTreeMap::new(),
        }
    }

    /// Kafka's group state, derived from the epochs and the members.
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.assignment_epoch))
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The epoch of the member owning the partition, or -1.
    pub(crate) fn partition_epoch(&self, topic: Uuid, partition: i32) -> i32 {
        self.owners
            .get(&(topic, partition))
            .map_or(-1, |(_, epoch)| *epoch)
    }

    /// The member id behind a static instance id.
    pub(crate) fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.static_members.get(instance_id).map(String::as_str)
    }

    pub(crate) fn static_member(&self, instance_id: &str) -> Option<&ConsumerMember> {
        self.static_member_id(instance_id)
            .and_then(|id| self.members.get(id))
    }

    /// The target of a member, or of the static member it replaces.
    pub(crate) fn target_of(&self, member_id: &str, instance_id: Option<&str>) -> TopicPartitions {
        if let Some(target) = self.target.get(member_id) {
            return target.clone();
        }
        instance_id
            .and_then(|i| self.static_member_id(i))
            .and_then(|previous| self.target.get(previous))
            .cloned()
            .unwrap_or_default()
    }

    /// The server assignor most members asked for (ties to the smallest name), with
    /// `old` replaced by `new`.
    pub(crate) fn preferred_assignor(
        &self,
        old: Option<&ConsumerMember>,
        new: Option<&ConsumerMember>,
    ) -> Option<String> {
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(name) = &member.server_assignor {
                *counts.entry(name).or_default() += 1;
            }
        }
        if let Some(name) = old.and_then(|m| m.server_assignor.as_deref()) {
            *counts.entry(name).or_default() -= 1;
        }
        if let Some(name) = new.and_then(|m| m.server_assignor.as_deref()) {
            *counts.entry(name).or_default() += 1;
        }
        let most = counts.values().copied().max().filter(|&n| n > 0)?;
        counts
            .into_iter()
            .find(|(_, n)| *n == most)
            .map(|(name, _)| name.to_string())
    }

    /// The topics the members subscribe to: by name, and those their regexes matched when
    /// the group epoch was computed.
    pub(crate) fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.subscribed_topic_names.iter().cloned())
            .chain(self.subscription_metadata.keys().cloned())
            .collect()
    }

    /// The partitions each member owns or is revoking, for checks.
    pub fn owned_partitions(&self) -> impl Iterator<Item = (&str, Uuid, i32)> {
        self.members.values().flat_map(|m| {
            m.assigned
                .iter()
                .chain(m.pending_revocation.iter())
                .flat_map(move |(topic, ps)| {
                    ps.iter().map(move |p| (m.member_id.as_str(), *topic, *p))
                })
        })
    }

    fn remove_owners(&mut self, member_id: &str) {
        if let Some(member) = self.members.get(member_id) {
            for (topic, partitions) in member.assigned.iter().chain(&member.pending_revocation) {
                for p in partitions {
                    if self
                        .owners
                        .get(&(*topic, *p))
                        .is_some_and(|(owner, _)| owner == member_id)
                    {
                        self.owners.remove(&(*topic, *p));
                    }
                }
            }
        }
    }

    fn add_owners(&mut self, member_id: &str) {
        if let Some(member) = self.members.get(member_id) {
            for (topic, partitions) in member.assigned.iter().chain(&member.pending_revocation) {
                for p in partitions {
                    self.owners
                        .insert((*topic, *p), (member_id.to_string(), member.member_epoch));
                }
            }
        }
    }

    fn remove_member(&mut self, member_id: &str) {
        self.remove_owners(member_id);
        if let Some(member) = self.members.remove(member_id)
            && let Some(instance_id) = member.instance_id
            && self.static_members.get(&instance_id).map(String::as_str) == Some(member_id)
        {
            self.static_members.remove(&instance_id);
        }
    }

    fn member_entry(&mut self, member_id: &str) -> &mut ConsumerMember {
        self.members
            .entry(member_id.to_string())
            .or_insert_with(|| ConsumerMember::new(member_id.to_string()))
    }
}

/// Applies one consumer group record (Kafka's `replay`), creating the group on its first
/// value and removing it on its metadata tombstone. Records that make no sense (a tombstone
/// for something absent) change nothing: replay never fails.
pub(crate) fn replay(
    groups: &mut BTreeMap<String, ConsumerGroup>,
    key: &ConsumerKey,
    value: Option<&ConsumerValue>,
) {
    let group_id = key.group();
    if value.is_none() && !groups.contains_key(group_id) {
        return;
    }
    if matches!(key, ConsumerKey::Metadata { .. }) && value.is_none() {
        groups.remove(group_id);
        return;
    }
    let group = groups
        .entry(group_id.to_string())
        .or_insert_with(|| ConsumerGroup::new(group_id.to_string()));
    match (key, value) {
        (ConsumerKey::Metadata { .. }, Some(ConsumerValue::Metadata { epoch })) => {
            group.group_epoch = *epoch;
        }
        (ConsumerKey::PartitionMetadata { .. }, value) => {
            group.subscription_metadata = match value {
                Some(ConsumerValue::PartitionMetadata(topics)) => topics
                    .iter()
                    .map(|t| {
                        (
                            t.topic_name.clone(),
                            SubscribedTopic {
                                id: t.topic_id,
                                partitions: t.num_partitions,
                            },
                        )
                    })
                    .collect(),
                _ => BTreeMap::new(),
            };
        }
        (ConsumerKey::MemberMetadata { member, .. }, Some(ConsumerValue::MemberMetadata(v))) => {
            let m = group.member_entry(member);
            let old_instance = m.instance_id.clone();
            m.instance_id = v.instance_id.clone();
            m.rack_id = v.rack_id.clone();
            m.client_id = v.client_id.clone();
            m.client_host = v.client_host.clone();
            m.subscribed_topic_names = v.subscribed_topic_names.iter().cloned().collect();
            m.subscribed_topic_regex = v.subscribed_topic_regex.clone();
            m.rebalance_timeout_ms = v.rebalance_timeout_ms;
            m.server_assignor = v.server_assignor.clone();
            if let Some(old) = old_instance
                && group.static_members.get(&old).map(String::as_str) == Some(member.as_str())
            {
                group.static_members.remove(&old);
            }
            if let Some(instance) = &v.instance_id {
                group
                    .static_members
                    .insert(instance.clone(), member.clone());
            }
        }
        (ConsumerKey::MemberMetadata { member, .. }, None) => group.remove_member(member),
        (
            ConsumerKey::TargetAssignmentMetadata { .. },
            Some(ConsumerValue::TargetAssignmentMetadata { assignment_epoch }),
        ) => group.assignment_epoch = *assignment_epoch,
        (ConsumerKey::TargetAssignmentMetadata { .. }, None) => group.assignment_epoch = -1,
        (
            ConsumerKey::TargetAssignmentMember { member, .. },
            Some(ConsumerValue::TargetAssignmentMember(partitions)),
        ) => {
            group.target.insert(member.clone(), partitions.clone());
        }
        (ConsumerKey::TargetAssignmentMember { member, .. }, None) => {
            group.target.remove(member);
        }
        (
            ConsumerKey::CurrentMemberAssignment { member, .. },
            Some(ConsumerValue::CurrentMemberAssignment(v)),
        ) => {
            group.remove_owners(member);
            let m = group.member_entry(member);
            m.member_epoch = v.member_epoch;
            m.previous_member_epoch = v.previous_member_epoch;
            m.state = MemberState::from_i8(v.state);
            m.assigned = v.assigned_partitions.clone();
            m.pending_revocation = v.partitions_pending_revocation.clone();
            group.add_owners(member);
        }
        (ConsumerKey::CurrentMemberAssignment { member, .. }, None)
            if group.members.contains_key(member) =>
        {
            group.remove_owners(member);
            let m = group.member_entry(member);
            m.member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
            m.previous_member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
            m.assigned.clear();
            m.pending_revocation.clear();
        }
        // Values of the wrong schema cannot come out of decoding.
        _ => {}
    }
}

/// Rebuilds groups from the latest value of each key, in key order (group records before
/// member records), as a compacted log replays.
pub(crate) fn rebuild<'a>(
    latest: impl IntoIterator<Item = (&'a ConsumerKey, &'a ConsumerValue)>,
) -> BTreeMap<String, ConsumerGroup> {
    let mut groups = BTreeMap::new();
    for (key, value) in latest {
        replay(&mut groups, key, Some(value));
    }
    groups
}

// --- records ----------------------------------------------------------------------------

fn record(key: ConsumerKey, value: Option<ConsumerValue>) -> CoordinatorRecord {
    CoordinatorRecord {
        key: RecordKey::Consumer(key),
        value: value.map(RecordValue::Consumer),
    }
}

pub(crate) fn epoch_record(group: &str, epoch: i32) -> CoordinatorRecord {
    record(
        ConsumerKey::Metadata {
            group: group.into(),
        },
        Some(ConsumerValue::Metadata { epoch }),
    )
}

pub(crate) fn partition_metadata_record(
    group: &str,
    metadata: &BTreeMap<String, SubscribedTopic>,
) -> CoordinatorRecord {
    let topics = metadata
        .iter()
        .map(|(name, t)| TopicMetadataValue {
            topic_id: t.id,
            topic_name: name.clone(),
            num_partitions: t.partitions,
        })
        .collect();
    record(
        ConsumerKey::PartitionMetadata {
            group: group.into(),
        },
        Some(ConsumerValue::PartitionMetadata(topics)),
    )
}

pub(crate) fn member_metadata_record(group: &str, member: &ConsumerMember) -> CoordinatorRecord {
    record(
        ConsumerKey::MemberMetadata {
            group: group.into(),
            member: member.member_id.clone(),
        },
        Some(ConsumerValue::MemberMetadata(member.metadata_value())),
    )
}

pub(crate) fn target_member_record(
    group: &str,
    member: &str,
    partitions: &TopicPartitions,
) -> CoordinatorRecord {
    record(
        ConsumerKey::TargetAssignmentMember {
            group: group.into(),
            member: member.into(),
        },
        Some(ConsumerValue::TargetAssignmentMember(partitions.clone())),
    )
}

pub(crate) fn target_epoch_record(group: &str, assignment_epoch: i32) -> CoordinatorRecord {
    record(
        ConsumerKey::TargetAssignmentMetadata {
            group: group.into(),
        },
        Some(ConsumerValue::TargetAssignmentMetadata { assignment_epoch }),
    )
}

pub(crate) fn current_assignment_record(group: &str, member: &ConsumerMember) -> CoordinatorRecord {
    record(
        ConsumerKey::CurrentMemberAssignment {
            group: group.into(),
            member: member.member_id.clone(),
        },
        Some(ConsumerValue::CurrentMemberAssignment(
            member.assignment_value(),
        )),
    )
}

/// Tombstones removing a member, in Kafka's order (current assignment, target, then the
/// subscription).
pub(crate) fn member_tombstones(group: &str, member: &str) -> [CoordinatorRecord; 3] {
    let (group, member) = (group.to_string(), member.to_string());
    [
        record(
            ConsumerKey::CurrentMemberAssignment {
                group: group.clone(),
                member: member.clone(),
            },
            None,
        ),
        record(
            ConsumerKey::TargetAssignmentMember {
                group: group.clone(),
                member: member.clone(),
            },
            None,
        ),
        record(ConsumerKey::MemberMetadata { group, member }, None),
    ]
}

/// Tombstones deleting a whole group (Kafka's `createGroupTombstoneRecords`).
pub(crate) fn group_tombstones(group: &ConsumerGroup) -> Vec<CoordinatorRecord> {
    let id = group.group_id.as_str();
    let mut records = Vec::new();
    for member in group.members.keys() {
        records.push(record(
            ConsumerKey::CurrentMemberAssignment {
                group: id.into(),
                member: member.clone(),
            },
            None,
        ));
    }
    for member in group.target.keys() {
        records.push(record(
            ConsumerKey::TargetAssignmentMember {
                group: id.into(),
                member: member.clone(),
            },
            None,
        ));
    }
    records.push(record(
        ConsumerKey::TargetAssignmentMetadata { group: id.into() },
        None,
    ));
    for member in group.members.keys() {
        records.push(record(
            ConsumerKey::MemberMetadata {
                group: id.into(),
                member: member.clone(),
            },
            None,
        ));
    }
    records.push(record(
        ConsumerKey::PartitionMetadata { group: id.into() },
        None,
    ));
    records.push(record(ConsumerKey::Metadata { group: id.into() }, None));
    records
}

// --- subscriptions ------------------------------------------------------------------------

/// Compiled subscription regexes, kept between heartbeats.
#[derive(Debug, Default)]
pub(crate) struct RegexCache {
    compiled: BTreeMap<String, Option<Regex>>,
}

/// Past this many distinct regexes the cache starts over.
const REGEX_CACHE_MAX: usize = 1024;

impl RegexCache {
    /// Compiles `pattern` as Kafka's RE2/J does it for topic subscriptions: it must match
    /// the whole topic name. `None` when it does not compile.
    pub(crate) fn get(&mut self, pattern: &str) -> Option<&Regex> {
        if !self.compiled.contains_key(pattern) {
            if self.compiled.len() >= REGEX_CACHE_MAX {
                self.compiled.clear();
            }
            let compiled = Regex::new(&format!("^(?:{pattern})$")).ok();
            self.compiled.insert(pattern.to_string(), compiled);
        }
        self.compiled.get(pattern).and_then(Option::as_ref)
    }
}

/// Kafka's internal topics, never matched by a regex subscription.
fn is_internal(topic: &str) -> bool {
    topic == "__consumer_offsets" || topic == "__transaction_state"
}

/// The topic names a member subscribes to among `candidates`: its names plus what its
/// regex matches.
pub(crate) fn member_topics<'a>(
    member: &ConsumerMember,
    candidates: impl Iterator<Item = &'a str>,
    regexes: &mut RegexCache,
) -> BTreeSet<String> {
    let mut topics = member.subscribed_topic_names.clone();
    if let Some(regex) = member.regex().and_then(|r| regexes.get(r)) {
        topics.extend(
            candidates
                .filter(|t| !is_internal(t) && regex.is_match(t))
                .map(str::to_string),
        );
    }
    topics
}

/// The metadata of the topics the members subscribe to that exist, as a group epoch is
/// computed for (Kafka's `computeSubscriptionMetadata`).
pub(crate) fn subscription_metadata<'a>(
    members: impl Iterator<Item = &'a ConsumerMember>,
    topics: &TopicsImage,
    regexes: &mut RegexCache,
) -> BTreeMap<String, SubscribedTopic> {
    let mut out = BTreeMap::new();
    for member in members {
        let names = member_topics(member, topics.topics().map(|t| t.name.as_str()), regexes);
        for name in names {
            if let Some(topic) = topics.by_name(&name) {
                out.insert(
                    name,
                    SubscribedTopic {
                        id: topic.id,
                        partitions: topic.partitions,
                    },
                );
            }
        }
    }
    out
}

/// The ids of the topics `member` subscribes to, as far as the group's subscription
/// metadata knows them.
pub(crate) fn subscribed_topic_ids(
    member: &ConsumerMember,
    metadata: &BTreeMap<String, SubscribedTopic>,
    regexes: &mut RegexCache,
) -> BTreeSet<Uuid> {
    member_topics(member, metadata.keys().map(String::as_str), regexes)
        .iter()
        .filter_map(|name| metadata.get(name).map(|t| t.id))
        .collect()
}
