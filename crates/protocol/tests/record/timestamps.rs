//! LogAppendTime rewrites keep batches valid.

use proptest::prelude::*;
use sluice_protocol::record::{
    BatchError, BatchHeader, TimestampProblem, TimestampType, crc_matches, decode_records,
    set_log_append_time, set_max_timestamp, validate_batch,
};

use crate::support::{build, codec, input, permissive_limits};

const NOW: i64 = 1_700_000_000_000;

proptest! {
    #![proptest_config(crate::support::config(64))]

    #[test]
    fn log_append_time_rewrite_keeps_the_crc_valid(
        codec in codec(),
        inputs in proptest::collection::vec(input(NOW - 1000..NOW, 64), 1..6),
        append_time in any::<i64>(),
    ) {
        let batch = build(codec, &inputs, None);
        let summary = validate_batch(&batch, &permissive_limits(NOW)).unwrap();
        let mut stamped = batch.to_vec();
        set_log_append_time(&mut stamped, append_time);

        let header = BatchHeader::parse(&stamped).unwrap();
        prop_assert!(crc_matches(&header, &stamped));
        prop_assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
        prop_assert_eq!(header.max_timestamp, append_time);
        prop_assert_eq!(header.compression(), Some(codec));
        // Everything else is unchanged.
        prop_assert_eq!(header.base_timestamp, summary.header.base_timestamp);
        prop_assert_eq!(header.record_count, summary.header.record_count);
        prop_assert_eq!(&stamped[61..], &batch[61..]);

        let stamped = bytes::Bytes::from(stamped);
        let records = decode_records(&stamped, 1 << 20).unwrap();
        prop_assert!(records.iter().all(|r| r.timestamp(&header) == append_time));

        // A producer may not send such a batch.
        let refused = validate_batch(&stamped, &permissive_limits(NOW));
        prop_assert!(
            matches!(
                refused,
                Err(BatchError::InvalidTimestamp {
                    reason: TimestampProblem::LogAppendTimeFromProducer { .. },
                    ..
                })
            ),
            "{:?}",
            refused
        );

        // Back to CreateTime with the real max: the original batch again.
        let mut restored = stamped.to_vec();
        set_max_timestamp(&mut restored, TimestampType::CreateTime, summary.max_timestamp);
        prop_assert_eq!(&restored[..], &batch[..]);
    }
}
