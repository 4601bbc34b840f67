//! `sluice cluster …`: info (brokers, controller), health (nodes, leaderless and
//! under-replicated partitions, from Metadata) and config (the broker resource's
//! DescribeConfigs / IncrementalAlterConfigs).

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::json;
use sluice_client::{Client, RESOURCE_BROKER};

use crate::cli::{Format, Global, block_on, key_value, print_json, print_table, topic_name};

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
    /// Nodes up, leaderless and under-replicated partitions; exit 1 when unhealthy.
    Health,
    /// Cluster-wide configs.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print one config's value.
    Get {
        /// Config name.
        key: String,
    },
    /// List every config with its source.
    List,
    /// Set configs, `key=value`.
    Set {
        /// `key=value` pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
    },
}

/// The broker whose configs are read: the controller (any node answers for the
/// cluster while there is one).
async fn config_node(client: &mut Client) -> anyhow::Result<String> {
    let metadata = client.metadata(Some(&[])).await?;
    Ok(metadata.controller_id.0.to_string())
}

pub(crate) fn run(global: &Global, args: ClusterArgs) -> anyhow::Result<()> {
    let format = global.format;
    let pairs = match &args.command {
        ClusterCommand::Config {
            command: ConfigCommand::Set { pairs },
        } => pairs
            .iter()
            .map(|kv| key_value(kv, "config"))
            .collect::<anyhow::Result<Vec<_>>>()?,
        _ => Vec::new(),
    };
    block_on(async move {
        let mut client = global.connect().await?;
        match args.command {
            ClusterCommand::Info => {
                let metadata = client.metadata(None).await?;
                let cluster_id = metadata
                    .cluster_id
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default();
                let mut brokers: Vec<_> = metadata
                    .brokers
                    .iter()
                    .map(|b| {
                        (
                            b.node_id.0,
                            b.host.to_string(),
                            b.port,
                            b.rack.as_ref().map(|r| r.to_string()),
                        )
                    })
                    .collect();
                brokers.sort();
                match format {
                    Format::Json => print_json(&json!({
                        "cluster_id": cluster_id,
                        "controller": metadata.controller_id.0,
                        "brokers": brokers.iter().map(|(id, h, p, rack)| json!({"node_id": id, "host": h, "port": p, "rack": rack})).collect::<Vec<_>>(),
                        "topics": metadata.topics.len(),
                    })),
                    Format::Text => {
                        println!("cluster id: {cluster_id}");
                        println!("controller: {}", metadata.controller_id.0);
                        println!("topics: {}", metadata.topics.len());
                        println!();
                        print_table(
                            &["NODE", "ADDRESS", "RACK"],
                            &brokers
                                .iter()
                                .map(|(id, h, p, rack)| {
                                    vec![
                                        id.to_string(),
                                        format!("{h}:{p}"),
                                        rack.clone().unwrap_or_else(|| "-".to_owned()),
                                    ]
                                })
                                .collect::<Vec<_>>(),
                        );
                    }
                }
            }
            ClusterCommand::Health => {
                let metadata = client.metadata(None).await?;
                let mut nodes: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
                nodes.sort_unstable();
                let (mut leaderless, mut under_replicated) = (Vec::new(), Vec::new());
                for t in &metadata.topics {
                    let name = topic_name(t);
                    for p in &t.partitions {
                        let id = format!("{name}/{}", p.partition_index);
                        if p.leader_id.0 < 0 {
                            leaderless.push(id.clone());
                        }
                        if p.isr_nodes.len() < p.replica_nodes.len() {
                            under_replicated.push(id);
                        }
                    }
                }
                leaderless.sort();
                under_replicated.sort();
                let healthy =
                    !nodes.is_empty() && leaderless.is_empty() && under_replicated.is_empty();
                match format {
                    Format::Json => print_json(&json!({
                        "healthy": healthy,
                        "controller": metadata.controller_id.0,
                        "nodes": nodes,
                        "leaderless_partitions": leaderless,
                        "under_replicated_partitions": under_replicated,
                    })),
                    Format::Text => {
                        println!("healthy:                     {healthy}");
                        println!("controller:                  {}", metadata.controller_id.0);
                        println!("nodes up:                    {nodes:?}");
                        println!("leaderless partitions:       {leaderless:?}");
                        println!("under-replicated partitions: {under_replicated:?}");
                    }
                }
                if !healthy {
                    bail!("cluster is not healthy");
                }
            }
            ClusterCommand::Config { command } => {
                let node = config_node(&mut client).await?;
                match command {
                    ConfigCommand::Get { key } => {
                        let configs = client.describe_configs(RESOURCE_BROKER, &node).await?;
                        let Some(c) = configs.iter().find(|c| c.name == key) else {
                            bail!("unknown config {key} (see `sluice cluster config list`)");
                        };
                        match format {
                            Format::Json => print_json(
                                &json!({"name": c.name, "value": c.value, "source": c.source, "read_only": c.read_only}),
                            ),
                            Format::Text => println!("{}", c.value.as_deref().unwrap_or("")),
                        }
                    }
                    ConfigCommand::List => {
                        let mut configs = client.describe_configs(RESOURCE_BROKER, &node).await?;
                        configs.sort_by(|a, b| a.name.cmp(&b.name));
                        match format {
                            Format::Json => print_json(
                                &json!({"configs": configs.iter().map(|c| json!({"name": c.name, "value": c.value, "source": c.source, "read_only": c.read_only})).collect::<Vec<_>>()}),
                            ),
                            Format::Text => print_table(
                                &["KEY", "VALUE", "SOURCE", "READ-ONLY"],
                                &configs
                                    .iter()
                                    .map(|c| {
                                        vec![
                                            c.name.clone(),
                                            c.value.clone().unwrap_or_else(|| "-".to_owned()),
                                            c.source.to_owned(),
                                            c.read_only.to_string(),
                                        ]
                                    })
                                    .collect::<Vec<_>>(),
                            ),
                        }
                    }
                    ConfigCommand::Set { .. } => {
                        let ops: Vec<(String, Option<String>)> = pairs
                            .iter()
                            .map(|(k, v)| (k.clone(), Some(v.clone())))
                            .collect();
                        // The empty name is Kafka's cluster-wide default resource.
                        client
                            .incremental_alter_configs(RESOURCE_BROKER, "", &ops)
                            .await?;
                        match format {
                            Format::Json => print_json(
                                &json!({"set": pairs.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone()))).collect::<serde_json::Map<_, _>>()}),
                            ),
                            Format::Text => println!(
                                "set {}",
                                pairs
                                    .iter()
                                    .map(|(k, v)| format!("{k}={v}"))
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            ),
                        }
                    }
                }
            }
        }
        Ok(())
    })
}
