//! Operators: one step of a pipeline. Each is deterministic — its outputs depend only on
//! the records and watermarks it is given and on its state — so a pipeline replayed from
//! a checkpoint produces exactly the outputs it produced the first time.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::expr::EvalError;
use crate::record::Record;
use crate::spec::{Step, StepKind};

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
    let _ = &step.kind;
    match &step.kind {
        StepKind::Filter(_)
        | StepKind::Map(_)
        | StepKind::KeyBy(_)
        | StepKind::Window(_)
        | StepKind::Dedupe(_)
        | StepKind::Route(_)
        | StepKind::Join(_) => Box::new(PassThrough),
    }
}

/// Placeholder operator passing every record on.
struct PassThrough;

impl Operator for PassThrough {
    fn on_record(&mut self, record: Record, out: &mut Vec<Emit>) -> Result<(), StepError> {
        out.push(Emit::Next(record));
        Ok(())
    }
}
