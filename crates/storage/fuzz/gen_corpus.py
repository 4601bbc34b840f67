#!/usr/bin/env python3
"""Writes the seed corpus of segment_recovery: valid RecordBatch v2 segments, framed
as the target's input layout (see fuzz_targets/segment_recovery.rs)."""
import os
import struct

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF

def varint(v):
    z = ((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while True:
        if z < 0x80:
            out.append(z)
            return bytes(out)
        out.append((z & 0x7F) | 0x80)
        z >>= 7

def batch(base_offset, records, value_len=16):
    body = bytearray()
    for i in range(records):
        rec = b"\x00" + varint(0) + varint(i) + varint(-1) + varint(value_len)
        rec += bytes((i + j) & 0xFF for j in range(value_len)) + varint(0)
        body += varint(len(rec)) + rec
    after_crc = struct.pack(">hiqqqhii", 0, records - 1, 1_700_000_000_000,
                            1_700_000_000_000, -1, -1, -1, records) + body
    head = struct.pack(">qiib", base_offset, 49 + len(body), 0, 2)
    return head + struct.pack(">I", crc32c(after_crc)) + after_crc

def segment(base, batches, records):
    out, off = b"", base
    for _ in range(batches):
        out += batch(off, records)
        off += records
    return out, off

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "segment_recovery")
os.makedirs(out, exist_ok=True)
one, end = segment(0, 4, 3)
# One segment, 4 batches of 3 records.
open(os.path.join(out, "one_segment"), "wb").write(b"\x00" + one)
# Same, with a torn last batch.
open(os.path.join(out, "torn_tail"), "wb").write(b"\x00" + one[:-7])
# Two segments: the second starts where the first ends.
two, _ = segment(end, 3, 2)
open(os.path.join(out, "two_segments"), "wb").write(
    b"\x01" + struct.pack(">HH", end, len(two)) + one + two)
# One segment with an (empty-ish) offset index: entry (relative offset 3, position of batch 2).
pos = len(batch(0, 3))
index = struct.pack(">ii", 3, pos)
open(os.path.join(out, "with_index"), "wb").write(
    b"\x02" + struct.pack(">H", len(index)) + index + one)
