//! Operator tests: fixed inputs give the expected outputs, and an operator restored from
//! a snapshot mid-stream continues exactly as an uninterrupted one.
//!
//! Cases that build expressions need the expression language (`Expr::parse`).

mod dedupe;
mod join;
mod map;
mod predicates;
mod restore;
mod window;

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use sluice_processor::Expr;
use sluice_processor::operator::{self, Emit, Operator};
use sluice_processor::record::{Payload, Record};
use sluice_processor::spec::{Step, StepKind};

/// The operator of a step of `kind`.
fn build(kind: StepKind) -> Box<dyn Operator> {
    operator::build(&Step {
        name: Arc::from("test-step"),
        kind,
        to: None,
        line: 1,
    })
}

/// A parsed expression (the test fails when the language does not parse it).
fn expr(source: &str) -> Expr {
    Expr::parse(source).unwrap_or_else(|error| panic!("{source}: {error}"))
}

fn key(key: Option<&str>) -> Option<Bytes> {
    key.map(|k| Bytes::copy_from_slice(k.as_bytes()))
}

/// A JSON record with event time (and timestamp) `time`.
fn record(key_text: Option<&str>, time: i64, value: Value) -> Record {
    Record {
        key: key(key_text),
        value: Payload::Json(value),
        headers: Vec::new(),
        timestamp: time,
        event_time: time,
    }
}

/// A record with a raw payload.
fn raw(key_text: Option<&str>, time: i64, value: &'static [u8]) -> Record {
    Record {
        key: key(key_text),
        value: Payload::Raw(Some(Bytes::from_static(value))),
        headers: Vec::new(),
        timestamp: time,
        event_time: time,
    }
}

/// Feeds `record`, returning what it emitted (panicking on a step error).
fn feed(operator: &mut dyn Operator, record: Record) -> Vec<Emit> {
    let mut out = Vec::new();
    operator
        .on_record(record, &mut out)
        .unwrap_or_else(|error| panic!("step failed: {error}"));
    out
}

/// Advances the watermark, returning what it emitted.
fn watermark(operator: &mut dyn Operator, watermark: i64) -> Vec<Emit> {
    let mut out = Vec::new();
    operator.on_watermark(watermark, &mut out);
    out
}

/// The records of `emits` that go on down the chain (panics on a routed one).
fn next(emits: Vec<Emit>) -> Vec<Record> {
    emits
        .into_iter()
        .map(|emit| match emit {
            Emit::Next(record) => record,
            Emit::To(topic, _) => panic!("unexpected route to {topic}"),
        })
        .collect()
}

/// The JSON value of a record.
fn json(record: &Record) -> &Value {
    record
        .json()
        .unwrap_or_else(|| panic!("not JSON: {record:?}"))
}
