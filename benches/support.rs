//! Helpers shared by the storage and read-path benches: a RecordBatch v2 of 1 KiB
//! records with a correct CRC-32C, and a fixed-seed random number generator.

#![allow(dead_code)]

use sluice_protocol::record::compute_crc;

/// Value size of every record.
pub const RECORD_VALUE: usize = 1024;

pub fn varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A RecordBatch v2 of `records` 1 KiB records with a correct CRC-32C.
pub fn batch(records: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..records {
        let mut rec = vec![0u8]; // attributes
        varint(&mut rec, 0); // timestampDelta
        varint(&mut rec, i as i64); // offsetDelta
        varint(&mut rec, -1); // key
        varint(&mut rec, RECORD_VALUE as i64);
        rec.extend((0..RECORD_VALUE).map(|j| (i + j) as u8));
        varint(&mut rec, 0); // headers
        varint(&mut body, rec.len() as i64);
        body.extend_from_slice(&rec);
    }
    let mut b = Vec::with_capacity(61 + body.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((49 + body.len()) as i32).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&((records - 1) as i32).to_be_bytes());
    b.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    b.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&(records as i32).to_be_bytes());
    b.extend_from_slice(&body);
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Fixed-seed xorshift, so runs read the same offsets or ranges.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
