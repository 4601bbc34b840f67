//! Idempotent-producer state of one partition: per producer id, its epoch and the last
//! five batches it wrote, so a retried batch is answered with its original offset
//! instead of being appended twice, and a gap in sequence numbers is refused (KIP-98).
//!
//! Pure: no I/O. The owning partition feeds it batch headers on append and, at open,
//! from the tail of its log. (The design places producer state in the `coordinator`
//! crate; it moves there when that crate exists.)

use std::collections::{HashMap, VecDeque};

use sluice_protocol::ResponseError;
use sluice_protocol::record::BatchHeader;

/// Batches remembered per producer, as Kafka does (max.in.flight ≤ 5 with idempotence).
const CACHED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CachedBatch {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: i64,
}

#[derive(Debug, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<CachedBatch>,
}

impl ProducerEntry {
    fn last_sequence(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_sequence)
    }
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Not idempotent, or the next batch in sequence: append it.
    Append,
    /// Already in the log at this base offset: answer with it, append nothing.
    Duplicate { base_offset: i64 },
    /// Refuse with this error.
    Reject(ResponseError),
}

/// The sequence number after `sequence` (sequences wrap from i32::MAX to 0).
fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

fn last_sequence_of(header: &BatchHeader) -> i32 {
    // Kafka: baseSequence + lastOffsetDelta, wrapping past i32::MAX.
    let last = i64::from(header.base_sequence) + i64::from(header.last_offset_delta);
    if last > i64::from(i32::MAX) {
        (last - i64::from(i32::MAX) - 1) as i32
    } else {
        last as i32
    }
}

/// Producer state of one partition.
#[derive(Debug, Default)]
pub(crate) struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// Decides what to do with a batch about to be appended.
    pub(crate) fn check(&self, header: &BatchHeader) -> Decision {
        if header.producer_id < 0 {
            return Decision::Append;
        }
        let Some(entry) = self.producers.get(&header.producer_id) else {
            // Unknown producer (new, or its state predates what was rebuilt): accept.
            return Decision::Append;
        };
        if header.producer_epoch < entry.epoch {
            return Decision::Reject(ResponseError::InvalidProducerEpoch);
        }
        if header.producer_epoch > entry.epoch {
            return if header.base_sequence == 0 {
                Decision::Append
            } else {
                Decision::Reject(ResponseError::OutOfOrderSequenceNumber)
            };
        }
        let last = last_sequence_of(header);
        if let Some(cached) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == header.base_sequence && b.last_sequence == last)
        {
            return Decision::Duplicate {
                base_offset: cached.base_offset,
            };
        }
        match entry.last_sequence() {
            Some(previous) if header.base_sequence != next_sequence(previous) => {
                Decision::Reject(ResponseError::OutOfOrderSequenceNumber)
            }
            _ => Decision::Append,
        }
    }

    /// Records a batch that is now in the log at `base_offset`.
    pub(crate) fn record(&mut self, header: &BatchHeader, base_offset: i64) {
        if header.producer_id < 0 {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == CACHED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(CachedBatch {
            first_sequence: header.base_sequence,
            last_sequence: last_sequence_of(header),
            base_offset,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 49,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            record_count: records,
        }
    }

    #[test]
    fn retried_batch_is_a_duplicate_with_its_offset() {
        let mut states = ProducerStates::default();
        let first = header(7, 0, 0, 3);
        assert_eq!(states.check(&first), Decision::Append);
        states.record(&first, 100);
        assert_eq!(
            states.check(&first),
            Decision::Duplicate { base_offset: 100 }
        );
        let next = header(7, 0, 3, 2);
        assert_eq!(states.check(&next), Decision::Append);
    }

    #[test]
    fn sequence_gap_and_stale_epoch_are_refused() {
        let mut states = ProducerStates::default();
        states.record(&header(7, 1, 0, 3), 0);
        assert_eq!(
            states.check(&header(7, 1, 10, 1)),
            Decision::Reject(ResponseError::OutOfOrderSequenceNumber)
        );
        assert_eq!(
            states.check(&header(7, 0, 3, 1)),
            Decision::Reject(ResponseError::InvalidProducerEpoch)
        );
        assert_eq!(states.check(&header(7, 2, 0, 1)), Decision::Append);
        assert_eq!(
            states.check(&header(7, 2, 5, 1)),
            Decision::Reject(ResponseError::OutOfOrderSequenceNumber)
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut states = ProducerStates::default();
        for i in 0..6 {
            states.record(&header(1, 0, i, 1), i64::from(i));
        }
        // The oldest fell out; it is now just out of order.
        assert_eq!(
            states.check(&header(1, 0, 0, 1)),
            Decision::Reject(ResponseError::OutOfOrderSequenceNumber)
        );
        assert_eq!(
            states.check(&header(1, 0, 5, 1)),
            Decision::Duplicate { base_offset: 5 }
        );
    }

    #[test]
    fn sequences_wrap() {
        let mut states = ProducerStates::default();
        states.record(&header(1, 0, i32::MAX - 1, 2), 0);
        assert_eq!(states.check(&header(1, 0, 0, 1)), Decision::Append);
    }

    #[test]
    fn non_idempotent_batches_always_append() {
        let states = ProducerStates::default();
        assert_eq!(states.check(&header(-1, -1, -1, 5)), Decision::Append);
    }
}
