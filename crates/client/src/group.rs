//! A simple consumer-group member: JoinGroup (with the MEMBER_ID_REQUIRED retry),
//! range assignment computed here when this member leads, SyncGroup, Heartbeat,
//! OffsetCommit with the member's generation, and LeaveGroup. It speaks the classic
//! consumer protocol (`consumer` / `range`), so Kafka clients can share its groups.

use bytes::{Buf, Bytes};
use sluice_protocol::ResponseError;
use sluice_protocol::kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    RequestKind, ResponseKind, SyncGroupRequest, join_group_request::JoinGroupRequestProtocol,
    leave_group_request::MemberIdentity, sync_group_request::SyncGroupRequestAssignment,
};

use crate::admin::{Committed, decode_assignment, encode_assignment};
use crate::{Client, ClientError, Result, check, str_bytes};

/// Session timeout asked for; heartbeats go out at a third of it.
pub const SESSION_TIMEOUT_MS: i32 = 30_000;

/// This member's place in its group after a completed rebalance.
#[derive(Debug, Clone)]
pub struct GroupMembership {
    /// Group id.
    pub group: String,
    /// Member id the coordinator gave us.
    pub member_id: String,
    /// Generation of the rebalance that produced `assignment`.
    pub generation: i32,
    /// Topics subscribed to.
    pub topics: Vec<String>,
    /// Partitions assigned, `(topic, partitions)`.
    pub assignment: Assignment,
}

/// Consumer-protocol subscription (version 0): topics, no user data.
fn encode_subscription(topics: &[String]) -> Bytes {
    let mut out = Vec::new();
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(
        &i32::try_from(topics.len())
            .unwrap_or(i32::MAX)
            .to_be_bytes(),
    );
    for t in topics {
        out.extend_from_slice(&i16::try_from(t.len()).unwrap_or(i16::MAX).to_be_bytes());
        out.extend_from_slice(t.as_bytes());
    }
    out.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(out)
}

/// Topics of a subscription; malformed bytes give none (that member gets nothing).
fn decode_subscription(mut b: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    if b.remaining() < 6 {
        return out;
    }
    let _version = b.get_i16();
    let n = b.get_i32();
    for _ in 0..n.max(0) {
        if b.remaining() < 2 {
            break;
        }
        let Ok(len) = usize::try_from(b.get_i16()) else {
            break;
        };
        let Some(name) = b.get(..len) else { break };
        out.push(String::from_utf8_lossy(name).into_owned());
        b.advance(len);
    }
    out
}

/// Partitions per topic, `(topic, partitions)`, as the consumer protocol carries them.
pub type Assignment = Vec<(String, Vec<i32>)>;

/// Kafka's range assignor: per topic, members (sorted by id) that subscribe get
/// contiguous ranges, the first `partitions % members` one extra.
pub fn range_assign(
    members: &[(String, Vec<String>)],
    partitions: &[(String, i32)],
) -> Vec<(String, Assignment)> {
    let mut ids: Vec<&(String, Vec<String>)> = members.iter().collect();
    ids.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(String, Assignment)> =
        ids.iter().map(|(id, _)| (id.clone(), Vec::new())).collect();
    for (topic, count) in partitions {
        let subscribers: Vec<usize> = ids
            .iter()
            .enumerate()
            .filter(|(_, (_, topics))| topics.contains(topic))
            .map(|(i, _)| i)
            .collect();
        let n = i32::try_from(subscribers.len()).unwrap_or(i32::MAX);
        if n == 0 {
            continue;
        }
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (rank, &i) in subscribers.iter().enumerate() {
            let rank = i32::try_from(rank).unwrap_or(i32::MAX);
            let len = each + i32::from(rank < extra);
            let parts: Vec<i32> = (next..next + len).collect();
            next += len;
            if let Some((_, a)) = out.get_mut(i)
                && !parts.is_empty()
            {
                a.push((topic.clone(), parts));
            }
        }
    }
    out
}

impl Client {
    /// FindCoordinator for a group: the `host:port` of the broker that runs it.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] (COORDINATOR_NOT_AVAILABLE while it is being placed).
    pub async fn find_coordinator(&mut self, group: &str) -> Result<String> {
        // v3 takes one key; v4 batches them (`coordinator_keys`).
        let request = FindCoordinatorRequest::default()
            .with_key(str_bytes(group))
            .with_key_type(0);
        let ResponseKind::FindCoordinator(r) = self
            .call_up_to(
                ApiKey::FindCoordinator,
                3,
                RequestKind::FindCoordinator(request),
            )
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        check(
            r.error_code,
            format!("find the coordinator of group {group}"),
            r.error_message.as_ref(),
        )?;
        Ok(format!("{}:{}", r.host, r.port))
    }

    /// Joins `group` subscribed to `topics` and waits for the rebalance to complete.
    /// `member_id` is empty for a first join, or the previous id when rejoining.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] when the coordinator refuses.
    pub async fn join_group(
        &mut self,
        group: &str,
        topics: &[String],
        member_id: &str,
    ) -> Result<GroupMembership> {
        let mut member_id = member_id.to_owned();
        loop {
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(str_bytes(group)))
                .with_session_timeout_ms(SESSION_TIMEOUT_MS)
                .with_rebalance_timeout_ms(SESSION_TIMEOUT_MS)
                .with_member_id(str_bytes(&member_id))
                .with_protocol_type(str_bytes("consumer"))
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default()
                        .with_name(str_bytes("range"))
                        .with_metadata(encode_subscription(topics)),
                ]);
            let ResponseKind::JoinGroup(joined) = self
                .call_up_to(ApiKey::JoinGroup, 7, RequestKind::JoinGroup(request))
                .await?
            else {
                return Err(ClientError::UnexpectedResponse);
            };
            // KIP-394: the first join only hands out a member id.
            if joined.error_code == ResponseError::MemberIdRequired.code() {
                member_id = joined.member_id.to_string();
                continue;
            }
            if joined.error_code == ResponseError::UnknownMemberId.code() && !member_id.is_empty() {
                member_id.clear();
                continue;
            }
            check(joined.error_code, format!("join group {group}"), None)?;
            member_id = joined.member_id.to_string();
            let generation = joined.generation_id;
            let assignments = if joined.leader == joined.member_id {
                let members: Vec<(String, Vec<String>)> = joined
                    .members
                    .iter()
                    .map(|m| (m.member_id.to_string(), decode_subscription(&m.metadata)))
                    .collect();
                let mut wanted: Vec<String> = members
                    .iter()
                    .flat_map(|(_, t)| t.iter().cloned())
                    .collect();
                wanted.sort();
                wanted.dedup();
                let names: Vec<&str> = wanted.iter().map(String::as_str).collect();
                let metadata = self.metadata(Some(&names)).await?;
                let counts: Vec<(String, i32)> = metadata
                    .topics
                    .iter()
                    .filter(|t| t.error_code == 0)
                    .filter_map(|t| {
                        let name = t.name.as_ref()?.0.to_string();
                        Some((name, i32::try_from(t.partitions.len()).unwrap_or(0)))
                    })
                    .collect();
                range_assign(&members, &counts)
                    .into_iter()
                    .map(|(id, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(str_bytes(&id))
                            .with_assignment(encode_assignment(&a))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let request = SyncGroupRequest::default()
                .with_group_id(GroupId(str_bytes(group)))
                .with_generation_id(generation)
                .with_member_id(str_bytes(&member_id))
                .with_protocol_type(Some(str_bytes("consumer")))
                .with_protocol_name(Some(str_bytes("range")))
                .with_assignments(assignments);
            let ResponseKind::SyncGroup(synced) = self
                .call_up_to(ApiKey::SyncGroup, 5, RequestKind::SyncGroup(request))
                .await?
            else {
                return Err(ClientError::UnexpectedResponse);
            };
            // Another member joined meanwhile: join the new generation.
            if synced.error_code == ResponseError::RebalanceInProgress.code() {
                continue;
            }
            check(synced.error_code, format!("sync group {group}"), None)?;
            return Ok(GroupMembership {
                group: group.to_owned(),
                member_id,
                generation,
                topics: topics.to_vec(),
                assignment: decode_assignment(&synced.assignment),
            });
        }
    }

    /// Heartbeat; `Ok(false)` when the group is rebalancing and the member must rejoin.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] for other refusals.
    pub async fn heartbeat(&mut self, m: &GroupMembership) -> Result<bool> {
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes(&m.group)))
            .with_generation_id(m.generation)
            .with_member_id(str_bytes(&m.member_id));
        let ResponseKind::Heartbeat(r) = self
            .call_up_to(ApiKey::Heartbeat, 4, RequestKind::Heartbeat(request))
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        let rejoin = [
            ResponseError::RebalanceInProgress.code(),
            ResponseError::IllegalGeneration.code(),
            ResponseError::UnknownMemberId.code(),
        ];
        if rejoin.contains(&r.error_code) {
            return Ok(false);
        }
        check(
            r.error_code,
            format!("heartbeat to group {}", m.group),
            None,
        )?;
        Ok(true)
    }

    /// Commits offsets as this member of its generation.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] (for example REBALANCE_IN_PROGRESS).
    pub async fn commit_as(&mut self, m: &GroupMembership, offsets: &[Committed]) -> Result<()> {
        self.offset_commit(&m.group, m.generation, &m.member_id, offsets)
            .await
    }

    /// Leaves the group so the others rebalance at once rather than after a timeout.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn leave_group(&mut self, m: &GroupMembership) -> Result<()> {
        let request = LeaveGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&m.group)))
            // v3+ names leavers in `members` only (the top-level id is v0-2).
            .with_members(vec![
                MemberIdentity::default().with_member_id(str_bytes(&m.member_id)),
            ]);
        let ResponseKind::LeaveGroup(r) = self
            .call_up_to(ApiKey::LeaveGroup, 4, RequestKind::LeaveGroup(request))
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        check(r.error_code, format!("leave group {}", m.group), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignment_matches_kafka() {
        let members = vec![
            ("b".to_owned(), vec!["t".to_owned()]),
            ("a".to_owned(), vec!["t".to_owned(), "u".to_owned()]),
        ];
        let out = range_assign(&members, &[("t".to_owned(), 5), ("u".to_owned(), 1)]);
        assert_eq!(
            out,
            vec![
                (
                    "a".to_owned(),
                    vec![("t".to_owned(), vec![0, 1, 2]), ("u".to_owned(), vec![0])]
                ),
                ("b".to_owned(), vec![("t".to_owned(), vec![3, 4])]),
            ]
        );
    }

    #[test]
    fn subscriptions_round_trip() {
        let topics = vec!["orders".to_owned(), "x".to_owned()];
        assert_eq!(decode_subscription(&encode_subscription(&topics)), topics);
    }
}
