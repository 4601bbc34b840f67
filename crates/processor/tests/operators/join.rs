//! `join`: table updates, lookups, missing rows, the entry bound.

use bytes::Bytes;
use serde_json::{Value, json};
use sluice_processor::expr::EvalError;
use sluice_processor::operator::{Operator, StepError};
use sluice_processor::spec::{JoinMissing, JoinSpec, StepKind};

use super::{build, expr, feed, json, next, raw, record};

fn join(max_entries: usize, missing: JoinMissing) -> Box<dyn Operator> {
    build(StepKind::Join(JoinSpec {
        table: "customers".to_owned(),
        on: None,
        into: "customer".to_owned(),
        max_entries,
        missing,
    }))
}

fn update(op: &mut dyn Operator, key: &str, value: Option<Value>) {
    op.on_table_update("customers", Bytes::copy_from_slice(key.as_bytes()), value);
}

/// The `customer` field the join gives a record keyed `key` (`None`: passed without it).
fn lookup(op: &mut dyn Operator, key: &str) -> Option<Value> {
    let out = next(feed(op, record(Some(key), 1, json!({"order": 1}))));
    assert_eq!(out.len(), 1);
    json(&out[0]).get("customer").cloned()
}

#[test]
fn enriches_records_with_the_latest_table_value() {
    let mut op = join(10, JoinMissing::Keep);
    update(op.as_mut(), "c1", Some(json!({"name": "ada"})));
    op.on_table_update("other", Bytes::from_static(b"c2"), Some(json!("ignored")));
    assert_eq!(op.state_entries(), 1);
    let out = next(feed(
        op.as_mut(),
        record(Some("c1"), 1, json!({"order": 1})),
    ));
    assert_eq!(
        json(&out[0]),
        &json!({"order": 1, "customer": {"name": "ada"}})
    );
    update(op.as_mut(), "c1", Some(json!("v2")));
    assert_eq!(lookup(op.as_mut(), "c1"), Some(json!("v2")));
    // Missing (and null-keyed) records pass unchanged in a left join.
    assert_eq!(lookup(op.as_mut(), "c2"), None);
    let unkeyed = record(None, 1, json!({"order": 1}));
    assert_eq!(next(feed(op.as_mut(), unkeyed.clone())), [unkeyed]);
    // A delete removes the row.
    update(op.as_mut(), "c1", None);
    assert_eq!(lookup(op.as_mut(), "c1"), None);
    assert_eq!(op.state_entries(), 0);
    assert_eq!(op.dropped(), 0);
}

#[test]
fn an_inner_join_drops_and_counts_records_without_a_row() {
    let mut op = join(10, JoinMissing::Drop);
    update(op.as_mut(), "c1", Some(json!(1)));
    assert_eq!(lookup(op.as_mut(), "c1"), Some(json!(1)));
    assert!(feed(op.as_mut(), record(Some("c2"), 1, json!({}))).is_empty());
    assert!(feed(op.as_mut(), record(None, 1, json!({}))).is_empty());
    assert_eq!(op.dropped(), 2);
}

#[test]
fn a_full_table_evicts_the_least_recently_updated_row() {
    let mut op = join(2, JoinMissing::Keep);
    update(op.as_mut(), "c1", Some(json!(1)));
    update(op.as_mut(), "c2", Some(json!(2)));
    update(op.as_mut(), "c1", Some(json!(11)));
    // Reads do not count as updates.
    assert_eq!(lookup(op.as_mut(), "c2"), Some(json!(2)));
    update(op.as_mut(), "c3", Some(json!(3)));
    assert_eq!(op.state_entries(), 2);
    assert_eq!(lookup(op.as_mut(), "c2"), None);
    assert_eq!(lookup(op.as_mut(), "c1"), Some(json!(11)));
    update(op.as_mut(), "c4", Some(json!(4)));
    assert_eq!(lookup(op.as_mut(), "c1"), None);
    assert_eq!(lookup(op.as_mut(), "c3"), Some(json!(3)));
    assert_eq!(lookup(op.as_mut(), "c4"), Some(json!(4)));
    // A deleted row frees its place: nothing is evicted for the next.
    update(op.as_mut(), "c3", None);
    update(op.as_mut(), "c5", Some(json!(5)));
    assert_eq!(lookup(op.as_mut(), "c4"), Some(json!(4)));
    assert_eq!(lookup(op.as_mut(), "c5"), Some(json!(5)));
}

#[test]
fn a_table_bounded_to_nothing_stores_nothing() {
    let mut op = join(0, JoinMissing::Keep);
    update(op.as_mut(), "c1", Some(json!(1)));
    assert_eq!(op.state_entries(), 0);
    assert_eq!(lookup(op.as_mut(), "c1"), None);
}

#[test]
fn the_value_must_be_a_json_object_whether_or_not_the_row_exists() {
    for missing in [JoinMissing::Keep, JoinMissing::Drop] {
        let mut op = join(10, missing);
        update(op.as_mut(), "c1", Some(json!(1)));
        for key in ["c1", "c2"] {
            let mut out = Vec::new();
            assert_eq!(
                op.on_record(record(Some(key), 1, json!([1])), &mut out),
                Err(StepError::Invalid("value is not a JSON object".to_owned()))
            );
            assert_eq!(
                op.on_record(raw(Some(key), 1, b"{}"), &mut out),
                Err(StepError::Eval(EvalError::NotJson))
            );
            assert!(out.is_empty());
        }
        assert_eq!(op.dropped(), 0);
    }
}

#[test]
fn joins_on_an_expression_rendered_like_a_key() {
    let mut op = build(StepKind::Join(JoinSpec {
        table: "customers".to_owned(),
        on: Some(expr("customer_id")),
        into: "customer.details".to_owned(),
        max_entries: 10,
        missing: JoinMissing::Keep,
    }));
    update(op.as_mut(), "7", Some(json!({"name": "ada"})));
    update(op.as_mut(), "c8", Some(json!({"name": "bob"})));
    let out = next(feed(
        op.as_mut(),
        record(Some("x"), 1, json!({"customer_id": 7})),
    ));
    assert_eq!(
        json(&out[0]),
        &json!({"customer_id": 7, "customer": {"details": {"name": "ada"}}})
    );
    let out = next(feed(
        op.as_mut(),
        record(None, 1, json!({"customer_id": "c8"})),
    ));
    assert_eq!(json(&out[0])["customer"]["details"], json!({"name": "bob"}));
    let input = record(None, 1, json!({"customer_id": null}));
    assert_eq!(next(feed(op.as_mut(), input.clone())), [input]);
}
