//! Group coordinators on their shards: one sans-io [`GroupCoordinator`] per
//! `__consumer_offsets` partition, living on the shard that owns (leads) the partition.
//! This module carries out what the coordinator asks: answers go back to the waiting
//! handler over a oneshot, appends go through the partition's normal append and fsync
//! path, and time arrives from the shard's housekeeping tick.
//!
//! ```text
//!  handler (any shard) ──on_shard──▶ CoordinatorHost::submit ──▶ coordinator.handle
//!        ▲                                                            │ effects
//!        └──── oneshot ◀── Respond ◀───────────────────────────────────┤
//!                          Append ──▶ partition.append ──▶ wait_synced ──▶ Appended
//! ```
//!
//! A partition opened on a shard starts its coordinator from the records in its log;
//! when replication moves the partition's leadership, the same calls move the
//! coordinator (start on the new leader, `Unloaded` on the old one).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use sluice_coordinator::{
    AppendFailed, AppendToken, Effect, GroupConfig, GroupCoordinator, GroupRequest, GroupResponse,
    Input, OffsetsRecord, RequestId,
};
use sluice_protocol::ResponseError;
use sluice_protocol::kafka_protocol::messages::list_groups_response::ListedGroup;
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use sluice_protocol::record::{
    BatchHeader, Compression, RecordBatchBuilder, decode_records, split_batches,
};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::partition::{AppendFailure, ValidBatch};
use crate::shard::PartitionRef;

/// Kafka's internal topic of group metadata and committed offsets.
pub(crate) const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Largest uncompressed batch read back while loading (a batch of the offsets topic is
/// bounded by its `max.message.bytes`; this only guards against a corrupt header).
const LOAD_MAX_BATCH: usize = 64 << 20;

/// Bytes read per step while loading a partition.
const LOAD_READ_BYTES: usize = 1 << 20;

/// The coordinator of one `__consumer_offsets` partition and the requests waiting on it.
pub(crate) struct CoordinatorHost {
    index: i32,
    partition: PartitionRef,
    coordinator: RefCell<GroupCoordinator>,
    waiters: RefCell<HashMap<RequestId, oneshot::Sender<GroupResponse>>>,
    next_id: Cell<u64>,
}

/// Who sent a request, as DescribeGroups shows members.
pub(crate) struct Caller {
    pub(crate) api_version: i16,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
}

impl CoordinatorHost {
    /// Starts the coordinator of partition `index`, rebuilt from the records in its log.
    pub(crate) fn start(
        index: i32,
        partition: PartitionRef,
        config: &GroupConfig,
        now_ms: i64,
    ) -> Result<Rc<Self>, String> {
        let (records, skipped) = read_records(&partition)?;
        let loaded = records.len();
        let coordinator =
            GroupCoordinator::load(config, now_ms, records).map_err(|e| e.to_string())?;
        let groups = coordinator.group_ids().count();
        info!(
            partition = index,
            records = loaded,
            skipped,
            groups,
            "group coordinator loaded"
        );
        Ok(Rc::new(Self {
            index,
            partition,
            coordinator: RefCell::new(coordinator),
            waiters: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
        }))
    }

    /// Hands a request to the coordinator; the receiver gets its response (possibly
    /// much later: a JoinGroup waits for the rebalance).
    pub(crate) fn submit(
        self: &Rc<Self>,
        caller: Caller,
        body: GroupRequest,
        now_ms: i64,
    ) -> oneshot::Receiver<GroupResponse> {
        let id = RequestId(self.next_id.get());
        self.next_id.set(self.next_id.get().wrapping_add(1));
        let (tx, rx) = oneshot::channel();
        self.waiters.borrow_mut().insert(id, tx);
        self.feed(
            now_ms,
            Input::Request {
                id,
                api_version: caller.api_version,
                client_id: caller.client_id,
                client_host: caller.client_host,
                body,
            },
        );
        rx
    }

    /// Fires the coordinator's timers when one is due.
    pub(crate) fn tick(self: &Rc<Self>, now_ms: i64) {
        let due = self
            .coordinator
            .borrow()
            .next_deadline()
            .is_some_and(|deadline| deadline <= now_ms);
        if due {
            self.feed(now_ms, Input::Tick);
        }
    }

    /// ListGroups for this partition's groups.
    pub(crate) fn list_groups(
        &self,
        states: &[StrBytes],
        types: &[StrBytes],
    ) -> Result<Vec<ListedGroup>, ResponseError> {
        self.coordinator.borrow().list_groups(states, types)
    }

    /// Durable committed offsets of this partition's groups, for the lag metric.
    pub(crate) fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        self.coordinator.borrow().committed_offsets()
    }

    /// Leadership of the partition is gone: answer everything waiting with
    /// NOT_COORDINATOR.
    pub(crate) fn unload(self: &Rc<Self>, now_ms: i64) {
        self.feed(now_ms, Input::Unloaded);
    }

    /// Runs one input and everything it leads to.
    fn feed(self: &Rc<Self>, now_ms: i64, input: Input) {
        let mut effects = self.coordinator.borrow_mut().handle(now_ms, input);
        while !effects.is_empty() {
            let mut next = Vec::new();
            for effect in effects {
                match effect {
                    Effect::Respond { id, response } => {
                        if let Some(waiter) = self.waiters.borrow_mut().remove(&id) {
                            // The client may have gone; nothing to do then.
                            let _ = waiter.send(response);
                        }
                    }
                    Effect::Append { token, records } => {
                        if let Some(input) = self.append(token, &records, now_ms) {
                            next.extend(self.coordinator.borrow_mut().handle(now_ms, input));
                        }
                    }
                }
            }
            effects = next;
        }
    }

    /// Appends `records` as one batch. A failure comes back at once as the input to
    /// feed; success is reported once the batch is durable, from a task.
    fn append(
        self: &Rc<Self>,
        token: AppendToken,
        records: &[OffsetsRecord],
        now_ms: i64,
    ) -> Option<Input> {
        let failed = |reason: AppendFailed| {
            Some(Input::Appended {
                token,
                result: Err(reason),
            })
        };
        let mut builder = RecordBatchBuilder::new(Compression::None);
        for r in records {
            if builder
                .try_push(Some(&r.key), r.value.as_deref(), &[], now_ms)
                .is_err()
            {
                return failed(AppendFailed::TooLarge);
            }
        }
        let bytes = builder.build();
        let Ok(header) = BatchHeader::parse(&bytes) else {
            return failed(AppendFailed::Other);
        };
        let batch = ValidBatch {
            bytes,
            max_timestamp: now_ms,
            header,
        };
        let appended = self.partition.borrow_mut().append(&[batch], now_ms);
        let end = match appended {
            Ok(a) => a
                .base_offset
                .saturating_add(i64::try_from(records.len()).unwrap_or(i64::MAX)),
            Err(AppendFailure::Storage(error)) => {
                warn!(partition = self.index, %error, "group metadata append failed");
                return failed(AppendFailed::StorageError);
            }
            Err(error) => {
                warn!(
                    partition = self.index,
                    ?error,
                    "group metadata append refused"
                );
                return failed(AppendFailed::Other);
            }
        };
        let fsync = self.partition.borrow().fsync_before_ack();
        if !fsync {
            return Some(Input::Appended {
                token,
                result: Ok(()),
            });
        }
        let host = self.clone();
        tokio::task::spawn_local(async move {
            let result = crate::flush::wait_synced(&host.partition, end)
                .await
                .map_err(|error| {
                    warn!(partition = host.index, %error, "group metadata fsync failed");
                    AppendFailed::StorageError
                });
            host.feed(crate::handler::now_ms(), Input::Appended { token, result });
        });
        None
    }
}

/// Every record of the partition, oldest first, and how many could not be read.
fn read_records(partition: &PartitionRef) -> Result<(Vec<OffsetsRecord>, usize), String> {
    let partition = partition.borrow();
    let log = partition.log();
    let mut records = Vec::new();
    let mut skipped = 0usize;
    let mut at = log.log_start_offset();
    while at < log.log_end_offset() {
        let slice = log
            .read(at, LOAD_READ_BYTES, true)
            .map_err(|e| format!("cannot read {OFFSETS_TOPIC} at {at}: {e}"))?;
        if slice.is_empty() {
            break;
        }
        for batch in split_batches(&slice.bytes) {
            let Ok(batch) = batch else {
                skipped = skipped.saturating_add(1);
                break;
            };
            let batch = slice.bytes.slice_ref(batch);
            let Ok(header) = BatchHeader::parse(&batch) else {
                skipped = skipped.saturating_add(1);
                continue;
            };
            if header.is_control() {
                continue;
            }
            match decode_records(&batch, LOAD_MAX_BATCH) {
                Ok(decoded) => records.extend(decoded.into_iter().filter_map(|r| {
                    r.key.map(|key| OffsetsRecord {
                        key,
                        value: r.value,
                    })
                })),
                Err(error) => {
                    debug!(offset = header.base_offset, %error, "unreadable offsets batch skipped");
                    skipped = skipped.saturating_add(1);
                }
            }
        }
        at = slice.next_offset;
    }
    Ok((records, skipped))
}
