//! INFO and CONNECT bodies with the reference server's field names and order.

use serde::{Deserialize, Serialize};

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Publish/subscribe permissions carried in a route INFO (`import`/`export`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectPermission {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allow: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub deny: Vec<String>,
}

/// The INFO a server sends to clients and route peers. Field order follows the
/// reference so the JSON reads the same; empty optional fields are omitted like Go's
/// `omitempty`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub server_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub server_name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub proto: i32,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub git_commit: String,
    #[serde(default, deserialize_with = "nullable")]
    pub go: String,
    #[serde(default, deserialize_with = "nullable")]
    pub host: String,
    #[serde(default, deserialize_with = "nullable")]
    pub port: u16,
    #[serde(default, deserialize_with = "nullable")]
    pub headers: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub auth_required: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub tls_required: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub tls_verify: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub tls_available: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub max_payload: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub jetstream: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub ip: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub client_id: u64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub client_ip: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub nonce: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub cluster_dynamic: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub domain: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub connect_urls: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ws_connect_urls: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub ldm: bool,
    // Route-specific fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<SubjectPermission>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<SubjectPermission>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub lnoc: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub info_on_connect: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub connect_info: bool,
    // Leaf-node-specific fields.
    /// The hub cluster's leaf node URLs (`host:port`); an INFO without them on a leaf
    /// connection comes from a port that is not a leaf node port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leafnode_urls: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub remote_account: String,
}

/// The CONNECT a soliciting leaf node sends (the reference's field names and order).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeafConnectInfo {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub version: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub jwt: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub sig: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub user: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub pass: String,
    #[serde(default, deserialize_with = "nullable")]
    pub tls_required: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub compression: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub server_id: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub domain: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub is_hub: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub headers: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub jetstream: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub deny_pub: Vec<String>,
    /// Only a gateway wrongly dialling the leaf port sends it.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub gateway: String,
    /// Only a client wrongly dialling the leaf port sends it.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub lang: String,
}

fn yes() -> bool {
    true
}

/// JSON `null` leaves a field at its default, as Go's decoder does (async-nats sends
/// `"name":null`, for one).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Like `nullable`, for the fields whose default is `true`.
fn nullable_true<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(true))
}

/// A client's CONNECT. Absent fields take the reference defaults: verbose, pedantic and
/// echo on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectInfo {
    #[serde(default = "yes", deserialize_with = "nullable_true")]
    pub verbose: bool,
    #[serde(default = "yes", deserialize_with = "nullable_true")]
    pub pedantic: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nkey: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub tls_required: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub lang: String,
    #[serde(default, deserialize_with = "nullable")]
    pub version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub protocol: i32,
    #[serde(default = "yes", deserialize_with = "nullable_true")]
    pub echo: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub headers: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub no_responders: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_account: Option<bool>,
    /// Set by a route peer; a client never sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

impl Default for ConnectInfo {
    fn default() -> Self {
        ConnectInfo {
            verbose: true,
            pedantic: true,
            jwt: None,
            nkey: None,
            sig: None,
            auth_token: None,
            user: None,
            pass: None,
            tls_required: false,
            name: String::new(),
            lang: String::new(),
            version: String::new(),
            protocol: 0,
            echo: true,
            headers: false,
            no_responders: false,
            account: None,
            new_account: None,
            gateway: None,
        }
    }
}

/// The CONNECT a server sends on a route it solicited, in the reference's key order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteConnectInfo {
    #[serde(default, deserialize_with = "nullable")]
    pub echo: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub verbose: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub pedantic: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub tls_required: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub headers: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub cluster: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub cluster_dynamic: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub lnoc: bool,
    /// Present only when a client wrongly connected to the route port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_keep_defaults() {
        let c: ConnectInfo =
            serde_json::from_str(r#"{"name":null,"verbose":null,"echo":false,"protocol":1}"#)
                .unwrap();
        assert_eq!(c.name, "");
        assert!(c.verbose);
        assert!(!c.echo);
        assert_eq!(c.protocol, 1);
    }

    #[test]
    fn connect_defaults() {
        let c: ConnectInfo = serde_json::from_str("{}").unwrap();
        assert!(c.verbose && c.pedantic && c.echo);
        assert!(!c.headers);
    }

    #[test]
    fn info_field_order() {
        let i = ServerInfo {
            server_id: "N1".into(),
            server_name: "a".into(),
            version: "2.9.10".into(),
            proto: 1,
            go: "go".into(),
            host: "0.0.0.0".into(),
            port: 4222,
            headers: true,
            max_payload: 1048576,
            client_id: 4,
            client_ip: "127.0.0.1".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&i).unwrap(),
            r#"{"server_id":"N1","server_name":"a","version":"2.9.10","proto":1,"go":"go","host":"0.0.0.0","port":4222,"headers":true,"max_payload":1048576,"client_id":4,"client_ip":"127.0.0.1"}"#
        );
    }
}
