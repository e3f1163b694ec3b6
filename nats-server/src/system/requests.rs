//! Requests to the system account: `$SYS.REQ.SERVER.(PING|<id>).<ENDPOINT>` and
//! `$SYS.REQ.ACCOUNT.<acc>.<ENDPOINT>`, answered with the monitoring pages' data in the
//! reference's envelopes (`{"server":…,"data":…}`, errors as `{"server":…,"error":…}`), and
//! not at all where the reference stays silent (a server filter that excludes this server,
//! an account without local connections, no reply subject).

use super::{events, Handler, System};
use crate::monitor::{self, go_json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// An owned copy of a request, handled off the message path.
pub struct Request {
    pub subject: String,
    pub reply: Option<Vec<u8>>,
    pub headers: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

/// How an answer may be compressed, from the request's `Accept-Encoding` header.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    None,
    Snappy,
    Gzip,
    /// Asked for something else: sent plain, labelled `identity`.
    Identity,
}

fn accept_encoding(headers: Option<&[u8]>) -> Encoding {
    let Some(h) = headers else {
        return Encoding::None;
    };
    let value = nats_common::headers::Headers::parse(h)
        .ok()
        .and_then(|h| h.get("Accept-Encoding").map(str::to_ascii_lowercase))
        .unwrap_or_default();
    if value.is_empty() {
        Encoding::None
    } else if value.contains("snappy") || value.contains("s2") {
        Encoding::Snappy
    } else if value.contains("gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// The answer's body and `Content-Encoding` header, compressed as asked (the snappy
/// framing format, as the reference's s2 writer in snappy-compatible mode produces).
fn encode(body: Vec<u8>, enc: Encoding) -> (Option<Vec<u8>>, Vec<u8>) {
    use std::io::Write as _;
    let (name, out) = match enc {
        Encoding::None => return (None, body),
        Encoding::Identity => ("identity", body),
        Encoding::Snappy => {
            let mut w = snap::write::FrameEncoder::new(Vec::new());
            let ok = w.write_all(&body).is_ok();
            match w.into_inner() {
                Ok(v) if ok => ("snappy", v),
                _ => return (None, body),
            }
        }
        Encoding::Gzip => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let ok = w.write_all(&body).is_ok();
            match w.finish() {
                Ok(v) if ok => ("gzip", v),
                _ => return (None, body),
            }
        }
    };
    let hdr = format!("NATS/1.0\r\nContent-Encoding: {name}\r\n\r\n").into_bytes();
    (Some(hdr), out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerEndpoint {
    Statsz,
    Varz,
    Subsz,
    Connz,
    Routez,
    Leafz,
    Healthz,
    Gatewayz,
    Accountz,
    Jsz,
}

impl ServerEndpoint {
    pub fn name(self) -> &'static str {
        match self {
            ServerEndpoint::Statsz => "STATSZ",
            ServerEndpoint::Varz => "VARZ",
            ServerEndpoint::Subsz => "SUBSZ",
            ServerEndpoint::Connz => "CONNZ",
            ServerEndpoint::Routez => "ROUTEZ",
            ServerEndpoint::Leafz => "LEAFZ",
            ServerEndpoint::Healthz => "HEALTHZ",
            ServerEndpoint::Gatewayz => "GATEWAYZ",
            ServerEndpoint::Accountz => "ACCOUNTZ",
            ServerEndpoint::Jsz => "JSZ",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountEndpoint {
    Statz,
    Conns,
    Subsz,
    Connz,
    Leafz,
    Jsz,
    Info,
}

impl AccountEndpoint {
    pub fn name(self) -> &'static str {
        match self {
            AccountEndpoint::Statz => "STATZ",
            AccountEndpoint::Conns => "CONNS",
            AccountEndpoint::Subsz => "SUBSZ",
            AccountEndpoint::Connz => "CONNZ",
            AccountEndpoint::Leafz => "LEAFZ",
            AccountEndpoint::Jsz => "JSZ",
            AccountEndpoint::Info => "INFO",
        }
    }
}

/// The filter every server endpoint takes with its options: substrings of this server's
/// name, host and cluster, its tags, its JetStream domain.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Filter {
    server_name: String,
    cluster: String,
    host: String,
    tags: Vec<String>,
    domain: String,
}

impl Filter {
    fn matches(&self, server: &crate::server::Server) -> bool {
        let opts = server.opts();
        (self.server_name.is_empty() || server.name.contains(&self.server_name))
            && (self.cluster.is_empty() || server.cluster.name().contains(&self.cluster))
            && (self.host.is_empty() || opts.host.contains(&self.host))
            && self.tags.is_empty()
            && self.domain.is_empty()
    }
}

#[derive(Serialize)]
struct ApiError {
    code: u16,
    description: String,
}

/// The reference's envelope: data, or an error (a handler's error keeps `"data":null`,
/// a request that did not decode has no `data` at all).
#[derive(Serialize)]
struct Envelope<T: Serialize> {
    server: events::EventServer,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Option<T>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ApiError>,
}

/// What one request produced.
enum Answer {
    Data(String),
    /// Already a complete message (STATSZ, CONNS).
    Raw(String),
    /// A handler error: 500 with `"data":null`.
    Failed(String),
    /// The body did not decode: 400 without `data`.
    BadRequest(String),
    /// The reference sends nothing.
    Silent,
}

/// Go's `encoding/json` error text for the common ways a body fails to decode.
fn json_error(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of JSON input".to_string(),
        serde_json::error::Category::Data => format!("json: {e}"),
        _ => format!("invalid character looking for beginning of value: {e}"),
    }
}

/// The body as options: empty means the defaults; the filter applies only to a body.
fn options(payload: &[u8]) -> Result<(Value, Filter), String> {
    if payload.is_empty() {
        return Ok((Value::Object(Default::default()), Filter::default()));
    }
    let v: Value = serde_json::from_slice(payload).map_err(|e| json_error(&e))?;
    let f: Filter = serde_json::from_value(v.clone()).unwrap_or_default();
    Ok((v, f))
}

fn data<T: Serialize>(v: &T) -> Answer {
    Answer::Data(go_json(v))
}

pub fn answer(sys: &Arc<System>, handler: Handler, req: Request) {
    let Some(server) = sys.server() else { return };
    let Some(mon) = server.monitor() else { return };
    let answer = match handler {
        Handler::Statsz => match options(&req.payload) {
            Err(e) => Answer::BadRequest(e),
            Ok((_, f)) if !f.matches(&server) => Answer::Silent,
            Ok(_) => {
                if req.reply.is_none() {
                    // Asked without a reply subject: broadcast instead.
                    events::send_statsz(sys, &server);
                    return;
                }
                Answer::Raw(events::statsz_json(sys, &server))
            }
        },
        Handler::Server(ep) => match options(&req.payload) {
            Err(e) => Answer::BadRequest(e),
            Ok((_, f)) if !f.matches(&server) => Answer::Silent,
            Ok((v, _)) => server_endpoint(&mon, ep, &v),
        },
        Handler::Account(ep) => {
            let toks: Vec<&str> = req.subject.split('.').collect();
            if toks.len() != 5 {
                return;
            }
            let acc = toks[3].to_string();
            match options(&req.payload) {
                Err(e) => Answer::BadRequest(e),
                Ok((v, _)) => account_endpoint(sys, &mon, ep, &acc, &v),
            }
        }
        Handler::AccountPingStatz => match options(&req.payload) {
            Err(e) => Answer::BadRequest(e),
            Ok((v, _)) => {
                let names: Vec<String> = v
                    .get("accounts")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let unused = v
                    .get("include_unused")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let st = monitor::account_statz(&server, &names, unused);
                if st.account_statz.is_empty() {
                    Answer::Silent
                } else {
                    data(&st)
                }
            }
        },
        Handler::Nsubs => nsubs(&server, &req.payload),
        Handler::RemoteStatsz
        | Handler::RemoteShutdown
        | Handler::RemoteConns
        | Handler::Ignore => Answer::Silent,
    };
    let Some(reply) = req.reply.as_deref() else {
        return;
    };
    // Only the monitoring answers are compressed, never errors, statistics or counts.
    let enc = match (&answer, handler) {
        (Answer::Data(_), Handler::Server(_) | Handler::Account(_)) => {
            accept_encoding(req.headers.as_deref())
        }
        _ => Encoding::None,
    };
    let json = match answer {
        Answer::Silent => return,
        Answer::Raw(s) => s,
        Answer::Data(d) => format!(
            "{{\"server\":{},\"data\":{d}}}",
            go_json(&sys.event_server(&server))
        ),
        Answer::Failed(e) => go_json(&Envelope::<()> {
            server: sys.event_server(&server),
            data: Some(None),
            error: Some(ApiError {
                code: 500,
                description: e,
            }),
        }),
        Answer::BadRequest(e) => go_json(&Envelope::<()> {
            server: sys.event_server(&server),
            data: None,
            error: Some(ApiError {
                code: 400,
                description: e,
            }),
        }),
    };
    let (headers, body) = encode(json.into_bytes(), enc);
    server.send_internal(&sys.account, reply, None, headers.as_deref(), &body);
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn int(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn server_endpoint(mon: &Arc<monitor::Monitor>, ep: ServerEndpoint, v: &Value) -> Answer {
    match ep {
        ServerEndpoint::Statsz => Answer::Silent,
        ServerEndpoint::Varz => data(&monitor::varz_data(mon)),
        ServerEndpoint::Subsz => match monitor::subsz_data(
            mon,
            flag(v, "subscriptions"),
            int(v, "offset"),
            int(v, "limit"),
            text(v, "test"),
            text(v, "account"),
        ) {
            Ok(s) => data(&s),
            Err(e) => Answer::Failed(e),
        },
        ServerEndpoint::Connz => {
            match monitor::connz_data(mon, &monitor::ConnzOptions::from_json(v)) {
                Ok(c) => data(&c),
                Err(e) => Answer::Failed(e),
            }
        }
        ServerEndpoint::Routez => data(&monitor::routez_data(
            mon,
            flag(v, "subscriptions"),
            flag(v, "subscriptions_detail"),
        )),
        ServerEndpoint::Leafz => data(&monitor::leafz_data(&mon.server)),
        ServerEndpoint::Gatewayz => data(&monitor::gatewayz_data(&mon.server)),
        ServerEndpoint::Jsz => data(&monitor::jsz_data(&mon.server)),
        ServerEndpoint::Healthz => Answer::Data("{\"status\":\"ok\"}".to_string()),
        ServerEndpoint::Accountz => match monitor::accountz_data(&mon.server, text(v, "account")) {
            Ok(a) => data(&a),
            Err(e) => Answer::Failed(e),
        },
    }
}

fn account_endpoint(
    sys: &System,
    mon: &Arc<monitor::Monitor>,
    ep: AccountEndpoint,
    acc: &str,
    v: &Value,
) -> Answer {
    let server = &mon.server;
    let local = server.accounts.get(acc).map_or(0, |a| {
        a.num_clients.load(std::sync::atomic::Ordering::Relaxed)
    });
    match ep {
        AccountEndpoint::Subsz => match monitor::subsz_data(
            mon,
            true,
            int(v, "offset"),
            int(v, "limit"),
            text(v, "test"),
            acc,
        ) {
            Ok(s) => data(&s),
            Err(e) => Answer::Failed(e),
        },
        AccountEndpoint::Connz => {
            let mut o = monitor::ConnzOptions::from_json(v);
            o.account = acc.to_string();
            match monitor::connz_data(mon, &o) {
                Ok(c) => data(&c),
                Err(e) => Answer::Failed(e),
            }
        }
        AccountEndpoint::Leafz => data(&monitor::leafz_with(server, false, Some(acc))),
        AccountEndpoint::Jsz => Answer::Failed("jetstream not enabled".to_string()),
        AccountEndpoint::Info => match monitor::account_info(server, acc) {
            Some(i) => data(&i),
            None => Answer::Failed(format!("Account {acc} does not exist")),
        },
        AccountEndpoint::Statz => {
            if acc == "PING" || (local == 0 && !flag(v, "include_unused")) {
                return Answer::Silent;
            }
            data(&monitor::account_statz(server, &[acc.to_string()], true))
        }
        AccountEndpoint::Conns => match server.accounts.get(acc) {
            Some(a) if local > 0 => Answer::Raw(events::account_conns_json(sys, server, &a)),
            _ => Answer::Silent,
        },
    }
}

/// `$SYS.REQ.ACCOUNT.NSUBS`: how many client subscriptions of the account match the
/// subject (and queue), as a bare number; silent for a bad body or an idle account.
fn nsubs(server: &crate::server::Server, payload: &[u8]) -> Answer {
    #[derive(Deserialize)]
    struct Req {
        acc: String,
        subject: String,
        #[serde(default)]
        queue: Option<String>,
    }
    let Ok(r) = serde_json::from_slice::<Req>(payload) else {
        return Answer::Silent;
    };
    let Some(acc) = server.accounts.get(&r.acc) else {
        return Answer::Silent;
    };
    if acc.num_clients.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        return Answer::Silent;
    }
    // The queue travels base64 encoded (a Go byte slice).
    let queue = r.queue.and_then(|q| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(q).ok()
    });
    let n = monitor::count_client_subs(&acc, r.subject.as_bytes(), queue.as_deref());
    Answer::Raw(n.to_string())
}
