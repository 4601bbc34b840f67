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
