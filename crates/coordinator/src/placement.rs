//! Which `__consumer_offsets` partition coordinates a group.
//!
//! Kafka's rule (GroupCoordinatorService.partitionFor):
//! `Utils.abs(groupId.hashCode()) % groupMetadataTopicPartitionCount`, where `hashCode` is
//! Java's `String.hashCode` over UTF-16 code units and `Utils.abs(n)` is `Math.abs(n)`
//! except that `Integer.MIN_VALUE` maps to 0. Clients never compute this themselves (they
//! ask FindCoordinator), but a group must land on the same partition as under Kafka so an
//! existing `__consumer_offsets` topic keeps working.

/// Java's `String.hashCode`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units, in
/// wrapping 32-bit arithmetic.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// Kafka's `Utils.abs`: the absolute value, with `i32::MIN` (which has none) mapped to 0.
fn kafka_abs(n: i32) -> i32 {
    if n == i32::MIN { 0 } else { n.abs() }
}

/// The `__consumer_offsets` partition whose leader coordinates `group_id`.
///
/// # Panics
///
/// If `partitions` is 0 (a topic has at least one partition).
pub fn partition_for_group(group_id: &str, partitions: u32) -> u32 {
    assert!(
        partitions > 0,
        "__consumer_offsets has at least one partition"
    );
    // kafka_abs never returns a negative number.
    kafka_abs(java_string_hash(group_id)).unsigned_abs() % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_of_short_strings_by_hand() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        // 'a' * 31 + 'b' = 97 * 31 + 98
        assert_eq!(java_string_hash("ab"), 3105);
        // The classic collision: 'A'*31 + 'a' = 65*31 + 97 = 'B'*31 + 'B' = 66*31 + 66.
        assert_eq!(java_string_hash("Aa"), 2112);
        assert_eq!(java_string_hash("BB"), 2112);
        // ((('t'*31 + 'e')*31 + 's')*31 + 't') = ((116*31 + 101)*31 + 115)*31 + 116
        assert_eq!(java_string_hash("test"), 3_556_498);
    }

    #[test]
    fn java_hash_counts_utf16_code_units() {
        // 'é' is one UTF-16 unit (0xE9 = 233) though two UTF-8 bytes.
        assert_eq!(java_string_hash("é"), 233);
        // U+1F600 is the surrogate pair D83D DE00: 0xD83D * 31 + 0xDE00.
        assert_eq!(java_string_hash("\u{1F600}"), 0xD83D * 31 + 0xDE00);
    }

    #[test]
    fn java_hash_wraps_like_java_int() {
        // Well-known string whose hashCode is Integer.MIN_VALUE.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        // Computed independently: the polynomial mod 2^32, read as a signed int.
        let reference = |s: &str| -> i32 {
            let wide = s
                .encode_utf16()
                .fold(0u64, |h, u| (h * 31 + u64::from(u)) % (1 << 32));
            i32::from_be_bytes(u32::try_from(wide).unwrap().to_be_bytes())
        };
        for s in [
            "my-group",
            "consumer-group-1",
            "a-much-longer-group-identifier-\u{1F600}",
        ] {
            assert_eq!(java_string_hash(s), reference(s), "{s}");
        }
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
    }

    #[test]
    fn partition_uses_kafka_abs_not_a_sign_mask() {
        assert_eq!(partition_for_group("", 50), 0);
        assert_eq!(partition_for_group("a", 50), 47);
        assert_eq!(partition_for_group("ab", 50), 5);
        assert_eq!(partition_for_group("test", 50), 3_556_498 % 50);
        // Negative hash: |-1906497762| % 50 = 12 (a `& 0x7fffffff` mask would give 36).
        assert_eq!(partition_for_group("my-group", 50), 12);
        // Utils.abs(Integer.MIN_VALUE) == 0.
        assert_eq!(partition_for_group("polygenelubricants", 50), 0);
        assert_eq!(partition_for_group("anything", 1), 0);
    }
}
