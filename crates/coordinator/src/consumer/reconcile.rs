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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn tp(list: &[(u128, &[i32])]) -> TopicPartitions {
        list.iter()
            .filter(|(_, ps)| !ps.is_empty())
            .map(|(topic, ps)| (t(*topic), ps.iter().copied().collect()))
            .collect()
    }

    fn member(
        state: MemberState,
        epoch: i32,
        assigned: &[(u128, &[i32])],
        revoking: &[(u128, &[i32])],
    ) -> ConsumerMember {
        let mut m = ConsumerMember::new("m".into());
        m.state = state;
        m.member_epoch = epoch;
        m.previous_member_epoch = epoch - 1;
        m.assigned = tp(assigned);
        m.pending_revocation = tp(revoking);
        m
    }

    struct Case {
        name: &'static str,
        member: ConsumerMember,
        target_epoch: i32,
        target: TopicPartitions,
        owned: Option<TopicPartitions>,
        /// Partitions another member still owns.
        taken: &'static [(u128, i32)],
        state: MemberState,
        epoch: i32,
        assigned: TopicPartitions,
        revoking: TopicPartitions,
    }

    #[test]
    fn transitions_follow_kafkas_state_machine() {
        use MemberState::*;
        let cases = [
            Case {
                name: "stable, new epoch, only additions: straight to the target",
                member: member(Stable, 1, &[(1, &[0])], &[]),
                target_epoch: 2,
                target: tp(&[(1, &[0, 1])]),
                owned: Some(tp(&[(1, &[0])])),
                taken: &[],
                state: Stable,
                epoch: 2,
                assigned: tp(&[(1, &[0, 1])]),
                revoking: tp(&[]),
            },
            Case {
                name: "stable, new epoch, losing partitions it still owns: revoke first",
                member: member(Stable, 1, &[(1, &[0, 1])], &[]),
                target_epoch: 2,
                target: tp(&[(1, &[0])]),
                owned: Some(tp(&[(1, &[0, 1])])),
                taken: &[],
                state: UnrevokedPartitions,
                epoch: 1,
                assigned: tp(&[(1, &[0])]),
                revoking: tp(&[(1, &[1])]),
            },
            Case {
                name: "stable, losing partitions it already dropped: no need to wait",
                member: member(Stable, 1, &[(1, &[0, 1])], &[]),
                target_epoch: 2,
                target: tp(&[(1, &[0])]),
                owned: Some(tp(&[(1, &[0])])),
                taken: &[],
                state: Stable,
                epoch: 2,
                assigned: tp(&[(1, &[0])]),
                revoking: tp(&[]),
            },
            Case {
                name: "unrevoked, still owning what it must give up: stays",
                member: member(UnrevokedPartitions, 1, &[(1, &[0])], &[(1, &[1])]),
                target_epoch: 2,
                target: tp(&[(1, &[0])]),
                owned: Some(tp(&[(1, &[0, 1])])),
                taken: &[(1, 1)],
                state: UnrevokedPartitions,
                epoch: 1,
                assigned: tp(&[(1, &[0])]),
                revoking: tp(&[(1, &[1])]),
            },
            Case {
                name: "unrevoked, heartbeat without owned partitions: stays",
                member: member(UnrevokedPartitions, 1, &[(1, &[0])], &[(1, &[1])]),
                target_epoch: 2,
                target: tp(&[(1, &[0])]),
                owned: None,
                taken: &[(1, 1)],
                state: UnrevokedPartitions,
                epoch: 1,
                assigned: tp(&[(1, &[0])]),
                revoking: tp(&[(1, &[1])]),
            },
            Case {
                name: "unrevoked, revoked: moves to the target epoch",
                member: member(UnrevokedPartitions, 1, &[(1, &[0])], &[(1, &[1])]),
                target_epoch: 2,
                target: tp(&[(1, &[0])]),
                owned: Some(tp(&[(1, &[0])])),
                taken: &[(1, 1)],
                state: Stable,
                epoch: 2,
                assigned: tp(&[(1, &[0])]),
                revoking: tp(&[]),
            },
            Case {
                name: "new partitions still owned by another member: unreleased",
                member: member(Stable, 1, &[(1, &[0])], &[]),
                target_epoch: 2,
                target: tp(&[(1, &[0, 1, 2])]),
                owned: Some(tp(&[(1, &[0])])),
                taken: &[(1, 2)],
                state: UnreleasedPartitions,
                epoch: 2,
                assigned: tp(&[(1, &[0, 1])]),
                revoking: tp(&[]),
            },
            Case {
                name: "unreleased, once released: stable",
                member: member(UnreleasedPartitions, 2, &[(1, &[0, 1])], &[]),
                target_epoch: 2,
                target: tp(&[(1, &[0, 1, 2])]),
                owned: Some(tp(&[(1, &[0, 1])])),
                taken: &[],
                state: Stable,
                epoch: 2,
                assigned: tp(&[(1, &[0, 1, 2])]),
                revoking: tp(&[]),
            },
            Case {
                name: "partitions of a topic no longer subscribed are revoked",
                member: member(Stable, 2, &[(1, &[0]), (9, &[0])], &[]),
                target_epoch: 3,
                target: tp(&[(1, &[0]), (9, &[0])]),
                owned: Some(tp(&[(1, &[0]), (9, &[0])])),
                taken: &[],
                state: UnrevokedPartitions,
                epoch: 2,
                assigned: tp(&[(1, &[0])]),
                revoking: tp(&[(9, &[0])]),
            },
        ];
        let subscribed: BTreeSet<Uuid> = [t(1)].into();
        for case in cases {
            let step = Reconciliation {
                target_epoch: case.target_epoch,
                target: &case.target,
                subscribed_topic_ids: &subscribed,
                has_subscription_changed: false,
                owned: case.owned.as_ref(),
            };
            let taken: BTreeSet<(Uuid, i32)> = case
                .taken
                .iter()
                .map(|(topic, p)| (t(*topic), *p))
                .collect();
            let next = step
                .next(&case.member, |topic, p| {
                    if taken.contains(&(topic, p)) { 7 } else { -1 }
                })
                .unwrap();
            assert_eq!(next.state, case.state, "{}", case.name);
            assert_eq!(next.member_epoch, case.epoch, "{}", case.name);
            assert_eq!(next.assigned, case.assigned, "{}", case.name);
            assert_eq!(next.pending_revocation, case.revoking, "{}", case.name);
        }
    }

    #[test]
    fn an_unknown_state_with_partitions_must_rejoin() {
        let m = member(MemberState::Unknown, 3, &[(1, &[0])], &[]);
        let subscribed: BTreeSet<Uuid> = [t(1)].into();
        let target = tp(&[(1, &[0])]);
        let owned = tp(&[(1, &[0])]);
        let step = Reconciliation {
            target_epoch: 3,
            target: &target,
            subscribed_topic_ids: &subscribed,
            has_subscription_changed: false,
            owned: Some(&owned),
        };
        assert_eq!(step.next(&m, |_, _| -1), Err(MustRejoin));
        let nothing = TopicPartitions::new();
        let step = Reconciliation {
            owned: Some(&nothing),
            ..step
        };
        assert_eq!(step.next(&m, |_, _| -1).unwrap().state, MemberState::Stable);
    }

    #[test]
    fn a_subscription_change_revokes_at_once_while_stable() {
        let m = member(MemberState::Stable, 2, &[(1, &[0]), (9, &[1])], &[]);
        let subscribed: BTreeSet<Uuid> = [t(1)].into();
        let target = tp(&[(1, &[0]), (9, &[1])]);
        let owned = tp(&[(1, &[0]), (9, &[1])]);
        let step = Reconciliation {
            target_epoch: 2,
            target: &target,
            subscribed_topic_ids: &subscribed,
            has_subscription_changed: true,
            owned: Some(&owned),
        };
        let next = step.next(&m, |_, _| -1).unwrap();
        assert_eq!(next.state, MemberState::UnrevokedPartitions);
        assert_eq!(next.assigned, tp(&[(1, &[0])]));
        assert_eq!(next.pending_revocation, tp(&[(9, &[1])]));
    }
}
