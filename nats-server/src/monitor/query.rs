//! Query-string decoding with the reference's semantics and error texts (Go's `strconv`
//! functions and their messages).

/// Decoded query parameters; like Go's `URL.Query().Get`, the first value of a name wins and
/// a missing name reads as "".
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Params {
        let pairs = raw
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Params(pairs)
    }

    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// An int parameter; "" is 0.
    pub fn int(&self, name: &str) -> Result<i64, String> {
        let v = self.get(name);
        if v.is_empty() {
            return Ok(0);
        }
        v.parse::<i64>().map_err(|e| {
            format!(
                "Error decoding int for '{name}': strconv.Atoi: parsing {}: {}",
                nats_common::gofmt::quote(v),
                num_error(&e)
            )
        })
    }

    /// An unsigned parameter; "" is 0. Go's ParseUint takes no sign.
    pub fn uint64(&self, name: &str) -> Result<u64, String> {
        let v = self.get(name);
        if v.is_empty() {
            return Ok(0);
        }
        let err = |why: &str| {
            format!(
                "Error decoding uint64 for '{name}': strconv.ParseUint: parsing {}: {why}",
                nats_common::gofmt::quote(v)
            )
        };
        if v.starts_with('+') {
            return Err(err("invalid syntax"));
        }
        v.parse::<u64>().map_err(|e| err(num_error(&e)))
    }

    /// A boolean parameter with Go's ParseBool spellings; "" is false.
    pub fn boolean(&self, name: &str) -> Result<bool, String> {
        let v = self.get(name);
        match v {
            "" => Ok(false),
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            _ => Err(format!(
                "Error decoding boolean for '{name}': strconv.ParseBool: parsing {}: invalid syntax",
                nats_common::gofmt::quote(v)
            )),
        }
    }

    /// `subs`: `detail` (any case) asks for details, otherwise a boolean.
    /// Returns (subs, detail).
    pub fn subs(&self) -> Result<(bool, bool), String> {
        if self.get("subs").eq_ignore_ascii_case("detail") {
            return Ok((false, true));
        }
        Ok((self.boolean("subs")?, false))
    }
}

fn num_error(e: &std::num::ParseIntError) -> &'static str {
    use std::num::IntErrorKind::*;
    match e.kind() {
        PosOverflow | NegOverflow => "value out of range",
        _ => "invalid syntax",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_go() {
        let p = Params::parse(Some(
            "limit=abc&subs=maybe&cid=%2B1&offset=%2B3&x=1&x=2&big=99999999999999999999",
        ));
        assert_eq!(
            p.int("limit").unwrap_err(),
            "Error decoding int for 'limit': strconv.Atoi: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            p.boolean("subs").unwrap_err(),
            "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
        assert!(p.uint64("cid").is_err());
        assert_eq!(p.int("offset"), Ok(3));
        assert_eq!(p.get("x"), "1");
        assert_eq!(p.int("missing"), Ok(0));
        assert!(p.int("big").unwrap_err().ends_with("value out of range"));
        let p = Params::parse(Some("subs=DETAIL"));
        assert_eq!(p.subs(), Ok((false, true)));
        let p = Params::parse(None);
        assert_eq!(p.subs(), Ok((false, false)));
    }
}
