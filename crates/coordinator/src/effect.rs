//! What the coordinator asks the broker to do.

use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use kafka_protocol::messages::{
    ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatResponse, DeleteGroupsResponse,
    DescribeGroupsResponse, HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse,
    OffsetCommitResponse, OffsetDeleteResponse, SyncGroupResponse,
};
use sluice_protocol::kafka_protocol;

use crate::input::RequestId;
use crate::record::OffsetsRecord;

/// Names one append until its [`Input::Appended`](crate::Input::Appended) comes back.
/// Tokens of a previous load of the same coordinator (before `Unloaded` or another
/// `Loaded`) are ignored. Tokens mean nothing to another coordinator instance, which may
/// hand out the same values: results for a dropped instance must be dropped with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppendToken {
    pub(crate) load: u32,
    pub(crate) seq: u64,
}

/// One thing for the broker to do, in the order given.
#[derive(Clone, Debug)]
pub enum Effect {
    /// Send this response to the request `id`. Every request gets exactly one, possibly
    /// much later than it arrived (a JoinGroup waits for the rebalance).
    Respond {
        /// The request answered.
        id: RequestId,
        /// Its response, shaped for the request's API version; `throttle_time_ms` is left
        /// for the broker to set.
        response: GroupResponse,
    },
    /// Append these records to the coordinator's `__consumer_offsets` partition as one
    /// batch, after every batch asked for before, and report the outcome with
    /// [`Input::Appended`](crate::Input::Appended).
    Append {
        /// Echo this in `Appended`.
        token: AppendToken,
        /// The records, in order.
        records: Vec<OffsetsRecord>,
    },
}

/// The response to a [`GroupRequest`](crate::GroupRequest), variant for variant.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupResponse {
    /// JoinGroup.
    JoinGroup(JoinGroupResponse),
    /// SyncGroup.
    SyncGroup(SyncGroupResponse),
    /// Heartbeat.
    Heartbeat(HeartbeatResponse),
    /// LeaveGroup.
    LeaveGroup(LeaveGroupResponse),
    /// OffsetCommit.
    OffsetCommit(OffsetCommitResponse),
    /// One group of an OffsetFetch; see [`offset_fetch_response`](crate::offset_fetch_response).
    OffsetFetch(OffsetFetchResponseGroup),
    /// DescribeGroups, for the groups of the request.
    DescribeGroups(DescribeGroupsResponse),
    /// DeleteGroups, for the groups of the request.
    DeleteGroups(DeleteGroupsResponse),
    /// OffsetDelete.
    OffsetDelete(OffsetDeleteResponse),
    /// ConsumerGroupHeartbeat.
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse),
    /// ConsumerGroupDescribe, for the groups of the request.
    ConsumerGroupDescribe(ConsumerGroupDescribeResponse),
}
