//! A TOML document as a tree that keeps the byte span of every key and value, so that
//! each check of a spec can point at the line and column it is about.
//!
//! `toml::Value` forgets where things were; `toml::Spanned` remembers, but only around a
//! serde type. [`Node`] is that serde type for any TOML value: tables keep their keys in
//! file order, each with its own span.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A value and where it is in the source (for a string, the span includes its quotes).
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) span: Range<usize>,
    pub(super) value: Value,
}

/// A TOML value.
#[derive(Debug, Clone)]
pub(super) enum Value {
    String(String),
    Integer(i64),
    /// A float; no spec key takes one, so only its presence is kept.
    Float,
    Boolean(bool),
    /// A date or time; no spec key takes one, so only its presence is kept.
    Datetime,
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

/// One `key = value` of a table.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) key: String,
    pub(super) key_span: Range<usize>,
    pub(super) value: Node,
}

impl Value {
    /// The type's name with its article, for "must be a string, found an integer".
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Self::String(_) => "a string",
            Self::Integer(_) => "an integer",
            Self::Float => "a float",
            Self::Boolean(_) => "a boolean",
            Self::Datetime => "a date-time",
            Self::Array(_) => "an array",
            Self::Table(_) => "a table",
        }
    }
}

// `toml::Spanned` speaks a private serde protocol: a value that knows its span is offered
// as a struct of these three fields. Values without a span (tables made implicitly by a
// dotted key or a `[a.b]` header, arrays of tables) are offered plainly, and
// `toml::Spanned` fails on them, so [`Node`] speaks the protocol itself and accepts both.
// The names are those of serde_spanned 0.6, which toml 0.8 uses; the tests below break if
// they change.
const SPANNED: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: &[&str] = &[SPANNED_START, SPANNED_END, SPANNED_VALUE];
/// The one key of the map a TOML date-time is offered as.
const DATETIME_FIELD: &str = "$__toml_private_datetime";

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct(SPANNED, SPANNED_FIELDS, NodeVisitor)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// A table key, with its span when the deserializer knows it.
struct Key {
    name: String,
    span: Option<Range<usize>>,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct(SPANNED, SPANNED_FIELDS, KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key {
            name: v.to_owned(),
            span: None,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        let (span, name) = read_spanned::<A, String>(&mut map, None)?;
        Ok(Key {
            name,
            span: Some(span),
        })
    }
}

/// Reads the fields of the spanned protocol (`start` when its key was read already).
fn read_spanned<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    mut start: Option<usize>,
) -> Result<(Range<usize>, T), A::Error> {
    let mut end = None;
    let mut value = None;
    while let Some(key) = map.next_key::<String>()? {
        match key.as_str() {
            SPANNED_START => start = Some(map.next_value::<usize>()?),
            SPANNED_END => end = Some(map.next_value::<usize>()?),
            SPANNED_VALUE => value = Some(map.next_value::<T>()?),
            other => return Err(de::Error::unknown_field(other, SPANNED_FIELDS)),
        }
    }
    match (start, end, value) {
        (Some(start), Some(end), Some(value)) => Ok((start..end, value)),
        _ => Err(de::Error::custom("incomplete span")),
    }
}

/// Reads a table (or the date-time offered as one) whose first key is `first`.
fn read_table<'de, A: MapAccess<'de>>(first: Key, map: &mut A) -> Result<Value, A::Error> {
    if first.span.is_none() && first.name == DATETIME_FIELD {
        map.next_value::<de::IgnoredAny>()?;
        return Ok(Value::Datetime);
    }
    let mut entries = Vec::new();
    let mut key = Some(first);
    while let Some(Key { name, span }) = key {
        let value = map.next_value::<Node>()?;
        entries.push(Entry {
            key: name,
            // A key always has a span in toml 0.8; fall back to its value's.
            key_span: span.unwrap_or_else(|| value.span.clone()),
            value,
        });
        key = map.next_key::<Key>()?;
    }
    Ok(Value::Table(entries))
}

/// Builds a [`Node`] from any value; one offered with its span arrives as a map of the
/// spanned protocol, one without gets the span of its first key (or none, `0..0`).
struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        ValueVisitor.visit_bool(v).map(Node::unplaced)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        ValueVisitor.visit_i64(v).map(Node::unplaced)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        ValueVisitor.visit_u64(v).map(Node::unplaced)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        ValueVisitor.visit_f64(v).map(Node::unplaced)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        ValueVisitor.visit_str(v).map(Node::unplaced)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Node, A::Error> {
        ValueVisitor.visit_seq(seq).map(Node::unplaced)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let Some(first) = map.next_key::<Key>()? else {
            return Ok(Node::unplaced(Value::Table(Vec::new())));
        };
        if first.span.is_none() && first.name == SPANNED_START {
            let start = map.next_value::<usize>()?;
            let (span, value) = read_spanned::<A, Value>(&mut map, Some(start))?;
            return Ok(Node { span, value });
        }
        let span = first.span.clone().unwrap_or(0..0);
        Ok(Node {
            span,
            value: read_table(first, &mut map)?,
        })
    }
}

impl Node {
    fn unplaced(value: Value) -> Self {
        Self { span: 0..0, value }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Integer(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Integer)
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        let _ = v;
        Ok(Value::Float)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        match map.next_key::<Key>()? {
            Some(first) => read_table(first, &mut map),
            None => Ok(Value::Table(Vec::new())),
        }
    }
}

/// The 1-based line and column (in characters) of `byte_offset` in `source`.
///
/// An offset past the end is the position just after the last character; an offset inside
/// a multi-byte character counts as that character.
///
/// ```
/// use sluice_processor::spec::line_column;
///
/// assert_eq!(line_column("a = 1\nb = 2\n", 8), (2, 3));
/// ```
pub fn line_column(source: &str, byte_offset: usize) -> (usize, usize) {
    let mut offset = byte_offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = source.get(..offset).unwrap_or_default();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// The byte offset in `source` of byte `decoded_offset` of the string whose literal
/// (quotes included) is at `span`: escapes and the newline trimmed after an opening `"""`
/// are taken into account, so an expression error points at the character it is about.
pub(super) fn string_offset(source: &str, span: &Range<usize>, decoded_offset: usize) -> usize {
    let Some(raw) = source.get(span.clone()) else {
        return span.start;
    };
    let (quote, basic) = if raw.starts_with("\"\"\"") {
        ("\"\"\"", true)
    } else if raw.starts_with("'''") {
        ("'''", false)
    } else if raw.starts_with('"') {
        ("\"", true)
    } else if raw.starts_with('\'') {
        ("'", false)
    } else {
        return span.start.saturating_add(decoded_offset).min(span.end);
    };
    let multi_line = quote.len() == 3;
    let mut start = quote.len();
    if multi_line {
        // A newline right after the opening delimiter is not part of the string.
        if raw.get(start..).is_some_and(|r| r.starts_with("\r\n")) {
            start += 2;
        } else if raw.get(start..).is_some_and(|r| r.starts_with('\n')) {
            start += 1;
        }
    }
    let end = raw.len().saturating_sub(quote.len()).max(start);
    let content = raw.get(start..end).unwrap_or_default();
    let within = if basic {
        raw_offset_of_basic(content, decoded_offset, multi_line)
    } else {
        decoded_offset.min(content.len())
    };
    span.start + start + within
}

/// Walks the body of a basic string, decoding escapes, to the raw offset of decoded byte
/// `target`.
fn raw_offset_of_basic(content: &str, target: usize, multi_line: bool) -> usize {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let mut decoded = 0usize;
    let mut rest = content;
    loop {
        // A line-ending backslash: it and the whitespace after it vanish.
        if multi_line
            && let Some(after) = rest.strip_prefix('\\')
            && after.starts_with(is_space)
        {
            rest = after.trim_start_matches(is_space);
            continue;
        }
        let mut chars = rest.chars();
        let Some(c) = chars.next() else { break };
        if decoded >= target {
            break;
        }
        if c != '\\' {
            decoded += c.len_utf8();
            rest = chars.as_str();
            continue;
        }
        let escape = chars.next();
        let hex_len = match escape {
            Some('u') => 4,
            Some('U') => 8,
            _ => 0,
        };
        let after = chars.as_str();
        if hex_len == 0 {
            decoded += 1;
            rest = after;
            continue;
        }
        let hex = after.get(..hex_len).unwrap_or(after);
        decoded += u32::from_str_radix(hex, 16)
            .ok()
            .and_then(char::from_u32)
            .map_or(1, char::len_utf8);
        rest = after.get(hex.len()..).unwrap_or_default();
    }
    content.len() - rest.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(source: &str) -> Vec<Entry> {
        match toml::from_str::<Value>(source) {
            Ok(Value::Table(entries)) => entries,
            other => panic!("not a table: {other:?}"),
        }
    }

    fn entry<'a>(entries: &'a [Entry], key: &str) -> &'a Entry {
        entries.iter().find(|e| e.key == key).expect("key present")
    }

    #[test]
    fn keeps_spans_of_keys_and_values_in_file_order() {
        let source =
            "b = \"x\"\na = [1, 'y']\n[[t]]\nc = true\n[[t]]\nd.e = 2.5\n[t.f]\ng = 1979-05-27\n";
        let root = parse(source);
        let keys: Vec<&str> = root.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["b", "a", "t"]);
        let b = entry(&root, "b");
        assert_eq!(source.get(b.key_span.clone()), Some("b"));
        assert_eq!(source.get(b.value.span.clone()), Some("\"x\""));
        let Value::Array(items) = &entry(&root, "a").value.value else {
            panic!("array")
        };
        assert_eq!(source.get(items[1].span.clone()), Some("'y'"));
        let Value::Array(tables) = &entry(&root, "t").value.value else {
            panic!("array of tables")
        };
        // An array-of-tables element starts at its header.
        assert_eq!(line_column(source, tables[0].span.start), (3, 1));
        assert_eq!(line_column(source, tables[1].span.start), (5, 1));
        let Value::Table(second) = &tables[1].value else {
            panic!("table")
        };
        // A table made by a dotted key has no span of its own: it takes its first key's.
        let d = entry(second, "d");
        assert_eq!(line_column(source, d.value.span.start), (6, 3));
        let Value::Table(d_entries) = &d.value.value else {
            panic!("table")
        };
        assert!(matches!(entry(d_entries, "e").value.value, Value::Float));
        let Value::Table(f) = &entry(second, "f").value.value else {
            panic!("table")
        };
        let g = entry(f, "g");
        assert!(matches!(g.value.value, Value::Datetime));
        assert_eq!(line_column(source, g.value.span.start), (8, 5));
    }

    #[test]
    fn line_column_counts_lines_and_characters() {
        let source = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(source, 0), (1, 1));
        assert_eq!(line_column(source, 4), (1, 5));
        assert_eq!(line_column(source, 6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_column(source, 10), (2, 4));
        assert_eq!(line_column(source, 1000), (3, 1));
    }

    #[test]
    fn string_offset_follows_escapes_and_delimiters() {
        let source = r#"x = "a\"b c""#;
        let span = 4..source.len();
        // decoded `a"b c`: byte 4 is `c`, at raw offset 10.
        assert_eq!(string_offset(source, &span, 4), 10);
        assert_eq!(source.get(10..11), Some("c"));

        let source = "x = '''\nab'''";
        assert_eq!(string_offset(source, &(4..source.len()), 1), 9);

        let source = "x = \"\"\"\nab \\\n   cd\"\"\"";
        let span = 4..source.len();
        // decoded `ab cd`: byte 3 is `c`.
        let at = string_offset(source, &span, 3);
        assert_eq!(source.get(at..=at), Some("c"));
    }
}
