//! Encoding of operator state in snapshots.
//!
//! A snapshot is JSON that the checkpoint store may write as text and parse again, so
//! everything that must come back bit for bit is encoded so that text cannot change it:
//! key bytes as lowercase hex (null for a null key), floats as the integer of their IEEE
//! bits, 128-bit integers as decimal strings. Every snapshot names its operator, so a
//! dedupe's state given to a window is refused rather than misread.

use std::fmt::Write as _;

use bytes::Bytes;
use serde_json::{Map, Number, Value};

use super::RestoreError;

/// Starts a snapshot object for `operator`.
pub(super) fn begin(operator: &str) -> Map<String, Value> {
    let mut state = Map::new();
    state.insert("operator".to_owned(), Value::from(operator));
    state
}

/// The members of a snapshot `state` of `operator`.
pub(super) fn open<'a>(
    state: &'a Value,
    operator: &str,
) -> Result<&'a Map<String, Value>, RestoreError> {
    let Value::Object(members) = state else {
        return Err(RestoreError(format!("{operator} state is not an object")));
    };
    match members.get("operator").and_then(Value::as_str) {
        Some(found) if found == operator => Ok(members),
        Some(found) => Err(RestoreError(format!(
            "state of a {found} step given to a {operator} step"
        ))),
        None => Err(RestoreError(format!("{operator} state names no operator"))),
    }
}

/// Member `name` of `object`.
pub(super) fn member<'a>(
    object: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a Value, RestoreError> {
    object
        .get(name)
        .ok_or_else(|| RestoreError(format!("missing field {name}")))
}

/// `value` as a list.
pub(super) fn list<'a>(value: &'a Value, what: &str) -> Result<&'a [Value], RestoreError> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| RestoreError(format!("{what} is not a list")))
}

/// `value` as an object.
pub(super) fn object<'a>(
    value: &'a Value,
    what: &str,
) -> Result<&'a Map<String, Value>, RestoreError> {
    value
        .as_object()
        .ok_or_else(|| RestoreError(format!("{what} is not an object")))
}

/// `value` as an `i64`.
pub(super) fn int(value: &Value, what: &str) -> Result<i64, RestoreError> {
    value
        .as_i64()
        .ok_or_else(|| RestoreError(format!("{what} is not an integer")))
}

/// `value` as a `u64`.
pub(super) fn uint(value: &Value, what: &str) -> Result<u64, RestoreError> {
    value
        .as_u64()
        .ok_or_else(|| RestoreError(format!("{what} is not an unsigned integer")))
}

/// `value` as a string.
pub(super) fn text<'a>(value: &'a Value, what: &str) -> Result<&'a str, RestoreError> {
    value
        .as_str()
        .ok_or_else(|| RestoreError(format!("{what} is not a string")))
}

/// Key bytes (or any bytes): hex, or null for `None`.
pub(super) fn bytes_to_json(bytes: Option<&Bytes>) -> Value {
    match bytes {
        None => Value::Null,
        Some(bytes) => {
            let mut hex = String::with_capacity(bytes.len() * 2);
            for byte in bytes {
                // Writing to a String cannot fail.
                let _ = write!(hex, "{byte:02x}");
            }
            Value::String(hex)
        }
    }
}

/// The inverse of [`bytes_to_json`].
pub(super) fn bytes_from_json(value: &Value) -> Result<Option<Bytes>, RestoreError> {
    let hex = match value {
        Value::Null => return Ok(None),
        Value::String(hex) => hex.as_bytes(),
        _ => return Err(RestoreError("key is neither hex nor null".to_owned())),
    };
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut bytes = Vec::with_capacity(hex.len() / 2);
    for pair in hex.chunks(2) {
        match pair {
            [high, low] => match (digit(*high), digit(*low)) {
                (Some(high), Some(low)) => bytes.push(high << 4 | low),
                _ => return Err(RestoreError("key is not lowercase hex".to_owned())),
            },
            _ => return Err(RestoreError("key hex has an odd length".to_owned())),
        }
    }
    Ok(Some(Bytes::from(bytes)))
}

/// A float, exactly: its IEEE bits.
pub(super) fn f64_to_json(value: f64) -> Value {
    Value::from(value.to_bits())
}

/// The inverse of [`f64_to_json`].
pub(super) fn f64_from_json(value: &Value, what: &str) -> Result<f64, RestoreError> {
    uint(value, what).map(f64::from_bits)
}

/// A JSON number, exactly: `{"i": n}`, `{"u": n}` or `{"f": bits}`.
pub(super) fn number_to_json(number: &Number) -> Value {
    let mut tagged = Map::new();
    if let Some(n) = number.as_i64() {
        tagged.insert("i".to_owned(), Value::from(n));
    } else if let Some(n) = number.as_u64() {
        tagged.insert("u".to_owned(), Value::from(n));
    } else {
        let float = number.as_f64().unwrap_or_default();
        tagged.insert("f".to_owned(), f64_to_json(float));
    }
    Value::Object(tagged)
}

/// The inverse of [`number_to_json`].
pub(super) fn number_from_json(value: &Value) -> Result<Number, RestoreError> {
    let tagged = object(value, "number")?;
    if let Some(n) = tagged.get("i") {
        return int(n, "number").map(Number::from);
    }
    if let Some(n) = tagged.get("u") {
        return uint(n, "number").map(Number::from);
    }
    let float = f64_from_json(member(tagged, "f")?, "number")?;
    Number::from_f64(float).ok_or_else(|| RestoreError("number is not finite".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_through_hex_including_null_and_empty() {
        for key in [
            None,
            Some(Bytes::new()),
            Some(Bytes::from_static(&[0, 1, 0x7f, 0x80, 0xfe, 0xff])),
        ] {
            let encoded = bytes_to_json(key.as_ref());
            assert_eq!(bytes_from_json(&encoded).unwrap(), key);
        }
        assert!(bytes_from_json(&Value::from("abc")).is_err());
        assert!(bytes_from_json(&Value::from("zz")).is_err());
        assert!(bytes_from_json(&Value::from(3)).is_err());
    }

    #[test]
    fn numbers_round_trip_exactly_through_text() {
        for number in [
            Number::from(-7),
            Number::from(u64::MAX),
            Number::from_f64(0.1 + 0.2).unwrap(),
            Number::from_f64(-1.0e-300).unwrap(),
        ] {
            let text = number_to_json(&number).to_string();
            let parsed: Value = serde_json::from_str(&text).unwrap();
            let back = number_from_json(&parsed).unwrap();
            assert_eq!(back, number);
            assert_eq!(
                back.as_f64().map(f64::to_bits),
                number.as_f64().map(f64::to_bits)
            );
        }
    }

    #[test]
    fn open_refuses_another_operators_state() {
        let state = Value::Object(begin("dedupe"));
        assert!(open(&state, "dedupe").is_ok());
        assert!(open(&state, "window").is_err());
        assert!(open(&Value::Null, "window").is_err());
    }
}
