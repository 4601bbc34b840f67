//! Crash consistency on the fault-injecting file system (`backend::Faulty`).
//!
//! Random operation sequences (appends of keyed records and tombstones with jittered
//! timestamps, syncs, rolls, retention, DeleteRecords, compaction rounds, clean and
//! unclean reopens) run on a `Log` over `Faulty`, with a failing sync or a power cut
//! armed somewhere among them. Then the machine crashes (unsynced state dropped, the
//! last write torn, an arbitrary part of the unsynced state written back, or only the
//! process dies), and sometimes the power is cut again during the recovery that
//! follows. After reopening the crashed file system the log must:
//!
//! - open;
//! - be a prefix of what was appended, compaction-aware: every record it holds is the
//!   one appended at that offset, and a record of the prefix is missing only when a
//!   later record of the same key in the prefix supersedes it;
//! - hold everything synced (a sync, close, retention or DeleteRecords that returned
//!   `Ok`), and the log start offset made durable;
//! - read at every offset and agree with its indexes (offset and timestamp lookups);
//! - take appends, and keep them across a clean reopen and another crash.
//!
//! After a failed sync the log must refuse every later sync: the kernel may have
//! dropped the pages that sync did not write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use proptest::prelude::*;
use sluice_protocol::record::{BatchHeader, Compression, RecordBatchBuilder, decode_records};
use sluice_storage::backend::{Crash, Faulty, MemoryBackend};
use sluice_storage::{Log, LogConfig, cleaner};

use crate::batch::split;

const NOW: i64 = 1_000_000;
const FOREVER: i64 = i64::MAX / 4;

/// `(key, value)` of a record; both optional (tombstones, unkeyed records).
type Record = (Option<Vec<u8>>, Option<Vec<u8>>);

#[derive(Debug, Clone)]
enum Op {
    Append {
        /// `(key, tombstone)`; `None` keys are never compacted away.
        records: Vec<(Option<u8>, bool)>,
        codec: u8,
        /// Max timestamp = NOW - ts_back.
        ts_back: i64,
    },
    Sync,
    Roll,
    Retention {
        retention_ms: i64,
        retention_bytes: i64,
    },
    DeleteRecords {
        at: f64,
    },
    Compact {
        cap: usize,
    },
    /// Truncate at a point between the cleaner offset and the log end.
    Truncate {
        at: f64,
    },
    Reopen {
        clean: bool,
    },
    /// Arms a failing sync (the `nth` from now), unless a fault is armed already.
    FailSyncSoon {
        nth: u64,
    },
    /// Arms a power cut after `after` more mutating operations, unless a fault is
    /// armed already.
    PowerCutSoon {
        after: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let records = prop::collection::vec(
        (
            prop_oneof![6 => (0u8..6).prop_map(Some), 1 => Just(None)],
            prop::bool::weighted(0.15),
        ),
        1..5,
    );
    prop_oneof![
        12 => (records, 0u8..3, 0i64..6000)
            .prop_map(|(records, codec, ts_back)| Op::Append { records, codec, ts_back }),
        3 => Just(Op::Sync),
        2 => Just(Op::Roll),
        1 => (
            prop_oneof![Just(-1i64), 1000i64..6000],
            prop_oneof![2 => Just(-1i64), 1 => 200i64..4000],
        )
            .prop_map(|(retention_ms, retention_bytes)| Op::Retention { retention_ms, retention_bytes }),
        1 => (0.0f64..=1.0).prop_map(|at| Op::DeleteRecords { at }),
        3 => prop_oneof![1usize..4, Just(1000)].prop_map(|cap| Op::Compact { cap }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => (0.0f64..=1.0).prop_map(|at| Op::Truncate { at }),
        1 => (1u64..6).prop_map(|nth| Op::FailSyncSoon { nth }),
        1 => (0u64..40).prop_map(|after| Op::PowerCutSoon { after }),
    ]
}

fn crash_kind() -> impl Strategy<Value = Crash> {
    prop_oneof![
        Just(Crash::DropUnsynced),
        (0.0f64..=1.0).prop_map(|keep| Crash::TearLastWrite { keep }),
        any::<u64>().prop_map(|seed| Crash::Partial { seed }),
        Just(Crash::ProcessOnly),
    ]
}

fn config() -> impl Strategy<Value = LogConfig> {
    (
        prop::sample::select(vec![400u64, 900, 2048]),
        prop::sample::select(vec![0u32, 100, 400]),
        prop::sample::select(vec![48u32, 4096]),
    )
        .prop_map(
            |(segment_bytes, index_interval_bytes, segment_index_bytes)| LogConfig {
                segment_bytes,
                index_interval_bytes,
                segment_index_bytes,
            },
        )
}

/// What the log must be, as far as the operations that returned tell.
#[derive(Debug, Default)]
struct Model {
    /// Every record appended, by offset.
    records: BTreeMap<i64, Record>,
    /// Every batch appended: base offset → (last offset, max timestamp). Compaction
    /// keeps a batch's header, so a batch read back must match one of these.
    batches: BTreeMap<i64, (i64, i64)>,
    log_end: i64,
    /// Offsets below this were synced and must survive any crash.
    synced: i64,
    /// The log start offset made durable (it cannot go back).
    start_durable: i64,
    /// The largest log start offset that may have been made durable.
    start_max: i64,
    next_value: u64,
    /// A fault was armed: operations may fail from now on.
    armed: bool,
    /// A sync of the log failed: every later one must fail too.
    sync_failed: bool,
    /// A truncation failed half way: even a process crash may have lost its tail.
    tail_ambiguous: bool,
}

impl Model {
    fn append(&mut self, log: &mut Log, records: &[(Option<u8>, bool)], codec: u8, ts: i64) {
        let codec = [Compression::None, Compression::Lz4, Compression::Zstd][usize::from(codec)];
        let mut b = RecordBatchBuilder::new(codec);
        let mut recs = Vec::new();
        for &(key, tombstone) in records {
            self.next_value += 1;
            let key = key.map(|k| format!("key-{k}").into_bytes());
            let value = (!tombstone).then(|| format!("v{}", self.next_value).into_bytes());
            b.push(key.as_deref(), value.as_deref(), &[], ts);
            recs.push((key, value));
        }
        let mut bytes = b.build().to_vec();
        match log.append(&mut bytes, ts) {
            Ok(info) => {
                for (i, r) in recs.into_iter().enumerate() {
                    self.records.insert(info.base_offset + i as i64, r);
                }
                self.batches
                    .insert(info.base_offset, (info.last_offset, ts));
                self.log_end = info.log_end_offset;
            }
            Err(e) => assert!(self.armed, "append failed with no fault armed: {e}"),
        }
    }
}

fn expect_ok<T, E: std::fmt::Display>(m: &Model, what: &str, r: Result<T, E>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            assert!(m.armed, "{what} failed with no fault armed: {e}");
            None
        }
    }
}

/// One compaction round, as the broker runs it (plan, clean, install).
fn compact_once(log: &mut Log, cap: usize) -> Result<(), String> {
    let Some(plan) = log.cleanable(NOW, 0) else {
        return Ok(());
    };
    let done = cleaner::clean(&plan, NOW, FOREVER, cap).map_err(|e| e.to_string())?;
    log.install_cleaned(done).map_err(|e| e.to_string())?;
    Ok(())
}

/// Runs `ops` on a log over `faulty`. The run stops at a power cut, and at a reopen
/// after a failed sync (the broker takes the partition offline instead).
fn run_ops(dir: &Path, config: LogConfig, faulty: &Faulty, m: &mut Model, ops: Vec<Op>) {
    let mut log = Log::open_with(dir, config, faulty.shared()).unwrap();
    for op in ops {
        if faulty.is_cut() {
            return;
        }
        let (start, end) = (log.log_start_offset(), log.log_end_offset());
        match op {
            Op::Append {
                records,
                codec,
                ts_back,
            } => m.append(&mut log, &records, codec, NOW - ts_back),
            Op::Sync => {
                let r = log.sync();
                if m.sync_failed {
                    assert!(r.is_err(), "a sync succeeded after one failed");
                } else if expect_ok(m, "sync", r).is_some() {
                    m.synced = end;
                } else if faulty.sync_failed() {
                    m.sync_failed = true;
                }
            }
            Op::Roll => {
                expect_ok(m, "roll", log.roll());
            }
            Op::Retention {
                retention_ms,
                retention_bytes,
            } => {
                // Retention persists the new log start before removing segments; if it
                // fails, the new start may or may not be durable.
                m.start_max = m.start_max.max(end);
                let r = log.enforce_retention(NOW, retention_ms, retention_bytes);
                if let Some(out) = expect_ok(m, "retention", r) {
                    m.start_durable = m.start_durable.max(out.log_start_offset);
                    m.start_max = m.start_max.max(out.log_start_offset);
                }
            }
            Op::DeleteRecords { at } => {
                let target = start + ((end - start) as f64 * at) as i64;
                m.start_max = m.start_max.max(target);
                if let Some(new) = expect_ok(m, "delete_records", log.delete_records(target)) {
                    assert_eq!(new, target);
                    m.start_durable = m.start_durable.max(target);
                }
            }
            Op::Compact { cap } => {
                expect_ok(m, "compaction", compact_once(&mut log, cap));
            }
            Op::Truncate { at } => {
                // Replicas truncate only above what compaction may have relied on.
                let floor = log.cleaned_up_to().max(start);
                let offset = floor + ((end - floor) as f64 * at) as i64;
                let holding = m
                    .batches
                    .range(..=offset)
                    .next_back()
                    .filter(|(_, (last, _))| *last >= offset)
                    .map_or(offset, |(base, _)| *base);
                if holding < floor {
                    continue;
                }
                match log.truncate_to(offset) {
                    Ok(new_end) => {
                        assert_eq!(new_end, holding.min(end));
                        m.records.retain(|o, _| *o < new_end);
                        m.batches.retain(|b, _| *b < new_end);
                        m.log_end = new_end;
                        m.synced = m.synced.min(new_end);
                    }
                    Err(e) => {
                        // Half done: anything from the cut on may be gone, synced or
                        // not (it was asked to go); the rest must survive.
                        assert!(m.armed, "truncate failed with no fault armed: {e}");
                        m.synced = m.synced.min(holding);
                        m.tail_ambiguous = true;
                        return;
                    }
                }
            }
            Op::Reopen { clean } => {
                // After a failed sync (of any file) the page cache cannot be trusted:
                // reopening in the same boot is outside the model (see `run`).
                if faulty.sync_failed() {
                    return;
                }
                if clean {
                    match log.close() {
                        Ok(()) => m.synced = end,
                        Err(e) => {
                            assert!(m.armed, "close failed with no fault armed: {e}");
                            if faulty.sync_failed() {
                                return;
                            }
                        }
                    }
                } else {
                    drop(log);
                }
                match Log::open_with(dir, config, faulty.shared()) {
                    Ok(l) => log = l,
                    Err(e) => {
                        assert!(m.armed, "reopen failed with no fault armed: {e}");
                        return;
                    }
                }
                // A reopen of an intact file system (the process restarted) loses
                // nothing.
                assert_eq!(log.log_end_offset(), m.log_end, "reopen lost records");
            }
            Op::FailSyncSoon { nth } => {
                if !m.armed {
                    m.armed = true;
                    faulty.fail_sync(nth);
                }
            }
            Op::PowerCutSoon { after } => {
                if !m.armed {
                    m.armed = true;
                    faulty.power_cut_after(after);
                }
            }
        }
        if !faulty.is_cut() && !m.armed {
            assert_eq!(log.log_end_offset(), m.log_end);
        }
    }
}

/// A batch as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReadBatch {
    base: i64,
    last: i64,
    max_ts: i64,
}

/// Every record and batch from the log start to the log end, read batch by batch.
fn read_all(log: &Log) -> (Vec<(i64, Record)>, Vec<ReadBatch>) {
    let mut records = Vec::new();
    let mut batches = Vec::new();
    let mut at = log.log_start_offset();
    while at < log.log_end_offset() {
        let slice = log.read(at, 1 << 20, true).unwrap();
        assert!(!slice.is_empty(), "empty read at {at}");
        for (base, last, bytes) in split(&slice.bytes) {
            let header = BatchHeader::parse(&bytes).unwrap();
            batches.push(ReadBatch {
                base,
                last,
                max_ts: header.max_timestamp,
            });
            for r in decode_records(&Bytes::from(bytes), 1 << 24).unwrap() {
                records.push((
                    r.offset(&header),
                    (r.key.map(|k| k.to_vec()), r.value.map(|v| v.to_vec())),
                ));
            }
        }
        assert!(slice.next_offset > at);
        at = slice.next_offset;
    }
    (records, batches)
}

/// The checks after a crash and reopen; returns what the log holds.
fn check_recovered(log: &Log, m: &Model, how: Crash) -> Vec<(i64, Record)> {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    assert!(
        end >= m.synced,
        "synced records lost: log end {end} < synced {}",
        m.synced
    );
    assert!(
        end <= m.log_end.max(start),
        "log end {end} past what was appended"
    );
    if how == Crash::ProcessOnly && !m.tail_ambiguous {
        assert_eq!(end, m.log_end.max(start), "a process crash lost records");
    }
    assert!(
        start >= m.start_durable,
        "log start {start} went back below {}",
        m.start_durable
    );
    assert!(
        start <= m.start_max.max(m.start_durable),
        "log start {start} moved past anything asked ({})",
        m.start_max
    );

    let (records, batches) = read_all(log);
    // Every record held is the one appended at its offset.
    let mut held = BTreeMap::new();
    for (offset, r) in &records {
        assert_eq!(m.records.get(offset), Some(r), "record at {offset}");
        assert!(held.insert(*offset, r).is_none(), "offset {offset} twice");
    }
    // Every record of the prefix is held unless superseded within the prefix.
    for (&offset, (key, _)) in m.records.range(start..end) {
        if held.contains_key(&offset) {
            continue;
        }
        let superseded =
            key.is_some() && m.records.range(offset + 1..end).any(|(_, (k, _))| k == key);
        assert!(superseded, "record at {offset} ({key:?}) lost");
    }
    // Batches keep their headers; reads and lookups agree with them.
    for b in &batches {
        assert_eq!(
            m.batches.get(&b.base),
            Some(&(b.last, b.max_ts)),
            "batch at {}",
            b.base
        );
    }
    check_lookups(log, &batches);
    records
}

/// Offset and timestamp lookups find the batches a linear scan does.
fn check_lookups(log: &Log, batches: &[ReadBatch]) {
    let start = log.log_start_offset();
    for offset in start..log.log_end_offset() {
        let want = batches.iter().find(|b| b.last >= offset).unwrap();
        let got = log.read(offset, 1, true).unwrap();
        assert_eq!(
            (got.base_offset, got.next_offset),
            (want.base, want.last + 1),
            "read at {offset}"
        );
        let loc = log.locate(offset).unwrap();
        assert_eq!((loc.base_offset, loc.last_offset), (want.base, want.last));
    }
    let mut stamps: Vec<i64> = batches
        .iter()
        .flat_map(|b| [b.max_ts - 1, b.max_ts, b.max_ts + 1])
        .collect();
    stamps.extend([i64::MIN, 0, NOW + 1]);
    for ts in stamps {
        let want = batches.iter().find(|b| b.max_ts >= ts && b.last >= start);
        let got = log.offset_for_timestamp(ts).unwrap();
        assert_eq!(
            got.map(|b| (b.base_offset, b.last_offset, b.max_timestamp)),
            want.map(|b| (b.base, b.last, b.max_ts)),
            "offset_for_timestamp({ts})"
        );
    }
    if let Some(max) = batches.iter().map(|b| b.max_ts).max() {
        let got = log.max_timestamp_batch().unwrap().unwrap();
        assert!(got.max_timestamp >= max);
    }
}

/// After the checks: appends work, and survive a clean reopen and a crash.
fn check_appends_after_recovery(dir: &Path, config: LogConfig, disk: &MemoryBackend, mut log: Log) {
    let mut m = Model {
        log_end: log.log_end_offset(),
        next_value: 1 << 40,
        ..Model::default()
    };
    let before = read_all(&log).0;
    for i in 0..3u8 {
        m.append(&mut log, &[(Some(i), false), (None, false)], i % 3, NOW);
    }
    let mut want = before.clone();
    want.extend(m.records.iter().map(|(o, r)| (*o, r.clone())));
    assert_eq!(read_all(&log).0, want);
    log.close().unwrap();
    let log = Log::open_with(dir, config, disk.shared()).unwrap();
    assert_eq!(read_all(&log).0, want);
    drop(log);
    let crashed = disk.crash(Crash::DropUnsynced);
    let log = Log::open_with(dir, config, crashed.shared()).unwrap();
    assert_eq!(read_all(&log).0, want, "closed log lost records in a crash");
}

fn run(config: LogConfig, ops: Vec<Op>, how: Crash, cut_recovery: Option<u64>) {
    let dir = PathBuf::from("/data/topic-0");
    let faulty = Faulty::new();
    let mut m = Model::default();
    run_ops(&dir, config, &faulty, &mut m, ops);
    // After a failed fsync the page cache cannot be trusted (the pages it dropped look
    // clean): only a reboot, which drops the cache, gives a state to recover from. A
    // process-only crash then is outside the model.
    let how = if how == Crash::ProcessOnly && faulty.sync_failed() {
        Crash::DropUnsynced
    } else {
        how
    };
    let mut disk = faulty.crash_with(how);
    if let Some(after) = cut_recovery {
        // The power goes again during recovery; the log must recover from that too.
        let again = Faulty::wrap(disk.clone());
        again.power_cut_after(after);
        disk = match Log::open_with(&dir, config, again.shared()) {
            Err(_) => again.crash_with(how),
            // Recovery finished first: the same files, without the armed cut.
            Ok(_) => again.crash_with(Crash::ProcessOnly),
        };
    }
    let log = Log::open_with(&dir, config, disk.shared()).unwrap();
    check_recovered(&log, &m, how);
    check_appends_after_recovery(&dir, config, &disk, log);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn recovers_a_prefix_holding_everything_synced(
        config in config(),
        ops in prop::collection::vec(op(), 1..60),
        how in crash_kind(),
        cut_recovery in prop::option::weighted(0.2, 0u64..30),
    ) {
        run(config, ops, how, cut_recovery);
    }
}

#[test]
fn a_new_partition_directory_survives_a_crash_once_synced() {
    let disk = MemoryBackend::new();
    let dir = Path::new("/data/new-topic-0");
    let mut log = Log::open_with(dir, LogConfig::default(), disk.shared()).unwrap();
    let mut m = Model::default();
    m.append(&mut log, &[(Some(1), false)], 0, NOW);
    log.sync().unwrap();
    let crashed = disk.crash(Crash::DropUnsynced);
    let log = Log::open_with(dir, LogConfig::default(), crashed.shared()).unwrap();
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn a_failed_sync_fails_every_later_sync() {
    let faulty = Faulty::new();
    let dir = Path::new("/data/t-0");
    let mut log = Log::open_with(dir, LogConfig::default(), faulty.shared()).unwrap();
    let mut m = Model {
        armed: true,
        ..Model::default()
    };
    m.append(&mut log, &[(Some(1), false)], 0, NOW);
    log.sync().unwrap();
    m.append(&mut log, &[(Some(2), false)], 0, NOW);
    faulty.fail_sync(1);
    log.sync().unwrap_err();
    m.append(&mut log, &[(Some(3), false)], 0, NOW);
    log.sync().unwrap_err();
    assert_eq!(log.synced_offset(), 1);
    log.close().unwrap_err();
    // The second record was in the pages the failed sync dropped.
    let log = Log::open_with(dir, LogConfig::default(), faulty.crash().shared()).unwrap();
    assert_eq!(log.log_end_offset(), 1);
}
