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
