//! `key_by`: sets the key, so the output is partitioned by it.

use crate::expr::Expr;
use crate::record::Record;

use super::{Emit, Operator, StepError, key_from_value};

/// Replaces the key with an expression's value (see [`key_from_value`]).
pub(super) struct KeyBy {
    key: Expr,
}

impl KeyBy {
    pub(super) fn new(key: Expr) -> Self {
        Self { key }
    }
}

impl Operator for KeyBy {
    fn on_record(&mut self, mut record: Record, out: &mut Vec<Emit>) -> Result<(), StepError> {
        record.key = key_from_value(self.key.eval(&record)?);
        out.push(Emit::Next(record));
        Ok(())
    }
}
