//! `transformbench`: an in-broker pipeline against the same logic in an external Rust
//! worker (rdkafka consumer + producer), on a running Sluice broker.
//!
//! The pipeline: IoT readings keyed by device (`{"device","temperature","humidity","ts",
//! "sent_at"}`), filtered on temperature, mapped (`temp_f` added, `humidity` dropped),
//! then a 1 s tumbling window per key on event time `ts` giving
//! `{"window_start","window_end","avg_f","n","sent_at"}` keyed by device. The in-broker
//! side is deployed through the admin API (`PUT /v1/transforms/{name}`); the external
//! side runs in this process: a `BaseConsumer` in a consumer group and a `FutureProducer`,
//! with the same filter, map and window (watermark per input partition = the largest
//! event time seen on it; a window closes when the watermark reaches its end).
//!
//! Throughput mode: preloads `--records` readings (event time 1 ms apart), then times
//! the pipeline (deploy → every record read, lag 0) and then the worker (start → every
//! record consumed and every output acknowledged), both reading the preload from the
//! beginning and emitting each window once, when it closes.
//!
//! ```text
//! transformbench --brokers 127.0.0.1:9092 --admin 127.0.0.1:9644 \
//!     throughput --records 1000000 --partitions 2 --devices 1000
//! ```
//!
//! Latency mode: for the pipeline, then the worker (fresh topics each), with
//! `emit = "update"` (one output per input record), produces `--rate` readings/s for
//! `--duration-s` seconds carrying `sent_at` = the producer's clock, while a consumer of
//! the output topic measures now − `sent_at` per output. The first `--warmup-s` seconds of
//! sends are not counted. A window's result re-emitted unchanged when it closes (same
//! key, window and count as the update before it) is not counted either: it answers no
//! new input record.
//!
//! ```text
//! transformbench --brokers 127.0.0.1:9092 --admin 127.0.0.1:9644 \
//!     latency --rate 5000 --duration-s 20 --partitions 2 --devices 1000
//! ```
//!
//! `--broker-pid` adds the broker's CPU seconds per phase (from `/proc`). Both modes end
//! with one line starting with `RESULT `.

/// The same allocator as the broker, so the external worker is not slowed by a slower one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{
    BaseRecord, DeliveryFuture, DeliveryResult, FutureProducer, FutureRecord, Producer,
    ProducerContext, ThreadedProducer,
};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// A phase fails when its progress stands still this long.
const STALL: Duration = Duration::from_secs(60);
/// Window length (the spec's `size = "1s"`).
const WINDOW_MS: i64 = 1000;
/// How often the pipeline is described while it runs.
const DESCRIBE_EVERY: Duration = Duration::from_millis(50);

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "transformbench",
    about = "In-broker pipeline vs external worker (rdkafka)"
)]
struct Args {
    /// Bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// The broker's admin API address.
    #[arg(long, default_value = "127.0.0.1:9644")]
    admin: String,
    /// The broker's process id, to report its CPU time per phase.
    #[arg(long)]
    broker_pid: Option<u32>,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Records per second through the pipeline and through the worker, from a preload.
    Throughput {
        /// Records to preload.
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        /// Partitions of the input and output topics.
        #[arg(long, default_value_t = 2)]
        partitions: i32,
        /// Distinct device keys.
        #[arg(long, default_value_t = 1000)]
        devices: u64,
    },
    /// Send → output latency at a fixed produce rate, one output per record.
    Latency {
        /// Records per second to produce.
        #[arg(long, default_value_t = 5000)]
        rate: u64,
        /// Seconds to produce.
        #[arg(long, default_value_t = 20)]
        duration_s: u64,
        /// Partitions of the input and output topics.
        #[arg(long, default_value_t = 2)]
        partitions: i32,
        /// Distinct device keys.
        #[arg(long, default_value_t = 1000)]
        devices: u64,
        /// Seconds of sends at the start not counted.
        #[arg(long, default_value_t = 2)]
        warmup_s: u64,
    },
}

/// When window results are emitted (the spec's `emit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Emit {
    /// Once, when the window closes.
    Close,
    /// After every record, and when the window closes.
    Update,
}

impl Emit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Close => "close",
            Self::Update => "update",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Topics, clocks, CPU time
// ---------------------------------------------------------------------------------------

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A name suffix no earlier run used.
fn unique_suffix(tag: &str) -> String {
    format!("{tag}-{}-{}", unix_micros() / 1000, std::process::id())
}

fn create_topics(brokers: &str, topics: &[&str], partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("admin client")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let results = rt.block_on(admin.create_topics(
        &new,
        &AdminOptions::new().operation_timeout(Some(Timeout::After(OP_TIMEOUT))),
    ))?;
    for r in results {
        if let Err((name, code)) = r {
            bail!("create topic {name}: {code}");
        }
    }
    Ok(())
}

/// Records in `topic` (sum of high watermarks; the topics start empty).
fn topic_records(brokers: &str, topic: &str, partitions: i32) -> Result<i64> {
    let c = assign_only_consumer(brokers)?;
    let mut total = 0;
    for p in 0..partitions {
        let (low, high) = c
            .fetch_watermarks(topic, p, OP_TIMEOUT)
            .with_context(|| format!("watermarks of {topic}/{p}"))?;
        total += high - low;
    }
    Ok(total)
}

fn assign_only_consumer(brokers: &str) -> Result<BaseConsumer> {
    // assign() needs a group.id in librdkafka; no group is joined and nothing committed.
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "transformbench-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "10")
        .set("fetch.min.bytes", "1")
        .create()
        .context("create consumer")
}

/// CPU seconds used so far by this process and the broker.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    bench: f64,
    broker: Option<f64>,
}

impl Cpu {
    fn now(broker_pid: Option<u32>) -> Self {
        Self {
            bench: cpu_seconds("self").unwrap_or(f64::NAN),
            broker: broker_pid.and_then(|pid| cpu_seconds(&pid.to_string())),
        }
    }

    fn since(self, before: Self) -> Self {
        Self {
            bench: self.bench - before.bench,
            broker: self.broker.zip(before.broker).map(|(a, b)| a - b),
        }
    }

    fn describe(self) -> String {
        match self.broker {
            Some(b) => format!("CPU: bench {:.2} s, broker {b:.2} s", self.bench),
            None => format!("CPU: bench {:.2} s", self.bench),
        }
    }
}

/// utime + stime of `/proc/<pid>/stat`, in seconds (USER_HZ = 100).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

// ---------------------------------------------------------------------------------------
// Admin API
// ---------------------------------------------------------------------------------------

/// One request to the admin API; the status and the JSON answer.
fn http(admin: &str, method: &str, path: &str, body: &str) -> Result<(u16, Value)> {
    let mut s = TcpStream::connect(admin).with_context(|| format!("connect to {admin}"))?;
    s.set_read_timeout(Some(OP_TIMEOUT))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {admin}\r\nContent-Type: application/toml\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .with_context(|| format!("{method} {path}"))?;
    let text = String::from_utf8(raw).context("answer is not UTF-8")?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("{method} {path}: no end of headers in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{method} {path}: bad status line in {head:?}"))?;
    let value = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body)
            .with_context(|| format!("{method} {path}: answer is not JSON: {body}"))?
    };
    Ok((status, value))
}

/// A request that must answer 200.
fn admin_ok(admin: &str, method: &str, path: &str, body: &str) -> Result<Value> {
    let (status, value) = http(admin, method, path, body)?;
    if status != 200 {
        let message = value
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| value.to_string(), str::to_owned);
        bail!("{method} {path}: HTTP {status}: {message}");
    }
    Ok(value)
}

fn spec(name: &str, input: &str, output: &str, emit: Emit) -> String {
    format!(
        r#"name = "{name}"
inputs = ["{input}"]
time = "ts"
start = "earliest"
output = "{output}"
checkpoint_interval = "1s"
[[step]]
filter = "temperature > -50 && temperature < 150"
[[step]]
map = {{ set = {{ temp_f = "temperature * 1.8 + 32" }}, drop = ["humidity"] }}
[[step]]
window = {{ type = "tumbling", size = "1s", emit = "{emit}" }}
aggregate = {{ avg_f = "avg(temp_f)", n = "count()", sent_at = "last(sent_at)" }}
"#,
        emit = emit.as_str()
    )
}

fn as_u64(v: &Value, field: &str) -> Result<u64> {
    v[field]
        .as_u64()
        .with_context(|| format!("describe has no {field}: {v}"))
}

fn as_i64(v: &Value, field: &str) -> Result<i64> {
    v[field]
        .as_i64()
        .with_context(|| format!("describe has no {field}: {v}"))
}

/// The figures of a describe answer worth printing, and any task's last error.
fn describe_summary(d: &Value) -> String {
    let errors: Vec<String> = d["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| !t["last_error"].is_null())
        .map(|t| format!("{}/{}: {}", t["topic"], t["partition"], t["last_error"]))
        .collect();
    format!(
        "records_in={} records_out={} dropped={} dead_letters={} lag={} \
         latency_p50_s={} latency_p99_s={} tasks={} restarts={} errors={errors:?}",
        d["records_in"],
        d["records_out"],
        d["dropped"],
        d["dead_letters"],
        d["lag"],
        d["latency_p50_seconds"],
        d["latency_p99_seconds"],
        d["tasks"].as_array().map_or(0, Vec::len),
        d["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["restarts"].as_u64())
            .sum::<u64>(),
    )
}

// ---------------------------------------------------------------------------------------
// Readings
// ---------------------------------------------------------------------------------------

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Reading `i`: its key and JSON value. One in a hundred is out of the filter's range.
fn reading(i: u64, devices: u64, ts_ms: u64, sent_at_us: u64, value: &mut String) -> String {
    use std::fmt::Write as _;
    let h = mix(i);
    let device = h % devices;
    let temperature = if i % 100 == 99 {
        180.0
    } else {
        10.0 + (h >> 20) as f64 % 300.0 / 10.0
    };
    let humidity = 20 + (h >> 40) % 60;
    value.clear();
    // Writing into a String cannot fail.
    let _ = write!(
        value,
        r#"{{"device":"d{device}","temperature":{temperature:.1},"humidity":{humidity},"ts":{ts_ms},"sent_at":{sent_at_us}}}"#
    );
    format!("d{device}")
}

/// Producer context counting deliveries.
#[derive(Default)]
struct Deliveries {
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Deliveries {
    fn check(&self, sent: u64) -> Result<()> {
        let failed = self.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let first = self
                .first_error
                .lock()
                .map_err(|_| anyhow!("error lock poisoned"))?
                .clone();
            bail!("{failed} of {sent} records not delivered; first error: {first:?}");
        }
        let acked = self.acked.load(Ordering::Relaxed);
        if acked != sent {
            bail!("{acked} of {sent} records acknowledged in time");
        }
        Ok(())
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock()
                    && first.is_none()
                {
                    *first = Some(e.to_string());
                }
            }
        }
    }
}

fn input_producer(brokers: &str, linger_ms: u32) -> Result<ThreadedProducer<Deliveries>> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("linger.ms", linger_ms.to_string())
        .set("batch.size", "1000000")
        .set("partitioner", "murmur2_random")
        .set("compression.type", "none")
        .create_with_context(Deliveries::default())
        .context("create producer")
}

/// Sends one record, waiting while librdkafka's queue is full.
fn send_input(
    producer: &ThreadedProducer<Deliveries>,
    topic: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    let mut record = BaseRecord::to(topic).key(key).payload(value);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e).context("produce input"),
        }
    }
}

/// Waits until all `sent` records are answered (or `timeout` passes), then fails unless
/// all were acknowledged. (rdkafka's `flush` counts its timeout down by 100 ms per
/// poll, however soon each poll returns, so with many delivery reports queued it gives
/// up far sooner than asked.)
fn wait_for_acks(
    producer: &ThreadedProducer<Deliveries>,
    sent: u64,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    producer.context().check(sent)
}

/// Produces `records` readings, event time 1 ms apart, and waits for every ack.
fn preload(brokers: &str, topic: &str, records: u64, devices: u64) -> Result<Duration> {
    let producer = input_producer(brokers, 5)?;
    let start = Instant::now();
    let base_ts = unix_micros() / 1000;
    let mut value = String::new();
    for i in 0..records {
        let key = reading(i, devices, base_ts + i, unix_micros(), &mut value);
        send_input(&producer, topic, &key, &value)?;
    }
    wait_for_acks(&producer, records, Duration::from_secs(300))?;
    Ok(start.elapsed())
}

// ---------------------------------------------------------------------------------------
// The external worker
// ---------------------------------------------------------------------------------------

/// One window's aggregates.
struct Acc {
    sum_f: f64,
    n: u64,
    last_ts: i64,
    sent_at: Value,
}

/// Open windows of one input partition.
#[derive(Default)]
struct PartitionWindows {
    /// Largest event time seen on the partition.
    watermark: Option<i64>,
    /// Window start → key → aggregates.
    open: BTreeMap<i64, HashMap<Vec<u8>, Acc>>,
}

/// The pipeline's logic: filter, map, tumbling window per (partition, key).
struct Logic {
    emit: Emit,
    partitions: HashMap<i32, PartitionWindows>,
    filtered: u64,
    late: u64,
    invalid: u64,
}

fn window_result(key: &[u8], start: i64, acc: &Acc) -> Result<(Vec<u8>, Vec<u8>)> {
    let value = serde_json::to_vec(&json!({
        "window_start": start,
        "window_end": start + WINDOW_MS,
        "avg_f": acc.sum_f / acc.n as f64,
        "n": acc.n,
        "sent_at": acc.sent_at,
    }))?;
    Ok((key.to_vec(), value))
}

impl Logic {
    fn new(emit: Emit) -> Self {
        Self {
            emit,
            partitions: HashMap::new(),
            filtered: 0,
            late: 0,
            invalid: 0,
        }
    }

    /// Runs one input record through the chain, pushing (key, value) outputs. As in the
    /// broker, every record with an event time advances its partition's watermark, the
    /// ones filtered out too, after the chain has seen it.
    fn on_record(
        &mut self,
        partition: i32,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        out: &mut Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<()> {
        let Some(mut value) = payload.and_then(|p| serde_json::from_slice::<Value>(p).ok()) else {
            self.invalid += 1;
            return Ok(());
        };
        // time = "ts"
        let Some(ts) = value["ts"].as_i64() else {
            self.invalid += 1;
            return Ok(());
        };
        self.chain(partition, key.unwrap_or_default(), &mut value, ts, out)?;
        let windows = self.partitions.entry(partition).or_default();
        if windows.watermark.is_some_and(|w| w >= ts) {
            return Ok(());
        }
        windows.watermark = Some(ts);
        while let Some(entry) = windows.open.first_entry() {
            if *entry.key() + WINDOW_MS > ts {
                break;
            }
            let (start, accs) = entry.remove_entry();
            for (key, acc) in &accs {
                out.push(window_result(key, start, acc)?);
            }
        }
        Ok(())
    }

    /// Filter, map and window of one record.
    fn chain(
        &mut self,
        partition: i32,
        key: &[u8],
        value: &mut Value,
        ts: i64,
        out: &mut Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<()> {
        // filter = "temperature > -50 && temperature < 150"
        let Some(temperature) = value["temperature"].as_f64() else {
            self.invalid += 1;
            return Ok(());
        };
        if !(temperature > -50.0 && temperature < 150.0) {
            self.filtered += 1;
            return Ok(());
        }
        // map = { set = { temp_f = "temperature * 1.8 + 32" }, drop = ["humidity"] }
        let Some(fields) = value.as_object_mut() else {
            self.invalid += 1;
            return Ok(());
        };
        fields.remove("humidity");
        fields.insert("temp_f".to_owned(), json!(temperature * 1.8 + 32.0));
        // window = { type = "tumbling", size = "1s" }: a record whose window has closed
        // is late and dropped.
        let windows = self.partitions.entry(partition).or_default();
        let start = ts.div_euclid(WINDOW_MS) * WINDOW_MS;
        if windows.watermark.is_some_and(|w| start + WINDOW_MS <= w) {
            self.late += 1;
            return Ok(());
        }
        let temp_f = value["temp_f"].as_f64().unwrap_or(f64::NAN);
        let acc = windows
            .open
            .entry(start)
            .or_default()
            .entry(key.to_vec())
            .or_insert_with(|| Acc {
                sum_f: 0.0,
                n: 0,
                last_ts: i64::MIN,
                sent_at: Value::Null,
            });
        acc.sum_f += temp_f;
        acc.n += 1;
        if ts >= acc.last_ts {
            acc.last_ts = ts;
            acc.sent_at = value["sent_at"].take();
        }
        if self.emit == Emit::Update {
            out.push(window_result(key, start, acc)?);
        }
        Ok(())
    }
}

/// What the worker does and when it stops.
struct WorkerOptions {
    group: String,
    input: String,
    output: String,
    emit: Emit,
    /// The consumer's `fetch.wait.max.ms` (librdkafka's default when `None`).
    fetch_wait_ms: Option<u32>,
    /// The producer's `linger.ms`.
    linger_ms: u32,
    /// Stop once this many records are consumed (else when told to).
    stop_after: Option<u64>,
}

/// What the worker did.
#[derive(Debug, Default)]
struct WorkerStats {
    consumed: u64,
    outputs: u64,
    filtered: u64,
    late: u64,
    invalid: u64,
    /// From start to the first input record (group join, first fetch).
    first_record: Option<Duration>,
    /// From start to the last output acknowledged.
    elapsed: Duration,
}

/// Checks one output's delivery report (the error type is the futures crate's
/// `Canceled`: the producer went away).
fn delivered<E>(result: Result<OwnedDeliveryResult, E>) -> Result<()> {
    match result {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(e).context("output not acknowledged"),
        Err(_) => bail!("delivery report lost (producer gone)"),
    }
}

/// Takes the acknowledged outputs off the front of `pending`, failing on an error.
fn reap(pending: &mut VecDeque<DeliveryFuture>) -> Result<()> {
    let mut cx = Context::from_waker(Waker::noop());
    while let Some(front) = pending.front_mut() {
        match Pin::new(front).poll(&mut cx) {
            Poll::Pending => break,
            Poll::Ready(result) => {
                pending.pop_front();
                delivered(result)?;
            }
        }
    }
    Ok(())
}

/// Consumes `opts.input` in a consumer group, runs [`Logic`], produces to `opts.output`.
/// Sets `ready` once the group has assigned it partitions.
fn worker(
    brokers: &str,
    opts: &WorkerOptions,
    stop: &AtomicBool,
    ready: &AtomicBool,
) -> Result<WorkerStats> {
    let start = Instant::now();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", &opts.group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true");
    if let Some(ms) = opts.fetch_wait_ms {
        config.set("fetch.wait.max.ms", ms.to_string());
    }
    let consumer: BaseConsumer = config.create().context("create worker consumer")?;
    consumer.subscribe(&[&opts.input])?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("linger.ms", opts.linger_ms.to_string())
        .set("batch.size", "1000000")
        .set("partitioner", "murmur2_random")
        .set("compression.type", "none")
        .create()
        .context("create worker producer")?;

    let mut logic = Logic::new(opts.emit);
    let mut stats = WorkerStats::default();
    let mut out = Vec::new();
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    let mut last_progress = Instant::now();
    loop {
        match opts.stop_after {
            Some(n) if stats.consumed >= n => break,
            None if stop.load(Ordering::Relaxed) => break,
            _ => {}
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {
                if opts.stop_after.is_some() && last_progress.elapsed() > STALL {
                    bail!("worker stalled after {} records", stats.consumed);
                }
            }
            Some(Err(e)) => return Err(e).context("worker consume"),
            Some(Ok(m)) => {
                stats.consumed += 1;
                last_progress = Instant::now();
                stats.first_record.get_or_insert_with(|| start.elapsed());
                logic.on_record(m.partition(), m.key(), m.payload(), &mut out)?;
                for (key, value) in out.drain(..) {
                    let mut record = FutureRecord::to(&opts.output).key(&key).payload(&value);
                    loop {
                        match producer.send_result(record) {
                            Ok(delivery) => {
                                pending.push_back(delivery);
                                break;
                            }
                            Err((
                                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                                back,
                            )) => {
                                record = back;
                                reap(&mut pending)?;
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            Err((e, _)) => return Err(e).context("produce output"),
                        }
                    }
                    stats.outputs += 1;
                }
            }
        }
        if !ready.load(Ordering::Relaxed) && consumer.assignment()?.count() > 0 {
            ready.store(true, Ordering::Relaxed);
        }
        reap(&mut pending)?;
    }
    // Every output acknowledged before the clock stops.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for delivery in pending {
        delivered(rt.block_on(delivery))?;
    }
    stats.elapsed = start.elapsed();
    stats.filtered = logic.filtered;
    stats.late = logic.late;
    stats.invalid = logic.invalid;
    Ok(stats)
}

/// Sets a flag when dropped: threads told to stop on every way out of a scope.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn delete_pipeline(admin: &str, path: &str) -> Result<()> {
    admin_ok(admin, "DELETE", path, "").map(|_| ())
}

// ---------------------------------------------------------------------------------------
// Throughput
// ---------------------------------------------------------------------------------------

/// Deploys the pipeline and waits until it has read `records` records and has no lag;
/// returns the time from deploy, the time to the first record read, and the last
/// describe answer.
fn run_pipeline_to_end(
    admin: &str,
    path: &str,
    spec: &str,
    records: u64,
) -> Result<(Duration, Option<Duration>, Value)> {
    let start = Instant::now();
    admin_ok(admin, "PUT", path, spec)?;
    let mut first_in = None;
    let (mut last_in, mut last_change) = (0, Instant::now());
    loop {
        let d = admin_ok(admin, "GET", path, "")?;
        let records_in = as_u64(&d, "records_in")?;
        let lag = as_i64(&d, "lag")?;
        if records_in > 0 {
            first_in.get_or_insert_with(|| start.elapsed());
        }
        if records_in >= records && lag == 0 {
            return Ok((start.elapsed(), first_in, d));
        }
        if records_in != last_in {
            (last_in, last_change) = (records_in, Instant::now());
        } else if last_change.elapsed() > STALL {
            bail!(
                "pipeline stalled for {STALL:?}: {}\n{d:#}",
                describe_summary(&d)
            );
        }
        std::thread::sleep(DESCRIBE_EVERY);
    }
}

fn throughput(args: &Args, records: u64, partitions: i32, devices: u64) -> Result<()> {
    if records == 0 || devices == 0 {
        bail!("--records and --devices must be positive");
    }
    let suffix = unique_suffix("tp");
    let input = format!("bench-in-{suffix}");
    let broker_out = format!("bench-out-{suffix}");
    let worker_out = format!("bench-ext-out-{suffix}");
    create_topics(
        &args.brokers,
        &[&input, &broker_out, &worker_out],
        partitions,
    )?;
    println!(
        "preloading {records} records into {input} ({partitions} partitions, {devices} devices)"
    );
    let took = preload(&args.brokers, &input, records, devices)?;
    println!(
        "preload: {:.1} s ({:.0} records/s)",
        took.as_secs_f64(),
        records as f64 / took.as_secs_f64()
    );

    // (a) In the broker.
    let name = format!("bench-{suffix}");
    let path = format!("/v1/transforms/{name}");
    let cpu0 = Cpu::now(args.broker_pid);
    let run = run_pipeline_to_end(
        &args.admin,
        &path,
        &spec(&name, &input, &broker_out, Emit::Close),
        records,
    );
    let broker_cpu = Cpu::now(args.broker_pid).since(cpu0);
    let deleted = delete_pipeline(&args.admin, &path);
    let (broker_elapsed, broker_first, described) = run?;
    deleted?;
    let broker_outputs = topic_records(&args.brokers, &broker_out, partitions)?;
    let broker_rps = records as f64 / broker_elapsed.as_secs_f64();
    println!(
        "in-broker: {records} records in {:.2} s = {broker_rps:.0} records/s \
         (first record read after {:.2} s); {broker_outputs} outputs in {broker_out}; {}",
        broker_elapsed.as_secs_f64(),
        broker_first.unwrap_or_default().as_secs_f64(),
        broker_cpu.describe(),
    );
    println!("in-broker describe: {}", describe_summary(&described));

    // (b) The external worker.
    let cpu0 = Cpu::now(args.broker_pid);
    let opts = WorkerOptions {
        group: format!("bench-ext-{suffix}"),
        input: input.clone(),
        output: worker_out.clone(),
        emit: Emit::Close,
        fetch_wait_ms: None,
        linger_ms: 5,
        stop_after: Some(records),
    };
    let stats = worker(
        &args.brokers,
        &opts,
        &AtomicBool::new(false),
        &AtomicBool::new(false),
    )?;
    let worker_cpu = Cpu::now(args.broker_pid).since(cpu0);
    let worker_outputs = topic_records(&args.brokers, &worker_out, partitions)?;
    let worker_rps = records as f64 / stats.elapsed.as_secs_f64();
    let first = stats.first_record.unwrap_or_default();
    let worker_rps_after_join = records as f64 / stats.elapsed.saturating_sub(first).as_secs_f64();
    println!(
        "external: {} records in {:.2} s = {worker_rps:.0} records/s (first record after {:.2} s \
         (group join); {worker_rps_after_join:.0} records/s from it); {} outputs acknowledged, \
         {worker_outputs} in {worker_out}; filtered {}, late {}, invalid {}; {}",
        stats.consumed,
        stats.elapsed.as_secs_f64(),
        first.as_secs_f64(),
        stats.outputs,
        stats.filtered,
        stats.late,
        stats.invalid,
        worker_cpu.describe(),
    );
    if broker_outputs != worker_outputs {
        println!(
            "WARNING: the pipeline wrote {broker_outputs} outputs and the worker {worker_outputs}: \
             the two do not compute the same thing"
        );
    }
    let ratio = broker_rps / worker_rps;
    println!("in-broker / external: {ratio:.2}x");
    let cpu = |c: Option<f64>| c.map_or_else(|| "na".to_owned(), |c| format!("{c:.2}"));
    println!(
        "RESULT mode=throughput records={records} partitions={partitions} devices={devices} \
         in_broker_s={:.2} in_broker_rps={broker_rps:.0} external_s={:.2} external_rps={worker_rps:.0} \
         ratio={ratio:.2} external_first_record_s={:.2} external_rps_after_first={worker_rps_after_join:.0} \
         in_broker_outputs={broker_outputs} external_outputs={worker_outputs} \
         in_broker_broker_cpu_s={} external_broker_cpu_s={} external_bench_cpu_s={:.2}",
        broker_elapsed.as_secs_f64(),
        stats.elapsed.as_secs_f64(),
        first.as_secs_f64(),
        cpu(broker_cpu.broker),
        cpu(worker_cpu.broker),
        worker_cpu.bench,
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Latency
// ---------------------------------------------------------------------------------------

/// Which side a latency run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    InBroker,
    External,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Self::InBroker => "in-broker",
            Self::External => "external",
        }
    }
}

/// What the output consumer saw.
#[derive(Debug, Default)]
struct Watched {
    /// now − sent_at of each counted output, µs.
    latencies_us: Vec<u64>,
    outputs: u64,
    /// Results re-emitted unchanged at window close.
    repeats: u64,
    /// Outputs of records sent during the warm-up.
    warmup: u64,
    /// Largest latency (µs) per second of sends after the warm-up: where the tail sits.
    max_by_second: BTreeMap<u64, u64>,
}

/// Reads `topic` from the beginning until `stop`, timing each new window result.
fn watch_outputs(
    brokers: &str,
    topic: &str,
    partitions: i32,
    measure_from_us: u64,
    stop: &AtomicBool,
    received: &AtomicU64,
) -> Result<Watched> {
    let consumer = assign_only_consumer(brokers)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl).context("assign outputs")?;
    let mut watched = Watched::default();
    let mut last_count: HashMap<(Vec<u8>, i64), u64> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let m = match consumer.poll(Duration::from_millis(50)) {
            None => continue,
            Some(m) => m.context("consume outputs")?,
        };
        let now = unix_micros();
        received.fetch_add(1, Ordering::Relaxed);
        watched.outputs += 1;
        let payload = m.payload().context("output without a value")?;
        let v: Value = serde_json::from_slice(payload)
            .with_context(|| format!("output is not JSON: {}", String::from_utf8_lossy(payload)))?;
        let (Some(start), Some(n), Some(sent_at)) = (
            v["window_start"].as_i64(),
            v["n"].as_f64(),
            v["sent_at"].as_f64(),
        ) else {
            bail!("output is not a window result: {v}");
        };
        let window = (m.key().unwrap_or_default().to_vec(), start);
        if last_count.insert(window, n as u64) == Some(n as u64) {
            watched.repeats += 1;
            continue;
        }
        let sent_at = sent_at as u64;
        if sent_at < measure_from_us {
            watched.warmup += 1;
            continue;
        }
        let latency = now.saturating_sub(sent_at);
        watched.latencies_us.push(latency);
        let second = watched
            .max_by_second
            .entry((sent_at - measure_from_us) / 1_000_000)
            .or_default();
        *second = (*second).max(latency);
    }
    Ok(watched)
}

/// Latency figures of one side.
#[derive(Debug, Default)]
struct LatencyFigures {
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    outputs_per_s: f64,
}

fn percentile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted_us.len() as f64 * q).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    sorted_us[i] as f64 / 1000.0
}

/// Waits until the pipeline runs a task per input partition.
fn wait_for_tasks(admin: &str, path: &str, partitions: i32) -> Result<()> {
    let deadline = Instant::now() + OP_TIMEOUT;
    loop {
        let d = admin_ok(admin, "GET", path, "")?;
        if d["tasks"].as_array().map_or(0, Vec::len) >= partitions.unsigned_abs() as usize {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("pipeline has no task per partition after {OP_TIMEOUT:?}: {d}");
        }
        std::thread::sleep(DESCRIBE_EVERY);
    }
}

#[allow(clippy::too_many_arguments)]
fn latency_run(
    args: &Args,
    side: Side,
    rate: u64,
    duration: Duration,
    partitions: i32,
    devices: u64,
    warmup: Duration,
) -> Result<LatencyFigures> {
    let suffix = unique_suffix(match side {
        Side::InBroker => "lat",
        Side::External => "lat-ext",
    });
    let input = format!("bench-in-{suffix}");
    let output = format!("bench-out-{suffix}");
    create_topics(&args.brokers, &[&input, &output], partitions)?;
    let name = format!("bench-{suffix}");
    let path = format!("/v1/transforms/{name}");
    let opts = WorkerOptions {
        group: format!("bench-ext-{suffix}"),
        input: input.clone(),
        output: output.clone(),
        emit: Emit::Update,
        fetch_wait_ms: Some(10),
        linger_ms: 0,
        stop_after: None,
    };
    let (stop_worker, ready, stop_watch) = (
        AtomicBool::new(false),
        AtomicBool::new(false),
        AtomicBool::new(false),
    );
    let received = AtomicU64::new(0);
    let cpu0 = Cpu::now(args.broker_pid);
    let result = std::thread::scope(|s| -> Result<(Watched, Option<WorkerStats>, u64)> {
        let _stop_worker = SetOnDrop(&stop_worker);
        let _stop_watch = SetOnDrop(&stop_watch);
        let mut worker_thread = match side {
            Side::External => Some(s.spawn(|| worker(&args.brokers, &opts, &stop_worker, &ready))),
            Side::InBroker => {
                admin_ok(
                    &args.admin,
                    "PUT",
                    &path,
                    &spec(&name, &input, &output, Emit::Update),
                )?;
                wait_for_tasks(&args.admin, &path, partitions)?;
                None
            }
        };
        let deadline = Instant::now() + OP_TIMEOUT;
        while worker_thread.is_some() && !ready.load(Ordering::Relaxed) {
            if let Some(t) = worker_thread.take_if(|t| t.is_finished()) {
                t.join().map_err(|_| anyhow!("worker panicked"))??;
                bail!("worker stopped before the group assigned it partitions");
            }
            if Instant::now() > deadline {
                bail!("worker got no partitions within {OP_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let produce_start_us = unix_micros();
        let measure_from_us = produce_start_us + warmup.as_micros() as u64;
        let (output, stop_watch, received) = (&output, &stop_watch, &received);
        let watcher = s.spawn(move || {
            watch_outputs(
                &args.brokers,
                output,
                partitions,
                measure_from_us,
                stop_watch,
                received,
            )
        });

        // Produce at `rate`, event time and sent_at from this clock.
        let producer = input_producer(&args.brokers, 0)?;
        let total = rate * duration.as_secs();
        let t0 = Instant::now();
        let mut sent = 0u64;
        let mut value = String::new();
        while sent < total
            && !watcher.is_finished()
            && worker_thread.as_ref().is_none_or(|t| !t.is_finished())
        {
            let due = ((t0.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
            while sent < due {
                let now_us = unix_micros();
                let key = reading(sent, devices, now_us / 1000, now_us, &mut value);
                send_input(&producer, &input, &key, &value)?;
                sent += 1;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        let (unanswered, produced_in) = (producer.in_flight_count(), t0.elapsed());
        let acks_from = Instant::now();
        wait_for_acks(&producer, sent, OP_TIMEOUT)?;
        println!(
            "{}: produced {sent} in {:.1} s; {unanswered} unanswered at the end, answered {:.0} ms later",
            side.name(),
            produced_in.as_secs_f64(),
            acks_from.elapsed().as_secs_f64() * 1000.0
        );

        // Drain: until no output arrived for 2 s (at most 30 s).
        let drain_deadline = Instant::now() + OP_TIMEOUT;
        let mut seen = received.load(Ordering::Relaxed);
        let mut quiet_since = Instant::now();
        while Instant::now() < drain_deadline
            && quiet_since.elapsed() < Duration::from_secs(2)
            && !watcher.is_finished()
        {
            std::thread::sleep(Duration::from_millis(100));
            let now_seen = received.load(Ordering::Relaxed);
            if now_seen != seen {
                (seen, quiet_since) = (now_seen, Instant::now());
            }
        }
        stop_watch.store(true, Ordering::Relaxed);
        stop_worker.store(true, Ordering::Relaxed);
        let watched = watcher
            .join()
            .map_err(|_| anyhow!("output consumer panicked"))??;
        let stats = match worker_thread {
            Some(t) => Some(t.join().map_err(|_| anyhow!("worker panicked"))??),
            None => None,
        };
        Ok((watched, stats, sent))
    });
    let cpu = Cpu::now(args.broker_pid).since(cpu0);
    let described = match side {
        Side::InBroker => {
            let d = admin_ok(&args.admin, "GET", &path, "");
            let deleted = delete_pipeline(&args.admin, &path);
            if result.is_ok() {
                deleted?;
                Some(d?)
            } else {
                None
            }
        }
        Side::External => None,
    };
    let (mut watched, stats, sent) = result?;
    watched.latencies_us.sort_unstable();
    let measured = duration.saturating_sub(warmup).as_secs_f64();
    let figures = LatencyFigures {
        p50_ms: percentile_ms(&watched.latencies_us, 0.50),
        p90_ms: percentile_ms(&watched.latencies_us, 0.90),
        p99_ms: percentile_ms(&watched.latencies_us, 0.99),
        max_ms: percentile_ms(&watched.latencies_us, 1.0),
        outputs_per_s: watched.latencies_us.len() as f64 / measured,
    };
    println!(
        "{}: sent {sent}, outputs {} ({} counted, {} of warm-up sends, {} unchanged at close); \
         p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.0} outputs/s; {}",
        side.name(),
        watched.outputs,
        watched.latencies_us.len(),
        watched.warmup,
        watched.repeats,
        figures.p50_ms,
        figures.p90_ms,
        figures.p99_ms,
        figures.max_ms,
        figures.outputs_per_s,
        cpu.describe(),
    );
    let timeline: Vec<String> = watched
        .max_by_second
        .values()
        .map(|us| format!("{:.0}", *us as f64 / 1000.0))
        .collect();
    println!(
        "{}: largest latency per second of sends after warm-up, ms: {}",
        side.name(),
        timeline.join(" ")
    );
    if let Some(d) = described {
        println!("in-broker describe: {}", describe_summary(&d));
    }
    if let Some(stats) = stats {
        println!(
            "external worker: consumed {}, produced {}, filtered {}, late {}, invalid {}",
            stats.consumed, stats.outputs, stats.filtered, stats.late, stats.invalid
        );
    }
    Ok(figures)
}

fn latency(
    args: &Args,
    rate: u64,
    duration_s: u64,
    partitions: i32,
    devices: u64,
    warmup_s: u64,
) -> Result<()> {
    if rate == 0 || devices == 0 || duration_s <= warmup_s {
        bail!("--rate and --devices must be positive and --duration-s above --warmup-s");
    }
    let (duration, warmup) = (
        Duration::from_secs(duration_s),
        Duration::from_secs(warmup_s),
    );
    let broker = latency_run(
        args,
        Side::InBroker,
        rate,
        duration,
        partitions,
        devices,
        warmup,
    )?;
    let external = latency_run(
        args,
        Side::External,
        rate,
        duration,
        partitions,
        devices,
        warmup,
    )?;
    println!(
        "RESULT mode=latency rate={rate} duration_s={duration_s} partitions={partitions} \
         devices={devices} in_broker_p50_ms={:.2} in_broker_p90_ms={:.2} in_broker_p99_ms={:.2} \
         in_broker_max_ms={:.2} in_broker_outputs_per_s={:.0} external_p50_ms={:.2} \
         external_p90_ms={:.2} external_p99_ms={:.2} external_max_ms={:.2} \
         external_outputs_per_s={:.0}",
        broker.p50_ms,
        broker.p90_ms,
        broker.p99_ms,
        broker.max_ms,
        broker.outputs_per_s,
        external.p50_ms,
        external.p90_ms,
        external.p99_ms,
        external.max_ms,
        external.outputs_per_s,
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.mode {
        Mode::Throughput {
            records,
            partitions,
            devices,
        } => throughput(&args, records, partitions, devices),
        Mode::Latency {
            rate,
            duration_s,
            partitions,
            devices,
            warmup_s,
        } => latency(&args, rate, duration_s, partitions, devices, warmup_s),
    }
}
