//! The `__consumer_offsets` record format: round trips at every schema version, and no
//! panic on any input.

mod never_panics;
mod round_trip;

use bytes::Bytes;
use proptest::prelude::*;
use sluice_coordinator::record::{
    GroupMetadataValue, MemberMetadata, OffsetCommitValue, RecordKey,
};

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn blob() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn key() -> impl Strategy<Value = RecordKey> {
    prop_oneof![
        (text(), text(), any::<i32>()).prop_map(|(group, topic, partition)| {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            }
        }),
        text().prop_map(|group| RecordKey::GroupMetadata { group }),
    ]
}

/// An offset commit value holding only what `version` can carry.
fn offset_commit_value(version: i16) -> impl Strategy<Value = OffsetCommitValue> {
    (
        any::<i64>(),
        any::<i32>(),
        text(),
        any::<i64>(),
        any::<i64>(),
    )
        .prop_map(
            move |(offset, leader_epoch, metadata, commit_timestamp_ms, expire_timestamp_ms)| {
                OffsetCommitValue {
                    offset,
                    leader_epoch: if version >= 3 { leader_epoch } else { -1 },
                    metadata,
                    commit_timestamp_ms,
                    expire_timestamp_ms: if version == 1 {
                        expire_timestamp_ms
                    } else {
                        -1
                    },
                }
            },
        )
}

fn member(version: i16) -> impl Strategy<Value = MemberMetadata> {
    (
        text(),
        proptest::option::of(text()),
        text(),
        text(),
        any::<i32>(),
        any::<i32>(),
        blob(),
        blob(),
    )
        .prop_map(
            move |(
                member_id,
                instance,
                client_id,
                client_host,
                rebalance,
                session,
                subscription,
                assignment,
            )| {
                MemberMetadata {
                    member_id,
                    group_instance_id: if version >= 3 { instance } else { None },
                    client_id,
                    client_host,
                    rebalance_timeout_ms: if version >= 1 { rebalance } else { -1 },
                    session_timeout_ms: session,
                    subscription,
                    assignment,
                }
            },
        )
}

/// A group metadata value holding only what `version` can carry.
fn group_metadata_value(version: i16) -> impl Strategy<Value = GroupMetadataValue> {
    (
        text(),
        any::<i32>(),
        proptest::option::of(text()),
        proptest::option::of(text()),
        any::<i64>(),
        proptest::collection::vec(member(version), 0..4),
    )
        .prop_map(
            move |(protocol_type, generation, protocol, leader, timestamp, members)| {
                GroupMetadataValue {
                    protocol_type,
                    generation,
                    protocol,
                    leader,
                    current_state_timestamp_ms: if version >= 2 { timestamp } else { -1 },
                    members,
                }
            },
        )
}
