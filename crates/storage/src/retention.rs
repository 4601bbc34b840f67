//! Which segments retention deletes: a pure function over segment metadata, following
//! Kafka's `UnifiedLog.deleteOldSegments` (time, then size, then log start offset).

/// What retention needs to know about one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    /// First offset the segment may hold.
    pub(crate) base_offset: i64,
    /// Offset after its last batch (the next segment's base, or the log end).
    pub(crate) next_offset: i64,
    /// Bytes of batches in it.
    pub(crate) size: u64,
    /// Largest batch max timestamp; for a segment without one (no batch has a
    /// timestamp >= 0), the caller passes the file's modification time, as Kafka does.
    pub(crate) largest_timestamp: i64,
}

/// How many of `segments` (oldest first, the last is the active one) retention
/// deletes, as Kafka does:
///
/// 1. from the oldest, while `now_ms - largest_timestamp > retention_ms`
///    (`retention_ms < 0`: no time limit);
/// 2. then, if the remaining size is at least `retention_bytes` (`< 0`: no limit),
///    while the remaining size minus the segment's still is at least
///    `retention_bytes`;
/// 3. then while the next segment starts at or below `log_start_offset`.
///
/// Each step stops at the first segment it keeps. An empty active segment is never
/// counted; a non-empty active one may be (the caller rolls first, so the log keeps
/// an empty active segment at the log end).
pub(crate) fn deletable(
    segments: &[SegmentMeta],
    now_ms: i64,
    retention_ms: i64,
    retention_bytes: i64,
    log_start_offset: i64,
) -> usize {
    let last = segments.len().saturating_sub(1);
    let eligible = |i: usize, s: &SegmentMeta| !(i == last && s.size == 0);
    let mut n = 0usize;
    if retention_ms >= 0 {
        for (i, s) in segments.iter().enumerate().skip(n) {
            if !eligible(i, s) || now_ms.saturating_sub(s.largest_timestamp) <= retention_ms {
                break;
            }
            n = i.saturating_add(1);
        }
    }
    if let Ok(limit) = u64::try_from(retention_bytes) {
        let size: u64 = segments
            .iter()
            .skip(n)
            .map(|s| s.size)
            .fold(0, u64::saturating_add);
        if let Some(mut diff) = size.checked_sub(limit) {
            for (i, s) in segments.iter().enumerate().skip(n) {
                if !eligible(i, s) || diff < s.size {
                    break;
                }
                diff = diff.saturating_sub(s.size);
                n = i.saturating_add(1);
            }
        }
    }
    for (i, s) in segments.iter().enumerate().skip(n) {
        // The active segment has no next segment: Kafka never deletes it by this rule.
        if i == last || s.next_offset > log_start_offset {
            break;
        }
        n = i.saturating_add(1);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Segments of `sizes` bytes, 10 offsets each, with the given largest timestamps.
    fn segs(spec: &[(u64, i64)]) -> Vec<SegmentMeta> {
        spec.iter()
            .enumerate()
            .map(|(i, &(size, ts))| SegmentMeta {
                base_offset: 10 * i as i64,
                next_offset: if size == 0 {
                    10 * i as i64
                } else {
                    10 * i as i64 + 10
                },
                size,
                largest_timestamp: ts,
            })
            .collect()
    }

    #[test]
    fn nothing_without_limits() {
        let s = segs(&[(100, 1), (100, 2), (100, 3)]);
        assert_eq!(deletable(&s, 1_000_000, -1, -1, 0), 0);
    }

    #[test]
    fn time_deletes_an_expired_prefix_only() {
        let s = segs(&[(100, 100), (100, 500), (100, 200), (100, 900)]);
        // now - ts > 300: 100 and 200 are expired, but 500 stops the scan.
        assert_eq!(deletable(&s, 800, 300, -1, 0), 1);
        // Exactly at the limit is kept (strictly greater deletes).
        assert_eq!(deletable(&s, 400, 300, -1, 0), 0);
        assert_eq!(deletable(&s, 401, 300, -1, 0), 1);
        // Everything expired, active included (the caller rolls).
        assert_eq!(deletable(&s, 10_000, 300, -1, 0), 4);
    }

    #[test]
    fn empty_active_segment_is_never_deleted() {
        let s = segs(&[(100, 100), (0, i64::MIN)]);
        assert_eq!(deletable(&s, i64::MAX, 0, 0, i64::MAX), 1);
        let s = segs(&[(0, i64::MIN)]);
        assert_eq!(deletable(&s, i64::MAX, 0, 0, i64::MAX), 0);
    }

    #[test]
    fn size_follows_kafkas_rule() {
        let s = segs(&[(100, 0), (50, 0), (200, 0), (10, 0)]);
        // total 360; limit 300: diff 60 → first (100) does not fit: nothing.
        assert_eq!(deletable(&s, 0, -1, 300, 0), 0);
        // limit 200: diff 160 → 100 goes (60 left), 50 goes (10 left), 200 stays.
        assert_eq!(deletable(&s, 0, -1, 200, 0), 2);
        // limit above the size: nothing.
        assert_eq!(deletable(&s, 0, -1, 1000, 0), 0);
        // limit 0: everything, the active one included.
        assert_eq!(deletable(&s, 0, -1, 0, 0), 4);
        // limit == size: diff 0, no segment is that small.
        assert_eq!(deletable(&s, 0, -1, 360, 0), 0);
    }

    #[test]
    fn time_then_size_then_log_start() {
        let s = segs(&[(100, 10), (100, 500), (100, 600), (100, 700)]);
        // Time takes the first; of the remaining 300, size 150 takes one more.
        assert_eq!(deletable(&s, 100, 50, 150, 0), 2);
        // Log start 30 covers the first three whole segments (not the active one).
        assert_eq!(deletable(&s, 0, -1, -1, 30), 3);
        assert_eq!(deletable(&s, 0, -1, -1, 29), 2);
        assert_eq!(deletable(&s, 0, -1, -1, i64::MAX), 3);
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let s = segs(&[(u64::MAX / 2, i64::MIN), (u64::MAX / 2, i64::MAX), (1, 0)]);
        assert_eq!(deletable(&s, i64::MIN, 0, -1, 0), 0);
        assert_eq!(deletable(&s, i64::MAX, 0, -1, 0), 1);
        // Total saturates at u64::MAX: 2^63 over the limit, room for the first only.
        assert_eq!(deletable(&s, 0, -1, i64::MAX, 0), 1);
        assert_eq!(deletable(&s, i64::MIN, 0, 0, 0), 3);
    }
}
