//! Read path: how to get 1 MiB of a segment file into memory a fetch can send.
//!
//! One 256 MiB segment of ~64 KiB batches (64 records of 1 KiB), written once and read
//! back whole so it sits in the page cache. Each iteration reads 1 MiB starting at a
//! random batch boundary (fixed seed, the same positions for every variant):
//!
//! - `pread_copy`: `FileExt::read_exact_at` into a reused `Vec` (what `Log::read` does).
//! - `mmap_copy`: `memmap2::Mmap` of the file, range copied into a reused `Vec`.
//! - `mmap_slice_no_copy`: the mapped slice alone, for reference (no byte is touched;
//!   the cost moves to whoever reads the pages, e.g. a socket write).
//! - `uring_read_at`: tokio-uring `File::read_at` with an owned, reused buffer; one
//!   runtime for the whole bench, `iters` reads awaited one after another per sample,
//!   so the figure is per-read latency.
//!
//! `cargo bench -p sluice-benches --bench read_path -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs)]
// Mapping a file is `unsafe` (see the SAFETY note at `Mmap::map`).
#![allow(unsafe_code)]

use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_protocol::record::set_base_offset;

#[path = "support.rs"]
mod support;

use support::{Rng, batch};
const RECORDS_PER_BATCH: usize = 64;
const SEGMENT_BYTES: u64 = 256 << 20;
const READ_LEN: usize = 1 << 20;
/// Random start positions cycled through by every variant.
const POSITIONS: usize = 4096;

/// Writes `00000000000000000000.log` of whole batches up to `SEGMENT_BYTES`, reads it
/// back once (page cache), and returns batch-aligned start positions of 1 MiB ranges
/// that end inside the file.
fn write_segment(dir: &Path) -> (std::path::PathBuf, Vec<u64>) {
    let path = dir.join("00000000000000000000.log");
    let mut file = std::io::BufWriter::new(File::create(&path).unwrap());
    let mut buf = batch(RECORDS_PER_BATCH);
    let mut starts = Vec::new();
    let mut pos = 0u64;
    let mut offset = 0i64;
    while pos + buf.len() as u64 <= SEGMENT_BYTES {
        set_base_offset(&mut buf, offset);
        file.write_all(&buf).unwrap();
        starts.push(pos);
        pos += buf.len() as u64;
        offset += RECORDS_PER_BATCH as i64;
    }
    file.into_inner().unwrap().sync_all().unwrap();
    // Warm the page cache.
    let mut sink = Vec::with_capacity(pos as usize);
    File::open(&path).unwrap().read_to_end(&mut sink).unwrap();
    black_box(&sink);
    starts.retain(|&s| s + READ_LEN as u64 <= pos);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let positions = (0..POSITIONS)
        .map(|_| starts[rng.below(starts.len() as u64) as usize])
        .collect();
    (path, positions)
}

fn read_path(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let (path, positions) = write_segment(tmp.path());
    let file = File::open(&path).unwrap();
    // SAFETY: the file is private to this bench (a fresh temp dir) and never written or
    // truncated while mapped, so the mapping's bytes cannot change under the slices.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.unwrap();

    let mut g = c.benchmark_group("read_path_1MiB");
    g.throughput(Throughput::Bytes(READ_LEN as u64));

    let mut buf = vec![0u8; READ_LEN];
    let mut i = 0usize;
    g.bench_function("pread_copy", |b| {
        b.iter(|| {
            let pos = positions[i % POSITIONS];
            i += 1;
            file.read_exact_at(&mut buf, black_box(pos)).unwrap();
            black_box(&buf);
        })
    });

    let mut i = 0usize;
    g.bench_function("mmap_copy", |b| {
        b.iter(|| {
            let pos = black_box(positions[i % POSITIONS]) as usize;
            i += 1;
            buf.copy_from_slice(&mmap[pos..pos + READ_LEN]);
            black_box(&buf);
        })
    });

    let mut i = 0usize;
    g.bench_function("mmap_slice_no_copy", |b| {
        b.iter(|| {
            let pos = black_box(positions[i % POSITIONS]) as usize;
            i += 1;
            black_box(&mmap[pos..pos + READ_LEN]);
        })
    });

    match tokio_uring::Runtime::new(&tokio_uring::builder()) {
        Ok(rt) => {
            let ufile = rt.block_on(tokio_uring::fs::File::open(&path)).unwrap();
            let mut ubuf = Some(Vec::<u8>::with_capacity(READ_LEN));
            let mut i = 0usize;
            g.bench_function("uring_read_at", |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut owned = ubuf.take().unwrap();
                        let start = Instant::now();
                        for _ in 0..iters {
                            let pos = positions[i % POSITIONS];
                            i += 1;
                            owned.clear();
                            let (res, back) = ufile.read_at(owned, black_box(pos)).await;
                            assert_eq!(res.unwrap(), READ_LEN, "short read at {pos}");
                            owned = black_box(back);
                        }
                        let elapsed: Duration = start.elapsed();
                        ubuf = Some(owned);
                        elapsed
                    })
                })
            });
            rt.block_on(ufile.close()).unwrap();
        }
        Err(e) => eprintln!("uring_read_at skipped: cannot start tokio-uring here: {e}"),
    }
    g.finish();
    drop(mmap);
}

criterion_group!(benches, read_path);
criterion_main!(benches);
