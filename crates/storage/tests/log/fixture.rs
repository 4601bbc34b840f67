//! Shared helpers: small configurations and an append that remembers what it wrote.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_storage::backend::MemoryBackend;
use sluice_storage::{FileBackend, Log, LogConfig, StdBackend};

use crate::batch;

/// A batch as appended: its offsets, timestamps and final bytes (base offset set).
#[derive(Debug, Clone)]
pub struct Appended {
    pub base: i64,
    pub last: i64,
    pub max_ts: i64,
    pub segment_base: i64,
    pub position: u64,
    pub bytes: Vec<u8>,
}

/// Small segments and a dense index, so a few dozen batches span many segments.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 200,
        segment_index_bytes: 4096,
    }
}

/// Appends a batch of `records` records with `value_len`-byte values and max
/// timestamp `ts`.
pub fn append(log: &mut Log, records: usize, value_len: usize, ts: i64, seed: u8) -> Appended {
    let mut b = batch::build(records, value_len, ts - 1, ts, seed);
    let info = log.append(&mut b, ts).expect("append");
    assert_eq!(info.last_offset - info.base_offset + 1, records as i64);
    Appended {
        base: info.base_offset,
        last: info.last_offset,
        max_ts: ts,
        segment_base: info.segment_base_offset,
        position: info.position,
        bytes: b,
    }
}

/// Appends `n` batches of varied sizes, timestamps 1000, 1010, ...
pub fn append_varied(log: &mut Log, n: usize) -> Vec<Appended> {
    (0..n)
        .map(|i| {
            append(
                log,
                1 + i % 4,
                (i * 37) % 300,
                1000 + 10 * i as i64,
                i as u8,
            )
        })
        .collect()
}

/// The `.log` files in `dir`, sorted.
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// The batch of `model` holding `offset`.
pub fn containing(model: &[Appended], offset: i64) -> &Appended {
    model
        .iter()
        .find(|b| b.last >= offset)
        .expect("offset below the log end")
}

/// Every read of every offset returns the batch holding it first.
pub fn assert_reads_match(log: &Log, model: &[Appended]) {
    let leo = model.last().map_or(log.log_start_offset(), |b| b.last + 1);
    assert_eq!(log.log_end_offset(), leo);
    for offset in log.log_start_offset()..leo {
        let want = containing(model, offset);
        let got = log.read(offset, 1, true).unwrap();
        assert_eq!(got.base_offset, want.base, "offset {offset}");
        assert_eq!(got.next_offset, want.last + 1, "offset {offset}");
        assert_eq!(&got.bytes[..], &want.bytes[..], "offset {offset}");
        let loc = log.locate(offset).unwrap();
        assert_eq!((loc.base_offset, loc.position), (want.base, want.position));
    }
    assert!(log.read(leo, 1 << 20, true).unwrap().is_empty());
}

/// Where a test's log lives: real files in a temporary directory, or an in-memory file
/// system, so that a test can run on both backends.
pub enum Disk {
    Std(tempfile::TempDir),
    Memory(MemoryBackend),
}

impl Disk {
    /// One of each.
    pub fn both() -> [Disk; 2] {
        [
            Disk::Std(tempfile::tempdir().unwrap()),
            Disk::Memory(MemoryBackend::new()),
        ]
    }

    pub fn dir(&self) -> PathBuf {
        match self {
            Disk::Std(tmp) => tmp.path().to_path_buf(),
            Disk::Memory(_) => PathBuf::from("/data/topic-0"),
        }
    }

    pub fn backend(&self) -> Arc<dyn FileBackend> {
        match self {
            Disk::Std(_) => StdBackend::shared(),
            Disk::Memory(m) => m.shared(),
        }
    }

    pub fn open(&self, config: LogConfig) -> Log {
        Log::open_with(&self.dir(), config, self.backend()).unwrap()
    }

    /// The names of the files in the partition directory, sorted.
    pub fn file_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .backend()
            .list_dir(&self.dir())
            .unwrap()
            .into_iter()
            .map(|n| n.into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Disk::Std(_) => "std",
            Disk::Memory(_) => "memory",
        })
    }
}
