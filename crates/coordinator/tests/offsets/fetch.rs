use sluice_coordinator::testing::{fetch_request, s, version};
use sluice_coordinator::{GroupRequest, OffsetFetchGroup, offset_fetch_response};
use sluice_protocol::ResponseError;
use sluice_protocol::kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use sluice_protocol::kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use sluice_protocol::kafka_protocol::messages::{GroupId, OffsetFetchRequest, TopicName};

use super::{code, fetched, harness, simple_commit};

#[test]
fn all_partitions_of_a_group_come_back_sorted() {
    let mut h = harness();
    let id = simple_commit(&mut h, "g", &[("u", 1, 11), ("t", 2, 2), ("t", 0, 0)]);
    h.take(id);
    let id = h.send(
        version::FETCH,
        GroupRequest::OffsetFetch(fetch_request("g", None)),
    );
    let response = h.take(id).fetch();
    let listed: Vec<_> = response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index, p.committed_offset))
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("t".to_string(), 0, 0),
            ("t".to_string(), 2, 2),
            ("u".to_string(), 1, 11)
        ]
    );
    let first = &response.topics[0].partitions[0];
    assert_eq!(first.metadata, Some(s("m")));
    assert_eq!(first.committed_leader_epoch, -1);
}

#[test]
fn unknown_partitions_and_groups_come_back_as_minus_one() {
    let mut h = harness();
    let id = simple_commit(&mut h, "g", &[("t", 0, 5)]);
    h.take(id);
    assert_eq!(
        fetched(&mut h, "g", &[("t", 0), ("t", 1), ("x", 0)]),
        vec![5, -1, -1]
    );
    assert_eq!(fetched(&mut h, "missing", &[("t", 0)]), vec![-1]);
    let id = h.send(
        version::FETCH,
        GroupRequest::OffsetFetch(fetch_request("missing", None)),
    );
    let response = h.take(id).fetch();
    assert!(response.topics.is_empty());
    assert_eq!(response.error_code, 0);
}

#[test]
fn require_stable_waits_for_commits_in_flight() {
    let mut h = harness();
    h.auto_append = false;
    let commit = simple_commit(&mut h, "g", &[("t", 0, 9)]);
    let stable = OffsetFetchGroup {
        require_stable: true,
        member_id: None,
        member_epoch: -1,
        ..fetch_request("g", Some(&[("t", 0)]))
    };
    let waiting = h.send(version::FETCH, GroupRequest::OffsetFetch(stable));
    let plain = h.send(
        version::FETCH,
        GroupRequest::OffsetFetch(fetch_request("g", Some(&[("t", 0)]))),
    );
    assert_eq!(
        h.take(plain).fetch().topics[0].partitions[0].committed_offset,
        -1
    );
    assert!(!h.has_response(waiting));
    h.complete_append(Ok(()));
    h.take(commit);
    assert_eq!(
        h.take(waiting).fetch().topics[0].partitions[0].committed_offset,
        9
    );
}

#[test]
fn require_stable_with_nothing_in_flight_answers_at_once() {
    let mut h = harness();
    let stable = OffsetFetchGroup {
        require_stable: true,
        member_id: None,
        member_epoch: -1,
        ..fetch_request("g", None)
    };
    let id = h.send(version::FETCH, GroupRequest::OffsetFetch(stable));
    assert!(h.take(id).fetch().topics.is_empty());
}

#[test]
fn requests_split_per_group_by_version() {
    let v8 = OffsetFetchRequest::default()
        .with_require_stable(true)
        .with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s("a")))
                .with_topics(None),
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s("b")))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopics::default()
                        .with_name(TopicName(s("t")))
                        .with_partition_indexes(vec![0, 1]),
                ])),
        ]);
    let groups = OffsetFetchGroup::split(v8, 8);
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].topics, None);
    assert!(groups.iter().all(|g| g.require_stable));
    assert_eq!(groups[1].topics.as_ref().unwrap()[0].partitions, vec![0, 1]);

    let v7 = OffsetFetchRequest::default()
        .with_group_id(GroupId(s("a")))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partition_indexes(vec![3]),
        ]));
    let groups = OffsetFetchGroup::split(v7, 7);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].group_id, GroupId(s("a")));
    assert_eq!(groups[0].topics.as_ref().unwrap()[0].partitions, vec![3]);
}

fn answered_group(error: i16) -> OffsetFetchResponseGroup {
    OffsetFetchResponseGroup::default()
        .with_group_id(GroupId(s("a")))
        .with_error_code(error)
        .with_topics(vec![
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(0)
                        .with_committed_offset(4),
                ]),
        ])
}

#[test]
fn responses_assemble_per_version() {
    let v8 = offset_fetch_response(vec![answered_group(0), answered_group(0)], 8);
    assert_eq!(v8.groups.len(), 2);
    assert!(v8.topics.is_empty());

    let v7 = offset_fetch_response(vec![answered_group(0)], 7);
    assert!(v7.groups.is_empty());
    assert_eq!(v7.topics[0].partitions[0].committed_offset, 4);

    let loading = code(ResponseError::CoordinatorLoadInProgress);
    let v2 = offset_fetch_response(vec![answered_group(loading)], 2);
    assert_eq!(v2.error_code, loading);
    // v1 has no top-level error: it goes on each partition.
    let v1 = offset_fetch_response(vec![answered_group(loading)], 1);
    assert_eq!(v1.error_code, 0);
    assert_eq!(v1.topics[0].partitions[0].error_code, loading);
    assert_eq!(v1.topics[0].partitions[0].committed_offset, -1);
}
