//! What every admin command shares: where the brokers are (flag > `SLUICE_BROKERS` >
//! profile file > 127.0.0.1:9092), the output format, connecting with an error that says
//! what to do, tables, and the exit-code contract (0 ok, 1 failed, 2 usage).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use sluice_client::{Client, ClientError};

/// The exit-code contract printed in `sluice --help`.
pub(crate) const EXIT_CODES: &str = "Exit codes: 0 success; 1 the operation failed \
(unreachable broker, Kafka error, unknown topic or group, unhealthy cluster); 2 usage error \
(bad flags or arguments).\n\nBrokers come from --brokers, else SLUICE_BROKERS, else the \
`brokers` key of the profile file (--profile, SLUICE_PROFILE, or \
~/.config/sluice/profile.toml), else 127.0.0.1:9092.";

/// How long connecting (TCP and ApiVersions) to one broker may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A usage error found after parsing (exit code 2, like clap's own).
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Fails with exit code 2.
pub(crate) fn usage<T>(message: impl Into<String>) -> anyhow::Result<T> {
    Err(UsageError(message.into()).into())
}

/// Output format of every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Tables and sentences for people.
    Text,
    /// One JSON document (or one per record for consume) for scripts.
    Json,
}

/// Options every admin command takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Comma-separated broker addresses (host:port,...).
    #[arg(long, env = "SLUICE_BROKERS", global = true)]
    brokers: Option<String>,
    /// Profile file (TOML with `brokers = "host:port,..."`).
    #[arg(long, env = "SLUICE_PROFILE", global = true)]
    profile: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub(crate) format: Format,
}

/// The profile file's keys.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    brokers: Option<Brokers>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum Brokers {
    One(String),
    Many(Vec<String>),
}

impl Global {
    fn default_profile() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("sluice").join("profile.toml"))
    }

    /// The broker list after applying the precedence rules.
    pub(crate) fn brokers(&self) -> anyhow::Result<Vec<String>> {
        let raw = match &self.brokers {
            Some(b) => b.clone(),
            None => match self.profile_brokers()? {
                Some(b) => b,
                None => "127.0.0.1:9092".to_owned(),
            },
        };
        let list: Vec<String> = raw
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if list.is_empty() {
            return usage("no broker address given: set --brokers host:port or SLUICE_BROKERS");
        }
        Ok(list)
    }

    fn profile_brokers(&self) -> anyhow::Result<Option<String>> {
        // An explicitly named profile must exist; the default one is optional.
        let (path, explicit) = match &self.profile {
            Some(p) => (p.clone(), true),
            None => match Self::default_profile() {
                Some(p) => (p, false),
                None => return Ok(None),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => bail!("cannot read profile {}: {e}", path.display()),
        };
        let profile: Profile = toml::from_str(&text)
            .with_context(|| format!("profile {} is not valid", path.display()))?;
        Ok(profile.brokers.map(|b| match b {
            Brokers::One(s) => s,
            Brokers::Many(v) => v.join(","),
        }))
    }

    /// Connects to the first broker that answers.
    pub(crate) async fn connect(&self) -> anyhow::Result<Client> {
        let mut failures = Vec::new();
        for addr in self.brokers()? {
            // An address that drops packets would otherwise hang for minutes.
            match tokio::time::timeout(CONNECT_TIMEOUT, Client::connect(&addr)).await {
                Ok(Ok(client)) => return Ok(client),
                Ok(Err(ClientError::Io { source, .. })) => {
                    failures.push(format!("{addr}: {source}"));
                }
                Ok(Err(e)) => failures.push(format!("{addr}: {e}")),
                Err(_) => failures.push(format!("{addr}: no answer within {CONNECT_TIMEOUT:?}")),
            }
        }
        bail!(
            "cannot connect to {} — is a broker running? set --brokers or SLUICE_BROKERS",
            failures.join("; ")
        )
    }
}

/// A connection to `group`'s coordinator: `client` itself when it is that broker.
pub(crate) async fn coordinator(client: Client, group: &str) -> anyhow::Result<Client> {
    let mut client = client;
    let addr = client.find_coordinator(group).await?;
    if addr == client.addr() {
        return Ok(client);
    }
    Client::connect(&addr)
        .await
        .with_context(|| format!("cannot reach the coordinator of group {group} at {addr}"))
}

/// Runs an async command on a single-threaded runtime.
pub(crate) fn block_on<F: Future<Output = anyhow::Result<()>>>(f: F) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build runtime")?
        .block_on(f)
}

/// Prints a left-aligned table with a header row.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let w = widths.get(i).copied().unwrap_or(0);
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Prints a JSON value, pretty, with a trailing newline.
pub(crate) fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Parses `key=value`.
pub(crate) fn key_value(kv: &str, what: &str) -> anyhow::Result<(String, String)> {
    match kv.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => usage(format!("{what} {kv:?} is not key=value")),
    }
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `1234567` -> `1.2M`: human-sized counts for progress lines.
pub(crate) fn human_count(n: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // display only
    let f = n as f64;
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", f / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", f / 1e6),
        _ => format!("{:.1}G", f / 1e9),
    }
}

/// `1536` -> `1.5 KiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // display only
    let f = n as f64;
    const K: u64 = 1024;
    match n {
        0..K => format!("{n} B"),
        K..1_048_576 => format!("{:.1} KiB", f / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", f / 1_048_576.0),
        _ => format!("{:.1} GiB", f / 1_073_741_824.0),
    }
}

/// An offset spec as rpk writes it: `start`, `end`, `N`, `@<ms>`, `@YYYY-MM-DD` or
/// `@-<duration>` (`@-1h`: an hour ago).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OffsetSpec {
    /// The log start.
    Start,
    /// The high watermark.
    End,
    /// An exact offset.
    At(i64),
    /// The first offset with a timestamp at or after this time (ms).
    Time(i64),
}

impl OffsetSpec {
    /// Parses the spec, or a usage error naming the accepted forms.
    pub(crate) fn parse(s: &str) -> anyhow::Result<Self> {
        let bad = || {
            usage(format!(
                "offset {s:?} is not start, end, a number, @<unix-ms>, @YYYY-MM-DD or @-<duration> (e.g. @-1h)"
            ))
        };
        Ok(match s {
            "start" | "oldest" | "beginning" => Self::Start,
            "end" | "newest" => Self::End,
            _ => {
                if let Some(ts) = s.strip_prefix('@') {
                    if let Some(ago) = ts.strip_prefix('-') {
                        match parse_duration_ms(ago) {
                            Some(d) => Self::Time(now_ms() - d),
                            None => return bad(),
                        }
                    } else if let Some(t) = parse_date_ms(ts) {
                        Self::Time(t)
                    } else {
                        match ts.parse::<i64>() {
                            Ok(t) if t >= 0 => Self::Time(t),
                            _ => return bad(),
                        }
                    }
                } else {
                    match s.parse::<i64>() {
                        Ok(n) if n >= 0 => Self::At(n),
                        _ => return bad(),
                    }
                }
            }
        })
    }

    /// Resolves to an offset of `topic`-`partition`.
    pub(crate) async fn resolve(
        self,
        client: &mut Client,
        topic: &str,
        partition: i32,
    ) -> anyhow::Result<i64> {
        Ok(match self {
            Self::Start => client.list_offset(topic, partition, -2).await?.1,
            Self::End => client.list_offset(topic, partition, -1).await?.1,
            Self::At(n) => n,
            Self::Time(t) => {
                let (_, offset) = client.list_offset(topic, partition, t).await?;
                // No record at or after t: start at the end, as Kafka consumers do.
                if offset < 0 {
                    client.list_offset(topic, partition, -1).await?.1
                } else {
                    offset
                }
            }
        })
    }
}

/// `YYYY-MM-DD` (UTC midnight) as Unix milliseconds.
fn parse_date_ms(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), proleptic Gregorian.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days.checked_mul(86_400_000)
}

fn parse_duration_ms(s: &str) -> Option<i64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    let mult = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The name in a Metadata topic entry.
pub(crate) fn topic_name(
    t: &sluice_protocol::kafka_protocol::messages::metadata_response::MetadataResponseTopic,
) -> String {
    t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default()
}

/// Metadata for one topic, failing clearly when it does not exist.
pub(crate) async fn topic_metadata(
    client: &mut Client,
    topic: &str,
) -> anyhow::Result<
    sluice_protocol::kafka_protocol::messages::metadata_response::MetadataResponseTopic,
> {
    let metadata = client.metadata(Some(&[topic])).await?;
    let t = metadata
        .topics
        .into_iter()
        .find(|t| topic_name(t) == topic)
        .with_context(|| format!("topic {topic} not found in metadata"))?;
    sluice_client::check(t.error_code, format!("topic {topic}"), None).map_err(|e| {
        if t.error_code == 3 {
            anyhow::anyhow!("unknown topic {topic} (see `sluice topic list`)")
        } else {
            e.into()
        }
    })?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_specs() {
        assert_eq!(OffsetSpec::parse("start").ok(), Some(OffsetSpec::Start));
        assert_eq!(OffsetSpec::parse("end").ok(), Some(OffsetSpec::End));
        assert_eq!(OffsetSpec::parse("42").ok(), Some(OffsetSpec::At(42)));
        assert_eq!(
            OffsetSpec::parse("@1000").ok(),
            Some(OffsetSpec::Time(1000))
        );
        assert!(matches!(OffsetSpec::parse("@-1h"), Ok(OffsetSpec::Time(_))));
        assert!(OffsetSpec::parse("soon").is_err());
        assert!(OffsetSpec::parse("-3").is_err());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_count(999), "999");
        assert_eq!(human_count(1_500), "1.5k");
        assert_eq!(human_count(2_000_000), "2.0M");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
