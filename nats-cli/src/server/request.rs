//! `nats server request <endpoint>`: sends a monitoring request to every server
//! (`$SYS.REQ.SERVER.PING.<ENDPOINT>`) and prints each JSON reply as it came.

use super::{collect, go_json, one_of, parse_go_int, parse_go_uint, Filter};
use crate::output::print;
use crate::{conn, context, Global};
use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;

#[derive(Args, Debug)]
pub struct RequestArgs {
    /// Limit the responses to a certain amount of records
    #[arg(long, default_value = "2048", global = true)]
    pub limit: String,
    /// Start at a certain record
    #[arg(long, default_value = "0", global = true)]
    pub offset: String,
    /// Limit to servers matching a server name
    #[arg(long, default_value = "", hide_default_value = true, global = true)]
    pub name: String,
    /// Limit to servers matching a server host name
    #[arg(long, default_value = "", hide_default_value = true, global = true)]
    pub host: String,
    /// Limit to servers matching a cluster name
    #[arg(long, default_value = "", hide_default_value = true, global = true)]
    pub cluster: String,
    /// Limit to servers with these configured tags
    #[arg(long, global = true)]
    pub tags: Vec<String>,
    #[command(subcommand)]
    pub cmd: Endpoint,
}

#[derive(Subcommand, Debug)]
pub enum Endpoint {
    /// Show subscription information
    #[command(visible_aliases = ["sub", "subsz"])]
    Subscriptions {
        /// Wait for a certain number of responses
        wait: Option<String>,
        /// Include detail about all subscriptions
        #[arg(long)]
        detail: bool,
        /// Filter on a specific account
        #[arg(long = "filter-account", value_name = "ACCOUNT", default_value = "")]
        filter_account: String,
        /// Filter based on subscriptions matching this subject
        #[arg(long = "filter-subject", value_name = "SUBJECT", default_value = "")]
        filter_subject: String,
    },
    /// Show runtime variables
    #[command(visible_aliases = ["var", "varz"])]
    Variables {
        /// Wait for a certain number of responses
        wait: Option<String>,
    },
    /// Show connection details
    #[command(visible_aliases = ["conn", "connz"])]
    Connections {
        /// Wait for a certain number of responses
        wait: Option<String>,
        /// Sort by a specific property
        #[arg(long, default_value = "cid")]
        sort: String,
        /// Show subscriptions
        #[arg(long)]
        subscriptions: bool,
        /// Filter on a specific CID
        #[arg(long = "filter-cid", value_name = "CID")]
        filter_cid: Option<String>,
        /// Filter on a specific account state (open, closed, all)
        #[arg(long = "filter-state", value_name = "STATE", default_value = "open")]
        filter_state: String,
        /// Filter on a specific username
        #[arg(long = "filter-user", value_name = "USER", default_value = "")]
        filter_user: String,
        /// Filter on a specific account
        #[arg(long = "filter-account", value_name = "ACCOUNT", default_value = "")]
        filter_account: String,
        /// Limits responses only to those connections with matching subscription interest
        #[arg(long = "filter-subject", value_name = "SUBJECT", default_value = "")]
        filter_subject: String,
        /// Only shows responses that have connections
        #[arg(long = "filter-empty")]
        filter_empty: bool,
    },
    /// Show route details
    #[command(visible_aliases = ["route", "routez"])]
    Routes {
        /// Wait for a certain number of responses
        wait: Option<String>,
        /// Show subscription detail
        #[arg(long)]
        subscriptions: bool,
    },
    /// Show gateway details
    #[command(visible_aliases = ["gateway", "gwy", "gatewayz"])]
    Gateways {
        /// Wait for a certain number of responses
        wait: Option<String>,
        /// Filter results on gateway name
        #[arg(value_name = "NAME", default_value = "", hide_default_value = true)]
        filter_name: String,
        /// Show only a certain account in account detail
        #[arg(long = "filter-account", value_name = "ACCOUNT", default_value = "")]
        filter_account: String,
        /// Show account detail
        #[arg(long)]
        accounts: bool,
    },
    /// Show leafnode details
    #[command(visible_aliases = ["leaf", "leafz"])]
    Leafnodes {
        /// Wait for a certain number of responses
        wait: Option<String>,
        /// Show subscription detail
        #[arg(long)]
        subscriptions: bool,
    },
    /// Show account details
    #[command(visible_aliases = ["accountz", "acct"])]
    Accounts {
        /// Wait for a certain number of responses
        wait: Option<String>,
        /// Retrieve information for a specific account
        #[arg(long, default_value = "")]
        account: String,
    },
    /// Show JetStream details
    #[command(name = "jetstream", visible_aliases = ["jsz", "js"])]
    JetStream {
        /// Wait for a certain number of responses
        wait: Option<String>,
        /// Show statistics scoped to a specific account
        #[arg(long, default_value = "")]
        account: String,
        /// Include details about accounts
        #[arg(long)]
        accounts: bool,
        /// Include details about Streams
        #[arg(long)]
        streams: bool,
        /// Include details about Consumers
        #[arg(long)]
        consumer: bool,
        /// Include details about configuration
        #[arg(long)]
        config: bool,
        /// Request a response from the Meta-group leader only
        #[arg(long)]
        leader: bool,
        /// Include accounts, streams, consumers and configuration
        #[arg(long)]
        all: bool,
    },
    /// Request JetStream health status
    #[command(name = "jetstream-health", visible_alias = "healthz")]
    JetStreamHealth {
        /// Checks that JetStream should be enabled on all servers
        #[arg(short = 'J', long = "js-enabled")]
        js_enabled: bool,
        /// Restricts the health check to the JetStream server only, do not check streams and consumers
        #[arg(short = 'S', long = "server-only")]
        server_only: bool,
    },
}

const CONN_SORTS: &[&str] = &[
    "cid",
    "start",
    "subs",
    "pending",
    "msgs_to",
    "msgs_from",
    "bytes_to",
    "bytes_from",
    "last",
    "idle",
    "uptime",
    "stop",
    "reason",
];

// The request bodies: each endpoint's options followed by the filter, field for field
// as the server's `…EventOptions` types encode.

#[derive(Serialize)]
struct Subsz {
    offset: i64,
    limit: i64,
    subscriptions: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    test: String,
    #[serde(flatten)]
    filter: Filter,
}

#[derive(Serialize)]
struct Connz {
    sort: String,
    auth: bool,
    subscriptions: bool,
    subscriptions_detail: bool,
    offset: i64,
    limit: i64,
    cid: u64,
    mqtt_client: String,
    state: u8,
    user: String,
    acc: String,
    filter_subject: String,
    #[serde(flatten)]
    filter: Filter,
}

#[derive(Serialize)]
struct Routez {
    subscriptions: bool,
    subscriptions_detail: bool,
    #[serde(flatten)]
    filter: Filter,
}

#[derive(Serialize)]
struct Gatewayz {
    name: String,
    accounts: bool,
    account_name: String,
    #[serde(flatten)]
    filter: Filter,
}

#[derive(Serialize)]
struct Leafz {
    subscriptions: bool,
    account: String,
    #[serde(flatten)]
    filter: Filter,
}

#[derive(Serialize)]
struct Accountz {
    account: String,
    #[serde(flatten)]
    filter: Filter,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
struct Jsz {
    #[serde(skip_serializing_if = "String::is_empty")]
    account: String,
    #[serde(skip_serializing_if = "is_false")]
    accounts: bool,
    #[serde(skip_serializing_if = "is_false")]
    streams: bool,
    #[serde(skip_serializing_if = "is_false")]
    consumer: bool,
    #[serde(skip_serializing_if = "is_false")]
    config: bool,
    #[serde(skip_serializing_if = "is_false")]
    leader_only: bool,
    #[serde(flatten)]
    filter: Filter,
}

#[derive(Serialize)]
struct Healthz {
    #[serde(rename = "js-enabled-only", skip_serializing_if = "is_false")]
    js_enabled_only: bool,
    #[serde(rename = "js-server-only", skip_serializing_if = "is_false")]
    js_server_only: bool,
    #[serde(flatten)]
    filter: Filter,
}

fn wait_count(w: &Option<String>) -> Result<u32> {
    match w {
        Some(s) => Ok(parse_go_uint(s, 32)? as u32),
        None => Ok(0),
    }
}

pub async fn run(a: RequestArgs, g: &Global) -> Result<()> {
    let limit = parse_go_int(&a.limit)?;
    let offset = parse_go_int(&a.offset)?;
    let filter = Filter {
        name: a.name,
        cluster: a.cluster,
        host: a.host,
        tags: a.tags,
        domain: context::effective(g)?.jetstream_domain,
    };
    let mut filter_empty = false;
    let (kind, wait, body) = match a.cmd {
        Endpoint::Subscriptions {
            wait,
            detail,
            filter_account,
            filter_subject,
        } => (
            "SUBSZ",
            wait,
            go_json(&Subsz {
                offset,
                limit,
                subscriptions: detail,
                account: filter_account,
                test: filter_subject,
                filter,
            })?,
        ),
        Endpoint::Variables { wait } => ("VARZ", wait, go_json(&filter)?),
        Endpoint::Connections {
            wait,
            sort,
            subscriptions,
            filter_cid,
            filter_state,
            filter_user,
            filter_account,
            filter_subject,
            filter_empty: empty,
        } => {
            let sort = one_of(&sort, CONN_SORTS)?;
            let state = match one_of(&filter_state, &["open", "closed", "all"])?.as_str() {
                "open" => 0,
                "closed" => 1,
                _ => 2,
            };
            let cid = match &filter_cid {
                Some(s) => parse_go_uint(s, 64)?,
                None => 0,
            };
            filter_empty = empty;
            (
                "CONNZ",
                wait,
                go_json(&Connz {
                    sort,
                    auth: true,
                    subscriptions,
                    subscriptions_detail: subscriptions,
                    offset,
                    limit,
                    cid,
                    mqtt_client: String::new(),
                    state,
                    user: filter_user,
                    acc: filter_account,
                    filter_subject,
                    filter,
                })?,
            )
        }
        Endpoint::Routes {
            wait,
            subscriptions,
        } => (
            "ROUTEZ",
            wait,
            go_json(&Routez {
                subscriptions,
                subscriptions_detail: subscriptions,
                filter,
            })?,
        ),
        Endpoint::Gateways {
            wait,
            filter_name,
            filter_account,
            accounts,
        } => (
            "GATEWAYZ",
            wait,
            go_json(&Gatewayz {
                name: filter_name,
                // Naming an account implies the account detail.
                accounts: accounts || !filter_account.is_empty(),
                account_name: filter_account,
                filter,
            })?,
        ),
        Endpoint::Leafnodes {
            wait,
            subscriptions,
        } => (
            "LEAFZ",
            wait,
            go_json(&Leafz {
                subscriptions,
                account: String::new(),
                filter,
            })?,
        ),
        Endpoint::Accounts { wait, account } => {
            ("ACCOUNTZ", wait, go_json(&Accountz { account, filter })?)
        }
        Endpoint::JetStream {
            wait,
            account,
            accounts,
            streams,
            consumer,
            config,
            leader,
            all,
        } => (
            "JSZ",
            wait,
            go_json(&Jsz {
                account,
                accounts: accounts || all,
                streams: streams || all,
                consumer: consumer || all,
                config: config || all,
                leader_only: leader,
                filter,
            })?,
        ),
        Endpoint::JetStreamHealth {
            js_enabled,
            server_only,
        } => (
            "HEALTHZ",
            None,
            go_json(&Healthz {
                js_enabled_only: js_enabled,
                js_server_only: server_only,
                filter,
            })?,
        ),
    };
    let wait = wait_count(&wait)?;
    let client = conn::connect(g).await?;
    let subject = format!("$SYS.REQ.SERVER.PING.{kind}");
    let mut replies: Vec<Vec<u8>> = Vec::new();
    let result = collect(&client, g, &subject, &body, wait, |d| {
        replies.push(d.to_vec())
    })
    .await;
    client.close().await;
    result?;
    for r in replies {
        if filter_empty && no_connections(&r) {
            continue;
        }
        print(format!("{}\n", String::from_utf8_lossy(&r)));
    }
    Ok(())
}

/// For `--filter-empty`: a CONNZ reply without data or with no connections.
fn no_connections(reply: &[u8]) -> bool {
    match serde_json::from_slice::<serde_json::Value>(reply) {
        Ok(v) => match v.get("data") {
            None | Some(serde_json::Value::Null) => true,
            Some(d) => {
                d.get("num_connections").and_then(|n| n.as_i64()) == Some(0)
                    || d.get("num_connections").is_none()
            }
        },
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_as_the_reference_encodes_them() {
        let f = || Filter {
            name: "n1".into(),
            ..Filter::default()
        };
        let b = go_json(&Connz {
            sort: "cid".into(),
            auth: true,
            subscriptions: false,
            subscriptions_detail: false,
            offset: 0,
            limit: 2048,
            cid: 0,
            mqtt_client: String::new(),
            state: 0,
            user: String::new(),
            acc: String::new(),
            filter_subject: String::new(),
            filter: f(),
        })
        .unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&b),
            r#"{"sort":"cid","auth":true,"subscriptions":false,"subscriptions_detail":false,"offset":0,"limit":2048,"cid":0,"mqtt_client":"","state":0,"user":"","acc":"","filter_subject":"","server_name":"n1"}"#
        );
        let b = go_json(&Filter::default()).unwrap_or_default();
        assert_eq!(b, b"{}");
        let b = go_json(&Subsz {
            offset: 0,
            limit: 2048,
            subscriptions: true,
            account: String::new(),
            test: "a.>".into(),
            filter: Filter::default(),
        })
        .unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&b),
            r#"{"offset":0,"limit":2048,"subscriptions":true,"test":"a.\u003e"}"#
        );
    }

    #[test]
    fn empty_connz_replies() {
        assert!(no_connections(
            br#"{"server":{},"data":{"num_connections":0}}"#
        ));
        assert!(no_connections(br#"{"server":{},"data":null}"#));
        assert!(!no_connections(
            br#"{"server":{},"data":{"num_connections":2}}"#
        ));
    }
}
