//! `sluice transform …`: deploy, list, describe, pause, resume and delete pipelines
//! through the broker's admin API (`/v1/transforms`), as `rpk transform` does.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::cli::{Format, Global, print_json, print_table, usage};

/// How long one admin request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// `sluice transform`.
#[derive(Debug, Args)]
pub(crate) struct TransformArgs {
    /// The broker's admin API address (host:port).
    #[arg(
        long,
        env = "SLUICE_ADMIN_ADDR",
        default_value = "127.0.0.1:9644",
        global = true
    )]
    admin_addr: String,
    #[command(subcommand)]
    command: TransformCommand,
}

#[derive(Debug, Subcommand)]
enum TransformCommand {
    /// Deploy a pipeline from its TOML spec (redeploying a name starts it afresh).
    Deploy {
        /// The spec file.
        file: PathBuf,
    },
    /// List pipelines with their state, lag and record counts.
    List,
    /// A pipeline's counters per step and per input partition, and its spec.
    Describe {
        /// Pipeline name.
        name: String,
    },
    /// Stop a pipeline's tasks; resume continues from its checkpoints.
    Pause {
        /// Pipeline name.
        name: String,
    },
    /// Start a paused pipeline again.
    Resume {
        /// Pipeline name.
        name: String,
    },
    /// Delete a pipeline and its checkpoints (its output topics stay).
    Delete {
        /// Pipeline name.
        name: String,
    },
}

/// One HTTP/1.1 request to the admin API; the status and the JSON body.
fn request(addr: &str, method: &str, path: &str, body: &[u8]) -> anyhow::Result<(u16, Value)> {
    let unreachable = |e: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "cannot reach the admin API at {addr}: {e} — is a broker running? set --admin-addr or SLUICE_ADMIN_ADDR"
        )
    };
    let target = addr
        .to_socket_addrs()
        .map_err(|e| unreachable(&e))?
        .next()
        .ok_or_else(|| unreachable(&"no address"))?;
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT).map_err(|e| unreachable(&e))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/toml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .with_context(|| format!("reading the answer of {addr}"))?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("malformed HTTP answer")?;
    let (head, rest) = response.split_at(split);
    let status: u16 = std::str::from_utf8(head)
        .ok()
        .and_then(|h| h.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP status line")?;
    let body = rest.get(4..).unwrap_or_default();
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).context("the admin API answered something that is not JSON")?
    };
    Ok((status, json))
}

/// The body of a successful answer, or the API's message as the error.
fn expect_ok(answer: (u16, Value), context: &str) -> anyhow::Result<Value> {
    let (status, body) = answer;
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let message = body["message"].as_str().unwrap_or("no message").to_owned();
    bail!("{context}{message}")
}

/// The pipeline name a spec file declares (`name = "..."`), if it parses as TOML.
fn spec_name(text: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(text).ok()?;
    table.get("name")?.as_str().map(str::to_owned)
}

fn path_segment(name: &str) -> anyhow::Result<&str> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return usage(format!("{name:?} is not a pipeline name ([a-zA-Z0-9._-])"));
    }
    Ok(name)
}

fn count(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn list_of(value: &Value) -> String {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn millis(seconds: &Value) -> String {
    seconds
        .as_f64()
        .map_or_else(|| "-".to_owned(), |s| format!("≤{:.1} ms", s * 1e3))
}

pub(crate) fn run(global: &Global, args: TransformArgs) -> anyhow::Result<()> {
    let addr = args.admin_addr.as_str();
    let format = global.format;
    match args.command {
        TransformCommand::Deploy { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            // A spec that is not TOML still goes to the broker, which says where.
            let name = spec_name(&text).unwrap_or_else(|| "-".to_owned());
            let path = format!("/v1/transforms/{}", path_segment(&name).unwrap_or("-"));
            let body = expect_ok(
                request(addr, "PUT", &path, text.as_bytes())?,
                &format!("{}: ", file.display()),
            )?;
            match format {
                Format::Json => print_json(&body),
                Format::Text => println!(
                    "deployed pipeline {} (generation {}); dead letters go to {}",
                    count(&body["name"]),
                    count(&body["generation"]),
                    count(&body["dead_letter"]),
                ),
            }
        }
        TransformCommand::List => {
            let body = expect_ok(request(addr, "GET", "/v1/transforms", b"")?, "")?;
            match format {
                Format::Json => print_json(&body),
                Format::Text => {
                    let rows: Vec<Vec<String>> = body
                        .as_array()
                        .map(|a| a.as_slice())
                        .unwrap_or_default()
                        .iter()
                        .map(|p| {
                            vec![
                                count(&p["name"]),
                                count(&p["state"]),
                                list_of(&p["inputs"]),
                                list_of(&p["outputs"]),
                                count(&p["lag"]),
                                count(&p["records_in"]),
                                count(&p["records_out"]),
                            ]
                        })
                        .collect();
                    print_table(
                        &["NAME", "STATE", "INPUTS", "OUTPUTS", "LAG", "IN", "OUT"],
                        &rows,
                    );
                }
            }
        }
        TransformCommand::Describe { name } => {
            let path = format!("/v1/transforms/{}", path_segment(&name)?);
            let body = expect_ok(request(addr, "GET", &path, b"")?, "")?;
            match format {
                Format::Json => print_json(&body),
                Format::Text => describe_text(&body),
            }
        }
        TransformCommand::Pause { name } => {
            let path = format!("/v1/transforms/{}/pause", path_segment(&name)?);
            simple(
                addr,
                format,
                "POST",
                &path,
                &format!("paused pipeline {name}"),
            )?;
        }
        TransformCommand::Resume { name } => {
            let path = format!("/v1/transforms/{}/resume", path_segment(&name)?);
            simple(
                addr,
                format,
                "POST",
                &path,
                &format!("resumed pipeline {name}"),
            )?;
        }
        TransformCommand::Delete { name } => {
            let path = format!("/v1/transforms/{}", path_segment(&name)?);
            simple(
                addr,
                format,
                "DELETE",
                &path,
                &format!("deleted pipeline {name}"),
            )?;
        }
    }
    Ok(())
}

fn simple(addr: &str, format: Format, method: &str, path: &str, done: &str) -> anyhow::Result<()> {
    let body = expect_ok(request(addr, method, path, b"")?, "")?;
    match format {
        Format::Json => print_json(&body),
        Format::Text => println!("{done}"),
    }
    Ok(())
}

fn describe_text(body: &Value) {
    println!("NAME          {}", count(&body["name"]));
    println!("STATE         {}", count(&body["state"]));
    println!("GENERATION    {}", count(&body["generation"]));
    println!("INPUTS        {}", list_of(&body["inputs"]));
    println!("OUTPUTS       {}", list_of(&body["outputs"]));
    println!(
        "DEAD LETTERS  {} ({})",
        count(&body["dead_letters"]),
        count(&body["dead_letter"])
    );
    println!("RECORDS IN    {}", count(&body["records_in"]));
    println!("RECORDS OUT   {}", count(&body["records_out"]));
    println!("DROPPED       {}", count(&body["dropped"]));
    println!("LAG           {}", count(&body["lag"]));
    println!(
        "STATE         {} entries, {} bytes checkpointed",
        count(&body["state_entries"]),
        count(&body["state_bytes"])
    );
    println!(
        "LATENCY       p50 {}  p99 {}",
        millis(&body["latency_p50_seconds"]),
        millis(&body["latency_p99_seconds"])
    );
    println!();
    let steps: Vec<Vec<String>> = body["steps"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|s| {
            vec![
                count(&s["name"]),
                count(&s["kind"]),
                count(&s["records_in"]),
                count(&s["records_out"]),
                count(&s["dropped"]),
                count(&s["errors"]),
                count(&s["state_entries"]),
                count(&s["to"]),
            ]
        })
        .collect();
    print_table(
        &[
            "STEP", "KIND", "IN", "OUT", "DROPPED", "ERRORS", "STATE", "TO",
        ],
        &steps,
    );
    println!();
    let tasks: Vec<Vec<String>> = body["tasks"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|t| {
            vec![
                format!("{}/{}", count(&t["topic"]), count(&t["partition"])),
                count(&t["position"]),
                count(&t["end_offset"]),
                count(&t["lag"]),
                count(&t["checkpoints"]),
                count(&t["restarts"]),
                count(&t["last_error"]),
            ]
        })
        .collect();
    print_table(
        &[
            "INPUT",
            "POSITION",
            "END",
            "LAG",
            "CHECKPOINTS",
            "RESTARTS",
            "LAST ERROR",
        ],
        &tasks,
    );
}
