//! Admin: create and delete topics and their error codes.

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::types::RDKafkaErrorCode;
use sluice_e2e::{Broker, unique_topic, wait_until};

use crate::common::{OP_TIMEOUT, admin, admin_opts, consumer, wait_topic_ready};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_delete_topics() {
    let broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap);
    let topic = unique_topic("adm");

    let res = admin
        .create_topics(
            &[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))],
            &admin_opts(),
        )
        .await
        .expect("CreateTopics");
    assert_eq!(res, vec![Ok(topic.clone())]);
    wait_topic_ready(&bootstrap, &topic, 3);

    // Creating it again fails with TopicAlreadyExists.
    let res = admin
        .create_topics(
            &[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))],
            &admin_opts(),
        )
        .await
        .expect("CreateTopics (again)");
    assert_eq!(
        res,
        vec![Err((topic.clone(), RDKafkaErrorCode::TopicAlreadyExists))]
    );

    // Delete it.
    let res = admin
        .delete_topics(&[&topic], &admin_opts())
        .await
        .expect("DeleteTopics");
    assert_eq!(res, vec![Ok(topic.clone())]);
    let c = consumer(&bootstrap);
    let gone = wait_until(OP_TIMEOUT, || {
        c.fetch_metadata(None, std::time::Duration::from_secs(5))
            .map(|md| !md.topics().iter().any(|t| t.name() == topic))
            .unwrap_or(false)
    });
    assert!(gone, "deleted topic still listed in metadata");

    // Deleting an unknown topic fails with UnknownTopicOrPartition.
    let unknown = unique_topic("nosuch");
    let res = admin
        .delete_topics(&[&unknown], &admin_opts())
        .await
        .expect("DeleteTopics (unknown)");
    assert_eq!(
        res,
        vec![Err((unknown, RDKafkaErrorCode::UnknownTopicOrPartition))]
    );

    // The name can be reused after deletion.
    let res = admin
        .create_topics(
            &[NewTopic::new(&topic, 2, TopicReplication::Fixed(1))],
            &admin_opts(),
        )
        .await
        .expect("CreateTopics (recreate)");
    assert_eq!(res, vec![Ok(topic.clone())]);
    wait_topic_ready(&bootstrap, &topic, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_several_topics_in_one_request() {
    let broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap);
    let names: Vec<String> = (0..4).map(|i| unique_topic(&format!("multi{i}"))).collect();
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| NewTopic::new(n, i as i32 + 1, TopicReplication::Fixed(1)))
        .collect();
    let res = admin
        .create_topics(&topics, &admin_opts())
        .await
        .expect("CreateTopics");
    let mut res: Vec<_> = res.into_iter().map(|r| r.expect("created")).collect();
    res.sort();
    let mut want = names.clone();
    want.sort();
    assert_eq!(res, want);
    for (i, n) in names.iter().enumerate() {
        wait_topic_ready(&bootstrap, n, i + 1);
    }
}

/// CreateTopics validation errors, as Kafka reports them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_validation_errors() {
    let broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap);
    let cases: Vec<(String, i32, i32, RDKafkaErrorCode)> = vec![
        ("bad/name".to_owned(), 1, 1, RDKafkaErrorCode::InvalidTopic),
        ("..".to_owned(), 1, 1, RDKafkaErrorCode::InvalidTopic),
        ("a".repeat(250), 1, 1, RDKafkaErrorCode::InvalidTopic),
        (
            unique_topic("zero-parts"),
            0,
            1,
            RDKafkaErrorCode::InvalidPartitions,
        ),
        (
            unique_topic("rf3"),
            1,
            3,
            RDKafkaErrorCode::InvalidReplicationFactor,
        ),
    ];
    for (name, parts, rf, want) in cases {
        let res = admin
            .create_topics(
                &[NewTopic::new(&name, parts, TopicReplication::Fixed(rf))],
                &admin_opts(),
            )
            .await;
        match res {
            Ok(v) => assert_eq!(
                v,
                vec![Err((name.clone(), want))],
                "create {name:?} partitions={parts} rf={rf}"
            ),
            // librdkafka validates some arguments locally; that is fine too.
            Err(e) => eprintln!("create {name:?}: rejected client-side: {e}"),
        }
    }
    // None of them exist afterwards.
    let c = consumer(&bootstrap);
    let md = c.fetch_metadata(None, OP_TIMEOUT).expect("metadata");
    // The consumer's group lookup may create `__consumer_offsets`; no other topic.
    let names: Vec<&str> = md
        .topics()
        .iter()
        .map(|t| t.name())
        .filter(|n| !n.starts_with("__"))
        .collect();
    assert!(names.is_empty(), "no topics were created: {names:?}");
}

/// A consumer's Metadata request (AllowAutoTopicCreation=false) must not create the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_metadata_does_not_auto_create() {
    let broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("noauto");
    let c = consumer(&bootstrap);
    let md = c
        .fetch_metadata(Some(&topic), OP_TIMEOUT)
        .expect("metadata for unknown topic");
    let t = md.topics().iter().find(|t| t.name() == topic);
    assert!(
        matches!(t.and_then(|t| t.error()), Some(e) if e == rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART),
        "unknown topic reported as UNKNOWN_TOPIC_OR_PARTITION: {:?}",
        t.map(|t| (t.error(), t.partitions().len()))
    );
    let all = c.fetch_metadata(None, OP_TIMEOUT).expect("all metadata");
    assert!(
        !all.topics().iter().any(|t| t.name() == topic),
        "topic was auto-created by a request that did not allow it"
    );
}
