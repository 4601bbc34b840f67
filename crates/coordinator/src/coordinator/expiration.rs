//! Offset retention and dead-group cleanup (GroupCoordinatorShard.cleanupGroupMetadata),
//! every `offsets.retention.check.interval.ms`.
//!
//! An offset expires once `offsets.retention.minutes` have passed since its base time:
//! when its group became Empty (Kafka 2.1+, KIP-211), or its own commit for groups without
//! a protocol and for topics a Stable consumer group no longer subscribes to; an explicit
//! expire timestamp (OffsetCommit v2-v4 retention) overrides both. A group that is Empty
//! and has no offsets left is deleted.

use std::collections::BTreeSet;

use super::delete_groups::group_tombstone;
use super::{GroupCoordinator, Purpose};
use crate::consumer::ConsumerGroupState;
use crate::group::{GroupState, OffsetExpiry};
use crate::input::AppendFailed;
use crate::record::{CoordinatorRecord, OffsetCommitValue, RecordKey};

fn is_expired(
    value: &OffsetCommitValue,
    expiry: OffsetExpiry,
    now_ms: i64,
    retention_ms: i64,
) -> bool {
    if value.expire_timestamp_ms != -1 {
        return now_ms >= value.expire_timestamp_ms;
    }
    let base_ms = match expiry {
        OffsetExpiry::SinceEmpty(Some(became_empty_ms)) => became_empty_ms,
        OffsetExpiry::SinceEmpty(None) | OffsetExpiry::SinceCommit => value.commit_timestamp_ms,
    };
    now_ms.saturating_sub(base_ms) >= retention_ms
}

/// Queues the tombstone of one expired offset, unless an earlier cleanup's tombstone for
/// it is still being written.
fn expire_offset(
    expiring: &BTreeSet<(String, String, i32)>,
    (group_id, topic, partition): (&String, &str, i32),
    records: &mut Vec<CoordinatorRecord>,
    expired: &mut Vec<(String, String, i32)>,
) {
    let key = (group_id.clone(), topic.to_string(), partition);
    if expiring.contains(&key) {
        return;
    }
    records.push(CoordinatorRecord {
        key: RecordKey::OffsetCommit {
            group: group_id.clone(),
            topic: topic.to_string(),
            partition,
        },
        value: None,
    });
    expired.push(key);
}

impl GroupCoordinator {
    pub(super) fn cleanup(&mut self) {
        let now_ms = self.rt.now_ms;
        let retention_ms = self.rt.limits.offsets_retention_ms;
        let mut records = Vec::new();
        let mut expired = Vec::new();
        let mut deleted = Vec::new();
        for (group_id, group) in &mut self.groups {
            if group.is_being_deleted() {
                continue;
            }
            // Commits in flight are fresh: they do not expire, and their group stays.
            let mut all_expired = self.rt.pending_offset_keys(group_id).is_empty();
            let expiry = group.offset_expiry();
            for (topic, partition, value) in self.offsets.of_group(group_id) {
                let expires = match expiry {
                    Some(expiry) => {
                        !group.is_subscribed_to_topic(topic)
                            && is_expired(value, expiry, now_ms, retention_ms)
                    }
                    None => false,
                };
                if !expires {
                    all_expired = false;
                    continue;
                }
                expire_offset(
                    &self.rt.expiring,
                    (group_id, topic, partition),
                    &mut records,
                    &mut expired,
                );
            }
            if all_expired && group.is(GroupState::Empty) {
                records.push(group_tombstone(group_id));
                group.begin_deletion(now_ms);
                deleted.push(group_id.clone());
            }
        }
        // Consumer groups: offsets age from their commit (Kafka's ConsumerGroup
        // offsetExpirationCondition), except those of topics the group still reads; an
        // empty group without offsets goes.
        let mut consumer_deleted = Vec::new();
        for (group_id, group) in &self.consumer_groups {
            let mut all_expired = self.rt.pending_offset_keys(group_id).is_empty();
            let subscribed = group.subscribed_topics();
            for (topic, partition, value) in self.offsets.of_group(group_id) {
                let expires = !subscribed.contains(topic)
                    && is_expired(value, OffsetExpiry::SinceCommit, now_ms, retention_ms);
                if !expires {
                    all_expired = false;
                    continue;
                }
                expire_offset(
                    &self.rt.expiring,
                    (group_id, topic, partition),
                    &mut records,
                    &mut expired,
                );
            }
            if all_expired && group.state() == ConsumerGroupState::Empty {
                consumer_deleted.push(group_id.clone());
            }
        }
        for group_id in &consumer_deleted {
            self.begin_consumer_deletion(group_id, &mut records);
        }
        self.rt.schedule_cleanup();
        if records.is_empty() {
            return;
        }
        self.rt.expiring.extend(expired.iter().cloned());
        self.rt.append(
            records,
            Purpose::Cleanup {
                deleted,
                consumer_deleted,
                expired,
            },
        );
    }

    pub(super) fn finish_cleanup(
        &mut self,
        deleted: Vec<String>,
        expired: Vec<(String, String, i32)>,
        result: Result<(), AppendFailed>,
    ) {
        for key in &expired {
            self.rt.expiring.remove(key);
        }
        if result.is_err() {
            // The next cleanup tries again.
            for group_id in &deleted {
                if let Some(group) = self.groups.get_mut(group_id) {
                    group.abort_deletion();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed_at(commit_timestamp_ms: i64) -> OffsetCommitValue {
        OffsetCommitValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms,
            expire_timestamp_ms: -1,
        }
    }

    #[test]
    fn retention_counts_from_when_the_group_became_empty() {
        let value = committed_at(0);
        let expiry = OffsetExpiry::SinceEmpty(Some(500));
        assert!(!is_expired(&value, expiry, 1_499, 1_000));
        assert!(is_expired(&value, expiry, 1_500, 1_000));
    }

    #[test]
    fn without_a_state_timestamp_retention_counts_from_the_commit() {
        assert!(is_expired(
            &committed_at(100),
            OffsetExpiry::SinceEmpty(None),
            1_100,
            1_000
        ));
        assert!(!is_expired(
            &committed_at(100),
            OffsetExpiry::SinceCommit,
            1_099,
            1_000
        ));
    }

    #[test]
    fn an_explicit_expire_timestamp_wins() {
        let value = OffsetCommitValue {
            expire_timestamp_ms: 50,
            ..committed_at(0)
        };
        assert!(is_expired(&value, OffsetExpiry::SinceCommit, 50, i64::MAX));
        assert!(!is_expired(&value, OffsetExpiry::SinceCommit, 49, 0));
    }
}
