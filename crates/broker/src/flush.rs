//! Group commit: fsyncs of a partition's log run without blocking the shard, one at a
//! time, and every produce waiting for durability is released by the first fsync that
//! covers its offset. Many concurrent acks=all requests share one fdatasync. On an
//! io_uring shard the fsyncs are io_uring operations; on the tokio fallback they run on
//! the blocking pool.
//!
//! ```text
//!  append ─▶ wait_synced(offset) ──▶ [sync running?] ── no ──▶ start: sync_handle(),
//!                                         │ yes                  spawn_blocking(run),
//!                                         ▼                      mark_synced, release
//!                                   queue the waiter             waiters ≤ synced,
//!                                                                again if any remain
//! ```

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use tokio::sync::oneshot;
use tracing::error;

use crate::shard::PartitionRef;

thread_local! {
    /// Whether this shard thread runs on io_uring (set once when the shard starts).
    static ON_URING: Cell<bool> = const { Cell::new(false) };
}

/// Records that this thread's runtime is tokio-uring, so fsyncs go through io_uring.
pub(crate) fn set_uring_runtime(uring: bool) {
    ON_URING.with(|on| on.set(uring));
}

/// Syncs a handle's files through io_uring, then finishes it (a rare checkpoint write
/// goes to the blocking pool). A failed sync is recorded on the handle, so that every
/// later sync of the log fails too.
async fn sync_with_uring(handle: &sluice_storage::SyncHandle) -> Result<(), FlushFailed> {
    let failed = |e: &dyn std::fmt::Display| FlushFailed {
        reason: e.to_string(),
    };
    for (file, is_dir) in handle.files() {
        if let Err(e) = sync_one(file, is_dir).await {
            handle.mark_failed();
            return Err(failed(&e));
        }
    }
    if handle.has_checkpoint() {
        let handle = handle.clone();
        tokio::task::spawn_blocking(move || handle.finish())
            .await
            .map_err(|e| failed(&e))?
            .map_err(|e| failed(&e))?;
    } else {
        handle.finish().map_err(|e| failed(&e))?;
    }
    Ok(())
}

/// One `fsync` (directory) or `fdatasync` (file) through io_uring on a duplicate of
/// the file's descriptor; on the blocking pool for a file without one (an in-memory
/// file backend).
async fn sync_one(
    file: &std::sync::Arc<dyn sluice_storage::BackendFile>,
    is_dir: bool,
) -> std::io::Result<()> {
    let Some(fd) = file.as_fd() else {
        let file = std::sync::Arc::clone(file);
        return tokio::task::spawn_blocking(move || file.sync())
            .await
            .map_err(std::io::Error::other)?;
    };
    // Owned by the io_uring file and closed with it.
    let owned = fd.try_clone_to_owned()?;
    let file = tokio_uring::fs::File::from_std(std::fs::File::from(owned));
    let synced = if is_dir {
        file.sync_all().await
    } else {
        file.sync_data().await
    };
    let _ = file.close().await;
    synced
}

/// The fsync failed: the log's durability is unknown, and the append must not be
/// acknowledged as durable.
#[derive(Debug, Clone, thiserror::Error)]
#[error("fsync failed: {reason}")]
pub(crate) struct FlushFailed {
    pub(crate) reason: String,
}

/// A produce waiting until offsets below `.0` are durable.
type Waiter = (i64, oneshot::Sender<Result<(), FlushFailed>>);

/// Per-partition group-commit state, owned by the partition's shard.
#[derive(Debug, Default)]
pub(crate) struct Flusher {
    running: Cell<bool>,
    waiters: RefCell<Vec<Waiter>>,
}

/// Waits until every offset below `offset` of `partition` is fsynced, starting an
/// fsync when none is running.
pub(crate) async fn wait_synced(partition: &PartitionRef, offset: i64) -> Result<(), FlushFailed> {
    let (flusher, synced) = {
        let p = partition.borrow();
        (p.flusher.clone(), p.log().synced_offset())
    };
    if synced >= offset {
        return Ok(());
    }
    let (tx, rx) = oneshot::channel();
    flusher.waiters.borrow_mut().push((offset, tx));
    if !flusher.running.get() {
        start(partition.clone(), flusher);
    }
    rx.await.unwrap_or_else(|_| {
        Err(FlushFailed {
            reason: "partition closed before its fsync finished".to_owned(),
        })
    })
}

/// Starts an fsync now unless one is running (used by flush.messages and flush.ms).
pub(crate) fn request_sync(partition: &PartitionRef) {
    let flusher = partition.borrow().flusher.clone();
    if !flusher.running.get() {
        start(partition.clone(), flusher);
    }
}

fn start(partition: PartitionRef, flusher: Rc<Flusher>) {
    flusher.running.set(true);
    let handle = partition.borrow().log().sync_handle();
    tokio::task::spawn_local(async move {
        let started = std::time::Instant::now();
        let result = if ON_URING.with(Cell::get) {
            sync_with_uring(&handle).await
        } else {
            let job = handle.clone();
            match tokio::task::spawn_blocking(move || job.run()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(FlushFailed {
                    reason: e.to_string(),
                }),
                Err(e) => Err(FlushFailed {
                    reason: e.to_string(),
                }),
            }
        };
        crate::metrics::local(|m| m.fsync.observe_duration(started.elapsed()));
        let synced = {
            let mut p = partition.borrow_mut();
            if result.is_ok() {
                p.mark_synced(&handle);
            } else {
                error!(topic = %p.topic, partition = p.index, "fsync failed; acknowledgements waiting for it fail");
            }
            p.log().synced_offset()
        };
        let remaining = {
            let mut waiters = flusher.waiters.borrow_mut();
            let mut kept = Vec::new();
            for (offset, tx) in waiters.drain(..) {
                match &result {
                    Ok(()) if offset <= synced => {
                        let _ = tx.send(Ok(()));
                    }
                    Ok(()) => kept.push((offset, tx)),
                    Err(e) => {
                        let _ = tx.send(Err(e.clone()));
                    }
                }
            }
            *waiters = kept;
            !waiters.is_empty()
        };
        flusher.running.set(false);
        if remaining {
            start(partition, flusher);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use sluice_protocol::record::{Compression, RecordBatchBuilder};

    use super::*;
    use crate::catalog::{PartitionShared, Topic};
    use crate::partition::{Partition, ValidBatch};
    use crate::topic_config::{TopicConfig, TopicDefaults};

    fn partition(dir: &std::path::Path, overrides: &[(&str, &str)]) -> PartitionRef {
        let config = TopicConfig::new(
            overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            &TopicDefaults::default(),
        )
        .unwrap();
        let shared = Arc::new(PartitionShared::new(0));
        let topic = Topic {
            name: Arc::from("t"),
            id: uuid::Uuid::new_v4(),
            config,
            partitions: vec![shared.clone()],
        };
        Rc::new(RefCell::new(
            Partition::open(&topic, 0, shared, dir).unwrap(),
        ))
    }

    fn batch(records: usize) -> ValidBatch {
        let mut builder = RecordBatchBuilder::new(Compression::None);
        for i in 0..records {
            builder.push(None, Some(format!("v{i}").as_bytes()), &[], 1_000);
        }
        valid(builder.build())
    }

    fn valid(bytes: bytes::Bytes) -> ValidBatch {
        ValidBatch {
            header: sluice_protocol::record::BatchHeader::parse(&bytes).unwrap(),
            bytes,
            max_timestamp: 1_000,
        }
    }

    fn run_local<F: std::future::Future<Output = ()>>(future: F) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&runtime, future);
    }

    #[test]
    fn waiters_are_released_once_their_offsets_are_synced() {
        let dir = tempfile::tempdir().unwrap();
        run_local(async {
            let p = partition(dir.path(), &[]);
            p.borrow_mut().append(&[batch(3)], 1_000).unwrap();
            let first_end = p.borrow().log().log_end_offset();
            p.borrow_mut().append(&[batch(2)], 1_000).unwrap();
            let end = p.borrow().log().log_end_offset();
            // Two waiters, one fsync or two: both return only once covered.
            let (a, b) = tokio::join!(wait_synced(&p, first_end), wait_synced(&p, end));
            a.unwrap();
            b.unwrap();
            assert!(p.borrow().log().synced_offset() >= end);
            assert!(!p.borrow().flush_due(i64::MAX - 1), "nothing left to flush");
        });
    }

    #[test]
    fn fsyncs_go_through_io_uring_on_a_uring_shard() {
        if io_uring::IoUring::new(8).is_err() {
            eprintln!("io_uring unavailable here: the tokio path is covered by the other tests");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        tokio_uring::start(async {
            set_uring_runtime(true);
            let p = partition(dir.path(), &[("segment.bytes", "1048576")]);
            // Enough to roll a segment, so the sync also covers a sealed file, the
            // directory and the recovery point checkpoint.
            for _ in 0..3 {
                let big = {
                    let mut builder = RecordBatchBuilder::new(Compression::None);
                    builder.push(None, Some(&[1u8; 600_000]), &[], 1_000);
                    valid(builder.build())
                };
                p.borrow_mut().append(&[big], 1_000).unwrap();
            }
            let end = p.borrow().log().log_end_offset();
            wait_synced(&p, end).await.unwrap();
            assert!(p.borrow().log().synced_offset() >= end);
            assert!(
                p.borrow().log().segment_count() > 1,
                "the test rolled a segment"
            );
            set_uring_runtime(false);
        });
    }

    #[test]
    fn flush_messages_and_flush_ms_make_a_flush_due() {
        let dir = tempfile::tempdir().unwrap();
        run_local(async {
            let p = partition(dir.path(), &[("flush.messages", "4"), ("flush.ms", "50")]);
            // A new log's directory entries wait for their first sync.
            assert!(p.borrow().flush_due(1_000), "a new log is synced promptly");
            p.borrow_mut().sync().unwrap();
            assert!(!p.borrow().flush_due(1_000));
            p.borrow_mut().append(&[batch(3)], 1_000).unwrap();
            assert!(!p.borrow().flush_due(1_000), "3 records, fresh: not due");
            assert!(p.borrow().flush_due(1_050), "older than flush.ms: due");
            p.borrow_mut().append(&[batch(1)], 1_001).unwrap();
            assert!(p.borrow().flush_due(1_001), "4 records: due");
            let end = p.borrow().log().log_end_offset();
            wait_synced(&p, end).await.unwrap();
            assert!(!p.borrow().flush_due(1_001));
            assert!(
                p.borrow().fsync_before_ack(),
                "acks=all waits for fsync by default"
            );
        });
        let dir = tempfile::tempdir().unwrap();
        run_local(async {
            // A roll makes the sealed segment due, whatever flush.messages says.
            let p = partition(dir.path(), &[("segment.bytes", "1048576")]);
            p.borrow_mut().sync().unwrap();
            let big = || {
                let mut builder = RecordBatchBuilder::new(Compression::None);
                builder.push(None, Some(&[1u8; 600_000]), &[], 1_000);
                valid(builder.build())
            };
            p.borrow_mut().append(&[big()], 1_000).unwrap();
            assert!(!p.borrow().flush_due(1_000));
            p.borrow_mut().append(&[big()], 1_000).unwrap();
            assert!(p.borrow().log().segment_count() > 1, "rolled");
            assert!(p.borrow().flush_due(1_000), "a rolled segment is due");
        });
        let dir = tempfile::tempdir().unwrap();
        run_local(async {
            let p = partition(dir.path(), &[("write.caching", "true")]);
            assert!(
                !p.borrow().fsync_before_ack(),
                "write.caching answers before fsync"
            );
        });
    }
}
