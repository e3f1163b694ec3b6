//! TLS with a CA and certificates made at run time (nothing committed).

use crate::config::TempDir;
use crate::support::{ours, rt, Raw, ServerProc};
use std::path::PathBuf;
use std::time::Duration;

pub struct Pki {
    pub dir: TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// A CA, a server certificate for localhost/127.0.0.1, and a client certificate with an
/// e-mail SAN.
pub fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let dir = TempDir::new("pki");
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let srv_key = KeyPair::generate().unwrap();
    let mut srv = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    srv.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let srv_cert = srv.signed_by(&srv_key, &ca, &ca_key).unwrap();

    let cli_key = KeyPair::generate().unwrap();
    let mut cli = CertificateParams::new(Vec::<String>::new()).unwrap();
    cli.distinguished_name.push(DnType::CommonName, "alice");
    cli.subject_alt_names
        .push(SanType::Rfc822Name("alice@example.com".try_into().unwrap()));
    let cli_cert = cli.signed_by(&cli_key, &ca, &ca_key).unwrap();

    Pki {
        ca: dir.write("ca.pem", &ca.pem()),
        server_cert: dir.write("server.pem", &srv_cert.pem()),
        server_key: dir.write("server-key.pem", &srv_key.serialize_pem()),
        client_cert: dir.write("client.pem", &cli_cert.pem()),
        client_key: dir.write("client-key.pem", &cli_key.serialize_pem()),
        dir,
    }
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn tls_connect_with_async_nats() {
    let pki = pki();
    let srv = ServerProc::start(
        &ours(),
        &[
            "--tls",
            "--tlscert",
            s(&pki.server_cert),
            "--tlskey",
            s(&pki.server_key),
        ],
    );
    // INFO comes in plaintext and announces TLS.
    let mut raw = Raw::connect(srv.port);
    let info = raw.info();
    assert_eq!(info["tls_required"], true);
    assert!(srv.proc.wait_log(
        "TLS required for client connections",
        Duration::from_secs(3)
    ));
    rt().block_on(async {
        let c = async_nats::ConnectOptions::new()
            .add_root_certificates(pki.ca.clone())
            .require_tls(true)
            .connect(srv.url())
            .await
            .expect("tls connect");
        let mut sub = c.subscribe("t").await.unwrap();
        c.publish("t", "hello".into()).await.unwrap();
        use futures::StreamExt;
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&m.payload[..], b"hello");
    });
    // A plaintext client that ignores tls_required fails the handshake.
    raw.send(b"CONNECT {}\r\n");
    // The server may answer with a TLS alert before it hangs up.
    let mut closed = false;
    for _ in 0..10 {
        if raw.closed_within(Duration::from_millis(500)) {
            closed = true;
            break;
        }
    }
    assert!(closed);
    assert!(srv
        .proc
        .wait_log("TLS handshake error", Duration::from_secs(3)));
}

#[test]
fn verify_requires_a_client_certificate_and_map_names_the_user() {
    let pki = pki();
    let conf = pki.dir.write(
        "v.conf",
        &format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify_and_map: true }}\nauthorization {{ users = [ {{user: \"alice@example.com\"}} ] }}\n",
            s(&pki.server_cert),
            s(&pki.server_key),
            s(&pki.ca)
        ),
    );
    let srv = ServerProc::start(&ours(), &["-c", s(&conf)]);
    let mut raw = Raw::connect(srv.port);
    let info = raw.info();
    assert_eq!(info["tls_verify"], true);
    rt().block_on(async {
        let without = tokio::time::timeout(
            Duration::from_secs(5),
            async_nats::ConnectOptions::new()
                .add_root_certificates(pki.ca.clone())
                .require_tls(true)
                .connect(srv.url()),
        )
        .await;
        assert!(
            !matches!(without, Ok(Ok(_))),
            "connected without a client cert"
        );
        let with = async_nats::ConnectOptions::new()
            .add_root_certificates(pki.ca.clone())
            .add_client_certificate(pki.client_cert.clone(), pki.client_key.clone())
            .require_tls(true)
            .connect(srv.url())
            .await
            .expect("client cert accepted");
        with.flush().await.unwrap();
    });
}

#[test]
fn tls_config_check_loads_files() {
    let pki = pki();
    let conf = pki.dir.write(
        "ok.conf",
        &format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true, timeout: 3 }}\n",
            s(&pki.server_cert),
            s(&pki.server_key),
            s(&pki.ca)
        ),
    );
    let out = std::process::Command::new(ours())
        .args(["-c", s(&conf), "-t"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two servers whose route is TLS with mutual verification carry messages.
#[test]
fn tls_route_between_two_servers() {
    tls_route(&ours(), &ours());
}

/// Our route TLS (rustls) against the reference's (Go crypto/tls), both ways round.
#[test]
fn tls_route_with_the_reference_server() {
    tls_route(&crate::support::reference(), &ours());
    tls_route(&ours(), &crate::support::reference());
}

/// A listens for routes with TLS; B dials it with TLS; a message crosses from A to B.
fn tls_route(exe_a: &std::path::Path, exe_b: &std::path::Path) {
    let pki = pki();
    let (ca, ra) = (crate::support::free_port(), crate::support::free_port());
    let tls_block = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", timeout: 3 }}",
        s(&pki.server_cert),
        s(&pki.server_key),
        s(&pki.ca)
    );
    let a_conf = pki.dir.write(
        "a.conf",
        &format!("cluster {{ name: t, listen: 127.0.0.1:{ca}\n {tls_block} }}\n"),
    );
    let b_conf = pki.dir.write(
        "b.conf",
        &format!(
            "cluster {{ name: t, listen: 127.0.0.1:{ra}\n routes: [nats-route://127.0.0.1:{ca}]\n {tls_block} }}\n"
        ),
    );
    let a = ServerProc::start(exe_a, &["-c", s(&a_conf)]);
    let b = ServerProc::start(exe_b, &["-c", s(&b_conf)]);
    rt().block_on(async {
        let ca_c = async_nats::connect(a.url()).await.unwrap();
        let cb = async_nats::connect(b.url()).await.unwrap();
        let mut sub = cb.subscribe("over.tls").await.unwrap();
        cb.flush().await.unwrap();
        use futures::StreamExt;
        // Interest crosses the route asynchronously: publish until it arrives.
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                ca_c.publish("over.tls", "x".into()).await.unwrap();
                ca_c.flush().await.unwrap();
                if let Ok(Some(m)) =
                    tokio::time::timeout(Duration::from_millis(200), sub.next()).await
                {
                    return m;
                }
            }
        })
        .await;
        assert!(
            got.is_ok(),
            "no message over the TLS route; A:\n{}\nB:\n{}",
            a.proc.log_text(),
            b.proc.log_text()
        );
    });
}

/// A route dialled without TLS to a TLS cluster port does not form.
#[test]
fn plain_route_to_tls_cluster_is_refused() {
    let pki = pki();
    let (ca, rb) = (crate::support::free_port(), crate::support::free_port());
    let a_conf = pki.dir.write(
        "a.conf",
        &format!(
            "cluster {{ name: t, listen: 127.0.0.1:{ca}\n tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\" }} }}\n",
            s(&pki.server_cert),
            s(&pki.server_key),
            s(&pki.ca)
        ),
    );
    let a = ServerProc::start(&ours(), &["-c", s(&a_conf)]);
    let _b = ServerProc::start(
        &ours(),
        &[
            "--cluster_name",
            "t",
            "--cluster",
            &format!("nats://127.0.0.1:{rb}"),
            "--routes",
            &format!("nats://127.0.0.1:{ca}"),
        ],
    );
    assert!(a
        .proc
        .wait_log("TLS route handshake error", Duration::from_secs(10)));
}
