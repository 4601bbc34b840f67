//! `sluice topic …` and `sluice cluster …`: admin over the Kafka protocol through
//! `sluice-client`. (The full rpk-style command set grows from here.)

use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sluice_client::Client;
use sluice_protocol::record::{self, Compression, RecordBatchBuilder};

/// Where the brokers are.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// Comma-separated broker addresses.
    #[arg(
        long,
        env = "SLUICE_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    brokers: String,
}

impl Connection {
    async fn connect(&self) -> anyhow::Result<Client> {
        let mut last = None;
        for addr in self
            .brokers
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match Client::connect(addr).await {
                Ok(client) => return Ok(client),
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(e) => Err(e).context("no broker reachable (check --brokers or SLUICE_BROKERS)"),
            None => bail!("no broker address given (use --brokers host:port)"),
        }
    }
}

/// `sluice topic`.
#[derive(Debug, Args)]
pub(crate) struct TopicArgs {
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions (-1: the broker's default).
        #[arg(short, long, default_value_t = -1)]
        partitions: i32,
        /// Replication factor (-1: the broker's default).
        #[arg(short, long, default_value_t = -1)]
        replicas: i16,
        /// Topic config, `key=value`; repeatable.
        #[arg(short = 'c', long = "topic-config")]
        configs: Vec<String>,
    },
    /// List topics.
    List,
    /// Delete topics.
    Delete {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Produce lines from stdin, one record per line.
    Produce {
        /// Topic name.
        name: String,
        /// Partition to write to.
        #[arg(short, long, default_value_t = 0)]
        partition: i32,
        /// Split each line at the first occurrence of this string into key and value.
        #[arg(short = 'k', long)]
        key_delimiter: Option<String>,
        /// Compression: none, gzip, snappy, lz4, zstd.
        #[arg(short = 'z', long, default_value = "none")]
        compression: String,
    },
    /// Print records, one value per line.
    Consume {
        /// Topic name.
        name: String,
        /// Partition to read.
        #[arg(short, long, default_value_t = 0)]
        partition: i32,
        /// Where to start: start, end, or an offset.
        #[arg(short, long, default_value = "start")]
        offset: String,
        /// Stop after this many records (default: follow until interrupted).
        #[arg(short, long)]
        num: Option<u64>,
        /// Print keys too, as `key<TAB>value`.
        #[arg(long)]
        print_keys: bool,
    },
}

/// `sluice cluster`.
#[derive(Debug, Args)]
pub(crate) struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Cluster id, controller and brokers.
    Info,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build runtime")
}

fn compression(name: &str) -> anyhow::Result<Compression> {
    Ok(match name {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => bail!("unknown compression {other:?}: use none, gzip, snappy, lz4 or zstd"),
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn run_topic(connection: &Connection, args: TopicArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let mut client = connection.connect().await?;
        match args.command {
            TopicCommand::Create {
                name,
                partitions,
                replicas,
                configs,
            } => {
                let configs = configs
                    .iter()
                    .map(|kv| {
                        kv.split_once('=')
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .with_context(|| format!("topic config {kv:?} is not key=value"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                client
                    .create_topic(&name, partitions, replicas, &configs)
                    .await?;
                println!("created topic {name}");
            }
            TopicCommand::List => {
                let metadata = client.metadata(None).await?;
                println!("{:<40} {:>10}", "NAME", "PARTITIONS");
                for topic in &metadata.topics {
                    let name = topic
                        .name
                        .as_ref()
                        .map(|n| n.0.to_string())
                        .unwrap_or_default();
                    println!("{name:<40} {:>10}", topic.partitions.len());
                }
            }
            TopicCommand::Delete { names } => {
                for name in names {
                    client.delete_topic(&name).await?;
                    println!("deleted topic {name}");
                }
            }
            TopicCommand::Produce {
                name,
                partition,
                key_delimiter,
                compression: codec,
            } => {
                produce(
                    &mut client,
                    &name,
                    partition,
                    key_delimiter.as_deref(),
                    compression(&codec)?,
                )
                .await?
            }
            TopicCommand::Consume {
                name,
                partition,
                offset,
                num,
                print_keys,
            } => consume(&mut client, &name, partition, &offset, num, print_keys).await?,
        }
        Ok(())
    })
}

async fn produce(
    client: &mut Client,
    topic: &str,
    partition: i32,
    key_delimiter: Option<&str>,
    codec: Compression,
) -> anyhow::Result<()> {
    const BATCH_RECORDS: usize = 1000;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut total = 0u64;
    loop {
        let mut builder = RecordBatchBuilder::new(codec);
        let mut count = 0;
        for line in lines.by_ref() {
            let line = line.context("cannot read stdin")?;
            let (key, value) = match key_delimiter.and_then(|d| line.split_once(d)) {
                Some((k, v)) => (Some(k.as_bytes().to_vec()), v.as_bytes().to_vec()),
                None => (None, line.as_bytes().to_vec()),
            };
            builder.push(key.as_deref(), Some(&value), &[], now_ms());
            count += 1;
            if count == BATCH_RECORDS {
                break;
            }
        }
        if count == 0 {
            break;
        }
        client
            .produce(topic, partition, builder.build(), -1)
            .await?;
        total += count as u64;
        if count < BATCH_RECORDS {
            break;
        }
    }
    eprintln!("produced {total} records to {topic}-{partition}");
    Ok(())
}

async fn consume(
    client: &mut Client,
    topic: &str,
    partition: i32,
    offset: &str,
    num: Option<u64>,
    print_keys: bool,
) -> anyhow::Result<()> {
    let mut next = match offset {
        "start" | "beginning" => client.list_offset(topic, partition, -2).await?.1,
        "end" => client.list_offset(topic, partition, -1).await?.1,
        n => n
            .parse::<i64>()
            .with_context(|| format!("offset {n:?} is not start, end or a number"))?,
    };
    let mut printed = 0u64;
    let stdout = std::io::stdout();
    while num.is_none_or(|n| printed < n) {
        let fetched = client
            .fetch(topic, partition, next, 500, 4 * 1024 * 1024)
            .await?;
        let mut out = stdout.lock();
        for batch in record::split_batches(&fetched.records) {
            let Ok(batch) = batch else { break };
            let batch = fetched.records.slice_ref(batch);
            let header = record::BatchHeader::parse(&batch)?;
            for r in record::decode_records(&batch, 256 << 20)? {
                let offset = r.offset(&header);
                if offset < next {
                    continue;
                }
                if num.is_some_and(|n| printed >= n) {
                    break;
                }
                if print_keys {
                    out.write_all(r.key.as_deref().unwrap_or_default())?;
                    out.write_all(b"\t")?;
                }
                out.write_all(r.value.as_deref().unwrap_or_default())?;
                out.write_all(b"\n")?;
                printed += 1;
                next = offset + 1;
            }
        }
        out.flush()?;
    }
    Ok(())
}

pub(crate) fn run_cluster(connection: &Connection, args: ClusterArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let mut client = connection.connect().await?;
        match args.command {
            ClusterCommand::Info => {
                let metadata = client.metadata(None).await?;
                println!(
                    "cluster id: {}",
                    metadata
                        .cluster_id
                        .as_ref()
                        .map(|c| c.to_string())
                        .unwrap_or_default()
                );
                println!("controller: {}", metadata.controller_id.0);
                println!("{:<8} {:<30}", "NODE", "ADDRESS");
                for broker in &metadata.brokers {
                    println!("{:<8} {}:{}", broker.node_id.0, broker.host, broker.port);
                }
                println!("topics: {}", metadata.topics.len());
            }
        }
        Ok(())
    })
}
