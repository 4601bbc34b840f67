//! `sluice transform …` against a real node, as an operator uses it: deploy errors that
//! point at the line of the spec file, the whole lifecycle (deploy, list, describe,
//! pause, resume, a SIGKILL, delete, redeploy) with every output record checked through
//! kcat, dead letters, `/metrics`, usage errors, and a join against a compacted table.
//!
//! Records are produced and read with kcat (`scripts/test.sh` installs it); without it
//! the tests fall back to librdkafka so they still run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use sluice_e2e::{Broker, BrokerOptions, sluice_bin, wait_until, which};

use crate::cli::sluice;
use crate::common::{
    CmdOutput, OP_TIMEOUT, Rec, assert_success, consumer, headers_of, produce_ok, producer,
    run_cmd, watermarks,
};

/// How long a pipeline may take to catch up with what was produced.
const CATCH_UP: Duration = Duration::from_secs(15);

// ---- the CLI -----------------------------------------------------------------------

/// `sluice transform ARGS --admin-addr <broker's>`.
fn transform(broker: &Broker, args: &[&str]) -> CmdOutput {
    let admin = broker.admin_addr().to_string();
    let mut all = vec!["transform"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--admin-addr", &admin]);
    sluice(broker, &all, None)
}

/// `sluice --format json transform ARGS`, asserting success; its JSON.
fn transform_json(broker: &Broker, args: &[&str]) -> Value {
    let admin = broker.admin_addr().to_string();
    let mut all = vec!["--format", "json", "transform"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--admin-addr", &admin]);
    let out = sluice(broker, &all, None);
    assert_success(&out, &format!("transform {}", args.join(" ")));
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "transform {args:?}: stdout is not JSON ({e}):\n{}",
            out.stdout
        )
    })
}

fn describe(broker: &Broker, name: &str) -> Value {
    transform_json(broker, &["describe", name])
}

fn assert_exit(out: &CmdOutput, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit code\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout,
        out.stderr
    );
}

fn create_topic(broker: &Broker, topic: &str, configs: &[&str]) {
    let mut args = vec!["topic", "create", topic, "-p", "1"];
    for config in configs {
        args.extend_from_slice(&["-c", config]);
    }
    let out = sluice(broker, &args, None);
    assert_success(&out, &format!("topic create {topic}"));
}

fn topic_names(broker: &Broker) -> Vec<String> {
    let out = sluice(broker, &["--format", "json", "topic", "list"], None);
    assert_success(&out, "topic list");
    let v: Value = serde_json::from_str(&out.stdout).expect("topic list JSON");
    v["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

/// Writes `text` to `dir/file`.
fn write_spec(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write spec");
    path
}

/// The 1-based line and column of `needle`, which is on exactly one line of `text`.
fn position_of(text: &str, needle: &str) -> (usize, usize) {
    let found: Vec<(usize, usize)> = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| l.find(needle).map(|at| (i + 1, at + 1)))
        .collect();
    assert_eq!(found.len(), 1, "{needle:?} must be on exactly one line");
    found[0]
}

/// The 1-based line of `needle`, and column 1: where the broker's checks of topics
/// point (at the line naming the topic).
fn line_of(text: &str, needle: &str) -> (usize, usize) {
    (position_of(text, needle).0, 1)
}

/// Deploys `text` (written to `dir/<name>.toml`), asserting success; the JSON answer.
fn deploy(broker: &Broker, dir: &Path, name: &str, text: &str) -> Value {
    let path = write_spec(dir, &format!("{name}.toml"), text);
    transform_json(broker, &["deploy", path.to_str().expect("utf-8 path")])
}

/// Waits until `describe` satisfies `cond`, and returns that answer.
fn describe_until(broker: &Broker, name: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let held = wait_until(CATCH_UP, || {
        last = describe(broker, name);
        cond(&last)
    });
    assert!(held, "{name}: {what}; last describe:\n{last:#}");
    last
}

/// Whether the pipeline has one task that has read its input to `end`.
fn caught_up(d: &Value, end: i64) -> bool {
    d["state"] == "running"
        && d["tasks"].as_array().is_some_and(|t| t.len() == 1)
        && d["tasks"][0]["position"] == end
        && d["lag"] == 0
}

/// `transform list` once the admin API answers and `cond` holds (after a restart).
fn list_when_up(broker: &Broker, cond: impl Fn(&Value) -> bool) -> Value {
    let admin = broker.admin_addr().to_string();
    let mut listed = Value::Null;
    let held = wait_until(CATCH_UP, || {
        let args = [
            "--format",
            "json",
            "transform",
            "list",
            "--admin-addr",
            &admin,
        ];
        let out = sluice(broker, &args, None);
        listed = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        out.status.success() && cond(&listed)
    });
    assert!(held, "transform list: {listed:#}");
    listed
}

// ---- records through kcat ----------------------------------------------------------

/// A record read back: key, value and headers as text.
#[derive(Debug, Clone, PartialEq)]
struct Consumed {
    offset: i64,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(String, String)>,
}

impl Consumed {
    fn json(&self) -> Value {
        let text = self.value.as_deref().unwrap_or("null");
        serde_json::from_str(text).unwrap_or_else(|e| panic!("value is not JSON ({e}): {text}"))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn kcat() -> Option<PathBuf> {
    which("kcat").or_else(|| which("kafkacat"))
}

/// Produces `(key, value)` records to partition 0 of `topic`, in order, acks=all.
fn produce(broker: &Broker, topic: &str, records: &[(&str, &str)]) {
    for (key, value) in records {
        assert!(
            !key.contains(':') && !value.contains('\n'),
            "not a `key:value` line: {key:?} {value:?}"
        );
    }
    let bootstrap = broker.bootstrap();
    if let Some(kcat) = kcat() {
        let input: String = records.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let out = run_cmd(
            Command::new(kcat)
                .args(["-P", "-b", &bootstrap, "-t", topic, "-p", "0", "-K:"])
                .args(["-X", "acks=all"]),
            Some(input.as_bytes()),
            OP_TIMEOUT,
        );
        assert_success(&out, "kcat -P");
        return;
    }
    let recs: Vec<Rec> = records
        .iter()
        .map(|(k, v)| Rec {
            partition: Some(0),
            key: Some(k.as_bytes().to_vec()),
            value: Some(v.as_bytes().to_vec()),
            ..Rec::default()
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        produce_ok(&producer(&bootstrap, &[]), topic, &recs).await;
    });
}

/// Everything in partition 0 of `topic` now, in offset order.
fn read_all(broker: &Broker, topic: &str) -> Vec<Consumed> {
    let bootstrap = broker.bootstrap();
    if let Some(kcat) = kcat() {
        let out = run_cmd(
            Command::new(kcat).args([
                "-C",
                "-b",
                &bootstrap,
                "-t",
                topic,
                "-p",
                "0",
                "-o",
                "beginning",
                "-e",
                "-q",
                "-J",
            ]),
            None,
            OP_TIMEOUT,
        );
        assert_success(&out, "kcat -C");
        return out
            .stdout
            .lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("kcat -J printed something else ({e}): {line}"));
                let text = |v: &Value| v.as_str().map(str::to_owned);
                let headers = v["headers"]
                    .as_array()
                    .map(|h| {
                        h.chunks(2)
                            .map(|kv| {
                                (
                                    text(&kv[0]).unwrap_or_default(),
                                    kv.get(1).and_then(text).unwrap_or_default(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Consumed {
                    offset: v["offset"].as_i64().expect("offset"),
                    key: text(&v["key"]),
                    value: text(&v["payload"]),
                    headers,
                }
            })
            .collect();
    }
    let c = consumer(&bootstrap);
    let (_, high) = watermarks(&c, topic, 0);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("add partition");
    c.assign(&tpl).expect("assign");
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + OP_TIMEOUT;
    while got.len() < usize::try_from(high).unwrap_or(0) && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
            got.push(Consumed {
                offset: m.offset(),
                key: text(m.key()),
                value: text(m.payload()),
                headers: headers_of(&m.detach())
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            String::from_utf8_lossy(&v.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect(),
            });
        }
    }
    got
}

/// Reads `topic` until it holds at least `n` records.
fn read_at_least(broker: &Broker, topic: &str, n: usize) -> Vec<Consumed> {
    let mut got = Vec::new();
    let held = wait_until(CATCH_UP, || {
        got = read_all(broker, topic);
        got.len() >= n
    });
    assert!(
        held,
        "{topic}: expected {n} records, found {}: {got:#?}",
        got.len()
    );
    got
}

// ---- the admin HTTP API ------------------------------------------------------------

/// `GET path` on the admin API: status and body.
fn http_get(admin: SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(admin) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(OP_TIMEOUT)).expect("timeout");
    let request = format!("GET {path} HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut out = String::new();
    if s.read_to_string(&mut out).is_err() {
        return (0, String::new());
    }
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

fn wait_ready(broker: &Broker) {
    assert!(
        wait_until(Duration::from_secs(30), || http_get(
            broker.admin_addr(),
            "/v1/status/ready"
        )
        .0 == 200),
        "broker not ready\n{}",
        broker.log_banner()
    );
}

// ---- the tests ---------------------------------------------------------------------

/// Deploying `path` fails with exit code 1 and exactly `message` at `line`, `column`.
fn assert_refused(broker: &Broker, path: &Path, (line, column): (usize, usize), message: &str) {
    let out = transform(broker, &["deploy", path.to_str().expect("utf-8 path")]);
    assert_exit(&out, 1, &format!("deploy {}", path.display()));
    assert_eq!(
        out.stderr,
        format!(
            "error: {}: line {line}, column {column}: {message}\n",
            path.display()
        )
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn deploy_errors_point_at_the_line() {
    let broker = Broker::start(BrokerOptions::smp(2));
    let dir = tempfile::tempdir().expect("tempdir");
    for topic in ["in", "out", "text"] {
        create_topic(&broker, topic, &[]);
    }

    // (a) A misspelt operator in step 2.
    let spec = r#"name = "typo"
inputs = ["in"]
output = "out"

[[step]]
filter = "temperature > 20"

[[step]]
fliter = "temperature < 100"
"#;
    assert_refused(
        &broker,
        &write_spec(dir.path(), "typo.toml", spec),
        position_of(spec, "fliter"),
        "unknown key `fliter` in step 2 (did you mean `filter`?); expected one of: filter, map, \
         project, key_by, window, dedupe, route, join, aggregate, name, to",
    );

    // (b) An expression that does not parse.
    let spec = r#"name = "bad-expr"
inputs = ["in"]
output = "out"

[[step]]
filter = "exists(temperature)"

[[step]]
filter = "temperature >> 3"
"#;
    assert_refused(
        &broker,
        &write_spec(dir.path(), "bad-expr.toml", spec),
        {
            // At the second `>`.
            let (line, column) = position_of(spec, ">>");
            (line, column + 1)
        },
        "invalid expression in `filter` of step 2: expected a value, found `>`",
    );

    // (c) An input topic that does not exist, on its own line.
    let spec = r#"name = "no-input"
inputs = [
  "in",
  "missing-input",
]
output = "out"

[[step]]
filter = "temperature > 20"
"#;
    assert_refused(
        &broker,
        &write_spec(dir.path(), "no-input.toml", spec),
        line_of(spec, "missing-input"),
        "input topic `missing-input` does not exist; create it first (sluice topic create)",
    );

    // (d) A route to a topic that does not exist: the line of that rule.
    let spec = r#"name = "no-route"
inputs = ["in"]
output = "out"

[[step]]
route = [
  { when = "temperature > 80", to = "out", keep = true },
  { when = "temperature < 0", to = "missing-route" },
]
"#;
    assert_refused(
        &broker,
        &write_spec(dir.path(), "no-route.toml", spec),
        line_of(spec, "missing-route"),
        "route topic `missing-route` does not exist; create it first (sluice topic create)",
    );

    // (e) A JSON field read on raw bytes.
    let spec = r#"name = "raw"
inputs = ["in"]
output = "out"
format = "bytes"

[[step]]
filter = "len(key) > 0"

[[step]]
filter = "temperature > 20"
"#;
    assert_refused(
        &broker,
        &write_spec(dir.path(), "raw.toml", spec),
        position_of(spec, "temperature > 20"),
        "`temperature > 20` reads JSON fields but format = \"bytes\" (in `filter` of step 2)",
    );

    // (f) Not TOML.
    let spec = r#"name = "syntax"
inputs = ["in"]
output = "out"
start = earliest

[[step]]
filter = "temperature > 20"
"#;
    assert_refused(
        &broker,
        &write_spec(dir.path(), "syntax.toml", spec),
        position_of(spec, "earliest"),
        "invalid string: expected `\"`, `'`",
    );

    // (g) An input holding no JSON at all, for a JSON pipeline.
    produce(
        &broker,
        "text",
        &[
            ("a", "plain text 1"),
            ("b", "plain text 2"),
            ("c", "plain 3"),
        ],
    );
    let spec = r#"name = "not-json"
inputs = [
  "in",
  "text",
]
output = "out"

[[step]]
filter = "temperature > 20"
"#;
    assert_refused(
        &broker,
        &write_spec(dir.path(), "not-json.toml", spec),
        line_of(spec, "\"text\""),
        "input topic `text` does not hold JSON (none of its last 3 records parse, e.g. \"plain 3\"); \
         set format = \"bytes\" to read raw values",
    );

    // Nothing was deployed, and no dead-letter topic was created for a refused spec.
    assert_eq!(transform_json(&broker, &["list"]), json!([]));
    let topics = topic_names(&broker);
    assert!(
        !topics.iter().any(|t| t.ends_with(".dlq")),
        "a refused deploy created a topic: {topics:?}"
    );
}

const CLEAN: &str = r#"name = "clean"
inputs = ["in"]
output = "out"
start = "earliest"
checkpoint_interval = "100ms"

[[step]]
name = "warm"
filter = "temperature > 20"

[[step]]
name = "fahrenheit"
map = { set = { temp_f = "temperature * 2 + 30" }, rename = { hum = "humidity" }, drop = ["note"] }
"#;

/// Input record `offset` of the lifecycle test: its key and temperature.
fn clean_input(offset: i64) -> (String, i64) {
    // Every other record is too cold, except that every fifth one is warm too.
    let temperature = if offset % 2 == 0 || offset % 5 == 0 {
        21 + offset
    } else {
        offset % 7
    };
    (format!("sensor-{offset}"), temperature)
}

/// Produces input records `offsets` of the lifecycle test.
fn produce_clean(broker: &Broker, offsets: std::ops::Range<i64>) {
    let records: Vec<(String, String)> = offsets
        .map(|o| {
            let (key, temperature) = clean_input(o);
            let value = json!({ "temperature": temperature, "hum": 40 + o, "note": "x" });
            (key, value.to_string())
        })
        .collect();
    let refs: Vec<(&str, &str)> = records
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    produce(broker, "in", &refs);
}

/// What `out` holds after `generation` of `clean` read input offsets `offsets`: key,
/// value and origin of each output.
fn clean_output(generation: u64, offsets: std::ops::Range<i64>) -> Vec<(String, Value, String)> {
    offsets
        .filter_map(|o| {
            let (key, temperature) = clean_input(o);
            (temperature > 20).then(|| {
                (
                    key,
                    json!({ "temperature": temperature, "humidity": 40 + o, "temp_f": temperature * 2 + 30 }),
                    format!("clean#{generation}/in/0@{o}.0"),
                )
            })
        })
        .collect()
}

fn as_outputs(records: &[Consumed]) -> Vec<(String, Value, String)> {
    records
        .iter()
        .map(|r| {
            let origins: Vec<&(String, String)> = r
                .headers
                .iter()
                .filter(|(k, _)| k == "sluice.origin")
                .collect();
            assert_eq!(origins.len(), 1, "one sluice.origin header: {r:?}");
            assert_eq!(r.headers.len(), 1, "no other header: {r:?}");
            (
                r.key.clone().unwrap_or_default(),
                r.json(),
                origins[0].1.clone(),
            )
        })
        .collect()
}

#[test]
fn lifecycle_deploy_pause_resume_restart_delete() {
    let mut broker = Broker::start(BrokerOptions::smp(2));
    let dir = tempfile::tempdir().expect("tempdir");
    create_topic(&broker, "in", &[]);
    create_topic(&broker, "out", &[]);

    let deployed = deploy(&broker, dir.path(), "clean", CLEAN);
    assert_eq!(
        deployed,
        json!({ "name": "clean", "generation": 1, "created": true, "dead_letter": "clean.dlq" })
    );
    let mut listed = Value::Null;
    assert!(
        wait_until(CATCH_UP, || {
            listed = transform_json(&broker, &["list"]);
            listed[0]["tasks"] == 1
        }),
        "the task starts: {listed:#}"
    );
    assert_eq!(
        listed,
        json!([{
            "name": "clean",
            "generation": 1,
            "state": "running",
            "inputs": ["in"],
            "outputs": ["out", "clean.dlq"],
            "tasks": 1,
            "records_in": 0,
            "records_out": 0,
            "lag": 0,
        }])
    );

    // 10 readings, 6 of them warm enough.
    produce_clean(&broker, 0..10);
    let want = clean_output(1, 0..10);
    assert_eq!(want.len(), 6);
    let d = describe_until(&broker, "clean", "reads all 10", |d| caught_up(d, 10));
    assert_eq!(as_outputs(&read_all(&broker, "out")), want);
    assert_eq!(d["name"], "clean");
    assert_eq!(d["generation"], 1);
    assert_eq!(d["inputs"], json!(["in"]));
    assert_eq!(d["outputs"], json!(["out", "clean.dlq"]));
    assert_eq!(d["dead_letter"], "clean.dlq");
    assert_eq!(d["records_in"], 10);
    assert_eq!(d["records_out"], 6);
    assert_eq!(d["dropped"], 4);
    assert_eq!(d["dead_letters"], 0);
    assert_eq!(d["spec"], CLEAN);
    assert_eq!(
        d["steps"],
        json!([
            { "name": "warm", "kind": "filter", "records_in": 10, "records_out": 6, "dropped": 4,
              "errors": 0, "state_entries": 0, "to": null },
            { "name": "fahrenheit", "kind": "map", "records_in": 6, "records_out": 6, "dropped": 0,
              "errors": 0, "state_entries": 0, "to": null },
        ])
    );
    assert_eq!(d["tasks"][0]["topic"], "in");
    assert_eq!(d["tasks"][0]["partition"], 0);
    assert_eq!(d["tasks"][0]["end_offset"], 10);
    assert_eq!(d["tasks"][0]["records_in"], 10);

    let text = transform(&broker, &["describe", "clean"]);
    assert_success(&text, "describe (text)");
    let lines: Vec<&str> = text.stdout.lines().collect();
    let words = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert!(
        text.stdout
            .starts_with("NAME          clean\nSTATE         running\n")
    );
    assert!(lines.contains(&"RECORDS IN    10"), "{}", text.stdout);
    let header = lines
        .iter()
        .position(|l| l.starts_with("STEP"))
        .unwrap_or_else(|| panic!("no step table:\n{}", text.stdout));
    assert_eq!(
        words(lines[header]),
        [
            "STEP", "KIND", "IN", "OUT", "DROPPED", "ERRORS", "STATE", "TO"
        ]
    );
    assert_eq!(
        words(lines[header + 1]),
        ["warm", "filter", "10", "6", "4", "0", "0", "-"]
    );
    assert_eq!(
        words(lines[header + 2]),
        ["fahrenheit", "map", "6", "6", "0", "0", "0", "-"]
    );

    // Paused: no task, and what arrives meanwhile stays unread.
    assert_eq!(
        transform_json(&broker, &["pause", "clean"]),
        json!({ "name": "clean", "state": "paused" })
    );
    let d = describe_until(&broker, "clean", "its task stops", |d| {
        d["tasks"] == json!([])
    });
    assert_eq!(d["state"], "paused");
    let listed = transform_json(&broker, &["list"]);
    assert_eq!(listed[0]["state"], "paused");
    assert_eq!(listed[0]["tasks"], 0);
    produce_clean(&broker, 10..16);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        as_outputs(&read_all(&broker, "out")),
        want,
        "a paused pipeline wrote"
    );

    // Resumed: it goes on from its checkpoint, and nothing is written twice.
    assert_eq!(
        transform_json(&broker, &["resume", "clean"]),
        json!({ "name": "clean", "state": "running" })
    );
    let want = clean_output(1, 0..16);
    describe_until(&broker, "clean", "reads all 16 after resume", |d| {
        caught_up(d, 16)
    });
    assert_eq!(as_outputs(&read_all(&broker, "out")), want);

    // SIGKILL: the pipeline was persisted and runs on.
    broker.restart();
    wait_ready(&broker);
    let listed = list_when_up(&broker, |l| l[0]["tasks"] == 1);
    assert_eq!(listed[0]["name"], "clean");
    assert_eq!(listed[0]["state"], "running");
    assert_eq!(listed[0]["generation"], 1);
    produce_clean(&broker, 16..20);
    let want = clean_output(1, 0..20);
    describe_until(&broker, "clean", "reads all 20 after a restart", |d| {
        caught_up(d, 20)
    });
    assert_eq!(as_outputs(&read_all(&broker, "out")), want);

    // Deleted: gone from the list, and describe says so.
    assert_eq!(
        transform_json(&broker, &["delete", "clean"]),
        json!({ "name": "clean", "deleted": true })
    );
    assert_eq!(transform_json(&broker, &["list"]), json!([]));
    let out = transform(&broker, &["describe", "clean"]);
    assert_exit(&out, 1, "describe of a deleted pipeline");
    assert!(
        out.stderr.contains("no pipeline named clean"),
        "{}",
        out.stderr
    );
    let out = transform(&broker, &["pause", "clean"]);
    assert_exit(&out, 1, "pause of a deleted pipeline");

    // Deployed again under the name: a new generation, from the start of its input.
    let deployed = deploy(&broker, dir.path(), "clean", CLEAN);
    assert_eq!(
        deployed,
        json!({ "name": "clean", "generation": 2, "created": true, "dead_letter": "clean.dlq" })
    );
    describe_until(&broker, "clean", "generation 2 reads all 20", |d| {
        caught_up(d, 20)
    });
    let mut want = clean_output(1, 0..20);
    want.extend(clean_output(2, 0..20));
    assert_eq!(as_outputs(&read_all(&broker, "out")), want);

    // Deployed over itself: the next generation. Deleted, then deployed after a
    // restart: the generation is not reused either.
    let deployed = deploy(&broker, dir.path(), "clean", CLEAN);
    assert_eq!(deployed["generation"], 3);
    assert_eq!(deployed["created"], false);
    transform_json(&broker, &["delete", "clean"]);
    broker.restart();
    wait_ready(&broker);
    assert_eq!(list_when_up(&broker, |_| true), json!([]));
    let deployed = deploy(&broker, dir.path(), "clean", CLEAN);
    assert_eq!(deployed["generation"], 4);
    assert_eq!(deployed["created"], true);
}

#[test]
fn failed_records_go_to_the_default_dead_letter_topic() {
    let broker = Broker::start(BrokerOptions::smp(2));
    let dir = tempfile::tempdir().expect("tempdir");
    create_topic(&broker, "in", &[]);
    create_topic(&broker, "out", &[]);
    let spec = r#"name = "dl"
inputs = ["in"]
output = "out"
time = "time"
start = "earliest"
checkpoint_interval = "100ms"

[[step]]
name = "hot"
filter = "temperature > 20"
"#;
    assert!(!topic_names(&broker).contains(&"dl.dlq".to_owned()));
    let deployed = deploy(&broker, dir.path(), "dl", spec);
    assert_eq!(deployed["dead_letter"], "dl.dlq");
    assert!(
        topic_names(&broker).contains(&"dl.dlq".to_owned()),
        "deploy creates the default dead-letter topic"
    );

    produce(
        &broker,
        "in",
        &[
            ("a", r#"{"time":1000,"temperature":25}"#),
            ("b", "not json"),
            ("c", r#"{"temperature":30}"#),
            ("d", r#"{"time":2000,"temperature":26}"#),
        ],
    );
    let d = describe_until(&broker, "dl", "reads all 4", |d| caught_up(d, 4));
    assert_eq!(d["records_in"], 4);
    assert_eq!(d["records_out"], 2);
    assert_eq!(d["dead_letters"], 2);
    assert_eq!(d["tasks"][0]["dead_letters"], 2);

    let dead = read_at_least(&broker, "dl.dlq", 2);
    assert_eq!(dead.len(), 2, "{dead:#?}");
    assert_eq!(dead[0].key.as_deref(), Some("b"));
    assert_eq!(dead[0].value.as_deref(), Some("not json"));
    assert_eq!(dead[0].header("sluice.source"), Some("in/0@1"));
    assert!(
        dead[0]
            .header("sluice.error")
            .is_some_and(|e| e.starts_with("value is not JSON: ")),
        "{:?}",
        dead[0]
    );
    assert_eq!(dead[0].header("sluice.step"), None, "fails before any step");
    assert_eq!(dead[0].header("sluice.origin"), Some("dl#1/in/0@1.0"));
    assert_eq!(dead[1].key.as_deref(), Some("c"));
    assert_eq!(dead[1].value.as_deref(), Some(r#"{"temperature":30}"#));
    assert_eq!(dead[1].header("sluice.source"), Some("in/0@2"));
    assert_eq!(
        dead[1].header("sluice.error"),
        Some("event time `time` is null, not milliseconds since the epoch")
    );
    assert_eq!(dead[1].header("sluice.step"), None);

    // A step failing on a record: it names the step; later good records go on.
    produce(
        &broker,
        "in",
        &[
            ("e", r#"{"time":3000,"temperature":"hot"}"#),
            ("f", r#"{"time":4000,"temperature":27}"#),
        ],
    );
    let d = describe_until(&broker, "dl", "reads all 6", |d| caught_up(d, 6));
    assert_eq!(d["records_in"], 6);
    assert_eq!(d["records_out"], 3);
    assert_eq!(d["dead_letters"], 3);
    assert_eq!(d["steps"][0]["errors"], 1);
    let dead = read_at_least(&broker, "dl.dlq", 3);
    assert_eq!(dead.len(), 3, "{dead:#?}");
    assert_eq!(dead[2].key.as_deref(), Some("e"));
    assert_eq!(dead[2].header("sluice.source"), Some("in/0@4"));
    assert_eq!(dead[2].header("sluice.step"), Some("hot"));
    assert!(
        dead[2]
            .header("sluice.error")
            .is_some_and(|e| e.contains("cannot compare")),
        "{:?}",
        dead[2]
    );
    let out = read_all(&broker, "out");
    let keys: Vec<Option<&str>> = out.iter().map(|r| r.key.as_deref()).collect();
    assert_eq!(keys, [Some("a"), Some("d"), Some("f")]);
    assert_eq!(out[2].header("sluice.origin"), Some("dl#1/in/0@5.0"));
}

#[test]
fn metrics_count_what_a_pipeline_did() {
    let broker = Broker::start(BrokerOptions::smp(2));
    let dir = tempfile::tempdir().expect("tempdir");
    create_topic(&broker, "in", &[]);
    create_topic(&broker, "out", &[]);
    deploy(&broker, dir.path(), "clean", CLEAN);
    produce_clean(&broker, 0..10);
    describe_until(&broker, "clean", "reads all 10", |d| caught_up(d, 10));
    let want = clean_output(1, 0..10).len();
    assert_eq!(read_all(&broker, "out").len(), want);

    let (status, text) = http_get(broker.admin_addr(), "/metrics");
    assert_eq!(status, 200);
    let lines: Vec<&str> = text.lines().collect();
    for line in [
        "sluice_transform_records_in_total{pipeline=\"clean\"} 10".to_owned(),
        format!("sluice_transform_records_out_total{{pipeline=\"clean\"}} {want}"),
        "sluice_transform_lag_records{pipeline=\"clean\"} 0".to_owned(),
        "sluice_transform_dead_letters_total{pipeline=\"clean\"} 0".to_owned(),
        "sluice_transform_records_dropped_total{pipeline=\"clean\",step=\"warm\"} 4".to_owned(),
        "sluice_transform_records_dropped_total{pipeline=\"clean\",step=\"fahrenheit\"} 0"
            .to_owned(),
    ] {
        assert!(
            lines.contains(&line.as_str()),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(
        lines.iter().any(|l| l.starts_with(
            "sluice_transform_processing_duration_seconds_bucket{pipeline=\"clean\",le=\"+Inf\"} "
        )),
        "no latency histogram in\n{text}"
    );
    let count = lines
        .iter()
        .find_map(|l| {
            l.strip_prefix(
                "sluice_transform_processing_duration_seconds_count{pipeline=\"clean\"} ",
            )
        })
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no latency count in\n{text}"));
    assert!(count >= 1, "latency observed: {count}");
}

/// `sluice ARGS`, with no broker.
fn sluice_alone(args: &[&str]) -> CmdOutput {
    let mut cmd = Command::new(sluice_bin());
    cmd.env_remove("SLUICE_ADMIN_ADDR").args(args);
    run_cmd(&mut cmd, None, OP_TIMEOUT)
}

#[test]
fn usage_and_unreachable_admin_api() {
    let out = sluice_alone(&["transform", "describe"]);
    assert_exit(&out, 2, "describe without a name");
    assert!(out.stderr.contains("<NAME>"), "{}", out.stderr);

    let out = sluice_alone(&["transform", "describe", "bad/name"]);
    assert_exit(&out, 2, "describe of a name that is not one");

    let out = sluice_alone(&["transform", "list", "--admin-addr", "127.0.0.1:1"]);
    assert_exit(&out, 1, "list with nothing listening");
    assert!(
        out.stderr
            .contains("cannot reach the admin API at 127.0.0.1:1"),
        "{}",
        out.stderr
    );
}

#[test]
fn join_enriches_from_a_compacted_table() {
    let broker = Broker::start(BrokerOptions::smp(2));
    let dir = tempfile::tempdir().expect("tempdir");
    create_topic(&broker, "devices", &["cleanup.policy=compact"]);
    create_topic(&broker, "readings", &[]);
    create_topic(&broker, "enriched", &[]);
    create_topic(&broker, "plain", &[]);
    produce(
        &broker,
        "devices",
        &[
            ("dev-1", r#"{"model":"t100","site":"north"}"#),
            ("dev-2", r#"{"model":"t200","site":"south"}"#),
            ("dev-1", r#"{"model":"t150","site":"north"}"#),
        ],
    );

    // A table that is not compacted is refused, at the join's step.
    let spec = r#"name = "enrich"
inputs = ["readings"]
output = "enriched"
start = "earliest"
checkpoint_interval = "100ms"

[[step]]
name = "lookup"
join = { table = "plain", into = "device", missing = "drop" }
"#;
    assert_refused(
        &broker,
        &write_spec(dir.path(), "plain.toml", spec),
        line_of(spec, "[[step]]"),
        "table topic `plain` is not compacted; a table needs cleanup.policy=compact",
    );

    let spec = spec.replace("\"plain\"", "\"devices\"");
    deploy(&broker, dir.path(), "enrich", &spec);
    // The first checkpoint, taken when the task starts, reads the table.
    describe_until(&broker, "enrich", "the task checkpoints", |d| {
        d["tasks"][0]["checkpoints"]
            .as_u64()
            .is_some_and(|c| c >= 1)
    });

    produce(
        &broker,
        "readings",
        &[
            ("dev-1", r#"{"t":20}"#),
            ("dev-3", r#"{"t":5}"#),
            ("dev-2", r#"{"t":30}"#),
        ],
    );
    let d = describe_until(&broker, "enrich", "reads all 3", |d| caught_up(d, 3));
    assert_eq!(
        d["steps"],
        json!([{ "name": "lookup", "kind": "join", "records_in": 3, "records_out": 2,
                 "dropped": 1, "errors": 0, "state_entries": 2, "to": null }])
    );
    let got: Vec<(Option<String>, Value)> = read_all(&broker, "enriched")
        .iter()
        .map(|r| (r.key.clone(), r.json()))
        .collect();
    assert_eq!(
        got,
        [
            (
                Some("dev-1".to_owned()),
                json!({ "t": 20, "device": { "model": "t150", "site": "north" } })
            ),
            (
                Some("dev-2".to_owned()),
                json!({ "t": 30, "device": { "model": "t200", "site": "south" } })
            ),
        ]
    );

    // A table update is seen within a checkpoint: two checkpoints after it is durable,
    // the second of which began after it.
    produce(
        &broker,
        "devices",
        &[("dev-3", r#"{"model":"t300","site":"east"}"#)],
    );
    let seen = describe(&broker, "enrich")["tasks"][0]["checkpoints"]
        .as_u64()
        .expect("checkpoints");
    describe_until(&broker, "enrich", "two more checkpoints", |d| {
        d["tasks"][0]["checkpoints"]
            .as_u64()
            .is_some_and(|c| c >= seen + 2)
    });
    produce(&broker, "readings", &[("dev-3", r#"{"t":6}"#)]);
    let d = describe_until(&broker, "enrich", "reads all 4", |d| caught_up(d, 4));
    assert_eq!(d["steps"][0]["dropped"], 1);
    assert_eq!(d["steps"][0]["state_entries"], 3);
    let got = read_at_least(&broker, "enriched", 3);
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].key.as_deref(), Some("dev-3"));
    assert_eq!(
        got[2].json(),
        json!({ "t": 6, "device": { "model": "t300", "site": "east" } })
    );
    assert_eq!(
        got[2].header("sluice.origin"),
        Some("enrich#1/readings/0@3.0")
    );
}
