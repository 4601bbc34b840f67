use bytes::Bytes;
use proptest::prelude::*;
use sluice_coordinator::record::{
    CoordinatorRecord, GroupMetadataValue, MAX_VALUE_VERSION, OffsetCommitValue,
};
use sluice_coordinator::testing::test_config;
use sluice_coordinator::{GroupCoordinator, OffsetsRecord};

use super::{group_metadata_value, key, offset_commit_value};

/// A valid value of some version, and whether it is group metadata.
fn valid_typed_value() -> impl Strategy<Value = (bool, Vec<u8>)> {
    prop_oneof![
        (0..=MAX_VALUE_VERSION)
            .prop_flat_map(|v| (Just(v), group_metadata_value(v)))
            .prop_map(|(version, value)| (true, value.encode(version).unwrap().to_vec())),
        (0..=MAX_VALUE_VERSION)
            .prop_flat_map(|v| (Just(v), offset_commit_value(v)))
            .prop_map(|(version, value)| (false, value.encode(version).unwrap().to_vec())),
    ]
}

fn valid_value() -> impl Strategy<Value = Vec<u8>> {
    valid_typed_value().prop_map(|(_, bytes)| bytes)
}

proptest! {
    #[test]
    fn arbitrary_bytes_decode_or_fail(key in proptest::collection::vec(any::<u8>(), 0..64),
                                      value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..128))) {
        let _ = CoordinatorRecord::decode(&key, value.as_deref());
        if let Some(value) = &value {
            let _ = GroupMetadataValue::decode(value);
            let _ = OffsetCommitValue::decode(value);
        }
    }

    #[test]
    fn every_strict_prefix_of_a_value_is_an_error((is_group, value) in valid_typed_value(), cut in any::<prop::sample::Index>()) {
        let head = &value[..cut.index(value.len())];
        if is_group {
            prop_assert!(GroupMetadataValue::decode(head).is_err());
        } else {
            prop_assert!(OffsetCommitValue::decode(head).is_err());
        }
    }

    #[test]
    fn bit_flipped_values_do_not_panic(value in valid_value(), flips in proptest::collection::vec(any::<prop::sample::Index>(), 1..4)) {
        let mut value = value;
        for flip in flips {
            let bit = flip.index(value.len() * 8);
            value[bit / 8] ^= 1 << (bit % 8);
        }
        let _ = GroupMetadataValue::decode(&value);
        let _ = OffsetCommitValue::decode(&value);
    }

    #[test]
    fn loading_garbage_skips_it(records in proptest::collection::vec(
        (prop_oneof![key().prop_map(|k| k.encode().unwrap().to_vec()), proptest::collection::vec(any::<u8>(), 0..16)],
         proptest::option::of(prop_oneof![valid_value(), proptest::collection::vec(any::<u8>(), 0..32)])),
        0..16,
    )) {
        let count = records.len();
        let records = records.into_iter().map(|(key, value)| OffsetsRecord {
            key: Bytes::from(key),
            value: value.map(Bytes::from),
        });
        let coordinator = GroupCoordinator::load(&test_config(), 0, records).unwrap();
        let report = coordinator.load_report().unwrap();
        prop_assert_eq!(report.records, count);
        prop_assert!(report.skipped_malformed + report.skipped_other_types <= count);
    }
}
