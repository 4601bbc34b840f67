//! Random histories of consumer-protocol clients (joins, heartbeats that acknowledge or
//! lag, subscription changes, leaves, static members leaving and coming back under a new
//! member id, silence past the session timeout, topics growing, failovers) against one coordinator, checking after every step that:
//!
//! - no partition is owned (assigned or being revoked) by two members;
//! - what a member's client holds is what the coordinator thinks it may hold;
//! - member epochs never go backwards;
//! - a reload from the appended records rebuilds the same groups;
//!
//! and at the end that every member converges to its target assignment once the clients
//! heartbeat with what they own.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;
use sluice_coordinator::TopicsImage;
use sluice_coordinator::consumer::{ConsumerGroup, ConsumerGroupState};
use sluice_coordinator::record::consumer::TopicPartitions;
use sluice_coordinator::testing::{
    Harness, cg_heartbeat, cg_join, response_assignment, s, test_config, topics,
};
use sluice_protocol::ResponseError;
use sluice_protocol::kafka_protocol::messages::TopicName;

const GROUP: &str = "g";
const TOPICS: [&str; 2] = ["t0", "t1"];
const CLIENTS: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    Join {
        client: usize,
        subscription: u8,
    },
    Heartbeat {
        client: usize,
        ack: bool,
        full: bool,
    },
    Subscribe {
        client: usize,
        subscription: u8,
    },
    Leave {
        client: usize,
    },
    /// A static client restarts: it leaves with epoch -2 and comes back with a new id.
    StaticLeave {
        client: usize,
    },
    Advance {
        ms: i64,
    },
    Grow {
        topic: usize,
    },
    Reload,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..CLIENTS, 1u8..4).prop_map(|(client, subscription)| Op::Join { client, subscription }),
        8 => (0..CLIENTS, any::<bool>(), any::<bool>())
            .prop_map(|(client, ack, full)| Op::Heartbeat { client, ack, full }),
        1 => (0..CLIENTS, 0u8..4).prop_map(|(client, subscription)| Op::Subscribe { client, subscription }),
        1 => (0..CLIENTS).prop_map(|client| Op::Leave { client }),
        1 => (0..CLIENTS).prop_map(|client| Op::StaticLeave { client }),
        1 => prop_oneof![Just(1_000i64), Just(20_000), Just(46_000)].prop_map(|ms| Op::Advance { ms }),
        1 => (0..TOPICS.len()).prop_map(|topic| Op::Grow { topic }),
        1 => Just(Op::Reload),
    ]
}

#[derive(Clone, Debug, Default)]
struct Client {
    member_id: String,
    /// Clients 2 and 3 are static members.
    instance_id: Option<String>,
    /// Left with -2 and not back yet.
    away: bool,
    restarts: u32,
    /// The epoch it heartbeats with; `None` while not in the group.
    epoch: Option<i32>,
    /// What it consumes now.
    owned: TopicPartitions,
    /// The assignment of the last response, not acted on yet.
    pending: Option<TopicPartitions>,
    subscription: Vec<String>,
}

fn subscription_of(mask: u8) -> Vec<String> {
    TOPICS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, t)| (*t).to_string())
        .collect()
}

struct World {
    h: Harness,
    clients: Vec<Client>,
    partitions: Vec<i32>,
    /// The highest epoch each live member has had.
    epochs: BTreeMap<String, i32>,
}

impl World {
    fn new() -> Self {
        Self {
            h: Harness::new(test_config()),
            clients: (0..CLIENTS)
                .map(|i| Client {
                    member_id: format!("member-{i}"),
                    instance_id: (i >= 2).then(|| format!("instance-{i}")),
                    ..Client::default()
                })
                .collect(),
            partitions: vec![2, 3],
            epochs: BTreeMap::new(),
        }
    }

    fn image(&self) -> Arc<TopicsImage> {
        let list: Vec<(&str, i32)> = TOPICS
            .iter()
            .copied()
            .zip(self.partitions.iter().copied())
            .collect();
        topics(&list)
    }

    fn group(&self) -> Option<ConsumerGroup> {
        self.h.coordinator.debug_consumer_groups().remove(GROUP)
    }

    /// Sends one heartbeat for `client` and plays the client's part with the answer.
    fn heartbeat(&mut self, client: usize, ack: bool, full: bool, subscribe: Option<Vec<String>>) {
        let image = self.image();
        let c = &mut self.clients[client];
        let Some(epoch) = c.epoch else {
            return;
        };
        if ack && let Some(pending) = c.pending.take() {
            c.owned = pending;
        }
        let mut request = cg_heartbeat(
            GROUP,
            &c.member_id,
            epoch,
            (ack || full).then_some(&c.owned),
        )
        .with_instance_id(c.instance_id.as_deref().map(s));
        if full {
            request = request
                .with_rebalance_timeout_ms(30_000)
                .with_subscribed_topic_names(Some(
                    c.subscription.iter().map(|t| TopicName(s(t))).collect(),
                ));
        }
        if let Some(subscription) = subscribe {
            c.subscription = subscription;
            request = request.with_subscribed_topic_names(Some(
                c.subscription.iter().map(|t| TopicName(s(t))).collect(),
            ));
        }
        let response = self.h.cg(request, &image);
        self.on_response(client, response);
    }

    fn on_response(
        &mut self,
        client: usize,
        response: sluice_protocol::kafka_protocol::messages::ConsumerGroupHeartbeatResponse,
    ) {
        let c = &mut self.clients[client];
        if response.error_code == 0 {
            c.epoch = Some(response.member_epoch);
            if let Some(assignment) = response_assignment(&response) {
                // Revocations take effect at once; new partitions on the next ack.
                c.owned.retain(|topic, ps| {
                    let keep = assignment.get(topic);
                    ps.retain(|p| keep.is_some_and(|k| k.contains(p)));
                    !ps.is_empty()
                });
                c.pending = Some(assignment);
            }
        } else {
            assert!(
                [
                    ResponseError::FencedMemberEpoch.code(),
                    ResponseError::UnknownMemberId.code(),
                ]
                .contains(&response.error_code),
                "unexpected error {} {:?}",
                response.error_code,
                response.error_message
            );
            // Fenced or forgotten: drop everything and rejoin later.
            c.epoch = None;
            c.owned.clear();
            c.pending = None;
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Join {
                client,
                subscription,
            } => {
                if self.clients[*client].epoch.is_some() {
                    return;
                }
                let image = self.image();
                let c = &mut self.clients[*client];
                c.subscription = subscription_of(*subscription);
                let names: Vec<&str> = c.subscription.iter().map(String::as_str).collect();
                c.away = false;
                let request = cg_join(GROUP, &c.member_id, &names)
                    .with_instance_id(c.instance_id.as_deref().map(s));
                let response = self.h.cg(request, &image);
                self.on_response(*client, response);
            }
            Op::Heartbeat { client, ack, full } => self.heartbeat(*client, *ack, *full, None),
            Op::Subscribe {
                client,
                subscription,
            } => self.heartbeat(*client, true, false, Some(subscription_of(*subscription))),
            Op::Leave { client } => {
                let image = self.image();
                let c = &mut self.clients[*client];
                if c.epoch.take().is_none() {
                    return;
                }
                c.owned.clear();
                c.pending = None;
                c.away = false;
                let request = cg_heartbeat(GROUP, &c.member_id, -1, None)
                    .with_instance_id(c.instance_id.as_deref().map(s));
                let response = self.h.cg(request, &image);
                assert!(
                    response.error_code == 0
                        || response.error_code == ResponseError::UnknownMemberId.code(),
                    "{response:?}"
                );
            }
            Op::StaticLeave { client } => {
                let image = self.image();
                let c = &mut self.clients[*client];
                if c.instance_id.is_none() || c.epoch.is_none() {
                    return;
                }
                c.epoch = None;
                c.owned.clear();
                c.pending = None;
                let request = cg_heartbeat(GROUP, &c.member_id, -2, None)
                    .with_instance_id(c.instance_id.as_deref().map(s));
                let response = self.h.cg(request, &image);
                assert!(
                    response.error_code == 0
                        || response.error_code == ResponseError::UnknownMemberId.code(),
                    "{response:?}"
                );
                // The restarted client comes back under a new member id.
                c.restarts += 1;
                c.member_id = format!("member-{client}-{}", c.restarts);
                c.away = response.error_code == 0;
            }
            Op::Advance { ms } => self.h.advance(*ms),
            Op::Grow { topic } => self.partitions[*topic] += 1,
            Op::Reload => {
                let before = self.h.coordinator.debug_consumer_groups();
                self.h.reload();
                assert_eq!(self.h.coordinator.debug_consumer_groups(), before, "reload");
            }
        }
    }

    fn check(&mut self) {
        let Some(group) = self.group() else {
            self.epochs.clear();
            return;
        };
        // No partition owned twice.
        let mut owners: BTreeMap<(uuid::Uuid, i32), &str> = BTreeMap::new();
        for (member, topic, partition) in group.owned_partitions() {
            if let Some(other) = owners.insert((topic, partition), member) {
                panic!("{topic}-{partition} owned by {member} and {other}");
            }
        }
        // Clients hold no more than the coordinator lets them.
        for c in &self.clients {
            if let Some(m) = group.members.get(&c.member_id)
                && c.epoch.is_some()
            {
                for (topic, ps) in &c.owned {
                    for p in ps {
                        let held = m.assigned.get(topic).is_some_and(|a| a.contains(p))
                            || m.pending_revocation
                                .get(topic)
                                .is_some_and(|a| a.contains(p));
                        assert!(
                            held,
                            "{} holds {topic}-{p} unknown to the coordinator",
                            c.member_id
                        );
                    }
                }
            }
        }
        // Epochs never go backwards while a member stays.
        self.epochs.retain(|id, _| group.members.contains_key(id));
        for (id, m) in &group.members {
            if m.member_epoch < 0 {
                continue;
            }
            let seen = self.epochs.entry(id.clone()).or_insert(m.member_epoch);
            assert!(
                m.member_epoch >= *seen,
                "{id}: epoch {} after {seen}",
                m.member_epoch
            );
            *seen = m.member_epoch;
        }
        assert!(group.assignment_epoch <= group.group_epoch);
    }

    /// Every client heartbeats with what it owns until nothing changes.
    fn converge(&mut self) {
        // Static clients that are away come back, as their restart would.
        for client in 0..CLIENTS {
            if self.clients[client].away {
                let subscription = TOPICS
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| self.clients[client].subscription.iter().any(|s| s == *t))
                    .fold(0u8, |mask, (i, _)| mask | (1 << i));
                self.apply(&Op::Join {
                    client,
                    subscription: subscription.max(1),
                });
                self.check();
            }
        }
        for _ in 0..12 {
            for client in 0..CLIENTS {
                if self.clients[client].epoch.is_none()
                    && !self.clients[client].subscription.is_empty()
                {
                    continue;
                }
                self.heartbeat(client, true, false, None);
                self.check();
            }
        }
        let Some(group) = self.group() else {
            return;
        };
        assert!(
            matches!(
                group.state(),
                ConsumerGroupState::Stable | ConsumerGroupState::Empty
            ),
            "{group:#?}"
        );
        for (id, m) in &group.members {
            let target = group.target.get(id).cloned().unwrap_or_default();
            assert_eq!(m.assigned, target, "{id} did not converge");
            assert_eq!(m.member_epoch, group.assignment_epoch);
        }
        let owned: BTreeSet<_> = group.owned_partitions().map(|(_, t, p)| (t, p)).collect();
        let client_owned: BTreeSet<_> = self
            .clients
            .iter()
            .filter(|c| c.epoch.is_some())
            .flat_map(|c| {
                c.owned
                    .iter()
                    .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
            })
            .collect();
        assert_eq!(
            owned, client_owned,
            "clients hold what the coordinator assigned"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn consumer_groups_stay_consistent(ops in proptest::collection::vec(op(), 1..60)) {
        let mut world = World::new();
        for op in &ops {
            world.apply(op);
            world.check();
        }
        world.converge();
        let before = world.h.coordinator.debug_consumer_groups();
        world.h.reload();
        prop_assert_eq!(world.h.coordinator.debug_consumer_groups(), before);
    }
}

#[test]
fn a_scripted_history_converges_with_every_partition_owned_once() {
    let mut world = World::new();
    let script = [
        Op::Join {
            client: 0,
            subscription: 3,
        },
        Op::Join {
            client: 1,
            subscription: 3,
        },
        Op::Heartbeat {
            client: 0,
            ack: false,
            full: false,
        },
        Op::Join {
            client: 2,
            subscription: 1,
        },
        Op::Grow { topic: 1 },
        Op::Heartbeat {
            client: 1,
            ack: true,
            full: true,
        },
        Op::Subscribe {
            client: 2,
            subscription: 2,
        },
        Op::Reload,
        Op::Advance { ms: 1_000 },
    ];
    for op in &script {
        world.apply(op);
        world.check();
    }
    world.converge();
    let group = world.group().unwrap();
    assert_eq!(group.members.len(), 3);
    assert_eq!(group.state(), ConsumerGroupState::Stable);
    // t0 has 2 partitions, t1 grew to 4: all six are owned, once each.
    assert_eq!(group.owned_partitions().count(), 6);
    for m in group.members.values() {
        assert!(!m.assigned.is_empty(), "{} got nothing", m.member_id);
    }
}
