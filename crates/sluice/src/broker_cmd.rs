//! `sluice broker`: flags and `--config FILE` (TOML, same keys) into a `NodeConfig`.
//! Layering: defaults < file < flags. Unknown keys in the file are an error naming them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use sluice_broker::{IoBackend, Node, NodeConfig, Seed};
use tracing::info;

/// Flags of `sluice broker`.
#[derive(Debug, Args)]
pub(crate) struct BrokerArgs {
    /// TOML file with the same keys as the flags (node_id, data_dir, kafka_addr, ...).
    #[arg(long)]
    config: Option<PathBuf>,
    /// This node's id.
    #[arg(long)]
    node_id: Option<i32>,
    /// Directory for partition logs and metadata.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Kafka listener, also advertised to clients.
    #[arg(long)]
    kafka_addr: Option<SocketAddr>,
    /// Internal RPC listener (replication).
    #[arg(long)]
    rpc_addr: Option<SocketAddr>,
    /// Admin HTTP listener.
    #[arg(long)]
    admin_addr: Option<SocketAddr>,
    /// Cluster seeds, `id@host:port,...`.
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<String>>,
    /// Number of shards (threads); default one per core.
    #[arg(long)]
    smp: Option<NonZeroUsize>,
    /// Runtime: auto (io_uring when available), uring, or tokio.
    #[arg(long)]
    io_backend: Option<String>,
    /// How often retention and segment.ms run (Kafka's log.retention.check.interval.ms).
    #[arg(long)]
    log_retention_check_interval_ms: Option<u64>,
    /// Partitions of __consumer_offsets when it is created (offsets.topic.num.partitions).
    #[arg(long)]
    offsets_topic_num_partitions: Option<i32>,
    /// How long the first rebalance of an empty group waits for more members
    /// (group.initial.rebalance.delay.ms; 0 for tests).
    #[arg(long)]
    group_initial_rebalance_delay_ms: Option<u64>,
    /// Shortest session timeout a member may ask for (group.min.session.timeout.ms).
    #[arg(long)]
    group_min_session_timeout_ms: Option<u64>,
    /// Longest session timeout a member may ask for (group.max.session.timeout.ms).
    #[arg(long)]
    group_max_session_timeout_ms: Option<u64>,
    /// How long committed offsets of an empty group are kept (offsets.retention.minutes).
    #[arg(long)]
    offsets_retention_minutes: Option<u64>,
    /// Session timeout of consumer-protocol members (group.consumer.session.timeout.ms).
    #[arg(long)]
    group_consumer_session_timeout_ms: Option<u64>,
    /// Heartbeat interval of consumer-protocol members
    /// (group.consumer.heartbeat.interval.ms).
    #[arg(long)]
    group_consumer_heartbeat_interval_ms: Option<u64>,
    /// Log level (overridden by RUST_LOG).
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    log_format: String,
}

/// The `--config` file. Every key is optional; unknown keys are refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    node_id: Option<i32>,
    data_dir: Option<PathBuf>,
    kafka_addr: Option<SocketAddr>,
    rpc_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    seeds: Option<Vec<String>>,
    smp: Option<NonZeroUsize>,
    io_backend: Option<String>,
    socket_request_max_bytes: Option<usize>,
    auto_create_topics_enable: Option<bool>,
    num_partitions: Option<i32>,
    log_retention_check_interval_ms: Option<u64>,
    offsets_topic_num_partitions: Option<i32>,
    group_initial_rebalance_delay_ms: Option<u64>,
    group_min_session_timeout_ms: Option<u64>,
    group_max_session_timeout_ms: Option<u64>,
    offsets_retention_minutes: Option<u64>,
    group_consumer_session_timeout_ms: Option<u64>,
    group_consumer_heartbeat_interval_ms: Option<u64>,
    /// Broker-level defaults of topic configs, by Kafka name.
    topic_defaults: Option<BTreeMap<String, String>>,
}

fn parse_seeds(seeds: &[String]) -> anyhow::Result<Vec<Seed>> {
    seeds
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.parse::<Seed>().map_err(anyhow::Error::from))
        .collect()
}

pub(crate) fn load_config(args: &BrokerArgs) -> anyhow::Result<NodeConfig> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            toml::from_str::<FileConfig>(&text)
                .with_context(|| format!("invalid config file {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let mut config = NodeConfig::default();
    macro_rules! layer {
        ($field:ident) => {
            if let Some(v) = args.$field.clone().or(file.$field.clone()) {
                config.$field = v;
            }
        };
    }
    layer!(node_id);
    layer!(data_dir);
    layer!(kafka_addr);
    layer!(rpc_addr);
    layer!(admin_addr);
    layer!(smp);
    if let Some(seeds) = args.seeds.clone().or(file.seeds.clone()) {
        config.seeds = parse_seeds(&seeds)?;
    }
    if let Some(backend) = args.io_backend.clone().or(file.io_backend.clone()) {
        config.io_backend = backend.parse::<IoBackend>()?;
    }
    if let Some(v) = file.socket_request_max_bytes {
        config.socket_request_max_bytes = v;
    }
    if let Some(v) = file.auto_create_topics_enable {
        config.auto_create_topics_enable = v;
    }
    if let Some(v) = file.num_partitions {
        config.num_partitions = v;
    }
    if let Some(ms) = args
        .log_retention_check_interval_ms
        .or(file.log_retention_check_interval_ms)
    {
        config.log_retention_check_interval = std::time::Duration::from_millis(ms.max(1));
    }
    if let Some(n) = args
        .offsets_topic_num_partitions
        .or(file.offsets_topic_num_partitions)
    {
        config.offsets_topic_num_partitions = n;
    }
    let ms = std::time::Duration::from_millis;
    if let Some(v) = args
        .group_initial_rebalance_delay_ms
        .or(file.group_initial_rebalance_delay_ms)
    {
        config.group.initial_rebalance_delay = ms(v);
    }
    if let Some(v) = args
        .group_min_session_timeout_ms
        .or(file.group_min_session_timeout_ms)
    {
        config.group.min_session_timeout = ms(v);
    }
    if let Some(v) = args
        .group_max_session_timeout_ms
        .or(file.group_max_session_timeout_ms)
    {
        config.group.max_session_timeout = ms(v);
    }
    if let Some(v) = args
        .group_consumer_session_timeout_ms
        .or(file.group_consumer_session_timeout_ms)
    {
        config.group.consumer_session_timeout = ms(v);
    }
    if let Some(v) = args
        .group_consumer_heartbeat_interval_ms
        .or(file.group_consumer_heartbeat_interval_ms)
    {
        config.group.consumer_heartbeat_interval = ms(v);
    }
    if let Some(minutes) = args
        .offsets_retention_minutes
        .or(file.offsets_retention_minutes)
    {
        config.group.offsets_retention = std::time::Duration::from_secs(minutes.saturating_mul(60));
    }
    for (name, value) in file.topic_defaults.unwrap_or_default() {
        config
            .topic_defaults
            .set(&name, &value)
            .with_context(|| format!("invalid topic_defaults.{name}"))?;
    }
    config.validate()?;
    Ok(config)
}

fn init_tracing(args: &BrokerArgs) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&args.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format.as_str() {
        "json" => builder.json().init(),
        "text" => builder.init(),
        other => bail!("unknown log format {other:?}: expected text or json"),
    }
    Ok(())
}

/// Keeps large buffers (produce frames, fetch responses: up to a few MiB each) in the
/// malloc heap, where they are reused, instead of fresh mmaps that fault in and zero
/// every page on each request and are unmapped again when it is answered.
#[allow(unsafe_code)]
fn tune_malloc() {
    const MMAP_THRESHOLD: libc::c_int = 64 << 20;
    const TRIM_THRESHOLD: libc::c_int = 256 << 20;
    // SAFETY: mallopt only sets allocator parameters; it is called once, at start,
    // before any thread of ours exists, with values in the documented ranges.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

pub(crate) fn run(args: BrokerArgs) -> anyhow::Result<()> {
    tune_malloc();
    init_tracing(&args)?;
    let config = load_config(&args)?;
    // Signal handlers go in before the node binds its listener: a client may connect,
    // and a supervisor may send SIGTERM, as soon as the port accepts.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build signal runtime")?;
    let (mut term, mut int) = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        anyhow::Ok((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    let node = Node::start(config).context("cannot start node")?;
    runtime.block_on(async {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM received"),
            _ = int.recv() => info!("SIGINT received"),
        }
    });
    node.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: BrokerArgs,
    }

    fn args(list: &[&str]) -> BrokerArgs {
        Wrapper::parse_from(std::iter::once("broker").chain(list.iter().copied())).args
    }

    #[test]
    fn defaults_are_a_single_local_node() {
        let config = load_config(&args(&[])).unwrap();
        assert_eq!(config.node_id, 1);
        assert_eq!(config.kafka_addr.to_string(), "127.0.0.1:9092");
        assert_eq!(config.data_dir, PathBuf::from("./sluice-data"));
    }

    #[test]
    fn flags_win_over_the_file_and_unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "node_id = 7\nkafka_addr = \"127.0.0.1:9999\"\n").unwrap();
        let p = path.to_str().unwrap();
        let config = load_config(&args(&["--config", p, "--node-id", "3"])).unwrap();
        assert_eq!(config.node_id, 3);
        assert_eq!(config.kafka_addr.port(), 9999);

        std::fs::write(&path, "node_idd = 7\n").unwrap();
        let err = format!("{:#}", load_config(&args(&["--config", p])).unwrap_err());
        assert!(err.contains("node_idd"), "{err}");
    }

    #[test]
    fn example_configs_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let p = path.to_str().unwrap();
                load_config(&args(&["--config", p])).unwrap_or_else(|e| panic!("{p}: {e:#}"));
            }
        }
    }
}
