//! Topic configs through rdkafka's admin API: a change applies to the live partition at
//! once and survives a restart.

use std::time::Duration;

use rdkafka::Message;
use rdkafka::admin::{AlterConfig, ResourceSpecifier};
use rdkafka::message::Timestamp;
use rdkafka::producer::FutureRecord;
use sluice_e2e::{Broker, unique_topic};

use crate::common::{
    admin, admin_opts, consume_counts, consumer, create_topic, producer, wait_topic_ready,
};

async fn timestamp_type(bootstrap: &str, topic: &str) -> String {
    let described = admin(bootstrap)
        .describe_configs([&ResourceSpecifier::Topic(topic)], &admin_opts())
        .await
        .expect("DescribeConfigs request");
    let resource = described[0].as_ref().expect("describe topic");
    resource
        .get("message.timestamp.type")
        .and_then(|e| e.value.clone())
        .expect("message.timestamp.type described")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_change_applies_live_and_survives_restart() {
    let mut broker = Broker::start_default();
    let b = broker.bootstrap();
    let topic = unique_topic("cfg-live");
    create_topic(&b, &topic, 1).await;
    wait_topic_ready(&b, &topic, 1);
    assert_eq!(timestamp_type(&b, &topic).await, "CreateTime");

    let alter = AlterConfig::new(ResourceSpecifier::Topic(&topic))
        .set("message.timestamp.type", "LogAppendTime");
    let res = admin(&b)
        .alter_configs([&alter], &admin_opts())
        .await
        .expect("AlterConfigs request");
    assert!(res[0].is_ok(), "alter: {res:?}");

    // A record with an old CreateTime is stamped with the broker's clock now.
    let p = producer(&b, &[]);
    let old = chrono_free_now_ms() - 3_000_000;
    p.send(
        FutureRecord::to(&topic)
            .payload("x")
            .key("k")
            .timestamp(old),
        Duration::from_secs(30),
    )
    .await
    .expect("produce");
    let c = consumer(&b);
    let got = consume_counts(&c, &topic, &[(0, 1)].into(), Duration::from_secs(30));
    let message = &got[&0][0];
    match message.timestamp() {
        Timestamp::LogAppendTime(ts) => assert!(
            ts > old + 2_000_000,
            "append time {ts} is the broker's clock"
        ),
        other => panic!("expected LogAppendTime, got {other:?}"),
    }

    broker.restart();
    let b = broker.bootstrap();
    assert_eq!(
        timestamp_type(&b, &topic).await,
        "LogAppendTime",
        "the override survives a restart"
    );
}

fn chrono_free_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `compression.type=zstd`: an uncompressed batch is stored zstd-compressed, with the
/// same records; `producer` keeps what came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_side_recompression_follows_compression_type() {
    use sluice_protocol::record::{BatchHeader, Compression, RecordBatchBuilder, decode_records};

    let broker = Broker::start_default();
    let mut client = sluice_client::Client::connect(&broker.bootstrap())
        .await
        .expect("connect");
    for (topic, setting, stored) in [
        (unique_topic("zstd-topic"), "zstd", Compression::Zstd),
        (unique_topic("producer-topic"), "producer", Compression::Lz4),
        (
            unique_topic("plain-topic"),
            "uncompressed",
            Compression::None,
        ),
    ] {
        client
            .create_topic(
                &topic,
                1,
                1,
                &[("compression.type".to_owned(), setting.to_owned())],
            )
            .await
            .expect("create topic");
        let batch = RecordBatchBuilder::new(Compression::Lz4)
            .push(Some(b"k1"), Some(&[7u8; 2000]), &[("h", Some(b"v"))], 1_000)
            .push(None, Some(b"second"), &[], 1_001)
            .build();
        let sent = decode_records(&batch, 1 << 20).expect("decode sent");
        client.produce(&topic, 0, batch, -1).await.expect("produce");
        let fetched = client
            .fetch(&topic, 0, 0, 1000, 1 << 20)
            .await
            .expect("fetch");
        let header = BatchHeader::parse(&fetched.records).expect("stored batch header");
        assert_eq!(
            header.compression(),
            Some(stored),
            "compression.type={setting}"
        );
        let stored_batch = fetched.records.slice(..header.total_len());
        assert_eq!(
            decode_records(&stored_batch, 1 << 20).expect("decode stored"),
            sent
        );
    }
}

/// A compacted topic refuses records without a key, as Kafka does (INVALID_RECORD).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_topic_refuses_null_keys() {
    use sluice_protocol::ResponseError;
    use sluice_protocol::record::{Compression, RecordBatchBuilder};

    let broker = Broker::start_default();
    let mut client = sluice_client::Client::connect(&broker.bootstrap())
        .await
        .expect("connect");
    let topic = unique_topic("compact-keys");
    client
        .create_topic(
            &topic,
            1,
            1,
            &[("cleanup.policy".to_owned(), "compact".to_owned())],
        )
        .await
        .expect("create topic");
    let keyless = RecordBatchBuilder::new(Compression::None)
        .push(None, Some(b"v"), &[], 1_000)
        .build();
    match client.produce(&topic, 0, keyless, -1).await {
        Err(sluice_client::ClientError::Kafka { error, .. }) => {
            assert_eq!(error, ResponseError::InvalidRecord)
        }
        other => panic!("expected INVALID_RECORD, got {other:?}"),
    }
    let keyed = RecordBatchBuilder::new(Compression::None)
        .push(Some(b"k"), Some(b"v"), &[], 1_000)
        .build();
    assert_eq!(
        client
            .produce(&topic, 0, keyed, -1)
            .await
            .expect("keyed record"),
        0
    );
}

/// A request for millions of partitions is refused with INVALID_PARTITIONS instead of
/// exhausting the node; the node keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_partition_counts_are_refused() {
    use sluice_protocol::ResponseError;

    let broker = Broker::start_default();
    let mut client = sluice_client::Client::connect(&broker.bootstrap())
        .await
        .expect("connect");
    let topic = unique_topic("huge");
    for result in [
        client.create_topic(&topic, i32::MAX, 1, &[]).await,
        client.create_topic(&topic, 1_000_000, 1, &[]).await,
    ] {
        match result {
            Err(sluice_client::ClientError::Kafka { error, .. }) => {
                assert_eq!(error, ResponseError::InvalidPartitions)
            }
            other => panic!("expected INVALID_PARTITIONS, got {other:?}"),
        }
    }
    client
        .create_topic(&topic, 3, 1, &[])
        .await
        .expect("a sane topic");
}
