//! A tiny RecordBatch v2 writer for tests (the real builder lives in sluice-protocol).

use sluice_protocol::record::compute_crc;

fn varint(out: &mut Vec<u8>, v: i64) {
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

/// A valid batch of `records` records with `value_len`-byte values filled from `seed`,
/// timestamps from `base_ts` up to `max_ts`, base offset 0 and a correct CRC-32C.
pub fn build(records: usize, value_len: usize, base_ts: i64, max_ts: i64, seed: u8) -> Vec<u8> {
    assert!(records >= 1);
    let mut body = Vec::new();
    for i in 0..records {
        let mut rec = Vec::new();
        rec.push(0); // attributes
        let ts_delta = if i + 1 == records {
            max_ts - base_ts
        } else {
            0
        };
        varint(&mut rec, ts_delta);
        varint(&mut rec, i as i64);
        varint(&mut rec, -1); // key
        varint(&mut rec, value_len as i64);
        rec.extend((0..value_len).map(|j| seed.wrapping_add(i as u8).wrapping_add(j as u8)));
        varint(&mut rec, 0); // headers
        varint(&mut body, rec.len() as i64);
        body.extend_from_slice(&rec);
    }
    let mut b = Vec::with_capacity(61 + body.len());
    b.extend_from_slice(&0i64.to_be_bytes()); // baseOffset
    b.extend_from_slice(&((49 + body.len()) as i32).to_be_bytes()); // batchLength
    b.extend_from_slice(&0i32.to_be_bytes()); // partitionLeaderEpoch
    b.push(2); // magic
    b.extend_from_slice(&0u32.to_be_bytes()); // crc
    b.extend_from_slice(&0i16.to_be_bytes()); // attributes
    b.extend_from_slice(&((records - 1) as i32).to_be_bytes());
    b.extend_from_slice(&base_ts.to_be_bytes());
    b.extend_from_slice(&max_ts.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producerId
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producerEpoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // baseSequence
    b.extend_from_slice(&(records as i32).to_be_bytes());
    b.extend_from_slice(&body);
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Splits concatenated batches into `(base_offset, last_offset, bytes)`.
pub fn split(mut bytes: &[u8]) -> Vec<(i64, i64, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let h = sluice_protocol::record::BatchHeader::parse(bytes).expect("valid header");
        let (one, rest) = bytes.split_at(h.total_len());
        out.push((h.base_offset, h.last_offset(), one.to_vec()));
        bytes = rest;
    }
    out
}
