//! `loadgen`: a Kafka load generator built on rdkafka, for Sluice (or any Kafka broker).
//!
//! Throughput mode (default): produce `--records` records of `--size` bytes as fast as the
//! in-flight window allows, measuring each record's enqueue → delivery-report latency, then
//! consume them back from the offsets the run started at.
//!
//! ```text
//! loadgen --brokers 127.0.0.1:9092 --topic bench --records 1000000 --size 100 \
//!         --acks all --partitions 3 [--linger-ms 5] [--batch-size 1048576] [--compression lz4]
//! ```
//!
//! End-to-end latency mode: produce `--e2e-rate` records/s for `--duration-s` seconds with
//! `linger.ms=1` while a consumer in the same process measures send → receipt latency from
//! a timestamp carried in the payload.
//!
//! ```text
//! loadgen --brokers 127.0.0.1:9092 --topic lat --e2e-rate 10000 --duration-s 30
//! ```
//!
//! Both modes end with one machine-readable line starting with `RESULT `.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// Command line.
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen", about = "Kafka-protocol load generator (rdkafka)")]
struct Args {
    /// Bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic to use; created with `--partitions` partitions if missing.
    #[arg(long, default_value = "loadgen")]
    topic: String,
    /// Records to produce (throughput mode).
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Record value size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Producer acks: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    /// Partitions when creating the topic.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Producer linger.ms (throughput mode; e2e mode always uses 1).
    #[arg(long)]
    linger_ms: Option<u32>,
    /// Producer batch.size in bytes.
    #[arg(long)]
    batch_size: Option<u32>,
    /// Producer compression.type: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// Maximum records enqueued but not yet acknowledged.
    #[arg(long, default_value_t = 200_000)]
    window: u64,
    /// Extra client properties, `key=value`, applied to producer and consumer.
    #[arg(long = "property", short = 'X')]
    properties: Vec<String>,
    /// End-to-end latency mode: records per second to produce.
    #[arg(long)]
    e2e_rate: Option<u64>,
    /// End-to-end latency mode: how long to produce, in seconds.
    #[arg(long, default_value_t = 30)]
    duration_s: u64,
    /// Skip the consume phase of throughput mode.
    #[arg(long)]
    no_consume: bool,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
struct Percentiles {
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

/// Sorts `micros` and returns its percentiles in milliseconds.
fn percentiles(micros: &mut [u32]) -> Percentiles {
    if micros.is_empty() {
        return Percentiles::default();
    }
    micros.sort_unstable();
    let at = |q: f64| {
        let idx = ((micros.len() as f64 * q).ceil() as usize).clamp(1, micros.len()) - 1;
        f64::from(micros[idx]) / 1000.0
    };
    Percentiles {
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
        max: f64::from(micros[micros.len() - 1]) / 1000.0,
    }
}

fn saturating_micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Producer context: records each delivery's latency.
struct LatencyContext {
    start: Instant,
    latencies: Mutex<Vec<u32>>,
    delivered: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    last_delivery_nanos: AtomicU64,
}

impl LatencyContext {
    fn new(start: Instant, capacity: usize) -> Self {
        Self {
            start,
            latencies: Mutex::new(Vec::with_capacity(capacity)),
            delivered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
            last_delivery_nanos: AtomicU64::new(0),
        }
    }

    fn completed(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed) + self.errors.load(Ordering::Relaxed)
    }
}

impl ClientContext for LatencyContext {}

impl ProducerContext for LatencyContext {
    /// Enqueue time, in nanoseconds since `start`.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, enqueued_nanos: usize) {
        let now = self.start.elapsed();
        let lat = now.saturating_sub(Duration::from_nanos(enqueued_nanos as u64));
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                self.latencies
                    .lock()
                    .expect("latency lock")
                    .push(saturating_micros(lat));
            }
            Err((e, _)) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().expect("error lock");
                if first.is_none() {
                    *first = Some(e.to_string());
                }
            }
        }
        self.last_delivery_nanos
            .fetch_max(now.as_nanos() as u64, Ordering::Relaxed);
    }
}

fn base_config(args: &Args) -> Result<ClientConfig> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &args.brokers);
    for p in &args.properties {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--property {p:?} is not key=value"))?;
        c.set(k, v);
    }
    Ok(c)
}

fn producer_config(args: &Args, linger_ms: Option<u32>) -> Result<ClientConfig> {
    let mut c = base_config(args)?;
    c.set("acks", &args.acks)
        .set("compression.type", &args.compression)
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "2097151")
        .set("message.timeout.ms", "120000");
    if let Some(l) = linger_ms {
        c.set("linger.ms", l.to_string());
    }
    if let Some(b) = args.batch_size {
        c.set("batch.size", b.to_string());
    }
    // Properties given with -X win over our defaults.
    for p in &args.properties {
        if let Some((k, v)) = p.split_once('=') {
            c.set(k, v);
        }
    }
    Ok(c)
}

fn consumer(args: &Args) -> Result<BaseConsumer> {
    let mut c = base_config(args)?;
    // assign() needs a group.id in librdkafka; no group is joined and nothing is committed.
    c.set("group.id", "loadgen-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .set("fetch.min.bytes", "1")
        .set("queued.min.messages", "200000");
    for p in &args.properties {
        if let Some((k, v)) = p.split_once('=') {
            c.set(k, v);
        }
    }
    c.create().context("create consumer")
}

/// Ensures the topic exists (creating it with `--partitions` partitions) and returns its
/// partition ids once every partition has a leader.
fn ensure_topic(args: &Args) -> Result<Vec<i32>> {
    let probe = consumer(args)?;
    let existing = partitions_of(&probe, &args.topic)?;
    if existing.is_none() {
        let admin: AdminClient<DefaultClientContext> =
            base_config(args)?.create().context("create admin client")?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("tokio runtime")?;
        let opts = AdminOptions::new().operation_timeout(Some(Timeout::After(OP_TIMEOUT)));
        let res = rt
            .block_on(admin.create_topics(
                &[NewTopic::new(
                    &args.topic,
                    args.partitions,
                    TopicReplication::Fixed(1),
                )],
                &opts,
            ))
            .context("CreateTopics")?;
        for r in res {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => bail!("creating topic {t}: {code}"),
            }
        }
        eprintln!(
            "created topic {} with {} partitions",
            args.topic, args.partitions
        );
    }
    let deadline = Instant::now() + OP_TIMEOUT;
    loop {
        if let Some(parts) = partitions_of(&probe, &args.topic)? {
            return Ok(parts);
        }
        if Instant::now() >= deadline {
            bail!("topic {} has no leaders after {OP_TIMEOUT:?}", args.topic);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Partition ids of `topic` if it exists and every partition has a leader.
fn partitions_of(c: &BaseConsumer, topic: &str) -> Result<Option<Vec<i32>>> {
    let md = c
        .fetch_metadata(Some(topic), OP_TIMEOUT)
        .context("fetch metadata")?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    if t.error().is_some() || t.partitions().is_empty() {
        return Ok(None);
    }
    if t.partitions().iter().any(|p| p.leader() < 0) {
        return Ok(None);
    }
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    Ok(Some(ids))
}

fn high_watermarks(c: &BaseConsumer, topic: &str, parts: &[i32]) -> Result<HashMap<i32, i64>> {
    parts
        .iter()
        .map(|p| {
            let (_, hi) = c
                .fetch_watermarks(topic, *p, OP_TIMEOUT)
                .with_context(|| format!("watermarks of {topic}/{p}"))?;
            Ok((*p, hi))
        })
        .collect()
}

fn assign_from(c: &BaseConsumer, topic: &str, from: &HashMap<i32, i64>) -> Result<()> {
    let mut tpl = TopicPartitionList::new();
    for (p, off) in from {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*off))?;
    }
    c.assign(&tpl).context("assign")
}

/// Deterministic, incompressible filler.
fn payload(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn mb(bytes: f64) -> f64 {
    bytes / 1_000_000.0
}

fn throughput(args: &Args) -> Result<bool> {
    let parts = ensure_topic(args)?;
    let probe = consumer(args)?;
    let start_offsets = high_watermarks(&probe, &args.topic, &parts)?;

    let start = Instant::now();
    let ctx = LatencyContext::new(start, args.records as usize);
    let producer: BaseProducer<LatencyContext> = producer_config(args, args.linger_ms)?
        .create_with_context(ctx)
        .context("create producer")?;
    let value = payload(args.size);
    eprintln!(
        "producing {} records of {} bytes to {} ({} partitions, acks={}, compression={})",
        args.records,
        args.size,
        args.topic,
        parts.len(),
        args.acks,
        args.compression
    );
    let mut sent: u64 = 0;
    let mut next_report = Instant::now() + Duration::from_secs(5);
    while sent < args.records {
        if sent - producer.context().completed() >= args.window {
            producer.poll(Duration::from_millis(1));
            continue;
        }
        let opaque = start.elapsed().as_nanos() as usize;
        let record: BaseRecord<'_, (), [u8], usize> =
            BaseRecord::with_opaque_to(&args.topic, opaque).payload(&value[..]);
        match producer.send(record) {
            Ok(()) => sent += 1,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => bail!("enqueue failed after {sent} records: {e}"),
        }
        if sent.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
            if Instant::now() >= next_report {
                eprintln!(
                    "  sent {sent}, acknowledged {}",
                    producer.context().delivered.load(Ordering::Relaxed)
                );
                next_report += Duration::from_secs(5);
            }
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .context("flush producer")?;
    while producer.context().completed() < sent {
        producer.poll(Duration::from_millis(10));
    }
    let ctx = producer.context();
    let produce_secs =
        Duration::from_nanos(ctx.last_delivery_nanos.load(Ordering::Relaxed)).as_secs_f64();
    let delivered = ctx.delivered.load(Ordering::Relaxed);
    let errors = ctx.errors.load(Ordering::Relaxed);
    let mut lat = std::mem::take(&mut *ctx.latencies.lock().expect("latency lock"));
    let pct = percentiles(&mut lat);
    let produce_rps = delivered as f64 / produce_secs.max(1e-9);
    let produce_mbs = mb(delivered as f64 * args.size as f64) / produce_secs.max(1e-9);
    println!(
        "produce: {delivered} records in {produce_secs:.2} s: {produce_rps:.0} records/s, \
         {produce_mbs:.2} MB/s; latency p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms; \
         {errors} errors",
        pct.p50, pct.p99, pct.p999, pct.max
    );
    if let Some(e) = ctx.first_error.lock().expect("error lock").as_ref() {
        println!("first delivery error: {e}");
    }
    drop(producer);

    let (mut consumed, mut consume_rps, mut consume_mbs) = (0u64, 0.0, 0.0);
    if !args.no_consume {
        let end_offsets = high_watermarks(&probe, &args.topic, &parts)?;
        let want: u64 = end_offsets
            .iter()
            .map(|(p, hi)| (hi - start_offsets[p]).max(0) as u64)
            .sum();
        let c = consumer(args)?;
        assign_from(&c, &args.topic, &start_offsets)?;
        let mut remaining: HashMap<i32, i64> = end_offsets.clone();
        remaining.retain(|p, hi| *hi > start_offsets[p]);
        let t0 = Instant::now();
        let mut last_progress = Instant::now();
        let mut bytes = 0u64;
        while !remaining.is_empty() {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    consumed += 1;
                    bytes += m.payload_len() as u64;
                    last_progress = Instant::now();
                    if m.offset() + 1 >= end_offsets[&m.partition()] {
                        remaining.remove(&m.partition());
                    }
                }
                Some(Err(e)) => eprintln!("consumer error: {e}"),
                None => {}
            }
            if last_progress.elapsed() > OP_TIMEOUT {
                eprintln!("consumer stalled for {OP_TIMEOUT:?}; remaining {remaining:?}");
                break;
            }
        }
        let secs = t0.elapsed().as_secs_f64().max(1e-9);
        consume_rps = consumed as f64 / secs;
        consume_mbs = mb(bytes as f64) / secs;
        println!(
            "consume: {consumed} of {want} records in {secs:.2} s: {consume_rps:.0} records/s, \
             {consume_mbs:.2} MB/s"
        );
        if consumed < want {
            println!("consume: short by {}", want - consumed);
        }
    }
    println!(
        "RESULT mode=throughput records={delivered} size={} acks={} partitions={} \
         compression={} errors={errors} produce_rec_s={produce_rps:.0} \
         produce_mb_s={produce_mbs:.2} consume_rec_s={consume_rps:.0} \
         consume_mb_s={consume_mbs:.2} consumed={consumed} p50_ms={:.3} p99_ms={:.3} \
         p999_ms={:.3} max_ms={:.3}",
        args.size,
        args.acks,
        parts.len(),
        args.compression,
        pct.p50,
        pct.p99,
        pct.p999,
        pct.max
    );
    Ok(errors == 0 && (args.no_consume || consumed >= delivered))
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn e2e(args: &Args, rate: u64) -> Result<bool> {
    if rate == 0 {
        bail!("--e2e-rate must be positive");
    }
    let parts = ensure_topic(args)?;
    let probe = consumer(args)?;
    let start_offsets = high_watermarks(&probe, &args.topic, &parts)?;
    let size = args.size.max(16);
    let total = rate * args.duration_s;

    let received = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    // Set once a warm-up record (timestamp 0) has made it through: the consumer is fetching.
    let warm = AtomicBool::new(false);
    let e2e_lat: Mutex<Vec<u32>> = Mutex::new(Vec::with_capacity(total as usize));

    let start = Instant::now();
    let ctx = LatencyContext::new(start, total as usize);
    let producer: BaseProducer<LatencyContext> = producer_config(args, Some(1))?
        .create_with_context(ctx)
        .context("create producer")?;
    let c = consumer(args)?;
    assign_from(&c, &args.topic, &start_offsets)?;

    let mut warmups = 0u64;
    let sent = std::thread::scope(|s| -> Result<u64> {
        let consumer_thread = s.spawn(|| {
            let mut local = Vec::with_capacity(total as usize);
            while !stop.load(Ordering::Relaxed) {
                match c.poll(Duration::from_millis(50)) {
                    Some(Ok(m)) => {
                        let now = unix_micros();
                        if let Some(p) = m.payload()
                            && p.len() >= 8
                        {
                            let mut ts = [0u8; 8];
                            ts.copy_from_slice(&p[..8]);
                            let sent_at = u64::from_be_bytes(ts);
                            if sent_at == 0 {
                                warm.store(true, Ordering::Relaxed);
                                continue;
                            }
                            local.push(
                                u32::try_from(now.saturating_sub(sent_at)).unwrap_or(u32::MAX),
                            );
                        }
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Err(e)) => eprintln!("consumer error: {e}"),
                    None => {}
                }
            }
            e2e_lat.lock().expect("lock").extend(local);
        });

        eprintln!(
            "producing {rate} records/s of {size} bytes for {} s to {}",
            args.duration_s, args.topic
        );
        let mut value = payload(size);
        // Warm up: send timestamp-0 records until one comes back, so consumer start-up
        // (connect, ListOffsets, first fetch) is not counted as latency.
        value[..8].copy_from_slice(&0u64.to_be_bytes());
        let warm_deadline = Instant::now() + OP_TIMEOUT;
        while !warm.load(Ordering::Relaxed) {
            if Instant::now() >= warm_deadline {
                stop.store(true, Ordering::Relaxed);
                bail!("warm-up record not consumed within {OP_TIMEOUT:?}");
            }
            let record: BaseRecord<'_, (), [u8], usize> =
                BaseRecord::with_opaque_to(&args.topic, 0).payload(&value[..]);
            if producer.send(record).is_ok() {
                warmups += 1;
            }
            producer.poll(Duration::from_millis(100));
        }
        let mut sent = 0u64;
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(args.duration_s);
        while Instant::now() < end {
            let due = ((t0.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
            while sent < due {
                value[..8].copy_from_slice(&unix_micros().to_be_bytes());
                let opaque = start.elapsed().as_nanos() as usize;
                let record: BaseRecord<'_, (), [u8], usize> =
                    BaseRecord::with_opaque_to(&args.topic, opaque).payload(&value[..]);
                match producer.send(record) {
                    Ok(()) => sent += 1,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        producer.poll(Duration::from_millis(1));
                    }
                    Err((e, _)) => {
                        stop.store(true, Ordering::Relaxed);
                        bail!("enqueue failed: {e}")
                    }
                }
            }
            producer.poll(Duration::ZERO);
            std::thread::sleep(Duration::from_micros(500));
        }
        if let Err(e) = producer.flush(Duration::from_secs(60)) {
            stop.store(true, Ordering::Relaxed);
            bail!("flush: {e}");
        }
        let deadline = Instant::now() + OP_TIMEOUT;
        while received.load(Ordering::Relaxed) + warmups
            < producer.context().delivered.load(Ordering::Relaxed)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::Relaxed);
        consumer_thread.join().expect("consumer thread");
        Ok(sent)
    })?;

    let ctx = producer.context();
    let delivered = ctx
        .delivered
        .load(Ordering::Relaxed)
        .saturating_sub(warmups);
    let errors = ctx.errors.load(Ordering::Relaxed);
    let mut ack = std::mem::take(&mut *ctx.latencies.lock().expect("lock"));
    let ack = percentiles(&mut ack);
    let mut lat = std::mem::take(&mut *e2e_lat.lock().expect("lock"));
    let got = lat.len() as u64;
    let pct = percentiles(&mut lat);
    println!(
        "e2e: sent {sent}, acknowledged {delivered}, received {got}, {errors} errors; \
         end-to-end p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms; \
         ack p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms",
        pct.p50, pct.p99, pct.p999, pct.max, ack.p50, ack.p99, ack.p999
    );
    println!(
        "RESULT mode=e2e rate={rate} duration_s={} size={size} acks={} sent={sent} \
         received={got} errors={errors} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3} \
         ack_p50_ms={:.3} ack_p99_ms={:.3} ack_p999_ms={:.3}",
        args.duration_s, args.acks, pct.p50, pct.p99, pct.p999, pct.max, ack.p50, ack.p99, ack.p999
    );
    Ok(errors == 0 && got >= delivered)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let ok = match args.e2e_rate {
        Some(rate) => e2e(&args, rate)?,
        None => throughput(&args)?,
    };
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
