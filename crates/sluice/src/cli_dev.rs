//! `sluice dev up|down|status`: a local cluster of real `sluice broker` processes (this
//! executable) on free loopback ports, in the background, with logs and a `state.json`
//! (pids, ports) under the chosen directory. `down` signals only the pids it recorded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::cli::{Format, Global, block_on, print_json, print_table};

/// How long a node may take to answer ApiVersions after starting.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `down` waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// `sluice dev`.
#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    #[command(subcommand)]
    command: DevCommand,
}

#[derive(Debug, Subcommand)]
enum DevCommand {
    /// Start a local cluster in the background and print its brokers string.
    Up {
        /// Number of nodes (only 1 until replication exists).
        #[arg(long, default_value_t = 1)]
        nodes: u32,
        /// Directory for data, logs and state.json.
        #[arg(long, default_value = "sluice-dev")]
        dir: PathBuf,
    },
    /// Stop the cluster started in --dir (SIGTERM, then SIGKILL).
    Down {
        /// The directory given to `dev up`.
        #[arg(long, default_value = "sluice-dev")]
        dir: PathBuf,
    },
    /// Show the nodes started in --dir.
    Status {
        /// The directory given to `dev up`.
        #[arg(long, default_value = "sluice-dev")]
        dir: PathBuf,
    },
}

/// Sends `sig` to `pid`; true when the process exists (signal 0 only checks).
#[allow(unsafe_code)]
fn signal(pid: i32, sig: libc::c_int) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(pid, sig) == 0 }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

fn read_state(dir: &Path) -> anyhow::Result<Option<Value>> {
    match std::fs::read_to_string(state_path(dir)) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
            format!("{} is not valid JSON", state_path(dir).display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", state_path(dir).display())),
    }
}

/// A recorded pid is ours only if it is alive and still runs our broker on the
/// recorded port (pids get reused).
fn is_our_node(node: &Value) -> bool {
    let pid = node["pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
        .unwrap_or(0);
    let kafka = node["kafka_addr"].as_str().unwrap_or_default();
    if !signal(pid, 0) {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            let c = String::from_utf8_lossy(&c);
            c.contains("broker") && c.contains(kafka)
        })
        .unwrap_or(false)
}

fn nodes(state: &Value) -> Vec<Value> {
    state["nodes"].as_array().cloned().unwrap_or_default()
}

pub(crate) fn run(global: &Global, args: DevArgs) -> anyhow::Result<()> {
    let format = global.format;
    match args.command {
        DevCommand::Up { nodes: n, dir } => up(n, &dir, format),
        DevCommand::Down { dir } => down(&dir, format),
        DevCommand::Status { dir } => status(&dir, format),
    }
}

fn up(n: u32, dir: &Path, format: Format) -> anyhow::Result<()> {
    if n != 1 {
        bail!("--nodes {n}: only single-node clusters run until replication exists; use --nodes 1");
    }
    if let Some(state) = read_state(dir)?
        && nodes(&state).iter().any(is_our_node)
    {
        bail!(
            "a cluster from {} is already running (brokers {}); run `sluice dev down --dir {}` first",
            dir.display(),
            state["brokers"].as_str().unwrap_or_default(),
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let mut started = Vec::new();
    for id in 1..=n {
        let node_dir = dir.join(format!("node-{id}"));
        std::fs::create_dir_all(&node_dir)
            .with_context(|| format!("cannot create {}", node_dir.display()))?;
        let (kafka, rpc, admin) = (free_port()?, free_port()?, free_port()?);
        let log_path = node_dir.join("broker.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let kafka_addr = format!("127.0.0.1:{kafka}");
        let mut cmd = Command::new(&exe);
        cmd.arg("broker")
            .args(["--node-id", &id.to_string()])
            .arg("--data-dir")
            .arg(node_dir.join("data"))
            .args(["--kafka-addr", &kafka_addr])
            .args(["--rpc-addr", &format!("127.0.0.1:{rpc}")])
            .args(["--admin-addr", &format!("127.0.0.1:{admin}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Its own process group: Ctrl-C in the shell that ran `dev up` leaves it running.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        let node = json!({
            "node_id": id,
            "pid": child.id(),
            "kafka_addr": kafka_addr,
            "rpc_addr": format!("127.0.0.1:{rpc}"),
            "admin_addr": format!("127.0.0.1:{admin}"),
            "log": log_path,
        });
        started.push(node);
        // The state file is written before waiting so `dev down` can clean up a node
        // that never became ready.
        write_state(&dir, &started)?;
        if let Err(e) = wait_ready(&kafka_addr, child) {
            let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(10).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "{e:#}\nlast lines of {}:\n{}\n(run `sluice dev down --dir {}` to clean up)",
                log_path.display(),
                tail.join("\n"),
                dir.display()
            );
        }
    }
    let brokers = brokers_string(&started);
    match format {
        Format::Json => print_json(&json!({"brokers": brokers, "dir": dir, "nodes": started})),
        Format::Text => {
            println!("{brokers}");
            eprintln!(
                "started {n} node(s) under {}; use `export SLUICE_BROKERS={brokers}` and stop them with `sluice dev down --dir {}`",
                dir.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

fn brokers_string(nodes: &[Value]) -> String {
    nodes
        .iter()
        .filter_map(|n| n["kafka_addr"].as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn write_state(dir: &Path, nodes: &[Value]) -> anyhow::Result<()> {
    let state = json!({"brokers": brokers_string(nodes), "nodes": nodes});
    let tmp = dir.join("state.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&state)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, state_path(dir))
        .with_context(|| format!("cannot write {}", state_path(dir).display()))
}

fn wait_ready(addr: &str, mut child: std::process::Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("the node on {addr} exited during startup ({status})");
        }
        let ok = block_on(async {
            sluice_client::Client::connect(addr).await?;
            Ok(())
        })
        .is_ok();
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the node on {addr} did not answer within {START_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn down(dir: &Path, format: Format) -> anyhow::Result<()> {
    let Some(state) = read_state(dir)? else {
        bail!(
            "no cluster state in {} (was `sluice dev up --dir {}` run?)",
            dir.display(),
            dir.display()
        );
    };
    let mut stopped = Vec::new();
    for node in nodes(&state) {
        if !is_our_node(&node) {
            continue;
        }
        let pid = node["pid"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or(0);
        signal(pid, libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut killed = false;
        while is_our_node(&node) {
            if Instant::now() > deadline {
                signal(pid, libc::SIGKILL);
                killed = true;
                std::thread::sleep(Duration::from_millis(100));
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        stopped.push(json!({"node_id": node["node_id"], "pid": pid, "killed": killed}));
    }
    std::fs::remove_file(state_path(dir))
        .with_context(|| format!("cannot remove {}", state_path(dir).display()))?;
    match format {
        Format::Json => print_json(&json!({"stopped": stopped})),
        Format::Text => println!("stopped {} node(s)", stopped.len()),
    }
    Ok(())
}

fn status(dir: &Path, format: Format) -> anyhow::Result<()> {
    let Some(state) = read_state(dir)? else {
        bail!(
            "no cluster state in {} (start one with `sluice dev up --dir {}`)",
            dir.display(),
            dir.display()
        );
    };
    let rows: Vec<Value> = nodes(&state)
        .iter()
        .map(|n| {
            let running = is_our_node(n);
            let addr = n["kafka_addr"].as_str().unwrap_or_default().to_owned();
            let serving = running
                && block_on(async {
                    sluice_client::Client::connect(&addr).await?;
                    Ok(())
                })
                .is_ok();
            json!({
                "node_id": n["node_id"],
                "pid": n["pid"],
                "kafka_addr": addr,
                "admin_addr": n["admin_addr"],
                "running": running,
                "serving": serving,
                "log": n["log"],
            })
        })
        .collect();
    match format {
        Format::Json => print_json(&json!({"brokers": state["brokers"], "nodes": rows})),
        Format::Text => print_table(
            &["NODE", "PID", "KAFKA", "ADMIN", "RUNNING", "SERVING"],
            &rows
                .iter()
                .map(|r| {
                    [
                        "node_id",
                        "pid",
                        "kafka_addr",
                        "admin_addr",
                        "running",
                        "serving",
                    ]
                    .iter()
                    .map(|k| {
                        r[*k]
                            .as_str()
                            .map_or_else(|| r[*k].to_string(), str::to_owned)
                    })
                    .collect()
                })
                .collect::<Vec<_>>(),
        ),
    }
    Ok(())
}
