//! The value tree produced by the configuration parser.
//!
//! Every node remembers where it came from so option validation can report
//! `<file>:<line>:<col>: <message>` like the reference server.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A source position. `line` and `col` are both 1-based and point at the
/// first character of the token (for quoted text: the first character after
/// the opening quote, as the reference does).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub file: Option<Arc<PathBuf>>,
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref().map(|p| p.as_path())
    }

    /// The column as nats-server 2.9 prints it: its lexer counts columns from
    /// 0 on the first line of a file and from 1 on every later line.
    pub fn reference_col(&self) -> u32 {
        if self.line <= 1 {
            self.col.saturating_sub(1)
        } else {
            self.col
        }
    }

    /// `<file>:<line>:<col>` in the reference's style (used as the prefix of
    /// option errors such as `unknown field "x"`).
    pub fn reference_prefix(&self) -> String {
        let file = self
            .file()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        format!("{}:{}:{}", file, self.line, self.reference_col())
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.file() {
            Some(p) => write!(f, "{}:{}:{}", p.display(), self.line, self.col),
            None => write!(f, "{}:{}", self.line, self.col),
        }
    }
}

/// One node of the configuration tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub kind: Kind,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Map(Map),
    Array(Vec<Value>),
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    /// An ISO8601 Zulu timestamp (`2024-01-01T00:00:00Z`), kept as written.
    DateTime(String),
}

/// One `key = value` entry of a map.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Value,
    /// Set when some `$key` reference resolved to this entry. The reference
    /// server does not report such entries as unknown fields.
    pub used_as_variable: bool,
}

/// An insertion-ordered map. A repeated key replaces the earlier value (the
/// last definition wins, as in the reference) but keeps its first slot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map {
    entries: Vec<Entry>,
}

impl Map {
    pub fn new() -> Self {
        Map::default()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn entries_mut(&mut self) -> &mut [Entry] {
        &mut self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|e| (e.key.as_str(), &e.value))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.key.as_str())
    }

    /// Exact-case lookup.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entry(key).map(|e| &e.value)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    pub(crate) fn entry_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.key == key)
    }

    /// ASCII case-insensitive lookup; the reference matches option names
    /// case-insensitively. If several keys match, the last one wins.
    pub fn get_ci(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.key.eq_ignore_ascii_case(key))
            .map(|e| &e.value)
    }

    pub fn insert(&mut self, key: String, key_pos: Pos, value: Value) {
        if let Some(e) = self.entry_mut(&key) {
            e.key_pos = key_pos;
            e.value = value;
            e.used_as_variable = false;
        } else {
            self.entries.push(Entry {
                key,
                key_pos,
                value,
                used_as_variable: false,
            });
        }
    }

    pub(crate) fn insert_entry(&mut self, entry: Entry) {
        if let Some(e) = self.entry_mut(&entry.key) {
            *e = entry;
        } else {
            self.entries.push(entry);
        }
    }
}

impl Value {
    pub fn new(kind: Kind, pos: Pos) -> Self {
        Value { kind, pos }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match &self.kind {
            Kind::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    /// Integers, including size-suffixed ones (`1mb` is already 1048576).
    pub fn as_i64(&self) -> Option<i64> {
        match self.kind {
            Kind::Integer(i) => Some(i),
            _ => None,
        }
    }

    /// Floats, and integers widened to floats (`timeout: 2` is allowed where
    /// the reference expects seconds as a number).
    pub fn as_f64(&self) -> Option<f64> {
        match self.kind {
            Kind::Float(f) => Some(f),
            Kind::Integer(i) => Some(i as f64),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.kind {
            Kind::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// Map member by exact key; `None` if this is not a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// Map member by case-insensitive key.
    pub fn get_ci(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get_ci(key))
    }

    /// Array element; `None` if this is not an array or out of range.
    pub fn index(&self, i: usize) -> Option<&Value> {
        self.as_array().and_then(|a| a.get(i))
    }

    /// The Go type name the reference prints in conversion errors
    /// (`interface {} is string, not int64`).
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Map(_) => "map[string]interface {}",
            Kind::Array(_) => "[]interface {}",
            Kind::String(_) => "string",
            Kind::Integer(_) => "int64",
            Kind::Float(_) => "float64",
            Kind::Bool(_) => "bool",
            Kind::DateTime(_) => "time.Time",
        }
    }

    /// Interprets the value as a duration the way the reference does for
    /// options like `ping_interval`: a Go duration string (`"2s"`,
    /// `"1m30s"`, `"500ms"`) or a bare integer meaning seconds. Errors carry
    /// Go's wording (`time: invalid duration "x"`).
    pub fn as_duration(&self) -> Result<Duration, String> {
        match &self.kind {
            Kind::String(s) => parse_duration(s),
            Kind::Integer(i) if *i >= 0 => Ok(Duration::from_secs(*i as u64)),
            Kind::Integer(i) => Err(format!("negative duration {}s", i)),
            _ => Err(format!(
                "interface conversion: interface {{}} is {}, not string",
                self.type_name()
            )),
        }
    }
}

/// Parses Go `time.ParseDuration` syntax: an optional sign, then one or more
/// `<number><unit>` groups with units ns, us (µs, μs), ms, s, m, h; `"0"`
/// alone is allowed. Negative durations are rejected (std has none).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {}", go_quote_str(text));
    let mut s = text;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total_nanos: u128 = 0;
    while !s.is_empty() {
        // number: digits, optional fraction
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(s.len());
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        if unit.is_empty() {
            return Err(format!(
                "time: missing unit in duration {}",
                go_quote_str(text)
            ));
        }
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote_str(unit),
                    go_quote_str(text)
                ))
            }
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut nanos = whole.checked_mul(scale).ok_or_else(invalid)?;
        // Fraction digits beyond nanosecond precision are simply dropped.
        let mut frac_scale = scale;
        for d in frac_part.bytes() {
            frac_scale /= 10;
            if frac_scale == 0 {
                break;
            }
            nanos += u128::from(d - b'0') * frac_scale;
        }
        total_nanos = total_nanos.checked_add(nanos).ok_or_else(invalid)?;
    }
    if total_nanos > i64::MAX as u128 {
        return Err(invalid());
    }
    if negative && total_nanos != 0 {
        return Err(format!("negative duration {}", text));
    }
    Ok(Duration::from_nanos(total_nanos as u64))
}

/// Quotes a string the way Go's `%q` does for the texts that show up in
/// error messages (non-printable bytes as `\xNN`).
pub(crate) fn go_quote_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // Go's time.quote escapes control and non-ASCII bytes alike.
            c if (c as u32) < 0x20 || c as u32 >= 0x7f => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{:02x}", b));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::new(Kind::String(text.to_string()), Pos::default())
    }

    #[test]
    fn durations() {
        let ok = [
            ("2s", Duration::from_secs(2)),
            ("1m30s", Duration::from_secs(90)),
            ("500ms", Duration::from_millis(500)),
            ("2h", Duration::from_secs(7200)),
            ("1.5s", Duration::from_millis(1500)),
            ("0", Duration::ZERO),
            ("10us", Duration::from_micros(10)),
            ("3ns", Duration::from_nanos(3)),
            ("1h2m3s4ms", Duration::from_millis(3_723_004)),
        ];
        for (text, want) in ok {
            assert_eq!(s(text).as_duration(), Ok(want), "{text}");
        }
        let int = Value::new(Kind::Integer(5), Pos::default());
        assert_eq!(int.as_duration(), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn duration_errors_use_go_wording() {
        assert_eq!(
            s("5x").as_duration().unwrap_err(),
            r#"time: unknown unit "x" in duration "5x""#
        );
        assert_eq!(
            s("5").as_duration().unwrap_err(),
            r#"time: missing unit in duration "5""#
        );
        assert_eq!(
            s("abc").as_duration().unwrap_err(),
            r#"time: invalid duration "abc""#
        );
        assert_eq!(
            s("").as_duration().unwrap_err(),
            r#"time: invalid duration """#
        );
        let b = Value::new(Kind::Bool(true), Pos::default());
        assert!(b.as_duration().is_err());
    }

    #[test]
    fn reference_columns() {
        let p = Pos {
            file: Some(Arc::new(PathBuf::from("t.conf"))),
            line: 1,
            col: 1,
        };
        assert_eq!(p.reference_prefix(), "t.conf:1:0");
        let p = Pos {
            line: 3,
            col: 3,
            ..p
        };
        assert_eq!(p.reference_prefix(), "t.conf:3:3");
        assert_eq!(p.to_string(), "t.conf:3:3");
    }
}
