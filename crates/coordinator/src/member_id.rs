//! Member ids, `{client_id}-{uuid}` (or `{group_instance_id}-{uuid}` for static members)
//! as Kafka makes them, but drawn deterministically from a seed and a counter so a test
//! run can be replayed.

/// Hands out UUID-shaped suffixes. The low 64 bits are `splitmix64(seed + counter)`, a
/// bijection of the counter for a given seed, so one generator never repeats itself.
#[derive(Clone, Debug)]
pub(crate) struct MemberIdGenerator {
    seed: u64,
    counter: u64,
}

/// splitmix64's output function: a bijection on u64 with good avalanche.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl MemberIdGenerator {
    pub(crate) fn new(seed: u64) -> Self {
        Self { seed, counter: 0 }
    }

    /// The next id for a member whose prefix is its client id (dynamic members) or its
    /// group instance id (static members).
    /// A bare UUID, as Kafka names consumer-protocol members whose client did not
    /// (ConsumerGroupHeartbeat v0).
    pub(crate) fn uuid(&mut self) -> String {
        let id = self.next("");
        id.trim_start_matches('-').to_string()
    }

    pub(crate) fn next(&mut self, prefix: &str) -> String {
        self.counter = self.counter.wrapping_add(1);
        let low = mix(self.seed.wrapping_add(self.counter));
        let high = mix(low ^ self.seed.rotate_left(32));
        // Shape it like a version 4 UUID: version nibble 4, variant bits 10.
        let high = (high & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
        let low = (low & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        format!(
            "{prefix}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xffff,
            high & 0xffff,
            low >> 48,
            low & 0xffff_ffff_ffff
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn ids_are_uuid_shaped_and_prefixed() {
        let id = MemberIdGenerator::new(7).next("consumer-1");
        let suffix = id.strip_prefix("consumer-1-").unwrap();
        let parts: Vec<_> = suffix.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_eq!(suffix.as_bytes()[14], b'4');
    }

    #[test]
    fn same_seed_same_ids_and_no_repeats() {
        let mut a = MemberIdGenerator::new(42);
        let mut b = MemberIdGenerator::new(42);
        let ids: Vec<_> = (0..1000).map(|_| a.next("c")).collect();
        assert_eq!(ids, (0..1000).map(|_| b.next("c")).collect::<Vec<_>>());
        assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 1000);
        assert_ne!(MemberIdGenerator::new(43).next("c"), ids[0]);
    }
}
