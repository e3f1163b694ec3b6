//! What a consumer of a file stream keeps beside the stream (`obs/<name>/`): its
//! configuration (`meta.json`) and its delivery and ack state (`state.json`), each
//! written whole to a temporary file and renamed into place, so a crash leaves the old
//! or the new copy, never a torn one.

use crate::jetstream::api::types::ConsumerConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Serialize, Deserialize)]
pub struct Meta {
    pub config: ConsumerConfig,
    pub created: i64,
}

/// Delivered and ack floors, what awaits an ack (stream seq, delivery seq, time) and
/// the redelivery counts.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct Saved {
    pub delivered_consumer: u64,
    pub delivered_stream: u64,
    pub ack_floor_consumer: u64,
    pub ack_floor_stream: u64,
    pub pending: Vec<(u64, u64, i64)>,
    pub redelivered: Vec<(u64, u64)>,
}

fn write_whole(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, dir.join(name))
}

pub fn write_meta(dir: &Path, meta: &Meta) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_whole(
        dir,
        "meta.json",
        &serde_json::to_vec(meta).unwrap_or_default(),
    )
}

pub fn read_meta(dir: &Path) -> Result<Meta, String> {
    let b = std::fs::read(dir.join("meta.json")).map_err(|e| e.to_string())?;
    serde_json::from_slice(&b).map_err(|e| e.to_string())
}

pub fn write_state(dir: &Path, s: &Saved) -> std::io::Result<()> {
    write_whole(
        dir,
        "state.json",
        &serde_json::to_vec(s).unwrap_or_default(),
    )
}

/// The saved state, if any (a consumer that never saved starts from its policy).
pub fn read_state(dir: &Path) -> Result<Option<Saved>, String> {
    match std::fs::read(dir.join("state.json")) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_a_missing_file_is_no_state() {
        let dir = std::env::temp_dir().join(format!("cstate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_state(&dir).unwrap(), None);
        let s = Saved {
            delivered_consumer: 5,
            delivered_stream: 9,
            ack_floor_consumer: 3,
            ack_floor_stream: 7,
            pending: vec![(8, 4, 100), (9, 5, 200)],
            redelivered: vec![(8, 2)],
        };
        write_state(&dir, &s).unwrap();
        assert_eq!(read_state(&dir).unwrap(), Some(s));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
