//! Bulk keyed produce with `acks=all`, consumed back exactly once and in per-key order.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rdkafka::Message;
use sluice_e2e::{Broker, unique_topic};

use crate::common::{
    Rec, assert_no_more, consume_counts, consumer, create_topic, produce_ok, producer,
    wait_topic_ready, watermarks,
};

const RECORDS: usize = 100_000;
const KEYS: usize = 1_000;
const PARTITIONS: i32 = 3;

fn value_for(key: usize, seq: usize) -> Vec<u8> {
    // Pad so batches are not trivially small; key and sequence are recoverable.
    format!("key={key:04} seq={seq:06} {}", "x".repeat(key % 50)).into_bytes()
}

fn parse_value(v: &[u8]) -> (usize, usize) {
    let s = std::str::from_utf8(v).expect("utf8 value");
    let mut it = s.split(' ');
    let k = it
        .next()
        .and_then(|p| p.strip_prefix("key="))
        .expect("key=");
    let q = it
        .next()
        .and_then(|p| p.strip_prefix("seq="))
        .expect("seq=");
    (k.parse().expect("key num"), q.parse().expect("seq num"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_100k_records_exactly_once_in_order() {
    let broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("bulk");
    create_topic(&bootstrap, &topic, PARTITIONS).await;
    wait_topic_ready(&bootstrap, &topic, PARTITIONS as usize);

    let recs: Vec<Rec> = (0..RECORDS)
        .map(|i| {
            let key = i % KEYS;
            let seq = i / KEYS;
            Rec {
                key: Some(format!("key-{key:04}").into_bytes()),
                value: Some(value_for(key, seq)),
                ..Rec::default()
            }
        })
        .collect();
    let producer = producer(
        &bootstrap,
        &[
            ("linger.ms", "10"),
            ("batch.num.messages", "2000"),
            // Keep ordering strict even if something is retried.
            ("max.in.flight.requests.per.connection", "1"),
        ],
    );
    let placed = produce_ok(&producer, &topic, &recs).await;

    // Per-key partition is stable, and delivery offsets are unique.
    let mut key_partition: HashMap<usize, i32> = HashMap::new();
    let mut expected: BTreeMap<i32, usize> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut delivered_at: HashMap<(i32, i64), (usize, usize)> = HashMap::new();
    for (i, (p, off)) in placed.iter().enumerate() {
        let key = i % KEYS;
        assert_eq!(
            *key_partition.entry(key).or_insert(*p),
            *p,
            "key {key} moved partitions"
        );
        *expected.get_mut(p).expect("known partition") += 1;
        assert!(
            delivered_at.insert((*p, *off), (key, i / KEYS)).is_none(),
            "two records acknowledged at partition {p} offset {off}"
        );
    }
    assert!(
        expected.values().filter(|n| **n > 0).count() > 1,
        "keys should spread over partitions: {expected:?}"
    );

    let c = consumer(&bootstrap);
    for (p, n) in &expected {
        assert_eq!(
            watermarks(&c, &topic, *p),
            (0, *n as i64),
            "watermarks of partition {p}"
        );
    }
    let got = consume_counts(&c, &topic, &expected, Duration::from_secs(120));
    assert_no_more(&c, Duration::from_millis(500));

    let mut seen = vec![vec![false; RECORDS / KEYS]; KEYS];
    let mut next_seq = vec![0usize; KEYS];
    for (p, msgs) in &got {
        assert_eq!(msgs.len(), expected[p], "partition {p} count");
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m.offset(), i as i64, "partition {p}: offsets dense from 0");
            let (key, seq) = parse_value(m.payload().expect("value present"));
            assert_eq!(
                m.key(),
                Some(format!("key-{key:04}").as_bytes()),
                "key matches value"
            );
            assert_eq!(
                m.payload(),
                Some(value_for(key, seq).as_slice()),
                "value bytes"
            );
            assert_eq!(
                delivered_at.get(&(*p, m.offset())),
                Some(&(key, seq)),
                "record at the acknowledged offset"
            );
            assert!(!seen[key][seq], "duplicate key {key} seq {seq}");
            seen[key][seq] = true;
            assert_eq!(seq, next_seq[key], "key {key} out of order");
            next_seq[key] += 1;
        }
    }
    assert!(
        seen.iter().all(|k| k.iter().all(|s| *s)),
        "every record arrived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_1_and_acks_0_roundtrip() {
    let broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    for acks in ["1", "0"] {
        let topic = unique_topic(&format!("acks{acks}"));
        create_topic(&bootstrap, &topic, 1).await;
        wait_topic_ready(&bootstrap, &topic, 1);
        let producer = producer(&bootstrap, &[("acks", acks)]);
        let recs: Vec<Rec> = (0..1000)
            .map(|i| Rec {
                value: Some(format!("acks{acks}-{i}").into_bytes()),
                ..Rec::default()
            })
            .collect();
        produce_ok(&producer, &topic, &recs).await;
        let c = consumer(&bootstrap);
        let got = consume_counts(
            &c,
            &topic,
            &BTreeMap::from([(0, 1000)]),
            Duration::from_secs(60),
        );
        let values: Vec<Vec<u8>> = got[&0]
            .iter()
            .map(|m| m.payload().unwrap_or_default().to_vec())
            .collect();
        let want: Vec<Vec<u8>> = recs.iter().map(|r| r.value.clone().unwrap()).collect();
        assert_eq!(values, want, "acks={acks}");
    }
}

/// Several producers (separate connections) write to the same partitions concurrently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_producers_get_unique_offsets() {
    let broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("concurrent");
    create_topic(&bootstrap, &topic, 2).await;
    wait_topic_ready(&bootstrap, &topic, 2);
    const PRODUCERS: usize = 6;
    const PER: usize = 2_000;
    let mut tasks = Vec::new();
    for w in 0..PRODUCERS {
        let bootstrap = bootstrap.clone();
        let topic = topic.clone();
        tasks.push(tokio::spawn(async move {
            let producer = producer(&bootstrap, &[]);
            let recs: Vec<Rec> = (0..PER)
                .map(|i| Rec {
                    partition: Some((i % 2) as i32),
                    value: Some(format!("w{w}-{i}").into_bytes()),
                    ..Rec::default()
                })
                .collect();
            let placed = produce_ok(&producer, &topic, &recs).await;
            (w, placed)
        }));
    }
    let mut at: HashMap<(i32, i64), String> = HashMap::new();
    for t in tasks {
        let (w, placed) = t.await.expect("producer task");
        for (i, pl) in placed.into_iter().enumerate() {
            let v = format!("w{w}-{i}");
            assert!(
                at.insert(pl, v.clone()).is_none(),
                "offset {pl:?} acknowledged twice"
            );
        }
    }
    let expected: BTreeMap<i32, usize> =
        [(0, PRODUCERS * PER / 2), (1, PRODUCERS * PER / 2)].into();
    let c = consumer(&bootstrap);
    let got = consume_counts(&c, &topic, &expected, Duration::from_secs(60));
    for (p, msgs) in &got {
        let mut last_per_writer: HashMap<String, usize> = HashMap::new();
        for m in msgs {
            let v = std::str::from_utf8(m.payload().expect("value")).expect("utf8");
            assert_eq!(at.get(&(*p, m.offset())).map(String::as_str), Some(v));
            let (w, i) = v.split_once('-').expect("w-i");
            let i: usize = i.parse().expect("seq");
            if let Some(prev) = last_per_writer.insert(w.to_owned(), i) {
                assert!(prev < i, "writer {w} reordered on partition {p}");
            }
        }
    }
}

/// Near-1 MB records, and fetching from the middle of a partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_records_and_fetch_from_offset() {
    let broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("large");
    create_topic(&bootstrap, &topic, 1).await;
    wait_topic_ready(&bootstrap, &topic, 1);
    let producer = producer(&bootstrap, &[("linger.ms", "0")]);
    let recs: Vec<Rec> = (0..20u8)
        .map(|i| Rec {
            value: Some(vec![i; 900 * 1024 - usize::from(i) * 1000]),
            ..Rec::default()
        })
        .collect();
    produce_ok(&producer, &topic, &recs).await;
    let c = consumer(&bootstrap);
    let got = consume_counts(
        &c,
        &topic,
        &BTreeMap::from([(0, 20)]),
        Duration::from_secs(60),
    );
    for (m, r) in got[&0].iter().zip(&recs) {
        assert_eq!(m.payload(), r.value.as_deref(), "offset {}", m.offset());
    }

    // Start at offset 13.
    use rdkafka::consumer::Consumer;
    let c = consumer(&bootstrap);
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, rdkafka::Offset::Offset(13))
        .expect("add");
    c.assign(&tpl).expect("assign");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut offsets = Vec::new();
    while offsets.len() < 7 && std::time::Instant::now() < deadline {
        if let Some(r) = c.poll(Duration::from_millis(200)) {
            let m = r.expect("fetch from offset 13");
            assert_eq!(m.payload(), recs[m.offset() as usize].value.as_deref());
            offsets.push(m.offset());
        }
    }
    assert_eq!(offsets, (13..20).collect::<Vec<i64>>());
}
