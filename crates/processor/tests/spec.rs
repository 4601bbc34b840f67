//! Pipeline specs: what a valid file parses into, and where each mistake is reported.
//!
//! Line numbers are asserted exactly: `sluice transform deploy` shows them to the user.

use proptest::prelude::*;
use sluice_processor::spec::{
    AggregateFn, EmitPolicy, EventTime, Format, JoinMissing, PipelineSpec, SpecError, StartFrom,
    StepKind, WindowKind, line_column,
};

/// Three lines every error case below starts with (so its steps start on line 4).
const HEAD: &str = "name = \"p\"\ninputs = [\"in\"]\noutput = \"out\"\n";

fn parse(source: &str) -> PipelineSpec {
    match PipelineSpec::parse(source) {
        Ok(spec) => spec,
        Err(error) => panic!("spec should parse, got {error}\n{source}"),
    }
}

fn error(source: &str) -> SpecError {
    match PipelineSpec::parse(source) {
        Ok(_) => panic!("spec should be refused:\n{source}"),
        Err(error) => error,
    }
}

/// Asserts that `source` fails on `line` with a message containing each of `needles`.
#[track_caller]
fn assert_error(source: &str, line: usize, needles: &[&str]) -> SpecError {
    let error = error(source);
    assert_eq!(error.line, line, "wrong line for {error}\n{source}");
    for needle in needles {
        assert!(
            error.message.contains(needle),
            "message {:?} lacks {needle:?}",
            error.message
        );
    }
    error
}

fn with_head(rest: &str) -> String {
    format!("{HEAD}{rest}")
}

/// The 1-based column of the first `needle` on `line` of `source`.
fn column_of(source: &str, line: usize, needle: &str) -> usize {
    let text = source.lines().nth(line - 1).expect("line exists");
    let at = text.find(needle).expect("needle on line");
    text[..at].chars().count() + 1
}

// ---- valid specs ------------------------------------------------------------------

const FULL: &str = r#"name = "iot-readings"
inputs = ["readings", "readings-eu"]
format = "json"
time = "ts"
start = "earliest"
output = "readings-clean"
dead_letter = "readings-dlq"
checkpoint_interval = "250ms"

[[step]]
name = "valid"
filter = "exists(device) && temperature > -40"

[[step]]
route = [
  { when = "temperature > 80", to = "alerts", keep = true },
  { when = "temperature < -20", to = "cold" },
]

[[step]]
map = { select = ["a", "b.c"], drop = ["x"], rename = { old = "new" }, set = { temp_f = "temperature * 1.8 + 32" }, key = "device", headers = { source = "'sensor'" } }

[[step]]
project = ["device", "temperature", "ts"]

[[step]]
key_by = "device"

[[step]]
window = { type = "tumbling", size = "10s", lateness = "2s", emit = "close" }
aggregate = { avg_temperature = "avg(temperature)", readings = "count()", devices = "distinct_count(device)" }
to = "readings-avg"

[[step]]
window = { type = "hopping", size = "30s", advance = "10s", emit = "update" }
aggregate = { hottest = "max(temperature)" }

[[step]]
window = { type = "session", gap = "5m" }
aggregate = { first_seen = "first(ts)", last_seen = "last(ts)", total = "sum(temperature)", low = "min(temperature)" }

[[step]]
dedupe = { by = "id", within = "1m" }

[[step]]
join = { table = "devices", on = "device", into = "device_info", max_entries = 5000, missing = "drop" }
"#;

#[test]
fn full_spec_parses_into_its_structure() {
    let spec = parse(FULL);
    assert_eq!(spec.name, "iot-readings");
    assert_eq!(spec.inputs, ["readings", "readings-eu"]);
    assert_eq!(spec.format, Format::Json);
    assert!(matches!(&spec.time, EventTime::Field(e) if e.source() == "ts"));
    assert_eq!(spec.start, StartFrom::Earliest);
    assert_eq!(spec.output.as_deref(), Some("readings-clean"));
    assert_eq!(spec.dead_letter.as_deref(), Some("readings-dlq"));
    assert_eq!(spec.checkpoint_interval_ms, 250);
    assert_eq!(spec.lines.inputs, [2, 2]);
    assert_eq!(spec.lines.output, 6);
    assert_eq!(spec.lines.dead_letter, 7);

    let names: Vec<&str> = spec.steps.iter().map(|s| &*s.name).collect();
    assert_eq!(
        names,
        [
            "valid",
            "2-route",
            "3-map",
            "4-project",
            "5-key_by",
            "6-window",
            "7-window",
            "8-window",
            "9-dedupe",
            "10-join"
        ]
    );
    let lines: Vec<usize> = spec.steps.iter().map(|s| s.line).collect();
    assert_eq!(lines, [10, 14, 20, 23, 26, 29, 34, 38, 42, 45]);

    let StepKind::Filter(filter) = &spec.steps[0].kind else {
        panic!("step 1 is a filter")
    };
    assert_eq!(filter.source(), "exists(device) && temperature > -40");

    let StepKind::Route(rules) = &spec.steps[1].kind else {
        panic!("step 2 is a route")
    };
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].when.source(), "temperature > 80");
    assert_eq!(rules[0].to, "alerts");
    assert!(rules[0].keep);
    assert_eq!(rules[0].line, 16);
    assert_eq!(rules[1].to, "cold");
    assert!(!rules[1].keep);
    assert_eq!(rules[1].line, 17);

    let StepKind::Map(map) = &spec.steps[2].kind else {
        panic!("step 3 is a map")
    };
    assert_eq!(
        map.select.as_deref(),
        Some(&["a".to_owned(), "b.c".to_owned()][..])
    );
    assert_eq!(map.drop, ["x"]);
    assert_eq!(map.rename, [("old".to_owned(), "new".to_owned())]);
    assert_eq!(map.set.len(), 1);
    assert_eq!(map.set[0].0, "temp_f");
    assert_eq!(map.set[0].1.source(), "temperature * 1.8 + 32");
    assert_eq!(map.key.as_ref().map(|k| k.source()), Some("device"));
    assert_eq!(map.headers.len(), 1);
    assert_eq!(map.headers[0].0, "source");

    let StepKind::Map(project) = &spec.steps[3].kind else {
        panic!("project is a map")
    };
    assert_eq!(project.select.as_ref().map(Vec::len), Some(3));
    assert!(project.drop.is_empty() && project.set.is_empty() && project.key.is_none());

    assert!(matches!(&spec.steps[4].kind, StepKind::KeyBy(e) if e.source() == "device"));

    let StepKind::Window(tumbling) = &spec.steps[5].kind else {
        panic!("step 6 is a window")
    };
    assert_eq!(tumbling.kind, WindowKind::Tumbling { size_ms: 10_000 });
    assert_eq!(tumbling.lateness_ms, 2_000);
    assert_eq!(tumbling.emit, EmitPolicy::Close);
    let aggregates: Vec<(&str, AggregateFn, Option<&str>)> = tumbling
        .aggregates
        .iter()
        .map(|a| {
            (
                a.name.as_str(),
                a.function,
                a.argument.as_ref().map(|e| e.source()),
            )
        })
        .collect();
    assert_eq!(
        aggregates,
        [
            ("avg_temperature", AggregateFn::Avg, Some("temperature")),
            ("readings", AggregateFn::Count, None),
            ("devices", AggregateFn::DistinctCount, Some("device")),
        ]
    );
    assert_eq!(spec.steps[5].to.as_deref(), Some("readings-avg"));

    let StepKind::Window(hopping) = &spec.steps[6].kind else {
        panic!("step 7 is a window")
    };
    assert_eq!(
        hopping.kind,
        WindowKind::Hopping {
            size_ms: 30_000,
            advance_ms: 10_000
        }
    );
    assert_eq!(hopping.lateness_ms, 0);
    assert_eq!(hopping.emit, EmitPolicy::Update);
    assert_eq!(hopping.aggregates[0].function, AggregateFn::Max);

    let StepKind::Window(session) = &spec.steps[7].kind else {
        panic!("step 8 is a window")
    };
    assert_eq!(session.kind, WindowKind::Session { gap_ms: 300_000 });
    let functions: Vec<AggregateFn> = session.aggregates.iter().map(|a| a.function).collect();
    assert_eq!(
        functions,
        [
            AggregateFn::First,
            AggregateFn::Last,
            AggregateFn::Sum,
            AggregateFn::Min
        ]
    );

    let StepKind::Dedupe(dedupe) = &spec.steps[8].kind else {
        panic!("step 9 is a dedupe")
    };
    assert_eq!(dedupe.by.as_ref().map(|e| e.source()), Some("id"));
    assert_eq!(dedupe.within_ms, 60_000);

    let StepKind::Join(join) = &spec.steps[9].kind else {
        panic!("step 10 is a join")
    };
    assert_eq!(join.table, "devices");
    assert_eq!(join.on.as_ref().map(|e| e.source()), Some("device"));
    assert_eq!(join.into, "device_info");
    assert_eq!(join.max_entries, 5000);
    assert_eq!(join.missing, JoinMissing::Drop);

    assert_eq!(
        spec.output_topics(),
        [
            "readings-clean",
            "alerts",
            "cold",
            "readings-avg",
            "readings-dlq"
        ]
    );
    assert_eq!(spec.tables(), ["devices"]);
}

/// Steps without expressions: defaults, dotted keys, sub-tables and side outputs.
#[test]
fn expression_free_spec_takes_defaults() {
    let source = r#"name = "copy.v2_x-1"
inputs = ["a", "b"]

[[step]]
project = ["x"]
to = "projected"

[[step]]
window.type = "tumbling"
window.size = 1000
aggregate.n = "count()"

[[step]]
name = "once"
[step.dedupe]
within = "1h"

[[step]]
join = { table = "t", into = "info.detail" }
to = "joined"
"#;
    let spec = parse(source);
    assert_eq!(spec.format, Format::Json);
    assert!(matches!(spec.time, EventTime::Timestamp));
    assert_eq!(spec.start, StartFrom::Latest);
    assert_eq!(spec.output, None);
    assert_eq!(spec.dead_letter, None);
    assert_eq!(spec.checkpoint_interval_ms, 1_000);
    assert_eq!(spec.lines.inputs, [2, 2]);
    let names: Vec<&str> = spec.steps.iter().map(|s| &*s.name).collect();
    assert_eq!(names, ["1-project", "2-window", "once", "4-join"]);
    let lines: Vec<usize> = spec.steps.iter().map(|s| s.line).collect();
    assert_eq!(lines, [4, 8, 13, 18]);
    assert_eq!(spec.steps[0].to.as_deref(), Some("projected"));
    let StepKind::Window(window) = &spec.steps[1].kind else {
        panic!("a window")
    };
    assert_eq!(window.kind, WindowKind::Tumbling { size_ms: 1000 });
    assert_eq!(window.emit, EmitPolicy::Close);
    assert_eq!(window.aggregates.len(), 1);
    assert!(window.aggregates[0].argument.is_none());
    let StepKind::Dedupe(dedupe) = &spec.steps[2].kind else {
        panic!("a dedupe")
    };
    assert!(dedupe.by.is_none());
    assert_eq!(dedupe.within_ms, 3_600_000);
    let StepKind::Join(join) = &spec.steps[3].kind else {
        panic!("a join")
    };
    assert!(join.on.is_none());
    assert_eq!(join.max_entries, 100_000);
    assert_eq!(join.missing, JoinMissing::Keep);
    assert_eq!(spec.output_topics(), ["projected", "joined"]);
}

#[test]
fn time_timestamp_means_the_record_timestamp() {
    let spec = parse(&format!("{HEAD}time = \"timestamp\"\n"));
    assert!(matches!(spec.time, EventTime::Timestamp));
}

#[test]
fn a_pipeline_may_have_no_steps() {
    let spec = parse(HEAD);
    assert!(spec.steps.is_empty());
    assert_eq!(spec.lines.output, 3);
}

#[test]
fn example_specs_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/pipelines");
    let mut parsed = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("config/pipelines exists") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let source = std::fs::read_to_string(&path).expect("readable");
            let spec =
                PipelineSpec::parse(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            parsed.push(spec.name);
        }
    }
    parsed.sort();
    assert_eq!(parsed, ["enrich-readings", "iot-readings"]);
}

#[test]
fn iot_example_has_the_described_shape() {
    let source = include_str!("../../../config/pipelines/iot.toml");
    let spec = parse(source);
    assert_eq!(spec.inputs, ["readings"]);
    assert_eq!(spec.dead_letter.as_deref(), Some("readings-dlq"));
    assert!(matches!(&spec.time, EventTime::Field(e) if e.source() == "ts"));
    assert_eq!(
        spec.output_topics(),
        ["alerts", "readings-avg", "readings-max", "readings-dlq"]
    );
    let kinds: Vec<&str> = spec
        .steps
        .iter()
        .map(|s| match &s.kind {
            StepKind::Filter(_) => "filter",
            StepKind::Route(_) => "route",
            StepKind::KeyBy(_) => "key_by",
            StepKind::Window(w) => match w.kind {
                WindowKind::Tumbling { size_ms: 10_000 } => "tumbling-10s",
                WindowKind::Hopping {
                    size_ms: 30_000,
                    advance_ms: 10_000,
                } => "hopping-30s-10s",
                _ => "other window",
            },
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "filter",
            "route",
            "key_by",
            "tumbling-10s",
            "hopping-30s-10s"
        ]
    );
}

// ---- TOML syntax ------------------------------------------------------------------

#[test]
fn toml_syntax_errors_point_at_the_problem() {
    let e = assert_error("name = \"p\"\ninputs = [\"in\",,]\n", 2, &["invalid array"]);
    assert_eq!(e.column, 16);
    assert_error("name = \"p\"\n\n[[step]\n", 3, &["invalid table header"]);
    assert_error("name = \"p\"\nname = \"q\"\n", 2, &["duplicate key `name`"]);
    assert_error("name = \"p\ninputs = []\n", 1, &["invalid basic string"]);
}

// ---- top-level keys ---------------------------------------------------------------

#[test]
fn unknown_top_level_key_is_named_with_a_suggestion() {
    let e = assert_error(
        "name = \"p\"\ninputs = [\"in\"]\noutptu = \"out\"\n",
        3,
        &[
            "unknown key `outptu`",
            "did you mean `output`?",
            "dead_letter",
        ],
    );
    assert_eq!(e.column, 1);
}

#[test]
fn required_keys_are_required() {
    assert_error(
        "inputs = [\"in\"]\noutput = \"out\"\n",
        1,
        &["missing `name`"],
    );
    assert_error("name = \"p\"\noutput = \"out\"\n", 1, &["missing `inputs`"]);
    assert_error("", 1, &["missing `name`"]);
}

#[test]
fn names_and_topics_follow_kafka_rules() {
    let source = "name = \"iot readings\"\ninputs = [\"in\"]\noutput = \"out\"\n";
    let e = assert_error(source, 1, &["`iot readings`", "' '"]);
    assert_eq!(e.column, column_of(source, 1, " readings"));
    assert_error(
        &format!("name = \"{}\"\ninputs = [\"in\"]\n", "n".repeat(201)),
        1,
        &["at most 200"],
    );
    assert_error("name = \"\"\ninputs = [\"in\"]\n", 1, &["`name` is empty"]);

    let source = "name = \"p\"\noutput = \"out\"\ninputs = [\n  \"ok\",\n  \"bad/topic\",\n]\n";
    let e = assert_error(source, 5, &["topic name", "'/'"]);
    assert_eq!(e.column, column_of(source, 5, "/"));
    assert_error(
        "name = \"p\"\ninputs = [\"in\"]\noutput = \"..\"\n",
        3,
        &["not a valid topic name"],
    );
    assert_error(
        &format!(
            "name = \"p\"\ninputs = [\"in\"]\noutput = \"{}\"\n",
            "t".repeat(250)
        ),
        3,
        &["at most 249"],
    );
    parse(&format!(
        "name = \"p\"\ninputs = [\"in\"]\noutput = \"{}\"\n",
        "t".repeat(249)
    ));
}

#[test]
fn inputs_must_be_a_non_empty_list_of_distinct_topics() {
    assert_error(
        "name = \"p\"\ninputs = \"in\"\n",
        2,
        &["array of topic names", "found a string"],
    );
    assert_error("name = \"p\"\ninputs = []\n", 2, &["at least one topic"]);
    assert_error(
        "name = \"p\"\ninputs = [\"a\",\n \"a\"]\n",
        3,
        &["listed twice"],
    );
    assert_error(
        "name = \"p\"\ninputs = [\"a\", 7]\n",
        2,
        &["must be a string, found an integer"],
    );
}

#[test]
fn enumerated_values_are_checked() {
    assert_error(
        &with_head("format = \"jsn\"\n"),
        4,
        &["\"json\", \"bytes\"", "did you mean `json`?"],
    );
    assert_error(
        &with_head("start = \"begin\"\n"),
        4,
        &["\"latest\", \"earliest\""],
    );
    assert_error(
        &with_head("start = true\n"),
        4,
        &["must be a string, found a boolean"],
    );
    assert_error(
        "name = 1979-05-27\ninputs = [\"in\"]\n",
        1,
        &["found a date-time"],
    );
}

#[test]
fn checkpoint_interval_is_a_duration_between_10ms_and_1h() {
    assert_eq!(
        parse(&with_head("checkpoint_interval = \"10ms\"\n")).checkpoint_interval_ms,
        10
    );
    assert_eq!(
        parse(&with_head("checkpoint_interval = \"1h\"\n")).checkpoint_interval_ms,
        3_600_000
    );
    assert_eq!(
        parse(&with_head("checkpoint_interval = 2500\n")).checkpoint_interval_ms,
        2_500
    );
    assert_eq!(
        parse(&with_head("checkpoint_interval = \"5m\"\n")).checkpoint_interval_ms,
        300_000
    );
    assert_error(
        &with_head("checkpoint_interval = \"5ms\"\n"),
        4,
        &["between 10ms and 1h"],
    );
    assert_error(
        &with_head("checkpoint_interval = \"2h\"\n"),
        4,
        &["between 10ms and 1h"],
    );
    assert_error(
        &with_head("checkpoint_interval = \"1.5s\"\n"),
        4,
        &["a duration such as"],
    );
    assert_error(
        &with_head("checkpoint_interval = \"10sec\"\n"),
        4,
        &["units: ms, s, m, h"],
    );
    assert_error(
        &with_head("checkpoint_interval = -5\n"),
        4,
        &["must not be negative"],
    );
    assert_error(
        &with_head("checkpoint_interval = \"0\"\n"),
        4,
        &["longer than 0"],
    );
    assert_error(
        &with_head("checkpoint_interval = 1.5\n"),
        4,
        &["found a float"],
    );
}

#[test]
fn a_pipeline_that_writes_nowhere_is_refused() {
    assert_error(
        "name = \"p\"\ninputs = [\"in\"]\n\n[[step]]\nproject = [\"a\"]\n",
        1,
        &["writes nowhere"],
    );
    // A dead-letter topic alone is not an output.
    assert_error(
        "name = \"p\"\ninputs = [\"in\"]\ndead_letter = \"dlq\"\n",
        1,
        &["writes nowhere"],
    );
}

#[test]
fn writing_an_input_topic_is_refused() {
    assert_error(
        "name = \"p\"\ninputs = [\"in\"]\noutput = \"in\"\n",
        3,
        &["`in` is also an input"],
    );
    assert_error(
        &with_head("dead_letter = \"in\"\n"),
        4,
        &["`in` is also an input"],
    );
    assert_error(
        &with_head("\n[[step]]\nproject = [\"a\"]\nto = \"in\"\n"),
        7,
        &["`in` is also an input"],
    );
}

#[test]
fn step_must_be_an_array_of_tables() {
    assert_error(
        &with_head("\n[step]\nproject = [\"a\"]\n"),
        5,
        &["[[step]]"],
    );
    assert_error(&with_head("step = [1]\n"), 4, &["step 1 must be a table"]);
}

// ---- steps ------------------------------------------------------------------------

#[test]
fn unknown_step_key_names_the_step_and_suggests() {
    let source = with_head("\n[[step]]\nproject = [\"a\"]\n\n[[step]]\nfliter = \"x > 1\"\n");
    let e = assert_error(
        &source,
        9,
        &[
            "unknown key `fliter` in step 2",
            "did you mean `filter`?",
            "expected one of: filter, map, project, key_by, window, dedupe, route, join",
        ],
    );
    assert_eq!(e.column, 1);
}

#[test]
fn a_step_has_exactly_one_operator() {
    assert_error(
        &with_head(
            "\n[[step]]\nproject = [\"a\"]\n\n[[step]]\nproject = [\"b\"]\n\n[[step]]\nfilter = \"a\"\nmap = { drop = [\"b\"] }\n",
        ),
        11,
        &["step 3 has both `filter` and `map`"],
    );
    assert_error(
        &with_head("\n[[step]]\nproject = [\"a\"]\n\n[[step]]\nname = \"nothing\"\n"),
        8,
        &["step 2 has no operator", "filter, map, project"],
    );
    assert_error(
        &with_head("\n[[step]]\nkey_by = \"k\"\nproject = [\"a\"]\ndedupe = { within = 5 }\n"),
        5,
        &["step 1 has `key_by`, `project`, `dedupe`"],
    );
}

#[test]
fn step_names_are_unique() {
    let source = with_head(
        "\n[[step]]\nname = \"a\"\nproject = [\"x\"]\n\n[[step]]\nproject = [\"y\"]\nname = \"a\"\n",
    );
    assert_error(&source, 11, &["step 2 is named `a` like step 1"]);
    // A name can collide with another step's default name.
    let source = with_head(
        "\n[[step]]\nproject = [\"x\"]\n\n[[step]]\nproject = [\"y\"]\nname = \"1-project\"\n",
    );
    assert_error(&source, 10, &["named `1-project` like step 1"]);
    assert_error(
        &with_head("\n[[step]]\nproject = [\"x\"]\nname = \"a b\"\n"),
        7,
        &["letters, digits"],
    );
}

#[test]
fn side_output_is_a_topic() {
    assert_error(
        "name = \"p\"\ninputs = [\"in\"]\n\n[[step]]\nproject = [\"x\"]\nto = 5\n",
        6,
        &["`to` of step 1 must be a string"],
    );
    assert_error(
        "name = \"p\"\ninputs = [\"in\"]\n\n[[step]]\nproject = [\"x\"]\nto = \"a b\"\n",
        6,
        &["topic name"],
    );
}

#[test]
fn map_is_checked_key_by_key() {
    assert_error(
        &with_head("\n[[step]]\nmap = { selcet = [\"a\"] }\n"),
        6,
        &[
            "unknown key `selcet` in `map` of step 1",
            "did you mean `select`?",
        ],
    );
    assert_error(
        &with_head("\n[[step]]\nmap = {}\n"),
        6,
        &["changes nothing"],
    );
    assert_error(
        &with_head("\n[[step]]\nmap = { select = \"a\" }\n"),
        6,
        &["array of field names"],
    );
    assert_error(
        &with_head("\n[[step]]\nmap = { drop = [\"a..b\"] }\n"),
        6,
        &["`a..b` is not a field name"],
    );
    assert_error(
        &with_head("\n[[step]]\nproject = [\"\"]\n"),
        6,
        &["is not a field name"],
    );
    assert_error(
        &with_head("\n[[step]]\n[step.map]\ndrop = [\"a\"]\nrename = { a = 1 }\n"),
        8,
        &["must be a string, found an integer"],
    );
    // Dotted keys in `rename` are paths.
    let spec = parse(&with_head(
        "\n[[step]]\nmap.rename = { \"a.b\" = \"c\", d.e = \"f\" }\n",
    ));
    let StepKind::Map(map) = &spec.steps[0].kind else {
        panic!("a map")
    };
    assert_eq!(
        map.rename,
        [
            ("a.b".to_owned(), "c".to_owned()),
            ("d.e".to_owned(), "f".to_owned())
        ]
    );
}

#[test]
fn aggregate_belongs_to_a_window() {
    assert_error(
        &with_head("\n[[step]]\nproject = [\"a\"]\naggregate = { n = \"count()\" }\n"),
        7,
        &[
            "`aggregate` belongs to a `window` step",
            "step 1 is a `project`",
        ],
    );
    assert_error(
        &with_head("\n[[step]]\nwindow = { type = \"tumbling\", size = \"1s\" }\n"),
        6,
        &["needs `aggregate`"],
    );
    assert_error(
        &with_head("\n[[step]]\nwindow = { type = \"tumbling\", size = \"1s\" }\naggregate = {}\n"),
        7,
        &["at least one field"],
    );
}

#[test]
fn window_shapes_need_their_own_durations() {
    let window = |w: &str| {
        with_head(&format!(
            "\n[[step]]\nwindow = {{ {w} }}\naggregate = {{ n = \"count()\" }}\n"
        ))
    };
    assert_error(&window("size = \"1s\""), 6, &["needs a `type`"]);
    assert_error(
        &window("type = \"sliding\", size = \"1s\""),
        6,
        &["\"tumbling\", \"hopping\", \"session\""],
    );
    assert_error(
        &window("type = \"tumbling\""),
        6,
        &["a tumbling window needs `size`"],
    );
    assert_error(
        &window("type = \"tumbling\", size = \"1s\", gap = \"1s\""),
        6,
        &["`gap` is for session windows"],
    );
    assert_error(
        &window("type = \"hopping\", size = \"10s\""),
        6,
        &["a hopping window needs `advance`"],
    );
    assert_error(
        &window("type = \"hopping\", size = \"10s\", advance = \"11s\""),
        6,
        &["longer than `size`"],
    );
    assert_error(
        &window("type = \"hopping\", size = \"10s\", advance = \"0s\""),
        6,
        &["longer than 0"],
    );
    assert_error(
        &window("type = \"session\", size = \"10s\", gap = \"1s\""),
        6,
        &["a session window has no `size`"],
    );
    assert_error(
        &window("type = \"session\""),
        6,
        &["a session window needs `gap`"],
    );
    assert_error(
        &window("type = \"tumbling\", size = \"0\""),
        6,
        &["longer than 0"],
    );
    assert_error(
        &window("type = \"tumbling\", size = \"1s\", emit = \"updates\""),
        6,
        &["did you mean `update`?"],
    );
    assert_error(
        &window("type = \"tumbling\", size = \"1s\", late = \"1s\""),
        6,
        &["unknown key `late`", "lateness"],
    );
    // Lateness may be 0; hopping need not divide evenly.
    let spec = parse(&window(
        "type = \"hopping\", size = \"10s\", advance = \"3s\", lateness = 0",
    ));
    let StepKind::Window(w) = &spec.steps[0].kind else {
        panic!("a window")
    };
    assert_eq!(
        w.kind,
        WindowKind::Hopping {
            size_ms: 10_000,
            advance_ms: 3_000
        }
    );
    assert_eq!(w.lateness_ms, 0);
}

#[test]
fn window_durations_report_their_own_line() {
    let source = with_head(
        "\n[[step]]\n[step.window]\ntype = \"tumbling\"\nsize = \"10 s\"\n[step.aggregate]\nn = \"count()\"\n",
    );
    let e = assert_error(&source, 8, &["`window.size` of step 1 must be a duration"]);
    assert_eq!(e.column, 8);
}

#[test]
fn aggregate_calls_are_checked_where_they_are() {
    let agg = |a: &str| {
        with_head(&format!(
            "\n[[step]]\nwindow = {{ type = \"tumbling\", size = \"1s\" }}\n[step.aggregate]\nn = \"count()\"\nx = {a}\n"
        ))
    };
    let source = agg("\"mean(temperature)\"");
    let e = assert_error(&source, 9, &["unknown aggregate function `mean`", "avg"]);
    assert_eq!(e.column, column_of(&source, 9, "mean"));
    assert_error(
        &agg("\"count(id)\""),
        9,
        &["`count()` takes no argument", "distinct_count(id)"],
    );
    assert_error(&agg("\"avg()\""), 9, &["`avg` takes one expression"]);
    assert_error(&agg("\"avg\""), 9, &["must be a call such as"]);
    assert_error(&agg("\"avg(x\""), 9, &["must be a call such as"]);
    assert_error(&agg("3"), 9, &["must be a string"]);
    assert_error(&agg("\"maxx(x)\""), 9, &["did you mean `max`?"]);
    let spec = parse(&agg("\" count( ) \""));
    let StepKind::Window(w) = &spec.steps[0].kind else {
        panic!("a window")
    };
    assert_eq!(w.aggregates[1].function, AggregateFn::Count);
}

#[test]
fn dedupe_needs_within() {
    assert_error(
        &with_head("\n[[step]]\ndedupe = { }\n"),
        6,
        &["needs `within`"],
    );
    assert_error(
        &with_head("\n[[step]]\ndedupe = { within = \"0ms\" }\n"),
        6,
        &["longer than 0"],
    );
    assert_error(
        &with_head("\n[[step]]\ndedupe = { within = \"1m\", key = \"id\" }\n"),
        6,
        &["unknown key `key`", "by, within"],
    );
}

#[test]
fn route_rules_are_checked() {
    assert_error(
        &with_head("\n[[step]]\nroute = []\n"),
        6,
        &["at least one rule"],
    );
    assert_error(
        &with_head("\n[[step]]\nroute = { when = \"a\", to = \"b\" }\n"),
        6,
        &["array of rules"],
    );
    assert_error(
        &with_head("\n[[step]]\nroute = [\n  { to = \"x\", kep = true, when = \"a\" },\n]\n"),
        7,
        &[
            "unknown key `kep` in route rule 1 of step 1",
            "did you mean `keep`?",
        ],
    );
    assert_error(
        &with_head("\n[[step]]\nroute = [\n  { to = \"x\" },\n]\n"),
        7,
        &["route rule 1 of step 1 needs `when`"],
    );
}

#[test]
fn join_is_checked() {
    let join = |j: &str| with_head(&format!("\n[[step]]\njoin = {{ {j} }}\n"));
    assert_error(&join("table = \"t\""), 6, &["needs `into`"]);
    assert_error(&join("into = \"f\""), 6, &["needs `table`"]);
    assert_error(
        &join("table = \"t\", into = \"f\", max_entries = 0"),
        6,
        &["between 1 and 10000000"],
    );
    assert_error(
        &join("table = \"t\", into = \"f\", max_entries = 10000001"),
        6,
        &["between 1 and 10000000"],
    );
    assert_error(
        &join("table = \"t\", into = \"f\", max_entries = \"5\""),
        6,
        &["must be an integer"],
    );
    assert_error(
        &join("table = \"t\", into = \"f\", missing = \"dorp\""),
        6,
        &["did you mean `drop`?"],
    );
    assert_error(
        &join("table = \"bad topic\", into = \"f\""),
        6,
        &["topic name"],
    );
    let spec = parse(&join("table = \"t\", into = \"f\", max_entries = 10000000"));
    let StepKind::Join(j) = &spec.steps[0].kind else {
        panic!("a join")
    };
    assert_eq!(j.max_entries, 10_000_000);
}

// ---- format = "bytes" -------------------------------------------------------------

#[test]
fn bytes_format_refuses_reshaping_json() {
    let bytes = "name = \"p\"\ninputs = [\"in\"]\noutput = \"out\"\nformat = \"bytes\"\n";
    assert_error(
        &format!("{bytes}\n[[step]]\nproject = [\"a\"]\n"),
        7,
        &["`project` of step 1 works on JSON fields but format = \"bytes\""],
    );
    assert_error(
        &format!("{bytes}\n[[step]]\n[step.map]\nselect = [\"a\"]\n"),
        8,
        &["format = \"bytes\""],
    );
    assert_error(
        &format!("{bytes}\n[[step]]\njoin = {{ table = \"t\", into = \"f\" }}\n"),
        7,
        &["format = \"bytes\""],
    );
    // `format` is read first, wherever it is.
    let late = "name = \"p\"\ninputs = [\"in\"]\noutput = \"out\"\n\n[[step]]\nproject = [\"a\"]\n";
    let source = format!("format = \"bytes\"\n{late}");
    assert_error(&source, 7, &["format = \"bytes\""]);
    // Steps that do not look inside the value are fine.
    let spec = parse(&format!(
        "{bytes}\n[[step]]\ndedupe = {{ within = \"1m\" }}\n\n[[step]]\nwindow = {{ type = \"tumbling\", size = \"1s\" }}\naggregate = {{ n = \"count()\" }}\n"
    ));
    assert_eq!(spec.format, Format::Bytes);
}

#[test]
fn bytes_format_refuses_expressions_that_read_json() {
    let bytes = "name = \"p\"\ninputs = [\"in\"]\noutput = \"out\"\nformat = \"bytes\"\n";
    let source = format!("{bytes}\n[[step]]\nfilter = \"temperature > 80\"\n");
    let e = assert_error(
        &source,
        7,
        &["`temperature > 80` reads JSON fields but format = \"bytes\""],
    );
    assert_eq!(e.column, column_of(&source, 7, "temperature"));
    assert_error(
        &format!("{bytes}time = \"ts\"\n"),
        5,
        &["`ts` reads JSON fields"],
    );
    assert_error(
        &format!("{bytes}\n[[step]]\nroute = [\n  {{ when = \"a > 1\", to = \"x\" }},\n]\n"),
        8,
        &["`a > 1` reads JSON fields"],
    );
    assert_error(
        &format!("{bytes}\n[[step]]\ndedupe = {{ by = \"id\", within = \"1m\" }}\n"),
        7,
        &["`id` reads JSON fields"],
    );
    assert_error(
        &format!(
            "{bytes}\n[[step]]\nwindow = {{ type = \"tumbling\", size = \"1s\" }}\naggregate = {{ s = \"sum(x)\" }}\n"
        ),
        8,
        &["`x` reads JSON fields"],
    );
    assert_error(
        &format!("{bytes}\n[[step]]\nmap = {{ key = \"device\" }}\n"),
        7,
        &["`device` reads JSON fields"],
    );
    // Key, headers and timestamps are not in the value.
    let spec = parse(&format!(
        "{bytes}time = \"timestamp\"\n\n[[step]]\nfilter = \"headers.source == 'sensor'\"\n\n[[step]]\nkey_by = \"key\"\n\n[[step]]\nmap = {{ headers = {{ seen = \"to_string(timestamp)\" }} }}\n"
    ));
    assert_eq!(spec.steps.len(), 3);
}

// ---- expressions: errors where they are -------------------------------------------

#[test]
fn expression_errors_point_into_the_string() {
    // `&` at offset 17 of the expression.
    let source = with_head("\n[[step]]\nfilter = \"temperature > 80 & exists(device)\"\n");
    let e = assert_error(
        &source,
        6,
        &["invalid expression in `filter` of step 1", "&"],
    );
    assert_eq!(e.column, column_of(&source, 6, "\"") + 1 + 17);
    assert_eq!(e.column, column_of(&source, 6, "& "));

    // Escapes before the error move it right in the file.
    let source = with_head("\n[[step]]\nfilter = \"site == \\\"n\\\" & x\"\n");
    let e = assert_error(&source, 6, &["invalid expression"]);
    assert_eq!(e.column, column_of(&source, 6, "& "));

    // Literal strings map one to one.
    let source = with_head("\n[[step]]\nkey_by = 'concat(a, \"-\") & b'\n");
    let e = assert_error(&source, 6, &["invalid expression in `key_by` of step 1"]);
    assert_eq!(e.column, column_of(&source, 6, "& "));

    // Multi-line strings: the error is on the line it is on.
    let source = with_head(
        "\n[[step]]\nfilter = \"\"\"\nexists(device)\n  && temperature > 80\n  & humidity < 10\"\"\"\n",
    );
    let e = assert_error(&source, 9, &["invalid expression"]);
    assert_eq!(e.column, 3);
    let source = with_head("\n[[step]]\nfilter = '''\nexists(device)\n  & x'''\n");
    let e = assert_error(&source, 8, &["invalid expression"]);
    assert_eq!(e.column, 3);
}

#[test]
fn expression_errors_in_nested_places() {
    // In an aggregate's argument, after the function name.
    let source = with_head(
        "\n[[step]]\nwindow = { type = \"tumbling\", size = \"1s\" }\naggregate = { a = \"avg(t & u)\" }\n",
    );
    let e = assert_error(
        &source,
        7,
        &["invalid expression in aggregate `a` of step 1"],
    );
    assert_eq!(e.column, column_of(&source, 7, "& "));

    let source = with_head(
        "\n[[step]]\nroute = [\n  { when = \"ok\", to = \"a\" },\n  { when = \"x & y\", to = \"b\" },\n]\n",
    );
    let e = assert_error(
        &source,
        8,
        &["invalid expression in `when` of route rule 2 of step 1"],
    );
    assert_eq!(e.column, column_of(&source, 8, "& "));

    let source = with_head("\n[[step]]\n[step.map]\nset.f = \"a & b\"\n");
    let e = assert_error(&source, 7, &["`map.set.f` of step 1"]);
    assert_eq!(e.column, column_of(&source, 7, "& "));

    let source = with_head("time = \"ts & 1\"\n");
    let e = assert_error(&source, 4, &["invalid expression in `time`"]);
    assert_eq!(e.column, column_of(&source, 4, "& "));
}

// ---- never panics -----------------------------------------------------------------

const VALID_FOR_MUTATION: &str = include_str!("../../../config/pipelines/iot.toml");
const ENRICH: &str = include_str!("../../../config/pipelines/enrich.toml");

/// Fragments a mutation may insert: the spec's own vocabulary and TOML punctuation.
const FRAGMENTS: &[&str] = &[
    "[[step]]\n",
    "[step.map]\n",
    "\n",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "=",
    "{",
    "}",
    "[",
    "]",
    ",",
    ".",
    "#",
    "\\",
    "\\u00e9",
    "é",
    "filter = \"a\"\n",
    "window = { type = \"hopping\" }",
    "aggregate = { n = \"count()\" }\n",
    "route = [{ when = \"x\", to = \"y\" }]\n",
    "to = \"in\"",
    "format = \"bytes\"\n",
    "size = \"0\"",
    "1979-05-27",
    "1.5",
    "-1",
    "99999999999999999999",
    "name = \"p\"\n",
    "inputs = []\n",
    "count(",
    ")",
    "avg(",
    "&&",
    "  ",
    "\t",
    "\r\n",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, fragment: usize },
    Duplicate { at: usize, len: usize },
    SwapLines { a: usize, b: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 0..FRAGMENTS.len())
            .prop_map(|(at, fragment)| Mutation::Insert { at, fragment }),
        (any::<usize>(), 1usize..80).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
    ]
}

/// The char boundary at or before `at % (len + 1)`.
fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &mut String, mutation: &Mutation) {
    match *mutation {
        Mutation::Delete { at, len } => {
            let start = boundary(text, at);
            let end = boundary(text, start.saturating_add(len).min(text.len()));
            text.replace_range(start..end.max(start), "");
        }
        Mutation::Insert { at, fragment } => {
            let at = boundary(text, at);
            text.insert_str(at, FRAGMENTS[fragment]);
        }
        Mutation::Duplicate { at, len } => {
            let start = boundary(text, at);
            let end = boundary(text, start.saturating_add(len).min(text.len()));
            let copy = text[start..end.max(start)].to_owned();
            text.insert_str(end.max(start), &copy);
        }
        Mutation::SwapLines { a, b } => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let n = lines.len();
                lines.swap(a % n, b % n);
            }
            *text = lines.join("\n");
        }
    }
}

/// Parsing either succeeds or names a place inside (or just after) the source.
fn check_parse(source: &str) {
    if let Err(error) = PipelineSpec::parse(source) {
        let lines = source.split('\n').count();
        assert!(
            error.line >= 1 && error.line <= lines,
            "line {} of {lines}: {error}",
            error.line
        );
        assert!(error.column >= 1, "{error}");
        assert!(!error.message.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(source in any::<String>()) {
        check_parse(&source);
    }

    #[test]
    fn parse_never_panics_on_toml_like_text(
        source in "[a-z_\\[\\]{}=\"'.,#\\\\\n 0-9\\-]{0,200}",
    ) {
        check_parse(&source);
    }

    #[test]
    fn parse_never_panics_on_mutated_specs(
        which in any::<bool>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let mut source = if which { VALID_FOR_MUTATION } else { ENRICH }.to_owned();
        for m in &mutations {
            apply(&mut source, m);
        }
        check_parse(&source);
    }

    #[test]
    fn line_column_is_within_the_source(source in any::<String>(), at in any::<usize>()) {
        let (line, column) = line_column(&source, at);
        prop_assert!(line >= 1 && line <= source.split('\n').count());
        prop_assert!(column >= 1);
    }
}
