//! The chain: a pipeline's steps in order, with side outputs and routes, turning one
//! input record (or a watermark) into the records the pipeline writes.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::operator::{self, Emit, Operator, RestoreError, StepError};
use crate::record::Record;
use crate::spec::PipelineSpec;

/// A record leaving the pipeline for a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Destination topic.
    pub topic: Arc<str>,
    /// The record.
    pub record: Record,
}

/// A step failed on a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {step}: {error}")]
pub struct ChainError {
    /// The step's name.
    pub step: Arc<str>,
    /// What went wrong.
    pub error: StepError,
}

/// Counters of one step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepStats {
    /// The step's name.
    pub name: Arc<str>,
    /// Records given to it.
    pub records_in: u64,
    /// Records it passed on or sent to a topic.
    pub records_out: u64,
    /// Records it dropped on purpose (filtered, late, duplicate, no table entry).
    pub dropped: u64,
    /// Records it failed on (sent to the dead-letter topic).
    pub errors: u64,
    /// Entries of state it holds.
    pub state_entries: usize,
}

struct ChainStep {
    name: Arc<str>,
    side_output: Option<Arc<str>>,
    operator: Box<dyn Operator>,
    records_in: u64,
    records_out: u64,
    errors: u64,
}

/// A pipeline's steps, ready to run.
pub struct Chain {
    steps: Vec<ChainStep>,
    output: Option<Arc<str>>,
}

impl Chain {
    /// Builds the operators of `spec`.
    pub fn new(spec: &PipelineSpec) -> Self {
        Self {
            steps: spec
                .steps
                .iter()
                .map(|step| ChainStep {
                    name: step.name.clone(),
                    side_output: step.to.as_deref().map(Arc::from),
                    operator: operator::build(step),
                    records_in: 0,
                    records_out: 0,
                    errors: 0,
                })
                .collect(),
            output: spec.output.as_deref().map(Arc::from),
        }
    }

    /// Runs one input record through the chain, appending what leaves it to `out`.
    ///
    /// # Errors
    /// [`ChainError`] naming the step that failed; outputs produced before the failure
    /// (side outputs of earlier steps) stay in `out`.
    pub fn on_record(&mut self, record: Record, out: &mut Vec<Output>) -> Result<(), ChainError> {
        self.push(0, record, out)
    }

    /// Event time reached `watermark`: every step emits what it closes, and what it emits
    /// runs through the steps after it.
    pub fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Output>) {
        let mut emitted = Vec::new();
        for index in 0..self.steps.len() {
            if let Some(step) = self.steps.get_mut(index) {
                step.operator.on_watermark(watermark, &mut emitted);
            }
            for emit in emitted.drain(..) {
                // A window's result failing a later step has no input record to
                // dead-letter; the failing step counts it.
                let _ = self.deliver(index, emit, out);
            }
        }
    }

    /// A table changed: every join on it sees the update.
    pub fn on_table_update(&mut self, table: &str, key: &Bytes, value: Option<&Value>) {
        for step in &mut self.steps {
            step.operator
                .on_table_update(table, key.clone(), value.cloned());
        }
    }

    /// State of every step, in order.
    pub fn snapshot(&self) -> Value {
        Value::Array(self.steps.iter().map(|s| s.operator.snapshot()).collect())
    }

    /// Restores a [`Chain::snapshot`].
    ///
    /// # Errors
    /// [`RestoreError`] when the snapshot does not fit these steps.
    pub fn restore(&mut self, state: Value) -> Result<(), RestoreError> {
        let Value::Array(states) = state else {
            return Err(RestoreError("chain state is not a list".to_owned()));
        };
        if states.len() != self.steps.len() {
            return Err(RestoreError(format!(
                "state of {} steps for a chain of {}",
                states.len(),
                self.steps.len()
            )));
        }
        for (step, state) in self.steps.iter_mut().zip(states) {
            step.operator.restore(state)?;
        }
        Ok(())
    }

    /// Counters of every step.
    pub fn stats(&self) -> Vec<StepStats> {
        self.steps
            .iter()
            .map(|s| StepStats {
                name: s.name.clone(),
                records_in: s.records_in,
                records_out: s.records_out,
                dropped: s.operator.dropped(),
                errors: s.errors,
                state_entries: s.operator.state_entries(),
            })
            .collect()
    }

    /// Entries of state held by all steps.
    pub fn state_entries(&self) -> usize {
        self.steps.iter().map(|s| s.operator.state_entries()).sum()
    }

    /// Gives `record` to step `index` (or to the output after the last step).
    fn push(
        &mut self,
        index: usize,
        record: Record,
        out: &mut Vec<Output>,
    ) -> Result<(), ChainError> {
        let Some(step) = self.steps.get_mut(index) else {
            if let Some(topic) = &self.output {
                out.push(Output {
                    topic: topic.clone(),
                    record,
                });
            }
            return Ok(());
        };
        step.records_in += 1;
        let mut emitted = Vec::new();
        // A side output: the step gets a copy and the next step sees the original.
        let (given, passed_on) = if step.side_output.is_some() {
            (record.clone(), Some(record))
        } else {
            (record, None)
        };
        if let Err(error) = step.operator.on_record(given, &mut emitted) {
            step.errors += 1;
            return Err(ChainError {
                step: step.name.clone(),
                error,
            });
        }
        for emit in emitted {
            self.deliver(index, emit, out)?;
        }
        match passed_on {
            Some(record) => self.push(index + 1, record, out),
            None => Ok(()),
        }
    }

    /// Sends what step `index` emitted onwards.
    fn deliver(
        &mut self,
        index: usize,
        emit: Emit,
        out: &mut Vec<Output>,
    ) -> Result<(), ChainError> {
        let Some(step) = self.steps.get_mut(index) else {
            return Ok(());
        };
        step.records_out += 1;
        match (emit, &step.side_output) {
            (Emit::To(topic, record), _) => {
                out.push(Output { topic, record });
                Ok(())
            }
            (Emit::Next(record), Some(topic)) => {
                out.push(Output {
                    topic: topic.clone(),
                    record,
                });
                Ok(())
            }
            (Emit::Next(record), None) => self.push(index + 1, record, out),
        }
    }
}
