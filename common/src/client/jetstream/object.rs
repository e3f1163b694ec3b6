//! The object store convention: bucket `B` is the stream `OBJ_B`; an object's chunks go to
//! `$O.B.C.<nuid>` and its description (JSON, with a SHA-256 digest) to
//! `$O.B.M.<base64url(name)>`, rolled up so only the latest description stays.

use super::{nanos, Error, JetStream, Result, StreamInfo, ERR_STREAM_NOT_FOUND};
use crate::headers::Headers;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::{Duration, SystemTime};

/// Chunk size the official clients use.
pub const CHUNK_SIZE: usize = 128 * 1024;

/// What `nats object add` takes.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub bucket: String,
    pub description: String,
    pub ttl: Duration,
    pub storage_memory: bool,
    pub replicas: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chunk_size: Option<u64>,
}

/// The JSON description of an object, as every client writes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<ObjectOptions>,
    pub bucket: String,
    #[serde(default)]
    pub nuid: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub mtime: String,
    #[serde(default)]
    pub chunks: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl ObjectInfo {
    /// The digest as `("SHA-256", hex)`.
    pub fn digest_hex(&self) -> Option<(String, String)> {
        let (alg, b64) = self.digest.split_once('=')?;
        let raw = base64::engine::general_purpose::URL_SAFE.decode(b64).ok()?;
        Some((alg.to_string(), hex(&raw)))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `SHA-256=<base64url>` of `data`.
pub fn digest(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    format!(
        "SHA-256={}",
        base64::engine::general_purpose::URL_SAFE.encode(d.as_ref())
    )
}

/// An object name as it appears in its meta subject.
pub fn encode_name(name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(name.as_bytes())
}

/// `^[a-zA-Z0-9_-]+$`.
pub fn valid_bucket(b: &str) -> bool {
    super::kv::valid_bucket(b)
}

/// A handle on one object store bucket.
#[derive(Clone)]
pub struct ObjectStore {
    pub js: JetStream,
    pub bucket: String,
    pub stream: String,
}

impl JetStream {
    pub async fn create_object_store(&self, c: &Config) -> Result<ObjectStore> {
        if !valid_bucket(&c.bucket) {
            return Err(Error::Other("nats: invalid bucket name".into()));
        }
        let cfg = json!({
            "name": format!("OBJ_{}", c.bucket),
            "description": c.description,
            "subjects": [format!("$O.{}.C.>", c.bucket), format!("$O.{}.M.>", c.bucket)],
            "retention": "limits",
            "max_consumers": -1,
            "max_msgs": -1,
            "max_bytes": -1,
            "max_age": nanos(c.ttl),
            "max_msgs_per_subject": -1,
            "max_msg_size": -1,
            "storage": if c.storage_memory { "memory" } else { "file" },
            "discard": "new",
            "num_replicas": c.replicas.max(1),
            "duplicate_window": nanos(Duration::from_secs(120)),
            "allow_rollup_hdrs": true,
            "allow_direct": true,
        });
        let info = self.create_stream(&cfg).await?;
        Ok(ObjectStore {
            js: self.clone(),
            bucket: c.bucket.clone(),
            stream: info.config.name,
        })
    }

    /// Opens an existing bucket (`nats: stream not found` otherwise, as the Go client says).
    pub async fn object_store(&self, bucket: &str) -> Result<ObjectStore> {
        if !valid_bucket(bucket) {
            return Err(Error::Other("nats: invalid bucket name".into()));
        }
        let stream = format!("OBJ_{bucket}");
        match self.stream_info(&stream).await {
            Ok(_) => Ok(ObjectStore {
                js: self.clone(),
                bucket: bucket.to_string(),
                stream,
            }),
            Err(e) if e.err_code() == Some(ERR_STREAM_NOT_FOUND) => {
                Err(Error::Other("nats: stream not found".into()))
            }
            Err(e) => Err(e),
        }
    }
}

impl ObjectStore {
    fn meta_subject(&self, name: &str) -> String {
        format!("$O.{}.M.{}", self.bucket, encode_name(name))
    }

    pub async fn status(&self) -> Result<StreamInfo> {
        self.js.stream_info(&self.stream).await
    }

    /// The description of an object, deleted or not; `None` when there is none.
    pub async fn info_any(&self, name: &str) -> Result<Option<ObjectInfo>> {
        let subj = self.meta_subject(name);
        match self
            .js
            .try_get_msg(&self.stream, &json!({ "last_by_subj": subj }))
            .await?
        {
            None => Ok(None),
            Some(m) => serde_json::from_slice(&m.data)
                .map(Some)
                .map_err(|e| Error::Decode(e.to_string())),
        }
    }

    /// The description of a live object; `nats: object not found` otherwise.
    pub async fn info(&self, name: &str) -> Result<ObjectInfo> {
        match self.info_any(name).await? {
            Some(i) if !i.deleted => Ok(i),
            _ => Err(Error::Other("nats: object not found".into())),
        }
    }

    /// Stores `data` under `name`, replacing (and purging) an earlier version.
    pub async fn put(&self, name: &str, description: &str, data: &[u8]) -> Result<ObjectInfo> {
        if name.is_empty() {
            return Err(Error::Other("nats: object-store name is required".into()));
        }
        let previous = self.info_any(name).await?;
        let nuid = crate::nuid::next();
        let chunk_subject = format!("$O.{}.C.{nuid}", self.bucket);
        let mut chunks = 0u64;
        for c in data.chunks(CHUNK_SIZE) {
            self.js.publish(&chunk_subject, None, c).await?;
            chunks += 1;
        }
        let info = ObjectInfo {
            name: name.to_string(),
            description: (!description.is_empty()).then(|| description.to_string()),
            options: Some(ObjectOptions {
                max_chunk_size: Some(CHUNK_SIZE as u64),
            }),
            bucket: self.bucket.clone(),
            nuid,
            size: data.len() as u64,
            mtime: crate::monitor::format_rfc3339_nanos(SystemTime::now()),
            chunks,
            digest: digest(data),
            deleted: false,
        };
        let mut h = Headers::new();
        h.insert(super::kv::ROLLUP, "sub");
        let body = serde_json::to_vec(&info).map_err(|e| Error::Decode(e.to_string()))?;
        self.js
            .publish(&self.meta_subject(name), Some(&h), &body)
            .await?;
        if let Some(p) = previous {
            if !p.nuid.is_empty() {
                let filter = format!("$O.{}.C.{}", self.bucket, p.nuid);
                self.js
                    .purge_stream(&self.stream, &json!({ "filter": filter }))
                    .await?;
            }
        }
        Ok(info)
    }

    /// Reads an object whole, checking its size and digest.
    pub async fn get(&self, name: &str) -> Result<(ObjectInfo, Vec<u8>)> {
        let info = self.info(name).await?;
        let filter = format!("$O.{}.C.{}", self.bucket, info.nuid);
        let mut data = Vec::with_capacity(info.size as usize);
        let mut seq = 1u64;
        let mut got = 0u64;
        while got < info.chunks {
            let Some(m) = self
                .js
                .try_get_msg(&self.stream, &json!({ "seq": seq, "next_by_subj": filter }))
                .await?
            else {
                break;
            };
            seq = m.seq + 1;
            got += 1;
            data.extend_from_slice(&m.data);
        }
        if data.len() as u64 != info.size {
            return Err(Error::Other(format!(
                "nats: object size mismatch: got {} expected {}",
                data.len(),
                info.size
            )));
        }
        if !info.digest.is_empty() && digest(&data) != info.digest {
            return Err(Error::Other(
                "nats: received a corrupt object, digests do not match".into(),
            ));
        }
        Ok((info, data))
    }

    /// Every live object, in the order their descriptions were last written.
    pub async fn list(&self) -> Result<Vec<ObjectInfo>> {
        let latest = self
            .js
            .last_per_subject(&self.stream, &format!("$O.{}.M.>", self.bucket))
            .await?;
        let mut out = Vec::new();
        for m in latest {
            let i: ObjectInfo =
                serde_json::from_slice(&m.data).map_err(|e| Error::Decode(e.to_string()))?;
            if !i.deleted {
                out.push(i);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_and_names_as_the_go_client() {
        assert_eq!(
            digest(b""),
            "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(encode_name("a b.txt"), "YSBiLnR4dA==");
        let i = ObjectInfo {
            digest: digest(b""),
            ..Default::default()
        };
        assert_eq!(
            i.digest_hex().unwrap().1,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
