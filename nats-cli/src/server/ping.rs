//! `nats server ping [EXPECT]`: one line per answering server with its round trip, then
//! statistics.

use super::{parse_go_uint, StatsMsg, PING_SUBJECT};
use crate::output::{go_duration, print};
use crate::{conn, Global};
use anyhow::Result;
use clap::Args;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct PingArgs {
    /// How many servers to expect
    pub expect: Option<String>,
    /// Include the Server ID in the output
    #[arg(long = "id")]
    pub id: bool,
}

pub async fn run(a: PingArgs, g: &Global) -> Result<()> {
    let mut expect = match &a.expect {
        Some(s) => parse_go_uint(s, 32)? as u32,
        None => 0,
    };
    let client = conn::connect(g).await?;
    let deadline = tokio::time::Instant::now() + client.options().request_timeout;
    let start = Instant::now();
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(&inbox).await?;
    client
        .publish_full(PING_SUBJECT, Some(&inbox), None, b"")
        .await?;
    let mut seen = 0u32;
    let mut times: Vec<f64> = Vec::new();
    loop {
        let m = tokio::select! {
            m = tokio::time::timeout_at(deadline, sub.next()) => match m {
                Ok(Some(m)) => m,
                _ => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        };
        if let Some(code) = m.status() {
            print(format!("{code} status from {PING_SUBJECT}, ensure a system account is used with appropriate permissions\n"));
            std::process::exit(1);
        }
        let ssm = StatsMsg::decode_or_exit(&m.payload);
        seen += 1;
        if expect == 0 && ssm.statsz.active_servers > 0 && seen == 1 {
            expect = ssm.statsz.active_servers;
        }
        let since = start.elapsed();
        times.push(since.as_millis() as f64);
        let rtt = go_duration(since);
        if a.id {
            print(format!(
                "{} {:<60} rtt={rtt}\n",
                ssm.server.id, ssm.server.name
            ));
        } else {
            print(format!("{:<60} rtt={rtt}\n", ssm.server.name));
        }
        if seen == expect {
            break;
        }
    }
    drop(sub);
    summarize(&times);
    if expect != 0 && expect != seen {
        print(format!(
            "\nMissing {} server(s)\n",
            expect.wrapping_sub(seen)
        ));
    }
    client.close().await;
    Ok(())
}

fn summarize(times: &[f64]) {
    print("\n---- ping statistics ----\n");
    if times.is_empty() {
        print("no responses received\n");
        return;
    }
    let max = times.iter().copied().fold(-1.0, f64::max);
    let min = times.iter().copied().fold(999_999.0, f64::min);
    let avg = times.iter().sum::<f64>() / times.len() as f64;
    print(format!(
        "{} replies max: {max:.2} min: {min:.2} avg: {avg:.2}\n",
        times.len()
    ));
}
