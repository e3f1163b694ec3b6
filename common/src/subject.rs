//! Subject rules: validation and wildcard matching.
//!
//! Subjects are dot-separated tokens. `*` matches one token and `>` one or more trailing
//! tokens, but only when they stand alone as a whole token; `fo*o` is an ordinary literal,
//! as on the reference server.

pub const PWC: &[u8] = b"*";
pub const FWC: &[u8] = b">";

/// Tokens of a subject.
#[inline]
pub fn tokens(subject: &[u8]) -> std::slice::Split<'_, u8, impl FnMut(&u8) -> bool> {
    subject.split(|b| *b == b'.')
}

/// A subject acceptable for SUB: no empty token, `>` only last, no whitespace.
pub fn is_valid_subject(subject: &[u8]) -> bool {
    if subject.is_empty() {
        return false;
    }
    let mut saw_fwc = false;
    for t in tokens(subject) {
        if t.is_empty() || saw_fwc {
            return false;
        }
        if t == FWC {
            saw_fwc = true;
        }
        if t.iter().any(|b| b.is_ascii_whitespace()) {
            return false;
        }
    }
    true
}

/// A subject the subscription index accepts (SUB, and interest from routes), by the
/// reference's insertion rule: no empty token and `>` only last. Other bytes, whitespace
/// such as a form feed included, are ordinary subject bytes here (the protocol parser has
/// already split arguments on spaces, tabs, CR and LF).
pub fn is_valid_sub_subject(subject: &[u8]) -> bool {
    let mut saw_fwc = false;
    for t in tokens(subject) {
        if t.is_empty() || saw_fwc {
            return false;
        }
        saw_fwc = t == FWC;
    }
    true
}

/// A subject acceptable for publishing in pedantic mode (and as /subsz `test`), by the
/// reference's literal-subject rule: no empty token and no `*` or `>` token. Whitespace is
/// not checked here (the reference accepts `PUB a\x0cb` even when pedantic).
pub fn is_valid_literal_subject(subject: &[u8]) -> bool {
    tokens(subject).all(|t| !t.is_empty() && t != PWC && t != FWC)
}

/// True when some token is exactly `*` or `>`.
pub fn has_wildcard(subject: &[u8]) -> bool {
    tokens(subject).any(|t| t == PWC || t == FWC)
}

/// Whether the literal `subject` is matched by `pattern` (which may hold wildcards).
pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    let mut p = tokens(pattern);
    let mut s = tokens(subject);
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(pt), Some(_)) if pt == FWC => return true,
            (Some(pt), Some(st)) => {
                if pt != PWC && pt != st {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Whether two subjects, each possibly with wildcards, can match a common literal subject.
/// Used to find which cached match results a new or removed subscription affects.
pub fn intersects(a: &[u8], b: &[u8]) -> bool {
    let mut x = tokens(a);
    let mut y = tokens(b);
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(t), Some(_)) | (Some(_), Some(t)) if t == FWC => return true,
            (Some(s), Some(t)) => {
                if s != PWC && t != PWC && s != t {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Whether every subject `subject` matches (it may hold wildcards) is also matched by
/// `pattern`: `foo.*` is a subset of `>`, `*.*` and `foo.*`, not of `foo.bar`.
pub fn is_subset(subject: &[u8], pattern: &[u8]) -> bool {
    let mut s = tokens(subject);
    let mut p = tokens(pattern);
    loop {
        match (s.next(), p.next()) {
            (None, None) => return true,
            (Some(_), Some(pt)) if pt == FWC => return true,
            (Some(st), Some(pt)) => {
                if st.is_empty() || pt.is_empty() || st == FWC {
                    return false;
                }
                if st == PWC {
                    if pt != PWC {
                        return false;
                    }
                } else if pt != PWC && st != pt {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity() {
        for ok in [
            "foo", "foo.bar", "foo.*", "foo.>", ">", "*", "fo*o.bar", "a.*.c",
        ] {
            assert!(is_valid_subject(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "foo..bar", ".foo", "foo.", "foo.>.bar", "a b", ">.a"] {
            assert!(!is_valid_subject(bad.as_bytes()), "{bad}");
        }
        for ok in ["foo", "a\x0cb", "a.*.>", "x\x0b.y", "fo>"] {
            assert!(is_valid_sub_subject(ok.as_bytes()), "{ok:?}");
        }
        for bad in ["", ".", "a..b", "a.>.b", ">.a", "a."] {
            assert!(!is_valid_sub_subject(bad.as_bytes()), "{bad:?}");
        }
        assert!(is_valid_literal_subject(b"foo.bar"));
        assert!(!is_valid_literal_subject(b"foo.*"));
        assert!(is_valid_literal_subject(b"fo*o"));
        assert!(is_valid_literal_subject(b"a\x0cb"));
        assert!(!is_valid_literal_subject(b""));
        assert!(!is_valid_literal_subject(b"a..b"));
    }

    #[test]
    fn matching() {
        let cases = [
            ("foo", "foo", true),
            ("foo", "bar", false),
            ("foo.*", "foo.bar", true),
            ("foo.*", "foo", false),
            ("foo.*", "foo.bar.baz", false),
            ("foo.>", "foo.bar.baz", true),
            ("foo.>", "foo", false),
            (">", "a.b.c", true),
            ("*.b.*", "a.b.c", true),
            ("*.b.*", "a.x.c", false),
            ("foo.*", "foo.*", true),
        ];
        for (p, s, want) in cases {
            assert_eq!(matches(p.as_bytes(), s.as_bytes()), want, "{p} {s}");
        }
    }

    #[test]
    fn subsets() {
        for (s, p, want) in [
            ("foo.*", ">", true),
            ("foo.*", "*.*", true),
            ("foo.*", "foo.*", true),
            ("foo.*", "foo.bar", false),
            ("foo.bar", "foo.*", true),
            ("foo.>", "foo.*", false),
            ("foo.>", "foo.>", true),
            ("foo.bar.baz", "foo.>", true),
            ("foo", "foo.>", false),
            ("foo.bar", "foo", false),
        ] {
            assert_eq!(is_subset(s.as_bytes(), p.as_bytes()), want, "{s} in {p}");
        }
    }

    #[test]
    fn intersection() {
        assert!(intersects(b"foo.*", b"foo.bar"));
        assert!(intersects(b"foo.>", b"*.bar.baz"));
        assert!(!intersects(b"foo.*", b"foo"));
        assert!(!intersects(b"foo.bar", b"foo.baz"));
        assert!(intersects(b">", b"a"));
    }
}
