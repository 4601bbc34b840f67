//! Snapshot and restore: an operator restored mid-stream from its snapshot (written out
//! as text and parsed back, as a checkpoint store would) continues exactly as an
//! uninterrupted one. Also: windows fed everything before any watermark give the same
//! results whatever the arrival order, equal to a batch computation.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Value, json};
use sluice_processor::operator::{Emit, Operator, StepError};
use sluice_processor::record::{Payload, Record};
use sluice_processor::spec::{
    AggregateFn, DedupeSpec, EmitPolicy, JoinMissing, JoinSpec, StepKind, WindowKind,
};

use super::window::{aggregate, count, window_spec};
use super::{build, json};

/// One input to an operator.
#[derive(Debug, Clone)]
enum Event {
    Record {
        key: Option<u8>,
        time: i64,
        value: Value,
    },
    Watermark(i64),
    Table {
        table: &'static str,
        key: u8,
        value: Option<Value>,
    },
}

/// Key bytes that are not UTF-8, so the snapshot must keep them exactly.
fn key_bytes(key: u8) -> Bytes {
    Bytes::from(vec![key, 0xff, 0x00])
}

fn to_record(key: Option<u8>, time: i64, value: &Value) -> Record {
    Record {
        key: key.map(key_bytes),
        value: Payload::Json(value.clone()),
        headers: Vec::new(),
        timestamp: time,
        event_time: time,
    }
}

/// What one event produced.
type Outcome = Result<Vec<Emit>, StepError>;

fn apply(op: &mut dyn Operator, event: &Event) -> Outcome {
    let mut out = Vec::new();
    match event {
        Event::Record { key, time, value } => {
            op.on_record(to_record(*key, *time, value), &mut out)?
        }
        Event::Watermark(watermark) => op.on_watermark(*watermark, &mut out),
        Event::Table { table, key, value } => {
            op.on_table_update(table, key_bytes(*key), value.clone());
        }
    }
    Ok(out)
}

/// Restores `op`'s snapshot, through text, into a fresh operator of `kind`.
fn restored(kind: &StepKind, op: &dyn Operator) -> Box<dyn Operator> {
    let text = op.snapshot().to_string();
    let state: Value = serde_json::from_str(&text).unwrap();
    let mut fresh = build(kind.clone());
    fresh.restore(state).unwrap();
    assert_eq!(fresh.snapshot(), op.snapshot());
    assert_eq!(fresh.state_entries(), op.state_entries());
    fresh
}

/// Runs `events` uninterrupted and with a restore before event `split`; both must
/// produce the same outcomes and end in the same state.
fn check_restore_at(kind: &StepKind, events: &[Event], split: usize) -> Result<(), TestCaseError> {
    let mut whole = build(kind.clone());
    let expected: Vec<Outcome> = events.iter().map(|e| apply(whole.as_mut(), e)).collect();

    let mut first = build(kind.clone());
    let (before, after) = events.split_at(split.min(events.len()));
    let mut outcomes: Vec<Outcome> = before.iter().map(|e| apply(first.as_mut(), e)).collect();
    let mut second = restored(kind, first.as_ref());
    outcomes.extend(after.iter().map(|e| apply(second.as_mut(), e)));

    prop_assert_eq!(outcomes, expected);
    prop_assert_eq!(second.snapshot(), whole.snapshot());
    prop_assert_eq!(second.state_entries(), whole.state_entries());
    Ok(())
}

fn check_restore_everywhere(kind: &StepKind, events: &[Event]) {
    for split in 0..=events.len() {
        check_restore_at(kind, events, split).unwrap_or_else(|e| panic!("split {split}: {e}"));
    }
}

fn rec(key: Option<u8>, time: i64, value: Value) -> Event {
    Event::Record { key, time, value }
}

/// Fixed streams exercising out-of-order, late and merging records.
fn fixed_window_events() -> Vec<Event> {
    vec![
        rec(Some(1), 5, json!({"v": 1})),
        rec(Some(2), 3, json!({"v": 2.25})),
        rec(None, 12, json!({})),
        rec(Some(1), 14, json!({"v": null})),
        Event::Watermark(9),
        rec(Some(1), 1, json!({"v": -4})),
        rec(Some(1), 9, json!({"v": 7})),
        rec(Some(2), 25, json!({"v": 0.5})),
        Event::Watermark(16),
        rec(Some(2), 19, json!({"v": 3})),
        rec(Some(1), 2, json!({"v": 1})),
        rec(Some(1), 22, json!({"v": 1})),
        Event::Watermark(40),
        rec(Some(1), 41, json!({"v": 2})),
    ]
}

fn window_kinds() -> [WindowKind; 3] {
    [
        WindowKind::Tumbling { size_ms: 10 },
        WindowKind::Hopping {
            size_ms: 10,
            advance_ms: 4,
        },
        WindowKind::Session { gap_ms: 6 },
    ]
}

#[test]
fn counting_windows_restore_anywhere_mid_stream() {
    for kind in window_kinds() {
        for emit in [EmitPolicy::Close, EmitPolicy::Update] {
            for lateness in [0, 3] {
                let spec = window_spec(kind, lateness, emit, vec![count()]);
                check_restore_everywhere(&spec, &fixed_window_events());
            }
        }
    }
}

fn every_aggregate() -> Vec<sluice_processor::spec::Aggregate> {
    vec![
        count(),
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
fn aggregating_windows_restore_anywhere_mid_stream() {
    for kind in window_kinds() {
        let spec = window_spec(kind, 2, EmitPolicy::Update, every_aggregate());
        check_restore_everywhere(&spec, &fixed_window_events());
    }
}

#[test]
fn dedupe_restores_anywhere_mid_stream() {
    let spec = StepKind::Dedupe(DedupeSpec {
        by: None,
        within_ms: 5,
    });
    let events = vec![
        rec(Some(1), 0, json!(1)),
        rec(Some(1), 3, json!(2)),
        rec(None, 3, json!(3)),
        rec(Some(2), 4, json!(4)),
        Event::Watermark(6),
        rec(Some(1), 9, json!(5)),
        Event::Watermark(9),
        rec(Some(2), 8, json!(6)),
        rec(None, 1, json!(7)),
        Event::Watermark(30),
        rec(Some(1), 10, json!(8)),
    ];
    check_restore_everywhere(&spec, &events);
}

fn join_spec(max_entries: usize, missing: JoinMissing) -> StepKind {
    StepKind::Join(JoinSpec {
        table: "t".to_owned(),
        on: None,
        into: "row".to_owned(),
        max_entries,
        missing,
    })
}

fn table(key: u8, value: Option<Value>) -> Event {
    Event::Table {
        table: "t",
        key,
        value,
    }
}

#[test]
fn join_restores_anywhere_mid_stream_keeping_eviction_order() {
    let events = vec![
        table(1, Some(json!(1))),
        table(2, Some(json!({"x": 2.5}))),
        rec(Some(1), 0, json!({})),
        table(1, Some(json!(11))),
        table(3, Some(json!(3))),
        rec(Some(2), 0, json!({})),
        Event::Table {
            table: "other",
            key: 4,
            value: Some(json!(4)),
        },
        table(4, Some(json!(4))),
        rec(Some(1), 0, json!({})),
        rec(Some(3), 0, json!({})),
        table(3, None),
        table(5, Some(json!(5))),
        rec(Some(4), 0, json!({})),
        rec(None, 0, json!({})),
    ];
    for missing in [JoinMissing::Keep, JoinMissing::Drop] {
        check_restore_everywhere(&join_spec(2, missing), &events);
    }
}

#[test]
fn restore_refuses_state_of_another_shape() {
    let tumbling = window_spec(
        WindowKind::Tumbling { size_ms: 10 },
        0,
        EmitPolicy::Close,
        vec![count()],
    );
    let mut op = build(tumbling.clone());
    let mut out = Vec::new();
    op.on_record(to_record(Some(1), 1, &json!({})), &mut out)
        .unwrap();
    let state = op.snapshot();

    let session = window_spec(
        WindowKind::Session { gap_ms: 10 },
        0,
        EmitPolicy::Close,
        vec![count()],
    );
    assert!(build(session).restore(state.clone()).is_err());
    let two = window_spec(
        WindowKind::Tumbling { size_ms: 10 },
        0,
        EmitPolicy::Close,
        vec![count(), count()],
    );
    assert!(build(two).restore(state.clone()).is_err());
    let dedupe = StepKind::Dedupe(DedupeSpec {
        by: None,
        within_ms: 5,
    });
    assert!(build(dedupe).restore(state.clone()).is_err());
    assert!(
        build(join_spec(2, JoinMissing::Keep))
            .restore(state)
            .is_err()
    );
    for garbage in [Value::Null, json!([]), json!({"operator": "window"})] {
        assert!(build(tumbling.clone()).restore(garbage).is_err());
    }
    // Stateless steps have no state and take any.
    let map = StepKind::Map(Default::default());
    assert_eq!(build(map.clone()).snapshot(), Value::Null);
    assert!(build(map).restore(Value::Null).is_ok());
}

// ---- random streams ----

fn key_strategy() -> impl Strategy<Value = Option<u8>> {
    prop::option::weighted(0.8, 0u8..4)
}

fn number_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => (-5i64..6).prop_map(|v| json!({"v": v})),
        // Quarters are exact in binary: float results are then the same whatever the
        // text form in between.
        2 => (-20i64..21).prop_map(|q| json!({"v": q as f64 / 4.0})),
        1 => Just(json!({"v": null})),
        1 => Just(json!({})),
        1 => (0u8..3).prop_map(|s| json!({"v": format!("s{s}")})),
    ]
}

/// Records and watermark steps; watermarks are made absolute and non-decreasing.
fn events_strategy(
    value: impl Strategy<Value = Value> + 'static,
) -> impl Strategy<Value = Vec<Event>> {
    let step = prop_oneof![
        4 => (key_strategy(), -40i64..120, value)
            .prop_map(|(key, time, value)| Some((key, time, value))),
        1 => Just(None),
    ];
    (prop::collection::vec((step, 0i64..25), 0..60), -50i64..10).prop_map(|(steps, start)| {
        let mut watermark = start;
        steps
            .into_iter()
            .map(|(step, advance)| match step {
                Some((key, time, value)) => rec(key, time, value),
                None => {
                    watermark += advance;
                    Event::Watermark(watermark)
                }
            })
            .collect()
    })
}

fn window_kind_strategy() -> impl Strategy<Value = WindowKind> {
    prop_oneof![
        (1i64..40).prop_map(|size_ms| WindowKind::Tumbling { size_ms }),
        (1i64..40, 1i64..40).prop_map(|(size_ms, advance_ms)| WindowKind::Hopping {
            size_ms,
            advance_ms,
        }),
        (1i64..30).prop_map(|gap_ms| WindowKind::Session { gap_ms }),
    ]
}

fn emit_strategy() -> impl Strategy<Value = EmitPolicy> {
    prop_oneof![Just(EmitPolicy::Close), Just(EmitPolicy::Update)]
}

proptest! {
    #[test]
    fn counting_windows_restored_mid_stream_match_an_uninterrupted_run(
        kind in window_kind_strategy(),
        lateness in 0i64..20,
        emit in emit_strategy(),
        events in events_strategy(Just(json!({}))),
        split in 0usize..64,
    ) {
        let spec = window_spec(kind, lateness, emit, vec![count()]);
        check_restore_at(&spec, &events, split)?;
    }

    #[test]
    fn aggregating_windows_restored_mid_stream_match_an_uninterrupted_run(
        kind in window_kind_strategy(),
        lateness in 0i64..20,
        emit in emit_strategy(),
        events in events_strategy(number_value()),
        split in 0usize..64,
    ) {
        let spec = window_spec(kind, lateness, emit, every_aggregate());
        check_restore_at(&spec, &events, split)?;
    }

    #[test]
    fn dedupe_restored_mid_stream_matches_an_uninterrupted_run(
        within_ms in 0i64..30,
        events in events_strategy(Just(json!(1))),
        split in 0usize..64,
    ) {
        let spec = StepKind::Dedupe(DedupeSpec { by: None, within_ms });
        check_restore_at(&spec, &events, split)?;
    }

    #[test]
    fn join_restored_mid_stream_matches_an_uninterrupted_run(
        max_entries in 0usize..4,
        drop_missing in any::<bool>(),
        steps in prop::collection::vec(
            prop_oneof![
                (key_strategy()).prop_map(|key| rec(key, 0, json!({"x": 1}))),
                (0u8..6, prop::option::of(-3i64..3))
                    .prop_map(|(key, value)| table(key, value.map(Value::from))),
            ],
            0..50,
        ),
        split in 0usize..52,
    ) {
        let missing = if drop_missing { JoinMissing::Drop } else { JoinMissing::Keep };
        check_restore_at(&join_spec(max_entries, missing), &steps, split)?;
    }

    #[test]
    fn windows_without_watermarks_until_the_end_equal_a_batch_computation(
        kind in window_kind_strategy(),
        lateness in 0i64..20,
        records in prop::collection::vec((key_strategy(), -40i64..120), 0..40),
    ) {
        let mut op = build(window_spec(kind, lateness, EmitPolicy::Close, vec![count()]));
        for (key, time) in &records {
            let mut out = Vec::new();
            op.on_record(to_record(*key, *time, &json!({})), &mut out).unwrap();
            prop_assert!(out.is_empty());
        }
        let mut out = Vec::new();
        op.on_watermark(i64::MAX, &mut out);
        let got: Vec<(i64, i64, Option<Bytes>, u64)> = out
            .into_iter()
            .map(|emit| {
                let Emit::Next(record) = emit else { panic!("routed window result") };
                let value = json(&record);
                (
                    value["window_end"].as_i64().unwrap(),
                    value["window_start"].as_i64().unwrap(),
                    record.key.clone(),
                    value["count"].as_u64().unwrap(),
                )
            })
            .collect();
        prop_assert_eq!(got, batch_counts(kind, &records));
        prop_assert_eq!(op.state_entries(), 0);
    }
}

/// Window counts computed from all records at once, in closing order.
fn batch_counts(
    kind: WindowKind,
    records: &[(Option<u8>, i64)],
) -> Vec<(i64, i64, Option<Bytes>, u64)> {
    let mut counts: BTreeMap<(i64, i64, Option<Bytes>), u64> = BTreeMap::new();
    match kind {
        WindowKind::Tumbling { size_ms } | WindowKind::Hopping { size_ms, .. } => {
            let advance_ms = match kind {
                WindowKind::Hopping { advance_ms, .. } => advance_ms,
                _ => size_ms,
            };
            for (key, time) in records {
                // Every start k*advance with start <= time < start + size.
                let mut k = time.div_euclid(advance_ms);
                while k * advance_ms + size_ms > *time {
                    let start = k * advance_ms;
                    *counts
                        .entry((start + size_ms, start, key.map(key_bytes)))
                        .or_default() += 1;
                    k -= 1;
                }
            }
        }
        WindowKind::Session { gap_ms } => {
            let mut by_key: BTreeMap<Option<u8>, Vec<i64>> = BTreeMap::new();
            for (key, time) in records {
                by_key.entry(*key).or_default().push(*time);
            }
            for (key, mut times) in by_key {
                times.sort_unstable();
                let mut session: Option<(i64, i64, u64)> = None;
                for time in times {
                    session = match session {
                        Some((start, last, n)) if time - last < gap_ms => {
                            Some((start, time, n + 1))
                        }
                        Some((start, last, n)) => {
                            counts.insert((last + gap_ms, start, key.map(key_bytes)), n);
                            Some((time, time, 1))
                        }
                        None => Some((time, time, 1)),
                    };
                }
                if let Some((start, last, n)) = session {
                    counts.insert((last + gap_ms, start, key.map(key_bytes)), n);
                }
            }
        }
    }
    counts
        .into_iter()
        .map(|((end, start, key), n)| (end, start, key, n))
        .collect()
}
