//! Record fields: headers, null keys and values, timestamps and `offsets_for_times`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::Consumer;
use rdkafka::message::Timestamp;
use rdkafka::{Message, Offset, TopicPartitionList};
use sluice_e2e::{Broker, unique_topic};

use crate::common::{
    OP_TIMEOUT, Rec, consume_counts, consumer, create_topic, headers_of, produce_ok, producer,
    wait_topic_ready,
};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after epoch")
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_null_keys_null_values_and_timestamps() {
    let broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("fields");
    create_topic(&bootstrap, &topic, 1).await;
    wait_topic_ready(&bootstrap, &topic, 1);

    let base = now_ms() - 50 * 60 * 1000; // 50 minutes ago
    let recs = vec![
        Rec {
            key: Some(b"with-headers".to_vec()),
            value: Some(b"v0".to_vec()),
            timestamp: Some(base),
            headers: vec![
                ("h1".to_owned(), Some(b"one".to_vec())),
                ("h2".to_owned(), Some(Vec::new())),
                ("h-null".to_owned(), None),
                ("h1".to_owned(), Some(b"duplicate key".to_vec())),
                ("bin".to_owned(), Some(vec![0, 255, 1, 254])),
            ],
            ..Rec::default()
        },
        Rec {
            key: None,
            value: Some(b"null key".to_vec()),
            timestamp: Some(base + 1000),
            ..Rec::default()
        },
        Rec {
            key: Some(b"null value".to_vec()),
            value: None,
            timestamp: Some(base + 2000),
            ..Rec::default()
        },
        Rec {
            key: Some(b"empty value".to_vec()),
            value: Some(Vec::new()),
            timestamp: Some(base + 3000),
            ..Rec::default()
        },
        Rec {
            key: Some(Vec::new()),
            value: Some(b"empty key".to_vec()),
            timestamp: Some(base + 4000),
            ..Rec::default()
        },
        Rec {
            key: None,
            value: None,
            timestamp: Some(base + 5000),
            headers: vec![("only".to_owned(), None)],
            ..Rec::default()
        },
    ];
    let producer = producer(&bootstrap, &[("linger.ms", "50")]);
    let placed = produce_ok(&producer, &topic, &recs).await;
    assert_eq!(
        placed,
        (0..recs.len() as i64).map(|o| (0, o)).collect::<Vec<_>>()
    );

    let c = consumer(&bootstrap);
    let got = consume_counts(
        &c,
        &topic,
        &BTreeMap::from([(0, recs.len())]),
        Duration::from_secs(30),
    );
    for (i, (m, r)) in got[&0].iter().zip(&recs).enumerate() {
        assert_eq!(m.key(), r.key.as_deref(), "record {i}: key (None = null)");
        assert_eq!(
            m.payload(),
            r.value.as_deref(),
            "record {i}: value (None = null)"
        );
        assert_eq!(
            m.timestamp(),
            Timestamp::CreateTime(r.timestamp.expect("set")),
            "record {i}: CreateTime timestamp"
        );
        assert_eq!(headers_of(m), r.headers, "record {i}: headers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_for_times_finds_first_offset_at_or_after() {
    let broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("times");
    create_topic(&bootstrap, &topic, 2).await;
    wait_topic_ready(&bootstrap, &topic, 2);

    // Partition p, record i has timestamp base + i * 10 s (strictly increasing).
    let base = now_ms() - 55 * 60 * 1000;
    let n = 200usize;
    let recs: Vec<Rec> = (0..2 * n)
        .map(|j| Rec {
            partition: Some((j % 2) as i32),
            value: Some(format!("t{j}").into_bytes()),
            timestamp: Some(base + (j / 2) as i64 * 10_000),
            ..Rec::default()
        })
        .collect();
    // Small batches so lookups must cross batch boundaries.
    let producer = producer(&bootstrap, &[("batch.num.messages", "7")]);
    produce_ok(&producer, &topic, &recs).await;
    let c = consumer(&bootstrap);

    let cases: Vec<(i64, i64)> = vec![
        (base - 1_000_000, 0),        // before everything -> first offset
        (base, 0),                    // exact first
        (base + 10_000 * 17, 17),     // exact match
        (base + 10_000 * 17 + 1, 18), // between -> next
        (base + 10_000 * 199, 199),   // last
    ];
    for (ts, want) in cases {
        let mut tpl = TopicPartitionList::new();
        for p in 0..2 {
            tpl.add_partition_offset(&topic, p, Offset::Offset(ts))
                .expect("add");
        }
        let res = c
            .offsets_for_times(tpl, OP_TIMEOUT)
            .expect("offsets_for_times");
        for e in res.elements() {
            assert!(
                e.error().is_ok(),
                "partition {} error {:?}",
                e.partition(),
                e.error()
            );
            assert_eq!(
                e.offset(),
                Offset::Offset(want),
                "ts {ts} (base+{}) partition {}",
                ts - base,
                e.partition()
            );
        }
    }
    // After the last timestamp: no such offset (Kafka answers -1 -> End).
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(base + 10_000 * 200))
        .expect("add");
    let res = c
        .offsets_for_times(tpl, OP_TIMEOUT)
        .expect("offsets_for_times past end");
    let off = res.elements()[0].offset();
    assert!(
        matches!(off, Offset::End | Offset::Offset(-1)),
        "past the last timestamp: {off:?}"
    );

    // Earliest and latest through ListOffsets.
    for p in 0..2 {
        assert_eq!(crate::common::watermarks(&c, &topic, p), (0, n as i64));
    }
}

/// Fetching past the end: OFFSET_OUT_OF_RANGE, and the client's reset policies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_out_of_range_and_offset_reset() {
    use crate::common::consumer_with;

    let broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("oor");
    create_topic(&bootstrap, &topic, 1).await;
    wait_topic_ready(&bootstrap, &topic, 1);
    let producer = producer(&bootstrap, &[]);
    let recs: Vec<Rec> = (0..10)
        .map(|i| Rec {
            value: Some(format!("r{i}").into_bytes()),
            ..Rec::default()
        })
        .collect();
    produce_ok(&producer, &topic, &recs).await;

    let assign_at = |c: &rdkafka::consumer::BaseConsumer, off: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(off))
            .expect("add");
        c.assign(&tpl).expect("assign");
    };
    let poll_until = |c: &rdkafka::consumer::BaseConsumer| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Some(r) = c.poll(Duration::from_millis(200)) {
                return r.map(|m| (m.offset(), m.payload().map(<[u8]>::to_vec)));
            }
        }
        panic!("nothing polled within 30 s");
    };

    // auto.offset.reset=error: the out-of-range fetch surfaces as an error.
    let c = consumer(&bootstrap);
    assign_at(&c, 50);
    let r = poll_until(&c);
    let e = r.expect_err("fetching offset 50 of 10 must fail");
    assert!(
        e.to_string().to_lowercase().contains("out of range")
            // librdkafka turns the broker's OFFSET_OUT_OF_RANGE into this with reset=error:
            || e.to_string().contains("AutoOffsetReset"),
        "error names the out-of-range offset: {e}"
    );

    // earliest: starts over at 0.
    let c = consumer_with(&bootstrap, &[("auto.offset.reset", "earliest")]);
    assign_at(&c, 50);
    assert_eq!(
        poll_until(&c).expect("reset to earliest"),
        (0, Some(b"r0".to_vec()))
    );

    // latest: waits at 10 and gets the next record.
    let c = consumer_with(&bootstrap, &[("auto.offset.reset", "latest")]);
    assign_at(&c, 50);
    // Keep producing until something arrives: the first record seen must be one produced
    // after the reset (offset >= 10), never a rewind to the start.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut next = 10;
    loop {
        produce_ok(
            &producer,
            &topic,
            &[Rec {
                value: Some(format!("r{next}").into_bytes()),
                ..Rec::default()
            }],
        )
        .await;
        next += 1;
        if let Some(r) = c.poll(Duration::from_millis(300)) {
            let m = r.expect("reset to latest");
            assert!(
                m.offset() >= 10,
                "reset to latest, got offset {}",
                m.offset()
            );
            assert_eq!(m.payload(), Some(format!("r{}", m.offset()).as_bytes()));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing consumed after reset to latest"
        );
    }
}

/// A parked long-poll Fetch (fetch.wait.max.ms = 5 s) is answered as soon as data arrives,
/// not when its wait expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_fetch_is_woken_by_produce() {
    use crate::common::consumer_with;

    let broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("wake");
    create_topic(&bootstrap, &topic, 1).await;
    wait_topic_ready(&bootstrap, &topic, 1);
    let producer = producer(&bootstrap, &[("linger.ms", "0")]);
    let c = consumer_with(&bootstrap, &[("fetch.wait.max.ms", "5000")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(0))
        .expect("add");
    c.assign(&tpl).expect("assign");
    let mut worst = Duration::ZERO;
    for i in 0..6i64 {
        let t0 = std::time::Instant::now();
        produce_ok(
            &producer,
            &topic,
            &[Rec {
                value: Some(format!("w{i}").into_bytes()),
                ..Rec::default()
            }],
        )
        .await;
        let m = loop {
            if let Some(r) = c.poll(Duration::from_millis(100)) {
                break r.expect("record");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "record {i} never arrived"
            );
        };
        assert_eq!(m.offset(), i);
        // The first round includes consumer start-up (ListOffsets, first fetch).
        if i > 0 {
            worst = worst.max(t0.elapsed());
        }
    }
    assert!(
        worst < Duration::from_millis(2_500),
        "produce -> consume took {worst:?} with fetch.wait.max.ms=5000: parked fetches are \
         not woken by appends"
    );
}
