//! The server-side assignors (KIP-848): `uniform` (the default) and `range`, chosen per
//! group by the members' `server_assignor`.
//!
//! Both are pure functions of the members' subscriptions (topic ids), the partition counts
//! and, for `uniform`, the previous target assignment, which it keeps as far as balance
//! allows. Every partition of a subscribed topic goes to exactly one subscribed member.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::record::consumer::TopicPartitions;

/// The assignor Kafka uses when no member asks for one.
pub(crate) const DEFAULT_ASSIGNOR: &str = UNIFORM;
/// Balance first, then stickiness (Kafka's `UniformAssignor`).
pub(crate) const UNIFORM: &str = "uniform";
/// Contiguous ranges per topic, co-partitioned when subscriptions agree (`RangeAssignor`).
pub(crate) const RANGE: &str = "range";

/// Whether `name` is a server assignor this coordinator runs.
pub(crate) fn is_supported(name: &str) -> bool {
    name == UNIFORM || name == RANGE
}

/// One member as an assignor sees it.
#[derive(Clone, Debug)]
pub(crate) struct MemberSpec {
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    /// Topics subscribed to that exist.
    pub(crate) topics: BTreeSet<Uuid>,
    /// Its previous target assignment.
    pub(crate) current: TopicPartitions,
}

/// Runs assignor `name` (unknown names fall back to the default). `partitions` maps each
/// topic to its partition count. Returns every member's new target, members without
/// partitions included.
pub(crate) fn assign(
    name: &str,
    members: &[MemberSpec],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, TopicPartitions> {
    let mut result = match name {
        RANGE => range(members, partitions),
        _ => uniform(members, partitions),
    };
    for member in members {
        result.entry(member.member_id.clone()).or_default();
    }
    result
}

type Partition = (Uuid, i32);

fn count(assignment: &BTreeSet<Partition>) -> usize {
    assignment.len()
}

fn to_topic_partitions(partitions: &BTreeSet<Partition>) -> TopicPartitions {
    let mut out = TopicPartitions::new();
    for (topic, partition) in partitions {
        out.entry(*topic).or_default().insert(*partition);
    }
    out
}

/// Balance, then stickiness. Members keep the partitions of their previous target that
/// they still subscribe to, up to their share; the rest go to the least loaded subscribed
/// member; then partitions move from members with more to subscribed members with at least
/// two fewer until no such move exists. With identical subscriptions this gives every
/// member ⌊n/m⌋ or ⌈n/m⌉ partitions, as Kafka's homogeneous builder does.
fn uniform(
    members: &[MemberSpec],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, TopicPartitions> {
    // Members in id order so that the outcome does not depend on arrival order.
    let mut order: Vec<&MemberSpec> = members.iter().collect();
    order.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let mut owned: BTreeMap<&str, BTreeSet<Partition>> = BTreeMap::new();
    let mut subscribers: BTreeMap<Uuid, Vec<&str>> = BTreeMap::new();
    for member in &order {
        owned.insert(member.member_id.as_str(), BTreeSet::new());
        for topic in &member.topics {
            if partitions.get(topic).is_some_and(|&n| n > 0) {
                subscribers
                    .entry(*topic)
                    .or_default()
                    .push(member.member_id.as_str());
            }
        }
    }
    let all: BTreeSet<Partition> = subscribers
        .keys()
        .flat_map(|topic| {
            let n = partitions.get(topic).copied().unwrap_or(0);
            (0..n).map(move |p| (*topic, p))
        })
        .collect();
    // The fair share of each member if everyone could take anything; a member keeps no
    // more than its rounded-up share of what it had.
    let total = all.len();
    let ceil_share = total.div_ceil(order.len().max(1));
    let mut taken: BTreeSet<Partition> = BTreeSet::new();
    for member in &order {
        let mine = owned.entry(member.member_id.as_str()).or_default();
        for (topic, indexes) in &member.current {
            if !member.topics.contains(topic) {
                continue;
            }
            for &p in indexes {
                if mine.len() < ceil_share
                    && all.contains(&(*topic, p))
                    && taken.insert((*topic, p))
                {
                    mine.insert((*topic, p));
                }
            }
        }
    }
    // Topics with the fewest subscribers first, so constrained partitions find room.
    let mut topics: Vec<&Uuid> = subscribers.keys().collect();
    topics.sort_by_key(|t| (subscribers.get(*t).map_or(0, Vec::len), **t));
    for topic in topics {
        let candidates = subscribers.get(topic).map(Vec::as_slice).unwrap_or(&[]);
        let n = partitions.get(topic).copied().unwrap_or(0);
        for p in 0..n {
            if taken.contains(&(*topic, p)) {
                continue;
            }
            let least = candidates
                .iter()
                .min_by_key(|m| (owned.get(**m).map_or(0, count), **m));
            if let Some(member) = least
                && let Some(set) = owned.get_mut(*member)
            {
                set.insert((*topic, p));
                taken.insert((*topic, p));
            }
        }
    }
    rebalance(&mut owned, &subscribers);
    owned
        .into_iter()
        .map(|(member, set)| (member.to_string(), to_topic_partitions(&set)))
        .collect()
}

/// Moves partitions from a member to a subscribed member with at least two fewer, until
/// no move is possible. Each move lowers the sum of squared counts, so this ends.
fn rebalance(
    owned: &mut BTreeMap<&str, BTreeSet<Partition>>,
    subscribers: &BTreeMap<Uuid, Vec<&str>>,
) {
    loop {
        let mut moved = false;
        let mut by_load: Vec<(&str, usize)> = owned.iter().map(|(m, s)| (*m, s.len())).collect();
        by_load.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        'outer: for (giver, giver_count) in by_load {
            let Some(given) = owned.get(giver) else {
                continue;
            };
            // Highest partitions move first, so low partitions stay put.
            for &(topic, p) in given.iter().rev() {
                let receiver = subscribers
                    .get(&topic)
                    .into_iter()
                    .flatten()
                    .filter(|m| **m != giver)
                    .map(|m| (*m, owned.get(*m).map_or(0, BTreeSet::len)))
                    .filter(|(_, n)| n + 1 < giver_count)
                    .min_by_key(|(m, n)| (*n, *m));
                if let Some((receiver, _)) = receiver {
                    if let Some(set) = owned.get_mut(giver) {
                        set.remove(&(topic, p));
                    }
                    if let Some(set) = owned.get_mut(receiver) {
                        set.insert((topic, p));
                    }
                    moved = true;
                    break 'outer;
                }
            }
        }
        if !moved {
            return;
        }
    }
}

/// Kafka's server-side range assignor: per topic, its subscribers sorted (static members
/// first by instance id, then by member id) each take a contiguous range, the first
/// `n % m` one partition more. Not sticky.
fn range(
    members: &[MemberSpec],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, TopicPartitions> {
    let mut order: Vec<&MemberSpec> = members.iter().collect();
    order.sort_by(|a, b| match (&a.instance_id, &b.instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    });
    let mut result: BTreeMap<String, TopicPartitions> = BTreeMap::new();
    let topics: BTreeSet<Uuid> = order
        .iter()
        .flat_map(|m| m.topics.iter().copied())
        .collect();
    for topic in topics {
        let Some(&n) = partitions.get(&topic) else {
            continue;
        };
        let subscribed: Vec<&&MemberSpec> =
            order.iter().filter(|m| m.topics.contains(&topic)).collect();
        let m = i32::try_from(subscribed.len()).unwrap_or(i32::MAX).max(1);
        let (quota, mut extra) = (n / m, n % m);
        let mut start = 0;
        for member in subscribed {
            let mut size = quota;
            if extra > 0 {
                size += 1;
                extra -= 1;
            }
            let end = (start + size).min(n);
            if start < end {
                result
                    .entry(member.member_id.clone())
                    .or_default()
                    .insert(topic, (start..end).collect());
            }
            start = end;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn member(id: &str, topics: &[u128], current: &[(u128, &[i32])]) -> MemberSpec {
        MemberSpec {
            member_id: id.into(),
            instance_id: None,
            topics: topics.iter().map(|&n| t(n)).collect(),
            current: current
                .iter()
                .map(|(topic, ps)| (t(*topic), ps.iter().copied().collect()))
                .collect(),
        }
    }

    fn sizes(result: &BTreeMap<String, TopicPartitions>) -> Vec<usize> {
        result
            .values()
            .map(|tp| tp.values().map(BTreeSet::len).sum())
            .collect()
    }

    fn assert_disjoint_and_complete(
        result: &BTreeMap<String, TopicPartitions>,
        partitions: &BTreeMap<Uuid, i32>,
        subscribed: &BTreeSet<Uuid>,
    ) {
        let mut seen = BTreeSet::new();
        for tp in result.values() {
            for (topic, ps) in tp {
                for p in ps {
                    assert!(seen.insert((*topic, *p)), "{topic}-{p} assigned twice");
                }
            }
        }
        let expected: BTreeSet<(Uuid, i32)> = subscribed
            .iter()
            .flat_map(|topic| (0..partitions[topic]).map(move |p| (*topic, p)))
            .collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn uniform_balances_six_partitions_over_two_then_three_members_stickily() {
        let partitions = BTreeMap::from([(t(1), 6)]);
        let two = assign(
            UNIFORM,
            &[member("a", &[1], &[]), member("b", &[1], &[])],
            &partitions,
        );
        assert_eq!(sizes(&two), [3, 3]);
        let three = assign(
            UNIFORM,
            &[
                member(
                    "a",
                    &[1],
                    &[(1, &two["a"][&t(1)].iter().copied().collect::<Vec<_>>())],
                ),
                member(
                    "b",
                    &[1],
                    &[(1, &two["b"][&t(1)].iter().copied().collect::<Vec<_>>())],
                ),
                member("c", &[1], &[]),
            ],
            &partitions,
        );
        assert_eq!(sizes(&three), [2, 2, 2]);
        assert_disjoint_and_complete(&three, &partitions, &[t(1)].into());
        // Sticky: a and b only lost partitions.
        for m in ["a", "b"] {
            assert!(three[m][&t(1)].is_subset(&two[m][&t(1)]), "{m} moved");
        }
    }

    #[test]
    fn uniform_gives_constrained_members_their_topics() {
        // a: t1 (4 partitions); b: t1 and t2 (2 partitions).
        let partitions = BTreeMap::from([(t(1), 4), (t(2), 2)]);
        let result = assign(
            UNIFORM,
            &[member("a", &[1], &[]), member("b", &[1, 2], &[])],
            &partitions,
        );
        assert_disjoint_and_complete(&result, &partitions, &[t(1), t(2)].into());
        assert_eq!(sizes(&result), [3, 3]);
        assert!(!result["a"].contains_key(&t(2)));
    }

    #[test]
    fn uniform_drops_partitions_of_topics_no_longer_subscribed() {
        let partitions = BTreeMap::from([(t(1), 2), (t(2), 2)]);
        let result = assign(
            UNIFORM,
            &[member("a", &[2], &[(1, &[0, 1])]), member("b", &[1], &[])],
            &partitions,
        );
        assert_eq!(result["b"][&t(1)], [0, 1].into());
        assert_eq!(result["a"][&t(2)], [0, 1].into());
        assert!(!result["a"].contains_key(&t(1)));
    }

    #[test]
    fn more_members_than_partitions_leaves_some_empty() {
        let partitions = BTreeMap::from([(t(1), 2)]);
        let members: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|m| member(m, &[1], &[]))
            .collect();
        for name in [UNIFORM, RANGE] {
            let result = assign(name, &members, &partitions);
            assert_eq!(result.len(), 3);
            let mut s = sizes(&result);
            s.sort();
            assert_eq!(s, [0, 1, 1], "{name}");
        }
    }

    #[test]
    fn range_gives_contiguous_co_partitioned_ranges() {
        let partitions = BTreeMap::from([(t(1), 3), (t(2), 3)]);
        let result = assign(
            RANGE,
            &[member("m1", &[1, 2], &[]), member("m0", &[1, 2], &[])],
            &partitions,
        );
        assert_eq!(result["m0"][&t(1)], [0, 1].into());
        assert_eq!(result["m0"][&t(2)], [0, 1].into());
        assert_eq!(result["m1"][&t(1)], [2].into());
        assert_eq!(result["m1"][&t(2)], [2].into());
    }

    #[test]
    fn range_puts_static_members_first() {
        let partitions = BTreeMap::from([(t(1), 2)]);
        let mut z = member("z", &[1], &[]);
        z.instance_id = Some("i".into());
        let result = assign(RANGE, &[member("a", &[1], &[]), z], &partitions);
        assert_eq!(result["z"][&t(1)], [0].into());
        assert_eq!(result["a"][&t(1)], [1].into());
    }
}
