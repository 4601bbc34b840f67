//! Stateless steps driven by expressions: filter, key_by, route.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use sluice_processor::operator::Emit;
use sluice_processor::spec::{RouteRule, StepKind};

use super::{build, expr, feed, next, raw, record};

#[test]
fn filter_passes_matching_records_and_counts_the_rest() {
    let mut op = build(StepKind::Filter(expr("temperature > 30")));
    let hot = record(Some("a"), 1, json!({"temperature": 31.5}));
    assert_eq!(next(feed(op.as_mut(), hot.clone())), [hot]);
    assert!(
        feed(
            op.as_mut(),
            record(Some("a"), 2, json!({"temperature": 30}))
        )
        .is_empty()
    );
    assert!(feed(op.as_mut(), record(Some("a"), 3, json!({}))).is_empty());
    assert_eq!(op.dropped(), 2);
    assert_eq!(op.state_entries(), 0);
}

#[test]
fn filter_fails_a_record_its_predicate_cannot_read() {
    let mut op = build(StepKind::Filter(expr("temperature > 30")));
    let mut out = Vec::new();
    assert!(op.on_record(raw(Some("a"), 1, b"31"), &mut out).is_err());
    assert!(out.is_empty());
    assert_eq!(op.dropped(), 0);
}

#[test]
fn key_by_renders_strings_raw_null_as_null_and_the_rest_as_json() {
    let mut op = build(StepKind::KeyBy(expr("device.id")));
    for (value, key) in [
        (
            json!({"device": {"id": "dev-1"}}),
            Some(Bytes::from_static(b"dev-1")),
        ),
        (
            json!({"device": {"id": 42}}),
            Some(Bytes::from_static(b"42")),
        ),
        (
            json!({"device": {"id": {"b": 1, "a": [true]}}}),
            Some(Bytes::from_static(br#"{"a":[true],"b":1}"#)),
        ),
        (json!({"device": {}}), None),
    ] {
        let input = record(Some("old"), 1, value.clone());
        let out = next(feed(op.as_mut(), input.clone()));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].key, key, "{value}");
        assert_eq!(out[0].value, input.value);
    }
}

fn rule(when: &str, to: &str, keep: bool) -> RouteRule {
    RouteRule {
        when: expr(when),
        to: to.to_owned(),
        keep,
        line: 1,
    }
}

#[test]
fn route_sends_to_the_first_matching_rule_and_keeps_when_asked() {
    let mut op = build(StepKind::Route(vec![
        rule("level == \"error\"", "errors", false),
        rule("level == \"warn\" || level == \"error\"", "warnings", true),
    ]));
    let error = record(Some("a"), 1, json!({"level": "error"}));
    assert_eq!(
        feed(op.as_mut(), error.clone()),
        [Emit::To(Arc::from("errors"), error)]
    );
    let warn = record(Some("a"), 2, json!({"level": "warn"}));
    assert_eq!(
        feed(op.as_mut(), warn.clone()),
        [
            Emit::To(Arc::from("warnings"), warn.clone()),
            Emit::Next(warn)
        ]
    );
    let info = record(Some("a"), 3, json!({"level": "info"}));
    assert_eq!(feed(op.as_mut(), info.clone()), [Emit::Next(info)]);
    assert_eq!(op.dropped(), 0);
}

#[test]
fn route_can_test_the_key() {
    let mut op = build(StepKind::Route(vec![rule("key == \"vip\"", "vip", false)]));
    let vip = raw(Some("vip"), 1, b"\x00");
    assert_eq!(
        feed(op.as_mut(), vip.clone()),
        [Emit::To(Arc::from("vip"), vip)]
    );
    let other = raw(None, 1, b"\x00");
    assert_eq!(feed(op.as_mut(), other.clone()), [Emit::Next(other)]);
}
