//! Log cleaner bench: `cleaner::clean` + `Log::install_cleaned` of a 64 MiB log of
//! 1 KiB records with 10,000 distinct keys (batches of 16 records, 8 MiB segments, all
//! sealed), as MB/s of log compacted. Each iteration compacts a fresh copy of the log
//! (the copy and the open are not timed).
//!
//! `cargo bench -p sluice-benches --bench cleaner -- --warm-up-time 1 --measurement-time 5`

#![allow(missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_protocol::record::{Compression, RecordBatchBuilder};
use sluice_storage::{Log, LogConfig, cleaner};

const LOG_BYTES: u64 = 64 << 20;
const VALUE_LEN: usize = 1024;
const KEYS: u64 = 10_000;
const RECORDS_PER_BATCH: u64 = 16;
const TS: i64 = 1_700_000_000_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 8 << 20,
        ..LogConfig::default()
    }
}

/// Writes the uncompacted log into `dir` and closes it; returns its size.
fn build_template(dir: &Path) -> u64 {
    let mut log = Log::open(dir, config()).expect("open");
    let value = vec![0x5au8; VALUE_LEN];
    let mut n = 0u64;
    while log.size_bytes() < LOG_BYTES {
        let mut b = RecordBatchBuilder::new(Compression::None);
        for _ in 0..RECORDS_PER_BATCH {
            // A fixed permutation of the keys, so that each batch mixes them.
            let key = format!("key-{:05}", (n * 7919) % KEYS);
            b.push(Some(key.as_bytes()), Some(&value), &[], TS);
            n += 1;
        }
        let mut bytes = b.build().to_vec();
        log.append(&mut bytes, TS).expect("append");
    }
    log.roll().expect("roll");
    let size = log.size_bytes();
    log.close().expect("close");
    size
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

fn bench_clean(c: &mut Criterion) {
    let template = tempfile::tempdir().expect("tempdir");
    let size = build_template(template.path());
    let mut g = c.benchmark_group("cleaner");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(size));
    g.bench_function("clean_install_64MiB_10k_keys", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                copy_dir(template.path(), dir.path());
                let mut log = Log::open(dir.path(), config()).expect("open");
                let now = TS + 1_000;
                let start = Instant::now();
                let plan = log.cleanable(now, 0).expect("dirty");
                let done = cleaner::clean(&plan, now, 86_400_000, 1 << 20).expect("clean");
                let outcome = log.install_cleaned(done).expect("install");
                total += start.elapsed();
                assert!(outcome.bytes_after < outcome.bytes_before / 4);
                black_box(outcome);
                drop(log);
            }
            total
        });
    });
    g.finish();
}

criterion_group!(benches, bench_clean);
criterion_main!(benches);
