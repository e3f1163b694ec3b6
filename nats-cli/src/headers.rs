//! `-H Key:Value` flags and printing received headers.

use crate::template::{self, Ctx};
use anyhow::{bail, Result};
use nats_common::headers::Headers;

/// Builds headers from `-H` flags, templating the values. `None` when no flag was given.
pub fn from_flags(flags: &[String], ctx: &Ctx<'_>) -> Result<Option<Headers>> {
    if flags.is_empty() {
        return Ok(None);
    }
    let mut h = Headers::new();
    for f in flags {
        let Some((k, v)) = f.split_once(':') else {
            bail!("invalid header {f:?}");
        };
        let v = v.trim();
        let value = template::render(v, ctx).unwrap_or_else(|_| v.to_string());
        h.insert(k.trim(), value);
    }
    Ok(Some(h))
}

/// `Key: Value` lines for display; a status line shows as `Status`/`Description` like the
/// Go client presents it.
pub fn lines(h: &Headers) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = h.status {
        out.push(format!("Status: {s}"));
        if let Some(d) = &h.description {
            out.push(format!("Description: {d}"));
        }
    }
    for (k, v) in &h.entries {
        out.push(format!("{k}: {v}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_flags() {
        let ctx = Ctx {
            count: 3,
            request: None,
        };
        let h = from_flags(&["A: b".into(), "N:{{Count}}".into(), "U:x:y".into()], &ctx)
            .unwrap()
            .unwrap();
        assert_eq!(
            h.entries,
            vec![
                ("A".to_string(), "b".to_string()),
                ("N".into(), "3".into()),
                ("U".into(), "x:y".into())
            ]
        );
        assert!(from_flags(&["nocolon".into()], &ctx).is_err());
        assert!(from_flags(&[], &ctx).unwrap().is_none());
        let mut h = Headers::new();
        h.status = Some(503);
        h.insert("K", "v");
        assert_eq!(lines(&h), vec!["Status: 503", "K: v"]);
    }
}
