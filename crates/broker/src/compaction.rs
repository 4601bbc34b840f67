//! Runs log compaction for a shard's partitions: the plan is made on the shard, the
//! cleaning (reading and rewriting sealed segments) runs on a blocking thread, and the
//! cleaned segments are swapped in back on the shard. Appends and fetches never wait for
//! it; one compaction at a time per partition.

use tracing::{info, warn};

use crate::shard::PartitionRef;

/// Keys the cleaner's map holds per run (16 bytes each); a log with more distinct keys in
/// its dirty part is compacted over several runs.
const KEY_MAP_CAPACITY: usize = 1 << 20;

/// Starts a compaction of `partition` when one is due.
pub(crate) fn maybe_start(partition: &PartitionRef, now_ms: i64) {
    let (plan, delete_retention_ms) = {
        let p = partition.borrow();
        match p.compaction_due(now_ms) {
            Some(plan) => (plan, p.config.delete_retention_ms),
            None => return,
        }
    };
    partition.borrow_mut().cleaning = true;
    let partition = partition.clone();
    tokio::task::spawn_local(async move {
        let cleaned = tokio::task::spawn_blocking(move || {
            sluice_storage::cleaner::clean(&plan, now_ms, delete_retention_ms, KEY_MAP_CAPACITY)
        })
        .await;
        let mut p = partition.borrow_mut();
        p.cleaning = false;
        let cleaned = match cleaned {
            Ok(Ok(cleaned)) => cleaned,
            Ok(Err(error)) => {
                warn!(topic = %p.topic, partition = p.index, %error, "compaction failed");
                return;
            }
            Err(error) => {
                warn!(topic = %p.topic, partition = p.index, %error, "compaction task failed");
                return;
            }
        };
        match p.log_mut().install_cleaned(cleaned) {
            Ok(outcome) if outcome.segments_installed > 0 => info!(
                topic = %p.topic,
                partition = p.index,
                segments = outcome.segments_installed,
                bytes_before = outcome.bytes_before,
                bytes_after = outcome.bytes_after,
                "compacted"
            ),
            Ok(_) => {}
            Err(error) => {
                warn!(topic = %p.topic, partition = p.index, %error, "installing compacted segments failed")
            }
        }
    });
}
