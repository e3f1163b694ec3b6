//! Recursive-descent parser: maps, arrays, scalars, `$variables` and
//! `include`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{ConfigError, ErrorKind};
use super::lexer::{
    ends_bare, ends_key, ends_variable, ends_word, is_space, show_char, Ctx, Cursor,
};
use super::value::{Kind, Map, Pos, Value};

/// Bounds recursion through nested maps/arrays, includes and environment
/// variables so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 200;

pub(crate) struct Parser {
    cur: Cursor,
    /// Maps currently being built, outermost first; `$NAME` looks here from
    /// the innermost outwards.
    scopes: Vec<Map>,
    depth: usize,
}

/// Reads a file the way the reference reports failures
/// (`open x.conf: no such file or directory`, `read d: is a directory`).
pub(crate) fn read_file(path: &Path, pos: Pos) -> Result<String, ConfigError> {
    if path.is_dir() {
        return Err(ConfigError::io(
            pos,
            format!("read {}: is a directory", path.display()),
        ));
    }
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => Err(ConfigError::io(
            pos,
            format!("open {}: {}", path.display(), io_text(&e)),
        )),
    }
}

/// Go prints the bare strerror text in lower case.
fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl Parser {
    pub(crate) fn new(text: &str, origin: Option<&Path>, depth: usize) -> Self {
        Parser {
            cur: Cursor::new(text, origin.map(|p| Arc::new(p.to_path_buf()))),
            scopes: Vec::new(),
            depth,
        }
    }

    /// Parses a whole document into its top-level map.
    pub(crate) fn parse_document(mut self) -> Result<Map, ConfigError> {
        self.scopes.push(Map::new());
        self.body(Ctx::Top)?;
        Ok(self.scopes.pop().unwrap_or_default())
    }

    fn enter(&mut self) -> Result<(), ConfigError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let msg = "Maximum nesting depth exceeded".to_string();
            return Err(ConfigError::new(
                ErrorKind::Nesting,
                self.cur.pos(),
                msg.clone(),
                msg,
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn end_message(ctx: Ctx, got: Option<char>) -> String {
        match ctx {
            Ctx::Top => format!(
                "Expected a top-level value to end with a new line, comment or EOF, but got {} instead.",
                show_char(got)
            ),
            Ctx::Map => format!(
                "Expected a map value terminator \",\" or a map terminator \"}}\", but got {} instead.",
                show_char(got)
            ),
            Ctx::Array => format!(
                "Expected an array value terminator \",\" or an array terminator \"]\", but got {} instead.",
                show_char(got)
            ),
        }
    }

    fn end_error(&self, ctx: Ctx) -> ConfigError {
        self.cur.error_here(Self::end_message(ctx, self.cur.peek()))
    }

    fn map_eof(&self) -> ConfigError {
        self.cur.error_here("Unexpected EOF processing map.".into())
    }

    fn insert(&mut self, key: String, key_pos: Pos, value: Value) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(key, key_pos, value);
        }
    }

    /// Entries of the top level (`Ctx::Top`) or of a `{ }` map whose opening
    /// brace has been consumed (`Ctx::Map`; consumes the closing brace).
    /// Entries go into the innermost scope.
    fn body(&mut self, ctx: Ctx) -> Result<(), ConfigError> {
        loop {
            self.cur.skip_space_and_comments();
            match self.cur.peek() {
                None if ctx == Ctx::Map => return Err(self.map_eof()),
                None => return Ok(()),
                Some('}') if ctx == Ctx::Map => {
                    self.cur.bump();
                    return Ok(());
                }
                // Optional braces around the whole document.
                Some('{') if ctx == Ctx::Top => {
                    self.cur.bump();
                    self.enter()?;
                    self.body(Ctx::Map)?;
                    self.leave();
                    self.value_end(ctx)?;
                }
                Some(c @ ('=' | ':')) => {
                    let dot = if ctx == Ctx::Map { "." } else { "" };
                    return Err(self.cur.error_here(format!(
                        "Unexpected key separator {}{}",
                        show_char(Some(c)),
                        dot
                    )));
                }
                // Stray separators between entries are harmless.
                Some(';' | ',') => {
                    self.cur.bump();
                }
                Some(_) => self.entry(ctx)?,
            }
        }
    }

    /// One `key [sep] value` entry (or an include).
    fn entry(&mut self, ctx: Ctx) -> Result<(), ConfigError> {
        let quoted = matches!(self.cur.peek(), Some('"' | '\''));
        let (key, key_pos) = match self.cur.peek() {
            Some('"') => {
                let pos = self.next_pos();
                (self.cur.double_quoted()?, pos)
            }
            Some('\'') => {
                let pos = self.next_pos();
                (self.cur.single_quoted()?, pos)
            }
            _ => {
                let pos = self.cur.pos();
                (self.cur.bare_word(false, ends_key), pos)
            }
        };
        if !quoted && key.eq_ignore_ascii_case("include") {
            return self.include(ctx);
        }

        self.cur.skip_blanks();
        match self.cur.peek() {
            Some('=' | ':') => {
                self.cur.bump();
                self.cur.skip_blanks();
                if self.cur.peek() == Some('\n') {
                    return Err(self
                        .cur
                        .error_here("Expected value but found new line".into()));
                }
            }
            Some('{') => {}
            Some('\n') => self.cur.skip_space_and_comments(),
            _ => {}
        }
        match self.cur.peek() {
            // A key without a value: nothing to record.
            None if ctx == Ctx::Map => return Err(self.map_eof()),
            None => return Ok(()),
            Some('}') if ctx == Ctx::Map => return Ok(()),
            _ => {}
        }
        let value = self.value(ctx)?;
        self.insert(key, key_pos, value);
        self.value_end(ctx)
    }

    /// Position of the character after the one under the cursor (the
    /// reference positions quoted text at its first character).
    fn next_pos(&self) -> Pos {
        let mut p = self.cur.pos();
        p.col += 1;
        p
    }

    /// After a value in a map or at the top level: blanks, then a newline,
    /// `;`, `,`, a comment, the map's `}` or the end of input.
    fn value_end(&mut self, ctx: Ctx) -> Result<(), ConfigError> {
        self.cur.skip_blanks();
        match self.cur.peek() {
            None => Ok(()),
            Some('\n' | ';' | ',') => {
                self.cur.bump();
                Ok(())
            }
            _ if self.cur.at_comment() => {
                self.cur.skip_comment();
                Ok(())
            }
            Some('}') if ctx == Ctx::Map => Ok(()),
            // The reference tolerates a stray `}` after a top-level value.
            Some('}') if ctx == Ctx::Top => {
                self.cur.bump();
                Ok(())
            }
            _ => Err(self.end_error(ctx)),
        }
    }

    fn include(&mut self, ctx: Ctx) -> Result<(), ConfigError> {
        self.cur.skip_blanks();
        let pos = self.cur.pos();
        let path = match self.cur.peek() {
            None | Some('\n') => {
                return Err(self
                    .cur
                    .error_here("Expected include value but found new line".into()))
            }
            Some('"') => self.cur.double_quoted()?,
            Some('\'') => self.cur.single_quoted()?,
            Some(_) => self.cur.bare_word(true, is_space),
        };
        let full = resolve_include(self.cur.file().as_deref().map(|p| p.as_path()), &path);
        self.enter()?;
        let included = parse_file_at(&full, pos, self.depth).map_err(|e| e.in_include(&path))?;
        self.leave();
        if let Some(scope) = self.scopes.last_mut() {
            for entry in included.entries().iter().cloned() {
                scope.insert_entry(entry);
            }
        }
        self.value_end(ctx)
    }

    fn value(&mut self, ctx: Ctx) -> Result<Value, ConfigError> {
        let pos = self.cur.pos();
        let kind = match self.cur.peek() {
            None => return Err(self.cur.error_here("Unexpected EOF.".into())),
            Some('\n') => {
                return Err(self
                    .cur
                    .error_here("Expected value but found new line".into()))
            }
            Some('[') => return self.array(),
            Some('{') => {
                self.cur.bump();
                self.enter()?;
                self.scopes.push(Map::new());
                let res = self.body(Ctx::Map);
                let map = self.scopes.pop().unwrap_or_default();
                res?;
                self.leave();
                // The reference places a map that is an array element just past its
                // closing brace (where its map-end item is), and reports errors there.
                if ctx == Ctx::Array {
                    return Ok(Value::new(Kind::Map(map), self.cur.pos()));
                }
                Kind::Map(map)
            }
            Some('"') => {
                let pos = self.next_pos();
                let s = self.cur.double_quoted()?;
                return Ok(Value::new(Kind::String(s), pos));
            }
            Some('\'') => {
                let pos = self.next_pos();
                let s = self.cur.single_quoted()?;
                return Ok(Value::new(Kind::String(s), pos));
            }
            Some('(') => Kind::String(self.cur.block()?),
            // bcrypt hashes (`$2a$11$...`) are values, not variables.
            Some('$') if !self.cur.starts_with("$2a$") => return self.variable(),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(ctx)?,
            Some('.') => return Err(self.cur.error_here("Floats must start with a digit".into())),
            Some(']') if ctx != Ctx::Array => return Err(self.end_error(ctx)),
            Some(_) => {
                let word = self.cur.bare_word(true, |c| ends_word(c, ctx));
                match word.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "on" => Kind::Bool(true),
                    "false" | "no" | "off" => Kind::Bool(false),
                    _ => Kind::String(word),
                }
            }
        };
        Ok(Value::new(kind, pos))
    }

    fn array(&mut self) -> Result<Value, ConfigError> {
        let pos = self.cur.pos();
        self.cur.bump();
        self.enter()?;
        let mut items = Vec::new();
        loop {
            self.cur.skip_space_and_comments();
            match self.cur.peek() {
                Some(']') => {
                    self.cur.bump();
                    break;
                }
                Some(',') => {
                    return Err(self
                        .cur
                        .error_here("Unexpected array value terminator ','.".into()))
                }
                None => return Err(self.end_error(Ctx::Array)),
                Some(_) => items.push(self.value(Ctx::Array)?),
            }
            self.cur.skip_blanks();
            match self.cur.peek() {
                Some(',' | '\n') => {
                    self.cur.bump();
                }
                Some(']') => {
                    self.cur.bump();
                    break;
                }
                _ if self.cur.at_comment() => self.cur.skip_comment(),
                _ => return Err(self.end_error(Ctx::Array)),
            }
        }
        self.leave();
        Ok(Value::new(Kind::Array(items), pos))
    }

    /// `$NAME`: the innermost enclosing map that already defines NAME, else
    /// the environment variable NAME parsed as a value.
    fn variable(&mut self) -> Result<Value, ConfigError> {
        let pos = self.cur.pos();
        self.cur.bump();
        let name = self.cur.bare_word(false, ends_variable);
        for scope in self.scopes.iter_mut().rev() {
            if let Some(entry) = scope.entry_mut(&name) {
                entry.used_as_variable = true;
                let mut v = entry.value.clone();
                v.pos = pos;
                return Ok(v);
            }
        }
        let not_found = || {
            let msg = format!(
                "variable reference for '{}' on line {} can not be found",
                name, pos.line
            );
            ConfigError::new(ErrorKind::Variable, pos.clone(), msg.clone(), msg)
        };
        // std::env::var rejects (and may panic on) names containing these.
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(not_found());
        }
        let Ok(text) = std::env::var(&name) else {
            return Err(not_found());
        };
        self.enter()?;
        let parsed = Parser::new(&format!("pkey={}", text), None, self.depth).parse_document();
        self.leave();
        match parsed {
            Ok(map) => match map.get("pkey") {
                Some(v) => {
                    let mut v = v.clone();
                    v.pos = pos;
                    Ok(v)
                }
                None => Err(not_found()),
            },
            Err(inner) => {
                let msg = format!(
                    "variable reference for '{}' on line {} could not be parsed: {}",
                    name, pos.line, inner
                );
                Err(ConfigError::new(ErrorKind::Variable, pos, msg.clone(), msg))
            }
        }
    }

    /// Numbers, size-suffixed integers, ISO8601 datetimes, and words that
    /// merely start with a digit (`127.0.0.1:4222`, `2s`), which are strings.
    fn number(&mut self, ctx: Ctx) -> Result<Kind, ConfigError> {
        let start = self.cur.pos();
        let mut text = String::new();
        let negative = self.cur.peek() == Some('-');
        if negative {
            self.cur.bump();
            text.push('-');
            if !self.cur.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.cur.error_here(format!(
                    "Expected a digit but got {}.",
                    show_char(self.cur.peek())
                )));
            }
        }
        let ends = |c: char| ends_bare(c, ctx);
        let at_end = |cur: &Cursor| cur.peek().is_none_or(ends);
        self.digits(&mut text);
        match self.cur.peek() {
            Some('.') => {
                self.cur.bump();
                text.push('.');
                if !self.cur.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Err(self.cur.error_here(format!(
                        "Floats must have a digit after the '.', but got {} instead.",
                        show_char(self.cur.peek())
                    )));
                }
                self.digits(&mut text);
                if self.cur.peek() == Some('.') {
                    // An IP address (optionally with a port): a string made
                    // only of digits and `.:-`, as the reference lexes it.
                    self.cur.bare_continue(&mut text, |c| {
                        !(c.is_ascii_digit() || matches!(c, '.' | ':' | '-'))
                    });
                    if !at_end(&self.cur) {
                        return Err(self.end_error(ctx));
                    }
                    return Ok(Kind::String(text));
                }
                if !at_end(&self.cur) {
                    return Err(self.end_error(ctx));
                }
                match text.parse::<f64>() {
                    Ok(f) => Ok(Kind::Float(f)),
                    Err(_) => Ok(Kind::String(text)),
                }
            }
            Some('-') if !negative => self.datetime(text, ctx),
            Some(c) if size_unit(c).is_some() => {
                let mut mult = size_unit(c).unwrap_or(1);
                let digits_only = text.clone();
                self.cur.bump();
                text.push(c);
                // `k` is decimal; `kb`, `ki` and `kib` are binary.
                let power = match c.to_ascii_lowercase() {
                    'k' => 1,
                    'm' => 2,
                    'g' => 3,
                    't' => 4,
                    'p' => 5,
                    _ => 6,
                };
                match self.cur.peek() {
                    Some(b @ ('b' | 'B')) => {
                        self.cur.bump();
                        text.push(b);
                        mult = 1i64 << (10 * power);
                    }
                    Some(i @ ('i' | 'I')) => {
                        self.cur.bump();
                        text.push(i);
                        mult = 1i64 << (10 * power);
                        if let Some(b @ ('b' | 'B')) = self.cur.peek() {
                            self.cur.bump();
                            text.push(b);
                        }
                    }
                    _ => {}
                }
                if at_end(&self.cur) {
                    let n = parse_int(&digits_only, &start)?;
                    return n
                        .checked_mul(mult)
                        .map(Kind::Integer)
                        .ok_or_else(|| out_of_range(&text, &start));
                }
                if self.cur.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Err(self.end_error(ctx));
                }
                self.cur.bare_continue(&mut text, ends);
                Ok(Kind::String(text))
            }
            // The reference's lexer does not end an unsigned integer at `]`: `[1]` reads
            // the string "1]" and then misses the array's end (`[-1]` is fine).
            Some(']') if ctx == Ctx::Array && !negative => {
                self.cur.bump();
                text.push(']');
                self.cur.bare_continue(&mut text, |c| ends_word(c, ctx));
                Ok(Kind::String(text))
            }
            _ if at_end(&self.cur) => Ok(Kind::Integer(parse_int(&text, &start)?)),
            _ => {
                self.cur.bare_continue(&mut text, ends);
                Ok(Kind::String(text))
            }
        }
    }

    fn digits(&mut self, text: &mut String) {
        while let Some(c) = self.cur.peek().filter(|c| c.is_ascii_digit()) {
            text.push(c);
            self.cur.bump();
        }
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`; `year` holds the digits read so far.
    fn datetime(&mut self, year: String, ctx: Ctx) -> Result<Kind, ConfigError> {
        let zulu = "All ISO8601 dates must be in full Zulu form.";
        if year.len() != 4 {
            return Err(self.cur.error_here(zulu.into()));
        }
        let mut text = year;
        for want in "-DD-DDTDD:DD:DDZ".chars() {
            let got = self.cur.peek();
            let ok = match want {
                'D' => got.is_some_and(|c| c.is_ascii_digit()),
                w => got == Some(w),
            };
            if !ok {
                return Err(self.cur.error_here(match want {
                    'T' | 'Z' => format!(
                        "Expected '{}' in ISO8601 datetime, but found {} instead.",
                        want,
                        show_char(got)
                    ),
                    _ => zulu.into(),
                }));
            }
            if let Some(c) = self.cur.bump() {
                text.push(c);
            }
        }
        if !self.cur.peek().is_none_or(|c| ends_bare(c, ctx)) {
            return Err(self.end_error(ctx));
        }
        Ok(Kind::DateTime(text))
    }
}

fn size_unit(c: char) -> Option<i64> {
    Some(match c.to_ascii_lowercase() {
        'k' => 1_000,
        'm' => 1_000_000,
        'g' => 1_000_000_000,
        't' => 1_000_000_000_000,
        'p' => 1_000_000_000_000_000,
        'e' => 1_000_000_000_000_000_000,
        _ => return None,
    })
}

fn parse_int(text: &str, pos: &Pos) -> Result<i64, ConfigError> {
    text.parse::<i64>().map_err(|_| out_of_range(text, pos))
}

fn out_of_range(text: &str, pos: &Pos) -> ConfigError {
    let msg = format!("integer '{}' is out of the range", text);
    ConfigError::new(ErrorKind::Range, pos.clone(), msg.clone(), msg)
}

/// Include paths are relative to the including file's directory (or the
/// current directory for text without an origin).
pub(crate) fn resolve_include(origin: Option<&Path>, include: &str) -> PathBuf {
    let p = Path::new(include);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match origin.and_then(Path::parent) {
        Some(dir) => dir.join(p),
        None => p.to_path_buf(),
    }
}

/// Reads and parses `path`; `pos` is blamed for I/O failures.
pub(crate) fn parse_file_at(path: &Path, pos: Pos, depth: usize) -> Result<Map, ConfigError> {
    let text = read_file(path, pos)?;
    Parser::new(&text, Some(path), depth).parse_document()
}
