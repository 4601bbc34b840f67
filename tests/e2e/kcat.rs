//! kcat (Debian's build, linked against an older librdkafka) against the broker.
//! These tests fail, not skip, when kcat is missing: `scripts/test.sh` installs it.

use std::process::Command;
use std::time::Duration;

use sluice_e2e::{Broker, unique_topic, which};

use crate::common::{assert_success, create_topic, run_cmd, wait_topic_ready};

const TIMEOUT: Duration = Duration::from_secs(60);

fn kcat() -> Command {
    let bin = which("kcat").or_else(|| which("kafkacat")).expect(
        "kcat not found on PATH: install it (`apt-get install -y kcat`, or scripts/test.sh)",
    );
    Command::new(bin)
}

#[test]
fn kcat_version_is_reported() {
    let out = run_cmd(kcat().arg("-V"), None, TIMEOUT);
    assert_success(&out, "kcat -V");
    eprintln!("{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_lists_metadata() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    let topic = unique_topic("kcat-md");
    create_topic(&b, &topic, 3).await;
    wait_topic_ready(&b, &topic, 3);
    for extra in [&[][..], &["-X", "api.version.request=true"][..]] {
        let out = run_cmd(kcat().args(["-b", &b, "-L"]).args(extra), None, TIMEOUT);
        assert_success(&out, "kcat -L");
        let want_broker = format!("broker 1 at 127.0.0.1:{}", broker.kafka_port());
        assert!(
            out.stdout.contains(&want_broker),
            "kcat -L {extra:?}: missing {want_broker:?}\n{}",
            out.stdout
        );
        let want_topic = format!("topic \"{topic}\" with 3 partitions");
        assert!(
            out.stdout.contains(&want_topic),
            "kcat -L {extra:?}: missing {want_topic:?}\n{}",
            out.stdout
        );
        for p in 0..3 {
            let want = format!("partition {p}, leader 1,");
            assert!(
                out.stdout.contains(&want),
                "missing {want:?}\n{}",
                out.stdout
            );
        }
    }
}

fn kcat_roundtrip(b: &str, topic: &str, extra: &[&str], produce_extra: &[&str]) {
    let lines: Vec<String> = (0..500)
        .map(|i| format!("key{}:value {i} {}", i % 13, "y".repeat(i % 40)))
        .collect();
    let input = lines.join("\n") + "\n";
    let out = run_cmd(
        kcat()
            .args(["-b", b, "-t", topic, "-P", "-K:", "-p", "0"])
            .args(extra)
            .args(produce_extra),
        Some(input.as_bytes()),
        TIMEOUT,
    );
    assert_success(&out, "kcat -P");
    let out = run_cmd(
        kcat()
            .args(["-b", b, "-t", topic, "-C", "-e", "-q", "-o", "beginning"])
            .args(["-f", "%k:%s|%p|%o\\n"])
            .args(extra),
        None,
        TIMEOUT,
    );
    assert_success(&out, "kcat -C");
    let got: Vec<&str> = out.stdout.lines().collect();
    let want: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{l}|0|{i}"))
        .collect();
    assert_eq!(
        got.len(),
        want.len(),
        "record count\nstderr: {}",
        out.stderr
    );
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_produce_and_consume() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    let topic = unique_topic("kcat-pc");
    create_topic(&b, &topic, 1).await;
    wait_topic_ready(&b, &topic, 1);
    kcat_roundtrip(&b, &topic, &[], &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_produce_and_consume_explicit_api_version_request() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    let topic = unique_topic("kcat-avr");
    create_topic(&b, &topic, 1).await;
    wait_topic_ready(&b, &topic, 1);
    kcat_roundtrip(
        &b,
        &topic,
        &["-X", "api.version.request=true"],
        &["-z", "gzip"],
    );
}

/// kcat's producer asks for auto-creation through Metadata.
#[test]
fn kcat_produce_auto_creates_topic() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    let topic = unique_topic("kcat-auto");
    kcat_roundtrip(&b, &topic, &[], &["-z", "snappy"]);
}

/// kcat's older librdkafka with the codecs the Debian build links.
#[test]
fn kcat_compression_codecs() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    for codec in ["lz4", "zstd"] {
        let topic = unique_topic(&format!("kcat-{codec}"));
        kcat_roundtrip(&b, &topic, &[], &["-z", codec]);
    }
}
