//! `sluice`: runs a broker node (`sluice broker`) and administers a cluster over the
//! Kafka protocol (`sluice topic …`, `sluice cluster …`).

mod broker_cmd;
mod cli_topic;

use clap::{Parser, Subcommand};

/// Sluice: a Kafka-protocol streaming broker.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    #[command(flatten)]
    connection: cli_topic::Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a broker node.
    Broker(Box<broker_cmd::BrokerArgs>),
    /// Create, list, delete, produce to and consume from topics.
    Topic(cli_topic::TopicArgs),
    /// Describe the cluster.
    Cluster(cli_topic::ClusterArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Broker(args) => broker_cmd::run(*args),
        Command::Topic(args) => cli_topic::run_topic(&cli.connection, args),
        Command::Cluster(args) => cli_topic::run_cluster(&cli.connection, args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
