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
    pub mirror: Option<StreamSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<StreamSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub republish: Option<RePublish>,
    pub allow_direct: bool,
    pub mirror_direct: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub discard_new_per_subject: bool,
    pub sealed: bool,
    pub deny_delete: bool,
    pub deny_purge: bool,
    pub allow_rollup_hdrs: bool,
}

/// A stream's `republish`: messages stored on `src` are published again on `dest`
/// (a subject transform), with the stream's headers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RePublish {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub src: String,
    pub dest: String,
    #[serde(skip_serializing_if = "is_false")]
    pub headers_only: bool,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSourceInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<StreamSourceInfo>,
}

/// A mirror's or a source's origin (`StreamSource` of the reference).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamSource {
    pub name: String,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub opt_start_seq: u64,
    /// RFC 3339, as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<serde_json::Value>,
}

/// A mirror's or a source's progress in stream info (`StreamSourceInfo`). `active`:
/// nanoseconds since the origin was last heard from, -1 when never.
#[derive(Clone, Debug, Serialize)]
pub struct StreamSourceInfo {
    pub name: String,
    pub lag: u64,
    pub active: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
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

/// Go's DeliverPolicy: unknown names are refused (as the reference's UnmarshalJSON),
/// "undefined" reads as `all`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliverPolicy {
    #[default]
    #[serde(rename = "all", alias = "undefined")]
    All,
    #[serde(rename = "last")]
    Last,
    #[serde(rename = "new")]
    New,
    #[serde(rename = "by_start_sequence")]
    ByStartSequence,
    #[serde(rename = "by_start_time")]
    ByStartTime,
    #[serde(rename = "last_per_subject")]
    LastPerSubject,
}

/// Go's AckPolicy; its zero value (a request without the field) is `none`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckPolicy {
    #[default]
    None,
    All,
    Explicit,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplayPolicy {
    #[default]
    Instant,
    Original,
}

fn is_zero_u64_ref(v: &u64) -> bool {
    *v == 0
}

/// A consumer's configuration (`ConsumerConfig` of the reference, its field order and
/// omissions). Durations in nanoseconds; `opt_start_time` as the RFC 3339 text given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub durable_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub deliver_policy: DeliverPolicy,
    #[serde(skip_serializing_if = "is_zero_u64_ref")]
    pub opt_start_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<String>,
    pub ack_policy: AckPolicy,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub ack_wait: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_deliver: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backoff: Vec<i64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    pub replay_policy: ReplayPolicy,
    #[serde(skip_serializing_if = "is_zero_u64_ref")]
    pub rate_limit_bps: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sample_freq: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_waiting: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_ack_pending: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub idle_heartbeat: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub flow_control: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub headers_only: bool,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_batch: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_expires: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_bytes: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deliver_subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deliver_group: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub inactive_threshold: i64,
    pub num_replicas: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub mem_storage: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub direct: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CreateConsumerRequest {
    pub stream_name: String,
    pub config: ConsumerConfig,
}

/// `delivered` and `ack_floor` of a consumer's info.
#[derive(Clone, Debug, Serialize, Default)]
pub struct SequenceInfo {
    pub consumer_seq: u64,
    pub stream_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_active: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConsumerInfo {
    pub stream_name: String,
    pub name: String,
    pub created: String,
    pub config: ConsumerConfig,
    pub delivered: SequenceInfo,
    pub ack_floor: SequenceInfo,
    pub num_ack_pending: usize,
    pub num_redelivered: usize,
    pub num_waiting: usize,
    pub num_pending: u64,
    #[serde(skip_serializing_if = "is_false")]
    pub push_bound: bool,
}

#[derive(Serialize)]
pub struct ConsumerInfoBody {
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub info: Option<ConsumerInfo>,
}

#[derive(Serialize)]
pub struct ConsumerNamesBody {
    #[serde(flatten)]
    pub paged: Paged,
    pub consumers: Vec<String>,
}

#[derive(Serialize)]
pub struct ConsumerListBody {
    #[serde(flatten)]
    pub paged: Paged,
    pub consumers: Vec<ConsumerInfo>,
}

/// `$JS.API.CONSUMER.MSG.NEXT` as JSON.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NextRequest {
    pub expires: i64,
    pub batch: i64,
    pub max_bytes: i64,
    pub no_wait: bool,
    pub idle_heartbeat: i64,
}
