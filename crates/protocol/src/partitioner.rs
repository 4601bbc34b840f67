//! Kafka's default partitioner for keyed records, so records land where Java clients
//! and librdkafka's `murmur2_random` would put them.

/// Kafka's murmur2 (`Utils.murmur2`), the hash of the default partitioner.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    // Kafka hashes the length as a 32-bit int; keys past 4 GiB cannot occur.
    let mut h: u32 = 0x9747_b28c ^ u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut chunks = data.chunks_exact(4);
    for c in chunks.by_ref() {
        let mut k = u32::from_le_bytes(<[u8; 4]>::try_from(c).unwrap_or_default());
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if let Some(&b) = rest.get(2) {
        h ^= u32::from(b) << 16;
    }
    if let Some(&b) = rest.get(1) {
        h ^= u32::from(b) << 8;
    }
    if let Some(&b) = rest.first() {
        h ^= u32::from(b);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The partition a keyed record goes to among `count` partitions:
/// `toPositive(murmur2(key)) % count`.
pub fn partition_for_key(key: &[u8], count: i32) -> i32 {
    let count = count.max(1).unsigned_abs();
    i32::try_from((murmur2(key) & 0x7fff_ffff) % count).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::cast_possible_wrap)]
    fn murmur2_matches_kafka() {
        assert_eq!(murmur2(b"21") as i32, -973_932_308);
        assert_eq!(murmur2(b"foobar") as i32, -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985_981_536);
    }

    #[test]
    fn partition_is_in_range() {
        for n in 1..20 {
            let p = partition_for_key(b"device-7", n);
            assert!((0..n).contains(&p));
        }
    }
}
