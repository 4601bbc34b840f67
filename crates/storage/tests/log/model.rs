//! Model-based test: random appends, reads, rolls, syncs, reopens, crashes,
//! DeleteRecords, retention, `segment.ms` rolls and truncations against a `Vec` of the batches still
//! on disk plus the model's log start, log end and synced offsets.
//!
//! A crash drops the log without closing it and either cuts the last segment file at
//! a random length, or flips one CRC-covered bit of a batch that was not synced (in any
//! segment, sealed ones included). After reopening, the log must be the model prefix of
//! batches before the damage, and hold everything synced. Retention and DeleteRecords
//! are checked against an independent rendering of Kafka's rules over the model's
//! segments. Proptest prints the failing case and stores its seed in
//! `proptest-regressions/`.

use std::fs::OpenOptions;
use std::path::Path;

use proptest::prelude::*;
use sluice_storage::{DeleteRecordsError, Log, LogConfig};

use crate::fixture::{Appended, append, log_files};

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        value_len: usize,
        /// Max timestamp = now - ts_back.
        ts_back: i64,
    },
    Read {
        at: f64,
        max_bytes: usize,
        min_one_batch: bool,
    },
    Roll,
    Sync,
    Reopen {
        clean: bool,
    },
    Crash {
        cut_at: f64,
    },
    CorruptCrash {
        pick: f64,
        byte: f64,
        bit: u8,
    },
    Tick {
        ms: i64,
    },
    DeleteRecords {
        at: f64,
    },
    Retention {
        retention_ms: i64,
        retention_bytes: i64,
    },
    RollIfDue {
        segment_ms: i64,
    },
    Truncate {
        at: f64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1usize..5, 0usize..700, 0i64..4000)
            .prop_map(|(records, value_len, ts_back)| Op::Append { records, value_len, ts_back }),
        4 => (0.0f64..=1.0, 0usize..3000, any::<bool>())
            .prop_map(|(at, max_bytes, min_one_batch)| Op::Read { at, max_bytes, min_one_batch }),
        1 => Just(Op::Roll),
        2 => Just(Op::Sync),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => (0.0f64..=1.0).prop_map(|cut_at| Op::Crash { cut_at }),
        1 => (0.0f64..1.0, 0.0f64..1.0, 0u8..8)
            .prop_map(|(pick, byte, bit)| Op::CorruptCrash { pick, byte, bit }),
        2 => (0i64..3000).prop_map(|ms| Op::Tick { ms }),
        1 => (-0.1f64..1.1).prop_map(|at| Op::DeleteRecords { at }),
        1 => (
            prop_oneof![Just(-1i64), 0i64..6000],
            prop_oneof![2 => Just(-1i64), 1 => Just(0i64), 2 => 0i64..10_000],
        )
            .prop_map(|(retention_ms, retention_bytes)| Op::Retention { retention_ms, retention_bytes }),
        1 => prop_oneof![Just(-1i64), 0i64..3000]
            .prop_map(|segment_ms| Op::RollIfDue { segment_ms }),
        1 => (-0.1f64..1.1).prop_map(|at| Op::Truncate { at }),
    ]
}

fn config() -> impl Strategy<Value = LogConfig> {
    (
        prop::sample::select(vec![600u64, 2048, 8192, 1 << 20]),
        prop::sample::select(vec![0u32, 150, 1000, 4096]),
        prop::sample::select(vec![24u32, 100, 4096]),
    )
        .prop_map(
            |(segment_bytes, index_interval_bytes, segment_index_bytes)| LogConfig {
                segment_bytes,
                index_interval_bytes,
                segment_index_bytes,
            },
        )
}

fn check_read(log: &Log, model: &[Appended], at: f64, max_bytes: usize, min_one_batch: bool) {
    let (start, leo) = (log.log_start_offset(), log.log_end_offset());
    let offset = start + (((leo - start) as f64) * at) as i64;
    let r = log.read(offset, max_bytes, min_one_batch).unwrap();
    if offset == leo {
        assert!(r.is_empty());
        return;
    }
    let first = model.iter().position(|b| b.last >= offset).unwrap();
    let segment_bases: Vec<i64> = log.segment_base_offsets().collect();
    let mut want = Vec::new();
    let mut next = offset;
    for (i, b) in model.iter().enumerate().skip(first) {
        let fits = want.len() + b.bytes.len() <= max_bytes || (i == first && min_one_batch);
        let same_segment = i == first || !segment_bases.contains(&b.base);
        if !fits || !same_segment {
            break;
        }
        want.extend_from_slice(&b.bytes);
        next = b.last + 1;
    }
    assert_eq!(
        &r.bytes[..],
        &want[..],
        "read({offset}, {max_bytes}, {min_one_batch})"
    );
    assert_eq!(r.next_offset, next);
    if !want.is_empty() {
        assert_eq!(r.base_offset, model[first].base);
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn mtime_ms(path: &Path) -> i64 {
    std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// What the log must look like, beside the batches themselves.
struct Model {
    /// Batches still on disk, in order.
    batches: Vec<Appended>,
    log_start: i64,
    log_end: i64,
    /// Everything below was synced (and must survive any crash below).
    synced: i64,
    /// The caller's clock.
    now: i64,
    /// Base of the active segment as last seen, and when the log first saw it
    /// non-empty (`segment.ms`).
    active_base: i64,
    first_seen: Option<i64>,
}

/// One segment as the model sees it.
struct Seg {
    base: i64,
    next: i64,
    size: u64,
    max_ts: i64,
}

impl Model {
    fn segments(&self, bases: &[i64]) -> Vec<Seg> {
        bases
            .iter()
            .enumerate()
            .map(|(i, &base)| {
                let mine = self.batches.iter().filter(|b| b.segment_base == base);
                Seg {
                    base,
                    next: bases.get(i + 1).copied().unwrap_or(self.log_end),
                    size: mine.clone().map(|b| b.bytes.len() as u64).sum(),
                    max_ts: mine.map(|b| b.max_ts).max().unwrap_or(i64::MIN),
                }
            })
            .collect()
    }

    fn active_is_empty(&self) -> bool {
        !self
            .batches
            .iter()
            .any(|b| b.segment_base == self.active_base)
    }

    /// Drops the batches of the segments below `first_base`.
    fn drop_below(&mut self, first_base: i64) {
        self.batches.retain(|b| b.segment_base >= first_base);
    }

    /// After a crash: the log ends at `log_end`. A log start past it restarts the log
    /// there; one equal to it leaves every batch below the start, and the reopened log
    /// removes them (rolling to an empty segment at the end), as DeleteRecords would.
    fn after_crash(&mut self, log_end: i64) {
        self.batches.retain(|b| b.base < log_end);
        self.log_end = log_end;
        if self.log_start >= log_end {
            self.batches.clear();
            self.log_end = self.log_start;
        }
        self.synced = self.synced.min(self.log_end);
    }

    /// After any reopen: the active segment's age counts from its mtime.
    fn after_open(&mut self, log: &Log) {
        self.active_base = log.segment_base_offsets().last().unwrap();
        self.first_seen = (!self.active_is_empty())
            .then(|| mtime_ms(&log.dir().join(format!("{:020}.log", self.active_base))));
    }
}

/// Kafka's retention rule, written out independently of the storage crate's.
fn expected_retention(
    segs: &[Seg],
    now: i64,
    retention_ms: i64,
    retention_bytes: i64,
    log_start: i64,
) -> usize {
    let last = segs.len() - 1;
    let eligible = |i: usize| !(i == last && segs[i].size == 0);
    let mut n = 0;
    if retention_ms >= 0 {
        while n < segs.len() && eligible(n) && now - segs[n].max_ts > retention_ms {
            n += 1;
        }
    }
    if retention_bytes >= 0 {
        let mut remaining: i64 = segs[n..].iter().map(|s| s.size as i64).sum();
        while n < segs.len() && eligible(n) && remaining - segs[n].size as i64 >= retention_bytes {
            remaining -= segs[n].size as i64;
            n += 1;
        }
    }
    while n < last && segs[n].next <= log_start {
        n += 1;
    }
    n
}

/// Cuts the last segment file at `cut_at` of its length; returns the log end after
/// recovery.
fn cut_last(dir: &Path, model: &Model, cut_at: f64) -> i64 {
    let file = log_files(dir).pop().unwrap();
    let len = std::fs::metadata(&file).unwrap().len();
    let cut = ((len as f64) * cut_at) as u64;
    OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let base: i64 = file.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    assert_eq!(base, model.active_base);
    model
        .batches
        .iter()
        .filter(|b| b.segment_base != base || b.position + b.bytes.len() as u64 <= cut)
        .map(|b| b.last + 1)
        .next_back()
        .unwrap_or(base)
        .max(base)
}

/// Flips one CRC-covered bit of an unsynced batch; returns the log end after recovery
/// (the victim's base), or `None` if every batch is synced.
fn corrupt_unsynced(dir: &Path, model: &Model, pick: f64, byte: f64, bit: u8) -> Option<i64> {
    let candidates: Vec<&Appended> = model
        .batches
        .iter()
        .filter(|b| b.base >= model.synced)
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let victim = candidates[((candidates.len() as f64) * pick) as usize];
    // The CRC covers the batch from `attributes` (byte 21) to its end.
    let covered = victim.bytes.len() - 21;
    let at = victim.position as usize + 21 + ((covered as f64) * byte) as usize;
    let path = dir.join(format!("{:020}.log", victim.segment_base));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[at] ^= 1 << bit;
    std::fs::write(&path, &bytes).unwrap();
    Some(victim.base)
}

fn run(config: LogConfig, ops: Vec<Op>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut log = Some(Log::open(dir, config).unwrap());
    let mut m = Model {
        batches: Vec::new(),
        log_start: 0,
        log_end: 0,
        synced: 0,
        now: now_ms(),
        active_base: 0,
        first_seen: None,
    };
    for (step, op) in ops.into_iter().enumerate() {
        let l = log.as_mut().unwrap();
        let bases: Vec<i64> = l.segment_base_offsets().collect();
        match op {
            Op::Append {
                records,
                value_len,
                ts_back,
            } => {
                let b = append(l, records, value_len, m.now - ts_back, step as u8);
                m.log_end = b.last + 1;
                m.batches.push(b);
            }
            Op::Read {
                at,
                max_bytes,
                min_one_batch,
            } => {
                check_read(l, &m.batches, at, max_bytes, min_one_batch);
            }
            Op::Roll => l.roll().unwrap(),
            Op::Sync => {
                l.sync().unwrap();
                assert_eq!(l.synced_offset(), l.log_end_offset());
                assert_eq!(l.recovery_point(), *bases.last().unwrap());
                m.synced = m.log_end;
            }
            Op::Reopen { clean } => {
                let l = log.take().unwrap();
                if clean {
                    l.close().unwrap();
                    m.synced = m.log_end;
                } else {
                    drop(l);
                }
                let l = Log::open(dir, config).unwrap();
                m.after_open(&l);
                log = Some(l);
            }
            Op::Crash { cut_at } => {
                drop(log.take());
                let end = cut_last(dir, &m, cut_at);
                m.after_crash(end);
                let l = Log::open(dir, config).unwrap();
                m.after_open(&l);
                log = Some(l);
            }
            Op::CorruptCrash { pick, byte, bit } => {
                drop(log.take());
                if let Some(end) = corrupt_unsynced(dir, &m, pick, byte, bit) {
                    m.after_crash(end);
                }
                let l = Log::open(dir, config).unwrap();
                assert!(
                    l.log_end_offset() >= m.synced,
                    "step {step}: synced data lost"
                );
                m.after_open(&l);
                log = Some(l);
            }
            Op::Tick { ms } => m.now += ms,
            Op::DeleteRecords { at } => {
                let target = if at < 0.0 {
                    m.log_start - 1
                } else if at > 1.0 {
                    m.log_end + 1
                } else {
                    m.log_start + (((m.log_end - m.log_start) as f64) * at) as i64
                };
                let got = l.delete_records(target);
                if target < m.log_start || target > m.log_end {
                    assert!(
                        matches!(got, Err(DeleteRecordsError::OffsetOutOfRange { .. })),
                        "{got:?}"
                    );
                } else {
                    assert_eq!(got.unwrap(), target.max(m.log_start));
                    if target > m.log_start {
                        m.log_start = target;
                        let mut bases = bases.clone();
                        if target == m.log_end && !m.active_is_empty() {
                            bases.push(m.log_end);
                        }
                        let segs = m.segments(&bases);
                        let keep_from = segs
                            .iter()
                            .enumerate()
                            .find(|&(i, s)| i == segs.len() - 1 || s.next > target)
                            .unwrap()
                            .1
                            .base;
                        m.drop_below(keep_from);
                        let want: Vec<i64> =
                            bases.iter().copied().filter(|&b| b >= keep_from).collect();
                        assert_eq!(l.segment_base_offsets().collect::<Vec<_>>(), want);
                    }
                }
            }
            Op::Retention {
                retention_ms,
                retention_bytes,
            } => {
                let segs = m.segments(&bases);
                let n =
                    expected_retention(&segs, m.now, retention_ms, retention_bytes, m.log_start);
                let bytes: u64 = segs[..n].iter().map(|s| s.size).sum();
                let out = l
                    .enforce_retention(m.now, retention_ms, retention_bytes)
                    .unwrap();
                assert_eq!(out.segments_deleted, n, "step {step}");
                assert_eq!(out.bytes_deleted, bytes);
                let first_kept = segs.get(n).map_or(m.log_end, |s| s.base);
                m.log_start = m.log_start.max(first_kept);
                m.drop_below(first_kept);
                assert_eq!(out.log_start_offset, m.log_start);
                let mut want: Vec<i64> = bases[n.min(bases.len())..].to_vec();
                if n == bases.len() {
                    want.push(m.log_end);
                }
                assert_eq!(l.segment_base_offsets().collect::<Vec<_>>(), want);
            }
            Op::RollIfDue { segment_ms } => {
                let want = if m.active_is_empty() {
                    false
                } else {
                    let since = *m.first_seen.get_or_insert(m.now);
                    segment_ms >= 0 && m.now - since > segment_ms
                };
                assert_eq!(
                    l.roll_if_due(m.now, segment_ms).unwrap(),
                    want,
                    "step {step}"
                );
            }
            Op::Truncate { at } => {
                let offset = m.log_start + (((m.log_end - m.log_start) as f64) * at) as i64;
                let want = m
                    .batches
                    .iter()
                    .find(|b| b.last >= offset)
                    .map_or(m.log_end.max(offset), |b| b.base);
                match l.truncate_to(offset) {
                    Ok(end) => {
                        assert_eq!(end, want.min(m.log_end), "step {step}");
                        m.batches.retain(|b| b.base < end);
                        if end == m.log_start {
                            // Nothing readable is left: as DeleteRecords to the log end,
                            // the log rolls and drops every batch.
                            m.batches.clear();
                        }
                        m.log_end = end;
                        m.synced = m.synced.min(end);
                        if m.active_is_empty() {
                            m.first_seen = None;
                        }
                    }
                    Err(sluice_storage::TruncateError::BelowLogStart { .. }) => {
                        assert!(offset < m.log_start || want < m.log_start, "step {step}");
                    }
                    Err(e) => panic!("step {step}: {e}"),
                }
            }
        }
        let l = log.as_ref().unwrap();
        let active = l.segment_base_offsets().last().unwrap();
        if active != m.active_base {
            m.active_base = active;
            m.first_seen = None;
        }
        assert_eq!(l.log_end_offset(), m.log_end, "step {step}");
        assert_eq!(l.log_start_offset(), m.log_start, "step {step}");
        assert_eq!(
            l.size_bytes(),
            m.batches.iter().map(|b| b.bytes.len() as u64).sum::<u64>(),
            "step {step}"
        );
    }
    let l = log.take().unwrap();
    crate::fixture::assert_reads_match(&l, &m.batches);
    l.close().unwrap();
    let l = Log::open(dir, config).unwrap();
    assert_eq!(l.log_start_offset(), m.log_start);
    crate::fixture::assert_reads_match(&l, &m.batches);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(config in config(), ops in prop::collection::vec(op(), 1..60)) {
        run(config, ops);
    }
}
