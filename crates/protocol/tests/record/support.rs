//! Shared strategies and helpers.

use bytes::Bytes;
use proptest::prelude::*;
use sluice_protocol::record::{
    BATCH_HEADER_LEN, Compression, RecordBatchBuilder, TimestampType, ValidationLimits, compute_crc,
};

/// Every codec Kafka defines.
pub(crate) const ALL_CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// A record as pushed into the builder.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
    pub(crate) timestamp_ms: i64,
}

pub(crate) fn codec() -> impl Strategy<Value = Compression> {
    proptest::sample::select(ALL_CODECS.to_vec())
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Compressible and incompressible payloads.
        proptest::collection::vec(any::<u8>(), 0..max),
        (0..max, any::<u8>()).prop_map(|(len, b)| vec![b; len]),
    ]
}

/// A record whose timestamp comes from `timestamp`.
pub(crate) fn input(
    timestamp: impl Strategy<Value = i64>,
    max_bytes: usize,
) -> impl Strategy<Value = Input> {
    (
        proptest::option::weighted(0.8, bytes(max_bytes)),
        proptest::option::weighted(0.9, bytes(max_bytes)),
        proptest::collection::vec(("[a-z\\-]{0,12}", proptest::option::of(bytes(32))), 0..4),
        timestamp,
    )
        .prop_map(|(key, value, headers, timestamp_ms)| Input {
            key,
            value,
            headers,
            timestamp_ms,
        })
}

/// Builds a batch from `inputs`.
pub(crate) fn build(
    codec: Compression,
    inputs: &[Input],
    producer: Option<(i64, i16, i32)>,
) -> Bytes {
    let mut builder = RecordBatchBuilder::new(codec);
    if let Some((id, epoch, seq)) = producer {
        builder.producer(id, epoch, seq);
    }
    for input in inputs {
        let headers: Vec<(&str, Option<&[u8]>)> = input
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        builder.push(
            input.key.as_deref(),
            input.value.as_deref(),
            &headers,
            input.timestamp_ms,
        );
    }
    builder.build()
}

/// Limits that accept any timestamp.
pub(crate) fn permissive_limits(now_ms: i64) -> ValidationLimits {
    ValidationLimits {
        max_message_bytes: usize::MAX,
        now_ms,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: i64::MAX,
        timestamp_type: TimestampType::CreateTime,
        max_uncompressed_bytes: 64 << 20,
        compacted: false,
    }
}

/// Rewrites the CRC of a whole batch so that edits inside the covered bytes reach the
/// record decoder.
pub(crate) fn fix_crc(batch: &mut [u8]) {
    let crc = compute_crc(batch);
    if batch.len() >= BATCH_HEADER_LEN {
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Replaces the records section of a batch built by [`RecordBatchBuilder`] with
/// `payload` written by `codec`, fixing length, attributes and CRC.
pub(crate) fn with_payload(batch: &[u8], codec: Compression, payload: &[u8]) -> Bytes {
    let mut out = batch[..BATCH_HEADER_LEN].to_vec();
    out.extend_from_slice(payload);
    let batch_length = i32::try_from(out.len() - 12).unwrap();
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = (i16::from_be_bytes([out[21], out[22]]) & !0x07) | i16::from(codec.id());
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    fix_crc(&mut out);
    Bytes::from(out)
}

/// Proptest configuration with `cases` cases, unless `PROPTEST_CASES` is set.
pub(crate) fn config(cases: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        base
    } else {
        ProptestConfig { cases, ..base }
    }
}
