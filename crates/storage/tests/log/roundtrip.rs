//! Append/read round trips, index lookups, ranges, KIP-74, sync bookkeeping.

use sluice_storage::{AppendError, Log, LogConfig, ReadError};

use crate::batch;
use crate::fixture::{Disk, append, append_varied, assert_reads_match, small_config};

#[test]
fn empty_dir_is_empty_log_at_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("topic-0");
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(log.dir(), dir);
    assert!(dir.join("00000000000000000000.log").exists());
    assert!(log.read(0, 100, true).unwrap().is_empty());
    assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
    assert_eq!(log.max_timestamp_batch().unwrap(), None);
}

#[test]
fn appends_and_reads_back_across_many_segments() {
    for disk in Disk::both() {
        appends_and_reads_back_on(&disk);
    }
}

fn appends_and_reads_back_on(disk: &Disk) {
    let mut log = disk.open(small_config());
    let model = append_varied(&mut log, 120);
    assert!(log.segment_count() > 10, "{} segments", log.segment_count());
    assert_eq!(
        log.size_bytes(),
        model.iter().map(|b| b.bytes.len() as u64).sum::<u64>()
    );
    // Offsets are contiguous.
    for w in model.windows(2) {
        assert_eq!(w[1].base, w[0].last + 1);
    }
    assert_reads_match(&log, &model);

    // Big reads concatenate to the whole log, one segment at a time.
    let mut offset = 0;
    let mut all = Vec::new();
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20, false).unwrap();
        assert!(!r.is_empty());
        let batches = batch::split(&r.bytes);
        assert_eq!(batches[0].0, r.base_offset);
        assert_eq!(batches.last().unwrap().1 + 1, r.next_offset);
        all.extend_from_slice(&r.bytes);
        offset = r.next_offset;
    }
    let want: Vec<u8> = model.iter().flat_map(|b| b.bytes.clone()).collect();
    assert_eq!(all, want);
    // Segments named by base offset, 20 digits.
    let names: Vec<String> = disk
        .file_names()
        .into_iter()
        .filter(|n| n.ends_with(".log"))
        .collect();
    let bases: Vec<i64> = log.segment_base_offsets().collect();
    assert_eq!(
        names,
        bases
            .iter()
            .map(|b| format!("{b:020}.log"))
            .collect::<Vec<_>>()
    );
}

#[test]
fn every_offset_found_with_sparse_and_dense_indexes() {
    for (interval, disk) in [0, 1, 100, 4096, u32::MAX]
        .into_iter()
        .flat_map(|i| Disk::both().map(|d| (i, d)))
    {
        let config = LogConfig {
            segment_bytes: 8192,
            index_interval_bytes: interval,
            segment_index_bytes: 1024,
        };
        let mut log = disk.open(config);
        let model = append_varied(&mut log, 80);
        assert_reads_match(&log, &model);
        log.roll().unwrap();
        assert_reads_match(&log, &model);
    }
}

#[test]
fn full_index_rolls_the_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1 << 30,
        index_interval_bytes: 0,
        segment_index_bytes: 24, // two time entries: one batch + the seal entry
    };
    let mut log = Log::open(tmp.path(), config).unwrap();
    let model = append_varied(&mut log, 10);
    assert!(log.segment_count() >= 5, "{}", log.segment_count());
    assert_reads_match(&log, &model);
}

#[test]
fn reopen_keeps_everything() {
    for disk in Disk::both() {
        let mut log = disk.open(small_config());
        let model = append_varied(&mut log, 60);
        let segments = log.segment_count();
        log.close().unwrap();

        let mut log = disk.open(small_config());
        assert_eq!(log.segment_count(), segments, "{disk:?}");
        assert_reads_match(&log, &model);
        // Without close (indexes of the active segment never written): same.
        let mut model = model;
        model.extend(append_varied(&mut log, 7));
        drop(log);
        let log = disk.open(small_config());
        assert_reads_match(&log, &model);
    }
}

#[test]
fn out_of_range_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    append_varied(&mut log, 5);
    let leo = log.log_end_offset();
    for bad in [-1, leo + 1, i64::MAX, i64::MIN] {
        match log.read(bad, 1000, true) {
            Err(ReadError::OffsetOutOfRange {
                requested,
                log_start_offset,
                log_end_offset,
            }) => {
                assert_eq!((requested, log_start_offset, log_end_offset), (bad, 0, leo));
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    let at_end = log.read(leo, 1000, true).unwrap();
    assert!(at_end.is_empty());
    assert_eq!((at_end.base_offset, at_end.next_offset), (leo, leo));
    assert!(matches!(
        log.locate(leo),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn min_one_batch_returns_an_oversized_first_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    let small = append(&mut log, 1, 10, 1, 1);
    let big = append(&mut log, 3, 5000, 2, 2);
    let after = append(&mut log, 1, 10, 3, 3);

    // KIP-74: the first batch comes back whole even past max_bytes.
    let r = log.read(big.base + 1, 100, true).unwrap();
    assert_eq!(&r.bytes[..], &big.bytes[..]);
    assert_eq!(r.next_offset, after.base);
    // Without it, nothing.
    let r = log.read(big.base, 100, false).unwrap();
    assert!(r.is_empty());
    assert_eq!(r.next_offset, big.base);
    // max_bytes stops before the batch that would exceed it.
    let r = log.read(0, small.bytes.len() + 10, true).unwrap();
    assert_eq!(&r.bytes[..], &small.bytes[..]);
    let exact = small.bytes.len() + big.bytes.len();
    let r = log.read(0, exact, false).unwrap();
    assert_eq!(r.bytes.len(), exact);
    assert_eq!(r.next_offset, after.base);
    let r = log.read(0, exact + after.bytes.len(), false).unwrap();
    assert_eq!(r.next_offset, log.log_end_offset());
    // Zero bytes allowed, no minimum: empty.
    assert!(log.read(0, 0, false).unwrap().is_empty());
    assert_eq!(log.read(0, 0, true).unwrap().bytes.len(), small.bytes.len());
}

#[test]
fn batch_larger_than_segment_goes_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let a = append(&mut log, 1, 10, 1, 1);
    let big = append(&mut log, 2, 5000, 2, 2);
    let c = append(&mut log, 1, 10, 3, 3);
    assert_eq!(big.position, 0);
    assert_ne!(big.segment_base, a.segment_base);
    assert_ne!(c.segment_base, big.segment_base);
    assert_reads_match(&log, &[a, big, c]);
}

#[test]
fn append_rejects_malformed_buffers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let mut b = batch::build(2, 10, 0, 0, 0);
    let mut short = b[..b.len() - 1].to_vec();
    assert!(matches!(
        log.append(&mut short, 0),
        Err(AppendError::LengthMismatch { .. })
    ));
    let mut tiny = b[..20].to_vec();
    assert!(matches!(
        log.append(&mut tiny, 0),
        Err(AppendError::InvalidBatch(_))
    ));
    b[16] = 1; // magic
    assert!(matches!(
        log.append(&mut b, 0),
        Err(AppendError::InvalidBatch(_))
    ));
    let mut b = batch::build(2, 10, 0, 0, 0);
    b[23..27].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(matches!(
        log.append(&mut b, 0),
        Err(AppendError::InvalidLastOffsetDelta { .. })
    ));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn append_many_assigns_consecutive_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let mut a = batch::build(3, 10, 0, 0, 0);
    let mut b = batch::build(2, 10, 0, 0, 0);
    let infos = log
        .append_many([(&mut a[..], 0i64), (&mut b[..], 0i64)])
        .unwrap();
    assert_eq!(infos[0].base_offset, 0);
    assert_eq!(infos[1].base_offset, 3);
    assert_eq!(log.log_end_offset(), 5);
}

#[test]
fn sync_tracks_durable_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(log.synced_offset(), 0);
    append_varied(&mut log, 30);
    let handle = log.sync_handle();
    assert_eq!(handle.up_to_offset(), log.log_end_offset());
    // Appends while the sync runs elsewhere are not covered.
    append_varied(&mut log, 3);
    std::thread::scope(|s| s.spawn(|| handle.run().unwrap()).join().unwrap());
    log.mark_synced(&handle);
    assert_eq!(log.synced_offset(), handle.up_to_offset());
    assert!(log.synced_offset() < log.log_end_offset());
    log.sync().unwrap();
    assert_eq!(log.synced_offset(), log.log_end_offset());
}

#[test]
fn delete_removes_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-1");
    let mut log = Log::open(&dir, small_config()).unwrap();
    append_varied(&mut log, 30);
    log.delete().unwrap();
    assert!(!dir.exists());
}

#[test]
fn invalid_config_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 0,
        ..LogConfig::default()
    };
    assert!(matches!(
        Log::open(tmp.path(), config),
        Err(sluice_storage::OpenError::InvalidConfig(_))
    ));
}

#[test]
fn a_smaller_segment_size_applies_from_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    for _ in 0..4 {
        append(&mut log, 10, 100, 1_000, 1);
    }
    assert_eq!(log.segment_count(), 1);
    let config = LogConfig {
        segment_bytes: 6_000,
        ..LogConfig::default()
    };
    log.set_config(config).unwrap();
    for _ in 0..4 {
        append(&mut log, 10, 1_000, 1_000, 2);
    }
    assert!(
        log.segment_count() > 2,
        "rolled by the new size: {}",
        log.segment_count()
    );
    assert!(
        log.set_config(LogConfig {
            segment_bytes: 0,
            ..LogConfig::default()
        })
        .is_err(),
        "an unusable config is refused"
    );
    assert_eq!(log.config().segment_bytes, 6_000);
}
