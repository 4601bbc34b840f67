//! rdkafka helpers shared by the end-to-end cases.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

/// Generous timeout for client operations against a debug-build broker.
pub(crate) const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// Base client configuration: fast failure, quiet logs.
pub(crate) fn base_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "30000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500");
    c
}

/// An admin client.
pub(crate) fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    base_config(bootstrap)
        .create()
        .expect("create admin client")
}

/// Admin options with a generous operation timeout.
pub(crate) fn admin_opts() -> AdminOptions {
    AdminOptions::new()
        .operation_timeout(Some(Timeout::After(OP_TIMEOUT)))
        .request_timeout(Some(Timeout::After(OP_TIMEOUT)))
}

/// Creates a topic and asserts success.
pub(crate) async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let res = admin(bootstrap)
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &admin_opts(),
        )
        .await
        .expect("CreateTopics request");
    assert_eq!(res.len(), 1, "one result per topic: {res:?}");
    assert_eq!(res[0], Ok(topic.to_owned()), "create topic {topic}");
}

/// Waits until metadata shows `topic` with `partitions` partitions that all have a leader.
pub(crate) fn wait_topic_ready(bootstrap: &str, topic: &str, partitions: usize) {
    let consumer = consumer(bootstrap);
    let deadline = Instant::now() + OP_TIMEOUT;
    let mut last = String::new();
    while Instant::now() < deadline {
        match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(md) => {
                let t = md.topics().iter().find(|t| t.name() == topic);
                if let Some(t) = t {
                    if t.error().is_none()
                        && t.partitions().len() == partitions
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                    {
                        return;
                    }
                    last = format!("error={:?} partitions={}", t.error(), t.partitions().len());
                } else {
                    last = "topic missing".to_owned();
                }
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("topic {topic} not ready with {partitions} partitions: {last}");
}

/// A producer with `acks=all` and the given extra settings.
pub(crate) fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = base_config(bootstrap);
    c.set("acks", "all")
        .set("message.timeout.ms", "60000")
        .set("queue.buffering.max.messages", "1000000")
        .set("linger.ms", "5");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("create producer")
}

/// A consumer without a group (assign-only), auto commit off.
pub(crate) fn consumer(bootstrap: &str) -> BaseConsumer {
    consumer_with(bootstrap, &[])
}

/// A group-less consumer with extra settings.
pub(crate) fn consumer_with(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut c = base_config(bootstrap);
    // librdkafka's assign() needs a group.id (else "Local: Unknown group"), but no group is
    // joined and nothing is committed: the broker has no consumer-group support yet.
    c.set("group.id", "sluice-e2e-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("create consumer")
}

/// A record to produce.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rec {
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Where a record landed.
pub(crate) type Placement = (i32, i64);

/// Produces all records, keeping the send order, with a bounded number of outstanding
/// delivery futures. Returns one delivery result per record, in order.
pub(crate) async fn produce_all(
    producer: &FutureProducer,
    topic: &str,
    recs: &[Rec],
) -> Vec<Result<Placement, String>> {
    const WINDOW: usize = 20_000;
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    let mut out = Vec::with_capacity(recs.len());
    for r in recs {
        if pending.len() >= WINDOW {
            out.push(await_delivery(pending.pop_front().expect("non-empty")).await);
        }
        loop {
            let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
            if let Some(k) = &r.key {
                fr = fr.key(k.as_slice());
            }
            if let Some(v) = &r.value {
                fr = fr.payload(v.as_slice());
            }
            if let Some(p) = r.partition {
                fr = fr.partition(p);
            }
            if let Some(ts) = r.timestamp {
                fr = fr.timestamp(ts);
            }
            if !r.headers.is_empty() {
                let mut h = rdkafka::message::OwnedHeaders::new_with_capacity(r.headers.len());
                for (k, v) in &r.headers {
                    h = h.insert(rdkafka::message::Header {
                        key: k,
                        value: v.as_ref(),
                    });
                }
                fr = fr.headers(h);
            }
            match producer.send_result(fr) {
                Ok(f) => {
                    pending.push_back(f);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    match pending.pop_front() {
                        Some(f) => out.push(await_delivery(f).await),
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err((e, _)) => {
                    out.push(Err(format!("enqueue failed: {e}")));
                    break;
                }
            }
        }
    }
    while let Some(f) = pending.pop_front() {
        out.push(await_delivery(f).await);
    }
    out
}

async fn await_delivery(f: DeliveryFuture) -> Result<Placement, String> {
    match f.await {
        Ok(Ok(p)) => Ok(p),
        Ok(Err((e, _))) => Err(e.to_string()),
        Err(_) => Err("delivery future canceled".to_owned()),
    }
}

/// Produces and asserts every delivery report is Ok.
pub(crate) async fn produce_ok(
    producer: &FutureProducer,
    topic: &str,
    recs: &[Rec],
) -> Vec<Placement> {
    let res = produce_all(producer, topic, recs).await;
    let errors: Vec<_> = res
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e.clone())))
        .collect();
    assert!(
        errors.is_empty(),
        "{} of {} deliveries failed, first: {:?}",
        errors.len(),
        res.len(),
        &errors[..errors.len().min(5)]
    );
    res.into_iter().map(|r| r.expect("checked")).collect()
}

/// Reads partitions from `Offset::Beginning` until each has delivered at least
/// `expected[p]` records (or the deadline passes), then returns what arrived, by partition.
pub(crate) fn consume_counts(
    consumer: &BaseConsumer,
    topic: &str,
    expected: &BTreeMap<i32, usize>,
    timeout: Duration,
) -> BTreeMap<i32, Vec<OwnedMessage>> {
    let mut tpl = TopicPartitionList::new();
    for p in expected.keys() {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .expect("add partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut got: BTreeMap<i32, Vec<OwnedMessage>> =
        expected.keys().map(|p| (*p, Vec::new())).collect();
    let done = |got: &BTreeMap<i32, Vec<OwnedMessage>>| {
        expected
            .iter()
            .all(|(p, n)| got.get(p).map_or(0, |v| v.len()) >= *n)
    };
    let deadline = Instant::now() + timeout;
    let mut errors = Vec::new();
    while !done(&got) && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                got.entry(m.partition()).or_default().push(m.detach());
            }
            Some(Err(e)) if errors.len() < 20 => errors.push(e.to_string()),
            Some(Err(_)) | None => {}
        }
    }
    if !done(&got) {
        let counts: BTreeMap<i32, usize> = got.iter().map(|(p, v)| (*p, v.len())).collect();
        panic!(
            "consume timed out: expected {expected:?}, got {counts:?}, consumer errors: {errors:?}"
        );
    }
    got
}

/// Polls a little longer and asserts nothing more arrives (no duplicates past the end).
pub(crate) fn assert_no_more(consumer: &BaseConsumer, wait: Duration) {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            panic!(
                "unexpected extra record at partition {} offset {}",
                m.partition(),
                m.offset()
            );
        }
    }
}

/// Low and high watermarks of a partition.
pub(crate) fn watermarks(consumer: &BaseConsumer, topic: &str, partition: i32) -> (i64, i64) {
    consumer
        .fetch_watermarks(topic, partition, OP_TIMEOUT)
        .unwrap_or_else(|e| panic!("fetch_watermarks {topic}/{partition}: {e}"))
}

/// Headers of a message as owned pairs.
pub(crate) fn headers_of(m: &OwnedMessage) -> Vec<(String, Option<Vec<u8>>)> {
    match m.headers() {
        None => Vec::new(),
        Some(h) => h
            .iter()
            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
            .collect(),
    }
}

/// Basic round trip: `n` records over `partitions` partitions, consumed back in order.
pub(crate) async fn basic_roundtrip(bootstrap: &str, partitions: i32, n: usize) {
    let topic = sluice_e2e::unique_topic("basic");
    create_topic(bootstrap, &topic, partitions).await;
    wait_topic_ready(bootstrap, &topic, partitions as usize);
    let producer = producer(bootstrap, &[]);
    let recs: Vec<Rec> = (0..n)
        .map(|i| Rec {
            partition: Some((i % partitions as usize) as i32),
            key: Some(format!("k{i}").into_bytes()),
            value: Some(format!("value-{i}").into_bytes()),
            ..Rec::default()
        })
        .collect();
    let placed = produce_ok(&producer, &topic, &recs).await;
    for (i, (p, _)) in placed.iter().enumerate() {
        assert_eq!(*p, (i % partitions as usize) as i32);
    }
    let mut expected = BTreeMap::new();
    for p in 0..partitions {
        expected.insert(
            p,
            n / partitions as usize + usize::from((p as usize) < n % partitions as usize),
        );
    }
    let c = consumer(bootstrap);
    let got = consume_counts(&c, &topic, &expected, OP_TIMEOUT);
    for (p, msgs) in &got {
        let want: Vec<Vec<u8>> = (0..n)
            .filter(|i| (i % partitions as usize) as i32 == *p)
            .map(|i| format!("value-{i}").into_bytes())
            .collect();
        let have: Vec<Vec<u8>> = msgs
            .iter()
            .map(|m| m.payload().unwrap_or_default().to_vec())
            .collect();
        assert_eq!(have, want, "partition {p} contents");
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(
                m.offset(),
                i as i64,
                "partition {p} offsets are dense from 0"
            );
        }
    }
}

/// Output of [`run_cmd`].
#[derive(Debug)]
pub(crate) struct CmdOutput {
    pub(crate) status: std::process::ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs a command with optional stdin and a deadline (killed and panics on timeout).
pub(crate) fn run_cmd(
    cmd: &mut std::process::Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> CmdOutput {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
    let input = stdin.map(<[u8]>::to_vec);
    let mut sin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let (Some(s), Some(input)) = (sin.as_mut(), input) {
            let _ = s.write_all(&input);
        }
        drop(sin);
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let r_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let r_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = String::from_utf8_lossy(&r_out.join().unwrap_or_default()).into_owned();
            let stderr = String::from_utf8_lossy(&r_err.join().unwrap_or_default()).into_owned();
            panic!(
                "{desc} timed out after {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                tail(&stdout),
                tail(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    CmdOutput {
        status,
        stdout: String::from_utf8_lossy(&r_out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&r_err.join().unwrap_or_default()).into_owned(),
    }
}

/// Last 4 KiB of a string, for failure messages.
pub(crate) fn tail(s: &str) -> &str {
    let mut start = s.len().saturating_sub(4096);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Asserts the command succeeded, printing its output otherwise.
pub(crate) fn assert_success(out: &CmdOutput, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        tail(&out.stdout),
        tail(&out.stderr)
    );
}
