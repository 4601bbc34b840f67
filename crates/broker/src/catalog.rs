//! The topic catalog: which topics exist, their ids, configs and partitions, shared by
//! every shard (read-mostly), and persisted under `<data-dir>/meta/`.
//!
//! Each partition's mutable state (its log) lives on its owning shard; what other shards
//! may read without a message — the high watermark, the log start offset, and the list
//! of fetches waiting for data — sits in [`PartitionShared`].

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::error::StartError;
use crate::topic_config::{TopicConfig, TopicDefaults};

/// Partition state visible to every shard.
#[derive(Debug)]
pub(crate) struct PartitionShared {
    /// Shard that owns the log.
    pub(crate) shard: usize,
    high_watermark: AtomicI64,
    log_start_offset: AtomicI64,
    waiters: Mutex<Vec<Weak<Notify>>>,
    /// Record batch bytes appended by Produce (metrics; written by the owner shard).
    bytes_in: AtomicU64,
    /// Record batch bytes returned by Fetch (metrics; written by the fetching shards).
    bytes_out: AtomicU64,
}

/// Waiter lists are pruned of finished fetches once they grow past this.
const WAITER_PRUNE_LEN: usize = 64;

impl PartitionShared {
    pub(crate) fn new(shard: usize) -> Self {
        Self {
            shard,
            high_watermark: AtomicI64::new(0),
            log_start_offset: AtomicI64::new(0),
            waiters: Mutex::new(Vec::new()),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        }
    }

    /// Counts bytes produced to this partition (a metric: `Relaxed` is enough).
    pub(crate) fn add_bytes_in(&self, bytes: usize) {
        self.bytes_in
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Counts bytes fetched from this partition.
    pub(crate) fn add_bytes_out(&self, bytes: usize) {
        self.bytes_out
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    pub(crate) fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }

    pub(crate) fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub(crate) fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    /// Publishes new offsets (owner shard only) and wakes fetches waiting for data.
    pub(crate) fn publish(&self, log_start_offset: i64, high_watermark: i64) {
        self.log_start_offset
            .store(log_start_offset, Ordering::Release);
        self.high_watermark.store(high_watermark, Ordering::Release);
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|e| e.into_inner()));
        for waiter in waiters.iter().filter_map(Weak::upgrade) {
            waiter.notify_one();
        }
    }

    /// Asks to be woken on the next publish.
    pub(crate) fn register_waiter(&self, waiter: &Arc<Notify>) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if waiters.len() >= WAITER_PRUNE_LEN {
            waiters.retain(|w| w.strong_count() > 0);
        }
        waiters.push(Arc::downgrade(waiter));
    }
}

/// One topic as the catalog knows it.
#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: Arc<str>,
    pub(crate) id: Uuid,
    pub(crate) config: TopicConfig,
    pub(crate) partitions: Vec<Arc<PartitionShared>>,
}

impl Topic {
    pub(crate) fn partition(&self, index: i32) -> Option<&Arc<PartitionShared>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }
}

/// All topics, by name and by id.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    by_name: HashMap<Arc<str>, Arc<Topic>>,
    by_id: HashMap<Uuid, Arc<Topic>>,
}

impl Catalog {
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Topic>> {
        self.by_name.get(name)
    }

    pub(crate) fn get_by_id(&self, id: &Uuid) -> Option<&Arc<Topic>> {
        self.by_id.get(id)
    }

    pub(crate) fn insert(&mut self, topic: Arc<Topic>) {
        self.by_id.insert(topic.id, topic.clone());
        self.by_name.insert(topic.name.clone(), topic);
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<Arc<Topic>> {
        let topic = self.by_name.remove(name)?;
        self.by_id.remove(&topic.id);
        Some(topic)
    }

    /// Topics in name order.
    pub(crate) fn topics(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<_> = self.by_name.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

/// Which shard owns partition `partition` of `topic`: a stable hash of the name plus
/// the index, so a topic's partitions spread over shards.
pub(crate) fn owner_shard(topic: &str, partition: i32, shards: usize) -> usize {
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in topic.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let index = u64::from(partition.unsigned_abs());
    (hash.wrapping_add(index) % shards.max(1) as u64) as usize
}

/// What is stored per topic in `meta/topics/<name>.toml`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicRecord {
    id: Uuid,
    partitions: i32,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

/// What is stored in `meta/node.toml`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeRecord {
    cluster_id: String,
    node_id: i32,
    /// Producer ids below this may have been handed out.
    producer_id_block_end: i64,
}

/// File (under `meta/`) of the cluster-wide topic defaults set at run time.
const CLUSTER_DEFAULTS: &str = "cluster_defaults.toml";

/// The on-disk side of the catalog.
#[derive(Debug)]
pub(crate) struct MetaStore {
    dir: PathBuf,
}

/// Identity of this node's data directory.
#[derive(Debug, Clone)]
pub(crate) struct NodeIdentity {
    pub(crate) cluster_id: String,
    pub(crate) producer_id_block_end: i64,
}

impl MetaStore {
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("meta"),
        }
    }

    fn topics_dir(&self) -> PathBuf {
        self.dir.join("topics")
    }

    /// Loads (or creates) the node identity, refusing a data dir of another node.
    pub(crate) fn load_identity(&self, node_id: i32) -> Result<NodeIdentity, StartError> {
        let path = self.dir.join("node.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let record: NodeRecord = toml::from_str(&text).map_err(|e| StartError::Meta {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                if record.node_id != node_id {
                    return Err(StartError::Meta {
                        path,
                        reason: format!(
                            "data dir belongs to node {}, not node {node_id}",
                            record.node_id
                        ),
                    });
                }
                Ok(NodeIdentity {
                    cluster_id: record.cluster_id,
                    producer_id_block_end: record.producer_id_block_end,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let identity = NodeIdentity {
                    cluster_id: new_cluster_id(),
                    producer_id_block_end: 0,
                };
                self.store_identity(node_id, &identity)?;
                Ok(identity)
            }
            Err(source) => Err(StartError::Io { path, source }),
        }
    }

    pub(crate) fn store_identity(
        &self,
        node_id: i32,
        identity: &NodeIdentity,
    ) -> Result<(), StartError> {
        let record = NodeRecord {
            cluster_id: identity.cluster_id.clone(),
            node_id,
            producer_id_block_end: identity.producer_id_block_end,
        };
        let text = toml::to_string(&record).map_err(|e| StartError::Meta {
            path: self.dir.join("node.toml"),
            reason: e.to_string(),
        })?;
        write_atomically(&self.dir, "node.toml", text.as_bytes())
    }

    /// Persists the cluster-wide topic defaults set at run time (keys are topic config
    /// names); an empty set removes the file.
    pub(crate) fn store_cluster_defaults(
        &self,
        values: &BTreeMap<String, String>,
    ) -> Result<(), StartError> {
        let text = toml::to_string(values).map_err(|e| StartError::Meta {
            path: self.dir.join(CLUSTER_DEFAULTS),
            reason: e.to_string(),
        })?;
        write_atomically(&self.dir, CLUSTER_DEFAULTS, text.as_bytes())
    }

    /// Loads the persisted cluster-wide defaults into `defaults`' dynamic layer.
    fn load_cluster_defaults(&self, defaults: &TopicDefaults) -> Result<(), StartError> {
        let path = self.dir.join(CLUSTER_DEFAULTS);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(StartError::Io { path, source }),
        };
        let meta_error = |reason: String| StartError::Meta {
            path: path.clone(),
            reason,
        };
        let values: BTreeMap<String, String> =
            toml::from_str(&text).map_err(|e| meta_error(e.to_string()))?;
        defaults
            .replace_dynamic(values)
            .map_err(|e| meta_error(e.to_string()))
    }

    /// Reads every persisted topic, after the cluster-wide defaults they resolve against
    /// (which land in `defaults`' shared dynamic layer).
    pub(crate) fn load_topics(
        &self,
        defaults: &TopicDefaults,
    ) -> Result<Vec<(String, Uuid, i32, TopicConfig)>, StartError> {
        self.load_cluster_defaults(defaults)?;
        let mut topics = Vec::new();
        for (name, path, record) in read_records::<TopicRecord>(&self.topics_dir())? {
            let config =
                TopicConfig::new(record.configs, defaults).map_err(|e| StartError::Meta {
                    path,
                    reason: e.to_string(),
                })?;
            topics.push((name, record.id, record.partitions, config));
        }
        Ok(topics)
    }

    /// Persists a topic; the topic exists once this returns.
    pub(crate) fn store_topic(
        &self,
        name: &str,
        id: Uuid,
        partitions: i32,
        config: &TopicConfig,
    ) -> Result<(), StartError> {
        let record = TopicRecord {
            id,
            partitions,
            configs: config.overrides().clone(),
        };
        let text = toml::to_string(&record).map_err(|e| StartError::Meta {
            path: self.topics_dir(),
            reason: e.to_string(),
        })?;
        write_atomically(&self.topics_dir(), &format!("{name}.toml"), text.as_bytes())
    }

    fn pipelines_dir(&self) -> PathBuf {
        self.dir.join("pipelines")
    }

    /// Persists a deployed pipeline; it survives a restart once this returns.
    pub(crate) fn store_pipeline(
        &self,
        name: &str,
        record: &crate::transforms::PipelineRecord,
    ) -> Result<(), StartError> {
        let text = toml::to_string(record).map_err(|e| StartError::Meta {
            path: self.pipelines_dir(),
            reason: e.to_string(),
        })?;
        write_atomically(
            &self.pipelines_dir(),
            &format!("{name}.toml"),
            text.as_bytes(),
        )
    }

    /// Every persisted pipeline, by name.
    pub(crate) fn load_pipelines(
        &self,
    ) -> Result<Vec<(String, crate::transforms::PipelineRecord)>, StartError> {
        Ok(read_records(&self.pipelines_dir())?
            .into_iter()
            .map(|(name, _, record)| (name, record))
            .collect())
    }

    /// Forgets a topic; its partition directories are removed after this.
    pub(crate) fn remove_topic(&self, name: &str) -> Result<(), StartError> {
        let path = self.topics_dir().join(format!("{name}.toml"));
        std::fs::remove_file(&path).map_err(|source| StartError::Io { path, source })?;
        sync_dir(&self.topics_dir())
    }
}

/// Every `<name>.toml` record in `dir` (none when it does not exist): name, path and
/// the parsed record.
fn read_records<T: serde::de::DeserializeOwned>(
    dir: &Path,
) -> Result<Vec<(String, PathBuf, T)>, StartError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StartError::Io {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut records = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| StartError::Io {
                path: dir.to_owned(),
                source,
            })?
            .path();
        // Half-written files are `.<name>.tmp` and do not end in `.toml`.
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".toml"))
            .map(str::to_owned)
        else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|source| StartError::Io {
            path: path.clone(),
            source,
        })?;
        let record = toml::from_str(&text).map_err(|e| StartError::Meta {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        records.push((name, path, record));
    }
    Ok(records)
}

fn new_cluster_id() -> String {
    // Kafka cluster ids are 16 random bytes in URL-safe base64 without padding.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = Uuid::new_v4().into_bytes();
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for byte in bytes {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 63) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 63) as usize]));
    }
    out
}

/// Writes `name` in `dir` through a temporary file, fsync and rename, so a crash leaves
/// either the old or the new content.
fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> Result<(), StartError> {
    std::fs::create_dir_all(dir).map_err(|source| StartError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StartError::Io { path, source }
    };
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(contents).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), StartError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StartError::Io {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn owner_shard_is_stable_and_spreads() {
        assert_eq!(owner_shard("t", 0, 4), owner_shard("t", 0, 4));
        let shards: std::collections::HashSet<_> = (0..8).map(|p| owner_shard("t", p, 4)).collect();
        assert_eq!(shards.len(), 4);
    }

    #[test]
    fn topics_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::new(dir.path());
        let defaults = TopicDefaults::default();
        let config = TopicConfig::new(
            [("max.message.bytes".to_owned(), "2000".to_owned())].into(),
            &defaults,
        )
        .unwrap();
        let id = Uuid::new_v4();
        store.store_topic("orders", id, 3, &config).unwrap();
        let topics = store.load_topics(&defaults).unwrap();
        assert_eq!(topics, vec![("orders".to_owned(), id, 3, config)]);
        store.remove_topic("orders").unwrap();
        assert!(store.load_topics(&defaults).unwrap().is_empty());
    }

    #[test]
    fn cluster_defaults_are_loaded_before_topics() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::new(dir.path());
        let values: BTreeMap<String, String> =
            [("retention.ms".to_owned(), "777".to_owned())].into();
        store.store_cluster_defaults(&values).unwrap();
        let config = TopicConfig::new(BTreeMap::new(), &TopicDefaults::default()).unwrap();
        store
            .store_topic("orders", Uuid::new_v4(), 1, &config)
            .unwrap();
        let defaults = TopicDefaults::default();
        let topics = store.load_topics(&defaults).unwrap();
        assert_eq!(defaults.dynamic_snapshot(), values);
        assert_eq!(topics[0].3.retention_ms, 777);
    }

    #[test]
    fn identity_is_kept_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::new(dir.path());
        let first = store.load_identity(1).unwrap();
        assert_eq!(store.load_identity(1).unwrap().cluster_id, first.cluster_id);
        assert!(store.load_identity(2).is_err());
    }
}
