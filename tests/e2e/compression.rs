//! Every producer compression codec round-trips byte-equal.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::Message;
use sluice_e2e::{Broker, unique_topic};

use crate::common::{
    Rec, assert_no_more, consume_counts, consumer, create_topic, produce_ok, producer,
    wait_topic_ready,
};

const RECORDS: usize = 5_000;

/// Deterministic mix of compressible text and incompressible noise.
fn value(i: usize, seed: u64) -> Vec<u8> {
    let mut x = (seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
    let len = 1 + (i * 37) % 700;
    let mut v = Vec::with_capacity(len);
    for j in 0..len {
        if (i / 7).is_multiple_of(2) {
            v.push(b"the quick brown fox jumps over the lazy dog "[j % 44]);
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push(x as u8);
        }
    }
    v
}

async fn roundtrip(codec: &str) {
    let seed = 0x5EED_u64;
    eprintln!("compression {codec}: seed {seed:#x}");
    let broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic(&format!("comp-{codec}"));
    create_topic(&bootstrap, &topic, 1).await;
    wait_topic_ready(&bootstrap, &topic, 1);
    let producer = producer(
        &bootstrap,
        &[
            ("compression.type", codec),
            ("linger.ms", "20"),
            ("batch.num.messages", "1000"),
        ],
    );
    let recs: Vec<Rec> = (0..RECORDS)
        .map(|i| Rec {
            key: Some(format!("k{}", i % 17).into_bytes()),
            value: Some(value(i, seed)),
            ..Rec::default()
        })
        .collect();
    let placed = produce_ok(&producer, &topic, &recs).await;
    let offsets: Vec<i64> = placed.iter().map(|(_, o)| *o).collect();
    assert_eq!(
        offsets,
        (0..RECORDS as i64).collect::<Vec<_>>(),
        "{codec}: acknowledged offsets"
    );
    let c = consumer(&bootstrap);
    let got = consume_counts(
        &c,
        &topic,
        &BTreeMap::from([(0, RECORDS)]),
        Duration::from_secs(60),
    );
    assert_no_more(&c, Duration::from_millis(300));
    for (i, (m, r)) in got[&0].iter().zip(&recs).enumerate() {
        assert_eq!(m.offset(), i as i64, "{codec}: offset");
        assert_eq!(m.key(), r.key.as_deref(), "{codec}: key of record {i}");
        assert_eq!(
            m.payload(),
            r.value.as_deref(),
            "{codec}: value of record {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_none() {
    roundtrip("none").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_gzip() {
    roundtrip("gzip").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_snappy() {
    roundtrip("snappy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_lz4() {
    roundtrip("lz4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_zstd() {
    roundtrip("zstd").await;
}
