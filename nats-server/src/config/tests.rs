//! Table-driven tests for the configuration parser. Expected error texts
//! were captured from nats-server 2.9.10 (`nats-server -c t.conf -t`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// Compact rendering of a tree so tables stay readable:
/// maps `{k=v; ...}`, arrays `[a, b]`, strings quoted, floats with `f`.
fn render(v: &Value) -> String {
    match &v.kind {
        Kind::Map(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}={}", k, render(v)))
                .collect();
            format!("{{{}}}", parts.join("; "))
        }
        Kind::Array(a) => {
            let parts: Vec<String> = a.iter().map(render).collect();
            format!("[{}]", parts.join(", "))
        }
        Kind::String(s) => format!("{:?}", s),
        Kind::Integer(i) => i.to_string(),
        Kind::Float(f) => format!("{}f", f),
        Kind::Bool(b) => b.to_string(),
        Kind::DateTime(d) => format!("dt({})", d),
    }
}

fn parse(text: &str) -> Value {
    match parse_str(text, None) {
        Ok(v) => v,
        Err(e) => panic!("unexpected error for {:?}: {} ({})", text, e, e.located()),
    }
}

#[test]
fn valid_inputs() {
    let table: &[(&str, &str)] = &[
        ("", "{}"),
        ("# only a comment\n// another\n", "{}"),
        ("port = 4222", "{port=4222}"),
        ("port: 4222\n", "{port=4222}"),
        ("port 4222\n", "{port=4222}"),
        ("port\t=\t4222\r\n", "{port=4222}"),
        ("a = 1; b = 2\n", "{a=1; b=2}"),
        ("a = 1, b = 2\n", "{a=1; b=2}"),
        ("a = 1 # c\nb: 2 // c\n", "{a=1; b=2}"),
        ("a: x#c\n", "{a=\"x\"}"),
        ("a = 1\na = 2\n", "{a=2}"),
        // numbers
        ("a = -5", "{a=-5}"),
        ("a = 0", "{a=0}"),
        ("a = 1.5", "{a=1.5f}"),
        ("a = -1.5", "{a=-1.5f}"),
        ("a = 99999999999999999", "{a=99999999999999999}"),
        // sizes: bare letter = powers of 1000, b/i/ib = powers of 1024
        ("a = 2k", "{a=2000}"),
        ("a = 2K", "{a=2000}"),
        ("a = 2kb", "{a=2048}"),
        ("a = 2KB", "{a=2048}"),
        ("a = 2ki", "{a=2048}"),
        ("a = 2KiB", "{a=2048}"),
        ("a = 2m", "{a=2000000}"),
        ("a = 2MB", "{a=2097152}"),
        ("a = 2mib", "{a=2097152}"),
        ("a = 1g", "{a=1000000000}"),
        ("a = 1GB", "{a=1073741824}"),
        ("a = 1t", "{a=1000000000000}"),
        ("a = 1tb", "{a=1099511627776}"),
        ("a = 1p", "{a=1000000000000000}"),
        ("a = 1pb", "{a=1125899906842624}"),
        ("a = 1e", "{a=1000000000000000000}"),
        ("a = 1eb", "{a=1152921504606846976}"),
        ("a = -2k", "{a=-2000}"),
        // words that start with digits are strings
        ("a = 2s", "{a=\"2s\"}"),
        ("a = 2kx", "{a=\"2kx\"}"),
        ("a = 4222abc", "{a=\"4222abc\"}"),
        ("a = 1_000", "{a=\"1_000\"}"),
        ("a = 0x10", "{a=\"0x10\"}"),
        ("a = 1:2", "{a=\"1:2\"}"),
        ("listen = 127.0.0.1:4222", "{listen=\"127.0.0.1:4222\"}"),
        ("a = 1.2.3", "{a=\"1.2.3\"}"),
        (
            "a = [10.0.0.1:4222, 10.0.0.2-3]",
            "{a=[\"10.0.0.1:4222\", \"10.0.0.2-3\"]}",
        ),
        ("a = +5", "{a=\"+5\"}"),
        // datetimes
        ("a = 2024-01-02T03:04:05Z", "{a=dt(2024-01-02T03:04:05Z)}"),
        // booleans
        ("a = true", "{a=true}"),
        ("a = TRUE", "{a=true}"),
        ("a = yes", "{a=true}"),
        ("a = On", "{a=true}"),
        ("a = false", "{a=false}"),
        ("a = NO", "{a=false}"),
        ("a = off", "{a=false}"),
        ("a = tru", "{a=\"tru\"}"),
        ("a = true1", "{a=\"true1\"}"),
        ("a = \"true\"", "{a=\"true\"}"),
        // strings
        ("a = hello", "{a=\"hello\"}"),
        ("a = \"hello world\"", "{a=\"hello world\"}"),
        ("a = 'hello world'", "{a=\"hello world\"}"),
        (
            r#"a = "t\tn\nr\rq\"b\\x\x41""#,
            "{a=\"t\\tn\\nr\\rq\\\"b\\\\xA\"}",
        ),
        (r"a = 'raw\tstr'", "{a=\"raw\\\\tstr\"}"),
        ("a = \"multi\nline\"", "{a=\"multi\\nline\"}"),
        ("a = \"\"", "{a=\"\"}"),
        ("a = http://x:1/y", "{a=\"http://x:1/y\"}"),
        ("a = ,", "{a=\",\"}"),
        ("a = x}y", "{a=\"x}y\"}"),
        (
            "a = (\n  line one\n  line two\n)\n",
            "{a=\"\\n  line one\\n  line two\\n\"}",
        ),
        ("a = (\nx)\n)", "{a=\"\\nx)\\n\"}"),
        // keys
        ("\"a b\" = 1", "{a b=1}"),
        ("'a b': 1", "{a b=1}"),
        ("a-b.c = 1", "{a-b.c=1}"),
        ("a/b = 1", "{a/b=1}"),
        ("$a = 1", "{$a=1}"),
        ("a\n", "{}"),
        ("a\nb\n", "{a=\"b\"}"),
        // maps
        ("a {b=1}", "{a={b=1}}"),
        ("a:{b:1}", "{a={b=1}}"),
        ("a = {b = 1}", "{a={b=1}}"),
        ("a {\n}\n", "{a={}}"),
        ("a {}", "{a={}}"),
        ("a={b 1; c 2, d 3\n e=4}", "{a={b=1; c=2; d=3; e=4}}"),
        ("a { b = x}", "{a={b=\"x\"}}"),
        ("a { b = 1}", "{a={b=1}}"),
        ("a { b = 1.5}", "{a={b=1.5f}}"),
        ("a { b = \"x\"}", "{a={b=\"x\"}}"),
        ("a { b }", "{a={}}"),
        ("a { b = }", "{a={}}"),
        ("a { b { c { d = 1 } } }", "{a={b={c={d=1}}}}"),
        ("a = { b = 1 }, c = 2", "{a={b=1}; c=2}"),
        ("a { b = 1 }}\n", "{a={b=1}}"),
        ("{ port = 1 }", "{port=1}"),
        ("{\n port = 1\n b { c = 2 }\n}\n", "{port=1; b={c=2}}"),
        // arrays
        ("a = []", "{a=[]}"),
        ("a = [ ]", "{a=[]}"),
        ("a = [1 ]", "{a=[1]}"),
        ("a = [1,2 ]", "{a=[1, 2]}"),
        ("a = [1s]", "{a=[\"1s\"]}"),
        ("a = [ 1, 2 ]", "{a=[1, 2]}"),
        ("a = [1, 2,]", "{a=[1, 2]}"),
        (
            "a = [x, \"y\", 'z', true, 1.5, 2k, -3]",
            "{a=[\"x\", \"y\", \"z\", true, 1.5f, 2000, -3]}",
        ),
        ("a = [\n 1\n 2\n]", "{a=[1, 2]}"),
        ("a = [\n 1,\n 2,\n]", "{a=[1, 2]}"),
        ("a = [x # c\n y // d\n]", "{a=[\"x\", \"y\"]}"),
        ("a = [[1 ],[2, [3 ] ]]", "{a=[[1], [2, [3]]]}"),
        ("a = [{b=1}, {c=2}]", "{a=[{b=1}, {c=2}]}"),
        ("a = [\n {b: 1}\n {c: 2}\n]", "{a=[{b=1}, {c=2}]}"),
        ("a = [\"x\"\n \"y\"]", "{a=[\"x\", \"y\"]}"),
        ("a = 12]", "{a=\"12]\"}"),
        ("a { b = 12] }", "{a={b=\"12]\"}}"),
        // variables
        ("x = 1\nport = $x", "{x=1; port=1}"),
        ("x = [1, 2 ]\na = $x", "{x=[1, 2]; a=[1, 2]}"),
        ("x = 5\na { port = $x }", "{x=5; a={port=5}}"),
        ("x = 5\na { x = 6, port = $x }", "{x=5; a={x=6; port=6}}"),
        ("x = 5\na { b = [ {c = $x} ] }", "{x=5; a={b=[{c=5}]}}"),
        ("x = 5\na = [ $x ]", "{x=5; a=[5]}"),
        ("P-x = 5\nport = $P-x", "{P-x=5; port=5}"),
        ("P.x = 5\nport = $P.x", "{P.x=5; port=5}"),
        ("x = 1\na = {b = $x}", "{x=1; a={b=1}}"),
        ("x = 1\na = [$x]", "{x=1; a=[1]}"),
        ("x = 1\na = \"$x\"", "{x=1; a=\"$x\"}"),
        // bcrypt hashes are not variables
        (
            "password = $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG",
            "{password=\"$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG\"}",
        ),
    ];
    for (text, want) in table {
        let got = render(&parse(text));
        assert_eq!(&got, want, "input: {:?}", text);
    }
}

/// Inputs the reference rejects; `Display` must match its text exactly
/// (after the `nats-server: ` prefix) and `pos` must point at the culprit.
#[test]
fn malformed_inputs() {
    let eof = "'\\x00'"; // the reference prints a raw NUL here
    let arr_term = |got: &str| {
        format!(
            "Expected an array value terminator \",\" or an array terminator \"]\", but got {} instead.",
            got
        )
    };
    let top_end = |got: &str| {
        format!(
            "Expected a top-level value to end with a new line, comment or EOF, but got {} instead.",
            got
        )
    };
    let map_end = |got: &str| {
        format!(
            "Expected a map value terminator \",\" or a map terminator \"}}\", but got {} instead.",
            got
        )
    };
    let parse_err = |line: u32, msg: &str| format!("Parse error on line {}: '{}'", line, msg);
    let escapes =
        "Only the following escape characters are allowed: \\xXX, \\t, \\n, \\r, \\\", \\\\.";

    // (input, expected Display, expected 1-based (line, col) of the culprit)
    let table: Vec<(&str, String, (u32, u32))> = vec![
        (
            "port = \n",
            parse_err(2, "Expected value but found new line"),
            (1, 8),
        ),
        ("port = \"abc\n", parse_err(2, "Unexpected EOF."), (2, 1)),
        ("port = 'abc\n", parse_err(2, "Unexpected EOF."), (2, 1)),
        (
            "a { b = 1\n",
            parse_err(2, "Unexpected EOF processing map."),
            (2, 1),
        ),
        (
            "a {",
            parse_err(1, "Unexpected EOF processing map."),
            (1, 4),
        ),
        ("a = [1, 2\n", parse_err(2, &arr_term(eof)), (2, 1)),
        // An integer does not end at `]` in the reference's lexer: "1]" is a string.
        ("a = [1]", parse_err(1, &arr_term(eof)), (1, 8)),
        ("a = [1,2]\n", parse_err(2, &arr_term(eof)), (2, 1)),
        ("a = [\n", parse_err(2, &arr_term(eof)), (2, 1)),
        (
            "port = $FOO_NOT_SET_ANYWHERE\n",
            "variable reference for 'FOO_NOT_SET_ANYWHERE' on line 1 can not be found".into(),
            (1, 8),
        ),
        (
            "listen = 127.0.0.1:$P\n",
            parse_err(1, &top_end("'$'")),
            (1, 20),
        ),
        ("a = 1.2.3@x\n", parse_err(1, &top_end("'@'")), (1, 10)),
        ("a = x]y\n", parse_err(1, &top_end("']'")), (1, 6)),
        ("a = [x}y]\n", parse_err(1, &arr_term("'}'")), (1, 7)),
        ("a { b = x]y }\n", parse_err(1, &map_end("']'")), (1, 10)),
        ("a = [ {b = x]} ]\n", parse_err(1, &map_end("']'")), (1, 13)),
        ("a = [1.2.3x]\n", parse_err(1, &arr_term("'x'")), (1, 11)),
        (
            "= 5\n",
            parse_err(1, "Unexpected key separator '='"),
            (1, 1),
        ),
        (
            "a {= 1}\n",
            parse_err(1, "Unexpected key separator '='."),
            (1, 4),
        ),
        (
            "port = [1,,2]\n",
            parse_err(1, "Unexpected array value terminator ','."),
            (1, 11),
        ),
        (
            "a = [,1]\n",
            parse_err(1, "Unexpected array value terminator ','."),
            (1, 6),
        ),
        (
            "port = .5\n",
            parse_err(1, "Floats must start with a digit"),
            (1, 8),
        ),
        (
            "port = 5.\n",
            parse_err(
                2,
                "Floats must have a digit after the '.', but got '\\n' instead.",
            ),
            (1, 10),
        ),
        ("port = 1e3\n", parse_err(1, &top_end("'3'")), (1, 10)),
        ("port = 1m30s\n", parse_err(1, &top_end("'3'")), (1, 10)),
        ("port = 1.5e3\n", parse_err(1, &top_end("'e'")), (1, 11)),
        ("port = 1.5x\n", parse_err(1, &top_end("'x'")), (1, 11)),
        ("port = 2 kb\n", parse_err(1, &top_end("'k'")), (1, 10)),
        ("port = 2k1\n", parse_err(1, &top_end("'1'")), (1, 10)),
        (
            "port = -abc\n",
            parse_err(1, "Expected a digit but got 'a'."),
            (1, 9),
        ),
        (
            "port = -\n",
            parse_err(2, "Expected a digit but got '\\n'."),
            (1, 9),
        ),
        (
            "port = 1-2\n",
            parse_err(1, "All ISO8601 dates must be in full Zulu form."),
            (1, 9),
        ),
        (
            "port = 2024-01-01\n",
            parse_err(
                2,
                "Expected 'T' in ISO8601 datetime, but found '\\n' instead.",
            ),
            (1, 18),
        ),
        (
            "port = 2024-01-01T00:00:00\n",
            parse_err(
                2,
                "Expected 'Z' in ISO8601 datetime, but found '\\n' instead.",
            ),
            (1, 27),
        ),
        (
            "port = 9999999999999999999999\n",
            "integer '9999999999999999999999' is out of the range".into(),
            (1, 8),
        ),
        (
            "port = 9eb\n",
            "integer '9eb' is out of the range".into(),
            (1, 8),
        ),
        (
            "a = \"x\\qy\"\n",
            parse_err(1, &format!("Invalid escape character 'q'. {}", escapes)),
            (1, 8),
        ),
        (
            "a = \"x\\u0041\"\n",
            parse_err(1, &format!("Invalid escape character 'u'. {}", escapes)),
            (1, 8),
        ),
        (
            "a = \"x\\x4g\"\n",
            parse_err(
                1,
                "Expected two hexadecimal digits after '\\x', but got '4g'",
            ),
            (1, 9),
        ),
        ("a = b c\n", parse_err(1, &top_end("'c'")), (1, 7)),
        ("a = 1 b = 2\n", parse_err(1, &top_end("'b'")), (1, 7)),
        ("a = \"x\" b\n", parse_err(1, &top_end("'b'")), (1, 9)),
        ("a: 1// c\n", parse_err(1, &top_end("'c'")), (1, 8)),
        ("a = ]\n", parse_err(1, &top_end("']'")), (1, 5)),
        ("a\nport = 1\n", parse_err(2, &top_end("'='")), (2, 6)),
        (
            "a { b = 1 } c = 2\n",
            parse_err(1, &top_end("'c'")),
            (1, 13),
        ),
        ("a {b = 1 c = 2}\n", parse_err(1, &map_end("'c'")), (1, 10)),
        (
            "a { b = \"x\" c }\n",
            parse_err(1, &map_end("'c'")),
            (1, 13),
        ),
        ("a = [ x y ]\n", parse_err(1, &arr_term("'y'")), (1, 9)),
        (
            "a = [ \"x\" \"y\" ]\n",
            parse_err(1, &arr_term("'\"'")),
            (1, 11),
        ),
        ("a = [x; y]\n", parse_err(1, &arr_term("';'")), (1, 7)),
        ("a = [1, 2 }\n", parse_err(1, &arr_term("'}'")), (1, 11)),
        (
            "a = [ {b: 1} {c: 2} ]\n",
            parse_err(1, &arr_term("'{'")),
            (1, 14),
        ),
        (
            "a = {b = 1]\n",
            parse_err(2, "Unexpected EOF processing map."),
            (2, 1),
        ),
        (
            "a = (\n",
            parse_err(2, "Unexpected EOF processing block."),
            (2, 1),
        ),
        (
            "a = (xyz)\n",
            parse_err(2, "Unexpected EOF processing block."),
            (2, 1),
        ),
        (
            "a = (\nx\n)  \n",
            parse_err(4, "Unexpected EOF processing block."),
            (4, 1),
        ),
        (
            "include\n",
            parse_err(2, "Expected include value but found new line"),
            (1, 8),
        ),
        (
            "x = 1\n\ny {\n  z = [\n    1,\n    2\n  ]\n  w = \"unterminated\n}\n",
            parse_err(10, "Unexpected EOF."),
            (10, 1),
        ),
        (
            "a = 1\nb = $a\nc { d = $nope }\n",
            "variable reference for 'nope' on line 3 can not be found".into(),
            (3, 9),
        ),
        (
            "a { P = 5 }\nport = $P\n",
            "variable reference for 'P' on line 2 can not be found".into(),
            (2, 8),
        ),
        (
            "port = $P\nP = 5\n",
            "variable reference for 'P' on line 1 can not be found".into(),
            (1, 8),
        ),
        (
            "port = $\n",
            "variable reference for '' on line 1 can not be found".into(),
            (1, 8),
        ),
        (
            "password = $2b$11$abc\n",
            "variable reference for '2b$11$abc' on line 1 can not be found".into(),
            (1, 12),
        ),
    ];
    for (text, want, (line, col)) in &table {
        let err = match parse_str(text, Some(Path::new("t.conf"))) {
            Ok(v) => panic!("expected an error for {:?}, got {}", text, render(&v)),
            Err(e) => e,
        };
        assert_eq!(&err.to_string(), want, "input: {:?}", text);
        assert_eq!(
            (err.pos.line, err.pos.col),
            (*line, *col),
            "position for input {:?} ({})",
            text,
            err.located()
        );
        assert_eq!(err.pos.file(), Some(Path::new("t.conf")));
        assert!(err
            .located()
            .starts_with(&format!("t.conf:{}:{}: ", line, col)));
    }
}

#[test]
fn located_format() {
    let err = parse_str("a = 1\nb = [1,,2]\n", Some(Path::new("x.conf"))).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Parse);
    assert_eq!(err.message, "Unexpected array value terminator ','.");
    assert_eq!(
        err.located(),
        "x.conf:2:8: Unexpected array value terminator ','."
    );
    let err = parse_str("a = [1,,2]\n", None).unwrap_err();
    assert_eq!(err.located(), "1:8: Unexpected array value terminator ','.");
}

#[test]
fn positions_of_keys_and_values() {
    let v = parse_str(
        "port: 4222\n\n  auth {\n    user = \"bob\"\n  }\n",
        Some(Path::new("t.conf")),
    )
    .unwrap();
    let m = v.as_map().unwrap();
    let port = m.entry("port").unwrap();
    assert_eq!((port.key_pos.line, port.key_pos.col), (1, 1));
    assert_eq!(port.key_pos.reference_prefix(), "t.conf:1:0");
    assert_eq!((port.value.pos.line, port.value.pos.col), (1, 7));
    let auth = m.entry("auth").unwrap();
    assert_eq!(auth.key_pos.reference_prefix(), "t.conf:3:3");
    let user = auth.value.as_map().unwrap().entry("user").unwrap();
    assert_eq!((user.key_pos.line, user.key_pos.col), (4, 5));
    // quoted text is positioned at its first character, like the reference
    assert_eq!((user.value.pos.line, user.value.pos.col), (4, 13));
    let q = parse_str("\"a b\" = 1", None).unwrap();
    let e = &q.as_map().unwrap().entries()[0];
    assert_eq!(e.key_pos.reference_col(), 1);
}

#[test]
fn key_order_is_preserved_and_duplicates_replace() {
    let v = parse("z = 1\na = 2\nm = 3\na = 4\n");
    let keys: Vec<&str> = v.as_map().unwrap().keys().collect();
    assert_eq!(keys, ["z", "a", "m"]);
    assert_eq!(v.get("a").and_then(Value::as_i64), Some(4));
}

#[test]
fn case_insensitive_lookup() {
    let v = parse("Port = 1\nAUTHORIZATION { User = a }");
    assert_eq!(v.get("port"), None);
    assert_eq!(v.get_ci("port").and_then(Value::as_i64), Some(1));
    assert_eq!(
        v.get_ci("authorization")
            .and_then(|a| a.get_ci("user"))
            .and_then(Value::as_str),
        Some("a")
    );
}

#[test]
fn variables_are_marked_used() {
    let v = parse("A = 1\nB = 2\nport = $A\n");
    let m = v.as_map().unwrap();
    assert!(m.entry("A").unwrap().used_as_variable);
    assert!(!m.entry("B").unwrap().used_as_variable);
    assert!(!m.entry("port").unwrap().used_as_variable);
    // the referencing value is positioned at the reference
    let port = m.get("port").unwrap();
    assert_eq!((port.pos.line, port.pos.col), (3, 8));
}

#[test]
fn environment_variables() {
    // Unique names: tests run in parallel within this process.
    std::env::set_var("NATS_CFG_TEST_INT", "77");
    std::env::set_var("NATS_CFG_TEST_SIZE", "2k");
    std::env::set_var("NATS_CFG_TEST_ARR", "[1, 2 ]");
    std::env::set_var("NATS_CFG_TEST_STR", "hello");
    std::env::set_var("NATS_CFG_TEST_BAD", "\"abc");
    let v = parse(
        "a = $NATS_CFG_TEST_INT\nb = $NATS_CFG_TEST_SIZE\nc = $NATS_CFG_TEST_ARR\nd = $NATS_CFG_TEST_STR\n",
    );
    assert_eq!(render(&v), "{a=77; b=2000; c=[1, 2]; d=\"hello\"}");
    // a key in scope wins over the environment
    let v = parse("NATS_CFG_TEST_INT = 5\na = $NATS_CFG_TEST_INT\n");
    assert_eq!(v.get("a").and_then(Value::as_i64), Some(5));
    let err = parse_str("x = 1\nport = $NATS_CFG_TEST_BAD\n", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "variable reference for 'NATS_CFG_TEST_BAD' on line 2 could not be parsed: \
         Parse error on line 1: 'Unexpected EOF.'"
    );
    assert_eq!(err.kind, ErrorKind::Variable);
}

#[test]
fn env_variable_self_reference_does_not_recurse_forever() {
    std::env::set_var("NATS_CFG_TEST_LOOP", "$NATS_CFG_TEST_LOOP");
    let err = parse_str("a = $NATS_CFG_TEST_LOOP\n", None).unwrap_err();
    assert!(err.to_string().contains("NATS_CFG_TEST_LOOP"), "{}", err);
}

#[test]
fn duration_and_size_helpers() {
    let v =
        parse("ping_interval = \"2m\"\nwrite_deadline = 5\nlame = '1m30s'\nmax_payload = 1MB\n");
    assert_eq!(
        v.get("ping_interval").unwrap().as_duration(),
        Ok(Duration::from_secs(120))
    );
    assert_eq!(
        v.get("write_deadline").unwrap().as_duration(),
        Ok(Duration::from_secs(5))
    );
    assert_eq!(
        v.get("lame").unwrap().as_duration(),
        Ok(Duration::from_secs(90))
    );
    assert_eq!(v.get("max_payload").unwrap().as_i64(), Some(1 << 20));
    assert_eq!(v.get("max_payload").unwrap().type_name(), "int64");
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("nats-config-test-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    dir
}

#[test]
fn include_files() {
    let dir = scratch_dir("include");
    std::fs::write(
        dir.join("main.conf"),
        "port = 4222\nauthorization {\n  include 'sub/auth.conf'\n}\ninclude sub/limits.conf\nmax = $LIM\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/auth.conf"),
        "user = alice\npassword = secret\ninclude \"more.conf\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("sub/more.conf"), "timeout = 1.5\n").unwrap();
    std::fs::write(
        dir.join("sub/limits.conf"),
        "LIM = 10\n  max_pending = 64MB\n",
    )
    .unwrap();

    let v = parse_file(&dir.join("main.conf")).unwrap();
    assert_eq!(
        render(&v),
        "{port=4222; authorization={user=\"alice\"; password=\"secret\"; timeout=1.5f}; \
         LIM=10; max_pending=67108864; max=10}"
    );
    // positions inside an included file name that file
    let m = v.as_map().unwrap();
    let mp = m.entry("max_pending").unwrap();
    assert_eq!(
        mp.key_pos.file(),
        Some(dir.join("sub/limits.conf").as_path())
    );
    assert_eq!((mp.key_pos.line, mp.key_pos.col), (2, 3));
    assert!(m.entry("LIM").unwrap().used_as_variable);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn include_errors() {
    let dir = scratch_dir("include-errors");
    let main = dir.join("main.conf");
    std::fs::write(&main, "include nope.conf\n").unwrap();
    let err = parse_file(&main).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "error parsing include file 'nope.conf', open {}: no such file or directory",
            dir.join("nope.conf").display()
        )
    );
    assert_eq!(err.kind, ErrorKind::Io);

    // a parse error inside the included file keeps its own position
    std::fs::write(dir.join("sub/bad.conf"), "port = 1\n  bad = \n").unwrap();
    std::fs::write(&main, "a = 1\ninclude sub/bad.conf\n").unwrap();
    let err = parse_file(&main).unwrap_err();
    assert_eq!(
        err.to_string(),
        "error parsing include file 'sub/bad.conf', Parse error on line 3: \
         'Expected value but found new line'"
    );
    assert_eq!(err.pos.file(), Some(dir.join("sub/bad.conf").as_path()));
    assert_eq!((err.pos.line, err.pos.col), (2, 9));

    // variables of the including file are not visible inside the include
    std::fs::write(dir.join("sub/var.conf"), "user = a\npass = $x\n").unwrap();
    std::fs::write(&main, "x = 5\nauth { include sub/var.conf }\n").unwrap();
    let err = parse_file(&main).unwrap_err();
    assert_eq!(
        err.to_string(),
        "error parsing include file 'sub/var.conf', variable reference for 'x' on line 2 can not be found"
    );

    // a file including itself is stopped by the depth limit, not the stack
    std::fs::write(&main, "include main.conf\n").unwrap();
    let err = parse_file(&main).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Nesting);

    // missing top-level file and a directory, worded like the reference
    let missing = dir.join("missing.conf");
    assert_eq!(
        parse_file(&missing).unwrap_err().to_string(),
        format!("open {}: no such file or directory", missing.display())
    );
    assert_eq!(
        parse_file(&dir.join("sub")).unwrap_err().to_string(),
        format!("read {}: is a directory", dir.join("sub").display())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A seed node for a cluster (in the style of the NATS clustering docs).
#[test]
fn example_seed_conf() {
    let text = "\
# Cluster seed node

listen: 127.0.0.1:4222
http: 8222

cluster {
  name: demo
  listen: 127.0.0.1:4248
}
";
    let v = parse(text);
    assert_eq!(
        render(&v),
        "{listen=\"127.0.0.1:4222\"; http=8222; cluster={name=\"demo\"; listen=\"127.0.0.1:4248\"}}"
    );
}

/// Users with permissions shared through variables (in the style of the
/// NATS authorization docs).
#[test]
fn example_authorization_with_permissions() {
    let text = "\
authorization {
  ADMIN = {
    publish = \">\"
    subscribe = \">\"
  }
  REQUESTOR = {
    publish = [\"req.a\", \"req.b\"]
    subscribe = \"_INBOX.>\"
  }
  RESPONDER = {
    subscribe = [\"req.a\", \"req.b\"]
    publish = \"_INBOX.>\"
  }
  default_permissions = {
    publish = \"SANDBOX.*\"
    subscribe = [\"PUBLIC.>\", \"_INBOX.>\"]
  }
  users = [
    {user: admin,   password: s3cr3t, permissions: $ADMIN}
    {user: client,  password: 'pa ss', permissions: $REQUESTOR}
    {user: service, password: \"$2a$11$x0Q4LQ2mH2EqDKWLr6/2XOhbGvIKP3aQf8eLhOtQ1gzdK3xoSY5RC\", permissions: $RESPONDER}
    {user: other,   password: other}
  ]
}
";
    let v = parse(text);
    let auth = v.get("authorization").unwrap();
    let users = auth.get("users").and_then(Value::as_array).unwrap();
    assert_eq!(users.len(), 4);
    assert_eq!(
        render(&users[1]),
        "{user=\"client\"; password=\"pa ss\"; permissions={publish=[\"req.a\", \"req.b\"]; subscribe=\"_INBOX.>\"}}"
    );
    assert_eq!(
        users[2].get("password").and_then(Value::as_str),
        Some("$2a$11$x0Q4LQ2mH2EqDKWLr6/2XOhbGvIKP3aQf8eLhOtQ1gzdK3xoSY5RC")
    );
    assert_eq!(
        render(users[0].get("permissions").unwrap()),
        "{publish=\">\"; subscribe=\">\"}"
    );
    let auth_map = auth.as_map().unwrap();
    for name in ["ADMIN", "REQUESTOR", "RESPONDER"] {
        assert!(auth_map.entry(name).unwrap().used_as_variable, "{name}");
    }
    assert!(
        !auth_map
            .entry("default_permissions")
            .unwrap()
            .used_as_variable
    );
    // positions of nested values point into the array
    let pw = users[3].get("password").unwrap();
    assert_eq!(pw.pos.line, 22);
}

/// A fuller server configuration: ports, monitoring, bcrypt auth, cluster
/// with route authorization, logging and limits.
#[test]
fn example_full_server_conf() {
    let text = r#"
# Client port on all interfaces
port: 4222
host: 0.0.0.0
server_name: "srv-a"

# HTTP monitoring
http: localhost:8222

authorization {
  user: derek
  # bcrypt hash produced by mkpasswd
  password: $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG
  timeout: 1
}

cluster {
  name: "east"
  listen: 0.0.0.0:6222

  authorization {
    user: route_user
    password: "T0pS3cr3t"
    timeout: 0.5
  }

  # routes are actively solicited
  routes = [
    nats-route://route_user:T0pS3cr3t@127.0.0.1:6223
    nats-route://route_user:T0pS3cr3t@127.0.0.1:6224
  ]
}

# logging
debug:   false
trace:   false
logtime: true
log_file: "/tmp/nats-server.log"
pid_file: '/tmp/nats-server.pid'

# limits
max_connections: 100
max_control_line: 512
max_payload: 65536
max_pending: 10000000
ping_interval: "2m"
ping_max: 2
write_deadline: "2s"
lame_duck_duration: "30s"; lame_duck_grace_period: 10s
"#;
    let v = parse(text);
    assert_eq!(v.get("port").and_then(Value::as_i64), Some(4222));
    assert_eq!(v.get("host").and_then(Value::as_str), Some("0.0.0.0"));
    assert_eq!(
        v.get("http").and_then(Value::as_str),
        Some("localhost:8222")
    );
    let auth = v.get("authorization").unwrap();
    assert_eq!(
        auth.get("password").and_then(Value::as_str),
        Some("$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG")
    );
    assert_eq!(auth.get("timeout").and_then(Value::as_f64), Some(1.0));
    let cluster = v.get("cluster").unwrap();
    assert_eq!(
        cluster
            .get("authorization")
            .and_then(|a| a.get("timeout"))
            .and_then(Value::as_f64),
        Some(0.5)
    );
    let routes: Vec<&str> = cluster
        .get("routes")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        routes,
        [
            "nats-route://route_user:T0pS3cr3t@127.0.0.1:6223",
            "nats-route://route_user:T0pS3cr3t@127.0.0.1:6224"
        ]
    );
    assert_eq!(v.get("debug").and_then(Value::as_bool), Some(false));
    assert_eq!(v.get("logtime").and_then(Value::as_bool), Some(true));
    assert_eq!(
        v.get("pid_file").and_then(Value::as_str),
        Some("/tmp/nats-server.pid")
    );
    assert_eq!(
        v.get("max_pending").and_then(Value::as_i64),
        Some(10_000_000)
    );
    assert_eq!(
        v.get("ping_interval").unwrap().as_duration(),
        Ok(Duration::from_secs(120))
    );
    assert_eq!(
        v.get("lame_duck_grace_period").unwrap().as_duration(),
        Ok(Duration::from_secs(10))
    );
    assert_eq!(
        v.get("lame_duck_duration").unwrap().as_duration(),
        Ok(Duration::from_secs(30))
    );
    let keys: Vec<&str> = v.as_map().unwrap().keys().collect();
    assert_eq!(keys.first(), Some(&"port"));
    assert_eq!(keys.last(), Some(&"lame_duck_grace_period"));
}

/// Cheap deterministic xorshift so the fuzz test needs no extra crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_input_never_panics() {
    // Biased towards the language's own characters so the parser gets deep.
    const ALPHABET: &[u8] = b"{}[]()=:;,#/$\"'\\ \t\r\n\n\nabcxyzktmb0123456789.-+_2a$eTZ\x00\xff";
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..20_000 {
        let len = (rng.next() % 64) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let r = rng.next();
                if round % 4 == 0 {
                    r as u8
                } else {
                    ALPHABET[(r % ALPHABET.len() as u64) as usize]
                }
            })
            .collect();
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = parse_str(&text, None) {
            // errors must always be printable
            let _ = e.to_string();
            let _ = e.located();
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let text = format!("a = {}", "[".repeat(100_000));
    let err = parse_str(&text, None).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Nesting);
    let text = format!("a {}", "{ b ".repeat(100_000));
    assert_eq!(parse_str(&text, None).unwrap_err().kind, ErrorKind::Nesting);
}

#[test]
fn leafnodes_block_fills_the_options() {
    let dir = scratch_dir("leafnodes");
    let f = dir.join("leaf.conf");
    std::fs::write(
        &f,
        r#"
accounts { A { users [ { user: a, password: a } ] } }
leafnodes {
  listen: "127.0.0.1:7422"
  advertise: "leaf.example.com:7000"
  no_advertise: true
  reconnect: 3
  authorization {
    timeout: 0.5
    users [ { user: l1, password: p1, account: A }, { user: l2, password: p2 } ]
  }
  remotes [
    { url: "nats-leaf://u:p@hub1:7422", account: A, deny_imports: ["x.>"], deny_exports: "y.>" }
    { urls: ["nats://hub2:7422", "nats://hub3:7422"], hub: true, no_randomize: true }
  ]
}
"#,
    )
    .unwrap();
    let mut o = crate::options::Options::default();
    apply::load_file(&f, &mut o).expect("valid leafnodes block");
    let l = &o.leaf;
    assert_eq!((l.host.as_str(), l.port), ("127.0.0.1", 7422));
    assert_eq!(l.advertise, "leaf.example.com:7000");
    assert!(l.no_advertise);
    assert_eq!(l.reconnect, Duration::from_secs(3));
    assert_eq!(l.auth_timeout, Duration::from_millis(500));
    assert_eq!(l.users.len(), 2);
    assert_eq!(
        (l.users[0].username.as_str(), l.users[0].account.as_str()),
        ("l1", "A")
    );
    assert_eq!(l.users[1].account, "");
    assert_eq!(l.remotes.len(), 2);
    let r = &l.remotes[0];
    assert_eq!(r.urls, vec!["nats-leaf://u:p@hub1:7422".to_string()]);
    assert_eq!(r.account, "A");
    assert_eq!(r.deny_imports, vec!["x.>".to_string()]);
    assert_eq!(r.deny_exports, vec!["y.>".to_string()]);
    let r = &l.remotes[1];
    assert_eq!(r.urls.len(), 2);
    assert!(r.hub && r.no_randomize);
    assert!(apply::validate_leaf(&o).is_ok());
    o.leaf.remotes[0].account = "NOPE".into();
    assert_eq!(
        apply::validate_leaf(&o).unwrap_err(),
        "cannot find local account \"NOPE\" specified in leafnode remote"
    );
}
