//! `map`: select, drop, rename, set, key and headers.

use bytes::Bytes;
use serde_json::json;
use sluice_processor::expr::EvalError;
use sluice_processor::operator::StepError;
use sluice_processor::record::Payload;
use sluice_processor::spec::{MapSpec, StepKind};

use super::{build, expr, feed, json, next, raw, record};

fn paths(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|p| (*p).to_owned()).collect()
}

#[test]
fn select_then_drop_then_rename_reshape_nested_fields() {
    let mut op = build(StepKind::Map(MapSpec {
        select: Some(paths(&[
            "user.name",
            "user.address",
            "amount",
            "missing.field",
        ])),
        drop: paths(&["user.address.zip", "nothing"]),
        rename: vec![
            ("user.name".to_owned(), "customer".to_owned()),
            ("amount".to_owned(), "totals.amount".to_owned()),
            ("absent".to_owned(), "never".to_owned()),
        ],
        ..MapSpec::default()
    }));
    let input = record(
        Some("k"),
        7,
        json!({
            "user": {"name": "ada", "age": 36, "address": {"city": "x", "zip": "1"}},
            "amount": 12.5,
            "secret": true
        }),
    );
    let out = next(feed(op.as_mut(), input));
    assert_eq!(out.len(), 1);
    assert_eq!(
        json(&out[0]),
        &json!({"user": {"address": {"city": "x"}}, "customer": "ada", "totals": {"amount": 12.5}})
    );
    assert_eq!(out[0].key, Some(Bytes::from_static(b"k")));
    assert_eq!(out[0].event_time, 7);
}

#[test]
fn a_map_that_leaves_the_value_alone_takes_any_payload() {
    let mut op = build(StepKind::Map(MapSpec::default()));
    for input in [
        record(None, 1, json!([1, 2])),
        record(None, 1, json!("text")),
        raw(Some("k"), 1, b"\xff"),
    ] {
        assert_eq!(next(feed(op.as_mut(), input.clone())), [input]);
    }
}

#[test]
fn reshaping_needs_a_json_object() {
    let reshaping = [
        MapSpec {
            select: Some(paths(&["a"])),
            ..MapSpec::default()
        },
        MapSpec {
            drop: paths(&["a"]),
            ..MapSpec::default()
        },
        MapSpec {
            rename: vec![("a".to_owned(), "b".to_owned())],
            ..MapSpec::default()
        },
    ];
    for spec in reshaping {
        let mut op = build(StepKind::Map(spec));
        let mut out = Vec::new();
        let not_object = op.on_record(record(None, 1, json!([1])), &mut out);
        assert_eq!(
            not_object,
            Err(StepError::Invalid("value is not a JSON object".to_owned()))
        );
        let not_json = op.on_record(raw(None, 1, b"{}"), &mut out);
        assert_eq!(not_json, Err(StepError::Eval(EvalError::NotJson)));
        assert!(out.is_empty());
    }
}

#[test]
fn renaming_into_a_field_that_is_not_an_object_fails_the_record() {
    let mut op = build(StepKind::Map(MapSpec {
        rename: vec![("a".to_owned(), "b.c".to_owned())],
        ..MapSpec::default()
    }));
    let mut out = Vec::new();
    let result = op.on_record(record(None, 1, json!({"a": 1, "b": 2})), &mut out);
    assert!(matches!(result, Err(StepError::Invalid(_))), "{result:?}");
    assert!(out.is_empty());
    // A null on the way becomes an object.
    let out = next(feed(
        op.as_mut(),
        record(None, 1, json!({"a": 1, "b": null})),
    ));
    assert_eq!(json(&out[0]), &json!({"b": {"c": 1}}));
}

#[test]
fn set_sees_the_record_as_it_came_in() {
    let mut op = build(StepKind::Map(MapSpec {
        select: Some(paths(&["id"])),
        rename: vec![("id".to_owned(), "order_id".to_owned())],
        set: vec![
            ("total".to_owned(), expr("price")),
            ("meta.source_id".to_owned(), expr("id")),
            ("meta.big".to_owned(), expr("price > 10")),
            ("id_again".to_owned(), expr("order_id")),
        ],
        ..MapSpec::default()
    }));
    let out = next(feed(
        op.as_mut(),
        record(None, 1, json!({"id": 5, "price": 12.5})),
    ));
    assert_eq!(
        json(&out[0]),
        &json!({"order_id": 5, "total": 12.5, "meta": {"source_id": 5, "big": true},
                "id_again": null})
    );
}

#[test]
fn map_sets_the_key_and_headers_from_the_incoming_record() {
    let mut op = build(StepKind::Map(MapSpec {
        drop: paths(&["user"]),
        key: Some(expr("user")),
        headers: vec![
            ("source".to_owned(), expr("region")),
            ("count".to_owned(), expr("n")),
            ("gone".to_owned(), expr("missing")),
        ],
        ..MapSpec::default()
    }));
    let mut input = record(
        Some("old"),
        1,
        json!({"user": "ada", "region": "eu", "n": 3}),
    );
    input.headers = vec![
        ("source".to_owned(), Some(Bytes::from_static(b"old"))),
        ("keep".to_owned(), None),
    ];
    let out = next(feed(op.as_mut(), input));
    assert_eq!(out[0].key, Some(Bytes::from_static(b"ada")));
    assert_eq!(json(&out[0]), &json!({"region": "eu", "n": 3}));
    assert_eq!(
        out[0].headers,
        vec![
            ("source".to_owned(), Some(Bytes::from_static(b"eu"))),
            ("keep".to_owned(), None),
            ("count".to_owned(), Some(Bytes::from_static(b"3"))),
            ("gone".to_owned(), None),
        ]
    );
    // A null key expression gives a null key; other JSON its text.
    let mut op = build(StepKind::Map(MapSpec {
        key: Some(expr("k")),
        ..MapSpec::default()
    }));
    let out = next(feed(op.as_mut(), record(Some("old"), 1, json!({}))));
    assert_eq!(out[0].key, None);
    let out = next(feed(
        op.as_mut(),
        record(Some("old"), 1, json!({"k": [1, "a"]})),
    ));
    assert_eq!(out[0].key, Some(Bytes::from_static(br#"[1,"a"]"#)));
}

#[test]
fn set_on_a_raw_payload_is_not_json() {
    let mut op = build(StepKind::Map(MapSpec {
        set: vec![("k".to_owned(), expr("key"))],
        ..MapSpec::default()
    }));
    let mut out = Vec::new();
    assert_eq!(
        op.on_record(raw(Some("a"), 1, b"x"), &mut out),
        Err(StepError::Eval(EvalError::NotJson))
    );
    let out = next(feed(op.as_mut(), record(Some("a"), 1, json!({}))));
    assert_eq!(out[0].value, Payload::Json(json!({"k": "a"})));
}
