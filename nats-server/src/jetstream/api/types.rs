//! The API's JSON shapes, with the reference's field names, order and omissions.

use super::errors::ApiError;
use serde::{Deserialize, Serialize};

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Retention {
    #[default]
    Limits,
    Interest,
    #[serde(rename = "workqueue")]
    WorkQueue,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Discard {
    #[default]
    Old,
    New,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    #[default]
    File,
    Memory,
}

/// A stream's configuration (`StreamConfig` of the reference). Durations in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamConfig {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    pub retention: Retention,
    pub max_consumers: i64,
    pub max_msgs: i64,
    pub max_bytes: i64,
    pub max_age: i64,
    pub max_msgs_per_subject: i64,
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub max_msg_size: i32,
    pub discard: Discard,
    pub storage: Storage,
    pub num_replicas: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub no_ack: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub template_owner: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub duplicate_window: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub republish: Option<serde_json::Value>,
    pub allow_direct: bool,
    pub mirror_direct: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub discard_new_per_subject: bool,
    pub sealed: bool,
    pub deny_delete: bool,
    pub deny_purge: bool,
    pub allow_rollup_hdrs: bool,
}

/// A stream's `state`.
#[derive(Clone, Debug, Serialize)]
pub struct StreamState {
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub first_ts: String,
    pub last_seq: u64,
    pub last_ts: String,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub num_deleted: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub num_subjects: u64,
    pub consumer_count: u64,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

#[derive(Clone, Debug, Serialize)]
pub struct StreamInfo {
    pub config: StreamConfig,
    pub created: String,
    pub state: StreamState,
}

/// Go's zero time and RFC 3339 with nanoseconds, as the reference writes times.
pub fn time_string(unix_nanos: i64) -> String {
    if unix_nanos == 0 {
        "0001-01-01T00:00:00Z".to_string()
    } else {
        nats_common::monitor::format_unix_nanos(unix_nanos as i128)
    }
}

/// Every response: `type`, then `error` when there is one, then the rest.
#[derive(Serialize)]
pub struct Response<T: Serialize> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    #[serde(flatten)]
    pub body: T,
}

#[derive(Serialize)]
pub struct Empty {}

/// `total`, `offset`, `limit` of a paged answer.
#[derive(Serialize, Default)]
pub struct Paged {
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
}

#[derive(Serialize)]
pub struct StreamInfoBody {
    #[serde(flatten)]
    pub paged: Paged,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub info: Option<StreamInfo>,
}

#[derive(Serialize)]
pub struct CreateBody {
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub info: Option<StreamInfo>,
    #[serde(skip_serializing_if = "is_false")]
    pub did_create: bool,
}

#[derive(Serialize)]
pub struct NamesBody {
    #[serde(flatten)]
    pub paged: Paged,
    pub streams: Option<Vec<String>>,
}

#[derive(Serialize)]
pub struct ListBody {
    #[serde(flatten)]
    pub paged: Paged,
    pub streams: Vec<StreamInfo>,
}

#[derive(Serialize)]
pub struct SuccessBody {
    #[serde(skip_serializing_if = "is_false")]
    pub success: bool,
}

#[derive(Serialize)]
pub struct PurgeBody {
    #[serde(skip_serializing_if = "is_false")]
    pub success: bool,
    pub purged: u64,
}

#[derive(Serialize)]
pub struct StoredMsg {
    pub subject: String,
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hdrs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    pub time: String,
}

#[derive(Serialize)]
pub struct MsgGetBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<StoredMsg>,
}

#[derive(Serialize)]
pub struct AccountLimits {
    pub max_memory: i64,
    pub max_storage: i64,
    pub max_streams: i64,
    pub max_consumers: i64,
    pub max_ack_pending: i64,
    pub memory_max_stream_bytes: i64,
    pub storage_max_stream_bytes: i64,
    pub max_bytes_required: bool,
}

#[derive(Serialize, Default, Clone, Copy)]
pub struct ApiStats {
    pub total: u64,
    pub errors: u64,
}

#[derive(Serialize)]
pub struct AccountInfoBody {
    pub memory: u64,
    pub storage: u64,
    pub streams: usize,
    pub consumers: usize,
    pub limits: AccountLimits,
    pub api: ApiStats,
}

/// Requests.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NamesRequest {
    pub offset: i64,
    pub subject: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PurgeRequest {
    pub filter: String,
    pub seq: u64,
    pub keep: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct MsgGetRequest {
    pub seq: u64,
    pub last_by_subj: String,
    pub next_by_subj: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct MsgDeleteRequest {
    pub seq: u64,
    pub no_erase: bool,
}
