//! `map` (and `project`): reshapes the JSON value, and sets the key and headers.
//!
//! Order on the value: `select`, then `drop`, then `rename`, then `set`. Every expression
//! (`set`, `key`, `headers`) sees the record as it came in, so `set total = price * qty`
//! works even when the same step drops `price`. All expressions are evaluated before
//! anything changes, so a failing one leaves nothing half done.

use bytes::Bytes;
use serde_json::{Map as Object, Value};

use crate::expr::EvalError;
use crate::record::{Payload, Record};
use crate::spec::MapSpec;

use super::{Emit, Operator, StepError, key_from_value};

/// Runs one [`MapSpec`].
pub(super) struct Map {
    spec: MapSpec,
}

impl Map {
    pub(super) fn new(spec: MapSpec) -> Self {
        Self { spec }
    }

    /// Whether the step reads or writes fields of the value.
    fn touches_value(&self) -> bool {
        self.spec.select.is_some()
            || !self.spec.drop.is_empty()
            || !self.spec.rename.is_empty()
            || !self.spec.set.is_empty()
    }

    /// The reshaped value.
    fn reshape(
        &self,
        mut value: Object<String, Value>,
        set: Vec<Value>,
    ) -> Result<Object<String, Value>, StepError> {
        if let Some(paths) = &self.spec.select {
            let mut selected = Object::new();
            for path in paths {
                if let Some(found) = get_path(&value, path) {
                    set_path(&mut selected, path, found.clone())?;
                }
            }
            value = selected;
        }
        for path in &self.spec.drop {
            remove_path(&mut value, path);
        }
        for (from, to) in &self.spec.rename {
            if let Some(moved) = remove_path(&mut value, from) {
                set_path(&mut value, to, moved)?;
            }
        }
        for ((path, _), computed) in self.spec.set.iter().zip(set) {
            set_path(&mut value, path, computed)?;
        }
        Ok(value)
    }
}

impl Operator for Map {
    fn on_record(&mut self, mut record: Record, out: &mut Vec<Emit>) -> Result<(), StepError> {
        let touches_value = self.touches_value();
        if touches_value {
            object_of(&record.value)?;
        }
        let set = self
            .spec
            .set
            .iter()
            .map(|(_, expr)| expr.eval(&record))
            .collect::<Result<Vec<_>, _>>()?;
        let key = self
            .spec
            .key
            .as_ref()
            .map(|expr| expr.eval(&record))
            .transpose()?;
        let headers = self
            .spec
            .headers
            .iter()
            .map(|(name, expr)| Ok((name, key_from_value(expr.eval(&record)?))))
            .collect::<Result<Vec<_>, EvalError>>()?;

        if touches_value {
            let object = object_mut_of(&mut record.value)?;
            *object = self.reshape(std::mem::take(object), set)?;
        }
        if let Some(key) = key {
            record.key = key_from_value(key);
        }
        for (name, value) in headers {
            set_header(&mut record.headers, name, value);
        }
        out.push(Emit::Next(record));
        Ok(())
    }
}

/// The value as a JSON object, or why it is not one.
pub(super) fn object_of(value: &Payload) -> Result<&Object<String, Value>, StepError> {
    match value {
        Payload::Json(Value::Object(object)) => Ok(object),
        Payload::Json(_) => Err(not_an_object()),
        Payload::Raw(_) => Err(EvalError::NotJson.into()),
    }
}

/// The value as a mutable JSON object, or why it is not one.
pub(super) fn object_mut_of(value: &mut Payload) -> Result<&mut Object<String, Value>, StepError> {
    match value {
        Payload::Json(Value::Object(object)) => Ok(object),
        Payload::Json(_) => Err(not_an_object()),
        Payload::Raw(_) => Err(EvalError::NotJson.into()),
    }
}

fn not_an_object() -> StepError {
    StepError::Invalid("value is not a JSON object".to_owned())
}

/// The value at dotted `path`, if every step of it is there.
fn get_path<'a>(object: &'a Object<String, Value>, path: &str) -> Option<&'a Value> {
    let mut segments = path.split('.');
    let mut current = object.get(segments.next()?)?;
    for segment in segments {
        current = current.as_object()?.get(segment)?;
    }
    Some(current)
}

/// Removes and returns the value at dotted `path`.
fn remove_path(object: &mut Object<String, Value>, path: &str) -> Option<Value> {
    let (parents, last) = match path.rsplit_once('.') {
        Some((parents, last)) => (Some(parents), last),
        None => (None, path),
    };
    let mut current = object;
    for segment in parents.into_iter().flat_map(|p| p.split('.')) {
        current = current.get_mut(segment)?.as_object_mut()?;
    }
    current.remove(last)
}

/// Writes `value` at dotted `path`, creating objects on the way (a missing or null step
/// becomes an object; any other non-object step is an error, not silently replaced).
pub(super) fn set_path(
    object: &mut Object<String, Value>,
    path: &str,
    value: Value,
) -> Result<(), StepError> {
    let (parents, last) = match path.rsplit_once('.') {
        Some((parents, last)) => (Some(parents), last),
        None => (None, path),
    };
    let mut current = object;
    for segment in parents.into_iter().flat_map(|p| p.split('.')) {
        let slot = current.entry(segment.to_owned()).or_insert(Value::Null);
        if slot.is_null() {
            *slot = Value::Object(Object::new());
        }
        current = match slot {
            Value::Object(inner) => inner,
            _ => {
                return Err(StepError::Invalid(format!(
                    "cannot set {path}: {segment} is not an object"
                )));
            }
        };
    }
    current.insert(last.to_owned(), value);
    Ok(())
}

/// Sets header `name` to `value`: the first header of that name is replaced (later ones
/// of the same name are removed), or a new header is appended.
fn set_header(headers: &mut Vec<(String, Option<Bytes>)>, name: &str, value: Option<Bytes>) {
    let mut found = false;
    headers.retain_mut(|(existing, slot)| {
        if existing != name {
            return true;
        }
        if found {
            return false;
        }
        found = true;
        slot.clone_from(&value);
        true
    });
    if !found {
        headers.push((name.to_owned(), value));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Object<String, Value> {
        match value {
            Value::Object(object) => object,
            _ => Object::new(),
        }
    }

    #[test]
    fn paths_get_set_and_remove_nested_fields() {
        let mut value = object(json!({"a": {"b": 1, "c": 2}, "d": 3}));
        assert_eq!(get_path(&value, "a.b"), Some(&json!(1)));
        assert_eq!(get_path(&value, "d.x"), None);
        assert_eq!(remove_path(&mut value, "a.c"), Some(json!(2)));
        assert_eq!(remove_path(&mut value, "a.zz"), None);
        assert_eq!(remove_path(&mut value, "d.x"), None);
        set_path(&mut value, "x.y.z", json!(true)).unwrap();
        set_path(&mut value, "a.e", json!("e")).unwrap();
        assert_eq!(
            Value::Object(value.clone()),
            json!({"a": {"b": 1, "e": "e"}, "d": 3, "x": {"y": {"z": true}}})
        );
        assert!(matches!(
            set_path(&mut value, "d.q", json!(1)),
            Err(StepError::Invalid(_))
        ));
    }

    #[test]
    fn set_header_replaces_the_first_and_removes_repeats() {
        let mut headers = vec![
            ("a".to_owned(), Some(Bytes::from_static(b"1"))),
            ("b".to_owned(), None),
            ("a".to_owned(), Some(Bytes::from_static(b"2"))),
        ];
        set_header(&mut headers, "a", Some(Bytes::from_static(b"x")));
        set_header(&mut headers, "c", None);
        assert_eq!(
            headers,
            vec![
                ("a".to_owned(), Some(Bytes::from_static(b"x"))),
                ("b".to_owned(), None),
                ("c".to_owned(), None),
            ]
        );
    }
}
