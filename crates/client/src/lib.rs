//! A small async Kafka client over `sluice-protocol`: metadata, produce, fetch, list
//! offsets, topic admin; configs, partitions, DeleteRecords and group admin (`admin`);
//! and a simple consumer-group member (`group`). The CLI and the tests use it; it speaks
//! only the wire protocol and knows nothing of the broker's internals.
//!
//! ```text
//!  Client::connect ─▶ ApiVersions (negotiate) ─▶ call(api, request) ─▶ typed response
//! ```
//!
//! One request is in flight per connection; each call picks the highest version both
//! sides support.

mod admin;
mod group;

pub use admin::{
    Committed, ConfigEntry, DescribedGroup, GroupMember, ListedGroup, RESOURCE_BROKER,
    RESOURCE_TOPIC, decode_assignment, encode_assignment,
};
pub use group::{Assignment, GroupMembership, SESSION_TIMEOUT_MS, range_assign};

use std::collections::HashMap;

use bytes::{Buf, Bytes, BytesMut};
use sluice_protocol::kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, DeleteTopicsRequest, FetchRequest,
    ListOffsetsRequest, MetadataRequest, MetadataResponse, ProduceRequest, RequestHeader,
    RequestKind, ResponseKind, TopicName,
    create_topics_request::{CreatableTopic, CreatableTopicConfig},
    fetch_request::{FetchPartition, FetchTopic},
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    metadata_request::MetadataRequestTopic,
    produce_request::{PartitionProduceData, TopicProduceData},
};
use sluice_protocol::kafka_protocol::protocol::{Message, StrBytes};
use sluice_protocol::{ResponseError, frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What can go wrong talking to a broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting, reading or writing failed.
    #[error("connection to {addr} failed: {source}")]
    Io {
        /// Broker address.
        addr: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The broker does not serve this API at any version we speak.
    #[error("the broker does not support {api:?}")]
    Unsupported {
        /// The API.
        api: ApiKey,
    },
    /// A frame from the broker did not decode.
    #[error("bad response from broker: {0}")]
    Decode(#[from] sluice_protocol::DecodeError),
    /// A request could not be encoded.
    #[error("cannot encode request: {0}")]
    Encode(#[from] sluice_protocol::EncodeError),
    /// The broker answered with a Kafka error.
    #[error("{context}: {error}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kafka {
        /// What was being done.
        context: String,
        /// The Kafka error.
        error: ResponseError,
        /// The broker's message, when it sent one.
        message: Option<String>,
    },
    /// The response did not match the request.
    #[error("unexpected response from broker")]
    UnexpectedResponse,
}

/// Result of the client's calls.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Turns a Kafka error code into `Ok(())` or [`ClientError::Kafka`].
///
/// # Errors
/// [`ClientError::Kafka`] when `code` is not 0.
pub fn check(code: i16, context: impl Into<String>, message: Option<&StrBytes>) -> Result<()> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(error) => Err(ClientError::Kafka {
            context: context.into(),
            error,
            message: message.map(|m| m.to_string()),
        }),
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Largest response accepted (fetches are bounded by the request's max_bytes).
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// One connection to one broker.
pub struct Client {
    addr: String,
    stream: TcpStream,
    correlation_id: i32,
    versions: HashMap<i16, (i16, i16)>,
    buf: BytesMut,
}

/// One partition's fetch result.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Record batches, as stored.
    pub records: Bytes,
    /// Partition high watermark.
    pub high_watermark: i64,
    /// Partition log start offset.
    pub log_start_offset: i64,
}

impl Client {
    /// Connects and negotiates API versions.
    ///
    /// # Errors
    /// [`ClientError::Io`] when the broker is unreachable; other variants when it does
    /// not answer ApiVersions sensibly.
    pub async fn connect(addr: &str) -> Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Io {
                addr: addr.to_owned(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let mut client = Self {
            addr: addr.to_owned(),
            stream,
            correlation_id: 0,
            versions: HashMap::new(),
            buf: BytesMut::new(),
        };
        let response = client
            .call_at(
                ApiKey::ApiVersions,
                3,
                RequestKind::ApiVersions(
                    ApiVersionsRequest::default()
                        .with_client_software_name(str_bytes("sluice"))
                        .with_client_software_version(str_bytes(env!("CARGO_PKG_VERSION"))),
                ),
            )
            .await?;
        let ResponseKind::ApiVersions(response) = response else {
            return Err(ClientError::UnexpectedResponse);
        };
        check(response.error_code, "ApiVersions", None)?;
        client.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(client)
    }

    /// The address this client is connected to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn version_for(&self, api: ApiKey, ours: i16) -> Result<i16> {
        let (min, max) = self
            .versions
            .get(&(api as i16))
            .copied()
            .ok_or(ClientError::Unsupported { api })?;
        let version = max.min(ours);
        if version < min {
            return Err(ClientError::Unsupported { api });
        }
        Ok(version)
    }

    /// Sends `body` at the highest version both sides speak and waits for the answer.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn call<M: Message>(
        &mut self,
        api: ApiKey,
        body: RequestKind,
    ) -> Result<ResponseKind> {
        let version = self.version_for(api, M::VERSIONS.max)?;
        self.call_at(api, version, body).await
    }

    /// Like [`Client::call`] but at most at version `max`: for callers whose request
    /// shape changes at a later version (OffsetFetch v8 batches groups, for example).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn call_up_to(
        &mut self,
        api: ApiKey,
        max: i16,
        body: RequestKind,
    ) -> Result<ResponseKind> {
        let version = self.version_for(api, max)?;
        self.call_at(api, version, body).await
    }

    async fn call_at(
        &mut self,
        api: ApiKey,
        version: i16,
        body: RequestKind,
    ) -> Result<ResponseKind> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(str_bytes("sluice-client")));
        let mut out = BytesMut::new();
        sluice_protocol::encode_request(&header, &body, &mut out)?;
        let io = |source| ClientError::Io {
            addr: self.addr.clone(),
            source,
        };
        self.stream.write_all(&out).await.map_err(io)?;
        let frame = self.read_frame().await?;
        let (correlation_id, response) = sluice_protocol::decode_response(api, version, frame)?;
        if correlation_id != self.correlation_id {
            return Err(ClientError::UnexpectedResponse);
        }
        Ok(response)
    }

    /// Writes a request whose response never comes (Produce with acks=0).
    async fn send_only(&mut self, api: ApiKey, version: i16, body: RequestKind) -> Result<()> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(str_bytes("sluice-client")));
        let mut out = BytesMut::new();
        sluice_protocol::encode_request(&header, &body, &mut out)?;
        self.stream
            .write_all(&out)
            .await
            .map_err(|source| ClientError::Io {
                addr: self.addr.clone(),
                source,
            })
    }

    async fn read_frame(&mut self) -> Result<Bytes> {
        loop {
            let complete = frame::announced_body_len(&self.buf, MAX_RESPONSE_BYTES)
                .map_err(|_| ClientError::UnexpectedResponse)?
                .filter(|len| self.buf.len() >= frame::SIZE_PREFIX_LEN + len);
            if let Some(len) = complete {
                let mut frame = self.buf.split_to(frame::SIZE_PREFIX_LEN + len);
                frame.advance(frame::SIZE_PREFIX_LEN);
                return Ok(frame.freeze());
            }
            self.buf.reserve(64 * 1024);
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|source| ClientError::Io {
                    addr: self.addr.clone(),
                    source,
                })?;
            if n == 0 {
                return Err(ClientError::Io {
                    addr: self.addr.clone(),
                    source: std::io::ErrorKind::UnexpectedEof.into(),
                });
            }
        }
    }

    /// Cluster metadata, for the given topics or (with `None`) all of them.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn metadata(&mut self, topics: Option<&[&str]>) -> Result<MetadataResponse> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|n| {
                        MetadataRequestTopic::default().with_name(Some(TopicName(str_bytes(n))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        match self
            .call::<MetadataRequest>(ApiKey::Metadata, RequestKind::Metadata(request))
            .await?
        {
            ResponseKind::Metadata(r) => Ok(r),
            _ => Err(ClientError::UnexpectedResponse),
        }
    }

    /// Creates a topic.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] with the broker's reason when refused.
    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
    ) -> Result<()> {
        let topic = CreatableTopic::default()
            .with_name(TopicName(str_bytes(name)))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(str_bytes(k))
                            .with_value(Some(str_bytes(v)))
                    })
                    .collect(),
            );
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(30_000);
        let ResponseKind::CreateTopics(response) = self
            .call::<CreateTopicsRequest>(ApiKey::CreateTopics, RequestKind::CreateTopics(request))
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        for t in &response.topics {
            check(
                t.error_code,
                format!("create topic {name}"),
                t.error_message.as_ref(),
            )?;
        }
        Ok(())
    }

    /// Deletes a topic.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] (UNKNOWN_TOPIC_OR_PARTITION for a missing topic).
    pub async fn delete_topic(&mut self, name: &str) -> Result<()> {
        let request = DeleteTopicsRequest::default()
            .with_topic_names(vec![TopicName(str_bytes(name))])
            .with_topics(vec![
                sluice_protocol::kafka_protocol::messages::delete_topics_request::DeleteTopicState::default()
                    .with_name(Some(TopicName(str_bytes(name)))),
            ])
            .with_timeout_ms(30_000);
        let ResponseKind::DeleteTopics(response) = self
            .call::<DeleteTopicsRequest>(ApiKey::DeleteTopics, RequestKind::DeleteTopics(request))
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        for t in &response.responses {
            check(
                t.error_code,
                format!("delete topic {name}"),
                t.error_message.as_ref(),
            )?;
        }
        Ok(())
    }

    /// Produces one record batch (see `sluice_protocol::record::RecordBatchBuilder`);
    /// returns its base offset (-1 with `acks` 0, which gets no answer).
    ///
    /// # Errors
    /// [`ClientError::Kafka`] with the broker's error for the partition.
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
    ) -> Result<i64> {
        let request = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(str_bytes(topic)))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(batch)),
                    ]),
            ]);
        // By name (v12): v13 addresses topics by id only.
        let version = self.version_for(ApiKey::Produce, 12)?;
        if acks == 0 {
            // The broker sends no response to acks=0 (it closes the connection on an
            // error instead), so there is nothing to wait for and no offset to return.
            self.send_only(ApiKey::Produce, version, RequestKind::Produce(request))
                .await?;
            return Ok(-1);
        }
        let ResponseKind::Produce(response) = self
            .call_at(ApiKey::Produce, version, RequestKind::Produce(request))
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        let p = response
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .ok_or(ClientError::UnexpectedResponse)?;
        check(
            p.error_code,
            format!("produce to {topic}-{partition}"),
            p.error_message.as_ref(),
        )?;
        Ok(p.base_offset)
    }

    /// Fetches from one partition starting at `offset`.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] (for example OFFSET_OUT_OF_RANGE).
    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
        max_bytes: i32,
    ) -> Result<Fetched> {
        // Fetch by name (v12): no topic id lookup needed.
        let version = self.version_for(ApiKey::Fetch, 12)?;
        let request = FetchRequest::default()
            .with_replica_id(sluice_protocol::kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(str_bytes(topic)))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(max_bytes),
                    ]),
            ]);
        let ResponseKind::Fetch(response) = self
            .call_at(ApiKey::Fetch, version, RequestKind::Fetch(request))
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        check(response.error_code, "fetch", None)?;
        let p = response
            .responses
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or(ClientError::UnexpectedResponse)?;
        check(
            p.error_code,
            format!("fetch {topic}-{partition} at {offset}"),
            None,
        )?;
        Ok(Fetched {
            records: p.records.clone().unwrap_or_default(),
            high_watermark: p.high_watermark,
            log_start_offset: p.log_start_offset,
        })
    }

    /// ListOffsets for one partition: `timestamp` -1 latest, -2 earliest, or a time.
    /// Returns (timestamp, offset).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<(i64, i64)> {
        let request = ListOffsetsRequest::default()
            .with_replica_id(sluice_protocol::kafka_protocol::messages::BrokerId(-1))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(TopicName(str_bytes(topic)))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(partition)
                            .with_timestamp(timestamp),
                    ]),
            ]);
        let ResponseKind::ListOffsets(response) = self
            .call::<ListOffsetsRequest>(ApiKey::ListOffsets, RequestKind::ListOffsets(request))
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        let p = response
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or(ClientError::UnexpectedResponse)?;
        check(
            p.error_code,
            format!("list offsets {topic}-{partition}"),
            None,
        )?;
        Ok((p.timestamp, p.offset))
    }
}
