//! `sluice topic …`: create, list, describe, delete, alter-config, add-partitions,
//! produce, consume and trim-prefix, over the Kafka protocol through `sluice-client`.

use std::io::{IsTerminal, Read, Write};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use sluice_client::{Client, RESOURCE_TOPIC};
use sluice_protocol::record::{self, Compression, RecordBatchBuilder};

use crate::cli::{
    Format, Global, OffsetSpec, block_on, human_bytes, human_count, key_value, now_ms, print_json,
    print_table, topic_metadata, topic_name, usage,
};

/// `sluice topic`.
#[derive(Debug, Args)]
pub(crate) struct TopicArgs {
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, Subcommand)]
enum TopicCommand {
    /// Create topics.
    Create {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
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
    /// Partitions (leaders, replicas, ISR, watermarks) and configs of a topic.
    Describe {
        /// Topic name.
        name: String,
    },
    /// Delete topics.
    Delete {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Set or delete topic configs (IncrementalAlterConfigs).
    AlterConfig {
        /// Topic name.
        name: String,
        /// `key=value` to set; repeatable.
        #[arg(long = "set")]
        set: Vec<String>,
        /// Key to delete (revert to the default); repeatable.
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
    /// Add partitions to a topic (CreatePartitions).
    AddPartitions {
        /// Topic name.
        name: String,
        /// How many partitions to add.
        #[arg(short, long)]
        num: i32,
    },
    /// Produce records read from stdin.
    Produce(ProduceArgs),
    /// Print records; follows until interrupted unless --num is given.
    Consume(ConsumeArgs),
    /// Delete records before an offset (DeleteRecords).
    TrimPrefix {
        /// Topic name.
        name: String,
        /// New start offset; `end` trims everything.
        #[arg(short, long)]
        offset: String,
        /// Partitions to trim (default: all); repeatable.
        #[arg(short, long)]
        partitions: Vec<i32>,
    },
}

/// Flags of `sluice topic produce`.
#[derive(Debug, Args)]
struct ProduceArgs {
    /// Topic name.
    name: String,
    /// Partition to write to (default: by key hash, round robin without keys).
    #[arg(short, long)]
    partition: Option<i32>,
    /// Input format: %k key, %v value, %p partition, other text literal; `\n` `\t`
    /// escapes. Default `%v\n`, one record per line.
    #[arg(short = 'f', long = "input-format", default_value = "%v\\n")]
    input_format: String,
    /// Key for every record (when the format has no %k).
    #[arg(short = 'k', long)]
    key: Option<String>,
    /// Header `key=value` on every record; repeatable.
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Compression: none, gzip, snappy, lz4, zstd.
    #[arg(short = 'z', long, default_value = "none")]
    compression: String,
    /// Acks: -1 (all), 1 (leader) or 0 (no answer: errors go unseen).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    acks: i16,
    /// Print progress on stderr (default: when stderr is a terminal).
    #[arg(long)]
    progress: bool,
}

/// Flags of `sluice topic consume`.
#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// Topic name.
    pub(crate) name: String,
    /// Partitions to read (default: all); repeatable.
    #[arg(short, long)]
    pub(crate) partitions: Vec<i32>,
    /// Where to start: start, end, an offset, @<unix-ms>, @YYYY-MM-DD or @-<duration>.
    #[arg(short, long, default_value = "start", allow_hyphen_values = true)]
    pub(crate) offset: String,
    /// Stop after this many records (default: follow until interrupted).
    #[arg(short, long)]
    pub(crate) num: Option<u64>,
    /// Output format: %t topic, %k key, %v value, %o offset, %p partition,
    /// %d timestamp (ms), %h headers; `\n` `\t` escapes. Default `%v\n`
    /// (with --format json: one JSON object per record).
    #[arg(short = 'f', long = "output-format")]
    pub(crate) output_format: Option<String>,
    /// Consume as a member of this group, committing offsets after printing.
    #[arg(short, long)]
    pub(crate) group: Option<String>,
    /// Print progress toward --num on stderr (default: when stderr is a terminal).
    #[arg(long)]
    pub(crate) progress: bool,
}

fn compression(name: &str) -> anyhow::Result<Compression> {
    Ok(match name {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => {
            return usage(format!(
                "unknown compression {other:?}: use none, gzip, snappy, lz4 or zstd"
            ));
        }
    })
}

pub(crate) fn run(global: &Global, args: TopicArgs) -> anyhow::Result<()> {
    // Validate what can be validated before connecting: usage errors exit 2.
    let produce_setup = match &args.command {
        TopicCommand::Produce(p) => Some((
            compression(&p.compression)?,
            parse_format(&p.input_format)?,
            p.headers
                .iter()
                .map(|h| key_value(h, "header"))
                .collect::<anyhow::Result<Vec<_>>>()?,
        )),
        _ => None,
    };
    if let TopicCommand::Produce(p) = &args.command
        && !(-1..=1).contains(&p.acks)
    {
        return usage("--acks must be -1 (all), 1 (leader) or 0 (no answer)");
    }
    if let TopicCommand::Consume(c) = &args.command {
        OffsetSpec::parse(&c.offset)?;
        if let Some(f) = &c.output_format {
            parse_format(f)?;
        }
    }
    let format = global.format;
    block_on(async move {
        let mut client = global.connect().await?;
        match args.command {
            TopicCommand::Create {
                names,
                partitions,
                replicas,
                configs,
            } => {
                let configs = configs
                    .iter()
                    .map(|kv| key_value(kv, "topic config"))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let mut created = Vec::new();
                for name in &names {
                    client
                        .create_topic(name, partitions, replicas, &configs)
                        .await?;
                    created.push(json!({"name": name}));
                    if format == Format::Text {
                        println!("created topic {name}");
                    }
                }
                if format == Format::Json {
                    print_json(&json!({ "created": created }));
                }
            }
            TopicCommand::List => {
                let metadata = client.metadata(None).await?;
                let mut topics: Vec<_> = metadata
                    .topics
                    .iter()
                    .map(|t| {
                        (
                            topic_name(t),
                            t.partitions.len(),
                            t.partitions.first().map_or(0, |p| p.replica_nodes.len()),
                        )
                    })
                    .collect();
                topics.sort();
                match format {
                    Format::Json => print_json(&json!({
                        "topics": topics.iter().map(|(n, p, r)| json!({"name": n, "partitions": p, "replicas": r})).collect::<Vec<_>>()
                    })),
                    Format::Text => print_table(
                        &["NAME", "PARTITIONS", "REPLICAS"],
                        &topics
                            .iter()
                            .map(|(n, p, r)| vec![n.clone(), p.to_string(), r.to_string()])
                            .collect::<Vec<_>>(),
                    ),
                }
            }
            TopicCommand::Describe { name } => describe(&mut client, &name, format).await?,
            TopicCommand::Delete { names } => {
                for name in &names {
                    client.delete_topic(name).await?;
                    if format == Format::Text {
                        println!("deleted topic {name}");
                    }
                }
                if format == Format::Json {
                    print_json(&json!({ "deleted": names }));
                }
            }
            TopicCommand::AlterConfig { name, set, delete } => {
                if set.is_empty() && delete.is_empty() {
                    return usage("nothing to do: give --set key=value or --delete key");
                }
                let mut ops = Vec::new();
                for kv in &set {
                    let (k, v) = key_value(kv, "--set")?;
                    ops.push((k, Some(v)));
                }
                ops.extend(delete.iter().map(|k| (k.clone(), None)));
                client
                    .incremental_alter_configs(RESOURCE_TOPIC, &name, &ops)
                    .await?;
                match format {
                    Format::Json => print_json(
                        &json!({"topic": name, "set": ops.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), Value::from(v.clone())))).collect::<serde_json::Map<_, _>>(), "deleted": delete}),
                    ),
                    Format::Text => println!("altered configs of topic {name}"),
                }
            }
            TopicCommand::AddPartitions { name, num } => {
                if num < 1 {
                    return usage("--num must be at least 1");
                }
                let current = topic_metadata(&mut client, &name).await?.partitions.len();
                let total = i32::try_from(current)
                    .unwrap_or(i32::MAX)
                    .saturating_add(num);
                client.create_partitions(&name, total).await?;
                match format {
                    Format::Json => print_json(&json!({"topic": name, "partitions": total})),
                    Format::Text => println!("topic {name} now has {total} partitions"),
                }
            }
            TopicCommand::Produce(p) => {
                let Some((codec, tokens, headers)) = produce_setup else {
                    bail!("internal: produce setup missing");
                };
                produce(&mut client, p, codec, &tokens, &headers, format).await?;
            }
            TopicCommand::Consume(c) => consume(&mut client, global, c, format).await?,
            TopicCommand::TrimPrefix {
                name,
                offset,
                partitions,
            } => {
                let topic = topic_metadata(&mut client, &name).await?;
                let all: Vec<i32> = topic.partitions.iter().map(|p| p.partition_index).collect();
                let chosen = if partitions.is_empty() {
                    all.clone()
                } else {
                    partitions
                };
                if let Some(p) = chosen.iter().find(|p| !all.contains(p)) {
                    bail!("topic {name} has no partition {p}");
                }
                let target = match offset.as_str() {
                    "end" => -1,
                    n => match n.parse::<i64>() {
                        Ok(n) if n >= 0 => n,
                        _ => return usage(format!("offset {n:?} is not end or a number")),
                    },
                };
                let offsets: Vec<(i32, i64)> = chosen.iter().map(|&p| (p, target)).collect();
                let mut result = client.delete_records(&name, &offsets).await?;
                result.sort();
                match format {
                    Format::Json => print_json(
                        &json!({"topic": name, "partitions": result.iter().map(|(p, lw)| json!({"partition": p, "start_offset": lw})).collect::<Vec<_>>()}),
                    ),
                    Format::Text => print_table(
                        &["PARTITION", "START-OFFSET"],
                        &result
                            .iter()
                            .map(|(p, lw)| vec![p.to_string(), lw.to_string()])
                            .collect::<Vec<_>>(),
                    ),
                }
            }
        }
        Ok(())
    })
}

async fn describe(client: &mut Client, name: &str, format: Format) -> anyhow::Result<()> {
    let topic = topic_metadata(client, name).await?;
    let mut partitions = Vec::new();
    let mut parts: Vec<_> = topic.partitions.iter().collect();
    parts.sort_by_key(|p| p.partition_index);
    for p in parts {
        let start = client.list_offset(name, p.partition_index, -2).await?.1;
        let end = client.list_offset(name, p.partition_index, -1).await?.1;
        partitions.push(json!({
            "partition": p.partition_index,
            "leader": p.leader_id.0,
            "epoch": p.leader_epoch,
            "replicas": p.replica_nodes.iter().map(|r| r.0).collect::<Vec<_>>(),
            "isr": p.isr_nodes.iter().map(|r| r.0).collect::<Vec<_>>(),
            "log_start_offset": start,
            "high_watermark": end,
        }));
    }
    let mut configs = client.describe_configs(RESOURCE_TOPIC, name).await?;
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    let configs: Vec<Value> = configs
        .iter()
        .map(|c| json!({"name": c.name, "value": c.value, "source": c.source}))
        .collect();
    match format {
        Format::Json => print_json(&json!({
            "name": name,
            "internal": topic.is_internal,
            "partitions": partitions,
            "configs": configs,
        })),
        Format::Text => {
            println!("NAME        {name}");
            println!("PARTITIONS  {}", partitions.len());
            println!();
            let ids = |v: &Value| {
                v.as_array()
                    .map(|a| a.iter().map(Value::to_string).collect::<Vec<_>>().join(","))
                    .unwrap_or_default()
            };
            print_table(
                &[
                    "PARTITION",
                    "LEADER",
                    "EPOCH",
                    "REPLICAS",
                    "ISR",
                    "LOG-START-OFFSET",
                    "HIGH-WATERMARK",
                ],
                &partitions
                    .iter()
                    .map(|p| {
                        vec![
                            p["partition"].to_string(),
                            p["leader"].to_string(),
                            p["epoch"].to_string(),
                            format!("[{}]", ids(&p["replicas"])),
                            format!("[{}]", ids(&p["isr"])),
                            p["log_start_offset"].to_string(),
                            p["high_watermark"].to_string(),
                        ]
                    })
                    .collect::<Vec<_>>(),
            );
            println!();
            print_table(
                &["KEY", "VALUE", "SOURCE"],
                &configs
                    .iter()
                    .map(|c| {
                        vec![
                            c["name"].as_str().unwrap_or_default().to_owned(),
                            c["value"].as_str().unwrap_or("-").to_owned(),
                            c["source"].as_str().unwrap_or_default().to_owned(),
                        ]
                    })
                    .collect::<Vec<_>>(),
            );
        }
    }
    Ok(())
}

/// A piece of an rpk-style format string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Vec<u8>),
    Key,
    Value,
    Partition,
    Offset,
    Topic,
    Timestamp,
    Headers,
}

fn parse_format(s: &str) -> anyhow::Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut lit = Vec::new();
    let mut chars = s.chars();
    let flush = |lit: &mut Vec<u8>, tokens: &mut Vec<Token>| {
        if !lit.is_empty() {
            tokens.push(Token::Literal(std::mem::take(lit)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '%' => {
                let field = match chars.next() {
                    Some('k') => Token::Key,
                    Some('v') => Token::Value,
                    Some('p') => Token::Partition,
                    Some('o') => Token::Offset,
                    Some('t') => Token::Topic,
                    Some('d') => Token::Timestamp,
                    Some('h') => Token::Headers,
                    Some('%') => {
                        lit.push(b'%');
                        continue;
                    }
                    other => {
                        return usage(format!(
                            "format {s:?}: unknown field %{} (use %k %v %p %o %t %d %h or %%)",
                            other.map(String::from).unwrap_or_default()
                        ));
                    }
                };
                flush(&mut lit, &mut tokens);
                tokens.push(field);
            }
            '\\' => match chars.next() {
                Some('n') => lit.push(b'\n'),
                Some('t') => lit.push(b'\t'),
                Some('r') => lit.push(b'\r'),
                Some('\\') => lit.push(b'\\'),
                other => {
                    return usage(format!(
                        "format {s:?}: unknown escape \\{}",
                        other.map(String::from).unwrap_or_default()
                    ));
                }
            },
            c => {
                let mut buf = [0; 4];
                lit.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    flush(&mut lit, &mut tokens);
    Ok(tokens)
}

/// One record read with an input format.
#[derive(Debug, Default, PartialEq, Eq)]
struct Input {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    partition: Option<i32>,
}

/// Reads the next record from `input` at `pos` following `tokens`: a field extends to
/// the next literal (or the end of input). `None` at the end of input.
fn next_input(tokens: &[Token], input: &[u8], pos: &mut usize) -> anyhow::Result<Option<Input>> {
    if *pos >= input.len() {
        return Ok(None);
    }
    let mut record = Input::default();
    for (i, token) in tokens.iter().enumerate() {
        let rest = input.get(*pos..).unwrap_or_default();
        match token {
            Token::Literal(l) => {
                if rest.starts_with(l) {
                    *pos += l.len();
                } else if rest.is_empty() && i + 1 == tokens.len() {
                    // A missing final delimiter (no newline at EOF) is fine.
                } else {
                    bail!(
                        "input at byte {} does not match the format: expected {:?}",
                        *pos,
                        String::from_utf8_lossy(l)
                    );
                }
            }
            field => {
                let end = match tokens.get(i + 1) {
                    Some(Token::Literal(l)) => find(rest, l).unwrap_or(rest.len()),
                    _ => rest.len(),
                };
                let bytes = rest.get(..end).unwrap_or_default().to_vec();
                *pos += end;
                match field {
                    Token::Key => record.key = Some(bytes),
                    Token::Value => record.value = bytes,
                    Token::Partition => {
                        let text = String::from_utf8_lossy(&bytes);
                        record.partition = Some(text.trim().parse().with_context(|| {
                            format!("partition {text:?} in the input is not a number")
                        })?);
                    }
                    other => bail!("{other:?} cannot be read from input (use %k %v %p)"),
                }
            }
        }
    }
    Ok(Some(record))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn produce(
    client: &mut Client,
    args: ProduceArgs,
    codec: Compression,
    tokens: &[Token],
    headers: &[(String, String)],
    format: Format,
) -> anyhow::Result<()> {
    const BATCH_RECORDS: usize = 1000;
    let topic = args.name.as_str();
    let count =
        i32::try_from(topic_metadata(client, topic).await?.partitions.len()).unwrap_or(i32::MAX);
    if let Some(p) = args.partition
        && !(0..count).contains(&p)
    {
        bail!("topic {topic} has no partition {p} (it has {count})");
    }
    let progress = args.progress || std::io::stderr().is_terminal();
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("cannot read stdin")?;
    let header_refs: Vec<(&str, Option<&[u8]>)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_bytes())))
        .collect();
    let mut pos = 0;
    let mut round_robin = 0i32;
    let mut builders: Vec<Option<RecordBatchBuilder>> = (0..count).map(|_| None).collect();
    let mut pending = 0;
    let (mut total, mut bytes) = (0u64, 0u64);
    let mut per_partition = vec![0u64; builders.len()];
    let mut last_progress = std::time::Instant::now();
    loop {
        let next = next_input(tokens, &input, &mut pos)?;
        let done = next.is_none();
        if let Some(record) = next {
            let key = record
                .key
                .or_else(|| args.key.as_ref().map(|k| k.as_bytes().to_vec()));
            let partition = match (record.partition.or(args.partition), &key) {
                (Some(p), _) => p,
                (None, Some(k)) => sluice_protocol::partitioner::partition_for_key(k, count),
                (None, None) => {
                    round_robin = (round_robin + 1) % count.max(1);
                    round_robin
                }
            };
            let slot = builders
                .get_mut(usize::try_from(partition).unwrap_or(usize::MAX))
                .with_context(|| format!("topic {topic} has no partition {partition}"))?;
            bytes = bytes.saturating_add(
                u64::try_from(record.value.len() + key.as_ref().map_or(0, Vec::len))
                    .unwrap_or(u64::MAX),
            );
            slot.get_or_insert_with(|| RecordBatchBuilder::new(codec))
                .push(key.as_deref(), Some(&record.value), &header_refs, now_ms());
            pending += 1;
        }
        if pending >= BATCH_RECORDS || (done && pending > 0) {
            for (p, slot) in builders.iter_mut().enumerate() {
                if let Some(builder) = slot.take() {
                    let n = u64::try_from(builder.len()).unwrap_or(u64::MAX);
                    client
                        .produce(
                            topic,
                            i32::try_from(p).unwrap_or(0),
                            builder.build(),
                            args.acks,
                        )
                        .await?;
                    total += n;
                    if let Some(c) = per_partition.get_mut(p) {
                        *c += n;
                    }
                }
            }
            pending = 0;
            if progress && last_progress.elapsed().as_millis() >= 200 {
                last_progress = std::time::Instant::now();
                eprint!(
                    "\rproduced {} records ({})   ",
                    human_count(total),
                    human_bytes(bytes)
                );
            }
        }
        if done {
            break;
        }
    }
    if progress {
        eprintln!(
            "\rproduced {} records ({})   ",
            human_count(total),
            human_bytes(bytes)
        );
    }
    match format {
        Format::Json => print_json(&json!({
            "topic": topic,
            "records": total,
            "partitions": per_partition.iter().enumerate().filter(|(_, n)| **n > 0).map(|(p, n)| json!({"partition": p, "records": n})).collect::<Vec<_>>(),
        })),
        Format::Text => {
            if !progress {
                eprintln!("produced {total} records to {topic}");
            }
        }
    }
    Ok(())
}

/// Writes one record with the output format.
#[allow(clippy::too_many_arguments)]
fn write_record(
    out: &mut impl Write,
    tokens: &[Token],
    topic: &str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    r: &record::Record,
) -> std::io::Result<()> {
    for token in tokens {
        match token {
            Token::Literal(l) => out.write_all(l)?,
            Token::Key => out.write_all(r.key.as_deref().unwrap_or_default())?,
            Token::Value => out.write_all(r.value.as_deref().unwrap_or_default())?,
            Token::Partition => write!(out, "{partition}")?,
            Token::Offset => write!(out, "{offset}")?,
            Token::Topic => out.write_all(topic.as_bytes())?,
            Token::Timestamp => write!(out, "{timestamp}")?,
            Token::Headers => {
                for (i, (k, v)) in r.headers.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    out.write_all(k)?;
                    out.write_all(b"=")?;
                    out.write_all(v.as_deref().unwrap_or_default())?;
                }
            }
        }
    }
    Ok(())
}

fn record_json(
    topic: &str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    r: &record::Record,
) -> Value {
    let text =
        |b: &Option<bytes::Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    json!({
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": timestamp,
        "key": text(&r.key),
        "value": text(&r.value),
        "headers": r.headers.iter().map(|(k, v)| json!({"key": String::from_utf8_lossy(k), "value": text(v)})).collect::<Vec<_>>(),
    })
}

async fn consume(
    client: &mut Client,
    global: &Global,
    args: ConsumeArgs,
    format: Format,
) -> anyhow::Result<()> {
    if let Some(group) = &args.group {
        return crate::cli_group::consume_in_group(client, global, &args, group, format).await;
    }
    let topic = args.name.as_str();
    let meta = topic_metadata(client, topic).await?;
    let all: Vec<i32> = meta.partitions.iter().map(|p| p.partition_index).collect();
    let mut partitions = if args.partitions.is_empty() {
        all.clone()
    } else {
        args.partitions.clone()
    };
    partitions.sort_unstable();
    if let Some(p) = partitions.iter().find(|p| !all.contains(p)) {
        bail!("topic {topic} has no partition {p}");
    }
    let spec = OffsetSpec::parse(&args.offset)?;
    let mut next = Vec::new();
    for &p in &partitions {
        next.push((p, spec.resolve(client, topic, p).await?));
    }
    let printer = Printer::new(args.output_format.as_deref(), format)?;
    let mut printed = 0u64;
    // Progress only makes sense toward a known number of records.
    let progress = args
        .num
        .filter(|_| args.progress || std::io::stderr().is_terminal());
    let mut last_progress = std::time::Instant::now();
    let follow = async {
        // With several partitions a short wait keeps one quiet partition from
        // delaying the others.
        let wait = if next.len() > 1 { 100 } else { 500 };
        while args.num.is_none_or(|n| printed < n) {
            for (p, offset) in next.iter_mut() {
                let remaining = args.num.map(|n| n - printed);
                printed +=
                    fetch_and_print(client, topic, *p, offset, wait, remaining, &printer).await?;
                if args.num.is_some_and(|n| printed >= n) {
                    break;
                }
            }
            if let Some(num) = progress
                && last_progress.elapsed().as_millis() >= 200
            {
                last_progress = std::time::Instant::now();
                eprint!(
                    "\rconsumed {} of {} records   ",
                    human_count(printed),
                    human_count(num)
                );
            }
        }
        if let Some(num) = progress {
            eprintln!(
                "\rconsumed {} of {} records   ",
                human_count(printed),
                human_count(num)
            );
        }
        anyhow::Ok(())
    };
    tokio::select! {
        r = follow => r,
        // Ctrl-C is how following ends: a clean exit.
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Prints consumed records in the chosen format.
pub(crate) struct Printer {
    tokens: Option<Vec<Token>>,
}

impl Printer {
    /// `output_format` wins; otherwise `%v\n` for text and JSON lines for json.
    pub(crate) fn new(output_format: Option<&str>, format: Format) -> anyhow::Result<Self> {
        Ok(Self {
            tokens: match (output_format, format) {
                (Some(f), _) => Some(parse_format(f)?),
                (None, Format::Text) => Some(parse_format("%v\\n")?),
                (None, Format::Json) => None,
            },
        })
    }
}

/// Fetches once from `topic`-`partition` at `next`, prints up to `limit` records and
/// advances `next`. Returns how many were printed.
pub(crate) async fn fetch_and_print(
    client: &mut Client,
    topic: &str,
    partition: i32,
    next: &mut i64,
    wait_ms: i32,
    limit: Option<u64>,
    printer: &Printer,
) -> anyhow::Result<u64> {
    let fetched = client
        .fetch(topic, partition, *next, wait_ms, 4 * 1024 * 1024)
        .await?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut printed = 0u64;
    for batch in record::split_batches(&fetched.records) {
        let Ok(batch) = batch else { break };
        let batch = fetched.records.slice_ref(batch);
        let header = record::BatchHeader::parse(&batch)?;
        if header.is_control() {
            *next = header.last_offset() + 1;
            continue;
        }
        for r in record::decode_records(&batch, 256 << 20)? {
            let offset = r.offset(&header);
            if offset < *next {
                continue;
            }
            if limit.is_some_and(|n| printed >= n) {
                break;
            }
            let ts = r.timestamp(&header);
            match &printer.tokens {
                Some(tokens) => write_record(&mut out, tokens, topic, partition, offset, ts, &r)?,
                None => writeln!(out, "{}", record_json(topic, partition, offset, ts, &r))?,
            }
            printed += 1;
            *next = offset + 1;
        }
    }
    out.flush()?;
    Ok(printed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_formats_split_records() {
        let tokens = parse_format("%k %v\\n").unwrap_or_default();
        let input = b"a one\nb two words\n";
        let mut pos = 0;
        let first = next_input(&tokens, input, &mut pos).ok().flatten();
        assert_eq!(
            first,
            Some(Input {
                key: Some(b"a".to_vec()),
                value: b"one".to_vec(),
                partition: None
            })
        );
        let second = next_input(&tokens, input, &mut pos).ok().flatten();
        assert_eq!(second.map(|r| r.value), Some(b"two words".to_vec()));
        assert!(matches!(next_input(&tokens, input, &mut pos), Ok(None)));
        assert!(parse_format("%x").is_err());
    }
}
