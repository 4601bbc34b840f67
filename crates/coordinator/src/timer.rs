//! Deadlines, keyed like Kafka's coordinator timer: scheduling a key again replaces its
//! deadline, so each member has one heartbeat deadline and each group one join and one
//! sync deadline. Time is whatever the broker passes as `now_ms`.

use std::collections::{BTreeMap, BTreeSet};

/// What a deadline is for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKey {
    /// A member's (or a pending member's) session: it expires unless a heartbeat, join or
    /// sync pushes it out.
    Heartbeat { group: String, member: String },
    /// The end of a group's join phase.
    Join { group: String },
    /// The deadline for members to send SyncGroup after the join phase.
    Sync { group: String },
    /// The periodic offset-expiry and dead-group cleanup.
    Cleanup,
    /// A consumer group member's session (`group.consumer.session.timeout.ms`).
    ConsumerSession { group: String, member: String },
    /// How long a consumer group member may take to revoke partitions.
    ConsumerRebalance { group: String, member: String },
}

/// What to do when a deadline passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerAction {
    ExpireHeartbeat,
    CompleteJoin,
    /// The initial rebalance delay ran out; `remaining_ms` more may be granted if members
    /// keep arriving.
    InitialRebalance {
        delay_ms: i64,
        remaining_ms: i64,
    },
    ExpireSync {
        generation: i32,
    },
    Cleanup,
    ExpireConsumerSession,
    /// Fence the member if it is still at this epoch.
    ExpireConsumerRebalance {
        epoch: i32,
    },
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    by_key: BTreeMap<TimerKey, (i64, TimerAction)>,
    by_deadline: BTreeSet<(i64, TimerKey)>,
}

impl Timers {
    pub(crate) fn schedule(&mut self, key: TimerKey, deadline_ms: i64, action: TimerAction) {
        self.cancel(&key);
        self.by_deadline.insert((deadline_ms, key.clone()));
        self.by_key.insert(key, (deadline_ms, action));
    }

    pub(crate) fn cancel(&mut self, key: &TimerKey) {
        if let Some((deadline_ms, _)) = self.by_key.remove(key) {
            self.by_deadline.remove(&(deadline_ms, key.clone()));
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<i64> {
        self.by_deadline
            .first()
            .map(|(deadline_ms, _)| *deadline_ms)
    }

    /// Removes and returns the earliest timer due at `now_ms` (ties by key, so firing order
    /// is deterministic).
    pub(crate) fn pop_due(&mut self, now_ms: i64) -> Option<(TimerKey, TimerAction)> {
        let (deadline_ms, _) = self.by_deadline.first()?;
        if *deadline_ms > now_ms {
            return None;
        }
        let (_, key) = self.by_deadline.pop_first()?;
        let (_, action) = self.by_key.remove(&key)?;
        Some((key, action))
    }

    pub(crate) fn clear(&mut self) {
        self.by_key.clear();
        self.by_deadline.clear();
    }

    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn deadline_of(&self, key: &TimerKey) -> Option<i64> {
        self.by_key.get(key).map(|(deadline_ms, _)| *deadline_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescheduling_replaces_the_deadline() {
        let mut timers = Timers::default();
        timers.schedule(TimerKey::Cleanup, 10, TimerAction::Cleanup);
        timers.schedule(TimerKey::Cleanup, 20, TimerAction::Cleanup);
        assert_eq!(timers.next_deadline(), Some(20));
        assert_eq!(timers.pop_due(19), None);
        assert_eq!(
            timers.pop_due(20),
            Some((TimerKey::Cleanup, TimerAction::Cleanup))
        );
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn due_timers_come_out_in_deadline_order() {
        let mut timers = Timers::default();
        let join = TimerKey::Join { group: "g".into() };
        timers.schedule(TimerKey::Cleanup, 5, TimerAction::Cleanup);
        timers.schedule(join.clone(), 3, TimerAction::CompleteJoin);
        assert_eq!(timers.pop_due(10).map(|(k, _)| k), Some(join.clone()));
        timers.cancel(&TimerKey::Cleanup);
        assert_eq!(timers.pop_due(10), None);
    }
}
