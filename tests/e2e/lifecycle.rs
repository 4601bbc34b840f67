//! Topic lifecycle and storage behaviour seen through clients: delete and recreate, segment
//! rolls with recovery, small fetch sizes, idempotent producers, many connections.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use sluice_e2e::{Broker, unique_topic, wait_until};

use crate::common::{
    OP_TIMEOUT, Rec, admin, admin_opts, assert_no_more, consume_counts, consumer, consumer_with,
    create_topic, produce_ok, producer, wait_topic_ready, watermarks,
};

fn recs(prefix: &str, n: usize, size: usize) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            let mut v = format!("{prefix}-{i:08}-").into_bytes();
            v.resize(size.max(v.len()), b'a' + (i % 26) as u8);
            Rec {
                partition: Some(0),
                value: Some(v),
                ..Rec::default()
            }
        })
        .collect()
}

fn values(msgs: &[rdkafka::message::OwnedMessage]) -> Vec<Vec<u8>> {
    msgs.iter()
        .map(|m| m.payload().unwrap_or_default().to_vec())
        .collect()
}

/// Old data must not come back when a topic is deleted and a topic of the same name is
/// created, neither right away nor after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_then_recreate_starts_empty() {
    let mut broker = Broker::start_default();
    let b = broker.bootstrap();
    let topic = unique_topic("recreate");
    create_topic(&b, &topic, 1).await;
    wait_topic_ready(&b, &topic, 1);
    produce_ok(&producer(&b, &[]), &topic, &recs("old", 100, 10)).await;

    let res = admin(&b)
        .delete_topics(&[&topic], &admin_opts())
        .await
        .expect("DeleteTopics");
    assert_eq!(res, vec![Ok(topic.clone())]);
    let c = consumer(&b);
    assert!(
        wait_until(OP_TIMEOUT, || c
            .fetch_metadata(None, Duration::from_secs(5))
            .map(|md| !md.topics().iter().any(|t| t.name() == topic))
            .unwrap_or(false)),
        "topic still listed after delete"
    );
    create_topic(&b, &topic, 1).await;
    wait_topic_ready(&b, &topic, 1);
    assert_eq!(
        watermarks(&c, &topic, 0),
        (0, 0),
        "recreated topic is empty"
    );

    produce_ok(&producer(&b, &[]), &topic, &recs("new", 10, 10)).await;
    broker.restart();
    let b = broker.bootstrap();
    wait_topic_ready(&b, &topic, 1);
    let c = consumer(&b);
    assert_eq!(watermarks(&c, &topic, 0), (0, 10), "after restart");
    let got = consume_counts(&c, &topic, &BTreeMap::from([(0, 10)]), OP_TIMEOUT);
    assert_no_more(&c, Duration::from_millis(300));
    let want: Vec<Vec<u8>> = recs("new", 10, 10)
        .into_iter()
        .map(|r| r.value.expect("value"))
        .collect();
    assert_eq!(values(&got[&0]), want);
}

/// A deleted topic stays deleted across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_topic_stays_deleted_after_restart() {
    let mut broker = Broker::start_default();
    let b = broker.bootstrap();
    let keep = unique_topic("keep");
    let gone = unique_topic("gone");
    create_topic(&b, &keep, 1).await;
    create_topic(&b, &gone, 2).await;
    wait_topic_ready(&b, &gone, 2);
    produce_ok(&producer(&b, &[]), &gone, &recs("g", 10, 10)).await;
    let res = admin(&b)
        .delete_topics(&[&gone], &admin_opts())
        .await
        .expect("DeleteTopics");
    assert_eq!(res, vec![Ok(gone.clone())]);
    broker.terminate();
    broker.restart();
    let c = consumer(&broker.bootstrap());
    let md = c.fetch_metadata(None, OP_TIMEOUT).expect("metadata");
    let names: Vec<&str> = md.topics().iter().map(|t| t.name()).collect();
    assert!(
        names.contains(&keep.as_str()),
        "kept topic listed: {names:?}"
    );
    assert!(
        !names.contains(&gone.as_str()),
        "deleted topic came back: {names:?}"
    );
}

/// Small segments force many rolls; everything survives SIGKILL and reads back in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_rolls_survive_restart() {
    let mut broker = Broker::start_default();
    let b = broker.bootstrap();
    let topic = unique_topic("segments");
    let res =
        admin(&b)
            .create_topics(
                &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))
                    .set("segment.bytes", "1048576")],
                &admin_opts(),
            )
            .await
            .expect("CreateTopics");
    assert_eq!(res, vec![Ok(topic.clone())], "segment.bytes accepted");
    wait_topic_ready(&b, &topic, 1);
    const N: usize = 8_000;
    let rs = recs("seg", N, 1_000); // ~8 MB: several 1 MiB segments
    produce_ok(&producer(&b, &[("batch.size", "65536")]), &topic, &rs).await;
    broker.sigkill();
    broker.restart();
    let b = broker.bootstrap();
    let c = consumer(&b);
    assert_eq!(watermarks(&c, &topic, 0), (0, N as i64));
    let got = consume_counts(
        &c,
        &topic,
        &BTreeMap::from([(0, N)]),
        Duration::from_secs(60),
    );
    let want: Vec<Vec<u8>> = rs.into_iter().map(|r| r.value.expect("value")).collect();
    assert_eq!(values(&got[&0]).len(), N);
    assert!(values(&got[&0]) == want, "contents across segments");
    // Fetch from the middle (inside a later segment).
    let mid = consumer(&b);
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, rdkafka::Offset::Offset(6_543))
        .expect("add");
    mid.assign(&tpl).expect("assign");
    let deadline = std::time::Instant::now() + OP_TIMEOUT;
    let m = loop {
        if let Some(r) = mid.poll(Duration::from_millis(200)) {
            break r.expect("fetch from the middle");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no record from offset 6543"
        );
    };
    assert_eq!(m.offset(), 6_543);
    assert_eq!(m.payload(), Some(want[6_543].as_slice()));
}

/// A fetch limit smaller than one batch still makes progress (Kafka returns at least one
/// whole batch, KIP-74).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_smaller_than_a_batch_makes_progress() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    let topic = unique_topic("smallfetch");
    create_topic(&b, &topic, 1).await;
    wait_topic_ready(&b, &topic, 1);
    let rs = recs("big", 50, 10_000);
    produce_ok(&producer(&b, &[("linger.ms", "50")]), &topic, &rs).await;
    let c = consumer_with(
        &b,
        &[
            ("message.max.bytes", "1000"),
            ("fetch.max.bytes", "1024"),
            ("max.partition.fetch.bytes", "1024"),
        ],
    );
    let got = consume_counts(
        &c,
        &topic,
        &BTreeMap::from([(0, 50)]),
        Duration::from_secs(60),
    );
    let want: Vec<Vec<u8>> = rs.into_iter().map(|r| r.value.expect("value")).collect();
    assert!(values(&got[&0]) == want, "contents");
}

/// `enable.idempotence=true` (InitProducerId, producer epochs, sequence numbers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_roundtrip() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    let topic = unique_topic("idem");
    create_topic(&b, &topic, 2).await;
    wait_topic_ready(&b, &topic, 2);
    let p = producer(&b, &[("enable.idempotence", "true")]);
    let rs: Vec<Rec> = (0..10_000)
        .map(|i| Rec {
            partition: Some(i % 2),
            value: Some(format!("idem-{i}").into_bytes()),
            ..Rec::default()
        })
        .collect();
    let placed = produce_ok(&p, &topic, &rs).await;
    let c = consumer(&b);
    let got = consume_counts(
        &c,
        &topic,
        &BTreeMap::from([(0, 5_000), (1, 5_000)]),
        Duration::from_secs(60),
    );
    assert_no_more(&c, Duration::from_millis(300));
    for ((p, off), r) in placed.iter().zip(&rs) {
        assert_eq!(
            got[p][*off as usize].payload(),
            r.value.as_deref(),
            "{p}/{off}"
        );
    }
}

/// Hundreds of idle connections do not stop the broker from serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_idle_connections() {
    let mut broker = Broker::start_default();
    let conns: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(broker.kafka_addr()).expect("connect"))
        .collect();
    crate::common::basic_roundtrip(&broker.bootstrap(), 2, 1_000).await;
    drop(conns);
    crate::common::basic_roundtrip(&broker.bootstrap(), 1, 100).await;
    assert!(broker.is_alive());
}
