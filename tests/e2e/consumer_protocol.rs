//! KIP-848 consumer groups (`group.protocol=consumer`) with unmodified librdkafka
//! consumers: the broker assigns partitions (ConsumerGroupHeartbeat), members split a
//! topic disjointly, a closing member's partitions move on, committed offsets survive a
//! restart, and classic and consumer-protocol groups live side by side.
//!
//! That protocol refuses `partition.assignment.strategy`, `session.timeout.ms` and
//! `heartbeat.interval.ms` on the client: the broker sets them (`group_broker` makes the
//! heartbeat interval 500 ms).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use sluice_e2e::unique_topic;

use crate::common::{OP_TIMEOUT, base_config, create_topic, wait_topic_ready};
use crate::groups::{
    GroupConsumer, Rebalances, Seen, assigned, fill, group_broker, member, poll_until,
    split_disjointly,
};

/// A consumer-protocol member of `group`, subscribed to `topic`.
fn consumer_member(bootstrap: &str, group: &str, topic: &str) -> GroupConsumer {
    static_member(bootstrap, group, topic, None)
}

/// A consumer-protocol member, static when `instance_id` is given.
fn static_member(
    bootstrap: &str,
    group: &str,
    topic: &str,
    instance_id: Option<&str>,
) -> GroupConsumer {
    let mut c = base_config(bootstrap);
    if let Some(instance_id) = instance_id {
        c.set("group.instance.id", instance_id);
    }
    c.set("group.id", group)
        .set("group.protocol", "consumer")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100");
    let consumer: GroupConsumer = c
        .create_with_context(Rebalances::default())
        .expect("create consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_then_three_members_split_partitions_and_read_everything() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("kip848-split");
    create_topic(&bootstrap, &topic, 6).await;
    wait_topic_ready(&bootstrap, &topic, 6);
    fill(&bootstrap, &topic, 6, 50).await;
    let group = unique_topic("g848-split");

    let a = consumer_member(&bootstrap, &group, &topic);
    let b = consumer_member(&bootstrap, &group, &topic);
    let mut seen = Seen::new();
    poll_until(
        &[&a, &b],
        &mut seen,
        OP_TIMEOUT,
        "two members",
        |sets, _| split_disjointly(sets, 6),
    );
    let c = consumer_member(&bootstrap, &group, &topic);
    poll_until(
        &[&a, &b, &c],
        &mut seen,
        OP_TIMEOUT,
        "three members",
        |sets, seen| {
            split_disjointly(sets, 6) && sets.iter().all(|s| s.len() == 2) && seen.len() == 300
        },
    );
    for p in 0..6 {
        let offsets: Vec<i64> = seen.keys().filter(|k| k.0 == p).map(|k| k.1).collect();
        assert_eq!(offsets, (0..50).collect::<Vec<i64>>(), "partition {p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_member_hands_its_partitions_over() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("kip848-leave");
    create_topic(&bootstrap, &topic, 4).await;
    wait_topic_ready(&bootstrap, &topic, 4);
    let group = unique_topic("g848-leave");
    let all: BTreeSet<i32> = (0..4).collect();
    let mut seen = Seen::new();

    let a = consumer_member(&bootstrap, &group, &topic);
    {
        let b = consumer_member(&bootstrap, &group, &topic);
        poll_until(
            &[&a, &b],
            &mut seen,
            OP_TIMEOUT,
            "two members",
            |sets, _| split_disjointly(sets, 4),
        );
        // Dropping closes the consumer: a ConsumerGroupHeartbeat with epoch -1.
    }
    let left_at = Instant::now();
    poll_until(&[&a], &mut seen, OP_TIMEOUT, "after leave", |sets, _| {
        sets[0] == all
    });
    // The leave is acted on at once, long before the 45 s session timeout.
    assert!(
        left_at.elapsed() < Duration::from_secs(10),
        "{:?}",
        left_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_broker_restart() {
    let mut broker = group_broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("kip848-commit");
    create_topic(&bootstrap, &topic, 2).await;
    wait_topic_ready(&bootstrap, &topic, 2);
    fill(&bootstrap, &topic, 2, 40).await;
    let group = unique_topic("g848-commit");

    let mut seen = Seen::new();
    {
        let a = consumer_member(&bootstrap, &group, &topic);
        poll_until(&[&a], &mut seen, OP_TIMEOUT, "first read", |_, seen| {
            seen.keys().filter(|k| k.0 == 0).count() >= 25
                && seen.keys().filter(|k| k.0 == 1).count() >= 10
        });
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(25))
            .unwrap();
        tpl.add_partition_offset(&topic, 1, Offset::Offset(10))
            .unwrap();
        a.commit(&tpl, CommitMode::Sync).expect("commit");
        let committed = a.committed(OP_TIMEOUT).expect("committed");
        let got: BTreeMap<i32, Offset> = committed
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset()))
            .collect();
        assert_eq!(got.get(&0), Some(&Offset::Offset(25)));
        assert_eq!(got.get(&1), Some(&Offset::Offset(10)));
    }
    broker.restart();

    let b = consumer_member(&bootstrap, &group, &topic);
    let mut resumed = Seen::new();
    poll_until(&[&b], &mut resumed, OP_TIMEOUT, "resume", |_, seen| {
        seen.len() == 15 + 30
    });
    let first = |p: i32| resumed.keys().find(|k| k.0 == p).map(|k| k.1);
    assert_eq!(first(0), Some(25), "partition 0 resumes after its commit");
    assert_eq!(first(1), Some(10), "partition 1 resumes after its commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_and_consumer_protocol_groups_side_by_side() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("kip848-both");
    create_topic(&bootstrap, &topic, 4).await;
    wait_topic_ready(&bootstrap, &topic, 4);
    fill(&bootstrap, &topic, 4, 20).await;
    let classic_group = unique_topic("g-classic");
    let consumer_group = unique_topic("g848-both");

    let (classic_a, _) = member(&bootstrap, &classic_group, &topic, &[]);
    let (classic_b, _) = member(&bootstrap, &classic_group, &topic, &[]);
    let new_a = consumer_member(&bootstrap, &consumer_group, &topic);
    let new_b = consumer_member(&bootstrap, &consumer_group, &topic);
    let (mut seen_classic, mut seen_new) = (Seen::new(), Seen::new());
    let deadline = Instant::now() + OP_TIMEOUT;
    loop {
        poll_until(
            &[&classic_a, &classic_b],
            &mut seen_classic,
            OP_TIMEOUT,
            "classic group",
            |_, _| true,
        );
        poll_until(
            &[&new_a, &new_b],
            &mut seen_new,
            OP_TIMEOUT,
            "consumer group",
            |_, _| true,
        );
        let classic_done = split_disjointly(&[assigned(&classic_a), assigned(&classic_b)], 4)
            && seen_classic.len() == 80;
        let new_done =
            split_disjointly(&[assigned(&new_a), assigned(&new_b)], 4) && seen_new.len() == 80;
        if classic_done && new_done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out: classic {} records, consumer protocol {} records",
            seen_classic.len(),
            seen_new.len()
        );
    }
    // ListGroups shows both groups. (librdkafka describes each listed group with
    // DescribeGroups, which, as in Kafka, only knows classic groups: the consumer group
    // comes back Dead without a protocol type.)
    let list = new_a
        .fetch_group_list(None, OP_TIMEOUT)
        .expect("list groups");
    let listed: BTreeMap<String, (String, String)> = list
        .groups()
        .iter()
        .map(|g| {
            let info = (g.state().to_string(), g.protocol_type().to_string());
            (g.name().to_string(), info)
        })
        .collect();
    assert_eq!(
        listed.get(&classic_group).map(|(_, t)| t.as_str()),
        Some("consumer"),
        "{listed:?}"
    );
    assert!(listed.contains_key(&consumer_group), "{listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regex_subscription_is_resolved_by_the_broker() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    let prefix = unique_topic("kip848-re");
    let (first, second) = (format!("{prefix}-a"), format!("{prefix}-b"));
    for topic in [&first, &second] {
        create_topic(&bootstrap, topic, 2).await;
        wait_topic_ready(&bootstrap, topic, 2);
        fill(&bootstrap, topic, 2, 10).await;
    }
    let group = unique_topic("g848-re");
    // librdkafka sends subscriptions starting with ^ as the heartbeat's regex.
    let c = consumer_member(&bootstrap, &group, &format!("^{prefix}-.*"));
    let mut per_topic: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = Instant::now() + OP_TIMEOUT;
    while per_topic.values().sum::<usize>() < 40 {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            *per_topic.entry(m.topic().to_string()).or_default() += 1;
        }
        assert!(Instant::now() < deadline, "timed out: {per_topic:?}");
    }
    assert_eq!(per_topic.get(&first), Some(&20), "{per_topic:?}");
    assert_eq!(per_topic.get(&second), Some(&20), "{per_topic:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_static_member_gets_its_partitions_back() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("kip848-static");
    create_topic(&bootstrap, &topic, 4).await;
    wait_topic_ready(&bootstrap, &topic, 4);
    let group = unique_topic("g848-static");
    let mut seen = Seen::new();

    let b = static_member(&bootstrap, &group, &topic, Some("instance-b"));
    let before_a;
    {
        let a = static_member(&bootstrap, &group, &topic, Some("instance-a"));
        poll_until(
            &[&a, &b],
            &mut seen,
            OP_TIMEOUT,
            "two members",
            |sets, _| split_disjointly(sets, 4),
        );
        before_a = assigned(&a);
        // A static member's close leaves with epoch -2: its partitions wait for it.
    }
    let a2 = static_member(&bootstrap, &group, &topic, Some("instance-a"));
    poll_until(
        &[&a2, &b],
        &mut seen,
        OP_TIMEOUT,
        "static rejoin",
        |sets, _| split_disjointly(sets, 4),
    );
    assert_eq!(assigned(&a2), before_a, "same partitions back");
}
