//! `dedupe`: duplicates within the time window, expiry, identities from expressions.

use serde_json::json;
use sluice_processor::operator::Operator;
use sluice_processor::spec::{DedupeSpec, StepKind};

use super::{build, expr, feed, raw, record, watermark};

fn by_key(within_ms: i64) -> Box<dyn Operator> {
    build(StepKind::Dedupe(DedupeSpec {
        by: None,
        within_ms,
    }))
}

/// Which of `inputs` (key, event time) pass.
fn passed(op: &mut dyn Operator, inputs: &[(Option<&str>, i64)]) -> Vec<(Option<String>, i64)> {
    let mut passed = Vec::new();
    for (key, time) in inputs {
        if !feed(op, raw(*key, *time, b"v")).is_empty() {
            passed.push((key.map(str::to_owned), *time));
        }
    }
    passed
}

#[test]
fn drops_records_whose_key_was_seen_within_the_window() {
    let mut op = by_key(10);
    let out = passed(
        op.as_mut(),
        &[
            (Some("a"), 0),
            (Some("a"), 5),  // 5 after 0: duplicate
            (Some("a"), 16), // 11 after 5: new
            (Some("b"), 16),
            (None, 16),
            (None, 26),      // 10 after: duplicate (within is inclusive)
            (Some("a"), 12), // out of order, 4 before 16: duplicate
            (Some("a"), 5),  // 11 before 16: not a duplicate
        ],
    );
    assert_eq!(
        out,
        [
            (Some("a".to_owned()), 0),
            (Some("a".to_owned()), 16),
            (Some("b".to_owned()), 16),
            (None, 16),
            (Some("a".to_owned()), 5),
        ]
    );
    assert_eq!(op.dropped(), 3);
    assert_eq!(op.state_entries(), 3);
}

#[test]
fn repeats_keep_an_identity_remembered() {
    let mut op = by_key(10);
    let out = passed(
        op.as_mut(),
        &[
            (Some("a"), 0),
            (Some("a"), 8),
            (Some("a"), 16),
            (Some("a"), 24),
            (Some("a"), 35),
        ],
    );
    assert_eq!(out, [(Some("a".to_owned()), 0), (Some("a".to_owned()), 35)]);
}

#[test]
fn identities_expire_once_the_watermark_passes_them() {
    let mut op = by_key(10);
    passed(op.as_mut(), &[(Some("a"), 0), (Some("b"), 5), (None, 3)]);
    assert!(watermark(op.as_mut(), 10).is_empty());
    assert_eq!(op.state_entries(), 3);
    watermark(op.as_mut(), 14);
    assert_eq!(op.state_entries(), 1);
    // "a" is forgotten: a copy arriving now passes.
    assert_eq!(passed(op.as_mut(), &[(Some("a"), 2)]).len(), 1);
    // "b" (5 + 10 = 15) is still remembered at 14.
    assert!(passed(op.as_mut(), &[(Some("b"), 6)]).is_empty());
    watermark(op.as_mut(), 100);
    assert_eq!(op.state_entries(), 0);
}

#[test]
fn dedupes_by_an_expression_compared_as_canonical_json() {
    let mut op = build(StepKind::Dedupe(DedupeSpec {
        by: Some(expr("id")),
        within_ms: 1_000,
    }));
    let mut passed = 0;
    for (key, value) in [
        ("k1", json!({"id": {"a": 1, "b": 2}})),
        ("k2", json!({"id": {"b": 2, "a": 1}})),
        ("k3", json!({"id": "x"})),
        ("k4", json!({"id": "x", "other": 1})),
        ("k5", json!({"id": 1})),
        ("k6", json!({"id": "1"})),
    ] {
        passed += feed(op.as_mut(), record(Some(key), 1, value)).len();
    }
    assert_eq!(passed, 4);
    assert_eq!(op.dropped(), 2);
    let mut out = Vec::new();
    assert!(op.on_record(raw(Some("k"), 1, b"x"), &mut out).is_err());
}
