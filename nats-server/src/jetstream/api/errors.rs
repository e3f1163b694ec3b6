//! The reference's API errors (jetstream_errors_generated.go): HTTP-like code, JetStream
//! error code and description, for the errors this server can give.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiError {
    pub code: u16,
    pub err_code: u16,
    pub description: String,
}

fn e(code: u16, err_code: u16, description: impl Into<String>) -> ApiError {
    ApiError {
        code,
        err_code,
        description: description.into(),
    }
}

pub fn bad_request() -> ApiError {
    e(400, 10003, "bad request")
}
pub fn invalid_json() -> ApiError {
    e(400, 10025, "invalid JSON")
}
pub fn not_enabled_for_account() -> ApiError {
    e(503, 10039, "JetStream not enabled for account")
}
pub fn no_message_found() -> ApiError {
    e(404, 10037, "no message found")
}
pub fn sequence_not_found(seq: u64) -> ApiError {
    e(400, 10043, format!("sequence {seq} not found"))
}
pub fn stream_not_found() -> ApiError {
    e(404, 10059, "stream not found")
}
pub fn stream_name_exist() -> ApiError {
    e(
        400,
        10058,
        "stream name already in use with a different configuration",
    )
}
pub fn stream_mismatch() -> ApiError {
    e(400, 10056, "stream name in subject does not match request")
}
pub fn stream_name_path_separators() -> ApiError {
    e(400, 10128, "Stream name can not contain path separators")
}
pub fn subject_overlap() -> ApiError {
    e(400, 10065, "subjects overlap with an existing stream")
}
pub fn replicas_not_supported() -> ApiError {
    e(
        500,
        10074,
        "replicas > 1 not supported in non-clustered mode",
    )
}
pub fn stream_sealed() -> ApiError {
    e(400, 10109, "invalid operation on sealed stream")
}
pub fn invalid_config(err: impl Into<String>) -> ApiError {
    e(500, 10052, err)
}
pub fn stream_create(err: impl Into<String>) -> ApiError {
    e(500, 10049, err)
}
pub fn stream_update(err: impl Into<String>) -> ApiError {
    e(500, 10069, err)
}
pub fn stream_delete(err: impl Into<String>) -> ApiError {
    e(500, 10050, err)
}
pub fn stream_general(err: impl Into<String>) -> ApiError {
    e(500, 10051, err)
}
pub fn msg_delete_failed(err: impl Into<String>) -> ApiError {
    e(500, 10057, err)
}
pub fn purge_failed(err: impl Into<String>) -> ApiError {
    e(500, 10110, err)
}
pub fn rollup_failed(err: impl Into<String>) -> ApiError {
    e(500, 10111, err)
}
pub fn store_failed(err: impl Into<String>) -> ApiError {
    e(503, 10077, err)
}
pub fn stream_not_match() -> ApiError {
    e(400, 10060, "expected stream does not match")
}
pub fn wrong_last_sequence(seq: u64) -> ApiError {
    e(400, 10071, format!("wrong last sequence: {seq}"))
}
pub fn wrong_last_msg_id(id: &str) -> ApiError {
    e(400, 10070, format!("wrong last msg ID: {id}"))
}
pub fn message_exceeds_maximum() -> ApiError {
    e(400, 10054, "message size exceeds maximum allowed")
}
pub fn header_exceeds_maximum() -> ApiError {
    e(400, 10097, "header size exceeds maximum allowed of 64k")
}
pub fn replicas_negative() -> ApiError {
    e(400, 10133, "replicas count cannot be negative")
}
pub fn insufficient_resources() -> ApiError {
    e(503, 10023, "insufficient resources")
}
pub fn memory_resources_exceeded() -> ApiError {
    e(500, 10028, "insufficient memory resources available")
}
pub fn storage_resources_exceeded() -> ApiError {
    e(500, 10047, "insufficient storage resources available")
}
