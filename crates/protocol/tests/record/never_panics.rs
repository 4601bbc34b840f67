//! Damaged input is rejected with an error, never a panic.

use bytes::Bytes;
use proptest::prelude::*;
use sluice_protocol::record::{decode_records, split_batches, validate_batch};

use crate::support::{build, codec, fix_crc, input, permissive_limits, with_payload};

const NOW: i64 = 1_700_000_000_000;
const MAX_UNCOMPRESSED: usize = 1 << 20;

/// Bytes outside the CRC whose change may leave a batch valid: baseOffset (for decoding
/// only; produce validation insists on 0) and partitionLeaderEpoch.
fn flip_may_pass(byte: usize, validating: bool) -> bool {
    (12..16).contains(&byte) || (!validating && byte < 8)
}

proptest! {
    #![proptest_config(crate::support::config(48))]

    #[test]
    fn every_truncation_is_an_error(
        codec in codec(),
        inputs in proptest::collection::vec(input(Just(NOW), 40), 1..4),
    ) {
        let batch = build(codec, &inputs, None);
        for cut in 0..batch.len() {
            let short = batch.slice(..cut);
            prop_assert!(validate_batch(&short, &permissive_limits(NOW)).is_err(), "cut {}", cut);
            prop_assert!(decode_records(&short, MAX_UNCOMPRESSED).is_err(), "cut {}", cut);
            let parts: Vec<_> = split_batches(&short).collect();
            prop_assert!(parts.last().is_none_or(Result::is_err), "cut {}", cut);
        }
    }
}

proptest! {
    #![proptest_config(crate::support::config(512))]

    #[test]
    fn a_flipped_bit_is_caught(
        codec in codec(),
        inputs in proptest::collection::vec(input(Just(NOW), 40), 1..4),
        bit in any::<prop::sample::Index>(),
    ) {
        let batch = build(codec, &inputs, None);
        let bit = bit.index(batch.len() * 8);
        let mut flipped = batch.to_vec();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let flipped = Bytes::from(flipped);
        let validated = validate_batch(&flipped, &permissive_limits(NOW));
        let decoded = decode_records(&flipped, MAX_UNCOMPRESSED);
        if !flip_may_pass(bit / 8, true) {
            prop_assert!(validated.is_err(), "byte {} accepted by validate", bit / 8);
        }
        if !flip_may_pass(bit / 8, false) {
            prop_assert!(decoded.is_err(), "byte {} accepted by decode", bit / 8);
        }
    }

    /// Flips behind a recomputed CRC reach the decompressors and the record parser.
    #[test]
    fn flips_behind_a_fixed_crc_never_panic(
        codec in codec(),
        inputs in proptest::collection::vec(input(Just(NOW), 40), 1..4),
        bits in proptest::collection::vec(any::<prop::sample::Index>(), 1..6),
    ) {
        let batch = build(codec, &inputs, None);
        let mut flipped = batch.to_vec();
        for bit in bits {
            // Leave the fixed header to the plain flip test; damage the records.
            let range = (flipped.len() - 61) * 8;
            let bit = 61 * 8 + bit.index(range);
            flipped[bit / 8] ^= 1 << (bit % 8);
        }
        fix_crc(&mut flipped);
        let flipped = Bytes::from(flipped);
        // Same decompression limit for both: it bounds the zstd window too.
        let limits = permissive_limits(NOW);
        let validated = validate_batch(&flipped, &limits);
        let decoded = decode_records(&flipped, limits.max_uncompressed_bytes);
        if let Ok(summary) = validated {
            let records = decoded.unwrap();
            prop_assert_eq!(records.len(), summary.record_count);
        }
    }

    #[test]
    fn garbage_records_sections_never_panic(
        codec in codec(),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        count in -2i32..5,
    ) {
        let template = build(codec, &[], None);
        let mut batch = with_payload(&template, codec, &payload).to_vec();
        batch[57..61].copy_from_slice(&count.to_be_bytes());
        batch[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        fix_crc(&mut batch);
        let batch = Bytes::from(batch);
        let _ = validate_batch(&batch, &permissive_limits(NOW));
        let _ = decode_records(&batch, MAX_UNCOMPRESSED);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let bytes = Bytes::from(bytes);
        let _ = validate_batch(&bytes, &permissive_limits(NOW));
        let _ = decode_records(&bytes, MAX_UNCOMPRESSED);
        let mut total = 0;
        for part in split_batches(&bytes) {
            match part {
                Ok(part) => total += part.len(),
                Err(_) => break,
            }
        }
        prop_assert!(total <= bytes.len());
    }
}
