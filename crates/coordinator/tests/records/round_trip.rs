use proptest::prelude::*;
use sluice_coordinator::record::{
    CoordinatorRecord, GroupMetadataValue, MAX_VALUE_VERSION, OffsetCommitValue, RecordKey,
    RecordValue,
};

use super::{group_metadata_value, key, offset_commit_value};

proptest! {
    #[test]
    fn keys_round_trip(key in key()) {
        prop_assert_eq!(RecordKey::decode(&key.encode().unwrap()).unwrap(), key);
    }

    #[test]
    fn offset_commit_values_round_trip_at_every_version(
        (version, value) in (0..=MAX_VALUE_VERSION).prop_flat_map(|v| (Just(v), offset_commit_value(v)))
    ) {
        let bytes = value.encode(version).unwrap();
        prop_assert_eq!(i16::from_be_bytes([bytes[0], bytes[1]]), version);
        prop_assert_eq!(OffsetCommitValue::decode(&bytes).unwrap(), value);
    }

    #[test]
    fn group_metadata_values_round_trip_at_every_version(
        (version, value) in (0..=MAX_VALUE_VERSION).prop_flat_map(|v| (Just(v), group_metadata_value(v)))
    ) {
        let bytes = value.encode(version).unwrap();
        prop_assert_eq!(GroupMetadataValue::decode(&bytes).unwrap(), value);
    }

    #[test]
    fn records_round_trip_in_the_versions_kafka_writes(
        group in "\\PC{0,8}",
        offset in offset_commit_value(3),
        metadata in group_metadata_value(3),
        tombstone in any::<bool>(),
    ) {
        for (key, value) in [
            (
                RecordKey::OffsetCommit { group: group.clone(), topic: "t".into(), partition: 1 },
                RecordValue::OffsetCommit(offset.clone()),
            ),
            (RecordKey::GroupMetadata { group: group.clone() }, RecordValue::GroupMetadata(metadata.clone())),
        ] {
            let record = CoordinatorRecord { key, value: (!tombstone).then_some(value) };
            let encoded = record.encode().unwrap();
            prop_assert_eq!(encoded.decode().unwrap(), record);
        }
    }
}

#[test]
fn strings_too_long_for_an_int16_length_do_not_encode() {
    let key = RecordKey::GroupMetadata {
        group: "x".repeat(40_000),
    };
    assert!(key.encode().is_err());
    // The flexible version (compact length) takes them.
    let value = OffsetCommitValue {
        offset: 0,
        leader_epoch: -1,
        metadata: "x".repeat(40_000),
        commit_timestamp_ms: 0,
        expire_timestamp_ms: -1,
    };
    assert!(value.encode(3).is_err());
    assert_eq!(
        OffsetCommitValue::decode(&value.encode(4).unwrap()).unwrap(),
        value
    );
}

mod consumer {
    use proptest::prelude::*;
    use sluice_coordinator::record::consumer::{
        CurrentAssignmentValue, MemberMetadataValue, TopicMetadataValue, TopicPartitions,
    };
    use sluice_coordinator::record::{
        ConsumerKey, ConsumerValue, CoordinatorRecord, RecordKey, RecordValue,
    };
    use uuid::Uuid;

    fn text() -> impl Strategy<Value = String> {
        "\\PC{0,8}"
    }

    fn partitions() -> impl Strategy<Value = TopicPartitions> {
        proptest::collection::btree_map(
            any::<u128>().prop_map(Uuid::from_u128),
            proptest::collection::btree_set(any::<i32>(), 1..4),
            0..3,
        )
    }

    /// A consumer group record: a key of each type with a matching value.
    fn record() -> impl Strategy<Value = (ConsumerKey, ConsumerValue)> {
        prop_oneof![
            (text(), any::<i32>()).prop_map(|(group, epoch)| (
                ConsumerKey::Metadata { group },
                ConsumerValue::Metadata { epoch }
            )),
            (
                text(),
                proptest::collection::vec(
                    (any::<u128>(), text(), any::<i32>()).prop_map(|(id, name, n)| {
                        TopicMetadataValue {
                            topic_id: Uuid::from_u128(id),
                            topic_name: name,
                            num_partitions: n,
                        }
                    }),
                    0..3
                )
            )
                .prop_map(|(group, topics)| (
                    ConsumerKey::PartitionMetadata { group },
                    ConsumerValue::PartitionMetadata(topics)
                )),
            (
                text(),
                text(),
                proptest::option::of(text()),
                proptest::option::of(text()),
                text(),
                proptest::collection::vec(text(), 0..3),
                proptest::option::of(text()),
                any::<i32>(),
                proptest::option::of(text()),
            )
                .prop_map(
                    |(group, member, instance, rack, client, names, regex, timeout, assignor)| (
                        ConsumerKey::MemberMetadata { group, member },
                        ConsumerValue::MemberMetadata(MemberMetadataValue {
                            instance_id: instance,
                            rack_id: rack,
                            client_id: client.clone(),
                            client_host: client,
                            subscribed_topic_names: names,
                            subscribed_topic_regex: regex,
                            rebalance_timeout_ms: timeout,
                            server_assignor: assignor,
                        })
                    )
                ),
            (text(), any::<i32>()).prop_map(|(group, assignment_epoch)| (
                ConsumerKey::TargetAssignmentMetadata { group },
                ConsumerValue::TargetAssignmentMetadata { assignment_epoch }
            )),
            (text(), text(), partitions()).prop_map(|(group, member, p)| (
                ConsumerKey::TargetAssignmentMember { group, member },
                ConsumerValue::TargetAssignmentMember(p)
            )),
            (
                text(),
                text(),
                any::<(i32, i32, i8)>(),
                partitions(),
                partitions()
            )
                .prop_map(|(group, member, (epoch, previous, state), a, r)| (
                    ConsumerKey::CurrentMemberAssignment { group, member },
                    ConsumerValue::CurrentMemberAssignment(CurrentAssignmentValue {
                        member_epoch: epoch,
                        previous_member_epoch: previous,
                        state,
                        assigned_partitions: a,
                        partitions_pending_revocation: r,
                    })
                )),
        ]
    }

    proptest! {
        #[test]
        fn consumer_group_records_round_trip((key, value) in record(), tombstone in any::<bool>()) {
            let record = CoordinatorRecord {
                key: RecordKey::Consumer(key),
                value: (!tombstone).then_some(RecordValue::Consumer(value)),
            };
            let encoded = record.encode().unwrap();
            prop_assert_eq!(encoded.decode().unwrap(), record);
        }

        #[test]
        fn truncated_consumer_group_values_are_errors((key, value) in record(), cut in any::<prop::sample::Index>()) {
            let bytes = value.encode().unwrap();
            let head = &bytes[..cut.index(bytes.len())];
            prop_assert!(ConsumerValue::decode(&key, head).is_err());
        }
    }
}
