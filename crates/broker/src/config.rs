//! Node configuration: what one `sluice broker` process needs to start. The binary fills
//! it from defaults, a TOML file and flags; this crate only validates it.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use crate::topic_config::TopicDefaults;

/// Which runtime the shards run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoBackend {
    /// io_uring when the kernel allows it, plain tokio otherwise.
    #[default]
    Auto,
    /// io_uring (tokio-uring); fail to start when unavailable.
    Uring,
    /// Plain current-thread tokio (epoll).
    Tokio,
}

impl std::str::FromStr for IoBackend {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "uring" | "io_uring" | "io-uring" => Ok(Self::Uring),
            "tokio" | "epoll" => Ok(Self::Tokio),
            other => Err(ConfigError::InvalidValue {
                key: "io_backend",
                value: other.to_owned(),
                expected: "auto, uring or tokio",
            }),
        }
    }
}

/// A seed node of the cluster: `id@host:port` (accepted now, used when replication lands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// Node id.
    pub node_id: i32,
    /// RPC address.
    pub addr: String,
}

impl std::str::FromStr for Seed {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ConfigError::InvalidValue {
            key: "seeds",
            value: s.to_owned(),
            expected: "id@host:port",
        };
        let (id, addr) = s.split_once('@').ok_or_else(invalid)?;
        let node_id = id.trim().parse().map_err(|_| invalid())?;
        if !addr.contains(':') {
            return Err(invalid());
        }
        Ok(Self {
            node_id,
            addr: addr.trim().to_owned(),
        })
    }
}

/// Everything a node needs to run.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id (Kafka `node.id`).
    pub node_id: i32,
    /// Root of all partition directories and metadata.
    pub data_dir: PathBuf,
    /// Kafka listener; also the advertised address.
    pub kafka_addr: SocketAddr,
    /// Internal RPC listener (replication).
    pub rpc_addr: SocketAddr,
    /// Admin HTTP listener.
    pub admin_addr: SocketAddr,
    /// Cluster seeds.
    pub seeds: Vec<Seed>,
    /// Number of shards (threads).
    pub smp: NonZeroUsize,
    /// Runtime choice.
    pub io_backend: IoBackend,
    /// `socket.request.max.bytes`: largest request frame accepted.
    pub socket_request_max_bytes: usize,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `num.partitions`: partitions of an auto-created topic or a CreateTopics with -1.
    pub num_partitions: i32,
    /// Broker-level defaults of topic configs.
    pub topic_defaults: TopicDefaults,
    /// `log.retention.check.interval.ms`: how often retention and `segment.ms` run.
    pub log_retention_check_interval: std::time::Duration,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets` when it is
    /// created (on first use); groups are spread over them.
    pub offsets_topic_num_partitions: i32,
    /// Group coordinator settings (`group.*`, `offsets.retention.minutes`, ...).
    pub group: sluice_coordinator::GroupConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            data_dir: PathBuf::from("./sluice-data"),
            kafka_addr: SocketAddr::from(([127, 0, 0, 1], 9092)),
            rpc_addr: SocketAddr::from(([127, 0, 0, 1], 33145)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 9644)),
            seeds: Vec::new(),
            smp: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            io_backend: IoBackend::Auto,
            socket_request_max_bytes: 100 * 1024 * 1024,
            auto_create_topics_enable: true,
            num_partitions: 1,
            topic_defaults: TopicDefaults::default(),
            log_retention_check_interval: std::time::Duration::from_secs(300),
            offsets_topic_num_partitions: 50,
            group: sluice_coordinator::GroupConfig::default(),
        }
    }
}

impl NodeConfig {
    /// Checks values that parse but make no sense.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id < 0 {
            return Err(ConfigError::InvalidValue {
                key: "node_id",
                value: self.node_id.to_string(),
                expected: "a non-negative integer",
            });
        }
        if self.offsets_topic_num_partitions < 1 {
            return Err(ConfigError::InvalidValue {
                key: "offsets_topic_num_partitions",
                value: self.offsets_topic_num_partitions.to_string(),
                expected: "at least 1",
            });
        }
        if let Err(error) = self.group.validate() {
            return Err(ConfigError::InvalidGroupConfig(error));
        }
        if self.num_partitions < 1 {
            return Err(ConfigError::InvalidValue {
                key: "num_partitions",
                value: self.num_partitions.to_string(),
                expected: "at least 1",
            });
        }
        if self.socket_request_max_bytes < 1024 || self.socket_request_max_bytes > i32::MAX as usize
        {
            return Err(ConfigError::InvalidValue {
                key: "socket_request_max_bytes",
                value: self.socket_request_max_bytes.to_string(),
                expected: "between 1024 and 2147483647",
            });
        }
        self.topic_defaults.validate()
    }
}

/// A configuration value is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The value of `key` is out of range or unparsable.
    #[error("invalid value {value:?} for {key}: expected {expected}")]
    InvalidValue {
        /// Config key.
        key: &'static str,
        /// Offending value.
        value: String,
        /// What would be accepted.
        expected: &'static str,
    },
    /// The group coordinator settings do not fit together.
    #[error("invalid group coordinator settings: {0}")]
    InvalidGroupConfig(#[from] sluice_coordinator::ConfigError),
}
