//! Log compaction: `Log::cleanable` → `cleaner::clean` → `Log::install_cleaned`.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use sluice_protocol::record::{BatchHeader, Compression, RecordBatchBuilder, decode_records};
use sluice_storage::{Log, LogConfig, cleaner};

use crate::batch::split;
use crate::fixture::{Disk, small_config};

/// (offset, key, value) of one record.
pub type Kv = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        ..small_config()
    }
}

/// Appends one batch of `(key, value)` records with timestamp `ts`.
pub fn append_kv(log: &mut Log, codec: Compression, records: &[(u32, Option<String>)], ts: i64) {
    let mut b = RecordBatchBuilder::new(codec);
    for (k, v) in records {
        let key = format!("key-{k}");
        b.push(
            Some(key.as_bytes()),
            v.as_deref().map(str::as_bytes),
            &[],
            ts,
        );
    }
    let mut bytes = b.build().to_vec();
    log.append(&mut bytes, ts).unwrap();
}

/// Every record from the log start to the log end, and the batches' offset ranges.
pub fn read_all(log: &Log) -> (Vec<Kv>, Vec<(i64, i64)>) {
    let mut out = Vec::new();
    let mut ranges = Vec::new();
    let mut at = log.log_start_offset();
    while at < log.log_end_offset() {
        let slice = log.read(at, 1 << 20, true).unwrap();
        assert!(!slice.is_empty(), "empty read at {at}");
        for (base, last, bytes) in split(&slice.bytes) {
            let header = BatchHeader::parse(&bytes).unwrap();
            for r in decode_records(&Bytes::from(bytes), 1 << 24).unwrap() {
                let offset = r.offset(&header);
                assert!(offset >= base && offset <= last);
                out.push((
                    offset,
                    r.key.map(|k| k.to_vec()),
                    r.value.map(|v| v.to_vec()),
                ));
            }
            ranges.push((base, last));
        }
        at = slice.next_offset;
    }
    (out, ranges)
}

/// Runs clean + install until nothing is dirty; returns the number of rounds.
pub fn compact(log: &mut Log, now: i64, lag: i64, delete_retention: i64, cap: usize) -> usize {
    let mut rounds = 0;
    while let Some(plan) = log.cleanable(now, lag) {
        assert!(plan.dirty_ratio() > 0.0 && plan.dirty_ratio() <= 1.0);
        let done = cleaner::clean(&plan, now, delete_retention, cap).unwrap();
        let before = log.cleaned_up_to();
        let outcome = log.install_cleaned(done).unwrap();
        assert_eq!(outcome.segments_skipped, 0);
        assert!(log.cleaned_up_to() > before, "no progress");
        rounds += 1;
        assert!(rounds < 1000, "does not converge");
    }
    rounds
}

/// The compacted view of `records` below `sealed_end`: the latest record per key
/// (dropping tombstones when `drop_tombstones`), and everything at or above it.
pub fn expected(records: &[Kv], sealed_end: i64, drop_tombstones: bool) -> Vec<Kv> {
    let mut latest: BTreeMap<&Option<Vec<u8>>, i64> = BTreeMap::new();
    for (o, k, _) in records.iter().filter(|r| r.0 < sealed_end) {
        latest.insert(k, *o);
    }
    records
        .iter()
        .filter(|(o, k, v)| {
            *o >= sealed_end || (latest.get(k) == Some(o) && !(drop_tombstones && v.is_none()))
        })
        .cloned()
        .collect()
}

/// Reads at every offset return the batch holding it, or the first batch after it.
fn assert_every_offset_reads(log: &Log, ranges: &[(i64, i64)]) {
    for offset in log.log_start_offset()..log.log_end_offset() {
        let got = log.read(offset, 1, true).unwrap();
        let want = ranges.iter().find(|(_, last)| *last >= offset).unwrap();
        assert_eq!(
            (got.base_offset, got.next_offset),
            (want.0, want.1 + 1),
            "{offset}"
        );
        let loc = log.locate(offset).unwrap();
        assert_eq!(loc.base_offset, want.0);
    }
}

fn fill(log: &mut Log, codec: Compression, batches: usize, keys: u32, ts0: i64) {
    for i in 0..batches {
        let recs: Vec<_> = (0..3)
            .map(|j| {
                let k = (i as u32 * 7 + j * 3) % keys;
                (k, Some(format!("value-{i}-{j}")))
            })
            .collect();
        append_kv(log, codec, &recs, ts0 + i as i64);
    }
}

#[test]
fn keeps_latest_record_per_key_and_offsets() {
    for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = Log::open(tmp.path(), config()).unwrap();
        fill(&mut log, codec, 80, 10, 1000);
        log.roll().unwrap();
        append_kv(&mut log, codec, &[(1, Some("active".into()))], 5000);
        let (before, _) = read_all(&log);
        let (start, leo, size) = (
            log.log_start_offset(),
            log.log_end_offset(),
            log.size_bytes(),
        );
        let sealed_end = log.log_end_offset() - 1;
        assert!(log.segment_count() > 4);

        assert_eq!(compact(&mut log, 10_000, 0, i64::MAX / 2, 1000), 1);
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (start, leo));
        assert!(log.size_bytes() < size);
        let (after, ranges) = read_all(&log);
        assert_eq!(after, expected(&before, sealed_end, false), "{codec}");
        assert_every_offset_reads(&log, &ranges);
        // Idempotent: nothing dirty any more.
        assert!(log.cleanable(10_000, 0).is_none());

        // Reopen (clean and unclean) keeps the result.
        log.close().unwrap();
        let log = Log::open(tmp.path(), config()).unwrap();
        assert_eq!(read_all(&log).0, after);
        drop(log);
        let log = Log::open(tmp.path(), config()).unwrap();
        assert_eq!(read_all(&log).0, after);
        assert_eq!(log.log_end_offset(), leo);
        assert!(
            log.cleanable(10_000, 0).is_none(),
            "cleaner offset persisted"
        );
    }
}

#[test]
fn tombstones_stay_for_delete_retention_then_go() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), config()).unwrap();
    let v = |s: &str| Some(s.to_string());
    append_kv(
        &mut log,
        Compression::None,
        &[(100, v("a")), (101, v("b"))],
        999,
    );
    fill(&mut log, Compression::None, 30, 6, 1000);
    append_kv(
        &mut log,
        Compression::None,
        &[(100, None), (101, None)],
        2000,
    );
    log.roll().unwrap();
    let (before, _) = read_all(&log);
    let sealed_end = log.log_end_offset();
    // Tombstones at ts 2000, retention 5000: kept at now = 3000.
    compact(&mut log, 3000, 0, 5000, 100);
    let (after, _) = read_all(&log);
    assert_eq!(after, expected(&before, sealed_end, false));
    assert_eq!(after.iter().filter(|r| r.2.is_none()).count(), 2);

    // New dirty data, later: the tombstones expire.
    fill(&mut log, Compression::None, 5, 6, 3000);
    log.roll().unwrap();
    let (before, _) = read_all(&log);
    let sealed_end = log.log_end_offset();
    compact(&mut log, 8000, 0, 5000, 100);
    let (after, ranges) = read_all(&log);
    assert_eq!(after, expected(&before, sealed_end, true));
    assert_eq!(after.iter().filter(|r| r.2.is_none()).count(), 0);
    assert_every_offset_reads(&log, &ranges);
}

#[test]
fn min_compaction_lag_is_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), config()).unwrap();
    fill(&mut log, Compression::None, 40, 5, 1000);
    log.roll().unwrap();
    let split_ts = 1000 + 20;
    fill(&mut log, Compression::None, 40, 5, 10_000);
    log.roll().unwrap();
    let (before, _) = read_all(&log);
    let now = 20_000;
    // Everything newer than now - lag stays, so does what lies in a segment with it.
    assert!(log.cleanable(now, now - 500).is_none());
    compact(&mut log, now, now - split_ts - 30, i64::MAX / 2, 100);
    let (after, _) = read_all(&log);
    assert!(after.len() < before.len());
    let old: Vec<_> = before.iter().filter(|r| r.0 >= 120).cloned().collect();
    let kept: Vec<_> = after.iter().filter(|r| r.0 >= 120).cloned().collect();
    assert_eq!(old, kept, "records of recent segments are untouched");
}

#[test]
fn tiny_key_map_converges_over_rounds() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), config()).unwrap();
    fill(&mut log, Compression::Lz4, 60, 7, 1000);
    log.roll().unwrap();
    let (before, _) = read_all(&log);
    let sealed_end = log.log_end_offset();
    let rounds = compact(&mut log, 10_000, 0, i64::MAX / 2, 2);
    assert!(rounds > 2, "{rounds}");
    let (after, ranges) = read_all(&log);
    assert_eq!(after, expected(&before, sealed_end, false));
    assert_every_offset_reads(&log, &ranges);
}

fn cleaned_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(".cleaned"))
        .collect()
}

#[test]
fn crash_before_rename_leaves_old_data_and_after_rename_new_data() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), config()).unwrap();
    fill(&mut log, Compression::None, 60, 5, 1000);
    log.roll().unwrap();
    log.sync().unwrap();
    let (before, _) = read_all(&log);
    let plan = log.cleanable(10_000, 0).unwrap();
    let done = cleaner::clean(&plan, 10_000, i64::MAX / 2, 100).unwrap();
    let files = cleaned_files(tmp.path());
    assert!(!files.is_empty());
    // Crash: the cleaned files exist, nothing was renamed.
    std::mem::forget(done);
    drop(log);
    let log = Log::open(tmp.path(), config()).unwrap();
    assert!(cleaned_files(tmp.path()).is_empty());
    assert_eq!(read_all(&log).0, before);

    // Crash right after one rename (index files already unlinked).
    let plan = log.cleanable(10_000, 0).unwrap();
    let done = cleaner::clean(&plan, 10_000, i64::MAX / 2, 100).unwrap();
    let first = cleaned_files(tmp.path()).into_iter().min().unwrap();
    let target = first.with_extension(""); // strip ".cleaned"
    std::mem::forget(done);
    drop(log);
    std::fs::remove_file(target.with_extension("index")).unwrap();
    std::fs::remove_file(target.with_extension("timeindex")).unwrap();
    std::fs::rename(&first, &target).unwrap();
    let mut log = Log::open(tmp.path(), config()).unwrap();
    let (mid, ranges) = read_all(&log);
    assert!(mid.len() < before.len());
    assert_every_offset_reads(&log, &ranges);
    // Cleaning again converges to the same result as an uninterrupted clean.
    let sealed_end = log.log_end_offset();
    compact(&mut log, 10_000, 0, i64::MAX / 2, 100);
    assert_eq!(read_all(&log).0, expected(&before, sealed_end, false));
}

#[test]
fn install_skips_segments_removed_meanwhile() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), config()).unwrap();
    fill(&mut log, Compression::None, 60, 5, 1000);
    log.roll().unwrap();
    let plan = log.cleanable(10_000, 0).unwrap();
    let done = cleaner::clean(&plan, 10_000, i64::MAX / 2, 100).unwrap();
    let rewritten = done.base_offsets().count();
    let second = log.segment_base_offsets().nth(1).unwrap();
    log.delete_records(second).unwrap();
    let outcome = log.install_cleaned(done).unwrap();
    assert_eq!(outcome.segments_skipped, 1);
    assert_eq!(outcome.segments_installed, rewritten - 1);
    assert!(cleaned_files(tmp.path()).is_empty());
    let (_, ranges) = read_all(&log);
    assert_every_offset_reads(&log, &ranges);
}

#[test]
fn reads_taken_before_install_stay_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), config()).unwrap();
    fill(&mut log, Compression::None, 40, 4, 1000);
    log.roll().unwrap();
    let held = log.read(0, 1 << 20, true).unwrap();
    let copy = held.bytes.to_vec();
    let handle = log.sync_handle();
    compact(&mut log, 10_000, 0, i64::MAX / 2, 100);
    assert_eq!(&held.bytes[..], &copy[..]);
    handle.run().unwrap();
    log.mark_synced(&handle);
    assert!(!split(&held.bytes).is_empty());
}

mod model {
    //! Model-based test of the whole log at record level: random keyed appends
    //! (tombstones included), rolls, syncs, reopens, compactions to convergence
    //! (small key maps too), cleans that race appends and rolls, crashes between clean
    //! and install, crashes that lose the unsynced tail, truncations of the tail,
    //! DeleteRecords and retention by size, against the list of every record appended
    //! and still in range; on real files or on the in-memory backend.
    //!
    //! Always: the log holds a subset of the model's records at their offsets, the
    //! latest record of every key, everything in the active segment, and the model's
    //! log start and end. After a compaction to convergence the sealed part is exactly
    //! the latest record per key among the records below the active segment. After a
    //! crash the log is a prefix holding everything synced.

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Append {
            records: Vec<(u32, bool)>,
            codec: u8,
        },
        Roll,
        Compact {
            cap: usize,
        },
        CleanRacingAppends {
            cap: usize,
            appends: Vec<Vec<(u32, bool)>>,
            roll: bool,
        },
        CrashMidClean,
        Reopen {
            clean: bool,
        },
        Sync,
        /// Drop the log unclosed and cut the last segment file somewhere after what
        /// was synced.
        CrashLosingTail {
            cut_at: f64,
        },
        /// Truncate at a point between the cleaner offset and the log end.
        Truncate {
            at: f64,
        },
        DeleteRecords {
            at: f64,
        },
        RetainBytes {
            fraction: f64,
        },
    }

    fn records() -> impl Strategy<Value = Vec<(u32, bool)>> {
        prop::collection::vec((0u32..8, prop::bool::weighted(0.15)), 1..6)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (records(), 0u8..3).prop_map(|(records, codec)| Op::Append { records, codec }),
            2 => Just(Op::Roll),
            2 => prop_oneof![1usize..4, Just(1000)].prop_map(|cap| Op::Compact { cap }),
            1 => (prop_oneof![1usize..4, Just(1000)], prop::collection::vec(records(), 0..4),
                any::<bool>())
                .prop_map(|(cap, appends, roll)| Op::CleanRacingAppends { cap, appends, roll }),
            1 => Just(Op::CrashMidClean),
            1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
            1 => Just(Op::Sync),
            1 => (0.0f64..=1.0).prop_map(|cut_at| Op::CrashLosingTail { cut_at }),
            1 => (0.0f64..=1.0).prop_map(|at| Op::Truncate { at }),
            1 => (0.0f64..=1.0).prop_map(|at| Op::DeleteRecords { at }),
            1 => (0.0f64..=1.0).prop_map(|fraction| Op::RetainBytes { fraction }),
        ]
    }

    const NOW: i64 = 1_000_000;
    const FOREVER: i64 = i64::MAX / 4;

    struct Model {
        records: Vec<Kv>,
        next_value: u64,
        log_start: i64,
        log_end: i64,
        /// Offsets below this were synced.
        synced: i64,
        /// The active segment's base and file length at the last sync.
        synced_tail: (i64, u64),
    }

    impl Model {
        fn append(&mut self, log: &mut Log, records: &[(u32, bool)], codec: u8) {
            let codec = [Compression::None, Compression::Lz4, Compression::Zstd][codec as usize];
            let base = log.log_end_offset();
            let recs: Vec<(u32, Option<String>)> = records
                .iter()
                .map(|&(k, tomb)| {
                    self.next_value += 1;
                    (k, (!tomb).then(|| format!("v{}", self.next_value)))
                })
                .collect();
            append_kv(log, codec, &recs, NOW - 10_000);
            self.log_end = log.log_end_offset();
            for (i, (k, v)) in recs.into_iter().enumerate() {
                self.records.push((
                    base + i as i64,
                    Some(format!("key-{k}").into_bytes()),
                    v.map(String::into_bytes),
                ));
            }
        }

        /// Forgets the records at and above `log_end`.
        fn truncate(&mut self, log_end: i64) {
            self.records.retain(|r| r.0 < log_end);
            self.log_end = log_end;
            self.synced = self.synced.min(log_end);
        }

        /// Forgets the records below `log_start`.
        fn advance_start(&mut self, log_start: i64) {
            self.records.retain(|r| r.0 >= log_start);
            self.log_start = log_start;
        }

        /// Forgets the records compaction removed, so that a compacted segment made
        /// active again by a truncation is expected to hold only what it holds.
        fn forget_compacted(&mut self, log: &Log) {
            let (got, _) = read_all(log);
            let present: std::collections::BTreeSet<i64> = got.iter().map(|r| r.0).collect();
            let cleaned = log.cleaned_up_to();
            self.records
                .retain(|r| r.0 >= cleaned || present.contains(&r.0));
        }

        fn check(&self, log: &Log, converged: bool) {
            assert_eq!(log.log_end_offset(), self.log_end);
            assert_eq!(log.log_start_offset(), self.log_start);
            let (mut got, ranges) = read_all(log);
            // A read returns the batch holding the log start whole.
            got.retain(|r| r.0 >= self.log_start);
            let active = log.segment_base_offsets().last().unwrap();
            let all: BTreeMap<i64, &Kv> = self.records.iter().map(|r| (r.0, r)).collect();
            for r in &got {
                assert_eq!(all.get(&r.0), Some(&r), "unknown record {r:?}");
            }
            let must = expected(&self.records, active, false);
            let mut latest: BTreeMap<&Option<Vec<u8>>, i64> = BTreeMap::new();
            for r in &self.records {
                latest.insert(&r.1, r.0);
            }
            // Compaction removes records below the cleaner offset only; a truncation
            // can make a compacted segment the active one again.
            let untouched_from = active.max(log.cleaned_up_to());
            for r in &must {
                if r.0 >= untouched_from || latest.get(&r.1) == Some(&r.0) {
                    assert!(got.contains(r), "missing {r:?}");
                }
            }
            if converged {
                assert_eq!(got, must);
            }
            assert_every_offset_reads(log, &ranges);
        }
    }

    fn run(segment_bytes: u64, ops: Vec<Op>, disk: Disk) {
        let config = LogConfig {
            segment_bytes,
            ..small_config()
        };
        let mut log = disk.open(config);
        let mut model = Model {
            records: Vec::new(),
            next_value: 0,
            log_start: 0,
            log_end: 0,
            synced: 0,
            synced_tail: (0, 0),
        };
        for op in ops {
            let mut converged = false;
            match op {
                Op::Append { records, codec } => model.append(&mut log, &records, codec),
                Op::Roll => log.roll().unwrap(),
                Op::Compact { cap } => {
                    compact(&mut log, NOW, 0, FOREVER, cap);
                    converged = true;
                }
                Op::CleanRacingAppends { cap, appends, roll } => {
                    if let Some(plan) = log.cleanable(NOW, 0) {
                        let done = cleaner::clean(&plan, NOW, FOREVER, cap).unwrap();
                        for (i, recs) in appends.iter().enumerate() {
                            model.append(&mut log, recs, (i % 3) as u8);
                        }
                        if roll {
                            log.roll().unwrap();
                        }
                        log.install_cleaned(done).unwrap();
                    }
                }
                Op::CrashMidClean => {
                    if let Some(plan) = log.cleanable(NOW, 0) {
                        std::mem::forget(cleaner::clean(&plan, NOW, FOREVER, 2).unwrap());
                    }
                    drop(log);
                    log = disk.open(config);
                }
                Op::Reopen { clean } => {
                    if clean {
                        log.close().unwrap();
                    } else {
                        drop(log);
                    }
                    log = disk.open(config);
                }
                Op::Sync => {
                    log.sync().unwrap();
                    model.synced = model.log_end;
                    let active = log.segment_base_offsets().last().unwrap();
                    model.synced_tail = (active, segment_len(&disk, active));
                }
                Op::CrashLosingTail { cut_at } => {
                    let active = log.segment_base_offsets().last().unwrap();
                    drop(log);
                    let len = segment_len(&disk, active);
                    let keep = if model.synced_tail.0 == active {
                        model.synced_tail.1
                    } else {
                        0
                    }
                    .min(len);
                    let cut = keep + ((len - keep) as f64 * cut_at) as u64;
                    disk.backend()
                        .open(&disk.dir().join(format!("{active:020}.log")), true)
                        .unwrap()
                        .set_len(cut)
                        .unwrap();
                    log = disk.open(config);
                    let end = log.log_end_offset();
                    assert!(end >= model.synced, "synced records lost: {end}");
                    assert!(end <= model.log_end);
                    model.truncate(end);
                    if model.log_start > end {
                        // The log restarts empty at its (durable) log start.
                        model.truncate(model.log_start);
                    }
                }
                Op::Truncate { at } => {
                    let floor = log.cleaned_up_to().max(log.log_start_offset());
                    let offset = floor + ((model.log_end - floor) as f64 * at) as i64;
                    let (_, ranges) = read_all(&log);
                    let want = ranges
                        .iter()
                        .find(|(_, last)| *last >= offset)
                        .map_or(model.log_end, |(base, _)| *base);
                    if want < floor {
                        // The batch straddles the cleaner offset: records of it may
                        // have made older ones obsolete. Replicas only truncate above
                        // what compaction may touch.
                        model.check(&log, false);
                        continue;
                    }
                    match log.truncate_to(offset) {
                        Ok(end) => {
                            assert_eq!(end, want);
                            model.truncate(end);
                            let active = log.segment_base_offsets().last().unwrap();
                            if active != model.synced_tail.0 {
                                // A sealed segment became the active one: where its
                                // synced part ends is known only if all of it is.
                                if model.synced >= end {
                                    model.synced_tail = (active, segment_len(&disk, active));
                                } else {
                                    model.synced_tail = (active, 0);
                                    model.synced = model.synced.min(active);
                                }
                            }
                        }
                        Err(sluice_storage::TruncateError::BelowLogStart { .. }) => {
                            assert!(want < model.log_start);
                        }
                        Err(e) => panic!("truncate: {e}"),
                    }
                }
                Op::DeleteRecords { at } => {
                    let target =
                        model.log_start + ((model.log_end - model.log_start) as f64 * at) as i64;
                    assert_eq!(log.delete_records(target).unwrap(), target);
                    model.advance_start(target);
                }
                Op::RetainBytes { fraction } => {
                    let limit = (log.size_bytes() as f64 * fraction) as i64;
                    let out = log.enforce_retention(NOW, -1, limit).unwrap();
                    assert!(log.size_bytes() as i64 >= limit.min(log.size_bytes() as i64));
                    model.advance_start(out.log_start_offset);
                }
            }
            model.check(&log, converged);
            model.forget_compacted(&log);
        }
    }

    fn segment_len(disk: &Disk, base: i64) -> u64 {
        disk.backend()
            .open(&disk.dir().join(format!("{base:020}.log")), false)
            .unwrap()
            .len()
            .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn compaction_matches_model(
            segment_bytes in prop_oneof![Just(300u64), Just(700), Just(2048)],
            ops in prop::collection::vec(op(), 1..50),
            memory in any::<bool>(),
        ) {
            let [std, mem] = Disk::both();
            run(segment_bytes, ops, if memory { mem } else { std });
        }
    }
}
