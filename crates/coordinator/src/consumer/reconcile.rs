//! Member reconciliation (Kafka's `CurrentAssignmentBuilder`): moves a member's current
//! assignment towards its target one step at a time, so that a partition is never owned by
//! two members at once.
//!
//! ```text
//!                       revoked what it had to (owned ∩ pending revocation = ∅)
//!   UNREVOKED_PARTITIONS ───────────────────────────────────────▶ next assignment
//!        ▲  target takes some owned partitions away                  │
//!        │                                                           ▼
//!   STABLE ◀── all target partitions free ── UNRELEASED_PARTITIONS ◀─ some target partitions
//!                                                                      still owned by others
//! ```
//!
//! A member first gives partitions up, keeping its epoch; once its heartbeat no longer
//! lists them it moves to the target epoch and gets the partitions that are free. Partitions
//! another member still holds (revoking) wait: the member stays UNRELEASED_PARTITIONS until
//! they are released.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::{ConsumerMember, MemberState};
use crate::record::consumer::TopicPartitions;

/// The member's assignment state is unknown to this coordinator (written by a newer one)
/// and it still owns partitions: it must rejoin (FENCED_MEMBER_EPOCH).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MustRejoin;

/// What the reconciliation of one member needs.
pub(crate) struct Reconciliation<'a> {
    pub(crate) target_epoch: i32,
    pub(crate) target: &'a TopicPartitions,
    /// The topics the member subscribes to (by id): partitions of other topics are revoked.
    pub(crate) subscribed_topic_ids: &'a BTreeSet<Uuid>,
    /// The member changed its subscription in this heartbeat.
    pub(crate) has_subscription_changed: bool,
    /// What the member says it owns; `None` when the heartbeat left it out.
    pub(crate) owned: Option<&'a TopicPartitions>,
}

impl Reconciliation<'_> {
    /// The member's next state. `partition_epoch(topic, partition)` is the epoch of the
    /// partition's current owner, or -1 when nobody owns it.
    pub(crate) fn next(
        &self,
        member: &ConsumerMember,
        partition_epoch: impl Fn(Uuid, i32) -> i32,
    ) -> Result<ConsumerMember, MustRejoin> {
        match member.state {
            MemberState::Stable => {
                if member.member_epoch != self.target_epoch {
                    Ok(self.compute_next(member, member.member_epoch, &partition_epoch))
                } else if self.has_subscription_changed {
                    Ok(self.drop_unsubscribed(member))
                } else {
                    Ok(member.clone())
                }
            }
            MemberState::UnrevokedPartitions => {
                if self.owns_any(&member.pending_revocation) {
                    if self.has_subscription_changed {
                        return Ok(self.drop_unsubscribed(member));
                    }
                    return Ok(member.clone());
                }
                // Entered because of a subscription change, the member must not move past
                // a target epoch that does not exist yet.
                let epoch = member.member_epoch.saturating_add(1).min(self.target_epoch);
                Ok(self.compute_next(member, epoch, &partition_epoch))
            }
            MemberState::UnreleasedPartitions => {
                Ok(self.compute_next(member, member.member_epoch, &partition_epoch))
            }
            MemberState::Unknown => {
                if self.owned.is_none_or(|owned| !owned.is_empty()) {
                    return Err(MustRejoin);
                }
                Ok(self.compute_next(member, self.target_epoch, &partition_epoch))
            }
        }
    }

    /// Whether the member's heartbeat lists any of `partitions` (an omitted list counts as
    /// still owning everything).
    fn owns_any(&self, partitions: &TopicPartitions) -> bool {
        let Some(owned) = self.owned else {
            return true;
        };
        owned.iter().any(|(topic, indexes)| {
            partitions
                .get(topic)
                .is_some_and(|pending| !pending.is_disjoint(indexes))
        })
    }

    /// Removes the partitions of topics the member no longer subscribes to, without a full
    /// reconciliation (Kafka's `updateCurrentAssignment`).
    fn drop_unsubscribed(&self, member: &ConsumerMember) -> ConsumerMember {
        let mut assigned = member.assigned.clone();
        let mut pending = member.pending_revocation.clone();
        let mut removed = false;
        for (topic, partitions) in &member.assigned {
            if !self.subscribed_topic_ids.contains(topic) {
                assigned.remove(topic);
                pending
                    .entry(*topic)
                    .or_default()
                    .extend(partitions.iter().copied());
                removed = true;
            }
        }
        if !removed {
            return member.clone();
        }
        let mut next = member.clone();
        next.assigned = assigned;
        if !pending.is_empty() && self.owns_any(&pending) {
            next.state = MemberState::UnrevokedPartitions;
            next.pending_revocation = pending;
        }
        next
    }

    fn compute_next(
        &self,
        member: &ConsumerMember,
        member_epoch: i32,
        partition_epoch: &impl Fn(Uuid, i32) -> i32,
    ) -> ConsumerMember {
        let empty = BTreeSet::new();
        let mut has_unreleased = false;
        let mut assigned = TopicPartitions::new();
        let mut revoking = TopicPartitions::new();
        let mut to_assign = TopicPartitions::new();
        let topics: BTreeSet<Uuid> = self
            .target
            .keys()
            .chain(member.assigned.keys())
            .copied()
            .collect();
        for topic in topics {
            let target = if self.subscribed_topic_ids.contains(&topic) {
                self.target.get(&topic).unwrap_or(&empty)
            } else {
                &empty
            };
            let current = member.assigned.get(&topic).unwrap_or(&empty);
            let kept: BTreeSet<i32> = current.intersection(target).copied().collect();
            let revoke: BTreeSet<i32> = current.difference(&kept).copied().collect();
            let pending_revocation = member.pending_revocation.get(&topic).unwrap_or(&empty);
            let mut add = BTreeSet::new();
            for &partition in target.difference(&kept) {
                // A partition this member is itself revoking is not waiting on anyone else.
                if partition_epoch(topic, partition) != -1
                    && !pending_revocation.contains(&partition)
                {
                    has_unreleased = true;
                } else {
                    add.insert(partition);
                }
            }
            if !kept.is_empty() {
                assigned.insert(topic, kept);
            }
            if !revoke.is_empty() {
                revoking.insert(topic, revoke);
            }
            if !add.is_empty() {
                to_assign.insert(topic, add);
            }
        }
        let mut next = member.clone();
        if !revoking.is_empty() && self.owns_any(&revoking) {
            // Give up first, at the current epoch.
            next.state = MemberState::UnrevokedPartitions;
            next.set_epoch(member_epoch);
            next.assigned = assigned;
            next.pending_revocation = revoking;
            return next;
        }
        for (topic, partitions) in to_assign {
            assigned.entry(topic).or_default().extend(partitions);
        }
        next.state = if has_unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
        next.set_epoch(self.target_epoch);
        next.assigned = assigned;
        next.pending_revocation = TopicPartitions::new();
        next
    }
}
