//! The body/header templates of `nats pub`, `request` and `reply`: a small subset of Go
//! text/template with the reference's functions (`{{Count}}`, `{{.Count}}`, `{{Random 1 5}}`...).

use rand::Rng;
use std::time::{SystemTime, UNIX_EPOCH};

/// Values a template can refer to.
#[derive(Debug, Clone, Default)]
pub struct Ctx<'a> {
    pub count: u64,
    /// The request body, for `nats reply`.
    pub request: Option<&'a str>,
}

/// Expands `text`. An error (unknown function, unclosed action, bad argument) is reported
/// like Go's template errors; callers then send the raw text as the reference does.
pub fn render(text: &str, ctx: &Ctx<'_>) -> Result<String, String> {
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "template: body:1: unclosed action".to_string())?;
        let mut action = &after[..end];
        // `{{- x -}}` trim markers.
        if let Some(a) = action.strip_prefix("- ") {
            action = a;
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
        }
        let mut trim_after = false;
        if let Some(a) = action.strip_suffix(" -") {
            action = a;
            trim_after = true;
        }
        out.push_str(&eval(action.trim(), ctx)?);
        rest = &after[end + 2..];
        if trim_after {
            rest = rest.trim_start();
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn eval(action: &str, ctx: &Ctx<'_>) -> Result<String, String> {
    let mut words = action.split_whitespace();
    let Some(name) = words.next() else {
        return Err("template: body:1: missing value for command".into());
    };
    let args: Vec<&str> = words.collect();
    let now = SystemTime::now();
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let no_args = |v: String| -> Result<String, String> {
        if args.is_empty() {
            Ok(v)
        } else {
            Err(format!(
                "template: body:1:{}: executing \"body\" at <{name}>: wrong number of args for {name}: want 0 got {}",
                2 + action.len(),
                args.len()
            ))
        }
    };
    match name {
        "Count" | ".Count" | "Cnt" | ".Cnt" => no_args(ctx.count.to_string()),
        "TimeStamp" | ".TimeStamp" => no_args(crate::output::rfc3339(now)),
        "Time" | ".Time" => no_args(crate::output::kitchen(now)),
        "Unix" | ".Unix" => no_args(since.as_secs().to_string()),
        "UnixNano" | ".UnixNano" => no_args(since.as_nanos().to_string()),
        "ID" | ".ID" => no_args(nats_common::nuid::next()),
        "Request" | ".Request" => match ctx.request {
            Some(r) => no_args(r.to_string()),
            None => Err(format!(
                "template: body:1: function \"{}\" not defined",
                name.trim_start_matches('.')
            )),
        },
        "Random" => {
            let [a, b] = args.as_slice() else {
                return Err(format!(
                    "template: body:1: wrong number of args for Random: want 2 got {}",
                    args.len()
                ));
            };
            let lo: usize = a
                .parse()
                .map_err(|_| format!("template: body:1: bad number syntax: {a:?}"))?;
            let hi: usize = b
                .parse()
                .map_err(|_| format!("template: body:1: bad number syntax: {b:?}"))?;
            Ok(random_string(lo, hi))
        }
        other if other.starts_with('.') => Err(format!(
            "template: body:1: can't evaluate field {} in type main.pubData",
            &other[1..]
        )),
        other => Err(format!("template: body:1: function {other:?} not defined")),
    }
}

/// Random `[a-zA-Z0-9]` string with a length in `[lo, hi)` (exactly `lo` when hi <= lo).
pub fn random_string(lo: usize, hi: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    let len = if hi > lo { rng.gen_range(lo..hi) } else { lo };
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: &str, n: u64) -> Result<String, String> {
        render(
            t,
            &Ctx {
                count: n,
                request: None,
            },
        )
    }

    #[test]
    fn expands_tokens() {
        assert_eq!(r("plain", 1).unwrap(), "plain");
        assert_eq!(
            r("msg {{Count}} / {{.Count}} / {{ Cnt }}", 7).unwrap(),
            "msg 7 / 7 / 7"
        );
        assert_eq!(r("{{ID}}", 1).unwrap().len(), 22);
        let ts = r("{{TimeStamp}}", 1).unwrap();
        assert_eq!(&ts[4..5], "-");
        assert!(ts.contains('T'));
        assert!(r("{{Time}}", 1).unwrap().ends_with('M'));
        assert!(r("{{Unix}}", 1).unwrap().parse::<u64>().unwrap() > 1_600_000_000);
        assert!(r("{{UnixNano}}", 1).unwrap().len() >= 19);
        let s = r("{{Random 3 6}}", 1).unwrap();
        assert!((3..6).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(r("{{Random 4 4}}", 1).unwrap().len(), 4);
        let req = Ctx {
            count: 2,
            request: Some("hi"),
        };
        assert_eq!(
            render("got {{.Request}} #{{Count}}", &req).unwrap(),
            "got hi #2"
        );
    }

    #[test]
    fn errors() {
        assert!(r("{{Nope}}", 1).unwrap_err().contains("not defined"));
        assert!(r("{{Count", 1).unwrap_err().contains("unclosed action"));
        assert!(r("{{Random 1}}", 1).is_err());
        assert!(r("{{Random x 2}}", 1).is_err());
        assert!(r("{{Request}}", 1).is_err());
        assert!(r("{{}}", 1).is_err());
    }
}
