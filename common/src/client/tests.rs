//! Client behaviour against a scripted in-process server: batching, reconnect to a server
//! learned from INFO with resubscription, buffered publishes, request/no-responders.

use super::*;
use crate::proto::{Op, Parser, Side};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Connect,
    Pub {
        subject: String,
        reply: Option<String>,
        payload: Vec<u8>,
    },
    Sub {
        subject: String,
        sid: String,
    },
    Unsub {
        sid: String,
        max: Option<u64>,
    },
}

struct FakeConn {
    s: TcpStream,
    buf: Vec<u8>,
    reads: usize,
}

impl FakeConn {
    async fn accept(l: &TcpListener, connect_urls: &[String]) -> FakeConn {
        let (mut s, _) = l.accept().await.unwrap();
        let info = serde_json::json!({
            "server_id": "FAKE", "version": "2.9.10", "proto": 1, "headers": true,
            "max_payload": 1048576, "connect_urls": connect_urls,
        });
        s.write_all(format!("INFO {info} \r\n").as_bytes())
            .await
            .unwrap();
        FakeConn {
            s,
            buf: Vec::new(),
            reads: 0,
        }
    }

    /// The next op from the client, answering PINGs on the way.
    async fn next(&mut self) -> Got {
        loop {
            if let Some(g) = self.next_any().await {
                return g;
            }
        }
    }

    /// CONNECT then PING, answered.
    async fn handshake(&mut self) {
        assert_eq!(self.next_any().await, Some(Got::Connect));
        assert_eq!(self.next_any().await, None);
    }

    /// The next op; `None` for a PING (already answered).
    async fn next_any(&mut self) -> Option<Got> {
        let p = Parser::new(Side::Client, 4096, 1 << 20);
        loop {
            let parsed = p.parse(&self.buf).unwrap().map(|(op, used)| {
                let got = match op {
                    Op::Connect(_) => Some(Got::Connect),
                    Op::Ping => None,
                    Op::Pub(m) => Some(Got::Pub {
                        subject: String::from_utf8_lossy(m.subject).into(),
                        reply: m.reply.map(|r| String::from_utf8_lossy(r).into()),
                        payload: m.payload.to_vec(),
                    }),
                    Op::Sub { subject, sid, .. } => Some(Got::Sub {
                        subject: String::from_utf8_lossy(subject).into(),
                        sid: String::from_utf8_lossy(sid).into(),
                    }),
                    Op::Unsub { sid, max } => Some(Got::Unsub {
                        sid: String::from_utf8_lossy(sid).into(),
                        max,
                    }),
                    other => panic!("unexpected op {other:?}"),
                };
                (got, used)
            });
            match parsed {
                Some((got, used)) => {
                    self.buf.drain(..used);
                    if got.is_none() {
                        self.s.write_all(b"PONG\r\n").await.unwrap();
                    }
                    return got;
                }
                None => {
                    let mut chunk = vec![0u8; 64 * 1024];
                    let n = self.s.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "client closed");
                    self.reads += 1;
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }
}

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("nats://{}", l.local_addr().unwrap());
    (l, url)
}

fn fast_opts(url: &str) -> Options {
    let mut o = Options::new(url);
    o.reconnect_wait = Duration::from_millis(20);
    o.connect_timeout = Duration::from_secs(5);
    o.request_timeout = Duration::from_secs(5);
    o
}

#[tokio::test]
async fn publishes_are_written_in_batches() {
    let (l, url) = listener().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        let mut c = FakeConn::accept(&l, &[]).await;
        c.handshake().await;
        let mut pubs = 0;
        while pubs < 10_000 {
            if let Got::Pub { .. } = c.next().await {
                pubs += 1;
            }
        }
        let _ = tx.send(c.reads);
        // Keep answering PINGs.
        loop {
            c.next().await;
        }
    });
    let client = Client::connect(fast_opts(&url)).await.unwrap();
    for i in 0..10_000u32 {
        client.publish("bulk", i.to_be_bytes()).await.unwrap();
    }
    client.flush().await.unwrap();
    let reads = rx.await.unwrap();
    server.abort();
    // One syscall per message would mean thousands of reads on the server side.
    assert!(reads < 200, "{reads} reads for 10000 publishes");
}

#[tokio::test]
async fn reconnects_to_learned_server_and_resubscribes() {
    let (la, url_a) = listener().await;
    let (lb, url_b) = listener().await;
    let b_addr = url_b.trim_start_matches("nats://").to_string();
    let client_fut = Client::connect(fast_opts(&url_a));
    let a = async {
        let mut c = FakeConn::accept(&la, std::slice::from_ref(&b_addr)).await;
        c.handshake().await;
        c
    };
    let (client, mut a) = tokio::join!(client_fut, a);
    let client = client.unwrap();
    let mut events = client.events();
    assert!(client.known_servers().contains(&url_b));

    let mut sub = client.subscribe("foo").await.unwrap();
    sub.unsubscribe_after(5).unwrap();
    let sid = match a.next().await {
        Got::Sub { subject, sid } if subject == "foo" => sid,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        a.next().await,
        Got::Unsub {
            sid: sid.clone(),
            max: Some(5)
        }
    );
    for body in ["m1", "m2"] {
        a.send(format!("MSG foo {sid} 2\r\n{body}\r\n").as_bytes())
            .await;
    }
    assert_eq!(&sub.next().await.unwrap().payload[..], b"m1");
    assert_eq!(&sub.next().await.unwrap().payload[..], b"m2");

    // Server A goes away; a publish made while reconnecting is buffered.
    drop(a);
    loop {
        if let Event::Disconnected { reason } = events.recv().await.unwrap() {
            assert_eq!(reason, "EOF");
            break;
        }
    }
    client.publish("late", "buffered").await.unwrap();
    let mut b = FakeConn::accept(&lb, &[]).await;
    b.handshake().await;
    // Subscriptions first, with what is left of the auto-unsubscribe count, then the
    // buffered publish.
    assert_eq!(
        b.next().await,
        Got::Sub {
            subject: "foo".into(),
            sid: sid.clone()
        }
    );
    assert_eq!(
        b.next().await,
        Got::Unsub {
            sid: sid.clone(),
            max: Some(3)
        }
    );
    assert_eq!(
        b.next().await,
        Got::Pub {
            subject: "late".into(),
            reply: None,
            payload: b"buffered".to_vec()
        }
    );
    loop {
        if let Event::Reconnected { url } = events.recv().await.unwrap() {
            assert_eq!(url, url_b);
            break;
        }
    }
    b.send(format!("MSG foo {sid} 2\r\nm3\r\n").as_bytes())
        .await;
    assert_eq!(&sub.next().await.unwrap().payload[..], b"m3");
}

#[tokio::test]
async fn request_reply_and_no_responders() {
    let (l, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut c = FakeConn::accept(&l, &[]).await;
        c.handshake().await;
        let (inbox, sid) = match c.next().await {
            Got::Sub { subject, sid } => (subject, sid),
            other => panic!("{other:?}"),
        };
        assert!(
            inbox.starts_with("_INBOX.") && inbox.ends_with(".*"),
            "{inbox}"
        );
        for _ in 0..2 {
            let Got::Pub { subject, reply, .. } = c.next().await else {
                panic!("expected a request");
            };
            let reply = reply.unwrap();
            if subject == "svc" {
                c.send(format!("MSG {reply} {sid} 4\r\npong\r\n").as_bytes())
                    .await;
            } else {
                c.send(format!("HMSG {reply} {sid} 16 16\r\nNATS/1.0 503\r\n\r\n\r\n").as_bytes())
                    .await;
            }
        }
        // Keep the connection open until the client is done.
        let _ = c.next().await;
    });
    let client = Client::connect(fast_opts(&url)).await.unwrap();
    let m = client.request("svc", "ping").await.unwrap();
    assert_eq!(&m.payload[..], b"pong");
    assert_eq!(
        client.request("nobody", "x").await.unwrap_err(),
        Error::NoResponders
    );
    assert_eq!(
        client
            .request_full("svc", None, b"", Duration::from_millis(50))
            .await
            .unwrap_err(),
        Error::Timeout
    );
    server.abort();
}

#[tokio::test]
async fn connect_failure_lists_servers() {
    let (l1, u1) = listener().await;
    let (l2, u2) = listener().await;
    drop((l1, l2));
    let mut o = fast_opts(&format!("{u1},{u2}"));
    o.no_randomize = true;
    match Client::connect(o).await {
        Err(Error::Connect(tried)) => {
            let urls: Vec<&str> = tried.iter().map(|(u, _)| u.as_str()).collect();
            assert_eq!(urls, vec![u1.as_str(), u2.as_str()]);
            assert!(tried.iter().all(|(_, why)| why == "connection refused"));
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("connected to nothing"),
    }
}
