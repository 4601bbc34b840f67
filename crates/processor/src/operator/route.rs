//! `route`: sends records to topics by predicate.

use std::sync::Arc;

use crate::expr::Expr;
use crate::record::Record;
use crate::spec::RouteRule;

use super::{Emit, Operator, StepError};

struct Rule {
    when: Expr,
    to: Arc<str>,
    keep: bool,
}

/// The first rule whose predicate holds sends the record to its topic (and, with `keep`,
/// on down the chain too); a record no rule matches goes on down the chain.
pub(super) struct Route {
    rules: Vec<Rule>,
}

impl Route {
    pub(super) fn new(rules: &[RouteRule]) -> Self {
        Self {
            rules: rules
                .iter()
                .map(|rule| Rule {
                    when: rule.when.clone(),
                    to: Arc::from(rule.to.as_str()),
                    keep: rule.keep,
                })
                .collect(),
        }
    }
}

impl Operator for Route {
    fn on_record(&mut self, record: Record, out: &mut Vec<Emit>) -> Result<(), StepError> {
        for rule in &self.rules {
            if rule.when.test(&record)? {
                if rule.keep {
                    out.push(Emit::To(rule.to.clone(), record.clone()));
                    out.push(Emit::Next(record));
                } else {
                    out.push(Emit::To(rule.to.clone(), record));
                }
                return Ok(());
            }
        }
        out.push(Emit::Next(record));
        Ok(())
    }
}
