//! One scrape: sums the shards' counters, reads the catalog's per-partition offsets and
//! byte counters, asks each shard for its log sizes and committed group offsets, and
//! renders it all.
//!
//! Label cardinality is bounded: at most [`MAX_TOPIC_LABELS`] distinct topics and
//! [`MAX_GROUP_LABELS`] distinct groups get their own label value; the rest are summed
//! under `topic="_other"` / `group="_other"` with `partition="_all"`, so a node with
//! 100,000 topics still renders a scrape of bounded size.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use sluice_protocol::kafka_protocol::messages::ApiKey;

use super::ShardMetrics;
use super::exposition::{CONTENT_TYPE, Exposition, Kind};
use crate::shard::NodeShared;

/// Distinct topics named in labels; the rest become `_other`.
pub(crate) const MAX_TOPIC_LABELS: usize = 1000;
/// Distinct groups named in labels; the rest become `_other`.
pub(crate) const MAX_GROUP_LABELS: usize = 1000;
/// Label value of everything past a cap.
const OTHER: &str = "_other";
/// Partition label of a row that sums several partitions.
const ALL: &str = "_all";

/// Every family this module renders: name, type, help.
pub(crate) const FAMILIES: &[(&str, Kind, &str)] = &[
    (REQUESTS, Kind::Counter, "Kafka requests served, by API."),
    (
        ERRORS,
        Kind::Counter,
        "Kafka requests that closed the connection instead of answering, by API.",
    ),
    (
        LATENCY,
        Kind::Histogram,
        "Time from a request's decode to its response being ready, by API.",
    ),
    (
        BYTES_IN,
        Kind::Counter,
        "Record batch bytes appended by Produce, by topic.",
    ),
    (
        BYTES_OUT,
        Kind::Counter,
        "Record batch bytes returned by Fetch, by topic.",
    ),
    (
        BATCH_SIZE,
        Kind::Histogram,
        "Size of each produced record batch.",
    ),
    (
        FETCH_WAIT,
        Kind::Histogram,
        "Time a Fetch spent before answering (long poll included).",
    ),
    (
        FSYNC,
        Kind::Histogram,
        "Duration of one group-commit fsync of a partition log.",
    ),
    (CONN_ACTIVE, Kind::Gauge, "Open Kafka client connections."),
    (
        CONN_ACCEPTED,
        Kind::Counter,
        "Kafka client connections accepted.",
    ),
    (HWM, Kind::Gauge, "High watermark of each partition."),
    (
        LOG_START,
        Kind::Gauge,
        "Log start offset of each partition.",
    ),
    (
        LOG_SIZE,
        Kind::Gauge,
        "Bytes of each partition's log on disk.",
    ),
    (
        GROUP_LAG,
        Kind::Gauge,
        "High watermark minus the group's committed offset.",
    ),
    (
        TRANSFORM_IN,
        Kind::Counter,
        "Input records a pipeline processed, by pipeline.",
    ),
    (
        TRANSFORM_OUT,
        Kind::Counter,
        "Records a pipeline wrote to its output topics, by pipeline.",
    ),
    (
        TRANSFORM_DROPPED,
        Kind::Counter,
        "Records a pipeline step dropped on purpose (filtered, late, duplicate), by pipeline and step.",
    ),
    (
        TRANSFORM_DEAD,
        Kind::Counter,
        "Records a pipeline could not process (sent to its dead-letter topic), by pipeline.",
    ),
    (
        TRANSFORM_LAG,
        Kind::Gauge,
        "Input records a pipeline has not processed yet, by pipeline.",
    ),
    (
        TRANSFORM_STATE,
        Kind::Gauge,
        "Entries of operator state (windows, remembered keys, table rows), by pipeline and step.",
    ),
    (
        TRANSFORM_STATE_BYTES,
        Kind::Gauge,
        "Bytes of a pipeline's last checkpoints (operator state and positions), by pipeline.",
    ),
    (
        TRANSFORM_LATENCY,
        Kind::Histogram,
        "Time from a pipeline's read returning to its outputs written, by pipeline.",
    ),
];

const REQUESTS: &str = "sluice_kafka_requests_total";
const ERRORS: &str = "sluice_kafka_request_errors_total";
const LATENCY: &str = "sluice_kafka_request_duration_seconds";
const BYTES_IN: &str = "sluice_kafka_produce_bytes_total";
const BYTES_OUT: &str = "sluice_kafka_fetch_bytes_total";
const BATCH_SIZE: &str = "sluice_kafka_produce_batch_size_bytes";
const FETCH_WAIT: &str = "sluice_kafka_fetch_wait_seconds";
const FSYNC: &str = "sluice_storage_fsync_duration_seconds";
const CONN_ACTIVE: &str = "sluice_kafka_connections_active";
const CONN_ACCEPTED: &str = "sluice_kafka_connections_accepted_total";
const HWM: &str = "sluice_partition_high_watermark";
const LOG_START: &str = "sluice_partition_log_start_offset";
const LOG_SIZE: &str = "sluice_partition_size_bytes";
const GROUP_LAG: &str = "sluice_group_lag_records";
const TRANSFORM_IN: &str = "sluice_transform_records_in_total";
const TRANSFORM_OUT: &str = "sluice_transform_records_out_total";
const TRANSFORM_DROPPED: &str = "sluice_transform_records_dropped_total";
const TRANSFORM_DEAD: &str = "sluice_transform_dead_letters_total";
const TRANSFORM_LAG: &str = "sluice_transform_lag_records";
const TRANSFORM_STATE: &str = "sluice_transform_state_entries";
const TRANSFORM_STATE_BYTES: &str = "sluice_transform_state_bytes";
const TRANSFORM_LATENCY: &str = "sluice_transform_processing_duration_seconds";

/// One partition as a scrape sees it.
#[derive(Debug, Clone)]
pub(crate) struct PartitionRow {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) high_watermark: i64,
    pub(crate) log_start_offset: i64,
    pub(crate) size_bytes: u64,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
}

/// One committed offset: group, topic, partition, offset.
pub(crate) type CommittedOffset = (String, String, i32, i64);

/// Everything a scrape renders.
#[derive(Debug, Default)]
pub(crate) struct ScrapeInput {
    pub(crate) shards: Vec<Arc<ShardMetrics>>,
    pub(crate) partitions: Vec<PartitionRow>,
    pub(crate) committed: Vec<CommittedOffset>,
    pub(crate) transforms: Vec<crate::transforms::TaskSnapshot>,
}

/// The name of Kafka API `key` as Kafka spells it (`Produce`, `OffsetCommit`).
fn api_name(key: usize) -> Option<String> {
    let key = i16::try_from(key).ok()?;
    ApiKey::try_from(key).ok().map(|k| format!("{k:?}"))
}

/// Maps names to label values: the first `cap` distinct names (in sorted order) keep
/// theirs, the rest become `_other`.
fn capped<'a>(names: impl IntoIterator<Item = &'a str>, cap: usize) -> BTreeSet<&'a str> {
    names
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .take(cap)
        .collect()
}

#[allow(clippy::cast_precision_loss)] // counters past 2^53 lose precision, as in Prometheus
fn f(value: u64) -> f64 {
    value as f64
}

#[allow(clippy::cast_precision_loss)]
fn fi(value: i64) -> f64 {
    value as f64
}

/// Renders a scrape as Prometheus text.
pub(crate) fn render(input: &ScrapeInput) -> String {
    let mut e = Exposition::default();
    let help = |name: &str| {
        FAMILIES
            .iter()
            .find(|(n, _, _)| *n == name)
            .map_or((Kind::Gauge, ""), |(_, k, h)| (*k, *h))
    };
    let family = |e: &mut Exposition, name: &str| {
        let (kind, text) = help(name);
        e.family(name, kind, text);
    };
    let Some((first, rest)) = input.shards.split_first() else {
        return e.finish();
    };

    // Per API: only APIs that were called, to keep the scrape short.
    let mut apis = Vec::new();
    for (slot, api) in first.apis.iter().enumerate() {
        let requests: u64 = input
            .shards
            .iter()
            .filter_map(|s| s.apis.get(slot))
            .map(|a| a.requests.load(Ordering::Relaxed))
            .sum();
        if requests == 0 {
            continue;
        }
        let errors: u64 = input
            .shards
            .iter()
            .filter_map(|s| s.apis.get(slot))
            .map(|a| a.errors.load(Ordering::Relaxed))
            .sum();
        let latency = api.latency.snapshot(
            rest.iter()
                .filter_map(|s| s.apis.get(slot))
                .map(|a| &a.latency),
        );
        let name = api_name(slot).unwrap_or_else(|| "Unknown".to_owned());
        apis.push((name, requests, errors, latency));
    }
    family(&mut e, REQUESTS);
    for (name, requests, _, _) in &apis {
        e.sample(REQUESTS, &[("api", name)], f(*requests));
    }
    family(&mut e, ERRORS);
    for (name, _, errors, _) in &apis {
        e.sample(ERRORS, &[("api", name)], f(*errors));
    }
    family(&mut e, LATENCY);
    for (name, _, _, latency) in &apis {
        e.histogram(LATENCY, &[("api", name)], latency);
    }

    family(&mut e, BATCH_SIZE);
    e.histogram(
        BATCH_SIZE,
        &[],
        &first
            .produce_batch_size
            .snapshot(rest.iter().map(|s| &s.produce_batch_size)),
    );
    family(&mut e, FETCH_WAIT);
    e.histogram(
        FETCH_WAIT,
        &[],
        &first
            .fetch_wait
            .snapshot(rest.iter().map(|s| &s.fetch_wait)),
    );
    family(&mut e, FSYNC);
    e.histogram(
        FSYNC,
        &[],
        &first.fsync.snapshot(rest.iter().map(|s| &s.fsync)),
    );
    let sum = |get: fn(&ShardMetrics) -> u64| input.shards.iter().map(|s| get(s)).sum::<u64>();
    family(&mut e, CONN_ACTIVE);
    e.sample(
        CONN_ACTIVE,
        &[],
        f(sum(|s| s.connections_active.load(Ordering::Relaxed))),
    );
    family(&mut e, CONN_ACCEPTED);
    e.sample(
        CONN_ACCEPTED,
        &[],
        f(sum(|s| s.connections_accepted.load(Ordering::Relaxed))),
    );

    // Per topic and per partition, with the topic cap.
    let named = capped(input.partitions.iter().map(|p| &*p.topic), MAX_TOPIC_LABELS);
    let topic_label = |topic: &str| -> String {
        if named.contains(topic) {
            topic.to_owned()
        } else {
            OTHER.to_owned()
        }
    };
    let mut per_topic: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    // (topic label, partition label) -> (hwm, log start, size); overflow rows are sums.
    let mut per_partition: BTreeMap<(String, String), (i64, i64, u64)> = BTreeMap::new();
    for p in &input.partitions {
        let label = topic_label(&p.topic);
        let entry = per_topic.entry(label.clone()).or_default();
        entry.0 = entry.0.saturating_add(p.bytes_in);
        entry.1 = entry.1.saturating_add(p.bytes_out);
        let partition = if label == OTHER {
            ALL.to_owned()
        } else {
            p.partition.to_string()
        };
        let row = per_partition.entry((label, partition)).or_default();
        row.0 = row.0.saturating_add(p.high_watermark);
        row.1 = row.1.saturating_add(p.log_start_offset);
        row.2 = row.2.saturating_add(p.size_bytes);
    }
    family(&mut e, BYTES_IN);
    for (topic, (bytes_in, _)) in &per_topic {
        e.sample(BYTES_IN, &[("topic", topic)], f(*bytes_in));
    }
    family(&mut e, BYTES_OUT);
    for (topic, (_, bytes_out)) in &per_topic {
        e.sample(BYTES_OUT, &[("topic", topic)], f(*bytes_out));
    }
    for (name, pick) in [(HWM, 0usize), (LOG_START, 1), (LOG_SIZE, 2)] {
        family(&mut e, name);
        for ((topic, partition), (hwm, start, size)) in &per_partition {
            let value = match pick {
                0 => fi(*hwm),
                1 => fi(*start),
                _ => f(*size),
            };
            e.sample(name, &[("topic", topic), ("partition", partition)], value);
        }
    }

    // Group lag, with the group cap (and the topic cap for the topic label).
    let high_watermarks: HashMap<(&str, i32), i64> = input
        .partitions
        .iter()
        .map(|p| ((&*p.topic, p.partition), p.high_watermark))
        .collect();
    let groups = capped(
        input.committed.iter().map(|c| c.0.as_str()),
        MAX_GROUP_LABELS,
    );
    let mut lags: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for (group, topic, partition, offset) in &input.committed {
        // Offsets of deleted topics have no lag to show.
        let Some(hwm) = high_watermarks.get(&(topic.as_str(), *partition)) else {
            continue;
        };
        let lag = hwm.saturating_sub(*offset).max(0);
        let group = if groups.contains(group.as_str()) {
            group.clone()
        } else {
            OTHER.to_owned()
        };
        let topic = topic_label(topic);
        let partition = if group == OTHER || topic == OTHER {
            ALL.to_owned()
        } else {
            partition.to_string()
        };
        let total = lags.entry((group, topic, partition)).or_default();
        *total = total.saturating_add(lag);
    }
    family(&mut e, GROUP_LAG);
    for ((group, topic, partition), lag) in &lags {
        e.sample(
            GROUP_LAG,
            &[("group", group), ("topic", topic), ("partition", partition)],
            fi(*lag),
        );
    }
    render_transforms(&mut e, &input.transforms, &family);
    e.finish()
}

/// Per pipeline (and per step) sums over its tasks.
fn render_transforms(
    e: &mut Exposition,
    tasks: &[crate::transforms::TaskSnapshot],
    family: &dyn Fn(&mut Exposition, &str),
) {
    #[derive(Default)]
    struct Sums {
        records_in: u64,
        records_out: u64,
        dead: u64,
        lag: i64,
        state_bytes: u64,
        latency: Option<super::HistogramSnapshot>,
        steps: BTreeMap<String, (u64, usize)>,
    }
    let mut pipelines: BTreeMap<&str, Sums> = BTreeMap::new();
    for task in tasks {
        let sums = pipelines.entry(task.pipeline.as_str()).or_default();
        sums.records_in += task.stats.records_in;
        sums.records_out += task.stats.records_out;
        sums.dead += task.stats.dead_letters;
        sums.lag += task.stats.lag();
        sums.state_bytes += task.stats.checkpoint_bytes;
        match &mut sums.latency {
            Some(total) => total.merge(&task.latency),
            None => sums.latency = Some(task.latency.clone()),
        }
        for step in &task.stats.steps {
            let entry = sums.steps.entry(step.name.to_string()).or_default();
            entry.0 += step.dropped;
            entry.1 += step.state_entries;
        }
    }
    family(e, TRANSFORM_IN);
    for (name, s) in &pipelines {
        e.sample(TRANSFORM_IN, &[("pipeline", name)], f(s.records_in));
    }
    family(e, TRANSFORM_OUT);
    for (name, s) in &pipelines {
        e.sample(TRANSFORM_OUT, &[("pipeline", name)], f(s.records_out));
    }
    family(e, TRANSFORM_DROPPED);
    for (name, s) in &pipelines {
        for (step, (dropped, _)) in &s.steps {
            e.sample(
                TRANSFORM_DROPPED,
                &[("pipeline", name), ("step", step)],
                f(*dropped),
            );
        }
    }
    family(e, TRANSFORM_DEAD);
    for (name, s) in &pipelines {
        e.sample(TRANSFORM_DEAD, &[("pipeline", name)], f(s.dead));
    }
    family(e, TRANSFORM_LAG);
    for (name, s) in &pipelines {
        e.sample(TRANSFORM_LAG, &[("pipeline", name)], fi(s.lag));
    }
    family(e, TRANSFORM_STATE);
    for (name, s) in &pipelines {
        for (step, (_, entries)) in &s.steps {
            let entries = u64::try_from(*entries).unwrap_or(u64::MAX);
            e.sample(
                TRANSFORM_STATE,
                &[("pipeline", name), ("step", step)],
                f(entries),
            );
        }
    }
    family(e, TRANSFORM_STATE_BYTES);
    for (name, s) in &pipelines {
        e.sample(
            TRANSFORM_STATE_BYTES,
            &[("pipeline", name)],
            f(s.state_bytes),
        );
    }
    family(e, TRANSFORM_LATENCY);
    for (name, s) in &pipelines {
        if let Some(latency) = &s.latency {
            e.histogram(TRANSFORM_LATENCY, &[("pipeline", name)], latency);
        }
    }
}

/// Gathers a scrape of `node`: counters read directly, log sizes and committed offsets
/// asked of each shard. A shard that does not answer (shutting down) is left out.
pub(crate) async fn gather(node: &Arc<NodeShared>) -> ScrapeInput {
    let mut sizes: HashMap<(Arc<str>, i32), u64> = HashMap::new();
    let mut committed = Vec::new();
    for shard in 0..node.shard_count() {
        let answer = node
            .ask_shard(shard, |s| async move {
                (s.partition_sizes(), s.committed_offsets())
            })
            .await;
        if let Ok((shard_sizes, shard_committed)) = answer {
            sizes.extend(
                shard_sizes
                    .into_iter()
                    .map(|(topic, partition, size)| ((topic, partition), size)),
            );
            committed.extend(shard_committed);
        }
    }
    let mut partitions = Vec::new();
    for topic in node.catalog().topics() {
        for (index, shared) in topic.partitions.iter().enumerate() {
            let partition = i32::try_from(index).unwrap_or(i32::MAX);
            partitions.push(PartitionRow {
                topic: topic.name.clone(),
                partition,
                high_watermark: shared.high_watermark(),
                log_start_offset: shared.log_start_offset(),
                size_bytes: sizes
                    .get(&(topic.name.clone(), partition))
                    .copied()
                    .unwrap_or(0),
                bytes_in: shared.bytes_in(),
                bytes_out: shared.bytes_out(),
            });
        }
    }
    ScrapeInput {
        shards: node.metrics.shards.clone(),
        partitions,
        committed,
        transforms: crate::transforms::deploy::task_snapshots(node, None).await,
    }
}

/// `GET /metrics`: the content type and body.
pub(crate) async fn scrape(node: &Arc<NodeShared>) -> (&'static str, String) {
    (CONTENT_TYPE, render(&gather(node).await))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::exposition::is_conventional_name;

    fn row(topic: &str, partition: i32, hwm: i64) -> PartitionRow {
        PartitionRow {
            topic: Arc::from(topic),
            partition,
            high_watermark: hwm,
            log_start_offset: 0,
            size_bytes: 10,
            bytes_in: 5,
            bytes_out: 1,
        }
    }

    #[test]
    fn every_family_follows_the_naming_convention() {
        for (name, kind, help) in FAMILIES {
            assert!(is_conventional_name(name, *kind), "{name}");
            assert!(!help.is_empty(), "{name} has help");
        }
    }

    #[test]
    fn requests_sum_over_shards_with_kafka_api_names() {
        let a = Arc::new(ShardMetrics::new());
        let b = Arc::new(ShardMetrics::new());
        a.request_done(0, Duration::from_millis(1), false);
        b.request_done(0, Duration::from_millis(2), true);
        b.request_done(8, Duration::from_millis(2), false);
        let text = render(&ScrapeInput {
            shards: vec![a, b],
            ..ScrapeInput::default()
        });
        assert!(
            text.contains("sluice_kafka_requests_total{api=\"Produce\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("sluice_kafka_request_errors_total{api=\"Produce\"} 1\n"));
        assert!(text.contains("sluice_kafka_requests_total{api=\"OffsetCommit\"} 1\n"));
        assert!(text.contains("sluice_kafka_request_duration_seconds_count{api=\"Produce\"} 2\n"));
        assert!(
            !text.contains("api=\"Fetch\""),
            "uncalled APIs are left out"
        );
    }

    #[test]
    fn topics_past_the_cap_are_summed_under_other() {
        let mut partitions: Vec<_> = (0..MAX_TOPIC_LABELS + 5)
            .map(|i| row(&format!("t{i:05}"), 0, 7))
            .collect();
        partitions.push(row("t00000", 1, 3));
        let committed = vec![
            ("g".to_owned(), "t00000".to_owned(), 1, 1),
            (
                "g".to_owned(),
                format!("t{:05}", MAX_TOPIC_LABELS + 1),
                0,
                5,
            ),
            (
                "g".to_owned(),
                format!("t{:05}", MAX_TOPIC_LABELS + 2),
                0,
                6,
            ),
            ("g".to_owned(), "deleted".to_owned(), 0, 6),
        ];
        let text = render(&ScrapeInput {
            shards: vec![Arc::new(ShardMetrics::new())],
            partitions,
            committed,
            transforms: Vec::new(),
        });
        let topics: BTreeSet<&str> = text
            .lines()
            .filter(|l| l.starts_with("sluice_kafka_produce_bytes_total{"))
            .filter_map(|l| l.split('"').nth(1))
            .collect();
        assert_eq!(topics.len(), MAX_TOPIC_LABELS + 1);
        assert!(text.contains("sluice_kafka_produce_bytes_total{topic=\"_other\"} 25\n"));
        assert!(
            text.contains(
                "sluice_partition_high_watermark{topic=\"_other\",partition=\"_all\"} 35\n"
            )
        );
        assert!(
            text.contains("sluice_partition_high_watermark{topic=\"t00000\",partition=\"1\"} 3\n")
        );
        assert!(text.contains(
            "sluice_group_lag_records{group=\"g\",topic=\"t00000\",partition=\"1\"} 2\n"
        ));
        // (7 - 5) + (7 - 6), summed; the deleted topic has no row.
        assert!(text.contains(
            "sluice_group_lag_records{group=\"g\",topic=\"_other\",partition=\"_all\"} 3\n"
        ));
        assert!(!text.contains("deleted"));
    }
}
