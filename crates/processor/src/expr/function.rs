//! The built-in functions. Arity is checked at parse time; a null (missing) argument
//! gives null unless the function is about nulls (`exists`, `coalesce`, `concat`).

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::Value;

use super::EvalError;
use super::ast::{Func, Node};
use super::eval::{self, Num, StrVal, Val, View, contains, integral, order, type_name};
use crate::record::Record;

/// A call's unevaluated arguments (`if` and `coalesce` evaluate lazily).
#[derive(Clone, Copy)]
struct Args<'a> {
    nodes: &'a [Node],
    record: &'a Record,
}

impl<'a> Args<'a> {
    /// Evaluates argument `i` (null past the end; arity is checked at parse time).
    fn get(self, i: usize) -> Result<Val<'a>, EvalError> {
        match self.nodes.get(i) {
            Some(node) => eval::eval(node, self.record),
            None => Ok(Val::NULL),
        }
    }

    fn len(self) -> usize {
        self.nodes.len()
    }

    fn each(self) -> impl Iterator<Item = Result<Val<'a>, EvalError>> {
        self.nodes
            .iter()
            .map(move |node| eval::eval(node, self.record))
    }
}

/// Calls `func`. Evaluation recurses through here, so this only dispatches and each
/// function's work is in its own (small-framed) function.
pub(super) fn call<'a>(
    func: Func,
    nodes: &'a [Node],
    record: &'a Record,
) -> Result<Val<'a>, EvalError> {
    let args = Args { nodes, record };
    match func {
        Func::Exists => Ok(Val::bool(!args.get(0)?.is_null())),
        Func::If => if_(args),
        Func::Coalesce => coalesce(args),
        Func::Len => len(args),
        Func::Lower | Func::Upper => change_case(func, args),
        Func::Trim => trim(args),
        Func::Concat => concat(args),
        Func::ToString => to_string(args),
        Func::ToNumber => to_number(args),
        Func::Substr => substr_call(args),
        Func::StartsWith | Func::EndsWith => affix(func, args),
        Func::Contains => contains_call(args),
        Func::Replace => replace(args),
        Func::Abs | Func::Floor | Func::Ceil => abs_floor_ceil(func, args),
        Func::Round => round_call(args),
        Func::Min | Func::Max => extreme(func, args),
    }
}

fn if_(args: Args<'_>) -> Result<Val<'_>, EvalError> {
    if args.get(0)?.truthy() {
        args.get(1)
    } else {
        args.get(2)
    }
}

fn coalesce(args: Args<'_>) -> Result<Val<'_>, EvalError> {
    for val in args.each() {
        let val = val?;
        if !val.is_null() {
            return Ok(val);
        }
    }
    Ok(Val::NULL)
}

fn len(args: Args<'_>) -> Result<Val<'_>, EvalError> {
    let val = args.get(0)?;
    let len = match val.view() {
        View::Null => return Ok(Val::NULL),
        View::Str(s) => s.chars().count(),
        View::Array(items) => items.len(),
        View::Object(map) => map.len(),
        other => return Err(wrong_type("len", "a string, array or object", other)),
    };
    Ok(Val::Owned(Value::from(len)))
}

fn change_case(func: Func, args: Args<'_>) -> Result<Val<'_>, EvalError> {
    let val = args.get(0)?;
    match val.view() {
        View::Null => Ok(Val::NULL),
        View::Str(s) => Ok(Val::string(if func == Func::Lower {
            s.to_lowercase()
        } else {
            s.to_uppercase()
        })),
        other => Err(wrong_type(func.name(), "a string", other)),
    }
}

fn trim(args: Args<'_>) -> Result<Val<'_>, EvalError> {
    let val = args.get(0)?;
    if val.is_null() {
        return Ok(Val::NULL);
    }
    let kind = type_name(val.view());
    match val.into_str() {
        Some(StrVal::Borrowed(s)) => Ok(Val::Str(s.trim())),
        Some(StrVal::Owned(s)) => Ok(Val::string(s.trim().to_owned())),
        None => Err(EvalError::Type(format!(
            "`trim` needs a string, got {kind}"
        ))),
    }
}

fn concat(args: Args<'_>) -> Result<Val<'_>, EvalError> {
    let mut text = String::new();
    for val in args.each() {
        render(val?.view(), &mut text, true);
    }
    Ok(Val::string(text))
}

fn to_string(args: Args<'_>) -> Result<Val<'_>, EvalError> {
    let val = args.get(0)?;
    match val.view() {
        View::Null => Ok(Val::NULL),
        View::Str(_) => Ok(val),
        other => {
            let mut text = String::new();
            render(other, &mut text, false);
            Ok(Val::string(text))
        }
    }
}

fn to_number(args: Args<'_>) -> Result<Val<'_>, EvalError> {
    let val = args.get(0)?;
    Ok(match val.view() {
        View::Num(_) => val,
        View::Bool(b) => Val::Owned(Value::from(u8::from(b))),
        View::Str(s) => Val::Owned(parse_number(s)),
        _ => Val::NULL,
    })
}

fn substr_call(args: Args<'_>) -> Result<Val<'_>, EvalError> {
    let name = "substr";
    let (s, start, len) = (args.get(0)?, args.get(1)?, args.get(2)?);
    let View::Str(s) = s.view() else {
        return null_or_wrong_type(name, "a string", s.view());
    };
    let Some(start) = int_arg(name, "start", start.view())? else {
        return Ok(Val::NULL);
    };
    let len = match (args.len() > 2, int_arg(name, "length", len.view())?) {
        (false, _) => None,
        (true, Some(len)) => Some(usize::try_from(len.max(0)).unwrap_or(usize::MAX)),
        (true, None) => return Ok(Val::NULL),
    };
    Ok(Val::string(substr(s, start, len)))
}

fn affix(func: Func, args: Args<'_>) -> Result<Val<'_>, EvalError> {
    let (s, part) = (args.get(0)?, args.get(1)?);
    match (s.view(), part.view()) {
        (View::Null, _) | (_, View::Null) => Ok(Val::NULL),
        (View::Str(s), View::Str(part)) => Ok(Val::bool(if func == Func::StartsWith {
            s.starts_with(part)
        } else {
            s.ends_with(part)
        })),
        (View::Str(_), other) | (other, _) => Err(wrong_type(func.name(), "two strings", other)),
    }
}

fn contains_call(args: Args<'_>) -> Result<Val<'_>, EvalError> {
    let (haystack, needle) = (args.get(0)?, args.get(1)?);
    Ok(
        match contains(haystack.view(), needle.view(), "contains")? {
            Some(found) => Val::bool(found),
            None => Val::NULL,
        },
    )
}

fn replace(args: Args<'_>) -> Result<Val<'_>, EvalError> {
    let (s, from, to) = (args.get(0)?, args.get(1)?, args.get(2)?);
    match (s.view(), from.view(), to.view()) {
        (View::Null, _, _) | (_, View::Null, _) | (_, _, View::Null) => Ok(Val::NULL),
        (View::Str(_), View::Str(""), View::Str(_)) => Ok(s),
        (View::Str(text), View::Str(from), View::Str(to)) => {
            Ok(Val::string(text.replace(from, to)))
        }
        (View::Str(_), View::Str(_), other) | (View::Str(_), other, _) | (other, _, _) => {
            Err(wrong_type("replace", "three strings", other))
        }
    }
}

fn abs_floor_ceil(func: Func, args: Args<'_>) -> Result<Val<'_>, EvalError> {
    let val = args.get(0)?;
    let View::Num(n) = val.view() else {
        return null_or_wrong_type(func.name(), "a number", val.view());
    };
    Ok(Val::Owned(match (func, n) {
        (Func::Abs, Num::Int(i)) => Num::Int(i.saturating_abs()).into_value(),
        (Func::Abs, Num::Float(f)) => Num::Float(f.abs()).into_value(),
        (_, Num::Int(_)) => return Ok(val),
        (Func::Floor, Num::Float(f)) => integral(f.floor()),
        (_, Num::Float(f)) => integral(f.ceil()),
    }))
}

fn round_call(args: Args<'_>) -> Result<Val<'_>, EvalError> {
    let (val, digits) = (args.get(0)?, args.get(1)?);
    let View::Num(n) = val.view() else {
        return null_or_wrong_type("round", "a number", val.view());
    };
    let digits = if args.len() > 1 {
        match int_arg("round", "digits", digits.view())? {
            // 10^308 is the largest power of ten a float holds.
            Some(d) => i32::try_from(d.clamp(-308, 308)).unwrap_or(0),
            None => return Ok(Val::NULL),
        }
    } else {
        0
    };
    if matches!(n, Num::Int(_)) && digits >= 0 {
        return Ok(val);
    }
    Ok(Val::Owned(round(n.to_f64(), digits)))
}

fn wrong_type(name: &str, wanted: &str, got: View<'_>) -> EvalError {
    EvalError::Type(format!("`{name}` needs {wanted}, got {}", type_name(got)))
}

/// Null for a null argument, else the type error.
fn null_or_wrong_type<'a>(name: &str, wanted: &str, got: View<'_>) -> Result<Val<'a>, EvalError> {
    match got {
        View::Null => Ok(Val::NULL),
        other => Err(wrong_type(name, wanted, other)),
    }
}

/// An integer argument (floats are truncated); `None` when null.
fn int_arg(name: &str, what: &str, view: View<'_>) -> Result<Option<i128>, EvalError> {
    match view {
        View::Null => Ok(None),
        View::Num(Num::Int(i)) => Ok(Some(i)),
        View::Num(Num::Float(f)) if f.is_finite() => {
            #[allow(clippy::cast_possible_truncation)] // Truncation is the documented rule.
            let i = f.trunc() as i128;
            Ok(Some(i))
        }
        other => Err(EvalError::Type(format!(
            "`{name}` needs a number for {what}, got {}",
            type_name(other)
        ))),
    }
}

/// Text of a value: strings as they are, others as compact JSON. Nulls are skipped when
/// `skip_null`.
fn render(view: View<'_>, out: &mut String, skip_null: bool) {
    match view {
        View::Null if skip_null => {}
        View::Null => out.push_str("null"),
        View::Str(s) => out.push_str(s),
        View::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        View::Num(n) => {
            let _ = write!(out, "{}", n.into_value());
        }
        View::Array(items) => {
            let _ = write!(out, "{}", Value::Array(items.to_vec()));
        }
        View::Object(map) => {
            let _ = write!(out, "{}", Value::Object(map.clone()));
        }
    }
}

/// A number from text (surrounding spaces allowed), or null.
fn parse_number(text: &str) -> Value {
    let text = text.trim();
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = text.parse::<u64>() {
        return Value::from(u);
    }
    // Rust also reads `inf` and `NaN`; those are not numbers in JSON.
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => Num::Float(f).into_value(),
        _ => Value::Null,
    }
}

/// Characters `start..start+len` of `s`; a negative start counts from the end.
fn substr(s: &str, start: i128, len: Option<usize>) -> String {
    let from = if start >= 0 {
        usize::try_from(start).unwrap_or(usize::MAX)
    } else {
        let count = s.chars().count();
        let back = usize::try_from(start.unsigned_abs()).unwrap_or(usize::MAX);
        count.saturating_sub(back)
    };
    let chars = s.chars().skip(from);
    match len {
        Some(len) => chars.take(len).collect(),
        None => chars.collect(),
    }
}

/// `x` rounded half away from zero to `digits` decimals (negative: tens, hundreds…).
fn round(x: f64, digits: i32) -> Value {
    if digits == 0 {
        return integral(x.round());
    }
    let factor = 10f64.powi(digits.saturating_abs());
    let rounded = if digits > 0 {
        (x * factor).round() / factor
    } else {
        (x / factor).round() * factor
    };
    if !rounded.is_finite() {
        // The scaling overflowed: more digits than a float has, so `x` is the answer.
        return Num::Float(x).into_value();
    }
    if digits > 0 {
        Num::Float(rounded).into_value()
    } else {
        integral(rounded)
    }
}

/// `min`/`max` over the arguments, or over the elements of a single array argument.
/// Nulls are skipped; all null gives null.
fn extreme<'a>(func: Func, args: Args<'a>) -> Result<Val<'a>, EvalError> {
    let name = func.name();
    let wanted = if func == Func::Min {
        Ordering::Less
    } else {
        Ordering::Greater
    };
    let mut best: Option<Val<'a>> = None;
    let mut consider = |candidate: Val<'a>| -> Result<(), EvalError> {
        if candidate.is_null() {
            return Ok(());
        }
        let better = match &best {
            None => {
                if !matches!(candidate.view(), View::Num(_) | View::Str(_)) {
                    return Err(wrong_type(name, "numbers or strings", candidate.view()));
                }
                true
            }
            Some(current) => match order(candidate.view(), Val::view(current)) {
                Ok(ordering) => ordering == Some(wanted),
                Err((x, y)) => {
                    return Err(EvalError::Type(format!(
                        "`{name}` needs all numbers or all strings, got {} and {}",
                        type_name(y),
                        type_name(x)
                    )));
                }
            },
        };
        if better {
            best = Some(candidate);
        }
        Ok(())
    };
    if args.len() == 1 {
        match args.get(0)? {
            Val::Ref(Value::Array(items)) => {
                for item in items {
                    consider(Val::Ref(item))?;
                }
            }
            Val::Owned(Value::Array(items)) => {
                for item in items {
                    consider(Val::Owned(item))?;
                }
            }
            other => consider(other)?,
        }
    } else {
        for val in args.each() {
            consider(val?)?;
        }
    }
    Ok(best.unwrap_or(Val::NULL))
}
