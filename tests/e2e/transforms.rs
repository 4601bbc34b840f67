//! Pipelines inside the broker, checked with unmodified clients: librdkafka produces
//! IoT sensor readings, a pipeline deployed with `sluice transform deploy` filters bad
//! readings, routes anomalies to `alerts`, and computes a per-device 10 s tumbling
//! average and a 30 s moving maximum (hopping every 10 s); a librdkafka consumer checks
//! every output record against a reference computation here. The broker is SIGKILLed
//! while the pipeline is working and the final output must still be exactly right: no
//! record lost, none twice.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use sluice_e2e::{Broker, BrokerOptions};
use sluice_protocol::partitioner::partition_for_key;

use crate::cli::sluice;
use crate::common::{assert_success, consumer, create_topic, producer};

const INPUT_PARTITIONS: i32 = 3;
const LATENESS_MS: i64 = 2_000;
const TUMBLING_MS: i64 = 10_000;
const HOP_SIZE_MS: i64 = 30_000;
const HOP_ADVANCE_MS: i64 = 10_000;

const SPEC: &str = r#"
name = "iot"
inputs = ["readings"]
time = "ts"
start = "earliest"
dead_letter = "readings-dlq"
checkpoint_interval = "200ms"

[[step]]
name = "valid"
filter = "exists(device) && exists(temperature) && exists(humidity) && temperature >= -50 && temperature <= 150 && humidity >= 0 && humidity <= 100"

[[step]]
name = "anomalies"
route = [{ when = "temperature > 80", to = "alerts", keep = true }]

[[step]]
key_by = "device"

[[step]]
name = "avg-10s"
window = { type = "tumbling", size = "10s", lateness = "2s" }
aggregate = { avg_temperature = "avg(temperature)", readings = "count()" }
to = "readings-avg"

[[step]]
name = "max-30s"
window = { type = "hopping", size = "30s", advance = "10s", lateness = "2s" }
aggregate = { max_temperature = "max(temperature)" }
to = "readings-max"
"#;

/// One produced reading: its key and JSON text.
#[derive(Debug, Clone)]
struct Reading {
    device: String,
    value: String,
}

/// Deterministic readings: `n` of them from `start_ts`, 12 devices, with bad, malformed,
/// out-of-order and late ones mixed in.
fn readings(n: usize, first: usize, start_ts: i64) -> Vec<Reading> {
    (first..first + n)
        .map(|i| {
            let device = format!("dev-{}", (i * 7) % 12);
            let ts = start_ts + i64::try_from(i).unwrap() * 50;
            let temperature = 15.0 + ((i * 37) % 700) as f64 / 10.0; // 15.0 ..= 84.9
            let humidity = (i * 13) % 90;
            let value = match i % 97 {
                3 => "{not json".to_owned(),
                5 => json!({ "device": device, "temperature": temperature }).to_string(), // no ts
                7 => json!({ "device": device, "temperature": 999.0, "humidity": humidity, "ts": ts })
                    .to_string(), // out of range: filtered
                11 => json!({ "temperature": temperature, "humidity": humidity, "ts": ts }).to_string(),
                13 => json!({ "device": device, "temperature": temperature, "humidity": humidity, "ts": ts - 1_500 })
                    .to_string(), // out of order, within lateness
                17 => json!({ "device": device, "temperature": temperature, "humidity": humidity, "ts": ts - 40_000 })
                    .to_string(), // late
                _ => json!({ "device": device, "temperature": temperature, "humidity": humidity, "ts": ts })
                    .to_string(),
            };
            Reading { device, value }
        })
        .collect()
}

/// A device name whose readings land in `partition`.
fn device_in(partition: i32) -> String {
    (0..)
        .map(|i| format!("sentinel-{i}"))
        .find(|d| partition_for_key(d.as_bytes(), INPUT_PARTITIONS) == partition)
        .unwrap()
}

/// What the pipeline must write.
#[derive(Debug, Default)]
struct Expected {
    avg: Vec<(String, i64, i64, f64, i64)>,
    max: Vec<(String, i64, i64, f64)>,
    alerts: Vec<Value>,
    dead_letters: usize,
}

/// The pipeline's semantics, computed directly: per input partition in produce order,
/// event time from `ts`, watermark = greatest event time seen in the partition, a
/// window closes once the watermark reaches its end plus the lateness, and a record
/// whose window has closed is dropped from it.
fn reference(all: &[Reading]) -> Expected {
    let mut expected = Expected::default();
    let mut by_partition: BTreeMap<i32, Vec<&Reading>> = BTreeMap::new();
    for r in all {
        by_partition
            .entry(partition_for_key(r.device.as_bytes(), INPUT_PARTITIONS))
            .or_default()
            .push(r);
    }
    for records in by_partition.values() {
        let mut watermark: Option<i64> = None;
        let mut tumbling: BTreeMap<(i64, i64, String), (f64, i64)> = BTreeMap::new();
        let mut hopping: BTreeMap<(i64, i64, String), f64> = BTreeMap::new();
        let open = |end: i64, wm: Option<i64>| wm.is_none_or(|w| end + LATENESS_MS > w);
        for r in records {
            let Ok(v) = serde_json::from_str::<Value>(&r.value) else {
                expected.dead_letters += 1;
                continue;
            };
            let Some(ts) = v["ts"].as_i64() else {
                expected.dead_letters += 1;
                continue;
            };
            let t = v["temperature"].as_f64();
            let h = v["humidity"].as_f64();
            let valid = v.get("device").is_some()
                && t.is_some_and(|t| (-50.0..=150.0).contains(&t))
                && h.is_some_and(|h| (0.0..=100.0).contains(&h));
            if valid {
                let t = t.unwrap();
                let device = v["device"].as_str().unwrap().to_owned();
                if t > 80.0 {
                    expected.alerts.push(v.clone());
                }
                let start = ts.div_euclid(TUMBLING_MS) * TUMBLING_MS;
                let end = start + TUMBLING_MS;
                if open(end, watermark) {
                    let w = tumbling
                        .entry((end, start, device.clone()))
                        .or_insert((0.0, 0));
                    w.0 += t;
                    w.1 += 1;
                }
                let last_start = ts.div_euclid(HOP_ADVANCE_MS) * HOP_ADVANCE_MS;
                let mut start = last_start - HOP_SIZE_MS + HOP_ADVANCE_MS;
                while start <= last_start {
                    let end = start + HOP_SIZE_MS;
                    if open(end, watermark) {
                        let m = hopping
                            .entry((end, start, device.clone()))
                            .or_insert(f64::MIN);
                        *m = m.max(t);
                    }
                    start += HOP_ADVANCE_MS;
                }
            }
            if watermark.is_none_or(|w| ts > w) {
                watermark = Some(ts);
                let closed: Vec<_> = tumbling
                    .keys()
                    .filter(|(end, _, _)| end + LATENESS_MS <= ts)
                    .cloned()
                    .collect();
                for key in closed {
                    let (sum, n) = tumbling.remove(&key).unwrap();
                    expected.avg.push((key.2, key.1, key.0, sum / n as f64, n));
                }
                let closed: Vec<_> = hopping
                    .keys()
                    .filter(|(end, _, _)| end + LATENESS_MS <= ts)
                    .cloned()
                    .collect();
                for key in closed {
                    let max = hopping.remove(&key).unwrap();
                    expected.max.push((key.2, key.1, key.0, max));
                }
            }
        }
    }
    expected
}

async fn produce(broker: &Broker, readings: &[Reading]) {
    produce_to(&broker.bootstrap(), readings).await;
}

async fn produce_to(bootstrap: &str, readings: &[Reading]) {
    let producer = producer(
        bootstrap,
        &[
            ("enable.idempotence", "true"),
            ("partitioner", "murmur2_random"),
        ],
    );
    let mut pending = Vec::new();
    for r in readings {
        let record = FutureRecord::to("readings")
            .key(&r.device)
            .payload(&r.value);
        pending.push(producer.send_result(record).expect("queue"));
    }
    for p in pending {
        p.await.expect("delivered").expect("produced");
    }
}

/// Every record of every partition of `topic` until `want` have arrived, then a little
/// longer to catch any extra.
fn consume_all(broker: &Broker, topic: &str, partitions: i32, want: usize) -> Vec<OwnedMessage> {
    let c: BaseConsumer = consumer(&broker.bootstrap());
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut settle: Option<Instant> = None;
    while Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            got.push(m.detach());
        }
        if got.len() >= want {
            let since = *settle.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(2) {
                break;
            }
        }
    }
    got
}

fn json_of(m: &OwnedMessage) -> Value {
    serde_json::from_slice(m.payload().unwrap_or_default()).expect("output is JSON")
}

fn deploy(broker: &Broker, dir: &std::path::Path) {
    let file = dir.join("iot.toml");
    std::fs::write(&file, SPEC).unwrap();
    let admin = broker.admin_addr().to_string();
    let out = sluice(
        broker,
        &[
            "transform",
            "deploy",
            file.to_str().unwrap(),
            "--admin-addr",
            &admin,
        ],
        None,
    );
    assert_success(&out, "transform deploy");
    assert!(
        out.stdout.contains("deployed pipeline iot"),
        "{}",
        out.stdout
    );
}

fn describe(broker: &Broker) -> Value {
    let admin = broker.admin_addr().to_string();
    let out = sluice(
        broker,
        &[
            "--format",
            "json",
            "transform",
            "describe",
            "iot",
            "--admin-addr",
            &admin,
        ],
        None,
    );
    assert_success(&out, "transform describe");
    serde_json::from_str(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iot_pipeline_is_exactly_right_across_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(BrokerOptions::smp(2));
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "readings", INPUT_PARTITIONS).await;
    create_topic(&bootstrap, "alerts", 1).await;
    create_topic(&bootstrap, "readings-avg", 2).await;
    create_topic(&bootstrap, "readings-max", 2).await;
    create_topic(&bootstrap, "readings-dlq", 1).await;
    deploy(&broker, dir.path());

    let start_ts = 1_700_000_000_000;
    let first = readings(6_000, 0, start_ts);
    produce(&broker, &first).await;
    // Kill while readings are still arriving and the pipeline is working on them; the
    // idempotent producer retries across the restart.
    let second = readings(6_000, 6_000, start_ts);
    let producing = {
        let bootstrap = broker.bootstrap();
        let second = second.clone();
        tokio::spawn(async move { produce_to(&bootstrap, &second).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    broker.sigkill();
    broker.restart();
    producing.await.expect("producer task");
    // One reading per partition far ahead closes every window before it.
    let last_ts = start_ts + 12_000 * 50;
    let sentinels: Vec<Reading> = (0..INPUT_PARTITIONS)
        .map(|p| {
            let device = device_in(p);
            let value = json!({ "device": device, "temperature": 20.0, "humidity": 50, "ts": last_ts + 120_000 })
                .to_string();
            Reading { device, value }
        })
        .collect();
    produce(&broker, &sentinels).await;

    let all: Vec<Reading> = first.into_iter().chain(second).chain(sentinels).collect();
    let expected = reference(&all);
    assert!(expected.avg.len() > 100 && expected.max.len() > 100 && !expected.alerts.is_empty());

    let avg = consume_all(&broker, "readings-avg", 2, expected.avg.len());
    let mut got_avg: Vec<(String, i64, i64, f64, i64)> = avg
        .iter()
        .map(|m| {
            let v = json_of(m);
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            (
                key,
                v["window_start"].as_i64().unwrap(),
                v["window_end"].as_i64().unwrap(),
                v["avg_temperature"].as_f64().unwrap(),
                v["readings"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut want_avg = expected.avg.clone();
    let order = |a: &(String, i64, i64, f64, i64), b: &(String, i64, i64, f64, i64)| {
        (&a.0, a.1).cmp(&(&b.0, b.1))
    };
    got_avg.sort_by(order);
    want_avg.sort_by(order);
    assert_eq!(got_avg.len(), want_avg.len(), "number of 10 s averages");
    for (got, want) in got_avg.iter().zip(&want_avg) {
        assert_eq!(
            (&got.0, got.1, got.2, got.4),
            (&want.0, want.1, want.2, want.4)
        );
        assert!(
            (got.3 - want.3).abs() < 1e-9,
            "average of {want:?}: got {}",
            got.3
        );
    }
    // Keyed by device: each device's windows are in one partition, in window order.
    for m in &avg {
        let key = m.key().unwrap_or_default();
        assert_eq!(
            m.partition(),
            partition_for_key(key, 2),
            "output partitioned by key"
        );
    }

    let max = consume_all(&broker, "readings-max", 2, expected.max.len());
    let mut got_max: Vec<(String, i64, i64, f64)> = max
        .iter()
        .map(|m| {
            let v = json_of(m);
            (
                String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                v["window_start"].as_i64().unwrap(),
                v["window_end"].as_i64().unwrap(),
                v["max_temperature"].as_f64().unwrap(),
            )
        })
        .collect();
    let mut want_max = expected.max.clone();
    got_max.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    want_max.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    assert_eq!(got_max, want_max, "30 s moving maxima");

    let alerts = consume_all(&broker, "alerts", 1, expected.alerts.len());
    let mut got_alerts: Vec<String> = alerts.iter().map(|m| json_of(m).to_string()).collect();
    let mut want_alerts: Vec<String> = expected.alerts.iter().map(Value::to_string).collect();
    got_alerts.sort();
    want_alerts.sort();
    assert_eq!(got_alerts, want_alerts, "alerts");

    let dead = consume_all(&broker, "readings-dlq", 1, expected.dead_letters);
    assert_eq!(dead.len(), expected.dead_letters, "dead letters");

    let described = describe(&broker);
    assert_eq!(described["state"], "running");
    assert_eq!(described["lag"], 0, "{described:#}");
    assert_eq!(described["tasks"].as_array().unwrap().len(), 3);
}
