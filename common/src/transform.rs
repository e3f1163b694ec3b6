//! Subject transforms and weighted subject mappings, as in NATS server 2.9.10.
//!
//! A [`Transform`] rewrites a subject matching a source pattern into a destination built from
//! literal tokens, `$N` / `{{wildcard(N)}}` references to the source's `*` tokens, the
//! mapping functions (`partition`, `SplitFromLeft`, `SplitFromRight`, `SliceFromLeft`,
//! `SliceFromRight`, `split`) and a trailing `>` carrying over the source's tail. A
//! [`Mapping`] is the account-level `mappings {}` entry: a source subject with weighted, and
//! optionally cluster-scoped, destinations one of which is chosen per message.
//!
//! Reference: `server/accounts.go` (`newTransform`, `indexPlaceHolders`, `transform`,
//! `reverse`, `AddWeightedMappings`, `selectMappedSubject`), `ValidateMappingDestination` in
//! `server/sublist.go`, the error texts in `server/errors.go`. Quirks of the reference are
//! kept on purpose and marked "as the reference" where they are not obvious.

use std::fmt;

// ---------------------------------------------------------------------------------------------
// Errors

/// The specific problem of an invalid mapping destination; each text starts with
/// `invalid mapping destination: ` (`ErrInvalidMappingDestination*` in errors.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationErrorKind {
    InvalidSubject,
    NotUsingAllWildcards,
    UnknownFunction,
    WildcardIndexOutOfRange,
    NotEnoughArguments,
    InvalidArgument,
    TooManyArguments,
}

impl fmt::Display for DestinationErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Self::InvalidSubject => "invalid subject",
            Self::NotUsingAllWildcards => "not using all of the token wildcard(s)",
            Self::UnknownFunction => "unknown function",
            Self::WildcardIndexOutOfRange => "wildcard index out of range",
            Self::NotEnoughArguments => "not enough arguments passed to the function",
            Self::InvalidArgument => "function argument is invalid or in the wrong format",
            Self::TooManyArguments => "too many arguments passed to the function",
        };
        write!(f, "invalid mapping destination: {what}")
    }
}

/// Errors of transforms; `Display` gives the reference's texts exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformError {
    /// `ErrBadSubject`: "invalid subject".
    BadSubject,
    /// `ErrNoTransforms`: the subject does not match the transform's source.
    NoTransforms,
    /// The bare `ErrInvalidMappingDestinationSubject` (whitespace in a destination token).
    InvalidDestinationSubject,
    /// A `mappingDestinationErr`: "`<kind>` in `<context>`", where the context is the
    /// offending token, the whole destination, or "`<token>: [<index>]`".
    Destination {
        kind: DestinationErrorKind,
        context: String,
    },
}

impl TransformError {
    fn dest(kind: DestinationErrorKind, context: impl Into<String>) -> Self {
        TransformError::Destination {
            kind,
            context: context.into(),
        }
    }

    /// True for every "invalid mapping destination" error (Go's
    /// `errors.Is(err, ErrInvalidMappingDestination)`).
    pub fn is_invalid_destination(&self) -> bool {
        matches!(
            self,
            Self::InvalidDestinationSubject | Self::Destination { .. }
        )
    }
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSubject => f.write_str("invalid subject"),
            Self::NoTransforms => f.write_str("no matching transforms available"),
            Self::InvalidDestinationSubject => {
                fmt::Display::fmt(&DestinationErrorKind::InvalidSubject, f)
            }
            Self::Destination { kind, context } => write!(f, "{kind} in {context}"),
        }
    }
}

impl std::error::Error for TransformError {}

/// Errors of [`Mapping::new`] (`AddWeightedMappings`); `Display` gives the reference's texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingError {
    /// `duplicate entry for "<subject>"` (Go `%q`).
    DuplicateEntry(String),
    /// "individual weights need to be <= 100".
    WeightOver100,
    /// "total weight needs to be <= 100" (over all destinations, cluster-scoped included).
    TotalWeightOver100,
    /// A bad source subject or a bad destination.
    Transform(TransformError),
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateEntry(s) => write!(f, "duplicate entry for {}", crate::gofmt::quote(s)),
            Self::WeightOver100 => f.write_str("individual weights need to be <= 100"),
            Self::TotalWeightOver100 => f.write_str("total weight needs to be <= 100"),
            Self::Transform(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for MappingError {}

impl From<TransformError> for MappingError {
    fn from(e: TransformError) -> Self {
        MappingError::Transform(e)
    }
}

// ---------------------------------------------------------------------------------------------
// Destination token parsing

/// The mapping functions, in the order the reference tries their regexes
/// (`indexPlaceHolders`, accounts.go:4269).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Wildcard,
    Partition,
    SplitFromLeft,
    SplitFromRight,
    SliceFromLeft,
    SliceFromRight,
    Split,
}

impl Func {
    const ALL: [Func; 7] = [
        Func::Wildcard,
        Func::Partition,
        Func::SplitFromLeft,
        Func::SplitFromRight,
        Func::SliceFromLeft,
        Func::SliceFromRight,
        Func::Split,
    ];

    /// The name's words; only the first letter of each may be either case, as the
    /// reference's `[sS]plit[fF]rom[lL]eft` patterns (accounts.go:168-175) allow.
    fn words(self) -> &'static [&'static [u8]] {
        match self {
            Func::Wildcard => &[b"wildcard"],
            Func::Partition => &[b"partition"],
            Func::SplitFromLeft => &[b"split", b"from", b"left"],
            Func::SplitFromRight => &[b"split", b"from", b"right"],
            Func::SliceFromLeft => &[b"slice", b"from", b"left"],
            Func::SliceFromRight => &[b"slice", b"from", b"right"],
            Func::Split => &[b"split"],
        }
    }

    /// Go's `FindStringSubmatch` of `{{\s*<name>\s*\((.*)\)\s*}}` on `token`: the leftmost
    /// match anywhere in the token (the pattern is not anchored), `(.*)` greedy and unable to
    /// cross a newline. Returns the captured argument text.
    fn find_call(self, token: &str) -> Option<&str> {
        let b = token.as_bytes();
        let skip_ws = |mut i: usize| {
            while i < b.len() && is_re_space(b[i]) {
                i += 1;
            }
            i
        };
        'start: for p in 0..b.len().saturating_sub(1) {
            if &b[p..p + 2] != b"{{" {
                continue;
            }
            let mut i = skip_ws(p + 2);
            for word in self.words() {
                let Some(rest) = b.get(i..i + word.len()) else {
                    continue 'start;
                };
                if rest[0].to_ascii_lowercase() != word[0] || rest[1..] != word[1..] {
                    continue 'start;
                }
                i += word.len();
            }
            i = skip_ws(i);
            if b.get(i) != Some(&b'(') {
                continue;
            }
            let args = i + 1;
            let line_end = b[args..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |n| args + n);
            for close in (args..line_end).rev() {
                if b[close] == b')' && b[skip_ws(close + 1)..].starts_with(b"}}") {
                    return Some(&token[args..close]);
                }
            }
        }
        None
    }
}

/// `\s` of Go's regexp (RE2's Perl class): `[\t\n\f\r ]`.
fn is_re_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// `commaSeparatorRegEx.Split(args, -1)`: split on `,\s*`; empty text gives one empty arg.
fn split_args(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b',' {
            out.push(&text[start..i]);
            i += 1;
            while i < b.len() && is_re_space(b[i]) {
                i += 1;
            }
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&text[start..]);
    out
}

/// `strconv.Atoi(strings.Trim(arg, " "))`: only spaces are trimmed; optional sign; 64 bits.
fn atoi(arg: &str) -> Option<i64> {
    arg.trim_matches(' ').parse().ok()
}

/// A destination token as `indexPlaceHolders` reads it. Wildcard indexes are as written
/// (1-based, unchecked); integer arguments are truncated to 32 bits like the reference's
/// `int32(...)` conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Placeholder<'a> {
    Literal,
    Wildcard(i64),
    Partition { buckets: i32, indexes: Vec<i64> },
    SplitFromLeft(i64, i32),
    SplitFromRight(i64, i32),
    SliceFromLeft(i64, i32),
    SliceFromRight(i64, i32),
    Split(i64, &'a str),
}

/// Whether the token is in the `{{...}}` form that is checked for a mapping function.
fn is_mustache(token: &str) -> bool {
    token.len() > 4 && token.starts_with("{{") && token.ends_with("}}")
}

fn parse_placeholder(token: &str) -> Result<Placeholder<'_>, TransformError> {
    use DestinationErrorKind::*;
    let err = |kind| Err(TransformError::dest(kind, token));
    if token.len() <= 1 {
        return Ok(Placeholder::Literal);
    }
    if let Some(n) = token.strip_prefix('$') {
        // Tokens like `$foo` are left alone: other features rely on `$` subjects.
        return Ok(n
            .parse()
            .map_or(Placeholder::Literal, Placeholder::Wildcard));
    }
    if !is_mustache(token) {
        return Ok(Placeholder::Literal);
    }
    for func in Func::ALL {
        let Some(text) = func.find_call(token) else {
            continue;
        };
        let args = split_args(text);
        return match func {
            Func::Wildcard => match args[..] {
                [""] => err(NotEnoughArguments),
                [a] => atoi(a).map_or(err(InvalidArgument), |i| Ok(Placeholder::Wildcard(i))),
                _ => err(TooManyArguments),
            },
            Func::Partition => {
                if args.len() < 2 {
                    return err(NotEnoughArguments);
                }
                let Some(buckets) = atoi(args[0]) else {
                    return err(InvalidArgument);
                };
                let indexes: Option<Vec<i64>> = args[1..].iter().map(|a| atoi(a)).collect();
                match indexes {
                    Some(indexes) => Ok(Placeholder::Partition {
                        buckets: buckets as i32,
                        indexes,
                    }),
                    None => err(InvalidArgument),
                }
            }
            Func::Split => match args[..] {
                [_] => err(NotEnoughArguments),
                [i, delim] => match atoi(i) {
                    Some(i) if !delim.contains([' ', '.']) => Ok(Placeholder::Split(i, delim)),
                    _ => err(InvalidArgument),
                },
                _ => err(TooManyArguments),
            },
            // transformIndexIntArgsHelper
            _ => match args[..] {
                [_] => err(NotEnoughArguments),
                [i, n] => match (atoi(i), atoi(n)) {
                    (Some(i), Some(n)) => {
                        let n = n as i32;
                        Ok(match func {
                            Func::SplitFromLeft => Placeholder::SplitFromLeft(i, n),
                            Func::SplitFromRight => Placeholder::SplitFromRight(i, n),
                            Func::SliceFromLeft => Placeholder::SliceFromLeft(i, n),
                            _ => Placeholder::SliceFromRight(i, n),
                        })
                    }
                    _ => err(InvalidArgument),
                },
                _ => err(TooManyArguments),
            },
        };
    }
    err(UnknownFunction)
}

/// `ValidateMappingDestination` (sublist.go:1140): checks a mapping destination before the
/// transform is built. Unlike [`Transform::new`] it rejects unknown `{{functions}}` even when
/// the source has no wildcards, and whitespace in plain tokens.
pub fn validate_mapping_destination(subject: &str) -> Result<(), TransformError> {
    let mut saw_fwc = false;
    for t in subject.split('.') {
        if t.is_empty() || saw_fwc {
            return Err(TransformError::dest(
                DestinationErrorKind::InvalidSubject,
                t,
            ));
        }
        if is_mustache(t) {
            if Func::ALL.iter().any(|f| f.find_call(t).is_some()) {
                continue;
            }
            return Err(TransformError::dest(
                DestinationErrorKind::UnknownFunction,
                t,
            ));
        }
        if t == ">" {
            saw_fwc = true;
        } else if t
            .bytes()
            .any(|c| matches!(c, b'\t' | b'\n' | b'\x0c' | b'\r' | b' '))
        {
            return Err(TransformError::InvalidDestinationSubject);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Subject helpers (the reference's sublist.go semantics, on bytes)

/// `subjectInfo`: valid (no empty token, `>` only last; whitespace is not checked), the
/// number of `*` tokens and whether there is a `>`.
fn subject_info(subject: &str) -> Option<(usize, bool)> {
    if subject.is_empty() {
        return None;
    }
    let (mut pwcs, mut fwc) = (0, false);
    for t in subject.split('.') {
        if t.is_empty() || fwc {
            return None;
        }
        match t {
            ">" => fwc = true,
            "*" => pwcs += 1,
            _ => {}
        }
    }
    Some((pwcs, fwc))
}

/// `IsValidSubject`: no empty token, `>` only last, no whitespace.
fn is_valid_subject(subject: &str) -> bool {
    subject_info(subject).is_some()
        && !subject
            .bytes()
            .any(|c| matches!(c, b'\t' | b'\n' | b'\x0c' | b'\r' | b' '))
}

fn has_wildcard(subject: &str) -> bool {
    subject.split('.').any(|t| t == "*" || t == ">")
}

/// `isSubsetMatchTokenized(tokens, pattern)`. As the reference, a pattern token that merely
/// starts with `*` (say `*x`) matches any literal token.
fn subset_match(tokens: &[&[u8]], pattern: &str) -> bool {
    let mut n = 0;
    for (i, t2) in pattern.as_bytes().split(|&c| c == b'.').enumerate() {
        n = i + 1;
        let Some(&t1) = tokens.get(i) else {
            return false;
        };
        if t2.is_empty() {
            return false;
        }
        if t2 == b">" {
            return true;
        }
        if t1.is_empty() || t1 == b">" {
            return false;
        }
        if t1 == b"*" {
            if t2 != b"*" {
                return false;
            }
            continue;
        }
        if t2[0] != b'*' && t1 != t2 {
            return false;
        }
    }
    tokens.len() == n
}

/// Runs `f` on the subject's tokens, kept on the stack for up to 32 of them like the
/// reference's `[32]string` buffer.
fn with_tokens<R>(subject: &[u8], f: impl FnOnce(&[&[u8]]) -> R) -> R {
    const INLINE: usize = 32;
    let mut inline: [&[u8]; INLINE] = [&[]; INLINE];
    let mut n = 0;
    let mut spill: Vec<&[u8]> = Vec::new();
    for t in subject.split(|&c| c == b'.') {
        if n < INLINE {
            inline[n] = t;
            n += 1;
        } else {
            if spill.is_empty() {
                spill.extend_from_slice(&inline);
            }
            spill.push(t);
        }
    }
    if spill.is_empty() {
        f(&inline[..n])
    } else {
        f(&spill)
    }
}

/// `transformTokenize`: numbers the `*` tokens, `foo.*.*` -> `foo.$1.$2`.
pub fn tokenize_wildcards(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len() + 8);
    let mut n = 0;
    for (i, t) in subject.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        if t == "*" {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push_str(t);
        }
    }
    out
}

/// `transformUntokenize`: turns `$N` tokens back into `*` and returns them in order.
/// As the reference, any token of two or more bytes starting `$1`..`$9` counts (`$1x` too).
pub fn untokenize_wildcards(subject: &str) -> (String, Vec<String>) {
    let mut placeholders = Vec::new();
    let mut out = String::with_capacity(subject.len());
    for (i, t) in subject.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        let b = t.as_bytes();
        if b.len() > 1 && b[0] == b'$' && (b'1'..=b'9').contains(&b[1]) {
            placeholders.push(t.to_string());
            out.push('*');
        } else {
            out.push_str(t);
        }
    }
    (out, placeholders)
}

// ---------------------------------------------------------------------------------------------
// Transform

/// One destination token, with source token positions (0-based) already resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<str>),
    /// The trailing `>`: the source's tail is appended.
    Tail,
    Wildcard(usize),
    Partition {
        buckets: i32,
        sources: Box<[usize]>,
    },
    SplitFromLeft(usize, i32),
    SplitFromRight(usize, i32),
    SliceFromLeft(usize, i32),
    SliceFromRight(usize, i32),
    Split(usize, Box<str>),
}

/// A subject transform (`transform` in accounts.go:4228).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    src: String,
    dest: String,
    src_tokens: usize,
    /// `None` when the source has no wildcards: the result is always `dest`, verbatim.
    parts: Option<Box<[Part]>>,
}

impl Transform {
    /// `newTransform` (accounts.go:4391). Both subjects must be valid, the destination free
    /// of `*` and holding `>` exactly when the source does. When the source has wildcards,
    /// every destination token is read for `$N` / `{{function(...)}}`, wildcard indexes must
    /// be within the source's `*` count and there must be at least as many placeholders as
    /// source `*`s. When it has none, the destination is used verbatim (no function check).
    pub fn new(src: &str, dest: &str) -> Result<Transform, TransformError> {
        let (Some((pwcs, src_fwc)), Some((0, dest_fwc))) = (subject_info(src), subject_info(dest))
        else {
            return Err(TransformError::BadSubject);
        };
        if src_fwc != dest_fwc {
            return Err(TransformError::BadSubject);
        }
        let src_tokens = src.split('.').count();
        if pwcs == 0 && !src_fwc {
            return Ok(Transform {
                src: src.into(),
                dest: dest.into(),
                src_tokens,
                parts: None,
            });
        }

        // Positions of the source's `*` tokens, for 1-based wildcard indexes. Index 0 or a
        // negative one passes the range check and, as the reference's map lookup default,
        // refers to the first source token.
        let stars: Vec<usize> = src
            .split('.')
            .enumerate()
            .filter(|(_, t)| *t == "*")
            .map(|(i, _)| i)
            .collect();
        let mut placeholders = 0;
        let mut parts = Vec::new();
        for token in dest.split('.') {
            let resolve = |i: i64| -> Result<usize, TransformError> {
                if i > pwcs as i64 {
                    return Err(TransformError::dest(
                        DestinationErrorKind::WildcardIndexOutOfRange,
                        format!("{token}: [{i}]"),
                    ));
                }
                Ok(if i >= 1 { stars[i as usize - 1] } else { 0 })
            };
            let part = match parse_placeholder(token)? {
                Placeholder::Literal if token == ">" => Part::Tail,
                Placeholder::Literal => Part::Literal(token.into()),
                Placeholder::Wildcard(i) => Part::Wildcard(resolve(i)?),
                Placeholder::Partition { buckets, indexes } => Part::Partition {
                    buckets,
                    sources: indexes.into_iter().map(resolve).collect::<Result<_, _>>()?,
                },
                Placeholder::SplitFromLeft(i, n) => Part::SplitFromLeft(resolve(i)?, n),
                Placeholder::SplitFromRight(i, n) => Part::SplitFromRight(resolve(i)?, n),
                Placeholder::SliceFromLeft(i, n) => Part::SliceFromLeft(resolve(i)?, n),
                Placeholder::SliceFromRight(i, n) => Part::SliceFromRight(resolve(i)?, n),
                Placeholder::Split(i, delim) => Part::Split(resolve(i)?, delim.into()),
            };
            if !matches!(part, Part::Literal(_) | Part::Tail) {
                placeholders += 1;
            }
            parts.push(part);
        }
        if placeholders < pwcs {
            return Err(TransformError::dest(
                DestinationErrorKind::NotUsingAllWildcards,
                dest,
            ));
        }
        Ok(Transform {
            src: src.into(),
            dest: dest.into(),
            src_tokens,
            parts: Some(parts.into()),
        })
    }

    pub fn src(&self) -> &str {
        &self.src
    }

    pub fn dest(&self) -> &str {
        &self.dest
    }

    /// Whether the output depends on the subject (the source has wildcards). When false,
    /// [`apply`](Self::apply) always returns [`dest`](Self::dest).
    pub fn is_dynamic(&self) -> bool {
        self.parts.is_some()
    }

    /// The reference's `Match` (accounts.go:4458): transform a literal subject if it matches
    /// the source. `>` to `>` returns the subject unchanged without checks; otherwise a
    /// subject with an empty, `*` or `>` token is `BadSubject`, one outside the source
    /// `NoTransforms`.
    pub fn matches_and_apply(&self, subject: impl AsRef<[u8]>) -> Result<Vec<u8>, TransformError> {
        let subject = subject.as_ref();
        if self.src == ">" && self.dest == ">" {
            return Ok(subject.to_vec());
        }
        with_tokens(subject, |tokens| {
            if tokens
                .iter()
                .any(|t| t.is_empty() || *t == b"*" || *t == b">")
            {
                return Err(TransformError::BadSubject);
            }
            if self.src == ">" || subset_match(tokens, &self.src) {
                Ok(self.apply_tokens(tokens))
            } else {
                Err(TransformError::NoTransforms)
            }
        })
    }

    /// The reference's `transformSubject`: transform without checking that the subject
    /// matches the source. Where the reference would index past the subject's tokens (and
    /// panic) an empty token is used instead.
    pub fn apply(&self, subject: impl AsRef<[u8]>) -> Vec<u8> {
        let subject = subject.as_ref();
        if self.parts.is_none() {
            return self.dest.as_bytes().to_vec();
        }
        with_tokens(subject, |tokens| self.apply_tokens(tokens))
    }

    /// [`apply`](Self::apply) for UTF-8 subjects; bytes split mid-character by the slicing
    /// functions are replaced with U+FFFD.
    pub fn apply_str(&self, subject: &str) -> String {
        into_string(self.apply(subject))
    }

    /// `transform(tokens)` (accounts.go:4512).
    fn apply_tokens(&self, tokens: &[&[u8]]) -> Vec<u8> {
        let Some(parts) = &self.parts else {
            return self.dest.as_bytes().to_vec();
        };
        let tok = |i: usize| tokens.get(i).copied().unwrap_or(b"");
        let mut out =
            Vec::with_capacity(self.dest.len() + tokens.iter().map(|t| t.len() + 1).sum::<usize>());
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate() {
            match part {
                Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
                Part::Tail => break,
                Part::Wildcard(s) => out.extend_from_slice(tok(*s)),
                Part::Partition { buckets, sources } => {
                    let mut h = Fnv1a32::new();
                    for &s in sources.iter() {
                        h.write(tok(s));
                    }
                    // uint32(numBuckets) of the reference: negative counts wrap. A zero count
                    // panics there (division by zero); here everything goes to partition 0.
                    let n = (*buckets as u32).max(1);
                    push_decimal(&mut out, h.0 % n);
                }
                Part::SplitFromLeft(s, pos) => {
                    let t = tok(*s);
                    match usize::try_from(*pos) {
                        Ok(p) if p > 0 && p < t.len() => push_joined(&mut out, &[&t[..p], &t[p..]]),
                        _ => out.extend_from_slice(t),
                    }
                }
                Part::SplitFromRight(s, pos) => {
                    let t = tok(*s);
                    match usize::try_from(*pos) {
                        Ok(p) if p > 0 && p < t.len() => {
                            let at = t.len() - p;
                            push_joined(&mut out, &[&t[..at], &t[at..]]);
                        }
                        _ => out.extend_from_slice(t),
                    }
                }
                Part::SliceFromLeft(s, size) => {
                    let t = tok(*s);
                    match usize::try_from(*size) {
                        Ok(n) if n > 0 && n < t.len() => {
                            for (j, chunk) in t.chunks(n).enumerate() {
                                if j > 0 {
                                    out.push(b'.');
                                }
                                out.extend_from_slice(chunk);
                            }
                        }
                        _ => out.extend_from_slice(t),
                    }
                }
                Part::SliceFromRight(s, size) => {
                    let t = tok(*s);
                    match usize::try_from(*size) {
                        Ok(n) if n > 0 && n < t.len() => {
                            let chunks: Vec<&[u8]> = t.rchunks(n).rev().collect();
                            push_joined(&mut out, &chunks);
                        }
                        _ => out.extend_from_slice(t),
                    }
                }
                Part::Split(s, delim) => {
                    // Empty pieces are dropped, with the reference's exact separator rule:
                    // `--a` gives `.a` (only a single leading delimiter is absorbed).
                    let mut pieces = GoSplit::new(tok(*s), delim.as_bytes()).peekable();
                    let mut first = true;
                    while let Some(piece) = pieces.next() {
                        out.extend_from_slice(piece);
                        let leading_empty = first && piece.is_empty();
                        if pieces
                            .peek()
                            .is_some_and(|next| !(next.is_empty() || leading_empty))
                        {
                            out.push(b'.');
                        }
                        first = false;
                    }
                }
            }
            if i < last {
                out.push(b'.');
            }
        }
        if matches!(parts.last(), Some(Part::Tail)) {
            let from = self.src_tokens - 1;
            for (j, t) in tokens.iter().enumerate().skip(from) {
                out.extend_from_slice(t);
                if j + 1 < tokens.len() {
                    out.push(b'.');
                }
            }
        }
        out
    }

    /// The reference's `reverse` (accounts.go:4635), used for service imports: a transform
    /// from this one's destination back to its source. The source's `*` tokens receive the
    /// destination's `$N` tokens in the order they appear there, as the reference (which is
    /// not a true inverse when the `$N` are out of order across three or more wildcards).
    /// `None` when the reverse is not a valid transform.
    pub fn reverse(&self) -> Option<Transform> {
        if self.parts.is_none() {
            return Transform::new(&self.dest, &self.src).ok();
        }
        let (nsrc, placeholders) = untokenize_wildcards(&self.dest);
        let mut placeholders = placeholders.into_iter();
        let mut ndest = String::with_capacity(self.src.len() + 8);
        for (i, t) in self.src.split('.').enumerate() {
            if i > 0 {
                ndest.push('.');
            }
            if t == "*" {
                ndest.push_str(&placeholders.next()?);
            } else {
                ndest.push_str(t);
            }
        }
        Transform::new(&nsrc, &ndest).ok()
    }
}

fn into_string(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn push_joined(out: &mut Vec<u8>, pieces: &[&[u8]]) {
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(p);
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// 32-bit FNV-1a (`hash/fnv.New32a`), the reference's partition hash.
struct Fnv1a32(u32);

impl Fnv1a32 {
    fn new() -> Self {
        Fnv1a32(0x811c_9dc5)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u32).wrapping_mul(0x0100_0193);
        }
    }
}

/// Go's `strings.Split`: with an empty separator, one piece per UTF-8 sequence (an invalid
/// byte on its own) and none for an empty input; otherwise at least one piece.
struct GoSplit<'a> {
    rest: Option<&'a [u8]>,
    sep: &'a [u8],
}

impl<'a> GoSplit<'a> {
    fn new(s: &'a [u8], sep: &'a [u8]) -> Self {
        GoSplit { rest: Some(s), sep }
    }
}

impl<'a> Iterator for GoSplit<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        if self.sep.is_empty() {
            if rest.is_empty() {
                self.rest = None;
                return None;
            }
            let n = utf8_sequence_len(rest);
            self.rest = Some(&rest[n..]);
            return Some(&rest[..n]);
        }
        match rest.windows(self.sep.len()).position(|w| w == self.sep) {
            Some(at) => {
                self.rest = Some(&rest[at + self.sep.len()..]);
                Some(&rest[..at])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// Length of the UTF-8 sequence starting `s` (non-empty), 1 for an invalid byte, as Go's
/// `utf8.DecodeRune`.
fn utf8_sequence_len(s: &[u8]) -> usize {
    let n = match s[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 1,
    };
    if n > 1
        && s.get(..n)
            .is_some_and(|seq| std::str::from_utf8(seq).is_ok())
    {
        n
    } else {
        1
    }
}

// ---------------------------------------------------------------------------------------------
// Weighted mappings

/// One destination of a [`Mapping`], with the weight as the reference keeps it after
/// `AddWeightedMappings`: cumulative over the weight-sorted list (this is also what the
/// reference's `/accountz` reports as `weight`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedDest {
    transform: Transform,
    weight: u8,
}

impl WeightedDest {
    pub fn subject(&self) -> &str {
        self.transform.dest()
    }

    /// The cumulative weight: the destination is chosen for rolls below it and at or above
    /// the previous destination's.
    pub fn weight(&self) -> u8 {
        self.weight
    }

    pub fn transform(&self) -> &Transform {
        &self.transform
    }
}

/// A subject mapping with weighted destinations (the reference's `mapping`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    source: String,
    wildcard: bool,
    dests: Vec<WeightedDest>,
    /// Cluster-scoped destinations, in the order the clusters first appear.
    cluster_dests: Vec<(String, Vec<WeightedDest>)>,
}

impl Mapping {
    /// `AddMapping`: a single destination taking everything.
    pub fn simple(source: &str, dest: &str) -> Result<Mapping, MappingError> {
        Mapping::new(source, [(dest, 100, "")])
    }

    /// `AddWeightedMappings` (accounts.go:612). `dests` are `(subject, weight, cluster)`,
    /// with `""` for "any cluster". Checked in the reference's order, per destination:
    /// duplicate subject (across clusters too), weight over 100, running total over 100
    /// (cluster-scoped destinations count towards the same total),
    /// [`validate_mapping_destination`], [`Transform::new`].
    ///
    /// Then, for the general list and for each cluster's list separately: when the weights
    /// do not add up to 100 and the source is not itself one of the destinations (of any
    /// list), the source is added with the remaining weight (with `$N` for its `*`s); giving
    /// the source explicitly with less than 100 in total thus drops the remainder. Each list
    /// is sorted by weight (stable) and the weights made cumulative.
    pub fn new<'a>(
        source: &str,
        dests: impl IntoIterator<Item = (&'a str, u8, &'a str)>,
    ) -> Result<Mapping, MappingError> {
        if !is_valid_subject(source) {
            return Err(TransformError::BadSubject.into());
        }
        let wildcard = has_wildcard(source);
        let mut seen: Vec<&str> = Vec::new();
        let mut total: u32 = 0;
        let mut general = Vec::new();
        let mut clustered: Vec<(String, Vec<WeightedDest>)> = Vec::new();
        for (subject, weight, cluster) in dests {
            if seen.contains(&subject) {
                return Err(MappingError::DuplicateEntry(subject.to_string()));
            }
            seen.push(subject);
            if weight > 100 {
                return Err(MappingError::WeightOver100);
            }
            total += u32::from(weight);
            if total > 100 {
                return Err(MappingError::TotalWeightOver100);
            }
            validate_mapping_destination(subject)?;
            let d = WeightedDest {
                transform: Transform::new(source, subject)?,
                weight,
            };
            if cluster.is_empty() {
                general.push(d);
            } else if let Some((_, list)) = clustered.iter_mut().find(|(c, _)| c == cluster) {
                list.push(d);
            } else {
                clustered.push((cluster.to_string(), vec![d]));
            }
        }

        let have_source = seen.contains(&source);
        let finish = |mut list: Vec<WeightedDest>| -> Result<Vec<WeightedDest>, MappingError> {
            let sum: u32 = list.iter().map(|d| u32::from(d.weight)).sum();
            if sum != 100 && !have_source {
                let dest = if wildcard {
                    tokenize_wildcards(source)
                } else {
                    source.to_string()
                };
                let transform = Transform::new(source, &dest)?;
                list.push(WeightedDest {
                    transform,
                    weight: (100 - sum) as u8,
                });
            }
            list.sort_by_key(|d| d.weight);
            let mut acc = 0;
            for d in &mut list {
                d.weight += acc;
                acc = d.weight;
            }
            Ok(list)
        };
        let dests = finish(general)?;
        let cluster_dests = clustered
            .into_iter()
            .map(|(c, list)| Ok((c, finish(list)?)))
            .collect::<Result<_, MappingError>>()?;
        Ok(Mapping {
            source: source.to_string(),
            wildcard,
            dests,
            cluster_dests,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The destinations used when no cluster-scoped list applies.
    pub fn dests(&self) -> &[WeightedDest] {
        &self.dests
    }

    /// The cluster-scoped destination lists.
    pub fn cluster_dests(&self) -> impl Iterator<Item = (&str, &[WeightedDest])> {
        self.cluster_dests
            .iter()
            .map(|(c, d)| (c.as_str(), d.as_slice()))
    }

    /// Whether a published subject is subject to this mapping: equal to a literal source,
    /// or within a wildcard one (`isSubsetMatch`, accounts.go:812).
    pub fn matches(&self, subject: impl AsRef<[u8]>) -> bool {
        let subject = subject.as_ref();
        (!self.wildcard && subject == self.source.as_bytes())
            || with_tokens(subject, |tokens| subset_match(tokens, &self.source))
    }

    /// The new subject for a message on `subject` (which should satisfy
    /// [`matches`](Self::matches)), as `selectMappedSubject` (accounts.go:800).
    ///
    /// The list for `cluster` (this server's cluster name) is used if there is one, else the
    /// general list. A list holding one destination at 100 is taken without a roll; otherwise
    /// `roll` is called once for a number in `0..100` (the reference's `prand.Int31n(100)`)
    /// and the first destination whose cumulative weight exceeds it is chosen. `None` means
    /// no destination was chosen (weights under 100 with the source explicitly listed, or an
    /// empty list): the reference then maps the message to the empty subject, i.e. drops it.
    pub fn select(
        &self,
        subject: impl AsRef<[u8]>,
        cluster: &str,
        roll: impl FnOnce() -> u8,
    ) -> Option<Vec<u8>> {
        let mut dests = &self.dests;
        if !self.cluster_dests.is_empty() {
            if let Some((_, list)) = self.cluster_dests.iter().find(|(c, _)| c == cluster) {
                dests = list;
            }
        }
        let chosen = match dests.as_slice() {
            [only] if only.weight == 100 => only,
            _ => {
                let w = roll();
                dests.iter().find(|d| w < d.weight)?
            }
        };
        Some(chosen.transform.apply(subject))
    }
}

/// An account's ordered list of mappings (`Account.mappings`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mappings {
    list: Vec<Mapping>,
}

impl Mappings {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a mapping, replacing in place one with the same source.
    pub fn add(&mut self, mapping: Mapping) {
        match self.list.iter_mut().find(|m| m.source == mapping.source) {
            Some(slot) => *slot = mapping,
            None => self.list.push(mapping),
        }
    }

    /// `RemoveMapping`: the last mapping takes the removed one's place, as the reference.
    pub fn remove(&mut self, source: &str) -> bool {
        match self.list.iter().position(|m| m.source == source) {
            Some(i) => {
                self.list.swap_remove(i);
                true
            }
            None => false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Mapping> {
        self.list.iter()
    }

    /// The first mapping, in order, that applies to `subject`.
    pub fn find(&self, subject: impl AsRef<[u8]>) -> Option<&Mapping> {
        let subject = subject.as_ref();
        self.list.iter().find(|m| m.matches(subject))
    }
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(src: &str, dest: &str) -> Transform {
        Transform::new(src, dest).unwrap_or_else(|e| panic!("{src} -> {dest}: {e}"))
    }

    fn matched(src: &str, dest: &str, subject: &str) -> Result<String, TransformError> {
        tr(src, dest).matches_and_apply(subject).map(into_string)
    }

    fn new_err(src: &str, dest: &str) -> String {
        match Transform::new(src, dest) {
            Ok(_) => panic!("{src} -> {dest}: expected an error"),
            Err(e) => e.to_string(),
        }
    }

    // TestSubjectTransforms (accounts_test.go:3262), shouldErr cases.
    #[test]
    fn reference_bad_transforms() {
        for (src, dest) in [
            ("foo.*.*", "bar.$2"),
            ("foo", ""),
            ("foo..", "bar"),
            ("foo.*", "bar.*"),
            ("foo.*", "bar.$2"),
            ("foo.*", "bar.$1.>"),
            ("foo.>", "bar.baz"),
            ("foo.*", "foo.$foo"),
            ("foo.*", "foo.{{wildcard(2)}}"),
            ("foo.*", "foo.{{unimplemented(1)}}"),
            ("foo.*", "foo.{{partition(10)}}"),
            ("foo.*", "foo.{{wildcard(foo)}}"),
            ("foo.*", "foo.{{wildcard()}}"),
            ("foo.*", "foo.{{wildcard(1,2)}}"),
            ("foo.*", "foo.{{ wildcard5) }}"),
            ("foo.*", "foo.{{splitLeft(2,2}}"),
        ] {
            let e = Transform::new(src, dest).expect_err(dest);
            assert!(
                e == TransformError::BadSubject || e.is_invalid_destination(),
                "{src} -> {dest}: {e}"
            );
        }
    }

    #[test]
    fn error_texts() {
        assert_eq!(new_err("foo", ""), "invalid subject");
        assert_eq!(new_err("foo.*", "bar.*"), "invalid subject");
        assert_eq!(new_err("foo.*", "bar.$1.>"), "invalid subject");
        assert_eq!(new_err("foo.>", "bar.baz"), "invalid subject");
        assert_eq!(
            new_err("foo.*.*", "bar.$2"),
            "invalid mapping destination: not using all of the token wildcard(s) in bar.$2"
        );
        // `$foo` is a literal token, so the wildcard goes unused.
        assert_eq!(
            new_err("foo.*", "foo.$foo"),
            "invalid mapping destination: not using all of the token wildcard(s) in foo.$foo"
        );
        assert_eq!(
            new_err("foo.*", "bar.$2"),
            "invalid mapping destination: wildcard index out of range in $2: [2]"
        );
        assert_eq!(
            new_err("foo.*", "foo.{{wildcard(2)}}"),
            "invalid mapping destination: wildcard index out of range in {{wildcard(2)}}: [2]"
        );
        assert_eq!(
            new_err("foo.*", "{{partition(3,1,7)}}"),
            "invalid mapping destination: wildcard index out of range in {{partition(3,1,7)}}: [7]"
        );
        assert_eq!(
            new_err("foo.*", "foo.{{unimplemented(1)}}"),
            "invalid mapping destination: unknown function in {{unimplemented(1)}}"
        );
        assert_eq!(
            new_err("foo.*", "foo.{{ wildcard5) }}"),
            "invalid mapping destination: unknown function in {{ wildcard5) }}"
        );
        assert_eq!(
            new_err("foo.*", "foo.{{splitLeft(2,2}}"),
            "invalid mapping destination: unknown function in {{splitLeft(2,2}}"
        );
        let not_enough =
            "invalid mapping destination: not enough arguments passed to the function in ";
        let too_many = "invalid mapping destination: too many arguments passed to the function in ";
        let invalid =
            "invalid mapping destination: function argument is invalid or in the wrong format in ";
        for (dest, prefix) in [
            ("{{partition(10)}}", not_enough),
            ("{{partition()}}", not_enough),
            ("{{wildcard()}}", not_enough),
            ("{{wildcard(1,2)}}", too_many),
            ("{{wildcard(foo)}}", invalid),
            ("{{wildcard( )}}", invalid),
            ("{{wildcard(\t1)}}", invalid),
            ("{{partition(x,1)}}", invalid),
            ("{{partition(2,x)}}", invalid),
            ("{{SplitFromLeft(1)}}", not_enough),
            ("{{SplitFromLeft()}}", not_enough),
            ("{{SplitFromRight(1,2,3)}}", too_many),
            ("{{SliceFromLeft(a,2)}}", invalid),
            ("{{SliceFromRight(1,b)}}", invalid),
            ("{{split(1)}}", not_enough),
            ("{{split(1,-,+)}}", too_many),
            ("{{split(x,-)}}", invalid),
            ("{{split(1,- )}}", invalid),
            ("{{split(1,a b)}}", invalid),
        ] {
            assert_eq!(new_err("*", dest), format!("{prefix}{dest}"), "{dest}");
        }
        let e = TransformError::NoTransforms;
        assert_eq!(e.to_string(), "no matching transforms available");
        assert_eq!(
            TransformError::InvalidDestinationSubject.to_string(),
            "invalid mapping destination: invalid subject"
        );
    }

    // TestSubjectTransforms shouldBeOK / shouldMatch.
    #[test]
    fn reference_matches() {
        for (src, dest) in [
            ("foo", "bar"),
            ("foo.*.bar.*.baz", "req.$2.$1"),
            ("baz.>", "mybaz.>"),
            ("*", "{{splitfromleft(1,1)}}"),
        ] {
            tr(src, dest);
        }
        for (src, dest, sample, want) in [
            ("foo", "bar", "foo", "bar"),
            ("foo.*.bar.*.baz", "req.$2.$1", "foo.A.bar.B.baz", "req.B.A"),
            ("baz.>", "my.pre.>", "baz.1.2.3", "my.pre.1.2.3"),
            ("baz.>", "foo.bar.>", "baz.1.2.3", "foo.bar.1.2.3"),
            ("*", "foo.bar.$1", "foo", "foo.bar.foo"),
            ("*", "{{splitfromleft(1,3)}}", "12345", "123.45"),
            ("*", "{{SplitFromRight(1,3)}}", "12345", "12.345"),
            ("*", "{{SliceFromLeft(1,3)}}", "1234567890", "123.456.789.0"),
            (
                "*",
                "{{SliceFromRight(1,3)}}",
                "1234567890",
                "1.234.567.890",
            ),
            ("*", "{{split(1,-)}}", "-abc-def--ghi-", "abc.def.ghi"),
            ("*", "{{split(1,-)}}", "abc-def--ghi-", "abc.def.ghi"),
            (
                "*.*",
                "{{split(2,-)}}.{{splitfromleft(1,2)}}",
                "foo.-abc-def--ghij-",
                "abc.def.ghij.fo.o",
            ),
        ] {
            assert_eq!(
                matched(src, dest, sample).as_deref(),
                Ok(want),
                "{src} -> {dest} on {sample}"
            );
        }
    }

    // TestPlaceHolderIndex (accounts_test.go:51).
    #[test]
    fn placeholder_index() {
        assert_eq!(parse_placeholder("$1"), Ok(Placeholder::Wildcard(1)));
        let p = Placeholder::Partition {
            buckets: 10,
            indexes: vec![1, 2, 3],
        };
        assert_eq!(parse_placeholder("{{partition(10,1,2,3)}}"), Ok(p.clone()));
        assert_eq!(parse_placeholder("{{ Partition (10,1,2,3) }}"), Ok(p));
        assert_eq!(
            parse_placeholder("{{wildcard(2)}}"),
            Ok(Placeholder::Wildcard(2))
        );
        assert_eq!(
            parse_placeholder("{{SplitFromLeft(2,1)}}"),
            Ok(Placeholder::SplitFromLeft(2, 1))
        );
        assert_eq!(
            parse_placeholder("{{SplitFromRight(3,2)}}"),
            Ok(Placeholder::SplitFromRight(3, 2))
        );
        assert_eq!(
            parse_placeholder("{{SliceFromLeft(2,2)}}"),
            Ok(Placeholder::SliceFromLeft(2, 2))
        );
        assert_eq!(
            parse_placeholder("{{SliceFromRight(2,2)}}"),
            Ok(Placeholder::SliceFromRight(2, 2))
        );
        assert_eq!(
            parse_placeholder("{{split(2,-)}}"),
            Ok(Placeholder::Split(2, "-"))
        );
    }

    #[test]
    fn function_name_spelling_and_spacing() {
        // Only the first letter of each word may change case.
        for ok in [
            "{{wildcard(1)}}",
            "{{Wildcard(1)}}",
            "{{ wildcard ( 1 ) }}",
            "{{\twildcard\n(1)\r}}",
            "{{wildcard( 1 )}}",
            "{{wildcard(+1)}}",
            "{{splitfromleft(1,1)}}",
            "{{SplitFromLeft(1, 1)}}",
            "{{Split(1,-)}}",
        ] {
            assert!(Transform::new("*", ok).is_ok(), "{ok}");
        }
        for bad in [
            "{{WILDCARD(1)}}",
            "{{wildCard(1)}}",
            "{{splitFROMleft(1,1)}}",
            "{{wild card(1)}}",
        ] {
            assert_eq!(
                new_err("*", bad),
                format!("invalid mapping destination: unknown function in {bad}"),
                "{bad}"
            );
        }
        // Whitespace after a comma is eaten by `,\s*`; before it only spaces are trimmed.
        assert_eq!(
            parse_placeholder("{{partition(3,\t1 ,\r2)}}").unwrap(),
            Placeholder::Partition {
                buckets: 3,
                indexes: vec![1, 2]
            }
        );
        // `(.*)` does not cross a newline.
        assert_eq!(
            new_err("*", "{{partition(3,\n1)}}"),
            "invalid mapping destination: unknown function in {{partition(3,\n1)}}"
        );
        // The pattern is searched, not anchored: a call anywhere in a `{{...}}` token counts.
        assert_eq!(
            parse_placeholder("{{x}}{{wildcard(1)}}"),
            Ok(Placeholder::Wildcard(1))
        );
        assert_eq!(
            parse_placeholder("{{{wildcard(1)}}"),
            Ok(Placeholder::Wildcard(1))
        );
        // Greedy argument capture: up to the last `)` followed by `}}`.
        assert_eq!(
            parse_placeholder("{{wildcard(1)}}x)}}"),
            Err(TransformError::dest(
                DestinationErrorKind::InvalidArgument,
                "{{wildcard(1)}}x)}}"
            ))
        );
        // Not in the `{{...}}` form: a literal token.
        assert_eq!(parse_placeholder("{{}}"), Ok(Placeholder::Literal));
        assert_eq!(
            parse_placeholder("x{{wildcard(1)}}"),
            Ok(Placeholder::Literal)
        );
        assert_eq!(parse_placeholder("$"), Ok(Placeholder::Literal));
        assert_eq!(parse_placeholder("$x"), Ok(Placeholder::Literal));
        // 32-bit truncation of integer arguments, as the reference's int32().
        assert_eq!(
            parse_placeholder("{{SliceFromLeft(1,4294967298)}}"),
            Ok(Placeholder::SliceFromLeft(1, 2))
        );
    }

    #[test]
    fn wildcard_forms() {
        assert_eq!(
            matched("foo.*.*", "bar.$2.$1", "foo.a.b").unwrap(),
            "bar.b.a"
        );
        assert_eq!(
            matched("foo.*.*", "bar.{{wildcard(2)}}.{{wildcard(1)}}", "foo.a.b").unwrap(),
            "bar.b.a"
        );
        assert_eq!(
            matched("foo.*.*", "bar.$1.{{Wildcard(2)}}.$1", "foo.a.b").unwrap(),
            "bar.a.b.a"
        );
        // Enough placeholders although `$2` is never used, as the reference counts them.
        assert_eq!(
            matched("foo.*.*", "bar.$1.$1", "foo.a.b").unwrap(),
            "bar.a.a"
        );
        // `$0` (and negative indexes) read the first source token, as the reference.
        assert_eq!(matched("foo.*", "bar.$0.$1", "foo.x").unwrap(), "bar.foo.x");
        assert_eq!(matched("foo.*", "bar.$01", "foo.x").unwrap(), "bar.x");
        // Literal source: the destination is taken verbatim, placeholders included.
        assert_eq!(
            matched("foo", "bar.$1.{{wildcard(1)}}", "foo").unwrap(),
            "bar.$1.{{wildcard(1)}}"
        );
        assert!(!tr("foo", "bar").is_dynamic());
        assert!(tr("foo.>", "bar.>").is_dynamic());
    }

    #[test]
    fn full_wildcard() {
        assert_eq!(matched("foo.>", "bar.>", "foo.a.b.c").unwrap(), "bar.a.b.c");
        assert_eq!(
            matched("foo.*.>", "bar.$1.>", "foo.a.b.c").unwrap(),
            "bar.a.b.c"
        );
        assert_eq!(matched("foo.*.>", "$1.x.>", "foo.a.b").unwrap(), "a.x.b");
        assert_eq!(matched("foo.>", ">", "foo.a.b").unwrap(), "a.b");
        assert_eq!(matched(">", "pre.>", "a.b").unwrap(), "pre.a.b");
        assert_eq!(matched(">", ">", "anything.*").unwrap(), "anything.*");
        assert_eq!(
            matched("foo.>", "bar.>", "foo"),
            Err(TransformError::NoTransforms)
        );
        // apply() does not check: missing tail tokens leave the separator.
        assert_eq!(tr("foo.>", "bar.>").apply_str("x"), "bar.");
    }

    #[test]
    fn match_errors() {
        let t = tr("foo.*", "bar.$1");
        assert_eq!(
            t.matches_and_apply("foo.*"),
            Err(TransformError::BadSubject)
        );
        assert_eq!(
            t.matches_and_apply("foo..x"),
            Err(TransformError::BadSubject)
        );
        assert_eq!(t.matches_and_apply(""), Err(TransformError::BadSubject));
        assert_eq!(
            t.matches_and_apply("baz.x"),
            Err(TransformError::NoTransforms)
        );
        assert_eq!(
            t.matches_and_apply("foo.x.y"),
            Err(TransformError::NoTransforms)
        );
        assert_eq!(t.apply("baz.x"), b"bar.x");
        // A source token starting with `*` matches any token, as the reference.
        assert_eq!(matched("foo.*x", "bar", "foo.y").unwrap(), "bar");
    }

    #[test]
    fn partition() {
        // FNV-1a 32 of the concatenated tokens, modulo the count.
        let fnv = |s: &str| {
            let mut h = Fnv1a32::new();
            h.write(s.as_bytes());
            h.0
        };
        assert_eq!(fnv(""), 0x811c9dc5);
        assert_eq!(fnv("a"), 0xe40c292c);
        assert_eq!(fnv("foobar"), 0xbf9cf968);
        let t = tr("foo.*.*", "foo.$1.{{wildcard(2)}}.{{partition(10,1,2)}}");
        for (a, b) in [("a", "b"), ("x", "yz"), ("1", "2")] {
            let want = format!("foo.{a}.{b}.{}", fnv(&format!("{a}{b}")) % 10);
            assert_eq!(
                into_string(t.matches_and_apply(format!("foo.{a}.{b}")).unwrap()),
                want
            );
        }
        assert_eq!(
            matched("*", "p.{{partition(3,1)}}", "foobar").unwrap(),
            format!("p.{}", 0xbf9cf968u32 % 3)
        );
        // Negative counts wrap to uint32 as the reference; zero (a panic there) gives 0.
        assert_eq!(
            matched("*", "{{partition(-1,1)}}", "foobar").unwrap(),
            0xbf9cf968u32.to_string() // below u32::MAX, so unchanged by the modulo
        );
        assert_eq!(matched("*", "{{partition(0,1)}}", "foobar").unwrap(), "0");
        assert_eq!(matched("*", "{{partition(1,1)}}", "foobar").unwrap(), "0");
    }

    #[test]
    fn split_and_slice() {
        let m = |dest: &str, s: &str| matched("*", dest, s).unwrap();
        assert_eq!(m("{{SplitFromLeft(1,1)}}", "ab"), "a.b");
        assert_eq!(m("{{SplitFromLeft(1,2)}}", "ab"), "ab");
        assert_eq!(m("{{SplitFromLeft(1,0)}}", "ab"), "ab");
        assert_eq!(m("{{SplitFromLeft(1,-1)}}", "ab"), "ab");
        assert_eq!(m("{{SplitFromRight(1,1)}}", "abc"), "ab.c");
        assert_eq!(m("{{SplitFromRight(1,3)}}", "abc"), "abc");
        assert_eq!(m("{{SliceFromLeft(1,2)}}", "abcdef"), "ab.cd.ef");
        assert_eq!(m("{{SliceFromLeft(1,4)}}", "abcdef"), "abcd.ef");
        assert_eq!(m("{{SliceFromLeft(1,6)}}", "abcdef"), "abcdef");
        assert_eq!(m("{{SliceFromLeft(1,0)}}", "abcdef"), "abcdef");
        assert_eq!(m("{{SliceFromRight(1,2)}}", "abcdef"), "ab.cd.ef");
        assert_eq!(m("{{SliceFromRight(1,4)}}", "abcdef"), "ab.cdef");
        assert_eq!(m("{{SliceFromRight(1,5)}}", "abcdef"), "a.bcdef");
        assert_eq!(m("{{SliceFromRight(1,7)}}", "abcdef"), "abcdef");
        assert_eq!(m("{{split(1,-)}}", "a-b-c"), "a.b.c");
        assert_eq!(m("{{split(1,-)}}", "abc"), "abc");
        assert_eq!(m("{{split(1,::)}}", "a::b:::c"), "a.b.:c");
        // Reference quirk: a doubled leading delimiter leaves a leading dot.
        assert_eq!(m("{{split(1,-)}}", "--a"), ".a");
        assert_eq!(m("x.{{split(1,-)}}.y", "-"), "x..y");
        // Empty delimiter: one piece per character.
        assert_eq!(m("{{split(1,)}}", "añb"), "a.ñ.b");
        // Byte-wise like the reference: slices may cut a multi-byte character.
        assert_eq!(
            tr("*", "{{SplitFromLeft(1,1)}}").apply("ñ".as_bytes()),
            b"\xc3.\xb1"
        );
    }

    #[test]
    fn apply_out_of_range_tokens() {
        // The reference would panic here; we use empty tokens.
        let t = tr("a.*.*", "x.$2.{{partition(2,1,2)}}");
        assert_eq!(t.apply_str("a"), format!("x..{}", Fnv1a32::new().0 % 2));
    }

    #[test]
    fn many_tokens() {
        let subject: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let subject = subject.join(".");
        assert_eq!(
            matched("0.>", "x.>", &subject).unwrap(),
            format!("x.{}", &subject[2..])
        );
        let t = tr("0.*.>", "$1.>");
        assert_eq!(t.apply_str(&subject), subject[2..]);
    }

    #[test]
    fn reverse() {
        let rev = |src: &str, dest: &str| {
            let r = tr(src, dest).reverse().expect("reverse");
            (r.src().to_string(), r.dest().to_string())
        };
        assert_eq!(rev("foo", "bar"), ("bar".into(), "foo".into()));
        assert_eq!(rev("foo.>", "bar.>"), ("bar.>".into(), "foo.>".into()));
        assert_eq!(
            rev("foo.*.*", "bar.$2.$1"),
            ("bar.*.*".into(), "foo.$2.$1".into())
        );
        assert_eq!(
            rev("foo.*.>", "bar.$1.>"),
            ("bar.*.>".into(), "foo.$1.>".into())
        );
        let r = tr("foo.*.*", "bar.$2.$1").reverse().unwrap();
        assert_eq!(
            r.matches_and_apply("bar.b.a").map(into_string),
            Ok("foo.a.b".into())
        );
        // Not a true inverse for three rotated wildcards, as the reference.
        let r = tr("foo.*.*.*", "bar.$3.$1.$2").reverse().unwrap();
        assert_eq!(
            r.matches_and_apply("bar.C.A.B").map(into_string),
            Ok("foo.B.C.A".into())
        );
        // Only `$N` tokens are given back to the source's `*`s; with none left: no reverse.
        assert!(tr("foo.*", "{{partition(2,1)}}.x").reverse().is_none());
        // A literal-source transform whose destination is not a valid source.
        let r = tr("foo", "bar").reverse().unwrap();
        assert_eq!(r.apply_str("bar"), "foo");
    }

    #[test]
    fn tokenize_untokenize() {
        assert_eq!(tokenize_wildcards("foo.*.bar.*.>"), "foo.$1.bar.$2.>");
        assert_eq!(tokenize_wildcards("foo"), "foo");
        assert_eq!(
            untokenize_wildcards("foo.$1.bar.$2.$x.$0.$1x"),
            (
                "foo.*.bar.*.$x.$0.*".to_string(),
                vec!["$1".to_string(), "$2".into(), "$1x".into()]
            )
        );
    }

    // TestValidateMappingDestination (sublist_test.go:659).
    #[test]
    fn validate_destination() {
        for ok in [
            "foo",
            "foo.bar",
            "*",
            ">",
            "foo.*",
            "foo.>",
            "foo.*.>",
            "foo.*.bar",
            "foo.bar.>",
            "foo.{{wildcard(1)}}",
            "foo.{{ wildcard(1) }}",
            "foo.{{wildcard( 1 )}}",
            "foo.{{partition(2,1)}}",
            "foo.{{SplitFromLeft(2,1)}}",
            "foo.{{SplitFromRight(2,1)}}",
            "{{wildcard(x)}}",
        ] {
            assert_eq!(validate_mapping_destination(ok), Ok(()), "{ok}");
        }
        let check = |s: &str| validate_mapping_destination(s).unwrap_err().to_string();
        assert_eq!(
            check("foo.{{unknown(1)}}"),
            "invalid mapping destination: unknown function in {{unknown(1)}}"
        );
        assert_eq!(
            check("foo..}"),
            "invalid mapping destination: invalid subject in "
        );
        assert_eq!(
            check("foo.>.bar"),
            "invalid mapping destination: invalid subject in bar"
        );
        assert_eq!(
            check(""),
            "invalid mapping destination: invalid subject in "
        );
        assert_eq!(
            check("foo. bar}"),
            "invalid mapping destination: invalid subject"
        );
        assert_eq!(
            validate_mapping_destination("foo. bar}"),
            Err(TransformError::InvalidDestinationSubject)
        );
    }

    fn summary(m: &Mapping) -> Vec<(String, u8)> {
        m.dests()
            .iter()
            .map(|d| (d.subject().to_string(), d.weight()))
            .collect()
    }

    fn sel(m: &Mapping, subject: &str, cluster: &str, roll: u8) -> Option<String> {
        m.select(subject, cluster, || roll).map(into_string)
    }

    // TestAccountMultiWeightedRouteMappings (accounts_test.go:2758) and friends.
    #[test]
    fn weighted_validation() {
        let err = |d: &[(&str, u8, &str)]| {
            Mapping::new("foo", d.iter().copied())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&[("bar", 150, "")]),
            "individual weights need to be <= 100"
        );
        assert_eq!(
            err(&[("bar", 50, ""), ("bar", 50, "")]),
            "duplicate entry for \"bar\""
        );
        assert_eq!(
            err(&[("bar", 50, "A"), ("bar", 50, "B")]),
            "duplicate entry for \"bar\""
        );
        assert_eq!(
            err(&[("bar", 50, ""), ("baz", 60, "")]),
            "total weight needs to be <= 100"
        );
        assert_eq!(
            err(&[("bar", 100, "A"), ("baz", 100, "")]),
            "total weight needs to be <= 100"
        );
        assert_eq!(
            err(&[("b\"a\x01r", 50, ""), ("b\"a\x01r", 1, "")]),
            r#"duplicate entry for "b\"a\x01r""#
        );
        assert_eq!(
            err(&[("bar.{{nope(1)}}", 50, "")]),
            "invalid mapping destination: unknown function in {{nope(1)}}"
        );
        assert_eq!(
            err(&[("bar baz", 50, "")]),
            "invalid mapping destination: invalid subject"
        );
        assert_eq!(err(&[("bar.>", 50, "")]), "invalid subject");
        assert_eq!(
            Mapping::new("foo.*", [("bar.$2", 100, "")])
                .unwrap_err()
                .to_string(),
            "invalid mapping destination: wildcard index out of range in $2: [2]"
        );
        assert_eq!(
            Mapping::simple("foo..bar", "baz").unwrap_err().to_string(),
            "invalid subject"
        );
        assert_eq!(
            Mapping::simple("foo bar", "baz").unwrap_err().to_string(),
            "invalid subject"
        );
        assert!(Mapping::new("foo", [("bar", 50, "")]).is_ok());
        assert!(Mapping::new("foo", [("bar", 50, ""), ("baz", 50, "")]).is_ok());
        // A source that only becomes a problem when it is added as the remainder.
        assert_eq!(
            Mapping::simple("foo.*.{{x}}", "bar.$1")
                .unwrap()
                .dests()
                .len(),
            1
        );
        assert_eq!(
            Mapping::new("foo.*.{{x}}", [("bar.$1", 50, "")])
                .unwrap_err()
                .to_string(),
            "invalid mapping destination: unknown function in {{x}}"
        );
    }

    #[test]
    fn weighted_remainder_and_selection() {
        // 20 for the source, added implicitly; sorted and cumulative.
        let m = Mapping::new("foo", [("bar", 50, ""), ("baz", 30, "")]).unwrap();
        assert_eq!(
            summary(&m),
            [
                ("foo".to_string(), 20),
                ("baz".into(), 50),
                ("bar".into(), 100)
            ]
        );
        assert_eq!(sel(&m, "foo", "", 0).unwrap(), "foo");
        assert_eq!(sel(&m, "foo", "", 19).unwrap(), "foo");
        assert_eq!(sel(&m, "foo", "", 20).unwrap(), "baz");
        assert_eq!(sel(&m, "foo", "", 49).unwrap(), "baz");
        assert_eq!(sel(&m, "foo", "", 50).unwrap(), "bar");
        assert_eq!(sel(&m, "foo", "", 99).unwrap(), "bar");

        // Equal weights keep their given order.
        let m = Mapping::new("foo", [("a", 50, ""), ("b", 50, "")]).unwrap();
        assert_eq!(summary(&m), [("a".to_string(), 50), ("b".into(), 100)]);

        // Wildcard source: the remainder uses `$N`.
        let m = Mapping::new("foo.*", [("bar.v1.$1", 40, ""), ("baz.v2.$1", 20, "")]).unwrap();
        assert_eq!(
            summary(&m),
            [
                ("baz.v2.$1".to_string(), 20),
                ("bar.v1.$1".into(), 60),
                ("foo.$1".into(), 100)
            ]
        );
        assert_eq!(sel(&m, "foo.22", "", 10).unwrap(), "baz.v2.22");
        assert_eq!(sel(&m, "foo.22", "", 30).unwrap(), "bar.v1.22");
        assert_eq!(sel(&m, "foo.22", "", 70).unwrap(), "foo.22");

        // A single destination at 100 needs no roll.
        let m = Mapping::simple("bar.*.*", "RAB.$2.$1").unwrap();
        assert_eq!(
            m.select("bar.11.22", "", || unreachable!())
                .map(into_string)
                .unwrap(),
            "RAB.22.11"
        );
        let m = Mapping::simple("foo", "bar").unwrap();
        assert_eq!(summary(&m), [("bar".to_string(), 100)]);
    }

    // TestAccountRouteMappingsWithLossInjection (accounts_test.go:2913).
    #[test]
    fn loss_injection() {
        let m = Mapping::new("foo", [("foo", 80, "")]).unwrap();
        assert_eq!(summary(&m), [("foo".to_string(), 80)]);
        assert_eq!(sel(&m, "foo", "", 79).unwrap(), "foo");
        assert_eq!(sel(&m, "foo", "", 80), None);
        let m = Mapping::new("bar", [("bar", 0, "")]).unwrap();
        assert_eq!(sel(&m, "bar", "", 0), None);
    }

    // TestAccountRouteMappingsWithOriginClusterFilter (accounts_test.go:2951).
    #[test]
    fn cluster_filter() {
        let m = Mapping::new("foo", [("bar", 100, "SYN")]).unwrap();
        assert_eq!(summary(&m), [("foo".to_string(), 100)]);
        let (c, d) = m.cluster_dests().next().unwrap();
        assert_eq!(
            (c, d.len(), d[0].subject(), d[0].weight()),
            ("SYN", 1, "bar", 100)
        );
        assert_eq!(sel(&m, "foo", "", 0).unwrap(), "foo");
        assert_eq!(sel(&m, "foo", "OTHER", 0).unwrap(), "foo");
        assert_eq!(sel(&m, "foo", "SYN", 0).unwrap(), "bar");

        // Cluster lists get their own remainder.
        let m = Mapping::new("foo", [("a", 30, "C1"), ("b", 40, "")]).unwrap();
        assert_eq!(summary(&m), [("b".to_string(), 40), ("foo".into(), 100)]);
        let c1: Vec<_> = m
            .cluster_dests()
            .next()
            .unwrap()
            .1
            .iter()
            .map(|d| (d.subject(), d.weight()))
            .collect();
        assert_eq!(c1, [("a", 30), ("foo", 100)]);
        assert_eq!(sel(&m, "foo", "C1", 10).unwrap(), "a");
        assert_eq!(sel(&m, "foo", "C1", 30).unwrap(), "foo");

        // The source listed for one cluster suppresses every remainder: elsewhere it drops.
        let m = Mapping::new("foo", [("foo", 100, "C1")]).unwrap();
        assert!(m.dests().is_empty());
        assert_eq!(sel(&m, "foo", "C1", 5).unwrap(), "foo");
        assert_eq!(sel(&m, "foo", "C2", 5), None);
    }

    #[test]
    fn mapping_matches() {
        let m = Mapping::simple("foo.*", "bar.$1").unwrap();
        assert!(m.matches("foo.x"));
        assert!(!m.matches("foo"));
        assert!(!m.matches("foo.x.y"));
        let m = Mapping::simple("foo.>", "bar.>").unwrap();
        assert!(m.matches("foo.x.y"));
        assert!(!m.matches("foo"));
        let m = Mapping::simple("foo", "bar").unwrap();
        assert!(m.matches("foo"));
        assert!(!m.matches("foo.bar"));
    }

    // TestAccountWildcardRouteMapping / TestGlobalAccountRouteMappingsConfiguration.
    #[test]
    fn mapping_table() {
        let mut ms = Mappings::new();
        assert!(ms.is_empty());
        ms.add(Mapping::simple("foo.*.*", "bar.$2.$1").unwrap());
        ms.add(Mapping::simple("bar.*.>", "baz.$1.>").unwrap());
        let m = ms.find("foo.1.2").unwrap();
        assert_eq!(sel(m, "foo.1.2", "", 0).unwrap(), "bar.2.1");
        // A mapped subject is not mapped again.
        assert_eq!(ms.find("bar.2.1").unwrap().source(), "bar.*.>");
        assert!(ms.find("baz.1").is_none());

        ms.add(Mapping::simple("foo.*.*", "x.$1.$2").unwrap());
        assert_eq!(ms.len(), 2);
        assert_eq!(ms.iter().next().unwrap().dests()[0].subject(), "x.$1.$2");
        ms.add(Mapping::simple("z", "y").unwrap());
        assert!(ms.remove("foo.*.*"));
        assert!(!ms.remove("foo.*.*"));
        let order: Vec<_> = ms.iter().map(|m| m.source()).collect();
        assert_eq!(order, ["z", "bar.*.>"]);
    }
}
