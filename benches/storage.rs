//! Storage benches: append by batch size (with and without fsync), reads of 1 MiB at
//! random offsets, index lookup, and `Log::open` of a 1 GiB log after a clean and an
//! unclean shutdown (recovery).
//!
//! `cargo bench -p sluice-benches --bench storage -- --warm-up-time 1 --measurement-time 3`
//! `cargo bench -p sluice-benches --bench storage -- recovery --warm-up-time 1 --measurement-time 5`

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sluice_storage::{Log, LogConfig};

#[path = "support.rs"]
mod support;

use support::{Rng, batch};

fn bench_config() -> LogConfig {
    LogConfig {
        segment_bytes: 128 << 20,
        ..LogConfig::default()
    }
}

/// Appends in a fresh log, recreated (outside the timing) every `max_log_bytes` so the
/// disk does not fill.
fn append_timed(iters: u64, records: usize, sync: bool) -> Duration {
    const MAX_LOG_BYTES: u64 = 512 << 20;
    let mut buf = batch(records);
    let mut tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), bench_config()).unwrap();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        log.append(black_box(&mut buf), 1_700_000_000_000).unwrap();
        if sync {
            log.sync().unwrap();
        }
        total += start.elapsed();
        if log.size_bytes() > MAX_LOG_BYTES {
            log.delete().unwrap();
            tmp = tempfile::tempdir().unwrap();
            log = Log::open(tmp.path(), bench_config()).unwrap();
        }
    }
    drop(log);
    total
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    for records in [1usize, 16, 256, 1024] {
        let bytes = batch(records).len() as u64;
        g.throughput(Throughput::Bytes(bytes));
        g.bench_with_input(
            BenchmarkId::new("no_fsync", format!("{}KiB", records)),
            &records,
            |b, &records| b.iter_custom(|iters| append_timed(iters, records, false)),
        );
    }
    g.finish();

    let mut g = c.benchmark_group("append_sync");
    g.sample_size(10);
    for records in [1usize, 16, 256, 1024] {
        let bytes = batch(records).len() as u64;
        g.throughput(Throughput::Bytes(bytes));
        g.bench_with_input(
            BenchmarkId::new("fdatasync_each", format!("{}KiB", records)),
            &records,
            |b, &records| b.iter_custom(|iters| append_timed(iters, records, true)),
        );
    }
    g.finish();
}

/// A log of 256 MiB in 16 KiB batches of 1 KiB records.
fn filled_log() -> (tempfile::TempDir, Log) {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), bench_config()).unwrap();
    let mut buf = batch(16);
    while log.size_bytes() < 256 << 20 {
        log.append(&mut buf, 1_700_000_000_000).unwrap();
    }
    log.sync().unwrap();
    (tmp, log)
}

fn read(c: &mut Criterion) {
    let (_tmp, log) = filled_log();
    let leo = log.log_end_offset() as u64;
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Bytes(1 << 20));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    g.bench_function("random_offset_1MiB", |b| {
        b.iter(|| {
            let offset = rng.below(leo) as i64;
            black_box(log.read(black_box(offset), 1 << 20, true).unwrap())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("index");
    g.throughput(Throughput::Elements(1));
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    g.bench_function("locate_random_offset", |b| {
        b.iter(|| {
            let offset = rng.below(leo) as i64;
            black_box(log.locate(black_box(offset)).unwrap())
        })
    });
    g.finish();
}

/// A closed log of 1 GiB in 1 MiB batches (1024 records of 1 KiB) and 256 MiB segments.
fn closed_1gib_log() -> (tempfile::TempDir, LogConfig) {
    let config = LogConfig {
        segment_bytes: 256 << 20,
        ..LogConfig::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), config).unwrap();
    let mut buf = batch(1024);
    while log.size_bytes() < 1 << 30 {
        log.append(&mut buf, 1_700_000_000_000).unwrap();
    }
    log.close().unwrap();
    (tmp, config)
}

/// `Log::open` of 1 GiB: after a clean close (only the active segment is scanned) and
/// after an unclean drop with no recovery point (every segment is scanned with its
/// CRC-32C and its indexes rebuilt). The files sit in the page cache: this measures
/// the scan, not the disk.
fn recovery(c: &mut Criterion) {
    let (tmp, config) = closed_1gib_log();
    let dir = tmp.path();
    let mut g = c.benchmark_group("recovery");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(1 << 30));
    g.bench_function("open_1GiB/clean", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let log = Log::open(black_box(dir), config).unwrap();
                total += start.elapsed();
                log.close().unwrap();
            }
            total
        })
    });
    g.bench_function("open_1GiB/unclean_full_scan", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // No clean-shutdown marker and no recovery point: scan from offset 0.
                for name in [".clean_shutdown", "recovery-point"] {
                    let _ = std::fs::remove_file(dir.join(name));
                }
                let start = Instant::now();
                let log = Log::open(black_box(dir), config).unwrap();
                total += start.elapsed();
                assert_eq!(log.recovery_point(), 0);
                drop(log);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, append, read, recovery);
criterion_main!(benches);
