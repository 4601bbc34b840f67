//! Model-based test: random appends, reads, rolls, reopens and crashes against a
//! `Vec` of the batches appended.
//!
//! A crash drops the log without closing it and cuts the last segment file at a random
//! length; after reopening, the log must be the model prefix of batches written
//! entirely before the cut. Proptest prints the failing case and stores its seed in
//! `proptest-regressions/`.

use std::fs::OpenOptions;
use std::path::Path;

use proptest::prelude::*;
use sluice_storage::{Log, LogConfig};

use crate::fixture::{Appended, append, log_files};

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        value_len: usize,
        ts: i64,
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
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1usize..5, 0usize..700, 0i64..1000)
            .prop_map(|(records, value_len, ts)| Op::Append { records, value_len, ts }),
        4 => (0.0f64..=1.0, 0usize..3000, any::<bool>())
            .prop_map(|(at, max_bytes, min_one_batch)| Op::Read { at, max_bytes, min_one_batch }),
        1 => Just(Op::Roll),
        1 => Just(Op::Sync),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => (0.0f64..=1.0).prop_map(|cut_at| Op::Crash { cut_at }),
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
    let leo = log.log_end_offset();
    let offset = ((leo as f64) * at) as i64;
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

fn crash(dir: &Path, model: &mut Vec<Appended>, cut_at: f64) {
    let Some(file) = log_files(dir).pop() else {
        return;
    };
    let len = std::fs::metadata(&file).unwrap().len();
    let cut = ((len as f64) * cut_at) as u64;
    OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let base: i64 = file.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    model.retain(|b| b.segment_base != base || b.position + b.bytes.len() as u64 <= cut);
}

fn run(config: LogConfig, ops: Vec<Op>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut log = Some(Log::open(dir, config).unwrap());
    let mut model: Vec<Appended> = Vec::new();
    for (step, op) in ops.into_iter().enumerate() {
        let l = log.as_mut().unwrap();
        match op {
            Op::Append {
                records,
                value_len,
                ts,
            } => {
                model.push(append(l, records, value_len, ts, step as u8));
            }
            Op::Read {
                at,
                max_bytes,
                min_one_batch,
            } => {
                check_read(l, &model, at, max_bytes, min_one_batch);
            }
            Op::Roll => l.roll().unwrap(),
            Op::Sync => {
                l.sync().unwrap();
                assert_eq!(l.synced_offset(), l.log_end_offset());
            }
            Op::Reopen { clean } => {
                let l = log.take().unwrap();
                if clean {
                    l.close().unwrap();
                } else {
                    drop(l);
                }
                log = Some(Log::open(dir, config).unwrap());
            }
            Op::Crash { cut_at } => {
                drop(log.take());
                crash(dir, &mut model, cut_at);
                log = Some(Log::open(dir, config).unwrap());
            }
        }
        let l = log.as_ref().unwrap();
        let leo = model.last().map_or(0, |b| b.last + 1);
        // After a crash that emptied the last segment the log ends at its base.
        assert_eq!(l.log_end_offset(), leo, "step {step}");
        assert_eq!(l.log_start_offset(), 0);
        assert_eq!(
            l.size_bytes(),
            model.iter().map(|b| b.bytes.len() as u64).sum::<u64>()
        );
    }
    let l = log.take().unwrap();
    crate::fixture::assert_reads_match(&l, &model);
    l.close().unwrap();
    let l = Log::open(dir, config).unwrap();
    crate::fixture::assert_reads_match(&l, &model);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(config in config(), ops in prop::collection::vec(op(), 1..60)) {
        run(config, ops);
    }
}
