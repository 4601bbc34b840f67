//! Consumer groups with unmodified librdkafka consumers: partitions split disjointly,
//! members that leave or die hand their partitions on, committed offsets survive a
//! broker restart, cooperative-sticky rebalancing and static membership.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{Offset, TopicPartitionList};
use sluice_e2e::{Broker, BrokerOptions, unique_topic, which};

use crate::common::{
    OP_TIMEOUT, Rec, base_config, create_topic, produce_ok, producer, wait_topic_ready,
};

/// Counts the rebalances a consumer goes through.
#[derive(Clone, Default)]
pub(crate) struct Rebalances {
    assigned: Arc<AtomicUsize>,
    revoked: Arc<AtomicUsize>,
}

impl ClientContext for Rebalances {}

impl ConsumerContext for Rebalances {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(_) => self.assigned.fetch_add(1, Ordering::SeqCst),
            Rebalance::Revoke(_) => self.revoked.fetch_add(1, Ordering::SeqCst),
            Rebalance::Error(_) => 0,
        };
    }
}

impl Rebalances {
    fn total(&self) -> usize {
        self.assigned.load(Ordering::SeqCst) + self.revoked.load(Ordering::SeqCst)
    }
}

pub(crate) type GroupConsumer = BaseConsumer<Rebalances>;

/// A broker whose groups rebalance without the initial delay, and whose consumer-protocol
/// members heartbeat every 500 ms, so tests are quick. Two shards, so that requests reach
/// coordinators on the other shard too.
pub(crate) fn group_broker() -> Broker {
    Broker::start(BrokerOptions {
        smp: Some(2),
        extra_args: vec![
            "--group-initial-rebalance-delay-ms".into(),
            "0".into(),
            "--group-consumer-heartbeat-interval-ms".into(),
            "500".into(),
        ],
        ..BrokerOptions::default()
    })
}

/// A consumer in `group`, subscribed to `topic`.
pub(crate) fn member(
    bootstrap: &str,
    group: &str,
    topic: &str,
    extra: &[(&str, &str)],
) -> (GroupConsumer, Rebalances) {
    let mut c = base_config(bootstrap);
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("fetch.wait.max.ms", "100");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    let ctx = Rebalances::default();
    let consumer: GroupConsumer = c.create_with_context(ctx.clone()).expect("create consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    (consumer, ctx)
}

pub(crate) fn assigned(c: &GroupConsumer) -> BTreeSet<i32> {
    c.assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Records read, by (partition, offset).
pub(crate) type Seen = BTreeMap<(i32, i64), Vec<u8>>;

/// Polls every consumer in turn until `done` holds for their assignments, collecting
/// records; panics after `timeout`.
pub(crate) fn poll_until(
    consumers: &[&GroupConsumer],
    seen: &mut Seen,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&[BTreeSet<i32>], &Seen) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        for c in consumers {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                seen.insert(
                    (m.partition(), m.offset()),
                    m.payload().unwrap_or_default().to_vec(),
                );
            }
        }
        let sets: Vec<BTreeSet<i32>> = consumers.iter().map(|c| assigned(c)).collect();
        if done(&sets, seen) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: timed out; assignments {sets:?}, {} records seen",
            seen.len()
        );
    }
}

/// Whether the sets are non-empty, pairwise disjoint and together cover `0..partitions`.
pub(crate) fn split_disjointly(sets: &[BTreeSet<i32>], partitions: i32) -> bool {
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
    sets.iter().all(|s| !s.is_empty()) && total == union.len() && union == (0..partitions).collect()
}

pub(crate) async fn fill(bootstrap: &str, topic: &str, partitions: i32, per_partition: usize) {
    let recs: Vec<Rec> = (0..partitions as usize * per_partition)
        .map(|i| Rec {
            partition: Some((i % partitions as usize) as i32),
            value: Some(format!("v{i}").into_bytes()),
            ..Rec::default()
        })
        .collect();
    produce_ok(&producer(bootstrap, &[]), topic, &recs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_then_three_consumers_split_partitions_and_read_everything() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("groups-split");
    create_topic(&bootstrap, &topic, 6).await;
    wait_topic_ready(&bootstrap, &topic, 6);
    fill(&bootstrap, &topic, 6, 50).await;
    let group = unique_topic("g-split");

    let (a, _) = member(&bootstrap, &group, &topic, &[]);
    let (b, _) = member(&bootstrap, &group, &topic, &[]);
    let mut seen = Seen::new();
    poll_until(
        &[&a, &b],
        &mut seen,
        OP_TIMEOUT,
        "two members",
        |sets, _| split_disjointly(sets, 6),
    );
    let (c, _) = member(&bootstrap, &group, &topic, &[]);
    poll_until(
        &[&a, &b, &c],
        &mut seen,
        OP_TIMEOUT,
        "three members",
        |sets, seen| split_disjointly(sets, 6) && seen.len() == 300,
    );
    for p in 0..6 {
        let offsets: Vec<i64> = seen.keys().filter(|k| k.0 == p).map(|k| k.1).collect();
        assert_eq!(offsets, (0..50).collect::<Vec<i64>>(), "partition {p}");
    }
}

/// A kcat balanced consumer in its own process, so it can be SIGKILLed.
fn kcat_member(bootstrap: &str, group: &str, topic: &str) -> Option<Child> {
    let kcat = which("kcat").or_else(|| which("kafkacat"))?;
    Some(
        Command::new(kcat)
            .args(["-b", bootstrap, "-G", group, topic, "-q", "-o", "end"])
            .args([
                "-X",
                "session.timeout.ms=6000",
                "-X",
                "heartbeat.interval.ms=500",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kcat"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_that_leave_or_die_hand_their_partitions_on() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("groups-leave");
    create_topic(&bootstrap, &topic, 4).await;
    wait_topic_ready(&bootstrap, &topic, 4);
    let group = unique_topic("g-leave");
    let all: BTreeSet<i32> = (0..4).collect();
    let mut seen = Seen::new();

    let (a, _) = member(&bootstrap, &group, &topic, &[]);
    {
        let (b, _) = member(&bootstrap, &group, &topic, &[]);
        poll_until(
            &[&a, &b],
            &mut seen,
            OP_TIMEOUT,
            "two members",
            |sets, _| split_disjointly(sets, 4),
        );
        // Dropping closes the consumer: LeaveGroup.
    }
    let left_at = Instant::now();
    poll_until(&[&a], &mut seen, OP_TIMEOUT, "after leave", |sets, _| {
        sets[0] == all
    });
    // A leave rebalances at once, well before the session timeout.
    assert!(
        left_at.elapsed() < Duration::from_secs(5),
        "{:?}",
        left_at.elapsed()
    );

    let Some(mut kcat) = kcat_member(&bootstrap, &group, &topic) else {
        eprintln!("kcat not installed: skipping the SIGKILL half");
        return;
    };
    poll_until(&[&a], &mut seen, OP_TIMEOUT, "kcat joined", |sets, _| {
        !sets[0].is_empty() && sets[0].len() < 4
    });
    kcat.kill().expect("SIGKILL kcat");
    let _ = kcat.wait();
    let died_at = Instant::now();
    poll_until(
        &[&a],
        &mut seen,
        OP_TIMEOUT,
        "after kcat died",
        |sets, _| sets[0] == all,
    );
    // The dead member is noticed by its session timeout (6 s), not before.
    assert!(
        died_at.elapsed() >= Duration::from_secs(3),
        "{:?}",
        died_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_broker_restart() {
    let mut broker = group_broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("groups-commit");
    create_topic(&bootstrap, &topic, 2).await;
    wait_topic_ready(&bootstrap, &topic, 2);
    fill(&bootstrap, &topic, 2, 40).await;
    let group = unique_topic("g-commit");

    let mut seen = Seen::new();
    {
        let (a, _) = member(&bootstrap, &group, &topic, &[]);
        poll_until(&[&a], &mut seen, OP_TIMEOUT, "first read", |_, seen| {
            seen.keys().filter(|k| k.0 == 0).count() >= 25
                && seen.keys().filter(|k| k.0 == 1).count() >= 10
        });
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(25))
            .unwrap();
        tpl.add_partition_offset(&topic, 1, Offset::Offset(10))
            .unwrap();
        tpl.find_partition(&topic, 0)
            .unwrap()
            .set_metadata("resume-here");
        a.commit(&tpl, CommitMode::Sync).expect("commit");
        let committed = a.committed(OP_TIMEOUT).expect("committed");
        let got: BTreeMap<i32, (Offset, String)> = committed
            .elements()
            .iter()
            .map(|e| (e.partition(), (e.offset(), e.metadata().to_owned())))
            .collect();
        assert_eq!(
            got.get(&0),
            Some(&(Offset::Offset(25), "resume-here".to_owned()))
        );
        assert_eq!(got.get(&1), Some(&(Offset::Offset(10), String::new())));
    }
    broker.restart();

    let (b, _) = member(&bootstrap, &group, &topic, &[]);
    // The metadata string came back from __consumer_offsets after the restart too.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&topic, 0);
    let committed = b
        .committed_offsets(tpl, OP_TIMEOUT)
        .expect("committed after restart");
    let p0 = committed.find_partition(&topic, 0).unwrap();
    assert_eq!(
        (p0.offset(), p0.metadata()),
        (Offset::Offset(25), "resume-here")
    );
    let mut resumed = Seen::new();
    poll_until(&[&b], &mut resumed, OP_TIMEOUT, "resume", |_, seen| {
        seen.len() == 15 + 30
    });
    let first = |p: i32| resumed.keys().find(|k| k.0 == p).map(|k| k.1);
    assert_eq!(first(0), Some(25), "partition 0 resumes after its commit");
    assert_eq!(first(1), Some(10), "partition 1 resumes after its commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_moves_only_what_it_must() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("groups-coop");
    create_topic(&bootstrap, &topic, 6).await;
    wait_topic_ready(&bootstrap, &topic, 6);
    let group = unique_topic("g-coop");
    let coop = [("partition.assignment.strategy", "cooperative-sticky")];
    let mut seen = Seen::new();

    let (a, _) = member(&bootstrap, &group, &topic, &coop);
    let (b, _) = member(&bootstrap, &group, &topic, &coop);
    poll_until(
        &[&a, &b],
        &mut seen,
        OP_TIMEOUT,
        "two members",
        |sets, _| split_disjointly(sets, 6),
    );
    let (before_a, before_b) = (assigned(&a), assigned(&b));
    let (c, _) = member(&bootstrap, &group, &topic, &coop);
    poll_until(
        &[&a, &b, &c],
        &mut seen,
        OP_TIMEOUT,
        "three members",
        |sets, _| split_disjointly(sets, 6) && sets.iter().all(|s| s.len() == 2),
    );
    // Incremental: the first two only gave partitions up, they got none new.
    assert!(
        assigned(&a).is_subset(&before_a),
        "{:?} ⊄ {before_a:?}",
        assigned(&a)
    );
    assert!(
        assigned(&b).is_subset(&before_b),
        "{:?} ⊄ {before_b:?}",
        assigned(&b)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_static_member_gets_its_partitions_back_without_a_rebalance() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("groups-static");
    create_topic(&bootstrap, &topic, 4).await;
    wait_topic_ready(&bootstrap, &topic, 4);
    let group = unique_topic("g-static");
    let static_a = [
        ("group.instance.id", "instance-a"),
        ("session.timeout.ms", "20000"),
    ];
    let static_b = [
        ("group.instance.id", "instance-b"),
        ("session.timeout.ms", "20000"),
    ];
    let mut seen = Seen::new();

    let (b, b_events) = member(&bootstrap, &group, &topic, &static_b);
    let before_a;
    {
        let (a, _) = member(&bootstrap, &group, &topic, &static_a);
        poll_until(
            &[&a, &b],
            &mut seen,
            OP_TIMEOUT,
            "two members",
            |sets, _| split_disjointly(sets, 4),
        );
        before_a = assigned(&a);
        // A static member's close sends no LeaveGroup: the group waits for it.
    }
    let rebalances_of_b = b_events.total();
    let (a2, _) = member(&bootstrap, &group, &topic, &static_a);
    poll_until(
        &[&a2, &b],
        &mut seen,
        OP_TIMEOUT,
        "static rejoin",
        |sets, _| split_disjointly(sets, 4),
    );
    assert_eq!(assigned(&a2), before_a, "same partitions back");
    // Keep polling b for a while: no rebalance reaches it.
    let quiet_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < quiet_until {
        let _ = b.poll(Duration::from_millis(100));
        let _ = a2.poll(Duration::from_millis(100));
    }
    assert_eq!(
        b_events.total(),
        rebalances_of_b,
        "the other member saw no rebalance"
    );
}
