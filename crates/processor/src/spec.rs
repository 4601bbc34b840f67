//! Pipeline specs: the TOML a user deploys, parsed and checked into a [`PipelineSpec`].
//!
//! Every error names the line (and column) of the file it comes from, so `sluice
//! transform deploy` can point at it.
//!
//! # The format
//!
//! ```toml
//! name = "iot-readings"          # required: [a-zA-Z0-9._-], 1 to 200 bytes
//! inputs = ["readings"]          # required: one or more topics
//! format = "json"                # "json" (default) | "bytes"
//! time = "ts"                    # event time (ms) expression; default "timestamp" (the record's)
//! start = "latest"               # "latest" (default) | "earliest": where a new pipeline starts
//! output = "readings-clean"      # topic for what leaves the last step
//! dead_letter = "readings-dlq"   # topic for records a step fails on
//! checkpoint_interval = "1s"     # default 1s, from 10ms to 1h
//!
//! [[step]]                       # steps run in file order; each has exactly one operator
//! name = "valid"                 # default "<index>-<operator>", e.g. "1-filter"; unique
//! filter = "exists(device) && temperature > -40"
//! to = "valid-readings"          # any step: a side output; the next step gets this step's input
//! ```
//!
//! Operators (expressions are [`Expr`]s; fields are dotted paths such as `b.c`):
//!
//! | key | value |
//! |---|---|
//! | `filter` | predicate |
//! | `map` | `{ select = [fields], drop = [fields], rename = { from = "to" }, set = { field = expr }, key = expr, headers = { name = expr } }`, at least one |
//! | `project` | `[fields]`: `map` with only `select` |
//! | `key_by` | expression of the new key |
//! | `window` | `{ type = "tumbling" \| "hopping" \| "session", size, advance (hopping, <= size), gap (session only), lateness = 0, emit = "close" \| "update" }`, with `aggregate = { field = "fn(expr)" }`, fn one of count() sum min max avg first last distinct_count |
//! | `dedupe` | `{ by = expr (default: the key), within = duration }` |
//! | `route` | `[{ when = predicate, to = topic, keep = false }, …]`, at least one rule |
//! | `join` | `{ table = topic, on = expr (default: the key), into = field, max_entries = 100000 (1 to 10000000), missing = "keep" \| "drop" }` |
//!
//! Durations are `"250ms"`, `"10s"`, `"5m"`, `"1h"` or an integer of milliseconds, and
//! more than 0 (`lateness` may be 0). Topic names follow Kafka's rules. With
//! `format = "bytes"`, expressions that read the JSON value and steps that reshape it
//! (`map` fields, `project`, `join`) are refused. A pipeline must write somewhere (an
//! `output`, a side output or a route), and never to one of its inputs.

mod parse;
mod spanned;

use std::sync::Arc;

use crate::expr::Expr;

pub use spanned::line_column;

/// A deploy-time error: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SpecError {
    /// 1-based line in the spec file.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, for a person.
    pub message: String,
}

/// Where a pipeline starts reading an input partition it has no checkpoint for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The log start offset.
    Earliest,
    /// The high watermark when the pipeline first runs.
    Latest,
}

/// How the input values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Parsed as JSON; a record that is not goes to the dead-letter topic.
    Json,
    /// Raw bytes; operators that need JSON fields are refused at deploy.
    Bytes,
}

/// Where event time comes from.
#[derive(Debug, Clone)]
pub enum EventTime {
    /// The record's Kafka timestamp.
    Timestamp,
    /// An expression giving milliseconds since the epoch (a number).
    Field(Expr),
}

/// A checked pipeline.
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    /// Unique name (`[a-zA-Z0-9._-]`, at most 200 bytes).
    pub name: String,
    /// Input topics (all partitions of each).
    pub inputs: Vec<String>,
    /// How input values are read.
    pub format: Format,
    /// Event time.
    pub time: EventTime,
    /// Where a new pipeline starts.
    pub start: StartFrom,
    /// Topic for records leaving the last step (`None`: the chain ends in side outputs).
    pub output: Option<String>,
    /// Topic for records that fail at run time.
    pub dead_letter: Option<String>,
    /// How often state and input position are checkpointed.
    pub checkpoint_interval_ms: u64,
    /// The operator chain.
    pub steps: Vec<Step>,
    /// Line of each top-level key, for later errors (missing topics) that must point at
    /// the file.
    pub lines: SpecLines,
}

/// Lines of the places broker-side checks report on.
#[derive(Debug, Clone, Default)]
pub struct SpecLines {
    /// Line of each input topic name, in `inputs` order.
    pub inputs: Vec<usize>,
    /// Line of `output`.
    pub output: usize,
    /// Line of `dead_letter`.
    pub dead_letter: usize,
}

/// One operator in the chain.
#[derive(Debug, Clone)]
pub struct Step {
    /// Name for metrics and errors (default `<index>-<kind>`).
    pub name: Arc<str>,
    /// What it does.
    pub kind: StepKind,
    /// A side output: the step's results go to this topic and the next step gets the
    /// records this step got.
    pub to: Option<String>,
    /// Line of the step in the spec file.
    pub line: usize,
}

/// The operators.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// Keeps records for which the predicate holds.
    Filter(Expr),
    /// Reshapes the JSON value, key and headers.
    Map(MapSpec),
    /// Sets the key (the output is partitioned by it).
    KeyBy(Expr),
    /// Windows and aggregates per key.
    Window(WindowSpec),
    /// Drops a record whose key (or `by`) was seen within the time window.
    Dedupe(DedupeSpec),
    /// Sends records to topics by predicate.
    Route(Vec<RouteRule>),
    /// Enriches records with the latest value for their key from a compacted topic.
    Join(JoinSpec),
}

/// `map` (and `project`, which is `map` with `select`).
#[derive(Debug, Clone, Default)]
pub struct MapSpec {
    /// Keep only these fields (dotted paths), when given.
    pub select: Option<Vec<String>>,
    /// Remove these fields.
    pub drop: Vec<String>,
    /// Rename fields: (from, to).
    pub rename: Vec<(String, String)>,
    /// Set fields to computed values (applied in order, after select/drop/rename; they
    /// see the record as it came in).
    pub set: Vec<(String, Expr)>,
    /// New key (rendered as a string, or raw bytes for a JSON string).
    pub key: Option<Expr>,
    /// Set headers to computed values (as strings).
    pub headers: Vec<(String, Expr)>,
}

/// Window shapes on event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Fixed, non-overlapping windows `[n*size, (n+1)*size)`.
    Tumbling {
        /// Length in ms.
        size_ms: i64,
    },
    /// Fixed windows of `size_ms` starting every `advance_ms`.
    Hopping {
        /// Length in ms.
        size_ms: i64,
        /// Start-to-start distance in ms.
        advance_ms: i64,
    },
    /// Activity windows per key, closed after `gap_ms` without records.
    Session {
        /// Inactivity gap in ms.
        gap_ms: i64,
    },
}

/// When window results are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitPolicy {
    /// Once, when the watermark passes the window end plus the allowed lateness.
    Close,
    /// On every record that changes the window, and at close.
    Update,
}

/// Aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateFn {
    /// Number of records.
    Count,
    /// Sum of a number.
    Sum,
    /// Minimum of a number.
    Min,
    /// Maximum of a number.
    Max,
    /// Mean of a number.
    Avg,
    /// Value of the first record (by event time, then arrival).
    First,
    /// Value of the last record (by event time, then arrival).
    Last,
    /// Number of distinct values.
    DistinctCount,
}

/// One output field of a window: `name = "fn(expr)"`.
#[derive(Debug, Clone)]
pub struct Aggregate {
    /// Output field name.
    pub name: String,
    /// The function.
    pub function: AggregateFn,
    /// Its argument (`None` for `count()`).
    pub argument: Option<Expr>,
}

/// `window` + `aggregate`.
#[derive(Debug, Clone)]
pub struct WindowSpec {
    /// Shape.
    pub kind: WindowKind,
    /// Records up to this late (event time behind the watermark) still count.
    pub lateness_ms: i64,
    /// When results are emitted.
    pub emit: EmitPolicy,
    /// Output fields.
    pub aggregates: Vec<Aggregate>,
}

/// `dedupe`.
#[derive(Debug, Clone)]
pub struct DedupeSpec {
    /// What identifies a duplicate (default: the key).
    pub by: Option<Expr>,
    /// How long (event time) an identity is remembered.
    pub within_ms: i64,
}

/// One rule of `route`: records for which `when` holds go to `to`.
#[derive(Debug, Clone)]
pub struct RouteRule {
    /// Predicate.
    pub when: Expr,
    /// Destination topic.
    pub to: String,
    /// Also keep the record in the chain.
    pub keep: bool,
    /// Line of the rule, for the missing-topic check.
    pub line: usize,
}

/// What `join` does with a record whose key is not in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinMissing {
    /// Pass it on without the field (left join).
    Keep,
    /// Drop it (inner join).
    Drop,
}

/// `join`.
#[derive(Debug, Clone)]
pub struct JoinSpec {
    /// The compacted topic holding the table (key → latest JSON value).
    pub table: String,
    /// Lookup key (default: the record key).
    pub on: Option<Expr>,
    /// Field of the output the table value goes into.
    pub into: String,
    /// Most entries kept; beyond it the least recently updated are dropped.
    pub max_entries: usize,
    /// Records with no table entry.
    pub missing: JoinMissing,
}

impl PipelineSpec {
    /// Parses and checks a spec file.
    ///
    /// # Errors
    /// [`SpecError`] at the first problem, with its line and column.
    pub fn parse(source: &str) -> Result<Self, SpecError> {
        parse::parse(source)
    }

    /// Every topic the pipeline writes to: output, dead letter, side outputs and routes.
    pub fn output_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = Vec::new();
        let mut add = |t: &String| {
            if !topics.contains(t) {
                topics.push(t.clone());
            }
        };
        if let Some(t) = &self.output {
            add(t);
        }
        for step in &self.steps {
            if let Some(t) = &step.to {
                add(t);
            }
            if let StepKind::Route(rules) = &step.kind {
                for rule in rules {
                    add(&rule.to);
                }
            }
        }
        if let Some(t) = &self.dead_letter {
            add(t);
        }
        topics
    }

    /// Tables the pipeline's joins read.
    pub fn tables(&self) -> Vec<String> {
        let mut tables: Vec<String> = Vec::new();
        for step in &self.steps {
            if let StepKind::Join(join) = &step.kind
                && !tables.contains(&join.table)
            {
                tables.push(join.table.clone());
            }
        }
        tables
    }
}
