//! Character-level scanning for the configuration language.
//!
//! The language is context sensitive (which characters end a bare word
//! depends on whether we are inside a map or an array), so instead of a
//! separate token stream the parser drives this cursor directly and uses the
//! scanners below for the self-contained pieces: quoted strings, block
//! strings, bare words and comments.

use std::path::PathBuf;
use std::sync::Arc;

use super::error::ConfigError;
use super::value::Pos;

/// Where a value appears; decides which characters terminate bare words and
/// which "expected a terminator" message is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ctx {
    Top,
    Map,
    Array,
}

pub(crate) struct Cursor {
    chars: Vec<char>,
    idx: usize,
    line: u32,
    col: u32,
    file: Option<Arc<PathBuf>>,
}

impl Cursor {
    pub(crate) fn new(text: &str, file: Option<Arc<PathBuf>>) -> Self {
        Cursor {
            chars: text.chars().collect(),
            idx: 0,
            line: 1,
            col: 1,
            file,
        }
    }

    pub(crate) fn file(&self) -> Option<Arc<PathBuf>> {
        self.file.clone()
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.chars.get(self.idx).copied()
    }

    pub(crate) fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.idx + ahead).copied()
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.idx += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    pub(crate) fn pos(&self) -> Pos {
        Pos {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
        }
    }

    pub(crate) fn starts_with(&self, s: &str) -> bool {
        let n = s.chars().count();
        self.chars
            .get(self.idx..self.idx + n)
            .is_some_and(|window| window.iter().copied().eq(s.chars()))
    }

    /// A syntax error about the character under the cursor.
    pub(crate) fn error_here(&self, message: String) -> ConfigError {
        let ref_line = self.line + u32::from(self.peek() == Some('\n'));
        ConfigError::parse(self.pos(), ref_line, message)
    }

    pub(crate) fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r')) {
            self.bump();
        }
    }

    /// Skips whitespace including newlines, and comments.
    pub(crate) fn skip_space_and_comments(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r' | '\n') => {
                    self.bump();
                }
                _ if self.at_comment() => self.skip_comment(),
                _ => return,
            }
        }
    }

    /// `#` or `//` start a comment only where a token may start or end.
    pub(crate) fn at_comment(&self) -> bool {
        self.peek() == Some('#') || self.starts_with("//")
    }

    /// Skips to (not past) the end of the line.
    pub(crate) fn skip_comment(&mut self) {
        while !matches!(self.peek(), None | Some('\n')) {
            self.bump();
        }
    }

    /// Collects characters until `stop` says so or the input ends. The first
    /// character is taken unconditionally (the reference accepts e.g. `a = ,`
    /// as the string ",").
    pub(crate) fn bare_word(&mut self, first_free: bool, stop: impl Fn(char) -> bool) -> String {
        let mut out = String::new();
        if first_free {
            if let Some(c) = self.bump() {
                out.push(c);
            }
        }
        self.bare_continue(&mut out, stop);
        out
    }

    pub(crate) fn bare_continue(&mut self, out: &mut String, stop: impl Fn(char) -> bool) {
        while let Some(c) = self.peek() {
            if stop(c) {
                break;
            }
            out.push(c);
            self.bump();
        }
    }

    /// Scans a `"..."` string; the cursor is on the opening quote.
    pub(crate) fn double_quoted(&mut self) -> Result<String, ConfigError> {
        self.bump();
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error_here("Unexpected EOF.".into()));
            };
            match c {
                '"' => {
                    self.bump();
                    break;
                }
                '\\' => {
                    self.bump();
                    let esc = self.peek();
                    let simple = match esc {
                        Some('t') => Some(b'\t'),
                        Some('n') => Some(b'\n'),
                        Some('r') => Some(b'\r'),
                        Some('"') => Some(b'"'),
                        Some('\\') => Some(b'\\'),
                        _ => None,
                    };
                    if let Some(b) = simple {
                        bytes.push(b);
                        self.bump();
                    } else if esc == Some('x') {
                        self.bump();
                        let hi = self.peek().and_then(|c| c.to_digit(16));
                        let lo = self.peek_at(1).and_then(|c| c.to_digit(16));
                        match (hi, lo) {
                            (Some(h), Some(l)) => {
                                bytes.push((h * 16 + l) as u8);
                                self.bump();
                                self.bump();
                            }
                            _ => {
                                let got: String = [self.peek(), self.peek_at(1)]
                                    .into_iter()
                                    .flatten()
                                    .collect();
                                return Err(self.error_here(format!(
                                    "Expected two hexadecimal digits after '\\x', but got '{}'",
                                    got
                                )));
                            }
                        }
                    } else if esc.is_none() {
                        return Err(self.error_here("Unexpected EOF.".into()));
                    } else {
                        return Err(self.error_here(format!(
                            "Invalid escape character {}. Only the following escape \
                             characters are allowed: \\xXX, \\t, \\n, \\r, \\\", \\\\.",
                            show_char(esc)
                        )));
                    }
                }
                c => {
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    self.bump();
                }
            }
        }
        // `\xNN` can produce invalid UTF-8; keep what we can.
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Scans a `'...'` string (no escapes); the cursor is on the quote.
    pub(crate) fn single_quoted(&mut self) -> Result<String, ConfigError> {
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error_here("Unexpected EOF.".into())),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    /// Scans a `( ... )` block: everything after `(` up to a line that
    /// consists of just `)`. The value keeps the newline before the `)`.
    pub(crate) fn block(&mut self) -> Result<String, ConfigError> {
        self.bump();
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error_here("Unexpected EOF processing block.".into())),
                Some('\n')
                    if self.peek_at(1) == Some(')')
                        && matches!(self.peek_at(2), None | Some('\n' | '\r')) =>
                {
                    out.push('\n');
                    self.bump();
                    self.bump();
                    return Ok(out);
                }
                Some(c) => {
                    out.push(c);
                    self.bump();
                }
            }
        }
    }
}

/// Renders a character like Go's `%q` for runes, as the reference's
/// messages do (`'a'`, `'\n'`); end of input is shown as `'\x00'`.
pub(crate) fn show_char(c: Option<char>) -> String {
    match c {
        None => "'\\x00'".to_string(),
        Some('\n') => "'\\n'".to_string(),
        Some('\t') => "'\\t'".to_string(),
        Some('\r') => "'\\r'".to_string(),
        Some('\\') => "'\\\\'".to_string(),
        Some('\'') => "'\\''".to_string(),
        Some(c) if (c as u32) < 0x20 || c as u32 == 0x7f => format!("'\\x{:02x}'", c as u32),
        Some(c) => format!("'{}'", c),
    }
}

pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Characters that end a number-like bare value (after its first
/// character).
pub(crate) fn ends_bare(c: char, ctx: Ctx) -> bool {
    is_space(c)
        || matches!(c, ',' | ';' | '#')
        || (ctx == Ctx::Map && c == '}')
        || (ctx == Ctx::Array && c == ']')
}

/// Characters that end a bare word that did not start like a number: as
/// above, plus `]` anywhere and `}` inside arrays too (the reference rejects
/// `a = x]y` and `[x}y]` but reads `a = 12]` as the string "12]").
pub(crate) fn ends_word(c: char, ctx: Ctx) -> bool {
    ends_bare(c, ctx) || c == ']' || (ctx == Ctx::Array && c == '}')
}

/// Characters that end a `$NAME` reference.
pub(crate) fn ends_variable(c: char) -> bool {
    is_space(c) || matches!(c, ',' | ';' | '#' | '}' | ']')
}

/// Characters that end a bare key.
pub(crate) fn ends_key(c: char) -> bool {
    is_space(c) || c == '=' || c == ':'
}
