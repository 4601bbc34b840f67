//! `Log::open` on arbitrary segment bytes: recovery must never panic, and whatever it
//! keeps must read back as whole batches with good CRCs, the same after a re-open.
//!
//! Input layout (every length is clamped to what is left):
//!
//! ```text
//! flags u8   bit 0: a second segment; bit 1: an offset index for the first
//! if bit 0:  second segment base offset u16 BE, second segment length u16 BE
//! if bit 1:  index length u16 BE
//! payload:   [index bytes][first segment bytes][second segment bytes]
//! ```
//!
//! No recovery-point checkpoint and no clean-shutdown marker are written, so recovery
//! checks every segment batch by batch.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sluice_protocol::record::{BatchHeader, crc_matches};
use sluice_storage::{Log, LogConfig, ReadError};

/// Small limits, so that segments roll and indexes fill on tiny inputs.
const CONFIG: LogConfig = LogConfig {
    segment_bytes: 4096,
    index_interval_bytes: 64,
    segment_index_bytes: 256,
};
/// Single offsets read one by one when the log spans at most this many.
const MAX_POINT_READS: i64 = 2048;
const MAX_BYTES: usize = 64 << 10;

struct Input<'a> {
    first: &'a [u8],
    second: Option<(u16, &'a [u8])>,
    index: Option<&'a [u8]>,
}

fn take_u16(data: &mut &[u8]) -> u16 {
    let (head, rest) = data.split_at(data.len().min(2));
    *data = rest;
    head.iter().fold(0u16, |acc, b| (acc << 8) | u16::from(*b))
}

fn split_input(data: &[u8]) -> Input<'_> {
    let Some((&flags, mut rest)) = data.split_first() else {
        return Input {
            first: &[],
            second: None,
            index: None,
        };
    };
    let second_meta = (flags & 1 != 0).then(|| (take_u16(&mut rest), take_u16(&mut rest)));
    let index_len = (flags & 2 != 0).then(|| take_u16(&mut rest));
    let index = index_len.map(|len| {
        let (index, tail) = rest.split_at(usize::from(len).min(rest.len()));
        rest = tail;
        index
    });
    let second = second_meta.map(|(base, len)| {
        let (head, seg) = rest.split_at(rest.len() - usize::from(len).min(rest.len()));
        rest = head;
        (base, seg)
    });
    Input {
        first: rest,
        second,
        index,
    }
}

fn write_files(dir: &Path, input: &Input<'_>) {
    std::fs::write(dir.join(format!("{:020}.log", 0)), input.first).unwrap();
    if let Some(index) = input.index {
        std::fs::write(dir.join(format!("{:020}.index", 0)), index).unwrap();
    }
    if let Some((base, seg)) = input.second {
        std::fs::write(dir.join(format!("{base:020}.log")), seg).unwrap();
    }
}

/// `bytes` must be whole batches with matching CRCs, inside `[start, end)`.
fn check_batches(mut bytes: &[u8], start: i64, end: i64, offset: i64) {
    let mut first = true;
    while !bytes.is_empty() {
        let header = BatchHeader::parse(bytes)
            .unwrap_or_else(|e| panic!("read at {offset} returned a bad header: {e}"));
        let len = header.total_len();
        assert!(
            len <= bytes.len(),
            "read at {offset} returned a partial batch ({len} > {})",
            bytes.len()
        );
        let (batch, rest) = bytes.split_at(len);
        assert!(
            crc_matches(&header, batch),
            "read at {offset}: CRC mismatch"
        );
        assert!(
            header.last_offset() < end,
            "read at {offset}: batch ends at {} past log end {end}",
            header.last_offset()
        );
        if first {
            assert!(
                header.last_offset() >= offset && header.last_offset() >= start,
                "read at {offset}: first batch ends at {}, before the offset asked for",
                header.last_offset()
            );
            first = false;
        }
        bytes = rest;
    }
}

/// Reads `offset`; Ok or OffsetOutOfRange only. Returns the next offset to read.
fn read_one(log: &Log, offset: i64) -> Option<i64> {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    match log.read(offset, MAX_BYTES, true) {
        Ok(slice) => {
            assert!(
                (start..=end).contains(&offset),
                "read at {offset} succeeded outside [{start}, {end}]"
            );
            check_batches(&slice.bytes, start, end, offset);
            (!slice.is_empty()).then_some(slice.next_offset)
        }
        Err(ReadError::OffsetOutOfRange { .. }) => {
            assert!(
                !(start..=end).contains(&offset),
                "read at {offset} out of range inside [{start}, {end}]"
            );
            None
        }
        Err(e) => panic!("read at {offset} in [{start}, {end}]: {e}"),
    }
}

fn check_log(log: &Log) {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    assert!(start <= end, "log start {start} > log end {end}");
    // Batch by batch, from the start to the end.
    let mut offset = start;
    while offset < end {
        match read_one(log, offset) {
            Some(next) => {
                assert!(
                    next > offset,
                    "read at {offset}: next offset {next} does not advance"
                );
                offset = next;
            }
            None => break,
        }
    }
    // Every offset when the span is small, evenly spaced ones otherwise.
    let span = end - start;
    let step = (span / MAX_POINT_READS).max(1);
    let mut offset = start;
    while offset < end {
        read_one(log, offset);
        offset = offset.saturating_add(step);
    }
    read_one(log, end);
    read_one(log, end.saturating_add(1));
    if start > 0 {
        read_one(log, start - 1);
    }
}

fuzz_target!(|data: &[u8]| {
    let input = split_input(data);
    let tmp = tempfile::tempdir().unwrap();
    write_files(tmp.path(), &input);
    let Ok(log) = Log::open(tmp.path(), CONFIG) else {
        return;
    };
    check_log(&log);
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    drop(log); // unclean: the next open recovers again

    let log = Log::open(tmp.path(), CONFIG).expect("re-open after recovery failed");
    assert_eq!(log.log_end_offset(), end, "log end changed on re-open");
    assert_eq!(
        log.log_start_offset(),
        start,
        "log start changed on re-open"
    );
    check_log(&log);
    if log.close().is_err() {
        return;
    }

    let log = Log::open(tmp.path(), CONFIG).expect("re-open after close failed");
    assert_eq!(
        log.log_end_offset(),
        end,
        "log end changed on clean re-open"
    );
    check_log(&log);
});
