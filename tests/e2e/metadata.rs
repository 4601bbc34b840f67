//! Metadata: advertised broker address and partition leadership.

use std::time::Duration;

use rdkafka::consumer::Consumer;
use sluice_e2e::{Broker, BrokerOptions, unique_topic};

use crate::common::{OP_TIMEOUT, consumer, create_topic, wait_topic_ready};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lists_broker_and_topic_leaders() {
    let broker = Broker::start(BrokerOptions {
        node_id: Some(7),
        ..BrokerOptions::default()
    });
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("md");
    create_topic(&bootstrap, &topic, 3).await;
    wait_topic_ready(&bootstrap, &topic, 3);

    let c = consumer(&bootstrap);
    let md = c
        .fetch_metadata(Some(&topic), OP_TIMEOUT)
        .expect("fetch metadata");
    let brokers: Vec<(i32, String, i32)> = md
        .brokers()
        .iter()
        .map(|b| (b.id(), b.host().to_owned(), b.port()))
        .collect();
    assert_eq!(
        brokers,
        vec![(7, "127.0.0.1".to_owned(), i32::from(broker.kafka_port()))],
        "exactly one advertised broker"
    );
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .expect("topic in metadata");
    assert!(t.error().is_none(), "topic error {:?}", t.error());
    let mut parts: Vec<(i32, i32, Vec<i32>, Vec<i32>)> = t
        .partitions()
        .iter()
        .map(|p| (p.id(), p.leader(), p.replicas().to_vec(), p.isr().to_vec()))
        .collect();
    parts.sort();
    assert_eq!(
        parts,
        (0..3).map(|p| (p, 7, vec![7], vec![7])).collect::<Vec<_>>(),
        "partitions with leader/replicas/isr = node id"
    );
    for p in t.partitions() {
        assert!(
            p.error().is_none(),
            "partition {} error {:?}",
            p.id(),
            p.error()
        );
    }

    // All-topics metadata includes the topic too.
    let all = c
        .fetch_metadata(None, OP_TIMEOUT)
        .expect("all-topics metadata");
    assert!(all.topics().iter().any(|t| t.name() == topic));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_auto_creates_topic_with_one_partition() {
    let broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("auto");
    // Producers ask for auto-creation (allow.auto.create.topics defaults to true there).
    let producer = crate::common::producer(&bootstrap, &[]);
    let placed = crate::common::produce_ok(
        &producer,
        &topic,
        &[crate::common::Rec {
            value: Some(b"hello".to_vec()),
            ..Default::default()
        }],
    )
    .await;
    assert_eq!(placed, vec![(0, 0)]);
    let c = consumer(&bootstrap);
    let md = c
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .expect("metadata");
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .expect("topic");
    assert_eq!(t.partitions().len(), 1, "auto-created with one partition");
    assert_eq!(t.partitions()[0].leader(), 1);
}
