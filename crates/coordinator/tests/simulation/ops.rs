//! The clients of the simulation and the operations they (and the broker) perform.

use proptest::prelude::*;
use proptest::sample::Index;

/// A simulated consumer: its group and static identity are fixed.
pub(crate) struct ClientSpec {
    pub(crate) group: &'static str,
    pub(crate) instance: Option<&'static str>,
}

pub(crate) const CLIENTS: [ClientSpec; 5] = [
    ClientSpec {
        group: "g0",
        instance: None,
    },
    ClientSpec {
        group: "g0",
        instance: None,
    },
    ClientSpec {
        group: "g0",
        instance: Some("s2"),
    },
    ClientSpec {
        group: "g1",
        instance: None,
    },
    ClientSpec {
        group: "g1",
        instance: Some("s4"),
    },
];

pub(crate) const GROUPS: [&str; 2] = ["g0", "g1"];

#[derive(Clone, Debug)]
pub(crate) enum Op {
    /// The client's next step as a well-behaved consumer would take it: join (again)
    /// when it has no current generation, sync after joining, heartbeat otherwise.
    Cooperate {
        client: usize,
    },
    Join {
        client: usize,
        version_pick: usize,
        /// Forget the member id first (a restart).
        restart: bool,
        protocols: usize,
        session_ms: i32,
        rebalance_ms: i32,
    },
    Sync {
        client: usize,
        v5: bool,
    },
    Heartbeat {
        client: usize,
    },
    Leave {
        client: usize,
        how: usize,
    },
    Commit {
        client: usize,
        simple: bool,
        topic: usize,
        partition: i32,
        offset: i64,
        version_pick: usize,
        big_metadata: bool,
    },
    Fetch {
        group: usize,
        all: bool,
        require_stable: bool,
        version_pick: usize,
    },
    Describe {
        version_pick: usize,
    },
    List,
    DeleteGroups {
        which: usize,
    },
    OffsetDelete {
        group: usize,
        topic: usize,
        partition: i32,
    },
    Advance {
        ms: i64,
    },
    CompleteAppend {
        slot: Index,
        outcome: usize,
    },
    /// The oldest append in flight becomes durable.
    CompleteOldest,
    CompleteAll,
    Reload,
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    let client = 0..CLIENTS.len();
    prop_oneof![
        20 => client.clone().prop_map(|client| Op::Cooperate { client }),
        3 => (client.clone(), 0..4usize, prop::bool::weighted(0.1), 0..2usize,
              prop::sample::select(vec![6_000, 10_000]), prop::sample::select(vec![5_000, 20_000]))
            .prop_map(|(client, version_pick, restart, protocols, session_ms, rebalance_ms)| Op::Join {
                client, version_pick, restart, protocols, session_ms, rebalance_ms,
            }),
        2 => (client.clone(), any::<bool>()).prop_map(|(client, v5)| Op::Sync { client, v5 }),
        2 => client.clone().prop_map(|client| Op::Heartbeat { client }),
        1 => (client.clone(), 0..3usize).prop_map(|(client, how)| Op::Leave { client, how }),
        3 => (client.clone(), prop::bool::weighted(0.3), 0..2usize, 0..3i32, 0..1_000i64, 0..3usize,
              prop::bool::weighted(0.05))
            .prop_map(|(client, simple, topic, partition, offset, version_pick, big_metadata)| Op::Commit {
                client, simple, topic, partition, offset, version_pick, big_metadata,
            }),
        2 => (0..GROUPS.len(), any::<bool>(), any::<bool>(), 0..3usize)
            .prop_map(|(group, all, require_stable, version_pick)| Op::Fetch { group, all, require_stable, version_pick }),
        1 => (0..3usize).prop_map(|version_pick| Op::Describe { version_pick }),
        1 => Just(Op::List),
        1 => (0..3usize).prop_map(|which| Op::DeleteGroups { which }),
        1 => (0..GROUPS.len(), 0..2usize, 0..3i32)
            .prop_map(|(group, topic, partition)| Op::OffsetDelete { group, topic, partition }),
        6 => prop::sample::select(vec![0i64, 1, 100, 1_000, 2_000, 3_000, 5_000])
            .prop_map(|ms| Op::Advance { ms }),
        1 => prop::sample::select(vec![9_000i64, 15_000, 30_000, 200_000]).prop_map(|ms| Op::Advance { ms }),
        3 => (any::<Index>(), 0..10usize).prop_map(|(slot, outcome)| Op::CompleteAppend { slot, outcome }),
        6 => Just(Op::CompleteOldest),
        1 => Just(Op::CompleteAll),
        1 => Just(Op::Reload),
    ]
}
