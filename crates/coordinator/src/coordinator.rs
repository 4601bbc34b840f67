//! The coordinator of one `__consumer_offsets` partition.
//!
//! ```text
//!            Input::Request ──▶ per-API handler ──▶ group state changes
//!                                   │                    │
//!                                   │ answer now         │ records to persist
//!                                   ▼                    ▼
//!                          Effect::Respond        Effect::Append ──▶ broker appends
//!                                   ▲                                  │
//!   parked requests (JoinGroup,     │                                  ▼
//!   SyncGroup, commits...) ─────────┴──── applied in append order ◀── Input::Appended
//! ```
//!
//! Group state (membership, generation, rebalance progress) changes as requests arrive,
//! as in Kafka. What is *durable* changes only when an append is reported durable, and
//! appends are applied strictly in the order they were emitted (a later result waits for
//! an earlier one), so the in-memory durable view always equals what a reload of the log
//! would produce.

mod consumer_describe;
mod consumer_heartbeat;
mod delete_groups;
mod describe;
mod expiration;
mod heartbeat;
mod join;
mod leave;
mod load;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod rebalance;
mod shape;
mod snapshot;
mod sync;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{
    DeleteGroupsResponse, GroupId, JoinGroupResponse, OffsetCommitResponse, OffsetDeleteResponse,
    SyncGroupResponse,
};
use sluice_protocol::{ResponseError, kafka_protocol};

pub use load::LoadReport;

use crate::config::{ConfigError, GroupConfig, Limits};
use crate::consumer::{self, ConsumerGroup, RegexCache};
use crate::effect::{AppendToken, Effect, GroupResponse};
use crate::group::{ClassicGroup, Parked, Protocol};
use crate::input::{AppendFailed, GroupRequest, Input, OffsetFetchGroup, RequestId};
use crate::member_id::MemberIdGenerator;
use crate::offsets::OffsetStore;
use crate::record::{
    ConsumerKey, ConsumerValue, CoordinatorRecord, OffsetsRecord, RecordKey, RecordValue,
};
use crate::timer::{TimerAction, TimerKey, Timers};
use crate::topics::TopicsImage;
use shape::RequestShape;

/// Where the coordinator is in its life as partition leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordinatorStatus {
    /// Created, waiting for [`Input::Loaded`]: requests get COORDINATOR_LOAD_IN_PROGRESS.
    Loading,
    /// Serving requests.
    Active,
    /// Leadership lost ([`Input::Unloaded`]): requests get NOT_COORDINATOR.
    Unloaded,
}

/// Kafka's classic group coordinator for one `__consumer_offsets` partition, as a state
/// machine: feed it [`Input`]s with the current time, carry out the [`Effect`]s it returns.
#[derive(Debug)]
pub struct GroupCoordinator {
    status: CoordinatorStatus,
    groups: BTreeMap<String, ClassicGroup>,
    /// KIP-848 consumer groups; a group id is either here or in `groups`, never both.
    consumer_groups: BTreeMap<String, ConsumerGroup>,
    /// The latest durable value of every consumer group record key, to rebuild a group
    /// whose append failed.
    consumer_durable: BTreeMap<ConsumerKey, ConsumerValue>,
    /// The broker's latest topic snapshot, for assignments made without a request (a
    /// member fenced by a timer).
    topics: Arc<TopicsImage>,
    offsets: OffsetStore,
    rt: Runtime,
    load_report: Option<LoadReport>,
}

/// Everything besides the groups and offsets: clock, limits, timers, outgoing effects,
/// parked requests and appends in flight. Kept apart so a handler can hold a group
/// mutably while it answers requests and schedules timers.
#[derive(Debug)]
pub(crate) struct Runtime {
    limits: Limits,
    now_ms: i64,
    effects: Vec<Effect>,
    timers: Timers,
    /// Requests not answered yet, with what is needed to answer them with an error.
    parked: BTreeMap<RequestId, RequestShape>,
    /// Appends not yet applied, in emission order.
    pending: BTreeMap<AppendToken, PendingAppend>,
    /// OffsetFetch with `require_stable`, waiting for the appends emitted before them.
    stable_fetches: Vec<StableFetch>,
    load: u32,
    next_seq: u64,
    member_ids: MemberIdGenerator,
    /// Offsets whose expiry tombstones are in flight, so cleanup does not repeat them.
    expiring: BTreeSet<(String, String, i32)>,
    /// Compiled subscription regexes of consumer groups.
    regexes: RegexCache,
    /// Consumer groups whose deletion tombstones are in flight: their offsets being
    /// applied meanwhile must not bring a simple group back.
    deleting_consumer: BTreeSet<String>,
    /// Answers that carry no write of their own but must not leave before the appends
    /// emitted earlier (Kafka completes such writes once the log is committed up to them).
    deferred: Vec<Deferred>,
}

#[derive(Debug)]
struct Deferred {
    after_seq: u64,
    id: RequestId,
    response: GroupResponse,
}

#[derive(Debug)]
struct PendingAppend {
    records: Vec<CoordinatorRecord>,
    purpose: Purpose,
    result: Option<Result<(), AppendFailed>>,
}

#[derive(Debug)]
struct StableFetch {
    /// Answer once every append up to and including this sequence number is applied.
    after_seq: u64,
    id: RequestId,
    request: OffsetFetchGroup,
}

/// Why an append was made: what to do once it is durable or has failed.
#[derive(Debug)]
enum Purpose {
    /// The join phase left the group empty; nobody waits.
    EmptyGroup,
    /// The leader's SyncGroup: answer the parked SyncGroups.
    SyncAssignment {
        group: String,
        generation: i32,
        assignments: BTreeMap<String, Bytes>,
    },
    /// A static member replaced its old member id without a rebalance.
    StaticRejoin(StaticRejoin),
    OffsetCommit {
        id: RequestId,
        response: OffsetCommitResponse,
    },
    OffsetDelete {
        id: RequestId,
        response: OffsetDeleteResponse,
    },
    DeleteGroups {
        id: RequestId,
        response: DeleteGroupsResponse,
        deleted: Vec<String>,
        consumer_deleted: Vec<String>,
        requested: Vec<GroupId>,
    },
    Cleanup {
        deleted: Vec<String>,
        consumer_deleted: Vec<String>,
        expired: Vec<(String, String, i32)>,
    },
    /// A consumer group change (heartbeat, fencing): answer once durable; on failure the
    /// groups are rebuilt from what is durable and still pending.
    Consumer {
        reply: Option<(RequestId, GroupResponse)>,
        groups: Vec<String>,
    },
}

/// What a failed static-member replacement must undo.
#[derive(Debug)]
struct StaticRejoin {
    group: String,
    group_instance_id: String,
    old_member_id: String,
    new_member_id: String,
    old_protocols: Vec<Protocol>,
    old_rebalance_timeout_ms: i32,
    old_session_timeout_ms: i32,
    join: Parked,
    leader_at_join: Option<String>,
}

/// Who sent a request (Kafka's RequestContext, as far as groups care).
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub(crate) id: RequestId,
    pub(crate) api_version: i16,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
}

impl Caller {
    fn parked(&self) -> Parked {
        Parked {
            id: self.id,
            api_version: self.api_version,
        }
    }
}

impl GroupCoordinator {
    /// A coordinator for a partition this node just became leader of. It answers
    /// COORDINATOR_LOAD_IN_PROGRESS until [`Input::Loaded`].
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of an invalid `config`.
    pub fn new(config: &GroupConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            status: CoordinatorStatus::Loading,
            groups: BTreeMap::new(),
            consumer_groups: BTreeMap::new(),
            consumer_durable: BTreeMap::new(),
            topics: Arc::new(TopicsImage::default()),
            offsets: OffsetStore::default(),
            rt: Runtime {
                limits: config.limits()?,
                now_ms: i64::MIN,
                effects: Vec::new(),
                timers: Timers::default(),
                parked: BTreeMap::new(),
                pending: BTreeMap::new(),
                stable_fetches: Vec::new(),
                load: 0,
                next_seq: 0,
                member_ids: MemberIdGenerator::new(config.member_id_seed),
                expiring: BTreeSet::new(),
                regexes: RegexCache::default(),
                deleting_consumer: BTreeSet::new(),
                deferred: Vec::new(),
            },
            load_report: None,
        })
    }

    /// A coordinator rebuilt from the partition's records, ready to serve (`new` followed
    /// by [`Input::Loaded`]).
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of an invalid `config`.
    pub fn load(
        config: &GroupConfig,
        now_ms: i64,
        records: impl IntoIterator<Item = OffsetsRecord>,
    ) -> Result<Self, ConfigError> {
        let mut coordinator = Self::new(config)?;
        coordinator.rt.now_ms = now_ms;
        coordinator.install(records);
        Ok(coordinator)
    }

    /// Processes one input at `now_ms` and returns what the broker must do, in order.
    /// Time never goes backwards: an earlier `now_ms` than already seen counts as the same
    /// instant.
    pub fn handle(&mut self, now_ms: i64, input: Input) -> Vec<Effect> {
        self.rt.now_ms = self.rt.now_ms.max(now_ms);
        match input {
            Input::Request {
                id,
                api_version,
                client_id,
                client_host,
                body,
            } => self.on_request(
                Caller {
                    id,
                    api_version,
                    client_id,
                    client_host,
                },
                body,
            ),
            Input::Tick => {}
            Input::Appended { token, result } => {
                if let Some(pending) = self.rt.pending.get_mut(&token)
                    && pending.result.is_none()
                {
                    pending.result = Some(result);
                }
            }
            Input::Loaded(records) => {
                self.shut_down();
                self.install(records);
            }
            Input::Unloaded => {
                self.shut_down();
                self.status = CoordinatorStatus::Unloaded;
            }
        }
        if self.status == CoordinatorStatus::Active {
            self.run_until_idle();
        }
        std::mem::take(&mut self.rt.effects)
    }

    /// When the broker must next send [`Input::Tick`]; `None` while not serving or with
    /// nothing scheduled.
    pub fn next_deadline(&self) -> Option<i64> {
        match self.status {
            CoordinatorStatus::Active => self.rt.timers.next_deadline(),
            _ => None,
        }
    }

    /// Loading, serving, or unloaded.
    pub fn status(&self) -> CoordinatorStatus {
        self.status
    }

    /// What the last load found.
    pub fn load_report(&self) -> Option<&LoadReport> {
        self.load_report.as_ref()
    }

    /// Ids of the groups this partition coordinates, including groups that only hold
    /// offsets.
    pub fn group_ids(&self) -> impl Iterator<Item = &str> {
        self.groups
            .values()
            .filter(|g| !g.is_being_deleted())
            .map(|g| g.group_id.as_str())
            .chain(self.consumer_groups.keys().map(String::as_str))
    }

    fn on_request(&mut self, caller: Caller, body: GroupRequest) {
        let shape = RequestShape::of(&body, caller.api_version);
        match self.status {
            CoordinatorStatus::Loading => {
                let response = match shape {
                    // Kafka answers heartbeats blindly while loading: the member keeps its
                    // session instead of rejoining.
                    RequestShape::Heartbeat => shape.error_response(None),
                    _ => shape.error_response(Some(ResponseError::CoordinatorLoadInProgress)),
                };
                self.rt.effects.push(Effect::Respond {
                    id: caller.id,
                    response,
                });
            }
            CoordinatorStatus::Unloaded => {
                let response = shape.error_response(Some(ResponseError::NotCoordinator));
                self.rt.effects.push(Effect::Respond {
                    id: caller.id,
                    response,
                });
            }
            CoordinatorStatus::Active => {
                let previous = self.rt.parked.insert(caller.id, shape);
                debug_assert!(
                    previous.is_none(),
                    "request id {:?} reused while in flight",
                    caller.id
                );
                match body {
                    GroupRequest::JoinGroup(request) => self.join_group(caller, request),
                    GroupRequest::SyncGroup(request) => self.sync_group(caller, request),
                    GroupRequest::Heartbeat(request) => self.heartbeat(caller, request),
                    GroupRequest::LeaveGroup(request) => self.leave_group(caller, request),
                    GroupRequest::OffsetCommit(request) => self.offset_commit(caller, request),
                    GroupRequest::OffsetFetch(request) => self.offset_fetch(caller, request),
                    GroupRequest::DescribeGroups(request) => self.describe_groups(caller, request),
                    GroupRequest::DeleteGroups(request) => self.delete_groups(caller, request),
                    GroupRequest::OffsetDelete(request) => self.offset_delete(caller, request),
                    GroupRequest::ConsumerGroupHeartbeat { request, topics } => {
                        self.topics = topics;
                        self.consumer_group_heartbeat(caller, request)
                    }
                    GroupRequest::ConsumerGroupDescribe { request, topics } => {
                        self.topics = topics;
                        self.consumer_group_describe(caller, request)
                    }
                }
            }
        }
    }

    /// Fires due timers and applies finished appends until neither has anything left:
    /// either can make the other due (a failed sync write starts a rebalance whose timer
    /// may already be due; a timer may emit an append that fails to encode).
    fn run_until_idle(&mut self) {
        loop {
            let fired = self.fire_due_timers();
            let applied = self.apply_finished_appends();
            if !fired && !applied {
                break;
            }
        }
        self.answer_stable_fetches();
        self.answer_deferred();
    }

    fn answer_deferred(&mut self) {
        if self.rt.deferred.is_empty() {
            return;
        }
        let first_unapplied = self
            .rt
            .pending
            .first_key_value()
            .map(|(token, _)| token.seq);
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.rt.deferred)
            .into_iter()
            .partition(|d| first_unapplied.is_none_or(|first| d.after_seq < first));
        self.rt.deferred = waiting;
        for d in ready {
            self.rt.respond(d.id, d.response);
        }
    }

    fn fire_due_timers(&mut self) -> bool {
        let mut fired = false;
        while let Some((key, action)) = self.rt.timers.pop_due(self.rt.now_ms) {
            fired = true;
            let group_id = match &key {
                TimerKey::Cleanup => {
                    self.cleanup();
                    continue;
                }
                TimerKey::ConsumerSession { group, member } => {
                    self.fence_consumer_member(group, member, None);
                    continue;
                }
                TimerKey::ConsumerRebalance { group, member } => {
                    if let TimerAction::ExpireConsumerRebalance { epoch } = action {
                        self.fence_consumer_member(group, member, Some(epoch));
                    }
                    continue;
                }
                TimerKey::Heartbeat { group, .. }
                | TimerKey::Join { group }
                | TimerKey::Sync { group } => group,
            };
            // Timers of groups that are gone simply lapse, as in Kafka.
            let Some(group) = self.groups.get_mut(group_id) else {
                continue;
            };
            match (&key, action) {
                (TimerKey::Heartbeat { member, .. }, _) => self.rt.expire_heartbeat(group, member),
                (_, TimerAction::CompleteJoin) => self.rt.complete_join(group),
                (
                    _,
                    TimerAction::InitialRebalance {
                        delay_ms,
                        remaining_ms,
                    },
                ) => self
                    .rt
                    .try_complete_initial_rebalance(group, delay_ms, remaining_ms),
                (_, TimerAction::ExpireSync { generation }) => {
                    self.rt.expire_sync(group, generation)
                }
                (
                    _,
                    TimerAction::ExpireHeartbeat
                    | TimerAction::Cleanup
                    | TimerAction::ExpireConsumerSession
                    | TimerAction::ExpireConsumerRebalance { .. },
                ) => {}
            }
        }
        fired
    }

    /// Applies, in emission order, every append whose outcome is known and that no earlier
    /// unfinished append holds back.
    fn apply_finished_appends(&mut self) -> bool {
        let mut applied = false;
        while let Some(entry) = self.rt.pending.first_entry() {
            let Some(result) = entry.get().result else {
                break;
            };
            let pending = entry.remove();
            applied = true;
            if result.is_ok() {
                self.apply_durable(&pending.records);
            }
            self.finish(pending.purpose, result);
        }
        applied
    }

    /// Makes records durable in memory, as a reload of the log would see them.
    fn apply_durable(&mut self, records: &[CoordinatorRecord]) {
        for record in records {
            match (&record.key, &record.value) {
                (
                    RecordKey::OffsetCommit {
                        group,
                        topic,
                        partition,
                    },
                    Some(RecordValue::OffsetCommit(value)),
                ) => {
                    self.offsets.put(group, topic, *partition, value.clone());
                    self.ensure_group(group);
                }
                (
                    RecordKey::OffsetCommit {
                        group,
                        topic,
                        partition,
                    },
                    None,
                ) => {
                    self.offsets.remove(group, topic, *partition);
                }
                (RecordKey::GroupMetadata { group }, Some(RecordValue::GroupMetadata(value))) => {
                    match self.groups.get_mut(group) {
                        Some(g) => g.persisted = Some(value.clone()),
                        None => {
                            let g = ClassicGroup::from_persisted(group.clone(), value.clone());
                            self.groups.insert(group.clone(), g);
                        }
                    }
                }
                (RecordKey::GroupMetadata { group }, None) => {
                    let deleted = self
                        .groups
                        .get(group)
                        .is_some_and(ClassicGroup::is_being_deleted);
                    if deleted {
                        self.groups.remove(group);
                        // Offsets left behind keep a group alive, as they would on reload.
                        if self.offsets.has_group(group) {
                            self.ensure_group(group);
                        }
                    } else if let Some(g) = self.groups.get_mut(group) {
                        g.persisted = None;
                    }
                }
                (RecordKey::Consumer(key), Some(RecordValue::Consumer(value))) => {
                    self.consumer_durable.insert(key.clone(), value.clone());
                }
                (RecordKey::Consumer(key), None) => {
                    self.consumer_durable.remove(key);
                }
                (_, Some(_)) => debug_assert!(false, "record value does not match its key"),
            }
        }
    }

    /// Offsets of a group that does not exist create a simple (protocol-less, Empty) group,
    /// as Kafka's replay does.
    fn ensure_group(&mut self, group_id: &str) {
        if self.consumer_groups.contains_key(group_id)
            || self.rt.deleting_consumer.contains(group_id)
        {
            return;
        }
        if !self.groups.contains_key(group_id) {
            let group = ClassicGroup::new(group_id.to_string(), self.rt.now_ms);
            self.groups.insert(group_id.to_string(), group);
        }
    }

    fn finish(&mut self, purpose: Purpose, result: Result<(), AppendFailed>) {
        match purpose {
            Purpose::EmptyGroup => {}
            Purpose::SyncAssignment {
                group,
                generation,
                assignments,
            } => {
                if let Some(g) = self.groups.get_mut(&group) {
                    self.rt
                        .finish_sync_assignment(g, generation, assignments, result);
                }
            }
            Purpose::StaticRejoin(rejoin) => self.finish_static_rejoin(rejoin, result),
            Purpose::OffsetCommit { id, response } => {
                self.finish_offset_commit(id, response, result)
            }
            Purpose::OffsetDelete { id, response } => {
                self.finish_offset_delete(id, response, result)
            }
            Purpose::DeleteGroups {
                id,
                response,
                deleted,
                consumer_deleted,
                requested,
            } => {
                self.finish_consumer_deletion(&consumer_deleted, result);
                self.finish_delete_groups(id, response, deleted, requested, result)
            }
            Purpose::Cleanup {
                deleted,
                consumer_deleted,
                expired,
            } => {
                self.finish_consumer_deletion(&consumer_deleted, result);
                self.finish_cleanup(deleted, expired, result)
            }
            Purpose::Consumer { reply, groups } => match result {
                Ok(()) => {
                    if let Some((id, response)) = reply {
                        self.rt.respond(id, response);
                    }
                }
                Err(failure) => {
                    self.rebuild_consumer_groups(&groups);
                    if let Some((id, response)) = reply {
                        let error = failure.response_error();
                        let response = match response {
                            GroupResponse::ConsumerGroupHeartbeat(_) => {
                                GroupResponse::ConsumerGroupHeartbeat(
                                    consumer_heartbeat::error_response(error, None),
                                )
                            }
                            other => other,
                        };
                        self.rt.respond(id, response);
                    }
                }
            },
        }
    }

    /// Consumer groups whose tombstones were written (they are gone) or failed (they come
    /// back from their durable records).
    fn finish_consumer_deletion(&mut self, ids: &[String], result: Result<(), AppendFailed>) {
        for id in ids {
            self.rt.deleting_consumer.remove(id);
        }
        if result.is_err() {
            self.rebuild_consumer_groups(ids);
        }
    }

    /// Deletes an empty consumer group: its tombstones are applied in memory now and
    /// appended by the caller with `records`.
    pub(crate) fn begin_consumer_deletion(
        &mut self,
        group_id: &str,
        records: &mut Vec<CoordinatorRecord>,
    ) {
        let Some(group) = self.consumer_groups.get(group_id) else {
            return;
        };
        let tombstones = consumer::group_tombstones(group);
        self.replay_in_memory(&tombstones);
        for member in group_member_ids(&tombstones) {
            self.rt.cancel_consumer_session(group_id, &member);
            self.rt.cancel_consumer_rebalance(group_id, &member);
        }
        records.extend(tombstones);
        self.rt.deleting_consumer.insert(group_id.to_string());
    }

    /// Applies consumer group records to the groups in memory (they are appended too).
    fn replay_in_memory(&mut self, records: &[CoordinatorRecord]) {
        for record in records {
            if let RecordKey::Consumer(key) = &record.key {
                let value = match &record.value {
                    Some(RecordValue::Consumer(value)) => Some(value),
                    _ => None,
                };
                consumer::replay(&mut self.consumer_groups, key, value);
            }
        }
    }

    /// An append failed: the groups it touched go back to what their durable records and
    /// the appends still in flight say, as a reload after those appends would see them.
    pub(crate) fn rebuild_consumer_groups(&mut self, ids: &[String]) {
        for id in ids {
            // A classic group took the id over (JoinGroup on an empty consumer group) and
            // keeps it: a group id is one kind in memory. Its log still holds the consumer
            // group until the classic group's metadata is written.
            if self.groups.contains_key(id) {
                continue;
            }
            let durable = self
                .consumer_durable
                .iter()
                .filter(|(key, _)| key.group() == id);
            let mut rebuilt = consumer::rebuild(durable);
            for append in self.rt.pending.values() {
                for record in &append.records {
                    if let RecordKey::Consumer(key) = &record.key
                        && key.group() == id
                    {
                        let value = match &record.value {
                            Some(RecordValue::Consumer(value)) => Some(value),
                            _ => None,
                        };
                        consumer::replay(&mut rebuilt, key, value);
                    }
                }
            }
            match rebuilt.remove(id) {
                Some(group) => {
                    for member in group.members.keys() {
                        self.rt.schedule_consumer_session(id, member);
                    }
                    self.consumer_groups.insert(id.clone(), group);
                }
                None => {
                    self.consumer_groups.remove(id);
                }
            }
        }
    }

    /// Answers every parked request with NOT_COORDINATOR and forgets all state.
    fn shut_down(&mut self) {
        let parked = std::mem::take(&mut self.rt.parked);
        for (id, shape) in parked {
            let response = shape.error_response(Some(ResponseError::NotCoordinator));
            self.rt.effects.push(Effect::Respond { id, response });
        }
        self.groups.clear();
        self.consumer_groups.clear();
        self.consumer_durable.clear();
        self.rt.deleting_consumer.clear();
        self.rt.deferred.clear();
        self.offsets = OffsetStore::default();
        self.rt.timers.clear();
        self.rt.pending.clear();
        self.rt.stable_fetches.clear();
        self.rt.expiring.clear();
    }

    fn install(&mut self, records: impl IntoIterator<Item = OffsetsRecord>) {
        let loaded = load::replay(records, self.rt.now_ms);
        self.groups = loaded.groups;
        self.consumer_durable = loaded.consumer_durable;
        self.consumer_groups = consumer::rebuild(&self.consumer_durable);
        self.offsets = loaded.offsets;
        self.load_report = Some(loaded.report);
        self.rt.load = self.rt.load.wrapping_add(1);
        self.rt.next_seq = 0;
        self.status = CoordinatorStatus::Active;
        // Loaded members get a fresh session, as in Kafka's onLoaded.
        for group in self.groups.values() {
            for member in group.members() {
                let deadline = self
                    .rt
                    .now_ms
                    .saturating_add(i64::from(member.session_timeout_ms));
                self.rt.timers.schedule(
                    TimerKey::Heartbeat {
                        group: group.group_id.clone(),
                        member: member.member_id.clone(),
                    },
                    deadline,
                    TimerAction::ExpireHeartbeat,
                );
            }
        }
        // Consumer group members get a fresh session too, and those revoking a fresh
        // rebalance timeout (Kafka's onLoaded).
        for group in self.consumer_groups.values() {
            for member in group.members.values() {
                self.rt
                    .schedule_consumer_session(&group.group_id, &member.member_id);
                if member.state == consumer::MemberState::UnrevokedPartitions {
                    self.rt.schedule_consumer_rebalance(
                        &group.group_id,
                        &member.member_id,
                        member.member_epoch,
                        member.rebalance_timeout_ms,
                    );
                }
            }
        }
        // A group over a lowered group.max.size rebalances, so members can commit
        // before the surplus is turned away (Kafka's onLoaded).
        let max_group_size = self.rt.limits.max_group_size;
        for group in self.groups.values_mut() {
            if group.members().len() > max_group_size {
                self.rt.prepare_rebalance(group);
            }
        }
        self.rt.schedule_cleanup();
    }
}

/// The members named by consumer group records.
fn group_member_ids(records: &[CoordinatorRecord]) -> BTreeSet<String> {
    records
        .iter()
        .filter_map(|r| match &r.key {
            RecordKey::Consumer(ConsumerKey::MemberMetadata { member, .. }) => Some(member.clone()),
            _ => None,
        })
        .collect()
}

impl Runtime {
    /// Sends the response to a parked request. A request is answered once: a second answer
    /// is a coordinator bug, dropped in release builds.
    pub(crate) fn respond(&mut self, id: RequestId, response: GroupResponse) {
        if self.parked.remove(&id).is_none() {
            debug_assert!(false, "request {id:?} answered twice");
            return;
        }
        self.effects.push(Effect::Respond { id, response });
    }

    /// Answers a JoinGroup, shaped for its version: before v7 the protocol name is not
    /// nullable (Kafka's JoinGroupResponse constructor).
    pub(crate) fn respond_join(&mut self, join: Parked, mut response: JoinGroupResponse) {
        if join.api_version < 7 && response.protocol_name.is_none() {
            response.protocol_name = Some(Default::default());
        }
        if join.api_version >= 7
            && response
                .protocol_name
                .as_ref()
                .is_some_and(|name| name.is_empty())
        {
            response.protocol_name = None;
        }
        if join.api_version < 9 {
            response.skip_assignment = false;
        }
        self.respond(join.id, GroupResponse::JoinGroup(response));
    }

    pub(crate) fn respond_sync(&mut self, sync: Parked, response: SyncGroupResponse) {
        self.respond(sync.id, GroupResponse::SyncGroup(response));
    }

    /// Emits an append of `records` and remembers why. Records that cannot be encoded make
    /// the append fail at once, as a too-large batch would.
    fn append(&mut self, records: Vec<CoordinatorRecord>, purpose: Purpose) {
        let token = AppendToken {
            load: self.load,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let encoded: Result<Vec<OffsetsRecord>, _> =
            records.iter().map(CoordinatorRecord::encode).collect();
        let result = match encoded {
            Ok(encoded) => {
                self.effects.push(Effect::Append {
                    token,
                    records: encoded,
                });
                None
            }
            Err(_) => Some(Err(AppendFailed::TooLarge)),
        };
        self.pending.insert(
            token,
            PendingAppend {
                records,
                purpose,
                result,
            },
        );
    }

    /// Answers `id` once every append emitted so far is applied (at once if none is
    /// pending).
    pub(crate) fn respond_after_pending(&mut self, id: RequestId, response: GroupResponse) {
        match self.last_unapplied_seq() {
            Some(after_seq) => self.deferred.push(Deferred {
                after_seq,
                id,
                response,
            }),
            None => self.respond(id, response),
        }
    }

    /// The sequence number of the last append emitted, if any is still unapplied.
    fn last_unapplied_seq(&self) -> Option<u64> {
        self.pending.last_key_value().map(|(token, _)| token.seq)
    }

    fn schedule_cleanup(&mut self) {
        let deadline = self
            .now_ms
            .saturating_add(self.limits.offsets_retention_check_interval_ms);
        self.timers
            .schedule(TimerKey::Cleanup, deadline, TimerAction::Cleanup);
    }

    pub(crate) fn schedule_heartbeat(&mut self, group: &str, member: &str, timeout_ms: i64) {
        let deadline = self.now_ms.saturating_add(timeout_ms.max(0));
        self.timers.schedule(
            TimerKey::Heartbeat {
                group: group.to_string(),
                member: member.to_string(),
            },
            deadline,
            TimerAction::ExpireHeartbeat,
        );
    }

    pub(crate) fn cancel_heartbeat(&mut self, group: &str, member: &str) {
        self.timers.cancel(&TimerKey::Heartbeat {
            group: group.to_string(),
            member: member.to_string(),
        });
    }
}

#[cfg(any(test, feature = "testing"))]
impl GroupCoordinator {
    /// Test introspection: a summary of each group.
    pub fn debug_groups(&self) -> Vec<crate::testing::GroupDebug> {
        self.groups
            .values()
            .map(|g| crate::testing::GroupDebug {
                group_id: g.group_id.clone(),
                state: g.state(),
                generation: g.generation_id(),
                protocol_type: g.protocol_type().map(str::to_string),
                protocol_name: g.protocol_name().map(str::to_string),
                leader: g.leader_id().map(str::to_string),
                members: g
                    .members()
                    .iter()
                    .map(|m| crate::testing::MemberDebug {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        assignment: m.assignment.clone(),
                        heartbeat_deadline_ms: self.rt.timers.deadline_of(&TimerKey::Heartbeat {
                            group: g.group_id.clone(),
                            member: m.member_id.clone(),
                        }),
                    })
                    .collect(),
                persisted: g.persisted.clone(),
            })
            .collect()
    }

    /// Test introspection: the consumer groups as they are in memory.
    pub fn debug_consumer_groups(&self) -> BTreeMap<String, ConsumerGroup> {
        self.consumer_groups.clone()
    }

    /// Test introspection: the durable offsets of every group.
    pub fn debug_offsets(
        &self,
    ) -> BTreeMap<(String, String, i32), crate::record::OffsetCommitValue> {
        self.offsets
            .groups()
            .flat_map(|group| {
                self.offsets
                    .of_group(group)
                    .map(move |(topic, partition, value)| {
                        (
                            (group.to_string(), topic.to_string(), partition),
                            value.clone(),
                        )
                    })
            })
            .collect()
    }

    /// Test introspection: requests parked and not yet answered.
    pub fn debug_parked(&self) -> Vec<RequestId> {
        self.rt.parked.keys().copied().collect()
    }

    /// Test introspection: appends emitted and not yet applied.
    pub fn debug_pending_appends(&self) -> usize {
        self.rt.pending.len()
    }
}
