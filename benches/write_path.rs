//! Write path: how to append a batch to a segment file in the page cache.
//!
//! Each iteration appends one chunk at the end of a file (no fsync), as an append to
//! the active segment does. The chunk is a RecordBatch v2 of 1 KiB records, 16 of them
//! (~16 KiB) or 1024 (~1 MiB); the same bytes for every variant:
//!
//! - `pwrite`: `FileExt::write_all_at` at the end (what `StdBackend` does).
//! - `uring_write_at`: tokio-uring `File::write_all_at` with an owned, reused buffer;
//!   one runtime for the whole bench, writes awaited one after another (per-write
//!   latency, as one shard appending to one partition).
//! - `uring_write_at_8_in_flight`: eight such writes submitted at once and awaited
//!   together (the best case for io_uring: several appends in one submission).
//! - `log_append_std`: `Log::append` on `StdBackend` (base offset rewrite, index
//!   bookkeeping and the `pwrite` behind the `FileBackend` trait).
//!
//! Files are cut back to zero (outside the timing) every 512 MiB so the disk and the
//! page cache stay bounded.
//!
//! `cargo bench -p sluice-benches --bench write_path -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs)]

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sluice_storage::{Log, LogConfig};

#[path = "support.rs"]
mod support;

use support::batch;

/// Bytes written to one file before it is cut back to zero.
const MAX_FILE_BYTES: u64 = 512 << 20;

fn open_rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap()
}

fn pwrite_timed(path: &Path, chunk: &[u8], iters: u64) -> Duration {
    let file = open_rw(path);
    let mut pos = 0u64;
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        file.write_all_at(black_box(chunk), pos).unwrap();
        total += start.elapsed();
        pos += chunk.len() as u64;
        if pos > MAX_FILE_BYTES {
            file.set_len(0).unwrap();
            pos = 0;
        }
    }
    total
}

fn log_append_timed(dir: &Path, chunk: &[u8], iters: u64) -> Duration {
    let config = LogConfig {
        segment_bytes: 128 << 20,
        ..LogConfig::default()
    };
    let mut buf = chunk.to_vec();
    let mut log = Log::open(dir, config).unwrap();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        log.append(black_box(&mut buf), 1_700_000_000_000).unwrap();
        total += start.elapsed();
        if log.size_bytes() > MAX_FILE_BYTES {
            log.delete().unwrap();
            log = Log::open(dir, config).unwrap();
        }
    }
    log.delete().unwrap();
    total
}

fn write_path(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let uring = match tokio_uring::Runtime::new(&tokio_uring::builder()) {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("uring_write_at skipped: cannot start tokio-uring here: {e}");
            None
        }
    };
    for (name, records) in [("16KiB", 16usize), ("1MiB", 1024)] {
        let chunk = batch(records);
        let mut g = c.benchmark_group("write_path");
        g.throughput(Throughput::Bytes(chunk.len() as u64));

        let path = tmp.path().join("pwrite.log");
        g.bench_with_input(BenchmarkId::new("pwrite", name), &chunk, |b, chunk| {
            b.iter_custom(|iters| pwrite_timed(&path, chunk, iters))
        });

        if let Some(rt) = &uring {
            let path = tmp.path().join("uring.log");
            g.bench_with_input(
                BenchmarkId::new("uring_write_at", name),
                &chunk,
                |b, chunk| {
                    b.iter_custom(|iters| {
                        rt.block_on(async {
                            let std_file = open_rw(&path);
                            let file =
                                tokio_uring::fs::File::from_std(std_file.try_clone().unwrap());
                            let mut owned = chunk.clone();
                            let mut pos = 0u64;
                            let mut total = Duration::ZERO;
                            for _ in 0..iters {
                                let start = Instant::now();
                                let (res, back) = file.write_all_at(owned, pos).await;
                                res.unwrap();
                                total += start.elapsed();
                                owned = black_box(back);
                                pos += chunk.len() as u64;
                                if pos > MAX_FILE_BYTES {
                                    std_file.set_len(0).unwrap();
                                    pos = 0;
                                }
                            }
                            file.close().await.unwrap();
                            total
                        })
                    })
                },
            );
        }

        if let Some(rt) = &uring {
            // Eight appends submitted together and awaited together: the best case for
            // io_uring (one submission for several writes). Throughput is per chunk.
            let path = tmp.path().join("uring8.log");
            g.bench_with_input(
                BenchmarkId::new("uring_write_at_8_in_flight", name),
                &chunk,
                |b, chunk| {
                    b.iter_custom(|iters| {
                        rt.block_on(async {
                            let std_file = open_rw(&path);
                            let file = std::rc::Rc::new(tokio_uring::fs::File::from_std(
                                std_file.try_clone().unwrap(),
                            ));
                            let mut bufs: Vec<Vec<u8>> = (0..8).map(|_| chunk.clone()).collect();
                            let mut pos = 0u64;
                            let mut total = Duration::ZERO;
                            let mut done = 0u64;
                            while done < iters {
                                let n = (iters - done).min(8) as usize;
                                let start = Instant::now();
                                let writes: Vec<_> = bufs
                                    .drain(..n)
                                    .map(|buf| {
                                        let at = pos;
                                        pos += chunk.len() as u64;
                                        let f = std::rc::Rc::clone(&file);
                                        tokio_uring::spawn(
                                            async move { f.write_all_at(buf, at).await },
                                        )
                                    })
                                    .collect();
                                for w in writes {
                                    let (res, back) = w.await.unwrap();
                                    res.unwrap();
                                    bufs.push(back);
                                }
                                total += start.elapsed();
                                done += n as u64;
                                if pos > MAX_FILE_BYTES {
                                    std_file.set_len(0).unwrap();
                                    pos = 0;
                                }
                            }
                            if let Ok(f) = std::rc::Rc::try_unwrap(file) {
                                f.close().await.unwrap();
                            }
                            total
                        })
                    })
                },
            );
        }

        let dir = tmp.path().join("log");
        g.bench_with_input(
            BenchmarkId::new("log_append_std", name),
            &chunk,
            |b, chunk| b.iter_custom(|iters| log_append_timed(&dir, chunk, iters)),
        );
        g.finish();
    }
}

criterion_group!(benches, write_path);
criterion_main!(benches);
