//! A classic group: its state, generation, protocol, leader and members, with Kafka's
//! transition rules (`ClassicGroup.java`, `ClassicGroupState.java`).
//!
//! ```text
//!            join (new member)          all known members rejoined, or the rebalance timeout
//!   Empty ─────────────────────▶ PreparingRebalance ───────────────▶ CompletingRebalance
//!     ▲                            ▲   │ nobody left                     │ leader's SyncGroup
//!     └────────────────────────────┼───┘                                 ▼ durable
//!                                  └──────── join / leave / expiry ─── Stable
//!   any state ──▶ Dead (being deleted: tombstones in flight)
//! ```

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::input::RequestId;
use crate::record::{GroupMetadataValue, MemberMetadata};
use crate::subscription::{CONSUMER_PROTOCOL_TYPE, subscribed_topics};

/// The state of a classic group, with Kafka's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupState {
    /// No members; the group lingers while it has committed offsets.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Members have their assignment.
    Stable,
    /// Being deleted.
    Dead,
}

impl GroupState {
    /// The name Kafka uses in DescribeGroups and ListGroups.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }

    /// The states a group may move to this one from (`ClassicGroupState.validPreviousStates`).
    fn valid_previous_states(self) -> &'static [GroupState] {
        use GroupState::*;
        match self {
            Empty => &[PreparingRebalance],
            PreparingRebalance => &[Stable, CompletingRebalance, Empty],
            CompletingRebalance => &[PreparingRebalance],
            Stable => &[CompletingRebalance],
            Dead => &[Stable, PreparingRebalance, CompletingRebalance, Empty, Dead],
        }
    }
}

/// A request parked until the group can answer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Parked {
    pub(crate) id: RequestId,
    pub(crate) api_version: i16,
}

/// One protocol a member supports, in the member's order of preference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Protocol {
    pub(crate) name: String,
    pub(crate) metadata: Bytes,
}

/// A member of a classic group (`ClassicGroupMember.java`).
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) session_timeout_ms: i32,
    pub(crate) protocol_type: String,
    pub(crate) protocols: Vec<Protocol>,
    pub(crate) assignment: Bytes,
    /// Its JoinGroup, while the join phase runs.
    pub(crate) awaiting_join: Option<Parked>,
    /// Its SyncGroup, until the leader's assignment is durable.
    pub(crate) awaiting_sync: Option<Parked>,
    /// Joined in the current join phase: may be expired even while its JoinGroup waits.
    pub(crate) is_new: bool,
}

impl Member {
    /// The metadata this member gave for `protocol`.
    pub(crate) fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| &p.metadata)
    }

    /// A parked JoinGroup or SyncGroup stands in for heartbeats, except for new members.
    pub(crate) fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.awaiting_join.is_some() || self.awaiting_sync.is_some())
    }

    /// Same protocols, same metadata, same order.
    pub(crate) fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    /// The member's most preferred protocol among `candidates`.
    fn vote<'a>(&'a self, candidates: &BTreeSet<&str>) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|name| candidates.contains(name))
    }
}

/// How a group's offsets age (`ClassicGroup.offsetExpirationCondition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OffsetExpiry {
    /// Retention counts from this instant (the group became Empty; Kafka 2.1+, KIP-211),
    /// or from each commit when the group's state timestamp is unknown.
    SinceEmpty(Option<i64>),
    /// Retention counts from each commit (simple groups; consumer groups' offsets of topics
    /// they are no longer subscribed to).
    SinceCommit,
}

/// A group that is being deleted keeps what it needs to come back if the deletion's
/// tombstones are not written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deletion {
    previous_state_timestamp_ms: Option<i64>,
}

/// A classic group.
#[derive(Clone, Debug)]
pub(crate) struct ClassicGroup {
    pub(crate) group_id: String,
    state: GroupState,
    previous_state: GroupState,
    state_timestamp_ms: Option<i64>,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    generation_id: i32,
    leader_id: Option<String>,
    /// In join order: the first member to join leads, and a new leader is the earliest
    /// remaining member.
    members: Vec<Member>,
    /// group.instance.id → member id of static members.
    static_members: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet used to join (KIP-394).
    pending_join_members: BTreeSet<String>,
    /// Members that have not sent SyncGroup since the join phase completed.
    pending_sync_members: BTreeSet<String>,
    /// Protocol name → how many members support it.
    supported_protocols: BTreeMap<String, usize>,
    subscribed_topics: Option<BTreeSet<String>>,
    /// A member joined during the initial rebalance delay: extend the delay.
    pub(crate) new_member_added: bool,
    /// The group as last made durable in `__consumer_offsets`, `None` if never written.
    pub(crate) persisted: Option<GroupMetadataValue>,
    deletion: Option<Deletion>,
}

impl ClassicGroup {
    /// A new, empty group with no protocol type yet.
    pub(crate) fn new(group_id: String, now_ms: i64) -> Self {
        Self {
            group_id,
            state: GroupState::Empty,
            previous_state: GroupState::Dead,
            state_timestamp_ms: Some(now_ms),
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: Vec::new(),
            static_members: BTreeMap::new(),
            pending_join_members: BTreeSet::new(),
            pending_sync_members: BTreeSet::new(),
            supported_protocols: BTreeMap::new(),
            subscribed_topics: None,
            new_member_added: false,
            persisted: None,
            deletion: None,
        }
    }

    /// Rebuilds a group from its persisted metadata, as Kafka's replay does: Stable if it
    /// has members, Empty otherwise; each member supports just the selected protocol.
    pub(crate) fn from_persisted(group_id: String, value: GroupMetadataValue) -> Self {
        let protocol_type = Some(value.protocol_type.clone()).filter(|t| !t.is_empty());
        let mut group = Self {
            state: if value.members.is_empty() {
                GroupState::Empty
            } else {
                GroupState::Stable
            },
            state_timestamp_ms: Some(value.current_state_timestamp_ms).filter(|&t| t != -1),
            protocol_type,
            protocol_name: value.protocol.clone(),
            generation_id: value.generation,
            // Only a member leads; the loader checked that a group with members names one.
            leader_id: value.leader.clone().filter(|_| !value.members.is_empty()),
            ..Self::new(group_id, 0)
        };
        for m in &value.members {
            group.add(Member {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: if m.rebalance_timeout_ms == -1 {
                    m.session_timeout_ms
                } else {
                    m.rebalance_timeout_ms
                },
                session_timeout_ms: m.session_timeout_ms,
                protocol_type: value.protocol_type.clone(),
                protocols: vec![Protocol {
                    name: value.protocol.clone().unwrap_or_default(),
                    metadata: m.subscription.clone(),
                }],
                assignment: m.assignment.clone(),
                awaiting_join: None,
                awaiting_sync: None,
                is_new: false,
            });
        }
        group.subscribed_topics = group.compute_subscribed_topics();
        group.persisted = Some(value);
        group
    }

    pub(crate) fn state(&self) -> GroupState {
        self.state
    }

    pub(crate) fn previous_state(&self) -> GroupState {
        self.previous_state
    }

    pub(crate) fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    pub(crate) fn generation_id(&self) -> i32 {
        self.generation_id
    }

    pub(crate) fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub(crate) fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    pub(crate) fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    pub(crate) fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    pub(crate) fn members(&self) -> &[Member] {
        &self.members
    }

    pub(crate) fn members_mut(&mut self) -> &mut [Member] {
        &mut self.members
    }

    pub(crate) fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == member_id)
    }

    pub(crate) fn member_mut(&mut self, member_id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.member_id == member_id)
    }

    pub(crate) fn has_member(&self, member_id: &str) -> bool {
        self.member(member_id).is_some()
    }

    pub(crate) fn static_member_id(&self, group_instance_id: &str) -> Option<&str> {
        self.static_members
            .get(group_instance_id)
            .map(String::as_str)
    }

    pub(crate) fn uses_consumer_protocol(&self) -> bool {
        self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE)
    }

    /// The longest rebalance timeout among the members.
    pub(crate) fn rebalance_timeout_ms(&self) -> i32 {
        self.members
            .iter()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
            .max(0)
    }

    pub(crate) fn transition_to(&mut self, target: GroupState, now_ms: i64) {
        debug_assert!(
            target.valid_previous_states().contains(&self.state),
            "group {} cannot move from {:?} to {target:?}",
            self.group_id,
            self.state
        );
        self.previous_state = self.state;
        self.state = target;
        self.state_timestamp_ms = Some(now_ms);
    }

    /// True when a rebalance may start from the current state.
    pub(crate) fn can_rebalance(&self) -> bool {
        GroupState::PreparingRebalance
            .valid_previous_states()
            .contains(&self.state)
    }

    // --- membership --------------------------------------------------------------------

    pub(crate) fn is_pending_member(&self, member_id: &str) -> bool {
        self.pending_join_members.contains(member_id)
    }

    pub(crate) fn add_pending_member(&mut self, member_id: String) {
        debug_assert!(!self.has_member(&member_id));
        self.pending_join_members.insert(member_id);
    }

    pub(crate) fn remove_pending_member(&mut self, member_id: &str) -> bool {
        self.pending_join_members.remove(member_id)
    }

    /// Adds a member; the first member sets the protocol type and, with no leader yet,
    /// becomes the leader.
    pub(crate) fn add(&mut self, member: Member) {
        if let Some(instance_id) = &member.group_instance_id {
            debug_assert!(!self.static_members.contains_key(instance_id));
            self.static_members
                .insert(instance_id.clone(), member.member_id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        debug_assert_eq!(
            self.protocol_type.as_deref(),
            Some(member.protocol_type.as_str())
        );
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        self.count_protocols(&member.protocols, true);
        self.pending_join_members.remove(&member.member_id);
        self.members.push(member);
    }

    /// Removes a member and returns it so its parked requests can be answered. A departing
    /// leader hands over to the earliest remaining member.
    pub(crate) fn remove(&mut self, member_id: &str) -> Option<Member> {
        let removed = self
            .members
            .iter()
            .position(|m| m.member_id == member_id)
            .map(|index| self.members.remove(index));
        if let Some(member) = &removed {
            self.count_protocols(&member.protocols, false);
            if let Some(instance_id) = &member.group_instance_id {
                self.static_members.remove(instance_id);
            }
        }
        if self.is_leader(member_id) {
            self.leader_id = self.members.first().map(|m| m.member_id.clone());
        }
        self.pending_join_members.remove(member_id);
        self.pending_sync_members.remove(member_id);
        removed
    }

    /// Replaces a member's protocols and timeouts and parks (or clears) its JoinGroup.
    /// Returns the JoinGroup it replaces, which the caller must still answer.
    pub(crate) fn update_member(
        &mut self,
        member_id: &str,
        protocols: Vec<Protocol>,
        rebalance_timeout_ms: i32,
        session_timeout_ms: i32,
        awaiting_join: Option<Parked>,
    ) -> Option<Parked> {
        let old_protocols = match self.member(member_id) {
            Some(member) => member.protocols.clone(),
            None => return None,
        };
        self.count_protocols(&old_protocols, false);
        self.count_protocols(&protocols, true);
        let member = self.member_mut(member_id)?;
        member.protocols = protocols;
        member.rebalance_timeout_ms = rebalance_timeout_ms;
        member.session_timeout_ms = session_timeout_ms;
        std::mem::replace(&mut member.awaiting_join, awaiting_join)
    }

    /// KIP-345: a static member rejoined with a new member id. The member keeps its place,
    /// settings and assignment under the new id; the old member is returned so its parked
    /// requests can be fenced.
    pub(crate) fn replace_static_member(
        &mut self,
        group_instance_id: &str,
        old_member_id: &str,
        new_member_id: String,
    ) -> Option<Member> {
        let index = self
            .members
            .iter()
            .position(|m| m.member_id == old_member_id)?;
        let slot = self.members.get_mut(index)?;
        let replacement = Member {
            member_id: new_member_id.clone(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            ..slot.clone()
        };
        let old = std::mem::replace(slot, replacement);
        if self.is_leader(old_member_id) {
            self.leader_id = Some(new_member_id.clone());
        }
        self.static_members
            .insert(group_instance_id.to_string(), new_member_id);
        self.pending_sync_members.remove(old_member_id);
        Some(old)
    }

    fn count_protocols(&mut self, protocols: &[Protocol], add: bool) {
        for protocol in protocols {
            let count = self
                .supported_protocols
                .entry(protocol.name.clone())
                .or_insert(0);
            if add {
                *count += 1;
            } else {
                *count = count.saturating_sub(1);
            }
        }
        self.supported_protocols.retain(|_, count| *count > 0);
    }

    /// Could a member with these protocols join? An empty group takes any non-empty
    /// protocol type and list; otherwise the type must match and one protocol must be
    /// supported by every member.
    pub(crate) fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.is(GroupState::Empty) {
            !protocol_type.is_empty() && !protocols.is_empty()
        } else {
            self.protocol_type.as_deref() == Some(protocol_type)
                && protocols
                    .iter()
                    .any(|p| self.supported_protocols.get(&p.name) == Some(&self.members.len()))
        }
    }

    /// Kafka's protocol election: among the protocols every member supports, each member
    /// votes for its most preferred, and the most votes win. Ties, which Kafka leaves to
    /// hash-map order, go to the protocol the earliest member prefers.
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let candidates: BTreeSet<&str> = self
            .supported_protocols
            .iter()
            .filter(|(_, count)| **count == self.members.len())
            .map(|(name, _)| name.as_str())
            .collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in &self.members {
            if let Some(choice) = member.vote(&candidates) {
                *votes.entry(choice).or_insert(0) += 1;
            }
        }
        let most = votes.values().copied().max()?;
        let first_member = self.members.first()?;
        first_member
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|name| votes.get(name) == Some(&most))
            .or_else(|| {
                votes
                    .iter()
                    .find(|(_, n)| **n == most)
                    .map(|(name, _)| *name)
            })
            .map(str::to_string)
    }

    // --- join and sync phases ----------------------------------------------------------

    pub(crate) fn awaiting_join_count(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.awaiting_join.is_some())
            .count()
    }

    /// Every member has rejoined and no member id handed out is still unused.
    pub(crate) fn has_all_members_joined(&self) -> bool {
        self.awaiting_join_count() == self.members.len() && self.pending_join_members.is_empty()
    }

    /// Members that have not rejoined in this join phase.
    pub(crate) fn not_yet_rejoined(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.member_id.clone())
            .collect()
    }

    /// Keeps the leader if it rejoined, else promotes the first member that did. False if
    /// there is no leader or nobody rejoined.
    pub(crate) fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.as_deref().and_then(|id| self.member(id)) else {
            return false;
        };
        if leader.awaiting_join.is_some() {
            return true;
        }
        match self.members.iter().find(|m| m.awaiting_join.is_some()) {
            Some(member) => {
                self.leader_id = Some(member.member_id.clone());
                true
            }
            None => false,
        }
    }

    /// Starts the next generation: CompletingRebalance with a newly elected protocol, or
    /// Empty if nobody is left.
    pub(crate) fn init_next_generation(&mut self, now_ms: i64) {
        self.generation_id = self.generation_id.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::Empty, now_ms);
        } else {
            self.protocol_name = self.select_protocol();
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::CompletingRebalance, now_ms);
        }
        self.pending_sync_members.clear();
    }

    pub(crate) fn add_pending_sync_member(&mut self, member_id: String) {
        self.pending_sync_members.insert(member_id);
    }

    pub(crate) fn remove_pending_sync_member(&mut self, member_id: &str) {
        self.pending_sync_members.remove(member_id);
    }

    pub(crate) fn has_received_sync_from_all(&self) -> bool {
        self.pending_sync_members.is_empty()
    }

    pub(crate) fn pending_sync_members(&self) -> Vec<String> {
        self.pending_sync_members.iter().cloned().collect()
    }

    pub(crate) fn clear_pending_sync_members(&mut self) {
        self.pending_sync_members.clear();
    }

    // --- subscriptions and offsets -------------------------------------------------------

    /// The topics the members subscribe to, for "consumer" groups whose subscriptions all
    /// parse; `None` when unknown.
    fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if !self.uses_consumer_protocol() {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in &self.members {
            topics.extend(subscribed_topics(member.metadata(protocol)?)?);
        }
        Some(topics)
    }

    /// Whether offsets of `topic` are in use. When the subscriptions are unknown, a
    /// "consumer" group counts as subscribed, anything else as not.
    pub(crate) fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        match &self.subscribed_topics {
            Some(topics) => topics.contains(topic),
            None => self.uses_consumer_protocol(),
        }
    }

    /// How this group's offsets expire, or `None` while they must not.
    pub(crate) fn offset_expiry(&self) -> Option<OffsetExpiry> {
        if self.protocol_type.is_none() {
            return Some(OffsetExpiry::SinceCommit);
        }
        if self.is(GroupState::Empty) {
            return Some(OffsetExpiry::SinceEmpty(self.state_timestamp_ms));
        }
        if self.uses_consumer_protocol()
            && self.subscribed_topics.is_some()
            && self.is(GroupState::Stable)
        {
            return Some(OffsetExpiry::SinceCommit);
        }
        None
    }

    // --- persistence ---------------------------------------------------------------------

    /// The group as Kafka persists it, with `assignments` (member id → assignment)
    /// standing in for the members' current ones.
    pub(crate) fn to_metadata_value(
        &self,
        assignments: Option<&BTreeMap<String, Bytes>>,
    ) -> GroupMetadataValue {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp_ms: self.state_timestamp_ms.unwrap_or(-1),
            members: self
                .members
                .iter()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(protocol).cloned().unwrap_or_default(),
                    assignment: match assignments {
                        Some(map) => map.get(&m.member_id).cloned().unwrap_or_default(),
                        None => m.assignment.clone(),
                    },
                })
                .collect(),
        }
    }

    /// Marks the group Dead while its tombstones are written.
    pub(crate) fn begin_deletion(&mut self, now_ms: i64) {
        self.deletion = Some(Deletion {
            previous_state_timestamp_ms: self.state_timestamp_ms,
        });
        self.transition_to(GroupState::Dead, now_ms);
    }

    /// The tombstones were not written: the group is Empty again, as it was.
    pub(crate) fn abort_deletion(&mut self) {
        if let Some(deletion) = self.deletion.take() {
            self.state = GroupState::Empty;
            self.previous_state = GroupState::Dead;
            self.state_timestamp_ms = deletion.previous_state_timestamp_ms;
        }
    }

    pub(crate) fn is_being_deleted(&self) -> bool {
        self.deletion.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            member_id: id.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/h".into(),
            rebalance_timeout_ms: 1000,
            session_timeout_ms: 1000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| Protocol {
                    name: (*p).into(),
                    metadata: Bytes::new(),
                })
                .collect(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
        }
    }

    #[test]
    fn first_member_leads_and_sets_protocol_type() {
        let mut g = ClassicGroup::new("g".into(), 0);
        g.add(member("a", &["range"]));
        g.add(member("b", &["range"]));
        assert_eq!(g.leader_id(), Some("a"));
        assert_eq!(g.protocol_type(), Some("consumer"));
        g.remove("a");
        assert_eq!(g.leader_id(), Some("b"));
    }

    #[test]
    fn protocol_with_most_votes_among_common_ones_wins() {
        let mut g = ClassicGroup::new("g".into(), 0);
        g.add(member("a", &["roundrobin", "range"]));
        g.add(member("b", &["range", "roundrobin"]));
        g.add(member("c", &["range", "sticky"]));
        // roundrobin is not supported by c, so everyone votes among {range}.
        assert_eq!(g.select_protocol().as_deref(), Some("range"));
        g.remove("c");
        // a: roundrobin, b: range; the tie goes to the earliest member's preference.
        assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
    }

    #[test]
    fn non_empty_group_needs_a_protocol_everyone_supports() {
        let mut g = ClassicGroup::new("g".into(), 0);
        assert!(!g.supports_protocols("", &member("x", &["range"]).protocols));
        g.add(member("a", &["range"]));
        g.transition_to(GroupState::PreparingRebalance, 1);
        assert!(g.supports_protocols("consumer", &member("x", &["sticky", "range"]).protocols));
        assert!(!g.supports_protocols("consumer", &member("x", &["sticky"]).protocols));
        assert!(!g.supports_protocols("connect", &member("x", &["range"]).protocols));
    }

    #[test]
    fn leader_that_did_not_rejoin_is_replaced_by_one_that_did() {
        let mut g = ClassicGroup::new("g".into(), 0);
        g.add(member("a", &["range"]));
        g.add(member("b", &["range"]));
        assert!(!g.maybe_elect_new_joined_leader());
        g.member_mut("b").unwrap().awaiting_join = Some(Parked {
            id: RequestId(1),
            api_version: 9,
        });
        assert!(g.maybe_elect_new_joined_leader());
        assert_eq!(g.leader_id(), Some("b"));
    }

    #[test]
    fn empty_group_offsets_age_from_when_it_became_empty() {
        let mut g = ClassicGroup::new("g".into(), 5);
        assert_eq!(
            g.offset_expiry(),
            Some(OffsetExpiry::SinceCommit),
            "simple group"
        );
        g.add(member("a", &["range"]));
        g.transition_to(GroupState::PreparingRebalance, 6);
        g.remove("a");
        g.init_next_generation(7);
        assert_eq!(g.state(), GroupState::Empty);
        assert_eq!(g.offset_expiry(), Some(OffsetExpiry::SinceEmpty(Some(7))));
    }
}
