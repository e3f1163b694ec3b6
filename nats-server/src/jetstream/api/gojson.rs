//! Go's encoding/json error texts, for answers that quote them (`400 Bad Request - …` of
//! a pull request): the scanner's syntax errors and the decoder's type errors.

use serde_json::Value;

/// Go's quoteChar: `'x'`, `'\''`, `'"'`, or a quoted escape for control characters.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".to_string(),
        b'"' => "'\"'".to_string(),
        0x20..=0x7e => format!("'{}'", c as char),
        _ => format!("\"\\x{c:02x}\""),
    }
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

type R = Result<(), String>;

impl Scan<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn bad(c: u8, ctx: &str) -> String {
        format!("invalid character {} {ctx}", quote_char(c))
    }

    fn value(&mut self) -> R {
        self.ws();
        let Some(c) = self.peek() else {
            return Err(EOF.into());
        };
        match c {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => Err(Self::bad(c, "looking for beginning of value")),
        }
    }

    fn literal(&mut self, word: &[u8]) -> R {
        for (k, w) in word.iter().enumerate() {
            match self.peek() {
                None => return Err(EOF.into()),
                Some(c) if c != *w => {
                    return Err(Self::bad(
                        c,
                        &format!(
                            "in literal {} (expecting {})",
                            String::from_utf8_lossy(word),
                            quote_char(word[k])
                        ),
                    ))
                }
                _ => self.i += 1,
            }
        }
        Ok(())
    }

    fn number(&mut self) -> R {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            None => return Err(EOF.into()),
            Some(b'0'..=b'9') => {}
            Some(c) => return Err(Self::bad(c, "in numeric literal")),
        }
        while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+') = self.peek() {
            self.i += 1;
        }
        Ok(())
    }

    fn string(&mut self) -> R {
        self.i += 1;
        loop {
            let Some(c) = self.peek() else {
                return Err(EOF.into());
            };
            self.i += 1;
            match c {
                b'"' => return Ok(()),
                b'\\' => match self.peek() {
                    None => return Err(EOF.into()),
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' | b'u') => {
                        self.i += 1
                    }
                    Some(e) => return Err(Self::bad(e, "in string escape code")),
                },
                0..=0x1f => return Err(Self::bad(c, "in string literal")),
                _ => {}
            }
        }
    }

    fn object(&mut self) -> R {
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            match self.peek() {
                None => return Err(EOF.into()),
                Some(b'"') => self.string()?,
                Some(c) => return Err(Self::bad(c, "looking for beginning of object key string")),
            }
            self.ws();
            match self.peek() {
                None => return Err(EOF.into()),
                Some(b':') => self.i += 1,
                Some(c) => return Err(Self::bad(c, "after object key")),
            }
            self.value()?;
            self.ws();
            match self.peek() {
                None => return Err(EOF.into()),
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(c) => return Err(Self::bad(c, "after object key:value pair")),
            }
        }
    }

    fn array(&mut self) -> R {
        self.i += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value()?;
            self.ws();
            match self.peek() {
                None => return Err(EOF.into()),
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(c) => return Err(Self::bad(c, "after array element")),
            }
        }
    }
}

const EOF: &str = "unexpected end of JSON input";

/// Go's syntax error for `input`, or None when it is well-formed JSON.
pub fn syntax_error(input: &[u8]) -> Option<String> {
    let mut s = Scan { b: input, i: 0 };
    if let Err(e) = s.value() {
        return Some(e);
    }
    s.ws();
    s.peek().map(|c| Scan::bad(c, "after top-level value"))
}

/// The Go types of struct fields, for type errors.
#[derive(Clone, Copy)]
pub enum GoType {
    Int,
    Duration,
    Bool,
}

/// Go's UnmarshalTypeError for the first field of `v` (an object) whose JSON kind does
/// not fit its Go type: `json: cannot unmarshal string into Go struct field
/// <Struct>.<field> of type int`.
pub fn type_error(v: &Value, strukt: &str, fields: &[(&str, GoType)]) -> Option<String> {
    let obj = v.as_object()?;
    for (name, val) in obj {
        let Some((_, t)) = fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(name)) else {
            continue;
        };
        let go = match t {
            GoType::Int => "int",
            GoType::Duration => "time.Duration",
            GoType::Bool => "bool",
        };
        let kind = match (val, t) {
            (Value::Null, _) => continue,
            (Value::Bool(_), GoType::Bool) => continue,
            (Value::Number(n), GoType::Int | GoType::Duration) if n.is_i64() => continue,
            (Value::Number(n), _) => format!("number {n}"),
            (Value::String(_), _) => "string".to_string(),
            (Value::Bool(_), _) => "bool".to_string(),
            (Value::Array(_), _) => "array".to_string(),
            (Value::Object(_), _) => "object".to_string(),
        };
        let kind = if matches!(t, GoType::Bool) && kind.starts_with("number") {
            "number".to_string()
        } else {
            kind
        };
        return Some(format!(
            "json: cannot unmarshal {kind} into Go struct field {strukt}.{name} of type {go}"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_in_go_words() {
        assert_eq!(
            syntax_error(b"{bad}").as_deref(),
            Some("invalid character 'b' looking for beginning of object key string")
        );
        assert_eq!(
            syntax_error(br#"{"a" 1}"#).as_deref(),
            Some("invalid character '1' after object key")
        );
        assert_eq!(
            syntax_error(br#"{"a":1 "b":2}"#).as_deref(),
            Some("invalid character '\"' after object key:value pair")
        );
        assert_eq!(syntax_error(br#"{"a":"#).as_deref(), Some(EOF));
        assert_eq!(
            syntax_error(br#"{"a":tru}"#).as_deref(),
            Some("invalid character '}' in literal true (expecting 'e')")
        );
        assert_eq!(syntax_error(br#"{"a":[1,2]}"#), None);
    }

    #[test]
    fn type_errors_in_go_words() {
        let v: Value = serde_json::from_str(r#"{"batch":"x"}"#).unwrap();
        assert_eq!(
            type_error(&v, "JSApiConsumerGetNextRequest", &[("batch", GoType::Int)]).as_deref(),
            Some("json: cannot unmarshal string into Go struct field JSApiConsumerGetNextRequest.batch of type int")
        );
        let v: Value = serde_json::from_str(r#"{"batch":1.5}"#).unwrap();
        assert_eq!(
            type_error(&v, "S", &[("batch", GoType::Int)]).as_deref(),
            Some("json: cannot unmarshal number 1.5 into Go struct field S.batch of type int")
        );
        let v: Value = serde_json::from_str(r#"{"no_wait":1}"#).unwrap();
        assert_eq!(
            type_error(&v, "S", &[("no_wait", GoType::Bool)]).as_deref(),
            Some("json: cannot unmarshal number into Go struct field S.no_wait of type bool")
        );
    }
}
