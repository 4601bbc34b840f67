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
