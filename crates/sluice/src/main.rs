//! `sluice`: runs a broker node (`sluice broker`) and administers a cluster over the
//! Kafka protocol, shaped after rpk (`sluice topic …`, `group …`, `cluster …`, `dev …`).

/// The broker allocates per record on its processing paths (decoded records, JSON
/// values, operator state); mimalloc's thread-local free lists suit one thread per shard.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod broker_cmd;
mod cli;
mod cli_cluster;
mod cli_dev;
mod cli_group;
mod cli_topic;
mod cli_transform;

use clap::{Parser, Subcommand};

/// Sluice: a Kafka-protocol streaming broker.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, after_help = cli::EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    global: cli::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a broker node.
    Broker(Box<broker_cmd::BrokerArgs>),
    /// Create, describe, alter, delete, produce to and consume from topics.
    Topic(cli_topic::TopicArgs),
    /// List, describe, seek and delete consumer groups.
    Group(cli_group::GroupArgs),
    /// Cluster info, health and configs.
    Cluster(cli_cluster::ClusterArgs),
    /// Run a local cluster for development.
    Dev(cli_dev::DevArgs),
    /// Deploy, list, describe, pause, resume and delete pipelines.
    Transform(cli_transform::TransformArgs),
}

/// Admin output piped into `head` should end quietly, as with other Unix tools, rather
/// than panic on a closed stdout.
#[allow(unsafe_code)]
fn default_sigpipe() {
    // SAFETY: restores the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Broker(_)) {
        default_sigpipe();
    }
    let result = match cli.command {
        Command::Broker(args) => broker_cmd::run(*args),
        Command::Topic(args) => cli_topic::run(&cli.global, args),
        Command::Group(args) => cli_group::run(&cli.global, args),
        Command::Cluster(args) => cli_cluster::run(&cli.global, args),
        Command::Dev(args) => cli_dev::run(&cli.global, args),
        Command::Transform(args) => cli_transform::run(&cli.global, args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.downcast_ref::<cli::UsageError>().is_some() {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}
