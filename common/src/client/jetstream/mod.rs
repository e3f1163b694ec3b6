//! JetStream over the plain client: `$JS.API` requests with their JSON types, publishes
//! acknowledged by a stream, pull requests, and the Key-Value ([`kv`]) and object store
//! ([`object`]) conventions the official clients share.
//!
//! Configurations and infos are kept as the server's JSON ([`serde_json::Value`]) next to
//! typed views of the fields callers read, so nothing the server sends is lost when it is
//! shown again (`--json`).

pub mod kv;
pub mod object;

use super::{Client, Error as ClientError, Message};
use crate::headers::Headers;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::fmt;
use std::time::Duration;

/// The `error` object of an API answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
pub struct ApiError {
    #[serde(default)]
    pub code: u16,
    #[serde(default)]
    pub err_code: u16,
    #[serde(default)]
    pub description: String,
}

impl fmt::Display for ApiError {
    /// `description (err_code)`, as the reference CLI's management library prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.description.is_empty() {
            write!(
                f,
                "unknown JetStream {} Error ({})",
                self.code, self.err_code
            )
        } else {
            write!(f, "{} ({})", self.description, self.err_code)
        }
    }
}

/// What can go wrong talking to JetStream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The server answered with an API error.
    Api(ApiError),
    /// The request itself failed (no responders: JetStream is not enabled).
    Client(ClientError),
    /// An answer that is not the expected JSON.
    Decode(String),
    /// A convention was broken (bad bucket or key name, missing bucket, ...).
    Other(String),
}

impl Error {
    /// The API error code (`err_code`) when the server gave one.
    pub fn err_code(&self) -> Option<u16> {
        match self {
            Error::Api(a) => Some(a.err_code),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api(a) => a.fmt(f),
            Error::Client(ClientError::NoResponders) => {
                f.write_str("nats: no responders available for request")
            }
            Error::Client(e) => e.fmt(f),
            Error::Decode(t) => write!(f, "invalid JetStream answer: {t}"),
            Error::Other(t) => f.write_str(t),
        }
    }
}

impl std::error::Error for Error {}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        Error::Client(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Stream not found.
pub const ERR_STREAM_NOT_FOUND: u16 = 10059;
/// Message not found.
pub const ERR_NO_MESSAGE: u16 = 10037;
/// Consumer not found.
pub const ERR_CONSUMER_NOT_FOUND: u16 = 10014;

/// A stream's state block (the fields shown by the CLI).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StreamState {
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub first_seq: u64,
    #[serde(default)]
    pub first_ts: String,
    #[serde(default)]
    pub last_seq: u64,
    #[serde(default)]
    pub last_ts: String,
    #[serde(default)]
    pub num_deleted: u64,
    #[serde(default)]
    pub num_subjects: u64,
    #[serde(default)]
    pub consumer_count: u64,
}

/// The typed part of a stream configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StreamConfig {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub retention: String,
    #[serde(default)]
    pub max_consumers: i64,
    #[serde(default)]
    pub max_msgs: i64,
    #[serde(default)]
    pub max_bytes: i64,
    #[serde(default)]
    pub max_age: i64,
    #[serde(default)]
    pub max_msgs_per_subject: i64,
    #[serde(default)]
    pub max_msg_size: i64,
    #[serde(default)]
    pub discard: String,
    #[serde(default)]
    pub storage: String,
    #[serde(default)]
    pub num_replicas: i64,
    #[serde(default)]
    pub duplicate_window: i64,
    #[serde(default)]
    pub no_ack: bool,
    #[serde(default)]
    pub sealed: bool,
    #[serde(default)]
    pub deny_delete: bool,
    #[serde(default)]
    pub deny_purge: bool,
    #[serde(default)]
    pub allow_rollup_hdrs: bool,
    #[serde(default)]
    pub allow_direct: bool,
}

/// A stream info answer: typed fields plus the whole JSON.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub config: StreamConfig,
    pub state: StreamState,
    pub created: String,
    pub raw: Value,
}

impl StreamInfo {
    fn from_value(mut v: Value) -> Result<StreamInfo> {
        if let Some(o) = v.as_object_mut() {
            o.remove("type");
        }
        let config = serde_json::from_value(v["config"].clone())
            .map_err(|e| Error::Decode(e.to_string()))?;
        let state =
            serde_json::from_value(v["state"].clone()).map_err(|e| Error::Decode(e.to_string()))?;
        let created = v["created"].as_str().unwrap_or_default().to_string();
        Ok(StreamInfo {
            config,
            state,
            created,
            raw: v,
        })
    }
}

/// Sequence pair of a consumer's delivered / ack floor blocks.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SequenceInfo {
    #[serde(default)]
    pub consumer_seq: u64,
    #[serde(default)]
    pub stream_seq: u64,
    #[serde(default)]
    pub last_active: Option<String>,
}

/// The typed part of a consumer configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ConsumerConfig {
    #[serde(default)]
    pub durable_name: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub deliver_subject: Option<String>,
    #[serde(default)]
    pub deliver_group: Option<String>,
    #[serde(default)]
    pub deliver_policy: String,
    #[serde(default)]
    pub opt_start_seq: Option<u64>,
    #[serde(default)]
    pub opt_start_time: Option<String>,
    #[serde(default)]
    pub ack_policy: String,
    #[serde(default)]
    pub ack_wait: i64,
    #[serde(default)]
    pub max_deliver: i64,
    #[serde(default)]
    pub filter_subject: Option<String>,
    #[serde(default)]
    pub replay_policy: String,
    #[serde(default)]
    pub max_ack_pending: i64,
    #[serde(default)]
    pub max_waiting: i64,
    #[serde(default)]
    pub flow_control: bool,
    #[serde(default)]
    pub idle_heartbeat: i64,
    #[serde(default)]
    pub headers_only: bool,
}

/// A consumer info answer: typed fields plus the whole JSON.
#[derive(Debug, Clone)]
pub struct ConsumerInfo {
    pub stream_name: String,
    pub name: String,
    pub created: String,
    pub config: ConsumerConfig,
    pub delivered: SequenceInfo,
    pub ack_floor: SequenceInfo,
    pub num_ack_pending: u64,
    pub num_redelivered: u64,
    pub num_waiting: u64,
    pub num_pending: u64,
    pub push_bound: bool,
    pub raw: Value,
}

impl ConsumerInfo {
    fn from_value(mut v: Value) -> Result<ConsumerInfo> {
        if let Some(o) = v.as_object_mut() {
            o.remove("type");
        }
        let de = |k: &str| -> Result<SequenceInfo> {
            serde_json::from_value(v[k].clone()).map_err(|e| Error::Decode(e.to_string()))
        };
        let u = |k: &str| v[k].as_u64().unwrap_or(0);
        Ok(ConsumerInfo {
            stream_name: v["stream_name"].as_str().unwrap_or_default().to_string(),
            name: v["name"].as_str().unwrap_or_default().to_string(),
            created: v["created"].as_str().unwrap_or_default().to_string(),
            config: serde_json::from_value(v["config"].clone())
                .map_err(|e| Error::Decode(e.to_string()))?,
            delivered: de("delivered")?,
            ack_floor: de("ack_floor")?,
            num_ack_pending: u("num_ack_pending"),
            num_redelivered: u("num_redelivered"),
            num_waiting: u("num_waiting"),
            num_pending: u("num_pending"),
            push_bound: v["push_bound"].as_bool().unwrap_or(false),
            raw: v,
        })
    }
}

/// A message read straight from a stream (`STREAM.MSG.GET`).
#[derive(Debug, Clone)]
pub struct StoredMsg {
    pub subject: String,
    pub seq: u64,
    pub headers: Option<Headers>,
    pub data: Vec<u8>,
    pub time: String,
    pub raw: Value,
}

/// A publish acknowledgement.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct PubAck {
    pub stream: String,
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub duplicate: bool,
    #[serde(default)]
    pub domain: Option<String>,
}

/// Metadata carried in the reply subject of a message delivered by a consumer:
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<nanos>.<pending>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckMeta {
    pub stream: String,
    pub consumer: String,
    pub delivered: u64,
    pub stream_seq: u64,
    pub consumer_seq: u64,
    pub timestamp_nanos: i128,
    pub pending: u64,
}

impl AckMeta {
    pub fn parse(reply: &str) -> Option<AckMeta> {
        let t: Vec<&str> = reply.split('.').collect();
        // The v1 form has 9 tokens; the v2 form adds domain and account hash after $JS.ACK.
        let t: &[&str] = match t.len() {
            9 => &t[2..],
            n if n >= 12 => &t[4..],
            _ => return None,
        };
        if t.len() < 7 {
            return None;
        }
        Some(AckMeta {
            stream: t[0].to_string(),
            consumer: t[1].to_string(),
            delivered: t[2].parse().ok()?,
            stream_seq: t[3].parse().ok()?,
            consumer_seq: t[4].parse().ok()?,
            timestamp_nanos: t[5].parse().ok()?,
            pending: t[6].parse().ok()?,
        })
    }
}

/// A JetStream context: the client, the API prefix and the request timeout.
#[derive(Clone)]
pub struct JetStream {
    client: Client,
    prefix: String,
    timeout: Duration,
}

fn decode<T: DeserializeOwned>(v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::Decode(e.to_string()))
}

/// Whether a stream, consumer or bucket name is acceptable (no `.`, `*`, `>`, spaces).
pub fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && !n
            .chars()
            .any(|c| matches!(c, '.' | '*' | '>' | ' ' | '\t' | '\r' | '\n'))
}

impl JetStream {
    /// `$JS.API`, or `$JS.<domain>.API` with a domain, or any explicit prefix.
    pub fn new(client: Client, api_prefix: Option<&str>, domain: Option<&str>) -> JetStream {
        let prefix = match (api_prefix, domain) {
            (Some(p), _) if !p.is_empty() => p.trim_end_matches('.').to_string(),
            (_, Some(d)) if !d.is_empty() => format!("$JS.{d}.API"),
            _ => "$JS.API".to_string(),
        };
        let timeout = client.options().request_timeout;
        JetStream {
            client,
            prefix,
            timeout,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// One API request; an `error` in the answer becomes [`Error::Api`].
    pub async fn request(&self, api: &str, body: &Value) -> Result<Value> {
        let payload = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).map_err(|e| Error::Decode(e.to_string()))?
        };
        let subject = format!("{}.{api}", self.prefix);
        let m = self
            .client
            .request_full(&subject, None, &payload, self.timeout)
            .await?;
        let v: Value = serde_json::from_slice(&m.payload)
            .map_err(|e| Error::Decode(format!("{e}: {}", String::from_utf8_lossy(&m.payload))))?;
        if let Some(e) = v.get("error") {
            return Err(Error::Api(decode(e.clone())?));
        }
        Ok(v)
    }

    pub async fn account_info(&self) -> Result<Value> {
        self.request("INFO", &Value::Null).await
    }

    pub async fn create_stream(&self, config: &Value) -> Result<StreamInfo> {
        let name = config["name"].as_str().unwrap_or_default();
        let v = self
            .request(&format!("STREAM.CREATE.{name}"), config)
            .await?;
        StreamInfo::from_value(v)
    }

    pub async fn update_stream(&self, config: &Value) -> Result<StreamInfo> {
        let name = config["name"].as_str().unwrap_or_default();
        let v = self
            .request(&format!("STREAM.UPDATE.{name}"), config)
            .await?;
        StreamInfo::from_value(v)
    }

    pub async fn stream_info(&self, name: &str) -> Result<StreamInfo> {
        let v = self
            .request(&format!("STREAM.INFO.{name}"), &Value::Null)
            .await?;
        StreamInfo::from_value(v)
    }

    /// Every stream name, in the server's order (sorted), following pages.
    pub async fn stream_names(&self, subject: Option<&str>) -> Result<Vec<String>> {
        let mut out = Vec::new();
        loop {
            let mut req = json!({ "offset": out.len() });
            if let Some(s) = subject {
                req["subject"] = json!(s);
            }
            let v = self.request("STREAM.NAMES", &req).await?;
            let page: Vec<String> = match &v["streams"] {
                Value::Null => Vec::new(),
                s => decode(s.clone())?,
            };
            let total = v["total"].as_u64().unwrap_or(0) as usize;
            let n = page.len();
            out.extend(page);
            if n == 0 || out.len() >= total {
                return Ok(out);
            }
        }
    }

    /// Every stream's info, following pages.
    pub async fn streams(&self) -> Result<Vec<StreamInfo>> {
        let mut out = Vec::new();
        loop {
            let v = self
                .request("STREAM.LIST", &json!({ "offset": out.len() }))
                .await?;
            let page = v["streams"].as_array().cloned().unwrap_or_default();
            let total = v["total"].as_u64().unwrap_or(0) as usize;
            let n = page.len();
            for s in page {
                out.push(StreamInfo::from_value(s)?);
            }
            if n == 0 || out.len() >= total {
                return Ok(out);
            }
        }
    }

    pub async fn delete_stream(&self, name: &str) -> Result<()> {
        self.request(&format!("STREAM.DELETE.{name}"), &Value::Null)
            .await
            .map(|_| ())
    }

    /// Purges a stream; `req` holds the optional `filter`, `seq` and `keep`. Returns how
    /// many messages went.
    pub async fn purge_stream(&self, name: &str, req: &Value) -> Result<u64> {
        let v = self.request(&format!("STREAM.PURGE.{name}"), req).await?;
        Ok(v["purged"].as_u64().unwrap_or(0))
    }

    /// `STREAM.MSG.GET` with `seq`, `last_by_subj` or `next_by_subj` in `req`.
    pub async fn get_msg(&self, stream: &str, req: &Value) -> Result<StoredMsg> {
        let v = self
            .request(&format!("STREAM.MSG.GET.{stream}"), req)
            .await?;
        let m = &v["message"];
        let b64 = base64::engine::general_purpose::STANDARD;
        let data = match m["data"].as_str() {
            Some(d) => b64
                .decode(d)
                .map_err(|e| Error::Decode(format!("message data: {e}")))?,
            None => Vec::new(),
        };
        let headers = match m["hdrs"].as_str() {
            Some(h) if !h.is_empty() => {
                let raw = b64
                    .decode(h)
                    .map_err(|e| Error::Decode(format!("message headers: {e}")))?;
                Headers::parse(&raw).ok()
            }
            _ => None,
        };
        Ok(StoredMsg {
            subject: m["subject"].as_str().unwrap_or_default().to_string(),
            seq: m["seq"].as_u64().unwrap_or(0),
            headers,
            data,
            time: m["time"].as_str().unwrap_or_default().to_string(),
            raw: m.clone(),
        })
    }

    /// Like [`JetStream::get_msg`] but "no message" is `None`.
    pub async fn try_get_msg(&self, stream: &str, req: &Value) -> Result<Option<StoredMsg>> {
        match self.get_msg(stream, req).await {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.err_code() == Some(ERR_NO_MESSAGE) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The latest message of every subject matching `filter`, walking the stream with
    /// `next_by_subj` (no consumer needed), in stream order of those latest messages.
    pub async fn last_per_subject(&self, stream: &str, filter: &str) -> Result<Vec<StoredMsg>> {
        let mut latest: Vec<StoredMsg> = Vec::new();
        let mut seq = 1u64;
        while let Some(m) = self
            .try_get_msg(stream, &json!({ "seq": seq, "next_by_subj": filter }))
            .await?
        {
            seq = m.seq + 1;
            latest.retain(|o| o.subject != m.subject);
            latest.push(m);
        }
        Ok(latest)
    }

    /// Publishes and waits for the stream's acknowledgement.
    pub async fn publish(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: &[u8],
    ) -> Result<PubAck> {
        let m: Message = match self
            .client
            .request_full(subject, headers, payload, self.timeout)
            .await
        {
            Ok(m) => m,
            Err(ClientError::NoResponders) => {
                return Err(Error::Other("nats: no response from stream".into()))
            }
            Err(e) => return Err(e.into()),
        };
        let v: Value =
            serde_json::from_slice(&m.payload).map_err(|e| Error::Decode(e.to_string()))?;
        if let Some(e) = v.get("error") {
            return Err(Error::Api(decode(e.clone())?));
        }
        decode(v)
    }

    pub async fn create_consumer(&self, stream: &str, config: &Value) -> Result<ConsumerInfo> {
        let api = match config["durable_name"].as_str() {
            Some(d) if !d.is_empty() => format!("CONSUMER.DURABLE.CREATE.{stream}.{d}"),
            _ => format!("CONSUMER.CREATE.{stream}"),
        };
        let v = self
            .request(&api, &json!({ "stream_name": stream, "config": config }))
            .await?;
        ConsumerInfo::from_value(v)
    }

    pub async fn consumer_info(&self, stream: &str, name: &str) -> Result<ConsumerInfo> {
        let v = self
            .request(&format!("CONSUMER.INFO.{stream}.{name}"), &Value::Null)
            .await?;
        ConsumerInfo::from_value(v)
    }

    /// Every consumer's info on a stream, following pages.
    pub async fn consumers(&self, stream: &str) -> Result<Vec<ConsumerInfo>> {
        let mut out = Vec::new();
        loop {
            let v = self
                .request(
                    &format!("CONSUMER.LIST.{stream}"),
                    &json!({ "offset": out.len() }),
                )
                .await?;
            let page = v["consumers"].as_array().cloned().unwrap_or_default();
            let total = v["total"].as_u64().unwrap_or(0) as usize;
            let n = page.len();
            for c in page {
                out.push(ConsumerInfo::from_value(c)?);
            }
            if n == 0 || out.len() >= total {
                return Ok(out);
            }
        }
    }

    pub async fn delete_consumer(&self, stream: &str, name: &str) -> Result<()> {
        self.request(&format!("CONSUMER.DELETE.{stream}.{name}"), &Value::Null)
            .await
            .map(|_| ())
    }

    /// The subject a pull request for `stream`/`consumer` goes to.
    pub fn next_subject(&self, stream: &str, consumer: &str) -> String {
        format!("{}.CONSUMER.MSG.NEXT.{stream}.{consumer}", self.prefix)
    }
}

/// A message from a consumer, with its acknowledgement metadata.
#[derive(Debug, Clone)]
pub struct JsMessage {
    pub msg: Message,
    pub meta: Option<AckMeta>,
}

impl JsMessage {
    /// Acknowledges it (`+ACK` to the reply subject) and waits until the server saw it.
    pub async fn ack(&self, client: &Client) -> Result<()> {
        if let Some(r) = &self.msg.reply {
            client.publish(r, b"+ACK").await?;
            client.flush().await?;
        }
        Ok(())
    }
}

/// Status of a pull: a message, or the server's status why none came.
#[derive(Debug)]
pub enum Pulled {
    Msg(Box<JsMessage>),
    /// 404 No Messages, 408 Request Timeout, 409 (consumer deleted, ...): code and text.
    Status(u16, String),
    /// Nothing arrived in time.
    Timeout,
}

impl JetStream {
    /// One pull request for a single message, waiting up to `wait` (the server expires the
    /// request a little earlier so its status arrives).
    pub async fn next(&self, stream: &str, consumer: &str, wait: Duration) -> Result<Pulled> {
        let inbox = self.client.new_inbox();
        let mut sub = self.client.subscribe(&inbox).await?;
        let expires = wait
            .saturating_sub(Duration::from_millis(100))
            .max(Duration::from_millis(10));
        let req = json!({ "batch": 1, "expires": expires.as_nanos() as u64 });
        self.client
            .publish_full(
                &self.next_subject(stream, consumer),
                Some(&inbox),
                None,
                &serde_json::to_vec(&req).unwrap_or_default(),
            )
            .await?;
        loop {
            let m = match tokio::time::timeout(wait, sub.next()).await {
                Ok(Some(m)) => m,
                _ => return Ok(Pulled::Timeout),
            };
            match m.status() {
                // Heartbeats and flow control are not answers.
                Some(100) => continue,
                Some(503) => return Err(Error::Client(ClientError::NoResponders)),
                Some(code) => {
                    let text = m
                        .headers
                        .as_ref()
                        .and_then(|h| h.description.clone())
                        .unwrap_or_default();
                    return Ok(Pulled::Status(code, text));
                }
                None => {
                    let meta = m.reply.as_deref().and_then(AckMeta::parse);
                    return Ok(Pulled::Msg(Box::new(JsMessage { msg: m, meta })));
                }
            }
        }
    }
}

/// Go's `time.Duration` in nanoseconds from a [`Duration`].
pub fn nanos(d: Duration) -> i64 {
    d.as_nanos().min(i64::MAX as u128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_subjects_parse_in_both_forms() {
        let m = AckMeta::parse("$JS.ACK.S.C.1.5.2.1700000000000000000.3").unwrap();
        assert_eq!(
            (
                m.stream.as_str(),
                m.consumer.as_str(),
                m.delivered,
                m.stream_seq
            ),
            ("S", "C", 1, 5)
        );
        assert_eq!((m.consumer_seq, m.pending), (2, 3));
        let m = AckMeta::parse("$JS.ACK.dom.acc.S.C.1.5.2.17.3.tok").unwrap();
        assert_eq!(m.stream_seq, 5);
        assert!(AckMeta::parse("_INBOX.x").is_none());
    }

    #[test]
    fn api_errors_print_as_the_reference_cli() {
        let e = ApiError {
            code: 404,
            err_code: 10059,
            description: "stream not found".into(),
        };
        assert_eq!(Error::Api(e).to_string(), "stream not found (10059)");
        assert!(valid_name("ORDERS"));
        assert!(!valid_name("a.b"));
    }
}
