//! `sluice group …`: list, describe (members, assignments, committed offsets, lag),
//! seek (commit new offsets for a group without members) and delete; and the group
//! side of `sluice topic consume --group`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use sluice_client::{Client, ClientError, Committed, SESSION_TIMEOUT_MS};
use sluice_protocol::ResponseError;

use crate::cli::{
    Format, Global, OffsetSpec, block_on, coordinator, print_json, print_table, topic_metadata,
};
use crate::cli_topic::{ConsumeArgs, Printer, fetch_and_print};

/// `sluice group`.
#[derive(Debug, Args)]
pub(crate) struct GroupArgs {
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// List groups.
    List,
    /// State, members, assignments, committed offsets and lag of a group.
    Describe {
        /// Group id.
        group: String,
    },
    /// Move a group's committed offsets (the group must have no members).
    Seek {
        /// Group id.
        group: String,
        /// Where to: start, end, an offset, @<unix-ms> or @-<duration>.
        #[arg(
            long,
            allow_hyphen_values = true,
            conflicts_with = "to_file",
            required_unless_present = "to_file"
        )]
        to: Option<String>,
        /// File of `topic partition offset` lines.
        #[arg(long)]
        to_file: Option<std::path::PathBuf>,
        /// Topics to seek (default: those the group has offsets for); repeatable.
        #[arg(long)]
        topic: Vec<String>,
    },
    /// Delete groups.
    Delete {
        /// Group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

pub(crate) fn run(global: &Global, args: GroupArgs) -> anyhow::Result<()> {
    if let GroupCommand::Seek { to: Some(to), .. } = &args.command {
        OffsetSpec::parse(to)?;
    }
    let format = global.format;
    block_on(async move {
        let mut client = global.connect().await?;
        // Group requests go to the group's coordinator.
        let single = match &args.command {
            GroupCommand::Describe { group } | GroupCommand::Seek { group, .. } => Some(group),
            GroupCommand::Delete { groups } if groups.len() == 1 => groups.first(),
            _ => None,
        };
        if let Some(group) = single {
            client = coordinator(client, group).await?;
        }
        match args.command {
            GroupCommand::List => {
                let mut groups = client.list_groups().await?;
                groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
                match format {
                    Format::Json => print_json(
                        &json!({"groups": groups.iter().map(|g| json!({"group": g.group_id, "protocol_type": g.protocol_type, "state": g.state})).collect::<Vec<_>>()}),
                    ),
                    Format::Text => print_table(
                        &["GROUP", "PROTOCOL-TYPE", "STATE"],
                        &groups
                            .iter()
                            .map(|g| {
                                vec![g.group_id.clone(), g.protocol_type.clone(), g.state.clone()]
                            })
                            .collect::<Vec<_>>(),
                    ),
                }
            }
            GroupCommand::Describe { group } => describe(&mut client, &group, format).await?,
            GroupCommand::Seek {
                group,
                to,
                to_file,
                topic,
            } => {
                seek(
                    &mut client,
                    &group,
                    to.as_deref(),
                    to_file.as_deref(),
                    &topic,
                    format,
                )
                .await?;
            }
            GroupCommand::Delete { groups } => {
                for g in &groups {
                    client
                        .delete_group(g)
                        .await
                        .map_err(|e| explain_group_error(g, e))?;
                    if format == Format::Text {
                        println!("deleted group {g}");
                    }
                }
                if format == Format::Json {
                    print_json(&json!({"deleted": groups}));
                }
            }
        }
        Ok(())
    })
}

fn is_kafka_error(e: &ClientError, which: ResponseError) -> bool {
    matches!(e, ClientError::Kafka { error, .. } if *error == which)
}

fn explain_group_error(group: &str, e: ClientError) -> anyhow::Error {
    if is_kafka_error(&e, ResponseError::GroupIdNotFound) {
        anyhow::anyhow!("unknown group {group} (see `sluice group list`)")
    } else if is_kafka_error(&e, ResponseError::NonEmptyGroup) {
        anyhow::anyhow!("{e}: group {group} has members; stop its consumers first")
    } else {
        e.into()
    }
}

/// Known-or-error: DescribeGroups answers `Dead` for a group it does not know.
async fn existing_group(
    client: &mut Client,
    group: &str,
) -> anyhow::Result<sluice_client::DescribedGroup> {
    let g = client
        .describe_group(group)
        .await
        .map_err(|e| explain_group_error(group, e))?;
    if g.state == "Dead" {
        bail!("unknown group {group} (see `sluice group list`)");
    }
    Ok(g)
}

async fn describe(client: &mut Client, group: &str, format: Format) -> anyhow::Result<()> {
    let g = existing_group(client, group).await?;
    let mut committed = client.offset_fetch(group).await?;
    // Assigned partitions without a commit yet are shown too (no offset, lag unknown).
    for m in &g.members {
        for (topic, parts) in &m.assignment {
            for &partition in parts {
                if !committed
                    .iter()
                    .any(|c| &c.topic == topic && c.partition == partition)
                {
                    committed.push(Committed {
                        topic: topic.clone(),
                        partition,
                        offset: -1,
                    });
                }
            }
        }
    }
    committed.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let owner = |topic: &str, partition: i32| {
        g.members
            .iter()
            .find(|m| {
                m.assignment
                    .iter()
                    .any(|(t, ps)| t == topic && ps.contains(&partition))
            })
            .map(|m| m.member_id.clone())
    };
    let mut offsets = Vec::new();
    for c in &committed {
        let end = client
            .list_offset(&c.topic, c.partition, -1)
            .await
            .map(|r| r.1)
            .ok();
        let lag = end.filter(|_| c.offset >= 0).map(|e| (e - c.offset).max(0));
        offsets.push(json!({
            "topic": c.topic,
            "partition": c.partition,
            "committed_offset": (c.offset >= 0).then_some(c.offset),
            "high_watermark": end,
            "lag": lag,
            "member_id": owner(&c.topic, c.partition),
        }));
    }
    let members: Vec<Value> = g
        .members
        .iter()
        .map(|m| {
            json!({
                "member_id": m.member_id,
                "instance_id": m.instance_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "assignment": m.assignment.iter().map(|(t, ps)| json!({"topic": t, "partitions": ps})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let total_lag: i64 = offsets.iter().filter_map(|o| o["lag"].as_i64()).sum();
    match format {
        Format::Json => print_json(&json!({
            "group": g.group_id,
            "state": g.state,
            "protocol_type": g.protocol_type,
            "protocol": g.protocol,
            "members": members,
            "offsets": offsets,
            "total_lag": total_lag,
        })),
        Format::Text => {
            println!("GROUP        {}", g.group_id);
            println!("STATE        {}", g.state);
            println!("PROTOCOL     {} {}", g.protocol_type, g.protocol);
            println!("MEMBERS      {}", g.members.len());
            println!("TOTAL-LAG    {total_lag}");
            println!();
            if !g.members.is_empty() {
                print_table(
                    &["MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"],
                    &g.members
                        .iter()
                        .map(|m| {
                            vec![
                                m.member_id.clone(),
                                m.client_id.clone(),
                                m.client_host.clone(),
                                m.assignment
                                    .iter()
                                    .map(|(t, ps)| format!("{t}:{ps:?}"))
                                    .collect::<Vec<_>>()
                                    .join(" "),
                            ]
                        })
                        .collect::<Vec<_>>(),
                );
                println!();
            }
            let cell = |v: &Value| {
                if v.is_null() {
                    "-".to_owned()
                } else {
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                }
            };
            print_table(
                &[
                    "TOPIC",
                    "PARTITION",
                    "CURRENT-OFFSET",
                    "LOG-END-OFFSET",
                    "LAG",
                    "MEMBER-ID",
                ],
                &offsets
                    .iter()
                    .map(|o| {
                        [
                            "topic",
                            "partition",
                            "committed_offset",
                            "high_watermark",
                            "lag",
                            "member_id",
                        ]
                        .iter()
                        .map(|k| cell(&o[*k]))
                        .collect()
                    })
                    .collect::<Vec<_>>(),
            );
        }
    }
    Ok(())
}

async fn seek(
    client: &mut Client,
    group: &str,
    to: Option<&str>,
    to_file: Option<&std::path::Path>,
    topics: &[String],
    format: Format,
) -> anyhow::Result<()> {
    // A group the coordinator does not know has no members: seeking creates it.
    let members = match client.describe_group(group).await {
        Ok(g) => Some(g).filter(|g| !g.members.is_empty()),
        Err(e) if is_kafka_error(&e, ResponseError::GroupIdNotFound) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(g) = members {
        bail!(
            "group {group} has {} active member(s) (state {}): stop its consumers before seeking",
            g.members.len(),
            g.state
        );
    }
    let mut targets: Vec<Committed> = Vec::new();
    if let Some(path) = to_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [topic, partition, offset] = fields.as_slice() else {
                return crate::cli::usage(format!(
                    "{}:{}: expected `topic partition offset`, got {line:?}",
                    path.display(),
                    n + 1
                ));
            };
            let parse_err = || {
                format!(
                    "{}:{}: partition and offset must be numbers",
                    path.display(),
                    n + 1
                )
            };
            targets.push(Committed {
                topic: (*topic).to_owned(),
                partition: partition.parse().ok().with_context(parse_err)?,
                offset: offset.parse().ok().with_context(parse_err)?,
            });
        }
    } else if let Some(to) = to {
        let spec = OffsetSpec::parse(to)?;
        let mut names: Vec<String> = topics.to_vec();
        if names.is_empty() {
            let committed = client.offset_fetch(group).await?;
            for c in committed {
                if !names.contains(&c.topic) {
                    names.push(c.topic);
                }
            }
        }
        if names.is_empty() {
            bail!("group {group} has no committed offsets: name the topics with --topic");
        }
        for topic in &names {
            let meta = topic_metadata(client, topic).await?;
            for p in &meta.partitions {
                let offset = spec.resolve(client, topic, p.partition_index).await?;
                targets.push(Committed {
                    topic: topic.clone(),
                    partition: p.partition_index,
                    offset,
                });
            }
        }
    }
    targets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    client.offset_commit(group, -1, "", &targets).await?;
    match format {
        Format::Json => print_json(&json!({
            "group": group,
            "offsets": targets.iter().map(|c| json!({"topic": c.topic, "partition": c.partition, "offset": c.offset})).collect::<Vec<_>>(),
        })),
        Format::Text => print_table(
            &["TOPIC", "PARTITION", "NEW-OFFSET"],
            &targets
                .iter()
                .map(|c| {
                    vec![
                        c.topic.clone(),
                        c.partition.to_string(),
                        c.offset.to_string(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
    Ok(())
}

/// `sluice topic consume --group`: joins `group`, reads the partitions it is assigned
/// (from the committed offset, or `offset` where none is committed), commits after
/// printing, rejoins on rebalances and leaves the group when done or interrupted.
pub(crate) async fn consume_in_group(
    client: &mut Client,
    global: &Global,
    args: &ConsumeArgs,
    group: &str,
    format: Format,
) -> anyhow::Result<()> {
    let (topic, num) = (args.name.as_str(), args.num);
    let (offset, output_format) = (&args.offset, args.output_format.as_deref());
    let spec = OffsetSpec::parse(offset)?;
    topic_metadata(client, topic).await?;
    let printer = Printer::new(output_format, format)?;
    let topics = vec![topic.to_owned()];
    // Group calls go to the coordinator; fetches stay on `client`.
    let mut coord = coordinator(global.connect().await?, group).await?;
    let mut membership = None;
    let run = async {
        let mut printed = 0u64;
        let mut member_id = String::new();
        'rejoin: loop {
            let m = coord.join_group(group, &topics, &member_id).await?;
            member_id = m.member_id.clone();
            membership = Some(m.clone());
            let committed = coord.offset_fetch(group).await?;
            let mut positions: Vec<(i32, i64)> = Vec::new();
            for (t, parts) in &m.assignment {
                if t != topic {
                    continue;
                }
                for &p in parts {
                    let start = match committed
                        .iter()
                        .find(|c| &c.topic == t && c.partition == p && c.offset >= 0)
                    {
                        Some(c) => c.offset,
                        None => spec.resolve(client, topic, p).await?,
                    };
                    positions.push((p, start));
                }
            }
            let mut last_heartbeat = std::time::Instant::now();
            loop {
                if num.is_some_and(|n| printed >= n) {
                    return anyhow::Ok(());
                }
                if positions.is_empty() {
                    // Nothing assigned (more members than partitions): stay in the group.
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                for (p, next) in positions.iter_mut() {
                    let before = *next;
                    let limit = num.map(|n| n - printed);
                    printed +=
                        fetch_and_print(client, topic, *p, next, 200, limit, &printer).await?;
                    if *next != before {
                        let offsets = [Committed {
                            topic: topic.to_owned(),
                            partition: *p,
                            offset: *next,
                        }];
                        if coord.commit_as(&m, &offsets).await.is_err() {
                            // Refused: a rebalance took the partition; rejoin.
                            continue 'rejoin;
                        }
                    }
                    if num.is_some_and(|n| printed >= n) {
                        break;
                    }
                }
                let interval = u128::from(SESSION_TIMEOUT_MS.unsigned_abs() / 3);
                if last_heartbeat.elapsed().as_millis() >= interval.min(3_000) {
                    last_heartbeat = std::time::Instant::now();
                    if !coord.heartbeat(&m).await? {
                        continue 'rejoin;
                    }
                }
            }
        }
    };
    let result = tokio::select! {
        r = run => r,
        // Ctrl-C is how following ends: a clean exit.
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    // Leave on a fresh connection: an interrupted call may have left the old one
    // mid-response.
    if let Some(m) = membership
        && let Ok(fresh) = global.connect().await
        && let Ok(mut fresh) = coordinator(fresh, group).await
        && let Err(e) = fresh.leave_group(&m).await
    {
        eprintln!("warning: could not leave group {group}: {e}");
    }
    result
}
