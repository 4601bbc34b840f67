//! The `sluice` admin CLI against a real node: every topic, group and cluster command,
//! their `--format json` output field by field, and exit codes a script can trust
//! (0 ok, 1 failed, 2 usage).

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sluice_e2e::{Broker, sluice_bin, unique_topic};

use crate::common::{CmdOutput, assert_success, run_cmd};

pub(crate) fn sluice(broker: &Broker, args: &[&str], stdin: Option<&[u8]>) -> CmdOutput {
    let mut cmd = Command::new(sluice_bin());
    cmd.env_remove("SLUICE_BROKERS")
        .env_remove("SLUICE_PROFILE")
        .arg("--brokers")
        .arg(broker.bootstrap())
        .args(args);
    run_cmd(&mut cmd, stdin, Duration::from_secs(30))
}

/// Runs with `--format json`, asserts success and parses stdout.
pub(crate) fn sluice_json(broker: &Broker, args: &[&str], stdin: Option<&[u8]>) -> Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let out = sluice(broker, &all, stdin);
    assert_success(&out, &args.join(" "));
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}):\n{}", out.stdout))
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
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

#[test]
fn topic_commands_round_trip() {
    let broker = Broker::start_default();
    let topic = unique_topic("cli");

    let v = sluice_json(&broker, &["topic", "create", &topic, "-p", "2"], None);
    assert_eq!(v["created"][0]["name"], topic.as_str());
    let v = sluice_json(&broker, &["topic", "list"], None);
    let listed = v["topics"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == topic.as_str()))
        .unwrap_or_else(|| panic!("{topic} not listed: {v}"));
    assert_eq!(listed["partitions"], 2);
    assert_eq!(listed["replicas"], 1);
    let out = sluice(&broker, &["topic", "list"], None);
    assert!(
        out.stdout.starts_with("NAME"),
        "table header: {}",
        out.stdout
    );

    let input = "k1 first\nk2 second value\nk3 third";
    let v = sluice_json(
        &broker,
        &[
            "topic", "produce", &topic, "-p", "1", "-f", "%k %v\\n", "-H", "h=1", "-z", "lz4",
        ],
        Some(input.as_bytes()),
    );
    assert_eq!(v["topic"], topic.as_str());
    assert_eq!(v["records"], 3);
    assert_eq!(v["partitions"][0]["partition"], 1);
    assert_eq!(v["partitions"][0]["records"], 3);

    let out = sluice(
        &broker,
        &[
            "--format", "json", "topic", "consume", &topic, "-p", "1", "-n", "3",
        ],
        None,
    );
    assert_success(&out, "consume json");
    let records = json_lines(&out.stdout);
    assert_eq!(records.len(), 3);
    assert_eq!(records[1]["topic"], topic.as_str());
    assert_eq!(records[1]["partition"], 1);
    assert_eq!(records[1]["offset"], 1);
    assert_eq!(records[1]["key"], "k2");
    assert_eq!(records[1]["value"], "second value");
    assert_eq!(records[1]["headers"][0]["key"], "h");
    assert_eq!(records[1]["headers"][0]["value"], "1");
    assert!(records[1]["timestamp"].as_i64().is_some_and(|t| t > 0));

    let out = sluice(
        &broker,
        &[
            "topic",
            "consume",
            &topic,
            "-n",
            "3",
            "-f",
            "%p:%o %k=%v %h\\n",
        ],
        None,
    );
    assert_success(&out, "consume with a format");
    assert_eq!(
        out.stdout,
        "1:0 k1=first h=1\n1:1 k2=second value h=1\n1:2 k3=third h=1\n"
    );
    let out = sluice(
        &broker,
        &["topic", "consume", &topic, "-p", "1", "-o", "2", "-n", "1"],
        None,
    );
    assert_success(&out, "consume from an offset");
    assert_eq!(out.stdout, "third\n");
    let ts = records[0]["timestamp"].as_i64().unwrap_or_default();
    let at = format!("@{ts}");
    let out = sluice(
        &broker,
        &["topic", "consume", &topic, "-p", "1", "-o", &at, "-n", "1"],
        None,
    );
    assert_success(&out, "consume from a timestamp");
    assert_eq!(out.stdout, "first\n");
    let out = sluice(
        &broker,
        &[
            "topic", "consume", &topic, "-p", "1", "-o", "@-1h", "-n", "1",
        ],
        None,
    );
    assert_success(&out, "consume from a relative time");
    assert_eq!(out.stdout, "first\n");

    let v = sluice_json(
        &broker,
        &[
            "topic",
            "alter-config",
            &topic,
            "--set",
            "retention.ms=123456",
        ],
        None,
    );
    assert_eq!(v["set"]["retention.ms"], "123456");
    let v = sluice_json(&broker, &["topic", "describe", &topic], None);
    assert_eq!(v["name"], topic.as_str());
    let p1 = &v["partitions"][1];
    assert_eq!(p1["partition"], 1);
    assert_eq!(p1["leader"], 1);
    assert_eq!(p1["replicas"], serde_json::json!([1]));
    assert_eq!(p1["isr"], serde_json::json!([1]));
    assert_eq!(p1["log_start_offset"], 0);
    assert_eq!(p1["high_watermark"], 3);
    assert_eq!(v["partitions"][0]["high_watermark"], 0);
    let retention = v["configs"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "retention.ms"))
        .unwrap_or_else(|| panic!("retention.ms not described: {v}"));
    assert_eq!(retention["value"], "123456");
    assert_eq!(retention["source"], "DYNAMIC_TOPIC_CONFIG");
    sluice_json(
        &broker,
        &["topic", "alter-config", &topic, "--delete", "retention.ms"],
        None,
    );
    let v = sluice_json(&broker, &["topic", "describe", &topic], None);
    let retention = v["configs"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "retention.ms"))
        .unwrap_or_else(|| panic!("retention.ms not described: {v}"));
    assert_ne!(retention["source"], "DYNAMIC_TOPIC_CONFIG");

    let v = sluice_json(
        &broker,
        &["topic", "add-partitions", &topic, "-n", "1"],
        None,
    );
    assert_eq!(v["partitions"], 3);
    let v = sluice_json(
        &broker,
        &["topic", "trim-prefix", &topic, "-o", "1", "-p", "1"],
        None,
    );
    assert_eq!(v["partitions"][0]["partition"], 1);
    assert_eq!(v["partitions"][0]["start_offset"], 1);
    let v = sluice_json(&broker, &["topic", "describe", &topic], None);
    assert_eq!(v["partitions"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["partitions"][1]["log_start_offset"], 1);

    let out = sluice(&broker, &["topic", "describe", &topic], None);
    assert_success(&out, "describe text");
    assert!(out.stdout.contains("HIGH-WATERMARK"), "{}", out.stdout);

    let v = sluice_json(&broker, &["topic", "delete", &topic], None);
    assert_eq!(v["deleted"][0], topic.as_str());
    let out = sluice(&broker, &["topic", "list"], None);
    assert!(
        !out.stdout.contains(&topic),
        "deleted topic still listed:\n{}",
        out.stdout
    );
}

#[test]
fn produce_spreads_keys_and_consume_reads_every_partition() {
    let broker = Broker::start_default();
    let topic = unique_topic("cli-keys");
    sluice_json(&broker, &["topic", "create", &topic, "-p", "3"], None);
    let input: String = (0..30).map(|i| format!("key-{i}:v{i}\n")).collect();
    let v = sluice_json(
        &broker,
        &["topic", "produce", &topic, "-f", "%k:%v\\n", "-z", "zstd"],
        Some(input.as_bytes()),
    );
    assert_eq!(v["records"], 30);
    assert!(
        v["partitions"].as_array().is_some_and(|p| p.len() > 1),
        "keys should spread over partitions: {v}"
    );
    let out = sluice(
        &broker,
        &["topic", "consume", &topic, "-n", "30", "-f", "%k %v\\n"],
        None,
    );
    assert_success(&out, "consume all partitions");
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort_unstable();
    let mut want: Vec<String> = (0..30).map(|i| format!("key-{i} v{i}")).collect();
    want.sort();
    assert_eq!(lines, want);
    // The same key always lands on the same partition.
    let out = sluice(
        &broker,
        &["topic", "consume", &topic, "-n", "30", "-f", "%k %p\\n"],
        None,
    );
    let again = sluice_json(
        &broker,
        &["topic", "produce", &topic, "-f", "%k:%v\\n"],
        Some(b"key-7:again\n"),
    );
    let first = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("key-7 "))
        .unwrap_or_default()
        .to_owned();
    assert_eq!(again["partitions"][0]["partition"].to_string(), first);
}

#[test]
fn errors_exit_non_zero_with_a_reason() {
    let broker = Broker::start_default();
    let topic = unique_topic("cli-err");
    assert_success(
        &sluice(&broker, &["topic", "create", &topic], None),
        "create",
    );

    let out = sluice(&broker, &["topic", "create", &topic], None);
    assert_exit(&out, 1, "creating an existing topic");
    assert!(out.stderr.contains("TopicAlreadyExists"), "{}", out.stderr);

    let out = sluice(&broker, &["topic", "delete", "no-such-topic"], None);
    assert_exit(&out, 1, "deleting a missing topic");
    assert!(
        out.stderr.contains("UnknownTopicOrPartition"),
        "{}",
        out.stderr
    );

    for args in [
        &["topic", "describe", "no-such-topic"][..],
        &["topic", "consume", "no-such-topic", "-n", "1"],
        &["topic", "add-partitions", "no-such-topic", "-n", "1"],
        &["topic", "trim-prefix", "no-such-topic", "-o", "1"],
    ] {
        let out = sluice(&broker, args, None);
        assert_exit(&out, 1, &args.join(" "));
        assert!(
            out.stderr.contains("unknown topic no-such-topic"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let out = sluice(
        &broker,
        &["topic", "produce", "no-such-topic"],
        Some(b"x\n"),
    );
    assert_exit(&out, 1, "produce to a missing topic");

    let out = sluice(
        &broker,
        &["topic", "create", "bad", "-c", "retention.msx=1"],
        None,
    );
    assert_exit(&out, 1, "an unknown config");
    assert!(out.stderr.contains("retention.msx"), "{}", out.stderr);
    let out = sluice(
        &broker,
        &["topic", "alter-config", &topic, "--set", "retention.msx=1"],
        None,
    );
    assert_exit(&out, 1, "altering an unknown config");

    // Usage errors: exit 2, before any connection.
    for args in [
        &["topic", "consume", &topic, "-o", "soon"][..],
        &["topic", "produce", &topic, "-z", "brotli"],
        &["topic", "produce", &topic, "-f", "%x"],
        &["topic", "frobnicate"],
        &["topic", "alter-config", &topic],
        &["group", "seek", "g"],
    ] {
        let out = sluice(&broker, args, None);
        assert_exit(&out, 2, &args.join(" "));
    }

    let out = sluice(&broker, &["group", "describe", "no-such-group"], None);
    assert_exit(&out, 1, "describing a missing group");
    assert!(
        out.stderr.contains("unknown group no-such-group"),
        "{}",
        out.stderr
    );
    let out = sluice(&broker, &["group", "delete", "no-such-group"], None);
    assert_exit(&out, 1, "deleting a missing group");
    assert!(out.stderr.contains("no-such-group"), "{}", out.stderr);

    let mut cmd = Command::new(sluice_bin());
    cmd.env_remove("SLUICE_BROKERS")
        .args(["--brokers", "127.0.0.1:1", "topic", "list"]);
    let out = run_cmd(&mut cmd, None, Duration::from_secs(30));
    assert_exit(&out, 1, "an unreachable broker");
    assert!(
        out.stderr.contains("cannot connect to 127.0.0.1:1")
            && out.stderr.contains("is a broker running?")
            && out.stderr.contains("--brokers"),
        "error should say what to do: {}",
        out.stderr
    );
}

#[test]
fn brokers_come_from_flag_then_env_then_profile() {
    let broker = Broker::start_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = dir.path().join("profile.toml");
    std::fs::write(
        &profile,
        format!("brokers = [\"{}\"]\n", broker.bootstrap()),
    )
    .expect("profile");
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = Command::new(sluice_bin());
        cmd.env_remove("SLUICE_BROKERS")
            .env_remove("SLUICE_PROFILE")
            .env("HOME", dir.path())
            .env_remove("XDG_CONFIG_HOME");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args).args(["cluster", "info"]);
        run_cmd(&mut cmd, None, Duration::from_secs(30))
    };
    let profile = profile.to_string_lossy().into_owned();
    // The profile alone.
    assert_success(&run(&[("SLUICE_PROFILE", &profile)], &[]), "profile");
    assert_success(&run(&[], &["--profile", &profile]), "--profile");
    // The env var beats the profile.
    let out = run(
        &[
            ("SLUICE_PROFILE", &profile),
            ("SLUICE_BROKERS", "127.0.0.1:1"),
        ],
        &[],
    );
    assert_exit(&out, 1, "env beats profile");
    // The flag beats the env var.
    let bootstrap = broker.bootstrap();
    let out = run(
        &[("SLUICE_BROKERS", "127.0.0.1:1")],
        &["--brokers", &bootstrap],
    );
    assert_success(&out, "flag beats env");
    // A named profile that does not exist is an error; the default one is optional.
    let out = run(&[], &["--profile", "/nonexistent/profile.toml"]);
    assert_exit(&out, 1, "missing profile");
    assert!(
        out.stderr.contains("/nonexistent/profile.toml"),
        "{}",
        out.stderr
    );
}

#[test]
fn group_commands() {
    let broker = Broker::start_default();
    let topic = unique_topic("cli-group");
    let group = unique_topic("g");
    sluice_json(&broker, &["topic", "create", &topic, "-p", "2"], None);
    sluice_json(
        &broker,
        &["topic", "produce", &topic, "-p", "0"],
        Some(b"a\nb\nc\nd\n"),
    );

    // Seeking a group that has no members creates its offsets.
    let v = sluice_json(
        &broker,
        &["group", "seek", &group, "--to", "start", "--topic", &topic],
        None,
    );
    assert_eq!(v["group"], group.as_str());
    assert_eq!(v["offsets"][0]["topic"], topic.as_str());
    assert_eq!(v["offsets"][0]["partition"], 0);
    assert_eq!(v["offsets"][0]["offset"], 0);

    let v = sluice_json(&broker, &["group", "list"], None);
    let listed = v["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["group"] == group.as_str()))
        .unwrap_or_else(|| panic!("{group} not listed: {v}"));
    assert!(listed["state"].is_string());

    let v = sluice_json(&broker, &["group", "describe", &group], None);
    assert_eq!(v["group"], group.as_str());
    assert_eq!(v["state"], "Empty");
    assert_eq!(v["members"], serde_json::json!([]));
    let o = &v["offsets"][0];
    assert_eq!(o["topic"], topic.as_str());
    assert_eq!(o["partition"], 0);
    assert_eq!(o["committed_offset"], 0);
    assert_eq!(o["high_watermark"], 4);
    assert_eq!(o["lag"], 4);
    assert_eq!(v["total_lag"], 4);

    let v = sluice_json(&broker, &["group", "seek", &group, "--to", "end"], None);
    assert_eq!(v["offsets"][0]["offset"], 4);
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(file.path(), format!("{topic} 0 2\n{topic} 1 0\n")).expect("write");
    let path = file.path().to_string_lossy().into_owned();
    sluice_json(
        &broker,
        &["group", "seek", &group, "--to-file", &path],
        None,
    );
    let v = sluice_json(&broker, &["group", "describe", &group], None);
    assert_eq!(v["offsets"][0]["committed_offset"], 2);
    assert_eq!(v["offsets"][0]["lag"], 2);
    assert_eq!(v["offsets"][1]["partition"], 1);
    assert_eq!(v["offsets"][1]["lag"], 0);
    let out = sluice(&broker, &["group", "describe", &group], None);
    assert_success(&out, "describe text");
    assert!(out.stdout.contains("LAG"), "{}", out.stdout);

    let v = sluice_json(&broker, &["group", "delete", &group], None);
    assert_eq!(v["deleted"][0], group.as_str());
    let out = sluice(&broker, &["group", "describe", &group], None);
    assert_exit(&out, 1, "describe a deleted group");
}

#[test]
fn cluster_commands() {
    let broker = Broker::start_default();
    let v = sluice_json(&broker, &["cluster", "info"], None);
    assert_eq!(v["controller"], 1);
    assert_eq!(v["brokers"][0]["node_id"], 1);
    assert_eq!(v["brokers"][0]["host"], "127.0.0.1");
    assert_eq!(v["brokers"][0]["port"], broker.kafka_port());
    assert!(v["cluster_id"].is_string());
    let out = sluice(&broker, &["cluster", "info"], None);
    assert!(out.stdout.contains(&broker.bootstrap()), "{}", out.stdout);

    let v = sluice_json(&broker, &["cluster", "health"], None);
    assert_eq!(v["healthy"], true);
    assert_eq!(v["nodes"], serde_json::json!([1]));
    assert_eq!(v["leaderless_partitions"], serde_json::json!([]));
    assert_eq!(v["under_replicated_partitions"], serde_json::json!([]));

    let v = sluice_json(&broker, &["cluster", "config", "list"], None);
    let retention = v["configs"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "log.retention.ms"))
        .unwrap_or_else(|| panic!("log.retention.ms not listed: {v}"));
    assert!(retention["value"].is_string());
    let v = sluice_json(&broker, &["cluster", "config", "get", "node.id"], None);
    assert_eq!(v["name"], "node.id");
    assert_eq!(v["value"], "1");
    let out = sluice(
        &broker,
        &["cluster", "config", "get", "no.such.config"],
        None,
    );
    assert_exit(&out, 1, "getting an unknown config");
}

#[test]
fn consume_as_a_group_member_commits_and_leaves() {
    let broker = Broker::start(sluice_e2e::BrokerOptions {
        extra_args: vec!["--group-initial-rebalance-delay-ms".into(), "0".into()],
        ..Default::default()
    });
    let topic = unique_topic("cli-member");
    let group = unique_topic("gm");
    sluice_json(&broker, &["topic", "create", &topic, "-p", "2"], None);
    sluice_json(
        &broker,
        &["topic", "produce", &topic, "-p", "1"],
        Some(b"a\nb\nc\n"),
    );

    let out = sluice(
        &broker,
        &[
            "topic",
            "consume",
            &topic,
            "-g",
            &group,
            "-n",
            "2",
            "-f",
            "%p:%o:%v\\n",
        ],
        None,
    );
    assert_success(&out, "consume as a group");
    assert_eq!(out.stdout, "1:0:a\n1:1:b\n");
    let v = sluice_json(&broker, &["group", "describe", &group], None);
    assert_eq!(v["state"], "Empty", "the member left: {v}");
    assert_eq!(v["protocol_type"], "consumer");
    let o = v["offsets"]
        .as_array()
        .and_then(|os| os.iter().find(|o| o["partition"] == 1))
        .unwrap_or_else(|| panic!("no offset for partition 1: {v}"));
    assert_eq!(o["committed_offset"], 2);
    assert_eq!(o["lag"], 1);
    // The next member starts where the last one committed.
    let out = sluice(
        &broker,
        &[
            "topic", "consume", &topic, "-g", &group, "-n", "1", "-f", "%o:%v\\n",
        ],
        None,
    );
    assert_success(&out, "consume again");
    assert_eq!(out.stdout, "2:c\n");

    // A member that follows: describe shows it, seek refuses, Ctrl-C exits 0.
    let mut child = Command::new(sluice_bin())
        .env_remove("SLUICE_BROKERS")
        .args([
            "--brokers",
            &broker.bootstrap(),
            "topic",
            "consume",
            &topic,
            "-g",
            &group,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn consumer");
    let mut described = Value::Null;
    let joined = sluice_e2e::wait_until(Duration::from_secs(20), || {
        described = sluice_json(&broker, &["group", "describe", &group], None);
        described["state"] == "Stable"
    });
    if !joined {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the consumer never joined: {described}");
    }
    let member = &described["members"][0];
    assert_eq!(member["client_id"], "sluice-client");
    assert!(
        member["client_host"]
            .as_str()
            .is_some_and(|h| h.contains("127.0.0.1")),
        "{member}"
    );
    assert_eq!(member["assignment"][0]["topic"], topic.as_str());
    assert_eq!(
        member["assignment"][0]["partitions"],
        serde_json::json!([0, 1])
    );
    // Partition 0 is assigned but has no commit: listed without offset or lag.
    let p0 = &described["offsets"][0];
    assert_eq!(p0["partition"], 0);
    assert_eq!(p0["member_id"], member["member_id"]);
    assert!(
        p0["committed_offset"].is_null() && p0["lag"].is_null(),
        "{p0}"
    );
    assert_eq!(described["offsets"][1]["committed_offset"], 3);
    assert_eq!(described["offsets"][1]["lag"], 0);
    let out = sluice(&broker, &["group", "seek", &group, "--to", "start"], None);
    assert_exit(&out, 1, "seek with an active member");
    assert!(out.stderr.contains("active member"), "{}", out.stderr);

    let pid = rustix::process::Pid::from_child(&child);
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
    let status = child.wait().expect("wait consumer");
    assert_eq!(status.code(), Some(0), "Ctrl-C should exit 0");
    let v = sluice_json(&broker, &["group", "describe", &group], None);
    assert_eq!(v["state"], "Empty", "{v}");
}

#[test]
fn cluster_config_set_changes_topic_defaults_and_survives_a_restart() {
    let mut broker = Broker::start_default();
    let plain = unique_topic("cli-defaults");
    let own = unique_topic("cli-own");
    sluice_json(&broker, &["topic", "create", &plain], None);
    sluice_json(
        &broker,
        &["topic", "create", &own, "-c", "retention.ms=5000"],
        None,
    );
    let v = sluice_json(
        &broker,
        &[
            "cluster",
            "config",
            "set",
            "log.retention.ms=777000",
            "log.segment.bytes=2097152",
        ],
        None,
    );
    assert_eq!(v["set"]["log.retention.ms"], "777000");
    let topic_config = |broker: &Broker, topic: &str, name: &str| -> Value {
        let v = sluice_json(broker, &["topic", "describe", topic], None);
        v["configs"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == name).cloned())
            .unwrap_or_else(|| panic!("{name} not described: {v}"))
    };
    for _ in 0..2 {
        let v = sluice_json(
            &broker,
            &["cluster", "config", "get", "log.retention.ms"],
            None,
        );
        assert_eq!(v["value"], "777000");
        assert_eq!(v["source"], "DYNAMIC_DEFAULT_BROKER_CONFIG");
        assert_eq!(v["read_only"], false);
        // Existing topics take the new default unless they override it.
        let c = topic_config(&broker, &plain, "retention.ms");
        assert_eq!(c["value"], "777000");
        assert_eq!(c["source"], "DYNAMIC_DEFAULT_BROKER_CONFIG");
        assert_eq!(
            topic_config(&broker, &plain, "segment.bytes")["value"],
            "2097152"
        );
        let c = topic_config(&broker, &own, "retention.ms");
        assert_eq!(c["value"], "5000");
        assert_eq!(c["source"], "DYNAMIC_TOPIC_CONFIG");
        // Persisted in the meta store.
        broker.restart();
        // The port opens a moment before requests are served.
        assert!(sluice_e2e::wait_until(Duration::from_secs(20), || {
            sluice(&broker, &["cluster", "info"], None).status.success()
        }));
    }

    let out = sluice(&broker, &["cluster", "config", "set", "node.id=7"], None);
    assert_exit(&out, 1, "a read-only broker config");
    assert!(
        out.stderr.contains("InvalidRequest") && out.stderr.contains("node.id"),
        "{}",
        out.stderr
    );
    let out = sluice(&broker, &["cluster", "config", "set", "log.nope=1"], None);
    assert_exit(&out, 1, "an unknown broker config");
    assert!(
        out.stderr.contains("InvalidConfig") && out.stderr.contains("log.nope"),
        "{}",
        out.stderr
    );
    let out = sluice(
        &broker,
        &["cluster", "config", "set", "log.retention.ms=soon"],
        None,
    );
    assert_exit(&out, 1, "an invalid value");
    let out = sluice(
        &broker,
        &["cluster", "config", "set", "log.retention.ms"],
        None,
    );
    assert_exit(&out, 2, "not key=value");
}

#[test]
fn help_progress_and_interrupt() {
    let mut cmd = Command::new(sluice_bin());
    cmd.arg("--help");
    let out = run_cmd(&mut cmd, None, Duration::from_secs(30));
    assert_success(&out, "--help");
    assert!(
        out.stdout
            .contains("Exit codes: 0 success; 1 the operation failed")
            && out.stdout.contains("2 usage error"),
        "{}",
        out.stdout
    );

    let broker = Broker::start_default();
    let topic = unique_topic("cli-bulk");
    sluice_json(&broker, &["topic", "create", &topic], None);
    let input: String = (0..5000).map(|i| format!("{i}\n")).collect();
    let out = sluice(
        &broker,
        &["topic", "produce", &topic, "--progress"],
        Some(input.as_bytes()),
    );
    assert_success(&out, "bulk produce");
    assert!(
        out.stderr.contains("produced 5.0k records ("),
        "human-sized progress: {}",
        out.stderr
    );

    let out = sluice(
        &broker,
        &["topic", "consume", &topic, "-n", "5000", "--progress"],
        None,
    );
    assert_success(&out, "bulk consume");
    assert_eq!(out.stdout.lines().count(), 5000);
    assert!(
        out.stderr.contains("consumed 5.0k of 5.0k records"),
        "human-sized consume progress: {}",
        out.stderr
    );

    // acks=0 gets no answer; the records still arrive.
    let out = sluice(
        &broker,
        &["topic", "produce", &topic, "--acks", "0", "-z", "gzip"],
        Some(b"x\ny\n"),
    );
    assert_success(&out, "produce with acks 0");
    let out = sluice(
        &broker,
        &["topic", "consume", &topic, "-o", "5000", "-n", "2"],
        None,
    );
    assert_success(&out, "consume the acks=0 records");
    assert_eq!(out.stdout, "x\ny\n");
    let out = sluice(
        &broker,
        &["topic", "produce", &topic, "--acks", "2"],
        Some(b"z\n"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);

    // Following ends with Ctrl-C, cleanly.
    let mut child = Command::new(sluice_bin())
        .env_remove("SLUICE_BROKERS")
        .args(["--brokers", &broker.bootstrap(), "topic", "consume", &topic])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn consumer");
    let stdout = child.stdout.take().expect("stdout");
    let lines = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = lines.clone();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for _ in std::io::BufReader::new(stdout).lines() {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let all_read = sluice_e2e::wait_until(Duration::from_secs(30), || {
        lines.load(std::sync::atomic::Ordering::Relaxed) == 5002
    });
    let pid = rustix::process::Pid::from_child(&child);
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
    let status = child.wait().expect("wait consumer");
    let _ = reader.join();
    assert!(
        all_read,
        "consumed {} of 5000",
        lines.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert_eq!(status.code(), Some(0), "Ctrl-C should exit 0");
}
