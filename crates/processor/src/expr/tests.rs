use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{EvalError, Expr, ExprError, truthy};
use crate::record::{Payload, Record};

fn record_with(value: Value) -> Record {
    Record {
        key: Some(Bytes::from_static(b"user-1")),
        value: Payload::Json(value),
        headers: vec![
            ("site".to_owned(), Some(Bytes::from_static(b"north"))),
            ("x-trace".to_owned(), Some(Bytes::from_static(b"abc"))),
            ("bin".to_owned(), Some(Bytes::from_static(&[0x61, 0xff]))),
            ("empty".to_owned(), None),
            ("site".to_owned(), Some(Bytes::from_static(b"south"))),
        ],
        timestamp: 1_000,
        event_time: 2_000,
    }
}

fn record() -> Record {
    record_with(json!({
        "temperature": 31.5,
        "count": 3,
        "name": "Alice",
        "padded": "  hi  ",
        "tags": ["a", "b"],
        "nested": { "x": { "y": 5 } },
        "odd key": 1,
        "key": "json-key",
        "flag": true,
        "zero": 0,
        "empty": "",
        "big": u64::MAX,
        "neg": -7,
        "items": [{ "id": 1 }, { "id": 2 }],
        "nums": [4, 1.5, 9],
        "idx": 1,
        "field": "name",
    }))
}

fn raw_record() -> Record {
    Record {
        value: Payload::Raw(Some(Bytes::from_static(b"not json"))),
        ..record()
    }
}

#[track_caller]
fn ev(source: &str) -> Value {
    let expr = Expr::parse(source).unwrap_or_else(|e| panic!("{source}: {e}"));
    expr.eval(&record())
        .unwrap_or_else(|e| panic!("{source}: {e}"))
}

#[track_caller]
fn eval_error(source: &str) -> EvalError {
    let expr = Expr::parse(source).unwrap_or_else(|e| panic!("{source}: {e}"));
    match expr.eval(&record()) {
        Ok(v) => panic!("{source}: expected an error, got {v}"),
        Err(e) => e,
    }
}

#[track_caller]
fn type_error(source: &str) -> String {
    match eval_error(source) {
        EvalError::Type(message) => message,
        other => panic!("{source}: expected a type error, got {other:?}"),
    }
}

#[track_caller]
fn parse_error(source: &str) -> ExprError {
    match Expr::parse(source) {
        Ok(expr) => panic!("{source}: expected a parse error, got {expr:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_all(cases: &[(&str, Value)]) {
    for (source, expected) in cases {
        assert_eq!(&ev(source), expected, "{source}");
    }
}

#[test]
fn reads_fields_paths_and_indexes() {
    assert_all(&[
        ("temperature", json!(31.5)),
        ("nested.x.y", json!(5)),
        ("nested[\"x\"]['y']", json!(5)),
        ("tags[0]", json!("a")),
        ("tags[1]", json!("b")),
        ("tags[-1]", json!("b")),
        ("tags[-2]", json!("a")),
        ("tags[-3]", Value::Null),
        ("tags[2]", Value::Null),
        ("tags[\"0\"]", Value::Null),
        ("items[1].id", json!(2)),
        ("items[idx].id", json!(2)),
        ("value[field]", json!("Alice")),
        ("value[\"odd key\"]", json!(1)),
        ("nested.x.y.z", Value::Null),
        ("name.first", Value::Null),
        ("name[0]", Value::Null),
        ("missing", Value::Null),
        ("missing.deep[3].path", Value::Null),
        ("items[missing]", Value::Null),
        // Keywords are field names after a dot.
        ("nested.in", Value::Null),
        ("(nested).x.y", json!(5)),
        ("coalesce(missing, nested).x", json!({ "y": 5 })),
        ("[10, 20, 30][-1]", json!(30)),
        ("big", json!(u64::MAX)),
    ]);
    assert_eq!(
        type_error("tags[temperature]"),
        "an index must be an integer"
    );
    assert_eq!(
        type_error("tags[flag]"),
        "an index must be a number or a string, got boolean"
    );
    assert_eq!(parse_error("tags[1.5]").offset, 5);
    assert_eq!(parse_error("tags[true]").offset, 5);
}

#[test]
fn reads_key_headers_and_times() {
    assert_all(&[
        ("key", json!("user-1")),
        ("timestamp", json!(1_000)),
        ("event_time", json!(2_000)),
        ("event_time - timestamp", json!(1_000)),
        ("headers.site", json!("north")),
        ("headers[\"x-trace\"]", json!("abc")),
        ("headers['x-' + 'trace']", json!("abc")),
        ("headers[field]", Value::Null),
        ("headers.missing", Value::Null),
        ("headers.empty", Value::Null),
        ("headers.bin", json!("a\u{fffd}")),
        ("headers[0]", Value::Null),
        ("headers.site.x", Value::Null),
        (
            "headers",
            json!({ "site": "north", "x-trace": "abc", "bin": "a\u{fffd}", "empty": null }),
        ),
        ("value.key", json!("json-key")),
        ("value.nested.x", json!({ "y": 5 })),
        ("key == 'user-1'", json!(true)),
        ("len(key)", json!(6)),
        ("key.x", Value::Null),
    ]);
    assert_eq!(ev("value"), record().json().cloned().unwrap_or_default());

    let keyless = Record {
        key: None,
        ..record()
    };
    let key = Expr::parse("key").unwrap();
    assert_eq!(key.eval(&keyless).unwrap(), Value::Null);
    let lossy = Record {
        key: Some(Bytes::from_static(&[0xff])),
        ..record()
    };
    assert_eq!(key.eval(&lossy).unwrap(), json!("\u{fffd}"));
}

#[test]
fn raw_payload_fails_only_when_json_is_read() {
    let raw = raw_record();
    for source in [
        "temperature",
        "value",
        "value.key",
        "a.b > 1",
        "key == 'user-1' && x",
        "headers[field]",
    ] {
        let expr = Expr::parse(source).unwrap();
        assert!(expr.reads_value(), "{source}");
        assert_eq!(expr.eval(&raw), Err(EvalError::NotJson), "{source}");
        assert_eq!(expr.test(&raw), Err(EvalError::NotJson), "{source}");
    }
    for (source, expected) in [
        ("key", json!("user-1")),
        ("headers.site == 'north'", json!(true)),
        ("timestamp > 10", json!(true)),
        ("event_time", json!(2000)),
        ("len(headers['x-trace']) + 1", json!(4)),
        ("1 + 2", json!(3)),
    ] {
        let expr = Expr::parse(source).unwrap();
        assert!(!expr.reads_value(), "{source}");
        assert_eq!(expr.eval(&raw).unwrap(), expected, "{source}");
    }
    let tombstone = Record {
        value: Payload::Raw(None),
        ..record()
    };
    assert_eq!(
        Expr::parse("a").unwrap().eval(&tombstone),
        Err(EvalError::NotJson)
    );
}

#[test]
fn literals() {
    assert_all(&[
        ("42", json!(42)),
        ("2.5", json!(2.5)),
        ("1e3", json!(1000.0)),
        ("2.5E-1", json!(0.25)),
        ("-3", json!(-3)),
        ("- 3.5", json!(-3.5)),
        ("18446744073709551615", json!(u64::MAX)),
        ("-9223372036854775808", json!(i64::MIN)),
        ("100000000000000000000", json!(1e20)),
        ("\"double\"", json!("double")),
        ("'single'", json!("single")),
        (r#"'it\'s'"#, json!("it's")),
        (r#""say \"hi\"""#, json!("say \"hi\"")),
        (r#""a\nb\tc\r\\\/\0""#, json!("a\nb\tc\r\\/\0")),
        (r#""\u00e9\u{1F600}\ud83d\ude00""#, json!("é😀😀")),
        ("'multi-byte é ok'", json!("multi-byte é ok")),
        ("true", json!(true)),
        ("false", json!(false)),
        ("null", Value::Null),
        ("[]", json!([])),
        ("[1, 'x', null, [true],]", json!([1, "x", null, [true]])),
        ("[count, -count]", json!([3, -3])),
    ]);
}

#[test]
fn equality() {
    assert_all(&[
        ("count == 3", json!(true)),
        ("count == 3.0", json!(true)),
        ("count != 3", json!(false)),
        ("name == 'Alice'", json!(true)),
        ("name == 'alice'", json!(false)),
        ("'3' == 3", json!(false)),
        ("flag == true", json!(true)),
        ("flag == 1", json!(false)),
        ("missing == null", json!(true)),
        ("null == null", json!(true)),
        ("zero == null", json!(false)),
        ("tags == ['a', 'b']", json!(true)),
        ("nums == [4, 1.5, 9.0]", json!(true)),
        ("nested == nested", json!(true)),
        ("big == 18446744073709551615", json!(true)),
        ("big != 18446744073709551614", json!(true)),
    ]);
}

#[test]
fn ordering() {
    assert_all(&[
        ("temperature > 30", json!(true)),
        ("temperature >= 31.5", json!(true)),
        ("temperature < 31.5", json!(false)),
        ("temperature <= 31.5", json!(true)),
        ("count < 3.5", json!(true)),
        ("neg < zero", json!(true)),
        ("big > 9223372036854775807", json!(true)),
        ("'apple' < 'banana'", json!(true)),
        ("'b' >= 'a'", json!(true)),
        ("'B' < 'a'", json!(true)),
        // Missing fields do not order: null, which is false as a predicate.
        ("missing > 3", Value::Null),
        ("3 <= missing", Value::Null),
    ]);
    assert_eq!(
        type_error("name < 3"),
        "cannot compare string with number using `<`"
    );
    assert_eq!(
        type_error("flag >= false"),
        "cannot compare boolean with boolean using `>=`"
    );
    assert!(type_error("tags > 1").contains("array"));
    let expr = Expr::parse("missing > 3").unwrap();
    assert!(!expr.test(&record()).unwrap());
}

#[test]
fn regex_match() {
    assert_all(&[
        ("name =~ '^Al'", json!(true)),
        ("name =~ 'ice$'", json!(true)),
        ("name =~ 'lic'", json!(true)),
        ("name =~ '^ice'", json!(false)),
        ("name !~ '^Al'", json!(false)),
        ("name =~ '(?i)^alice$'", json!(true)),
        ("key =~ '^user-[0-9]+$'", json!(true)),
        ("missing =~ 'x'", Value::Null),
        (r#"'a.b' =~ "^a\\.b$""#, json!(true)),
    ]);
    assert_eq!(
        type_error("count =~ '3'"),
        "`=~` needs a string on the left, got number"
    );
    let bad = parse_error("name =~ 'a(b'");
    assert_eq!(bad.offset, 8);
    assert!(
        bad.message.starts_with("invalid regex: "),
        "{}",
        bad.message
    );
    assert!(!bad.message.contains('\n'), "{}", bad.message);
    let not_literal = parse_error("name =~ field");
    assert_eq!(not_literal.offset, 8);
    assert!(not_literal.message.contains("string literal"));
    assert_eq!(parse_error("name !~ 1").offset, 8);
}

#[test]
fn membership() {
    assert_all(&[
        ("'a' in tags", json!(true)),
        ("'z' in tags", json!(false)),
        ("'z' not in tags", json!(true)),
        ("count in [1, 2, 3]", json!(true)),
        ("count in [1.0, 3.0]", json!(true)),
        ("name in ['Bob', 'Alice']", json!(true)),
        ("name not in ['Bob', 'Alice']", json!(false)),
        ("null in [1, null]", json!(true)),
        ("'x' in nested", json!(true)),
        ("'q' in nested", json!(false)),
        ("'lic' in name", json!(true)),
        ("'y' in missing", Value::Null),
        ("'y' not in missing", Value::Null),
        ("count in [count, 4]", json!(true)),
        ("1 + 2 in [3]", json!(true)),
    ]);
    assert!(type_error("1 in count").contains("got number"));
    assert!(type_error("1 in name").contains("string to look for"));
}

#[test]
fn arithmetic() {
    assert_all(&[
        ("1 + 2", json!(3)),
        ("count * 2", json!(6)),
        ("count - 5", json!(-2)),
        ("7 / 2", json!(3.5)),
        ("6 / 3", json!(2.0)),
        ("7 % 3", json!(1)),
        ("-7 % 3", json!(-1)),
        ("7.5 % 2", json!(1.5)),
        ("temperature + 0.5", json!(32.0)),
        ("count + 0.5", json!(3.5)),
        ("1 / 0", Value::Null),
        ("1 % 0", Value::Null),
        ("1.5 % 0", Value::Null),
        ("0 / 0", Value::Null),
        (
            "9223372036854775807 + 1",
            json!(9_223_372_036_854_775_808_u64),
        ),
        ("big + 1", json!(2f64.powi(64))),
        ("big * big", json!(2f64.powi(128))),
        ("-9223372036854775808 - 1", json!(-(2f64.powi(63)))),
        ("1e308 * 10", Value::Null),
        ("missing + 1", Value::Null),
        ("1 - missing", Value::Null),
        ("null * 'a'", Value::Null),
        ("-missing", Value::Null),
        ("-neg", json!(7)),
        ("--3", json!(3)),
        ("-big", json!(-(2f64.powi(64)))),
        ("'a' + 'b'", json!("ab")),
        ("name + '!' + key", json!("Alice!user-1")),
    ]);
    assert_eq!(
        type_error("name + 1"),
        "`+` needs two numbers or two strings, got string and number (use concat() to join text)"
    );
    assert_eq!(
        type_error("'a' - 'b'"),
        "`-` needs numbers, got string and string"
    );
    assert_eq!(
        type_error("flag * 2"),
        "`*` needs numbers, got boolean and number"
    );
    assert_eq!(type_error("-name"), "`-` needs a number, got string");
    assert!(type_error("tags + tags").contains("array and array"));
}

#[test]
fn logic_and_truthiness() {
    assert_all(&[
        ("true && true", json!(true)),
        ("true and false", json!(false)),
        ("false || true", json!(true)),
        ("false or false", json!(false)),
        ("!flag", json!(false)),
        ("not zero", json!(true)),
        ("!missing", json!(true)),
        ("!!name", json!(true)),
        ("!empty", json!(true)),
        ("!tags", json!(false)),
        ("!nested", json!(false)),
        ("!0.0", json!(true)),
        ("name && count", json!(true)),
        ("count || missing", json!(true)),
        // Short circuits: the failing side is never evaluated.
        ("false && name < 1", json!(false)),
        ("true || name < 1", json!(true)),
        ("flag == !zero", json!(true)),
    ]);
    let raw = raw_record();
    let guarded = Expr::parse("key == 'nobody' && temperature > 3").unwrap();
    assert_eq!(guarded.test(&raw), Ok(false));

    for (value, expected) in [
        (json!(null), false),
        (json!(false), false),
        (json!(true), true),
        (json!(0), false),
        (json!(0.0), false),
        (json!(-1), true),
        (json!(0.5), true),
        (json!(""), false),
        (json!("0"), true),
        (json!([]), true),
        (json!({}), true),
    ] {
        assert_eq!(truthy(&value), expected, "{value}");
        let expr = Expr::parse("value").unwrap();
        assert_eq!(
            expr.test(&record_with(value.clone())),
            Ok(expected),
            "{value}"
        );
    }
}

#[test]
fn precedence() {
    assert_all(&[
        ("1 + 2 * 3", json!(7)),
        ("(1 + 2) * 3", json!(9)),
        ("10 - 2 - 3", json!(5)),
        ("10 - (2 - 3)", json!(11)),
        ("2 * 3 % 4", json!(2)),
        ("100 / 10 / 5", json!(2.0)),
        ("-2 * 3", json!(-6)),
        ("-(2 + 3)", json!(-5)),
        ("1 + 2 > 2 && 3 < 4", json!(true)),
        ("true || false && false", json!(true)),
        ("(true || false) && false", json!(false)),
        ("false && true || true", json!(true)),
        // `!` binds looser than comparisons.
        ("!count == 3", json!(false)),
        ("!(count == 3)", json!(false)),
        ("not count == 4", json!(true)),
        ("!count == 3 || true", json!(true)),
        ("not 'z' in tags", json!(true)),
        ("count + 1 in [4]", json!(true)),
        ("items[0].id + nested.x.y * 2", json!(11)),
        // Postfix binds tightest: `-a.b` is `-(a.b)`.
        ("-nested.x.y", json!(-5)),
        ("-items[0].id", json!(-1)),
    ]);
}

#[test]
fn functions() {
    assert_all(&[
        ("exists(name)", json!(true)),
        ("exists(missing)", json!(false)),
        ("exists(zero)", json!(true)),
        ("len(name)", json!(5)),
        ("len('héllo')", json!(5)),
        ("len(tags)", json!(2)),
        ("len(nested)", json!(1)),
        ("len(missing)", Value::Null),
        ("lower(name)", json!("alice")),
        ("upper(name)", json!("ALICE")),
        ("lower(missing)", Value::Null),
        ("trim(padded)", json!("hi")),
        ("trim(padded + '  x ')", json!("hi    x")),
        ("trim(headers.site)", json!("north")),
        (
            "concat(name, '-', count, '-', flag, missing, tags)",
            json!("Alice-3-true[\"a\",\"b\"]"),
        ),
        ("concat(temperature)", json!("31.5")),
        ("substr(name, 1)", json!("lice")),
        ("substr(name, 1, 3)", json!("lic")),
        ("substr(name, -3)", json!("ice")),
        ("substr(name, -3, 2)", json!("ic")),
        ("substr(name, -10, 2)", json!("Al")),
        ("substr(name, 10)", json!("")),
        ("substr(name, 1, -1)", json!("")),
        ("substr('héllo', 1, 2)", json!("él")),
        ("substr(name, len(name) / 2)", json!("ice")),
        ("substr(missing, 1)", Value::Null),
        ("substr(name, missing)", Value::Null),
        ("substr(name, 0, missing)", Value::Null),
        ("starts_with(name, 'Al')", json!(true)),
        ("starts_with(name, 'al')", json!(false)),
        ("ends_with(name, 'ce')", json!(true)),
        ("ends_with(missing, 'ce')", Value::Null),
        ("contains(name, 'lic')", json!(true)),
        ("contains(tags, 'b')", json!(true)),
        ("contains(nums, 9)", json!(true)),
        ("contains(nested, 'x')", json!(true)),
        ("contains(missing, 'x')", Value::Null),
        ("replace(name, 'l', 'L')", json!("ALice")),
        ("replace('a-b-c', '-', '')", json!("abc")),
        ("replace(name, '', 'x')", json!("Alice")),
        ("replace(missing, 'a', 'b')", Value::Null),
        ("abs(neg)", json!(7)),
        ("abs(-2.5)", json!(2.5)),
        ("abs(missing)", Value::Null),
        ("round(2.5)", json!(3)),
        ("round(-2.5)", json!(-3)),
        ("round(2.4)", json!(2)),
        ("round(count)", json!(3)),
        ("round(1.23456, 2)", json!(1.23)),
        ("round(-1.235, 1)", json!(-1.2)),
        ("round(1234.5, -2)", json!(1200)),
        ("round(1234, -2)", json!(1200)),
        ("round(1.5, 400)", json!(1.5)),
        ("round(1e300, -400)", json!(0)),
        ("round(1.25, 1e9)", json!(1.25)),
        ("round(missing)", Value::Null),
        ("floor(2.7)", json!(2)),
        ("floor(-2.1)", json!(-3)),
        ("ceil(2.1)", json!(3)),
        ("ceil(count)", json!(3)),
        ("floor(1e300)", json!(1e300)),
        ("min(3, 1, 2)", json!(1)),
        ("max(3, 1.5, 2)", json!(3)),
        ("min(nums)", json!(1.5)),
        ("max(nums)", json!(9)),
        ("max(missing, 2, null)", json!(2)),
        ("min(missing)", Value::Null),
        ("min([])", Value::Null),
        ("max('pear', 'apple')", json!("pear")),
        ("min(count)", json!(3)),
        ("coalesce(missing, null, name, count)", json!("Alice")),
        ("coalesce(missing)", Value::Null),
        ("coalesce(zero, 1)", json!(0)),
        ("coalesce(name, name < 1)", json!("Alice")),
        ("to_string(count)", json!("3")),
        ("to_string(temperature)", json!("31.5")),
        ("to_string(flag)", json!("true")),
        ("to_string(name)", json!("Alice")),
        ("to_string(tags)", json!("[\"a\",\"b\"]")),
        ("to_string(missing)", Value::Null),
        ("to_number('42')", json!(42)),
        ("to_number(' -4.5 ')", json!(-4.5)),
        ("to_number('1e3')", json!(1000.0)),
        ("to_number('abc')", Value::Null),
        ("to_number('NaN')", Value::Null),
        ("to_number('inf')", Value::Null),
        ("to_number(count)", json!(3)),
        ("to_number(flag)", json!(1)),
        ("to_number(tags)", Value::Null),
        ("if(flag, 'yes', 'no')", json!("yes")),
        ("if(zero, 'yes', 'no')", json!("no")),
        ("if(missing, 1, 2)", json!(2)),
        ("if(true, 1, name < 1)", json!(1)),
    ]);
}

#[test]
fn function_type_errors() {
    assert_eq!(
        type_error("lower(count)"),
        "`lower` needs a string, got number"
    );
    assert_eq!(type_error("trim(tags)"), "`trim` needs a string, got array");
    assert_eq!(
        type_error("len(count)"),
        "`len` needs a string, array or object, got number"
    );
    assert_eq!(type_error("abs(name)"), "`abs` needs a number, got string");
    assert_eq!(
        type_error("round(1.5, 'x')"),
        "`round` needs a number for digits, got string"
    );
    assert_eq!(
        type_error("substr(name, 'x')"),
        "`substr` needs a number for start, got string"
    );
    assert_eq!(
        type_error("starts_with(name, 1)"),
        "`starts_with` needs two strings, got number"
    );
    assert_eq!(
        type_error("replace(name, 1, 'x')"),
        "`replace` needs three strings, got number"
    );
    assert_eq!(
        type_error("min(1, 'a')"),
        "`min` needs all numbers or all strings, got number and string"
    );
    assert_eq!(
        type_error("max(tags, 1)"),
        "`max` needs numbers or strings, got array"
    );
    assert_eq!(
        type_error("if(true, name < 1, 0)"),
        "cannot compare string with number using `<`"
    );
}

#[test]
fn parse_errors_point_at_the_problem() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
        ("name == 'abc", 8, "unterminated string"),
        ("\"abc\\", 4, "unterminated string"),
        (
            "a)",
            1,
            "expected an operator or end of expression, found `)`",
        ),
        (
            "a b",
            2,
            "expected an operator or end of expression, found `b`",
        ),
        (
            "(a",
            2,
            "expected `)` to close the `(` at column 1, found end of expression",
        ),
        ("f(a", 0, "unknown function `f` (did you mean `if`?)"),
        (
            "len(a",
            5,
            "expected `,` or `)` to close the `(` at column 4, found end of expression",
        ),
        (
            "[1, 2",
            5,
            "expected `,` or `]` to close the `[` at column 1, found end of expression",
        ),
        (
            "a[1",
            3,
            "expected `]` to close the `[` at column 2, found end of expression",
        ),
        ("a +", 3, "expected a value, found end of expression"),
        ("a + * b", 4, "expected a value, found `*`"),
        (
            "a.",
            2,
            "expected a field name after `.`, found end of expression",
        ),
        ("a.1", 2, "expected a field name after `.`, found `1`"),
        ("a = 1", 2, "`=` is not an operator: use `==` to compare"),
        ("a & b", 2, "`&` is not an operator: use `&&` or `and`"),
        ("a | b", 2, "`|` is not an operator: use `||` or `or`"),
        ("a # b", 2, "unexpected character `#`"),
        ("a == é", 5, "unexpected character `é`"),
        (
            "1 < a < 3",
            6,
            "comparisons do not chain: found `<` after a comparison (write `a < b && b < c`)",
        ),
        (
            "a == b in c",
            7,
            "comparisons do not chain: found `in` after a comparison (write `a < b && b < c`)",
        ),
        ("and", 0, "expected a value, found `and`"),
        ("a and or b", 6, "expected a value, found `or`"),
        (
            "12abc",
            2,
            "a number must be followed by an operator, not a letter",
        ),
        ("1e999", 0, "number `1e999` is out of range"),
        (
            "'\\q'",
            1,
            "unknown escape `\\q` (known: \\n \\t \\r \\0 \\\\ \\\" \\' \\/ \\uXXXX \\u{X…})",
        ),
        (
            "'\\ud800'",
            1,
            "invalid unicode escape: use \\uXXXX or \\u{X…}",
        ),
        (
            "'\\u{110000}'",
            1,
            "invalid unicode escape: use \\uXXXX or \\u{X…}",
        ),
        (
            "'\\u12'",
            1,
            "invalid unicode escape: use \\uXXXX or \\u{X…}",
        ),
        (
            "x == lenght(name)",
            5,
            "unknown function `lenght` (did you mean `len`?)",
        ),
        (
            "lowr(name)",
            0,
            "unknown function `lowr` (did you mean `lower`?)",
        ),
        (
            "startswith(a, 'b')",
            0,
            "unknown function `startswith` (did you mean `starts_with`?)",
        ),
        ("frobnicate(a)", 0, "unknown function `frobnicate`"),
        ("key(1)", 0, "unknown function `key`"),
        ("  len(a, b)", 2, "`len` takes 1 argument, got 2"),
        ("len()", 0, "`len` takes 1 argument, got 0"),
        ("substr(a)", 0, "`substr` takes 2 to 3 arguments, got 1"),
        ("concat()", 0, "`concat` takes at least 1 argument, got 0"),
        ("if(a, b)", 0, "`if` takes 3 arguments, got 2"),
        (
            "a 'a very long string literal that goes on and on'",
            2,
            "expected an operator or end of expression, found `'a very long string literal th…`",
        ),
    ];
    for (source, offset, message) in cases {
        let e = parse_error(source);
        assert_eq!(
            (e.offset, e.message.as_str()),
            (*offset, *message),
            "{source}"
        );
    }
    let e = parse_error("a + ");
    assert_eq!(
        e.to_string(),
        "expected a value, found end of expression (at column 5)"
    );
}

#[test]
fn nesting_is_limited() {
    let deep = |n: usize| format!("{}1{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(ev(&deep(64)), json!(1));
    let e = parse_error(&deep(65));
    assert_eq!(e.offset, 64);
    assert_eq!(e.message, "expression nests more than 64 levels deep");
    assert!(Expr::parse(&"-".repeat(64).to_string()).is_err());
    assert_eq!(ev(&format!("{}3", "-".repeat(64))), json!(3));
    assert!(Expr::parse(&format!("{}3", "!".repeat(65))).is_err());
    assert!(Expr::parse(&format!("{}1{}", "[".repeat(65), "]".repeat(65))).is_err());
    assert!(Expr::parse(&format!("{}a{}", "len(".repeat(65), ")".repeat(65))).is_err());
    assert!(Expr::parse(&format!("a{}", "[a".repeat(65))).is_err());
    let huge = "(".repeat(100_000);
    assert!(Expr::parse(&huge).is_err());
}

/// The deepest expression `level` can build within the nesting limit, and its depth.
fn deepest(level: impl Fn(&str) -> String) -> (String, usize) {
    let mut source = "count".to_owned();
    let mut levels = 0;
    while Expr::parse(&level(&source)).is_ok() {
        source = level(&source);
        levels += 1;
    }
    (source, levels)
}

#[test]
fn deepest_allowed_expressions_parse_and_evaluate_on_a_small_stack() {
    type Shape = (&'static str, fn(&str) -> String, usize);
    let shapes: [Shape; 8] = [
        // One nesting spent on as many tree levels as it can: or, and, compare, sum,
        // product, access.
        ("levels", |s| format!("({s}).a * 1 + 1 == 1 && b || c"), 64),
        ("calls", |s| format!("coalesce(missing, {s})"), 64),
        ("indexes", |s| format!("nums[{s}]"), 64),
        ("arrays", |s| format!("[count, {s}]"), 64),
        ("negations", |s| format!("-{s}"), 64),
        ("nots", |s| format!("!{s} || false"), 64),
        ("mixed", |s| format!("-abs(({s}) + 1)"), 21),
        (
            "lazy",
            |s| format!("if(name == 'Alice', {s}, null) + 0"),
            64,
        ),
    ];
    for (name, level, expected_levels) in shapes {
        let (source, levels) = deepest(level);
        assert_eq!(levels, expected_levels, "{name}");
        // Parse and evaluate on 512 KiB, a quarter of what a Rust or tokio thread gets
        // (release builds need far less).
        let result = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                let expr = Expr::parse(&source)?;
                let _ = expr.eval(&record());
                Ok::<_, ExprError>(())
            })
            .unwrap()
            .join();
        assert!(matches!(result, Ok(Ok(()))), "{name}");
    }
}

#[test]
fn long_chains_are_flat() {
    let sum = vec!["1"; 20_000].join(" + ");
    assert_eq!(ev(&sum), json!(20_000));
    let fields = vec!["count"; 20_000].join(" * 1 + ");
    assert_eq!(ev(&fields), json!(60_000));
    let ors = vec!["count == 1"; 20_000].join(" || ");
    assert_eq!(ev(&ors), json!(false));
    let ands = vec!["name"; 20_000].join(" and ");
    assert_eq!(ev(&ands), json!(true));
    let path = format!("nested{}", ".x".repeat(20_000));
    assert_eq!(ev(&path), Value::Null);
    let access = format!("coalesce(nested){}", "[0].x".repeat(20_000));
    assert_eq!(ev(&access), Value::Null);
}

#[test]
fn constants_fold_but_errors_wait_for_a_record() {
    assert!(!Expr::parse("[1, -2, 'a' + 'b']").unwrap().reads_value());
    assert_eq!(ev("[1, -2, 'a' + 'b']"), json!([1, -2, "ab"]));
    // A constant error is not a parse error: it fails per record, like other errors.
    let expr = Expr::parse("1 + 'a'").unwrap();
    assert!(matches!(expr.eval(&record()), Err(EvalError::Type(_))));
    assert!(matches!(expr.eval(&raw_record()), Err(EvalError::Type(_))));
}

#[test]
fn source_is_kept() {
    let expr = Expr::parse("  a  >  1 ").unwrap();
    assert_eq!(expr.source(), "  a  >  1 ");
}

// Random inputs: the parser and evaluator never panic.

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        prop::sample::select(vec!["", "a", "b", "x y", "é", "1.5", "key"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec!["a", "b", "c", "key", "0", "tags"])
                    .prop_map(str::to_owned),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn any_record() -> impl Strategy<Value = Record> {
    (
        prop::option::of(prop::collection::vec(any::<u8>(), 0..6)),
        prop_oneof![
            json_value().prop_map(Payload::Json),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..6))
                .prop_map(|b| Payload::Raw(b.map(Bytes::from))),
        ],
        prop::collection::vec(
            (
                prop::sample::select(vec!["h", "x-y", "a"]).prop_map(str::to_owned),
                prop::option::of(prop::collection::vec(any::<u8>(), 0..6)),
            ),
            0..4,
        ),
        any::<i64>(),
        any::<i64>(),
    )
        .prop_map(|(key, value, headers, timestamp, event_time)| Record {
            key: key.map(Bytes::from),
            value,
            headers: headers
                .into_iter()
                .map(|(name, value)| (name, value.map(Bytes::from)))
                .collect(),
            timestamp,
            event_time,
        })
}

fn expression() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(vec![
        "a",
        "b",
        "c",
        "a.b",
        "a[0]",
        "b[-1]",
        "c['a']",
        "a.key",
        "tags[0]",
        "key",
        "timestamp",
        "event_time",
        "headers.h",
        "headers['x-y']",
        "headers",
        "value",
        "value.a",
        "0",
        "1",
        "-1",
        "2.5",
        "1e3",
        "0.0",
        "9223372036854775807",
        "18446744073709551615",
        "-9223372036854775808",
        "'a'",
        "\"b\"",
        "''",
        "'1.5'",
        "true",
        "false",
        "null",
        "[1, 'a', null]",
        "[]",
    ])
    .prop_map(str::to_owned);
    leaf.prop_recursive(5, 64, 4, |inner| {
        let binary = prop::sample::select(vec![
            "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "and", "or",
            "in", "not in",
        ]);
        let unary = prop::sample::select(vec!["-", "!", "not "]);
        let function1 = prop::sample::select(vec![
            "exists",
            "len",
            "lower",
            "upper",
            "trim",
            "concat",
            "abs",
            "round",
            "floor",
            "ceil",
            "min",
            "max",
            "coalesce",
            "to_string",
            "to_number",
        ]);
        let function2 = prop::sample::select(vec![
            "concat",
            "substr",
            "starts_with",
            "ends_with",
            "contains",
            "round",
            "min",
            "max",
            "coalesce",
        ]);
        let function3 = prop::sample::select(vec!["substr", "replace", "if", "concat", "min"]);
        let regex = prop::sample::select(vec!["'^a'", "'b$'", "'(?i)x'", "'.'", "''"]);
        prop_oneof![
            (inner.clone(), binary, inner.clone()).prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (unary, inner.clone()).prop_map(|(op, a)| format!("{op}{a}")),
            inner.clone().prop_map(|a| format!("({a})")),
            (function1, inner.clone()).prop_map(|(f, a)| format!("{f}({a})")),
            (function2, inner.clone(), inner.clone())
                .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
            (function3, inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(f, a, b, c)| format!("{f}({a}, {b}, {c})")),
            (inner.clone(), regex).prop_map(|(a, r)| format!("({a} =~ {r})")),
            inner.clone().prop_map(|a| format!("({a}).a")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a})[{b}]")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("[{a}, {b}]")),
        ]
    })
}

proptest! {
    #[test]
    fn parse_never_panics(source in any::<String>()) {
        let _ = Expr::parse(&source);
    }

    #[test]
    fn parse_never_panics_on_expression_like_text(
        source in "[a-z0-9_ .,'\"\\\\\\[\\]()+*/%<>=!&|~-]{0,48}"
    ) {
        if let Err(e) = Expr::parse(&source) {
            prop_assert!(e.offset <= source.len());
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn eval_never_panics(source in expression(), record in any_record()) {
        let expr = match Expr::parse(&source) {
            Ok(expr) => expr,
            // A constant index of the wrong type (`a[true]`) is refused at parse time.
            Err(e) if e.message.starts_with("an index must be") => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("{source}: {e}"))),
        };
        let value = expr.eval(&record);
        let test = expr.test(&record);
        prop_assert_eq!(
            value.as_ref().map(truthy).map_err(Clone::clone),
            test,
            "{}",
            source
        );
        if !expr.reads_value() {
            let raw = Record { value: Payload::Raw(None), ..record.clone() };
            prop_assert_eq!(expr.eval(&raw), value, "{}", source);
        }
    }
}
