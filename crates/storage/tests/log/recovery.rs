//! Recovery on open: torn and corrupt tails, rebuilt indexes, stray files.

use std::fs::{self, OpenOptions};

use sluice_storage::Log;

use crate::fixture::{
    Appended, append, append_varied, assert_reads_match, log_files, small_config,
};

fn cut(path: &std::path::Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// The model batches of the segment at `segment_base`.
fn in_segment(model: &[Appended], segment_base: i64) -> Vec<&Appended> {
    model
        .iter()
        .filter(|b| b.segment_base == segment_base)
        .collect()
}

#[test]
fn truncates_torn_last_batch_and_keeps_the_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let mut model = append_varied(&mut log, 40);
    // Make the last segment hold several batches.
    let last_seg = model.last().unwrap().segment_base;
    while in_segment(&model, last_seg).len() < 3 {
        model.push(append(&mut log, 1, 20, 5000, 9));
    }
    drop(log);
    let torn = model.pop().unwrap();
    let file = log_files(tmp.path()).pop().unwrap();
    cut(&file, torn.position + torn.bytes.len() as u64 / 2);

    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(fs::metadata(&file).unwrap().len(), torn.position);
    assert_reads_match(&log, &model);
    // Appends continue at the recovered end.
    let next = append(&mut log, 2, 10, 6000, 1);
    assert_eq!(next.base, torn.base);
    model.push(next);
    assert_reads_match(&log, &model);
}

#[test]
fn truncates_at_a_corrupt_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let config = sluice_storage::LogConfig::default();
    let mut log = Log::open(tmp.path(), config).unwrap();
    let mut model = append_varied(&mut log, 20);
    drop(log);
    let victim = model[12].clone();
    let file = log_files(tmp.path()).pop().unwrap();
    let mut bytes = fs::read(&file).unwrap();
    // Flip a byte inside the CRC-covered area (lastOffsetDelta's neighbour: records).
    let at = victim.position as usize + victim.bytes.len() - 1;
    bytes[at] ^= 0x40;
    fs::write(&file, &bytes).unwrap();

    let log = Log::open(tmp.path(), config).unwrap();
    model.truncate(12);
    assert_eq!(log.log_end_offset(), victim.base);
    assert_eq!(fs::metadata(&file).unwrap().len(), victim.position);
    assert_reads_match(&log, &model);
}

#[test]
fn garbage_tail_is_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let model = append_varied(&mut log, 25);
    drop(log);
    let file = log_files(tmp.path()).pop().unwrap();
    let len = fs::metadata(&file).unwrap().len();
    let mut bytes = fs::read(&file).unwrap();
    bytes.extend_from_slice(&[0xff; 100]);
    fs::write(&file, &bytes).unwrap();
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(fs::metadata(&file).unwrap().len(), len);
    assert_reads_match(&log, &model);
}

#[test]
fn missing_index_is_rebuilt_and_agrees_with_a_fresh_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let model = append_varied(&mut log, 60);
    log.close().unwrap();
    let sealed = log_files(tmp.path())[2].clone();
    let index = sealed.with_extension("index");
    let time_index = sealed.with_extension("timeindex");
    let before = (fs::read(&index).unwrap(), fs::read(&time_index).unwrap());
    assert!(!before.0.is_empty() && !before.1.is_empty());

    fs::remove_file(&index).unwrap();
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(fs::read(&index).unwrap(), before.0);
    assert_reads_match(&log, &model);
    drop(log);

    // Wrong sizes are rebuilt too.
    let mut odd = before.0.clone();
    odd.extend_from_slice(&[1, 2, 3]);
    fs::write(&index, &odd).unwrap();
    fs::write(&time_index, &before.1[..5]).unwrap();
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(fs::read(&index).unwrap(), before.0);
    assert_eq!(fs::read(&time_index).unwrap(), before.1);
    assert_reads_match(&log, &model);
    drop(log);

    // An index whose last entry points at garbage is rebuilt.
    let mut bad = before.0.clone();
    let n = bad.len();
    bad[n - 4..].copy_from_slice(&7u32.to_be_bytes());
    fs::write(&index, &bad).unwrap();
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(fs::read(&index).unwrap(), before.0);
    assert_reads_match(&log, &model);
}

#[test]
fn torn_sealed_segment_drops_the_segments_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let mut model = append_varied(&mut log, 60);
    drop(log);
    let files = log_files(tmp.path());
    let victim_file = files[3].clone();
    let seg_base: i64 = victim_file
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let in_seg = in_segment(&model, seg_base);
    let torn = (*in_seg.last().unwrap()).clone();
    cut(&victim_file, torn.position + 3);

    let log = Log::open(tmp.path(), small_config()).unwrap();
    model.retain(|b| b.base < torn.base);
    assert_eq!(log.segment_count(), 4);
    assert_eq!(log_files(tmp.path()).len(), 4);
    assert_reads_match(&log, &model);
}

#[test]
fn stray_files_are_cleaned_up() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let model = append_varied(&mut log, 30);
    let leo = log.log_end_offset();
    log.close().unwrap();
    let dir = tmp.path();
    // An empty segment in the middle, an orphan index, an unknown file.
    let first = log_files(dir)[0].clone();
    let first_base: i64 = model[0].base;
    let empty_mid = dir.join(format!("{:020}.log", first_base + 1));
    fs::write(&empty_mid, b"").unwrap();
    let orphan = dir.join(format!("{:020}.index", 999_999));
    fs::write(&orphan, [0u8; 16]).unwrap();
    let unknown = dir.join("leader-epoch-checkpoint");
    fs::write(&unknown, b"0\n").unwrap();

    let log = Log::open(dir, small_config()).unwrap();
    assert!(first.exists());
    assert!(!empty_mid.exists());
    assert!(!orphan.exists());
    assert!(unknown.exists());
    assert_eq!(log.log_end_offset(), leo);
    assert_reads_match(&log, &model);
}

#[test]
fn empty_last_segment_after_a_roll_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    let model = append_varied(&mut log, 10);
    log.roll().unwrap();
    let segments = log.segment_count();
    drop(log);
    let mut log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(log.segment_count(), segments);
    assert_reads_match(&log, &model);
    let next = append(&mut log, 1, 1, 1, 1);
    assert_eq!(next.position, 0);
    assert_eq!(next.segment_base, model.last().unwrap().last + 1);
}
