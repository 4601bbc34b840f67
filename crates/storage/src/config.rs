//! Per-partition log configuration (Kafka topic configs `segment.bytes`,
//! `index.interval.bytes`, `segment.index.bytes`).

use crate::index::{OFFSET_ENTRY_LEN, TIME_ENTRY_LEN};

/// How a [`Log`](crate::Log) sizes its segments and indexes. Defaults follow Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment when the next batch would grow the active one past this
    /// many bytes (`segment.bytes`, default 1 GiB). A batch larger than this still goes
    /// in, alone in its segment.
    pub segment_bytes: u64,
    /// Bytes of batches between two sparse index entries (`index.interval.bytes`,
    /// default 4096). Smaller means bigger indexes and shorter scans on read.
    pub index_interval_bytes: u32,
    /// Largest size of an index file (`segment.index.bytes`, default 10 MiB); the
    /// segment rolls when its offset or time index is full.
    pub segment_index_bytes: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 << 20,
        }
    }
}

/// Why a [`LogConfig`] is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `segment_bytes` is zero or does not fit the index's 32-bit file positions.
    #[error("segment_bytes {segment_bytes} must be in 1..=2147483647")]
    SegmentBytes {
        /// The value given.
        segment_bytes: u64,
    },
    /// `segment_index_bytes` cannot hold a few entries of each index.
    #[error("segment_index_bytes {segment_index_bytes} must be at least {minimum}")]
    SegmentIndexBytes {
        /// The value given.
        segment_index_bytes: u32,
        /// The smallest accepted value.
        minimum: u32,
    },
}

/// Smallest index: room for two time index entries (one is kept free for the entry
/// written when the segment is sealed).
const MIN_INDEX_BYTES: u32 = 2 * TIME_ENTRY_LEN as u32;

impl LogConfig {
    /// Checks the values against the on-disk format's limits.
    ///
    /// # Errors
    /// [`ConfigError`] naming the bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // Index entries hold u32 positions; Kafka caps segment.bytes at i32::MAX too.
        if self.segment_bytes == 0 || self.segment_bytes > i32::MAX as u64 {
            return Err(ConfigError::SegmentBytes {
                segment_bytes: self.segment_bytes,
            });
        }
        if self.segment_index_bytes < MIN_INDEX_BYTES {
            return Err(ConfigError::SegmentIndexBytes {
                segment_index_bytes: self.segment_index_bytes,
                minimum: MIN_INDEX_BYTES,
            });
        }
        Ok(())
    }

    /// Entries the offset index of one segment may hold.
    pub(crate) fn max_index_entries(&self) -> usize {
        self.segment_index_bytes as usize / OFFSET_ENTRY_LEN
    }

    /// Entries the time index of one segment may hold.
    pub(crate) fn max_time_index_entries(&self) -> usize {
        self.segment_index_bytes as usize / TIME_ENTRY_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_matches_kafka() {
        let c = LogConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.segment_bytes, 1_073_741_824);
        assert_eq!(c.max_index_entries(), 1_310_720);
    }

    #[test]
    fn rejects_out_of_range_values() {
        let c = LogConfig {
            segment_bytes: 0,
            ..LogConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::SegmentBytes { .. })
        ));
        let c = LogConfig {
            segment_bytes: 1 << 32,
            ..LogConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::SegmentBytes { .. })
        ));
        let c = LogConfig {
            segment_index_bytes: 8,
            ..LogConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::SegmentIndexBytes { .. })
        ));
    }
}
