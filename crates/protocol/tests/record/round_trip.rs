//! builder → validate_batch → decode_records gives back what was pushed, for every codec.

use bytes::Bytes;
use proptest::prelude::*;
use sluice_protocol::record::{
    BatchHeader, Record, TimestampType, ValidationLimits, crc_matches, decode_records, record_iter,
    split_batches, validate_batch,
};

use crate::support::{ALL_CODECS, Input, build, codec, input, permissive_limits};

const NOW: i64 = 1_700_000_000_000;

fn assert_matches_inputs(header: &BatchHeader, records: &[Record], inputs: &[Input]) {
    assert_eq!(records.len(), inputs.len());
    for (i, (record, input)) in records.iter().zip(inputs).enumerate() {
        assert_eq!(record.offset_delta, i32::try_from(i).unwrap());
        assert_eq!(record.offset(header), i64::try_from(i).unwrap());
        assert_eq!(record.attributes, 0);
        assert_eq!(record.key.as_deref(), input.key.as_deref());
        assert_eq!(record.value.as_deref(), input.value.as_deref());
        assert_eq!(record.timestamp(header), input.timestamp_ms);
        let headers: Vec<(Bytes, Option<Bytes>)> = input
            .headers
            .iter()
            .map(|(k, v)| (Bytes::from(k.clone()), v.clone().map(Bytes::from)))
            .collect();
        assert_eq!(record.headers, headers);
    }
}

/// Kafka's max-timestamp rule: starts at -1, first record with a strictly larger value.
fn expected_max(inputs: &[Input]) -> (i64, i32) {
    let mut max = (-1, -1);
    for (i, input) in inputs.iter().enumerate() {
        if input.timestamp_ms > max.0 {
            max = (input.timestamp_ms, i32::try_from(i).unwrap());
        }
    }
    max
}

proptest! {
    #![proptest_config(crate::support::config(128))]

    #[test]
    fn builder_validate_decode_round_trips(
        codec in codec(),
        inputs in proptest::collection::vec(input(NOW - 1_000_000..NOW + 1_000_000, 300), 1..20),
        producer in proptest::option::of((0..i64::MAX, 0..i16::MAX, 0..i32::MAX)),
    ) {
        let batch = build(codec, &inputs, producer);
        let limits = ValidationLimits {
            timestamp_before_max_ms: 1_000_000,
            timestamp_after_max_ms: 1_000_000,
            ..permissive_limits(NOW)
        };
        let summary = validate_batch(&batch, &limits).unwrap();
        prop_assert_eq!(summary.compression, codec);
        prop_assert_eq!(summary.record_count, inputs.len());
        prop_assert_eq!(
            (summary.max_timestamp, summary.offset_delta_of_max_timestamp),
            expected_max(&inputs)
        );
        prop_assert_eq!(summary.header.max_timestamp, summary.max_timestamp);
        prop_assert_eq!(summary.header.timestamp_type(), TimestampType::CreateTime);
        prop_assert!(crc_matches(&summary.header, &batch));
        if let Some((id, epoch, seq)) = producer {
            prop_assert_eq!(
                (summary.header.producer_id, summary.header.producer_epoch, summary.header.base_sequence),
                (id, epoch, seq)
            );
        }

        let records = decode_records(&batch, 64 << 20).unwrap();
        assert_matches_inputs(&summary.header, &records, &inputs);
        let iterated: Vec<Record> = record_iter(&batch, 64 << 20)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(iterated, records);
    }

    #[test]
    fn any_timestamps_round_trip_through_wrapping_deltas(
        codec in codec(),
        inputs in proptest::collection::vec(input(any::<i64>(), 8), 1..8),
    ) {
        let batch = build(codec, &inputs, None);
        let summary = validate_batch(&batch, &permissive_limits(0)).unwrap();
        prop_assert_eq!(
            (summary.max_timestamp, summary.offset_delta_of_max_timestamp),
            expected_max(&inputs)
        );
        let records = decode_records(&batch, 1 << 20).unwrap();
        assert_matches_inputs(&summary.header, &records, &inputs);
    }

    #[test]
    fn split_batches_returns_each_batch_whole(
        batches in proptest::collection::vec(
            (codec(), proptest::collection::vec(input(Just(NOW), 64), 1..5)),
            1..5,
        ),
    ) {
        let built: Vec<Bytes> = batches.iter().map(|(c, inputs)| build(*c, inputs, None)).collect();
        let all = Bytes::from(built.concat());
        let parts: Vec<&[u8]> = split_batches(&all).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(parts.len(), built.len());
        for (part, original) in parts.into_iter().zip(&built) {
            prop_assert_eq!(part, &original[..]);
            prop_assert!(validate_batch(&all.slice_ref(part), &permissive_limits(NOW)).is_ok());
        }
    }
}

#[test]
fn every_codec_round_trips_large_batches() {
    // 100 records of 1 KiB: several snappy/lz4 blocks.
    let inputs: Vec<Input> = (0..100)
        .map(|i| Input {
            key: Some(format!("key-{i}").into_bytes()),
            value: Some(
                (0..1024)
                    .map(|j| ((i * 31 + j * 7) % 64) as u8 + b' ')
                    .collect(),
            ),
            headers: vec![("idx".to_owned(), Some(vec![i as u8]))],
            timestamp_ms: NOW + i64::from(i),
        })
        .collect();
    for codec in ALL_CODECS {
        let batch = build(codec, &inputs, Some((1, 0, 0)));
        let summary = validate_batch(&batch, &permissive_limits(NOW)).unwrap();
        assert_eq!(summary.record_count, 100);
        assert_eq!(summary.offset_delta_of_max_timestamp, 99);
        let records = decode_records(&batch, 1 << 20).unwrap();
        assert_matches_inputs(&summary.header, &records, &inputs);
    }
}
