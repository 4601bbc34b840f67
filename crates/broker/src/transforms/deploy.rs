//! Deploying, pausing, resuming and deleting pipelines, and describing them: what the
//! admin API's `/v1/transforms` endpoints (and so `sluice transform …`) call.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};
use sluice_processor::spec::{Format, PipelineSpec, SpecError, StepKind};
use tracing::info;

use super::io::CHANGELOG_TOPIC;
use super::{Deployed, PipelineRecord, TaskSnapshot, default_dead_letter};
use crate::handler::admin::{TopicPlan, create_topic_on};
use crate::shard::NodeShared;
use crate::topic_config::TopicConfig;

/// Partitions of the changelog topic.
const CHANGELOG_PARTITIONS: i32 = 16;

/// A refused request: HTTP status and a message for a person.
#[derive(Debug, Clone)]
pub(crate) struct Refused {
    pub(crate) status: u16,
    pub(crate) message: String,
}

impl Refused {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn at(line: usize, message: impl std::fmt::Display) -> Self {
        Self::new(
            400,
            SpecError {
                line,
                column: 1,
                message: message.to_string(),
            }
            .to_string(),
        )
    }
}

/// Every topic the spec names must exist (the default dead-letter topic excepted: it is
/// created); errors point at the line naming the topic.
fn check_topics(node: &NodeShared, spec: &PipelineSpec) -> Result<(), Refused> {
    let missing = |topic: &str| node.topic(topic).is_none();
    let hint = "create it first (sluice topic create)";
    for (i, input) in spec.inputs.iter().enumerate() {
        if missing(input) {
            let line = spec.lines.inputs.get(i).copied().unwrap_or(1);
            return Err(Refused::at(
                line,
                format!("input topic `{input}` does not exist; {hint}"),
            ));
        }
        if spec.output_topics().contains(input) {
            let line = spec.lines.inputs.get(i).copied().unwrap_or(1);
            return Err(Refused::at(
                line,
                format!("topic `{input}` is both an input and an output of the pipeline"),
            ));
        }
    }
    if let Some(output) = &spec.output
        && missing(output)
    {
        return Err(Refused::at(
            spec.lines.output,
            format!("output topic `{output}` does not exist; {hint}"),
        ));
    }
    if let Some(dead_letter) = &spec.dead_letter
        && missing(dead_letter)
    {
        return Err(Refused::at(
            spec.lines.dead_letter,
            format!("dead-letter topic `{dead_letter}` does not exist; {hint}"),
        ));
    }
    for step in &spec.steps {
        if let Some(to) = &step.to
            && missing(to)
        {
            return Err(Refused::at(
                step.line,
                format!("topic `{to}` does not exist; {hint}"),
            ));
        }
        match &step.kind {
            StepKind::Route(rules) => {
                for rule in rules {
                    if missing(&rule.to) {
                        return Err(Refused::at(
                            rule.line,
                            format!("route topic `{}` does not exist; {hint}", rule.to),
                        ));
                    }
                }
            }
            StepKind::Join(join) => match node.topic(&join.table) {
                None => {
                    return Err(Refused::at(
                        step.line,
                        format!("table topic `{}` does not exist; {hint}", join.table),
                    ));
                }
                Some(topic) if !topic.config.cleanup_compact => {
                    return Err(Refused::at(
                        step.line,
                        format!(
                            "table topic `{}` is not compacted; a table needs cleanup.policy=compact",
                            join.table
                        ),
                    ));
                }
                Some(_) => {}
            },
            _ => {}
        }
    }
    Ok(())
}

/// Records sampled from the end of each input partition to see whether it holds JSON.
const SAMPLE_RECORDS: i64 = 10;

/// An input that needs JSON (format = "json") but whose latest records are all
/// something else is refused at deploy, pointing at the input; a stray bad record is
/// not (it goes to the dead-letter topic at run time).
async fn check_inputs_are_json(node: &Arc<NodeShared>, spec: &PipelineSpec) -> Result<(), Refused> {
    if spec.format != Format::Json {
        return Ok(());
    }
    for (i, input) in spec.inputs.iter().enumerate() {
        let values: Vec<Bytes> = super::io::tail_values(node, input, SAMPLE_RECORDS)
            .await
            .into_iter()
            .flatten()
            .collect();
        let json = values
            .iter()
            .filter(|v| serde_json::from_slice::<serde::de::IgnoredAny>(v).is_ok())
            .count();
        if !values.is_empty() && json == 0 {
            let line = spec.lines.inputs.get(i).copied().unwrap_or(1);
            let example =
                String::from_utf8_lossy(values.last().map_or(&[][..], |v| &v[..v.len().min(40)]))
                    .into_owned();
            return Err(Refused::at(
                line,
                format!(
                    "input topic `{input}` does not hold JSON (none of its last {} records parse, e.g. {example:?}); set format = \"bytes\" to read raw values",
                    values.len()
                ),
            ));
        }
    }
    Ok(())
}

/// Creates an internal topic unless it exists.
async fn ensure_topic(
    node: &Arc<NodeShared>,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Result<(), Refused> {
    if node.topic(name).is_some() {
        return Ok(());
    }
    let configs: BTreeMap<String, String> = configs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let config = TopicConfig::new(configs, &node.config.topic_defaults)
        .map_err(|e| Refused::new(500, format!("cannot configure topic {name}: {e}")))?;
    let plan = TopicPlan {
        name: name.to_owned(),
        partitions,
        config,
    };
    match create_topic_on(node, plan).await {
        Ok(_) => Ok(()),
        // Created meanwhile by someone else.
        Err(_) if node.topic(name).is_some() => Ok(()),
        Err(e) => Err(Refused::new(
            500,
            format!("cannot create topic {name}: {}", e.message),
        )),
    }
}

/// Deploys (or redeploys, starting afresh) the pipeline in `source`.
pub(crate) async fn deploy(
    node: &Arc<NodeShared>,
    name: &str,
    source: String,
) -> Result<Value, Refused> {
    let mut spec = PipelineSpec::parse(&source).map_err(|e| Refused::new(400, e.to_string()))?;
    if spec.name != name {
        return Err(Refused::new(
            400,
            format!("the spec names pipeline `{}`, not `{name}`", spec.name),
        ));
    }
    let default_dlq = spec.dead_letter.is_none();
    default_dead_letter(&mut spec);
    // Check everything before creating anything; the default dead-letter topic is the
    // one topic a deploy creates.
    let mut checked = spec.clone();
    if default_dlq {
        checked.dead_letter = None;
    }
    check_topics(node, &checked)?;
    check_inputs_are_json(node, &spec).await?;
    if default_dlq && let Some(dlq) = &spec.dead_letter {
        ensure_topic(node, dlq, 1, &[]).await?;
    }
    ensure_topic(
        node,
        CHANGELOG_TOPIC,
        CHANGELOG_PARTITIONS,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "16777216"),
            ("min.cleanable.dirty.ratio", "0.1"),
        ],
    )
    .await?;
    let _guard = node.admin_lock.lock().await;
    let previous = node.pipelines().get(&spec.name);
    let generation = node.pipelines().next_generation(&spec.name);
    let deployed = Arc::new(Deployed {
        name: spec.name.clone(),
        generation,
        source,
        spec: Arc::new(spec),
        paused: false,
        deployed_at_ms: crate::handler::now_ms(),
    });
    store(node, &deployed)?;
    node.pipelines_mut().insert(deployed.clone());
    node.pipelines_changed();
    drop(_guard);
    if let Some(previous) = &previous {
        forget(node, previous).await;
    }
    info!(pipeline = %deployed.name, generation = deployed.generation, "pipeline deployed");
    Ok(json!({
        "name": deployed.name,
        "generation": deployed.generation,
        "created": previous.is_none(),
        "dead_letter": deployed.spec.dead_letter,
    }))
}

fn store(node: &NodeShared, deployed: &Deployed) -> Result<(), Refused> {
    node.meta
        .store_pipeline(
            &deployed.name,
            &PipelineRecord {
                generation: deployed.generation,
                paused: deployed.paused,
                deployed_at_ms: deployed.deployed_at_ms,
                spec: deployed.source.clone(),
                deleted: false,
            },
        )
        .map_err(|e| Refused::new(500, format!("cannot store pipeline: {e}")))
}

/// Writes tombstones over the checkpoints of a deployment that is gone, so compaction
/// drops them.
async fn forget(node: &Arc<NodeShared>, gone: &Deployed) {
    let keys = super::checkpoint_keys(node, gone);
    let _ = node
        .ask_shard(0, move |shard| async move {
            let node = shard.node.clone();
            super::io::forget_checkpoints(&node, &shard, keys).await;
        })
        .await;
}

fn not_found(name: &str) -> Refused {
    Refused::new(
        404,
        format!("no pipeline named {name} (see sluice transform list)"),
    )
}

/// Pauses or resumes a pipeline; resuming continues from its checkpoints.
pub(crate) async fn set_paused(
    node: &Arc<NodeShared>,
    name: &str,
    paused: bool,
) -> Result<Value, Refused> {
    let _guard = node.admin_lock.lock().await;
    let current = node.pipelines().get(name).ok_or_else(|| not_found(name))?;
    let updated = Arc::new(Deployed {
        name: current.name.clone(),
        generation: current.generation,
        source: current.source.clone(),
        spec: current.spec.clone(),
        paused,
        deployed_at_ms: current.deployed_at_ms,
    });
    store(node, &updated)?;
    node.pipelines_mut().insert(updated);
    node.pipelines_changed();
    info!(pipeline = name, paused, "pipeline state changed");
    Ok(json!({ "name": name, "state": if paused { "paused" } else { "running" } }))
}

/// Deletes a pipeline: its tasks stop and its checkpoints are forgotten. Its output
/// topics stay.
pub(crate) async fn delete(node: &Arc<NodeShared>, name: &str) -> Result<Value, Refused> {
    let removed = {
        let _guard = node.admin_lock.lock().await;
        let removed = node
            .pipelines_mut()
            .remove(name)
            .ok_or_else(|| not_found(name))?;
        // Kept as a tombstone, so that a later deploy of the name takes a new generation.
        node.meta
            .store_pipeline(
                name,
                &PipelineRecord {
                    generation: removed.generation,
                    paused: true,
                    deployed_at_ms: removed.deployed_at_ms,
                    spec: String::new(),
                    deleted: true,
                },
            )
            .map_err(|e| Refused::new(500, format!("cannot remove pipeline: {e}")))?;
        removed
    };
    node.pipelines_changed();
    forget(node, &removed).await;
    info!(pipeline = name, "pipeline deleted");
    Ok(json!({ "name": name, "deleted": true }))
}

/// Task views of `name` (all pipelines when `None`) from every shard.
pub(crate) async fn task_snapshots(
    node: &Arc<NodeShared>,
    name: Option<&str>,
) -> Vec<TaskSnapshot> {
    let mut all = Vec::new();
    for shard in 0..node.shard_count() {
        let name = name.map(str::to_owned);
        if let Ok(views) = node
            .ask_shard(shard, move |s| async move {
                s.transforms.views(name.as_deref())
            })
            .await
        {
            all.extend(views);
        }
    }
    all
}

/// Totals over a pipeline's tasks.
#[derive(Default)]
struct Totals {
    records_in: u64,
    records_out: u64,
    dropped: u64,
    dead_letters: u64,
    lag: i64,
    state_entries: usize,
    state_bytes: u64,
}

fn totals(tasks: &[TaskSnapshot]) -> Totals {
    let mut t = Totals::default();
    for task in tasks {
        t.records_in += task.stats.records_in;
        t.records_out += task.stats.records_out;
        t.dropped += task.stats.dropped();
        t.dead_letters += task.stats.dead_letters;
        t.lag += task.stats.lag();
        t.state_entries += task.stats.state_entries();
        t.state_bytes += task.stats.checkpoint_bytes;
    }
    t
}

fn state(deployed: &Deployed) -> &'static str {
    if deployed.paused { "paused" } else { "running" }
}

/// `GET /v1/transforms`.
pub(crate) async fn list(node: &Arc<NodeShared>) -> Value {
    let tasks = task_snapshots(node, None).await;
    let pipelines = node.pipelines().all();
    Value::Array(
        pipelines
            .iter()
            .map(|p| {
                let mine: Vec<TaskSnapshot> = tasks
                    .iter()
                    .filter(|t| t.pipeline == p.name)
                    .cloned()
                    .collect();
                let t = totals(&mine);
                json!({
                    "name": p.name,
                    "generation": p.generation,
                    "state": state(p),
                    "inputs": p.spec.inputs,
                    "outputs": p.spec.output_topics(),
                    "tasks": mine.len(),
                    "records_in": t.records_in,
                    "records_out": t.records_out,
                    "lag": t.lag,
                })
            })
            .collect(),
    )
}

/// Latency quantile (seconds) from a cumulative histogram: the upper bound of the
/// bucket holding it.
fn quantile(snapshot: &crate::metrics::HistogramSnapshot, q: f64) -> Option<f64> {
    if snapshot.count == 0 {
        return None;
    }
    // Counts are far below 2^52.
    #[allow(clippy::cast_precision_loss)]
    let rank = (snapshot.count as f64 * q).ceil();
    snapshot
        .buckets
        .iter()
        .find(|(_, cumulative)| {
            #[allow(clippy::cast_precision_loss)]
            let c = *cumulative as f64;
            c >= rank
        })
        .map(|(le, _)| *le)
}

/// `GET /v1/transforms/{name}`.
pub(crate) async fn describe(node: &Arc<NodeShared>, name: &str) -> Result<Value, Refused> {
    let deployed = node.pipelines().get(name).ok_or_else(|| not_found(name))?;
    let mut tasks = task_snapshots(node, Some(name)).await;
    tasks.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let t = totals(&tasks);
    let mut latency = crate::metrics::Histogram::seconds().snapshot(std::iter::empty());
    for task in &tasks {
        latency.merge(&task.latency);
    }
    let steps: Vec<Value> = deployed
        .spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let of_step = tasks.iter().filter_map(|t| t.stats.steps.get(i));
            let (mut records_in, mut records_out, mut dropped, mut errors, mut entries) =
                (0u64, 0u64, 0u64, 0u64, 0usize);
            for s in of_step {
                records_in += s.records_in;
                records_out += s.records_out;
                dropped += s.dropped;
                errors += s.errors;
                entries += s.state_entries;
            }
            json!({
                "name": step.name.as_ref(),
                "kind": kind_name(&step.kind),
                "records_in": records_in,
                "records_out": records_out,
                "dropped": dropped,
                "errors": errors,
                "state_entries": entries,
                "to": step.to,
            })
        })
        .collect();
    Ok(json!({
        "name": deployed.name,
        "generation": deployed.generation,
        "state": state(&deployed),
        "deployed_at_ms": deployed.deployed_at_ms,
        "inputs": deployed.spec.inputs,
        "outputs": deployed.spec.output_topics(),
        "dead_letter": deployed.spec.dead_letter,
        "records_in": t.records_in,
        "records_out": t.records_out,
        "dropped": t.dropped,
        "dead_letters": t.dead_letters,
        "lag": t.lag,
        "state_entries": t.state_entries,
        "state_bytes": t.state_bytes,
        "latency_p50_seconds": quantile(&latency, 0.5),
        "latency_p99_seconds": quantile(&latency, 0.99),
        "steps": steps,
        "tasks": tasks.iter().map(|task| json!({
            "topic": task.topic.as_ref(),
            "partition": task.partition,
            "position": task.stats.position,
            "end_offset": task.stats.end_offset,
            "lag": task.stats.lag(),
            "watermark": task.stats.watermark,
            "records_in": task.stats.records_in,
            "records_out": task.stats.records_out,
            "dead_letters": task.stats.dead_letters,
            "checkpoints": task.stats.checkpoints,
            "replayed_skipped": task.stats.replayed_skipped,
            "restarts": task.restarts,
            "last_error": task.last_error,
        })).collect::<Vec<_>>(),
        "spec": deployed.source,
    }))
}

/// The operator's name as the spec writes it.
pub(crate) fn kind_name(kind: &StepKind) -> &'static str {
    match kind {
        StepKind::Filter(_) => "filter",
        StepKind::Map(_) => "map",
        StepKind::KeyBy(_) => "key_by",
        StepKind::Window(_) => "window",
        StepKind::Dedupe(_) => "dedupe",
        StepKind::Route(_) => "route",
        StepKind::Join(_) => "join",
    }
}
