//! Python clients (kafka-python, confluent-kafka) against the broker.
//! These tests fail, not skip, when python3 or the packages are missing:
//! `scripts/test.sh` installs them.

use std::process::Command;
use std::time::Duration;

use sluice_e2e::{Broker, BrokerOptions, which};

use crate::common::{assert_success, run_cmd};

fn run_script(name: &str) {
    run_script_with(name, BrokerOptions::default());
}

fn run_script_with(name: &str, options: BrokerOptions) {
    let python = which("python3").expect("python3 not found on PATH");
    let script = format!("{}/python/{name}", env!("CARGO_MANIFEST_DIR"));
    let broker = Broker::start(options);
    let out = run_cmd(
        Command::new(python).arg(&script).arg(broker.bootstrap()),
        None,
        Duration::from_secs(180),
    );
    eprintln!("{}", out.stdout);
    assert_success(&out, name);
}

#[test]
fn kafka_python_roundtrip() {
    run_script("kafka_python_roundtrip.py");
}

#[test]
fn confluent_kafka_roundtrip() {
    run_script("confluent_kafka_roundtrip.py");
}

#[test]
fn confluent_admin_configs_and_partitions() {
    run_script("confluent_admin_configs.py");
}

#[test]
fn kafka_python_describe_log_dirs() {
    run_script("kafka_python_log_dirs.py");
}

#[test]
fn confluent_delete_records_and_retention() {
    run_script_with(
        "confluent_delete_records_retention.py",
        BrokerOptions {
            extra_args: vec![
                "--log-retention-check-interval-ms".to_owned(),
                "200".to_owned(),
            ],
            ..BrokerOptions::default()
        },
    );
}

#[test]
fn confluent_compaction_keeps_latest_per_key() {
    run_script_with(
        "confluent_compaction.py",
        BrokerOptions {
            extra_args: vec![
                "--log-retention-check-interval-ms".to_owned(),
                "200".to_owned(),
            ],
            ..BrokerOptions::default()
        },
    );
}

#[test]
fn mixed_clients_in_one_group_and_group_admin() {
    run_script_with(
        "mixed_group_admin.py",
        BrokerOptions {
            extra_args: vec![
                "--group-initial-rebalance-delay-ms".to_owned(),
                "0".to_owned(),
            ],
            ..BrokerOptions::default()
        },
    );
}
