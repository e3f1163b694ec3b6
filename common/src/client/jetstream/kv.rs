//! The Key-Value convention: bucket `B` is the stream `KV_B` on `$KV.B.>`, a key's value is
//! the last message on `$KV.B.<key>`, deletes are markers with a `KV-Operation` header, and
//! purges roll the subject up (`Nats-Rollup: sub`).

use super::{nanos, Error, JetStream, PubAck, Result, StoredMsg, StreamInfo, ERR_STREAM_NOT_FOUND};
use crate::client::{Message, Subscriber};
use crate::headers::Headers;
use serde_json::{json, Value};
use std::time::Duration;

pub const OPERATION: &str = "KV-Operation";
pub const ROLLUP: &str = "Nats-Rollup";

/// What a bucket keeps, as `nats kv add` takes it.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub bucket: String,
    pub description: String,
    pub history: u64,
    pub ttl: Duration,
    pub max_value_size: i64,
    pub max_bytes: i64,
    pub storage_memory: bool,
    pub replicas: u64,
}

/// The kind of a stored entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Put,
    Delete,
    Purge,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Put => "PUT",
            Operation::Delete => "DEL",
            Operation::Purge => "PURGE",
        }
    }

    fn from_headers(h: Option<&Headers>) -> Operation {
        match h.and_then(|h| h.get(OPERATION)) {
            Some("DEL") => Operation::Delete,
            Some("PURGE") => Operation::Purge,
            _ => Operation::Put,
        }
    }
}

/// One value of a key.
#[derive(Debug, Clone)]
pub struct Entry {
    pub bucket: String,
    pub key: String,
    pub value: Vec<u8>,
    pub revision: u64,
    /// RFC3339 time the server stored it.
    pub created: String,
    /// How many newer entries there are (0 for the latest).
    pub delta: u64,
    pub operation: Operation,
}

/// `^[a-zA-Z0-9_-]+$`.
pub fn valid_bucket(b: &str) -> bool {
    !b.is_empty()
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// `^[-/_=\.a-zA-Z0-9]+$`, not starting or ending with `.`.
pub fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with('.')
        && !k.ends_with('.')
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'/' | b'_' | b'=' | b'.'))
}

/// A handle on one bucket.
#[derive(Clone)]
pub struct Store {
    pub js: JetStream,
    pub bucket: String,
    pub stream: String,
}

impl JetStream {
    /// Creates the bucket's stream as the official clients configure it.
    pub async fn create_kv(&self, c: &Config) -> Result<Store> {
        if !valid_bucket(&c.bucket) {
            return Err(Error::Other("nats: invalid bucket name".into()));
        }
        let history = c.history.max(1);
        if history > 64 {
            return Err(Error::Other("nats: history limited to a max of 64".into()));
        }
        let mut dupe = Duration::from_secs(120);
        if !c.ttl.is_zero() && c.ttl < dupe {
            dupe = c.ttl;
        }
        let cfg = json!({
            "name": format!("KV_{}", c.bucket),
            "description": c.description,
            "subjects": [format!("$KV.{}.>", c.bucket)],
            "retention": "limits",
            "max_consumers": -1,
            "max_msgs": -1,
            "max_bytes": if c.max_bytes == 0 { -1 } else { c.max_bytes },
            "max_age": nanos(c.ttl),
            "max_msgs_per_subject": history,
            "max_msg_size": if c.max_value_size == 0 { -1 } else { c.max_value_size },
            "storage": if c.storage_memory { "memory" } else { "file" },
            "discard": "new",
            "num_replicas": c.replicas.max(1),
            "duplicate_window": nanos(dupe),
            "allow_rollup_hdrs": true,
            "deny_delete": true,
            "deny_purge": false,
            "allow_direct": true,
            "mirror_direct": false,
        });
        let info = self.create_stream(&cfg).await?;
        Ok(Store {
            js: self.clone(),
            bucket: c.bucket.clone(),
            stream: info.config.name,
        })
    }

    /// Opens an existing bucket (`nats: bucket not found` otherwise).
    pub async fn kv(&self, bucket: &str) -> Result<Store> {
        if !valid_bucket(bucket) {
            return Err(Error::Other("nats: invalid bucket name".into()));
        }
        let stream = format!("KV_{bucket}");
        match self.stream_info(&stream).await {
            Ok(_) => Ok(Store {
                js: self.clone(),
                bucket: bucket.to_string(),
                stream,
            }),
            Err(e) if e.err_code() == Some(ERR_STREAM_NOT_FOUND) => {
                Err(Error::Other("nats: bucket not found".into()))
            }
            Err(e) => Err(e),
        }
    }

    /// Removes a bucket (its stream).
    pub async fn delete_kv(&self, bucket: &str) -> Result<()> {
        if !valid_bucket(bucket) {
            return Err(Error::Other("nats: invalid bucket name".into()));
        }
        self.delete_stream(&format!("KV_{bucket}")).await
    }
}

impl Store {
    fn subject(&self, key: &str) -> Result<String> {
        if !valid_key(key) {
            return Err(Error::Other("nats: invalid key".into()));
        }
        Ok(format!("$KV.{}.{key}", self.bucket))
    }

    pub async fn status(&self) -> Result<StreamInfo> {
        self.js.stream_info(&self.stream).await
    }

    /// Stores a value; returns its revision.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<u64> {
        let subj = self.subject(key)?;
        Ok(self.js.publish(&subj, None, value).await?.seq)
    }

    async fn marker(&self, key: &str, purge: bool) -> Result<PubAck> {
        let subj = self.subject(key)?;
        let mut h = Headers::new();
        if purge {
            h.insert(OPERATION, "PURGE");
            h.insert(ROLLUP, "sub");
        } else {
            h.insert(OPERATION, "DEL");
        }
        self.js.publish(&subj, Some(&h), b"").await
    }

    /// Leaves a delete marker; history stays.
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.marker(key, false).await.map(|_| ())
    }

    /// Leaves a purge marker that replaces the key's history.
    pub async fn purge(&self, key: &str) -> Result<()> {
        self.marker(key, true).await.map(|_| ())
    }

    fn entry(&self, key: &str, m: StoredMsg) -> Entry {
        Entry {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            operation: Operation::from_headers(m.headers.as_ref()),
            value: m.data,
            revision: m.seq,
            created: m.time,
            delta: 0,
        }
    }

    /// The latest entry of a key, deleted or not; `None` when it never existed.
    pub async fn entry_any(&self, key: &str) -> Result<Option<Entry>> {
        let subj = self.subject(key)?;
        Ok(self
            .js
            .try_get_msg(&self.stream, &json!({ "last_by_subj": subj }))
            .await?
            .map(|m| self.entry(key, m)))
    }

    /// The current value; `nats: key not found` when absent or deleted.
    pub async fn get(&self, key: &str) -> Result<Entry> {
        match self.entry_any(key).await? {
            Some(e) if e.operation == Operation::Put => Ok(e),
            _ => Err(Error::Other("nats: key not found".into())),
        }
    }

    /// A specific revision of a key.
    pub async fn get_revision(&self, key: &str, revision: u64) -> Result<Entry> {
        let subj = self.subject(key)?;
        match self
            .js
            .try_get_msg(&self.stream, &json!({ "seq": revision }))
            .await?
        {
            Some(m) if m.subject == subj => {
                let e = self.entry(key, m);
                if e.operation == Operation::Put {
                    Ok(e)
                } else {
                    Err(Error::Other("nats: key not found".into()))
                }
            }
            _ => Err(Error::Other("nats: key not found".into())),
        }
    }

    /// Keys holding a value now (deleted and purged ones left out).
    pub async fn keys(&self) -> Result<Vec<String>> {
        let prefix = format!("$KV.{}.", self.bucket);
        let latest = self
            .js
            .last_per_subject(&self.stream, &format!("{prefix}>"))
            .await?;
        Ok(latest
            .into_iter()
            .filter(|m| Operation::from_headers(m.headers.as_ref()) == Operation::Put)
            .filter_map(|m| m.subject.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }

    /// Watches `key` (a key or a wildcard, `>` for all): the latest value of each matching
    /// key first, then every change. Uses an ephemeral push consumer.
    pub async fn watch(&self, key: &str) -> Result<Watcher> {
        let filter = format!("$KV.{}.{key}", self.bucket);
        let client = self.js.client().clone();
        let inbox = client.new_inbox();
        let sub = client.subscribe(&inbox).await?;
        let cfg = json!({
            "deliver_subject": inbox,
            "deliver_policy": "last_per_subject",
            "ack_policy": "none",
            "max_deliver": 1,
            "filter_subject": filter,
            "replay_policy": "instant",
            "flow_control": true,
            "idle_heartbeat": nanos(Duration::from_secs(5)),
            "headers_only": false,
            "mem_storage": true,
            "num_replicas": 1,
        });
        let info = self.js.create_consumer(&self.stream, &cfg).await?;
        Ok(Watcher {
            store: self.clone(),
            sub,
            initial: info.num_pending,
            consumer: info.name,
        })
    }
}

/// Entries from a watch, in order.
pub struct Watcher {
    store: Store,
    sub: Subscriber,
    /// Values pending when the watch started (the initial snapshot).
    pub initial: u64,
    pub consumer: String,
}

impl Watcher {
    /// The next entry; `None` when the subscription ended.
    pub async fn next(&mut self) -> Option<Entry> {
        loop {
            let m: Message = self.sub.next().await?;
            if m.status() == Some(100) {
                // Flow control asks for an empty reply; heartbeats have none.
                if let Some(r) = &m.reply {
                    let _ = self.store.js.client().publish(r, b"").await;
                }
                continue;
            }
            let meta = m.reply.as_deref().and_then(super::AckMeta::parse);
            let prefix = format!("$KV.{}.", self.store.bucket);
            let key = m.subject.strip_prefix(&prefix).unwrap_or(&m.subject);
            let (revision, created, delta) = match &meta {
                Some(a) => (
                    a.stream_seq,
                    crate::monitor::format_unix_nanos(a.timestamp_nanos),
                    a.pending,
                ),
                None => (0, String::new(), 0),
            };
            return Some(Entry {
                bucket: self.store.bucket.clone(),
                key: key.to_string(),
                operation: Operation::from_headers(m.headers.as_ref()),
                value: m.payload.to_vec(),
                revision,
                created,
                delta,
            });
        }
    }
}

/// The bucket name of a KV stream (`KV_x` → `x`).
pub fn bucket_of(stream: &str) -> Option<&str> {
    stream.strip_prefix("KV_")
}

/// Whether a stream info describes a KV bucket.
pub fn is_kv_stream(raw: &Value) -> bool {
    raw["config"]["name"]
        .as_str()
        .is_some_and(|n| n.starts_with("KV_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_bucket("cfg-1_a"));
        assert!(!valid_bucket("a.b"));
        assert!(valid_key("a/b=c.d"));
        assert!(!valid_key(".a"));
        assert!(!valid_key("a b"));
        assert_eq!(bucket_of("KV_x"), Some("x"));
    }
}
