//! Windows: shapes, closing order, lateness, late records, update emission, aggregates.

use serde_json::{Value, json};
use sluice_processor::expr::EvalError;
use sluice_processor::operator::{Operator, StepError};
use sluice_processor::record::Record;
use sluice_processor::spec::{
    Aggregate, AggregateFn, EmitPolicy, StepKind, WindowKind, WindowSpec,
};

use super::{build, expr, feed, json, next, raw, record, watermark};

pub(crate) fn count() -> Aggregate {
    Aggregate {
        name: "count".to_owned(),
        function: AggregateFn::Count,
        argument: None,
    }
}

pub(crate) fn aggregate(name: &str, function: AggregateFn, argument: &str) -> Aggregate {
    Aggregate {
        name: name.to_owned(),
        function,
        argument: Some(expr(argument)),
    }
}

pub(crate) fn window_spec(
    kind: WindowKind,
    lateness_ms: i64,
    emit: EmitPolicy,
    aggregates: Vec<Aggregate>,
) -> StepKind {
    StepKind::Window(WindowSpec {
        kind,
        lateness_ms,
        emit,
        aggregates,
    })
}

fn counting(kind: WindowKind, lateness_ms: i64, emit: EmitPolicy) -> Box<dyn Operator> {
    build(window_spec(kind, lateness_ms, emit, vec![count()]))
}

const TUMBLING_10: WindowKind = WindowKind::Tumbling { size_ms: 10 };

/// `key [start,end) name=value …` for a window result, checking its shape on the way.
fn line(record: &Record) -> String {
    let Value::Object(fields) = json(record) else {
        panic!("window result is not an object: {record:?}");
    };
    let start = fields["window_start"].as_i64().unwrap();
    let end = fields["window_end"].as_i64().unwrap();
    assert_eq!(record.timestamp, end - 1);
    assert_eq!(record.event_time, end - 1);
    assert!(record.headers.is_empty());
    let key = record.key.as_ref().map_or("null".to_owned(), |k| {
        String::from_utf8_lossy(k).into_owned()
    });
    let mut text = format!("{key} [{start},{end})");
    for (name, value) in fields {
        if name != "window_start" && name != "window_end" {
            text.push_str(&format!(" {name}={value}"));
        }
    }
    text
}

fn lines(emits: Vec<sluice_processor::operator::Emit>) -> Vec<String> {
    next(emits).iter().map(line).collect()
}

#[test]
fn tumbling_windows_count_out_of_order_records_and_close_by_end_start_key() {
    let mut op = counting(TUMBLING_10, 0, EmitPolicy::Close);
    for (key, time) in [
        (Some("b"), 3),
        (Some("a"), 12),
        (Some("a"), 1),
        (Some("b"), 7),
        (None, 5),
        (Some("a"), 9),
        (Some("a"), -1),
    ] {
        assert!(feed(op.as_mut(), record(key, time, json!({}))).is_empty());
    }
    assert_eq!(op.state_entries(), 5);
    assert_eq!(lines(watermark(op.as_mut(), 9)), ["a [-10,0) count=1"]);
    assert_eq!(
        lines(watermark(op.as_mut(), 20)),
        [
            "null [0,10) count=1",
            "a [0,10) count=2",
            "b [0,10) count=2",
            "a [10,20) count=1",
        ]
    );
    assert_eq!(op.state_entries(), 0);
    assert_eq!(op.dropped(), 0);
}

#[test]
fn negative_event_times_floor_to_their_window() {
    let mut op = counting(TUMBLING_10, 0, EmitPolicy::Close);
    for time in [-1, -10, -11, 0, -20, -21] {
        feed(op.as_mut(), record(Some("k"), time, json!(null)));
    }
    assert_eq!(
        lines(watermark(op.as_mut(), i64::MAX)),
        [
            "k [-30,-20) count=1",
            "k [-20,-10) count=2",
            "k [-10,0) count=2",
            "k [0,10) count=1",
        ]
    );
}

#[test]
fn records_behind_a_closed_window_are_late_and_counted() {
    let mut op = counting(TUMBLING_10, 0, EmitPolicy::Close);
    feed(op.as_mut(), record(Some("k"), 1, json!({})));
    assert_eq!(lines(watermark(op.as_mut(), 10)), ["k [0,10) count=1"]);
    assert!(feed(op.as_mut(), record(Some("k"), 9, json!({}))).is_empty());
    assert!(feed(op.as_mut(), record(Some("other"), 0, json!({}))).is_empty());
    assert_eq!(op.dropped(), 2);
    assert_eq!(op.state_entries(), 0);
    // The next window is still open.
    feed(op.as_mut(), record(Some("k"), 10, json!({})));
    assert_eq!(lines(watermark(op.as_mut(), 20)), ["k [10,20) count=1"]);
}

#[test]
fn lateness_keeps_a_window_open_past_its_end() {
    let mut op = counting(TUMBLING_10, 5, EmitPolicy::Close);
    feed(op.as_mut(), record(Some("k"), 1, json!({})));
    assert!(watermark(op.as_mut(), 14).is_empty());
    feed(op.as_mut(), record(Some("k"), 8, json!({})));
    feed(op.as_mut(), record(Some("k"), 16, json!({})));
    assert_eq!(lines(watermark(op.as_mut(), 15)), ["k [0,10) count=2"]);
    assert!(feed(op.as_mut(), record(Some("k"), 9, json!({}))).is_empty());
    assert_eq!(op.dropped(), 1);
    // [10,20) closes at 25, and still takes records until then.
    feed(op.as_mut(), record(Some("k"), 10, json!({})));
    assert!(watermark(op.as_mut(), 24).is_empty());
    assert_eq!(lines(watermark(op.as_mut(), 25)), ["k [10,20) count=2"]);
}

#[test]
fn a_watermark_that_goes_back_reopens_nothing() {
    let mut op = counting(TUMBLING_10, 0, EmitPolicy::Close);
    feed(op.as_mut(), record(Some("k"), 1, json!({})));
    assert_eq!(watermark(op.as_mut(), 30).len(), 1);
    assert!(watermark(op.as_mut(), 5).is_empty());
    assert!(feed(op.as_mut(), record(Some("k"), 15, json!({}))).is_empty());
    assert_eq!(op.dropped(), 1);
}

#[test]
fn hopping_windows_count_a_record_in_every_window_containing_it() {
    let hopping = WindowKind::Hopping {
        size_ms: 10,
        advance_ms: 5,
    };
    let mut op = counting(hopping, 0, EmitPolicy::Close);
    for time in [7, 12, 3] {
        feed(op.as_mut(), record(Some("k"), time, json!({})));
    }
    assert_eq!(
        lines(watermark(op.as_mut(), 10)),
        ["k [-5,5) count=1", "k [0,10) count=2"]
    );
    // [0,10) is closed but [5,15) is open: the record counts there and is not late.
    feed(op.as_mut(), record(Some("k"), 9, json!({})));
    assert_eq!(op.dropped(), 0);
    // Both of its windows are closed: late.
    feed(op.as_mut(), record(Some("k"), 4, json!({})));
    assert_eq!(op.dropped(), 1);
    assert_eq!(
        lines(watermark(op.as_mut(), 100)),
        ["k [5,15) count=3", "k [10,20) count=1"]
    );
}

#[test]
fn hopping_windows_with_gaps_drop_records_between_them() {
    let hopping = WindowKind::Hopping {
        size_ms: 5,
        advance_ms: 10,
    };
    let mut op = counting(hopping, 0, EmitPolicy::Close);
    feed(op.as_mut(), record(Some("k"), 7, json!({})));
    feed(op.as_mut(), record(Some("k"), 13, json!({})));
    assert_eq!(op.dropped(), 1);
    assert_eq!(lines(watermark(op.as_mut(), 100)), ["k [10,15) count=1"]);
}

#[test]
fn sessions_merge_when_a_record_bridges_them_and_stay_apart_at_exactly_the_gap() {
    let mut op = counting(WindowKind::Session { gap_ms: 10 }, 0, EmitPolicy::Close);
    for (key, time) in [
        ("a", 0),
        ("a", 25),
        ("a", 15), // exactly the gap before 25: a session of its own
        ("b", 5),
        ("a", 12), // joins 15
        ("a", 5),  // bridges [0,10) and [12,25)
    ] {
        feed(op.as_mut(), record(Some(key), time, json!({})));
    }
    assert_eq!(op.state_entries(), 3);
    assert_eq!(
        lines(watermark(op.as_mut(), 100)),
        ["b [5,15) count=1", "a [0,25) count=4", "a [25,35) count=1"]
    );
    assert_eq!(op.state_entries(), 0);
}

#[test]
fn a_late_record_may_still_extend_an_open_session() {
    let mut op = counting(WindowKind::Session { gap_ms: 10 }, 0, EmitPolicy::Close);
    feed(op.as_mut(), record(Some("a"), 0, json!({})));
    assert_eq!(lines(watermark(op.as_mut(), 10)), ["a [0,10) count=1"]);
    feed(op.as_mut(), record(Some("a"), -5, json!({})));
    assert_eq!(op.dropped(), 1);
    feed(op.as_mut(), record(Some("a"), 3, json!({})));
    feed(op.as_mut(), record(Some("a"), 20, json!({})));
    assert_eq!(lines(watermark(op.as_mut(), 25)), ["a [3,13) count=1"]);
    // Its own session [11,21) would be closed, but it touches the open [20,30).
    feed(op.as_mut(), record(Some("a"), 11, json!({})));
    assert_eq!(op.dropped(), 1);
    assert_eq!(lines(watermark(op.as_mut(), 40)), ["a [11,30) count=2"]);
}

#[test]
fn emit_update_sends_the_current_result_after_each_change_and_at_close() {
    let mut op = counting(TUMBLING_10, 0, EmitPolicy::Update);
    assert_eq!(
        lines(feed(op.as_mut(), record(Some("a"), 1, json!({})))),
        ["a [0,10) count=1"]
    );
    assert_eq!(
        lines(feed(op.as_mut(), record(Some("a"), 2, json!({})))),
        ["a [0,10) count=2"]
    );
    assert_eq!(
        lines(feed(op.as_mut(), record(Some("b"), 3, json!({})))),
        ["b [0,10) count=1"]
    );
    assert_eq!(
        lines(watermark(op.as_mut(), 10)),
        ["a [0,10) count=2", "b [0,10) count=1"]
    );
    assert!(feed(op.as_mut(), record(Some("a"), 4, json!({}))).is_empty());
}

#[test]
fn emit_update_on_hopping_and_session_windows() {
    let hopping = WindowKind::Hopping {
        size_ms: 10,
        advance_ms: 5,
    };
    let mut op = counting(hopping, 0, EmitPolicy::Update);
    assert_eq!(
        lines(feed(op.as_mut(), record(Some("a"), 7, json!({})))),
        ["a [0,10) count=1", "a [5,15) count=1"]
    );
    let mut op = counting(WindowKind::Session { gap_ms: 10 }, 0, EmitPolicy::Update);
    feed(op.as_mut(), record(Some("a"), 0, json!({})));
    feed(op.as_mut(), record(Some("a"), 18, json!({})));
    assert_eq!(
        lines(feed(op.as_mut(), record(Some("a"), 9, json!({})))),
        ["a [0,28) count=3"]
    );
}

#[test]
fn raw_payloads_can_be_counted() {
    let mut op = counting(TUMBLING_10, 0, EmitPolicy::Close);
    feed(op.as_mut(), raw(Some("k"), 1, b"\xff\x00"));
    feed(op.as_mut(), raw(None, 2, b"x"));
    assert_eq!(
        lines(watermark(op.as_mut(), 10)),
        ["null [0,10) count=1", "k [0,10) count=1"]
    );
}

#[test]
fn non_positive_sizes_are_refused_per_record_not_panicked_on() {
    for kind in [
        WindowKind::Tumbling { size_ms: 0 },
        WindowKind::Hopping {
            size_ms: 10,
            advance_ms: 0,
        },
        WindowKind::Session { gap_ms: -1 },
    ] {
        let mut op = counting(kind, 0, EmitPolicy::Close);
        let mut out = Vec::new();
        let result = op.on_record(record(Some("k"), 1, json!({})), &mut out);
        assert!(matches!(result, Err(StepError::Invalid(_))), "{kind:?}");
        assert!(out.is_empty());
    }
}

#[test]
fn extreme_event_times_fail_the_record_instead_of_overflowing() {
    let mut op = counting(TUMBLING_10, i64::MAX, EmitPolicy::Close);
    for time in [i64::MIN, i64::MAX - 1] {
        let mut out = Vec::new();
        let result = op.on_record(record(Some("k"), time, json!({})), &mut out);
        assert!(matches!(result, Err(StepError::Invalid(_))), "{time}");
    }
    feed(op.as_mut(), record(Some("k"), i64::MAX - 20, json!({})));
    // Lateness saturates: the window closes only at the end of time.
    assert!(watermark(op.as_mut(), i64::MAX - 1).is_empty());
    assert_eq!(watermark(op.as_mut(), i64::MAX).len(), 1);

    let mut op = counting(WindowKind::Session { gap_ms: 10 }, 0, EmitPolicy::Close);
    let mut out = Vec::new();
    let result = op.on_record(record(Some("k"), i64::MAX - 5, json!({})), &mut out);
    assert!(matches!(result, Err(StepError::Invalid(_))));
    feed(op.as_mut(), record(Some("k"), i64::MIN, json!({})));
    assert_eq!(
        lines(watermark(op.as_mut(), i64::MAX)),
        [format!("k [{},{}) count=1", i64::MIN, i64::MIN + 10)]
    );
}

fn all_aggregates() -> Vec<Aggregate> {
    vec![
        count(),
        aggregate("c", AggregateFn::Count, "v"),
        aggregate("s", AggregateFn::Sum, "v"),
        aggregate("lo", AggregateFn::Min, "v"),
        aggregate("hi", AggregateFn::Max, "v"),
        aggregate("mean", AggregateFn::Avg, "v"),
        aggregate("f", AggregateFn::First, "v"),
        aggregate("l", AggregateFn::Last, "v"),
        aggregate("d", AggregateFn::DistinctCount, "v"),
    ]
}

#[test]
fn aggregates_over_mixed_integers_floats_and_nulls() {
    let mut op = build(window_spec(
        WindowKind::Tumbling { size_ms: 100 },
        0,
        EmitPolicy::Close,
        all_aggregates(),
    ));
    for (key, time, value) in [
        ("a", 5, json!({"v": 1})),
        ("a", 3, json!({"v": 2.5})),
        ("a", 4, json!({})),
        ("a", 9, json!({"v": null})),
        ("a", 1, json!({"v": -3})),
        ("a", 9, json!({"v": 2.5})),
        ("b", 2, json!({"v": 2})),
        ("b", 1, json!({"v": 1})),
        ("c", 1, json!({"w": 1})),
    ] {
        feed(op.as_mut(), record(Some(key), time, value));
    }
    let results = next(watermark(op.as_mut(), 100));
    let values: Vec<&Value> = results.iter().map(json).collect();
    assert_eq!(
        values,
        [
            &json!({"window_start": 0, "window_end": 100, "count": 6, "c": 4, "s": 3.0,
                    "lo": -3, "hi": 2.5, "mean": 0.75, "f": -3, "l": 2.5, "d": 3}),
            &json!({"window_start": 0, "window_end": 100, "count": 2, "c": 2, "s": 3,
                    "lo": 1, "hi": 2, "mean": 1.5, "f": 1, "l": 2, "d": 2}),
            &json!({"window_start": 0, "window_end": 100, "count": 1, "c": 0, "s": null,
                    "lo": null, "hi": null, "mean": null, "f": null, "l": null, "d": 0}),
        ]
    );
}

#[test]
fn a_non_number_argument_fails_the_record_without_changing_any_window() {
    let mut op = build(window_spec(
        TUMBLING_10,
        0,
        EmitPolicy::Update,
        all_aggregates(),
    ));
    feed(op.as_mut(), record(Some("a"), 1, json!({"v": 4})));
    let before = op.snapshot();
    for bad in [json!({"v": "4"}), json!({"v": true}), json!({"v": [1]})] {
        let mut out = Vec::new();
        let result = op.on_record(record(Some("a"), 2, bad), &mut out);
        assert!(
            matches!(result, Err(StepError::Eval(EvalError::Type(_)))),
            "{result:?}"
        );
        assert!(out.is_empty());
        assert_eq!(op.snapshot(), before);
    }
    let mut out = Vec::new();
    let result = op.on_record(raw(Some("a"), 2, b"4"), &mut out);
    assert!(
        matches!(result, Err(StepError::Eval(EvalError::NotJson))),
        "{result:?}"
    );
    assert_eq!(op.snapshot(), before);
    // A late record is dropped before its arguments are looked at.
    watermark(op.as_mut(), 10);
    assert!(feed(op.as_mut(), record(Some("a"), 3, json!({"v": "late"}))).is_empty());
    assert_eq!(op.dropped(), 1);
    // first/last/distinct_count take any value.
    let mut op = build(window_spec(
        TUMBLING_10,
        0,
        EmitPolicy::Close,
        vec![
            aggregate("f", AggregateFn::First, "v"),
            aggregate("d", AggregateFn::DistinctCount, "v"),
        ],
    ));
    feed(
        op.as_mut(),
        record(Some("a"), 1, json!({"v": {"x": [1, "y"]}})),
    );
    feed(op.as_mut(), record(Some("a"), 2, json!({"v": "s"})));
    let results = next(watermark(op.as_mut(), 10));
    assert_eq!(
        json(&results[0]),
        &json!({"window_start": 0, "window_end": 10, "f": {"x": [1, "y"]}, "d": 2})
    );
}

#[test]
fn emit_update_skips_records_that_change_nothing() {
    let mut op = build(window_spec(
        TUMBLING_10,
        0,
        EmitPolicy::Update,
        vec![aggregate("hi", AggregateFn::Max, "v")],
    ));
    assert_eq!(
        lines(feed(op.as_mut(), record(Some("a"), 1, json!({"v": 5})))),
        ["a [0,10) hi=5"]
    );
    assert!(feed(op.as_mut(), record(Some("a"), 2, json!({"v": 3}))).is_empty());
    assert!(feed(op.as_mut(), record(Some("a"), 2, json!({}))).is_empty());
    assert_eq!(
        lines(feed(op.as_mut(), record(Some("a"), 3, json!({"v": 6})))),
        ["a [0,10) hi=6"]
    );
    // A record opening a window changes it even when its argument is null.
    assert_eq!(
        lines(feed(op.as_mut(), record(Some("b"), 3, json!({})))),
        ["b [0,10) hi=null"]
    );
}

#[test]
fn session_merges_combine_aggregates() {
    let mut op = build(window_spec(
        WindowKind::Session { gap_ms: 10 },
        0,
        EmitPolicy::Close,
        all_aggregates(),
    ));
    for (time, value) in [
        (0, json!({"v": 1})),
        (30, json!({"v": 2.0})),
        (15, json!({"v": 1})),
        (22, json!({"v": null})),
        (8, json!({"v": 7})),
    ] {
        feed(op.as_mut(), record(Some("a"), time, value));
    }
    let results = next(watermark(op.as_mut(), 100));
    assert_eq!(
        results.iter().map(json).collect::<Vec<_>>(),
        [
            &json!({"window_start": 0, "window_end": 40, "count": 5, "c": 4, "s": 11.0,
                 "lo": 1, "hi": 7, "mean": 2.75, "f": 1, "l": 2.0, "d": 3})
        ]
    );
}
