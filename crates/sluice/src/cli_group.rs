//! `sluice group …`: list, describe (members, assignments, committed offsets, lag),
//! seek (commit new offsets for a group without members) and delete; and the group
//! side of `sluice topic consume --group`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use sluice_client::{Client, ClientError, Committed};
use sluice_protocol::ResponseError;

use crate::cli::{Format, Global, OffsetSpec, block_on, print_json, print_table, topic_metadata};

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
        let lag = end.map(|e| {
            if c.offset < 0 {
                e
            } else {
                (e - c.offset).max(0)
            }
        });
        offsets.push(json!({
            "topic": c.topic,
            "partition": c.partition,
            "committed_offset": c.offset,
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
/// and commits after printing.
pub(crate) async fn consume_in_group(
    _client: &mut Client,
    _topic: &str,
    group: &str,
    _num: Option<u64>,
    _output_format: Option<&str>,
    _format: Format,
) -> anyhow::Result<()> {
    bail!("consuming as group {group} is not supported yet")
}
