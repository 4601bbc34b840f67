//! Log start offset (DeleteRecords), retention, `segment.ms`, checkpoint files and the
//! recovery point after unclean shutdowns.

use std::fs;

use sluice_storage::{DeleteRecordsError, Log, ReadError};

use crate::fixture::{
    Appended, append, append_varied, assert_reads_match, log_files, small_config,
};

fn bases(log: &Log) -> Vec<i64> {
    log.segment_base_offsets().collect()
}

/// The model batches that are still on disk once the log starts at `first_base`.
fn from_segment(model: &[Appended], first_base: i64) -> Vec<Appended> {
    model
        .iter()
        .filter(|b| b.base >= first_base)
        .cloned()
        .collect()
}

#[test]
fn delete_records_moves_the_start_and_survives_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let model = append_varied(&mut log, 60);
    let segs = bases(&log);
    assert!(segs.len() > 5);
    // Inside the fourth segment, one past a batch start so a batch straddles it.
    let straddler = model
        .iter()
        .find(|b| b.base > segs[3] && b.last > b.base)
        .unwrap();
    let new_start = straddler.base + 1;
    assert_eq!(log.delete_records(new_start).unwrap(), new_start);
    assert_eq!(log.log_start_offset(), new_start);
    let segment_of_start = *segs.iter().rev().find(|&&b| b <= new_start).unwrap();
    assert_eq!(bases(&log)[0], segment_of_start);
    let kept = from_segment(&model, segment_of_start);
    assert_eq!(
        log.size_bytes(),
        kept.iter().map(|b| b.bytes.len() as u64).sum::<u64>()
    );
    // Below the start: out of range; at it: the straddling batch, whole.
    assert!(matches!(
        log.read(new_start - 1, 1000, true),
        Err(ReadError::OffsetOutOfRange { log_start_offset, .. }) if log_start_offset == new_start
    ));
    let r = log.read(new_start, 1, true).unwrap();
    assert_eq!(r.base_offset, straddler.base);
    assert_eq!(&r.bytes[..], &straddler.bytes[..]);
    assert_reads_match(&log, &kept);
    // Never backwards, never past the end.
    assert!(matches!(
        log.delete_records(new_start - 1),
        Err(DeleteRecordsError::OffsetOutOfRange { .. })
    ));
    let leo = log.log_end_offset();
    assert!(matches!(
        log.delete_records(leo + 1),
        Err(DeleteRecordsError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.delete_records(new_start).unwrap(), new_start);
    // Timestamp search skips batches below the start.
    let found = log.offset_for_timestamp(0).unwrap().unwrap();
    assert_eq!(found.base_offset, straddler.base);

    // Clean and unclean reopen keep the start.
    log.close().unwrap();
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), new_start);
    assert_reads_match(&log, &kept);
    drop(log);
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), new_start);
    assert_reads_match(&log, &kept);
}

#[test]
fn delete_records_to_the_end_rolls_and_keeps_an_empty_active_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    append_varied(&mut log, 30);
    let leo = log.log_end_offset();
    assert_eq!(log.delete_records(leo).unwrap(), leo);
    assert_eq!(bases(&log), [leo]);
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(log_files(tmp.path()).len(), 1);
    assert!(log.read(leo, 100, true).unwrap().is_empty());
    let next = append(&mut log, 2, 10, 5, 1);
    assert_eq!((next.base, next.position), (leo, 0));
    drop(log);
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), leo);
    assert_reads_match(&log, &[next]);
}

#[test]
fn log_start_past_the_recovered_end_restarts_the_log_there() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let model = append_varied(&mut log, 20);
    let leo = log.log_end_offset();
    log.delete_records(leo - 1).unwrap();
    drop(log);
    // A crash loses the unsynced tail: the last segment is cut to nothing.
    let last = log_files(tmp.path()).pop().unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(0)
        .unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), leo - 1);
    assert_eq!(log.log_end_offset(), leo - 1);
    assert_eq!(bases(&log), [leo - 1]);
    assert_eq!(log_files(tmp.path()).len(), 1);
    let next = append(&mut log, 1, 1, 1, 1);
    assert_eq!(next.base, leo - 1);
    assert!(model.last().unwrap().last >= next.base);
}

#[test]
fn damaged_checkpoints_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let model = append_varied(&mut log, 40);
    let start = model[20].base;
    log.delete_records(start).unwrap();
    log.sync().unwrap();
    assert!(log.recovery_point() > 0);
    drop(log);
    let first_base = log_files(tmp.path())[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    let kept = from_segment(&model, first_base);
    for (name, bytes) in [
        ("log-start-offset", &b"SLCKPT01\0\0"[..]),
        ("recovery-point", &[0xffu8; 24][..]),
    ] {
        fs::write(tmp.path().join(name), bytes).unwrap();
    }
    fs::write(tmp.path().join("recovery-point.7.tmp"), b"junk").unwrap();
    let log = Log::open(tmp.path(), small_config()).unwrap();
    // Without the checkpoint the start falls back to the first segment; the damaged
    // recovery point means a full scan, which finds everything intact.
    assert_eq!(log.log_start_offset(), first_base);
    assert_eq!(log.recovery_point(), 0);
    assert_reads_match(&log, &kept);
    assert!(!tmp.path().join("recovery-point.7.tmp").exists());
    drop(log);
    for name in ["log-start-offset", "recovery-point"] {
        fs::remove_file(tmp.path().join(name)).unwrap();
    }
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_reads_match(&log, &kept);
}

#[test]
fn retention_by_time_and_size() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    // Timestamps 1000, 1010, ...
    let model = append_varied(&mut log, 60);
    let segs = bases(&log);
    let n = segs.len();
    assert!(n > 5);
    // Nothing is old enough.
    let out = log.enforce_retention(1000, 100_000, -1).unwrap();
    assert_eq!(out.segments_deleted, 0);
    // Segments whose newest batch is older than now - 200.
    let now = 1000 + 10 * 30;
    let expect_gone = segs
        .iter()
        .enumerate()
        .take_while(|&(i, _)| {
            let end = segs.get(i + 1).copied().unwrap_or(i64::MAX);
            let max = model
                .iter()
                .filter(|b| b.base >= segs[i] && b.base < end)
                .map(|b| b.max_ts)
                .max()
                .unwrap();
            now - max > 200
        })
        .count();
    assert!(expect_gone > 0 && expect_gone < n);
    let out = log.enforce_retention(now, 200, -1).unwrap();
    assert_eq!(out.segments_deleted, expect_gone);
    assert_eq!(out.log_start_offset, segs[expect_gone]);
    assert_eq!(log.log_start_offset(), segs[expect_gone]);
    let kept = from_segment(&model, segs[expect_gone]);
    assert_reads_match(&log, &kept);

    // Size: keep at most ~3 segments' worth.
    let limit = 3 * 2048;
    let out = log.enforce_retention(now, -1, limit).unwrap();
    assert!(log.size_bytes() >= limit as u64 || out.segments_deleted == 0);
    assert!(out.bytes_deleted > 0);
    // One more segment would have taken it below the limit.
    let first_size = {
        let b = bases(&log);
        let end = b.get(1).copied().unwrap_or(i64::MAX);
        kept.iter()
            .filter(|x| x.base >= b[0] && x.base < end)
            .map(|x| x.bytes.len() as u64)
            .sum::<u64>()
    };
    assert!(log.size_bytes() - first_size < limit as u64);
    let start = log.log_start_offset();
    drop(log);
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), start);
    assert_reads_match(&log, &from_segment(&model, start));
}

#[test]
fn retention_rolls_an_expired_active_segment_but_never_deletes_an_empty_one() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    append_varied(&mut log, 30);
    let leo = log.log_end_offset();
    let out = log.enforce_retention(1_000_000, 10, -1).unwrap();
    assert!(out.segments_deleted > 1);
    assert_eq!(out.log_start_offset, leo);
    assert_eq!(bases(&log), [leo]);
    assert_eq!(log.size_bytes(), 0);
    // Now empty: nothing more, even with limits of zero.
    let out = log.enforce_retention(i64::MAX, 0, 0).unwrap();
    assert_eq!(out.segments_deleted, 0);
    assert_eq!(bases(&log), [leo]);
    drop(log);
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (leo, leo));
}

#[test]
fn roll_if_due_counts_from_the_first_sighting() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    // Empty: never rolls.
    assert!(!log.roll_if_due(0, 0).unwrap());
    assert!(!log.roll_if_due(i64::MAX, 0).unwrap());
    append(&mut log, 1, 10, 1, 1);
    assert!(!log.roll_if_due(100, 50).unwrap()); // first sighting at 100
    assert!(!log.roll_if_due(150, 50).unwrap());
    assert!(!log.roll_if_due(10_000, -1).unwrap());
    assert!(log.roll_if_due(151, 50).unwrap());
    assert_eq!(log.segment_count(), 2);
    assert!(!log.roll_if_due(10_000, 50).unwrap()); // new active segment is empty
    // After reopen the active segment's age counts from its mtime.
    append(&mut log, 1, 10, 1, 1);
    drop(log);
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(!log.roll_if_due(now - 60_000, 1000).unwrap());
    assert!(log.roll_if_due(now + 60_000, 1000).unwrap());
}

#[test]
fn unclean_shutdown_scans_sealed_segments_from_the_recovery_point() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let mut model = append_varied(&mut log, 30);
    log.sync().unwrap();
    let recovery_point = log.recovery_point();
    let synced = log.synced_offset();
    assert_eq!(recovery_point, *bases(&log).last().unwrap());
    // More segments, not synced.
    model.extend(append_varied(&mut log, 40));
    assert!(bases(&log).len() > 5);
    let active_base = *bases(&log).last().unwrap();
    drop(log);
    // Flip a CRC-covered byte of a batch in a sealed segment above the recovery point.
    let victim = model
        .iter()
        .find(|b| b.segment_base > recovery_point && b.base >= synced)
        .unwrap()
        .clone();
    assert!(
        victim.segment_base < active_base,
        "victim must be in a sealed segment"
    );
    let file = tmp.path().join(format!("{:020}.log", victim.segment_base));
    let mut bytes = fs::read(&file).unwrap();
    bytes[victim.position as usize + 40] ^= 0x01;
    fs::write(&file, &bytes).unwrap();

    let log = Log::open(tmp.path(), small_config()).unwrap();
    model.retain(|b| b.base < victim.base);
    assert_eq!(log.log_end_offset(), victim.base);
    assert!(log.log_end_offset() >= synced);
    assert_reads_match(&log, &model);
    assert_eq!(*bases(&log).last().unwrap(), victim.segment_base);

    // The same damage after a clean close is not looked for in sealed segments (they
    // were synced): only the active segment is scanned.
    log.close().unwrap();
    assert!(tmp.path().join(".clean_shutdown").exists());
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert!(!tmp.path().join(".clean_shutdown").exists());
    assert_reads_match(&log, &model);
}

#[test]
fn truncate_into_a_sealed_segment_keeps_held_reads_and_survives_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let model = append_varied(&mut log, 60);
    let segs = bases(&log);
    assert!(segs.len() > 4);
    // A read of the third segment (sealed, so served from its mapping) held across
    // the truncation that cuts into it.
    let held = log.read(segs[2], 1 << 20, true).unwrap();
    let held_copy = held.bytes.to_vec();
    // Inside a multi-record batch of the third segment: the whole batch goes.
    let victim = model
        .iter()
        .find(|b| b.base > segs[2] && b.last > b.base && b.last < segs[3])
        .unwrap();
    let end = log.truncate_to(victim.base + 1).unwrap();
    assert_eq!(end, victim.base);
    assert_eq!(log.log_end_offset(), victim.base);
    assert_eq!(bases(&log), segs[..3].to_vec());
    assert_eq!(&held.bytes[..], &held_copy[..]);
    let kept: Vec<Appended> = model.iter().filter(|b| b.base < end).cloned().collect();
    assert_reads_match(&log, &kept);
    assert!(log.synced_offset() <= end);

    // Appends continue at the new end, in the segment that became active.
    let next = append(&mut log, 2, 10, 5000, 7);
    assert_eq!(next.base, end);
    assert_eq!(next.segment_base, segs[2]);
    let mut kept = kept;
    kept.push(next);
    assert_reads_match(&log, &kept);

    // Unclean and clean reopens keep exactly that.
    drop(log);
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_reads_match(&log, &kept);
    log.close().unwrap();
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_reads_match(&log, &kept);
    assert!(fs::read_dir(tmp.path()).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".truncated")
    }));
}

#[test]
fn truncate_at_and_past_the_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let model = append_varied(&mut log, 20);
    let leo = log.log_end_offset();
    assert_eq!(log.truncate_to(leo + 5).unwrap(), leo);
    assert_eq!(log.truncate_to(leo).unwrap(), leo);
    // At a batch boundary in the active segment: exactly there.
    let last = model.last().unwrap();
    assert_eq!(log.truncate_to(last.base).unwrap(), last.base);
    assert_eq!(log.log_end_offset(), last.base);
    // Below the log start: refused, nothing changes.
    let second = &model[1];
    log.delete_records(second.base + 1).unwrap();
    let err = log.truncate_to(second.base).unwrap_err();
    assert!(
        matches!(err, sluice_storage::TruncateError::BelowLogStart { .. }),
        "{err}"
    );
    // The batch holding the log start would go: refused too.
    assert!(log.truncate_to(second.base + 1).is_err());
    assert_eq!(log.log_end_offset(), last.base);
    // To the first batch boundary above the start: only the straddling batch stays.
    let third = &model[2];
    assert_eq!(log.truncate_to(third.base).unwrap(), third.base);
    assert_eq!(log.log_start_offset(), second.base + 1);
}

#[test]
fn max_timestamp_ignores_batches_below_the_log_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let first = append(&mut log, 2, 10, 9000, 1);
    let second = append(&mut log, 2, 10, 3000, 2);
    let third = append(&mut log, 2, 10, 5000, 3);
    assert_eq!(
        log.max_timestamp_batch().unwrap().unwrap().base_offset,
        first.base
    );
    log.delete_records(second.base).unwrap();
    let got = log.max_timestamp_batch().unwrap().unwrap();
    assert_eq!((got.base_offset, got.max_timestamp), (third.base, 5000));
    log.delete_records(third.last + 1).unwrap();
    assert!(log.max_timestamp_batch().unwrap().is_none());
}
