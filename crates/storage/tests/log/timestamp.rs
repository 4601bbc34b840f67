//! offset_for_timestamp and max_timestamp_batch against a linear scan.

use sluice_storage::Log;

use crate::fixture::{Appended, Disk, append, small_config};

fn expected(model: &[Appended], ts: i64) -> Option<&Appended> {
    model.iter().find(|b| b.max_ts >= ts)
}

fn check_all(log: &Log, model: &[Appended]) {
    for ts in -5..=(model.iter().map(|b| b.max_ts).max().unwrap_or(0) + 3) {
        let got = log.offset_for_timestamp(ts).unwrap();
        match (expected(model, ts), got) {
            (None, None) => {}
            (Some(want), Some(got)) => {
                assert_eq!(got.base_offset, want.base, "ts {ts}");
                assert_eq!(got.last_offset, want.last, "ts {ts}");
                assert_eq!(got.max_timestamp, want.max_ts);
                assert_eq!(&got.bytes[..], &want.bytes[..]);
            }
            (want, got) => panic!("ts {ts}: want {want:?}, got {got:?}"),
        }
    }
    let max = model.iter().map(|b| b.max_ts).max();
    let first_max = max.and_then(|m| model.iter().find(|b| b.max_ts == m));
    let got = log.max_timestamp_batch().unwrap();
    assert_eq!(got.map(|b| b.base_offset), first_max.map(|b| b.base));
}

#[test]
fn finds_first_batch_at_or_after_a_timestamp() {
    for disk in Disk::both() {
        finds_first_batch_on(&disk);
    }
}

fn finds_first_batch_on(disk: &Disk) {
    let mut log = disk.open(small_config());
    // Mostly increasing, with dips and repeats, across many segments.
    let mut model = Vec::new();
    for i in 0..150i64 {
        let ts = if i % 7 == 3 { i * 2 - 20 } else { i * 2 };
        model.push(append(
            &mut log,
            1 + (i as usize % 3),
            40,
            ts.max(0),
            i as u8,
        ));
    }
    assert!(log.segment_count() > 5);
    check_all(&log, &model);
    log.close().unwrap();
    let log = disk.open(small_config());
    check_all(&log, &model);
}

#[test]
fn max_timestamp_batch_picks_the_first_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let mut model = Vec::new();
    for (i, ts) in [5i64, 90, 7, 90, 12, 3].into_iter().enumerate() {
        model.push(append(&mut log, 2, 500, ts, i as u8));
    }
    check_all(&log, &model);
    assert_eq!(log.max_timestamp_batch().unwrap().unwrap().base_offset, 2);
}
