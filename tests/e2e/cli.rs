//! The `sluice` admin CLI against a real node: topic create/list/produce/consume/delete
//! and cluster info, with exit codes a script can trust.

use std::process::Command;
use std::time::Duration;

use sluice_e2e::{Broker, sluice_bin, unique_topic};

use crate::common::{CmdOutput, assert_success, run_cmd};

fn sluice(broker: &Broker, args: &[&str], stdin: Option<&[u8]>) -> CmdOutput {
    let mut cmd = Command::new(sluice_bin());
    cmd.arg("--brokers").arg(broker.bootstrap()).args(args);
    run_cmd(&mut cmd, stdin, Duration::from_secs(30))
}

#[test]
fn topic_commands_round_trip() {
    let broker = Broker::start_default();
    let topic = unique_topic("cli");

    let out = sluice(&broker, &["topic", "create", &topic, "-p", "2"], None);
    assert_success(&out, "topic create");
    let out = sluice(&broker, &["topic", "list"], None);
    assert_success(&out, "topic list");
    let line = out
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(topic.as_str()))
        .unwrap_or_else(|| panic!("{topic} not listed:\n{}", out.stdout));
    assert_eq!(
        line.split_whitespace().nth(1),
        Some("2"),
        "partition count: {line}"
    );

    let input = "k1:first\nk2:second\nthird\n";
    let out = sluice(
        &broker,
        &[
            "topic", "produce", &topic, "-p", "1", "-k", ":", "-z", "lz4",
        ],
        Some(input.as_bytes()),
    );
    assert_success(&out, "topic produce");
    let out = sluice(
        &broker,
        &[
            "topic",
            "consume",
            &topic,
            "-p",
            "1",
            "-n",
            "3",
            "--print-keys",
        ],
        None,
    );
    assert_success(&out, "topic consume");
    assert_eq!(out.stdout, "k1\tfirst\nk2\tsecond\n\tthird\n");
    let out = sluice(
        &broker,
        &["topic", "consume", &topic, "-p", "1", "-o", "2", "-n", "1"],
        None,
    );
    assert_success(&out, "topic consume from offset");
    assert_eq!(out.stdout, "third\n");

    let out = sluice(&broker, &["cluster", "info"], None);
    assert_success(&out, "cluster info");
    assert!(out.stdout.contains("controller: 1"), "{}", out.stdout);
    assert!(out.stdout.contains(&broker.bootstrap()), "{}", out.stdout);

    let out = sluice(&broker, &["topic", "delete", &topic], None);
    assert_success(&out, "topic delete");
    let out = sluice(&broker, &["topic", "list"], None);
    assert!(
        !out.stdout.contains(&topic),
        "deleted topic still listed:\n{}",
        out.stdout
    );
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
    assert!(
        !out.status.success(),
        "creating an existing topic must fail"
    );
    assert!(out.stderr.contains("TopicAlreadyExists"), "{}", out.stderr);

    let out = sluice(&broker, &["topic", "delete", "no-such-topic"], None);
    assert!(!out.status.success(), "deleting a missing topic must fail");
    assert!(
        out.stderr.contains("UnknownTopicOrPartition"),
        "{}",
        out.stderr
    );

    let out = sluice(
        &broker,
        &["topic", "create", "bad", "-c", "retention.msx=1"],
        None,
    );
    assert!(!out.status.success(), "an unknown config must fail");
    assert!(out.stderr.contains("retention.msx"), "{}", out.stderr);

    let mut cmd = Command::new(sluice_bin());
    cmd.args(["--brokers", "127.0.0.1:1", "topic", "list"]);
    let out = run_cmd(&mut cmd, None, Duration::from_secs(30));
    assert!(!out.status.success(), "an unreachable broker must fail");
    assert!(
        out.stderr.contains("--brokers"),
        "error should say what to do: {}",
        out.stderr
    );
}
