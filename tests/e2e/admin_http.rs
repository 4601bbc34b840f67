//! The admin HTTP API and `/metrics`: every endpoint field by field, JSON errors,
//! malformed HTTP that leaves Kafka clients unharmed, and metrics that move by what a
//! produce/consume round did (checked again by prometheus_client's own parser).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use sluice_e2e::{Broker, BrokerOptions, unique_topic, which};

use crate::common::{
    OP_TIMEOUT, Rec, assert_success, consume_counts, consumer, consumer_with, create_topic,
    produce_ok, producer, run_cmd, wait_topic_ready,
};

/// A response: status, raw head, body.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends raw bytes and reads the response until the server closes.
fn raw(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request).expect("send");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read response");
    let text = String::from_utf8(out).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line: {head}"));
    Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
    raw(
        addr,
        format!("{method} {path} HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path)
}

fn assert_json_error(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{} {}", reply.head, reply.body);
    assert!(
        reply.head.contains("Content-Type: application/json"),
        "{}",
        reply.head
    );
    let json = reply.json();
    assert_eq!(json["code"], status);
    assert!(
        json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{json}"
    );
}

/// Value of the sample `series` (`name{labels}` exactly as rendered) in a scrape.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

fn scrape(admin: SocketAddr) -> String {
    let reply = get(admin, "/metrics");
    assert_eq!(reply.status, 200);
    assert!(
        reply.head.contains("text/plain; version=0.0.4"),
        "{}",
        reply.head
    );
    reply.body
}

fn records(partitions: i32, per_partition: usize, size: usize) -> Vec<Rec> {
    (0..partitions)
        .flat_map(|p| {
            (0..per_partition).map(move |i| Rec {
                partition: Some(p),
                value: Some(vec![b'a' + (i % 26) as u8; size]),
                ..Rec::default()
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_describe_the_node() {
    let broker = Broker::start(BrokerOptions::smp(2));
    let bootstrap = broker.bootstrap();
    let admin = broker.admin_addr();
    let topic = unique_topic("admin-http");
    create_topic(&bootstrap, &topic, 3).await;
    wait_topic_ready(&bootstrap, &topic, 3);
    produce_ok(&producer(&bootstrap, &[]), &topic, &records(3, 4, 100)).await;

    let ready = get(admin, "/v1/status/ready");
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["status"], "ready");
    let live = get(admin, "/v1/status/live");
    assert_eq!(live.status, 200);

    let brokers = get(admin, "/v1/brokers");
    assert_eq!(brokers.status, 200);
    let brokers = brokers.json();
    let list = brokers.as_array().expect("an array of brokers");
    assert_eq!(list.len(), 1, "{brokers}");
    let b = &list[0];
    assert_eq!(b["node_id"], 1);
    assert_eq!(b["num_cores"], 2);
    assert_eq!(b["is_alive"], true);
    assert_eq!(b["membership_status"], "active");
    assert!(b["version"].as_str().is_some_and(|v| v.starts_with('v')));
    assert_eq!(b["kafka_address"], bootstrap);
    assert_eq!(b["admin_address"], admin.to_string());
    assert_eq!(b["internal_rpc_address"], "127.0.0.1");
    assert!(b["internal_rpc_port"].as_u64().is_some_and(|p| p > 0));

    let health = get(admin, "/v1/cluster/health_overview");
    assert_eq!(health.status, 200);
    let health = health.json();
    assert_eq!(health["is_healthy"], true, "{health}");
    assert_eq!(health["controller_id"], 1);
    assert_eq!(health["all_nodes"], serde_json::json!([1]));
    assert_eq!(health["nodes_down"], serde_json::json!([]));
    assert_eq!(health["leaderless_partitions"], serde_json::json!([]));
    assert_eq!(health["leaderless_count"], 0);
    assert_eq!(health["under_replicated_partitions"], serde_json::json!([]));
    assert_eq!(health["under_replicated_count"], 0);

    let all = get(admin, "/v1/partitions");
    assert_eq!(all.status, 200);
    let all = all.json();
    let ours: Vec<&Value> = all
        .as_array()
        .expect("an array of partitions")
        .iter()
        .filter(|p| p["topic"] == topic.as_str())
        .collect();
    assert_eq!(ours.len(), 3, "{all}");
    for (i, p) in ours.iter().enumerate() {
        assert_eq!(p["ns"], "kafka");
        assert_eq!(p["partition_id"], i);
        assert_eq!(p["leader_id"], 1);
        assert_eq!(p["status"], "online");
        assert_eq!(p["replicas"][0]["node_id"], 1);
        assert!(p["core"].as_u64().is_some_and(|c| c < 2));
        assert_eq!(p["high_watermark"], 4);
        assert_eq!(p["log_start_offset"], 0);
        assert!(p["size_bytes"].as_u64().is_some_and(|s| s >= 400), "{p}");
    }
    let of_topic = get(admin, &format!("/v1/partitions/kafka/{topic}"));
    assert_eq!(of_topic.status, 200);
    let of_topic = of_topic.json();
    assert_eq!(of_topic.as_array().map(Vec::len), Some(3), "{of_topic}");
    let one = get(admin, &format!("/v1/partitions/kafka/{topic}/2")).json();
    assert_eq!(one["partition_id"], 2);
    assert_eq!(one["high_watermark"], 4);
    assert_json_error(&get(admin, "/v1/partitions/kafka/no-such-topic"), 404);
    assert_json_error(&get(admin, &format!("/v1/partitions/kafka/{topic}/9")), 404);

    let config = get(admin, "/v1/node_config");
    assert_eq!(config.status, 200);
    let config = config.json();
    assert_eq!(config["node_id"], 1);
    assert_eq!(config["smp"], 2);
    assert_eq!(config["kafka_addr"], bootstrap);
    assert_eq!(config["admin_addr"], admin.to_string());
    assert!(config["data_dir"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(config["num_partitions"], 1);
    assert!(
        config["topic_defaults"]["log.retention.ms"].is_string(),
        "{config}"
    );

    // Errors are JSON with the right status.
    assert_json_error(&get(admin, "/v1/no-such-endpoint"), 404);
    let wrong_method = request(admin, "POST", "/v1/brokers");
    assert_json_error(&wrong_method, 405);
    assert!(
        wrong_method.head.contains("Allow: GET"),
        "{}",
        wrong_method.head
    );
    assert_json_error(&raw(admin, b"\x16\x03\x01\x02\x00garbage\r\n\r\n"), 400);
    let mut huge = b"GET /v1/brokers HTTP/1.1\r\n".to_vec();
    for i in 0..200 {
        huge.extend(format!("X-Header-{i}: {}\r\n", "v".repeat(100)).bytes());
    }
    huge.extend(b"\r\n");
    assert_json_error(&raw(admin, &huge), 431);
    // A connection that never finishes its request does not block others.
    let mut stalled = TcpStream::connect(admin).unwrap();
    stalled.write_all(b"GET /v1/bro").unwrap();

    // Kafka clients are unaffected by all of the above.
    produce_ok(&producer(&bootstrap, &[]), &topic, &records(3, 1, 10)).await;
    let got = consume_counts(
        &consumer(&bootstrap),
        &topic,
        &(0..3).map(|p| (p, 5)).collect(),
        OP_TIMEOUT,
    );
    assert!(got.values().all(|m| m.len() >= 5));
    assert_eq!(get(admin, "/v1/status/ready").status, 200);
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_produce_consume_round() {
    let broker = Broker::start(BrokerOptions::smp(2));
    let bootstrap = broker.bootstrap();
    let admin = broker.admin_addr();
    let topic = unique_topic("metrics");
    create_topic(&bootstrap, &topic, 2).await;
    wait_topic_ready(&bootstrap, &topic, 2);

    let before = scrape(admin);
    let produce_before =
        sample(&before, "sluice_kafka_requests_total{api=\"Produce\"}").unwrap_or(0.0);

    let (per_partition, size) = (50usize, 200usize);
    let recs = records(2, per_partition, size);
    produce_ok(&producer(&bootstrap, &[]), &topic, &recs).await;
    let got = consume_counts(
        &consumer(&bootstrap),
        &topic,
        &(0..2).map(|p| (p, per_partition)).collect(),
        OP_TIMEOUT,
    );
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), 2 * per_partition);

    // A group commits offsets 20 and 35 without joining (a "simple" consumer group).
    let group = unique_topic("metrics-group");
    let committer = consumer_with(&bootstrap, &[("group.id", group.as_str())]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(20))
        .unwrap();
    tpl.add_partition_offset(&topic, 1, Offset::Offset(35))
        .unwrap();
    committer.commit(&tpl, CommitMode::Sync).expect("commit");

    let text = scrape(admin);
    let value = |series: &str| {
        sample(&text, series).unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
    };
    let payload = (2 * per_partition * size) as f64;
    let produced = value("sluice_kafka_requests_total{api=\"Produce\"}") - produce_before;
    assert!(produced >= 1.0, "produce requests counted: {produced}");
    assert!(value("sluice_kafka_requests_total{api=\"Fetch\"}") >= 1.0);
    assert!(value("sluice_kafka_requests_total{api=\"OffsetCommit\"}") >= 1.0);
    assert!(value("sluice_kafka_request_duration_seconds_count{api=\"Produce\"}") >= produced);
    assert_eq!(
        value("sluice_kafka_request_duration_seconds_bucket{api=\"Produce\",le=\"+Inf\"}"),
        value("sluice_kafka_request_duration_seconds_count{api=\"Produce\"}")
    );
    assert!(
        value(&format!(
            "sluice_kafka_produce_bytes_total{{topic=\"{topic}\"}}"
        )) >= payload
    );
    assert!(
        value(&format!(
            "sluice_kafka_fetch_bytes_total{{topic=\"{topic}\"}}"
        )) >= payload
    );
    assert!(value("sluice_kafka_produce_batch_size_bytes_count") >= 2.0);
    assert!(value("sluice_kafka_produce_batch_size_bytes_sum") >= payload);
    assert!(value("sluice_kafka_fetch_wait_seconds_count") >= 1.0);
    assert!(value("sluice_storage_fsync_duration_seconds_count") >= 1.0);
    assert!(value("sluice_kafka_connections_accepted_total") >= 2.0);
    assert!(value("sluice_kafka_connections_active") >= 1.0);
    let mut high_watermarks = BTreeMap::new();
    for p in 0..2 {
        let hwm = value(&format!(
            "sluice_partition_high_watermark{{topic=\"{topic}\",partition=\"{p}\"}}"
        ));
        assert_eq!(hwm, per_partition as f64, "partition {p}");
        high_watermarks.insert(p, hwm);
        assert_eq!(
            value(&format!(
                "sluice_partition_log_start_offset{{topic=\"{topic}\",partition=\"{p}\"}}"
            )),
            0.0
        );
        assert!(
            value(&format!(
                "sluice_partition_size_bytes{{topic=\"{topic}\",partition=\"{p}\"}}"
            )) >= (per_partition * size) as f64
        );
    }
    for (p, committed) in [(0, 20.0), (1, 35.0)] {
        assert_eq!(
            value(&format!(
                "sluice_group_lag_records{{group=\"{group}\",topic=\"{topic}\",partition=\"{p}\"}}"
            )),
            high_watermarks[&p] - committed,
            "lag of partition {p}"
        );
    }

    // The whole exposition parses with Prometheus' own Python parser.
    let python = which("python3").expect("python3 not found on PATH");
    let script = format!(
        "{}/python/prometheus_metrics.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = run_cmd(
        Command::new(python)
            .arg(&script)
            .arg(admin.to_string())
            .arg(&topic),
        None,
        Duration::from_secs(60),
    );
    eprintln!("{}", out.stdout);
    assert_success(&out, "prometheus_metrics.py");
}
