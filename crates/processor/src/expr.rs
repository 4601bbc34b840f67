//! Expressions over a record: predicates for `filter`, `route` and `join`, computed
//! fields for `map`, keys for `key_by`, arguments of aggregates.
//!
//! Parsed once at deploy (errors carry the byte offset into the source, so the spec can
//! point at line and column), evaluated per record without allocation where possible:
//! fields are borrowed from the record's JSON, so `temperature > 30` or
//! `status == "ok"` copies nothing.
//!
//! # The language
//!
//! ```text
//! expr     := or
//! or       := and (("||" | "or") and)*
//! and      := not (("&&" | "and") not)*
//! not      := ("!" | "not") not | compare
//! compare  := sum [("==" | "!=" | "<" | "<=" | ">" | ">=") sum
//!                 | ("=~" | "!~") STRING
//!                 | ["not"] "in" sum]                  (comparisons do not chain)
//! sum      := product (("+" | "-") product)*
//! product  := unary (("*" | "/" | "%") unary)*
//! unary    := ("-" | "!" | "not") unary | postfix
//! postfix  := primary ("." NAME | "[" expr "]")*
//! primary  := NUMBER | STRING | "true" | "false" | "null"
//!           | "[" [expr ("," expr)* [","]] "]"
//!           | NAME "(" [expr ("," expr)* [","]] ")"    (a function)
//!           | NAME                                      (a root or a field)
//!           | "(" expr ")"
//! ```
//!
//! - **Reading the record.** A bare name reads a field of the JSON value (`a.b[0]`,
//!   `a["odd key"]`, `a[-1]` counts from the end, `a[i]` with `i` a string or integer
//!   computed per record); a missing field is null. The roots
//!   `key` (the key as a string), `timestamp` and `event_time` (ms), `headers.name` /
//!   `headers["x-y"]` (a header as a string; `headers` alone is an object of them) and
//!   `value` (the whole JSON value; `value.key` reads a field named `key`) read the rest.
//!   Reading JSON when the value is raw bytes fails with [`EvalError::NotJson`].
//! - **Literals.** Integers and floats (`1`, `2.5`, `1e3`), strings in double or single
//!   quotes with `\n \t \r \0 \\ \" \' \/ \uXXXX \u{X…}` escapes, `true`,
//!   `false`, `null`, arrays `[1, "x"]`.
//! - **Operators.** `==`/`!=` compare any two values (numbers by value, different
//!   types are unequal); `< <= > >=` order two numbers or two strings (null on either
//!   side gives null, other mixes are an error); `=~`/`!~` search with a regex literal
//!   (compiled at parse time, `regex` crate syntax, unanchored); `in` looks in an array,
//!   an object's keys or a string. `+` adds numbers or joins two strings; `- * / %` take
//!   numbers. Integer arithmetic stays integer while it fits, `/` always gives a float,
//!   division by zero gives null, and null in arithmetic gives null (missing fields
//!   propagate). `&&`/`||` short-circuit and give booleans; `!` negates truthiness.
//! - **Functions.** `exists(x)`, `len(s|array|object)`, `lower(s)`, `upper(s)`,
//!   `trim(s)`, `concat(a, …)` (nulls skipped, non-strings as JSON), `substr(s, start[,
//!   len])` (characters; negative start counts from the end), `starts_with(s, p)`,
//!   `ends_with(s, p)`, `contains(s|array|object, x)`, `replace(s, from, to)`, `abs(x)`,
//!   `round(x[, digits])`, `floor(x)`, `ceil(x)`, `min(a, …)`, `max(a, …)` (nulls
//!   skipped; one array argument means its elements), `coalesce(a, …)` (first non-null,
//!   lazy), `to_string(x)`, `to_number(x)` (null when not a number), `if(c, a, b)`
//!   (lazy). Unless a function is about nulls, a null argument gives null.
//! - **Truthiness** (predicates, `!`, `&&`, `||`, `if`): see [`truthy`].
//!
//! Nesting is limited to 64 levels so a hostile expression cannot overflow the stack.
//!
//! ```
//! use sluice_processor::{Expr, Payload, Record};
//!
//! let expr = Expr::parse(r#"temperature > 30 && headers.site == "north""#).unwrap();
//! let record = Record {
//!     key: None,
//!     value: Payload::Json(serde_json::json!({ "temperature": 31.5 })),
//!     headers: vec![("site".to_owned(), Some("north".into()))],
//!     timestamp: 0,
//!     event_time: 0,
//! };
//! assert!(expr.test(&record).unwrap());
//! ```

mod ast;
mod eval;
mod function;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::record::Record;

/// A parse error: what is wrong and where (byte offset into the expression source).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at column {})", offset + 1)]
pub struct ExprError {
    /// Byte offset into the expression where the problem starts.
    pub offset: usize,
    /// What is wrong, for a person.
    pub message: String,
}

/// A run-time failure of an expression on one record (the record goes to the dead-letter
/// topic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The expression reads JSON fields but the value is not JSON.
    #[error("value is not JSON")]
    NotJson,
    /// An operation got a value of the wrong type.
    #[error("{0}")]
    Type(String),
}

/// A parsed expression.
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
    root: ast::Node,
    reads_value: bool,
}

impl Expr {
    /// Parses `source`.
    ///
    /// # Errors
    /// [`ExprError`] with the offset of the first problem.
    pub fn parse(source: &str) -> Result<Self, ExprError> {
        let root = parser::parse(source)?;
        Ok(Self {
            source: source.to_owned(),
            reads_value: root.reads_value(),
            root,
        })
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates to a JSON value (`key` and headers as strings, missing fields as null).
    ///
    /// # Errors
    /// [`EvalError`] when the record does not fit the expression.
    pub fn eval(&self, record: &Record) -> Result<Value, EvalError> {
        eval::eval(&self.root, record).map(eval::Val::into_value)
    }

    /// Evaluates as a predicate: false, null, 0, "" and missing are false.
    ///
    /// # Errors
    /// As [`Expr::eval`].
    pub fn test(&self, record: &Record) -> Result<bool, EvalError> {
        // Same as `truthy(&self.eval(record)?)`, without copying the result out.
        Ok(eval::eval(&self.root, record)?.truthy())
    }

    /// Whether the expression reads the JSON value (so the input must be JSON).
    pub fn reads_value(&self) -> bool {
        self.reads_value
    }
}

/// JSON truthiness as predicates use it.
pub fn truthy(value: &Value) -> bool {
    eval::truthy_view(eval::view_of(value))
}
