//! `groupbench`: consumer-group figures with librdkafka (rdkafka) against a running
//! broker (Sluice or any Kafka broker).
//!
//! Rebalance mode: `--members` consumers join one group on a topic of `--partitions`
//! partitions; once they are stable, one more member joins and the time until every
//! member holds a disjoint share of all partitions again is measured; then it leaves and
//! the time until the others hold everything again is measured. Repeated `--rounds`
//! times.
//!
//! ```text
//! groupbench --brokers 127.0.0.1:9092 rebalance --members 10 --partitions 20 --rounds 10
//! ```
//!
//! Commit mode: `--committers` threads, each a consumer in its own group, commit offsets
//! synchronously (each commit waits for the broker's answer) for `--duration-s` seconds.
//!
//! ```text
//! groupbench --brokers 127.0.0.1:9092 commit --committers 8 --duration-s 10
//! ```
//!
//! Both modes end with one line starting with `RESULT `.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "groupbench", about = "Consumer-group benchmarks (rdkafka)")]
struct Args {
    /// Bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Time for a group to settle after a member joins or leaves.
    Rebalance {
        /// Members before the one that joins.
        #[arg(long, default_value_t = 10)]
        members: usize,
        /// Partitions of the topic.
        #[arg(long, default_value_t = 20)]
        partitions: i32,
        /// Join/leave rounds.
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        /// The members' heartbeat.interval.ms: how soon a member notices a rebalance.
        #[arg(long, default_value_t = 100)]
        heartbeat_ms: u32,
    },
    /// Synchronous offset commits per second.
    Commit {
        /// Concurrent committers, each in its own group.
        #[arg(long, default_value_t = 1)]
        committers: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 10)]
        duration_s: u64,
    },
}

fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("admin client")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = rt.block_on(admin.create_topics(
        &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Timeout::After(OP_TIMEOUT))),
    ))?;
    for r in results {
        if let Err((name, code)) = r {
            bail!("create topic {name}: {code}");
        }
    }
    Ok(())
}

fn member(brokers: &str, group: &str, topic: &str, heartbeat_ms: u32) -> Result<BaseConsumer> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", heartbeat_ms.to_string())
        .set("partition.assignment.strategy", "range")
        .create()
        .context("consumer")?;
    c.subscribe(&[topic])?;
    Ok(c)
}

fn assigned(c: &BaseConsumer) -> BTreeSet<i32> {
    c.assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Polls every member until they hold disjoint, non-empty shares covering all
/// partitions; returns how long that took.
fn settle(members: &[BaseConsumer], partitions: i32) -> Result<Duration> {
    let start = Instant::now();
    let all: BTreeSet<i32> = (0..partitions).collect();
    loop {
        for m in members {
            let _ = m.poll(Duration::from_millis(1));
        }
        let sets: Vec<BTreeSet<i32>> = members.iter().map(assigned).collect();
        let total: usize = sets.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
        if sets.iter().all(|s| !s.is_empty()) && total == union.len() && union == all {
            return Ok(start.elapsed());
        }
        if start.elapsed() > OP_TIMEOUT {
            bail!("group did not settle: {sets:?}");
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn rebalance(
    brokers: &str,
    members: usize,
    partitions: i32,
    rounds: usize,
    heartbeat_ms: u32,
) -> Result<()> {
    let nonce = std::process::id();
    let topic = format!("groupbench-{nonce}");
    let group = format!("groupbench-{nonce}");
    create_topic(brokers, &topic, partitions)?;
    let mut group_members = (0..members)
        .map(|_| member(brokers, &group, &topic, heartbeat_ms))
        .collect::<Result<Vec<_>>>()?;
    let first = settle(&group_members, partitions)?;
    println!("initial join of {members} members: {:.1} ms", ms(first));
    let (mut joins, mut leaves) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        group_members.push(member(brokers, &group, &topic, heartbeat_ms)?);
        let join = settle(&group_members, partitions)?;
        // Dropping closes the consumer, which leaves the group.
        drop(group_members.pop());
        let leave = settle(&group_members, partitions)?;
        println!(
            "round {round}: join {:.1} ms, leave {:.1} ms",
            ms(join),
            ms(leave)
        );
        joins.push(join);
        leaves.push(leave);
    }
    joins.sort();
    leaves.sort();
    println!(
        "RESULT mode=rebalance members={members} partitions={partitions} heartbeat_ms={heartbeat_ms} \
         join_p50_ms={:.1} join_max_ms={:.1} leave_p50_ms={:.1} leave_max_ms={:.1}",
        ms(percentile(&joins, 0.5)),
        ms(percentile(&joins, 1.0)),
        ms(percentile(&leaves, 0.5)),
        ms(percentile(&leaves, 1.0)),
    );
    Ok(())
}

fn commit(brokers: &str, committers: usize, duration: Duration) -> Result<()> {
    let nonce = std::process::id();
    let topic = format!("groupbench-commit-{nonce}");
    create_topic(brokers, &topic, 1)?;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for i in 0..committers {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("groupbench-commit-{nonce}-{i}"))
            .set("enable.auto.commit", "false")
            .create()
            .context("consumer")?;
        let (topic, stop, done) = (topic.clone(), stop.clone(), done.clone());
        threads.push(std::thread::spawn(move || -> Result<Vec<Duration>> {
            let mut latencies = Vec::new();
            let mut offset = 0i64;
            while !stop.load(Ordering::Relaxed) {
                offset += 1;
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&topic, 0, Offset::Offset(offset))?;
                let start = Instant::now();
                consumer.commit(&tpl, CommitMode::Sync)?;
                latencies.push(start.elapsed());
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(latencies)
        }));
    }
    // The first commits include finding the coordinator: measure from a warm state.
    std::thread::sleep(Duration::from_secs(1));
    let (start, before) = (Instant::now(), done.load(Ordering::Relaxed));
    std::thread::sleep(duration);
    let (elapsed, after) = (start.elapsed(), done.load(Ordering::Relaxed));
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in threads {
        latencies.extend(
            t.join()
                .map_err(|_| anyhow::anyhow!("committer panicked"))??,
        );
    }
    latencies.sort();
    let rate = (after - before) as f64 / elapsed.as_secs_f64();
    println!(
        "RESULT mode=commit committers={committers} commits_per_s={rate:.0} p50_ms={:.2} p99_ms={:.2}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.mode {
        Mode::Rebalance {
            members,
            partitions,
            rounds,
            heartbeat_ms,
        } => rebalance(&args.brokers, members, partitions, rounds, heartbeat_ms),
        Mode::Commit {
            committers,
            duration_s,
        } => commit(&args.brokers, committers, Duration::from_secs(duration_s)),
    }
}
