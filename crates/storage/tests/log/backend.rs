//! The in-memory backend behaves like real files: the same operations give the same
//! log, byte for byte, and the same files.

use sluice_protocol::record::Compression;
use sluice_storage::Log;

use crate::compaction::{append_kv, compact, read_all};
use crate::fixture::{Disk, append, append_varied, assert_reads_match, small_config};

/// What a log shows from outside.
#[derive(Debug, PartialEq)]
struct Snapshot {
    bases: Vec<i64>,
    start: i64,
    end: i64,
    size: u64,
    cleaned_up_to: i64,
    /// Every read from the start, in 1 KiB steps.
    reads: Vec<(i64, Vec<u8>, i64)>,
    /// `offset_for_timestamp` for every timestamp in use.
    by_time: Vec<Option<i64>>,
    files: Vec<String>,
}

fn snapshot(log: &Log, disk: &Disk) -> Snapshot {
    let mut reads = Vec::new();
    let mut at = log.log_start_offset();
    while at < log.log_end_offset() {
        let r = log.read(at, 1024, true).unwrap();
        reads.push((r.base_offset, r.bytes.to_vec(), r.next_offset));
        at = r.next_offset;
    }
    Snapshot {
        bases: log.segment_base_offsets().collect(),
        start: log.log_start_offset(),
        end: log.log_end_offset(),
        size: log.size_bytes(),
        cleaned_up_to: log.cleaned_up_to(),
        reads,
        by_time: (990..2200)
            .step_by(7)
            .map(|ts| log.offset_for_timestamp(ts).unwrap().map(|b| b.base_offset))
            .collect(),
        files: disk.file_names(),
    }
}

/// Appends, rolls, DeleteRecords, retention, compaction, clean and unclean reopens.
fn scenario(disk: &Disk) -> Vec<Snapshot> {
    let config = small_config();
    let mut snaps = Vec::new();
    let mut log = disk.open(config);
    let mut model = append_varied(&mut log, 80);
    assert_reads_match(&log, &model);
    snaps.push(snapshot(&log, disk));

    log.roll().unwrap();
    let second = log.segment_base_offsets().nth(2).unwrap();
    log.delete_records(second + 1).unwrap();
    log.enforce_retention(10_000, -1, 6000).unwrap();
    model.retain(|b| b.base >= log.segment_base_offsets().next().unwrap());
    snaps.push(snapshot(&log, disk));

    for i in 0..40u32 {
        append_kv(
            &mut log,
            Compression::None,
            &[(i % 5, Some(format!("v{i}"))), (i % 3, None)],
            1500 + i64::from(i),
        );
    }
    log.roll().unwrap();
    log.sync().unwrap();
    let before = read_all(&log).0;
    assert!(compact(&mut log, 10_000, 0, i64::MAX / 2, 3) > 0);
    assert!(read_all(&log).0.len() < before.len());
    snaps.push(snapshot(&log, disk));

    log.close().unwrap();
    let mut log = disk.open(config);
    snaps.push(snapshot(&log, disk));
    append(&mut log, 2, 100, 2000, 7);
    drop(log);
    let log = disk.open(config);
    snaps.push(snapshot(&log, disk));
    snaps
}

#[test]
fn memory_backend_gives_the_same_log_as_real_files() {
    let [std, memory] = Disk::both();
    let (a, b) = (scenario(&std), scenario(&memory));
    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
        assert_eq!(a, b, "step {i}");
    }
    assert!(
        a.last()
            .unwrap()
            .files
            .iter()
            .any(|f| f.ends_with(".timeindex"))
    );
}
