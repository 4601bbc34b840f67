//! Zigzag varints and varlongs as the Kafka record format encodes them.
//!
//! A varint is a zigzag-encoded `i32` written as base-128 groups, least significant first,
//! with the high bit set on every byte but the last (at most 5 bytes). A varlong is the same
//! for `i64` (at most 10 bytes). Decoding is bounds-checked and rejects encodings that are
//! longer than the maximum or carry bits beyond the type's width.

use bytes::BufMut;

/// Longest varint encoding in bytes.
pub const MAX_VARINT_LEN: usize = 5;
/// Longest varlong encoding in bytes.
pub const MAX_VARLONG_LEN: usize = 10;

/// Why bytes are not a varint or varlong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VarintError {
    /// The input ended before the last byte (one without the continuation bit).
    #[error("varint truncated after {available} bytes")]
    Truncated {
        /// Bytes that were present.
        available: usize,
    },
    /// More bytes than the type allows, or bits beyond its width.
    #[error("varint longer than {max_len} bytes or wider than its type")]
    TooLong {
        /// The longest valid encoding for the type.
        max_len: usize,
    },
}

/// Decodes an unsigned base-128 value of at most `max_len` bytes and `bits` bits.
fn read_unsigned(buf: &[u8], max_len: usize, bits: u32) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().take(max_len).enumerate() {
        let shift = 7 * u32::try_from(i).map_err(|_| VarintError::TooLong { max_len })?;
        let group = u64::from(byte & 0x7f);
        // Bits that would land above the type's width make the encoding invalid.
        let room = bits.saturating_sub(shift);
        if room < 7 && group >> room != 0 {
            return Err(VarintError::TooLong { max_len });
        }
        value |= group << shift;
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    if buf.len() >= max_len {
        Err(VarintError::TooLong { max_len })
    } else {
        Err(VarintError::Truncated {
            available: buf.len(),
        })
    }
}

/// Decodes a zigzag varint from the start of `buf`.
///
/// Returns the value and the number of bytes it occupied.
///
/// # Errors
/// [`VarintError::Truncated`] when `buf` ends inside the varint, [`VarintError::TooLong`]
/// when it is longer than 5 bytes or wider than 32 bits.
pub fn read_varint(buf: &[u8]) -> Result<(i32, usize), VarintError> {
    let (raw, len) = read_unsigned(buf, MAX_VARINT_LEN, 32)?;
    let raw = u32::try_from(raw).map_err(|_| VarintError::TooLong {
        max_len: MAX_VARINT_LEN,
    })?;
    Ok((zigzag_decode_32(raw), len))
}

/// Decodes a zigzag varlong from the start of `buf`.
///
/// Returns the value and the number of bytes it occupied.
///
/// # Errors
/// [`VarintError::Truncated`] when `buf` ends inside the varlong, [`VarintError::TooLong`]
/// when it is longer than 10 bytes or wider than 64 bits.
pub fn read_varlong(buf: &[u8]) -> Result<(i64, usize), VarintError> {
    let (raw, len) = read_unsigned(buf, MAX_VARLONG_LEN, 64)?;
    Ok((zigzag_decode_64(raw), len))
}

fn zigzag_decode_32(raw: u32) -> i32 {
    ((raw >> 1) as i32) ^ -((raw & 1) as i32)
}

fn zigzag_decode_64(raw: u64) -> i64 {
    ((raw >> 1) as i64) ^ -((raw & 1) as i64)
}

fn zigzag_encode_32(value: i32) -> u32 {
    ((value << 1) ^ (value >> 31)) as u32
}

fn zigzag_encode_64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn write_unsigned(out: &mut impl BufMut, mut raw: u64) {
    while raw >= 0x80 {
        out.put_u8((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
    out.put_u8(raw as u8);
}

fn unsigned_len(raw: u64) -> usize {
    // 1 byte per started group of 7 significant bits, at least one byte.
    let bits = 64 - raw.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Appends `value` as a zigzag varint.
pub fn write_varint(out: &mut impl BufMut, value: i32) {
    write_unsigned(out, u64::from(zigzag_encode_32(value)));
}

/// Appends `value` as a zigzag varlong.
pub fn write_varlong(out: &mut impl BufMut, value: i64) {
    write_unsigned(out, zigzag_encode_64(value));
}

/// Bytes [`write_varint`] writes for `value`.
pub fn varint_len(value: i32) -> usize {
    unsigned_len(u64::from(zigzag_encode_32(value)))
}

/// Bytes [`write_varlong`] writes for `value`.
pub fn varlong_len(value: i64) -> usize {
    unsigned_len(zigzag_encode_64(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_varint(value: i32) -> Vec<u8> {
        let mut out = Vec::new();
        write_varint(&mut out, value);
        out
    }

    fn encode_varlong(value: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_varlong(&mut out, value);
        out
    }

    #[test]
    fn encodes_kafka_reference_values() {
        // Values from the Kafka protocol guide / ByteUtilsTest.
        assert_eq!(encode_varint(0), [0x00]);
        assert_eq!(encode_varint(-1), [0x01]);
        assert_eq!(encode_varint(1), [0x02]);
        assert_eq!(encode_varint(63), [0x7e]);
        assert_eq!(encode_varint(-64), [0x7f]);
        assert_eq!(encode_varint(64), [0x80, 0x01]);
        assert_eq!(encode_varint(i32::MAX), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(encode_varint(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(encode_varlong(i64::MIN).len(), MAX_VARLONG_LEN);
        assert_eq!(
            encode_varlong(i64::MAX),
            [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn round_trips_edge_values() {
        for v in [0, 1, -1, 63, -64, 64, -65, 8191, -8192, i32::MAX, i32::MIN] {
            let enc = encode_varint(v);
            assert_eq!(enc.len(), varint_len(v));
            assert_eq!(read_varint(&enc), Ok((v, enc.len())));
        }
        for v in [0, -1, 1, i64::from(i32::MAX) + 1, i64::MAX, i64::MIN] {
            let enc = encode_varlong(v);
            assert_eq!(enc.len(), varlong_len(v));
            assert_eq!(read_varlong(&enc), Ok((v, enc.len())));
        }
    }

    #[test]
    fn rejects_truncated_and_overlong_input() {
        assert_eq!(
            read_varint(&[]),
            Err(VarintError::Truncated { available: 0 })
        );
        assert_eq!(
            read_varint(&[0x80, 0x80]),
            Err(VarintError::Truncated { available: 2 })
        );
        assert_eq!(
            read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            Err(VarintError::TooLong { max_len: 5 })
        );
        // Fifth byte carrying bits above 32.
        assert_eq!(
            read_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]),
            Err(VarintError::TooLong { max_len: 5 })
        );
        assert_eq!(
            read_varlong(&[0xff; 10]),
            Err(VarintError::TooLong { max_len: 10 })
        );
        assert_eq!(
            read_varlong(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            Err(VarintError::TooLong { max_len: 10 })
        );
    }

    #[test]
    fn reads_only_the_first_value() {
        assert_eq!(read_varint(&[0x02, 0xff]), Ok((1, 1)));
    }
}
