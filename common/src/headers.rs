//! The `NATS/1.0` header block: an optional status line, then `Key: Value` lines, then a
//! blank line.

use std::fmt;

pub const VERSION_LINE: &str = "NATS/1.0";
/// The exact block the reference sends to a requester when nothing received its request.
pub const NO_RESPONDERS: &[u8] = b"NATS/1.0 503\r\n\r\n";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// Status code and description from the first line (`NATS/1.0 503`, `NATS/1.0 408 Request Timeout`).
    pub status: Option<u16>,
    pub description: Option<String>,
    /// Entries in order; keys keep their case and may repeat.
    pub entries: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError(pub String);

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HeaderError {}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries.push((key.into(), value.into()));
    }

    /// First value of a key, compared case-insensitively.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.status.is_none()
    }

    /// Parses a header block as carried by HMSG/HPUB.
    pub fn parse(block: &[u8]) -> Result<Headers, HeaderError> {
        let text = std::str::from_utf8(block)
            .map_err(|_| HeaderError("header block is not UTF-8".into()))?;
        let mut lines = text.split("\r\n");
        let first = lines.next().unwrap_or_default();
        let rest = first
            .strip_prefix(VERSION_LINE)
            .ok_or_else(|| HeaderError(format!("bad header version line: {first:?}")))?;
        let mut h = Headers::default();
        let rest = rest.trim();
        if !rest.is_empty() {
            let (code, desc) = match rest.split_once(' ') {
                Some((c, d)) => (c, Some(d.trim())),
                None => (rest, None),
            };
            h.status = Some(
                code.parse()
                    .map_err(|_| HeaderError(format!("bad status code: {code:?}")))?,
            );
            h.description = desc.filter(|d| !d.is_empty()).map(str::to_string);
        }
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| HeaderError(format!("bad header line: {line:?}")))?;
            h.entries.push((k.trim().to_string(), v.trim().to_string()));
        }
        Ok(h)
    }

    /// Encodes the block, ending with the blank line.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(VERSION_LINE.as_bytes());
        if let Some(code) = self.status {
            out.extend_from_slice(format!(" {code}").as_bytes());
            if let Some(d) = &self.description {
                out.push(b' ');
                out.extend_from_slice(d.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        for (k, v) in &self.entries {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut h = Headers::new();
        h.insert("A", "b");
        h.insert("X-Multi", "1");
        h.insert("X-Multi", "2");
        let bytes = h.to_bytes();
        assert_eq!(
            bytes,
            b"NATS/1.0\r\nA: b\r\nX-Multi: 1\r\nX-Multi: 2\r\n\r\n"
        );
        assert_eq!(Headers::parse(&bytes).unwrap(), h);
    }

    #[test]
    fn status() {
        let h = Headers::parse(NO_RESPONDERS).unwrap();
        assert_eq!(h.status, Some(503));
        assert_eq!(h.description, None);
        let h = Headers::parse(b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n")
            .unwrap();
        assert_eq!(h.status, Some(408));
        assert_eq!(h.description.as_deref(), Some("Request Timeout"));
        assert_eq!(h.get("nats-pending-messages"), Some("1"));
        assert!(Headers::parse(b"HTTP/1.1\r\n\r\n").is_err());
    }
}
