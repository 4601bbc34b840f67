//! Log compaction: `Log::cleanable` → `cleaner::clean` → `Log::install_cleaned`.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use sluice_protocol::record::{BatchHeader, Compression, RecordBatchBuilder, decode_records};
use sluice_storage::{Log, LogConfig, cleaner};

use crate::batch::split;
use crate::fixture::small_config;

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
