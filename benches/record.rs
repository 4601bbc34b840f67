//! RecordBatch v2 benchmarks: produce-time validation per codec, record decoding and
//! CRC-32C.
//!
//! Run with `cargo bench -p sluice-benches --bench record`. Throughput is the batch's
//! wire size for validation and decoding (what a broker receives), 1 MiB for the CRC.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sluice_protocol::record::{
    Compression, RecordBatchBuilder, TimestampType, ValidationLimits, compute_crc, decode_records,
    validate_batch,
};

const NOW: i64 = 1_700_000_000_000;
const RECORDS: usize = 100;
const VALUE_LEN: usize = 1024;
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Lz4,
    Compression::Zstd,
    Compression::Snappy,
    Compression::Gzip,
];

/// 100 records of 1 KiB JSON-like values: repeated field names with values from a fixed
/// xorshift, so codecs see realistic redundancy (roughly 2-4x), not zeros or noise.
fn batch(codec: Compression) -> Bytes {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut builder = RecordBatchBuilder::new(codec);
    builder.producer(1000, 0, 0);
    for i in 0..RECORDS {
        let mut value = String::with_capacity(VALUE_LEN + 128);
        while value.len() < VALUE_LEN {
            let r = next();
            let word: String = (0..8)
                .map(|k| char::from(ALPHABET[((r >> (k * 6)) % ALPHABET.len() as u64) as usize]))
                .collect();
            value.push_str(&format!(
                "{{\"user\":\"user-{:04}\",\"event\":\"{}\",\"amount\":{},\"tag\":\"{word}\"}},",
                r % 5000,
                ["click", "view", "purchase", "scroll"][(r >> 40) as usize % 4],
                (r >> 20) % 100_000,
            ));
        }
        value.truncate(VALUE_LEN);
        let key = format!("key-{i:05}");
        builder.push(
            Some(key.as_bytes()),
            Some(value.as_bytes()),
            &[("trace-id", Some(b"0af7651916cd43dd8448eb211c80319c"))],
            NOW + i64::try_from(i).unwrap_or(0),
        );
    }
    builder.build()
}

fn limits() -> ValidationLimits {
    ValidationLimits {
        max_message_bytes: 1_048_588,
        now_ms: NOW,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: i64::MAX,
        timestamp_type: TimestampType::CreateTime,
        max_uncompressed_bytes: 16 << 20,
        compacted: false,
    }
}

fn bench_validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate_batch");
    for codec in CODECS {
        let batch = batch(codec);
        eprintln!("{codec}: {} bytes on the wire", batch.len());
        let limits = limits();
        assert!(validate_batch(&batch, &limits).is_ok());
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(codec), &batch, |b, batch| {
            b.iter(|| validate_batch(black_box(batch), &limits));
        });
    }
    group.finish();
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_records");
    for codec in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let batch = batch(codec);
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(codec), &batch, |b, batch| {
            b.iter(|| decode_records(black_box(batch), 16 << 20));
        });
    }
    group.finish();
}

fn bench_crc(c: &mut Criterion) {
    let data: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    let mut group = c.benchmark_group("crc32c");
    group.throughput(Throughput::Bytes(data.len() as u64));
    // compute_crc covers bytes 21..end of a batch; the 1 MiB after that offset is timed.
    let mut framed = vec![0u8; 21];
    framed.extend_from_slice(&data);
    group.bench_function("1MiB", |b| b.iter(|| compute_crc(black_box(&framed))));
    group.finish();
}

criterion_group!(benches, bench_validate, bench_decode, bench_crc);
criterion_main!(benches);
