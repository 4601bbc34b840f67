//! Durability across process restarts: SIGKILL and clean SIGTERM shutdown.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::Message;
use sluice_e2e::{Broker, unique_topic};

use crate::common::{
    Rec, assert_no_more, consume_counts, consumer, create_topic, produce_ok, producer,
    wait_topic_ready, watermarks,
};

const PARTITIONS: i32 = 2;

fn recs(prefix: &str, n: usize) -> Vec<Rec> {
    (0..n)
        .map(|i| Rec {
            partition: Some((i % PARTITIONS as usize) as i32),
            key: Some(format!("{prefix}-k{i}").into_bytes()),
            value: Some(format!("{prefix}-value-{i}").into_bytes()),
            ..Rec::default()
        })
        .collect()
}

/// Checks that partition contents start with exactly `want` (in order).
fn check_contents(broker: &Broker, topic: &str, want: &BTreeMap<i32, Vec<Vec<u8>>>) {
    let c = consumer(&broker.bootstrap());
    let expected: BTreeMap<i32, usize> = want.iter().map(|(p, v)| (*p, v.len())).collect();
    for (p, n) in &expected {
        let (lo, hi) = watermarks(&c, topic, *p);
        assert_eq!(lo, 0, "partition {p} low watermark");
        assert_eq!(hi, *n as i64, "partition {p} high watermark");
    }
    let got = consume_counts(&c, topic, &expected, Duration::from_secs(60));
    assert_no_more(&c, Duration::from_millis(300));
    for (p, msgs) in &got {
        let have: Vec<Vec<u8>> = msgs
            .iter()
            .map(|m| m.payload().unwrap_or_default().to_vec())
            .collect();
        assert_eq!(&have, &want[p], "partition {p} contents after restart");
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m.offset(), i as i64, "partition {p} offsets");
        }
    }
}

async fn produce_phase(
    broker: &Broker,
    topic: &str,
    prefix: &str,
    n: usize,
    want: &mut BTreeMap<i32, Vec<Vec<u8>>>,
) {
    let producer = producer(&broker.bootstrap(), &[]);
    let rs = recs(prefix, n);
    let placed = produce_ok(&producer, topic, &rs).await;
    for (r, (p, off)) in rs.iter().zip(&placed) {
        let v = want.entry(*p).or_default();
        assert_eq!(
            *off,
            v.len() as i64,
            "acknowledged offset continues the log"
        );
        v.push(r.value.clone().expect("value"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_sigkill() {
    let mut broker = Broker::start_default();
    let topic = unique_topic("kill");
    create_topic(&broker.bootstrap(), &topic, PARTITIONS).await;
    wait_topic_ready(&broker.bootstrap(), &topic, PARTITIONS as usize);

    let mut want = BTreeMap::new();
    produce_phase(&broker, &topic, "a", 20_000, &mut want).await;
    broker.sigkill();
    broker.restart();
    wait_topic_ready(&broker.bootstrap(), &topic, PARTITIONS as usize);
    check_contents(&broker, &topic, &want);

    // The log continues after recovery (offsets are not reused), and survives a second kill.
    produce_phase(&broker, &topic, "b", 5_000, &mut want).await;
    broker.sigkill();
    broker.restart();
    check_contents(&broker, &topic, &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_cleanly_and_data_survives() {
    let mut broker = Broker::start_default();
    let topic = unique_topic("term");
    create_topic(&broker.bootstrap(), &topic, PARTITIONS).await;
    wait_topic_ready(&broker.bootstrap(), &topic, PARTITIONS as usize);

    let mut want = BTreeMap::new();
    produce_phase(&broker, &topic, "a", 10_000, &mut want).await;
    broker.terminate();
    broker.restart();
    wait_topic_ready(&broker.bootstrap(), &topic, PARTITIONS as usize);
    check_contents(&broker, &topic, &want);

    // Idle broker with open client connections also shuts down cleanly.
    let c = consumer(&broker.bootstrap());
    let _ = watermarks(&c, &topic, 0);
    broker.terminate();
    drop(c);
    broker.restart();
    check_contents(&broker, &topic, &want);
}

/// SIGTERM as soon as the Kafka port accepts connections must still be a clean shutdown:
/// the handler has to be installed before the listener opens. Repeated because the window
/// is short.
#[test]
fn sigterm_right_after_startup_exits_zero() {
    let mut broker = Broker::start_default();
    broker.terminate();
    for _ in 0..7 {
        broker.restart();
        broker.terminate();
    }
}

/// SIGKILL while records are in flight, restart at once: the producer reconnects and
/// finishes. Every acknowledged record is at its acknowledged offset; the log is dense.
/// (Unacknowledged records may be written zero or more times: no idempotence.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_produce_keeps_every_acknowledged_record() {
    stop_during_produce(false).await;
}

/// The same with SIGTERM: the broker exits 0 even with requests in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_produce_exits_zero_and_keeps_every_acknowledged_record() {
    stop_during_produce(true).await;
}

/// Idempotent producer across a SIGKILL: the broker must rebuild producer state
/// (producer id, epoch, last sequences) from the log, so retried batches are recognised as
/// duplicates and every record is in the log exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_idempotent_produce_writes_each_record_once() {
    let (_broker, total, acked) =
        stop_during_produce_with(false, &[("enable.idempotence", "true")]).await;
    assert_eq!(acked, 60_000, "every record acknowledged");
    assert_eq!(total, 60_000, "no duplicates in the log");
}

async fn stop_during_produce(graceful: bool) {
    stop_during_produce_with(graceful, &[]).await;
}

/// Returns the broker (so its log is printed if the caller fails), the records in the log
/// and the records acknowledged.
async fn stop_during_produce_with(
    graceful: bool,
    extra: &[(&str, &str)],
) -> (Broker, usize, usize) {
    use std::collections::HashMap;

    use rdkafka::producer::FutureRecord;

    const N: usize = 60_000;
    let mut broker = Broker::start_default();
    let topic = unique_topic("killmid");
    create_topic(&broker.bootstrap(), &topic, PARTITIONS).await;
    wait_topic_ready(&broker.bootstrap(), &topic, PARTITIONS as usize);

    let mut settings = vec![("linger.ms", "2"), ("batch.num.messages", "500")];
    settings.extend_from_slice(extra);
    let producer = producer(&broker.bootstrap(), &settings);
    let values: Vec<String> = (0..N).map(|i| format!("mid-{i:06}")).collect();
    let mut futures = Vec::with_capacity(N);
    for (i, v) in values.iter().enumerate() {
        let rec: FutureRecord<'_, (), str> = FutureRecord::to(&topic)
            .payload(v.as_str())
            .partition((i % PARTITIONS as usize) as i32);
        futures.push(producer.send_result(rec).expect("enqueue"));
    }
    let mut acked: HashMap<(i32, i64), usize> = HashMap::new();
    let mut failed = 0usize;
    // Stop the broker three times while records are in flight; each time in-flight batches
    // may be retried against the restarted broker.
    let mut kill_points = vec![10_000usize, 25_000, 40_000].into_iter().peekable();
    let mut kills = 0;
    for (i, f) in futures.into_iter().enumerate() {
        match f.await.expect("delivery future") {
            Ok(pl) => {
                assert!(acked.insert(pl, i).is_none(), "offset {pl:?} acked twice");
            }
            Err(_) => failed += 1,
        }
        if kill_points.next_if(|k| acked.len() >= *k).is_some() {
            if graceful {
                broker.terminate();
            } else {
                broker.sigkill();
            }
            broker.restart();
            kills += 1;
        }
    }
    assert_eq!(kills, 3, "kill points reached");
    eprintln!("acked {} records, {failed} failed", acked.len());

    let c = consumer(&broker.bootstrap());
    let mut expected = BTreeMap::new();
    for p in 0..PARTITIONS {
        let (lo, hi) = watermarks(&c, &topic, p);
        assert_eq!(lo, 0);
        expected.insert(p, hi as usize);
    }
    let got = consume_counts(&c, &topic, &expected, Duration::from_secs(120));
    eprintln!(
        "log holds {} records (more than acked = retried duplicates)",
        expected.values().sum::<usize>()
    );
    for (p, msgs) in &got {
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m.offset(), i as i64, "partition {p}: dense offsets");
            if let Some(idx) = acked.get(&(*p, m.offset())) {
                assert_eq!(
                    m.payload(),
                    Some(values[*idx].as_bytes()),
                    "partition {p} offset {}: acknowledged record",
                    m.offset()
                );
            }
        }
    }
    for ((p, off), idx) in &acked {
        assert!(
            (*off as usize) < got[p].len(),
            "acknowledged record {idx} at {p}/{off} lost (partition has {})",
            got[p].len()
        );
    }
    (broker, expected.values().sum::<usize>(), acked.len())
}
