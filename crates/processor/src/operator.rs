//! Operators: one step of a pipeline. Each is deterministic — its outputs depend only on
//! the records and watermarks it is given and on its state — so a pipeline replayed from
//! a checkpoint produces exactly the outputs it produced the first time.
//!
//! No hash map's iteration order reaches an output: state lives in ordered maps, and
//! windows close, identities expire and table rows are evicted in a defined order.
//!
//! Stateful operators (window, dedupe, join) snapshot everything that affects what they
//! emit (open windows, the last watermark, arrival and update counters), so restoring a
//! snapshot gives an operator that continues exactly as the original would. The
//! `dropped` counters are metrics, like the chain's, and start again from zero.
//!
//! | step | module | state |
//! |---|---|---|
//! | `filter` | `filter.rs` | — |
//! | `map` / `project` | `map.rs` | — |
//! | `key_by` | `key_by.rs` | — |
//! | `window` | `window.rs` (aggregates in `aggregate.rs`) | open windows |
//! | `dedupe` | `dedupe.rs` | remembered identities |
//! | `route` | `route.rs` | — |
//! | `join` | `join.rs` | table rows |

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::expr::EvalError;
use crate::record::Record;
use crate::spec::{Step, StepKind};

mod aggregate;
mod dedupe;
mod filter;
mod join;
mod key_by;
mod map;
mod route;
mod snapshot;
mod window;

/// Where an operator sends a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Emit {
    /// On to the next step.
    Next(Record),
    /// To a topic (route rules).
    To(Arc<str>, Record),
}

/// Why a step could not process a record (the record goes to the dead-letter topic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// An expression failed on it.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// The record does not fit the step (say why).
    #[error("{0}")]
    Invalid(String),
}

/// A snapshot could not be restored (another pipeline version wrote it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot restore operator state: {0}")]
pub struct RestoreError(pub String);

/// One step of a pipeline.
pub trait Operator {
    /// Processes one record, pushing what it produces to `out`.
    ///
    /// # Errors
    /// [`StepError`] when the record cannot be processed; nothing was pushed then.
    fn on_record(&mut self, record: Record, out: &mut Vec<Emit>) -> Result<(), StepError>;

    /// Event time has reached `watermark` (ms, never decreasing): emit what it closes.
    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Emit>) {
        let _ = (watermark, out);
    }

    /// A table this operator joins against changed (`None`: the key was deleted).
    fn on_table_update(&mut self, table: &str, key: Bytes, value: Option<Value>) {
        let _ = (table, key, value);
    }

    /// The state to checkpoint (`Value::Null` when stateless).
    fn snapshot(&self) -> Value {
        Value::Null
    }

    /// Restores a snapshot taken by [`Operator::snapshot`].
    ///
    /// # Errors
    /// [`RestoreError`] when `state` is not a snapshot of this operator.
    fn restore(&mut self, state: Value) -> Result<(), RestoreError> {
        let _ = state;
        Ok(())
    }

    /// Entries of state held (windows, remembered keys, table rows), for metrics.
    fn state_entries(&self) -> usize {
        0
    }

    /// Records this step dropped on purpose (filtered out, late, duplicates) so far.
    fn dropped(&self) -> u64 {
        0
    }
}

/// The operator a step describes.
pub fn build(step: &Step) -> Box<dyn Operator> {
    match &step.kind {
        StepKind::Filter(predicate) => Box::new(filter::Filter::new(predicate.clone())),
        StepKind::Map(spec) => Box::new(map::Map::new(spec.clone())),
        StepKind::KeyBy(key) => Box::new(key_by::KeyBy::new(key.clone())),
        StepKind::Window(spec) => Box::new(window::Window::new(spec.clone())),
        StepKind::Dedupe(spec) => Box::new(dedupe::Dedupe::new(spec.clone())),
        StepKind::Route(rules) => Box::new(route::Route::new(rules)),
        StepKind::Join(spec) => Box::new(join::Join::new(spec.clone())),
    }
}

/// A key (or header value) computed by an expression: a JSON string becomes its UTF-8
/// bytes, null the null key, anything else its compact canonical JSON text.
fn key_from_value(value: Value) -> Option<Bytes> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(Bytes::from(text)),
        other => Some(Bytes::from(canonical_json(&other))),
    }
}

/// Compact JSON text with object members sorted by name, so equal values give equal text
/// whatever order their members were built in (identities, distinct values, keys).
fn canonical_json(value: &Value) -> String {
    let mut text = String::new();
    write_canonical(value, &mut text);
    text
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (index, (name, member)) in sorted.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(name).unwrap_or_default());
                out.push(':');
                write_canonical(member, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_json_sorts_members_at_every_depth() {
        let value = json!({"b": [1, {"z": null, "a": "x"}], "a": 1.5});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":1.5,"b":[1,{"a":"x","z":null}]}"#
        );
    }

    #[test]
    fn keys_render_strings_raw_null_as_null_and_the_rest_as_json() {
        assert_eq!(
            key_from_value(json!("dev-1")),
            Some(Bytes::from_static(b"dev-1"))
        );
        assert_eq!(key_from_value(Value::Null), None);
        assert_eq!(key_from_value(json!(42)), Some(Bytes::from_static(b"42")));
        assert_eq!(
            key_from_value(json!({"b": 2, "a": [true]})),
            Some(Bytes::from_static(br#"{"a":[true],"b":2}"#))
        );
    }
}
