//! `filter`: keeps the records a predicate holds for.

use crate::expr::Expr;
use crate::record::Record;

use super::{Emit, Operator, StepError};

/// Passes a record on when its predicate is true; drops (and counts) it otherwise.
pub(super) struct Filter {
    predicate: Expr,
    dropped: u64,
}

impl Filter {
    pub(super) fn new(predicate: Expr) -> Self {
        Self {
            predicate,
            dropped: 0,
        }
    }
}

impl Operator for Filter {
    fn on_record(&mut self, record: Record, out: &mut Vec<Emit>) -> Result<(), StepError> {
        if self.predicate.test(&record)? {
            out.push(Emit::Next(record));
        } else {
            self.dropped += 1;
        }
        Ok(())
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}
