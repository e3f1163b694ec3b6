//! TLS with a CA and certificates made at run time (nothing committed).

use crate::config::TempDir;
use crate::support::{ours, Raw, ServerProc};
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

    let p = Pki {
        ca: dir.write("ca.pem", &ca.pem()),
        server_cert: dir.write("server.pem", &srv_cert.pem()),
        server_key: dir.write("server-key.pem", &srv_key.serialize_pem()),
        client_cert: dir.write("client.pem", &cli_cert.pem()),
        client_key: dir.write("client-key.pem", &cli_key.serialize_pem()),
        dir,
    };
    p
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn s(p: &PathBuf) -> &str {
    p.to_str().unwrap()
}

#[test]
fn tls_connect_with_async_nats() {
    let pki = pki();
    let srv = ServerProc::start(
        &ours(),
        &["--tls", "--tlscert", s(&pki.server_cert), "--tlskey", s(&pki.server_key)],
    );
    // INFO comes in plaintext and announces TLS.
    let mut raw = Raw::connect(srv.port);
    let info = raw.info();
    assert_eq!(info["tls_required"], true);
    assert!(srv
        .proc
        .wait_log("TLS required for client connections", Duration::from_secs(3)));
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
        assert!(!matches!(without, Ok(Ok(_))), "connected without a client cert");
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
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}
