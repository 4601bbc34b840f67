//! Aggregate functions of windows: their running state, how two states merge (session
//! windows that a record bridges), their results, and their snapshot encoding.
//!
//! Arguments that are null (or missing, which expressions give as null) are skipped by
//! every function that takes one; `count()` without an argument counts records.
//! `sum`, `min`, `max` and `avg` need numbers: anything else fails the record
//! ([`check_argument`]) before any window changes. Results: `count` and
//! `distinct_count` are integers; `sum` is an integer while every input was one (and the
//! total fits 64 bits), else a float; `avg` is a float; `min`/`max` are the original
//! number; `first`/`last` the original value by event time, ties going to the earlier
//! (first) or later (last) arrival; null when nothing was seen.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde_json::{Map, Number, Value};

use crate::expr::EvalError;
use crate::spec::{Aggregate, AggregateFn};

use super::snapshot;
use super::{RestoreError, StepError, canonical_json};

/// When a value was seen: event time, then arrival order (a per-operator counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Stamp {
    pub(super) time: i64,
    pub(super) arrival: u64,
}

/// A value with when it was seen.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Stamped {
    stamp: Stamp,
    value: Value,
}

/// Running sum of numbers: exact while every input is an integer.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct NumberSum {
    count: u64,
    /// The exact integer sum; `None` once a float was added (or on overflow).
    int: Option<i128>,
    /// The sum as floats, in arrival order.
    float: f64,
}

impl NumberSum {
    fn new() -> Self {
        Self {
            count: 0,
            int: Some(0),
            float: 0.0,
        }
    }

    fn add(&mut self, number: &Number) {
        self.count = self.count.saturating_add(1);
        self.float += number.as_f64().unwrap_or_default();
        self.int = match (self.int, integer(number)) {
            (Some(sum), Some(n)) => sum.checked_add(n),
            _ => None,
        };
    }

    fn merge(&mut self, other: &Self) {
        self.count = self.count.saturating_add(other.count);
        self.float += other.float;
        self.int = match (self.int, other.int) {
            (Some(a), Some(b)) => a.checked_add(b),
            _ => None,
        };
    }

    fn sum(&self) -> Value {
        if self.count == 0 {
            return Value::Null;
        }
        if let Some(sum) = self.int {
            if let Ok(sum) = i64::try_from(sum) {
                return Value::from(sum);
            }
            if let Ok(sum) = u64::try_from(sum) {
                return Value::from(sum);
            }
        }
        float(self.float)
    }

    fn avg(&self) -> Value {
        if self.count == 0 {
            return Value::Null;
        }
        let total = match self.int {
            Some(sum) => sum as f64,
            None => self.float,
        };
        float(total / self.count as f64)
    }

    fn to_json(&self) -> Value {
        let mut state = Map::new();
        state.insert("count".to_owned(), Value::from(self.count));
        state.insert(
            "int".to_owned(),
            self.int
                .map_or(Value::Null, |sum| Value::from(sum.to_string())),
        );
        state.insert("float".to_owned(), snapshot::f64_to_json(self.float));
        Value::Object(state)
    }

    fn from_json(value: &Value) -> Result<Self, RestoreError> {
        let state = snapshot::object(value, "sum")?;
        let int = match snapshot::member(state, "int")? {
            Value::Null => None,
            sum => Some(
                snapshot::text(sum, "integer sum")?
                    .parse::<i128>()
                    .map_err(|_| RestoreError("integer sum is not a number".to_owned()))?,
            ),
        };
        Ok(Self {
            count: snapshot::uint(snapshot::member(state, "count")?, "sum count")?,
            int,
            float: snapshot::f64_from_json(snapshot::member(state, "float")?, "float sum")?,
        })
    }
}

/// The running state of one aggregate in one window.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Acc {
    Count(u64),
    Sum(NumberSum),
    Avg(NumberSum),
    Min(Option<Number>),
    Max(Option<Number>),
    First(Option<Stamped>),
    Last(Option<Stamped>),
    /// Canonical JSON texts of the distinct values.
    DistinctCount(BTreeSet<String>),
}

impl Acc {
    pub(super) fn new(function: AggregateFn) -> Self {
        match function {
            AggregateFn::Count => Self::Count(0),
            AggregateFn::Sum => Self::Sum(NumberSum::new()),
            AggregateFn::Avg => Self::Avg(NumberSum::new()),
            AggregateFn::Min => Self::Min(None),
            AggregateFn::Max => Self::Max(None),
            AggregateFn::First => Self::First(None),
            AggregateFn::Last => Self::Last(None),
            AggregateFn::DistinctCount => Self::DistinctCount(BTreeSet::new()),
        }
    }

    /// Adds one record's argument (`None`: the aggregate takes no argument, so the record
    /// itself counts). Returns whether the state changed. The argument must have passed
    /// [`check_argument`]; a non-number given to a numeric function is skipped.
    pub(super) fn add(&mut self, argument: Option<&Value>, stamp: Stamp) -> bool {
        let value = match argument {
            None => {
                if let Self::Count(count) = self {
                    *count = count.saturating_add(1);
                    return true;
                }
                return false;
            }
            Some(Value::Null) => return false,
            Some(value) => value,
        };
        match self {
            Self::Count(count) => {
                *count = count.saturating_add(1);
                true
            }
            Self::Sum(sum) | Self::Avg(sum) => match value {
                Value::Number(number) => {
                    sum.add(number);
                    true
                }
                _ => false,
            },
            Self::Min(best) => keep_better(best, value, Ordering::Less),
            Self::Max(best) => keep_better(best, value, Ordering::Greater),
            Self::First(first) => keep_stamped(first, value, stamp, Ordering::Less),
            Self::Last(last) => keep_stamped(last, value, stamp, Ordering::Greater),
            Self::DistinctCount(seen) => seen.insert(canonical_json(value)),
        }
    }

    /// Folds `other` (the same function's state of another window) into this one.
    pub(super) fn merge(&mut self, other: Self) {
        match (self, other) {
            (Self::Count(a), Self::Count(b)) => *a = a.saturating_add(b),
            (Self::Sum(a), Self::Sum(b)) | (Self::Avg(a), Self::Avg(b)) => a.merge(&b),
            (Self::Min(a), Self::Min(Some(b))) => {
                keep_better(a, &Value::Number(b), Ordering::Less);
            }
            (Self::Max(a), Self::Max(Some(b))) => {
                keep_better(a, &Value::Number(b), Ordering::Greater);
            }
            (Self::First(a), Self::First(Some(b))) => {
                keep_stamped(a, &b.value, b.stamp, Ordering::Less);
            }
            (Self::Last(a), Self::Last(Some(b))) => {
                keep_stamped(a, &b.value, b.stamp, Ordering::Greater);
            }
            (Self::DistinctCount(a), Self::DistinctCount(b)) => a.extend(b),
            (Self::Min(_), Self::Min(None))
            | (Self::Max(_), Self::Max(None))
            | (Self::First(_), Self::First(None))
            | (Self::Last(_), Self::Last(None)) => {}
            (this, other) => {
                debug_assert!(false, "merging {this:?} with {other:?}");
            }
        }
    }

    /// The aggregate's value.
    pub(super) fn result(&self) -> Value {
        match self {
            Self::Count(count) => Value::from(*count),
            Self::Sum(sum) => sum.sum(),
            Self::Avg(sum) => sum.avg(),
            Self::Min(best) | Self::Max(best) => best.clone().map_or(Value::Null, Value::Number),
            Self::First(seen) | Self::Last(seen) => {
                seen.as_ref().map_or(Value::Null, |seen| seen.value.clone())
            }
            Self::DistinctCount(seen) => Value::from(seen.len()),
        }
    }

    /// The state for a snapshot.
    pub(super) fn to_json(&self) -> Value {
        match self {
            Self::Count(count) => Value::from(*count),
            Self::Sum(sum) | Self::Avg(sum) => sum.to_json(),
            Self::Min(best) | Self::Max(best) => {
                best.as_ref().map_or(Value::Null, snapshot::number_to_json)
            }
            Self::First(seen) | Self::Last(seen) => seen.as_ref().map_or(Value::Null, |seen| {
                let mut state = Map::new();
                state.insert("time".to_owned(), Value::from(seen.stamp.time));
                state.insert("arrival".to_owned(), Value::from(seen.stamp.arrival));
                state.insert("value".to_owned(), seen.value.clone());
                Value::Object(state)
            }),
            Self::DistinctCount(seen) => {
                Value::Array(seen.iter().cloned().map(Value::String).collect())
            }
        }
    }

    /// The inverse of [`Acc::to_json`] for `function`.
    pub(super) fn from_json(function: AggregateFn, state: &Value) -> Result<Self, RestoreError> {
        let number = |state: &Value| match state {
            Value::Null => Ok(None),
            tagged => snapshot::number_from_json(tagged).map(Some),
        };
        let stamped = |state: &Value| -> Result<Option<Stamped>, RestoreError> {
            if state.is_null() {
                return Ok(None);
            }
            let state = snapshot::object(state, "first/last")?;
            Ok(Some(Stamped {
                stamp: Stamp {
                    time: snapshot::int(snapshot::member(state, "time")?, "time")?,
                    arrival: snapshot::uint(snapshot::member(state, "arrival")?, "arrival")?,
                },
                value: snapshot::member(state, "value")?.clone(),
            }))
        };
        Ok(match function {
            AggregateFn::Count => Self::Count(snapshot::uint(state, "count")?),
            AggregateFn::Sum => Self::Sum(NumberSum::from_json(state)?),
            AggregateFn::Avg => Self::Avg(NumberSum::from_json(state)?),
            AggregateFn::Min => Self::Min(number(state)?),
            AggregateFn::Max => Self::Max(number(state)?),
            AggregateFn::First => Self::First(stamped(state)?),
            AggregateFn::Last => Self::Last(stamped(state)?),
            AggregateFn::DistinctCount => Self::DistinctCount(
                snapshot::list(state, "distinct values")?
                    .iter()
                    .map(|text| snapshot::text(text, "distinct value").map(str::to_owned))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

/// Fails when `value` (the evaluated argument of `aggregate`) cannot be aggregated:
/// `sum`, `min`, `max` and `avg` take numbers (or null, which they skip).
pub(super) fn check_argument(aggregate: &Aggregate, value: &Value) -> Result<(), StepError> {
    let numeric = matches!(
        aggregate.function,
        AggregateFn::Sum | AggregateFn::Min | AggregateFn::Max | AggregateFn::Avg
    );
    if !numeric || matches!(value, Value::Null | Value::Number(_)) {
        return Ok(());
    }
    let kind = match value {
        Value::Bool(_) => "a boolean",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        Value::Null | Value::Number(_) => "a number",
    };
    let argument = aggregate.argument.as_ref().map_or("", |expr| expr.source());
    Err(EvalError::Type(format!(
        "aggregate {}: {argument} is {kind}, not a number",
        aggregate.name
    ))
    .into())
}

/// The number as an exact integer, if it is one.
fn integer(number: &Number) -> Option<i128> {
    number
        .as_i64()
        .map(i128::from)
        .or_else(|| number.as_u64().map(i128::from))
}

/// Orders numbers: exactly between integers, as floats otherwise.
fn compare(a: &Number, b: &Number) -> Ordering {
    match (integer(a), integer(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => a
            .as_f64()
            .unwrap_or_default()
            .total_cmp(&b.as_f64().unwrap_or_default()),
    }
}

/// Replaces `best` with `value` when it orders strictly `wanted` of it (ties keep the
/// earlier one). Returns whether it was replaced.
fn keep_better(best: &mut Option<Number>, value: &Value, wanted: Ordering) -> bool {
    let Value::Number(number) = value else {
        return false;
    };
    match best {
        Some(current) if compare(number, current) != wanted => false,
        _ => {
            *best = Some(number.clone());
            true
        }
    }
}

/// Replaces `seen` with `value` when its stamp orders strictly `wanted` of it.
fn keep_stamped(seen: &mut Option<Stamped>, value: &Value, stamp: Stamp, wanted: Ordering) -> bool {
    match seen {
        Some(current) if stamp.cmp(&current.stamp) != wanted => false,
        _ => {
            *seen = Some(Stamped {
                stamp,
                value: value.clone(),
            });
            true
        }
    }
}

/// A float result (null for the non-finite, which JSON cannot hold).
fn float(value: f64) -> Value {
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ALL: [AggregateFn; 8] = [
        AggregateFn::Count,
        AggregateFn::Sum,
        AggregateFn::Avg,
        AggregateFn::Min,
        AggregateFn::Max,
        AggregateFn::First,
        AggregateFn::Last,
        AggregateFn::DistinctCount,
    ];

    fn stamp(time: i64, arrival: u64) -> Stamp {
        Stamp { time, arrival }
    }

    fn run(function: AggregateFn, inputs: &[(Value, i64)]) -> Acc {
        let mut acc = Acc::new(function);
        for (arrival, (value, time)) in inputs.iter().enumerate() {
            acc.add(Some(value), stamp(*time, arrival as u64));
        }
        acc
    }

    #[test]
    fn sums_stay_integers_until_a_float_arrives() {
        let ints = [
            (json!(1), 0),
            (json!(null), 0),
            (json!(-4), 0),
            (json!(10), 0),
        ];
        assert_eq!(run(AggregateFn::Sum, &ints).result(), json!(7));
        let mixed = [
            (json!(1), 0),
            (json!(2.5), 0),
            (json!(null), 0),
            (json!(3), 0),
        ];
        assert_eq!(run(AggregateFn::Sum, &mixed).result(), json!(6.5));
        assert_eq!(
            run(AggregateFn::Sum, &[(json!(null), 0)]).result(),
            Value::Null
        );
        let big = [(json!(u64::MAX), 0), (json!(u64::MAX), 0)];
        assert_eq!(
            run(AggregateFn::Sum, &big).result(),
            json!(2.0 * u64::MAX as f64)
        );
        let unsigned = [(json!(u64::MAX), 0), (json!(-1), 0)];
        assert_eq!(
            run(AggregateFn::Sum, &unsigned).result(),
            json!(u64::MAX - 1)
        );
    }

    #[test]
    fn avg_is_a_float_over_the_non_null_inputs() {
        let inputs = [(json!(2), 0), (json!(null), 0), (json!(4), 0)];
        assert_eq!(run(AggregateFn::Avg, &inputs).result(), json!(3.0));
        let inputs = [(json!(1), 0), (json!(2.5), 0)];
        assert_eq!(run(AggregateFn::Avg, &inputs).result(), json!(1.75));
        assert_eq!(run(AggregateFn::Avg, &[]).result(), Value::Null);
    }

    #[test]
    fn min_and_max_keep_the_original_number_and_the_first_of_ties() {
        let inputs = [
            (json!(3), 0),
            (json!(1.0), 0),
            (json!(1), 0),
            (json!(7.5), 0),
            (json!(null), 0),
        ];
        assert_eq!(run(AggregateFn::Min, &inputs).result(), json!(1.0));
        assert_eq!(run(AggregateFn::Max, &inputs).result(), json!(7.5));
        let exact = [(json!(i64::MAX), 0), (json!(i64::MAX - 1), 0)];
        assert_eq!(run(AggregateFn::Min, &exact).result(), json!(i64::MAX - 1));
        assert_eq!(run(AggregateFn::Max, &[]).result(), Value::Null);
    }

    #[test]
    fn first_and_last_go_by_event_time_then_arrival() {
        let inputs = [
            (json!("b"), 20),
            (json!("a"), 10),
            (json!("a2"), 10),
            (json!(null), 5),
            (json!({"z": 1}), 30),
            (json!("z2"), 30),
            (json!("early"), 15),
        ];
        assert_eq!(run(AggregateFn::First, &inputs).result(), json!("a"));
        assert_eq!(run(AggregateFn::Last, &inputs).result(), json!("z2"));
    }

    #[test]
    fn distinct_count_compares_canonical_json() {
        let inputs = [
            (json!({"a": 1, "b": 2}), 0),
            (json!({"b": 2, "a": 1}), 0),
            (json!("x"), 0),
            (json!(1), 0),
            (json!(1.0), 0),
            (json!(null), 0),
            (json!("x"), 0),
        ];
        assert_eq!(run(AggregateFn::DistinctCount, &inputs).result(), json!(4));
        assert_eq!(run(AggregateFn::DistinctCount, &[]).result(), json!(0));
    }

    #[test]
    fn count_without_argument_counts_records_and_with_one_counts_non_nulls() {
        let mut acc = Acc::new(AggregateFn::Count);
        assert!(acc.add(None, stamp(0, 0)));
        assert!(acc.add(None, stamp(0, 1)));
        assert!(acc.add(Some(&json!(0)), stamp(0, 2)));
        assert!(!acc.add(Some(&Value::Null), stamp(0, 3)));
        assert_eq!(acc.result(), json!(3));
    }

    #[test]
    fn merging_equals_adding_everything_to_one_state() {
        let inputs: Vec<(Value, i64)> = vec![
            (json!(5), 40),
            (json!(1.5), 10),
            (json!(null), 0),
            (json!(-2), 10),
            (json!(9), 25),
            (json!(1.5), 5),
        ];
        for function in ALL {
            let whole = run(function, &inputs);
            let mut left = Acc::new(function);
            let mut right = Acc::new(function);
            for (arrival, (value, time)) in inputs.iter().enumerate() {
                let target = if arrival % 2 == 0 {
                    &mut left
                } else {
                    &mut right
                };
                target.add(Some(value), stamp(*time, arrival as u64));
            }
            left.merge(right);
            assert_eq!(left.result(), whole.result(), "{function:?}");
        }
    }

    #[test]
    fn states_round_trip_through_snapshot_text() {
        let inputs = [(json!(0.1), 3), (json!(0.2), 1), (json!(7), 2)];
        for function in ALL {
            let acc = run(function, &inputs);
            let text = acc.to_json().to_string();
            let back = Acc::from_json(function, &serde_json::from_str(&text).unwrap()).unwrap();
            assert_eq!(back, acc, "{function:?}");
            let empty = Acc::new(function);
            let back = Acc::from_json(function, &empty.to_json()).unwrap();
            assert_eq!(back, empty, "{function:?}");
        }
        assert!(Acc::from_json(AggregateFn::Sum, &json!(3)).is_err());
        assert!(Acc::from_json(AggregateFn::Count, &json!("x")).is_err());
    }
}
