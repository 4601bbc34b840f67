//! Evaluation of a [`Node`] tree against a record.
//!
//! Values are [`Val`]s: borrowed from the record or the tree where possible, owned only
//! when computed, so comparing a field with a literal copies nothing. Operators look at
//! values through [`View`], which gives numbers one shape (`i128` or `f64`) whatever
//! their JSON representation.

use std::cmp::Ordering;

use bytes::Bytes;
use regex::Regex;
use serde_json::{Map, Number, Value};

use super::EvalError;
use super::ast::{ArithOp, CmpOp, Node, Root, Step};
use super::function;
use crate::record::{Payload, Record};

/// A value during evaluation.
#[derive(Debug)]
pub(super) enum Val<'a> {
    /// Borrowed from the record's JSON or from a literal.
    Ref(&'a Value),
    /// Borrowed text that is not inside a `Value` (a key or header).
    Str(&'a str),
    /// Computed.
    Owned(Value),
}

/// A value as operators see it.
#[derive(Debug, Clone, Copy)]
pub(super) enum View<'v> {
    Null,
    Bool(bool),
    Num(Num),
    Str(&'v str),
    Array(&'v [Value]),
    Object(&'v Map<String, Value>),
}

/// A number: integers exactly (JSON has `i64` and `u64`), others as `f64`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Num {
    Int(i128),
    Float(f64),
}

impl<'a> Val<'a> {
    pub(super) const NULL: Val<'static> = Val::Owned(Value::Null);

    pub(super) fn bool(b: bool) -> Self {
        Val::Owned(Value::Bool(b))
    }

    pub(super) fn string(s: String) -> Self {
        Val::Owned(Value::String(s))
    }

    pub(super) fn view(&self) -> View<'_> {
        match self {
            Val::Ref(v) => view_of(v),
            Val::Str(s) => View::Str(s),
            Val::Owned(v) => view_of(v),
        }
    }

    pub(super) fn is_null(&self) -> bool {
        matches!(self.view(), View::Null)
    }

    pub(super) fn truthy(&self) -> bool {
        truthy_view(self.view())
    }

    pub(super) fn into_value(self) -> Value {
        match self {
            Val::Ref(v) => v.clone(),
            Val::Str(s) => Value::String(s.to_owned()),
            Val::Owned(v) => v,
        }
    }

    /// The string this value is, keeping a borrow when it has one.
    pub(super) fn into_str(self) -> Option<StrVal<'a>> {
        match self {
            Val::Ref(Value::String(s)) => Some(StrVal::Borrowed(s)),
            Val::Str(s) => Some(StrVal::Borrowed(s)),
            Val::Owned(Value::String(s)) => Some(StrVal::Owned(s)),
            _ => None,
        }
    }
}

/// A string value taken out of a [`Val`].
pub(super) enum StrVal<'a> {
    Borrowed(&'a str),
    Owned(String),
}

impl StrVal<'_> {
    pub(super) fn into_string(self) -> String {
        match self {
            StrVal::Borrowed(s) => s.to_owned(),
            StrVal::Owned(s) => s,
        }
    }
}

pub(super) fn view_of(value: &Value) -> View<'_> {
    match value {
        Value::Null => View::Null,
        Value::Bool(b) => View::Bool(*b),
        Value::Number(n) => View::Num(num_of(n)),
        Value::String(s) => View::Str(s),
        Value::Array(a) => View::Array(a),
        Value::Object(m) => View::Object(m),
    }
}

fn num_of(n: &Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Num::Int(i128::from(u))
    } else {
        Num::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

impl Num {
    pub(super) fn to_f64(self) -> f64 {
        match self {
            #[allow(clippy::cast_precision_loss)] // Precision loss is what floats do.
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// As JSON: an integer when it fits `i64`/`u64`, else a float; non-finite is null.
    pub(super) fn into_value(self) -> Value {
        match self {
            Num::Int(i) => {
                if let Ok(i) = i64::try_from(i) {
                    Value::from(i)
                } else if let Ok(u) = u64::try_from(i) {
                    Value::from(u)
                } else {
                    Num::Float(self.to_f64()).into_value()
                }
            }
            Num::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        }
    }
}

/// The value of a float known to be integral: an integer when it fits, else the float.
pub(super) fn integral(f: f64) -> Value {
    // 2^63: every integral f64 below it in magnitude converts exactly.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.is_finite() && f > -LIMIT && f < LIMIT {
        #[allow(clippy::cast_possible_truncation)] // In range and integral: exact.
        let i = f as i64;
        Value::from(i)
    } else {
        Num::Float(f).into_value()
    }
}

pub(super) fn type_name(view: View<'_>) -> &'static str {
    match view {
        View::Null => "null",
        View::Bool(_) => "boolean",
        View::Num(_) => "number",
        View::Str(_) => "string",
        View::Array(_) => "array",
        View::Object(_) => "object",
    }
}

pub(super) fn truthy_view(view: View<'_>) -> bool {
    match view {
        View::Null => false,
        View::Bool(b) => b,
        View::Num(Num::Int(i)) => i != 0,
        View::Num(Num::Float(f)) => f != 0.0,
        View::Str(s) => !s.is_empty(),
        View::Array(_) | View::Object(_) => true,
    }
}

fn type_error(message: String) -> EvalError {
    EvalError::Type(message)
}

/// Evaluates `node` on `record`.
///
/// This recurses once per tree level, so it only dispatches: each node's work is in its
/// own function, keeping this frame small (the parser bounds the depth).
pub(super) fn eval<'a>(node: &'a Node, record: &'a Record) -> Result<Val<'a>, EvalError> {
    match node {
        Node::Literal(value) => Ok(Val::Ref(value)),
        Node::Path { root, steps } => path(*root, steps, record),
        Node::Access(inner, steps) => access(inner, steps, record),
        Node::Array(nodes) => array(nodes, record),
        Node::Neg(inner) => negate_node(inner, record),
        Node::Not(inner) => not(inner, record),
        Node::And(nodes) => and(nodes, record),
        Node::Or(nodes) => or(nodes, record),
        Node::Arith { first, rest } => arith_chain(first, rest, record),
        Node::Compare(op, a, b) => compare_nodes(*op, a, b, record),
        Node::Match {
            subject,
            regex,
            negate,
        } => regex_match(subject, regex, *negate, record),
        Node::In {
            needle,
            haystack,
            negate,
        } => membership(needle, haystack, *negate, record),
        Node::Call(func, args) => function::call(*func, args, record),
    }
}

fn access<'a>(
    inner: &'a Node,
    steps: &'a [Step],
    record: &'a Record,
) -> Result<Val<'a>, EvalError> {
    let mut val = eval(inner, record)?;
    for step in steps {
        val = apply_step(val, step, record)?;
    }
    Ok(val)
}

fn array<'a>(nodes: &'a [Node], record: &'a Record) -> Result<Val<'a>, EvalError> {
    let items = nodes
        .iter()
        .map(|node| eval(node, record).map(Val::into_value))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Val::Owned(Value::Array(items)))
}

fn negate_node<'a>(inner: &'a Node, record: &'a Record) -> Result<Val<'a>, EvalError> {
    negate(&eval(inner, record)?)
}

fn not<'a>(inner: &'a Node, record: &'a Record) -> Result<Val<'a>, EvalError> {
    Ok(Val::bool(!eval(inner, record)?.truthy()))
}

fn and<'a>(nodes: &'a [Node], record: &'a Record) -> Result<Val<'a>, EvalError> {
    for node in nodes {
        if !eval(node, record)?.truthy() {
            return Ok(Val::bool(false));
        }
    }
    Ok(Val::bool(true))
}

fn or<'a>(nodes: &'a [Node], record: &'a Record) -> Result<Val<'a>, EvalError> {
    for node in nodes {
        if eval(node, record)?.truthy() {
            return Ok(Val::bool(true));
        }
    }
    Ok(Val::bool(false))
}

fn arith_chain<'a>(
    first: &'a Node,
    rest: &'a [(ArithOp, Node)],
    record: &'a Record,
) -> Result<Val<'a>, EvalError> {
    let mut acc = eval(first, record)?;
    for (op, node) in rest {
        let rhs = eval(node, record)?;
        acc = arith(*op, acc, &rhs)?;
    }
    Ok(acc)
}

fn compare_nodes<'a>(
    op: CmpOp,
    a: &'a Node,
    b: &'a Node,
    record: &'a Record,
) -> Result<Val<'a>, EvalError> {
    compare(op, &eval(a, record)?, &eval(b, record)?)
}

fn regex_match<'a>(
    subject: &'a Node,
    regex: &Regex,
    negate: bool,
    record: &'a Record,
) -> Result<Val<'a>, EvalError> {
    let subject = eval(subject, record)?;
    match subject.view() {
        View::Str(s) => Ok(Val::bool(regex.is_match(s) != negate)),
        View::Null => Ok(Val::NULL),
        other => Err(type_error(format!(
            "`{}` needs a string on the left, got {}",
            if negate { "!~" } else { "=~" },
            type_name(other)
        ))),
    }
}

fn membership<'a>(
    needle: &'a Node,
    haystack: &'a Node,
    negate: bool,
    record: &'a Record,
) -> Result<Val<'a>, EvalError> {
    let needle = eval(needle, record)?;
    let haystack = eval(haystack, record)?;
    Ok(match contains(haystack.view(), needle.view(), "in")? {
        Some(found) => Val::bool(found != negate),
        None => Val::NULL,
    })
}

/// Evaluates a node that reads nothing from the record (constant folding).
pub(super) fn eval_constant(node: &Node) -> Result<Value, EvalError> {
    let record = Record {
        key: None,
        value: Payload::Raw(None),
        headers: Vec::new(),
        timestamp: 0,
        event_time: 0,
    };
    eval(node, &record).map(Val::into_value)
}

/// Whether `haystack` holds `needle`: an array element, an object key or a substring.
/// `None` when the haystack is null (missing).
pub(super) fn contains(
    haystack: View<'_>,
    needle: View<'_>,
    what: &str,
) -> Result<Option<bool>, EvalError> {
    match (haystack, needle) {
        (View::Null, _) => Ok(None),
        (View::Array(items), needle) => {
            Ok(Some(items.iter().any(|item| equal(view_of(item), needle))))
        }
        (View::Object(map), View::Str(name)) => Ok(Some(map.contains_key(name))),
        (View::Str(text), View::Str(part)) => Ok(Some(text.contains(part))),
        (View::Object(_) | View::Str(_), View::Null) => Ok(None),
        (View::Object(_) | View::Str(_), needle) => Err(type_error(format!(
            "`{what}` on a {} needs a string to look for, got {}",
            type_name(haystack),
            type_name(needle)
        ))),
        (other, _) => Err(type_error(format!(
            "`{what}` needs an array, object or string to look in, got {}",
            type_name(other)
        ))),
    }
}

fn path<'a>(root: Root, steps: &'a [Step], record: &'a Record) -> Result<Val<'a>, EvalError> {
    let (mut val, rest) = match root {
        Root::Value => (Val::Ref(record.json().ok_or(EvalError::NotJson)?), steps),
        Root::Key => (bytes_val(record.key.as_ref()), steps),
        Root::Timestamp => (Val::Owned(Value::from(record.timestamp)), steps),
        Root::EventTime => (Val::Owned(Value::from(record.event_time)), steps),
        Root::Headers => match steps.split_first() {
            None => (headers_object(record), steps),
            Some((step, rest)) => (header(step, record)?, rest),
        },
    };
    for step in rest {
        val = apply_step(val, step, record)?;
    }
    Ok(val)
}

/// Key or header bytes as a string (lossy when not UTF-8).
fn bytes_val(bytes: Option<&Bytes>) -> Val<'_> {
    match bytes {
        None => Val::NULL,
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) => Val::Str(s),
            Err(_) => Val::string(String::from_utf8_lossy(bytes).into_owned()),
        },
    }
}

/// `headers` alone: an object of the first value of each name.
fn headers_object(record: &Record) -> Val<'_> {
    let mut map = Map::new();
    for (name, value) in &record.headers {
        if !map.contains_key(name) {
            map.insert(name.clone(), bytes_val(value.as_ref()).into_value());
        }
    }
    Val::Owned(Value::Object(map))
}

fn header<'a>(step: &'a Step, record: &'a Record) -> Result<Val<'a>, EvalError> {
    let lookup = |name: &str| match record.header(name) {
        Some(value) => bytes_val(value.as_ref()),
        None => Val::NULL,
    };
    match step {
        Step::Field(name) => Ok(lookup(name)),
        Step::Index(_) => Ok(Val::NULL),
        Step::Dynamic(node) => {
            let name = eval(node, record)?;
            Ok(match step_key(name.view())? {
                Key::Field(name) => lookup(name),
                Key::Index(_) | Key::Missing => Val::NULL,
            })
        }
    }
}

enum Key<'k> {
    Field(&'k str),
    Index(i64),
    Missing,
}

fn step_key(view: View<'_>) -> Result<Key<'_>, EvalError> {
    match view {
        View::Str(name) => Ok(Key::Field(name)),
        View::Num(Num::Int(i)) => Ok(i64::try_from(i).map_or(Key::Missing, Key::Index)),
        View::Null => Ok(Key::Missing),
        View::Num(Num::Float(_)) => Err(type_error("an index must be an integer".to_owned())),
        other => Err(type_error(format!(
            "an index must be a number or a string, got {}",
            type_name(other)
        ))),
    }
}

fn apply_step<'a>(base: Val<'a>, step: &'a Step, record: &'a Record) -> Result<Val<'a>, EvalError> {
    match step {
        Step::Field(name) => Ok(field(base, name)),
        Step::Index(i) => Ok(index(base, *i)),
        Step::Dynamic(node) => {
            let key = eval(node, record)?;
            Ok(match step_key(key.view())? {
                Key::Field(name) => field(base, name),
                Key::Index(i) => index(base, i),
                Key::Missing => Val::NULL,
            })
        }
    }
}

fn field<'a>(base: Val<'a>, name: &str) -> Val<'a> {
    match base {
        Val::Ref(Value::Object(map)) => map.get(name).map_or(Val::NULL, Val::Ref),
        Val::Owned(Value::Object(mut map)) => map.remove(name).map_or(Val::NULL, Val::Owned),
        _ => Val::NULL,
    }
}

/// `i` from the start, or from the end when negative.
fn position(i: i64, len: usize) -> Option<usize> {
    if i >= 0 {
        usize::try_from(i).ok()
    } else {
        usize::try_from(i.unsigned_abs())
            .ok()
            .and_then(|back| len.checked_sub(back))
    }
}

fn index(base: Val<'_>, i: i64) -> Val<'_> {
    match base {
        Val::Ref(Value::Array(items)) => position(i, items.len())
            .and_then(|at| items.get(at))
            .map_or(Val::NULL, Val::Ref),
        Val::Owned(Value::Array(items)) => position(i, items.len())
            .and_then(|at| items.into_iter().nth(at))
            .map_or(Val::NULL, Val::Owned),
        _ => Val::NULL,
    }
}

fn negate<'a>(val: &Val<'_>) -> Result<Val<'a>, EvalError> {
    match val.view() {
        View::Null => Ok(Val::NULL),
        View::Num(Num::Int(i)) => Ok(Val::Owned(match i.checked_neg() {
            Some(n) => Num::Int(n).into_value(),
            None => Num::Float(-Num::Int(i).to_f64()).into_value(),
        })),
        View::Num(Num::Float(f)) => Ok(Val::Owned(Num::Float(-f).into_value())),
        other => Err(type_error(format!(
            "`-` needs a number, got {}",
            type_name(other)
        ))),
    }
}

fn arith<'a>(op: ArithOp, a: Val<'a>, b: &Val<'_>) -> Result<Val<'a>, EvalError> {
    match (a.view(), b.view()) {
        (View::Null, _) | (_, View::Null) => Ok(Val::NULL),
        (View::Num(x), View::Num(y)) => Ok(Val::Owned(number_op(op, x, y))),
        (View::Str(_), View::Str(y)) if op == ArithOp::Add => {
            let mut text = match a.into_str() {
                Some(s) => s.into_string(),
                None => String::new(),
            };
            text.push_str(y);
            Ok(Val::string(text))
        }
        (x, y) => Err(type_error(if op == ArithOp::Add {
            format!(
                "`+` needs two numbers or two strings, got {} and {} (use concat() to join text)",
                type_name(x),
                type_name(y)
            )
        } else {
            format!(
                "`{}` needs numbers, got {} and {}",
                op.symbol(),
                type_name(x),
                type_name(y)
            )
        })),
    }
}

/// Integer arithmetic stays exact while it fits; `/` is always a float; dividing by zero
/// gives null.
fn number_op(op: ArithOp, x: Num, y: Num) -> Value {
    if let (Num::Int(a), Num::Int(b)) = (x, y) {
        let exact = match op {
            ArithOp::Add => a.checked_add(b),
            ArithOp::Sub => a.checked_sub(b),
            ArithOp::Mul => a.checked_mul(b),
            ArithOp::Rem if b == 0 => return Value::Null,
            ArithOp::Rem => a.checked_rem(b),
            ArithOp::Div => None,
        };
        if let Some(n) = exact {
            return Num::Int(n).into_value();
        }
    }
    let (a, b) = (x.to_f64(), y.to_f64());
    let result = match op {
        ArithOp::Add => a + b,
        ArithOp::Sub => a - b,
        ArithOp::Mul => a * b,
        ArithOp::Div => a / b,
        ArithOp::Rem => a % b,
    };
    // Non-finite (division by zero, overflow) becomes null.
    Num::Float(result).into_value()
}

fn compare<'a>(op: CmpOp, a: &Val<'_>, b: &Val<'_>) -> Result<Val<'a>, EvalError> {
    let ordering = match op {
        CmpOp::Eq => return Ok(Val::bool(equal(a.view(), b.view()))),
        CmpOp::Ne => return Ok(Val::bool(!equal(a.view(), b.view()))),
        CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => match order(a.view(), b.view()) {
            Ok(Some(ordering)) => ordering,
            Ok(None) => return Ok(Val::NULL),
            Err((x, y)) => {
                return Err(type_error(format!(
                    "cannot compare {} with {} using `{}`",
                    type_name(x),
                    type_name(y),
                    op.symbol()
                )));
            }
        },
    };
    let holds = match op {
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        _ => ordering != Ordering::Less,
    };
    Ok(Val::bool(holds))
}

/// The order of two numbers or two strings; `Ok(None)` when either is null (missing),
/// `Err` with both when they cannot be ordered.
pub(super) fn order<'v>(
    a: View<'v>,
    b: View<'v>,
) -> Result<Option<Ordering>, (View<'v>, View<'v>)> {
    match (a, b) {
        (View::Null, _) | (_, View::Null) => Ok(None),
        (View::Num(Num::Int(x)), View::Num(Num::Int(y))) => Ok(Some(x.cmp(&y))),
        (View::Num(x), View::Num(y)) => Ok(x.to_f64().partial_cmp(&y.to_f64())),
        (View::Str(x), View::Str(y)) => Ok(Some(x.cmp(y))),
        _ => Err((a, b)),
    }
}

/// Equality: numbers by value (`1 == 1.0`), other values of different types are unequal.
pub(super) fn equal(a: View<'_>, b: View<'_>) -> bool {
    match (a, b) {
        (View::Null, View::Null) => true,
        (View::Bool(x), View::Bool(y)) => x == y,
        (View::Num(Num::Int(x)), View::Num(Num::Int(y))) => x == y,
        (View::Num(x), View::Num(y)) => x.to_f64() == y.to_f64(),
        (View::Str(x), View::Str(y)) => x == y,
        (View::Array(x), View::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(view_of(p), view_of(q)))
        }
        (View::Object(x), View::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(name, p)| y.get(name).is_some_and(|q| equal(view_of(p), view_of(q))))
        }
        _ => false,
    }
}
