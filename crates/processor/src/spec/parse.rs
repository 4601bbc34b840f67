//! The checks that turn a spec file into a [`PipelineSpec`], in file order, each failing
//! with the line and column of what it is about.
//!
//! The TOML is first read into a [`spanned::Node`] tree (syntax errors come from the
//! `toml` crate with its span); every key is then matched by hand, so that an unknown key,
//! a wrong type or a bad value names the spec's own vocabulary rather than serde's.

use std::sync::Arc;

use super::spanned::{Entry, Node, Value, line_column, string_offset};
use super::{
    Aggregate, AggregateFn, DedupeSpec, EmitPolicy, EventTime, Format, JoinMissing, JoinSpec,
    MapSpec, PipelineSpec, RouteRule, SpecError, SpecLines, StartFrom, Step, StepKind, WindowKind,
    WindowSpec,
};
use crate::expr::Expr;

const PIPELINE_KEYS: &[&str] = &[
    "name",
    "inputs",
    "format",
    "time",
    "start",
    "output",
    "dead_letter",
    "checkpoint_interval",
    "step",
];
/// The operators; a step has exactly one of these keys.
const KINDS: &[&str] = &[
    "filter", "map", "project", "key_by", "window", "dedupe", "route", "join",
];
const STEP_KEYS: &[&str] = &[
    "filter",
    "map",
    "project",
    "key_by",
    "window",
    "dedupe",
    "route",
    "join",
    "aggregate",
    "name",
    "to",
];
const MAP_KEYS: &[&str] = &["select", "drop", "rename", "set", "key", "headers"];
const WINDOW_KEYS: &[&str] = &["type", "size", "advance", "gap", "lateness", "emit"];
const DEDUPE_KEYS: &[&str] = &["by", "within"];
const ROUTE_KEYS: &[&str] = &["when", "to", "keep"];
const JOIN_KEYS: &[&str] = &["table", "on", "into", "max_entries", "missing"];
const AGGREGATE_FNS: &[(&str, AggregateFn)] = &[
    ("count", AggregateFn::Count),
    ("sum", AggregateFn::Sum),
    ("min", AggregateFn::Min),
    ("max", AggregateFn::Max),
    ("avg", AggregateFn::Avg),
    ("first", AggregateFn::First),
    ("last", AggregateFn::Last),
    ("distinct_count", AggregateFn::DistinctCount),
];

/// Longest pipeline or step name, in bytes.
const MAX_NAME_LEN: usize = 200;
/// Kafka's longest topic name.
const MAX_TOPIC_LEN: usize = 249;
const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 1_000;
const MIN_CHECKPOINT_INTERVAL_MS: u64 = 10;
const MAX_CHECKPOINT_INTERVAL_MS: u64 = 3_600_000;
const DEFAULT_JOIN_MAX_ENTRIES: usize = 100_000;
const MAX_JOIN_MAX_ENTRIES: usize = 10_000_000;

const DURATION_HINT: &str = "a duration such as \"250ms\", \"10s\", \"5m\" or \"1h\"";

pub(super) fn parse(source: &str) -> Result<PipelineSpec, SpecError> {
    let root: Value = toml::from_str(source).map_err(|error| syntax_error(source, &error))?;
    let Value::Table(entries) = root else {
        return Err(Parser::new(source).error(0, "a spec is a TOML table of keys"));
    };
    Parser::new(source).pipeline(&entries)
}

/// A TOML syntax error, at the place the `toml` crate found it.
fn syntax_error(source: &str, error: &toml::de::Error) -> SpecError {
    let offset = error.span().map_or(0, |span| span.start);
    let (line, column) = line_column(source, offset);
    // toml_edit writes what it found on one line and what it expected on the next.
    let lines: Vec<&str> = error
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let message = if lines.is_empty() {
        "invalid TOML".to_owned()
    } else {
        lines.join(": ")
    };
    SpecError {
        line,
        column,
        message,
    }
}

struct Parser<'s> {
    source: &'s str,
    format: Format,
    /// Topics the pipeline writes to, with the offset of each mention (loop check).
    written: Vec<(String, usize)>,
}

impl<'s> Parser<'s> {
    fn new(source: &'s str) -> Self {
        Self {
            source,
            format: Format::Json,
            written: Vec::new(),
        }
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> SpecError {
        let (line, column) = line_column(self.source, offset);
        SpecError {
            line,
            column,
            message: message.into(),
        }
    }

    fn line(&self, offset: usize) -> usize {
        line_column(self.source, offset).0
    }

    fn pipeline(&mut self, entries: &[Entry]) -> Result<PipelineSpec, SpecError> {
        // `format` decides which expressions are allowed, wherever it is in the file.
        if let Some(entry) = entries.iter().find(|e| e.key == "format") {
            self.format = self.choice(
                &entry.value,
                "`format`",
                &[("json", Format::Json), ("bytes", Format::Bytes)],
            )?;
        }
        let mut name = None;
        let mut inputs = None;
        let mut time = EventTime::Timestamp;
        let mut start = StartFrom::Latest;
        let mut output = None;
        let mut dead_letter = None;
        let mut checkpoint_interval_ms = DEFAULT_CHECKPOINT_INTERVAL_MS;
        let mut steps = Vec::new();
        let mut lines = SpecLines::default();
        for entry in entries {
            let value = &entry.value;
            match entry.key.as_str() {
                "name" => name = Some(self.name(value, "`name`")?),
                "inputs" => {
                    let (topics, topic_lines) = self.inputs(value)?;
                    inputs = Some(topics);
                    lines.inputs = topic_lines;
                }
                "format" => {}
                "time" => time = self.event_time(value)?,
                "start" => {
                    start = self.choice(
                        value,
                        "`start`",
                        &[
                            ("latest", StartFrom::Latest),
                            ("earliest", StartFrom::Earliest),
                        ],
                    )?;
                }
                "output" => {
                    output = Some(self.written_topic(value, "`output`")?);
                    lines.output = self.line(value.span.start);
                }
                "dead_letter" => {
                    dead_letter = Some(self.written_topic(value, "`dead_letter`")?);
                    lines.dead_letter = self.line(value.span.start);
                }
                "checkpoint_interval" => {
                    let ms = self.duration_ms(value, "`checkpoint_interval`", false)?;
                    if !(MIN_CHECKPOINT_INTERVAL_MS..=MAX_CHECKPOINT_INTERVAL_MS).contains(&ms) {
                        return Err(self.error(
                            value.span.start,
                            format!(
                                "`checkpoint_interval` must be between 10ms and 1h, found {ms}ms"
                            ),
                        ));
                    }
                    checkpoint_interval_ms = ms;
                }
                "step" => steps = self.steps(entry)?,
                _ => return Err(self.unknown_key(entry, PIPELINE_KEYS, None)),
            }
        }
        let Some(name) = name else {
            return Err(self.error(
                0,
                "missing `name`: every pipeline needs one, e.g. name = \"iot-readings\"",
            ));
        };
        let Some(inputs) = inputs else {
            return Err(self.error(
                0,
                "missing `inputs`: the topics to read, e.g. inputs = [\"readings\"]",
            ));
        };
        // A pipeline writing a topic it reads would read its own output forever.
        for (topic, offset) in &self.written {
            if inputs.contains(topic) {
                return Err(self.error(
                    *offset,
                    format!(
                        "topic `{topic}` is also an input: the pipeline would read what it writes"
                    ),
                ));
            }
        }
        let writes_somewhere = output.is_some()
            || steps
                .iter()
                .any(|step: &Step| step.to.is_some() || matches!(step.kind, StepKind::Route(_)));
        if !writes_somewhere {
            return Err(self.error(
                0,
                "the pipeline writes nowhere: give it an `output`, a step with `to`, or a `route` step",
            ));
        }
        Ok(PipelineSpec {
            name,
            inputs,
            format: self.format,
            time,
            start,
            output,
            dead_letter,
            checkpoint_interval_ms,
            steps,
            lines,
        })
    }

    fn inputs(&self, node: &Node) -> Result<(Vec<String>, Vec<usize>), SpecError> {
        let Value::Array(items) = &node.value else {
            return Err(self.error(
                node.span.start,
                format!(
                    "`inputs` must be an array of topic names, e.g. inputs = [\"readings\"]; found {}",
                    node.value.type_name()
                ),
            ));
        };
        if items.is_empty() {
            return Err(self.error(node.span.start, "`inputs` needs at least one topic"));
        }
        let mut topics: Vec<String> = Vec::new();
        let mut lines = Vec::new();
        for item in items {
            let topic = self.topic(item, "an input")?;
            if topics.contains(&topic) {
                return Err(self.error(item.span.start, format!("input `{topic}` is listed twice")));
            }
            topics.push(topic);
            lines.push(self.line(item.span.start));
        }
        Ok((topics, lines))
    }

    fn event_time(&self, node: &Node) -> Result<EventTime, SpecError> {
        let text = self.string(node, "`time`")?;
        if text.trim() == "timestamp" {
            return Ok(EventTime::Timestamp);
        }
        Ok(EventTime::Field(self.expr_at(node, text, 0, "`time`")?))
    }

    fn steps(&mut self, entry: &Entry) -> Result<Vec<Step>, SpecError> {
        let Value::Array(items) = &entry.value.value else {
            return Err(self.error(
                entry.key_span.start,
                "`step` must be an array of tables: write each step as [[step]]",
            ));
        };
        let mut steps: Vec<Step> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let index = i + 1;
            let (step, name_offset) = self.step(index, item)?;
            if let Some(other) = steps.iter().position(|s| s.name == step.name) {
                return Err(self.error(
                    name_offset,
                    format!(
                        "step {index} is named `{}` like step {}; step names must be unique",
                        step.name,
                        other + 1
                    ),
                ));
            }
            steps.push(step);
        }
        Ok(steps)
    }

    /// One `[[step]]`, and the offset its name is reported at.
    fn step(&mut self, index: usize, node: &Node) -> Result<(Step, usize), SpecError> {
        let context = format!("step {index}");
        let Value::Table(entries) = &node.value else {
            return Err(self.error(
                node.span.start,
                format!(
                    "step {index} must be a table, found {}",
                    node.value.type_name()
                ),
            ));
        };
        if let Some(entry) = entries
            .iter()
            .find(|e| !STEP_KEYS.contains(&e.key.as_str()))
        {
            return Err(self.unknown_key(entry, STEP_KEYS, Some(&context)));
        }
        let kinds: Vec<&Entry> = entries
            .iter()
            .filter(|e| KINDS.contains(&e.key.as_str()))
            .collect();
        let kind_entry = match kinds.as_slice() {
            [] => {
                return Err(self.error(
                    node.span.start,
                    format!(
                        "step {index} has no operator; give it one of: {}",
                        KINDS.join(", ")
                    ),
                ));
            }
            [one] => *one,
            [first, second] => {
                return Err(self.error(
                    node.span.start,
                    format!(
                        "step {index} has both `{}` and `{}`; a step has exactly one operator, \
                         so make each its own [[step]]",
                        first.key, second.key
                    ),
                ));
            }
            many => {
                let names: Vec<String> = many.iter().map(|e| format!("`{}`", e.key)).collect();
                return Err(self.error(
                    node.span.start,
                    format!(
                        "step {index} has {}; a step has exactly one operator, so make each its own [[step]]",
                        names.join(", ")
                    ),
                ));
            }
        };
        let kind_name = kind_entry.key.as_str();
        let aggregate = entries.iter().find(|e| e.key == "aggregate");
        if let Some(aggregate) = aggregate
            && kind_name != "window"
        {
            return Err(self.error(
                aggregate.key_span.start,
                format!(
                    "`aggregate` belongs to a `window` step, and step {index} is a `{kind_name}`"
                ),
            ));
        }
        let value = &kind_entry.value;
        let what = |key: &str| format!("`{key}` of step {index}");
        let kind = match kind_name {
            "filter" => StepKind::Filter(self.expr(value, &what("filter"))?),
            "map" => StepKind::Map(self.map(value, index)?),
            "project" => {
                self.require_json(kind_entry, &what("project"))?;
                StepKind::Map(MapSpec {
                    select: Some(self.paths(value, &what("project"))?),
                    ..MapSpec::default()
                })
            }
            "key_by" => StepKind::KeyBy(self.expr(value, &what("key_by"))?),
            "window" => StepKind::Window(self.window(index, kind_entry, aggregate)?),
            "dedupe" => StepKind::Dedupe(self.dedupe(index, value)?),
            "route" => StepKind::Route(self.route(index, value)?),
            "join" => StepKind::Join(self.join(index, kind_entry)?),
            _ => unreachable!("KINDS lists every operator matched here"),
        };
        let (name, name_offset) = match entries.iter().find(|e| e.key == "name") {
            Some(entry) => (
                self.name(&entry.value, &what("name"))?,
                entry.value.span.start,
            ),
            None => (format!("{index}-{kind_name}"), node.span.start),
        };
        let to = match entries.iter().find(|e| e.key == "to") {
            Some(entry) => Some(self.written_topic(&entry.value, &what("to"))?),
            None => None,
        };
        let step = Step {
            name: Arc::from(name),
            kind,
            to,
            line: self.line(node.span.start),
        };
        Ok((step, name_offset))
    }

    fn map(&self, node: &Node, index: usize) -> Result<MapSpec, SpecError> {
        let context = format!("`map` of step {index}");
        let entries = self.table(node, &context)?;
        let mut spec = MapSpec::default();
        for entry in entries {
            let value = &entry.value;
            let what = format!("`map.{}` of step {index}", entry.key);
            match entry.key.as_str() {
                "select" => {
                    self.require_json(entry, &what)?;
                    spec.select = Some(self.paths(value, &what)?);
                }
                "drop" => {
                    self.require_json(entry, &what)?;
                    spec.drop = self.paths(value, &what)?;
                }
                "rename" => {
                    self.require_json(entry, &what)?;
                    for (from, leaf) in self.flat_table(value, &what)? {
                        self.path(&from, leaf.key_span.start, &what)?;
                        let to = self
                            .string(&leaf.value, &format!("`map.rename.{from}` of step {index}"))?;
                        self.path(to, leaf.value.span.start, &what)?;
                        spec.rename.push((from, to.to_owned()));
                    }
                }
                "set" => {
                    self.require_json(entry, &what)?;
                    for (field, leaf) in self.flat_table(value, &what)? {
                        self.path(&field, leaf.key_span.start, &what)?;
                        let expr =
                            self.expr(&leaf.value, &format!("`map.set.{field}` of step {index}"))?;
                        spec.set.push((field, expr));
                    }
                }
                "key" => spec.key = Some(self.expr(value, &what)?),
                "headers" => {
                    for header in self.table(value, &what)? {
                        let expr = self.expr(
                            &header.value,
                            &format!("header `{}` in `map` of step {index}", header.key),
                        )?;
                        spec.headers.push((header.key.clone(), expr));
                    }
                }
                _ => return Err(self.unknown_key(entry, MAP_KEYS, Some(&context))),
            }
        }
        let changes_nothing = spec.select.is_none()
            && spec.drop.is_empty()
            && spec.rename.is_empty()
            && spec.set.is_empty()
            && spec.key.is_none()
            && spec.headers.is_empty();
        if changes_nothing {
            return Err(self.error(
                node.span.start,
                format!(
                    "{context} changes nothing; give it one of: {}",
                    MAP_KEYS.join(", ")
                ),
            ));
        }
        Ok(spec)
    }

    fn window(
        &self,
        index: usize,
        window: &Entry,
        aggregate: Option<&Entry>,
    ) -> Result<WindowSpec, SpecError> {
        let context = format!("`window` of step {index}");
        let node = &window.value;
        let entries = self.table(node, &context)?;
        let mut shape = None;
        let mut size = None;
        let mut advance = None;
        let mut gap = None;
        let mut lateness_ms = 0;
        let mut emit = EmitPolicy::Close;
        for entry in entries {
            let value = &entry.value;
            let what = format!("`window.{}` of step {index}", entry.key);
            match entry.key.as_str() {
                "type" => {
                    shape = Some(self.choice(
                        value,
                        &what,
                        &[
                            ("tumbling", "tumbling"),
                            ("hopping", "hopping"),
                            ("session", "session"),
                        ],
                    )?);
                }
                "size" => size = Some((self.duration_i64(value, &what, false)?, entry)),
                "advance" => advance = Some((self.duration_i64(value, &what, false)?, entry)),
                "gap" => gap = Some((self.duration_i64(value, &what, false)?, entry)),
                "lateness" => lateness_ms = self.duration_i64(value, &what, true)?,
                "emit" => {
                    emit = self.choice(
                        value,
                        &what,
                        &[("close", EmitPolicy::Close), ("update", EmitPolicy::Update)],
                    )?;
                }
                _ => return Err(self.unknown_key(entry, WINDOW_KEYS, Some(&context))),
            }
        }
        let Some(shape) = shape else {
            return Err(self.error(
                node.span.start,
                format!("{context} needs a `type`: tumbling, hopping or session"),
            ));
        };
        let refuse = |entry: Option<(i64, &Entry)>, why: &str| match entry {
            Some((_, entry)) => Err(self.error(entry.key_span.start, why.to_owned())),
            None => Ok(()),
        };
        let needs = |key: &str| {
            self.error(
                node.span.start,
                format!("a {shape} window needs `{key}` ({context})"),
            )
        };
        let kind = match shape {
            "tumbling" => {
                refuse(
                    advance,
                    "`advance` is for hopping windows; a tumbling window advances by its size",
                )?;
                refuse(
                    gap,
                    "`gap` is for session windows; a tumbling window has a `size`",
                )?;
                let (size_ms, _) = size.ok_or_else(|| needs("size"))?;
                WindowKind::Tumbling { size_ms }
            }
            "hopping" => {
                refuse(
                    gap,
                    "`gap` is for session windows; a hopping window has `size` and `advance`",
                )?;
                let (size_ms, _) = size.ok_or_else(|| needs("size"))?;
                let (advance_ms, advance_entry) = advance.ok_or_else(|| needs("advance"))?;
                if advance_ms > size_ms {
                    return Err(self.error(
                        advance_entry.value.span.start,
                        format!(
                            "`advance` ({advance_ms}ms) is longer than `size` ({size_ms}ms): \
                             windows would skip records; use advance <= size"
                        ),
                    ));
                }
                WindowKind::Hopping {
                    size_ms,
                    advance_ms,
                }
            }
            _ => {
                refuse(
                    size,
                    "a session window has no `size`: it lasts while records arrive less than `gap` apart",
                )?;
                refuse(
                    advance,
                    "`advance` is for hopping windows; a session window has a `gap`",
                )?;
                let (gap_ms, _) = gap.ok_or_else(|| needs("gap"))?;
                WindowKind::Session { gap_ms }
            }
        };
        let Some(aggregate) = aggregate else {
            return Err(self.error(
                window.key_span.start,
                format!(
                    "the window of step {index} needs `aggregate`, \
                     e.g. aggregate = {{ readings = \"count()\" }}"
                ),
            ));
        };
        let context = format!("`aggregate` of step {index}");
        let fields = self.table(&aggregate.value, &context)?;
        if fields.is_empty() {
            return Err(self.error(
                aggregate.value.span.start,
                format!("{context} needs at least one field"),
            ));
        }
        let aggregates = fields
            .iter()
            .map(|field| self.aggregate(index, field))
            .collect::<Result<_, _>>()?;
        Ok(WindowSpec {
            kind,
            lateness_ms,
            emit,
            aggregates,
        })
    }

    /// `name = "fn(expr)"` or `name = "count()"`.
    fn aggregate(&self, index: usize, field: &Entry) -> Result<Aggregate, SpecError> {
        let node = &field.value;
        let what = format!("aggregate `{}` of step {index}", field.key);
        let text = self.string(node, &what)?;
        let at = |decoded: usize| string_offset(self.source, &node.span, decoded);
        let lead = text.len() - text.trim_start().len();
        let trimmed = text.trim();
        let function_len = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(trimmed.len());
        let function = trimmed.get(..function_len).unwrap_or_default();
        let after = trimmed.get(function_len..).unwrap_or_default();
        let open = function_len + (after.len() - after.trim_start().len());
        let shape_ok = !function.is_empty()
            && after.trim_start().starts_with('(')
            && trimmed.ends_with(')')
            && open < trimmed.len() - 1;
        if !shape_ok {
            return Err(self.error(
                at(lead),
                format!(
                    "{what} must be a call such as \"avg(temperature)\" or \"count()\", found \"{text}\""
                ),
            ));
        }
        let Some(&(_, function_kind)) = AGGREGATE_FNS.iter().find(|(n, _)| *n == function) else {
            let names: Vec<&str> = AGGREGATE_FNS.iter().map(|(n, _)| *n).collect();
            return Err(self.error(
                at(lead),
                format!(
                    "unknown aggregate function `{function}`{}; expected one of: {}",
                    match function {
                        "mean" | "average" => " (did you mean `avg`?)".to_owned(),
                        _ => did_you_mean(function, &names),
                    },
                    names.join(", ")
                ),
            ));
        };
        // The argument: between the `(` and the final `)`.
        let inner_start = open + 1;
        let inner = trimmed
            .get(inner_start..trimmed.len() - 1)
            .unwrap_or_default();
        let inner_lead = inner.len() - inner.trim_start().len();
        let argument_offset = lead + inner_start + inner_lead;
        let argument = inner.trim();
        if function_kind == AggregateFn::Count {
            if !argument.is_empty() {
                return Err(self.error(
                    at(argument_offset),
                    format!(
                        "{what}: `count()` takes no argument (to count distinct values use \
                         `distinct_count({argument})`)"
                    ),
                ));
            }
            return Ok(Aggregate {
                name: field.key.clone(),
                function: function_kind,
                argument: None,
            });
        }
        if argument.is_empty() {
            return Err(self.error(
                at(lead + open),
                format!("{what}: `{function}` takes one expression, e.g. {function}(temperature)"),
            ));
        }
        let expr = self.expr_at(node, argument, argument_offset, &what)?;
        Ok(Aggregate {
            name: field.key.clone(),
            function: function_kind,
            argument: Some(expr),
        })
    }

    fn dedupe(&self, index: usize, node: &Node) -> Result<DedupeSpec, SpecError> {
        let context = format!("`dedupe` of step {index}");
        let mut by = None;
        let mut within_ms = None;
        for entry in self.table(node, &context)? {
            let what = format!("`dedupe.{}` of step {index}", entry.key);
            match entry.key.as_str() {
                "by" => by = Some(self.expr(&entry.value, &what)?),
                "within" => within_ms = Some(self.duration_i64(&entry.value, &what, false)?),
                _ => return Err(self.unknown_key(entry, DEDUPE_KEYS, Some(&context))),
            }
        }
        let Some(within_ms) = within_ms else {
            return Err(self.error(
                node.span.start,
                format!("{context} needs `within`: how long an identity is remembered, e.g. within = \"1m\""),
            ));
        };
        Ok(DedupeSpec { by, within_ms })
    }

    fn route(&mut self, index: usize, node: &Node) -> Result<Vec<RouteRule>, SpecError> {
        let Value::Array(items) = &node.value else {
            return Err(self.error(
                node.span.start,
                format!(
                    "`route` of step {index} must be an array of rules, \
                     e.g. route = [{{ when = \"temperature > 80\", to = \"alerts\" }}]; found {}",
                    node.value.type_name()
                ),
            ));
        };
        if items.is_empty() {
            return Err(self.error(
                node.span.start,
                format!("`route` of step {index} needs at least one rule"),
            ));
        }
        let mut rules = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let context = format!("route rule {} of step {index}", i + 1);
            let mut when = None;
            let mut to = None;
            let mut keep = false;
            for entry in self.table(item, &context)? {
                let what = format!("`{}` of {context}", entry.key);
                match entry.key.as_str() {
                    "when" => when = Some(self.expr(&entry.value, &what)?),
                    "to" => to = Some(self.written_topic(&entry.value, &what)?),
                    "keep" => keep = self.boolean(&entry.value, &what)?,
                    _ => return Err(self.unknown_key(entry, ROUTE_KEYS, Some(&context))),
                }
            }
            let Some(when) = when else {
                return Err(self.error(
                    item.span.start,
                    format!("{context} needs `when`: the predicate of the records it sends"),
                ));
            };
            let Some(to) = to else {
                return Err(self.error(
                    item.span.start,
                    format!("{context} needs `to`: the topic it sends records to"),
                ));
            };
            rules.push(RouteRule {
                when,
                to,
                keep,
                line: self.line(item.span.start),
            });
        }
        Ok(rules)
    }

    fn join(&self, index: usize, join: &Entry) -> Result<JoinSpec, SpecError> {
        let context = format!("`join` of step {index}");
        let node = &join.value;
        let entries = self.table(node, &context)?;
        // The table's value goes into a field of the JSON value.
        self.require_json(join, &context)?;
        let mut table = None;
        let mut on = None;
        let mut into = None;
        let mut max_entries = DEFAULT_JOIN_MAX_ENTRIES;
        let mut missing = JoinMissing::Keep;
        for entry in entries {
            let value = &entry.value;
            let what = format!("`join.{}` of step {index}", entry.key);
            match entry.key.as_str() {
                "table" => table = Some(self.topic(value, &what)?),
                "on" => on = Some(self.expr(value, &what)?),
                "into" => {
                    let field = self.string(value, &what)?;
                    self.path(field, value.span.start, &what)?;
                    into = Some(field.to_owned());
                }
                "max_entries" => {
                    let Value::Integer(n) = value.value else {
                        return Err(self.type_error(value, &what, "an integer"));
                    };
                    max_entries = usize::try_from(n)
                        .ok()
                        .filter(|n| (1..=MAX_JOIN_MAX_ENTRIES).contains(n))
                        .ok_or_else(|| {
                            self.error(
                                value.span.start,
                                format!("{what} must be between 1 and 10000000, found {n}"),
                            )
                        })?;
                }
                "missing" => {
                    missing = self.choice(
                        value,
                        &what,
                        &[("keep", JoinMissing::Keep), ("drop", JoinMissing::Drop)],
                    )?;
                }
                _ => return Err(self.unknown_key(entry, JOIN_KEYS, Some(&context))),
            }
        }
        let Some(table) = table else {
            return Err(self.error(
                node.span.start,
                format!("{context} needs `table`: the compacted topic to look records up in"),
            ));
        };
        let Some(into) = into else {
            return Err(self.error(
                node.span.start,
                format!("{context} needs `into`: the field the table's value goes into"),
            ));
        };
        Ok(JoinSpec {
            table,
            on,
            into,
            max_entries,
            missing,
        })
    }

    // ---- values -------------------------------------------------------------------

    fn type_error(&self, node: &Node, what: &str, expected: &str) -> SpecError {
        self.error(
            node.span.start,
            format!(
                "{what} must be {expected}, found {}",
                node.value.type_name()
            ),
        )
    }

    fn string<'n>(&self, node: &'n Node, what: &str) -> Result<&'n str, SpecError> {
        match &node.value {
            Value::String(s) => Ok(s),
            _ => Err(self.type_error(node, what, "a string")),
        }
    }

    fn boolean(&self, node: &Node, what: &str) -> Result<bool, SpecError> {
        match node.value {
            Value::Boolean(b) => Ok(b),
            _ => Err(self.type_error(node, what, "true or false")),
        }
    }

    fn table<'n>(&self, node: &'n Node, what: &str) -> Result<&'n [Entry], SpecError> {
        match &node.value {
            Value::Table(entries) => Ok(entries),
            _ => Err(self.type_error(node, what, "a table")),
        }
    }

    /// A table whose nested tables (from dotted keys, `a.b = …`) become dotted paths.
    fn flat_table<'n>(
        &self,
        node: &'n Node,
        what: &str,
    ) -> Result<Vec<(String, &'n Entry)>, SpecError> {
        fn walk<'n>(entries: &'n [Entry], prefix: &str, out: &mut Vec<(String, &'n Entry)>) {
            for entry in entries {
                let path = if prefix.is_empty() {
                    entry.key.clone()
                } else {
                    format!("{prefix}.{}", entry.key)
                };
                match &entry.value.value {
                    Value::Table(inner) => walk(inner, &path, out),
                    _ => out.push((path, entry)),
                }
            }
        }
        let mut out = Vec::new();
        walk(self.table(node, what)?, "", &mut out);
        Ok(out)
    }

    /// One of a few words.
    fn choice<T: Copy>(
        &self,
        node: &Node,
        what: &str,
        options: &[(&str, T)],
    ) -> Result<T, SpecError> {
        let text = self.string(node, what)?;
        if let Some(&(_, value)) = options.iter().find(|(name, _)| *name == text) {
            return Ok(value);
        }
        let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
        let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        Err(self.error(
            node.span.start,
            format!(
                "{what} must be one of {}, found \"{text}\"{}",
                quoted.join(", "),
                did_you_mean(text, &names)
            ),
        ))
    }

    /// An expression in the string `node`.
    fn expr(&self, node: &Node, what: &str) -> Result<Expr, SpecError> {
        let text = self.string(node, what)?;
        self.expr_at(node, text, 0, what)
    }

    /// Parses `text`, which starts at byte `decoded_start` of the string `node`, reporting
    /// its errors where they are in the file.
    fn expr_at(
        &self,
        node: &Node,
        text: &str,
        decoded_start: usize,
        what: &str,
    ) -> Result<Expr, SpecError> {
        let expr = Expr::parse(text).map_err(|error| {
            self.error(
                string_offset(
                    self.source,
                    &node.span,
                    decoded_start.saturating_add(error.offset),
                ),
                format!("invalid expression in {what}: {}", error.message),
            )
        })?;
        if self.format == Format::Bytes && expr.reads_value() {
            return Err(self.error(
                string_offset(self.source, &node.span, decoded_start),
                format!("`{text}` reads JSON fields but format = \"bytes\" (in {what})"),
            ));
        }
        Ok(expr)
    }

    /// Refuses `entry`, which reshapes the JSON value, when the input is raw bytes.
    fn require_json(&self, entry: &Entry, what: &str) -> Result<(), SpecError> {
        if self.format == Format::Bytes {
            return Err(self.error(
                entry.key_span.start,
                format!("{what} works on JSON fields but format = \"bytes\""),
            ));
        }
        Ok(())
    }

    /// A list of dotted field paths.
    fn paths(&self, node: &Node, what: &str) -> Result<Vec<String>, SpecError> {
        let Value::Array(items) = &node.value else {
            return Err(self.type_error(node, what, "an array of field names"));
        };
        items
            .iter()
            .map(|item| {
                let path = self.string(item, what)?;
                self.path(path, item.span.start, what)?;
                Ok(path.to_owned())
            })
            .collect()
    }

    /// Checks a dotted field path (`a`, `b.c`) found at `offset`.
    fn path(&self, path: &str, offset: usize, what: &str) -> Result<(), SpecError> {
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(self.error(
                offset,
                format!("{what}: `{path}` is not a field name (use names like `a` or `b.c`)"),
            ));
        }
        Ok(())
    }

    /// A pipeline or step name: `[a-zA-Z0-9._-]`, 1 to 200 bytes.
    fn name(&self, node: &Node, what: &str) -> Result<String, SpecError> {
        let text = self.string(node, what)?;
        self.check_name_chars(node, text, what, MAX_NAME_LEN)?;
        Ok(text.to_owned())
    }

    fn check_name_chars(
        &self,
        node: &Node,
        text: &str,
        what: &str,
        max_len: usize,
    ) -> Result<(), SpecError> {
        if text.is_empty() {
            return Err(self.error(node.span.start, format!("{what} is empty")));
        }
        if text.len() > max_len {
            return Err(self.error(
                node.span.start,
                format!(
                    "{what} is {} bytes long; at most {max_len} are allowed",
                    text.len()
                ),
            ));
        }
        if let Some((at, c)) = text
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(self.error(
                string_offset(self.source, &node.span, at),
                format!(
                    "{what} `{text}` contains {c:?}; only letters, digits, '.', '_' and '-' are allowed"
                ),
            ));
        }
        Ok(())
    }

    /// A topic name, by Kafka's rules.
    fn topic(&self, node: &Node, what: &str) -> Result<String, SpecError> {
        let text = self.string(node, what)?;
        if text == "." || text == ".." {
            return Err(self.error(
                node.span.start,
                format!("{what}: `{text}` is not a valid topic name"),
            ));
        }
        self.check_name_chars(node, text, &format!("{what}: topic name"), MAX_TOPIC_LEN)?;
        Ok(text.to_owned())
    }

    /// A topic the pipeline writes to (remembered for the loop check).
    fn written_topic(&mut self, node: &Node, what: &str) -> Result<String, SpecError> {
        let topic = self.topic(node, what)?;
        self.written.push((topic.clone(), node.span.start));
        Ok(topic)
    }

    fn duration_i64(&self, node: &Node, what: &str, allow_zero: bool) -> Result<i64, SpecError> {
        let ms = self.duration_ms(node, what, allow_zero)?;
        i64::try_from(ms).map_err(|_| self.error(node.span.start, format!("{what} is too long")))
    }

    /// `"250ms"`, `"10s"`, `"5m"`, `"1h"`, or an integer of milliseconds.
    fn duration_ms(&self, node: &Node, what: &str, allow_zero: bool) -> Result<u64, SpecError> {
        let ms = match &node.value {
            Value::Integer(n) => u64::try_from(*n).map_err(|_| {
                self.error(
                    node.span.start,
                    format!("{what} must not be negative, found {n}"),
                )
            })?,
            Value::String(text) => parse_duration(text).map_err(|why| {
                self.error(
                    node.span.start,
                    format!("{what} must be {DURATION_HINT}, found \"{text}\"{why}"),
                )
            })?,
            _ => return Err(self.type_error(node, what, DURATION_HINT)),
        };
        if ms == 0 && !allow_zero {
            return Err(self.error(node.span.start, format!("{what} must be longer than 0")));
        }
        Ok(ms)
    }

    fn unknown_key(&self, entry: &Entry, allowed: &[&str], context: Option<&str>) -> SpecError {
        let within = context.map(|c| format!(" in {c}")).unwrap_or_default();
        self.error(
            entry.key_span.start,
            format!(
                "unknown key `{}`{within}{}; expected one of: {}",
                entry.key,
                did_you_mean(&entry.key, allowed),
                allowed.join(", ")
            ),
        )
    }
}

/// Milliseconds of `"<digits>[ms|s|m|h]"`; the error is a hint to append to the message.
fn parse_duration(text: &str) -> Result<u64, &'static str> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err("");
    }
    let factor = match unit {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(" (units: ms, s, m, h)"),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or(" (too long)")
}

/// `" (did you mean `x`?)"` when a word is a likely typo of one of `options`.
fn did_you_mean(word: &str, options: &[&str]) -> String {
    options
        .iter()
        .map(|option| (edit_distance(word, option), *option))
        .filter(|&(distance, option)| {
            distance <= 2 && distance < word.len().max(option.len()) / 2 + 1
        })
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, option)| format!(" (did you mean `{option}`?)"))
        .unwrap_or_default()
}

/// Edit distance counting a swap of neighbours as one edit (optimal string alignment).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        d[at(i, 0)] = i;
    }
    for j in 0..=b.len() {
        d[at(0, j)] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[at(i - 1, j)] + 1)
                .min(d[at(i, j - 1)] + 1)
                .min(d[at(i - 1, j - 1)] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[at(i - 2, j - 2)] + 1);
            }
            d[at(i, j)] = best;
        }
    }
    d[at(a.len(), b.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_or_bare_milliseconds() {
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("250"), Ok(250));
        assert_eq!(parse_duration("10s"), Ok(10_000));
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("1h"), Ok(3_600_000));
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("10 s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }

    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(did_you_mean("fliter", KINDS), " (did you mean `filter`?)");
        assert_eq!(did_you_mean("keyby", KINDS), " (did you mean `key_by`?)");
        assert_eq!(did_you_mean("xyz", KINDS), "");
    }
}
